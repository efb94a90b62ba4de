//! What a comparison measured, as markdown tables and as JSON ([`Report`]), and the
//! performance targets it is judged against ([`TargetCheck`]).
//!
//! Events per second are medians over the counted rounds; a ratio between two engines is the
//! median of the per-round ratios (both ran in every round, close in time); latency
//! percentiles are over every append of every counted round.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Config, Run, Workload, WorkloadResult};
use crate::engines::Engine;
use crate::table::{micros, thousands};
use crate::{BenchResult, median, percentiles};

const MIB: f64 = 1024.0 * 1024.0;

/// Latency percentiles of one engine in one durable workload, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyUs {
    /// Appends timed.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyUs {
    /// The percentiles of `latencies` (sorted in place); none when there is none.
    #[must_use]
    pub fn of(latencies: &mut [Duration]) -> Option<Self> {
        if latencies.is_empty() {
            return None;
        }
        let p = percentiles(latencies);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Some(Self {
            samples: p.count,
            p50: us(p.p50),
            p99: us(p.p99),
            p999: us(p.p999),
            max: us(p.max),
        })
    }
}

/// One engine's figures in one workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineRow {
    /// The engine.
    pub engine: Engine,
    /// Events per second, median of the rounds.
    pub events_per_sec: f64,
    /// Events per second of each round.
    pub events_per_sec_rounds: Vec<f64>,
    /// Payload bytes per second (events per second times the payload size).
    pub payload_bytes_per_sec: f64,
    /// Bytes the engine wrote to its files per second, median of the rounds, where it counts
    /// them (annal, annal-wal, raw) in write workloads.
    pub written_bytes_per_sec: Option<f64>,
    /// Latency of one append (durable workloads).
    pub latency_us: Option<LatencyUs>,
    /// Disk cache flushes completed during each round's run (by any process), when known.
    pub flushes_rounds: Vec<Option<u64>>,
    /// This engine's events per second over annal's (median of the per-round ratios).
    pub vs_annal: Option<f64>,
    /// annal's events per second over this engine's (median of the per-round ratios).
    pub annal_vs: Option<f64>,
}

/// One workload's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadReport {
    /// The workload.
    pub workload: Workload,
    /// What it does, with its counts.
    pub title: String,
    /// Events of one run.
    pub events: u64,
    /// One row per engine.
    pub rows: Vec<EngineRow>,
}

/// Whether a measure must be at least or at most its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `value >= limit`.
    AtLeast,
    /// `value <= limit`.
    AtMost,
}

/// One performance target and whether the run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetCheck {
    /// The target.
    pub target: String,
    /// The workload it concerns.
    pub workload: Workload,
    /// The measure: a ratio of annal to another engine, or a latency in milliseconds; `None`
    /// when an engine it needs did not run.
    pub value: Option<f64>,
    /// The same ratio for annal-wal, for reference.
    pub annal_wal_value: Option<f64>,
    /// The bound.
    pub bound: Bound,
    /// The limit.
    pub limit: f64,
    /// The unit of `value` and `limit`: `x` (a ratio) or `ms`.
    pub unit: &'static str,
    /// Whether the target was met; `None` when it could not be judged.
    pub met: Option<bool>,
}

/// How one engine was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineSettings {
    /// The engine.
    pub engine: Engine,
    /// Its settings, in words.
    pub settings: &'static str,
}

/// Everything a comparison measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What ran.
    pub config: Config,
    /// How each engine was set up.
    pub settings: Vec<EngineSettings>,
    /// One table per workload.
    pub workloads: Vec<WorkloadReport>,
    /// The targets.
    pub targets: Vec<TargetCheck>,
}

/// How `engine` is set up, one line.
#[must_use]
pub fn settings(engine: Engine) -> &'static str {
    match engine {
        Engine::Annal => {
            "Journal facade, typed event (payload as a MessagePack bin field), 4 streams, \
             Expect::Any; Durability::Sync for durable appends, Manual + one sync() for bulk; \
             replay = Journal::replay of a fold projection (decodes every event)"
        }
        Engine::AnnalWal => {
            "annal_wal::Log, default options (64 MiB preallocated segments), payload as the \
             record; Sync for durable appends, Manual + one sync() for bulk; read_from(1)"
        }
        Engine::Sqlite => {
            "rusqlite 0.41 bundled, journal_mode=WAL, synchronous=FULL, busy_timeout 600 s, \
             one connection per writer, table events(seq INTEGER PRIMARY KEY, data BLOB), one \
             autocommit INSERT per append; bulk = one transaction; other settings default \
             (wal_autocheckpoint 1000 pages); replay = SELECT seq, data ORDER BY seq (SQLite \
             keeps no page checksums)"
        }
        Engine::Fjall => {
            "fjall 3, default options, one keyspace keyed by big-endian sequence (atomic \
             counter), insert + persist(SyncData) per append; bulk = inserts + one \
             persist(SyncData); replay = keyspace iteration"
        }
        Engine::Okaywal => {
            "okaywal 0.3, checkpointing off (checkpoint_after_bytes = u64::MAX: the log is the \
             store), preallocation sized to the run (1 to 64 MiB, zero-filled at open, outside \
             the timing), one entry of one chunk per append, commit per append; bulk = one \
             entry with one chunk per event, one commit; replay = reopening (recovery) with a \
             LogManager that reads every chunk and checks its CRC"
        }
        Engine::Raw => {
            "CRC32 + payload records in one file: durable = pwrite + fdatasync per record into \
             a file preallocated with set_len; bulk = sequential writes of <= 1 MiB + one \
             fdatasync; replay = reads of ~1 MiB + CRC32 check of every record"
        }
    }
}

fn median_or_nan(values: &[f64]) -> f64 {
    if values.is_empty() { f64::NAN } else { median(values) }
}

/// Median over the rounds of `f(a) / f(b)`, pairing the rounds by index.
fn paired_ratio(a: &[Run], b: &[Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter_map(|(a, b)| Some(f(a)? / f(b)?))
        .filter(|r| r.is_finite())
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

fn events_per_sec(run: &Run) -> Option<f64> {
    Some(run.events_per_sec())
}

fn written_per_sec(run: &Run) -> Option<f64> {
    run.written_bytes.map(|b| crate::per_sec(b, run.elapsed))
}

/// The title of `workload`'s table.
#[must_use]
pub fn title(config: &Config, workload: Workload) -> String {
    let n = |x: u64| thousands(x as f64);
    let b = config.payload_bytes;
    match workload {
        Workload::Sync1 => {
            format!("sync1: 1 writer, {} durable appends of {b} B", n(config.appends))
        }
        Workload::Writers => format!(
            "writers: {} writer threads x {} durable appends of {b} B",
            config.writers,
            n(config.per_writer)
        ),
        Workload::Bulk => {
            format!("bulk: {} appends of {b} B, one sync at the end", n(config.bulk))
        }
        Workload::Replay => format!(
            "replay: {} events of {b} B read back in order from the page cache, checksums \
             checked, folded",
            n(config.replay)
        ),
    }
}

/// The table of one workload.
#[must_use]
pub fn workload_report(config: &Config, result: &WorkloadResult) -> WorkloadReport {
    let annal = result.series.iter().find(|s| s.engine == Engine::Annal);
    let rows = result
        .series
        .iter()
        .filter(|s| !s.runs.is_empty())
        .map(|s| {
            let rounds: Vec<f64> = s.runs.iter().map(Run::events_per_sec).collect();
            let eps = median_or_nan(&rounds);
            let written: Vec<f64> = s.runs.iter().filter_map(written_per_sec).collect();
            let mut latencies: Vec<Duration> =
                s.runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
            let latency_us = LatencyUs::of(&mut latencies);
            EngineRow {
                engine: s.engine,
                events_per_sec: eps,
                events_per_sec_rounds: rounds,
                payload_bytes_per_sec: eps * config.payload_bytes as f64,
                written_bytes_per_sec: (result.workload == Workload::Bulk && !written.is_empty())
                    .then(|| median(&written)),
                latency_us,
                flushes_rounds: s.runs.iter().map(|r| r.flushes).collect(),
                vs_annal: annal.and_then(|a| paired_ratio(&s.runs, &a.runs, events_per_sec)),
                annal_vs: annal.and_then(|a| paired_ratio(&a.runs, &s.runs, events_per_sec)),
            }
        })
        .collect();
    WorkloadReport {
        workload: result.workload,
        title: title(config, result.workload),
        events: result.events,
        rows,
    }
}

fn series_of(results: &[WorkloadResult], workload: Workload, engine: Engine) -> Option<&[Run]> {
    results
        .iter()
        .find(|r| r.workload == workload)?
        .series
        .iter()
        .find(|s| s.engine == engine && !s.runs.is_empty())
        .map(|s| s.runs.as_slice())
}

/// The targets, judged on what ran.
#[must_use]
pub fn targets(results: &[WorkloadResult]) -> Vec<TargetCheck> {
    let ratio = |workload, of: Engine, to: Engine, f: fn(&Run) -> Option<f64>| {
        paired_ratio(series_of(results, workload, of)?, series_of(results, workload, to)?, f)
    };
    let at_least =
        |target: String, workload, value: Option<f64>, wal: Option<f64>, limit| TargetCheck {
            target,
            workload,
            value,
            annal_wal_value: wal,
            bound: Bound::AtLeast,
            limit,
            unit: "x",
            met: value.map(|v| v >= limit),
        };
    let mut out = Vec::new();
    for (peer, limit) in [(Engine::Okaywal, 2.0), (Engine::Sqlite, 10.0)] {
        out.push(at_least(
            format!("writers: annal events/s >= {limit}x {peer}"),
            Workload::Writers,
            ratio(Workload::Writers, Engine::Annal, peer, events_per_sec),
            ratio(Workload::Writers, Engine::AnnalWal, peer, events_per_sec),
            limit,
        ));
    }
    let p999_ms = |engine| {
        let runs = series_of(results, Workload::Writers, engine)?;
        let mut all: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
        (!all.is_empty()).then(|| percentiles(&mut all).p999.as_secs_f64() * 1e3)
    };
    let p999 = p999_ms(Engine::Annal);
    out.push(TargetCheck {
        target: "writers: annal p99.9 latency <= 2 ms".to_owned(),
        workload: Workload::Writers,
        value: p999,
        annal_wal_value: p999_ms(Engine::AnnalWal),
        bound: Bound::AtMost,
        limit: 2.0,
        unit: "ms",
        met: p999.map(|v| v <= 2.0),
    });
    out.push(at_least(
        "sync1: annal events/s >= 0.9x raw pwrite + fdatasync".to_owned(),
        Workload::Sync1,
        ratio(Workload::Sync1, Engine::Annal, Engine::Raw, events_per_sec),
        ratio(Workload::Sync1, Engine::AnnalWal, Engine::Raw, events_per_sec),
        0.9,
    ));
    let best_peer = Engine::ALL
        .into_iter()
        .filter(|e| e.is_peer())
        .filter_map(|e| {
            let runs = series_of(results, Workload::Sync1, e)?;
            let eps: Vec<f64> = runs.iter().map(Run::events_per_sec).collect();
            Some((e, median(&eps)))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(e, _)| e);
    out.push(at_least(
        format!(
            "sync1: annal events/s >= the best peer's ({})",
            best_peer.map_or("none ran", Engine::name)
        ),
        Workload::Sync1,
        best_peer.and_then(|p| ratio(Workload::Sync1, Engine::Annal, p, events_per_sec)),
        best_peer.and_then(|p| ratio(Workload::Sync1, Engine::AnnalWal, p, events_per_sec)),
        1.0,
    ));
    out.push(at_least(
        "bulk: annal bytes written/s >= 0.8x raw sequential write".to_owned(),
        Workload::Bulk,
        ratio(Workload::Bulk, Engine::Annal, Engine::Raw, written_per_sec),
        ratio(Workload::Bulk, Engine::AnnalWal, Engine::Raw, written_per_sec),
        0.8,
    ));
    for (peer, limit, what) in [
        (Engine::Raw, 0.5, "raw read + CRC32 scan"),
        (Engine::Sqlite, 1.5, "SQLite's ordered SELECT"),
    ] {
        out.push(at_least(
            format!("replay: annal events/s >= {limit}x {what}"),
            Workload::Replay,
            ratio(Workload::Replay, Engine::Annal, peer, events_per_sec),
            ratio(Workload::Replay, Engine::AnnalWal, peer, events_per_sec),
            limit,
        ));
    }
    out
}

/// The whole report.
#[must_use]
pub fn report(config: &Config, results: &[WorkloadResult]) -> Report {
    Report {
        config: config.clone(),
        settings: config
            .engines
            .iter()
            .map(|&engine| EngineSettings { engine, settings: settings(engine) })
            .collect(),
        workloads: results.iter().map(|r| workload_report(config, r)).collect(),
        targets: targets(results),
    }
}

fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

fn mib_cell(bytes_per_sec: Option<f64>) -> String {
    bytes_per_sec.map_or_else(|| "-".to_owned(), |b| format!("{:.1}", b / MIB))
}

fn flushes_cell(row: &EngineRow, events: u64) -> String {
    let known: Option<Vec<u64>> = row.flushes_rounds.iter().copied().collect();
    match known {
        Some(f) if !f.is_empty() => {
            let runs = f.len() as f64;
            let total = f.iter().sum::<u64>() as f64;
            format!("{} ({:.2}/event)", thousands(total / runs), total / (events as f64 * runs))
        }
        _ => "unknown".to_owned(),
    }
}

fn us_cell(us: f64) -> String {
    micros(Duration::from_secs_f64(us / 1e6))
}

/// One workload's markdown table.
#[must_use]
pub fn workload_table(w: &WorkloadReport) -> String {
    let mut out = format!("### {}\n\n", w.title);
    let durable = w.workload.is_durable();
    let _ = if durable {
        writeln!(
            out,
            "| engine | events/s | p50 | p99 | p99.9 | max | disk flushes per run | engine / annal | annal / engine |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )
    } else if w.workload == Workload::Bulk {
        writeln!(
            out,
            "| engine | events/s | payload MiB/s | written MiB/s | disk flushes per run | engine / annal | annal / engine |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        )
    } else {
        writeln!(
            out,
            "| engine | events/s | payload MiB/s | engine / annal | annal / engine |\n\
             | --- | ---: | ---: | ---: | ---: |"
        )
    };
    for row in &w.rows {
        let head = format!("| {} | {} ", row.engine, thousands(row.events_per_sec));
        let ratios = format!("| {} | {} |", ratio_cell(row.vs_annal), ratio_cell(row.annal_vs));
        let _ = if durable {
            let l = row.latency_us.map_or_else(
                || "| - | - | - | - ".to_owned(),
                |l| {
                    format!(
                        "| {} | {} | {} | {} ",
                        us_cell(l.p50),
                        us_cell(l.p99),
                        us_cell(l.p999),
                        us_cell(l.max)
                    )
                },
            );
            writeln!(out, "{head}{l}| {} {ratios}", flushes_cell(row, w.events))
        } else if w.workload == Workload::Bulk {
            writeln!(
                out,
                "{head}| {} | {} | {} {ratios}",
                mib_cell(Some(row.payload_bytes_per_sec)),
                mib_cell(row.written_bytes_per_sec),
                flushes_cell(row, w.events)
            )
        } else {
            writeln!(out, "{head}| {} {ratios}", mib_cell(Some(row.payload_bytes_per_sec)))
        };
    }
    out
}

/// The targets as a markdown table.
#[must_use]
pub fn targets_table(targets: &[TargetCheck]) -> String {
    let mut out = String::from(
        "| target | annal | annal-wal | required | result |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for t in targets {
        let cell = |v: Option<f64>| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}{}", unit_suffix(t.unit)))
        };
        let bound = match t.bound {
            Bound::AtLeast => ">=",
            Bound::AtMost => "<=",
        };
        let result = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not run",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {bound} {}{} | {result} |",
            t.target,
            cell(t.value),
            cell(t.annal_wal_value),
            t.limit,
            unit_suffix(t.unit)
        );
    }
    out
}

fn unit_suffix(unit: &str) -> String {
    if unit == "x" { "x".to_owned() } else { format!(" {unit}") }
}

/// The engines' settings as a markdown list.
#[must_use]
pub fn settings_list(report: &Report) -> String {
    report.settings.iter().fold(String::new(), |mut out, s| {
        let _ = writeln!(out, "- {}: {}", s.engine, s.settings);
        out
    })
}

/// Writes `report` as JSON to `path`, creating its directory.
///
/// # Errors
/// I/O or serialization errors.
pub fn write_json(report: &Report, path: &Path) -> BenchResult<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), report)?;
    Ok(())
}
