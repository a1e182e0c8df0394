//! Gateway: where clients reach pump — a phone app, a wall display, a script — over gRPC.
//!
//! - [`store`]: what is read from the NATS streams (cameras, newest frames and poses, sets).
//! - [`live`]: what the gateway hears of every camera (rates, reps, sets); [`feeds`]: watched
//!   cameras' last frames, so a skeleton is drawn on its own frame.
//! - the faces, each on the store: `grpc` (`pump.v1.PoseQuery`), [`preview`] (the browser page,
//!   live MJPEG views, snapshot JPEGs) and `http` (the HTTP port: health, metrics, the preview).
//! - [`run`]: the wiring — the tonic server with the standard health service (SERVING once the
//!   streams are there) and reflection (v1, v1alpha), every task in one tracker.
//! - [`access`]: the bearer token (gRPC and the preview; health open) and TLS on both ports.
//!
//! Errors have one code each ([`error::ErrorCode`]) that gives both the gRPC code and the HTTP
//! status: a bad argument is INVALID_ARGUMENT / 400, an unknown camera NOT_FOUND / 404, the bus
//! unreachable UNAVAILABLE / 503.

pub mod access;
pub mod avi;
pub mod clips;
pub mod error;
pub mod feeds;
mod grpc;
mod http;
pub mod live;
pub mod preview;
pub mod run;
pub mod snapshot;
pub mod store;

pub use run::{run, Service};
