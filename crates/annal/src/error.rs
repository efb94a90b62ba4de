//! The error type of the journal.

use std::fmt;

use crate::event::Expect;

/// Errors of the journal.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The write-ahead log failed: I/O, corruption, lock held, poisoned.
    Wal(annal_wal::Error),
    /// An event could not be encoded, decoded, or folded.
    Projection(annal_projection::Error),
    /// A snapshot or the MANIFEST could not be read or written.
    Compactor(annal_compactor::Error),
    /// An expected-version check failed; nothing was written.
    Conflict {
        /// The stream.
        stream: String,
        /// What the append expected.
        expected: Expect,
        /// The stream's actual version (0: no stream).
        actual: u64,
    },
    /// A registered projection failed to fold an acknowledged event; its state is unavailable
    /// until the journal is reopened with a projection that can fold the log.
    ProjectionFailed {
        /// The projection.
        projection: &'static str,
        /// The event it failed at.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// `state::<P>()` for a projection that was not registered when the journal was opened.
    NotRegistered {
        /// The projection.
        projection: &'static str,
    },
    /// An invalid argument (names what and why); nothing was written.
    Invalid(String),
    /// A repair refused, before changing anything: the damage it names cannot be repaired
    /// without losing what the store must keep. Says what to do instead.
    Unrepairable(String),
    /// A proof, checkpoint or signature does not verify (says what does not match).
    Unverified(String),
}

impl Error {
    /// Whether this is an expected-version conflict or a writer lock held by another process.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. } | Error::Wal(annal_wal::Error::Locked { .. }))
    }

    /// Whether this says the events asked for are no longer held: below the earliest sequence
    /// the log and `archive/` hold (compacted away without archiving), not damage.
    #[must_use]
    pub fn is_before_start(&self) -> bool {
        matches!(self, Error::Wal(annal_wal::Error::BeforeStart { .. }))
    }

    /// Whether this reports damaged data.
    #[must_use]
    pub fn is_integrity(&self) -> bool {
        match self {
            Error::Wal(e) | Error::Projection(annal_projection::Error::Wal(e)) => e.is_integrity(),
            Error::Projection(annal_projection::Error::Envelope { .. })
            | Error::Compactor(annal_compactor::Error::Corrupt { .. })
            | Error::Unrepairable(_)
            | Error::Unverified(_) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wal(e) => e.fmt(f),
            Error::Projection(e) => e.fmt(f),
            Error::Compactor(e) => e.fmt(f),
            Error::Conflict { stream, expected, actual } => write!(
                f,
                "expected-version conflict on stream {stream:?}: expected {expected}, actual version {actual}"
            ),
            Error::ProjectionFailed { projection, seq, reason } => {
                write!(f, "projection {projection} failed at sequence {seq}: {reason}")
            }
            Error::NotRegistered { projection } => write!(
                f,
                "projection {projection} is not registered; register it when opening the journal"
            ),
            Error::Invalid(reason) => f.write_str(reason),
            Error::Unrepairable(reason) => write!(f, "cannot repair: {reason}"),
            Error::Unverified(reason) => write!(f, "does not verify: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Wal(e) => Some(e),
            Error::Projection(e) => Some(e),
            Error::Compactor(e) => Some(e),
            _ => None,
        }
    }
}

impl From<annal_wal::Error> for Error {
    fn from(e: annal_wal::Error) -> Self {
        Error::Wal(e)
    }
}

impl From<annal_projection::Error> for Error {
    fn from(e: annal_projection::Error) -> Self {
        match e {
            annal_projection::Error::Wal(e) => Error::Wal(e),
            e => Error::Projection(e),
        }
    }
}

impl From<annal_compactor::Error> for Error {
    fn from(e: annal_compactor::Error) -> Self {
        Error::Compactor(e)
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
