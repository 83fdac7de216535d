//! `dct sign` and `dct revoke`: a tag is a target named after it whose sha256 is
//! the manifest digest and whose length is the manifest size. The repository key
//! signs into `targets`; a signer signs into `targets/releases` and
//! `targets/<name>` with its own keys, which is what `docker trust inspect` reads.

use super::super::error::DctError;
use super::super::gun::{check_signer, Gun, TaggedName};
use super::super::metadata::{FileMeta, Targets};
use super::super::trust::Collection;
use super::super::Session;
use super::publish::{keys_for, next_targets, upload, versions};
use super::{Report, RevokeArgs, SignArgs};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::json;
use std::collections::BTreeMap;
use tufkey::dct::transport::{Credentials, Registry, ServerConfig};

pub async fn sign(
    session: &mut Session,
    name: &TaggedName,
    args: &SignArgs,
) -> Result<Report, DctError> {
    let gun = &name.gun;
    let (digest_hex, size) = manifest(name, args).await?;
    let collection = session.collection(gun).await?;
    let roles = roles_for(&collection, args.signer.as_deref())?;
    let meta = FileMeta {
        length: size,
        hashes: BTreeMap::from([(
            "sha256".to_owned(),
            BASE64.encode(hex::decode(&digest_hex).map_err(|_| bad_digest(&digest_hex))?),
        )]),
        custom: None,
    };
    let files = sign_roles(
        session,
        gun,
        &collection,
        &roles,
        args.signer.as_deref(),
        |targets| {
            targets.targets.insert(name.tag.clone(), meta.clone());
            true
        },
    )
    .await?;
    let changed: Vec<String> = files.iter().map(|(role, _)| role.clone()).collect();
    let published = upload(session, gun, files).await?;
    let lines = vec![format!(
        "signed {gun}:{} sha256:{digest_hex} ({size} bytes) into {}",
        name.tag,
        versions(&published, &changed)
    )];
    let json = json!({
        "gun": gun.as_str(), "tag": name.tag, "digest": format!("sha256:{digest_hex}"),
        "size": size, "roles": changed,
    });
    Ok(Report::new(lines, json))
}

pub async fn revoke(
    session: &mut Session,
    name: &TaggedName,
    args: &RevokeArgs,
) -> Result<Report, DctError> {
    let gun = &name.gun;
    let collection = session.collection(gun).await?;
    let holding: Vec<String> = std::iter::once(("targets".to_owned(), &collection.targets))
        .chain(
            collection
                .delegated
                .iter()
                .map(|(role, targets)| (role.clone(), targets)),
        )
        .filter(|(_, targets)| targets.targets.contains_key(&name.tag))
        .map(|(role, _)| role)
        .collect();
    if holding.is_empty() {
        return Err(DctError::Usage(format!(
            "{gun}:{} is not signed: nothing to revoke",
            name.tag
        )));
    }
    let roles = match args.signer.as_deref() {
        Some(signer) => roles_for(&collection, Some(signer))?
            .into_iter()
            .filter(|role| holding.contains(role))
            .collect(),
        None => signable(session, &collection, &holding).await?,
    };
    if roles.is_empty() {
        return Err(DctError::NoSigningKey {
            gun: gun.to_string(),
            role: holding.join(", "),
            keyids: "see `tufkey dct inspect`".into(),
        });
    }
    let files = sign_roles(
        session,
        gun,
        &collection,
        &roles,
        args.signer.as_deref(),
        |targets| targets.targets.remove(&name.tag).is_some(),
    )
    .await?;
    let changed: Vec<String> = files.iter().map(|(role, _)| role.clone()).collect();
    let published = upload(session, gun, files).await?;
    let left: Vec<&String> = holding
        .iter()
        .filter(|role| !changed.contains(role))
        .collect();
    let mut lines = vec![format!(
        "revoked {gun}:{} from {}",
        name.tag,
        versions(&published, &changed)
    )];
    if !left.is_empty() {
        lines.push(format!(
            "still signed in {} (tufkeyd holds no key of it)",
            left.iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(Report::new(
        lines,
        json!({"gun": gun.as_str(), "tag": name.tag, "roles": changed, "still_signed_in": left}),
    ))
}

/// The roles a tag goes into: `targets`, or a signer's two delegations.
fn roles_for(collection: &Collection, signer: Option<&str>) -> Result<Vec<String>, DctError> {
    let Some(signer) = signer else {
        return Ok(vec!["targets".to_owned()]);
    };
    let own = format!("targets/{}", check_signer(signer)?);
    let delegations = &collection.targets.delegations.roles;
    for role in ["targets/releases", own.as_str()] {
        if !delegations.iter().any(|delegation| delegation.name == role) {
            return Err(DctError::Usage(format!(
                "{} has no signer {signer} ({role} is missing): add it with `tufkey dct signer add {signer} --key KEYID {}`",
                collection.gun, collection.gun
            )));
        }
    }
    Ok(vec!["targets/releases".to_owned(), own])
}

/// Of `roles`, those tufkeyd holds a key for.
async fn signable(
    session: &mut Session,
    collection: &Collection,
    roles: &[String],
) -> Result<Vec<String>, DctError> {
    let mut signable = Vec::new();
    for role in roles {
        let (keyids, keys) = if role == "targets" {
            let keyids = collection
                .root
                .roles
                .get("targets")
                .map(|keys| keys.keyids.clone())
                .unwrap_or_default();
            (keyids, &collection.root.keys)
        } else {
            let keyids = collection
                .targets
                .delegations
                .roles
                .iter()
                .find(|delegation| &delegation.name == role)
                .map(|delegation| delegation.keyids.clone())
                .unwrap_or_default();
            (keyids, &collection.targets.delegations.keys)
        };
        if !session.signer.held_keys(&keyids, keys).await?.is_empty() {
            signable.push(role.clone());
        }
    }
    Ok(signable)
}

/// Applies `edit` to the next version of each role in `roles` and signs the ones it
/// changed: as `signer` (with only the signer's keys) or with every key tufkeyd
/// holds for the role.
async fn sign_roles(
    session: &mut Session,
    gun: &Gun,
    collection: &Collection,
    roles: &[String],
    signer: Option<&str>,
    mut edit: impl FnMut(&mut Targets) -> bool,
) -> Result<Vec<(String, Vec<u8>)>, DctError> {
    let signer_keys: Option<Vec<String>> = signer.map(|name| {
        let own = format!("targets/{name}");
        collection
            .targets
            .delegations
            .roles
            .iter()
            .find(|delegation| delegation.name == own)
            .map(|delegation| delegation.keyids.clone())
            .unwrap_or_default()
    });
    let mut files = Vec::new();
    for role in roles {
        let mut next = next_targets(collection, role)?;
        if !edit(&mut next) {
            continue;
        }
        let keys = keys_for(
            session,
            gun,
            &collection.root,
            &collection.targets,
            role,
            signer_keys.as_deref(),
        )
        .await?;
        files.push((
            role.clone(),
            session
                .signer
                .sign_role(role, next.version, &next, &keys)
                .await?,
        ));
    }
    Ok(files)
}

/// The digest (hex) and size to sign: from the arguments, from the registry, or
/// from both when they must agree.
async fn manifest(name: &TaggedName, args: &SignArgs) -> Result<(String, u64), DctError> {
    let given = match (&args.digest, args.size) {
        (Some(digest), Some(size)) => Some((parse_digest(digest)?, size)),
        _ => None,
    };
    if given.is_some() && args.registry.is_none() {
        return Ok(given.unwrap_or_default());
    }
    let (host, repository) = name.gun.registry_and_repository();
    let url = match &args.registry {
        Some(url) => url.clone(),
        None if is_loopback(host) => format!("http://{host}"),
        None => format!("https://{host}"),
    };
    let parsed = url::Url::parse(&url)
        .map_err(|error| DctError::Usage(format!("--registry {url:?} is not a URL ({error})")))?;
    let registry = Registry::new(ServerConfig {
        url: parsed,
        ca: args.registry_ca.clone(),
        client_identity: None,
        credentials: Credentials::from_env()?,
    })?;
    let served = registry.manifest(repository, &name.tag).await?;
    let served_hex = parse_digest(&served.digest)?;
    let reference = format!("{}:{}", name.gun, name.tag);
    match given {
        Some((digest, size)) if digest != served_hex || size != served.size => {
            Err(DctError::DigestMismatch {
                reference,
                served: format!("{} ({} bytes)", served.digest, served.size),
                given: format!("sha256:{digest} ({size} bytes)"),
            })
        }
        _ => Ok((served_hex, served.size)),
    }
}

fn parse_digest(digest: &str) -> Result<String, DctError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| bad_digest(digest))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex.to_owned())
    } else {
        Err(bad_digest(digest))
    }
}

fn bad_digest(digest: &str) -> DctError {
    DctError::Usage(format!(
        "{digest:?} is not a manifest digest: write sha256: and 64 lowercase hex digits"
    ))
}

fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}
