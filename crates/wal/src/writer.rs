//! Appends and group commit.
//!
//! An append encodes its frame under the state lock: it takes its sequence numbers, extends the
//! hash chain, and queues the bytes (and a segment roll, when the segment is full) as `Pending`
//! items. The I/O is done by one leader at a time, outside the state lock: it takes every queued
//! item, writes them in order, and fdatasyncs once. Appenders that queued while a leader was busy
//! are covered by the next leader's single fdatasync: that is the group commit.
//!
//! Poisoning: the first failed write or fsync records its cause in `State::poisoned`. From then on
//! no append is accepted and no sequence number becomes durable or visible, so nothing whose
//! fsync failed is ever acknowledged (a later fsync could succeed without the lost pages ever
//! reaching the disk, as Linux drops dirty pages after a failed writeback).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::chain::chain_next;
use crate::error::{Error, Result};
use crate::format::{
    self, FRAME_BYTES_MAX, FRAME_HEADER_BYTES, Footer, INDEX_INTERVAL_BYTES, IndexEntry,
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, SegmentHeader,
};
use crate::log::{
    ActiveSeg, Appended, Durability, Log, PENDING_BYTES_MAX, Pending, SealedSeg, Shared, State,
};
use crate::storage::OpenMode;

use parking_lot::MutexGuard;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Log {
    /// Appends one record. With `Durability::Sync` it returns once the record is durable.
    ///
    /// # Errors
    /// `TooLarge` past [`format::PAYLOAD_BYTES_MAX`]; `Poisoned` after an earlier I/O failure;
    /// `Io` if the write or fdatasync fails (the record is then not acknowledged, and the log is
    /// poisoned).
    pub fn append(&self, payload: &[u8]) -> Result<Appended> {
        self.append_batch(&[payload])
    }

    /// Appends records as one atomic batch: after a crash either all of them are in the log or
    /// none is. They get consecutive sequence numbers and one timestamp.
    ///
    /// # Errors
    /// As [`Log::append`]; `EmptyBatch` for no records; `TooLarge` if the batch does not fit in
    /// one frame ([`FRAME_BYTES_MAX`]).
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Appended> {
        self.enqueue_batch(payloads)?.wait()
    }

    /// The first half of [`Log::append_batch`]: takes the sequence numbers and queues the frame,
    /// without waiting for it to be durable. [`Ticket::wait`] is the second half. Between the
    /// two, the caller may release its own locks, so that appenders that order their appends
    /// under a lock still share fdatasyncs.
    ///
    /// A ticket dropped without `wait` leaves its records queued: a later append or sync writes
    /// them, but nothing acknowledges them.
    ///
    /// # Errors
    /// As [`Log::append_batch`], except failures of the I/O itself, which `wait` reports.
    pub fn enqueue_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Ticket<'_>> {
        let frame_len = check_batch(payloads)?;
        let shared = &*self.shared;
        let st = shared.state.lock();
        let ts = shared.storage.now_nanos().max(st.last_ts);
        self.enqueue_locked(st, payloads, frame_len, ts)
    }

    /// Like [`Log::enqueue_batch`], but `build` makes the payloads while the log's state lock
    /// is held, given the first sequence number the batch will get; nothing else can take
    /// sequence numbers meanwhile (`build` also gets the timestamp the records will have). A caller that must check something and take sequence numbers
    /// as one step (the journal's expected versions) does both in `build`, in one serialized
    /// section instead of two. `build` must return a batch that passes [`check_batch`] (the log
    /// checks again, and an error then leaves the caller's side effects behind), and must not
    /// call back into this log.
    ///
    /// # Errors
    /// The outer error is the log's (`Poisoned`, or the batch check); the inner one is
    /// `build`'s, in which case nothing was queued.
    pub fn enqueue_with<E, B, P>(
        &self,
        build: impl FnOnce(u64, u64) -> std::result::Result<B, E>,
    ) -> Result<std::result::Result<Ticket<'_>, E>>
    where
        B: std::ops::Deref<Target = [P]>,
        P: AsRef<[u8]>,
    {
        let shared = &*self.shared;
        let st = shared.state.lock();
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let ts = shared.storage.now_nanos().max(st.last_ts);
        let payloads = match build(st.next_seq, ts) {
            Ok(payloads) => payloads,
            Err(e) => return Ok(Err(e)),
        };
        let frame_len = check_batch(&payloads)?;
        self.enqueue_locked(st, &payloads, frame_len, ts).map(Ok)
    }

    fn enqueue_locked<P: AsRef<[u8]>>(
        &self,
        mut st: MutexGuard<'_, State>,
        payloads: &[P],
        frame_len: u64,
        ts: u64,
    ) -> Result<Ticket<'_>> {
        let shared = &*self.shared;
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let appended = encode_append(shared, &mut st, payloads, frame_len, ts);
        if shared.options.durability != Durability::Sync {
            // Acknowledged once buffered; when this append fills the buffer, only once the
            // buffer is written, so that a failed write acknowledges nothing.
            let flush = st.pending_bytes >= PENDING_BYTES_MAX && !st.leader;
            if flush {
                lead(shared, &mut st, false)?;
            }
            st.visible_seq = st.visible_seq.max(appended.last);
            shared.visible.store(st.visible_seq, Ordering::Release);
            drop(st);
            shared.cond.notify_all();
        }
        Ok(Ticket { log: self, appended })
    }

    /// Makes every appended record durable (fdatasync), whatever the durability mode.
    ///
    /// # Errors
    /// `Poisoned` or `Io`, as for appends.
    pub fn sync(&self) -> Result<()> {
        sync(&self.shared)
    }
}

/// Sequence numbers taken by [`Log::enqueue_batch`], not yet acknowledged.
#[derive(Debug)]
#[must_use = "records are acknowledged only by `wait`"]
pub struct Ticket<'a> {
    log: &'a Log,
    appended: Appended,
}

impl Ticket<'_> {
    /// The sequence numbers and timestamp the records got.
    pub fn appended(&self) -> Appended {
        self.appended
    }

    /// Waits until the records are acknowledged: with `Durability::Sync`, until an fdatasync
    /// covers them; otherwise at once.
    ///
    /// # Errors
    /// `Io` if the write or fdatasync failed, `Poisoned` if an earlier one did: the records are
    /// then not acknowledged.
    pub fn wait(self) -> Result<Appended> {
        let shared = &*self.log.shared;
        if shared.options.durability == Durability::Sync {
            wait_durable(shared, shared.state.lock(), self.appended.last)?;
        }
        shared.stats.appends.fetch_add(1, Ordering::Relaxed);
        Ok(self.appended)
    }
}

/// Checks that `payloads` can form one frame; returns the frame's length.
///
/// # Errors
/// `EmptyBatch`; `TooLarge` past [`FRAME_BYTES_MAX`].
pub fn check_batch<P: AsRef<[u8]>>(payloads: &[P]) -> Result<u64> {
    if payloads.is_empty() {
        return Err(Error::EmptyBatch);
    }
    let body: u64 = payloads.iter().map(|p| (RECORD_HEADER_BYTES + p.as_ref().len()) as u64).sum();
    let frame_len = FRAME_HEADER_BYTES as u64 + body;
    if frame_len > u64::from(FRAME_BYTES_MAX) {
        return Err(Error::TooLarge { bytes: frame_len, max: u64::from(FRAME_BYTES_MAX) });
    }
    Ok(frame_len)
}

/// Makes everything encoded so far durable.
pub(crate) fn sync(shared: &Shared) -> Result<()> {
    let st = shared.state.lock();
    let target = st.next_seq - 1;
    if st.durable_seq >= target && st.pending.is_empty() {
        return match &st.poisoned {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        };
    }
    wait_durable(shared, st, target)
}

/// Makes sure records up to `seq` are written to the segment file (not necessarily durable),
/// for readers of buffered records.
pub(crate) fn ensure_written(shared: &Shared, seq: u64) -> Result<()> {
    let mut st = shared.state.lock();
    loop {
        if st.written_seq >= seq {
            return Ok(());
        }
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if st.leader {
            shared.cond.wait(&mut st);
        } else {
            lead(shared, &mut st, false)?;
        }
    }
}

fn wait_durable<'a>(shared: &'a Shared, st: MutexGuard<'a, State>, seq: u64) -> Result<()> {
    shared.waiting.fetch_add(1, Ordering::Relaxed);
    let result = wait_durable_locked(shared, st, seq);
    shared.waiting.fetch_sub(1, Ordering::Relaxed);
    result
}

/// While a leader does the I/O, the others wait parked outside the state lock, and its
/// step-down wakes them all at once (`step_down`): each one whose records the commit covered
/// returns without taking the lock again. Waiting on the condition variable instead would hand
/// the lock to the woken threads one after another, a context switch each, and with 16
/// appenders on 2 vCPUs that chain took most of the time the next group has to gather.
fn wait_durable_locked<'a>(
    shared: &'a Shared,
    mut st: MutexGuard<'a, State>,
    seq: u64,
) -> Result<()> {
    loop {
        if st.durable_seq >= seq {
            return Ok(());
        }
        if let Some(cause) = &st.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if st.leader {
            // Registered under the state lock, under which the leader also steps down: the
            // wake-up cannot be missed.
            let commit = shared.commits.load(Ordering::Acquire);
            shared.parked.lock().push(std::thread::current());
            drop(st);
            while shared.commits.load(Ordering::Acquire) == commit {
                std::thread::park();
            }
            if shared.durable.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            st = shared.state.lock();
        } else {
            lead(shared, &mut st, true)?;
        }
    }
}

/// Group commit: before it syncs, a leader waits until as many appends are queued as there were
/// appenders in flight when the last commit ended. Those the last commit released are about to
/// append again; without the wait they would miss this fdatasync and form the next group, and
/// concurrent appenders would settle into two alternating half-size groups. The wait is bounded
/// by half an fdatasync, and a lone appender (target 1) never waits.
fn gather(shared: &Shared, st: &mut MutexGuard<'_, State>) {
    const GATHER_NS_MIN: u64 = 10_000;
    const GATHER_NS_MAX: u64 = 1_000_000;
    if st.group_target <= 1 || st.pending_appends >= st.group_target {
        return;
    }
    let window = (st.sync_ns / 2).clamp(GATHER_NS_MIN, GATHER_NS_MAX);
    let deadline = Instant::now() + Duration::from_nanos(window);
    st.gathering = true;
    while st.pending_appends < st.group_target && st.poisoned.is_none() {
        if shared.gather.wait_until(st, deadline).timed_out() {
            break;
        }
    }
    st.gathering = false;
}

/// Encodes one append into the pending queue. Infallible: every check happened before.
fn encode_append<P: AsRef<[u8]>>(
    shared: &Shared,
    st: &mut State,
    payloads: &[P],
    frame_len: u64,
    ts: u64,
) -> Appended {
    debug_assert!(ts >= st.last_ts, "timestamps never decrease");
    if st.active.record_count > 0 && st.active.len + frame_len > shared.options.segment_bytes_target
    {
        plan_roll(shared, st);
    }
    let first = st.next_seq;
    let offset = st.active.len;
    let watermark = st.active.durable_len;
    let mut bytes = match st.pending.pop() {
        Some(Pending::Write { offset: start, bytes }) if start + bytes.len() as u64 == offset => {
            bytes
        }
        Some(other) => {
            st.pending.push(other);
            Vec::new()
        }
        None => Vec::new(),
    };
    let start_in_buf = bytes.len();
    let written = format::encode_frame(
        &mut bytes,
        first,
        watermark,
        payloads.iter().map(|p| (ts, p.as_ref())),
    );
    debug_assert_eq!(written as u64, frame_len, "frame length matches the pre-check");
    let frame = &bytes[start_in_buf..];
    st.active.crc.update(frame);
    for (i, p) in payloads.iter().enumerate() {
        st.chain = chain_next(&st.chain, first + i as u64, ts, p.as_ref());
    }
    if offset >= st.active.next_index_at {
        st.active.index.push(IndexEntry { seq: first, ts, offset });
        st.active.next_index_at = (offset / INDEX_INTERVAL_BYTES + 1) * INDEX_INTERVAL_BYTES;
    }
    let count = payloads.len() as u64;
    st.active.len += frame_len;
    st.active.record_count += count;
    st.next_seq += count;
    st.last_ts = ts;
    st.pending_bytes += written;
    st.pending_appends += 1;
    if st.gathering && st.pending_appends >= st.group_target {
        shared.gather.notify_one();
    }
    let write_offset = offset - start_in_buf as u64;
    st.pending.push(Pending::Write { offset: write_offset, bytes });
    Appended { first, last: first + count - 1, ts }
}

/// Queues the seal of the active segment and the creation of the next one.
fn plan_roll(shared: &Shared, st: &mut State) {
    let last_seq = st.next_seq - 1;
    let footer = Footer {
        record_count: st.active.record_count,
        last_seq,
        last_ts: st.last_ts,
        chain_after: st.chain,
        data_end: st.active.len,
        segment_crc: st.active.crc.clone().finalize(),
    };
    let mut seal = format::encode_index(&st.active.index);
    seal.extend_from_slice(&footer.encode());
    let next_first_seq = st.next_seq;
    tracing::debug!(
        segment = %st.active.path.display(), last_seq, next_first_seq,
        "sealing the active segment and starting the next"
    );
    let next_path = shared.wal_dir.join(format::segment_file_name(next_first_seq));
    let kind = shared.options.kind;
    let header = SegmentHeader { first_seq: next_first_seq, chain_before: st.chain, kind }.encode();
    let new_active = ActiveSeg::new(next_first_seq, next_path.clone(), st.chain, kind);
    let old = std::mem::replace(&mut st.active, new_active);
    st.sealed.push(SealedSeg {
        first_seq: old.first_seq,
        last_seq,
        last_ts: st.last_ts,
        chain_before: old.chain_before,
        chain_after: st.chain,
        path: old.path,
        data_end: old.len,
        on_disk: false,
        index: Some(Arc::new(old.index)),
    });
    st.pending_bytes += seal.len();
    st.pending.push(Pending::Roll {
        data_end: old.len,
        seal,
        next_path,
        header: header.to_vec(),
        next_first_seq,
    });
}

impl ActiveSeg {
    pub(crate) fn new(
        first_seq: u64,
        path: std::path::PathBuf,
        chain_before: crate::ChainValue,
        kind: crate::StoreKind,
    ) -> Self {
        let header = SegmentHeader { first_seq, chain_before, kind }.encode();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        Self {
            first_seq,
            path,
            chain_before,
            len: SEGMENT_HEADER_BYTES as u64,
            durable_len: SEGMENT_HEADER_BYTES as u64,
            record_count: 0,
            crc,
            index: Vec::new(),
            next_index_at: 0,
        }
    }
}

/// Does the I/O of every pending item as the leader, with the state lock released meanwhile.
/// On return the caller holds the lock again; `leader` is cleared and waiters are woken.
fn lead(shared: &Shared, st: &mut MutexGuard<'_, State>, sync: bool) -> Result<()> {
    debug_assert!(!st.leader, "one leader at a time");
    st.leader = true;
    if sync {
        gather(shared, st);
    }
    let pending = std::mem::take(&mut st.pending);
    st.pending_bytes = 0;
    st.pending_appends = 0;
    let target = st.next_seq - 1;
    let sync_needed = sync && st.durable_seq < target;
    let started = Instant::now();
    let outcome = MutexGuard::unlocked(st, || {
        let mut io = shared.io.lock();
        perform(shared, &mut io, pending, sync_needed)
    });
    st.leader = false;
    let result = match outcome {
        Ok(done) => {
            st.written_seq = target;
            shared.written.store(target, Ordering::Release);
            for sealed in &mut st.sealed {
                if done.sealed_through >= sealed.first_seq {
                    sealed.on_disk = true;
                }
            }
            if sync_needed {
                st.durable_seq = target;
                if st.active.first_seq == done.segment_first_seq {
                    st.active.durable_len = st.active.durable_len.max(done.end);
                }
                let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                st.sync_ns = if st.sync_ns == 0 { took } else { (st.sync_ns * 7 + took) / 8 };
                // Everyone still waiting (the group just covered included) is in flight.
                st.group_target = shared.waiting.load(Ordering::Relaxed).max(1);
            }
            if shared.options.durability == Durability::Sync {
                st.visible_seq = st.durable_seq;
                shared.visible.store(st.visible_seq, Ordering::Release);
            }
            Ok(())
        }
        Err(err) => {
            tracing::error!(dir = %shared.dir.display(), error = %err, "the log refuses writes until reopened (poisoned)");
            st.poisoned = Some(err.to_string());
            Err(err)
        }
    };
    step_down(shared, st);
    result
}

/// Publishes what a leader did and wakes everyone waiting for it: the parked durable waiters,
/// the condition variable's waiters (readers, `ensure_written`) and a gathering leader.
fn step_down(shared: &Shared, st: &MutexGuard<'_, State>) {
    shared.durable.store(st.durable_seq, Ordering::Release);
    shared.commits.fetch_add(1, Ordering::Release);
    for thread in std::mem::take(&mut *shared.parked.lock()) {
        thread.unpark();
    }
    shared.cond.notify_all();
    shared.gather.notify_all();
}

struct Done {
    /// First sequence number of the segment the last write went to.
    segment_first_seq: u64,
    /// End offset of the last write in that segment.
    end: u64,
    /// Every sealed segment whose first sequence number is at most this is sealed on disk.
    sealed_through: u64,
}

fn perform(
    shared: &Shared,
    io: &mut crate::log::Io,
    pending: Vec<Pending>,
    sync: bool,
) -> Result<Done> {
    let mut done = Done { segment_first_seq: 0, end: 0, sealed_through: 0 };
    for item in pending {
        match item {
            Pending::Write { offset, bytes } => {
                io.file
                    .write_all_at(&bytes, offset)
                    .map_err(|e| Error::io("write", &io.path, e))?;
                shared.stats.writes.fetch_add(1, Ordering::Relaxed);
                shared.stats.bytes_written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                io.written_to = io.written_to.max(offset + bytes.len() as u64);
                done.end = offset + bytes.len() as u64;
            }
            Pending::Roll { data_end, seal, next_path, header, next_first_seq } => {
                io.file
                    .write_all_at(&seal, data_end)
                    .map_err(|e| Error::io("write", &io.path, e))?;
                let sealed_len = data_end + seal.len() as u64;
                io.file.set_len(sealed_len).map_err(|e| Error::io("truncate", &io.path, e))?;
                io.file.sync_data().map_err(|e| Error::io("fdatasync", &io.path, e))?;
                done.sealed_through = next_first_seq - 1;
                let file = create_segment(shared, &next_path, &header)?;
                shared.stats.segments_created.fetch_add(1, Ordering::Relaxed);
                io.file = file;
                io.path = next_path;
                io.first_seq = next_first_seq;
                io.written_to = SEGMENT_HEADER_BYTES as u64;
                done.end = SEGMENT_HEADER_BYTES as u64;
            }
        }
    }
    if sync
        && shared.options.durability != Durability::Manual
        && shared.options.preallocate
        && zero_ahead(shared, io, done.end).is_err()
    {
        // The zeros only make later fdatasyncs cheaper; the frames do not need them. A failure
        // (a full disk) must not fail an append whose frames are written and about to be
        // synced: stop zeroing ahead in this segment instead.
        io.written_to = shared.options.segment_bytes_target;
    }
    if sync {
        io.file.sync_data().map_err(|e| Error::io("fdatasync", &io.path, e))?;
        shared.stats.fdatasyncs.fetch_add(1, Ordering::Relaxed);
    }
    done.segment_first_seq = io.first_seq;
    Ok(done)
}

/// Keeps zeros written at least half a step ahead of `end`, up to the segment target.
fn zero_ahead(shared: &Shared, io: &mut crate::log::Io, end: u64) -> Result<()> {
    const STEP: u64 = crate::log::ZERO_AHEAD_BYTES;
    let limit = shared.options.segment_bytes_target;
    if io.written_to >= limit || io.written_to >= end + STEP / 2 {
        return Ok(());
    }
    let from = io.written_to.max(end);
    let to = (from + STEP).min(limit);
    if to <= from {
        return Ok(());
    }
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        let chunk = &ZEROS[..usize::try_from(n).expect("at most 64 KiB")];
        io.file.write_all_at(chunk, at).map_err(|e| Error::io("write", &io.path, e))?;
        at += n;
    }
    io.written_to = to;
    Ok(())
}

/// Creates a segment file with `header`, preallocated if configured, durable with its directory
/// entry before it is returned.
pub(crate) fn create_segment(
    shared: &Shared,
    path: &Path,
    header: &[u8],
) -> Result<Box<dyn crate::storage::StorageFile>> {
    create_segment_on(&*shared.storage, &shared.wal_dir, path, header, &shared.options)
}

pub(crate) fn create_segment_on(
    storage: &dyn crate::storage::Storage,
    wal_dir: &Path,
    path: &Path,
    header: &[u8],
    options: &crate::log::Options,
) -> Result<Box<dyn crate::storage::StorageFile>> {
    let file =
        storage.open_file(path, OpenMode::CreateNew).map_err(|e| Error::io("create", path, e))?;
    file.write_all_at(header, 0).map_err(|e| Error::io("write", path, e))?;
    if options.preallocate {
        file.set_len(options.segment_bytes_target)
            .map_err(|e| Error::io("preallocate", path, e))?;
    }
    file.sync_data().map_err(|e| Error::io("fdatasync", path, e))?;
    storage.sync_dir(wal_dir).map_err(|e| Error::io("fsync directory", wal_dir, e))?;
    Ok(file)
}
