//! annal-wal: a segmented, checksummed, crash-safe write-ahead log of opaque records.
//!
//! Records get gapless sequence numbers from 1 and non-decreasing nanosecond timestamps. They are
//! stored in frames (one record, or an atomic batch) with a CRC32 over header and payload, in
//! segment files named by their first sequence number, sealed with an index block and a footer
//! when full. Every record extends a blake3 hash chain for audit trails.
//!
//! # What holds after a crash
//! - With [`Durability::Sync`] (the default) an append returns only after an fdatasync covering
//!   it (and a directory fsync for a new segment): it survives a process crash or power loss.
//!   Concurrent appenders share one fdatasync (group commit).
//! - A batch is all-or-nothing.
//! - After recovery the log is a gapless prefix of what was appended, byte for byte.
//! - A torn tail (incomplete or unsynced final frames) is cut off and reported in the
//!   [`RecoveryReport`], its bytes kept in `quarantine/`. Any other damage (a bad frame below the
//!   durable watermark, a damaged sealed segment) is an [`Error::Corrupt`] naming the file, byte
//!   offset and sequence number; [`RecoveryMode::TruncateAtCorruption`] is the explicit repair.
//! - After a failed write or fsync the log is poisoned: it refuses writes until reopened, and
//!   never acknowledges a record whose fsync failed.
//! - One writer per directory (an OS file lock, released if the process dies); readers in other
//!   processes use [`Reader::open`] and never modify files.
//!
//! # What it does not do
//! It does not interpret payloads, and it does not protect against a file system that corrupts
//! data it reported as synced beyond what checksums detect. Opening checks sealed segments by
//! header and footer only (opening costs O(written data of the active segment): never its
//! preallocated zeros); their frames are checked when read.
//!
//! All I/O goes through the [`Storage`](annal_storage::Storage) trait of the `annal-storage`
//! crate: [`OsStorage`](annal_storage::OsStorage) for real files, and
//! [`SimStorage`](annal_storage::SimStorage), a simulated file system that can crash, tear
//! writes and inject EIO or ENOSPC, for testing.
//!
//! # Example
//! ```
//! use annal_wal::{Durability, Log, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), Options { durability: Durability::Sync, ..Options::default() })?;
//! let first = log.append(b"account opened")?;
//! let batch = log.append_batch(&[&b"deposit 10"[..], &b"withdraw 3"[..]])?;
//! assert_eq!((first.first, batch.first, batch.last), (1, 2, 3));
//!
//! let payloads: Vec<Vec<u8>> =
//!     log.read_from(2).map(|r| r.map(|r| r.payload.to_vec())).collect::<Result<_, _>>()?;
//! assert_eq!(payloads, vec![b"deposit 10".to_vec(), b"withdraw 3".to_vec()]);
//! let head = log.chain_head()?;
//! log.close()?;
//!
//! let log = Log::open(dir.path(), Options::default())?;
//! assert!(log.recovery_report().is_clean());
//! assert_eq!(log.chain_head()?, head);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod chain;
mod error;
mod evidence;
pub mod format;
mod lock;
mod log;
pub mod quarantine;
mod reader;
mod recovery;
pub mod salvage;
pub mod scan;
use annal_storage as storage;
mod verify;
mod view;
mod writer;

pub use chain::{CHAIN_START, ChainValue, chain_next, to_hex};
pub use error::{Error, Result};
pub use format::StoreKind;
pub use lock::lock_store;
pub use log::{
    ARCHIVE_DIR, Appended, Durability, LOCK_FILE, Log, LogView, Options, PENDING_BYTES_MAX,
    QUARANTINE_DIR, Record, RecoveryMode, SegmentInfo, Stats, WAL_DIR,
};
pub use reader::{Follow, Reader};
pub use recovery::{Cut, RecoveryReport, TornTail};
pub use verify::{Problem, VerifyReport};
pub use view::{DirView, SegmentSummary, Summary, check_store_kind};
pub use writer::{Ticket, check_batch};

/// The crate README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctest;
