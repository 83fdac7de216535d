//! [`Writer`]: appends sealed records to the current file, fsyncs them, and rotates
//! the file when a batch would grow it past its size limit (a batch is never split
//! across files). It runs on the log's writer thread, one batch at a time (see
//! [`super::log`]).
//!
//! A batch is all or nothing: if writing or syncing it fails, the file is cut back
//! to where the batch began (so a full disk leaves no half record behind) and no
//! record of it counts as written. If even that fails, the writer refuses every
//! later batch until the daemon restarts, rather than chain onto an unknown state.

use super::files;
use super::key::AuditKey;
use super::record::{line_hash, Record, GENESIS};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The last record written: the chain continues from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// 0 before the first record.
    pub seq: u64,
    /// Hex SHA-256 of its line ([`GENESIS`] before the first record).
    pub hash: String,
}

/// The open current file and the head of the chain.
pub struct Writer {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    size: u64,
    head: Head,
    /// Why the writer refuses to go on, after a failure it could not undo.
    broken: Option<String>,
}

/// Gives the owner back the bits a umask took from a directory just created (under
/// systemd's `UMask=0177`, `mkdir 0700` yields 0600: a directory tufkeyd could not
/// enter); the rest of the mode is left as it is.
fn ensure_owner_can_enter(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)
        .map_err(Error::io("reading the audit log directory", dir))?
        .permissions()
        .mode();
    if mode & 0o700 == 0o700 {
        return Ok(());
    }
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode((mode & 0o7777) | 0o700),
    )
    .map_err(Error::io(
        "setting permissions on the audit log directory",
        dir,
    ))
}

impl Writer {
    /// Opens (creating if needed) the log at `path` and finds the head of the chain
    /// in its last record. An incomplete last line (the daemon died mid-write, so no
    /// caller was ever told it was written) is cut off, with a warning.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self> {
        let dir = files::parent(path);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io("creating the audit log directory", dir))?;
        ensure_owner_can_enter(dir)?;
        let mut file = open_append(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(Error::io("reading the audit log", path))?;
        let complete = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        if complete < bytes.len() {
            tracing::warn!(log = %path.display(), bytes = bytes.len() - complete, "the audit log ends in an incomplete record (the daemon stopped while writing it); cutting it off");
            file.set_len(complete as u64)
                .and_then(|()| file.sync_data())
                .map_err(Error::io("repairing the audit log", path))?;
            bytes.truncate(complete);
        }
        let mut head = last_record(path, &bytes)?;
        if head.is_none() {
            if let Some((_, previous)) = files::list_rotated(path)
                .map_err(Error::io("listing the audit log's files", dir))?
                .pop()
            {
                let bytes = std::fs::read(&previous)
                    .map_err(Error::io("reading the audit log", &previous))?;
                head = last_record(&previous, &bytes)?;
            }
        }
        Ok(Writer {
            path: path.to_path_buf(),
            max_bytes,
            file,
            size: bytes.len() as u64,
            head: head.unwrap_or_else(|| Head {
                seq: 0,
                hash: GENESIS.into(),
            }),
            broken: None,
        })
    }

    /// The last record written.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The current file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals `records` (each batch with its key) onto the chain, writes them and
    /// fsyncs; returns their lines. Nothing counts as written unless this returns Ok.
    pub fn append(
        &mut self,
        batches: Vec<(Vec<Record>, AuditKey)>,
    ) -> std::io::Result<Vec<String>> {
        if let Some(why) = &self.broken {
            return Err(std::io::Error::other(why.clone()));
        }
        let time = now();
        let mut head = self.head.clone();
        let mut lines = Vec::new();
        let mut bytes = Vec::new();
        for (records, key) in batches {
            for mut record in records {
                let line = record.seal(head.seq + 1, time.clone(), head.hash.clone(), &key);
                head = Head {
                    seq: head.seq + 1,
                    hash: line_hash(line.as_bytes()),
                };
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                lines.push(line);
            }
        }
        if self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        if let Err(error) = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            self.undo();
            return Err(error);
        }
        self.size += bytes.len() as u64;
        self.head = head;
        Ok(lines)
    }

    /// Cuts the file back to the records already written.
    fn undo(&mut self) {
        if let Err(error) = self
            .file
            .set_len(self.size)
            .and_then(|()| self.file.sync_data())
        {
            let why = format!(
                "cutting a failed write off {} failed ({error}); restart tufkeyd once the problem is fixed",
                self.path.display()
            );
            tracing::error!("{why}");
            self.broken = Some(why);
        }
    }

    /// Moves the current file aside as the next numbered file and starts a new one.
    /// The chain goes on: the new file's first record points at the old file's last.
    fn rotate(&mut self) -> std::io::Result<()> {
        let number = files::list_rotated(&self.path)?
            .last()
            .map_or(1, |(number, _)| number + 1);
        let rotated = files::rotated(&self.path, number);
        if rotated.exists() {
            return Err(std::io::Error::other(format!(
                "{} already exists",
                rotated.display()
            )));
        }
        std::fs::rename(&self.path, &rotated)?;
        let file =
            open_append(&self.path).map_err(|error| std::io::Error::other(error.to_string()))?;
        File::open(files::parent(&self.path))?.sync_all()?;
        tracing::info!(log = %self.path.display(), rotated = %rotated.display(), seq = self.head.seq, "rotated the audit log");
        self.file = file;
        self.size = 0;
        Ok(())
    }
}

/// Opens the current file for appending (0600), creating it (and syncing its
/// directory) if needed.
fn open_append(path: &Path) -> Result<File> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("opening the audit log", path))?;
    if !existed {
        File::open(files::parent(path))
            .and_then(|dir| dir.sync_all())
            .map_err(Error::io(
                "syncing the audit log directory",
                files::parent(path),
            ))?;
    }
    Ok(file)
}

/// The last record's seq and line hash, if the file has any.
fn last_record(path: &Path, bytes: &[u8]) -> Result<Option<Head>> {
    let Some(line) = bytes.split(|&b| b == b'\n').rfind(|line| !line.is_empty()) else {
        return Ok(None);
    };
    let record: Record = serde_json::from_slice(line).map_err(|error| Error::AuditDamaged {
        path: path.to_path_buf(),
        problem: format!("its last record does not parse ({error})"),
    })?;
    Ok(Some(Head {
        seq: record.seq,
        hash: line_hash(line),
    }))
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rpc: &str) -> Record {
        Record {
            caller: serde_json::json!({"kind": "unix", "uid": 1}),
            rpc: rpc.into(),
            result: "ok".into(),
            ..Record::default()
        }
    }

    #[test]
    fn the_chain_continues_across_restarts_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/audit.log");
        let key = AuditKey::derive(b"k");
        let mut writer = Writer::open(&path, 600).unwrap();
        assert_eq!(writer.head().seq, 0);
        let lines = writer
            .append(vec![(vec![record("a"), record("b")], key.clone())])
            .unwrap();
        assert_eq!(lines.len(), 2);
        let first: Record = serde_json::from_str(&lines[0]).unwrap();
        let second: Record = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!((first.seq, first.prev.as_str()), (1, GENESIS));
        assert_eq!(second.prev, line_hash(lines[0].as_bytes()));
        drop(writer);

        let mut writer = Writer::open(&path, 600).unwrap();
        assert_eq!(
            writer.head().seq,
            2,
            "a restarted writer continues the chain"
        );
        for n in 0..4 {
            writer
                .append(vec![(vec![record(&format!("r{n}"))], key.clone())])
                .unwrap();
        }
        let files = files::list_all(&path).unwrap();
        assert!(files.len() >= 2, "the log rotated: {files:?}");
        let text: Vec<String> = files
            .iter()
            .map(|file| std::fs::read_to_string(file).unwrap())
            .collect();
        assert!(text.iter().all(|text| text.len() <= 600));
        let records: Vec<Record> = text
            .concat()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        let first_of_new_file: Record =
            serde_json::from_str(text.last().unwrap().lines().next().unwrap()).unwrap();
        let last_of_old_file = text[text.len() - 2].lines().last().unwrap();
        assert_eq!(
            first_of_new_file.prev,
            line_hash(last_of_old_file.as_bytes())
        );
        // Reopening with an empty current file continues from the rotated file.
        std::fs::write(&path, b"").unwrap();
        let head_seq = Writer::open(&path, 600).unwrap().head().seq;
        assert_eq!(head_seq, first_of_new_file.seq - 1);
    }

    #[test]
    fn an_incomplete_last_line_is_cut_off_and_a_damaged_one_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = AuditKey::derive(b"k");
        let mut writer = Writer::open(&path, 1 << 20).unwrap();
        let lines = writer.append(vec![(vec![record("a")], key)]).unwrap();
        drop(writer);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(r#"{"seq":2,"ti"#);
        std::fs::write(&path, &text).unwrap();
        let writer = Writer::open(&path, 1 << 20).unwrap();
        assert_eq!(writer.head().seq, 1);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            lines[0].clone() + "\n"
        );
        drop(writer);
        std::fs::write(&path, "garbage\n").unwrap();
        let error = Writer::open(&path, 1 << 20).err().unwrap().to_string();
        assert!(error.contains("its last record does not parse"), "{error}");
    }
}
