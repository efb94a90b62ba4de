//! The writer lock: one writer per directory (`DIR/LOCK`, an OS file lock holding the pid),
//! taken by [`Log::open`](crate::Log::open) and by a repair through [`lock_store`].

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::log::LOCK_FILE;
use crate::storage::{LockAttempt, LockGuard, Storage};

/// Takes the writer lock of the store in `dir` (waiting up to `timeout`) without opening the
/// log: for a repair that changes files no writer may touch while it runs. The lock is released
/// when the guard is dropped; [`Log::open`](crate::Log::open) takes it again.
///
/// # Errors
/// `Locked` if another writer holds it; `Io`.
pub fn lock_store(
    storage: &dyn Storage,
    dir: &Path,
    timeout: Option<Duration>,
) -> Result<Box<dyn crate::storage::LockGuard>> {
    let guard = acquire(storage, dir, timeout)?;
    storage.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(guard)
}

/// A lock holder's pid as log lines show it.
fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

pub(crate) fn acquire(
    storage: &dyn Storage,
    dir: &Path,
    timeout: Option<Duration>,
) -> Result<Box<dyn LockGuard>> {
    const LOCK_POLL_MS: u64 = 10;
    let path = dir.join(LOCK_FILE);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut waited = false;
    loop {
        match storage.try_lock(&path, std::process::id()) {
            Ok(LockAttempt::Acquired(guard)) => {
                if waited {
                    tracing::info!(lock = %path.display(), "took the writer lock after waiting");
                }
                return Ok(guard);
            }
            Ok(LockAttempt::Held { pid }) => {
                if deadline.is_none_or(|d| Instant::now() >= d) {
                    if waited {
                        tracing::warn!(lock = %path.display(), pid = %pid_text(pid), "gave up waiting for the writer lock");
                    }
                    return Err(Error::Locked { path, pid });
                }
                if !waited {
                    let timeout = timeout.map_or_else(|| "none".to_owned(), |t| format!("{t:?}"));
                    tracing::info!(lock = %path.display(), pid = %pid_text(pid), %timeout, "waiting for the writer lock");
                    waited = true;
                }
                storage.sleep(Duration::from_millis(LOCK_POLL_MS));
            }
            Err(e) => return Err(Error::io("lock", path, e)),
        }
    }
}
