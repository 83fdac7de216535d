//! `tufkey.v1.Devices`: list, watch, initialise and unlock devices; attest keys.
//! Served by whichever backend has the `Devices` capability (YubiKeys today).
//!
//! PINs and PUKs are moved out of the requests into zeroising buffers at once and
//! never logged (the request types have a redacted Debug).

use super::convert::{required_keyid, yubikey_to_proto};
use super::guard::{Call, Guard, Rpc};
use crate::access::Permission;
use crate::error::{Error, Result};
use crate::keys::{DeviceEvent, InitSecrets, KeyManager, Pin};
use crate::shutdown::Stopping;
use std::pin::Pin as Pinned;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;
use zeroize::Zeroizing;

/// Handlers for device RPCs.
pub struct DevicesService {
    keys: Arc<KeyManager>,
    guard: Arc<Guard>,
    /// Ends open watch streams at shutdown.
    stopping: Stopping,
}

impl DevicesService {
    pub fn new(keys: Arc<KeyManager>, guard: Arc<Guard>, stopping: Stopping) -> Self {
        DevicesService {
            keys,
            guard,
            stopping,
        }
    }
}

/// Moves a secret out of a request field into zeroising memory.
fn take_secret(field: &mut String) -> Pin {
    Zeroizing::new(std::mem::take(field).into_bytes())
}

fn optional_secret(field: &mut String) -> Option<Pin> {
    (!field.is_empty()).then(|| take_secret(field))
}

fn required_serial(serial: u32) -> Result<u32> {
    if serial == 0 {
        Err(Error::invalid(
            "serial",
            "name the YubiKey by its serial (see `tufkey device list`)",
        ))
    } else {
        Ok(serial)
    }
}

fn event_to_proto(event: &DeviceEvent, kind: pb::device_event::Kind) -> pb::DeviceEvent {
    pb::DeviceEvent {
        kind: kind as i32,
        serial: event.serial,
        reader: event.reader.clone(),
    }
}

/// A watch stream's items, with the end marker merged in from the stop signal.
enum Watched {
    Event(pb::DeviceEvent),
    Shutdown,
}

impl DevicesService {
    async fn list(&self, call: &mut Call) -> Result<pb::ListDevicesResponse> {
        self.guard.check(call, Permission::DevicesAdmin, None)?;
        let devices = self
            .keys
            .devices()?
            .list()
            .await?
            .into_iter()
            .map(|device| pb::Device {
                serial: device.serial,
                firmware: device.firmware,
                reader: device.reader,
                pin_tries_left: device.pin_tries_left.into(),
                pin_cached: device.pin_cached,
                default_management_key: device.default_management_key,
                keys: device
                    .keys
                    .iter()
                    .map(|key| pb::DeviceKey {
                        slot: key
                            .location
                            .yubikey()
                            .map(|at| at.slot.to_string())
                            .unwrap_or_default(),
                        keyid: key.keyid.clone(),
                        gun: key.gun.to_string(),
                        role: key.role.to_string(),
                    })
                    .collect(),
            })
            .collect();
        Ok(pb::ListDevicesResponse { devices })
    }

    /// A stream that lives exactly as long as the client reads it (or until
    /// shutdown): no task is left behind.
    fn watch(&self, call: &mut Call) -> Result<WatchStream> {
        self.guard.check(call, Permission::DevicesAdmin, None)?;
        let devices = self.keys.devices()?;
        let live = BroadcastStream::new(devices.subscribe());
        let present: Vec<Watched> = devices
            .present()
            .into_iter()
            .map(|(serial, reader)| {
                let event = DeviceEvent {
                    inserted: true,
                    serial,
                    reader,
                };
                Watched::Event(event_to_proto(&event, pb::device_event::Kind::Present))
            })
            .collect();
        // A lagging reader skips what it missed rather than failing the stream.
        let live = live.filter_map(|event| {
            let event = event.ok()?;
            let kind = if event.inserted {
                pb::device_event::Kind::Inserted
            } else {
                pb::device_event::Kind::Removed
            };
            Some(Watched::Event(event_to_proto(&event, kind)))
        });
        let shutdown = self
            .stopping
            .clone()
            .into_stream()
            .map(|()| Watched::Shutdown);
        let stream = tokio_stream::iter(present)
            .chain(live.merge(shutdown))
            .map_while(|watched| match watched {
                Watched::Event(event) => Some(Ok(event)),
                Watched::Shutdown => None,
            });
        Ok(Box::pin(stream))
    }

    async fn init(
        &self,
        call: &mut Call,
        mut request: pb::InitDeviceRequest,
    ) -> Result<pb::InitDeviceResponse> {
        let secrets = InitSecrets {
            pin: take_secret(&mut request.pin),
            new_pin: optional_secret(&mut request.new_pin),
            puk: optional_secret(&mut request.puk),
            new_puk: optional_secret(&mut request.new_puk),
        };
        call.serial(request.serial);
        self.guard.check(call, Permission::DevicesAdmin, None)?;
        let serial = required_serial(request.serial)?;
        let report = self.keys.devices()?.init(serial, secrets).await?;
        Ok(pb::InitDeviceResponse {
            serial,
            management_key_algorithm: report.management_key_algorithm.into(),
            management_key_storage: report.management_key_storage.into(),
            pin_changed: report.pin_changed,
            puk_changed: report.puk_changed,
        })
    }

    async fn unlock(
        &self,
        call: &mut Call,
        mut request: pb::UnlockDeviceRequest,
    ) -> Result<pb::UnlockDeviceResponse> {
        let pin = take_secret(&mut request.pin);
        call.serial(request.serial);
        self.guard.check(call, Permission::DevicesAdmin, None)?;
        let serial = required_serial(request.serial)?;
        let unlocked = self
            .keys
            .devices()?
            .unlock(serial, pin, request.remember, request.force)
            .await?;
        Ok(pb::UnlockDeviceResponse {
            serial,
            pin_tries_left: unlocked.tries_left.into(),
            cache_seconds: unlocked.cache_seconds,
            remembered: request.remember,
        })
    }

    async fn attest(
        &self,
        call: &mut Call,
        request: &pb::AttestKeyRequest,
    ) -> Result<pb::AttestKeyResponse> {
        let key = self.keys.get(required_keyid(&request.keyid)?).await?;
        self.guard
            .check(call, Permission::DevicesAdmin, Some(&key))?;
        let devices = self.keys.devices()?;
        let attestation = devices.attest(&key).await?;
        let at = key
            .location
            .yubikey()
            .map(yubikey_to_proto)
            .unwrap_or_default();
        Ok(pb::AttestKeyResponse {
            keyid: key.keyid.clone(),
            serial: at.serial,
            slot: at.slot,
            chain: attestation.chain,
            root_subject: attestation.root_subject,
        })
    }
}

type WatchStream = Pinned<Box<dyn Stream<Item = Result<pb::DeviceEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::devices_server::Devices for DevicesService {
    #[tracing::instrument(skip_all)]
    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::ListDevices)?;
        let result = self.list(&mut call).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    type WatchDevicesStream = WatchStream;

    #[tracing::instrument(skip_all)]
    async fn watch_devices(
        &self,
        request: Request<pb::WatchDevicesRequest>,
    ) -> Result<Response<Self::WatchDevicesStream>, Status> {
        let mut call = self.guard.begin(&request, Rpc::WatchDevices)?;
        let result = self.watch(&mut call);
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(serial = request.get_ref().serial))]
    async fn init_device(
        &self,
        request: Request<pb::InitDeviceRequest>,
    ) -> Result<Response<pb::InitDeviceResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::InitDevice)?;
        let result = self.init(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(serial = request.get_ref().serial))]
    async fn unlock_device(
        &self,
        request: Request<pb::UnlockDeviceRequest>,
    ) -> Result<Response<pb::UnlockDeviceResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::UnlockDevice)?;
        let result = self.unlock(&mut call, request.into_inner()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid))]
    async fn attest_key(
        &self,
        request: Request<pb::AttestKeyRequest>,
    ) -> Result<Response<pb::AttestKeyResponse>, Status> {
        let mut call = self.guard.begin(&request, Rpc::AttestKey)?;
        let result = self.attest(&mut call, request.get_ref()).await;
        self.guard.finish(call, result).await.map(Response::new)
    }
}
