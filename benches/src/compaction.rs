//! Workloads of the compaction benchmarks, shared by the criterion bench `compaction` and the
//! `compaction_targets` binary:
//!
//! - opening: `Journal::options().projection::<Counts>().open(dir)` on stores of task events
//!   (the journal benchmarks' [`TaskLogged`], 150 B of MessagePack data each, one event per
//!   append over [`STREAMS`] streams, written with `Durability::Manual` and one sync), with and
//!   without a final snapshot (`compact()` with `keep_snapshots(1)` once everything is
//!   written), from the page cache or after the kernel dropped its caches;
//! - replaying to a sequence number: `journal.replay::<Counts>(Until::Seq(s))` on a store
//!   compacted every so many events with enough snapshots kept that no segment is removed,
//!   against the distance from `s` down to the snapshot below it, beside the same fold from
//!   the start of the log;
//! - compacting: `journal.compact()` of a whole store with `keep_snapshots(1)`: its time, the
//!   snapshot bytes it writes, the segments it removes and the bytes it reclaims.
//!
//! Every workload checks its result outside the timed part (the `Counts` state against totals
//! computed from the event numbers, last sequence numbers, the files on disk and the compaction
//! report against them), so that nothing is timed doing nothing.
//!
//! [`TaskLogged`]: crate::journal::TaskLogged

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use annal::{CompactReport, Counts, CountsState, Durability, Expect, Journal, RawEvent, Until};
use annal_projection::replay::apply_raw;
use tempfile::TempDir;

use crate::journal::{TASK_EVENT_TYPE, stream_name, task};
use crate::{BenchResult, FlushCounter, check, scratch_dir, settle};

/// Streams every store's events cycle through, so that the projections' states (and so their
/// snapshots) have the same size whatever the number of events.
pub const STREAMS: u64 = 1_000;

/// Name of the store directory inside a scratch directory.
const STORE_DIR: &str = "journal";

/// The `Counts` state after events `0..events` of a store.
#[must_use]
pub fn expected_counts(events: u64) -> CountsState {
    let by_stream: BTreeMap<String, u64> = (0..STREAMS.min(events))
        .map(|k| (stream_name(k), events / STREAMS + u64::from(k < events % STREAMS)))
        .collect();
    let by_type =
        if events == 0 { BTreeMap::new() } else { [(TASK_EVENT_TYPE.to_owned(), events)].into() };
    CountsState { total: events, by_type, by_stream }
}

/// Checks a replayed or live `Counts` state against [`expected_counts`].
fn check_counts(state: &CountsState, events: u64, what: &str) -> BenchResult<()> {
    check(state == &expected_counts(events), || {
        format!(
            "{what}: Counts state of {} events ({} streams) where {events} were appended",
            state.total,
            state.by_stream.len()
        )
    })
}

/// Options of a journal with [`Counts`] registered.
fn counts_options() -> annal::JournalOptions {
    Journal::options().projection::<Counts>()
}

/// Opens a store the way the open benchmark does: `Journal::options().projection::<Counts>()`
/// and nothing else.
///
/// # Errors
/// The journal's.
pub fn open_counts(dir: &Path) -> annal::Result<Journal> {
    counts_options().open(dir)
}

// ---- stores --------------------------------------------------------------------------------

/// A store of task events in a scratch directory, removed when dropped.
#[derive(Debug)]
pub struct Store {
    /// Events in it.
    pub events: u64,
    /// Time to write it: every append, the compactions made while writing, the final sync.
    pub written: Duration,
    /// What each compaction made while writing reported, in order.
    pub compactions: Vec<CompactReport>,
    path: PathBuf,
    _dir: TempDir,
}

impl Store {
    /// The store directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a new store of `events` task events: [`Counts`] registered, `Durability::Manual`,
/// one `Journal::append` of one event per event, `Expect::Any`, event `n` to stream
/// `n % STREAMS`. With `compact_every`, after every that many events the journal is synced and
/// compacted (keeping `keep` snapshots per projection). Ends with one sync, and closes the
/// journal.
///
/// # Errors
/// Journal errors; a compaction that does not stand at the events written so far; a journal
/// that does not end at `events`.
pub fn write_store(events: u64, compact_every: Option<u64>, keep: usize) -> BenchResult<Store> {
    let dir = scratch_dir()?;
    let path = dir.path().join(STORE_DIR);
    let start = Instant::now();
    let journal =
        counts_options().durability(Durability::Manual).keep_snapshots(keep).open(&path)?;
    let mut compactions = Vec::new();
    for n in 0..events {
        journal.append(&stream_name(n % STREAMS), Expect::Any, [task(n)])?;
        if compact_every.is_some_and(|every| (n + 1).is_multiple_of(every)) {
            journal.sync()?;
            let report = journal.compact()?;
            check(report.seq == n + 1, || {
                format!("a compaction after {} events stands at {}", n + 1, report.seq)
            })?;
            compactions.push(report);
        }
    }
    journal.sync()?;
    let written = start.elapsed();
    check(journal.last_seq() == events && journal.log().durable_seq() == events, || {
        format!(
            "journal ends at {}, durable through {}, after {events} appends",
            journal.last_seq(),
            journal.log().durable_seq()
        )
    })?;
    check_counts(&journal.state::<Counts>()?, events, "after writing")?;
    drop(journal);
    Ok(Store { events, written, compactions, path, _dir: dir })
}

/// What a store holds on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Segment files, the active one included.
    pub segments: usize,
    /// Records in the active segment.
    pub active_records: u64,
    /// Records in the first segment (sealed or active).
    pub first_segment_records: u64,
    /// First sequence number the log holds.
    pub first_seq: u64,
    /// Sum of the segment files' lengths (the active one is preallocated).
    pub segment_bytes: u64,
    /// Sum of the snapshot files' lengths.
    pub snapshot_bytes: u64,
    /// Snapshot files.
    pub snapshots: usize,
}

/// The shape of the store that `journal` has open, in `dir`.
///
/// # Errors
/// I/O errors.
pub fn shape(journal: &Journal, dir: &Path) -> BenchResult<Shape> {
    let segments = journal.log().segments();
    let active = segments.last().ok_or("a log has an active segment")?;
    let mut segment_bytes = 0;
    for s in &segments {
        segment_bytes += fs::metadata(&s.path)?.len();
    }
    let (snapshots, snapshot_bytes) = files_under(&dir.join("snapshots"))?;
    Ok(Shape {
        segments: segments.len(),
        active_records: (active.last_seq + 1).saturating_sub(active.first_seq),
        first_segment_records: segments
            .first()
            .map_or(0, |s| (s.last_seq + 1).saturating_sub(s.first_seq)),
        first_seq: journal.log().first_seq(),
        segment_bytes,
        snapshot_bytes,
        snapshots,
    })
}

/// Files under `dir` (recursively) and the sum of their lengths; none if it does not exist.
fn files_under(dir: &Path) -> std::io::Result<(usize, u64)> {
    if !dir.exists() {
        return Ok((0, 0));
    }
    let mut out = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let (n, b) = files_under(&entry.path())?;
            out = (out.0 + n, out.1 + b);
        } else {
            out = (out.0 + 1, out.1 + entry.metadata()?.len());
        }
    }
    Ok(out)
}

// ---- opening -------------------------------------------------------------------------------

/// One timed open.
#[derive(Debug, Clone, Copy)]
pub struct OpenRun {
    /// Wall time of `open`.
    pub elapsed: Duration,
    /// Cache flushes the disk completed during the open (by any process), when known.
    pub flushes: Option<u64>,
    /// What the store held.
    pub shape: Shape,
}

/// Opens `store` with [`open_counts`], timing only the open; then checks that the journal ends
/// at the store's last event, that recovery found nothing to repair, and that the live
/// `Counts` state is the one expected; closes the journal.
///
/// # Errors
/// Journal or I/O errors; a journal that does not hold what was written.
pub fn timed_open(store: &Store) -> BenchResult<OpenRun> {
    let counter = FlushCounter::for_dir(store.path());
    let (opened, flushes) = FlushCounter::during(counter.as_ref(), || {
        let start = Instant::now();
        let journal = open_counts(store.path());
        (journal, start.elapsed())
    });
    let (journal, elapsed) = opened;
    let journal = journal?;
    check(journal.last_seq() == store.events, || {
        format!("opened journal ends at {} of {}", journal.last_seq(), store.events)
    })?;
    check(journal.recovery_report().is_clean(), || {
        format!("recovery repaired something: {:?}", journal.recovery_report())
    })?;
    check_counts(&journal.state::<Counts>()?, store.events, "after opening")?;
    let shape = shape(&journal, store.path())?;
    drop(journal);
    Ok(OpenRun { elapsed, flushes, shape })
}

/// Writes back every dirty page (`sync`) and has the kernel drop its page cache, dentries and
/// inodes (`echo 3 > /proc/sys/vm/drop_caches`), so that the next open reads from the disk.
///
/// # Errors
/// Why the caches could not be dropped (for example: not root).
pub fn drop_caches() -> Result<(), String> {
    let synced = Command::new("sync").status().map_err(|e| format!("sync: {e}"))?;
    if !synced.success() {
        return Err(format!("sync exited with {synced}"));
    }
    fs::write("/proc/sys/vm/drop_caches", "3\n")
        .map_err(|e| format!("writing 3 to /proc/sys/vm/drop_caches: {e}"))
}

// ---- compacting ----------------------------------------------------------------------------

/// One timed compaction.
#[derive(Debug, Clone)]
pub struct CompactRun {
    /// Wall time of `compact()`.
    pub elapsed: Duration,
    /// Cache flushes the disk completed during it (by any process), when known.
    pub flushes: Option<u64>,
    /// What it reported.
    pub report: CompactReport,
    /// Sum of the lengths of the snapshot files it wrote.
    pub snapshot_bytes_written: u64,
    /// The snapshot files it wrote, each with its length.
    pub snapshot_files: Vec<(PathBuf, u64)>,
    /// The store before.
    pub before: Shape,
    /// The store after.
    pub after: Shape,
}

/// Opens `store` (with [`Counts`] registered and `keep_snapshots(keep)`), then times
/// `journal.compact()` after `sync -f` of the scratch file system. Checks that the compaction
/// stands at the last event, that every sealed segment below its log start was removed and
/// counted (paths and bytes against the files seen before), that the snapshot files it names
/// exist, and that the store then opens to the same `Counts` state.
///
/// # Errors
/// Journal or I/O errors; a report that differs from what happened on disk.
pub fn timed_compact(store: &Store, keep: usize) -> BenchResult<CompactRun> {
    let journal = counts_options().keep_snapshots(keep).open(store.path())?;
    let before = shape(&journal, store.path())?;
    let mut sealed: Vec<(PathBuf, u64, u64)> = Vec::new();
    for s in journal.log().segments().into_iter().filter(|s| s.sealed) {
        let len = fs::metadata(&s.path)?.len();
        sealed.push((s.path, s.last_seq, len));
    }
    settle();
    let counter = FlushCounter::for_dir(store.path());
    let (compacted, flushes) = FlushCounter::during(counter.as_ref(), || {
        let start = Instant::now();
        let report = journal.compact();
        (report, start.elapsed())
    });
    let (report, elapsed) = compacted;
    let report = report?;
    check(report.seq == store.events, || {
        format!("compaction stands at {} of {}", report.seq, store.events)
    })?;
    let doomed: Vec<&(PathBuf, u64, u64)> =
        sealed.iter().filter(|(_, last, _)| *last < report.log_start).collect();
    let doomed_paths: Vec<PathBuf> = doomed.iter().map(|(p, _, _)| p.clone()).collect();
    check(report.segments_removed == doomed_paths, || {
        format!(
            "removed {:?} where {doomed_paths:?} lay below the log start",
            report.segments_removed
        )
    })?;
    let doomed_bytes: u64 = doomed.iter().map(|(_, _, len)| len).sum();
    check(report.bytes_reclaimed == doomed_bytes, || {
        format!(
            "reported {} bytes reclaimed, the files held {doomed_bytes}",
            report.bytes_reclaimed
        )
    })?;
    for p in &doomed_paths {
        check(!p.exists(), || format!("{} still exists", p.display()))?;
    }
    let mut snapshot_files = Vec::with_capacity(report.snapshots_written.len());
    for p in &report.snapshots_written {
        snapshot_files.push((p.clone(), fs::metadata(p)?.len()));
    }
    let snapshot_bytes_written = snapshot_files.iter().map(|(_, len)| len).sum();
    drop(journal);
    let reopened = open_counts(store.path())?;
    check_counts(&reopened.state::<Counts>()?, store.events, "after compacting")?;
    let after = shape(&reopened, store.path())?;
    Ok(CompactRun {
        elapsed,
        flushes,
        report,
        snapshot_bytes_written,
        snapshot_files,
        before,
        after,
    })
}

// ---- replaying to a sequence number --------------------------------------------------------

/// A store compacted at regular intervals, open, for replays to a sequence number.
#[derive(Debug)]
pub struct ReplayStore {
    /// The journal, [`Counts`] registered.
    pub journal: Journal,
    /// The sequence numbers of the snapshots, oldest first.
    pub snapshots: Vec<u64>,
    /// The store.
    pub store: Store,
}

/// Writes a store of `events` events compacted after every `every` events, keeping `keep`
/// snapshots; checks that the log still starts at sequence 1 (no segment removed), so that a
/// replay from the start is possible; opens it, and replays it from the start to the end twice
/// to load the page cache.
///
/// # Errors
/// Journal errors; a store that does not have the snapshots or the log expected.
pub fn prepare_replay(events: u64, every: u64, keep: usize) -> BenchResult<ReplayStore> {
    let store = write_store(events, Some(every), keep)?;
    let snapshots: Vec<u64> = store.compactions.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = (1..=events / every).map(|i| i * every).collect();
    check(snapshots == expected, || format!("snapshots at {snapshots:?}, not {expected:?}"))?;
    let journal = open_counts(store.path())?;
    check(journal.log().first_seq() == 1, || {
        format!("the log starts at {}: segments were removed", journal.log().first_seq())
    })?;
    let data = ReplayStore { journal, snapshots, store };
    for _ in 0..2 {
        replay_from_start(&data, events)?;
    }
    Ok(data)
}

/// Times `journal.replay::<Counts>(Until::Seq(seq))` and checks its state and position.
///
/// # Errors
/// Journal errors; a state that differs from [`expected_counts`].
pub fn replay_until(data: &ReplayStore, seq: u64) -> BenchResult<Duration> {
    let start = Instant::now();
    let (state, at) = data.journal.replay::<Counts>(Until::Seq(seq))?;
    let elapsed = start.elapsed();
    check(at == seq, || format!("replay to {seq} stands at {at}"))?;
    check_counts(&state, seq, "replay from a snapshot")?;
    Ok(elapsed)
}

/// The baseline of [`replay_until`]: the same fold from the start of the log, without
/// snapshots, as `Journal::replay` does it past a snapshot (`log().read_from(1)`, each record
/// parsed and applied with `annal_projection::replay::apply_raw::<Counts>`, up to `seq`).
///
/// # Errors
/// Read, envelope or decode errors; a state that differs from [`expected_counts`].
pub fn replay_from_start(data: &ReplayStore, seq: u64) -> BenchResult<Duration> {
    let start = Instant::now();
    let mut state = CountsState::default();
    let mut at = 0;
    for record in data.journal.log().read_from(1) {
        let record = record?;
        if record.seq > seq {
            break;
        }
        apply_raw::<Counts>(&mut state, &RawEvent::parse(record.seq, record.ts, &record.payload)?)?;
        at = record.seq;
        if at == seq {
            break;
        }
    }
    let elapsed = start.elapsed();
    check(at == seq, || format!("replay from the start to {seq} stands at {at}"))?;
    check_counts(&state, seq, "replay from the start")?;
    Ok(elapsed)
}

// ---- disk space ----------------------------------------------------------------------------

/// Bytes available to this user on the file system holding `dir` (`df -Pk`), when known.
#[must_use]
pub fn available_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_counts_cover_every_event() {
        let c = expected_counts(2_500);
        assert_eq!(c.by_stream.len(), 1_000);
        assert_eq!(c.by_stream.values().sum::<u64>(), 2_500);
        assert_eq!(c.by_stream[&stream_name(499)], 3);
        assert_eq!(c.by_stream[&stream_name(500)], 2);
        assert_eq!(expected_counts(0), CountsState::default());
    }

    #[test]
    fn small_workloads_verify() -> BenchResult<()> {
        let store = write_store(3_000, None, 1)?;
        let with = write_store(3_000, None, 1)?;
        assert_eq!(timed_open(&store)?.shape.snapshots, 0);
        let compacted = timed_compact(&with, 1)?;
        assert_eq!(compacted.report.seq, 3_000);
        assert_eq!(compacted.report.snapshots_written.len(), 2);
        assert!(compacted.snapshot_bytes_written > 0);
        assert_eq!(timed_open(&with)?.shape.snapshots, 2);
        let data = prepare_replay(3_000, 1_000, 20)?;
        assert_eq!(data.snapshots, [1_000, 2_000, 3_000]);
        for seq in [1_000, 1_001, 1_999, 2_500, 3_000] {
            replay_until(&data, seq)?;
            replay_from_start(&data, seq)?;
        }
        Ok(())
    }
}
