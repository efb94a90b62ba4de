//! Criterion benchmarks of compaction and opening of the annal journal on the real disk:
//!
//! - `open`: `Journal::options().projection::<Counts>().open(dir)` of stores of 10,000, 100,000
//!   and 1,000,000 task events (open time against log size; 150 bytes of MessagePack data
//!   each, 1,000 streams, written with `Manual` durability and one sync), page cache warm,
//!   without a snapshot (`without_snapshot`, the baseline: every event folded), and of a second
//!   such store after a final `compact()` with `keep_snapshots(1)` (`with_snapshot`);
//! - `replay_until`: `journal.replay::<Counts>(Until::Seq(900,000 + d))` on a store of 1,000,000
//!   events compacted every 100,000 (`keep_snapshots(20)`, so the log is kept), for distances `d`
//!   past the snapshot at 900,000, beside the replay from the log start to 999,000
//!   (`from_start`);
//! - `compact`: `journal.compact()` with `keep_snapshots(1)` after 1,000 more events (appended
//!   outside the timed part).
//!
//! Scratch directories go under `$ANNAL_BENCH_DIR`, else the system temp directory.
//! `cargo run --release -p annal-benches --bin compaction_targets` runs the same workloads over
//! more store sizes and distances, with the page cache dropped too, and checks the targets.

use std::time::{Duration, Instant};

use annal::{Counts, Durability, Expect, Journal};
use annal_benches::compaction::{
    STREAMS, expected_counts, prepare_replay, replay_from_start, replay_until, timed_compact,
    timed_open, write_store,
};
use annal_benches::journal::{stream_name, task};
use annal_benches::{scratch_dir, settle};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Store sizes of the open benchmark: open time against log size.
const OPEN_EVENTS: [u64; 3] = [10_000, 100_000, 1_000_000];
const REPLAY_EVENTS: u64 = 1_000_000;
const REPLAY_EVERY: u64 = 100_000;
const REPLAY_BASE: u64 = 900_000;
const COMPACT_EVERY: u64 = 1_000;

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    for events in OPEN_EVENTS {
        let without = write_store(events, None, 1).expect("store");
        let with = write_store(events, None, 1).expect("store");
        timed_compact(&with, 1).expect("final compaction");
        settle();
        for (name, store) in [("without_snapshot", &without), ("with_snapshot", &with)] {
            group.bench_function(BenchmarkId::new(name, events), |b| {
                b.iter_custom(|iters| {
                    (0..iters).map(|_| timed_open(store).expect("open").elapsed).sum::<Duration>()
                });
            });
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let data = prepare_replay(REPLAY_EVENTS, REPLAY_EVERY, 20).expect("replay store");
    let mut group = c.benchmark_group("replay_until");
    group.measurement_time(Duration::from_secs(5));
    for distance in [0, 10_000, 99_000] {
        group.bench_function(BenchmarkId::new("from_snapshot", distance), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| replay_until(&data, REPLAY_BASE + distance).expect("replay"))
                    .sum::<Duration>()
            });
        });
    }
    group.bench_function(BenchmarkId::new("from_start", REPLAY_BASE + 99_000), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| replay_from_start(&data, REPLAY_BASE + 99_000).expect("replay"))
                .sum::<Duration>()
        });
    });
    group.finish();
}

fn compact(c: &mut Criterion) {
    let dir = scratch_dir().expect("scratch directory");
    let journal = Journal::options()
        .projection::<Counts>()
        .durability(Durability::Manual)
        .keep_snapshots(1)
        .open(dir.path().join("journal"))
        .expect("open journal");
    settle();
    let mut next = 0;
    let mut group = c.benchmark_group("compact");
    group.bench_function(BenchmarkId::new("keep_1_after", COMPACT_EVERY), |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                for n in next..next + COMPACT_EVERY {
                    journal
                        .append(&stream_name(n % STREAMS), Expect::Any, [task(n)])
                        .expect("append");
                }
                next += COMPACT_EVERY;
                journal.sync().expect("sync");
                let start = Instant::now();
                let report = journal.compact().expect("compact");
                elapsed += start.elapsed();
                assert_eq!(report.seq, next, "the compaction stands at the last event");
            }
            elapsed
        });
    });
    group.finish();
    assert_eq!(journal.state::<Counts>().expect("state"), expected_counts(next));
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = compaction;
    config = config();
    targets = open, replay, compact
}
criterion_main!(compaction);
