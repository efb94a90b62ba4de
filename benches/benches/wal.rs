//! Criterion benchmarks of the annal WAL on the real disk, each beside its raw baseline, all in
//! records per second (`Throughput::Elements`):
//!
//! - `sync_append`: durable appends of 100-byte records: the baseline (`pwrite` + `fdatasync`
//!   into a file preallocated with `set_len`), one writer on a `Sync` log, and 16 threads on one
//!   `Sync` log (each iteration is 16 x 4 appends, so the group commit can batch them);
//! - `bulk`: 1M records appended with `Durability::Manual` and one final sync, beside writing
//!   the same number of bytes (payload and framing, 144 B a record) in 1 MiB writes and one
//!   `fdatasync`;
//! - `scan`: reading 1M records from the page cache with `read_from(1)`, beside reading the same
//!   segment files whole with `std::fs::read` and a CRC32 of every 144-byte chunk.
//!
//! Scratch directories go under `$ANNAL_BENCH_DIR`, else the system temp directory.
//! `cargo run --release -p annal-benches --bin wal_targets` runs the same workloads with fixed
//! counts and checks the performance targets.

use std::sync::Arc;
use std::time::Duration;

use annal_benches::{
    RawSyncFile, annal_bulk, framed_bytes, in_scratch, payload, prepare_scan, raw_scan,
    raw_sequential_write, scan_log, scratch_dir, settle, spread_appends, sync_options, verify_log,
};
use annal_wal::Log;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

const THREADS: usize = 16;
const APPENDS_PER_THREAD_PER_ITER: u64 = 4;
const BULK_RECORDS: u64 = 1_000_000;
const SCAN_RECORDS: u64 = 1_000_000;
/// Records of the raw sync baseline's file before it wraps to its start.
const RAW_SYNC_CAPACITY: u64 = 1 << 20;

fn sync_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_append");
    group.throughput(Throughput::Elements(1));

    let dir = scratch_dir().expect("scratch directory");
    let mut raw = RawSyncFile::create(dir.path(), RAW_SYNC_CAPACITY).expect("raw file");
    settle();
    group.bench_function("baseline_pwrite_fdatasync", |b| {
        b.iter(|| raw.append().expect("pwrite + fdatasync"));
    });
    raw.verify().expect("raw file holds its records");
    drop(raw);
    drop(dir);

    let dir = scratch_dir().expect("scratch directory");
    let log = Log::open(dir.path().join("log"), sync_options()).expect("open log");
    settle();
    let mut appended = 0;
    group.bench_function("annal_1_writer", |b| {
        b.iter(|| {
            appended += 1;
            log.append(&payload(appended)).expect("append")
        });
    });
    verify_log(&log, appended).expect("log holds the appends");
    log.close().expect("close");
    drop(dir);

    let per_iter = THREADS as u64 * APPENDS_PER_THREAD_PER_ITER;
    group.throughput(Throughput::Elements(per_iter));
    let dir = scratch_dir().expect("scratch directory");
    let log = Arc::new(Log::open(dir.path().join("log"), sync_options()).expect("open log"));
    settle();
    let mut appended = 0;
    group.bench_function(BenchmarkId::new("annal_threads", THREADS), |b| {
        b.iter_custom(|iters| {
            let per_thread = iters * APPENDS_PER_THREAD_PER_ITER;
            let (elapsed, _) = spread_appends(&log, THREADS, per_thread).expect("appends");
            appended += THREADS as u64 * per_thread;
            elapsed
        });
    });
    verify_log(&log, appended).expect("log holds the appends");
    drop(log);
    drop(dir);
    group.finish();
}

fn bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk");
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(12));
    group.throughput(Throughput::Elements(BULK_RECORDS));
    group.bench_function("annal_manual_then_sync", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| in_scratch(|d| annal_bulk(d, BULK_RECORDS)).expect("bulk appends").elapsed)
                .sum()
        });
    });
    group.bench_function("baseline_1mib_writes_fdatasync", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    in_scratch(|d| raw_sequential_write(d, framed_bytes(BULK_RECORDS)))
                        .expect("sequential write")
                        .elapsed
                })
                .sum()
        });
    });
    group.finish();
}

fn scan(c: &mut Criterion) {
    let data = prepare_scan(SCAN_RECORDS).expect("scan data");
    let mut group = c.benchmark_group("scan");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(SCAN_RECORDS));
    group.bench_function("annal_read_from", |b| {
        b.iter(|| scan_log(&data.log, SCAN_RECORDS).expect("scan"));
    });
    group.bench_function("baseline_read_crc32", |b| {
        b.iter(|| raw_scan(&data).expect("raw scan"));
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = wal;
    config = config();
    targets = sync_append, bulk, scan
}
criterion_main!(wal);
