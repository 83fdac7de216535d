//! `tufkey policy check --as uid:N|cert:FILE RPC [KEYID]`: asks the daemon what its
//! loaded access policy decides for that identity, and which rule decided, so a
//! policy can be tested before a caller trips over it.

use super::output::print;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tufkey::{proto, Client, Error, Result};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Explain whether an identity may call an RPC (on a key), and the rule that decides.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Who: `uid:N` (a Unix-socket caller; its gid is N's primary group, or give
    /// `uid:N:GID`), or `cert:FILE` (a TLS client presenting that PEM certificate).
    #[arg(long = "as", value_name = "uid:N|cert:FILE", value_parser = parse_identity)]
    identity: Identity,
    /// The RPC: `Signing/SignRaw`, `Signer/Sign`, `Keys/DeleteKey`, a full method name,
    /// or a method name only one service has (`SignMetadata`).
    rpc: String,
    /// A TUF or Notary key ID the call would use.
    keyid: Option<String>,
}

/// `--as`, parsed.
#[derive(Clone, Debug)]
enum Identity {
    Unix { uid: u32, gid: Option<u32> },
    Certificate(PathBuf),
}

fn parse_identity(text: &str) -> std::result::Result<Identity, String> {
    if let Some(path) = text.strip_prefix("cert:") {
        if path.is_empty() {
            return Err("cert: needs a PEM file, e.g. cert:notary-server.crt".into());
        }
        return Ok(Identity::Certificate(path.into()));
    }
    let Some(ids) = text.strip_prefix("uid:") else {
        return Err(format!("{text:?}: expected uid:N, uid:N:GID or cert:FILE"));
    };
    let number = |part: &str, what: &str| {
        part.parse::<u32>()
            .map_err(|_| format!("{text:?}: {what} {part:?} is not a number"))
    };
    match ids.split_once(':') {
        Some((uid, gid)) => Ok(Identity::Unix {
            uid: number(uid, "uid")?,
            gid: Some(number(gid, "gid")?),
        }),
        None => Ok(Identity::Unix {
            uid: number(ids, "uid")?,
            gid: None,
        }),
    }
}

pub async fn run(mut client: Client, command: PolicyCommand, json: bool) -> Result<()> {
    let PolicyCommand::Check(args) = command;
    let identity = match args.identity {
        Identity::Unix { uid, gid } => {
            proto::check_request::Identity::Unix(proto::UnixIdentity { uid, gid })
        }
        Identity::Certificate(path) => {
            let bytes = std::fs::read(&path).map_err(|error| {
                Error::Usage(format!(
                    "reading the certificate {}: {error}",
                    path.display()
                ))
            })?;
            proto::check_request::Identity::Certificate(bytes)
        }
    };
    let decision = client
        .check_policy(proto::CheckRequest {
            identity: Some(identity),
            rpc: args.rpc,
            keyid: args.keyid.unwrap_or_default(),
        })
        .await?;
    print(
        json,
        serde_json::json!({
            "allowed": decision.allowed,
            "caller": decision.caller,
            "rpc": decision.rpc,
            "permission": decision.permission,
            "rule": decision.rule,
            "reason": decision.reason,
        }),
        || {
            format!(
                "{}: {} calling {} (needs `{}`)\nrule:   {}\nreason: {}",
                if decision.allowed {
                    "ALLOWED"
                } else {
                    "DENIED"
                },
                decision.caller,
                decision.rpc,
                decision.permission,
                decision.rule,
                decision.reason
            )
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_and_mistakes_say_the_forms() {
        assert!(matches!(
            parse_identity("uid:1000"),
            Ok(Identity::Unix {
                uid: 1000,
                gid: None
            })
        ));
        assert!(matches!(
            parse_identity("uid:1000:50"),
            Ok(Identity::Unix {
                uid: 1000,
                gid: Some(50)
            })
        ));
        assert!(matches!(
            parse_identity("cert:/x/notary.crt"),
            Ok(Identity::Certificate(path)) if path == std::path::Path::new("/x/notary.crt")
        ));
        assert!(parse_identity("alice")
            .unwrap_err()
            .contains("uid:N, uid:N:GID or cert:FILE"));
        assert!(parse_identity("uid:me")
            .unwrap_err()
            .contains("\"me\" is not a number"));
        assert!(parse_identity("cert:").is_err());
    }
}
