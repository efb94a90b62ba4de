//! The comparison harness, run by the `compare` binary: the same workloads, in one run, on
//! annal and on its peers ([`Engine`]), every engine storing the same payload bytes
//! ([`Payloads`]):
//!
//! - `sync1`: durable appends by one writer, the latency of each recorded;
//! - `writers`: durable appends by many writer threads, released together, the latency of
//!   every append of every thread recorded;
//! - `bulk`: many appends with one sync at the end;
//! - `replay`: every event of a store (written beforehand by a bulk load, outside the timing)
//!   read back in order from the page cache, with the engine's checksums checked, and folded
//!   into a [`Fold`].
//!
//! Every write workload runs each engine in a new scratch directory, after [`settle`], and
//! reads the store back afterwards, outside the timing ([`check_contents`]): the count, and
//! every payload byte for byte (in order, for one writer), so that no engine is timed doing
//! nothing. The disk's count of completed cache flushes is taken around every timed run
//! ([`FlushCounter`]): a durable run that completed fewer than one flush per append of a
//! writer did not make its appends durable, and is an error. Each round runs every engine once,
//! in an order that is reversed from one round to the next, to spread the noise.
//!
//! [`durable_writers`] runs the `writers` workload for one engine and number of writers; the
//! `scaling` binary runs it at 1 to 64 writers through [`durable_run`].

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::engines::{self, Engine, Fold, Mode, Payloads, Spec, Store, check_contents};
use crate::{BenchResult, FlushCounter, Percentiles, check, percentiles, scratch_dir, settle};

pub mod report;

/// Payload bytes of every event without `--payload`.
pub const PAYLOAD_BYTES_DEFAULT: usize = 100;
/// Appends of the one-writer workload.
pub const ONE_WRITER_APPENDS: u64 = 2_000;
/// Writer threads of the many-writer workload.
pub const WRITERS: usize = 16;
/// Appends of each writer of the many-writer workload.
pub const PER_WRITER_APPENDS: u64 = 250;
/// Appends of the bulk workload.
pub const BULK_APPENDS: u64 = 1_000_000;
/// Events of the replay workload's stores.
pub const REPLAY_EVENTS: u64 = 1_000_000;
/// Rounds without `--rounds`.
pub const ROUNDS_DEFAULT: usize = 3;
/// Divisor of every count with `--quick`.
pub const QUICK_DIVISOR: u64 = 10;

/// A workload of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Durable appends by one writer.
    Sync1,
    /// Durable appends by many writers.
    Writers,
    /// Appends with one sync at the end.
    Bulk,
    /// Reading every event back in order.
    Replay,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Self; 4] = [Self::Sync1, Self::Writers, Self::Bulk, Self::Replay];

    /// The name on the command line and in JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync1 => "sync1",
            Self::Writers => "writers",
            Self::Bulk => "bulk",
            Self::Replay => "replay",
        }
    }

    /// The workload named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Whether each append's latency is recorded.
    #[must_use]
    pub fn is_durable(self) -> bool {
        matches!(self, Self::Sync1 | Self::Writers)
    }
}

/// What a comparison runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Engines, in the order of the first round.
    pub engines: Vec<Engine>,
    /// Workloads, in the order they run.
    pub workloads: Vec<Workload>,
    /// Rounds counted.
    pub rounds: usize,
    /// Rounds run before them and not counted.
    pub warmup: usize,
    /// Bytes of every payload.
    pub payload_bytes: usize,
    /// Appends of the one-writer workload.
    pub appends: u64,
    /// Writer threads of the many-writer workload.
    pub writers: usize,
    /// Appends of each of them.
    pub per_writer: u64,
    /// Appends of the bulk workload.
    pub bulk: u64,
    /// Events of the replay workload.
    pub replay: u64,
    /// Whether the counts were divided by [`QUICK_DIVISOR`].
    pub quick: bool,
}

impl Config {
    /// The default comparison, with every count divided by [`QUICK_DIVISOR`] if `quick`.
    #[must_use]
    pub fn new(quick: bool) -> Self {
        let scale = if quick { QUICK_DIVISOR } else { 1 };
        Self {
            engines: Engine::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            rounds: ROUNDS_DEFAULT,
            warmup: 1,
            payload_bytes: PAYLOAD_BYTES_DEFAULT,
            appends: ONE_WRITER_APPENDS / scale,
            writers: WRITERS,
            per_writer: PER_WRITER_APPENDS / scale,
            bulk: BULK_APPENDS / scale,
            replay: REPLAY_EVENTS / scale,
            quick,
        }
    }

    /// The durable load of `workload` (`None` for the others).
    #[must_use]
    pub fn durable_load(&self, workload: Workload) -> Option<DurableLoad> {
        match workload {
            Workload::Sync1 => Some(DurableLoad { writers: 1, per_writer: self.appends }),
            Workload::Writers => {
                Some(DurableLoad { writers: self.writers, per_writer: self.per_writer })
            }
            Workload::Bulk | Workload::Replay => None,
        }
    }

    /// Events one run of `workload` writes or reads.
    #[must_use]
    pub fn events(&self, workload: Workload) -> u64 {
        match workload {
            Workload::Sync1 | Workload::Writers => {
                self.durable_load(workload).map_or(0, DurableLoad::events)
            }
            Workload::Bulk => self.bulk,
            Workload::Replay => self.replay,
        }
    }

    /// Checks that every count is usable.
    ///
    /// # Errors
    /// A count of zero, no engine or workload, or a bad payload size.
    pub fn validate(&self) -> BenchResult<()> {
        check(!self.engines.is_empty(), || "no engine to run".to_owned())?;
        check(!self.workloads.is_empty(), || "no workload to run".to_owned())?;
        check(self.rounds > 0, || "no round to count".to_owned())?;
        check(self.writers > 0, || "no writer".to_owned())?;
        for w in &self.workloads {
            check(self.events(*w) > 0, || format!("{} has no event to write or read", w.name()))?;
        }
        Payloads::new(self.payload_bytes).map(|_| ())
    }
}

// ---- durable appends -----------------------------------------------------------------------

/// Durable appends by `writers` threads (1: the calling thread), each making `per_writer`
/// appends. Writer `w` appends events `w * per_writer ..` of the run's [`Payloads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DurableLoad {
    /// Appending threads.
    pub writers: usize,
    /// Appends of each.
    pub per_writer: u64,
}

impl DurableLoad {
    /// Appends in all.
    #[must_use]
    pub fn events(self) -> u64 {
        self.writers as u64 * self.per_writer
    }
}

/// One engine's timed run: what it wrote or read, in how long.
#[derive(Debug, Clone)]
pub struct Run {
    /// The engine.
    pub engine: Engine,
    /// Events written or read.
    pub events: u64,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Latency of every append (durable workloads; empty otherwise).
    pub latencies: Vec<Duration>,
    /// Cache flushes the disk completed during the timed part (by any process), when known.
    pub flushes: Option<u64>,
    /// Bytes the engine wrote to its files during the timed part, where it counts them.
    pub written_bytes: Option<u64>,
    /// fdatasyncs the engine issued during the timed part, where it counts them
    /// ([`Store::fdatasyncs`]).
    pub fdatasyncs: Option<u64>,
}

impl Run {
    /// Events per second of the timed part.
    #[must_use]
    pub fn events_per_sec(&self) -> f64 {
        crate::per_sec(self.events, self.elapsed)
    }
}

/// Checks that a run claiming durability completed at least `least` disk cache flushes, when
/// the disk's count is known.
fn require_flushes(engine: Engine, flushes: Option<u64>, least: u64) -> BenchResult<()> {
    match flushes {
        Some(f) if f < least => Err(format!(
            "{engine}: the disk completed {f} cache flushes during the run, fewer than the \
             {least} its durability requires: it did not fdatasync"
        )
        .into()),
        _ => Ok(()),
    }
}

/// Opens `engine`'s store in `dir`, runs `load` on it and reads it back.
///
/// # Errors
/// The engine's errors; the store not holding the events afterwards; fewer disk flushes than
/// the appends need.
pub fn durable_in(
    dir: &Path,
    engine: Engine,
    load: DurableLoad,
    payloads: &Payloads,
) -> BenchResult<Run> {
    check(load.writers > 0 && load.per_writer > 0, || format!("empty load {load:?}"))?;
    let events = load.events();
    let spec = Spec { mode: Mode::Durable, capacity: events, payload_bytes: payloads.bytes() };
    let store = engines::open(engine, dir, spec)?;
    let written_before = store.written_bytes();
    let (elapsed, latencies, flushes, fdatasyncs) = {
        let appenders =
            (0..load.writers).map(|w| store.appender(w)).collect::<BenchResult<Vec<_>>>()?;
        settle();
        let counter = FlushCounter::for_dir(dir);
        let syncs_before = store.fdatasyncs();
        let (run, flushes) = FlushCounter::during(counter.as_ref(), || {
            run_appenders(appenders, load.per_writer, payloads)
        });
        let fdatasyncs = difference(store.fdatasyncs(), syncs_before);
        let (elapsed, latencies) = run?;
        (elapsed, latencies, flushes, fdatasyncs)
    };
    let written_bytes = difference(store.written_bytes(), written_before);
    require_flushes(engine, flushes, load.per_writer)?;
    check(latencies.len() as u64 == events, || {
        format!("{engine}: {} appends timed of {events}", latencies.len())
    })?;
    check_contents(store.as_ref(), payloads, events, load.writers == 1)?;
    store.close()?;
    Ok(Run { engine, events, elapsed, latencies, flushes, written_bytes, fdatasyncs })
}

/// [`durable_in`] in a new scratch directory, removed afterwards.
///
/// # Errors
/// As [`durable_in`].
pub fn durable_run(engine: Engine, load: DurableLoad, payloads: &Payloads) -> BenchResult<Run> {
    let dir = scratch_dir()?;
    durable_in(dir.path(), engine, load, payloads)
}

/// What a counter of the store grew by, where the store keeps it.
fn difference(after: Option<u64>, before: Option<u64>) -> Option<u64> {
    after.zip(before).map(|(after, before)| after.saturating_sub(before))
}

/// Runs one thread per appender (one: the calling thread), released together; appender `w`
/// appends events `w * per_writer ..` of `payloads`. Returns the wall time from the release to
/// the last thread's end, and every append's latency.
fn run_appenders(
    appenders: Vec<Box<dyn engines::Appender + '_>>,
    per_writer: u64,
    payloads: &Payloads,
) -> BenchResult<(Duration, Vec<Duration>)> {
    let timed = |w: usize, mut appender: Box<dyn engines::Appender + '_>| {
        let mut latencies = Vec::with_capacity(usize::try_from(per_writer)?);
        let mut buf = Vec::with_capacity(payloads.bytes());
        let first = w as u64 * per_writer;
        for n in first..first + per_writer {
            payloads.fill(n, &mut buf);
            let start = Instant::now();
            appender.append(&buf)?;
            latencies.push(start.elapsed());
        }
        Ok::<_, crate::BenchError>(latencies)
    };
    if appenders.len() == 1 {
        let appender = appenders.into_iter().next().ok_or("no appender")?;
        let start = Instant::now();
        let latencies = timed(0, appender)?;
        return Ok((start.elapsed(), latencies));
    }
    let barrier = std::sync::Barrier::new(appenders.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = appenders
            .into_iter()
            .enumerate()
            .map(|(w, appender)| {
                let (barrier, timed) = (&barrier, &timed);
                scope.spawn(move || {
                    barrier.wait();
                    timed(w, appender)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> =
            handles.into_iter().map(std::thread::ScopedJoinHandle::join).collect();
        let elapsed = start.elapsed();
        let mut latencies = Vec::new();
        for r in results {
            latencies.extend(r.map_err(|_| "an appending thread panicked")??);
        }
        Ok((elapsed, latencies))
    })
}

/// What [`durable_writers`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurableSummary {
    /// The engine.
    pub engine: Engine,
    /// Appending threads.
    pub writers: usize,
    /// Appends in all.
    pub events: u64,
    /// Wall time of the appends, seconds.
    pub elapsed_secs: f64,
    /// Appends per second.
    pub events_per_sec: f64,
    /// Median latency of one append, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// 99.9th percentile, microseconds.
    pub p999_us: f64,
    /// Largest latency, microseconds.
    pub max_us: f64,
    /// Cache flushes the disk completed during the appends (by any process), when known.
    pub flushes: Option<u64>,
    /// fdatasyncs the engine issued during the appends, where it counts them (annal,
    /// annal-wal, raw).
    pub fdatasyncs: Option<u64>,
}

impl DurableSummary {
    /// The summary of a durable run by `writers` threads.
    ///
    /// # Errors
    /// A run without latencies.
    pub fn of(run: &mut Run, writers: usize) -> BenchResult<Self> {
        check(!run.latencies.is_empty(), || format!("{}: no latency recorded", run.engine))?;
        let p: Percentiles = percentiles(&mut run.latencies);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Ok(Self {
            engine: run.engine,
            writers,
            events: run.events,
            elapsed_secs: run.elapsed.as_secs_f64(),
            events_per_sec: run.events_per_sec(),
            p50_us: us(p.p50),
            p99_us: us(p.p99),
            p999_us: us(p.p999),
            max_us: us(p.max),
            flushes: run.flushes,
            fdatasyncs: run.fdatasyncs,
        })
    }
}

/// Durable appends of `engine` by `writers` threads, `per_writer` appends each, of payloads of
/// `payload_bytes`, in a new scratch directory, checked afterwards: the many-writer workload
/// for one engine and number of writers.
///
/// # Errors
/// As [`durable_in`]; a bad payload size.
pub fn durable_writers(
    engine: Engine,
    writers: usize,
    per_writer: u64,
    payload_bytes: usize,
) -> BenchResult<DurableSummary> {
    let payloads = Payloads::new(payload_bytes)?;
    let mut run = durable_run(engine, DurableLoad { writers, per_writer }, &payloads)?;
    DurableSummary::of(&mut run, writers)
}

// ---- bulk ----------------------------------------------------------------------------------

/// Opens `engine`'s store in `dir`, bulk loads events `0..count` into it with one sync at the
/// end, and reads it back.
///
/// # Errors
/// The engine's errors; the store not holding the events afterwards; no disk flush.
pub fn bulk_in(dir: &Path, engine: Engine, count: u64, payloads: &Payloads) -> BenchResult<Run> {
    let (store, run) = write_bulk(dir, engine, count, payloads)?;
    store.close()?;
    Ok(run)
}

/// [`bulk_in`] in a new scratch directory, removed afterwards.
///
/// # Errors
/// As [`bulk_in`].
pub fn bulk_run(engine: Engine, count: u64, payloads: &Payloads) -> BenchResult<Run> {
    let dir = scratch_dir()?;
    bulk_in(dir.path(), engine, count, payloads)
}

/// Bulk loads a new store and checks it; returns it, still open, with the run.
fn write_bulk(
    dir: &Path,
    engine: Engine,
    count: u64,
    payloads: &Payloads,
) -> BenchResult<(Box<dyn Store>, Run)> {
    check(count > 0, || "an empty bulk load".to_owned())?;
    let spec = Spec { mode: Mode::Bulk, capacity: count, payload_bytes: payloads.bytes() };
    let store = engines::open(engine, dir, spec)?;
    let written_before = store.written_bytes();
    settle();
    let counter = FlushCounter::for_dir(dir);
    let syncs_before = store.fdatasyncs();
    let (elapsed, flushes) = FlushCounter::during(counter.as_ref(), || {
        let start = Instant::now();
        store.bulk(payloads, count).map(|()| start.elapsed())
    });
    let fdatasyncs = difference(store.fdatasyncs(), syncs_before);
    let elapsed = elapsed?;
    let written_bytes = difference(store.written_bytes(), written_before);
    require_flushes(engine, flushes, 1)?;
    check_contents(store.as_ref(), payloads, count, true)?;
    let run = Run {
        engine,
        events: count,
        elapsed,
        latencies: Vec::new(),
        flushes,
        written_bytes,
        fdatasyncs,
    };
    Ok((store, run))
}

// ---- replay --------------------------------------------------------------------------------

/// The stores the replay workload reads, written once by a bulk load and kept open.
#[derive(Debug)]
pub struct ReplayStores {
    /// Events in every store.
    pub events: u64,
    /// The fold every replay must reach.
    pub expected: Fold,
    stores: Vec<ReplayStore>,
}

#[derive(Debug)]
struct ReplayStore {
    // Declared before `_dir`, so that it is dropped before the directory is removed.
    store: Box<dyn Store>,
    _dir: TempDir,
}

impl ReplayStores {
    /// Writes a store of `count` events for every engine of `engines` (a bulk load, checked,
    /// which also reads it into the page cache).
    ///
    /// # Errors
    /// The engines' errors; a store not holding the events.
    pub fn prepare(engines: &[Engine], count: u64, payloads: &Payloads) -> BenchResult<Self> {
        let mut stores = Vec::with_capacity(engines.len());
        for &engine in engines {
            let dir = scratch_dir()?;
            let (store, _) = write_bulk(dir.path(), engine, count, payloads)?;
            stores.push(ReplayStore { store, _dir: dir });
        }
        Ok(Self { events: count, expected: payloads.expected_fold(count), stores })
    }

    /// Replays `engine`'s store once, timed, and checks the fold.
    ///
    /// # Errors
    /// The engine's errors; no store for `engine`; a wrong fold.
    pub fn replay(&self, engine: Engine) -> BenchResult<Run> {
        let store = self
            .stores
            .iter()
            .find(|s| s.store.engine() == engine)
            .ok_or_else(|| format!("no replay store for {engine}"))?;
        let start = Instant::now();
        let fold = store.store.replay()?;
        let elapsed = start.elapsed();
        check(fold == self.expected, || {
            format!("{engine}: replay folded {fold:?}, not {:?}", self.expected)
        })?;
        Ok(Run {
            engine,
            events: self.events,
            elapsed,
            latencies: Vec::new(),
            flushes: None,
            written_bytes: None,
            fdatasyncs: None,
        })
    }

    /// Closes every store and removes its directory.
    ///
    /// # Errors
    /// The first engine's error.
    pub fn close(self) -> BenchResult<()> {
        for s in self.stores {
            s.store.close()?;
        }
        Ok(())
    }
}

// ---- rounds --------------------------------------------------------------------------------

/// What the rounds of one workload measured of one engine.
#[derive(Debug, Clone)]
pub struct Series {
    /// The engine.
    pub engine: Engine,
    /// Every counted round's run.
    pub runs: Vec<Run>,
}

/// What the rounds of one workload measured.
#[derive(Debug, Clone)]
pub struct WorkloadResult {
    /// The workload.
    pub workload: Workload,
    /// Events of one run.
    pub events: u64,
    /// One series per engine, in the configured order.
    pub series: Vec<Series>,
}

/// The engines of round `round`: the configured order, reversed every other round.
#[must_use]
pub fn round_order(engines: &[Engine], round: usize) -> Vec<Engine> {
    let mut order = engines.to_vec();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// Runs the warm-up rounds, then the counted rounds of `workload` for every engine of
/// `config`, calling `progress` with a line after every run.
///
/// # Errors
/// The first error of any run.
pub fn run_workload(
    config: &Config,
    workload: Workload,
    payloads: &Payloads,
    progress: &mut dyn FnMut(String),
) -> BenchResult<WorkloadResult> {
    let replay = if workload == Workload::Replay {
        progress(format!("replay: writing a store of {} events per engine", config.replay));
        Some(ReplayStores::prepare(&config.engines, config.replay, payloads)?)
    } else {
        None
    };
    let mut series: Vec<Series> =
        config.engines.iter().map(|&engine| Series { engine, runs: Vec::new() }).collect();
    for round in 0..config.warmup + config.rounds {
        let counted = round >= config.warmup;
        for engine in round_order(&config.engines, round) {
            let run = match (workload, &replay) {
                (Workload::Sync1 | Workload::Writers, _) => {
                    let load = config.durable_load(workload).ok_or("not a durable workload")?;
                    durable_run(engine, load, payloads)?
                }
                (Workload::Bulk, _) => bulk_run(engine, config.bulk, payloads)?,
                (Workload::Replay, Some(stores)) => stores.replay(engine)?,
                (Workload::Replay, None) => return Err("replay stores not prepared".into()),
            };
            let label = if counted {
                format!("round {}", round - config.warmup + 1)
            } else {
                "warm-up".to_owned()
            };
            progress(format!(
                "{} {label}: {engine} {:.0} events/s",
                workload.name(),
                run.events_per_sec()
            ));
            if counted && let Some(s) = series.iter_mut().find(|s| s.engine == engine) {
                s.runs.push(run);
            }
        }
    }
    if let Some(stores) = replay {
        stores.close()?;
    }
    Ok(WorkloadResult { workload, events: config.events(workload), series })
}
