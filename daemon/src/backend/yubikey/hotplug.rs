//! Hot-plug: watches PC/SC reader states and reports cards inserted into and
//! removed from readers.
//!
//! [`Watcher::poll`] blocks in `SCardGetStatusChange` (with a timeout) and returns
//! what changed; [`spawn`] runs it on a dedicated thread until the server stops.
//! A card swapped between two polls is seen through the reader's event counter. If
//! pcscd goes away, every card counts as removed and the watcher reconnects.

use crate::shutdown::Stopping;
use pcsc::{Context, ReaderState, Scope, State};
use std::collections::HashMap;
use std::time::Duration;

/// A change in one reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderChange {
    /// A card is in the reader (inserted, or there when watching started).
    CardPresent(String),
    /// The reader's card is gone (or the reader itself).
    CardRemoved(String),
}

/// Tracks which readers hold a card.
pub struct Watcher {
    context: Option<Context>,
    states: Vec<ReaderState>,
    /// Reader name -> event counter when its card was last seen.
    cards: HashMap<String, u32>,
}

impl Watcher {
    /// Connects to pcscd; fails when pcscd is not reachable.
    pub fn connect() -> Result<Self, pcsc::Error> {
        Ok(Watcher {
            context: Some(Context::establish(Scope::User)?),
            states: vec![ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE)],
            cards: HashMap::new(),
        })
    }

    /// Waits up to `timeout` for a change and returns the changes.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ReaderChange>, pcsc::Error> {
        let context = match &self.context {
            Some(context) => context,
            None => self.context.insert(Context::establish(Scope::User)?),
        };
        let outcome = Self::refresh_readers(context, &mut self.states).and_then(|()| match context
            .get_status_change(timeout, &mut self.states)
        {
            Ok(()) | Err(pcsc::Error::Timeout) => Ok(()),
            Err(error) => Err(error),
        });
        if let Err(error) = outcome {
            // pcscd went away: every card is gone until it is back.
            self.context = None;
            self.states.truncate(1);
            let removed = self
                .cards
                .drain()
                .map(|(reader, _)| ReaderChange::CardRemoved(reader));
            let changes = removed.collect::<Vec<_>>();
            return if changes.is_empty() {
                Err(error)
            } else {
                Ok(changes)
            };
        }
        if let Some(pnp) = self.states.first_mut() {
            pnp.sync_current_state();
        }
        let mut changes = Vec::new();
        let mut seen = Vec::new();
        for state in self.states.iter_mut().skip(1) {
            state.sync_current_state();
            let reader = state.name().to_string_lossy().into_owned();
            let event = state.event_state();
            let present = event.contains(State::PRESENT) && !event.contains(State::MUTE);
            let count = state.event_count();
            match (self.cards.get(&reader).copied(), present) {
                (None, true) => changes.push(ReaderChange::CardPresent(reader.clone())),
                (Some(_), false) => changes.push(ReaderChange::CardRemoved(reader.clone())),
                (Some(before), true) if before != count => {
                    changes.push(ReaderChange::CardRemoved(reader.clone()));
                    changes.push(ReaderChange::CardPresent(reader.clone()));
                }
                _ => {}
            }
            if present {
                self.cards.insert(reader.clone(), count);
            } else {
                self.cards.remove(&reader);
            }
            seen.push(reader);
        }
        // Readers that disappeared take their cards with them.
        let vanished: Vec<String> = self
            .cards
            .keys()
            .filter(|r| !seen.contains(r))
            .cloned()
            .collect();
        for reader in vanished {
            self.cards.remove(&reader);
            changes.push(ReaderChange::CardRemoved(reader));
        }
        Ok(changes)
    }

    /// Keeps one state per current reader (after the PnP entry), new ones UNAWARE.
    fn refresh_readers(
        context: &Context,
        states: &mut Vec<ReaderState>,
    ) -> Result<(), pcsc::Error> {
        let names = match context.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(error) => return Err(error),
        };
        let pnp = states.remove(0);
        states.retain(|state| names.iter().any(|name| name.as_c_str() == state.name()));
        for name in names {
            if !states.iter().any(|state| state.name() == name.as_c_str()) {
                states.push(ReaderState::new(name, State::UNAWARE));
            }
        }
        states.insert(0, pnp);
        Ok(())
    }
}

/// Runs `watcher` on its own thread, handing every batch of changes to `handle`,
/// until `stopping` fires (seen within a second).
pub fn spawn(
    mut watcher: Watcher,
    stopping: Stopping,
    mut handle: impl FnMut(Vec<ReaderChange>) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("yubikey-hotplug".into())
        .spawn(move || {
            let mut warned = false;
            while !stopping.is_stopped() {
                let changes = match watcher.poll(Duration::from_secs(1)) {
                    Ok(changes) => {
                        warned = false;
                        changes
                    }
                    Err(error) => {
                        if !warned {
                            tracing::warn!(%error, "watching smart card readers failed; retrying every second");
                            warned = true;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                        Vec::new()
                    }
                };
                handle(changes);
            }
        })
}
