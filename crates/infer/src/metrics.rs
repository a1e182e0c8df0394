//! Counters of the inference stage, per camera. Logged periodically now; the gateway exports
//! them. Names follow `pump_<noun>_<unit>[_total]` for that export.

use std::collections::{BTreeMap, VecDeque};

use pump_bus::ops::PerCamera;

pub const FRAMES_RECEIVED: &str = "pump_infer_frames_received_total";
pub use pump_bus::ops::FRAMES_DROPPED;
pub const FRAMES_INFERRED: &str = "pump_infer_frames_inferred_total";
pub const INFER_FAILURES: &str = "pump_infer_failures_total";
pub const INFER_SECONDS: &str = "pump_infer_seconds";
/// Each step of a model run (pre-process, model, post-process), over every camera: batches mix
/// cameras, so the steps are the service's.
pub const STAGE_SECONDS: &str = "pump_infer_stage_seconds";
pub const FRAME_AGE_SECONDS: &str = "pump_frame_age_seconds";

/// Why a frame was not inferred. `Replaced` and `TooOld` are the design working (newest frame
/// wins); `Undecodable` and `Invalid` are bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Replaced,
    TooOld,
    Undecodable,
    Invalid,
    /// A new camera's frame while `--max-cameras` cameras are being inferred.
    TooManyCameras,
}

impl DropReason {
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Replaced => "replaced",
            DropReason::TooOld => "too_old",
            DropReason::Undecodable => "undecodable",
            DropReason::Invalid => "invalid",
            DropReason::TooManyCameras => "too_many_cameras",
        }
    }
}

const WINDOW: usize = 1000;

/// A camera whose freshest frames lag this host's clock by more than this is said once.
const SKEW_WARN_NS: i64 = 500_000_000;

/// One camera's counters and recent samples.
#[derive(Debug, Clone, Default)]
pub struct CameraStats {
    pub received: u64,
    pub dropped_replaced: u64,
    pub dropped_too_old: u64,
    pub dropped_undecodable: u64,
    pub dropped_invalid: u64,
    pub inferred: u64,
    pub failed: u64,
    pub end_of_stream: u64,
    /// Recent inference times (ms), newest last.
    pub infer_ms: VecDeque<f64>,
    /// Recent frame ages at publish (ms), newest last.
    pub age_ms: VecDeque<f64>,
    /// Model run time (s) and frame age at publish (s), since the start, for Prometheus.
    pub infer_seconds: pump_bus::ops::Histogram,
    pub age_seconds: pump_bus::ops::Histogram,
    published: pump_bus::ops::RateWindow,
    /// The freshest recent lag of this camera's frames: ages are measured above it.
    lag: pump_bus::clock::LagFloor,
    skew_reported: bool,
}

fn push(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

/// The `p`-quantile (0..1) of samples, nearest rank.
pub fn quantile(samples: &VecDeque<f64>, p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = samples.iter().copied().collect();
    v.sort_by(f64::total_cmp);
    let idx = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[idx])
}

impl CameraStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_replaced + self.dropped_too_old + self.dropped_undecodable + self.dropped_invalid
    }

    /// Poses published per second over the last 60.
    pub fn fps(&self) -> f64 {
        self.published.per_second()
    }
}

/// Every camera's counters. Cheap to update (one short lock per event at camera frame rates).
#[derive(Debug, Default)]
pub struct InferStats {
    cameras: PerCamera<CameraStats>,
    /// Pre-process, model and post-process times of every run.
    stages: std::sync::Mutex<[pump_bus::ops::Histogram; 3]>,
    /// Subscribed to frames and seeded from the kept ones: frames published from now on are seen.
    ready: std::sync::atomic::AtomicBool,
    /// Frames of new cameras refused at `--max-cameras`: counted for all cameras together, since
    /// a flood's names are not worth a series each.
    too_many_cameras: std::sync::atomic::AtomicU64,
    /// Model runs finished, well or not, all cameras: the service's progress.
    runs_done: std::sync::atomic::AtomicU64,
}

impl InferStats {
    /// Keeps the counters of at most `max` cameras (the longest-silent forgotten first).
    pub fn set_max_cameras(&self, max: usize) {
        self.cameras.set_max(max);
    }

    /// Model runs finished so far, well or not.
    pub fn runs_done(&self) -> u64 {
        self.runs_done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Frames refused at `--max-cameras`.
    pub fn too_many_cameras(&self) -> u64 {
        self.too_many_cameras.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The steps of one model run.
    pub fn stages(&self, t: &pump_pose::StageTimings) {
        let mut h = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        for (h, d) in h.iter_mut().zip([t.pre, t.model, t.post]) {
            h.observe(d.as_secs_f64());
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn with(&self, camera: &str, f: impl FnOnce(&mut CameraStats)) {
        self.cameras.update(camera, f);
    }

    /// A frame captured at `capture_ts_ns` (the capture host's clock) arrived now.
    pub fn received(&self, camera: &str, capture_ts_ns: i64) {
        let now = pump_bus::clock::now_ns();
        self.with(camera, |s| {
            s.received += 1;
            if capture_ts_ns > 0 {
                s.lag.observe(now, capture_ts_ns);
            }
            let floor = s.lag.floor_ns().unwrap_or(0);
            if !s.skew_reported && s.lag.samples() >= 30 && floor.abs() > SKEW_WARN_NS {
                s.skew_reported = true;
                tracing::warn!(
                    camera,
                    lag_s = format!("{:.2}", floor as f64 / 1e9),
                    "the freshest frames arrive this far from this host's clock: the capture host's clock \
                     differs (or frames take this long to arrive); frame ages are measured above it"
                );
            }
        });
    }

    /// How old a frame captured at `capture_ts_ns` is, above its camera's freshest recent lag (so a
    /// capture host whose clock differs from this one's does not make every frame too old).
    pub fn age_ns(&self, camera: &str, capture_ts_ns: i64) -> i64 {
        let now = pump_bus::clock::now_ns();
        self.cameras
            .read(camera, |s| s.lag.age_ns(now, capture_ts_ns))
            .unwrap_or_else(|| now.saturating_sub(capture_ts_ns))
    }

    pub fn dropped(&self, camera: &str, reason: DropReason) {
        self.with(camera, |s| match reason {
            DropReason::Replaced => s.dropped_replaced += 1,
            DropReason::TooOld => s.dropped_too_old += 1,
            DropReason::Undecodable => s.dropped_undecodable += 1,
            DropReason::Invalid => s.dropped_invalid += 1,
            DropReason::TooManyCameras => {
                self.too_many_cameras.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }

    pub fn failed(&self, camera: &str) {
        self.runs_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.with(camera, |s| s.failed += 1);
    }

    pub fn inferred(&self, camera: &str, infer_ms: f64) {
        self.runs_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.with(camera, |s| {
            s.inferred += 1;
            push(&mut s.infer_ms, infer_ms);
            s.infer_seconds.observe(infer_ms / 1e3);
        });
    }

    pub fn published(&self, camera: &str, age_ms: f64, end_of_stream: bool) {
        self.with(camera, |s| {
            if end_of_stream {
                s.end_of_stream += 1;
                return;
            }
            // A capture host's clock ahead of this one's gives negative ages: none is younger than 0.
            let age_ms = age_ms.max(0.0);
            push(&mut s.age_ms, age_ms);
            s.age_seconds.observe(age_ms / 1e3);
            s.published.tick();
        });
    }

    /// Prometheus text of every camera's counters (`reason` says whether a drop was by design:
    /// `replaced`, `too_old`; or bad input: `undecodable`, `invalid`).
    pub fn prometheus(&self, nats_connected: f64) -> String {
        let snap = self.snapshot();
        let mut p = pump_bus::ops::PromText::for_service(nats_connected);
        p.per_camera(FRAMES_RECEIVED, "counter", "Frames received from pump.frames.", &snap, |s| s.received as f64);
        p.family(FRAMES_DROPPED, "counter", pump_bus::ops::FRAMES_DROPPED_HELP);
        for (c, s) in &snap {
            for (reason, n) in [
                ("replaced", s.dropped_replaced),
                ("too_old", s.dropped_too_old),
                ("undecodable", s.dropped_undecodable),
                ("invalid", s.dropped_invalid),
            ] {
                p.sample(FRAMES_DROPPED, &[("stage", "infer"), ("camera", c), ("reason", reason)], n as f64);
            }
        }
        let refused = self.too_many_cameras() as f64;
        p.sample(FRAMES_DROPPED, &[("stage", "infer"), ("reason", "too_many_cameras")], refused);
        p.per_camera(FRAMES_INFERRED, "counter", "Frames inferred and published.", &snap, |s| s.inferred as f64);
        p.per_camera(INFER_FAILURES, "counter", "Inference runs that failed.", &snap, |s| s.failed as f64);
        p.family(INFER_SECONDS, "histogram", "Model run time.");
        for (c, s) in &snap {
            p.histogram(INFER_SECONDS, &[("camera", c)], &s.infer_seconds);
        }
        p.family(STAGE_SECONDS, "histogram", "Time of each step of a model run.");
        let stages = self.stages.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (stage, h) in ["preprocess", "model", "postprocess"].iter().zip(&stages) {
            p.histogram(STAGE_SECONDS, &[("stage", stage)], h);
        }
        p.family(FRAME_AGE_SECONDS, "histogram", "Frame age at publish, publish - capture.");
        for (c, s) in &snap {
            p.histogram(FRAME_AGE_SECONDS, &[("camera", c)], &s.age_seconds);
        }
        p.finish()
    }

    /// Health: per camera the age of the last pose, and the execution provider.
    pub fn health(&self, provider: &str) -> serde_json::Value {
        let cameras: serde_json::Map<String, serde_json::Value> = self
            .snapshot()
            .into_iter()
            .map(|(c, s)| {
                let age = s.published.last_age_s();
                (c, serde_json::json!({"last_pose_age_s": age, "poses_per_second": s.fps(), "dropped": s.dropped()}))
            })
            .collect();
        serde_json::json!({"service": "pump-infer", "ready": self.is_ready(), "provider": provider, "cameras": cameras})
    }

    /// A camera's frames received and frames not inferred (for any reason), since the start.
    pub fn counts(&self, camera: &str) -> (u64, u64) {
        self.cameras.read(camera, |s| (s.received, s.dropped())).unwrap_or((0, 0))
    }

    /// A copy of every camera's counters.
    pub fn snapshot(&self) -> BTreeMap<String, CameraStats> {
        self.cameras.snapshot()
    }

    /// One log line per camera.
    pub fn log(&self) {
        for (camera, s) in self.snapshot() {
            tracing::info!(
                camera_id = %camera,
                received = s.received,
                inferred = s.inferred,
                dropped_replaced = s.dropped_replaced,
                dropped_too_old = s.dropped_too_old,
                dropped_undecodable = s.dropped_undecodable,
                dropped_invalid = s.dropped_invalid,
                failed = s.failed,
                fps = format!("{:.1}", s.fps()),
                infer_ms_p50 = format!("{:.1}", quantile(&s.infer_ms, 0.5).unwrap_or(0.0)),
                age_ms_p50 = format!("{:.1}", quantile(&s.age_ms, 0.5).unwrap_or(0.0)),
                age_ms_p99 = format!("{:.1}", quantile(&s.age_ms, 0.99).unwrap_or(0.0)),
                "inference stats"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_camera_and_reason() {
        let s = InferStats::default();
        s.received("a", 0);
        s.received("a", 0);
        s.dropped("a", DropReason::Replaced);
        s.inferred("a", 10.0);
        s.received("b", 0);
        s.dropped("b", DropReason::Undecodable);
        let snap = s.snapshot();
        assert_eq!((snap["a"].received, snap["a"].dropped(), snap["a"].inferred), (2, 1, 1));
        assert_eq!(snap["b"].dropped_undecodable, 1);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let q: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&q, 0.5), Some(50.0));
        assert_eq!(quantile(&q, 0.99), Some(99.0));
        assert_eq!(quantile(&VecDeque::new(), 0.5), None);
    }
}
