//! annal: an embedded, event-sourced, append-only journal.
//!
//! Append typed events to streams, with expected-version checks; read them back by sequence
//! range or stream, or subscribe to follow new ones; fold them into projections kept current
//! as events are acknowledged; and replay any projection up to any sequence number or time
//! (time travel).
//!
//! # Guarantees
//! Events live in an [`annal_wal`] log: with the default `Durability::Sync`, an append returns
//! after an fdatasync covering it; an append (to one stream or, with
//! [`Journal::append_multi`], to several) is all-or-nothing after a crash; after recovery the
//! journal is a gapless prefix of what was appended. Checking expected versions and appending
//! are one step: of concurrent appends expecting the same version, exactly one succeeds.
//! [`Journal::state`] always equals a replay to the end.
//!
//! Events are stored as MessagePack with named fields, so any event can be read without its
//! Rust type, as JSON ([`Journal::read_raw`]).
//!
//! # Example
//! ```
//! use annal::{Envelope, Expect, Journal, Projection, Query, TypedEvent, Until};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(tag = "kind")]
//! enum Account {
//!     Opened { owner: String },
//!     Deposited { amount: u64 },
//! }
//! impl TypedEvent for Account {
//!     fn event_type(&self) -> &str {
//!         match self {
//!             Account::Opened { .. } => "opened",
//!             Account::Deposited { .. } => "deposited",
//!         }
//!     }
//! }
//!
//! /// Total deposited, over all accounts.
//! struct Deposits;
//! impl Projection for Deposits {
//!     const NAME: &'static str = "deposits";
//!     const SCHEMA_VERSION: u32 = 1;
//!     type Event = Account;
//!     type State = u64;
//!     fn apply(total: &mut u64, event: &Envelope<'_, Account>) {
//!         if let Account::Deposited { amount } = event.data {
//!             *total += amount;
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let journal = Journal::options().projection::<Deposits>().open(dir.path())?;
//! journal.append("acct-1", Expect::NoStream, [Account::Opened { owner: "ada".into() }])?;
//! let a = journal.append("acct-1", Expect::Exact(1), [Account::Deposited { amount: 10 }])?;
//! journal.append("acct-1", Expect::Exact(2), [Account::Deposited { amount: 5 }])?;
//!
//! assert_eq!(journal.state::<Deposits>()?, 15);                       // live state
//! assert_eq!(journal.replay::<Deposits>(Until::Seq(a.last))?.0, 10);  // time travel
//! let conflict = journal.append("acct-1", Expect::Exact(1), [Account::Deposited { amount: 1 }]);
//! assert!(conflict.is_err_and(|e| e.is_conflict()));
//!
//! let first = journal.read_raw(Query::all().stream("acct-1").limit(1)).next().unwrap()?;
//! assert_eq!(first.data["owner"], "ada");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod checkpoints;
mod compact;
mod error;
mod event;
mod journal;
mod live;
mod progress;
mod read;
mod reader;
mod repair;
mod replay;
mod tree;

pub use annal_compactor::{Manifest, SnapshotRef};
pub use annal_projection::envelope::{EVENT_TYPE_BYTES_MAX, STREAM_NAME_BYTES_MAX};
pub use annal_projection::{
    Counts, CountsState, Entities, Entity, Envelope, Event, Meta, MetaRef, Projection, RawEvent,
    StreamIndex, Until,
};
pub use annal_wal::{
    ChainValue, Durability, LogView, Record, RecoveryMode, RecoveryReport, SegmentSummary, WAL_DIR,
    chain_next, to_hex,
};
pub use checkpoints::{CHECKPOINTS_DIR, WrittenCheckpoint};
pub use compact::{CompactReport, VerifyReport};
pub use error::{Error, Result};
pub use event::{Appended, Expect, NewEvent, TypedEvent};
pub use journal::{Journal, JournalOptions, KEEP_SNAPSHOTS_DEFAULT, Loaded};
pub use progress::{PROGRESS_EVERY, Progress};
pub use read::{Events, Query};
pub use reader::{Chained, ChainedRecords, JournalReader, Records, Summary};
pub use repair::{RepairReport, Restart, Salvaged, salvage};
pub use tree::{ConsistencyProof, InclusionProof, TREE_HASH, leaf_data, leaf_hash};

/// Merkle trees, proofs, checkpoints and signed notes, checkable without a store.
pub use annal_tlog as tlog;

/// The write-ahead log under the journal.
pub use annal_wal as wal;

/// The file-system boundary: the real file system and the simulated one the journal can be
/// opened on (`JournalOptions::storage`).
pub use annal_storage as storage;

/// The README's library examples, compiled and run as doctests (each in a temporary
/// directory, so they run any number of times).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The crate README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctest;
