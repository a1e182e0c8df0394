//! Capture: where frames come from, and the service that publishes them.
//!
//! - [`media`]: image and video files read frame by frame (used by `pump detect`).
//! - [`camera`]: the `Camera` trait, OpenCV cameras (files, URLs, V4L2) and a named fake.
//! - [`timeline`]: the time each frame carries (media clock or wall clock) and its segment.
//! - [`encode`]: a decoded picture to its wire frame, encoded once.
//! - [`run`]: the service — live cycles with stall watchdog and backoff, paced and realtime files.
//! - [`metrics`]: per-camera counters, connection state and fps.
//! - [`config`]: configuration, validated before connecting.

pub mod camera;
pub mod config;
pub mod encode;
pub mod error;
pub mod media;
pub mod metrics;
pub mod run;
pub mod timeline;

pub use config::Config;
pub use error::{Error, Result};
pub use media::{FrameInfo, MediaKind, MediaSource};
pub use run::{run, Service};
