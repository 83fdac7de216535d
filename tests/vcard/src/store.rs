//! Card storage: trussed's three littlefs filesystems (internal, external,
//! volatile). With `--state-file` the internal and external filesystems live
//! in one file (two regions of `REGION_SIZE` bytes each), so keys, PIN/PUK
//! state, the management key and certificates survive a process restart.
//! Writes go straight to the file (no caching in this process), so killing
//! the process at any point loses nothing that the card acknowledged.

use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::Path,
    sync::Arc,
};

use littlefs2::{
    consts::{U512, U8},
    driver::Storage,
    io::{Error, Result},
};
use trussed::virt::{StorageConfig, StoreConfig};

const BLOCK_SIZE: usize = 512;
const BLOCK_COUNT: usize = 512;
/// Bytes per filesystem region (256 KiB; a YubiKey has ~ 50 KiB for data objects).
pub const REGION_SIZE: usize = BLOCK_SIZE * BLOCK_COUNT;
const MAGIC: &[u8; 16] = b"tufkey-vcard-v1\n";
/// The file: 512-byte header (magic), then region 0 (internal), region 1 (external).
const HEADER: u64 = 512;
const FILE_LEN: u64 = HEADER + 2 * REGION_SIZE as u64;

/// One region of the state file, seen by littlefs as a flash device.
struct FileRegion<const IDX: u64> {
    file: Arc<File>,
}

impl<const IDX: u64> FileRegion<IDX> {
    fn base(&self) -> u64 {
        HEADER + IDX * REGION_SIZE as u64
    }
}

impl<const IDX: u64> Storage for FileRegion<IDX> {
    const READ_SIZE: usize = 16;
    const WRITE_SIZE: usize = 16;
    const BLOCK_SIZE: usize = BLOCK_SIZE;
    const BLOCK_COUNT: usize = BLOCK_COUNT;
    const BLOCK_CYCLES: isize = -1;
    type CACHE_SIZE = U512;
    type LOOKAHEAD_SIZE = U8;

    fn read(&mut self, off: usize, buf: &mut [u8]) -> Result<usize> {
        if off + buf.len() > REGION_SIZE {
            return Err(Error::IO);
        }
        self.file
            .read_exact_at(buf, self.base() + off as u64)
            .map_err(|e| {
                log::error!("state file read failed: {e}");
                Error::IO
            })?;
        Ok(buf.len())
    }

    fn write(&mut self, off: usize, data: &[u8]) -> Result<usize> {
        if off + data.len() > REGION_SIZE {
            return Err(Error::NO_SPACE);
        }
        self.file
            .write_all_at(data, self.base() + off as u64)
            .map_err(|e| {
                log::error!("state file write failed: {e}");
                Error::IO
            })?;
        Ok(data.len())
    }

    fn erase(&mut self, off: usize, len: usize) -> Result<usize> {
        if off + len > REGION_SIZE {
            return Err(Error::NO_SPACE);
        }
        let ones = vec![0xFFu8; len];
        self.file
            .write_all_at(&ones, self.base() + off as u64)
            .map_err(|e| {
                log::error!("state file erase failed: {e}");
                Error::IO
            })?;
        Ok(len)
    }
}

/// RAM-only store (card forgets everything when the process stops).
pub fn ram() -> StoreConfig<'static> {
    StoreConfig::ram()
}

/// File-backed store; creates and formats the file if it does not exist.
pub fn file(path: &Path) -> std::io::Result<StoreConfig<'static>> {
    let fresh = match std::fs::metadata(path) {
        Ok(m) if m.len() == FILE_LEN => {
            let f = File::open(path)?;
            let mut magic = [0u8; 16];
            f.read_exact_at(&mut magic, 0)?;
            if &magic != MAGIC {
                return Err(std::io::Error::other(format!(
                    "{} is not a tufkey-vcard state file",
                    path.display()
                )));
            }
            false
        }
        Ok(m) => {
            return Err(std::io::Error::other(format!(
                "{} has size {} (expected {FILE_LEN}); not a tufkey-vcard state file",
                path.display(),
                m.len()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if fresh {
        file.set_len(FILE_LEN)?;
        file.write_all_at(MAGIC, 0)?;
        log::info!("created new card state file {}", path.display());
    } else {
        log::info!("using existing card state file {}", path.display());
    }
    let file = Arc::new(file);
    Ok(StoreConfig {
        internal: StorageConfig {
            storage: Box::new(FileRegion::<0> { file: file.clone() }),
            format: fresh,
        },
        external: StorageConfig {
            storage: Box::new(FileRegion::<1> { file }),
            format: fresh,
        },
        volatile: StorageConfig::ram(),
    })
}
