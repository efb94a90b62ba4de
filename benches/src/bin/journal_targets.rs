//! Measures the annal journal against its performance targets and prints markdown tables:
//!
//! | workload | compared with | target |
//! | --- | --- | --- |
//! | `journal.replay::<MinutesByActor>(Until::End)` over 1M task events (150 B of MessagePack data each) in page cache, one thread | the WAL's `read_from(1)` over the same records, for context | >= 3,000,000 events/s |
//! | 1 writer, `Sync`, 2,000 `Journal::append`s of one typed event | `Log::append` of the same envelope bytes, 2,000 times | >= 0.85x records/s |
//! | 16 threads x 500 `Journal::append`s, `Sync` | 16 threads x 500 `Log::append`s of the same bytes | >= 0.85x records/s |
//!
//! The fold workload also times the steps between a WAL scan and a replay (envelope parsing,
//! then decoding), all passes alternating within each round. The appends alternate with their
//! WAL counterpart in blocks within each round. Each workload runs a warm-up round that is not
//! counted, then 5 rounds (`--rounds`); figures are medians of rounds, ratios medians of
//! per-round ratios. Durable runs are checked against the disk's count of completed cache
//! flushes. `--quick` divides every count by 10; `--only` runs one workload. Exits 0 if every
//! target run is met, 1 if one is missed, 2 on an error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use annal_benches::journal::{
    AppendLoad, AppendPair, AppendRun, DATA_BYTES, EVENT_PAYLOAD_BYTES, FoldData, FoldPass,
    fold_pass, interleaved_appends, prepare_fold,
};
use annal_benches::table::{list, micros, thousands};
use annal_benches::{BenchResult, in_scratch, median, per_sec, percentiles, scratch_root};

const USAGE: &str = "usage: journal_targets [--quick] [--rounds N] [--only fold|append1|append16]

Runs the journal workloads beside their baselines, N rounds each (default 5), prints markdown
tables and checks the targets; exits 0 if all are met, 1 if one is missed, 2 on an error.
--quick divides every count by 10. --only runs one workload. Scratch files go under
$ANNAL_BENCH_DIR (default: the system temp directory).";

/// Rounds without `--rounds`.
const DEFAULT_ROUNDS: usize = 5;
/// Passes of each kind over the fold journal per round.
const FOLD_PASSES: usize = 3;
/// Least events per second of the replay.
const FOLD_TARGET: f64 = 3_000_000.0;
/// Least ratio of journal to WAL records per second, for durable appends.
const APPEND_TARGET: f64 = 0.85;
/// Blocks the one-writer appends are cut into, alternating with the WAL's, each round.
const ONE_WRITER_BLOCKS: u64 = 50;
/// Blocks the many-writer appends are cut into, alternating with the WAL's, each round.
const WRITERS_BLOCKS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Fold,
    OneWriter,
    Writers,
}

impl Workload {
    const ALL: [Self; 3] = [Self::Fold, Self::OneWriter, Self::Writers];

    fn name(self) -> &'static str {
        match self {
            Self::Fold => "fold",
            Self::OneWriter => "append1",
            Self::Writers => "append16",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    rounds: usize,
    quick: bool,
    workloads: Vec<Workload>,
    fold_events: u64,
    one_writer: AppendLoad,
    one_writer_blocks: u64,
    writers: AppendLoad,
}

impl Config {
    fn new(quick: bool, rounds: usize, workloads: Vec<Workload>) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            rounds,
            quick,
            workloads,
            fold_events: 1_000_000 / scale,
            one_writer: AppendLoad { threads: 1, per_thread: 2_000 / scale },
            one_writer_blocks: if quick { 10 } else { ONE_WRITER_BLOCKS },
            writers: AppendLoad { threads: 16, per_thread: 500 / scale },
        }
    }
}

/// Events per second of each fold pass in one round, in the order of `FoldPass::ALL`.
type FoldRound = [f64; 4];

fn pass_index(pass: FoldPass) -> usize {
    FoldPass::ALL.iter().position(|&p| p == pass).expect("every pass is in ALL")
}

/// What the rounds of one workload measured.
#[derive(Debug, Default)]
struct Series {
    fold: Vec<FoldRound>,
    /// Time to write the fold journal, and its events.
    fold_written: Option<(Duration, u64)>,
    appends: Vec<AppendPair>,
}

impl Series {
    /// (journal, baseline) figure of each round.
    fn rounds(&self) -> Vec<(f64, f64)> {
        if self.fold.is_empty() {
            self.appends
                .iter()
                .map(|p| (p.journal.records_per_sec(), p.wal.records_per_sec()))
                .collect()
        } else {
            let (scan, replay) = (pass_index(FoldPass::Scan), pass_index(FoldPass::Replay));
            self.fold.iter().map(|r| (r[replay], r[scan])).collect()
        }
    }

    fn median_journal(&self) -> f64 {
        median(&self.rounds().iter().map(|r| r.0).collect::<Vec<_>>())
    }

    fn median_baseline(&self) -> f64 {
        median(&self.rounds().iter().map(|r| r.1).collect::<Vec<_>>())
    }

    fn ratios(&self) -> Vec<f64> {
        self.rounds().iter().map(|(j, b)| j / b).collect()
    }
}

/// One round of the fold workload: [`FOLD_PASSES`] passes of each kind, the kinds in turn,
/// starting from a different one each pass and round.
fn fold_round(data: &FoldData, round: usize) -> BenchResult<FoldRound> {
    let mut elapsed = [Duration::ZERO; 4];
    for pass in 0..FOLD_PASSES {
        for k in 0..FoldPass::ALL.len() {
            let i = (k + pass + round) % FoldPass::ALL.len();
            let start = Instant::now();
            fold_pass(data, FoldPass::ALL[i])?;
            elapsed[i] += start.elapsed();
        }
    }
    let events = data.events * FOLD_PASSES as u64;
    Ok(elapsed.map(|e| per_sec(events, e)))
}

/// Checks that a side's run completed at least `least` disk flushes (when the disk's count is
/// known).
fn require_flushes(what: &str, run: &AppendRun, least: u64) -> BenchResult<()> {
    match run.flushes {
        Some(f) if f < least => Err(format!(
            "{what}: the disk completed {f} cache flushes during the run, fewer than the {least} \
             its durability requires: it did not fdatasync"
        )
        .into()),
        _ => Ok(()),
    }
}

fn show(series: &Series) -> String {
    let rounds = series.rounds();
    rounds.last().map_or_else(String::new, |(j, b)| {
        format!("journal {j:.4e}, baseline {b:.4e}, ratio {:.2}", j / b)
    })
}

/// Runs a warm-up round, not counted, then every round of one workload.
fn run(config: &Config, w: Workload) -> BenchResult<Series> {
    let mut series = Series::default();
    let fold_data = if w == Workload::Fold {
        eprintln!("writing {} events to fold", config.fold_events);
        let start = Instant::now();
        let data = prepare_fold(config.fold_events)?;
        series.fold_written = Some((start.elapsed(), config.fold_events));
        Some(data)
    } else {
        None
    };
    let written = series.fold_written;
    for round in 0..=config.rounds {
        let journal_first = round % 2 == 0;
        match w {
            Workload::Fold => {
                let data = fold_data.as_ref().expect("prepared above");
                series.fold.push(fold_round(data, round)?);
            }
            Workload::OneWriter | Workload::Writers => {
                let (load, blocks) = if w == Workload::OneWriter {
                    (config.one_writer, config.one_writer_blocks)
                } else {
                    (config.writers, WRITERS_BLOCKS)
                };
                let pair = in_scratch(|d| interleaved_appends(d, load, blocks, journal_first))?;
                // Each thread has one append in flight, so one fdatasync covers at most
                // `threads` appends.
                let least = load.records().div_ceil(load.threads as u64);
                require_flushes("WAL Sync appends", &pair.wal, least)?;
                require_flushes("journal Sync appends", &pair.journal, least)?;
                series.appends.push(pair);
            }
        }
        if round == 0 {
            eprintln!("{} warm-up round (not counted): {}", w.name(), show(&series));
            series = Series { fold_written: written, ..Series::default() };
        } else {
            eprintln!("{} round {round}: {}", w.name(), show(&series));
        }
    }
    Ok(series)
}

fn writers(threads: usize) -> String {
    if threads == 1 { "1 writer".to_string() } else { format!("{threads} writers") }
}

/// The description, figures and target of a workload's row; whether the target is met.
struct Row {
    workload: String,
    journal: String,
    baseline: String,
    target: String,
    met: bool,
}

fn describe(config: &Config, w: Workload, s: &Series) -> Row {
    let n = |x: u64| thousands(x as f64);
    let journal = s.median_journal();
    let ratio = median(&s.ratios());
    match w {
        Workload::Fold => Row {
            workload: format!(
                "fold: `replay::<MinutesByActor>(Until::End)` over {} events, page cache, 1 thread",
                n(config.fold_events)
            ),
            journal: format!("{} events/s", thousands(journal)),
            baseline: format!(
                "{} records/s (`log.read_from(1)`, counting)",
                thousands(s.median_baseline())
            ),
            target: format!("fold >= {} events/s", thousands(FOLD_TARGET)),
            met: journal >= FOLD_TARGET,
        },
        Workload::OneWriter | Workload::Writers => {
            let load = if w == Workload::OneWriter { config.one_writer } else { config.writers };
            let what = if load.threads == 1 {
                format!("1 writer, `Sync`, {} appends", n(load.per_thread))
            } else {
                format!("{} threads x {} appends, `Sync`", load.threads, n(load.per_thread))
            };
            Row {
                workload: format!("{what} of one event ({EVENT_PAYLOAD_BYTES} B payload)"),
                journal: format!("{} records/s", thousands(journal)),
                baseline: format!(
                    "{} records/s (`Log::append`, same bytes)",
                    thousands(s.median_baseline())
                ),
                target: format!("{} Sync >= {APPEND_TARGET}x WAL records/s", writers(load.threads)),
                met: ratio >= APPEND_TARGET,
            }
        }
    }
}

/// Prints the tables; returns each target with whether it was met.
fn report(config: &Config, results: &[(Workload, Series)]) -> Vec<(String, bool)> {
    println!(
        "| workload | journal (median of rounds) | baseline (median of rounds) | ratio (median of \
         per-round ratios) | per-round ratios | target | result |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut targets = Vec::new();
    for (w, s) in results {
        let row = describe(config, *w, s);
        let each = list(s.ratios().iter().map(|r| format!("{r:.2}")));
        let target = if *w == Workload::Fold {
            format!(">= {} events/s", thousands(FOLD_TARGET))
        } else {
            format!(">= {APPEND_TARGET}x")
        };
        println!(
            "| {} | {} | {} | **{:.2}x** | {each} | {target} | {} |",
            row.workload,
            row.journal,
            row.baseline,
            median(&s.ratios()),
            if row.met { "met" } else { "**missed**" }
        );
        targets.push((row.target, row.met));
    }
    println!();
    for (w, s) in results {
        if *w == Workload::Fold {
            print_fold(config, s);
        }
    }
    let appends: Vec<_> = results.iter().filter(|(w, _)| *w != Workload::Fold).collect();
    if !appends.is_empty() {
        print_appends(config, &appends);
    }
    targets
}

fn print_fold(config: &Config, s: &Series) {
    println!(
        "| pass over {} events ({DATA_BYTES} B of data, {EVENT_PAYLOAD_BYTES} B payloads), page \
         cache, 1 thread | events/s (median of {} rounds) | ns per event | ns added by the step \
         | per-round events/s |",
        thousands(config.fold_events as f64),
        config.rounds
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut previous: Option<f64> = None;
    for pass in FoldPass::ALL {
        let i = pass_index(pass);
        let rates: Vec<f64> = s.fold.iter().map(|r| r[i]).collect();
        let rate = median(&rates);
        let ns = 1e9 / rate;
        let added = previous.map_or_else(|| "-".to_string(), |p| format!("{:+.0}", ns - p));
        let name = match pass {
            FoldPass::Scan => "WAL scan: `log.read_from(1)`, counting records",
            FoldPass::Parse => "+ `RawEvent::parse` (envelope)",
            FoldPass::Decode => "+ `raw.decode::<TaskLogged>()` (rmp-serde)",
            FoldPass::Replay => "`journal.replay::<MinutesByActor>(Until::End)` (+ fold)",
        };
        println!(
            "| {name} | {} | {ns:.0} | {added} | {} |",
            thousands(rate),
            list(rates.iter().map(|r| thousands(*r)))
        );
        previous = Some(ns);
    }
    if let Some((elapsed, events)) = s.fold_written {
        println!();
        println!(
            "The fold journal was written with one `Journal::append` per event, `Manual` \
             durability, then one sync: {} events in {:.2} s ({} events/s).",
            thousands(events as f64),
            elapsed.as_secs_f64(),
            thousands(per_sec(events, elapsed))
        );
    }
    println!();
}

fn print_appends(config: &Config, results: &[&(Workload, Series)]) {
    println!(
        "| latency of one durable append ({} rounds) | samples | p50 | p99 | p99.9 | max |",
        config.rounds
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (w, s) in results {
        let threads = if *w == Workload::OneWriter { 1 } else { config.writers.threads };
        for (side, pick) in [
            ("WAL `Log::append`", (|p: &AppendPair| &p.wal) as fn(&AppendPair) -> &AppendRun),
            ("journal `Journal::append`", |p: &AppendPair| &p.journal),
        ] {
            let mut samples: Vec<Duration> =
                s.appends.iter().flat_map(|p| pick(p).latencies.iter().copied()).collect();
            if samples.is_empty() {
                continue;
            }
            let p = percentiles(&mut samples);
            println!(
                "| {side}, {} | {} | {} | {} | {} | {} |",
                writers(threads),
                thousands(p.count as f64),
                micros(p.p50),
                micros(p.p99),
                micros(p.p999),
                micros(p.max)
            );
        }
    }
    println!();
    println!(
        "fdatasyncs of each log (`Log::stats`) and cache flushes the disk completed (by any \
         process), per round:"
    );
    println!();
    for (w, s) in results {
        for (side, pick) in [
            ("WAL", (|p: &AppendPair| &p.wal) as fn(&AppendPair) -> &AppendRun),
            ("journal", |p: &AppendPair| &p.journal),
        ] {
            let runs: Vec<&AppendRun> = s.appends.iter().map(pick).collect();
            let syncs: u64 = runs.iter().map(|r| r.fdatasyncs).sum();
            let records: u64 = runs.iter().map(|r| r.records).sum();
            let elapsed: Duration = runs.iter().map(|r| r.elapsed).sum();
            let per_sync = if syncs > 0 {
                format!(
                    "; {:.1} appends and {} per fdatasync",
                    records as f64 / syncs as f64,
                    micros(elapsed / u32::try_from(syncs).unwrap_or(u32::MAX))
                )
            } else {
                String::new()
            };
            println!(
                "- {} {side}: fdatasyncs {}; disk flushes {}{per_sync}",
                w.name(),
                list(runs.iter().map(|r| thousands(r.fdatasyncs as f64))),
                list(runs.iter().map(|r| {
                    r.flushes.map_or_else(|| "unknown".to_string(), |f| thousands(f as f64))
                })),
            );
        }
    }
    println!();
}

fn parse_args() -> Result<Option<Config>, String> {
    let mut quick = false;
    let mut rounds = DEFAULT_ROUNDS;
    let mut workloads = Workload::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--rounds takes a positive number")?;
            }
            "--only" => {
                let name = args.next().unwrap_or_default();
                let w = Workload::ALL.into_iter().find(|w| w.name() == name).ok_or_else(|| {
                    format!("--only takes fold, append1 or append16, not {name:?}")
                })?;
                workloads = vec![w];
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Config::new(quick, rounds, workloads)))
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("journal_targets: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "annal journal targets: {} rounds, task events of {DATA_BYTES} B of data \
         ({EVENT_PAYLOAD_BYTES} B payloads){}, scratch under {}",
        config.rounds,
        if config.quick { ", --quick (counts / 10)" } else { "" },
        scratch_root().display()
    );
    println!();
    let started = Instant::now();
    let mut results = Vec::new();
    for &w in &config.workloads {
        match run(&config, w) {
            Ok(s) => results.push((w, s)),
            Err(e) => {
                eprintln!("journal_targets: {}: {e}", w.name());
                return ExitCode::from(2);
            }
        }
    }
    let targets = report(&config, &results);
    for (name, met) in &targets {
        println!("- {name}: {}", if *met { "met" } else { "MISSED" });
    }
    println!("\nran in {:.1} s", started.elapsed().as_secs_f64());
    if targets.iter().all(|(_, met)| *met) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
