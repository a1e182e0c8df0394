//! The bus: everything pump knows about NATS, in one place.
//!
//! - [`subject`]: subject names (`pump.frames.<camera>`, `pump.poses.<camera>`), camera ids.
//! - [`connect`]: a client that retries until the server is there and logs its state changes.
//! - [`streams`]: the JetStream streams, created or updated idempotently.
//! - [`codec`]: protobuf payloads and the headers that carry frame id and capture time.
//! - [`json`]: the one JSON form of a set (`pump sets`, `--json`, the hook's `--url`, `/api/cameras`).
//! - [`auth`]: NATS credentials (file, NKey, user/password, token) and TLS, from flags.
//! - [`config`]: one TOML file for every service, under flags and variables.
//! - [`args`]: flags every service shares (`--nats-url`, `--log`).
//! - [`frame`]: what a frame must be before it is decoded (claimed size = its pixels).
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics` over HTTP, for every service.
//! - [`redact`]: passwords out of URLs in logs, errors and health.
//! - [`clock`]: wall-clock nanoseconds, the unit of every timestamp on the wire.

pub mod args;
pub mod auth;
pub mod clock;
pub mod codec;
pub mod config;
pub mod connect;
mod error;
pub mod frame;
pub mod json;
pub mod ops;
pub mod publish;
pub mod ratelog;
pub mod redact;
pub mod streams;
pub mod subject;

pub use error::{Error, Result};
