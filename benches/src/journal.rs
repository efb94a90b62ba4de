//! Workloads of the journal benchmarks, shared by the criterion bench `journal` and the
//! `journal_targets` binary:
//!
//! - folding: a journal of task events (150 bytes of MessagePack data each, named fields) read
//!   from the page cache four ways, each adding one step to the one before: the WAL's records
//!   alone (`read_from(1)`), the envelope parsed, the data decoded as [`TaskLogged`], and the
//!   whole `Journal::replay` of the [`MinutesByActor`] projection;
//! - appending: durable (`Sync`) appends of one task event through `Journal::append` (typed
//!   event, `Expect::Any`, a few streams, a registered projection kept live), beside appends of
//!   the same envelope bytes, encoded beforehand, straight to a WAL `Log`, by one or many
//!   threads, interleaved in blocks.
//!
//! Every workload checks what it read or wrote (record counts, sequence numbers, payload sizes,
//! stream versions, the projection's state against totals computed without the journal), so
//! that nothing is timed doing nothing.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use annal::wal::Log;
use annal::{Durability, Envelope, Expect, Journal, Meta, Projection, RawEvent, TypedEvent, Until};
use annal_projection::envelope::{encode_data, encode_event};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::{BenchError, BenchResult, FlushCounter, check, scratch_dir, sync_options};

/// The event type of every event.
pub const TASK_EVENT_TYPE: &str = "task-logged";
/// Bytes of MessagePack data of every event (named fields).
pub const DATA_BYTES: usize = 150;
/// Bytes of every event's WAL payload: the envelope (stream names of 11 bytes, no metadata)
/// and the data.
pub const EVENT_PAYLOAD_BYTES: usize = 45 + DATA_BYTES;
/// Distinct actors; events cycle through them.
pub const ACTORS: u64 = 8;
/// Streams of the fold journal; events cycle through them.
pub const FOLD_STREAMS: u64 = 1_000;
/// Streams the appenders write to.
pub const APPEND_STREAMS: u64 = 4;

/// A task event: someone logged time on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLogged {
    /// The task.
    pub task_id: u64,
    /// The task's title.
    pub title: String,
    /// Who logged the time.
    pub actor: String,
    /// Minutes logged.
    pub minutes: u32,
    /// Whether the task is done.
    pub done: bool,
}

impl TypedEvent for TaskLogged {
    fn event_type(&self) -> &str {
        TASK_EVENT_TYPE
    }
}

/// The name of actor `i`, all of the same length.
#[must_use]
pub fn actor_name(i: u64) -> String {
    format!("actor-{:02}@tasks.example.org", i % ACTORS)
}

fn minutes_of(n: u64) -> u32 {
    u32::try_from(1 + n * 7 % 120).expect("at most 120")
}

fn done_of(n: u64) -> bool {
    n.is_multiple_of(3)
}

/// Event number `n`. Every event encodes to exactly [`DATA_BYTES`]: the task id is above
/// 2^32 (a 9-byte integer), the title and actor have fixed lengths, the minutes fit in 1 byte.
#[must_use]
pub fn task(n: u64) -> TaskLogged {
    TaskLogged {
        task_id: (1 << 40) + n,
        title: format!(
            "Reconcile the invoices of customer account {:08} and file the audit notes",
            n % 100_000_000
        ),
        actor: actor_name(n),
        minutes: minutes_of(n),
        done: done_of(n),
    }
}

/// The name of stream `k`, all of the same length.
#[must_use]
pub fn stream_name(k: u64) -> String {
    format!("task-{:06}", k % 1_000_000)
}

/// The WAL payload the journal writes for `event` at `version` of `stream`.
///
/// # Errors
/// Encoding errors.
pub fn event_payload(stream: &str, version: u64, event: &TaskLogged) -> BenchResult<Vec<u8>> {
    let data = encode_data(event)?;
    check(data.len() == DATA_BYTES, || format!("event data of {} bytes", data.len()))?;
    let mut out = Vec::with_capacity(EVENT_PAYLOAD_BYTES);
    encode_event(&mut out, stream, version, TASK_EVENT_TYPE, &Meta::default(), &data)?;
    check(out.len() == EVENT_PAYLOAD_BYTES, || format!("event payload of {} bytes", out.len()))?;
    Ok(out)
}

// ---- the projection ------------------------------------------------------------------------

/// What [`MinutesByActor`] keeps per actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorTotals {
    /// Events.
    pub events: u64,
    /// Minutes logged.
    pub minutes: u64,
    /// Events that marked their task done.
    pub done: u64,
}

/// State of [`MinutesByActor`]: totals by actor.
pub type Totals = BTreeMap<String, ActorTotals>;

/// A projection summing the minutes, events and completions of each actor.
#[derive(Debug, Clone, Copy)]
pub struct MinutesByActor;

impl Projection for MinutesByActor {
    const NAME: &'static str = "minutes-by-actor";
    const SCHEMA_VERSION: u32 = 1;
    type Event = TaskLogged;
    type State = Totals;

    fn accepts(event_type: &str) -> bool {
        event_type == TASK_EVENT_TYPE
    }

    fn apply(state: &mut Totals, event: &Envelope<'_, TaskLogged>) {
        let task = &event.data;
        let totals = match state.get_mut(task.actor.as_str()) {
            Some(totals) => totals,
            None => state.entry(task.actor.clone()).or_default(),
        };
        totals.events += 1;
        totals.minutes += u64::from(task.minutes);
        totals.done += u64::from(task.done);
    }
}

/// The state [`MinutesByActor`] must reach over events `numbers`, computed without events.
#[must_use]
pub fn expected_totals(numbers: impl IntoIterator<Item = u64>) -> Totals {
    let mut by_actor = [ActorTotals::default(); 8];
    const _: () = assert!(ACTORS == 8);
    for n in numbers {
        let t = &mut by_actor[usize::try_from(n % ACTORS).expect("below 8")];
        t.events += 1;
        t.minutes += u64::from(minutes_of(n));
        t.done += u64::from(done_of(n));
    }
    (0..ACTORS)
        .zip(by_actor)
        .filter(|(_, t)| t.events > 0)
        .map(|(i, t)| (actor_name(i), t))
        .collect()
}

// ---- folding -------------------------------------------------------------------------------

/// A journal of task events, written once and kept open.
#[derive(Debug)]
pub struct FoldData {
    /// The journal.
    pub journal: Journal,
    /// Events in it.
    pub events: u64,
    /// The state of [`MinutesByActor`] over all of them.
    pub expected: Totals,
    /// Minutes of all of them.
    pub minutes: u64,
    _dir: TempDir,
}

/// One way of reading the fold journal, each adding a step to the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldPass {
    /// The WAL's records: `journal.log().read_from(1)`, counting them and checking sequence
    /// numbers and payload sizes.
    Scan,
    /// The same, and each payload parsed as an envelope (`RawEvent::parse`).
    Parse,
    /// The same, and each event's data decoded as a [`TaskLogged`].
    Decode,
    /// `journal.replay::<MinutesByActor>(Until::End)`.
    Replay,
}

impl FoldPass {
    /// Every pass, cheapest first.
    pub const ALL: [Self; 4] = [Self::Scan, Self::Parse, Self::Decode, Self::Replay];

    /// Short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Scan => "wal_scan",
            Self::Parse => "parse",
            Self::Decode => "decode",
            Self::Replay => "replay",
        }
    }
}

/// Appends `events` task events to a new journal (`Manual` durability, one event per append,
/// `Expect::Any`, over [`FOLD_STREAMS`] streams), syncs it, and runs every [`FoldPass`] twice to
/// load the page cache and check the journal.
///
/// # Errors
/// Journal errors, or the journal does not hold the events.
pub fn prepare_fold(events: u64) -> BenchResult<FoldData> {
    let dir = scratch_dir()?;
    let journal =
        Journal::options().durability(Durability::Manual).open(dir.path().join("journal"))?;
    for n in 0..events {
        journal.append(&stream_name(n % FOLD_STREAMS), Expect::Any, [task(n)])?;
    }
    journal.sync()?;
    check(journal.last_seq() == events, || {
        format!("journal ends at {} after {events} appends", journal.last_seq())
    })?;
    let expected = expected_totals(0..events);
    let minutes = expected.values().map(|t| t.minutes).sum();
    let data = FoldData { journal, events, expected, minutes, _dir: dir };
    for _ in 0..2 {
        for pass in FoldPass::ALL {
            fold_pass(&data, pass)?;
        }
    }
    Ok(data)
}

/// Reads the fold journal once as `pass` says, and checks what it read.
///
/// # Errors
/// Read, envelope or decode errors, or a result that differs from what was written.
pub fn fold_pass(data: &FoldData, pass: FoldPass) -> BenchResult<()> {
    let log = data.journal.log();
    match pass {
        FoldPass::Scan => {
            let read = scan_records(log.read_from(1))?;
            check(read == data.events, || format!("scanned {read} records of {}", data.events))
        }
        FoldPass::Parse => {
            let (read, data_bytes) = parse_events(log.read_from(1))?;
            check(read == data.events, || format!("parsed {read} events of {}", data.events))?;
            let expected = data.events * DATA_BYTES as u64;
            check(data_bytes == expected, || format!("{data_bytes} bytes of data, not {expected}"))
        }
        FoldPass::Decode => {
            let (read, minutes) = decode_events(log.read_from(1))?;
            check(read == data.events, || format!("decoded {read} events of {}", data.events))?;
            check(minutes == data.minutes, || format!("{minutes} minutes, not {}", data.minutes))
        }
        FoldPass::Replay => {
            let (state, at) = data.journal.replay::<MinutesByActor>(Until::End)?;
            check(at == data.events, || format!("replay stands at {at} of {}", data.events))?;
            check(state == data.expected, || format!("replay state {state:?} is wrong"))
        }
    }
}

/// Reads every record of `log` from sequence 1, checking that sequence numbers run `1..`
/// without gaps and that every payload has [`EVENT_PAYLOAD_BYTES`]. Returns the count.
///
/// # Errors
/// A read error, or a record out of place.
pub fn scan_records(records: annal_wal::Reader) -> BenchResult<u64> {
    let mut next = 1;
    for record in records {
        let record = record?;
        if record.seq != next || record.payload.len() != EVENT_PAYLOAD_BYTES {
            return Err(misplaced(record.seq, record.payload.len(), next));
        }
        next += 1;
    }
    Ok(next - 1)
}

fn misplaced(seq: u64, len: usize, next: u64) -> BenchError {
    format!("record {seq} of {len} bytes where record {next} of {EVENT_PAYLOAD_BYTES} was expected")
        .into()
}

/// Reads and parses every event of `log`, checking sequence numbers and event types. Returns
/// the count and the bytes of data.
///
/// # Errors
/// A read or envelope error, or an event out of place.
pub fn parse_events(records: annal_wal::Reader) -> BenchResult<(u64, u64)> {
    let mut next = 1;
    let mut data_bytes = 0;
    for record in records {
        let record = record?;
        let raw = RawEvent::parse(record.seq, record.ts, &record.payload)?;
        if raw.seq != next || raw.event_type != TASK_EVENT_TYPE {
            return Err(format!("event {} of type {:?} at {next}", raw.seq, raw.event_type).into());
        }
        data_bytes += raw.data.len() as u64;
        next += 1;
    }
    Ok((next - 1, data_bytes))
}

/// Reads, parses and decodes every event of `log` as a [`TaskLogged`], checking sequence
/// numbers. Returns the count and the sum of the minutes.
///
/// # Errors
/// A read, envelope or decode error, or an event out of place.
pub fn decode_events(records: annal_wal::Reader) -> BenchResult<(u64, u64)> {
    let mut next = 1;
    let mut minutes = 0;
    for record in records {
        let record = record?;
        let raw = RawEvent::parse(record.seq, record.ts, &record.payload)?;
        let task: TaskLogged = raw.decode()?;
        if raw.seq != next {
            return Err(format!("event {} at {next}", raw.seq).into());
        }
        minutes += u64::from(task.minutes);
        next += 1;
    }
    Ok((next - 1, minutes))
}

// ---- appending -----------------------------------------------------------------------------

/// `threads` appending threads (1: the calling thread), each making `per_thread` appends of one
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendLoad {
    /// Appending threads.
    pub threads: usize,
    /// Appends of each thread.
    pub per_thread: u64,
}

impl AppendLoad {
    /// Appends in all.
    #[must_use]
    pub fn records(self) -> u64 {
        self.threads as u64 * self.per_thread
    }
}

/// Event numbers and streams of the appends of thread `t` numbered `range`: event
/// `t * stride + i`, to stream `(t + i) % APPEND_STREAMS`, for `i` in `range`.
fn thread_events(t: usize, stride: u64, range: Range<u64>) -> impl Iterator<Item = (u64, u64)> {
    let t = t as u64;
    range.map(move |i| (t * stride + i, (t + i) % APPEND_STREAMS))
}

/// The journal appends of `threads` threads for appends `range` of each: for thread `t` and
/// append `i`, event `t * stride + i` to stream `(t + i) % APPEND_STREAMS`, as a stream name
/// and a typed event.
#[must_use]
pub fn journal_work(
    threads: usize,
    stride: u64,
    range: &Range<u64>,
) -> Vec<Vec<(String, TaskLogged)>> {
    (0..threads)
        .map(|t| {
            thread_events(t, stride, range.clone())
                .map(|(n, s)| (stream_name(s), task(n)))
                .collect()
        })
        .collect()
}

/// The raw WAL appends matching [`journal_work`]: the payload the journal would write for each
/// event (with version `i + 1`, as long as the journal's).
///
/// # Errors
/// Encoding errors.
pub fn wal_work(threads: usize, stride: u64, range: &Range<u64>) -> BenchResult<Vec<Vec<Vec<u8>>>> {
    (0..threads)
        .map(|t| {
            thread_events(t, stride, range.clone())
                .map(|(n, s)| event_payload(&stream_name(s), n % stride + 1, &task(n)))
                .collect()
        })
        .collect()
}

/// Every event number that `threads` threads append for appends `range` of each.
pub fn append_numbers(threads: usize, stride: u64, range: Range<u64>) -> impl Iterator<Item = u64> {
    (0..threads).flat_map(move |t| thread_events(t, stride, range.clone()).map(|(n, _)| n))
}

/// Appends one event to `journal`.
///
/// # Errors
/// The journal's.
pub fn journal_append(journal: &Journal, (stream, event): (String, TaskLogged)) -> BenchResult<()> {
    journal.append(&stream, Expect::Any, [event])?;
    Ok(())
}

/// Appends one payload to `log`.
///
/// # Errors
/// The WAL's.
pub fn wal_append(log: &Log, payload: Vec<u8>) -> BenchResult<()> {
    log.append(&payload)?;
    Ok(())
}

/// Runs one appending thread per list of `work` (one list: the calling thread), released
/// together, each calling `append` on its items in order. Returns the wall time from the
/// release to the last thread's end, and every append's latency.
///
/// # Errors
/// The first error of any thread.
///
/// # Panics
/// If an appending thread panics.
pub fn run_appenders<W: Send>(
    work: Vec<Vec<W>>,
    append: impl Fn(W) -> BenchResult<()> + Sync,
) -> BenchResult<(Duration, Vec<Duration>)> {
    let timed = |items: Vec<W>| -> BenchResult<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(items.len());
        for item in items {
            let start = Instant::now();
            append(item)?;
            latencies.push(start.elapsed());
        }
        Ok(latencies)
    };
    if work.len() == 1 {
        let items = work.into_iter().next().expect("one list");
        let start = Instant::now();
        let latencies = timed(items)?;
        return Ok((start.elapsed(), latencies));
    }
    let barrier = Barrier::new(work.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|items| {
                let (barrier, timed) = (&barrier, &timed);
                scope.spawn(move || {
                    barrier.wait();
                    timed(items)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> =
            handles.into_iter().map(|h| h.join().expect("appending thread panicked")).collect();
        let elapsed = start.elapsed();
        let mut latencies = Vec::new();
        for r in results {
            latencies.extend(r?);
        }
        Ok((elapsed, latencies))
    })
}

/// Timings of one side of a run of durable appends.
#[derive(Debug, Clone, Default)]
pub struct AppendRun {
    /// Appends made durable.
    pub records: u64,
    /// Wall time, summed over the blocks.
    pub elapsed: Duration,
    /// Latency of every append.
    pub latencies: Vec<Duration>,
    /// Cache flushes the disk completed during this side's blocks (by any process), when known.
    pub flushes: Option<u64>,
    /// fdatasyncs of this side's log during its blocks (`Log::stats`).
    pub fdatasyncs: u64,
}

impl AppendRun {
    /// Records per second over the blocks.
    #[must_use]
    pub fn records_per_sec(&self) -> f64 {
        crate::per_sec(self.records, self.elapsed)
    }

    fn add(
        &mut self,
        elapsed: Duration,
        latencies: Vec<Duration>,
        flushes: Option<u64>,
        syncs: u64,
    ) {
        self.records += latencies.len() as u64;
        self.elapsed += elapsed;
        self.latencies.extend(latencies);
        self.flushes = self.flushes.zip(flushes).map(|(a, b)| a + b);
        self.fdatasyncs += syncs;
    }
}

/// The two sides of a run of durable appends.
#[derive(Debug, Clone)]
pub struct AppendPair {
    /// Appends of the encoded payloads to a WAL `Log`.
    pub wal: AppendRun,
    /// Appends of typed events to a `Journal`.
    pub journal: AppendRun,
}

/// Opens a `Sync` WAL log and a `Sync` journal with [`MinutesByActor`] registered, both in
/// `dir`, and runs `load` on each, cut into `blocks` blocks that alternate between the two
/// (starting with the journal if `journal_first`, then swapping which goes first at every
/// block). Afterwards reads both logs back, and checks the journal's live and replayed state.
///
/// # Errors
/// Journal, WAL or I/O errors; `blocks` that do not divide the appends of a thread; the logs
/// not holding the appends.
pub fn interleaved_appends(
    dir: &Path,
    load: AppendLoad,
    blocks: u64,
    journal_first: bool,
) -> BenchResult<AppendPair> {
    check(blocks > 0 && load.per_thread.is_multiple_of(blocks), || {
        format!("{blocks} blocks do not divide {} appends", load.per_thread)
    })?;
    let per_block = load.per_thread / blocks;
    let log = Log::open(dir.join("wal"), sync_options())?;
    let journal = Journal::options().projection::<MinutesByActor>().open(dir.join("journal"))?;
    let counter = FlushCounter::for_dir(dir);
    let empty = || AppendRun { flushes: counter.as_ref().map(|_| 0), ..AppendRun::default() };
    let (mut wal, mut jnl) = (empty(), empty());
    let stride = load.per_thread;
    for block in 0..blocks {
        let range = block * per_block..(block + 1) * per_block;
        let first = journal_first ^ (block % 2 == 1);
        for journal_turn in [first, !first] {
            if journal_turn {
                let work = journal_work(load.threads, stride, &range);
                let syncs = journal.log().stats().fdatasyncs;
                let (run, flushes) = FlushCounter::during(counter.as_ref(), || {
                    run_appenders(work, |item| journal_append(&journal, item))
                });
                let (elapsed, latencies) = run?;
                jnl.add(elapsed, latencies, flushes, journal.log().stats().fdatasyncs - syncs);
            } else {
                let work = wal_work(load.threads, stride, &range)?;
                let syncs = log.stats().fdatasyncs;
                let (run, flushes) = FlushCounter::during(counter.as_ref(), || {
                    run_appenders(work, |payload| wal_append(&log, payload))
                });
                let (elapsed, latencies) = run?;
                wal.add(elapsed, latencies, flushes, log.stats().fdatasyncs - syncs);
            }
        }
    }
    let expected = expected_totals(append_numbers(load.threads, stride, 0..load.per_thread));
    verify_appended(
        (log.last_seq(), log.durable_seq(), log.read_from(1)),
        load.records(),
        &expected,
        false,
    )?;
    let view = journal.log();
    verify_appended(
        (view.last_seq(), view.durable_seq(), view.read_from(1)),
        load.records(),
        &expected,
        true,
    )?;
    let (live, at) = journal.state_at::<MinutesByActor>()?;
    check(at == load.records() && live == expected, || {
        format!("live state at {at} of {} is {live:?}", load.records())
    })?;
    let (replayed, _) = journal.replay::<MinutesByActor>(Until::End)?;
    check(replayed == expected, || format!("replayed state {replayed:?}"))?;
    log.close()?;
    Ok(AppendPair { wal, journal: jnl })
}

/// Reads the whole of `log` back and checks it holds `expected` durable events, without gaps,
/// each of [`EVENT_PAYLOAD_BYTES`], decoding to the given totals, and, if `versions`, with
/// stream versions running `1..` in every stream.
///
/// # Errors
/// A read, envelope or decode error, or the log does not hold what it should.
pub fn verify_appended(
    (last_seq, durable_seq, records): (u64, u64, annal_wal::Reader),
    expected: u64,
    totals: &Totals,
    versions: bool,
) -> BenchResult<()> {
    check(last_seq == expected && durable_seq >= expected, || {
        format!(
            "log ends at {last_seq}, durable through {durable_seq}, where {expected} records were appended"
        )
    })?;
    let mut next = 1;
    let mut state = Totals::new();
    let mut stream_versions: BTreeMap<String, u64> = BTreeMap::new();
    for record in records {
        let record = record?;
        if record.seq != next || record.payload.len() != EVENT_PAYLOAD_BYTES {
            return Err(misplaced(record.seq, record.payload.len(), next));
        }
        let raw = RawEvent::parse(record.seq, record.ts, &record.payload)?;
        MinutesByActor::apply(&mut state, &raw.envelope()?);
        if versions {
            let version = stream_versions.entry(raw.stream.to_owned()).or_default();
            check(raw.version == *version + 1, || {
                format!("event {next}: version {} of {} after {version}", raw.version, raw.stream)
            })?;
            *version = raw.version;
        }
        next += 1;
    }
    check(next - 1 == expected, || format!("read back {} records of {expected}", next - 1))?;
    check(&state == totals, || format!("the events read back fold to {state:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_the_same_size() -> BenchResult<()> {
        for n in [0, 1, 7, 999, 123_456_789, u64::from(u32::MAX)] {
            let payload = event_payload(&stream_name(n), n + 1, &task(n))?;
            assert_eq!(payload.len(), EVENT_PAYLOAD_BYTES);
        }
        Ok(())
    }

    #[test]
    fn expected_totals_match_the_projection() -> BenchResult<()> {
        let mut state = Totals::new();
        for n in 0..100 {
            let payload = event_payload(&stream_name(n), n + 1, &task(n))?;
            let raw = RawEvent::parse(n + 1, 0, &payload)?;
            MinutesByActor::apply(&mut state, &raw.envelope()?);
        }
        assert_eq!(state, expected_totals(0..100));
        Ok(())
    }

    #[test]
    fn small_workloads_verify() -> BenchResult<()> {
        let data = prepare_fold(500)?;
        for pass in FoldPass::ALL {
            fold_pass(&data, pass)?;
        }
        for load in
            [AppendLoad { threads: 1, per_thread: 8 }, AppendLoad { threads: 3, per_thread: 4 }]
        {
            let pair = crate::in_scratch(|d| interleaved_appends(d, load, 2, true))?;
            assert_eq!(pair.wal.records, load.records());
            assert_eq!(pair.journal.records, load.records());
        }
        Ok(())
    }
}
