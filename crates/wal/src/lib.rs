//! annal-wal: a segmented write-ahead log of opaque records.
#![deny(missing_docs)]

mod chain;
mod error;
pub mod format;
mod log;
mod reader;
mod recovery;
pub mod scan;
pub mod storage;
mod writer;

pub use chain::{CHAIN_START, ChainValue, chain_next, to_hex};
pub use error::{Error, Result};
pub use log::{
    Appended, Durability, LOCK_FILE, Log, Options, PENDING_BYTES_MAX, QUARANTINE_DIR, Record,
    RecoveryMode, SegmentInfo, WAL_DIR,
};
pub use reader::{Follow, Reader};
pub use recovery::{Cut, RecoveryReport, TornTail};
