//! Following other replicas: one dedicated connection LISTENs on [`CHANNEL`], where
//! every key creation and deletion is announced (`pg_notify` inside its
//! transaction, so the notice comes exactly when the change is visible). The
//! connection is made again with a doubling back-off when the database restarts
//! or the network drops it; after each (re)connection everything is read again,
//! since notices sent while it was down are lost.

use super::connect::{Connector, Tls};
use crate::backend::software::storage::{ChangeSink, StoredChange};
use crate::shutdown::Stopping;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, NoTls, Socket};

/// The notification channel.
pub const CHANNEL: &str = "tufkey_keys";
/// Payload prefixes: `added KEYID`, `removed KEYID`.
pub const ADDED: &str = "added ";
pub const REMOVED: &str = "removed ";

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(10);

/// Reports every announced change to `changes` until `stopping` fires.
pub async fn follow(connector: &Connector, mut stopping: Stopping, changes: ChangeSink<'_>) {
    let mut retry = FIRST_RETRY;
    loop {
        let mut listening = stopping.clone();
        let listened = tokio::select! {
            () = stopping.stopped() => return,
            listened = listen(connector, &mut listening, changes, &mut retry) => listened,
        };
        match listened {
            Ok(()) => return,
            Err(error) => {
                let error = error.map_or_else(
                    || "closed by the server".to_owned(),
                    |error| error.to_string(),
                );
                tracing::warn!(store = %connector.store, %error, retry_ms = retry.as_millis(), "keystore database: lost the notification connection; reconnecting (keys already decrypted keep signing meanwhile)");
            }
        }
        tokio::select! {
            () = stopping.stopped() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One connection's life: LISTEN (the back-off starts over), catch up, then relay
/// notices until the connection ends (`Err`, with the driver's error if it gave
/// one) or `stopping` fires (`Ok`).
async fn listen(
    connector: &Connector,
    stopping: &mut Stopping,
    changes: ChangeSink<'_>,
    retry: &mut Duration,
) -> Result<(), Option<tokio_postgres::Error>> {
    let (client, mut notices) = match &connector.tls {
        Tls::None => connect(connector, NoTls).await?,
        Tls::Rustls(tls) => connect(connector, tls.clone()).await?,
    };
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    *retry = FIRST_RETRY;
    tracing::info!(store = %connector.store, "keystore database: following other replicas' key changes");
    changes(StoredChange::Unknown);
    loop {
        tokio::select! {
            () = stopping.stopped() => return Ok(()),
            notice = notices.recv() => match notice {
                Some(Ok(payload)) => {
                    if let Some(change) = parse(&payload) {
                        changes(change);
                    }
                }
                Some(Err(error)) => return Err(Some(error)),
                // The connection task ended without an error: the server closed it.
                None => return Err(None),
            },
        }
    }
}

/// Connects, and drives the connection on its own task, relaying notices.
async fn connect<T>(
    connector: &Connector,
    tls: T,
) -> Result<
    (
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<Result<String, tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = connector.settings.connect(tls).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(notice))) => {
                    if sender.send(Ok(notice.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    let _ = sender.send(Err(error));
                    return;
                }
                None => return,
            }
        }
    });
    Ok((client, receiver))
}

/// A notice's payload as a change; anything else is logged and ignored.
fn parse(payload: &str) -> Option<StoredChange> {
    if let Some(keyid) = payload.strip_prefix(ADDED) {
        return Some(StoredChange::Added(keyid.to_owned()));
    }
    if let Some(keyid) = payload.strip_prefix(REMOVED) {
        return Some(StoredChange::Removed(keyid.to_owned()));
    }
    tracing::warn!(payload, "ignoring an unknown notice on {CHANNEL}");
    None
}
