//! The `kith-node` binary: flags in, [`kith_node::serve`] until SIGINT/SIGTERM.

use clap::Parser;

/// Kith reference node.
#[derive(Parser, Debug)]
#[command(name = "kith-node", version, about = "Kith reference node")]
struct Cli {
    #[command(flatten)]
    node: kith_node::NodeArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match kith_node::serve(cli.node).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kith-node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
