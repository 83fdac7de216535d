//! Private files on disk: atomic, durable writes.

use super::durable::Disk;
use super::error::{Result, SoftwareError};
use rand_core::{OsRng, RngCore};
use std::path::Path;

/// Prefix of the temporary files an interrupted write can leave behind.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Writes `bytes` to `dir/name` through `disk` so that, even across a crash, the
/// file is either absent or complete: a temp file (0600) is written, fsynced,
/// renamed into place without replacing anything, and the directory fsynced. It
/// returns `Ok` only once all of that is durable. On an error before the rename the
/// temp file is removed; one a crash leaves behind is removed by the next scan.
pub fn write_new_file_atomically<D: Disk>(
    disk: &D,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let target = dir.join(name);
    let temp = dir.join(format!("{TEMP_PREFIX}{:016x}", OsRng.next_u64()));
    let mut file = disk
        .create_new(&temp)
        .map_err(SoftwareError::io("creating a temporary file in", dir))?;
    let placed = disk
        .write_all(&mut file, bytes)
        .map_err(SoftwareError::io("writing", &temp))
        .and_then(|()| {
            disk.sync_file(&mut file)
                .map_err(SoftwareError::io("syncing", &temp))
        })
        .and_then(|()| {
            disk.rename_noclobber(&temp, &target)
                .map_err(SoftwareError::io("renaming into place", &target))
        });
    drop(file);
    if let Err(error) = placed {
        if let Err(cleanup) = disk.remove_file(&temp) {
            tracing::warn!(file = %temp.display(), %cleanup, "could not remove the temporary file of a failed write; the next start removes it");
        }
        return Err(error);
    }
    sync_dir(disk, dir)
}

/// Removes `path` through `disk` and fsyncs its directory.
pub fn remove_file_durably<D: Disk>(disk: &D, path: &Path) -> Result<()> {
    disk.remove_file(path)
        .map_err(SoftwareError::io("removing", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(disk, dir)?;
    }
    Ok(())
}

fn sync_dir<D: Disk>(disk: &D, dir: &Path) -> Result<()> {
    disk.sync_dir(dir)
        .map_err(SoftwareError::io("syncing directory", dir))
}
