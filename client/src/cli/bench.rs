//! `tufkey bench`: a closed-loop load generator for Sign calls.
//!
//! N workers, each on its own connection, sign a fixed payload back to back for the
//! given duration; the report gives throughput, latency percentiles and errors.

use clap::Args;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use tufkey::{proto, Client, Error, Result};

const BENCH_GUN: &str = "tufkey.bench/load";
const BENCH_ROLE: &str = "targets";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Concurrent workers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Size of the signed payload.
    #[arg(long, default_value_t = 512)]
    payload_bytes: usize,
}

/// What one worker saw.
#[derive(Default)]
struct WorkerReport {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

pub async fn run(socket: &Path, args: BenchArgs, json: bool) -> Result<()> {
    if args.concurrency == 0 || args.duration == 0 {
        return Err(Error::Usage(
            "--concurrency and --duration must be at least 1".into(),
        ));
    }
    let mut setup = Client::connect_unix(socket).await?;
    let keyid = bench_key(&mut setup).await?;
    let payload = vec![0x5a; args.payload_bytes];
    let deadline = Instant::now() + Duration::from_secs(args.duration);

    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let client = Client::connect_unix(socket).await?;
        workers.push(tokio::spawn(worker(
            client,
            keyid.clone(),
            payload.clone(),
            deadline,
        )));
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
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let signs_per_sec = all.latencies.len() as f64 / elapsed;
    let p50 = percentile_ms(&all.latencies, 0.50);
    let p99 = percentile_ms(&all.latencies, 0.99);
    let report = json!({
        "protocol": "native",
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
    if json {
        println!("{report}");
    } else {
        println!(
            "{} signs in {elapsed:.1}s at concurrency {}: {signs_per_sec:.0} signs/s, p50 {p50:.3} ms, p99 {p99:.3} ms, {} errors",
            all.latencies.len(),
            args.concurrency,
            all.errors
        );
        if let Some(error) = &all.first_error {
            println!("first error: {error}");
        }
    }
    Ok(())
}

async fn worker(
    mut client: Client,
    keyid: String,
    payload: Vec<u8>,
    deadline: Instant,
) -> WorkerReport {
    let mut report = WorkerReport::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        match client
            .sign_raw(&keyid, payload.clone(), proto::SignatureFormat::Tuf)
            .await
        {
            Ok(_) => report.latencies.push(started.elapsed()),
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
