//! Inference service: the newest frame of each camera in, poses out.
//!
//! - [`slot`]: newest-frame-wins slots (size 1 per camera), round robin over cameras.
//! - [`predictor`]: the pose engine behind a trait, and a named fake with a set delay.
//! - [`run`]: the service, wired — intake, workers, publisher, shutdown in order; `intake`:
//!   frames in (subscribed in the queue group, and the kept ones at start; or, `--intake pull`,
//!   `pull`: asked for from the group's shared consumer while engines are free), checked,
//!   offered to the slots; `worker`: decode, predict, hand results back in frame order.
//! - [`metrics`]: per-camera counters (received, dropped by cause, inferred, failed, ages).
//! - [`config`]: configuration, validated before connecting.

pub mod config;
mod error;
mod intake;
pub mod metrics;
pub mod predictor;
mod pull;
pub mod run;
pub mod slot;
mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use metrics::InferStats;
pub use predictor::{Predictor, SlowPredictor, UnevenPredictor};
pub use run::{run, Service};
