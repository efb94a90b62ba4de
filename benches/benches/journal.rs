//! Criterion benchmarks of the annal journal on the real disk, in events per second
//! (`Throughput::Elements`):
//!
//! - `fold`: reading a journal of 1M task events (150 bytes of MessagePack data each) from the
//!   page cache: the WAL's records alone (`wal_scan`), with each envelope parsed (`parse`), with
//!   each event's data decoded too (`decode`), and `Journal::replay` of a projection summing
//!   minutes per actor (`replay`);
//! - `append`: durable (`Sync`) appends of one task event, through `Journal::append` (typed
//!   event, `Expect::Any`, 4 streams, a live projection) and, as the baseline, `Log::append` of
//!   the same envelope bytes encoded beforehand, by one thread and by 16 threads (each
//!   iteration is 16 x 4 appends, so the group commit can batch them).
//!
//! Scratch directories go under `$ANNAL_BENCH_DIR`, else the system temp directory.
//! `cargo run --release -p annal-benches --bin journal_targets` runs the same workloads with
//! fixed counts, interleaved with their baselines, and checks the performance targets.

use std::time::Duration;

use annal::Journal;
use annal::wal::Log;
use annal_benches::journal::{
    FoldPass, MinutesByActor, append_numbers, expected_totals, fold_pass, journal_append,
    journal_work, prepare_fold, run_appenders, verify_appended, wal_append, wal_work,
};
use annal_benches::{scratch_dir, settle, sync_options};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const FOLD_EVENTS: u64 = 1_000_000;
const THREADS: usize = 16;
const APPENDS_PER_THREAD_PER_ITER: u64 = 4;
/// Spacing of the event numbers of different threads, above any count appended here.
const STRIDE: u64 = 1 << 32;

fn fold(c: &mut Criterion) {
    let data = prepare_fold(FOLD_EVENTS).expect("fold journal");
    let mut group = c.benchmark_group("fold");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(FOLD_EVENTS));
    for pass in FoldPass::ALL {
        group.bench_function(pass.name(), |b| {
            b.iter(|| fold_pass(&data, pass).expect("fold pass"));
        });
    }
    group.finish();
}

/// Which log the appends go to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Wal,
    Journal,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::Wal => "wal",
            Self::Journal => "journal",
        }
    }
}

/// Benchmarks `threads` threads appending `per_iter` events each per iteration to a new log of
/// `side`, then checks that the log holds every event.
fn bench_appends(c: &mut Criterion, side: Side, threads: usize, per_iter: u64) {
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(threads as u64 * per_iter));
    let dir = scratch_dir().expect("scratch directory");
    let log = Log::open(dir.path().join("wal"), sync_options()).expect("open log");
    let journal = Journal::options()
        .projection::<MinutesByActor>()
        .open(dir.path().join("journal"))
        .expect("open journal");
    settle();
    let mut next = 0;
    let writers = if threads == 1 { "1_writer".to_string() } else { format!("{threads}_writers") };
    group.bench_function(BenchmarkId::new(side.name(), writers), |b| {
        b.iter_custom(|iters| {
            let range = next..next + iters * per_iter;
            next = range.end;
            let (elapsed, _) = match side {
                Side::Wal => {
                    let work = wal_work(threads, STRIDE, &range).expect("payloads");
                    run_appenders(work, |payload| wal_append(&log, payload))
                }
                Side::Journal => {
                    let work = journal_work(threads, STRIDE, &range);
                    run_appenders(work, |item| journal_append(&journal, item))
                }
            }
            .expect("appends");
            elapsed
        });
    });
    group.finish();
    let totals = expected_totals(append_numbers(threads, STRIDE, 0..next));
    let records = threads as u64 * next;
    match side {
        Side::Wal => verify_appended(
            (log.last_seq(), log.durable_seq(), log.read_from(1)),
            records,
            &totals,
            false,
        ),
        Side::Journal => {
            let view = journal.log();
            verify_appended(
                (view.last_seq(), view.durable_seq(), view.read_from(1)),
                records,
                &totals,
                true,
            )
        }
    }
    .expect("the log holds the appends");
}

fn append(c: &mut Criterion) {
    for side in [Side::Wal, Side::Journal] {
        bench_appends(c, side, 1, 1);
    }
    for side in [Side::Wal, Side::Journal] {
        bench_appends(c, side, THREADS, APPENDS_PER_THREAD_PER_ITER);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = journal;
    config = config();
    targets = fold, append
}
criterion_main!(journal);
