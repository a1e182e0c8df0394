//! Counters of the capture stage, per camera: connection state, frames, failures, fps over
//! the last 60 frames.

use std::collections::BTreeMap;

use pump_bus::ops::{PerCamera, FRAMES_DROPPED, FRAMES_DROPPED_HELP};

pub const FRAMES_CAPTURED: &str = "pump_frames_captured_total";
pub const FRAMES_PUBLISHED: &str = "pump_frames_published_total";
pub const CAMERA_CONNECTED: &str = "pump_camera_connected";
pub const CAMERA_RECONNECTS: &str = "pump_camera_reconnects_total";
pub const CAMERA_STALLS: &str = "pump_camera_stalls_total";

#[derive(Debug, Clone, Default)]
pub struct CaptureCameraStats {
    pub connected: bool,
    pub captured: u64,
    pub published: u64,
    /// Frames replaced by a newer one before the publisher got to them.
    pub skipped: u64,
    /// Frames dropped while NATS was away (not queued in memory for when it is back).
    pub nats_down: u64,
    pub open_failures: u64,
    pub read_failures: u64,
    pub stalls: u64,
    pub reconnects: u64,
    pub pace_timeouts: u64,
    /// A file source read to its end.
    pub ended: bool,
    frames: pump_bus::ops::RateWindow,
}

impl CaptureCameraStats {
    /// Frames per second over the last 60 frames.
    pub fn fps(&self) -> f64 {
        self.frames.per_second()
    }
}

#[derive(Debug, Default)]
pub struct CaptureStats {
    cameras: PerCamera<CaptureCameraStats>,
    /// The streams are set up and cameras are running.
    ready: std::sync::atomic::AtomicBool,
}

impl CaptureStats {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Prometheus text: per camera frames captured/published/dropped, connection, reconnects,
    /// stalls; and the NATS connection. Rates are the counters' `rate()`, not gauges.
    pub fn prometheus(&self, nats_connected: f64) -> String {
        let snap = self.snapshot();
        let mut p = pump_bus::ops::PromText::for_service(nats_connected);
        type Pick = fn(&CaptureCameraStats) -> f64;
        let families: [(&str, &str, &str, Pick); 5] = [
            (FRAMES_CAPTURED, "counter", "Frames read from the camera.", |s| s.captured as f64),
            (FRAMES_PUBLISHED, "counter", "Frames published to pump.frames.", |s| s.published as f64),
            (CAMERA_CONNECTED, "gauge", "1 while the camera delivers frames.", |s| f64::from(u8::from(s.connected))),
            (CAMERA_RECONNECTS, "counter", "Reconnect attempts.", |s| s.reconnects as f64),
            (CAMERA_STALLS, "counter", "Reads that stalled past the limit.", |s| s.stalls as f64),
        ];
        for (name, kind, help, pick) in families {
            p.per_camera(name, kind, help, &snap, pick);
        }
        // Replaced by a newer frame before the publisher got to it: newest wins, by design.
        p.family(FRAMES_DROPPED, "counter", FRAMES_DROPPED_HELP);
        for (c, s) in &snap {
            p.sample(FRAMES_DROPPED, &[("stage", "capture"), ("camera", c), ("reason", "replaced")], s.skipped as f64);
            // While NATS is away: dropped, never queued in memory.
            p.sample(
                FRAMES_DROPPED,
                &[("stage", "capture"), ("camera", c), ("reason", "nats_down")],
                s.nats_down as f64,
            );
        }
        p.finish()
    }

    /// Health: per camera connected, fps and counters.
    pub fn health(&self) -> serde_json::Value {
        let cameras: serde_json::Map<String, serde_json::Value> = self
            .snapshot()
            .into_iter()
            .map(|(c, s)| {
                let age = s.frames.last_age_s();
                (c, serde_json::json!({"connected": s.connected, "fps": s.fps(), "last_frame_age_s": age, "reconnects": s.reconnects, "ended": s.ended}))
            })
            .collect();
        serde_json::json!({"service": "pump-capture", "ready": self.is_ready(), "cameras": cameras})
    }

    pub fn update(&self, camera: &str, f: impl FnOnce(&mut CaptureCameraStats)) {
        self.cameras.update(camera, f);
    }

    pub fn captured(&self, camera: &str) {
        self.update(camera, |s| {
            s.captured += 1;
            s.connected = true;
            s.frames.tick();
        });
    }

    pub fn snapshot(&self) -> BTreeMap<String, CaptureCameraStats> {
        self.cameras.snapshot()
    }

    pub fn log(&self) {
        for (camera, s) in self.snapshot() {
            tracing::info!(
                camera_id = %camera,
                connected = s.connected,
                captured = s.captured,
                published = s.published,
                skipped = s.skipped,
                reconnects = s.reconnects,
                stalls = s.stalls,
                fps = format!("{:.1}", s.fps()),
                "capture stats"
            );
        }
    }
}
