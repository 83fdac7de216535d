//! `tufkey bench`: a closed-loop load generator for Sign calls.
//!
//! N workers, each on its own connection, sign a fixed payload back to back for the
//! given duration; the report gives throughput, latency percentiles and errors.
//! `--protocol notary` speaks the Notary signer API (CreateKey once, then Sign), so
//! the same tool drives tufkeyd and notary-signer with identical requests.
//! With several `--addr`, worker N starts on address N (round-robin) and the report
//! counts the signatures each endpoint made; a native worker fails over as the
//! library does.

use super::{Target, TlsArgs, TlsTarget};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tufkey::{proto, Client, Error, Result};
use tufkey_proto::notary;
use tufkey_proto::notary::{
    key_management_client::KeyManagementClient, signer_client::SignerClient,
};

const BENCH_GUN: &str = "tufkey.bench/load";
const BENCH_ROLE: &str = "targets";

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Which API to call: tufkey's native SignRaw, or the Notary signer's Sign
    /// (needs --addr; works against tufkeyd and notary-signer alike).
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    protocol: Protocol,
    /// Concurrent workers, each with its own connection (spread over the --addr
    /// endpoints round-robin).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Size of the signed payload.
    #[arg(long, default_value_t = 512)]
    payload_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// `tufkey.v1.Signing/SignRaw` (TUF signature format).
    Native,
    /// `proto.Signer/Sign` with a key from `proto.KeyManagement/CreateKey`.
    Notary,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Notary => "notary",
        }
    }
}

/// One worker's connection and the key it signs with.
enum SignerConnection {
    Native {
        client: Box<Client>,
        keyid: String,
    },
    Notary {
        client: SignerClient<Channel>,
        key_id: notary::KeyId,
        endpoint: String,
    },
}

impl SignerConnection {
    /// Signs `payload`; returns the endpoint that signed.
    async fn sign(&mut self, payload: &[u8]) -> Result<&str> {
        match self {
            SignerConnection::Native { client, keyid } => {
                client
                    .sign_raw(keyid, payload.to_vec(), proto::SignatureFormat::Tuf)
                    .await?;
                Ok(client.endpoint())
            }
            SignerConnection::Notary {
                client,
                key_id,
                endpoint,
            } => {
                let request = notary::SignatureRequest {
                    key_id: Some(key_id.clone()),
                    content: payload.to_vec(),
                };
                client.sign(request).await?;
                Ok(endpoint)
            }
        }
    }
}

/// The key every worker signs with: the native bench key, or a new Notary key.
enum BenchKey {
    Native(String),
    Notary(notary::KeyId),
}

impl BenchKey {
    async fn set_up(target: &Target, protocol: Protocol) -> Result<Self> {
        match protocol {
            Protocol::Native => Ok(BenchKey::Native(
                bench_key(&mut target.connect().await?).await?,
            )),
            Protocol::Notary => {
                let channel = notary_target(target)?.channel(0).await?;
                let mut keys = KeyManagementClient::new(channel);
                let created = keys
                    .create_key(notary::CreateKeyRequest {
                        algorithm: "ecdsa".into(),
                        gun: BENCH_GUN.into(),
                        role: BENCH_ROLE.into(),
                    })
                    .await?
                    .into_inner();
                created
                    .key_info
                    .and_then(|info| info.key_id)
                    .map(BenchKey::Notary)
                    .ok_or_else(|| Error::Usage("CreateKey answered without a key ID".into()))
            }
        }
    }

    /// Worker `index`'s connection, to endpoint `index` (modulo their number).
    async fn connect(&self, target: &Target, index: usize) -> Result<SignerConnection> {
        Ok(match self {
            BenchKey::Native(keyid) => SignerConnection::Native {
                client: Box::new(target.connect_from(index).await?),
                keyid: keyid.clone(),
            },
            BenchKey::Notary(key_id) => {
                let tls = notary_target(target)?;
                SignerConnection::Notary {
                    client: SignerClient::new(tls.channel(index).await?),
                    key_id: key_id.clone(),
                    endpoint: tls.addrs[index % tls.addrs.len()].clone(),
                }
            }
        })
    }
}

/// The Notary protocol is only spoken over TCP with mutual TLS.
fn notary_target(target: &Target) -> Result<&TlsTarget> {
    match target {
        Target::Tls(tls) => Ok(tls),
        Target::Unix { .. } => Err(Error::Usage(
            "--protocol notary needs --addr https://HOST:PORT --tls-ca --tls-cert --tls-key".into(),
        )),
    }
}

/// What one worker saw.
#[derive(Default)]
struct WorkerReport {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    /// Signatures by endpoint.
    per_endpoint: BTreeMap<String, u64>,
}

pub async fn run(target: &Target, args: BenchArgs, json: bool) -> Result<()> {
    if args.concurrency == 0 || args.duration == 0 {
        return Err(Error::Usage(
            "--concurrency and --duration must be at least 1".into(),
        ));
    }
    let key = BenchKey::set_up(target, args.protocol).await?;
    let payload = vec![0x5a; args.payload_bytes];
    let deadline = Instant::now() + Duration::from_secs(args.duration);

    let mut workers = Vec::with_capacity(args.concurrency);
    for index in 0..args.concurrency {
        let connection = key.connect(target, index).await?;
        workers.push(tokio::spawn(worker(connection, payload.clone(), deadline)));
    }
    let started = Instant::now();
    let mut all = WorkerReport::default();
    for worker in workers {
        let report = worker
            .await
            .map_err(|error| Error::Usage(format!("bench worker failed: {error}")))?;
        all.latencies.extend(report.latencies);
        all.errors += report.errors;
        all.first_error = all.first_error.or(report.first_error);
        for (endpoint, signs) in report.per_endpoint {
            *all.per_endpoint.entry(endpoint).or_default() += signs;
        }
    }
    let several = match target {
        Target::Tls(tls) => tls.addrs.len() > 1 || all.per_endpoint.len() > 1,
        Target::Unix { .. } => false,
    };
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let signs_per_sec = all.latencies.len() as f64 / elapsed;
    let p50 = percentile_ms(&all.latencies, 0.50);
    let p99 = percentile_ms(&all.latencies, 0.99);
    let mut report = json!({
        "protocol": args.protocol.name(),
        "concurrency": args.concurrency,
        "duration_secs": elapsed,
        "payload_bytes": args.payload_bytes,
        "signs": all.latencies.len(),
        "signs_per_sec": signs_per_sec,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": all.errors,
        "first_error": all.first_error,
    });
    if several {
        report["per_endpoint"] = json!(all.per_endpoint);
    }
    if json {
        println!("{report}");
    } else {
        println!(
            "{} {} signs in {elapsed:.1}s at concurrency {}: {signs_per_sec:.0} signs/s, p50 {p50:.3} ms, p99 {p99:.3} ms, {} errors",
            all.latencies.len(),
            args.protocol.name(),
            args.concurrency,
            all.errors
        );
        if several {
            for (endpoint, signs) in &all.per_endpoint {
                println!("{endpoint}: {signs} signs");
            }
        }
        if let Some(error) = &all.first_error {
            println!("first error: {error}");
        }
    }
    Ok(())
}

async fn worker(
    mut connection: SignerConnection,
    payload: Vec<u8>,
    deadline: Instant,
) -> WorkerReport {
    let mut report = WorkerReport::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        match connection.sign(&payload).await {
            Ok(endpoint) => {
                report.latencies.push(started.elapsed());
                if let Some(signs) = report.per_endpoint.get_mut(endpoint) {
                    *signs += 1;
                } else {
                    report.per_endpoint.insert(endpoint.to_owned(), 1);
                }
            }
            Err(error) => {
                report.errors += 1;
                report.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    report
}

/// Reuses the bench key if one exists, else creates it.
async fn bench_key(client: &mut Client) -> Result<String> {
    if let Some(key) = client
        .list_keys(BENCH_GUN, BENCH_ROLE)
        .await?
        .into_iter()
        .next()
    {
        return Ok(key.keyid);
    }
    Ok(client.generate_key(BENCH_GUN, BENCH_ROLE).await?.keyid)
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&latencies, 0.50), 50.0);
        assert_eq!(percentile_ms(&latencies, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
