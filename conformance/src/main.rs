//! The `kith-conformance` binary: parses the command line and hands it to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kith_conformance::cli::main_with(kith_conformance::cli::Cli::parse()).await
}
