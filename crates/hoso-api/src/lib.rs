//! `hoso-api`: the `hoso.v1` gRPC API, generated from `proto/` at build time, and the conversions
//! between its messages and the domain's types.
//!
//! **What it is.** [`pb`] holds the prost messages and the tonic clients and servers of every
//! service (desk commands, dossier queries, audit, admin); [`FILE_DESCRIPTOR_SET`] is the encoded
//! schema that server reflection serves; [`convert`] turns requests into domain commands (every
//! missing or malformed field named, in the proto's field path) and domain state into messages;
//! [`json`] writes messages in the protobuf JSON mapping; [`import_line`] reads a line of the
//! import format.
//!
//! **What it is not.** No rules (the domain decides whether a command is allowed), no storage, no
//! server wiring, no authorization. It is the only crate that knows protobuf: domain types never
//! derive `Message`.

pub mod codec;
pub mod convert;
pub mod import_line;
pub mod json;

/// The generated messages, clients and servers of package `hoso.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("hoso.v1");
}

/// The encoded `FileDescriptorSet` of every file in `proto/` (with the well-known types they
/// import), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hoso_descriptor.bin"));

#[cfg(test)]
mod tests;
