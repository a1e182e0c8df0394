//! Configuration of the inference service, validated before anything connects.

use std::time::Duration;

use pump_bus::connect::BusConfig;
use pump_bus::streams::StreamLimits;

use crate::error::{Error, Result};

/// Queue group shared by replicas: each frame goes to exactly one of them.
pub const DEFAULT_QUEUE_GROUP: &str = "pump-infer";

/// How the replicas of a group share the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Intake {
    /// A NATS queue group: each frame to one replica, chosen at random whatever its speed.
    #[default]
    Queue,
    /// A consumer on the frames stream shared by the group: a replica asks for frames when it
    /// has engines free, so replicas of unequal speed each infer what they can.
    Pull,
}

impl std::str::FromStr for Intake {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "queue" => Ok(Self::Queue),
            "pull" => Ok(Self::Pull),
            other => Err(format!("intake {other:?}: expected queue or pull")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bus: BusConfig,
    pub limits: StreamLimits,
    /// Up to this many waiting frames of different cameras go through one model run.
    pub batch: usize,
    /// A frame older than this when a worker would take it is dropped (not for paced frames).
    pub max_frame_age: Duration,
    pub queue_group: String,
    /// How the group's replicas share the frames; the queue group's name also names the pull
    /// consumer.
    pub intake: Intake,
    /// Frames wider or taller than this are refused as absurd.
    pub max_dimension: u32,
    /// How often the counters are logged.
    pub stats_interval: Duration,
    /// Each model run takes at least this long (zero: as long as it takes). Makes this machine
    /// as slow as a busy one, for tests and capacity planning.
    pub min_inference: Duration,
    /// Frames waiting and no model run finished for this long: `/healthz` says stuck (503), for
    /// a liveness probe to restart the service (a model hung in its runtime).
    pub stuck_after: Duration,
}

impl Config {
    pub fn new(bus: BusConfig) -> Self {
        Self {
            bus,
            limits: StreamLimits::default(),
            batch: 1,
            max_frame_age: Duration::from_millis(500),
            queue_group: DEFAULT_QUEUE_GROUP.into(),
            intake: Intake::Queue,
            max_dimension: pump_bus::frame::MAX_DIMENSION,
            stats_interval: Duration::from_secs(10),
            min_inference: Duration::ZERO,
            stuck_after: Duration::from_secs(60),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.batch > 64 {
            return Err(Error::Config(format!("batch {} must be within 1..=64", self.batch)));
        }
        if self.max_frame_age.is_zero() {
            return Err(Error::Config("max frame age must be above zero".into()));
        }
        if self.max_dimension == 0 {
            return Err(Error::Config("max dimension must be above zero".into()));
        }
        Ok(())
    }
}
