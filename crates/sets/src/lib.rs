//! Reps and sets from a stream of poses. Pure and streaming: frames go in one at a time, events
//! come out; no tokio, NATS or OpenCV (`cargo tree -p pump-sets` shows it).
//!
//! - [`reps`]: the rep counter on one joint angle (smoothing, amplitude hysteresis, refractory).
//! - [`people`]: everyone in view followed by box overlap; the zone; in place or walking.
//! - [`set`]: the athlete (whoever reps in place), idle → repping → closed after quiet seconds;
//!   `person`: one person's joint families, each on the side seen better; `events`: what the
//!   tracker says (the live count, [`ClosedSet`]s with their features).

mod events;
pub mod people;
mod person;
pub mod reps;
pub mod set;

pub use events::{ClosedSet, TrackerEvent, UNKNOWN_EXERCISE};
pub use people::{People, PersonId, Zone};
pub use reps::{Rep, RepConfig, RepCounter};
pub use set::{
    FrameInput, SetConfig, SetTracker, DEFAULT_MAX_SET_REPS, DEFAULT_MAX_SET_SECONDS, DEFAULT_MIN_POSE_RATE,
    MAX_TRUSTED_GAP_SECONDS, PENDING_MIN_CONFIDENCE, PENDING_MIN_REPS,
};
