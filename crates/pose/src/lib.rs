//! Pose engine: YOLO11-pose through ONNX Runtime, giving the same answer as Ultralytics.
//!
//! - [`letterbox`]: images → model input (letterbox, BGR→RGB, /255, NCHW), OpenCV-exact resize.
//! - [`engine`]: finds ONNX Runtime, loads the model, picks the execution provider, runs.
//! - [`decode`]: model output → people (confidence filter, NMS, back to source pixels).
//! - [`types`]: `Pose`, `Keypoint`, `BBox`, the COCO-17 names and skeleton (crate `pump-types`).
//!
//! No tokio, NATS or OpenCV here: callers bring pixels in, get poses out.

#[cfg(feature = "clap")]
pub mod args;
pub mod decode;
pub mod engine;
mod error;
pub mod letterbox;
pub use pump_types as types;
#[cfg(feature = "proto")]
pub use pump_types::proto;

pub use decode::{DecodeConfig, OutputLayout};
pub use engine::{EngineConfig, PoseEngine, Provider, StageTimings};
pub use error::{Error, Result};
pub use letterbox::{ImageView, InputTensor, Letterbox, Preprocessor};
pub use types::{BBox, Keypoint, Pose, KEYPOINT_NAMES, NUM_KEYPOINTS, SKELETON};
