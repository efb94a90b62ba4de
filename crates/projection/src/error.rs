//! The error type of projections and replay.

use std::fmt;

/// Errors of envelopes, projections and replay.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The write-ahead log failed (I/O, corruption, ...).
    Wal(annal_wal::Error),
    /// A stored event's envelope is malformed.
    Envelope {
        /// Sequence number of the event.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// An event's data does not decode as the type asked for.
    Decode {
        /// Sequence number of the event.
        seq: u64,
        /// The event's stored type.
        event_type: String,
        /// The Rust type it was decoded as.
        target: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// Data does not encode.
    Encode(String),
    /// An argument is invalid (names what and why).
    Invalid(String),
    /// A read found a gap: events were removed (by a compaction) while it read them.
    Gap {
        /// The sequence number the read needed.
        expected: u64,
        /// The one it found instead.
        found: u64,
    },
}

impl Error {
    pub(crate) fn envelope(seq: u64, reason: impl Into<String>) -> Self {
        Error::Envelope { seq, reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wal(e) => e.fmt(f),
            Error::Envelope { seq, reason } => {
                write!(f, "malformed event envelope at sequence {seq}: {reason}")
            }
            Error::Decode { seq, event_type, target, reason } => write!(
                f,
                "event at sequence {seq} of type {event_type:?} does not decode as {target}: {reason}"
            ),
            Error::Encode(reason) => write!(f, "event does not encode: {reason}"),
            Error::Invalid(reason) => f.write_str(reason),
            Error::Gap { expected, found } => write!(
                f,
                "sequence {expected} was removed while it was being read (found {found} next): a compaction ran meanwhile; retry"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Wal(e) => Some(e),
            _ => None,
        }
    }
}

impl From<annal_wal::Error> for Error {
    fn from(e: annal_wal::Error) -> Self {
        Error::Wal(e)
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
