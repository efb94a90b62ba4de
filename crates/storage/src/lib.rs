//! The file-system boundary of the log.
//!
//! Every byte the log reads or writes, and every directory change it makes, goes through
//! [`Storage`] and [`StorageFile`]. Two implementations exist: [`OsStorage`] (the real file system)
//! and [`SimStorage`] (a deterministic, seeded, in-memory file system that keeps live and durable
//! state apart and can crash).
//!
//! The contract both implementations keep, and that the log relies on:
//! - `StorageFile::sync_data` makes the file's bytes and length durable (fdatasync), but not its
//!   directory entry;
//! - `Storage::sync_dir` makes the entries of one directory durable (creations, renames, removals);
//! - nothing else is durable: after a crash, unsynced bytes may be lost, kept, or torn, and
//!   unsynced directory entries may be lost or kept;
//! - bytes that were durable are never damaged by a crash.

mod os;
mod sim;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

pub use os::OsStorage;
pub use sim::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};

/// How [`Storage::open_file`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write; the file must not exist (it is created, mode 0600). Its directory entry is
    /// not durable until the directory is synced.
    CreateNew,
    /// Read and write; created (mode 0600) if missing, truncated to zero length if present.
    CreateTruncate,
}

/// An open file. All I/O is positional, so one handle can be shared by threads.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, extending the file if needed. On error, any prefix of
    /// `buf` may have been written.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes the file's data and length durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;

    /// The file's current (live) length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Where the file's data ends: bytes past it are a hole (never written; they read as
    /// zeros), as a preallocated segment's are. At most [`StorageFile::len`]; a file system that
    /// does not track holes reports `len`, which is always correct, only slower to read.
    fn data_end(&self) -> io::Result<u64> {
        self.len()
    }

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sets the file's length, zero-filling when it grows. Not durable until `sync_data`.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than expected",
                ));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// A held writer lock; dropping it releases the lock.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// The outcome of one attempt to take the writer lock.
#[derive(Debug)]
pub enum LockAttempt {
    /// The lock is ours until the guard is dropped.
    Acquired(Box<dyn LockGuard>),
    /// Another holder has it; `pid` is what the holder wrote into the lock file, when readable.
    Held {
        /// Process id of the holder, if the lock file names one.
        pid: Option<u32>,
    },
}

/// Who a lock file names, and whether the lock is held; see [`Storage::lock_holder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockHolder {
    /// The pid in the lock file, if it names one.
    pub pid: Option<u32>,
    /// Whether a live holder has the lock now.
    pub held: bool,
}

/// A file system: the real one or a simulated one.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates `path` and any missing parents with mode 0700. Returns `true` if `path` itself was
    /// created. New entries are not durable until their parent directory is synced.
    fn create_dir_all(&self, path: &Path) -> io::Result<bool>;

    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// The names (not paths) of the entries of directory `path`, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Opens or creates a file.
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;

    /// A read-only view of a whole file that will not change while it is held (a sealed segment).
    /// The OS implementation maps it with memmap2.
    fn map_file(&self, path: &Path) -> io::Result<Bytes>;

    /// Renames `from` to `to`, replacing `to` if it exists. Not durable until both parent
    /// directories are synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file. Not durable until its directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the entries of directory `path` durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Tries once to take an exclusive lock on the file at `path` (created 0600 if missing), and
    /// on success writes `pid` into it. The lock is released when the guard is dropped or the
    /// process dies.
    fn try_lock(&self, path: &Path, pid: u32) -> io::Result<LockAttempt>;

    /// Whether a live holder has the lock that [`Storage::try_lock`] takes at `path`, and the
    /// pid it wrote there (when readable), without taking the lock: for a reader reporting who
    /// writes. `None` when there is no lock file.
    fn lock_holder(&self, path: &Path) -> io::Result<Option<LockHolder>>;

    /// Wall-clock time in nanoseconds since the Unix epoch (the simulated storage returns a
    /// deterministic clock).
    fn now_nanos(&self) -> u64;

    /// Sleeps for `duration` (the simulated storage may advance its clock instead).
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A failed storage operation: what was being done, to which file or directory, and the OS
/// error.
#[derive(Debug)]
pub struct IoError {
    /// What was being done ("fdatasync", "rename", ...).
    pub op: &'static str,
    /// The file or directory it was done to.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

impl IoError {
    fn at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self { op, path: path.to_path_buf(), source }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Suffix of the temporary files [`write_atomic`] writes: any file ending with it is a leftover
/// of an interrupted replace, which the next open removes.
pub const TMP_SUFFIX: &str = ".tmp";

/// Replaces the file at `path` with `bytes`, atomically and durably: writes `path` +
/// [`TMP_SUFFIX`], fdatasyncs it, renames it over `path`, and fsyncs the directory. A crash at
/// any step leaves either the old file or the new one (plus perhaps the temporary file).
///
/// # Errors
/// The failed step, naming the file.
pub fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let file =
        storage.open_file(&tmp, OpenMode::CreateTruncate).map_err(IoError::at("create", &tmp))?;
    file.write_all_at(bytes, 0).map_err(IoError::at("write", &tmp))?;
    file.sync_data().map_err(IoError::at("fdatasync", &tmp))?;
    drop(file);
    storage.rename(&tmp, path).map_err(IoError::at("rename", &tmp))?;
    storage.sync_dir(dir).map_err(IoError::at("fsync directory", dir))
}

/// Creates `dir` (and missing parents) and makes its entry durable. The parent is fsynced even
/// when the directory existed: an earlier creation whose fsync failed (the process carried on,
/// or restarted without a reboot) left an entry only the page cache holds. Only a directory
/// that existed tolerates a parent this process may not open (mode 0711, say): its entry was
/// made durable by whoever created it, with the right to.
///
/// # Errors
/// The failed step, naming the directory.
pub fn ensure_dir(storage: &dyn Storage, dir: &Path) -> Result<(), IoError> {
    let created = storage.create_dir_all(dir).map_err(IoError::at("create directory", dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        match storage.sync_dir(parent) {
            Err(e) if !created && e.kind() == io::ErrorKind::PermissionDenied => {}
            other => other.map_err(IoError::at("fsync directory", parent))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data_end` never reports less than what was written, and never more than the length;
    /// past it the file reads as zeros. On both file systems.
    #[test]
    fn data_end_bounds_the_written_data() {
        let tmp = std::env::temp_dir().join(format!("annal-storage-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let places: [(Box<dyn Storage>, PathBuf); 2] = [
            (Box::new(OsStorage::new()), tmp.clone()),
            (Box::new(SimStorage::new(4)), PathBuf::from("/s")),
        ];
        for (storage, dir) in places {
            storage.create_dir_all(&dir).unwrap();
            let file = storage.open_file(&dir.join("f"), OpenMode::CreateNew).unwrap();
            assert_eq!(file.data_end().unwrap(), 0, "{storage:?}: empty");
            file.set_len(64 << 20).unwrap();
            file.write_all_at(&[7u8; 100], 0).unwrap();
            file.write_all_at(&[9u8; 10], 3 << 20).unwrap();
            let end = file.data_end().unwrap();
            assert!(((3 << 20) + 10..=64 << 20).contains(&end), "{storage:?}: {end}");
            let mut rest = vec![1u8; usize::try_from((64 << 20) - end).unwrap()];
            file.read_exact_at(&mut rest, end).unwrap();
            assert!(rest.iter().all(|&b| b == 0), "{storage:?}: past data_end reads zeros");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// A lock holder is reported without taking the lock, on both file systems: nobody before
    /// the lock file exists, the holder while its guard lives, nobody once it is dropped (the
    /// pid stays in the file).
    #[test]
    fn the_lock_holder_is_reported_without_taking_the_lock() {
        let tmp = std::env::temp_dir().join(format!("annal-storage-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let places: [(Box<dyn Storage>, PathBuf); 2] = [
            (Box::new(OsStorage::new()), tmp.clone()),
            (Box::new(SimStorage::new(3)), PathBuf::from("/s")),
        ];
        for (storage, dir) in places {
            storage.create_dir_all(&dir).unwrap();
            let lock = dir.join("LOCK");
            assert_eq!(storage.lock_holder(&lock).unwrap(), None, "{storage:?}");
            let LockAttempt::Acquired(guard) = storage.try_lock(&lock, std::process::id()).unwrap()
            else {
                panic!("{storage:?}: the first lock must succeed");
            };
            let holder = LockHolder { pid: Some(std::process::id()), held: true };
            assert_eq!(storage.lock_holder(&lock).unwrap(), Some(holder), "{storage:?}");
            assert_eq!(
                storage.lock_holder(&lock).unwrap(),
                Some(holder),
                "the probe takes nothing"
            );
            assert!(
                matches!(storage.try_lock(&lock, 1).unwrap(), LockAttempt::Held { .. }),
                "{storage:?}: still held by the guard"
            );
            drop(guard);
            let free = LockHolder { held: false, ..holder };
            assert_eq!(storage.lock_holder(&lock).unwrap(), Some(free), "{storage:?}");
            assert!(matches!(storage.try_lock(&lock, 2).unwrap(), LockAttempt::Acquired(_)));
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// The simulated file system, where fsyncing `/locked` fails as a parent directory of mode
    /// 0711 makes it fail for a process that does not own it.
    #[derive(Debug)]
    struct Unreadable(SimStorage);

    impl Storage for Unreadable {
        fn create_dir_all(&self, path: &Path) -> io::Result<bool> {
            self.0.create_dir_all(path)
        }
        fn exists(&self, path: &Path) -> io::Result<bool> {
            self.0.exists(path)
        }
        fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
            self.0.list_dir(path)
        }
        fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
            self.0.open_file(path, mode)
        }
        fn map_file(&self, path: &Path) -> io::Result<Bytes> {
            self.0.map_file(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.0.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            self.0.remove_file(path)
        }
        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            if path == Path::new("/locked") {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            self.0.sync_dir(path)
        }
        fn try_lock(&self, path: &Path, pid: u32) -> io::Result<LockAttempt> {
            self.0.try_lock(path, pid)
        }
        fn lock_holder(&self, path: &Path) -> io::Result<Option<LockHolder>> {
            self.0.lock_holder(path)
        }
        fn now_nanos(&self) -> u64 {
            self.0.now_nanos()
        }
    }

    #[test]
    fn an_existing_directory_tolerates_a_parent_that_cannot_be_synced() {
        let fs = Unreadable(SimStorage::new(1));
        // Creating a directory there needs the parent synced: refused, naming it.
        let err = ensure_dir(&fs, Path::new("/locked/store")).expect_err("a new entry");
        assert_eq!((err.op, err.path.as_path()), ("fsync directory", Path::new("/locked")));
        // Once it exists (made durable by whoever could), opening it again works.
        ensure_dir(&fs, Path::new("/locked/store")).expect("an existing directory");
        ensure_dir(&fs, Path::new("/locked/store/wal")).expect("a parent that can be synced");
    }
}
