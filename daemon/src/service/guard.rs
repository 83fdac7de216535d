//! [`Guard`]: the one gate every handler goes through. It names the caller (the
//! [`Caller`] the transport attached to the request), asks the [`Authorize`]
//! policy, and writes the audit record of the call before the handler's reply
//! leaves; if that record cannot be written, the reply is withheld and the call
//! fails (fail closed).
//!
//! A handler is three lines around its work:
//!
//! ```text
//! let mut call = self.guard.begin(&request, Rpc::SignRaw)?;
//! let result = self.serve_sign_raw(&mut call, request.into_inner()).await; // calls guard.check
//! self.guard.finish(call, result).await.map(Response::new)
//! ```
//!
//! Calls that change or use keys, the lock state or devices are always recorded
//! ([`Rpc::audited`]); read-only calls only when the policy refuses them.

use crate::access::{Authorize, Caller, Permission};
use crate::audit::{AuditKey, AuditLog, Expected, Record};
use crate::error::{Error, Result};
use crate::keys::{KeyManager, KeyRecord};
use crate::tuf::metadata::MetadataSummary;
use std::sync::Arc;
use tonic::{Request, Status};

/// Every guarded RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    GenerateKey,
    ListKeys,
    GetKey,
    DeleteKey,
    SignRaw,
    SignMetadata,
    Unlock,
    Lock,
    Status,
    ListDevices,
    WatchDevices,
    InitDevice,
    UnlockDevice,
    AttestKey,
    NotaryCreateKey,
    NotaryDeleteKey,
    NotaryGetKeyInfo,
    NotarySign,
    AuditVerify,
    AuditTail,
    PolicyCheck,
    Backup,
    Restore,
    ImportNotaryKeys,
    ExportNotaryKeys,
    MoveToYubiKey,
    ReceiveTransfer,
    AcceptTransfer,
}

impl Rpc {
    /// The gRPC method, as the audit log names it.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::GenerateKey => "tufkey.v1.Keys/GenerateKey",
            Rpc::ListKeys => "tufkey.v1.Keys/ListKeys",
            Rpc::GetKey => "tufkey.v1.Keys/GetKey",
            Rpc::DeleteKey => "tufkey.v1.Keys/DeleteKey",
            Rpc::SignRaw => "tufkey.v1.Signing/SignRaw",
            Rpc::SignMetadata => "tufkey.v1.Signing/SignMetadata",
            Rpc::Unlock => "tufkey.v1.Session/Unlock",
            Rpc::Lock => "tufkey.v1.Session/Lock",
            Rpc::Status => "tufkey.v1.Session/Status",
            Rpc::ListDevices => "tufkey.v1.Devices/ListDevices",
            Rpc::WatchDevices => "tufkey.v1.Devices/WatchDevices",
            Rpc::InitDevice => "tufkey.v1.Devices/InitDevice",
            Rpc::UnlockDevice => "tufkey.v1.Devices/UnlockDevice",
            Rpc::AttestKey => "tufkey.v1.Devices/AttestKey",
            Rpc::NotaryCreateKey => "proto.KeyManagement/CreateKey",
            Rpc::NotaryDeleteKey => "proto.KeyManagement/DeleteKey",
            Rpc::NotaryGetKeyInfo => "proto.KeyManagement/GetKeyInfo",
            Rpc::NotarySign => "proto.Signer/Sign",
            Rpc::AuditVerify => "tufkey.v1.Audit/Verify",
            Rpc::AuditTail => "tufkey.v1.Audit/Tail",
            Rpc::PolicyCheck => "tufkey.v1.Policy/Check",
            Rpc::Backup => "tufkey.v1.Migration/Backup",
            Rpc::Restore => "tufkey.v1.Migration/Restore",
            Rpc::ImportNotaryKeys => "tufkey.v1.Migration/ImportNotaryKeys",
            Rpc::ExportNotaryKeys => "tufkey.v1.Migration/ExportNotaryKeys",
            Rpc::MoveToYubiKey => "tufkey.v1.Migration/MoveToYubiKey",
            Rpc::ReceiveTransfer => "tufkey.v1.Migration/ReceiveTransfer",
            Rpc::AcceptTransfer => "tufkey.v1.Migration/AcceptTransfer",
        }
    }

    /// Whether every call is recorded, whatever its outcome (else only refusals).
    pub fn audited(self) -> bool {
        matches!(
            self,
            Rpc::GenerateKey
                | Rpc::DeleteKey
                | Rpc::SignRaw
                | Rpc::SignMetadata
                | Rpc::Unlock
                | Rpc::Lock
                | Rpc::InitDevice
                | Rpc::UnlockDevice
                | Rpc::NotaryCreateKey
                | Rpc::NotaryDeleteKey
                | Rpc::NotarySign
                | Rpc::Backup
                | Rpc::Restore
                | Rpc::ImportNotaryKeys
                | Rpc::ExportNotaryKeys
                | Rpc::MoveToYubiKey
                | Rpc::ReceiveTransfer
                | Rpc::AcceptTransfer
        )
    }
}

/// One call in progress: who asked, and what its audit record will say.
pub struct Call {
    rpc: Rpc,
    caller: Caller,
    /// The record's fields other than the key (and the chain, which the log adds).
    record: Record,
    /// The keys it touched; one record each (one without a key if none).
    keys: Vec<Arc<KeyRecord>>,
    denied: bool,
    /// For a call that is always recorded: its announcement to the log.
    announced: Option<Expected>,
}

impl Call {
    /// Who is calling.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The collection and role a key is being created for.
    pub fn names(&mut self, gun: &str, role: &str) {
        self.record.gun = Some(gun.to_owned());
        self.record.role = Some(role.to_owned());
    }

    /// A key the call uses (each key once).
    pub fn key(&mut self, key: &Arc<KeyRecord>) {
        if !self.keys.iter().any(|seen| seen.keyid == key.keyid) {
            self.keys.push(key.clone());
        }
    }

    /// The SHA-256 of what is signed.
    pub fn payload(&mut self, digest: &[u8; 32]) {
        self.record.payload_sha256 = Some(hex::encode(digest));
    }

    /// The signed metadata document's `_type`, `version` and `expires`.
    pub fn metadata(&mut self, summary: &MetadataSummary) {
        self.record.metadata_type = summary.metadata_type.clone();
        self.record.version = summary.version;
        self.record.expires = summary.expires.clone();
    }

    /// The device the call is about.
    pub fn serial(&mut self, serial: u32) {
        self.record.serial = Some(serial);
    }

    /// The finished call's records.
    fn into_records<T>(self, result: &Result<T>) -> Vec<Record> {
        let mut template = self.record;
        template.set_result(result);
        if self.keys.is_empty() {
            return vec![template];
        }
        self.keys
            .iter()
            .map(|key| Record {
                keyid: Some(key.keyid.clone()),
                gun: Some(key.gun.to_string()),
                role: Some(key.role.to_string()),
                ..template.clone()
            })
            .collect()
    }
}

/// Identification, authorization and the audit record, for every handler.
pub struct Guard {
    authorize: Arc<dyn Authorize>,
    audit: Arc<AuditLog>,
    keys: Arc<KeyManager>,
}

impl Guard {
    /// A guard deciding with `authorize`, recording in `audit`, with the audit key
    /// from `keys`' passphrase-protected backend.
    pub fn new(authorize: Arc<dyn Authorize>, audit: Arc<AuditLog>, keys: Arc<KeyManager>) -> Self {
        Guard {
            authorize,
            audit,
            keys,
        }
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// The audit log's key, once the keystore has been unlocked.
    pub fn audit_key(&self) -> Result<AuditKey> {
        self.keys
            .unlocker()
            .ok()
            .and_then(|unlocker| unlocker.audit_key())
            .ok_or(Error::AuditLocked)
    }

    /// Starts a call: names the caller (refusing a request that carries none) and,
    /// for a call that must be recorded, makes sure it can be before anything is done.
    pub fn begin<T>(&self, request: &Request<T>, rpc: Rpc) -> Result<Call, Status> {
        let Some(caller) = request.extensions().get::<Caller>().cloned() else {
            tracing::error!(
                rpc = rpc.path(),
                "a request reached a handler without a caller identity"
            );
            return Err(Error::PeerUnknown(
                "the request carries no identity (the transport did not attach one)".into(),
            )
            .into());
        };
        // Unlock is what makes the key available; everything else audited needs it first.
        if rpc.audited() && rpc != Rpc::Unlock {
            self.audit_key()?;
        }
        let caller_json = serde_json::to_value(&caller)
            .unwrap_or_else(|_| serde_json::json!({ "debug": format!("{caller:?}") }));
        Ok(Call {
            rpc,
            record: Record {
                caller: caller_json,
                rpc: rpc.path().into(),
                ..Record::default()
            },
            caller,
            keys: Vec::new(),
            denied: false,
            announced: rpc.audited().then(|| self.audit.expect()),
        })
    }

    /// Asks the policy whether the caller may do `permission` (to `key`). A refusal
    /// is recorded when the call finishes.
    pub fn check(
        &self,
        call: &mut Call,
        permission: Permission,
        key: Option<&Arc<KeyRecord>>,
    ) -> Result<()> {
        if let Some(key) = key {
            call.key(key);
        }
        let decision = self
            .authorize
            .authorize(&call.caller, permission, key.map(AsRef::as_ref));
        call.denied = decision.is_err();
        decision
    }

    /// Records the call (when it must be) and only then lets its result out. A
    /// success whose record cannot be written becomes that error: nothing is
    /// returned unrecorded.
    pub async fn finish<R>(&self, mut call: Call, result: Result<R>) -> Result<R, Status> {
        if !call.rpc.audited() && !call.denied {
            return result.map_err(Status::from);
        }
        let rpc = call.rpc;
        let announced = call.announced.take().unwrap_or_else(|| self.audit.expect());
        let records = call.into_records(&result);
        let written = match self.audit_key() {
            Ok(key) => self.audit.write(records, key, announced).await,
            Err(error) => Err(error),
        };
        match (written, result) {
            (Ok(()), result) => result.map_err(Status::from),
            (Err(audit_error), Ok(_)) => Err(audit_error.into()),
            // The call failed anyway: its own error says more than the log's.
            (Err(audit_error), Err(error)) => {
                tracing::error!(rpc = rpc.path(), %audit_error, %error, "a failed call could not be recorded");
                Err(error.into())
            }
        }
    }
}

/// A guard for handler unit tests: allows everything, records into a temporary
/// log, and names every caller uid 1000.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::audit::AuditConfig;
    use crate::shutdown::StopSignal;

    /// Allows every caller everything.
    pub struct AllowAll;

    impl Authorize for AllowAll {
        fn authorize(&self, _: &Caller, _: Permission, _: Option<&KeyRecord>) -> Result<()> {
            Ok(())
        }
    }

    /// A guard and what keeps its log running.
    pub struct Guarded {
        pub guard: Arc<Guard>,
        pub dir: tempfile::TempDir,
        _stop: StopSignal,
    }

    /// A guard over `keys` (whose backend must provide an audit key).
    pub async fn guard(keys: Arc<KeyManager>) -> Guarded {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            path: dir.path().join("audit.log"),
            max_bytes: 1 << 20,
        };
        let (audit, committer) = AuditLog::open(&config).await.unwrap();
        let stop = StopSignal::new();
        tokio::spawn(committer.run(stop.subscribe()));
        Guarded {
            guard: Arc::new(Guard::new(Arc::new(AllowAll), audit, keys)),
            dir,
            _stop: stop,
        }
    }

    /// `message` as a request from uid 1000.
    pub fn request<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller::Unix {
            uid: 1000,
            gid: 1000,
            pid: None,
            exe: None,
        });
        request
    }
}
