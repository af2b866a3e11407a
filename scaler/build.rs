//! Generates the gRPC code of KEDA's external scaler contract at build time, with the protoc
//! that protoc-bin-vendored ships: no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    println!("cargo:rerun-if-changed=proto/externalscaler.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &["proto/externalscaler.proto"], &["proto"])?;
    Ok(())
}
