//! Inference service: the newest frame of each camera in, poses out.
//!
//! - [`slot`]: newest-frame-wins slots (size 1 per camera), round robin over cameras.
//! - [`predictor`]: the pose engine behind a trait, and a named fake with a set delay.
//! - [`run`]: the service — subscribe, seed from kept frames, workers, publisher, shutdown.
//! - [`metrics`]: per-camera counters (received, dropped by cause, inferred, failed, ages).
//! - [`config`]: configuration, validated before connecting.

pub mod config;
mod error;
pub mod metrics;
pub mod predictor;
pub mod run;
pub mod slot;

pub use config::Config;
pub use error::{Error, Result};
pub use metrics::InferStats;
pub use predictor::{Predictor, SlowPredictor, UnevenPredictor};
pub use run::{run, Service};
