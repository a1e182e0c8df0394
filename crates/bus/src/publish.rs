//! Typed publishers: each kind of message to its own subject, with its headers, in one place.
//! Frames and poses go out on core NATS (the streams capture them); a set is published to
//! JetStream with its id as message id, so a set sent twice is stored once.

use async_nats::jetstream;
use bytes::Bytes;
use pump_proto::{PoseFrame, RepProgress, SetEvent};

use crate::codec::{encode, headers};
use crate::error::{Error, Result};
use crate::subject::{self, CameraId};

/// A frame whose message is already encoded (capture encodes each frame once).
pub async fn frame(
    client: &async_nats::Client,
    camera: &CameraId,
    frame_id: u64,
    capture_ts_ns: i64,
    payload: Bytes,
) -> Result<()> {
    let hdrs = headers(frame_id, capture_ts_ns);
    client.publish_with_headers(subject::frames(camera), hdrs, payload).await.map_err(|e| Error::Nats(e.to_string()))
}

/// A camera's poses of one frame.
pub async fn poses(client: &async_nats::Client, camera: &CameraId, poses: &PoseFrame) -> Result<()> {
    let hdrs = headers(poses.frame_id, poses.capture_ts_ns);
    client
        .publish_with_headers(subject::poses(camera), hdrs, encode(poses))
        .await
        .map_err(|e| Error::Nats(e.to_string()))
}

/// The live count of a camera's set in progress.
pub async fn reps(client: &async_nats::Client, camera: &CameraId, reps: &RepProgress) -> Result<()> {
    client.publish(subject::reps(camera), encode(reps)).await.map_err(|e| Error::Nats(e.to_string()))
}

/// A closed set, once the server has stored it: whether it was a duplicate (the same set id
/// stored before).
pub async fn set(js: &jetstream::Context, camera: &CameraId, set: &SetEvent) -> Result<bool> {
    let message = jetstream::message::PublishMessage::build().payload(encode(set)).message_id(&set.set_id);
    let ack = js.send_publish(subject::sets(camera), message).await.map_err(|e| Error::Nats(e.to_string()))?;
    ack.await.map(|a| a.duplicate).map_err(|e| Error::Nats(e.to_string()))
}
