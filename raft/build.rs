//! Compiles the Raft gRPC service definition with a vendored `protoc`, so a fresh machine
//! needs no system protobuf compiler.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_build::compile_protos("proto/raft.proto")?;
    Ok(())
}
