//! Reps and sets from a stream of poses. Pure and streaming: frames go in one at a time, events
//! come out; no tokio, NATS or OpenCV (`cargo tree -p pump-sets` shows it).
//!
//! - [`reps`]: the rep counter on one joint angle (smoothing, amplitude hysteresis, refractory).
//! - [`people`]: everyone in view followed by box overlap; the zone; in place or walking.
//! - [`set`]: the athlete (whoever reps in place), idle → repping → closed after quiet seconds;
//!   set events with features.

pub mod people;
pub mod reps;
pub mod set;

pub use people::{People, PersonId, Zone};
pub use reps::{Rep, RepConfig, RepCounter};
pub use set::{
    FrameInput, SetConfig, SetEvent, SetTracker, TrackerEvent, DEFAULT_MIN_POSE_RATE, MAX_TRUSTED_GAP_SECONDS,
};
