//! Files the CLI reads for the daemon or writes from its answers: read with a size
//! bound, written private (0600, directories 0700) and never over an existing file,
//! so a bundle or key file is never replaced by accident or left readable.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use tufkey::{Error, Result};

/// Reads `path`, refusing files larger than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64, action: &'static str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(Error::io(action, path))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io(action, path))?;
    if bytes.len() as u64 > limit {
        return Err(Error::Usage(format!(
            "{} is larger than {limit} bytes: not a file tufkey wrote",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` to a new file `path` (0600), synced; refuses to replace a file.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("creating (it must not exist yet)", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("writing", path))
}

/// Creates `dir` (and its parents) with mode 0700 where missing.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("creating the directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn new_files_are_private_and_never_replace_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.age");
        write_new_private(&path, b"first").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let error = write_new_private(&path, b"second").unwrap_err().to_string();
        assert!(error.contains("must not exist yet"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(read_limited(&path, 5, "reading").unwrap(), b"first");
        assert!(read_limited(&path, 4, "reading").is_err());
    }
}
