//! The `tufkey` command-line tool: talks to tufkeyd over its socket.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tufkey: {error}");
            ExitCode::FAILURE
        }
    }
}
