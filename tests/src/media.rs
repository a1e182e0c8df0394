//! Frames to publish and JPEGs to look at, for the tests of the gateway and its clients.
#![allow(clippy::unwrap_used)] // test support: a failure here is a failed test

use pump_proto::{Encoding, Frame};

/// A raw (BGR) frame of one grey level, as `pump-capture --encoding bgr8` publishes.
pub fn gray_frame(camera: &str, id: u64, capture_ts_ns: i64, width: u32, height: u32) -> Frame {
    Frame {
        camera: camera.into(),
        frame_id: id,
        capture_ts_ns,
        width,
        height,
        encoding: Encoding::Bgr8 as i32,
        data: vec![90; width as usize * height as usize * 3].into(),
        ..Default::default()
    }
}

/// Decodes a JPEG to (width, height, pixels: RGB, or grey for a one-channel JPEG).
pub fn decode_jpeg(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    (usize::from(info.width), usize::from(info.height), px)
}
