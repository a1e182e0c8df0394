//! Payload encoding: prost messages, with frame id and capture time also in headers so that
//! tools can read them without decoding the body.

use async_nats::HeaderMap;
use bytes::Bytes;
use prost::Message;
use pump_proto::{Frame, PoseFrame};

use crate::error::{Error, Result};

pub const HEADER_FRAME_ID: &str = "Pump-Frame-Id";
pub const HEADER_CAPTURE_NS: &str = "Pump-Capture-Ns";

/// Headers carrying a frame's id and capture time.
pub fn headers(frame_id: u64, capture_ts_ns: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HEADER_FRAME_ID, frame_id.to_string().as_str());
    h.insert(HEADER_CAPTURE_NS, capture_ts_ns.to_string().as_str());
    h
}

pub fn encode<M: Message>(msg: &M) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

pub fn decode_frame(payload: &[u8]) -> Result<Frame> {
    Frame::decode(payload).map_err(|source| Error::Decode { what: "Frame", source })
}

pub fn decode_pose_frame(payload: &[u8]) -> Result<PoseFrame> {
    PoseFrame::decode(payload).map_err(|source| Error::Decode { what: "PoseFrame", source })
}
