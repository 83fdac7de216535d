//! Homes for private keys, each implementing [`crate::keys::KeyBackend`], and the
//! one place the daemon's built-in backends are started and registered, each from
//! its own section of the configuration.

pub mod software;
pub mod yubikey;

use crate::config::Config;
use crate::error::Result;
use crate::keys::{Backends, YUBIKEY};

/// Starts the built-in backends: the software keystore (the default for new keys)
/// and, when pcscd is reachable and YubiKeys are not switched off, the YubiKeys.
pub async fn start(config: &Config) -> Result<Backends> {
    let mut backends = Backends::new();
    let software = match &config.postgres {
        None => software::SoftwareBackend::start(&config.software).await?,
        Some(postgres) => {
            software::SoftwareBackend::start_in_postgres(&config.software, postgres).await?
        }
    };
    backends.register(software)?;
    match &config.yubikey {
        None => {
            tracing::info!("YubiKey support off (--no-yubikey)");
            backends.switched_off(
                YUBIKEY,
                "YubiKey support is off: tufkeyd was started with --no-yubikey".into(),
            );
        }
        Some(yubikeys) => match yubikey::YubiKeyBackend::start(yubikeys).await {
            Ok(yubikeys) => backends.register(yubikeys)?,
            Err(reason) => {
                tracing::warn!(%reason, "YubiKey support off: start pcscd and restart tufkeyd to use YubiKeys");
                backends.switched_off(
                    YUBIKEY,
                    format!("YubiKey support is off: {reason}; start pcscd and restart tufkeyd"),
                );
            }
        },
    }
    Ok(backends)
}
