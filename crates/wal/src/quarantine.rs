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
    let why = q.join(format!("{name}.why.txt"));
    let text = format!(
        "{} bytes {how} from {} at byte offset {offset}: {note}\n",
        bytes.len(),
        from.display()
    );
    let written = write_file(storage, &path, bytes)
        .and_then(|()| write_file(storage, &why, text.as_bytes()))
        .and_then(|()| storage.sync_dir(&q).map_err(io("fsync directory", &q)));
    if let Err(e) = written {
        // A failed save (a full disk, say) leaves no partial file behind: the bytes are still
        // where they came from.
        for p in [&path, &why] {
            let _ = storage.remove_file(p);
        }
        return Err(e);
    }
    Ok(path)
}

fn write_file(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage
        .open_file(path, OpenMode::CreateTruncate)
        .map_err(|e| Error::io("create", path, e))?;
    file.write_all_at(bytes, 0).map_err(|e| Error::io("write", path, e))?;
    file.sync_data().map_err(|e| Error::io("fdatasync", path, e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Fault, FaultKind, FaultOp, SimStorage};

    #[test]
    fn a_save_that_fails_leaves_no_partial_file() {
        let sim = SimStorage::new(1);
        let dir = Path::new("/store");
        sim.create_dir_all(dir).expect("dir");
        for nth in [1, 2] {
            sim.inject(Fault { op: FaultOp::Write, nth, kind: FaultKind::Enospc });
            let from = Path::new("/store/wal/00000000000000000001.seg");
            assert!(save(&sim, dir, from, 64, b"cut bytes", "why").is_err(), "write #{nth}");
            let left = sim.list_dir(&dir.join(QUARANTINE_DIR)).expect("quarantine dir");
            assert!(left.is_empty(), "write #{nth} failed and left {left:?}");
        }
        let saved = save(&sim, dir, Path::new("x.seg"), 0, b"ok", "why").expect("save");
        assert_eq!(sim.file_bytes(&saved).expect("saved"), b"ok");
    }
}
