//! The error type of the log.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of the write-ahead log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    Io {
        /// What was being done ("fdatasync", "write", ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Bytes on disk are damaged where they must be intact (a sealed segment, a frame below the
    /// durable watermark, a segment header or footer), or a segment is missing.
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in the file.
        offset: u64,
        /// Sequence number expected at that offset.
        seq: u64,
        /// What was wrong.
        reason: String,
    },
    /// In [`RecoveryMode::Strict`](crate::RecoveryMode::Strict), the active segment ends in an
    /// incomplete or unsynced frame.
    TornTail {
        /// The active segment.
        file: PathBuf,
        /// Offset where the valid data ends.
        offset: u64,
        /// Bytes after it that are not zeros.
        len: u64,
    },
    /// Another writer holds the lock.
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Process id of the holder, if the lock file names one.
        pid: Option<u32>,
    },
    /// A write or fsync failed earlier; the log refuses writes until it is reopened.
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },
    /// A record or batch larger than a frame can hold.
    TooLarge {
        /// Bytes needed.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A batch with no records.
    EmptyBatch,
    /// A sequence number outside the log.
    OutOfRange {
        /// What was asked for.
        seq: u64,
        /// First sequence number in the log.
        first: u64,
        /// Last sequence number in the log (first - 1 when empty).
        last: u64,
    },
    /// A read asked for a sequence number that is no longer held: below the earliest record in
    /// `wal/` and `archive/` (compaction deleted it), or one a reader had not reached when a
    /// compaction removed it. Never skipped.
    BeforeStart {
        /// What was asked for.
        seq: u64,
        /// The earliest sequence number that can be read now.
        earliest: u64,
    },
    /// An invalid option.
    InvalidOption(String),
    /// The directory holds a store of another kind: a journal opened as a raw log, or the
    /// other way round. Nothing was changed.
    WrongKind {
        /// The segment whose header records the kind.
        file: PathBuf,
        /// What the store holds.
        found: crate::StoreKind,
        /// What it was opened as.
        wanted: crate::StoreKind,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        seq: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt { file: file.into(), offset, seq, reason: reason.into() }
    }

    /// Whether this error reports damaged data (corruption or, in strict mode, a torn tail).
    #[must_use]
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::TornTail { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::Corrupt { file, offset, seq, reason } => write!(
                f,
                "corruption in {} at byte offset {offset} (sequence {seq}): {reason}",
                file.display()
            ),
            Error::TornTail { file, offset, len } => write!(
                f,
                "torn tail in {}: {len} bytes after byte offset {offset} are not a complete frame \
                 (open with RecoveryMode::TolerateTornTail to truncate them)",
                file.display()
            ),
            Error::Locked { path, pid: Some(pid) } => {
                write!(f, "log is locked by another writer (pid {pid}, lock {})", path.display())
            }
            Error::Locked { path, pid: None } => {
                write!(f, "log is locked by another writer (lock {})", path.display())
            }
            Error::Poisoned { cause } => write!(
                f,
                "log refuses writes after an earlier I/O failure ({cause}); reopen it to recover"
            ),
            Error::TooLarge { bytes, max } => {
                write!(f, "{bytes} bytes do not fit in one frame (at most {max})")
            }
            Error::EmptyBatch => f.write_str("a batch needs at least one record"),
            Error::OutOfRange { seq, first, last } => {
                write!(f, "sequence {seq} is outside the log ({first}..={last})")
            }
            Error::BeforeStart { seq, earliest } => write!(
                f,
                "sequence {seq} is no longer held: the earliest reachable sequence is {earliest} \
                 (compaction removed what lies below; compact with archiving to keep it readable)"
            ),
            Error::InvalidOption(what) => write!(f, "invalid option: {what}"),
            Error::WrongKind { file, found, wanted } => write!(
                f,
                "{} holds {found}, not {wanted} (store kind {} in the header of {}); nothing \
                 was changed",
                file.parent().and_then(Path::parent).unwrap_or(file).display(),
                found.code(),
                file.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io { op: "I/O", path: PathBuf::new(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::storage::IoError> for Error {
    fn from(e: crate::storage::IoError) -> Self {
        Error::Io { op: e.op, path: e.path, source: e.source }
    }
}
