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
//! - writers: durable appends of task events by 1 to 64 threads, each to its own stream.
//!
//! Every run happens in a new scratch directory and checks what it wrote outside the timed part
//! (sequence numbers, payload sizes and the [`Counts`] state read back, the baselines' files),
//! so that nothing is timed doing nothing. The results serialize to JSON, and [`Report::charts`]
//! draws them.
//!
//! [`write_store`]: crate::compaction::write_store

use std::time::Instant;

use annal::wal::format::{FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};
use annal::{Counts, CountsState, Journal, Until};
use serde::{Deserialize, Serialize};

use crate::compaction::{
    OpenRun, available_bytes, expected_counts, open_counts, timed_compact, timed_open, write_store,
};
use crate::journal::{DATA_BYTES, EVENT_PAYLOAD_BYTES, task};
use crate::{BenchResult, check, in_scratch, scratch_root, settle};

mod report;
mod runs;

pub use report::{Report, WRITERS_ANNAL_SERIES, writers_chart};
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

/// What the writers workload runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritersPlan {
    /// Numbers of appending threads, smallest first.
    pub writers: Vec<usize>,
    /// Durable appends per run, spread over the threads.
    pub appends: u64,
    /// Fewest appends of each thread.
    pub per_writer_min: u64,
    /// Runs at every number of threads; figures are medians.
    pub rounds: usize,
}

impl WritersPlan {
    /// Appends of each of `writers` threads.
    #[must_use]
    pub fn per_writer(&self, writers: usize) -> u64 {
        (self.appends / writers.max(1) as u64).max(self.per_writer_min).max(1)
    }
}

/// The runs at one number of writers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritersPoint {
    /// Appending threads.
    pub writers: usize,
    /// Durable appends of task events.
    pub runs: Vec<Run>,
}

/// Durable appends of task events (the journal benchmarks' [`task`], [`DATA_BYTES`] of data,
/// one per append, each thread to its own stream) by every number of threads of `plan`,
/// `plan.rounds` times, each run on a new journal with [`Counts`] registered (see
/// [`durable_appends`]). The rounds go through the numbers of threads in alternating order.
///
/// # Errors
/// The first failing run's error, naming its number of threads.
pub fn measure_writers(
    plan: &WritersPlan,
    progress: &mut dyn FnMut(String),
) -> BenchResult<Vec<WritersPoint>> {
    let mut points: Vec<WritersPoint> =
        plan.writers.iter().map(|&writers| WritersPoint { writers, runs: Vec::new() }).collect();
    for round in 0..plan.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..points.len()).collect()
        } else {
            (0..points.len()).rev().collect()
        };
        for k in order {
            let point = &mut points[k];
            let per_writer = plan.per_writer(point.writers);
            let run = in_scratch(|d| {
                durable_appends(d, point.writers, per_writer, DATA_BYTES, |t, i| {
                    task(t as u64 * per_writer + i)
                })
            })
            .map_err(|e| format!("{} writers: {e}", point.writers))?;
            progress(format!(
                "writers {}, round {}: {:.0} events/s, {} fdatasyncs for {} appends",
                point.writers,
                round + 1,
                run.events_per_sec(),
                run.fdatasyncs.unwrap_or(0),
                run.events
            ));
            point.runs.push(run);
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::chart::Series;

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
        let writers = WritersPlan { writers: vec![1, 2], appends: 6, per_writer_min: 2, rounds: 1 };
        let w = measure_writers(&writers, &mut quiet)?;
        assert_eq!(
            w.iter().map(|p| (p.writers, p.runs[0].events)).collect::<Vec<_>>(),
            [(1, 6), (2, 6)]
        );
        let report = Report {
            payload_plan: Some(payload),
            payload: points,
            log_plan: Some(log_plan),
            log,
            writers_plan: Some(writers),
            writers: w,
        };
        let dir = crate::scratch_dir()?;
        let extra = Series::new("another engine", vec![(1.0, 10.0), (2.0, 20.0)]);
        let written = report.write_all(dir.path(), vec![extra])?;
        assert_eq!(written.len(), 6);
        let read = Report::read(&dir.path().join("scaling.json"))?;
        assert_eq!((read.payload.len(), read.log.points.len(), read.writers.len()), (2, 1, 2));
        assert_eq!(read.log.points[0].events, events_for_log_bytes(1_000_000));
        let writers_svg = fs::read_to_string(dir.path().join("scaling-writers.svg"))?;
        assert!(writers_svg.contains("another engine"));
        assert!(writers_svg.contains("annal, Journal::append (Sync)"));
        Ok(())
    }
}
