//! The `tufkeyd` binary: resolve the settings, harden the process, serve until signalled.
#![forbid(unsafe_code)]

mod hardening;
mod logging;

use std::process::ExitCode;
use tufkeyd::config::{Args, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(log_filter());
    // Before the runtime starts: the process has one thread, so changing the
    // environment is sound, and nothing secret has been read yet.
    hardening::protect_memory();
    let environment_passphrase = match hardening::take_environment_passphrase() {
        Ok(passphrase) => passphrase,
        Err(error) => return stopped(&error),
    };
    let postgres_password = match hardening::take_postgres_password() {
        Ok(password) => password,
        Err(error) => return stopped(&error),
    };
    // The socket systemd passed, if any (socket activation): taking it clears LISTEN_*.
    if let Err(error) = tufkeyd::transport::activation::adopt_from_environment() {
        return stopped(&error);
    }
    let result = Config::resolve(&args, |name| std::env::var_os(name)).and_then(|mut config| {
        config.software.environment_passphrase = environment_passphrase;
        if let Some(postgres) = &mut config.postgres {
            postgres.password = postgres_password;
        }
        tokio::runtime::Runtime::new()
            .map_err(|error| {
                tufkeyd::error::Error::Config(format!("starting the runtime: {error}"))
            })?
            .block_on(tufkeyd::server::run(config, tufkeyd::shutdown::signalled()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => stopped(&error),
    }
}

/// Log targets silenced whatever `RUST_LOG` says: the `yubikey` crate logs every
/// APDU at trace level, so PINs, PUKs, management keys and imported private keys
/// would reach the log. These two targets log nothing else of use.
const SECRET_LOGGING_TARGETS: [&str; 2] = ["yubikey::apdu", "yubikey::transaction"];

/// `RUST_LOG` (default `info`), with [`SECRET_LOGGING_TARGETS`] off. A directive
/// added later replaces one for the same target, so `RUST_LOG` cannot turn them on.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    silencing_directives().fold(filter, tracing_subscriber::EnvFilter::add_directive)
}

/// `TARGET=off` for each of [`SECRET_LOGGING_TARGETS`] (a test checks they all parse).
fn silencing_directives() -> impl Iterator<Item = tracing_subscriber::filter::Directive> {
    SECRET_LOGGING_TARGETS
        .iter()
        .filter_map(|target| format!("{target}=off").parse().ok())
}

fn stopped(error: &dyn std::error::Error) -> ExitCode {
    tracing::error!(%error, "tufkeyd stopped");
    eprintln!("tufkeyd: {error}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_logging_target_is_silenced() {
        assert_eq!(silencing_directives().count(), SECRET_LOGGING_TARGETS.len());
    }
}
