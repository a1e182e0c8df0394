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

/// Frames stamped further than this from this host's clock, either way, are refused. The skew
/// between synced hosts is seconds (the lag floor absorbs it); one frame stamped decades off would
/// otherwise set its camera's lag floor, making every honest frame after it too old, or hold the
/// camera's slot with a "newest" frame no later one replaces.
pub(crate) const MAX_CLOCK_SKEW_NS: i64 = 3_600 * 1_000_000_000;

/// Why a frame's capture stamp cannot be from a camera of this host's time, if it cannot.
fn stamp_refused(frame: &pump_proto::Frame, now: i64) -> Option<String> {
    let off = frame.capture_ts_ns.saturating_sub(now);
    (!frame.end_of_stream && off.saturating_abs() > MAX_CLOCK_SKEW_NS).then(|| {
        format!(
            "captured {:.0} h {} this host's clock",
            off.saturating_abs() as f64 / 3.6e12,
            if off > 0 { "ahead of" } else { "behind" }
        )
    })
}

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
        if frame.end_of_stream
            || stamp_refused(&frame, now_ns()).is_some()
            || (!frame.paced && now_ns().saturating_sub(frame.capture_ts_ns) > max_age_ns)
        {
            continue;
        }
        frame.camera = camera.to_string();
        stats.received(camera.as_str(), frame.capture_ts_ns);
        // Kept frames came over the bus too: checked as any other.
        let Ok(frame) = CheckedFrame::new(frame, config.max_dimension) else {
            stats.dropped(camera.as_str(), DropReason::Invalid);
            continue;
        };
        match slots.offer(frame) {
            Offer::Stored => {}
            Offer::Refused => stats.dropped(camera.as_str(), DropReason::TooManyCameras),
            _ => stats.dropped(camera.as_str(), DropReason::Replaced),
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
    if let Some(why) = stamp_refused(&frame, now_ns()) {
        stats.received(cam, 0);
        stats.dropped(cam, DropReason::Invalid);
        limiter.warn(cam, "frame refused", || why);
        return;
    }
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
        Offer::Refused => {
            stats.dropped(cam, DropReason::TooManyCameras);
            // One line for the flood, not one per name.
            limiter
                .warn("--max-cameras", "frame of a new camera refused: every camera slot is busy", || cam.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_hours_off_this_hosts_clock_is_refused_either_way_and_at_the_ends_of_time() {
        let now = 1_800_000_000 * 1_000_000_000i64;
        let at = |capture_ts_ns| pump_proto::Frame { capture_ts_ns, ..Default::default() };
        assert!(stamp_refused(&at(now), now).is_none());
        assert!(stamp_refused(&at(now - 59 * 60 * 1_000_000_000), now).is_none(), "a skewed host, or a late frame");
        for ts in [i64::MIN, 0, now - 2 * MAX_CLOCK_SKEW_NS, now + 2 * MAX_CLOCK_SKEW_NS, i64::MAX] {
            assert!(stamp_refused(&at(ts), now).is_some(), "{ts}");
        }
        assert!(stamp_refused(&at(i64::MAX), now).unwrap().contains("ahead of"));
        let eos = pump_proto::Frame { end_of_stream: true, ..at(0) };
        assert!(stamp_refused(&eos, now).is_none(), "an end of stream carries no picture to date");
    }
}
