//! The `tufkeyd` binary: resolve the settings, harden the process, serve until signalled.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use tufkeyd::config::{Args, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    disable_core_dumps();
    let result = Config::resolve(&args, |name| std::env::var_os(name)).and_then(|config| {
        tokio::runtime::Runtime::new()
            .map_err(|error| {
                tufkeyd::error::Error::Config(format!("starting the runtime: {error}"))
            })?
            .block_on(tufkeyd::server::run(config, tufkeyd::shutdown::signalled()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "tufkeyd stopped");
            eprintln!("tufkeyd: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Decrypted keys must never land in a core file.
fn disable_core_dumps() {
    if let Err(error) =
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
    {
        tracing::warn!(%error, "could not disable core dumps");
    }
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%error, "could not mark the process non-dumpable");
    }
}
