//! Capture: where frames come from, and the service that publishes them.
//!
//! - [`media`]: image and video files read frame by frame (used by `pump detect`).
//! - [`camera`]: the `Camera` trait, OpenCV cameras (files, URLs, V4L2) and a named fake.
//! - [`timeline`]: the time each frame carries (media clock or wall clock) and its segment.
//! - [`encode`]: a decoded picture (or the camera's own JPEG) to its wire frame, encoded once.
//! - [`run`]: the service, wired: per camera a reader and a publisher, in a task tracker.
//!   - `reader`: the one read loop (open, read, stamp, encode, hand on, release) and its pacing.
//!   - `live`: live cameras: connection cycles, stall watchdog, [`backoff`].
//!   - `file`: files, replayed in real time or paced by their poses, then end of stream.
//!   - `publish`: frames onto the bus, newest-wins or paced.
//! - [`metrics`]: per-camera counters, connection state and fps.
//! - [`config`]: configuration, validated before connecting.

pub mod backoff;
pub mod camera;
pub mod config;
pub mod encode;
pub mod error;
mod file;
mod live;
pub mod media;
pub mod metrics;
mod publish;
mod reader;
pub mod run;
pub mod timeline;
pub mod tls;

pub use config::Config;
pub use error::{Error, Result};
pub use media::{FrameInfo, MediaKind, MediaSource};
pub use run::{run, Service};
