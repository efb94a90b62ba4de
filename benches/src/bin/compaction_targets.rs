//! Measures compaction and opening of the annal journal against their targets and prints
//! markdown tables:
//!
//! | workload | compared with | target |
//! | --- | --- | --- |
//! | `Journal::options().projection::<Counts>().open(dir)` on stores of 10k, 100k, 1M and 10M task events with a final snapshot, page cache warm | the same stores without the snapshot; the smallest store | with a snapshot, every store opens within 2x of the smallest |
//! | `journal.replay::<Counts>(Until::Seq(s))` on a 1M-event store compacted every 100k events (`keep_snapshots(20)`, log kept), `s` 0, 1k, 10k, 50k and 99k past the snapshots at 100k, 500k and 900k | the same replays from the log start | the time at a given distance past the snapshot at 900k is within 2x of that past the snapshot at 100k |
//! | `journal.compact()` of a 1M-event store with `keep_snapshots(1)` | - | none: seconds, snapshot bytes written, segments removed, bytes reclaimed |
//!
//! Stores are task events (150 B of MessagePack data each) over 1,000 streams, one event per
//! append, written with `Durability::Manual` and one sync; a store "with a final snapshot" holds
//! the same events, written again, then compacted with `keep_snapshots(1)`. Opens alternate
//! between the two stores, after one warm-up open of each that is not counted; figures are
//! medians of `--rounds` opens (default 5). One more store, not judged, holds 4 full segments
//! and as many events again as the smallest store, so that its active segment is the smallest
//! store's. With the page cache dropped (`sync; echo 3 >
//! /proc/sys/vm/drop_caches`, which needs root) each store is also opened 3 times cold
//! (`--no-cold` skips this). The replays are measured 3 times per point per round and each
//! round in another order; figures are medians of the rounds' medians. Compaction runs on a new
//! store each round, after a warm-up round that is not counted. A store size for which the
//! scratch file system lacks room is skipped and said so. `--quick` divides every count by 10,
//! `--max-events N` leaves out the stores above N events, `--only` runs one workload. Exits 0
//! if every target run is met, 1 if one is missed, 2 on an error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use annal_benches::compaction::{
    CompactRun, OpenRun, ReplayStore, STREAMS, Store, available_bytes, drop_caches, prepare_replay,
    replay_from_start, replay_until, timed_compact, timed_open, write_store,
};
use annal_benches::journal::{DATA_BYTES, EVENT_PAYLOAD_BYTES};
use annal_benches::table::{list, thousands as thousands_f};
use annal_benches::{BenchResult, median, per_sec, scratch_root, settle};

const USAGE: &str = "usage: compaction_targets [--quick] [--rounds N] [--only open|replay|compact]
                          [--max-events N] [--no-cold]

Runs the compaction and open workloads, N rounds each (default 5), prints markdown tables and
checks the targets; exits 0 if all are met, 1 if one is missed, 2 on an error. --quick divides
every count by 10. --max-events N leaves out the open stores above N events. --no-cold skips the
opens after dropping the page cache. Scratch files go under $ANNAL_BENCH_DIR (default: the
system temp directory).";

/// Rounds without `--rounds`.
const DEFAULT_ROUNDS: usize = 5;
/// Opens of each store with the page cache dropped.
const COLD_OPENS: usize = 3;
/// Replays of each point per round.
const REPLAY_REPS: usize = 3;
/// Largest ratio of a with-snapshot open to the smallest store's.
const OPEN_TARGET: f64 = 2.0;
/// Largest ratio of a replay past the last base snapshot to the same replay past the first.
const REPLAY_TARGET: f64 = 2.0;
/// Snapshots kept by the replay store: more than it makes, so the log is kept.
const REPLAY_KEEP: usize = 20;
/// Bytes a segment file takes per event (239 B framed) with room for index blocks, rounded up.
const SEGMENT_BYTES_PER_EVENT: u64 = 250;
/// Full segments of the store whose active segment is the smallest store's.
const DIAGNOSTIC_SEGMENTS: u64 = 4;
/// Room left free on the scratch file system besides the stores.
const SPARE_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Open,
    Replay,
    Compact,
}

impl Workload {
    const ALL: [Self; 3] = [Self::Open, Self::Replay, Self::Compact];

    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Replay => "replay",
            Self::Compact => "compact",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    rounds: usize,
    quick: bool,
    cold: bool,
    workloads: Vec<Workload>,
    open_sizes: Vec<u64>,
    replay_events: u64,
    replay_every: u64,
    replay_bases: Vec<u64>,
    distances: Vec<u64>,
    compact_events: u64,
}

impl Config {
    fn new(quick: bool, rounds: usize, cold: bool, max_events: u64, w: Vec<Workload>) -> Self {
        let scale = if quick { 10 } else { 1 };
        Self {
            rounds,
            quick,
            cold,
            workloads: w,
            open_sizes: [10_000, 100_000, 1_000_000, 10_000_000]
                .into_iter()
                .map(|n| n / scale)
                .filter(|&n| n <= max_events)
                .collect(),
            replay_events: 1_000_000 / scale,
            replay_every: 100_000 / scale,
            replay_bases: [100_000, 500_000, 900_000].into_iter().map(|n| n / scale).collect(),
            distances: [0, 1_000, 10_000, 50_000, 99_000].into_iter().map(|n| n / scale).collect(),
            compact_events: 1_000_000 / scale,
        }
    }
}

// ---- formatting ----------------------------------------------------------------------------

/// `n` with thousands separators.
fn thousands(n: u64) -> String {
    thousands_f(n as f64)
}

fn secs(d: f64) -> String {
    if d < 1e-3 {
        format!("{:.0} µs", d * 1e6)
    } else if d < 1.0 {
        format!("{:.1} ms", d * 1e3)
    } else {
        format!("{d:.2} s")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn median_secs(runs: impl IntoIterator<Item = Duration>) -> f64 {
    median(&runs.into_iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>())
}

fn flushes(values: impl IntoIterator<Item = Option<u64>>) -> String {
    list(values.into_iter().map(|f| f.map_or_else(|| "unknown".into(), thousands)))
}

// ---- opening -------------------------------------------------------------------------------

/// The opens of one store size.
#[derive(Debug)]
struct OpenSize {
    events: u64,
    /// Not judged: a store whose active segment holds as many records as the smallest store.
    diagnostic: Option<String>,
    written: Duration,
    /// Compacting the copy that becomes the store with a final snapshot.
    compact: CompactRun,
    without: Vec<OpenRun>,
    with: Vec<OpenRun>,
    cold_without: Vec<OpenRun>,
    cold_with: Vec<OpenRun>,
}

#[derive(Debug, Default)]
struct OpenSeries {
    sizes: Vec<OpenSize>,
    skipped: Vec<(u64, String)>,
    /// Why the cold opens were not made, if they were not.
    cold_skipped: Option<String>,
}

fn open_size(
    config: &Config,
    events: u64,
    diagnostic: Option<String>,
    series: &mut OpenSeries,
) -> BenchResult<()> {
    let need = 2 * events * SEGMENT_BYTES_PER_EVENT + SPARE_BYTES;
    let root = scratch_root();
    if let Some(avail) = available_bytes(&root)
        && avail < need
    {
        let why = format!(
            "needs about {} free under {}, {} available",
            mib(need),
            root.display(),
            mib(avail)
        );
        eprintln!("open: skipping {} events: {why}", thousands(events));
        series.skipped.push((events, why));
        return Ok(());
    }
    eprintln!("open: writing {} events", thousands(events));
    let without = write_store(events, None, 1)?;
    eprintln!(
        "open: written in {:.2} s ({:.0} events/s); writing them again and compacting that store",
        without.written.as_secs_f64(),
        per_sec(events, without.written)
    );
    let with = write_store(events, None, 1)?;
    let compact = timed_compact(&with, 1)?;
    settle();
    let mut size = OpenSize {
        events,
        diagnostic,
        written: without.written,
        compact,
        without: Vec::new(),
        with: Vec::new(),
        cold_without: Vec::new(),
        cold_with: Vec::new(),
    };
    let pair = |round: usize| -> [(&Store, bool); 2] {
        if round.is_multiple_of(2) {
            [(&without, false), (&with, true)]
        } else {
            [(&with, true), (&without, false)]
        }
    };
    for (store, _) in pair(0) {
        timed_open(store)?;
    }
    for round in 0..config.rounds {
        for (store, snapshot) in pair(round) {
            let run = timed_open(store)?;
            if snapshot { size.with.push(run) } else { size.without.push(run) }
        }
        eprintln!(
            "open {} events, round {}: without snapshot {}, with {}",
            thousands(events),
            round + 1,
            secs(size.without.last().map_or(0.0, |r| r.elapsed.as_secs_f64())),
            secs(size.with.last().map_or(0.0, |r| r.elapsed.as_secs_f64())),
        );
    }
    if config.cold && series.cold_skipped.is_none() {
        'cold: for round in 0..COLD_OPENS {
            for (store, snapshot) in pair(round) {
                if let Err(why) = drop_caches() {
                    eprintln!("open: cannot drop the page cache: {why}");
                    series.cold_skipped = Some(why);
                    break 'cold;
                }
                let run = timed_open(store)?;
                eprintln!(
                    "open {} events, cold, {}: {}",
                    thousands(events),
                    if snapshot { "with snapshot" } else { "without snapshot" },
                    secs(run.elapsed.as_secs_f64())
                );
                if snapshot { size.cold_with.push(run) } else { size.cold_without.push(run) }
            }
        }
    }
    series.sizes.push(size);
    Ok(())
}

fn run_open(config: &Config) -> BenchResult<OpenSeries> {
    let mut series = OpenSeries::default();
    if !config.cold {
        series.cold_skipped = Some("--no-cold".into());
    }
    for &events in &config.open_sizes {
        open_size(config, events, None, &mut series)?;
    }
    // A store of several full segments plus as many records as the smallest store: its active
    // segment, all that an open with a final snapshot reads, is the smallest store's.
    let smallest = config.open_sizes.first().copied();
    let per_segment = series
        .sizes
        .iter()
        .map(|s| &s.without[0].shape)
        .find(|shape| shape.segments > 1)
        .map(|shape| shape.first_segment_records);
    if let (Some(smallest), Some(per_segment)) = (smallest, per_segment) {
        let full = DIAGNOSTIC_SEGMENTS;
        let why = format!(
            "{full} full segments of {} + {}, not judged",
            thousands(per_segment),
            thousands(smallest)
        );
        open_size(config, full * per_segment + smallest, Some(why), &mut series)?;
    }
    Ok(series)
}

fn events_cell(s: &OpenSize) -> String {
    match &s.diagnostic {
        Some(why) => format!("{} ({why})", thousands(s.events)),
        None => thousands(s.events),
    }
}

/// Ratios of each size's with-snapshot warm open to the smallest size's.
fn open_ratios(series: &OpenSeries) -> Vec<(u64, f64)> {
    let Some(first) = series.sizes.first() else { return Vec::new() };
    let base = median_secs(first.with.iter().map(|r| r.elapsed));
    series
        .sizes
        .iter()
        .map(|s| (s.events, median_secs(s.with.iter().map(|r| r.elapsed)) / base))
        .collect()
}

fn print_open(config: &Config, series: &OpenSeries) -> Option<(String, bool)> {
    let first = series.sizes.first()?;
    let ratios = open_ratios(series);
    println!(
        "| events | segments without / with snapshot | records in the active segment | open \
         without snapshot (median of {n}) | open with final snapshot (median of {n}) | without / \
         with | with snapshot / {} events with snapshot | each open without; with (ms) |",
        thousands(first.events),
        n = config.rounds
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (s, (_, ratio)) in series.sizes.iter().zip(&ratios) {
        let without = median_secs(s.without.iter().map(|r| r.elapsed));
        let with = median_secs(s.with.iter().map(|r| r.elapsed));
        let shape_without = s.without.first().map(|r| r.shape).unwrap_or_default();
        let shape_with = s.with.first().map(|r| r.shape).unwrap_or_default();
        let each = |runs: &[OpenRun]| {
            list(runs.iter().map(|r| format!("{:.1}", r.elapsed.as_secs_f64() * 1e3)))
        };
        println!(
            "| {} | {} / {} | {} | {} | {} | {:.1}x | **{ratio:.2}x** | {}; {} |",
            events_cell(s),
            shape_without.segments,
            shape_with.segments,
            thousands(shape_with.active_records),
            secs(without),
            secs(with),
            without / with,
            each(&s.without),
            each(&s.with),
        );
    }
    println!();
    match &series.cold_skipped {
        Some(why) if series.sizes.iter().all(|s| s.cold_with.is_empty()) => {
            println!("No open was made with the page cache dropped: {why}.");
        }
        _ => {
            println!(
                "| events | first open after `sync; echo 3 > /proc/sys/vm/drop_caches`, without \
                 snapshot (median of {COLD_OPENS}) | with final snapshot (median of {COLD_OPENS}) \
                 | without / with | each cold open without; with (ms) |"
            );
            println!("| --- | --- | --- | --- | --- |");
            for s in series.sizes.iter().filter(|s| !s.cold_with.is_empty()) {
                let without = median_secs(s.cold_without.iter().map(|r| r.elapsed));
                let with = median_secs(s.cold_with.iter().map(|r| r.elapsed));
                let each = |runs: &[OpenRun]| {
                    list(runs.iter().map(|r| format!("{:.1}", r.elapsed.as_secs_f64() * 1e3)))
                };
                println!(
                    "| {} | {} | {} | {:.1}x | {}; {} |",
                    events_cell(s),
                    secs(without),
                    secs(with),
                    without / with,
                    each(&s.cold_without),
                    each(&s.cold_with)
                );
            }
        }
    }
    println!();
    println!(
        "| events | store written in | without snapshot: segment bytes | final `compact()` \
         (`keep_snapshots(1)`) | snapshot bytes written | segments removed | bytes reclaimed | \
         with snapshot: segment bytes | disk flushes (any process): compact; least of the warm \
         opens without; with |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for s in &series.sizes {
        let c = &s.compact;
        println!(
            "| {} | {:.2} s ({} events/s) | {} | {} | {} B | {} | {} B ({}) | {} | {}; {}; {} |",
            events_cell(s),
            s.written.as_secs_f64(),
            thousands_f(per_sec(s.events, s.written)),
            mib(c.before.segment_bytes),
            secs(c.elapsed.as_secs_f64()),
            thousands(c.snapshot_bytes_written),
            c.report.segments_removed.len(),
            thousands(c.report.bytes_reclaimed),
            mib(c.report.bytes_reclaimed),
            mib(c.after.segment_bytes),
            flushes([c.flushes]),
            flushes([s.without.iter().filter_map(|r| r.flushes).min()]),
            flushes([s.with.iter().filter_map(|r| r.flushes).min()]),
        );
    }
    println!();
    for (events, why) in &series.skipped {
        println!("- {} events: not measured, {why}", thousands(*events));
    }
    let judged: Vec<(u64, f64)> = series
        .sizes
        .iter()
        .zip(&ratios)
        .filter(|(s, _)| s.diagnostic.is_none())
        .map(|(_, r)| *r)
        .collect();
    let worst = judged.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    let largest = judged.last().map_or(0, |(e, _)| *e);
    Some((
        format!(
            "open with a final snapshot flat in log size: every store ({} to {} events) within \
             {OPEN_TARGET}x of the smallest (worst {worst:.2}x)",
            thousands(first.events),
            thousands(largest)
        ),
        worst <= OPEN_TARGET,
    ))
}

// ---- replaying -----------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ReplaySeries {
    written: Duration,
    /// Per (base, distance): the median of each round.
    from_snapshot: Vec<((u64, u64), Vec<Duration>)>,
    /// Per (base, distance): one replay from the log start each round.
    from_start: Vec<((u64, u64), Vec<Duration>)>,
}

fn run_replay(config: &Config) -> BenchResult<ReplaySeries> {
    eprintln!(
        "replay: writing {} events, compacting every {}",
        thousands(config.replay_events),
        thousands(config.replay_every)
    );
    let data: ReplayStore = prepare_replay(config.replay_events, config.replay_every, REPLAY_KEEP)?;
    let points: Vec<(u64, u64)> = config
        .replay_bases
        .iter()
        .flat_map(|&b| config.distances.iter().map(move |&d| (b, d)))
        .collect();
    for &(base, _) in &points {
        if !data.snapshots.contains(&base) {
            return Err(format!("no snapshot at {base}: {:?}", data.snapshots).into());
        }
    }
    let baseline_points: Vec<(u64, u64)> = points
        .iter()
        .copied()
        .filter(|(b, _)| {
            Some(b) == config.replay_bases.first() || Some(b) == config.replay_bases.last()
        })
        .collect();
    let mut series = ReplaySeries {
        written: data.store.written,
        from_snapshot: points.iter().map(|&p| (p, Vec::new())).collect(),
        from_start: baseline_points.iter().map(|&p| (p, Vec::new())).collect(),
    };
    for round in 0..=config.rounds {
        let mut medians = vec![Duration::ZERO; points.len()];
        let mut reps = vec![Vec::with_capacity(REPLAY_REPS); points.len()];
        for rep in 0..REPLAY_REPS {
            for k in 0..points.len() {
                let i = (k + rep + round) % points.len();
                let (base, distance) = points[i];
                reps[i].push(replay_until(&data, base + distance)?);
            }
        }
        for (m, r) in medians.iter_mut().zip(&reps) {
            *m = Duration::from_secs_f64(median_secs(r.iter().copied()));
        }
        let mut starts = Vec::with_capacity(baseline_points.len());
        for k in 0..baseline_points.len() {
            let i = (k + round) % baseline_points.len();
            let (base, distance) = baseline_points[i];
            starts.push((i, replay_from_start(&data, base + distance)?));
        }
        if round == 0 {
            eprintln!("replay warm-up round (not counted)");
            continue;
        }
        for (i, m) in medians.into_iter().enumerate() {
            series.from_snapshot[i].1.push(m);
        }
        for (i, d) in starts {
            series.from_start[i].1.push(d);
        }
        eprintln!("replay round {round}");
    }
    Ok(series)
}

fn replay_median(runs: &[((u64, u64), Vec<Duration>)], point: (u64, u64)) -> Option<f64> {
    runs.iter().find(|(p, _)| *p == point).map(|(_, r)| median_secs(r.iter().copied()))
}

fn print_replay(config: &Config, series: &ReplaySeries) -> Option<(String, bool)> {
    let (first, last) = (*config.replay_bases.first()?, *config.replay_bases.last()?);
    print!("| events past the snapshot |");
    for b in &config.replay_bases {
        print!(" `Until::Seq({} + d)` from the snapshot at {} |", thousands(*b), thousands(*b));
    }
    println!(
        " {} / {} | from the log start to {} + d (baseline) | from the log start to {} + d \
         (baseline) |",
        thousands(last),
        thousands(first),
        thousands(first),
        thousands(last)
    );
    println!("| --- |{} --- | --- | --- |", " --- |".repeat(config.replay_bases.len()));
    let mut worst: f64 = 0.0;
    for &d in &config.distances {
        print!("| {} |", thousands(d));
        for &b in &config.replay_bases {
            print!(" {} |", replay_median(&series.from_snapshot, (b, d)).map_or("-".into(), secs));
        }
        let ratio = replay_median(&series.from_snapshot, (last, d))?
            / replay_median(&series.from_snapshot, (first, d))?;
        worst = worst.max(ratio);
        println!(
            " **{ratio:.2}x** | {} | {} |",
            replay_median(&series.from_start, (first, d)).map_or("-".into(), secs),
            replay_median(&series.from_start, (last, d)).map_or("-".into(), secs),
        );
    }
    println!();
    let far = *config.distances.last()?;
    let near = *config.distances.first()?;
    if let (Some(t_far), Some(t_near)) = (
        replay_median(&series.from_snapshot, (last, far)),
        replay_median(&series.from_snapshot, (last, near)),
    ) {
        println!(
            "Past the snapshot at {}: {} for {} events more than at distance {}, {:.0} ns per \
             event. The store ({} events, a snapshot every {}, `keep_snapshots({REPLAY_KEEP})`) \
             was written in {:.2} s.",
            thousands(last),
            secs(t_far - t_near),
            thousands(far - near),
            thousands(near),
            (t_far - t_near) / (far - near) as f64 * 1e9,
            thousands(config.replay_events),
            thousands(config.replay_every),
            series.written.as_secs_f64()
        );
        println!();
    }
    Some((
        format!(
            "replay to a sequence number grows with its distance from the snapshot, not its \
             position: past the snapshot at {} within {REPLAY_TARGET}x of past the one at {} \
             (worst {worst:.2}x)",
            thousands(last),
            thousands(first)
        ),
        worst <= REPLAY_TARGET,
    ))
}

// ---- compacting ----------------------------------------------------------------------------

fn run_compact(config: &Config) -> BenchResult<Vec<(Duration, CompactRun)>> {
    let mut runs = Vec::new();
    for round in 0..=config.rounds {
        let store = write_store(config.compact_events, None, 1)?;
        let run = timed_compact(&store, 1)?;
        eprintln!(
            "compact {}: {} ({} segments removed)",
            if round == 0 {
                "warm-up round (not counted)".to_string()
            } else {
                format!("round {round}")
            },
            secs(run.elapsed.as_secs_f64()),
            run.report.segments_removed.len()
        );
        if round > 0 {
            runs.push((store.written, run));
        }
    }
    Ok(runs)
}

fn print_compact(config: &Config, runs: &[(Duration, CompactRun)]) {
    if runs.is_empty() {
        return;
    }
    println!(
        "| `compact()` of {} events, `keep_snapshots(1)` | seconds | snapshot bytes written | \
         segments removed | bytes reclaimed | segment bytes before / after | disk flushes | store \
         written in |",
        thousands(config.compact_events)
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, (written, c)) in runs.iter().enumerate() {
        println!(
            "| round {} | {:.4} | {} | {} | {} ({}) | {} / {} | {} | {:.2} s |",
            i + 1,
            c.elapsed.as_secs_f64(),
            thousands(c.snapshot_bytes_written),
            c.report.segments_removed.len(),
            thousands(c.report.bytes_reclaimed),
            mib(c.report.bytes_reclaimed),
            mib(c.before.segment_bytes),
            mib(c.after.segment_bytes),
            flushes([c.flushes]),
            written.as_secs_f64()
        );
    }
    let m = median_secs(runs.iter().map(|(_, c)| c.elapsed));
    println!("| **median** | **{m:.4}** | | | | | | |");
    println!();
    if let Some((_, c)) = runs.first() {
        println!(
            "Snapshots written: {} ({} streams in each projection's state).",
            list(c.snapshot_files.iter().map(|(p, len)| {
                let parts: Vec<_> = p.iter().rev().take(2).map(|n| n.to_string_lossy()).collect();
                let name = parts.into_iter().rev().collect::<Vec<_>>().join("/");
                format!("{name} ({} B)", thousands(*len))
            })),
            thousands(STREAMS)
        );
        println!();
    }
}

// ---- main ----------------------------------------------------------------------------------

fn parse_args() -> Result<Option<Config>, String> {
    let mut quick = false;
    let mut cold = true;
    let mut rounds = DEFAULT_ROUNDS;
    let mut max_events = u64::MAX;
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
            "--no-cold" => cold = false,
            "--rounds" => {
                rounds = usize::try_from(positive(args.next(), "--rounds")?)
                    .map_err(|e| e.to_string())?;
            }
            "--max-events" => max_events = positive(args.next(), "--max-events")?,
            "--only" => {
                let name = args.next().unwrap_or_default();
                let w = Workload::ALL
                    .into_iter()
                    .find(|w| w.name() == name)
                    .ok_or_else(|| format!("--only takes open, replay or compact, not {name:?}"))?;
                workloads = vec![w];
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Config::new(quick, rounds, cold, max_events, workloads)))
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("compaction_targets: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "annal compaction and open targets: {} rounds, task events of {DATA_BYTES} B of data \
         ({EVENT_PAYLOAD_BYTES} B payloads) over {} streams{}, scratch under {}",
        config.rounds,
        thousands(STREAMS),
        if config.quick { ", --quick (counts / 10)" } else { "" },
        scratch_root().display()
    );
    println!();
    let started = Instant::now();
    let mut targets = Vec::new();
    for &w in &config.workloads {
        let fail = |e: annal_benches::BenchError| {
            eprintln!("compaction_targets: {}: {e}", w.name());
            ExitCode::from(2)
        };
        match w {
            Workload::Open => match run_open(&config) {
                Ok(series) => targets.extend(print_open(&config, &series)),
                Err(e) => return fail(e),
            },
            Workload::Replay => match run_replay(&config) {
                Ok(series) => targets.extend(print_replay(&config, &series)),
                Err(e) => return fail(e),
            },
            Workload::Compact => match run_compact(&config) {
                Ok(runs) => print_compact(&config, &runs),
                Err(e) => return fail(e),
            },
        }
    }
    for (name, met) in &targets {
        println!("- {name}: {}", if *met { "met" } else { "MISSED" });
    }
    println!("\nran in {:.1} s", started.elapsed().as_secs_f64());
    if targets.iter().all(|(_, met)| *met) { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
