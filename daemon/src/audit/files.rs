//! The log's files on disk: the current file (`audit.log`, or whatever
//! `--audit-log` names) and the files rotated out of it, `audit.log.000001`,
//! `audit.log.000002`, ... numbered in the order they were written, so the whole
//! log is: every rotated file by number, then the current file.

use std::path::{Path, PathBuf};

/// The name of the `number`th rotated file beside `current`.
pub fn rotated(current: &Path, number: u64) -> PathBuf {
    let mut name = current.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{number:06}"));
    current.with_file_name(name)
}

/// The rotated files beside `current`, oldest first, with their numbers.
pub fn list_rotated(current: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let dir = parent(current);
    let Some(base) = current.file_name().and_then(|name| name.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((number, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Every file of the log, oldest first (the current file last, if it exists).
pub fn list_all(current: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = list_rotated(current)?
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    if current.exists() {
        files.push(current.to_path_buf());
    }
    Ok(files)
}

/// The directory holding `current`.
pub fn parent(current: &Path) -> &Path {
    match current.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_sort_by_number_and_the_current_file_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("audit.log");
        for name in [
            "audit.log",
            "audit.log.000010",
            "audit.log.000002",
            "audit.log.x",
            "other.log.000001",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(rotated(&current, 3), dir.path().join("audit.log.000003"));
        let names: Vec<String> = list_all(&current)
            .unwrap()
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["audit.log.000002", "audit.log.000010", "audit.log"]);
    }
}
