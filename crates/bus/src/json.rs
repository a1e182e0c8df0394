//! The one JSON form of a set: the line `pump sets` prints (offline and `--json`) and `pump hook
//! --url` POSTs.

use pump_proto::SetEvent;
use serde_json::json;

/// A wall-clock time as RFC 3339 UTC, to the second; empty when unknown (0).
pub fn utc(unix_ns: i64) -> String {
    let at = (unix_ns != 0).then(|| time::OffsetDateTime::from_unix_timestamp(unix_ns.div_euclid(1_000_000_000)).ok());
    at.flatten().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()).unwrap_or_default()
}

/// Seconds and shares to the millisecond: what a reader needs, without 1.3666666666666667.
fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A set as JSON, the one form everywhere: the line `pump sets` prints (offline and `--json`)
/// and the body `pump hook --url` posts. Wall times are empty offline.
pub fn set_json(s: &SetEvent) -> serde_json::Value {
    let times = |v: &[f64]| v.iter().map(|t| r3(*t)).collect::<Vec<_>>();
    json!({"type": "set", "set_id": s.set_id, "camera": s.camera, "start": r3(s.start_s), "end": r3(s.end_s),
           "start_utc": utc(s.start_unix_ns), "end_utc": utc(s.end_unix_ns),
           "start_frame": s.start_frame, "end_frame": s.end_frame, "reps": s.reps, "rep_times": times(&s.rep_times_s),
           "rep_depths_deg": s.rep_depths_deg.iter().map(|d| r3(f64::from(*d))).collect::<Vec<_>>(),
           "rep_durations_s": times(&s.rep_durations_s), "partial_reps": times(&s.partial_rep_times_s),
           "counted_on": s.counted_on, "exercise": s.exercise, "confidence": r3(f64::from(s.confidence)),
           "frames": s.frames, "pose_rate": r3(s.pose_rate), "longest_gap": r3(s.longest_gap_s),
           "pending": s.pending, "continued": s.continued, "clip": (!s.clip.is_empty()).then_some(&s.clip)})
}
