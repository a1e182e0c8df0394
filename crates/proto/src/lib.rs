//! Generated types of `proto/pump/v1` (package `pump.v1`). Nothing hand-written but re-exports.

#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/pump.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every pump proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pump_descriptor.bin"));

pub use prost::Message;
pub use v1::*;
