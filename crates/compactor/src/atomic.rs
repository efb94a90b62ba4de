//! Replacing a file atomically: write a temporary file, fdatasync it, rename it over the
//! target, fsync the directory. A crash at any step leaves either the old file or the new one,
//! plus perhaps a `.tmp` file that the next open removes.

use std::path::Path;

use annal_wal::storage::{OpenMode, Storage};

use crate::error::{Error, Result};

/// Suffix of temporary files; any file ending with it is a leftover of an interrupted write.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically and durably.
///
/// # Errors
/// Any failed step, naming the file.
pub fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no directory", path.display())))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = std::path::PathBuf::from(tmp);
    let file = storage
        .open_file(&tmp, OpenMode::CreateTruncate)
        .map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all_at(bytes, 0).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(file);
    storage.rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(())
}

/// Creates `dir` (and parents) if missing and fsyncs its parent, even when it existed: an
/// earlier creation whose fsync failed left an entry only the page cache holds.
///
/// # Errors
/// Any failed step.
pub fn ensure_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage.create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        storage.sync_dir(parent).map_err(|e| Error::io("fsync directory", parent, e))?;
    }
    Ok(())
}

/// Reads a whole file, refusing one longer than `max` bytes before allocating.
///
/// # Errors
/// I/O errors; `Corrupt` if the file is longer than `max`.
pub fn read_limited(storage: &dyn Storage, path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = storage.open_file(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    if len > max {
        return Err(Error::corrupt(
            path,
            0,
            format!("file of {len} bytes is over the limit of {max}"),
        ));
    }
    let mut bytes = vec![0u8; usize::try_from(len).expect("below the limit")];
    file.read_exact_at(&mut bytes, 0).map_err(|e| Error::io("read", path, e))?;
    Ok(bytes)
}
