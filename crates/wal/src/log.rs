//! The `Log`: options, shared state, opening, and the public API. Appends live in `writer.rs`,
//! reads in `reader/` (the reader in `mod.rs`, one segment in `segment.rs`), open-time
//! recovery in `recovery/`, the writer lock in `lock.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::chain::{ChainValue, chain_next};
use crate::error::{Error, Result};
use crate::format::{
    FRAME_BYTES_MAX, IndexEntry, SEGMENT_BYTES_MIN, SEGMENT_BYTES_TARGET, StoreKind,
};
use crate::reader::Reader;
use crate::recovery::{self, RecoveryReport};
use crate::storage::{LockGuard, OsStorage, Storage, StorageFile};

/// Name of the writer lock file in the log directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the directory holding segments.
pub const WAL_DIR: &str = "wal";
/// Name of the directory receiving segments removed below the log start, when archiving.
pub const ARCHIVE_DIR: &str = "archive";
/// Name of the directory receiving bytes cut out by recovery.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Bytes of encoded frames buffered in memory before they are written out, in the
/// `Periodic` and `Manual` durability modes.
pub const PENDING_BYTES_MAX: usize = 1024 * 1024;

/// How appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// An append returns after an fdatasync that covers it (plus a directory fsync for a new
    /// segment). Concurrent appenders share one fdatasync (group commit).
    Sync,
    /// Appends return once buffered; a background thread syncs every this many milliseconds.
    /// A crash may lose up to that much acknowledged data.
    Periodic(u64),
    /// Appends return once buffered; data is durable only after [`Log::sync`].
    Manual,
}

/// What opening does with damage it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Any damage, a torn tail included, fails the open.
    Strict,
    /// A torn tail of the active segment is cut off (its bytes saved in `quarantine/`) and
    /// reported; any other damage fails the open.
    #[default]
    TolerateTornTail,
    /// The explicit repair: every segment is checked, the log is cut at the first bad frame, and
    /// the cut bytes and every later segment are moved to `quarantine/` with a note of why.
    TruncateAtCorruption,
}

/// Options of [`Log::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// How appends are made durable. Default `Sync`.
    pub durability: Durability,
    /// Size at which a segment is sealed and the next one started. Default
    /// [`SEGMENT_BYTES_TARGET`]; at least [`SEGMENT_BYTES_MIN`].
    pub segment_bytes_target: u64,
    /// What opening does with damage. Default `TolerateTornTail`.
    pub recovery: RecoveryMode,
    /// How long to wait for another writer's lock; `None` fails at once.
    pub lock_timeout: Option<Duration>,
    /// Whether to extend new segments to their target size up front, so that an fdatasync does
    /// not also have to persist a growing file length. Default `true`.
    pub preallocate: bool,
    /// The log start recorded by a compaction: sealed segments wholly below it are removed at
    /// open, finishing a truncation that a crash interrupted. Default 0 (keep everything).
    pub log_start: u64,
    /// Whether segments removed below the log start are moved to `archive/` instead of deleted.
    /// Default `false`.
    pub archive: bool,
    /// What the records are, written into every segment header; opening a store of another
    /// kind fails with [`Error::WrongKind`]. Default [`StoreKind::Log`]; `annal::Journal` sets
    /// [`StoreKind::Journal`].
    pub kind: StoreKind,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            segment_bytes_target: SEGMENT_BYTES_TARGET,
            recovery: RecoveryMode::default(),
            lock_timeout: None,
            preallocate: true,
            log_start: 0,
            archive: false,
            kind: StoreKind::Log,
        }
    }
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence number, gapless from the log start.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch; never decreases along the log.
    pub ts: u64,
    /// The payload as appended.
    pub payload: bytes::Bytes,
}

/// What an append wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number of the first record.
    pub first: u64,
    /// Sequence number of the last record.
    pub last: u64,
    /// Timestamp given to every record of the append.
    pub ts: u64,
}

/// A segment as described by [`LogView::segments`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment file.
    pub path: PathBuf,
    /// First sequence number.
    pub first_seq: u64,
    /// Last sequence number (`first_seq - 1` for an empty active segment).
    pub last_seq: u64,
    /// Bytes of header and frames.
    pub data_bytes: u64,
    /// Whether the segment is sealed.
    pub sealed: bool,
}

/// A sealed segment, as the writer knows it.
#[derive(Debug, Clone)]
pub(crate) struct SealedSeg {
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_ts: u64,
    pub chain_before: ChainValue,
    pub chain_after: ChainValue,
    pub path: PathBuf,
    pub data_end: u64,
    /// Whether the seal (index block and footer) is on disk; until then readers use `pread`.
    pub on_disk: bool,
    /// The sparse index, when known without reading the file.
    pub index: Option<Arc<Vec<IndexEntry>>>,
}

/// The active segment, as the writer knows it.
#[derive(Debug)]
pub(crate) struct ActiveSeg {
    pub first_seq: u64,
    pub path: PathBuf,
    pub chain_before: ChainValue,
    /// End of the encoded frames, pending ones included.
    pub len: u64,
    /// Offset below which the segment is known durable; always <= `len`.
    pub durable_len: u64,
    pub record_count: u64,
    /// CRC32 of bytes `0..len`.
    pub crc: crc32fast::Hasher,
    pub index: Vec<IndexEntry>,
    pub next_index_at: u64,
}

/// Encoded bytes waiting to be written by the I/O leader, in order.
#[derive(Debug)]
pub(crate) enum Pending {
    /// Write `bytes` at `offset` of the active segment.
    Write { offset: u64, bytes: Vec<u8> },
    /// Seal the active segment (write `seal` at `data_end`, cut the file there, fdatasync), then
    /// create the next one with `header`, fdatasync it and its directory.
    Roll { data_end: u64, seal: Vec<u8>, next_path: PathBuf, header: Vec<u8>, next_first_seq: u64 },
}

#[derive(Debug)]
pub(crate) struct State {
    /// Sequence number the next record gets.
    pub next_seq: u64,
    /// First sequence number held by the log.
    pub start_seq: u64,
    pub last_ts: u64,
    /// Chain value after the last encoded record.
    pub chain: ChainValue,
    pub active: ActiveSeg,
    pub sealed: Vec<SealedSeg>,
    pub pending: Vec<Pending>,
    pub pending_bytes: usize,
    /// Last sequence number written to the segment file (not necessarily durable).
    pub written_seq: u64,
    /// Last sequence number covered by an fdatasync; always <= `written_seq`.
    pub durable_seq: u64,
    /// Last acknowledged sequence number: what readers of this `Log` may see.
    pub visible_seq: u64,
    /// Whether a thread is doing the I/O of pending items.
    pub leader: bool,
    /// Set by the first failed write or fsync; never cleared.
    pub poisoned: Option<String>,
    /// Group commit: appends queued since the last leader took the queue.
    pub pending_appends: u64,
    /// Group commit: how many appenders were in flight when the last commit ended; the next
    /// leader waits (briefly) for that many appends before it syncs. Always >= 1.
    pub group_target: u64,
    /// Whether a leader is waiting for its group to fill (wake it through `Shared::gather`).
    pub gathering: bool,
    /// Moving average of an fdatasync's duration, in nanoseconds.
    pub sync_ns: u64,
}

#[derive(Debug)]
pub(crate) struct Io {
    pub file: Box<dyn StorageFile>,
    pub path: PathBuf,
    /// First sequence number of the segment `file` is.
    pub first_seq: u64,
    /// Offset up to which the segment's bytes have been written (frames or zeros); see
    /// `ZERO_AHEAD_BYTES`.
    pub written_to: u64,
}

/// In the `Sync` and `Periodic` modes, the I/O leader writes zeros this far ahead of the frames,
/// a step at a time: an fdatasync over blocks already written is cheaper than over blocks that
/// `set_len` left unallocated, which need allocating (and a journal commit) when first written.
/// Measured here: ~145 µs against ~175 µs per fdatasync of a 2.3 KB group commit.
pub const ZERO_AHEAD_BYTES: u64 = 1024 * 1024;

pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub dir: PathBuf,
    pub wal_dir: PathBuf,
    pub options: Options,
    pub state: Mutex<State>,
    /// Signalled when `durable_seq`, `written_seq` or `visible_seq` advance, on poison, and
    /// when a leader steps down.
    pub cond: Condvar,
    /// Signalled when a gathering leader's group is full.
    pub gather: Condvar,
    pub io: Mutex<Io>,
    pub report: RecoveryReport,
    pub lock: Mutex<Option<Box<dyn LockGuard>>>,
    pub closed: AtomicBool,
    /// A copy of `State::visible_seq`, stored under the state lock whenever it advances, so
    /// that [`LogView::last_seq`] takes no lock.
    pub visible: AtomicU64,
    /// A copy of `State::durable_seq`, stored under the state lock whenever it advances.
    pub durable: AtomicU64,
    /// A copy of `State::written_seq`, stored under the state lock whenever it advances.
    pub written: AtomicU64,
    /// A copy of `State::start_seq`, stored under the state lock whenever it changes.
    pub start: AtomicU64,
    /// Group commit: threads waiting for durability right now.
    pub waiting: AtomicU64,
    /// Times a leader stepped down; bumped under the state lock.
    pub commits: AtomicU64,
    /// Threads parked in `wait_durable` until the next leader steps down.
    pub parked: Mutex<Vec<std::thread::Thread>>,
    pub stats: Counters,
}

/// I/O counters, updated by the I/O leader.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub fdatasyncs: AtomicU64,
    pub segments_created: AtomicU64,
}

/// Counters of what a [`Log`] did since it was opened; see [`LogView::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Successful `append` and `append_batch` calls.
    pub appends: u64,
    /// Positional writes issued to segment files.
    pub writes: u64,
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// fdatasync calls on segment files (group commit makes this smaller than `appends`).
    pub fdatasyncs: u64,
    /// Segments created by rolling.
    pub segments_created: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// A segmented write-ahead log of opaque records, with one writer.
///
/// `Log` is `Send + Sync`: share it (for example in an `Arc`) between appending threads, whose
/// appends are committed together. It dereferences to its [`LogView`], which holds what
/// reading it takes.
#[derive(Debug)]
pub struct Log {
    view: LogView,
}

/// The read side of a live [`Log`]: its range, chain values, segments, statistics and
/// readers, and `verify`. A `Log` dereferences to it; a holder of a `&LogView` (for example
/// through `annal::Journal::log`) can read the log but not append to it.
#[derive(Debug)]
pub struct LogView {
    pub(crate) shared: Arc<Shared>,
}

impl std::ops::Deref for Log {
    type Target = LogView;

    fn deref(&self) -> &LogView {
        &self.view
    }
}

impl Log {
    /// Opens (creating if needed) the log in `dir` on the OS file system.
    ///
    /// # Errors
    /// See [`Log::open_with`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        Self::open_with(Arc::new(OsStorage::new()), dir, options)
    }

    /// Opens (creating if needed) the log in `dir` on `storage`: takes the writer lock, then
    /// recovers the active segment (see [`RecoveryMode`]).
    ///
    /// # Errors
    /// `Locked` if another writer holds the lock; `Corrupt` or `TornTail` per the recovery mode;
    /// `Io` for failed I/O; `InvalidOption`.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<Self> {
        if options.segment_bytes_target < SEGMENT_BYTES_MIN {
            return Err(Error::InvalidOption(format!(
                "segment_bytes_target {} is below the minimum {SEGMENT_BYTES_MIN}",
                options.segment_bytes_target
            )));
        }
        if let Durability::Periodic(0) = options.durability {
            return Err(Error::InvalidOption(
                "Periodic(0): the interval must be at least 1 ms".into(),
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        let wal_dir = dir.join(WAL_DIR);
        crate::storage::ensure_dir(storage.as_ref(), &dir)?;
        // Before the lock: a store of the other kind is left exactly as it is, LOCK included.
        crate::view::check_kind(storage.as_ref(), &wal_dir, options.kind)?;
        let guard = crate::lock::acquire(storage.as_ref(), &dir, options.lock_timeout)?;
        // The lock file may be new: every directory change is followed by a directory fsync.
        storage.sync_dir(&dir).map_err(|e| Error::io("fsync directory", &dir, e))?;
        crate::storage::ensure_dir(storage.as_ref(), &wal_dir)?;
        let recovered = recovery::recover(storage.as_ref(), &dir, &wal_dir, &options)?;
        recovered.report.trace(&dir);
        let last = recovered.next_seq - 1;
        let recovered_start = recovered.start_seq;
        let state = State {
            next_seq: recovered.next_seq,
            start_seq: recovered.start_seq,
            last_ts: recovered.last_ts,
            chain: recovered.chain,
            active: recovered.active,
            sealed: recovered.sealed,
            pending: Vec::new(),
            pending_bytes: 0,
            written_seq: last,
            durable_seq: last,
            visible_seq: last,
            leader: false,
            poisoned: None,
            pending_appends: 0,
            group_target: 1,
            gathering: false,
            sync_ns: 0,
        };
        let shared = Arc::new(Shared {
            storage,
            dir,
            wal_dir,
            io: Mutex::new(Io {
                file: recovered.file,
                path: state.active.path.clone(),
                first_seq: state.active.first_seq,
                written_to: state.active.len,
            }),
            state: Mutex::new(state),
            cond: Condvar::new(),
            gather: Condvar::new(),
            report: recovered.report,
            lock: Mutex::new(Some(guard)),
            closed: AtomicBool::new(false),
            visible: AtomicU64::new(last),
            durable: AtomicU64::new(last),
            written: AtomicU64::new(last),
            start: AtomicU64::new(recovered_start),
            waiting: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            parked: Mutex::new(Vec::new()),
            stats: Counters::default(),
            options,
        });
        if let Durability::Periodic(ms) = shared.options.durability {
            spawn_periodic_sync(&shared, Duration::from_millis(ms));
        }
        Ok(Self { view: LogView { shared } })
    }

    /// Removes the sealed segments whose records all lie below `seq` (never the active one),
    /// deleting them or, with `archive`, moving them to `archive/` (copied and made durable
    /// there before the original is removed). The log then starts at the first remaining
    /// segment. Returns the removed segments' paths and their total size in bytes.
    ///
    /// # Errors
    /// I/O errors; the log may then hold some of the segments still, never a gap.
    pub fn remove_segments_below(&self, seq: u64, archive: bool) -> Result<(Vec<PathBuf>, u64)> {
        let doomed: Vec<SealedSeg> = {
            let st = self.shared.state.lock();
            // Only segments whose seal is on disk: one whose roll is merely planned may still be
            // written to, and its successor may not exist yet.
            st.sealed.iter().take_while(|s| s.last_seq < seq && s.on_disk).cloned().collect()
        };
        let mut removed = Vec::new();
        let mut bytes = 0;
        // Oldest first, each durable before the next: a crash leaves a suffix of the log.
        for seg in &doomed {
            bytes +=
                remove_segment(self.shared.storage.as_ref(), &self.shared.dir, &seg.path, archive)?;
            {
                let mut st = self.shared.state.lock();
                let first = st.sealed.first().map(|s| s.first_seq);
                debug_assert_eq!(first, Some(seg.first_seq), "segments are removed oldest first");
                st.sealed.remove(0);
                st.start_seq = st.sealed.first().map_or(st.active.first_seq, |s| s.first_seq);
                self.shared.start.store(st.start_seq, Ordering::Release);
            }
            removed.push(seg.path.clone());
        }
        Ok((removed, bytes))
    }

    /// Syncs, releases the writer lock and closes the log, reporting any failure.
    ///
    /// # Errors
    /// The final sync failed (or the log was poisoned).
    pub fn close(self) -> Result<()> {
        let result = if self.shared.state.lock().poisoned.is_some() {
            Ok(())
        } else {
            self.sync().and_then(|()| write_clean_close(&self.shared))
        };
        self.shared.closed.store(true, Ordering::Release);
        self.shared.lock.lock().take();
        result
    }
}

impl LogView {
    /// What recovery found and did when this log was opened.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.report
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The options the log was opened with.
    #[must_use]
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// First sequence number held by the log (1 unless segments were removed below it).
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.shared.state.lock().start_seq
    }

    /// Last acknowledged sequence number (0 for an empty log).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.shared.visible.load(Ordering::Acquire)
    }

    /// Last sequence number covered by an fdatasync.
    #[must_use]
    pub fn durable_seq(&self) -> u64 {
        self.shared.state.lock().durable_seq
    }

    /// The chain value after the last acknowledged record.
    ///
    /// # Errors
    /// As [`LogView::chain_at`].
    pub fn chain_head(&self) -> Result<ChainValue> {
        let (visible, next, chain) = {
            let st = self.shared.state.lock();
            (st.visible_seq, st.next_seq, st.chain)
        };
        if visible + 1 == next { Ok(chain) } else { self.chain_at(visible) }
    }

    /// The chain value after record `seq` (`first_seq() - 1` gives the value before the first
    /// record). Costs a read of at most one segment.
    ///
    /// # Errors
    /// `OutOfRange` outside `first_seq() - 1 ..= last_seq()`; read errors.
    pub fn chain_at(&self, seq: u64) -> Result<ChainValue> {
        let (start, visible, (mut at, mut chain)) = {
            let st = self.shared.state.lock();
            // The head is kept current: no read (the common case of a snapshot at the end).
            if seq == st.visible_seq && st.visible_seq + 1 == st.next_seq {
                return Ok(st.chain);
            }
            let i = st.sealed.partition_point(|s| s.last_seq < seq);
            let base = match st.sealed.get(i) {
                Some(s) if s.last_seq == seq => (seq, s.chain_after),
                Some(s) => (s.first_seq - 1, s.chain_before),
                None => (st.active.first_seq - 1, st.active.chain_before),
            };
            (st.start_seq, st.visible_seq, base)
        };
        if seq + 1 < start || seq > visible {
            return Err(Error::OutOfRange { seq, first: start, last: visible });
        }
        if at < seq {
            for record in self.read_from(at + 1) {
                let record = record?;
                chain = chain_next(&chain, record.seq, record.ts, &record.payload);
                at = record.seq;
                if at == seq {
                    break;
                }
            }
        }
        if at != seq {
            return Err(Error::OutOfRange { seq, first: start, last: at });
        }
        Ok(chain)
    }

    /// The last sequence number whose timestamp is at or before `ts`, or `None` if the first
    /// record held is later. Uses the segments' last timestamps and their sparse indexes, then
    /// reads at most one index interval ([`crate::format::INDEX_INTERVAL_BYTES`]).
    ///
    /// # Errors
    /// Read errors, corruption.
    pub fn seq_at_time(&self, ts: u64) -> Result<Option<u64>> {
        let (before, first_seq, index) = {
            let st = self.shared.state.lock();
            if st.visible_seq < st.start_seq {
                return Ok(None);
            }
            let i = st.sealed.partition_point(|s| s.last_ts <= ts);
            let before = if i == 0 { st.start_seq - 1 } else { st.sealed[i - 1].last_seq };
            match st.sealed.get(i) {
                Some(s) => (before, s.first_seq, s.index.clone().ok_or((s.path.clone(), i))),
                None => (before, st.active.first_seq, Ok(Arc::new(st.active.index.clone()))),
            }
        };
        let index = match index {
            Ok(index) => index,
            Err((path, i)) => {
                let index = Arc::new(crate::reader::sealed_index(
                    self.shared.storage.as_ref(),
                    &path,
                    first_seq,
                )?);
                let mut st = self.shared.state.lock();
                if let Some(s) = st.sealed.get_mut(i).filter(|s| s.first_seq == first_seq) {
                    s.index = Some(Arc::clone(&index));
                }
                index
            }
        };
        let at = index.partition_point(|e| e.ts <= ts);
        let mut found = (before >= self.first_seq()).then_some(before);
        if at == 0 {
            // The segment's first frame is already later than `ts`.
            return Ok(found);
        }
        for record in self.read_from(index[at - 1].seq) {
            let record = record?;
            if record.ts > ts {
                break;
            }
            found = Some(record.seq);
        }
        Ok(found)
    }

    /// What the log did since it was opened.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        Stats {
            appends: c.appends.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            fdatasyncs: c.fdatasyncs.load(Ordering::Relaxed),
            segments_created: c.segments_created.load(Ordering::Relaxed),
        }
    }

    /// The segments, oldest first.
    #[must_use]
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let st = self.shared.state.lock();
        let mut out: Vec<SegmentInfo> = st
            .sealed
            .iter()
            .map(|s| SegmentInfo {
                path: s.path.clone(),
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                data_bytes: s.data_end,
                sealed: true,
            })
            .collect();
        out.push(SegmentInfo {
            path: st.active.path.clone(),
            first_seq: st.active.first_seq,
            last_seq: st.next_seq - 1,
            data_bytes: st.active.len,
            sealed: false,
        });
        out
    }

    /// A reader of acknowledged records from sequence `from` on (0: from the earliest record
    /// held). Below the log start it reads the segments a compaction moved to `archive/`; a
    /// `from` below what either holds fails with [`Error::BeforeStart`] naming the earliest, and
    /// so does a reader that a compaction overtakes: never a silent gap. It ends at the last
    /// record acknowledged when it gets there; see [`Reader::follow`] to wait for more.
    #[must_use]
    pub fn read_from(&self, from: u64) -> Reader {
        Reader::live(Arc::clone(&self.shared), from)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            // Best effort: an explicit `close` or `sync` reports failures; a drop cannot. Without
            // the clean-close record the next open treats the end as a crash's: still safe.
            if self.shared.state.lock().poisoned.is_none()
                && self.sync().is_ok()
                && !std::thread::panicking()
            {
                let _ = write_clean_close(&self.shared);
            }
            self.shared.lock.lock().take();
        }
        self.shared.cond.notify_all();
    }
}

/// Records a clean close (see [`crate::format::CleanClose`]): called with every record synced
/// and no append in flight (the last handle is closing), under the writer lock. Written to a
/// temporary file, synced, renamed into place and the directory synced.
fn write_clean_close(shared: &Shared) -> Result<()> {
    let record = {
        let st = shared.state.lock();
        assert!(st.pending.is_empty(), "a clean close follows a sync");
        assert!(st.durable_seq + 1 == st.next_seq, "a clean close follows a sync of everything");
        crate::format::CleanClose {
            first_seq: st.active.first_seq,
            data_end: st.active.len,
            last_seq: st.next_seq - 1,
        }
    };
    let path = shared.wal_dir.join(crate::format::CLEAN_CLOSE_FILE);
    Ok(crate::storage::write_atomic(shared.storage.as_ref(), &path, &record.encode())?)
}

/// Deletes a segment file, or moves it to `archive/`; makes the change durable. Returns its size.
pub(crate) fn remove_segment(
    storage: &dyn Storage,
    dir: &Path,
    path: &Path,
    archive: bool,
) -> Result<u64> {
    let wal_dir = path.parent().expect("segments live in wal/");
    let bytes = storage.map_file(path).map_err(|e| Error::io("read", path, e))?;
    let len = bytes.len() as u64;
    if archive {
        let archive_dir = dir.join(ARCHIVE_DIR);
        crate::storage::ensure_dir(storage, &archive_dir)?;
        let to = archive_dir.join(path.file_name().expect("segment file name"));
        if storage.exists(&to).map_err(|e| Error::io("stat", &to, e))? {
            // A removal a crash (or a failed write or sync) interrupted left both copies. The
            // archived one cannot be trusted to be durable, even when it reads the same (a failed
            // writeback leaves the page cache as it was): an intact sealed original is copied
            // again. A damaged original never overwrites the archived copy; it goes to
            // quarantine, unless the copies are the same.
            let first_seq = path
                .file_name()
                .and_then(|n| crate::format::parse_segment_file_name(&n.to_string_lossy()))
                .unwrap_or(0);
            if crate::recovery::check_sealed_full(storage, path, first_seq, None).is_err() {
                let archived = storage.map_file(&to).map_err(|e| Error::io("read", &to, e))?;
                let same = archived[..] == bytes[..];
                drop(archived);
                if !same {
                    let note = format!(
                        "a copy below the log start that differs from {} and is not an intact sealed \
                         segment; the archived copy was kept",
                        to.display()
                    );
                    crate::quarantine::copy(storage, dir, path, &note)?;
                }
                drop(bytes);
                storage.remove_file(path).map_err(|e| Error::io("remove", path, e))?;
                storage.sync_dir(wal_dir).map_err(|e| Error::io("fsync directory", wal_dir, e))?;
                return Ok(len);
            }
        }
        let file = storage
            .open_file(&to, crate::storage::OpenMode::CreateTruncate)
            .map_err(|e| Error::io("create", &to, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| Error::io("write", &to, e))?;
        file.sync_data().map_err(|e| Error::io("fdatasync", &to, e))?;
        storage
            .sync_dir(&archive_dir)
            .map_err(|e| Error::io("fsync directory", &archive_dir, e))?;
    }
    drop(bytes);
    storage.remove_file(path).map_err(|e| Error::io("remove", path, e))?;
    storage.sync_dir(wal_dir).map_err(|e| Error::io("fsync directory", wal_dir, e))?;
    Ok(len)
}

fn spawn_periodic_sync(shared: &Arc<Shared>, every: Duration) {
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("annal-wal-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(shared) = weak.upgrade() else { return };
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                // A failure poisons the log; appenders and `sync` callers report it.
                let _ = crate::writer::sync(&shared);
            }
        })
        .expect("spawning the periodic sync thread");
}

const _: () = assert!((FRAME_BYTES_MAX as usize) < 64 * PENDING_BYTES_MAX);
