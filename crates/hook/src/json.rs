//! The one JSON form of a set: the line `pump sets --json` prints and `pump hook --url` POSTs.

use pump_proto::SetEvent;
use serde_json::json;

/// A wall-clock time as RFC 3339 UTC, to the second; empty when unknown (0).
pub fn utc(unix_ns: i64) -> String {
    let at = (unix_ns != 0).then(|| time::OffsetDateTime::from_unix_timestamp(unix_ns.div_euclid(1_000_000_000)).ok());
    at.flatten().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()).unwrap_or_default()
}

/// A set as JSON: the line `pump sets --json` prints, and the body `pump hook` posts.
pub fn set_json(s: &SetEvent) -> serde_json::Value {
    json!({"type": "set", "set_id": s.set_id, "camera": s.camera, "start": s.start_s, "end": s.end_s,
           "start_utc": utc(s.start_unix_ns), "end_utc": utc(s.end_unix_ns),
           "start_frame": s.start_frame, "end_frame": s.end_frame, "reps": s.reps, "rep_times": s.rep_times_s,
           "rep_depths_deg": s.rep_depths_deg, "rep_durations_s": s.rep_durations_s,
           "exercise": s.exercise, "confidence": s.confidence, "frames": s.frames, "pending": s.pending,
           "continued": s.continued, "clip": (!s.clip.is_empty()).then_some(&s.clip)})
}
