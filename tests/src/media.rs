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

/// A video's frames as RGB bytes, decoded by ffmpeg.
pub fn rgb_frames(path: &std::path::Path, width: usize, height: usize) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(width * height * 3).map(<[u8]>::to_vec).collect()
}

/// Bright green pixels (the bones) inside a box of a `width`-wide RGB frame.
pub fn green_in(rgb: &[u8], width: usize, (x1, y1, x2, y2): (usize, usize, usize, usize)) -> usize {
    (y1..y2)
        .flat_map(|y| (x1..x2).map(move |x| (y * width + x) * 3))
        .filter(|&i| rgb.get(i..i + 3).is_some_and(|p| p[1] > 170 && p[0] < 110 && p[2] < 110))
        .count()
}
