//! Configuration of the sets service: the settings every camera is counted with, and what one
//! camera changes of them.

use std::collections::BTreeMap;
use std::time::Duration;

use pump_bus::connect::BusConfig;
use pump_bus::streams::StreamLimits;
use pump_sets::{SetConfig, Zone};

#[derive(Debug, Clone)]
pub struct Config {
    pub bus: BusConfig,
    pub limits: StreamLimits,
    /// Settings of every camera, but for what `cameras` says of one.
    pub sets: SetConfig,
    /// Per-camera exercise and zone, over `sets`.
    pub cameras: BTreeMap<String, CameraSettings>,
    /// Durable consumer name on the poses stream.
    pub consumer: String,
    /// How often checkpoints are written (also after every set and at shutdown).
    pub checkpoint_interval: Duration,
    /// How long (camera time) a pose waits for older ones from slower replicas.
    pub reorder: Duration,
    /// The counting loop not turning for this long while it counts: `/healthz` says stuck
    /// (503), for a liveness probe to restart the service. It turns every checkpoint interval;
    /// with JetStream away each changed checkpoint may wait 5 s for its ack, hence the margin.
    pub stuck_after: Duration,
}

impl Config {
    pub fn new(bus: BusConfig) -> Self {
        Self {
            bus,
            limits: StreamLimits::default(),
            sets: SetConfig::default(),
            cameras: BTreeMap::new(),
            consumer: "pump-sets".into(),
            checkpoint_interval: Duration::from_secs(1),
            reorder: Duration::from_millis(500),
            stuck_after: Duration::from_secs(300),
        }
    }

    /// The settings `camera` is counted with.
    pub fn sets_for(&self, camera: &str) -> SetConfig {
        let mut cfg = self.sets.clone();
        if let Some(c) = self.cameras.get(camera) {
            if c.exercise.is_some() {
                cfg.exercise.clone_from(&c.exercise);
            }
            if c.zone.is_some() {
                cfg.zone = c.zone;
            }
        }
        cfg
    }
}

/// What one camera changes of the service's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraSettings {
    pub exercise: Option<String>,
    pub zone: Option<Zone>,
}
