//! Compiles `proto/pump/v1/*.proto` (messages and gRPC stubs) into `OUT_DIR` (needs `protoc`:
//! Debian's protobuf-compiler).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut protos: Vec<PathBuf> = std::fs::read_dir(root.join("pump/v1"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    protos.sort();
    // The folder too: a new .proto file must rebuild.
    println!("cargo:rerun-if-changed={}", root.join("pump/v1").display());
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("pump_descriptor.bin"))
        // Pixels travel as `Bytes`: shared, never copied between the encoder and the wire.
        .bytes(".")
        .compile_protos(&protos, &[root])?;
    Ok(())
}
