//! `flowforge-scaler`: the KEDA external scaler and autoscaling tools. Only the crate skeleton
//! exists so far; the scaler itself is built in its own issue (brief section 7).
#![forbid(unsafe_code)]

use clap::Parser;

/// KEDA external scaler for FlowForge workers (not built yet: only `--help` and `--version`).
#[derive(Parser)]
#[command(name = "flowforge-scaler", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("flowforge-scaler: the scaler is not part of this build yet");
    std::process::exit(1);
}
