//! Reading a whole file with a bound on its size.

use std::path::Path;

use annal_storage::{OpenMode, Storage};

use crate::error::{Error, Result};

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
