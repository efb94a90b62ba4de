//! The JSON report of the scaling measurements and its charts.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    LogPlan, LogPoint, LogSeries, PayloadPlan, PayloadPoint, PayloadWork, Run, WritersPlan,
    WritersRow, median_events_per_sec, median_mb_per_sec, median_of,
};
use crate::BenchResult;
use crate::chart::{Axis, Chart, Legend, Series};
use crate::engines::Engine;

/// A median rate of runs: events or MB per second.
type RateOf = fn(&[Run]) -> Option<f64>;

/// Everything one run of the `scaling` binary measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The payload plan, if that workload ran.
    pub payload_plan: Option<PayloadPlan>,
    /// Throughput against payload size.
    pub payload: Vec<PayloadPoint>,
    /// The log-size plan, if that workload ran.
    pub log_plan: Option<LogPlan>,
    /// Open and replay time against log size.
    pub log: LogSeries,
    /// The writers plan, if that workload ran.
    pub writers_plan: Option<WritersPlan>,
    /// Throughput and latency against the number of writers: one row per number of writers
    /// and engine.
    pub writers: Vec<WritersRow>,
}

/// A series of the points `(x(p), y(p))`, leaving out those whose `y` is none (no runs).
fn series_of<P>(
    name: &str,
    points: &[P],
    x: impl Fn(&P) -> f64,
    y: impl Fn(&P) -> Option<f64>,
) -> Series {
    Series::new(name, points.iter().filter_map(|p| Some((x(p), y(p)?))).collect())
}

/// Engines measured by the writers workload but left off its charts: annal-wal, the log under
/// annal's `Journal`, whose curve would sit beside annal's; it stays in the table and the JSON.
pub const WRITERS_CHART_LEAVES_OUT: [Engine; 1] = [Engine::AnnalWal];

/// The name of `engine`'s curve in the writers charts.
#[must_use]
pub fn writers_series_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Annal => "annal, Journal::append (Sync)",
        Engine::AnnalWal => "annal-wal, Log::append (Sync)",
        Engine::Sqlite => "SQLite, WAL, synchronous=FULL",
        Engine::Fjall => "fjall, insert + persist(SyncData)",
        Engine::Okaywal => "okaywal, entry commit",
        Engine::Raw => "raw pwrite + fdatasync per append",
    }
}

/// One curve per engine of `rows` (in their order, without [`WRITERS_CHART_LEAVES_OUT`]):
/// `y(row)` against the number of writers; the raw baseline dashed.
fn writers_series(rows: &[WritersRow], y: impl Fn(&WritersRow) -> Option<f64>) -> Vec<Series> {
    let mut engines: Vec<Engine> = Vec::new();
    for row in rows {
        if !engines.contains(&row.engine) && !WRITERS_CHART_LEAVES_OUT.contains(&row.engine) {
            engines.push(row.engine);
        }
    }
    engines
        .into_iter()
        .map(|engine| {
            let of_engine: Vec<&WritersRow> = rows.iter().filter(|r| r.engine == engine).collect();
            let s =
                series_of(writers_series_name(engine), &of_engine, |r| r.writers as f64, |r| y(r));
            if engine == Engine::Raw { s.dashed() } else { s }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// The charts of the writers workload: durable appends per second against the number of
/// writers (`scaling-writers.svg`), and the 99.9th percentile latency of one append
/// (`scaling-writers-p999.svg`), one curve per engine, both axes logarithmic.
#[must_use]
pub fn writers_charts(rows: &[WritersRow], payload_bytes: usize) -> Vec<(&'static str, Chart)> {
    let x = || Axis::number("writers (threads appending at once)").log2();
    vec![
        (
            "scaling-writers.svg",
            Chart {
                title: format!(
                    "Durable appends against writers ({payload_bytes} B payloads, each append \
                     durable)"
                ),
                x: x(),
                y: Axis::number("events per second (all writers)").log10(),
                series: writers_series(rows, |r| r.events_per_sec),
                legend: Legend::UpperLeft,
            },
        ),
        (
            "scaling-writers-p999.svg",
            Chart {
                title: format!(
                    "p99.9 latency of a durable append against writers ({payload_bytes} B \
                     payloads)"
                ),
                x: x(),
                y: Axis::number("milliseconds (99.9th percentile of every append)").log10(),
                series: writers_series(rows, |r| r.latency_us.map(|l| l.p999 / 1e3)),
                legend: Legend::UpperLeft,
            },
        ),
    ]
}

impl Report {
    /// Reads a report written by [`Report::write`].
    ///
    /// # Errors
    /// The file cannot be read or does not hold a report.
    pub fn read(path: &Path) -> BenchResult<Self> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
    }

    /// Writes the report as JSON to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> BenchResult<()> {
        let text = serde_json::to_string_pretty(self)?;
        fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()).into())
    }

    /// The charts of what was measured, each with its file name: `scaling-payload.svg` (events
    /// per second against payload size), `scaling-payload-mbps.svg` (MB per second),
    /// `scaling-open.svg`, `scaling-replay.svg`, `scaling-writers.svg` and
    /// `scaling-writers-p999.svg` ([`writers_charts`]). Workloads without points have no chart.
    #[must_use]
    pub fn charts(&self) -> Vec<(&'static str, Chart)> {
        let mut charts = Vec::new();
        if !self.payload.is_empty() {
            let writers = self.payload_plan.as_ref().map_or(0, |p| p.writers);
            // Each legend goes where the curves leave room: events/s fall with the size, MB/s rise.
            let rates: [(&str, &str, RateOf, Legend); 2] = [
                (
                    "scaling-payload.svg",
                    "events per second",
                    median_events_per_sec,
                    Legend::UpperRight,
                ),
                (
                    "scaling-payload-mbps.svg",
                    "MB of event data per second",
                    median_mb_per_sec,
                    Legend::LowerRight,
                ),
            ];
            for (file, unit, rate, legend) in rates {
                let series = PayloadWork::ALL
                    .into_iter()
                    .map(|work| {
                        let s = series_of(
                            &work.name(writers),
                            &self.payload,
                            |p| p.data_bytes as f64,
                            |p| rate(p.runs(work)),
                        );
                        if work.is_baseline() { s.dashed() } else { s }
                    })
                    .collect();
                charts.push((
                    file,
                    Chart {
                        title: format!("annal appends against event size: {unit}"),
                        x: Axis::bytes("event data per append").log2(),
                        y: Axis::number(unit).log10(),
                        series,
                        legend,
                    },
                ));
            }
        }
        if !self.log.points.is_empty() {
            let ms = |v: &[f64]| median_of(v.iter().map(|s| s * 1e3));
            let x = |p: &LogPoint| p.log_bytes as f64;
            charts.push((
                "scaling-open.svg",
                Chart {
                    title: "Journal::open against log size (Counts registered, page cache warm)"
                        .into(),
                    x: Axis::bytes("log size").log2(),
                    y: Axis::number("milliseconds").log10(),
                    series: vec![
                        series_of("open without a snapshot", &self.log.points, x, |p| {
                            ms(&p.open_without)
                        }),
                        series_of(
                            "open from a snapshot (compact() at the end)",
                            &self.log.points,
                            x,
                            |p| ms(&p.open_with),
                        ),
                    ],
                    legend: Legend::UpperLeft,
                },
            ));
            charts.push((
                "scaling-replay.svg",
                Chart {
                    title: "Full replay against log size: replay::<Counts>(Until::End), page \
                            cache warm"
                        .into(),
                    x: Axis::bytes("log size").log2(),
                    y: Axis::number("milliseconds").log10(),
                    series: vec![series_of("replay, no snapshot", &self.log.points, x, |p| {
                        ms(&p.replay)
                    })],
                    legend: Legend::UpperLeft,
                },
            ));
        }
        if !self.writers.is_empty() {
            let payload_bytes = self
                .writers_plan
                .as_ref()
                .map_or(crate::compare::PAYLOAD_BYTES_DEFAULT, |p| p.payload_bytes);
            charts.extend(writers_charts(&self.writers, payload_bytes));
        }
        charts
    }

    /// Writes the report as `scaling.json` and its [`Report::charts`] into `dir` (created if
    /// needed). Returns the paths written.
    ///
    /// # Errors
    /// A file cannot be written, or a chart cannot be drawn.
    pub fn write_all(&self, dir: &Path) -> BenchResult<Vec<PathBuf>> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = dir.join("scaling.json");
        self.write(&json)?;
        let mut written = vec![json];
        for (file, chart) in self.charts() {
            let path = dir.join(file);
            chart.render(&path)?;
            written.push(path);
        }
        Ok(written)
    }
}
