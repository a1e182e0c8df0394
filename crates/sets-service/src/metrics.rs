//! Counters of the sets stage: Prometheus text and the health document.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pump_bus::ops::{PerCamera, RateWindow, FRAMES_DROPPED, FRAMES_DROPPED_HELP};

pub const POSES: &str = "pump_sets_poses_total";
pub const SETS_PUBLISHED: &str = "pump_sets_published_total";
pub const REPS_PUBLISHED: &str = "pump_reps_published_total";
pub const REPLAYED: &str = "pump_sets_replayed_total";
pub const REPS_IN_PROGRESS: &str = "pump_sets_reps_in_progress";
pub const POSE_RATE: &str = "pump_sets_pose_rate";
pub const BELOW_POSE_RATE_FLOOR: &str = "pump_sets_below_pose_rate_floor";
pub const SETS_STORED: &str = "pump_sets_stored_total";
pub const SETS_UNSTORED: &str = "pump_sets_unstored";
pub const SET_PUBLISH_FAILURES: &str = "pump_sets_publish_failures_total";
pub const SETS_THINNED: &str = "pump_sets_thinned_total";
pub const SETS_REFUSED: &str = "pump_sets_refused_total";

/// Counters of the sets stage.
#[derive(Debug, Default)]
pub struct SetsStats {
    pub poses: AtomicU64,
    pub out_of_order: AtomicU64,
    /// Poses of new cameras not counted: `--max-cameras` cameras were being counted, none idle.
    pub too_many_cameras: AtomicU64,
    /// Turns of the counting loop: its progress (it turns every checkpoint interval at least).
    pub turns: AtomicU64,
    pub sets_published: AtomicU64,
    pub reps_published: AtomicU64,
    pub replayed: AtomicU64,
    /// Sets closed and waiting to be stored (JetStream away): retried until they are.
    pub sets_unstored: AtomicU64,
    /// Publishes of a set that failed (each retry counts).
    pub set_publish_failures: AtomicU64,
    /// Sets stored with their feature rows thinned, too large for the stream whole.
    pub sets_thinned: AtomicU64,
    /// Sets that could not be stored at all (too large even without feature rows).
    pub sets_refused: AtomicU64,
    /// Set once the consumer is in place: poses published from now on are seen.
    pub ready: AtomicBool,
    /// Set while another pump-sets holds the lease and this one waits to take over.
    pub standby: AtomicBool,
    pub cameras: PerCamera<SetsCameraStats>,
}

/// One camera as the sets stage sees it.
#[derive(Debug, Clone, Default)]
pub struct SetsCameraStats {
    pub(crate) poses: RateWindow,
    /// Poses a second on the camera's own timeline (what the rep counter sees), over the last
    /// few seconds of it; 0 until there are enough.
    pub pose_rate: f64,
    /// The pose rate is under the floor at which counts are exact: sets are pending.
    pub below_floor: bool,
    /// Reps of the set in progress (0 between sets).
    pub reps: usize,
    /// Sets stored since the start (duplicates after a restart not counted).
    pub sets: u64,
}

impl SetsStats {
    /// Prometheus text of the sets stage.
    pub fn prometheus(&self, nats_connected: f64) -> String {
        let mut p = pump_bus::ops::PromText::for_service(nats_connected);
        for (name, help, v) in [
            (POSES, "Pose frames processed.", &self.poses),
            (SETS_PUBLISHED, "Sets stored (duplicates not counted).", &self.sets_published),
            (REPS_PUBLISHED, "Live rep counts published.", &self.reps_published),
            (REPLAYED, "Pose frames replayed after a restart.", &self.replayed),
            (SET_PUBLISH_FAILURES, "Publishes of a set that failed (each retry counts).", &self.set_publish_failures),
            (SETS_THINNED, "Sets stored with their feature rows thinned to fit the stream.", &self.sets_thinned),
            (SETS_REFUSED, "Sets too large for the stream even without feature rows.", &self.sets_refused),
        ] {
            p.single(name, "counter", help, v.load(Ordering::Relaxed) as f64);
        }
        let unstored = self.sets_unstored.load(Ordering::Relaxed) as f64;
        p.single(SETS_UNSTORED, "gauge", "Sets closed and waiting to be stored (retried until they are).", unstored);
        // Older than the camera's last pose (a replica behind the others): not counted.
        p.family(FRAMES_DROPPED, "counter", FRAMES_DROPPED_HELP);
        p.sample(
            FRAMES_DROPPED,
            &[("stage", "sets"), ("reason", "out_of_order")],
            self.out_of_order.load(Ordering::Relaxed) as f64,
        );
        p.sample(
            FRAMES_DROPPED,
            &[("stage", "sets"), ("reason", "too_many_cameras")],
            self.too_many_cameras.load(Ordering::Relaxed) as f64,
        );
        type Pick = fn(&SetsCameraStats) -> f64;
        let per_camera: [(&str, &str, &str, Pick); 4] = [
            (REPS_IN_PROGRESS, "gauge", "Reps of the set in progress.", |s| s.reps as f64),
            // A measurement, not a throughput: the poses a camera's timeline had in its last 5 s,
            // what the floor for exact counts is judged on.
            (POSE_RATE, "gauge", "Poses a second on the camera's timeline, over its last 5 s.", |s| s.pose_rate),
            (BELOW_POSE_RATE_FLOOR, "gauge", "1 while the pose rate is under the floor for exact counts.", |s| {
                f64::from(u8::from(s.below_floor))
            }),
            (SETS_STORED, "counter", "Sets stored, per camera.", |s| s.sets as f64),
        ];
        let cameras = self.cameras.snapshot();
        for (name, kind, help, pick) in per_camera {
            p.per_camera(name, kind, help, &cameras, pick);
        }
        p.finish()
    }

    /// Health: readiness, totals, and per camera the age of the last pose, the rates (arrival,
    /// and on the camera's timeline against the floor for exact counts), the reps of the set in
    /// progress and the sets stored.
    pub fn health(&self, pose_rate_floor: f64) -> serde_json::Value {
        let cameras: serde_json::Map<String, serde_json::Value> = self
            .cameras
            .snapshot()
            .into_iter()
            .map(|(c, s)| {
                let v = serde_json::json!({"last_pose_age_s": s.poses.last_age_s(),
                    "poses_per_second": s.poses.per_second(), "pose_rate": s.pose_rate,
                    "pose_rate_floor": pose_rate_floor, "below_pose_rate_floor": s.below_floor,
                    "reps_in_set": s.reps, "sets_stored": s.sets});
                (c, v)
            })
            .collect();
        serde_json::json!({"service": "pump-sets", "ready": self.ready.load(Ordering::SeqCst),
            "standby": self.standby.load(Ordering::SeqCst),
            "poses": self.poses.load(Ordering::Relaxed), "sets_published": self.sets_published.load(Ordering::Relaxed),
            "sets_unstored": self.sets_unstored.load(Ordering::Relaxed),
            "cameras": cameras})
    }
}
