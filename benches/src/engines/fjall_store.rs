//! The `fjall` engine: a fjall 3 database with one keyspace, `events`, at default options, each
//! event one entry keyed by its sequence number (big-endian, so that key order is sequence
//! order), the sequence numbers taken from an atomic counter so that concurrent writers never
//! collide. Durable appends: `insert`, then `Database::persist(PersistMode::SyncData)` (an
//! fdatasync of fjall's journal). Bulk loads: every `insert`, then one
//! `persist(PersistMode::SyncData)`. Reads: iteration over the keyspace, from its memtable and
//! its tables (block checksums are checked when blocks are loaded from disk).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Appender, Context, Engine, Fold, Mode, Payloads, Spec, Store, wrong_mode};
use crate::{BenchResult, check};

/// A database open in a directory.
pub struct FjallStore {
    db: Database,
    events: Keyspace,
    /// The last sequence number given out.
    last_seq: AtomicU64,
    mode: Mode,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore")
            .field("last_seq", &self.last_seq)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl FjallStore {
    /// Creates a database in `dir/fjall`.
    ///
    /// # Errors
    /// fjall's.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let db = Database::builder(dir.join("fjall")).open().ctx("fjall: open")?;
        let events =
            db.keyspace("events", KeyspaceCreateOptions::default).ctx("fjall: open keyspace")?;
        Ok(Self { db, events, last_seq: AtomicU64::new(0), mode: spec.mode })
    }

    fn insert(&self, payload: &[u8]) -> BenchResult<()> {
        let seq = self.last_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.events.insert(&seq.to_be_bytes()[..], payload).ctx("fjall: insert")
    }
}

impl FjallStore {
    /// Iterates over the keyspace in key order, checking that keys run from 1 without gaps,
    /// calling `visit` with each value. Returns the count.
    fn each(&self, mut visit: impl FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let mut next = 1_u64;
        for item in self.events.iter() {
            let (key, value) = item.into_inner().ctx("fjall: read")?;
            check(*key == next.to_be_bytes(), || {
                format!("fjall: key {:02x?} where {next} was due", &*key)
            })?;
            visit(&value)?;
            next += 1;
        }
        Ok(next - 1)
    }
}

struct FjallAppender<'a> {
    store: &'a FjallStore,
}

impl Appender for FjallAppender<'_> {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        self.store.insert(payload)?;
        self.store.db.persist(PersistMode::SyncData).ctx("fjall: persist")
    }
}

impl Store for FjallStore {
    fn engine(&self) -> Engine {
        Engine::Fjall
    }

    fn appender(&self, _writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::Fjall, Mode::Durable));
        }
        Ok(Box::new(FjallAppender { store: self }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::Fjall, Mode::Bulk));
        }
        let mut buf = Vec::with_capacity(payloads.bytes());
        for n in 0..count {
            payloads.fill(n, &mut buf);
            self.insert(&buf)?;
        }
        self.db.persist(PersistMode::SyncData).ctx("fjall: persist")
    }

    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        self.each(visit)
    }

    fn replay(&self) -> BenchResult<Fold> {
        let mut fold = Fold::default();
        self.each(|payload| {
            fold.add(payload);
            Ok(())
        })?;
        Ok(fold)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.db.persist(PersistMode::SyncAll).ctx("fjall: persist")?;
        drop(self.events);
        drop(self.db);
        Ok(())
    }
}
