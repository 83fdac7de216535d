//! [`AuditLog`]: the daemon's handle on its audit log. Callers hand it records and
//! wait until they are durable. One writer thread owns the file: it takes whatever
//! has queued up and writes it with a single write + fdatasync (group commit), so
//! concurrent calls share a sync while none of them returns before its own record is
//! on disk. A dedicated thread rather than a task per batch: a signature's path is
//! one hand-off to the thread and one back, which is what keeps auditing cheap.
//!
//! Each fdatasync costs about as much CPU as a signature, so batches should be big
//! when the daemon is busy. Calls announce themselves when they start
//! ([`AuditLog::expect`]); while any announced call has not handed over its records
//! yet, the writer waits for them a little (at most [`GATHER_WAIT`]) before syncing,
//! as PostgreSQL's `commit_delay` does. A lone call is never kept waiting: by the time
//! the writer sees its records, nobody else is expected.

use super::files;
use super::key::AuditKey;
use super::record::Record;
use super::verify::{self, BadRecord, LogFile, Verified};
use super::writer::{Head, Writer};
use crate::blocking;
use crate::error::{Error, Result};
use crate::shutdown::Stopping;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Where the log lives and when it rotates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// The current file; rotated files sit beside it.
    pub path: PathBuf,
    /// Rotate before the current file would grow past this many bytes.
    pub max_bytes: u64,
}

/// The most records one fsync covers.
const MAX_BATCH: usize = 1024;

/// The longest the writer holds a batch back for announced calls to join it.
const GATHER_WAIT: Duration = Duration::from_micros(1000);

/// A call that will hand the log its records soon ([`AuditLog::expect`]); dropping
/// it (or handing over the records) withdraws the announcement.
pub struct Expected(Arc<AtomicUsize>);

impl Drop for Expected {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Records waiting for the writer thread, and who to tell.
struct Pending {
    records: Vec<Record>,
    key: AuditKey,
    done: oneshot::Sender<std::result::Result<(), (std::io::ErrorKind, String)>>,
}

/// What the writer thread is sent.
enum Message {
    Write(Pending),
    /// Write nothing more: what is still queued fails as "shutting down".
    Stop,
}

/// The audit log, shared by every handler.
pub struct AuditLog {
    path: PathBuf,
    writer: Arc<Mutex<Writer>>,
    queue: Sender<Message>,
    written: broadcast::Sender<Arc<str>>,
    expected: Arc<AtomicUsize>,
}

/// The writer thread's owner: [`Committer::run`] stops the thread when the daemon
/// stops and waits for it.
pub struct Committer {
    queue: Sender<Message>,
    thread: std::thread::JoinHandle<()>,
}

/// The files of the log as they were at one moment, for verifying or reading.
pub struct Snapshot {
    files: Vec<(String, File, u64)>,
    head: Head,
}

impl AuditLog {
    /// Opens the log (creating its directory and file) and continues its chain.
    pub async fn open(config: &AuditConfig) -> Result<(Arc<Self>, Committer)> {
        let path = config.path.clone();
        let max_bytes = config.max_bytes;
        let writer = blocking::run(move || Writer::open(&path, max_bytes)).await?;
        tracing::info!(log = %config.path.display(), seq = writer.head().seq, "audit log open");
        let writer = Arc::new(Mutex::new(writer));
        let (queue, receiver) = mpsc::channel();
        let written = broadcast::channel(1024).0;
        let expected = Arc::new(AtomicUsize::new(0));
        let thread = {
            let writer = writer.clone();
            let written = written.clone();
            let expected = expected.clone();
            std::thread::Builder::new()
                .name("tufkeyd-audit".into())
                .spawn(move || write_until_stopped(&writer, &receiver, &written, &expected))
                .map_err(Error::io(
                    "starting the audit log writer thread",
                    &config.path,
                ))?
        };
        Ok((
            Arc::new(AuditLog {
                path: config.path.clone(),
                writer,
                queue: queue.clone(),
                written,
                expected,
            }),
            Committer { queue, thread },
        ))
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Announces a call that will [`write`](Self::write) soon, so that a busy
    /// writer lets its records join the batch it is gathering.
    pub fn expect(&self) -> Expected {
        self.expected.fetch_add(1, Ordering::AcqRel);
        Expected(self.expected.clone())
    }

    /// Appends `records` (sealed with `key`) for the call `announced`, and returns
    /// once they are durable.
    pub async fn write(
        &self,
        records: Vec<Record>,
        key: AuditKey,
        announced: Expected,
    ) -> Result<()> {
        let unavailable = |kind, message: String| Error::AuditUnavailable {
            path: self.path.clone(),
            source: std::io::Error::new(kind, message),
        };
        let (done, outcome) = oneshot::channel();
        let pending = Pending { records, key, done };
        // Withdrawn before sending: when the writer sees these records, this call is
        // no longer one it waits for.
        drop(announced);
        if self.queue.send(Message::Write(pending)).is_err() {
            return Err(unavailable(
                std::io::ErrorKind::Other,
                "tufkeyd is shutting down".into(),
            ));
        }
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(unavailable(kind, message)),
            Err(_) => Err(unavailable(
                std::io::ErrorKind::Other,
                "tufkeyd is shutting down".into(),
            )),
        }
    }

    /// Each line as it is written, for following the log.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.written.subscribe()
    }

    /// Opens every file of the log (or just `names`, which must be files of the log)
    /// as it is now, without waiting for a write to finish.
    pub async fn snapshot(&self, names: Vec<String>) -> Result<Snapshot> {
        let writer = self.writer.clone();
        blocking::run(move || {
            let writer = lock(&writer);
            let current = writer.path().to_path_buf();
            let paths = if names.is_empty() {
                files::list_all(&current).map_err(Error::io(
                    "listing the audit log's files",
                    files::parent(&current),
                ))?
            } else {
                let all = files::list_all(&current).map_err(Error::io(
                    "listing the audit log's files",
                    files::parent(&current),
                ))?;
                names
                    .iter()
                    .map(|name| log_file_named(&all, name, &current))
                    .collect::<Result<Vec<_>>>()?
            };
            let mut files = Vec::with_capacity(paths.len());
            for path in paths {
                let file = File::open(&path).map_err(Error::io("opening the audit log", &path))?;
                // Read up to the length now: the writer is held, so no half-written
                // batch is seen; bytes someone else appended are read and checked too.
                let size = file
                    .metadata()
                    .map_err(Error::io("reading the audit log", &path))?
                    .len();
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, file, size));
            }
            Ok(Snapshot {
                files,
                head: writer.head().clone(),
            })
        })
        .await
    }
}

/// A file of the log by the name `verify` was given: its file name, or a path that
/// resolves to one of the log's files. Nothing outside the log is ever read.
fn log_file_named(all: &[PathBuf], name: &str, current: &Path) -> Result<PathBuf> {
    let wanted = Path::new(name);
    let by_name = wanted.components().count() == 1;
    let resolved = (!by_name)
        .then(|| std::fs::canonicalize(wanted).ok())
        .flatten();
    all.iter()
        .find(|file| {
            if by_name {
                file.file_name() == Some(wanted.as_os_str())
            } else {
                resolved.is_some() && std::fs::canonicalize(file).ok() == resolved
            }
        })
        .cloned()
        .ok_or_else(|| {
            Error::invalid(
                "files",
                format!(
                    "{name:?} is not a file of tufkeyd's audit log (they are {}/{}*)",
                    files::parent(current).display(),
                    current.file_name().unwrap_or_default().to_string_lossy()
                ),
            )
        })
}

impl Snapshot {
    /// Verifies the files; with the whole log, it must also end at the head.
    pub async fn verify(
        self,
        key: AuditKey,
        whole_log: bool,
    ) -> Result<(Vec<String>, std::result::Result<Verified, BadRecord>)> {
        blocking::run(move || {
            let names = self.files.iter().map(|(name, _, _)| name.clone()).collect();
            let head = self.head.clone();
            let files = self.read()?;
            Ok((
                names,
                verify::verify(&key, files, whole_log.then_some(&head)),
            ))
        })
        .await
    }

    /// The last `count` lines of the log (all with 0), oldest first, and the head.
    pub async fn tail(self, count: usize) -> Result<(Vec<String>, Head)> {
        blocking::run(move || {
            let head = self.head.clone();
            let mut lines: Vec<String> = Vec::new();
            for file in self.read()?.into_iter().rev() {
                let text = String::from_utf8_lossy(&file.bytes);
                let mut these: Vec<String> = text.lines().map(str::to_owned).collect();
                these.append(&mut lines);
                lines = these;
                if count > 0 && lines.len() >= count {
                    break;
                }
            }
            if count > 0 && lines.len() > count {
                lines.drain(..lines.len() - count);
            }
            Ok((lines, head))
        })
        .await
    }

    fn read(self) -> Result<Vec<LogFile>> {
        self.files
            .into_iter()
            .map(|(name, file, size)| {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                file.take(size)
                    .read_to_end(&mut bytes)
                    .map_err(Error::io("reading the audit log", &name))?;
                Ok(LogFile { name, bytes })
            })
            .collect()
    }
}

impl Committer {
    /// Waits until `stopping` fires, then stops the writer thread (what is still
    /// queued fails as "shutting down") and waits for it to finish.
    pub async fn run(self, mut stopping: Stopping) {
        stopping.stopped().await;
        // The thread may be gone already (a panic): then there is nothing to stop.
        let _ = self.queue.send(Message::Stop);
        let thread = self.thread;
        match blocking::run(move || Ok::<_, Error>(thread.join())).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!("the audit log writer thread panicked"),
            Err(error) => tracing::error!(%error, "waiting for the audit log writer thread"),
        }
    }
}

/// The writer thread: each turn takes everything queued (up to [`MAX_BATCH`]), waits
/// briefly for announced calls while there are any, and commits the batch with one
/// write and one fdatasync.
fn write_until_stopped(
    writer: &Mutex<Writer>,
    queue: &Receiver<Message>,
    written: &broadcast::Sender<Arc<str>>,
    expected: &AtomicUsize,
) {
    let mut stop = false;
    while !stop {
        let Ok(first) = queue.recv() else { return };
        let mut batch = Vec::new();
        let mut next = Some(first);
        let mut gather_until = None;
        loop {
            while let Some(message) = next.take() {
                match message {
                    Message::Write(pending) => batch.push(pending),
                    Message::Stop => stop = true,
                }
                if !stop && batch.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if stop || batch.len() >= MAX_BATCH || expected.load(Ordering::Acquire) == 0 {
                break;
            }
            let deadline = *gather_until.get_or_insert_with(|| Instant::now() + GATHER_WAIT);
            match queue.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(message) => next = Some(message),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            commit(writer, written, batch);
        }
    }
}

/// Writes one batch and tells every caller in it how it went.
fn commit(writer: &Mutex<Writer>, written: &broadcast::Sender<Arc<str>>, batch: Vec<Pending>) {
    let (work, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|pending| ((pending.records, pending.key), pending.done))
        .unzip();
    let reply = match lock(writer).append(work) {
        Ok(lines) => {
            for line in lines {
                // Nobody following is fine.
                let _ = written.send(line.into());
            }
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, "cannot write the audit log: refusing the calls it would record");
            Err((error.kind(), error.to_string()))
        }
    };
    for done in replies {
        // A caller that went away needs no answer.
        let _ = done.send(reply.clone());
    }
}

fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    writer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::StopSignal;

    fn record(n: u64) -> Record {
        Record {
            caller: serde_json::json!({"kind": "unix", "uid": 1000}),
            rpc: format!("rpc{n}"),
            result: "ok".into(),
            ..Record::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_durable_in_one_chain_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            path: dir.path().join("audit/audit.log"),
            max_bytes: 4096,
        };
        let (log, committer) = AuditLog::open(&config).await.unwrap();
        let stop = StopSignal::new();
        let task = tokio::spawn(committer.run(stop.subscribe()));
        let key = AuditKey::derive(b"store");
        let mut following = log.subscribe();
        let writes: Vec<_> = (0..64)
            .map(|n| {
                let log = log.clone();
                let key = key.clone();
                tokio::spawn(async move { log.write(vec![record(n)], key, log.expect()).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        // One after another: each its own batch, so the 4 KiB limit rotates the log.
        for n in 64..72 {
            log.write(vec![record(n)], key.clone(), log.expect())
                .await
                .unwrap();
        }
        assert!(following.recv().await.unwrap().contains("\"seq\":1,"));
        let (names, verified) = log
            .snapshot(Vec::new())
            .await
            .unwrap()
            .verify(key.clone(), true)
            .await
            .unwrap();
        let verified = verified.unwrap();
        assert_eq!(verified.records, 72);
        assert!(
            names.len() > 1,
            "the 4 KiB limit rotated the log: {names:?}"
        );
        assert_eq!(names.last().unwrap(), "audit.log");
        let (lines, head) = log
            .snapshot(Vec::new())
            .await
            .unwrap()
            .tail(3)
            .await
            .unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(head.seq, 72);
        assert!(lines[2].contains("\"seq\":72,"));

        // Files by name only from the log's own directory.
        assert!(log.snapshot(vec!["audit.log".into()]).await.is_ok());
        let outside = log
            .snapshot(vec!["/etc/passwd".into()])
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            outside.contains("is not a file of tufkeyd's audit log"),
            "{outside}"
        );

        stop.stop();
        task.await.unwrap();
        let error = log
            .write(vec![record(0)], key, log.expect())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("shutting down"), "{error}");
    }
}
