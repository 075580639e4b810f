//! Generated gRPC code for Vltava's APIs (`proto/` at the repository root is the source).
//!
//! Nothing here is written by hand except this module wiring.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// The public, versioned client API: `vltava.v1`.
pub mod v1 {
    tonic::include_proto!("vltava.v1");

    /// Encoded `FileDescriptorSet` of every `vltava.v1` file, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vltava_descriptor");
}
