//! Bookkeeping for the soak run (`tests/tests/soak.rs`): how many operations of each
//! kind ran and how long they took, which failures happened (expected ones by kind,
//! unexpected ones word for word), and a once-a-second sample of the daemon's resident
//! memory and open file descriptors from `/proc`. The soak's summary is printed from
//! here, and its bounds are checked against these figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// Counts, latencies and failures of every operation the soak ran.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Latencies in microseconds of the operations that succeeded, by operation.
    done: BTreeMap<&'static str, Vec<u32>>,
    /// Expected failures by `(operation, kind)`.
    expected: BTreeMap<(&'static str, &'static str), u64>,
    /// Unexpected failures, word for word.
    unexpected: Vec<String>,
}

impl Tally {
    /// `op` succeeded after `took`.
    pub fn done(&self, op: &'static str, took: Duration) {
        let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.lock().done.entry(op).or_default().push(micros);
    }

    /// `op` failed in one of the ways the soak provokes (`kind` names which).
    pub fn expected(&self, op: &'static str, kind: &'static str) {
        *self.lock().expected.entry((op, kind)).or_default() += 1;
    }

    /// `op` failed in a way it must not: `what` says how.
    pub fn unexpected(&self, op: &'static str, what: impl std::fmt::Display) {
        self.lock().unexpected.push(format!("{op}: {what}"));
    }

    /// How many `op` succeeded.
    pub fn count(&self, op: &str) -> usize {
        self.lock().done.get(op).map_or(0, Vec::len)
    }

    /// How many expected failures of `kind` there were, over all operations.
    pub fn expected_count(&self, kind: &str) -> u64 {
        self.lock()
            .expected
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every unexpected failure, word for word.
    pub fn unexpected_failures(&self) -> Vec<String> {
        self.lock().unexpected.clone()
    }

    /// A table of operations (count, p50, p99, max) and of failures by kind.
    pub fn summary(&self) -> String {
        let inner = self.lock();
        let mut out = format!(
            "{:<28} {:>9} {:>9} {:>9} {:>9}\n",
            "operation", "ok", "p50 ms", "p99 ms", "max ms"
        );
        for (op, latencies) in &inner.done {
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            out.push_str(&format!(
                "{op:<28} {:>9} {:>9.3} {:>9.3} {:>9.3}\n",
                sorted.len(),
                percentile(&sorted, 50.0),
                percentile(&sorted, 99.0),
                sorted.last().map_or(0.0, |max| f64::from(*max) / 1000.0)
            ));
        }
        out.push_str("expected failures (operation: kind = count):\n");
        if inner.expected.is_empty() {
            out.push_str("  none\n");
        }
        for ((op, kind), count) in &inner.expected {
            out.push_str(&format!("  {op}: {kind} = {count}\n"));
        }
        out.push_str(&format!(
            "unexpected failures: {}\n",
            inner.unexpected.len()
        ));
        for failure in inner.unexpected.iter().take(20) {
            out.push_str(&format!("  {failure}\n"));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `pct`th percentile of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u32], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// One look at the daemon.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since sampling started.
    pub at: Duration,
    /// `VmRSS` in bytes.
    pub rss: u64,
    /// Entries in `/proc/PID/fd`.
    pub fds: usize,
}

/// `VmRSS` of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    crate::daemon::proc_status_bytes(pid, "VmRSS")
}

/// How many file descriptors `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/fd: {error}"))
        .count()
}

/// Samples a process every `every` on a thread of its own until [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    samples.push(Sample {
                        at: started.elapsed(),
                        rss: rss_bytes(pid),
                        fds: open_fds(pid),
                    });
                    std::thread::sleep(every);
                }
                samples
            })
        };
        Sampler { stop, thread }
    }

    /// Stops sampling and returns every sample, oldest first.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the sampler thread panicked")
    }
}

/// The resource figures of a run: the steady state after the warm-up (median of
/// the samples in `[warm_up, warm_up + window)`) against the end (median of the last
/// `window` of samples), and the extremes.
#[derive(Clone, Copy, Debug)]
pub struct Resources {
    pub samples: usize,
    pub rss_min: u64,
    pub rss_max: u64,
    pub rss_steady: u64,
    pub rss_end: u64,
    pub fds_min: usize,
    pub fds_max: usize,
    pub fds_steady: usize,
    pub fds_end: usize,
}

impl Resources {
    /// Reads `samples` (at least one in each window, or it panics with the reason).
    pub fn of(samples: &[Sample], warm_up: Duration, window: Duration) -> Resources {
        let last = samples.last().expect("no samples were taken").at;
        let steady: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= warm_up && s.at < warm_up + window)
            .collect();
        let end: Vec<&Sample> = samples.iter().filter(|s| s.at + window > last).collect();
        assert!(
            !steady.is_empty() && !end.is_empty(),
            "the run ({last:?}) is too short for a {warm_up:?} warm-up and {window:?} windows"
        );
        let median = |values: Vec<u64>| {
            let mut values = values;
            values.sort_unstable();
            values[values.len() / 2]
        };
        Resources {
            samples: samples.len(),
            rss_min: samples.iter().map(|s| s.rss).min().unwrap_or(0),
            rss_max: samples.iter().map(|s| s.rss).max().unwrap_or(0),
            rss_steady: median(steady.iter().map(|s| s.rss).collect()),
            rss_end: median(end.iter().map(|s| s.rss).collect()),
            fds_min: samples.iter().map(|s| s.fds).min().unwrap_or(0),
            fds_max: samples.iter().map(|s| s.fds).max().unwrap_or(0),
            fds_steady: median(steady.iter().map(|s| s.fds as u64).collect()) as usize,
            fds_end: median(end.iter().map(|s| s.fds as u64).collect()) as usize,
        }
    }

    /// RSS growth from the steady state to the end, in bytes (negative: it shrank).
    pub fn rss_growth(&self) -> i64 {
        self.rss_end as i64 - self.rss_steady as i64
    }

    /// Open descriptors at the end minus in the steady state.
    pub fn fd_drift(&self) -> i64 {
        self.fds_end as i64 - self.fds_steady as i64
    }

    /// Two lines for the summary.
    pub fn summary(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / MIB;
        format!(
            "RSS MiB ({} samples): min {:.1}, max {:.1}, steady {:.1}, end {:.1}, growth {:+.1}\n\
             open fds: min {}, max {}, steady {}, end {}, drift {:+}\n",
            self.samples,
            mib(self.rss_min),
            mib(self.rss_max),
            mib(self.rss_steady),
            mib(self.rss_end),
            self.rss_growth() as f64 / MIB,
            self.fds_min,
            self.fds_max,
            self.fds_steady,
            self.fds_end,
            self.fd_drift()
        )
    }
}
