//! Measures how annal's costs grow, prints markdown tables, and writes the points as JSON
//! (`scaling.json`) and SVG charts into `--out DIR` (default: the workspace's `docs/`):
//!
//! | chart | x | series |
//! | --- | --- | --- |
//! | `scaling-payload.svg`, `scaling-payload-mbps.svg` | event data per append, 16 B to 64 KiB | events/s and MB/s of durable (`Sync`) appends by 1 and by 16 threads, of bulk appends (`Manual`, one sync), of the raw baselines: one `pwrite` + `fdatasync` per record of the same size, and the bulk runs' bytes written sequentially with one `fdatasync` |
//! | `scaling-open.svg` | log size, 10 MB to 2 GB | `Journal::open` with `Counts` registered, without a snapshot and from a snapshot (`compact()` at the end), page cache warm |
//! | `scaling-replay.svg` | log size | `journal.replay::<Counts>(Until::End)`, no snapshot |
//! | `scaling-writers.svg` | writers, 1 to 64 | durable appends per second of 100 B payloads, the comparison harness's many-writer workload (`annal_benches::compare`), one curve per engine: annal's `Journal`, SQLite, fjall, okaywal and the raw `pwrite` + `fdatasync` baseline (annal-wal is measured, in the table and the JSON, not drawn) |
//! | `scaling-writers-p999.svg` | writers, 1 to 64 | the 99.9th percentile latency of one durable append, over every append of every round, same curves |
//!
//! Every run happens in a new scratch directory and checks what it wrote outside the timed part.
//! Figures are medians of `--rounds` runs (default 3; 1 with `--quick`), of 5 opens (3 with
//! `--quick`) and 3 replays per store; the writers workload's latency percentiles are over every
//! append of every round. SQLite's writers runs make fewer appends than the other engines'
//! ([`SQLITE_APPENDS`]), which the table says. `--quick` makes every run smaller and stops the
//! log sizes at 100 MB; `--max-log-bytes N` leaves out the log sizes above N bytes; a log size
//! for which the scratch file system lacks room is skipped, and said so. `--only` runs one
//! workload. Exits 0 when everything ran, 2 on an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use annal_benches::compare::PAYLOAD_BYTES_DEFAULT;
use annal_benches::engines::{Engine, STREAMS};
use annal_benches::journal::DATA_BYTES;
use annal_benches::scaling::{
    AppendCap, LogPlan, LogSeries, PayloadPlan, PayloadPoint, Report, Run, Skipped, WritersPlan,
    WritersRow, mb, median_events_per_sec, median_mb_per_sec,
};
use annal_benches::table::thousands;
use annal_benches::{median, scratch_root};

const USAGE: &str = "usage: scaling [--quick] [--out DIR] [--rounds N] [--max-log-bytes N]
               [--only payload|log|writers]

Measures annal's appends against payload size, open and replay against log size, and durable
appends against the number of writers on annal and its peers (SQLite, fjall, okaywal, raw
pwrite + fdatasync); prints markdown tables and writes scaling.json and SVG charts into DIR
(default: the workspace's docs/). --quick makes every run smaller and stops the log sizes at
100 MB. Scratch files go under $ANNAL_BENCH_DIR (default: the system temp directory).";

/// Rounds without `--rounds`.
const DEFAULT_ROUNDS: usize = 3;
/// Log sizes measured, in bytes.
const LOG_SIZES: [u64; 4] = [10_000_000, 100_000_000, 1_000_000_000, 2_000_000_000];
/// Largest log size of `--quick`.
const QUICK_LOG_BYTES_MAX: u64 = 100_000_000;
/// Payload sizes measured, in bytes of event data.
const PAYLOAD_SIZES: [usize; 7] = [16, 64, 256, 1024, 4096, 16_384, 65_536];
/// Threads of the many-writer payload runs.
const PAYLOAD_WRITERS: usize = 16;
/// Numbers of writers of the writers workload.
const WRITERS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Durable appends of a writers run (`--quick`: [`QUICK_WRITERS_APPENDS`]).
const WRITERS_APPENDS: u64 = 2_000;
/// Durable appends of a writers run with `--quick`.
const QUICK_WRITERS_APPENDS: u64 = 400;
/// Fewest appends of each writer (`--quick`: [`QUICK_PER_WRITER_MIN`]).
const PER_WRITER_MIN: u64 = 10;
/// Fewest appends of each writer with `--quick`.
const QUICK_PER_WRITER_MIN: u64 = 5;
/// Most appends of a SQLite writers run (`--quick`: [`QUICK_SQLITE_APPENDS`]), still at least
/// the fewest of each writer: with 64 writers SQLite makes about a hundred appends per second.
const SQLITE_APPENDS: u64 = 640;
/// Most appends of a SQLite writers run with `--quick`.
const QUICK_SQLITE_APPENDS: u64 = 160;
/// Why SQLite's writers runs are smaller.
const SQLITE_CAP_WHY: &str = "SQLite has one write lock, and a writer that finds it taken \
    sleeps in SQLite's busy handler (1 ms, then longer, up to 100 ms at a time) instead of \
    queueing, so with many writers its runs are slow";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Payload,
    Log,
    Writers,
}

impl Workload {
    const ALL: [Self; 3] = [Self::Payload, Self::Log, Self::Writers];

    fn name(self) -> &'static str {
        match self {
            Self::Payload => "payload",
            Self::Log => "log",
            Self::Writers => "writers",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    quick: bool,
    out: PathBuf,
    workloads: Vec<Workload>,
    payload: PayloadPlan,
    log: LogPlan,
    writers: WritersPlan,
}

impl Config {
    fn new(quick: bool, rounds: Option<usize>, max_log_bytes: u64) -> Self {
        let rounds = rounds.unwrap_or(if quick { 1 } else { DEFAULT_ROUNDS });
        let cap = if quick { max_log_bytes.min(QUICK_LOG_BYTES_MAX) } else { max_log_bytes };
        let (sizes, over): (Vec<u64>, Vec<u64>) = LOG_SIZES.into_iter().partition(|&b| b <= cap);
        let why = if cap < max_log_bytes {
            format!("--quick stops at {}", mb(cap))
        } else {
            format!("above --max-log-bytes {max_log_bytes}")
        };
        let left_out = over
            .into_iter()
            .map(|target_bytes| Skipped { target_bytes, why: why.clone() })
            .collect();
        Self {
            quick,
            out: default_out(),
            workloads: Workload::ALL.to_vec(),
            payload: PayloadPlan {
                sizes: PAYLOAD_SIZES.to_vec(),
                sync_appends: if quick { 100 } else { 1_000 },
                writers: PAYLOAD_WRITERS,
                appends_per_writer: if quick { 10 } else { 200 },
                bulk_bytes: if quick { 4 << 20 } else { 64 << 20 },
                bulk_events_min: if quick { 100 } else { 1_000 },
                bulk_events_max: if quick { 100_000 } else { 1_000_000 },
                rounds,
            },
            log: LogPlan { sizes, left_out, opens: if quick { 3 } else { 5 }, replays: 3 },
            writers: WritersPlan {
                writers: WRITERS.to_vec(),
                engines: Engine::ALL.to_vec(),
                payload_bytes: PAYLOAD_BYTES_DEFAULT,
                appends: if quick { QUICK_WRITERS_APPENDS } else { WRITERS_APPENDS },
                per_writer_min: if quick { QUICK_PER_WRITER_MIN } else { PER_WRITER_MIN },
                caps: vec![AppendCap {
                    engine: Engine::Sqlite,
                    appends: if quick { QUICK_SQLITE_APPENDS } else { SQLITE_APPENDS },
                    why: SQLITE_CAP_WHY.to_owned(),
                }],
                rounds,
            },
        }
    }
}

/// The workspace's `docs/` directory.
fn default_out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| "docs".into(), |p| p.join("docs"))
}

// ---- formatting ----------------------------------------------------------------------------

fn secs(d: f64) -> String {
    if d < 1e-3 {
        format!("{:.0} µs", d * 1e6)
    } else if d < 1.0 {
        format!("{:.1} ms", d * 1e3)
    } else {
        format!("{d:.2} s")
    }
}

fn median_secs(values: &[f64]) -> String {
    if values.is_empty() { "-".into() } else { secs(median(values)) }
}

/// Median events/s and MB/s of `runs`.
fn rate(runs: &[Run]) -> String {
    match (median_events_per_sec(runs), median_mb_per_sec(runs)) {
        (Some(e), Some(m)) => format!("{} ({m:.2} MB/s)", thousands(e)),
        _ => "-".into(),
    }
}

/// Ratio of the median events/s of `a` to that of `b`.
fn ratio(a: &[Run], b: &[Run]) -> String {
    match (median_events_per_sec(a), median_events_per_sec(b)) {
        (Some(a), Some(b)) => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn runs(n: usize) -> String {
    if n == 1 { "1 run".into() } else { format!("{n} runs") }
}

fn bytes(n: usize) -> String {
    if n >= 1024 { format!("{} KiB", n / 1024) } else { format!("{n} B") }
}

fn print_payload(config: &Config, points: &[PayloadPoint]) {
    let plan = &config.payload;
    println!(
        "Events per second (MB of event data per second), medians of {}. Durable: {} \
         appends by 1 thread, {} x {} by {} threads; raw: as many `pwrite` + `fdatasync` of the \
         record size. Bulk: {} B of data (between {} and {} events), one sync; raw: the same \
         bytes in 1 MiB writes, one `fdatasync`.",
        runs(plan.rounds),
        thousands(plan.sync_appends as f64),
        plan.writers,
        thousands(plan.appends_per_writer as f64),
        plan.writers,
        thousands(plan.bulk_bytes as f64),
        thousands(plan.bulk_events_min as f64),
        thousands(plan.bulk_events_max as f64),
    );
    println!();
    println!(
        "| event data | annal durable, 1 writer | raw pwrite + fdatasync | annal / raw | annal \
         durable, {} writers | fdatasyncs per append ({} writers) | annal bulk | raw sequential \
         write | bulk / raw |",
        plan.writers, plan.writers
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for p in points {
        let syncs_per_append: Vec<f64> = p
            .sync_many
            .iter()
            .filter_map(|r| r.fdatasyncs.map(|s| s as f64 / r.events as f64))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            bytes(p.data_bytes),
            rate(&p.sync_one),
            rate(&p.raw_sync),
            ratio(&p.sync_one, &p.raw_sync),
            rate(&p.sync_many),
            if syncs_per_append.is_empty() {
                "-".into()
            } else {
                format!("{:.3}", median(&syncs_per_append))
            },
            rate(&p.bulk),
            rate(&p.raw_sequential),
            ratio(&p.bulk, &p.raw_sequential),
        );
    }
    println!();
}

fn print_log(series: &LogSeries) {
    println!(
        "Stores of task events ({DATA_BYTES} B of data each) over 1,000 streams, written with \
         `Manual` durability and one sync; `Counts` registered; page cache warm. Medians of \
         the opens and replays listed."
    );
    println!();
    println!(
        "| log | events | segments | written in | open without snapshot | full replay \
         (`replay::<Counts>(Until::End)`) | replay events/s | `compact()` | snapshot bytes | \
         log left after compact | open from the snapshot |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for p in &series.points {
        let replay = if p.replay.is_empty() { f64::NAN } else { median(&p.replay) };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            mb(p.log_bytes),
            thousands(p.events as f64),
            p.segments,
            secs(p.written_seconds),
            median_secs(&p.open_without),
            median_secs(&p.replay),
            thousands(p.events as f64 / replay),
            secs(p.compact_seconds),
            thousands(p.snapshot_bytes as f64),
            mb(p.log_bytes_after_compact),
            median_secs(&p.open_with),
        );
    }
    println!();
    for s in &series.skipped {
        println!("- log of {}: not measured, {}", mb(s.target_bytes), s.why);
    }
    if !series.skipped.is_empty() {
        println!();
    }
}

fn print_writers(config: &Config, rows: &[WritersRow]) {
    let plan = &config.writers;
    println!(
        "Durable appends of {} B payloads, one per append, by each number of writer threads \
         released together: the comparison harness's many-writer workload on every engine \
         (settings as in `compare`; annal's writers share {STREAMS} streams). {} appends per \
         run (at least {} per writer); events/s and per-append counts are medians of {}, \
         latencies are over every append of every run. fdatasyncs: the engine's own count, where \
         it keeps one; disk flushes: completed by the disk during the run, by any process.",
        plan.payload_bytes,
        thousands(plan.appends as f64),
        plan.per_writer_min,
        runs(plan.rounds)
    );
    for cap in &plan.caps {
        println!();
        println!(
            "{}: at most {} appends per run (at least {} per writer; marked *): {}.",
            cap.engine,
            thousands(cap.appends.min(plan.appends) as f64),
            plan.per_writer_min,
            cap.why
        );
    }
    println!();
    println!(
        "| writers | engine | appends per run | events/s | p50 | p99 | p99.9 | fdatasyncs per \
         append | disk flushes per append |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let us = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0} µs"));
    let per = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
    for r in rows {
        println!(
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} |",
            r.writers,
            r.engine,
            thousands(r.appends as f64),
            if r.capped { " *" } else { "" },
            r.events_per_sec.map_or_else(|| "-".into(), thousands),
            us(r.latency_us.map(|l| l.p50)),
            us(r.latency_us.map(|l| l.p99)),
            us(r.latency_us.map(|l| l.p999)),
            per(r.fdatasyncs_per_append),
            per(r.flushes_per_append),
        );
    }
    println!();
}

// ---- main ----------------------------------------------------------------------------------

fn parse_args() -> Result<Option<Config>, String> {
    let mut quick = false;
    let mut rounds = None;
    let mut max_log_bytes = u64::MAX;
    let mut out = None;
    let mut workloads = Workload::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    let positive = |v: Option<String>, what: &str| {
        v.and_then(|n| n.parse::<u64>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{what} takes a positive number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--rounds" => {
                let n = positive(args.next(), "--rounds")?;
                rounds = Some(usize::try_from(n).map_err(|e| e.to_string())?);
            }
            "--max-log-bytes" => max_log_bytes = positive(args.next(), "--max-log-bytes")?,
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out takes a directory")?)),
            "--only" => {
                let name = args.next().unwrap_or_default();
                let w = Workload::ALL
                    .into_iter()
                    .find(|w| w.name() == name)
                    .ok_or_else(|| format!("--only takes payload, log or writers, not {name:?}"))?;
                workloads = vec![w];
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut config = Config::new(quick, rounds, max_log_bytes);
    config.workloads = workloads;
    if let Some(out) = out {
        config.out = out;
    }
    Ok(Some(config))
}

fn run(config: &Config) -> annal_benches::BenchResult<Report> {
    let mut progress = |line: String| eprintln!("{line}");
    let mut report = Report::default();
    for &w in &config.workloads {
        match w {
            Workload::Payload => {
                report.payload =
                    annal_benches::scaling::measure_payload(&config.payload, &mut progress)?;
                report.payload_plan = Some(config.payload.clone());
                print_payload(config, &report.payload);
            }
            Workload::Log => {
                report.log = annal_benches::scaling::measure_log(&config.log, &mut progress)?;
                report.log_plan = Some(config.log.clone());
                print_log(&report.log);
            }
            Workload::Writers => {
                report.writers =
                    annal_benches::scaling::measure_writers(&config.writers, &mut progress)?;
                report.writers_plan = Some(config.writers.clone());
                print_writers(config, &report.writers);
            }
        }
    }
    Ok(report)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("scaling: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "annal scaling{}, scratch under {}",
        if config.quick { ", --quick" } else { "" },
        scratch_root().display()
    );
    println!();
    let started = Instant::now();
    let report = match run(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scaling: {e}");
            return ExitCode::from(2);
        }
    };
    match report.write_all(&config.out) {
        Ok(paths) => {
            for p in paths {
                println!("wrote {}", p.display());
            }
        }
        Err(e) => {
            eprintln!("scaling: {e}");
            return ExitCode::from(2);
        }
    }
    println!("\nran in {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
