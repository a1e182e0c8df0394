//! Counters of the capture stage, per camera: connection state, frames, failures, fps over
//! the last 60 frames.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

pub const FRAMES_CAPTURED: &str = "pump_frames_captured_total";
pub const CAMERA_CONNECTED: &str = "pump_camera_connected";
pub const CAMERA_RECONNECTS: &str = "pump_camera_reconnects_total";

const FPS_WINDOW: usize = 60;

#[derive(Debug, Clone, Default)]
pub struct CaptureCameraStats {
    pub connected: bool,
    pub captured: u64,
    pub published: u64,
    /// Frames replaced by a newer one before the publisher got to them.
    pub skipped: u64,
    pub open_failures: u64,
    pub read_failures: u64,
    pub stalls: u64,
    pub reconnects: u64,
    pub pace_timeouts: u64,
    /// A file source read to its end.
    pub ended: bool,
    frame_times: VecDeque<Instant>,
}

impl CaptureCameraStats {
    /// Frames per second over the last 60 frames.
    pub fn fps(&self) -> f64 {
        match (self.frame_times.front(), self.frame_times.back()) {
            (Some(a), Some(b)) if self.frame_times.len() > 1 && b > a => {
                (self.frame_times.len() - 1) as f64 / (*b - *a).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[derive(Debug, Default)]
pub struct CaptureStats {
    cameras: Mutex<BTreeMap<String, CaptureCameraStats>>,
}

impl CaptureStats {
    pub fn update(&self, camera: &str, f: impl FnOnce(&mut CaptureCameraStats)) {
        let mut map = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(camera.to_string()).or_default());
    }

    pub fn captured(&self, camera: &str) {
        self.update(camera, |s| {
            s.captured += 1;
            s.connected = true;
            if s.frame_times.len() == FPS_WINDOW {
                s.frame_times.pop_front();
            }
            s.frame_times.push_back(Instant::now());
        });
    }

    pub fn snapshot(&self) -> BTreeMap<String, CaptureCameraStats> {
        self.cameras.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
