//! Capture: where frames come from.
//!
//! - [`media`]: image and video files opened with OpenCV, read frame by frame with their own
//!   timestamps, failures reported as values.
//! - [`error`]: what can go wrong opening or reading a source.

pub mod error;
pub mod media;

pub use error::{Error, Result};
pub use media::{FrameInfo, MediaKind, MediaSource};
