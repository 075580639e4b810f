//! Compiles `proto/` with protox (pure Rust, no `protoc` needed) and generates prost + tonic code.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "vltava/v1/common.proto",
        "vltava/v1/admin.proto",
        "vltava/v1/records.proto",
        "vltava/v1/groups.proto",
        "vltava/v1/controller.proto",
        "vltava/v1/replication.proto",
        "vltava/v1/gateway.proto",
        "vltava/v1/transactions.proto",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let fds = protox::compile(&paths, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Kept for gRPC server reflection.
    std::fs::write(out.join("vltava_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        // Record batches are carried as `bytes::Bytes` so they are never copied needlessly.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
