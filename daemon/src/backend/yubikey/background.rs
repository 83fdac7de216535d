//! The YubiKey backend's background work besides the hot-plug thread: forgetting
//! PINs when their time is up, and logging those cards out so the card forgets
//! the verified PIN too.

use super::error::YubiKeyError;
use super::presence::Presence;
use crate::blocking;
use crate::shutdown::Stopping;
use std::time::Duration;

/// Drops expired PINs and logs those cards out, until `stopping` fires.
pub async fn expire_pins(presence: &Presence, mut stopping: Stopping) {
    let period =
        (presence.pins.ttl() / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = stopping.stopped() => return,
            _ = ticker.tick() => {}
        }
        for serial in presence.pins.expire() {
            tracing::info!(serial, "YubiKey PIN cache expired");
            if let Ok(device) = presence.device(serial) {
                let logged_out = blocking::run(move || {
                    device.log_out();
                    Ok::<_, YubiKeyError>(())
                })
                .await;
                if let Err(error) = logged_out {
                    tracing::warn!(serial, %error, "logging the card out");
                }
            }
        }
    }
}
