//! Workloads of the scaling measurements, run by the `scaling` binary: how annal's costs grow
//! with the payload size, the size of the log and the number of writers.
//!
//! - payload size: events of `data_bytes` bytes of MessagePack data ([`Blob`], 16 B to 64 KiB)
//!   appended through `Journal::append`, one event per append: durable (`Sync`) by one thread,
//!   durable by [`PayloadPlan::writers`] threads, and in bulk (`Manual`, one sync at the end);
//!   beside the raw baselines of the same bytes: one `pwrite` of the record and one
//!   `fdatasync` per record ([`raw_sync`]), and the bytes written sequentially in 1 MiB writes
//!   and one `fdatasync` ([`raw_sequential`]);
//! - log size: stores of the journal benchmarks' task events (the compaction benchmarks'
//!   [`write_store`], built with `Manual` durability and one sync) of 10 MB to 2 GB of log, each
//!   opened without a snapshot, replayed whole with the [`Counts`] projection, compacted, and
//!   opened again from the snapshot, page cache warm;
//! - writers: durable appends by 1 to 64 threads on annal and on its peers: the comparison
//!   harness's many-writer workload ([`crate::compare`], 100-byte payloads by default) on every
//!   engine of [`WritersPlan::engines`] (annal's `Journal`, annal-wal, SQLite, fjall, okaywal
//!   and the raw `pwrite` + `fdatasync` baseline), some engines with fewer appends per run
//!   ([`WritersPlan::caps`]).
//!
//! Every run happens in a new scratch directory and checks what it wrote outside the timed part
//! (sequence numbers, payload sizes and the [`Counts`] state read back, the baselines' files,
//! every payload of the writers workload's stores), so that nothing is timed doing nothing. The
//! results serialize to JSON, and [`Report::charts`] draws them.
//!
//! [`write_store`]: crate::compaction::write_store

use std::time::{Duration, Instant};

use annal::wal::format::{FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};
use annal::{Counts, CountsState, Journal, Until};
use serde::{Deserialize, Serialize};

use crate::compaction::{
    OpenRun, available_bytes, expected_counts, open_counts, timed_compact, timed_open, write_store,
};
use crate::compare::report::LatencyUs;
use crate::compare::{DurableLoad, DurableSummary, durable_run, round_order};
use crate::engines::{Engine, Payloads};
use crate::journal::EVENT_PAYLOAD_BYTES;
use crate::{BenchResult, check, in_scratch, scratch_root, settle};

mod report;
mod runs;

pub use report::{Report, WRITERS_CHART_LEAVES_OUT, writers_charts, writers_series_name};
use runs::median_of;
pub use runs::{
    BLOB_EVENT_TYPE, Blob, Run, blob_body, bulk_appends, durable_appends, median_events_per_sec,
    median_mb_per_sec, raw_sequential, raw_sync, verify_journal,
};

/// Bytes a task event takes in the log: frame header, record header, envelope and data.
pub const TASK_FRAMED_BYTES: u64 =
    (FRAME_HEADER_BYTES + RECORD_HEADER_BYTES) as u64 + EVENT_PAYLOAD_BYTES as u64;

/// Room left free on the scratch file system besides a log store ([`measure_log`]).
const SPARE_BYTES: u64 = 1 << 30;

/// Room a log store takes besides its log: the active segment's preallocation and snapshots.
const STORE_OVERHEAD_BYTES: u64 = 128 << 20;

// ---- payload size --------------------------------------------------------------------------

/// What the payload workloads run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadPlan {
    /// Bytes of event data (and of each raw record), smallest first.
    pub sizes: Vec<usize>,
    /// Durable appends by one thread (and raw `pwrite` + `fdatasync` records) per run.
    pub sync_appends: u64,
    /// Threads of the many-writer durable run.
    pub writers: usize,
    /// Durable appends of each of those threads per run.
    pub appends_per_writer: u64,
    /// Bytes of data each bulk run (and sequential baseline) writes, before the bounds below.
    pub bulk_bytes: u64,
    /// Fewest events of a bulk run.
    pub bulk_events_min: u64,
    /// Most events of a bulk run.
    pub bulk_events_max: u64,
    /// Runs of every workload at every size; figures are medians.
    pub rounds: usize,
}

impl PayloadPlan {
    /// Events of the bulk runs at `data_bytes`.
    #[must_use]
    pub fn bulk_events(&self, data_bytes: usize) -> u64 {
        (self.bulk_bytes / data_bytes.max(1) as u64)
            .clamp(self.bulk_events_min, self.bulk_events_max.max(self.bulk_events_min))
    }
}

/// The runs at one payload size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadPoint {
    /// Bytes of event data (and of each raw record).
    pub data_bytes: usize,
    /// Durable appends by one thread.
    pub sync_one: Vec<Run>,
    /// Durable appends by [`PayloadPlan::writers`] threads.
    pub sync_many: Vec<Run>,
    /// Bulk appends, one sync at the end.
    pub bulk: Vec<Run>,
    /// Baseline: one `pwrite` and one `fdatasync` per record.
    pub raw_sync: Vec<Run>,
    /// Baseline: the bulk runs' bytes written sequentially, one `fdatasync`.
    pub raw_sequential: Vec<Run>,
}

/// A workload of the payload measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadWork {
    /// Durable appends by one thread.
    SyncOne,
    /// Durable appends by [`PayloadPlan::writers`] threads.
    SyncMany,
    /// Bulk appends, one sync at the end.
    Bulk,
    /// Baseline: one `pwrite` and one `fdatasync` per record.
    RawSync,
    /// Baseline: the bulk runs' bytes written sequentially, one `fdatasync`.
    RawSequential,
}

impl PayloadWork {
    /// Every workload, annal's first.
    pub const ALL: [Self; 5] =
        [Self::SyncOne, Self::SyncMany, Self::Bulk, Self::RawSync, Self::RawSequential];

    /// The order of a round at the first size: each baseline right after the annal workload
    /// it is judged against.
    const ROUND: [Self; 5] =
        [Self::SyncOne, Self::RawSync, Self::SyncMany, Self::Bulk, Self::RawSequential];

    /// Its name, with the number of threads of the many-writer runs.
    #[must_use]
    pub fn name(self, writers: usize) -> String {
        match self {
            Self::SyncOne => "annal, durable, 1 writer".into(),
            Self::SyncMany => format!("annal, durable, {writers} writers"),
            Self::Bulk => "annal, bulk (Manual, one sync)".into(),
            Self::RawSync => "raw pwrite + fdatasync per record".into(),
            Self::RawSequential => "raw sequential write, one fdatasync".into(),
        }
    }

    /// Whether it is a baseline rather than annal.
    #[must_use]
    pub fn is_baseline(self) -> bool {
        matches!(self, Self::RawSync | Self::RawSequential)
    }

    /// Runs it once at `data_bytes` in a new scratch directory.
    fn run(self, plan: &PayloadPlan, data_bytes: usize, body: &str) -> BenchResult<Run> {
        let n = data_bytes;
        let blob = |_: usize, _: u64| Blob::new(body);
        in_scratch(|d| match self {
            Self::SyncOne => durable_appends(d, 1, plan.sync_appends, n, blob),
            Self::SyncMany => durable_appends(d, plan.writers, plan.appends_per_writer, n, blob),
            Self::Bulk => bulk_appends(d, n, plan.bulk_events(n)),
            Self::RawSync => raw_sync(d, n, plan.sync_appends),
            Self::RawSequential => raw_sequential(d, n, plan.bulk_events(n)),
        })
    }
}

impl PayloadPoint {
    /// The runs of `work`.
    #[must_use]
    pub fn runs(&self, work: PayloadWork) -> &[Run] {
        match work {
            PayloadWork::SyncOne => &self.sync_one,
            PayloadWork::SyncMany => &self.sync_many,
            PayloadWork::Bulk => &self.bulk,
            PayloadWork::RawSync => &self.raw_sync,
            PayloadWork::RawSequential => &self.raw_sequential,
        }
    }

    fn runs_mut(&mut self, work: PayloadWork) -> &mut Vec<Run> {
        match work {
            PayloadWork::SyncOne => &mut self.sync_one,
            PayloadWork::SyncMany => &mut self.sync_many,
            PayloadWork::Bulk => &mut self.bulk,
            PayloadWork::RawSync => &mut self.raw_sync,
            PayloadWork::RawSequential => &mut self.raw_sequential,
        }
    }
}

/// Runs every payload workload at every size of `plan`, `plan.rounds` times, each run in a new
/// scratch directory after [`settle`]; each round at each size starts with another workload, so
/// that a burst of outside load does not always hit the same one. `progress` hears of each run.
///
/// # Errors
/// The first failing run's error, naming the workload and size.
pub fn measure_payload(
    plan: &PayloadPlan,
    progress: &mut dyn FnMut(String),
) -> BenchResult<Vec<PayloadPoint>> {
    let mut points: Vec<PayloadPoint> = plan
        .sizes
        .iter()
        .map(|&data_bytes| PayloadPoint {
            data_bytes,
            sync_one: Vec::new(),
            sync_many: Vec::new(),
            bulk: Vec::new(),
            raw_sync: Vec::new(),
            raw_sequential: Vec::new(),
        })
        .collect();
    let bodies: Vec<String> = plan.sizes.iter().map(|&n| blob_body(n)).collect::<Result<_, _>>()?;
    let order = PayloadWork::ROUND;
    for round in 0..plan.rounds {
        for (k, (point, body)) in points.iter_mut().zip(&bodies).enumerate() {
            let n = point.data_bytes;
            for j in 0..order.len() {
                let work = order[(j + k + round) % order.len()];
                let name = work.name(plan.writers);
                let run =
                    work.run(plan, n, body).map_err(|e| format!("payload {n} B, {name}: {e}"))?;
                progress(format!(
                    "payload {n} B, round {}: {name}: {:.0} events/s, {:.2} MB/s",
                    round + 1,
                    run.events_per_sec(),
                    run.mb_per_sec()
                ));
                point.runs_mut(work).push(run);
            }
        }
    }
    Ok(points)
}

// ---- log size ------------------------------------------------------------------------------

/// What the log-size workloads run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPlan {
    /// Bytes of log of each store, smallest first.
    pub sizes: Vec<u64>,
    /// Sizes left out (by a cap on the log size), reported as skipped with their reason.
    pub left_out: Vec<Skipped>,
    /// Timed opens of each store, with and without the snapshot, after one untimed open each.
    pub opens: usize,
    /// Timed full replays of each store.
    pub replays: usize,
}

/// The measurements of one log store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPoint {
    /// Bytes of log aimed at.
    pub target_bytes: u64,
    /// Task events in the store.
    pub events: u64,
    /// Bytes of segment headers and frames in the log (`SegmentInfo::data_bytes`, summed).
    pub log_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Seconds to write the store (appends and the one sync).
    pub written_seconds: f64,
    /// Seconds of each open without a snapshot.
    pub open_without: Vec<f64>,
    /// Seconds of each `journal.replay::<Counts>(Until::End)` without a snapshot.
    pub replay: Vec<f64>,
    /// Seconds of the final `compact()` (`keep_snapshots(1)`).
    pub compact_seconds: f64,
    /// Bytes of the snapshot files the compaction wrote.
    pub snapshot_bytes: u64,
    /// Bytes of segment headers and frames left in the log after the compaction.
    pub log_bytes_after_compact: u64,
    /// Seconds of each open from the snapshot.
    pub open_with: Vec<f64>,
}

/// A log size not measured, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Bytes of log aimed at.
    pub target_bytes: u64,
    /// Why it was not measured.
    pub why: String,
}

/// The log-size measurements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSeries {
    /// The stores measured, smallest first.
    pub points: Vec<LogPoint>,
    /// The sizes not measured.
    pub skipped: Vec<Skipped>,
}

/// Task events that fill about `target_bytes` of log.
#[must_use]
pub fn events_for_log_bytes(target_bytes: u64) -> u64 {
    target_bytes.div_ceil(TASK_FRAMED_BYTES).max(1)
}

/// Sum of the data bytes of a journal's segments.
fn log_data_bytes(journal: &Journal) -> u64 {
    journal.log().segments().iter().map(|s| s.data_bytes).sum()
}

/// Times `journal.replay::<Counts>(Until::End)` and checks the state it returns.
fn timed_replay(journal: &Journal, events: u64, expected: &CountsState) -> BenchResult<f64> {
    let start = Instant::now();
    let (state, at) = journal.replay::<Counts>(Until::End)?;
    let elapsed = start.elapsed().as_secs_f64();
    check(at == events, || format!("replay stands at {at} of {events}"))?;
    check(&state == expected, || {
        format!("replay counted {} events in {} streams", state.total, state.by_stream.len())
    })?;
    Ok(elapsed)
}

/// Writes a store of about `target_bytes` of log, then: opens it without a snapshot
/// (`plan.opens` times after an untimed open, [`timed_open`], which checks the journal); opens
/// it once and replays it whole with [`Counts`] (`plan.replays` times after an untimed replay);
/// compacts it with `keep_snapshots(1)` ([`timed_compact`], which checks what it removed), and
/// opens it from the snapshot as before. The store is removed afterwards.
///
/// # Errors
/// Journal or I/O errors, or a store that does not hold what was written.
pub fn log_point(
    plan: &LogPlan,
    target_bytes: u64,
    progress: &mut dyn FnMut(String),
) -> BenchResult<LogPoint> {
    let events = events_for_log_bytes(target_bytes);
    progress(format!("log {}: writing {events} task events", mb(target_bytes)));
    let store = write_store(events, None, 1)?;
    settle();
    let opens = |what: &str, progress: &mut dyn FnMut(String)| -> BenchResult<Vec<f64>> {
        timed_open(&store)?;
        let runs: Vec<OpenRun> =
            (0..plan.opens).map(|_| timed_open(&store)).collect::<Result<_, _>>()?;
        let secs: Vec<f64> = runs.iter().map(|r| r.elapsed.as_secs_f64()).collect();
        progress(format!(
            "log {}: open {what}: {}",
            mb(target_bytes),
            crate::table::list(secs.iter().map(|s| format!("{:.1} ms", s * 1e3)))
        ));
        Ok(secs)
    };
    let open_without = opens("without snapshot", progress)?;
    let journal = open_counts(store.path())?;
    let log_bytes = log_data_bytes(&journal);
    let segments = journal.log().segments().len();
    let expected = expected_counts(events);
    timed_replay(&journal, events, &expected)?;
    let replay: Vec<f64> = (0..plan.replays)
        .map(|_| timed_replay(&journal, events, &expected))
        .collect::<Result<_, _>>()?;
    progress(format!(
        "log {}: replay: {}",
        mb(target_bytes),
        crate::table::list(replay.iter().map(|s| format!("{:.1} ms", s * 1e3)))
    ));
    drop(journal);
    let compact = timed_compact(&store, 1)?;
    check(compact.after.snapshots > 0, || "the compaction left no snapshot".to_owned())?;
    let log_bytes_after_compact = log_data_bytes(&open_counts(store.path())?);
    settle();
    let open_with = opens("with snapshot", progress)?;
    Ok(LogPoint {
        target_bytes,
        events,
        log_bytes,
        segments,
        written_seconds: store.written.as_secs_f64(),
        open_without,
        replay,
        compact_seconds: compact.elapsed.as_secs_f64(),
        snapshot_bytes: compact.snapshot_bytes_written,
        log_bytes_after_compact,
        open_with,
    })
}

/// Runs [`log_point`] for every size of `plan` that fits on the scratch file system, with
/// 1 GiB to spare; the others, and the sizes the plan leaves out, are reported as skipped.
///
/// # Errors
/// The first failing store's error, naming its size.
pub fn measure_log(plan: &LogPlan, progress: &mut dyn FnMut(String)) -> BenchResult<LogSeries> {
    let mut series = LogSeries::default();
    let root = scratch_root();
    for &target_bytes in &plan.sizes {
        let need = target_bytes + STORE_OVERHEAD_BYTES + SPARE_BYTES;
        if let Some(avail) = available_bytes(&root)
            && avail < need
        {
            let why = format!(
                "needs about {} free under {}, {} available",
                mb(need),
                root.display(),
                mb(avail)
            );
            progress(format!("log {}: skipped: {why}", mb(target_bytes)));
            series.skipped.push(Skipped { target_bytes, why });
            continue;
        }
        let point = log_point(plan, target_bytes, progress)
            .map_err(|e| format!("log of {}: {e}", mb(target_bytes)))?;
        series.points.push(point);
    }
    series.skipped.extend(plan.left_out.iter().cloned());
    Ok(series)
}

/// `bytes` in decimal megabytes: `100 MB`, `1,000 MB`.
#[must_use]
pub fn mb(bytes: u64) -> String {
    format!("{} MB", crate::table::thousands(bytes as f64 / 1e6))
}

// ---- writers -------------------------------------------------------------------------------

/// Engines whose runs make fewer appends than [`WritersPlan::appends`], and how many at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendCap {
    /// The engine.
    pub engine: Engine,
    /// Most appends of one run, spread over the threads (still at least
    /// [`WritersPlan::per_writer_min`] per thread).
    pub appends: u64,
    /// Why its runs are smaller.
    pub why: String,
}

/// What the writers workload runs: the comparison harness's many-writer workload
/// ([`durable_run`]) on every engine at every number of threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritersPlan {
    /// Numbers of appending threads, smallest first.
    pub writers: Vec<usize>,
    /// Engines, in the order of the table and of the first round.
    pub engines: Vec<Engine>,
    /// Bytes of every payload.
    pub payload_bytes: usize,
    /// Durable appends per run, spread over the threads.
    pub appends: u64,
    /// Fewest appends of each thread.
    pub per_writer_min: u64,
    /// Engines whose runs make fewer appends.
    pub caps: Vec<AppendCap>,
    /// Runs of every engine at every number of threads; figures are medians.
    pub rounds: usize,
}

impl WritersPlan {
    /// The cap of `engine`'s runs, if it has one.
    #[must_use]
    pub fn cap(&self, engine: Engine) -> Option<&AppendCap> {
        self.caps.iter().find(|c| c.engine == engine)
    }

    /// Appends of each of `writers` threads of `engine`: its runs' appends
    /// ([`WritersPlan::appends`], or its cap if lower) shared out, at least
    /// [`WritersPlan::per_writer_min`] and 1.
    #[must_use]
    pub fn per_writer(&self, engine: Engine, writers: usize) -> u64 {
        let appends = self.cap(engine).map_or(self.appends, |c| c.appends.min(self.appends));
        (appends / writers.max(1) as u64).max(self.per_writer_min).max(1)
    }
}

/// The runs of one engine at one number of writers, and their figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritersRow {
    /// Appending threads.
    pub writers: usize,
    /// The engine.
    pub engine: Engine,
    /// Appends of each thread.
    pub per_writer: u64,
    /// Appends of each run (`writers * per_writer`).
    pub appends: u64,
    /// Whether the engine's runs were made smaller ([`WritersPlan::caps`]).
    pub capped: bool,
    /// Every run, in the order they ran.
    pub runs: Vec<DurableSummary>,
    /// Events per second, median of the runs.
    pub events_per_sec: Option<f64>,
    /// Latency of one append, over every append of every run.
    pub latency_us: Option<LatencyUs>,
    /// fdatasyncs the engine issued per append, median of the runs, where it counts them.
    pub fdatasyncs_per_append: Option<f64>,
    /// Cache flushes the disk completed per append (by any process), median of the runs, when
    /// the disk reports them.
    pub flushes_per_append: Option<f64>,
}

impl WritersRow {
    fn new(plan: &WritersPlan, writers: usize, engine: Engine) -> Self {
        let per_writer = plan.per_writer(engine, writers);
        Self {
            writers,
            engine,
            per_writer,
            appends: writers as u64 * per_writer,
            capped: plan.cap(engine).is_some_and(|c| c.appends < plan.appends),
            runs: Vec::new(),
            events_per_sec: None,
            latency_us: None,
            fdatasyncs_per_append: None,
            flushes_per_append: None,
        }
    }

    /// Sets the figures from the runs and every append's latency.
    fn summarize(&mut self, latencies: &mut [Duration]) {
        let per_append = |count: fn(&DurableSummary) -> Option<u64>| {
            median_of(self.runs.iter().filter_map(|r| Some(count(r)? as f64 / r.events as f64)))
        };
        self.events_per_sec = median_of(self.runs.iter().map(|r| r.events_per_sec));
        self.fdatasyncs_per_append = per_append(|r| r.fdatasyncs);
        self.flushes_per_append = per_append(|r| r.flushes);
        self.latency_us = LatencyUs::of(latencies);
    }
}

/// Durable appends of [`WritersPlan::payload_bytes`] payloads by every number of threads of
/// `plan` on every engine of `plan`, `plan.rounds` times: each run is the comparison harness's
/// many-writer workload ([`durable_run`]: a new store in a new scratch directory, the threads
/// released together, every append's latency recorded, the disk's flushes counted, the store
/// read back afterwards). The rounds go through the numbers of threads in alternating order,
/// and the engines in the comparison's order ([`round_order`]), reversed from one round to the
/// next and from one number of threads to the next. Returns one row per number of threads and
/// engine, in the plan's order.
///
/// # Errors
/// The first failing run's error, naming its engine and number of threads.
pub fn measure_writers(
    plan: &WritersPlan,
    progress: &mut dyn FnMut(String),
) -> BenchResult<Vec<WritersRow>> {
    let payloads = Payloads::new(plan.payload_bytes)?;
    let engines = plan.engines.len();
    for (i, engine) in plan.engines.iter().enumerate() {
        check(!plan.engines[..i].contains(engine), || format!("{engine} listed twice"))?;
    }
    let mut rows: Vec<WritersRow> = plan
        .writers
        .iter()
        .flat_map(|&writers| plan.engines.iter().map(move |&engine| (writers, engine)))
        .map(|(writers, engine)| WritersRow::new(plan, writers, engine))
        .collect();
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for round in 0..plan.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..plan.writers.len()).collect()
        } else {
            (0..plan.writers.len()).rev().collect()
        };
        for k in order {
            for engine in round_order(&plan.engines, round + k) {
                let e = plan.engines.iter().position(|&x| x == engine).unwrap_or(0);
                let i = k * engines + e;
                let row = &mut rows[i];
                let load = DurableLoad { writers: row.writers, per_writer: row.per_writer };
                let mut run = durable_run(engine, load, &payloads)
                    .map_err(|e| format!("{} writers, {engine}: {e}", row.writers))?;
                let summary = DurableSummary::of(&mut run, row.writers)?;
                progress(format!(
                    "writers {}, round {}: {engine} {:.0} events/s, p99.9 {:.0} µs, {} appends",
                    row.writers,
                    round + 1,
                    summary.events_per_sec,
                    summary.p999_us,
                    summary.events
                ));
                latencies[i].append(&mut run.latencies);
                row.runs.push(summary);
            }
        }
    }
    for (row, latencies) in rows.iter_mut().zip(&mut latencies) {
        row.summarize(latencies);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn small_measurements_give_points() -> BenchResult<()> {
        let mut quiet = |_: String| {};
        let payload = PayloadPlan {
            sizes: vec![16, 4096],
            sync_appends: 5,
            writers: 3,
            appends_per_writer: 2,
            bulk_bytes: 64 * 1024,
            bulk_events_min: 10,
            bulk_events_max: 1000,
            rounds: 1,
        };
        let points = measure_payload(&payload, &mut quiet)?;
        assert_eq!(points.len(), 2);
        for p in &points {
            let bulk = payload.bulk_events(p.data_bytes);
            for (runs, events) in [
                (&p.sync_one, 5),
                (&p.sync_many, 6),
                (&p.bulk, bulk),
                (&p.raw_sync, 5),
                (&p.raw_sequential, bulk),
            ] {
                assert_eq!(runs.len(), 1);
                assert_eq!(runs[0].events, events);
                assert_eq!(runs[0].payload_bytes, events * p.data_bytes as u64);
                assert!(runs[0].seconds > 0.0 && runs[0].events_per_sec().is_finite());
            }
            assert!(p.sync_one[0].fdatasyncs >= Some(5));
        }
        let log_plan = LogPlan {
            sizes: vec![1_000_000],
            left_out: vec![Skipped { target_bytes: 5_000_000, why: "too big for a test".into() }],
            opens: 1,
            replays: 1,
        };
        let log = measure_log(&log_plan, &mut quiet)?;
        assert_eq!(log.points.len(), 1);
        assert_eq!(log.skipped.len(), 1);
        let p = &log.points[0];
        assert_eq!(p.events, events_for_log_bytes(1_000_000));
        assert!(p.log_bytes >= 1_000_000 && p.log_bytes < 1_100_000, "{} log bytes", p.log_bytes);
        assert_eq!((p.open_without.len(), p.replay.len(), p.open_with.len()), (1, 1, 1));
        assert!(p.snapshot_bytes > 0);
        let writers = WritersPlan {
            writers: vec![1, 2],
            engines: Engine::ALL.to_vec(),
            payload_bytes: 100,
            appends: 6,
            per_writer_min: 2,
            caps: vec![AppendCap { engine: Engine::Sqlite, appends: 2, why: "slow".into() }],
            rounds: 2,
        };
        let w = measure_writers(&writers, &mut quiet)?;
        let expected: Vec<(usize, Engine, u64)> = [1, 2]
            .into_iter()
            .flat_map(|n| {
                Engine::ALL.map(|e| (n, e, if e == Engine::Sqlite { n as u64 * 2 } else { 6 }))
            })
            .collect();
        assert_eq!(
            w.iter().map(|r| (r.writers, r.engine, r.appends)).collect::<Vec<_>>(),
            expected
        );
        for r in &w {
            let what = format!("{} writers, {}", r.writers, r.engine);
            assert_eq!(r.capped, r.engine == Engine::Sqlite, "{what}");
            assert_eq!(r.runs.len(), 2, "{what}");
            for run in &r.runs {
                assert_eq!((run.engine, run.writers, run.events), (r.engine, r.writers, r.appends));
                assert!(run.events_per_sec > 0.0 && run.events_per_sec.is_finite(), "{what}");
                assert!(run.p50_us <= run.p99_us && run.p99_us <= run.p999_us, "{what}");
            }
            assert!(r.events_per_sec.is_some_and(|e| e > 0.0 && e.is_finite()), "{what}");
            let l = r.latency_us.ok_or_else(|| format!("{what}: no latency"))?;
            assert_eq!(l.samples as u64, 2 * r.appends, "{what}");
            assert!(0.0 < l.p50 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{what}");
            // Every append of a thread waits for its own fdatasync, which group commit may share
            // with the other threads: at least one per append of a thread, at most one per append.
            match (r.engine, r.fdatasyncs_per_append) {
                (Engine::Raw, syncs) => assert_eq!(syncs, Some(1.0), "{what}"),
                (Engine::Annal | Engine::AnnalWal, Some(syncs)) => {
                    let least = 1.0 / r.writers as f64;
                    assert!(
                        (least..=1.0).contains(&syncs),
                        "{what}: {syncs} fdatasyncs per append"
                    );
                }
                (Engine::Annal | Engine::AnnalWal, None) => {
                    panic!("{what}: fdatasyncs not counted")
                }
                (_, syncs) => assert_eq!(syncs, None, "{what}"),
            }
        }
        let twice = WritersPlan { engines: vec![Engine::Raw, Engine::Raw], ..writers.clone() };
        assert!(measure_writers(&twice, &mut quiet).is_err());
        let report = Report {
            payload_plan: Some(payload),
            payload: points,
            log_plan: Some(log_plan),
            log,
            writers_plan: Some(writers),
            writers: w,
        };
        let dir = crate::scratch_dir()?;
        let written = report.write_all(dir.path())?;
        assert_eq!(written.len(), 7);
        let read = Report::read(&dir.path().join("scaling.json"))?;
        assert_eq!((read.payload.len(), read.log.points.len(), read.writers.len()), (2, 1, 12));
        assert_eq!(read.log.points[0].events, events_for_log_bytes(1_000_000));
        assert_eq!(
            read.writers.iter().map(|r| (r.writers, r.engine, r.appends)).collect::<Vec<_>>(),
            expected
        );
        for file in ["scaling-writers.svg", "scaling-writers-p999.svg"] {
            let svg = fs::read_to_string(dir.path().join(file))?;
            for engine in Engine::ALL {
                let drawn = !WRITERS_CHART_LEAVES_OUT.contains(&engine);
                let name = writers_series_name(engine);
                assert_eq!(svg.contains(name), drawn, "{file}: {name}");
            }
        }
        Ok(())
    }
}
