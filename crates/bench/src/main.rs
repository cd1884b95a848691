//! Entry point of the `thingport-bench` binary: parse the command line and
//! run one subcommand on a tokio runtime.

use clap::Parser;
use thingport_bench::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Pubsub(a) => thingport_bench::pubsub::run(a).await,
            Command::Connections(a) => thingport_bench::connections::run(a).await,
            Command::Handshake(a) => thingport_bench::handshake::run(a).await,
            Command::Report(a) => thingport_bench::report::run(a),
        }
    });
    // Idle connection tasks may still be winding down; do not wait for them.
    rt.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
