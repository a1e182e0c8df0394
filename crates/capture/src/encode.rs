//! Turning a decoded picture into the frame that goes on the wire, once.

use std::sync::Arc;

use bytes::Bytes;
use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;
use prost::Message;
use pump_proto::{Encoding, Frame};

use crate::config::FrameEncoding;
use crate::error::{Error, Result};

/// A frame ready to publish: the message and its encoded bytes. Kept as the camera's newest
/// frame for previews, so nothing is ever encoded twice.
#[derive(Debug)]
pub struct EncodedFrame {
    pub frame: Frame,
    pub payload: Bytes,
}

/// Identity and timing of a frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameMeta<'a> {
    pub camera: &'a str,
    pub frame_id: u64,
    pub capture_ts_ns: i64,
    pub source_ts_ns: i64,
    pub segment: u64,
    pub paced: bool,
}

/// Bytes a frame message carries besides its pixels (ids, times, camera name), with room to spare.
const FRAME_OVERHEAD_BYTES: usize = 1024;
/// Quality of the JPEG sent when raw frames are too large for the server.
pub const FALLBACK_JPEG_QUALITY: i32 = 95;

/// How a decoded `width`×`height` frame goes on the wire: `configured` (raw for `Auto`, the
/// camera having sent no JPEG to pass on), unless raw would not fit in one message of at most
/// `max_payload` bytes (0: unknown, no limit); then JPEG.
pub fn wire_encoding(configured: FrameEncoding, width: usize, height: usize, max_payload: usize) -> FrameEncoding {
    match configured {
        FrameEncoding::Bgr8 | FrameEncoding::Auto
            if max_payload > 0 && width * height * 3 + FRAME_OVERHEAD_BYTES > max_payload =>
        {
            FrameEncoding::Jpeg { quality: FALLBACK_JPEG_QUALITY }
        }
        FrameEncoding::Auto => FrameEncoding::Bgr8,
        other => other,
    }
}

/// A frame of the camera's own JPEG, as it came: its size read from the JPEG's header, so a
/// packet that is no JPEG is refused here rather than by every reader.
pub fn pass_jpeg(jpeg: &[u8], meta: FrameMeta<'_>) -> Result<Arc<EncodedFrame>> {
    let (width, height) = pump_bus::frame::jpeg_size(jpeg).map_err(Error::Encode)?;
    Ok(finish(meta, width, height, Encoding::Jpeg, Bytes::copy_from_slice(jpeg)))
}

pub fn encode(mat: &Mat, meta: FrameMeta<'_>, encoding: FrameEncoding) -> Result<Arc<EncodedFrame>> {
    let e = |err: opencv::Error| Error::Encode(err.to_string());
    let (kind, data) = match encoding {
        FrameEncoding::Jpeg { quality } => {
            let mut buf = Vector::<u8>::new();
            let params = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality]);
            if !imgcodecs::imencode(".jpg", mat, &mut buf, &params).map_err(e)? {
                return Err(Error::Encode("JPEG encoder refused the frame".into()));
            }
            (Encoding::Jpeg, Bytes::from(buf.to_vec()))
        }
        FrameEncoding::Bgr8 | FrameEncoding::Auto => {
            let owned;
            let m = if mat.is_continuous() {
                mat
            } else {
                owned = mat.try_clone().map_err(e)?;
                &owned
            };
            (Encoding::Bgr8, Bytes::copy_from_slice(m.data_bytes().map_err(e)?))
        }
    };
    Ok(finish(meta, mat.cols() as u32, mat.rows() as u32, kind, data))
}

fn finish(meta: FrameMeta<'_>, width: u32, height: u32, kind: Encoding, data: Bytes) -> Arc<EncodedFrame> {
    let frame = Frame {
        camera: meta.camera.into(),
        frame_id: meta.frame_id,
        capture_ts_ns: meta.capture_ts_ns,
        source_ts_ns: meta.source_ts_ns,
        width,
        height,
        encoding: kind as i32,
        data,
        end_of_stream: false,
        paced: meta.paced,
        segment: meta.segment,
    };
    let payload = Bytes::from(frame.encode_to_vec());
    Arc::new(EncodedFrame { frame, payload })
}

/// The empty last frame that says a file ended.
pub fn end_of_stream(meta: FrameMeta<'_>) -> Arc<EncodedFrame> {
    let frame = Frame {
        camera: meta.camera.into(),
        frame_id: meta.frame_id,
        capture_ts_ns: meta.capture_ts_ns,
        source_ts_ns: meta.source_ts_ns,
        end_of_stream: true,
        paced: meta.paced,
        segment: meta.segment,
        ..Default::default()
    };
    let payload = Bytes::from(frame.encode_to_vec());
    Arc::new(EncodedFrame { frame, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_too_large_for_the_server_go_as_jpeg() {
        let mb = 1024 * 1024;
        assert_eq!(wire_encoding(FrameEncoding::Bgr8, 640, 480, mb), FrameEncoding::Bgr8);
        assert_eq!(
            wire_encoding(FrameEncoding::Bgr8, 1920, 1080, mb),
            FrameEncoding::Jpeg { quality: FALLBACK_JPEG_QUALITY }
        );
        assert_eq!(wire_encoding(FrameEncoding::Bgr8, 1920, 1080, 8 * mb), FrameEncoding::Bgr8);
        assert_eq!(wire_encoding(FrameEncoding::Bgr8, 1920, 1080, 0), FrameEncoding::Bgr8);
        let jpeg = FrameEncoding::Jpeg { quality: 80 };
        assert_eq!(wire_encoding(jpeg, 1920, 1080, mb), jpeg);
        assert_eq!(wire_encoding(FrameEncoding::Auto, 640, 480, mb), FrameEncoding::Bgr8);
        assert_eq!(
            wire_encoding(FrameEncoding::Auto, 1920, 1080, mb),
            FrameEncoding::Jpeg { quality: FALLBACK_JPEG_QUALITY }
        );
    }

    #[test]
    fn a_passed_jpeg_is_sent_as_it_came_with_its_own_size() {
        let mat =
            Mat::new_rows_cols_with_default(48, 64, opencv::core::CV_8UC3, opencv::core::Scalar::all(90.0)).unwrap();
        let mut jpeg = Vector::<u8>::new();
        assert!(imgcodecs::imencode(".jpg", &mat, &mut jpeg, &Vector::new()).unwrap());
        let meta = FrameMeta { camera: "a", frame_id: 7, capture_ts_ns: 1, source_ts_ns: 2, segment: 3, paced: false };
        let f = pass_jpeg(jpeg.as_slice(), meta).unwrap();
        assert_eq!((f.frame.width, f.frame.height, f.frame.encoding), (64, 48, Encoding::Jpeg as i32));
        assert_eq!(&f.frame.data[..], jpeg.as_slice());
        assert_eq!(Frame::decode(f.payload.clone()).unwrap(), f.frame);
        assert!(pass_jpeg(b"\x00\x00\x01\xb3 an mpeg4 packet", meta).is_err());
    }
}
