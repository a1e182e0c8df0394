//! Sets service: `pump.poses.<camera>` in, live rep counts (`pump.reps.<camera>`) and closed
//! sets (`pump.sets.<camera>`) out.
//!
//! - [`run`]: the service — a durable consumer on the poses stream, one `SetTracker` per camera
//!   and segment of its timeline (a new capture run or connection closes the set in progress);
//!   per-camera exercise and zone; the pose rate watched against the floor for exact counts.
//! - [`camera`]: one camera's count and checkpoint, pure — the guarantee below, unit-tested.
//! - [`lease`]: one instance counts per bus; any other is a hot standby that takes over within
//!   3 s of the counting one's death; a lost consumer fails the service (never a silent exit 0).
//! - Never lost, never twice: sets go to a file-backed stream with the set id (deterministic:
//!   camera, segment, first frame, start time) as message id, and count as sent only on the server's ack.
//!   Per camera, the stream sequence of the earliest pose the tracker still needs is checkpointed
//!   (the last value per camera, in a small stream); a restarted service replays from there, rebuilds the set in progress, and a
//!   set it publishes again is deduplicated by the server.

pub mod config;
pub mod count;
pub mod error;
pub mod lease;
pub mod metrics;
pub mod run;

pub use config::{CameraSettings, Config};
pub use error::{Error, Result};
pub use metrics::{SetsCameraStats, SetsStats};
pub use run::{run, Service};
