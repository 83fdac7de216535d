//! `dct init`: a new collection as `docker trust` makes one. Root is a certificate
//! key (CN = the collection) held in tufkeyd, in software or generated on a
//! YubiKey; the repository key is in tufkeyd; snapshot and timestamp keys are the
//! server's. Root v1 and targets v1 go up in one update, and the root is pinned.

use super::super::certificate::{root_certificate, self_signed};
use super::super::error::DctError;
use super::super::gun::Gun;
use super::super::keys::{certificate_key, ecdsa_key, key_id, spki_of};
use super::super::metadata::{expires_in, Delegations, PublicKey, RoleKeys, Root, Targets};
use super::super::signing::SigningKey;
use super::super::Session;
use super::publish::{repository_key, ROOT_DAYS, TARGETS_DAYS};
use super::{InitArgs, Report};
use crate::cli::output::short_location;
use serde_json::json;
use std::collections::BTreeMap;
use tufkey::proto;

pub async fn init(session: &mut Session, gun: &Gun, args: &InitArgs) -> Result<Report, DctError> {
    if session
        .server
        .metadata(gun.as_str(), "root")
        .await?
        .is_some()
    {
        return Err(DctError::AlreadyInitialised {
            gun: gun.to_string(),
            server: session.server.url().to_string(),
        });
    }
    let root_key = match (&args.root_key, args.root_on_yubikey) {
        (Some(keyid), _) => session.signer.client().get_key(keyid).await?,
        (None, Some(serial)) => {
            let request = proto::GenerateKeyRequest {
                gun: gun.to_string(),
                role: "root".into(),
                placement: Some(proto::generate_key_request::Placement::Yubikey(
                    proto::YubiKeyPlacement {
                        serial,
                        allow_default_mgmt_key: args.allow_default_mgmt_key,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            session.signer.client().generate(request).await?
        }
        (None, None) => {
            session
                .signer
                .client()
                .generate_key(gun.as_str(), "root")
                .await?
        }
    };
    let targets_key = repository_key(session, gun, args.targets_key.as_deref()).await?;

    let certificate = root_certificate(&mut session.signer, &root_key, gun).await?;
    if !self_signed(&certificate) {
        return Err(DctError::BadSignature(
            "the root certificate's signature does not verify with its key".into(),
        ));
    }
    let root_public = certificate_key(&certificate);
    let targets_public = ecdsa_key(&spki_of(&targets_key)?);
    let snapshot_public = server_key(session, gun, "snapshot").await?;
    let timestamp_public = server_key(session, gun, "timestamp").await?;

    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (role, public) in [
        ("root", &root_public),
        ("targets", &targets_public),
        ("snapshot", &snapshot_public),
        ("timestamp", &timestamp_public),
    ] {
        let id = key_id(public)?;
        keys.insert(id.clone(), public.clone());
        roles.insert(
            role.to_owned(),
            RoleKeys {
                keyids: vec![id],
                threshold: 1,
            },
        );
    }
    let root = Root {
        kind: "Root".into(),
        consistent_snapshot: false,
        expires: expires_in(ROOT_DAYS)?,
        keys,
        roles,
        version: 1,
    };
    let targets = Targets {
        kind: "Targets".into(),
        delegations: Delegations::default(),
        expires: expires_in(TARGETS_DAYS)?,
        targets: BTreeMap::new(),
        version: 1,
    };
    let root_id = key_id(&root_public)?;
    let targets_id = key_id(&targets_public)?;
    let root_file = session
        .signer
        .sign_role(
            "root",
            1,
            &root,
            &[SigningKey {
                metadata_id: root_id.clone(),
                key: root_key.clone(),
            }],
        )
        .await?;
    let targets_file = session
        .signer
        .sign_role(
            "targets",
            1,
            &targets,
            &[SigningKey {
                metadata_id: targets_id.clone(),
                key: targets_key.clone(),
            }],
        )
        .await?;
    let files = vec![
        ("root".into(), root_file.clone()),
        ("targets".into(), targets_file),
    ];
    session.server.publish(gun.as_str(), &files).await?;
    session.pins.pin_root(gun, &root_file)?;
    session.remember_server(gun)?;
    let collection = session.collection(gun).await?;
    let lines = vec![
        format!("created {gun} on {}", session.server.url()),
        format!("root key {root_id} ({})", short_location(&root_key)),
        format!(
            "repository key {targets_id} ({})",
            short_location(&targets_key)
        ),
        format!(
            "snapshot and timestamp keys are the server's; timestamp v{}",
            collection.timestamp.version
        ),
    ];
    let json = json!({
        "gun": gun.as_str(),
        "server": session.server.url().as_str(),
        "root": {"keyid": root_id, "tufkeyd_keyid": root_key.keyid, "location": short_location(&root_key)},
        "targets": {"keyid": targets_id, "tufkeyd_keyid": targets_key.keyid, "location": short_location(&targets_key)},
        "snapshot": {"keyid": key_id(&snapshot_public)?, "server_managed": true},
        "timestamp": {"keyid": key_id(&timestamp_public)?, "server_managed": true},
    });
    Ok(Report::new(lines, json))
}

/// The server's key for `role` (it makes one on the first ask).
async fn server_key(session: &Session, gun: &Gun, role: &str) -> Result<PublicKey, DctError> {
    let bytes = session.server.server_key(gun.as_str(), role).await?;
    server_key_from(role, &bytes)
}

/// The public key in the server's answer for `role`'s key.
pub fn server_key_from(role: &str, bytes: &[u8]) -> Result<PublicKey, DctError> {
    let key: PublicKey = serde_json::from_slice(bytes).map_err(|source| DctError::Malformed {
        role: format!("{role}.key"),
        source,
    })?;
    Ok(PublicKey {
        keytype: key.keytype,
        keyval: super::super::metadata::KeyValue {
            public: key.keyval.public,
            private: None,
        },
    })
}
