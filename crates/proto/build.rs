//! Generates the tonic server and client for `verdict.v1` into `OUT_DIR` with the vendored
//! protoc, so neither a system protoc nor committed generated code is needed.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let proto_root = PathBuf::from("../../proto");
    let proto_files = ["case_service.proto", "admin_service.proto"]
        .map(|file| proto_root.join("verdict/v1").join(file));

    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::CompactCodec")
        .file_descriptor_set_path(out_dir.join("verdict_descriptor.bin"))
        .compile_with_config(
            config,
            &proto_files,
            &[proto_root, protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
