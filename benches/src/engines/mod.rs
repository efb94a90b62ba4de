//! The storage engines the comparison harness runs side by side, behind one interface
//! ([`Store`]), each storing the same payload bytes ([`Payloads`]) one event at a time:
//!
//! - `annal`: the `Journal` facade, typed events (the payload in a MessagePack `bin` field),
//!   [`STREAMS`] streams, `Expect::Any`;
//! - `annal-wal`: the raw `annal_wal::Log`, the payload as the record;
//! - `sqlite`: rusqlite, WAL mode, `synchronous=FULL`, one row per event;
//! - `fjall`: one keyspace keyed by the big-endian sequence number;
//! - `okaywal`: one entry per event, or one chunk per event of one entry for bulk loads;
//! - `raw`: a file of records (CRC32 and payload) written with `pwrite` + `fdatasync`, or
//!   sequential 1 MiB writes and one `fdatasync`, and read back whole with a CRC32 check.
//!
//! Every store can read all its events back ([`Store::scan`]), so that a run is checked
//! ([`check_contents`]) after it is timed: the count, and every payload byte for byte.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{BenchResult, check};

mod annal_journal;
mod annal_log;
mod fjall_store;
mod okaywal_store;
mod raw;
mod sqlite;

/// Streams the `annal` engine appends to: writer `w` appends to stream `w % STREAMS`, and bulk
/// loads send event `n` to stream `n % STREAMS`.
pub const STREAMS: usize = 4;

/// Bytes of the event number at the start of every payload.
pub const NUMBER_BYTES: usize = size_of::<u64>();

/// Largest payload a run may ask for.
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;

/// Bytes of the pseudo-random table payloads are cut from; payload `n` starts at an offset
/// below this derived from `n`.
const NOISE_WINDOW_BYTES: usize = 4096;

const _: () = assert!(NUMBER_BYTES < PAYLOAD_BYTES_MAX);

/// An engine of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// The `Journal` facade.
    Annal,
    /// The raw `annal_wal::Log`.
    AnnalWal,
    /// SQLite through rusqlite.
    Sqlite,
    /// fjall.
    Fjall,
    /// okaywal.
    Okaywal,
    /// The raw file-system baselines.
    Raw,
}

impl Engine {
    /// Every engine, in the order of the tables.
    pub const ALL: [Self; 6] =
        [Self::Annal, Self::AnnalWal, Self::Sqlite, Self::Fjall, Self::Okaywal, Self::Raw];

    /// The engine's name in tables, JSON and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Annal => "annal",
            Self::AnnalWal => "annal-wal",
            Self::Sqlite => "sqlite",
            Self::Fjall => "fjall",
            Self::Okaywal => "okaywal",
            Self::Raw => "raw",
        }
    }

    /// The engine named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether this is one of the peers annal is compared with (not annal, not a baseline).
    #[must_use]
    pub fn is_peer(self) -> bool {
        matches!(self, Self::Sqlite | Self::Fjall | Self::Okaywal)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a store is about to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every append durable before it returns ([`Store::appender`]).
    Durable,
    /// One bulk load made durable at its end ([`Store::bulk`]).
    Bulk,
}

/// What a store is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// How it will be written.
    pub mode: Mode,
    /// Events it will hold; the raw baseline preallocates room for them, okaywal sizes its
    /// preallocation by them.
    pub capacity: u64,
    /// Bytes of every payload.
    pub payload_bytes: usize,
}

/// One appending thread's handle on a store, made before the clock starts (for SQLite, its
/// own connection).
pub trait Appender: Send {
    /// Appends one event; returns once it is durable.
    ///
    /// # Errors
    /// The engine's errors.
    fn append(&mut self, payload: &[u8]) -> BenchResult<()>;
}

/// A store of one engine, open in a directory.
pub trait Store: Send + Sync + fmt::Debug {
    /// The engine.
    fn engine(&self) -> Engine;

    /// A handle for appending thread `writer` (from 0) of a [`Mode::Durable`] store.
    ///
    /// # Errors
    /// The engine's errors; a store opened for [`Mode::Bulk`].
    fn appender(&self, writer: usize) -> BenchResult<Box<dyn Appender + '_>>;

    /// Appends events `0..count` of `payloads` with no sync per event, then makes them all
    /// durable with one sync, to a [`Mode::Bulk`] store.
    ///
    /// # Errors
    /// The engine's errors; a store opened for [`Mode::Durable`].
    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()>;

    /// Reads every event back in the store's order, checking checksums where the engine keeps
    /// them and sequence numbers where it has them, and calls `visit` with each payload.
    /// Returns the number of events read.
    ///
    /// # Errors
    /// The engine's errors, a gap or disorder in sequence numbers, or `visit`'s error.
    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64>;

    /// Reads every event back in order, as [`Store::scan`], folding each into a [`Fold`]:
    /// the replay workload. Engines with a read API of their own for this (annal's
    /// `Journal::replay`) use it.
    ///
    /// # Errors
    /// As [`Store::scan`].
    fn replay(&self) -> BenchResult<Fold> {
        let mut fold = Fold::default();
        self.scan(&mut |payload| {
            fold.add(payload);
            Ok(())
        })?;
        Ok(fold)
    }

    /// Bytes the engine has written to its files since it was opened, where it counts them.
    fn written_bytes(&self) -> Option<u64> {
        None
    }

    /// fdatasyncs the engine has issued since it was opened, where it counts them: annal and
    /// annal-wal (`Log::stats`), raw (its own calls). SQLite, fjall and okaywal do not say.
    fn fdatasyncs(&self) -> Option<u64> {
        None
    }

    /// Closes the store, reporting what dropping it would ignore.
    ///
    /// # Errors
    /// The engine's errors.
    fn close(self: Box<Self>) -> BenchResult<()>;
}

/// Opens (creating) the store of `engine` in `dir`, an empty directory.
///
/// # Errors
/// The engine's errors.
pub fn open(engine: Engine, dir: &Path, spec: Spec) -> BenchResult<Box<dyn Store>> {
    Ok(match engine {
        Engine::Annal => Box::new(annal_journal::JournalStore::open(dir, spec)?),
        Engine::AnnalWal => Box::new(annal_log::WalStore::open(dir, spec)?),
        Engine::Sqlite => Box::new(sqlite::SqliteStore::open(dir, spec)?),
        Engine::Fjall => Box::new(fjall_store::FjallStore::open(dir, spec)?),
        Engine::Okaywal => Box::new(okaywal_store::OkaywalStore::open(dir, spec)?),
        Engine::Raw => Box::new(raw::RawStore::open(dir, spec)?),
    })
}

/// Adds what failed to an engine's error.
pub(crate) trait Context<T> {
    /// The error, prefixed with `what`.
    fn ctx(self, what: &str) -> BenchResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> BenchResult<T> {
        self.map_err(|e| format!("{what}: {e}").into())
    }
}

/// An error of a store opened for the other [`Mode`].
fn wrong_mode(engine: Engine, wanted: Mode) -> crate::BenchError {
    format!("{engine}: the store was not opened for {wanted:?} writes").into()
}

// ---- payloads ------------------------------------------------------------------------------

/// The payloads of a run: event `n` holds `n` (little-endian) in its first [`NUMBER_BYTES`],
/// then bytes of a fixed pseudo-random table starting at an offset derived from `n`, so that
/// payloads differ from one another and do not compress (fjall compresses its tables).
#[derive(Debug, Clone)]
pub struct Payloads {
    bytes: usize,
    noise: Vec<u8>,
}

impl Payloads {
    /// Payloads of `bytes` bytes each.
    ///
    /// # Errors
    /// `bytes` not above [`NUMBER_BYTES`] or above [`PAYLOAD_BYTES_MAX`].
    pub fn new(bytes: usize) -> BenchResult<Self> {
        check(bytes > NUMBER_BYTES && bytes <= PAYLOAD_BYTES_MAX, || {
            format!(
                "payloads of {bytes} B: a payload holds more than its {NUMBER_BYTES}-byte event \
                 number, and at most {PAYLOAD_BYTES_MAX} B"
            )
        })?;
        let mut state = 0x0123_4567_89ab_cdef_u64;
        let noise = (0..NOISE_WINDOW_BYTES + bytes)
            .map(|_| splitmix64(&mut state).to_le_bytes()[0])
            .collect();
        Ok(Self { bytes, noise })
    }

    /// Bytes of every payload.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Puts the payload of event `n` in `buf` (replacing what it held).
    pub fn fill(&self, n: u64, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&n.to_le_bytes());
        let start = Self::offset(n);
        buf.extend_from_slice(&self.noise[start..start + self.bytes - NUMBER_BYTES]);
    }

    /// The payload of event `n`.
    #[must_use]
    pub fn make(&self, n: u64) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.bytes);
        self.fill(n, &mut buf);
        buf
    }

    /// The event number of `payload`, if it is exactly the payload of that event.
    #[must_use]
    pub fn number(&self, payload: &[u8]) -> Option<u64> {
        if payload.len() != self.bytes {
            return None;
        }
        let n = u64::from_le_bytes(payload[..NUMBER_BYTES].try_into().ok()?);
        let start = Self::offset(n);
        (payload[NUMBER_BYTES..] == self.noise[start..start + self.bytes - NUMBER_BYTES])
            .then_some(n)
    }

    /// The fold of events `0..count`.
    #[must_use]
    pub fn expected_fold(&self, count: u64) -> Fold {
        let mut fold = Fold::default();
        let mut buf = Vec::with_capacity(self.bytes);
        for n in 0..count {
            self.fill(n, &mut buf);
            fold.add(&buf);
        }
        fold
    }

    fn offset(n: u64) -> usize {
        let window = NOISE_WINDOW_BYTES as u64;
        // Below NOISE_WINDOW_BYTES, so it fits.
        usize::try_from(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % window).unwrap_or(0)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The small state the replay workload folds every event into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// Events.
    pub events: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Sum of the last byte of every payload.
    pub last_byte_sum: u64,
}

impl Fold {
    /// Folds one payload.
    #[inline]
    pub fn add(&mut self, payload: &[u8]) {
        self.events += 1;
        self.bytes += payload.len() as u64;
        self.last_byte_sum += u64::from(payload.last().copied().unwrap_or(0));
    }
}

// ---- checks --------------------------------------------------------------------------------

/// Reads the whole store back ([`Store::scan`]) and checks that it holds events
/// `0..expected` of `payloads`, each once and byte for byte, and, if `ordered`, in that order.
///
/// # Errors
/// A read error, or the store does not hold what it should.
pub fn check_contents(
    store: &dyn Store,
    payloads: &Payloads,
    expected: u64,
    ordered: bool,
) -> BenchResult<()> {
    let engine = store.engine();
    let words = usize::try_from(expected.div_ceil(64))?;
    let mut seen = vec![0_u64; words];
    let mut at = 0_u64;
    let read = store.scan(&mut |payload| {
        let n = payloads.number(payload).ok_or_else(|| {
            format!(
                "{engine}: event {at} read back is not a payload of the run ({} B)",
                payload.len()
            )
        })?;
        check(n < expected, || format!("{engine}: event {at} is event number {n} of {expected}"))?;
        check(!ordered || n == at, || format!("{engine}: event {at} is event number {n}"))?;
        let (word, bit) = (usize::try_from(n / 64)?, n % 64);
        check(seen[word] & (1 << bit) == 0, || {
            format!("{engine}: event number {n} read back twice")
        })?;
        seen[word] |= 1 << bit;
        at += 1;
        Ok(())
    })?;
    check(read == at, || format!("{engine}: scan counted {read} events, visited {at}"))?;
    check(read == expected, || format!("{engine}: read back {read} events of {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() -> BenchResult<()> {
        let payloads = Payloads::new(100)?;
        for n in [0, 1, 4095, 4096, 1 << 40] {
            let p = payloads.make(n);
            assert_eq!(p.len(), 100);
            assert_eq!(payloads.number(&p), Some(n));
        }
        let mut p = payloads.make(7);
        p[50] ^= 1;
        assert_eq!(payloads.number(&p), None);
        assert_eq!(payloads.number(&payloads.make(7)[..99]), None);
        assert_ne!(payloads.make(1)[NUMBER_BYTES..], payloads.make(2)[NUMBER_BYTES..]);
        Ok(())
    }

    #[test]
    fn payload_sizes_are_bounded() {
        assert!(Payloads::new(NUMBER_BYTES).is_err());
        assert!(Payloads::new(PAYLOAD_BYTES_MAX + 1).is_err());
        assert!(Payloads::new(9).is_ok());
    }

    #[test]
    fn names_parse_back() {
        for e in Engine::ALL {
            assert_eq!(Engine::parse(e.name()), Some(e));
        }
        assert_eq!(Engine::parse("postgres"), None);
    }
}
