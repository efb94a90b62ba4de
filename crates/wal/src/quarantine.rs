//! `quarantine/`: where repairs keep every byte they take out of a store, each file with a note
//! (`NAME.why.txt`) saying where it came from and why. Nothing there is ever overwritten.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::QUARANTINE_DIR;
use crate::storage::{OpenMode, Storage};

/// Saves `bytes`, cut from `from` at byte offset `offset`, as a new file in `dir/quarantine/`
/// with a note, durably (file, note and directory entries are synced before this returns).
/// Returns the new file's path: `FILE_NAME.at-OFFSET`, with `.N` added if a repair before used
/// that name.
///
/// # Errors
/// I/O errors, naming the file.
pub fn save(
    storage: &dyn Storage,
    dir: &Path,
    from: &Path,
    offset: u64,
    bytes: &[u8],
    note: &str,
) -> Result<PathBuf> {
    save_as(storage, dir, from, offset, bytes, "cut", note)
}

fn save_as(
    storage: &dyn Storage,
    dir: &Path,
    from: &Path,
    offset: u64,
    bytes: &[u8],
    how: &str,
    note: &str,
) -> Result<PathBuf> {
    let q = dir.join(QUARANTINE_DIR);
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::io(op, p, e)
    };
    storage.create_dir_all(&q).map_err(io("create directory", &q))?;
    storage.sync_dir(dir).map_err(io("fsync directory", dir))?;
    let base = from.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let name = free_name(storage, &q, &format!("{base}.at-{offset}"))?;
    let path = q.join(&name);
    let file = storage.open_file(&path, OpenMode::CreateTruncate).map_err(io("create", &path))?;
    file.write_all_at(bytes, 0).map_err(io("write", &path))?;
    file.sync_data().map_err(io("fdatasync", &path))?;
    drop(file);
    let why = q.join(format!("{name}.why.txt"));
    let text = format!(
        "{} bytes {how} from {} at byte offset {offset}: {note}\n",
        bytes.len(),
        from.display()
    );
    let file = storage.open_file(&why, OpenMode::CreateTruncate).map_err(io("create", &why))?;
    file.write_all_at(text.as_bytes(), 0).map_err(io("write", &why))?;
    file.sync_data().map_err(io("fdatasync", &why))?;
    storage.sync_dir(&q).map_err(io("fsync directory", &q))?;
    Ok(path)
}

/// Copies the whole file at `path` into quarantine (see [`save`]); the original stays.
///
/// # Errors
/// I/O errors, naming the file.
pub fn copy(storage: &dyn Storage, dir: &Path, path: &Path, note: &str) -> Result<PathBuf> {
    let bytes = storage.map_file(path).map_err(|e| Error::io("read", path, e))?;
    save_as(storage, dir, path, 0, &bytes, "copied", note)
}

/// A name in quarantine starting with `base` that no earlier repair used.
fn free_name(storage: &dyn Storage, q: &Path, base: &str) -> Result<String> {
    for n in 0u32.. {
        let name = if n == 0 { base.to_owned() } else { format!("{base}.{n}") };
        let taken = storage.exists(&q.join(&name)).map_err(|e| Error::io("stat", q, e))?
            || storage
                .exists(&q.join(format!("{name}.why.txt")))
                .map_err(|e| Error::io("stat", q, e))?;
        if !taken {
            return Ok(name);
        }
    }
    unreachable!("u32 names run out only after four billion repairs")
}
