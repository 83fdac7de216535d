//! The PIV application (piv-authenticator on the trussed virt platform) runs
//! on its own thread. A "reset" tears the application and the trussed
//! service down and brings them up again on the same storage, which drops
//! all volatile state (PIN verified, management key authenticated) exactly
//! like a power cycle of a real card.

use std::{
    path::PathBuf,
    sync::mpsc::{self, Receiver, Sender},
    thread,
};

use piv_authenticator::{Authenticator, Options};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use trussed::{
    pipe::TrussedChannel,
    virt::{Runner, Store, StoreConfig, UserInterface},
    ClientImplementation,
};

use crate::dispatch::{Dispatch, BACKENDS};
use crate::import::Injection;

/// Largest response the application may produce (certificates are < 3 KiB).
const REPLY_CAP: usize = 8192;

pub enum Msg {
    /// A complete (already de-chained) command APDU; the answer is
    /// (response data, status word).
    Apdu(Vec<u8>, Sender<(Vec<u8>, u16)>),
    /// Power cycle: restart the application with the same storage.
    Reset,
}

struct CardPlatform<'a> {
    rng: ChaCha8Rng,
    store: Store<'a>,
    ui: UserInterface,
}

impl<'a> trussed::platform::Platform for CardPlatform<'a> {
    type R = ChaCha8Rng;
    type S = Store<'a>;
    type UI = UserInterface;

    fn user_interface(&mut self) -> &mut UserInterface {
        &mut self.ui
    }
    fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
    fn store(&self) -> Store<'a> {
        self.store
    }
}

/// Start the card thread. `state_file`: persistent storage, or RAM if None.
/// `injection`: imported P-256 scalars the next key generation takes instead.
pub fn spawn(state_file: Option<PathBuf>, injection: Injection) -> std::io::Result<Sender<Msg>> {
    let (tx, rx) = mpsc::channel();
    let (init_tx, init_rx) = mpsc::channel();
    thread::Builder::new()
        .name("piv-card".into())
        .spawn(move || {
            // The store is not Send, so it is opened on the card thread.
            let cfg = match &state_file {
                Some(path) => crate::store::file(path),
                None => Ok(crate::store::ram()),
            };
            match cfg {
                Ok(cfg) => {
                    let _ = init_tx.send(Ok(()));
                    card_thread(cfg, rx, injection)
                }
                Err(e) => {
                    let _ = init_tx.send(Err(e));
                }
            }
        })?;
    init_rx
        .recv()
        .map_err(|_| std::io::Error::other("card thread died"))??;
    Ok(tx)
}

fn card_thread(mut cfg: StoreConfig<'static>, rx: Receiver<Msg>, injection: Injection) {
    let mut boots = 0u64;
    loop {
        boots += 1;
        log::debug!("card power-up #{boots}");
        let stop = cfg.with_store(|store| {
            let platform = CardPlatform {
                // Real entropy: the stock virt platform uses a fixed seed,
                // which would give two cards the same keys.
                rng: ChaCha8Rng::from_entropy(),
                store,
                ui: UserInterface::new(),
            };
            let channel = TrussedChannel::new();
            let mut runner = Runner::new();
            let (requester, responder) = channel.split().expect("split trussed channel");
            runner.add_endpoint(responder, "piv", BACKENDS);
            let client: ClientImplementation<'_, _, Dispatch> =
                ClientImplementation::new(requester, runner.syscall(), None);
            runner.run(platform, Dispatch::new(injection.clone()), || {
                let mut app = Authenticator::new(client, Options::default());
                serve(&mut app, &rx)
            })
        });
        // Never format persistent filesystems again (volatile is RAM and
        // is re-formatted on every power-up, as it should be).
        cfg.internal.format = false;
        cfg.external.format = false;
        if stop {
            return;
        }
    }
}

/// Serve APDUs until a reset (returns false) or until the sender is gone (true).
fn serve<T: piv_authenticator::Client>(app: &mut Authenticator<T>, rx: &Receiver<Msg>) -> bool {
    loop {
        match rx.recv() {
            Ok(Msg::Apdu(apdu, answer)) => {
                let result = match iso7816::command::CommandView::try_from(apdu.as_slice()) {
                    Ok(view) => {
                        let mut reply = heapless::Vec::<u8, REPLY_CAP>::new();
                        let sw = match app.respond(view, reply.as_mut_view()) {
                            Ok(()) => 0x9000,
                            Err(status) => u16::from(status),
                        };
                        (reply.to_vec(), sw)
                    }
                    Err(e) => {
                        log::warn!("unparsable APDU {apdu:02x?}: {e:?}");
                        (Vec::new(), 0x6700)
                    }
                };
                let _ = answer.send(result);
            }
            Ok(Msg::Reset) => return false,
            Err(_) => return true,
        }
    }
}
