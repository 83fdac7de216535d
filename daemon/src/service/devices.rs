//! `tufkey.v1.Devices`: list, watch, initialise and unlock YubiKeys; attest keys.
//!
//! PINs and PUKs are moved out of the requests into zeroising buffers at once and
//! never logged (the request types have a redacted Debug).

use super::convert::{key_to_proto, required_keyid};
use crate::backend::yubikey::{slot_name, DeviceEvent, InitSecrets, Pin, YubiKeyBackend};
use crate::error::{Error, Result};
use crate::keys::KeyManager;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tufkey_proto::v1 as pb;
use zeroize::Zeroizing;

/// Handlers for device RPCs.
pub struct DevicesService {
    keys: Arc<KeyManager>,
    /// The backend, or why YubiKey support is off.
    yubikeys: Result<Arc<YubiKeyBackend>, String>,
}

impl DevicesService {
    pub fn new(keys: Arc<KeyManager>, yubikeys: Result<Arc<YubiKeyBackend>, String>) -> Self {
        DevicesService { keys, yubikeys }
    }

    fn yubikeys(&self) -> Result<&Arc<YubiKeyBackend>> {
        self.yubikeys
            .as_ref()
            .map_err(|reason| Error::YubiKeyDisabled(reason.clone()))
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

#[tonic::async_trait]
impl pb::devices_server::Devices for DevicesService {
    #[tracing::instrument(skip_all)]
    async fn list_devices(
        &self,
        _request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let devices = self
            .yubikeys()?
            .list_devices()
            .await?
            .into_iter()
            .map(|device| pb::Device {
                serial: device.serial,
                firmware: device.firmware,
                reader: device.reader,
                pin_tries_left: device.pin_tries_left.into(),
                pin_cached: device.pin_cached,
                keys: device
                    .keys
                    .iter()
                    .map(|key| pb::DeviceKey {
                        slot: key.yubikey.map(|at| slot_name(at.slot)).unwrap_or_default(),
                        keyid: key.keyid.clone(),
                        gun: key.gun.to_string(),
                        role: key.role.to_string(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListDevicesResponse { devices }))
    }

    type WatchDevicesStream = ReceiverStream<Result<pb::DeviceEvent, Status>>;

    #[tracing::instrument(skip_all)]
    async fn watch_devices(
        &self,
        _request: Request<pb::WatchDevicesRequest>,
    ) -> Result<Response<Self::WatchDevicesStream>, Status> {
        let yubikeys = self.yubikeys()?;
        let mut events = yubikeys.subscribe();
        let present = yubikeys.present();
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            for (serial, reader) in present {
                let event = DeviceEvent {
                    inserted: true,
                    serial,
                    reader,
                };
                if sender
                    .send(Ok(event_to_proto(&event, pb::device_event::Kind::Present)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let kind = if event.inserted {
                    pb::device_event::Kind::Inserted
                } else {
                    pb::device_event::Kind::Removed
                };
                if sender.send(Ok(event_to_proto(&event, kind))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    #[tracing::instrument(skip_all, fields(serial = request.get_ref().serial))]
    async fn init_device(
        &self,
        request: Request<pb::InitDeviceRequest>,
    ) -> Result<Response<pb::InitDeviceResponse>, Status> {
        let mut request = request.into_inner();
        let serial = required_serial(request.serial)?;
        let secrets = InitSecrets {
            pin: take_secret(&mut request.pin),
            new_pin: optional_secret(&mut request.new_pin),
            puk: optional_secret(&mut request.puk),
            new_puk: optional_secret(&mut request.new_puk),
        };
        let report = self.yubikeys()?.init_device(serial, secrets).await?;
        Ok(Response::new(pb::InitDeviceResponse {
            serial,
            management_key_algorithm: report.management_key_algorithm.into(),
            management_key_storage: report.management_key_storage.into(),
            pin_changed: report.pin_changed,
            puk_changed: report.puk_changed,
        }))
    }

    #[tracing::instrument(skip_all, fields(serial = request.get_ref().serial))]
    async fn unlock_device(
        &self,
        request: Request<pb::UnlockDeviceRequest>,
    ) -> Result<Response<pb::UnlockDeviceResponse>, Status> {
        let mut request = request.into_inner();
        let serial = required_serial(request.serial)?;
        let pin = take_secret(&mut request.pin);
        let yubikeys = self.yubikeys()?;
        let tries = yubikeys.unlock(serial, pin, request.remember).await?;
        Ok(Response::new(pb::UnlockDeviceResponse {
            serial,
            pin_tries_left: tries.into(),
            cache_seconds: yubikeys.pin_cache_ttl().as_secs(),
            remembered: request.remember,
        }))
    }

    #[tracing::instrument(skip_all, fields(keyid = %request.get_ref().keyid))]
    async fn attest_key(
        &self,
        request: Request<pb::AttestKeyRequest>,
    ) -> Result<Response<pb::AttestKeyResponse>, Status> {
        let key = self.keys.get(required_keyid(&request.get_ref().keyid)?)?;
        let yubikeys = self.yubikeys()?;
        let attestation = yubikeys.attest(&key).await?;
        let described = key_to_proto(&self.keys, &key);
        Ok(Response::new(pb::AttestKeyResponse {
            keyid: described.keyid,
            serial: described.serial,
            slot: described.slot,
            chain: attestation.chain,
            root_subject: attestation.root_subject,
        }))
    }
}
