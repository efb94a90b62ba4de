//! Measures the annal WAL against its performance targets, each workload beside its raw
//! baseline on the same disk, and prints a markdown table:
//!
//! | workload | baseline | target |
//! | --- | --- | --- |
//! | 1 writer, `Sync`, 2,000 appends of 100 B | `pwrite` + `fdatasync` of 100 B, 2,000 times | >= 0.9x records/s |
//! | 16 threads x 500 appends, `Sync` | the same baseline | >= 8x records/s |
//! | 1M appends, `Manual`, then one sync | 1M x 144 B in 1 MiB writes + one `fdatasync` | >= 0.8x bytes/s |
//! | `read_from(1)` over 1M records in page cache | `fs::read` of the segment files + CRC32 of each 144 B | >= 0.4x records/s |
//!
//! Each workload runs a warm-up round that is not counted, then 3 rounds (`--rounds`), each
//! beside a fresh run of its baseline: durable appends alternate with their baseline in blocks
//! within a round; bulk and scan runs alternate which of the two goes first from round to round.
//! A target is judged on the median of the per-round ratios. Latency percentiles are over every
//! append of every counted round. Runs that claim durability are checked against the disk's
//! count of completed cache flushes. `--quick` divides every count by 10; `--only` runs one
//! workload. Exits 0 if every target run is met, 1 if one is missed, 2 on an error.

use annal_benches::table::{micros, thousands};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use annal_benches::{
    AnnalLoad, BenchResult, DurableRun, FRAMED_RECORD_BYTES, PAYLOAD_BYTES, ScanData, annal_bulk,
    chain_only, framed_bytes, in_scratch, interleaved_sync, median, per_sec, percentiles,
    prepare_scan, raw_scan, raw_sequential_write, scan_log, scratch_root,
};

const USAGE: &str = "usage: wal_targets [--quick] [--rounds N] [--only sync1|threads|bulk|scan]

Runs the WAL workloads beside their baselines, N rounds each (default 3), prints a markdown
table and checks the targets; exits 0 if all are met, 1 if one is missed, 2 on an error.
--quick divides every count by 10. --only runs one workload. Scratch files go under
$ANNAL_BENCH_DIR (default: the system temp directory).";

/// Rounds without `--rounds`.
const DEFAULT_ROUNDS: usize = 3;
/// Blocks the one-writer appends and their baseline are cut into, alternating, each round.
const ONE_WRITER_BLOCKS: u64 = 50;
/// Blocks the many-writer appends and their baseline are cut into, alternating, each round.
const WRITERS_BLOCKS: u64 = 10;
/// Full passes over the scan data per round, for each of the two scanners.
const SCAN_PASSES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    OneWriter,
    Writers,
    Bulk,
    Scan,
}

impl Workload {
    const ALL: [Self; 4] = [Self::OneWriter, Self::Writers, Self::Bulk, Self::Scan];

    fn name(self) -> &'static str {
        match self {
            Self::OneWriter => "sync1",
            Self::Writers => "threads",
            Self::Bulk => "bulk",
            Self::Scan => "scan",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    rounds: usize,
    quick: bool,
    workloads: Vec<Workload>,
    sync: u64,
    threads: usize,
    per_thread: u64,
    bulk: u64,
    scan: u64,
}

impl Config {
    fn new(quick: bool, rounds: usize, workloads: Vec<Workload>) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            rounds,
            quick,
            workloads,
            sync: 2_000 / scale,
            threads: 16,
            per_thread: 500 / scale,
            bulk: 1_000_000 / scale,
            scan: 1_000_000 / scale,
        }
    }
}

/// One round of one workload: the figure of annal and of its baseline, higher is better.
#[derive(Debug, Clone, Copy)]
struct Round {
    annal: f64,
    baseline: f64,
}

impl Round {
    fn ratio(self) -> f64 {
        self.annal / self.baseline
    }
}

/// Disk flushes seen during the runs of one side of a workload, with the least it needs.
#[derive(Debug, Default)]
struct Flushes {
    least: u64,
    seen: Vec<Option<u64>>,
    /// Records made durable and time taken, over the rounds, for durable appends.
    records: u64,
    elapsed: Duration,
}

impl Flushes {
    /// Checks that a run claiming durability completed at least `least` disk flushes (when the
    /// disk's count is known), and notes the count.
    fn require(&mut self, what: &str, flushes: Option<u64>, least: u64) -> BenchResult<()> {
        if let Some(f) = flushes
            && f < least
        {
            return Err(format!(
                "{what}: the disk completed {f} cache flushes during the run, fewer than the \
                 {least} its durability requires: it did not fdatasync"
            )
            .into());
        }
        self.least = least;
        self.seen.push(flushes);
        Ok(())
    }
}

/// What the rounds of one workload measured.
#[derive(Debug, Default)]
struct Series {
    rounds: Vec<Round>,
    annal_latencies: Vec<Duration>,
    baseline_latencies: Vec<Duration>,
    annal_flushes: Flushes,
    baseline_flushes: Flushes,
    /// Bulk only: time per record of the hash chain alone, each round.
    chain_ns: Vec<f64>,
}

impl Series {
    fn push_durable(&mut self, baseline: DurableRun, annal: DurableRun) {
        self.rounds
            .push(Round { annal: annal.records_per_sec(), baseline: baseline.records_per_sec() });
        self.annal_latencies.extend(annal.latencies);
        self.baseline_latencies.extend(baseline.latencies);
    }

    fn median_ratio(&self) -> f64 {
        median(&self.rounds.iter().map(|r| r.ratio()).collect::<Vec<_>>())
    }

    fn median_of(&self, f: impl Fn(&Round) -> f64) -> f64 {
        median(&self.rounds.iter().map(f).collect::<Vec<_>>())
    }
}

/// Runs `baseline` and `annal` one after the other, `annal` first if `annal_first`.
fn pair<B, A>(
    annal_first: bool,
    baseline: impl FnOnce() -> BenchResult<B>,
    annal: impl FnOnce() -> BenchResult<A>,
) -> BenchResult<(B, A)> {
    if annal_first {
        let a = annal()?;
        Ok((baseline()?, a))
    } else {
        let b = baseline()?;
        Ok((b, annal()?))
    }
}

/// Times [`SCAN_PASSES`] raw scans and as many annal scans of `data`, annal first if
/// `annal_first`. Returns (raw, annal).
fn timed_scans(data: &ScanData, annal_first: bool) -> BenchResult<(Duration, Duration)> {
    let raw = || -> BenchResult<Duration> {
        let start = Instant::now();
        for _ in 0..SCAN_PASSES {
            raw_scan(data)?;
        }
        Ok(start.elapsed())
    };
    let annal = || -> BenchResult<Duration> {
        let start = Instant::now();
        for _ in 0..SCAN_PASSES {
            scan_log(&data.log, data.records)?;
        }
        Ok(start.elapsed())
    };
    pair(annal_first, raw, annal)
}

fn show(series: &Series) -> String {
    series.rounds.last().map_or_else(String::new, |r| {
        format!("annal {:.4e}, baseline {:.4e}, ratio {:.2}", r.annal, r.baseline, r.ratio())
    })
}

/// Runs a warm-up round, not counted (the first large writes of a process run several times
/// slower here than later ones), then every round of one workload.
fn run(config: &Config, w: Workload) -> BenchResult<Series> {
    let mut series = Series::default();
    let scan_data = if w == Workload::Scan {
        eprintln!("preparing {} records to scan", config.scan);
        Some(prepare_scan(config.scan)?)
    } else {
        None
    };
    for round in 0..=config.rounds {
        let annal_first = round % 2 == 0;
        match w {
            Workload::OneWriter | Workload::Writers => {
                let (load, blocks) = if w == Workload::OneWriter {
                    (AnnalLoad { threads: 1, per_thread: config.sync }, ONE_WRITER_BLOCKS)
                } else {
                    let load = AnnalLoad { threads: config.threads, per_thread: config.per_thread };
                    (load, WRITERS_BLOCKS)
                };
                let (b, a) =
                    in_scratch(|d| interleaved_sync(d, config.sync, load, blocks, annal_first))?;
                series.baseline_flushes.require(
                    "baseline pwrite + fdatasync",
                    b.flushes,
                    b.records,
                )?;
                // Each thread has one append in flight, so one fdatasync covers at most
                // `threads` appends.
                let least = a.records.div_ceil(load.threads as u64);
                series.annal_flushes.require("annal Sync appends", a.flushes, least)?;
                series.annal_flushes.records += a.records;
                series.annal_flushes.elapsed += a.elapsed;
                series.baseline_flushes.records += b.records;
                series.baseline_flushes.elapsed += b.elapsed;
                series.push_durable(b, a);
            }
            Workload::Bulk => {
                let bytes = framed_bytes(config.bulk);
                let (b, a) = pair(
                    annal_first,
                    || in_scratch(|d| raw_sequential_write(d, bytes)),
                    || in_scratch(|d| annal_bulk(d, config.bulk)),
                )?;
                series.baseline_flushes.require("baseline sequential write", b.flushes, 1)?;
                series.annal_flushes.require("annal bulk", a.flushes, 1)?;
                series.rounds.push(Round {
                    annal: per_sec(bytes, a.elapsed),
                    baseline: per_sec(bytes, b.elapsed),
                });
                let (chain, _) = chain_only(config.bulk);
                series.chain_ns.push(chain.as_nanos() as f64 / config.bulk as f64);
            }
            Workload::Scan => {
                let data = scan_data.as_ref().expect("prepared above");
                let scanned = config.scan * u64::from(SCAN_PASSES);
                let (raw, annal) = timed_scans(data, annal_first)?;
                series.rounds.push(Round {
                    annal: per_sec(scanned, annal),
                    baseline: per_sec(scanned, raw),
                });
            }
        }
        if round == 0 {
            eprintln!("{} warm-up round (not counted): {}", w.name(), show(&series));
            series = Series::default();
        } else {
            eprintln!("{} round {round}: {}", w.name(), show(&series));
        }
    }
    Ok(series)
}

fn mib_per_sec(bytes_per_sec: f64) -> String {
    format!("{:.0} MiB/s", bytes_per_sec / (1024.0 * 1024.0))
}

/// The description, figures and target of a workload's row.
struct Row {
    workload: String,
    annal: String,
    baseline: String,
    target: &'static str,
    min_ratio: f64,
}

fn describe(config: &Config, w: Workload, s: &Series) -> Row {
    let n = |x: u64| thousands(x as f64);
    match w {
        Workload::OneWriter => Row {
            workload: format!("1 writer, `Sync`, {} appends of {PAYLOAD_BYTES} B", n(config.sync)),
            annal: format!("{} records/s", thousands(s.median_of(|r| r.annal))),
            baseline: format!(
                "{} records/s (pwrite + fdatasync)",
                thousands(s.median_of(|r| r.baseline))
            ),
            target: "1 writer Sync >= 0.9x baseline records/s",
            min_ratio: 0.9,
        },
        Workload::Writers => Row {
            workload: format!(
                "{} threads x {} appends, `Sync`",
                config.threads,
                n(config.per_thread)
            ),
            annal: format!("{} records/s", thousands(s.median_of(|r| r.annal))),
            baseline: format!(
                "{} records/s (pwrite + fdatasync, {} times)",
                thousands(s.median_of(|r| r.baseline)),
                n(config.sync)
            ),
            target: "16 writers Sync >= 8x baseline records/s",
            min_ratio: 8.0,
        },
        Workload::Bulk => Row {
            workload: format!(
                "bulk: {} appends, `Manual`, one sync ({} B of payload + framing)",
                n(config.bulk),
                n(framed_bytes(config.bulk))
            ),
            annal: format!(
                "{} ({} records/s)",
                mib_per_sec(s.median_of(|r| r.annal)),
                thousands(s.median_of(|r| r.annal) / FRAMED_RECORD_BYTES as f64)
            ),
            baseline: format!(
                "{} (same bytes, 1 MiB writes + fdatasync)",
                mib_per_sec(s.median_of(|r| r.baseline))
            ),
            target: "bulk >= 0.8x sequential write bytes/s",
            min_ratio: 0.8,
        },
        Workload::Scan => Row {
            workload: format!("scan: `read_from(1)` over {} records, page cache", n(config.scan)),
            annal: format!("{} records/s", thousands(s.median_of(|r| r.annal))),
            baseline: format!(
                "{} records/s ({}; fs::read + CRC32 per 144 B)",
                thousands(s.median_of(|r| r.baseline)),
                mib_per_sec(s.median_of(|r| r.baseline) * FRAMED_RECORD_BYTES as f64)
            ),
            target: "scan >= 0.4x raw read + CRC records/s",
            min_ratio: 0.4,
        },
    }
}

/// Prints the tables; returns each target with whether it was met.
fn report(config: &Config, results: &mut [(Workload, Series)]) -> Vec<(&'static str, bool)> {
    println!(
        "| workload | annal (median of rounds) | baseline (median of rounds) | ratio (median of \
         per-round ratios) | per-round ratios | target | result |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut targets = Vec::new();
    for (w, s) in results.iter() {
        let row = describe(config, *w, s);
        let ratio = s.median_ratio();
        let met = ratio >= row.min_ratio;
        let each: Vec<String> = s.rounds.iter().map(|r| format!("{:.2}", r.ratio())).collect();
        println!(
            "| {} | {} | {} | **{ratio:.2}x** | {} | >= {}x | {} |",
            row.workload,
            row.annal,
            row.baseline,
            each.join(", "),
            row.min_ratio,
            if met { "met" } else { "**missed**" }
        );
        targets.push((row.target, met));
    }
    println!();

    let durable: Vec<_> = results
        .iter_mut()
        .filter(|(w, _)| matches!(w, Workload::OneWriter | Workload::Writers))
        .collect();
    if !durable.is_empty() {
        println!(
            "| latency of one durable append ({} rounds) | samples | p50 | p99 | p99.9 | max |",
            config.rounds
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        let mut baseline_done = false;
        for (w, s) in durable {
            if !baseline_done {
                print_latency("baseline: pwrite + fdatasync", &mut s.baseline_latencies);
                baseline_done = true;
            }
            let name = if *w == Workload::OneWriter {
                "annal, 1 writer, `Sync`".to_string()
            } else {
                format!("annal, {} writers, `Sync` (every append of every thread)", config.threads)
            };
            print_latency(&name, &mut s.annal_latencies);
        }
        println!();
    }

    if let Some((_, s)) =
        results.iter().find(|(w, s)| *w == Workload::Bulk && !s.chain_ns.is_empty())
    {
        // At 0.8x, a record may take the baseline's time per record / 0.8, everything included.
        let budget = 1e9 * FRAMED_RECORD_BYTES as f64 / (0.8 * s.median_of(|r| r.baseline));
        let chain = median(&s.chain_ns);
        println!(
            "Bulk budget: at 0.8x of the baseline, an append may take {budget:.0} ns a record, \
             everything included. The audit hash chain alone (`chain_next` over the same \
             records, no framing and no I/O, timed after each round) took {chain:.0} ns a record \
             (medians of rounds): {:.2}x that whole budget.",
            chain / budget
        );
        println!();
    }

    println!("Disk cache flushes completed during each round's run (by any process):");
    println!();
    for (w, s) in results.iter() {
        for (side, f) in [("annal", &s.annal_flushes), ("baseline", &s.baseline_flushes)] {
            if f.seen.is_empty() {
                continue;
            }
            let seen: Vec<String> = f
                .seen
                .iter()
                .map(|x| x.map_or_else(|| "unknown".to_string(), |x| thousands(x as f64)))
                .collect();
            let total: u64 = f.seen.iter().flatten().sum();
            let per_flush = if f.records > 0 && total > 0 && f.seen.iter().all(Option::is_some) {
                format!(
                    "; {:.1} appends and {} per flush",
                    f.records as f64 / total as f64,
                    micros(f.elapsed / u32::try_from(total).unwrap_or(u32::MAX))
                )
            } else {
                String::new()
            };
            println!(
                "- {} {side}: {} (at least {} required){per_flush}",
                w.name(),
                seen.join(", "),
                thousands(f.least as f64)
            );
        }
    }
    println!();
    targets
}

fn print_latency(name: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        return;
    }
    let p = percentiles(samples);
    println!(
        "| {name} | {} | {} | {} | {} | {} |",
        thousands(p.count as f64),
        micros(p.p50),
        micros(p.p99),
        micros(p.p999),
        micros(p.max)
    );
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
                    format!("--only takes sync1, threads, bulk or scan, not {name:?}")
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
            eprintln!("wal_targets: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "annal WAL targets: {} rounds, {PAYLOAD_BYTES} B payloads ({FRAMED_RECORD_BYTES} B \
         framed){}, scratch under {}",
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
                eprintln!("wal_targets: {}: {e}", w.name());
                return ExitCode::from(2);
            }
        }
    }
    let targets = report(&config, &mut results);
    for (name, met) in &targets {
        println!("- {name}: {}", if *met { "met" } else { "MISSED" });
    }
    println!("\nran in {:.1} s", started.elapsed().as_secs_f64());
    if targets.iter().all(|(_, met)| *met) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
