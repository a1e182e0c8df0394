//! Frames in: from `pump.frames.>` and, at start, the kept frame of each camera; each checked
//! and offered to its camera's slot.

use async_nats::jetstream;
use futures::StreamExt;
use pump_bus::clock::now_ns;
use pump_bus::codec::decode_frame;
use pump_bus::frame::CheckedFrame;
use pump_bus::ratelog::RateLimitedLog;
use pump_bus::streams::FRAMES_STREAM;
use pump_bus::subject::{self, FRAMES_ALL};

use crate::config::Config;
use crate::metrics::{DropReason, InferStats};
use crate::slot::{FrameSlots, Offer};

/// Starts each camera from its kept frame (the frames stream holds the newest per camera), so a
/// service that starts late does not wait for the next frame, nor for a paced file that waits
/// for it.
pub(crate) async fn seed_from_kept_frames(
    js: &jetstream::Context,
    slots: &FrameSlots,
    stats: &InferStats,
    config: &Config,
) -> std::result::Result<(), String> {
    let stream = js.get_stream(FRAMES_STREAM).await.map_err(|e| e.to_string())?;
    let mut subjects = stream.info_with_subjects(FRAMES_ALL).await.map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    while let Some(item) = subjects.next().await {
        names.push(item.map_err(|e| e.to_string())?.0);
    }
    let max_age_ns = config.max_frame_age.as_nanos() as i64;
    for name in names {
        let Some(camera) = subject::camera_of_frames(&name) else { continue };
        let Ok(msg) = stream.get_last_raw_message_by_subject(&name).await else { continue };
        let Ok(mut frame) = decode_frame(&msg.payload) else { continue };
        if frame.end_of_stream || (!frame.paced && now_ns() - frame.capture_ts_ns > max_age_ns) {
            continue;
        }
        frame.camera = camera.to_string();
        stats.received(camera.as_str(), frame.capture_ts_ns);
        // Kept frames came over the bus too: checked as any other.
        let Ok(frame) = CheckedFrame::new(frame, config.max_dimension) else {
            stats.dropped(camera.as_str(), DropReason::Invalid);
            continue;
        };
        if slots.offer(frame) != Offer::Stored {
            stats.dropped(camera.as_str(), DropReason::Replaced);
        }
    }
    Ok(())
}

pub(crate) fn on_frame_message(
    msg: async_nats::Message,
    slots: &FrameSlots,
    stats: &InferStats,
    config: &Config,
    limiter: &mut RateLimitedLog,
) {
    let Some(camera) = subject::camera_of_frames(&msg.subject) else {
        stats.dropped("?", DropReason::Invalid);
        limiter.warn("?", "frame on an invalid subject", || msg.subject.to_string());
        return;
    };
    let cam = camera.as_str();
    let mut frame = match decode_frame(&msg.payload) {
        Ok(f) => f,
        Err(e) => {
            stats.received(cam, 0);
            stats.dropped(cam, DropReason::Invalid);
            limiter.warn(cam, "not a Frame", || e.to_string());
            return;
        }
    };
    stats.received(cam, if frame.end_of_stream || frame.paced { 0 } else { frame.capture_ts_ns });
    // The subject names the camera; a payload cannot claim another one.
    frame.camera = camera.to_string();
    let frame = match CheckedFrame::new(frame, config.max_dimension) {
        Ok(f) => f,
        Err(why) => {
            stats.dropped(cam, DropReason::Invalid);
            limiter.warn(cam, "frame refused", || why);
            return;
        }
    };
    match slots.offer(frame) {
        Offer::Stored => {}
        Offer::Replaced { .. } | Offer::Older => stats.dropped(cam, DropReason::Replaced),
    }
}
