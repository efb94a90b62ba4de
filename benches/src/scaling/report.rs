//! The JSON report of the scaling measurements and its charts.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    LogPlan, LogPoint, LogSeries, PayloadPlan, PayloadPoint, PayloadWork, Run, WritersPlan,
    WritersPoint, median_events_per_sec, median_mb_per_sec, median_of,
};
use crate::BenchResult;
use crate::chart::{Axis, Chart, Legend, Series};
use crate::journal::DATA_BYTES;

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
    /// Throughput against the number of writers.
    pub writers: Vec<WritersPoint>,
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

/// Name of the series of annal in the writers chart.
pub const WRITERS_ANNAL_SERIES: &str = "annal, Journal::append (Sync)";

/// Hook for the other engines' curves: the chart of durable appends per second against the
/// number of writers, with annal's `points` as the first series and then every series of
/// `extra` (for example the same workload on SQLite, fjall and okaywal, measured by the
/// comparison harness, with the number of writers as x and appends per second as y). The
/// `scaling` binary passes none; a caller holding the other engines' points can read annal's
/// back from the JSON report ([`Report::read`]) and draw all of them on one chart.
#[must_use]
pub fn writers_chart(points: &[WritersPoint], extra: Vec<Series>) -> Chart {
    let annal = series_of(
        WRITERS_ANNAL_SERIES,
        points,
        |p| p.writers as f64,
        |p| median_events_per_sec(&p.runs),
    );
    Chart {
        title: format!("Durable appends against writers ({DATA_BYTES} B events, Sync)"),
        x: Axis::number("writers (threads, each appending to its own stream)").log2(),
        y: Axis::number("events per second (all writers)").log10(),
        series: std::iter::once(annal).chain(extra).collect(),
        legend: Legend::UpperLeft,
    }
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
    /// `scaling-open.svg`, `scaling-replay.svg` and `scaling-writers.svg` (with the series of
    /// `extra_writers` added, see [`writers_chart`]). Workloads without points have no chart.
    #[must_use]
    pub fn charts(&self, extra_writers: Vec<Series>) -> Vec<(&'static str, Chart)> {
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
            charts.push(("scaling-writers.svg", writers_chart(&self.writers, extra_writers)));
        }
        charts
    }

    /// Writes the report as `scaling.json` and its [`Report::charts`] into `dir` (created if
    /// needed). Returns the paths written.
    ///
    /// # Errors
    /// A file cannot be written, or a chart cannot be drawn.
    pub fn write_all(&self, dir: &Path, extra_writers: Vec<Series>) -> BenchResult<Vec<PathBuf>> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = dir.join("scaling.json");
        self.write(&json)?;
        let mut written = vec![json];
        for (file, chart) in self.charts(extra_writers) {
            let path = dir.join(file);
            chart.render(&path)?;
            written.push(path);
        }
        Ok(written)
    }
}
