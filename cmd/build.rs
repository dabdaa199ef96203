//! Generates the etcd KV client the comparison benchmark uses (`proto/etcd_kv.proto`).
//!
//! Parsed with `protox` (pure Rust, no system `protoc`), as the `kvproto` crate does.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/etcd_kv.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;
    Ok(())
}
