//! Gateway: where clients reach pump — a phone app, a wall display, a script — over gRPC.
//!
//! - [`run`]: the tonic server — `pump.v1.PoseQuery` read from the NATS streams, the standard
//!   health service (SERVING once the streams are there), server reflection (v1 and v1alpha).
//!
//! - [`preview`]: the browser page with live MJPEG views and the snapshot JPEGs, on the HTTP port
//!   beside `/metrics`; [`book`]: what the gateway hears of every camera (rates, reps, sets).
//!
//! - [`access`]: the bearer token (gRPC and the preview; health open) and TLS on both ports.
//!
//! Errors map to gRPC codes in one place ([`run::status`]): a bad argument is INVALID_ARGUMENT,
//! an unknown camera NOT_FOUND, the bus unreachable UNAVAILABLE.

pub mod access;
pub mod book;
pub mod preview;
pub mod run;
pub mod snapshot;

pub use run::{run, Service};
