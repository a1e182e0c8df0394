//! Reps and sets from a stream of poses. Pure and streaming: frames go in one at a time, events
//! come out; no tokio, NATS or OpenCV (`cargo tree -p pump-sets` shows it).
//!
//! - [`reps`]: the rep counter on one joint angle (smoothing, amplitude hysteresis, refractory).
//! - [`athlete`]: which person is the athlete, kept across frames by an IoU track.
//! - [`set`]: idle → repping → closed after quiet seconds; set events with features.

pub mod athlete;
pub mod reps;
pub mod set;

pub use athlete::AthleteTracker;
pub use reps::{Rep, RepConfig, RepCounter};
pub use set::{FrameInput, SetConfig, SetEvent, SetTracker, TrackerEvent};
