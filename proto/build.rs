//! Generates Rust code for every `.proto` file under `proto/`.
//!
//! The files are parsed with `protox` (pure Rust, so no system `protoc` is
//! needed) into a `FileDescriptorSet`, which `tonic-prost-build` turns into
//! prost messages plus tonic clients and servers in `OUT_DIR`.

use std::io;
use std::path::{Path, PathBuf};

const PROTO_DIR: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_DIR}");

    let files = proto_files(Path::new(PROTO_DIR))?;
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::compile(&files, [PROTO_DIR])?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // We print our own rerun-if-changed lines above.
        .emit_rerun_if_changed(false)
        // Shared, not copied, when decoded from a gRPC frame or a raft entry: a follower's
        // raft entries and an applied value are slices of the buffer they arrived in.
        .bytes(".raft_serverpb.RaftMessage.message")
        .bytes(".raft_cmdpb.PutRequest.value")
        .compile_fds(fds)?;
    Ok(())
}

/// All `*.proto` files directly inside `dir`, sorted for stable output.
fn proto_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
