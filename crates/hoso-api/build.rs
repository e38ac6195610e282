//! Compiles `proto/hoso/v1/*.proto` with protox (a protobuf compiler in Rust, so no system
//! `protoc` is needed), generates the prost messages and tonic services, and writes the encoded
//! file descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "hoso/v1/dossier.proto",
    "hoso/v1/desk.proto",
    "hoso/v1/audit.proto",
    "hoso/v1/admin.proto",
    "hoso/v1/reports.proto",
    "hoso/v1/reference.proto",
    "hoso/v1/feed.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let fds = protox::compile(FILES, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("hoso_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are INVALID_ARGUMENT, not prost's INTERNAL (src/codec.rs).
        .codec_path("crate::codec::HosoCodec")
        .compile_fds(fds)?;
    Ok(())
}
