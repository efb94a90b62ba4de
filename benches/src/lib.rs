//! Workloads of the WAL benchmarks, shared by the criterion bench `wal` and the `wal_targets`
//! binary: durable (`Sync`) appends of 100-byte records by one or many threads, bulk appends
//! with one final sync, and full scans, each beside the raw file-system baseline it is judged
//! against.
//!
//! Every workload runs in a scratch directory on the real disk and checks its result (record
//! counts, sequence numbers, bytes on disk), so that no engine is timed doing nothing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use annal_wal::format::{FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};
use annal_wal::{Durability, Log, Options};
use tempfile::TempDir;

pub mod chart;
pub mod compaction;
pub mod compare;
pub mod engines;
pub mod journal;
pub mod scaling;
pub mod table;

/// Payload size of every record.
pub const PAYLOAD_BYTES: usize = 100;

/// Bytes one single-record append puts in a segment: frame header, record header, payload.
pub const FRAMED_RECORD_BYTES: usize = FRAME_HEADER_BYTES + RECORD_HEADER_BYTES + PAYLOAD_BYTES;

/// Size of each write of the sequential-write baseline.
pub const SEQUENTIAL_CHUNK_BYTES: usize = 1024 * 1024;

/// Environment variable naming the directory that holds the scratch directories; the default
/// is [`std::env::temp_dir`].
pub const DIR_ENV: &str = "ANNAL_BENCH_DIR";

/// Errors of the workloads: I/O, the WAL's own, or a failed check of a result.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
/// Result of a workload.
pub type BenchResult<T> = Result<T, BenchError>;

fn check(ok: bool, what: impl FnOnce() -> String) -> BenchResult<()> {
    if ok { Ok(()) } else { Err(what().into()) }
}

/// The payload of record number `i`: `i` in its first 8 bytes, then a fixed pattern.
#[must_use]
pub fn payload(i: u64) -> [u8; PAYLOAD_BYTES] {
    let mut p = [0x5a; PAYLOAD_BYTES];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p
}

/// The directory that holds scratch directories (see [`DIR_ENV`]).
#[must_use]
pub fn scratch_root() -> PathBuf {
    std::env::var_os(DIR_ENV).map_or_else(std::env::temp_dir, PathBuf::from)
}

/// A new, empty scratch directory under [`scratch_root`], removed when dropped.
///
/// # Errors
/// The directory cannot be created.
pub fn scratch_dir() -> BenchResult<TempDir> {
    let root = scratch_root();
    fs::create_dir_all(&root)?;
    Ok(tempfile::Builder::new().prefix("annal-bench-").tempdir_in(root)?)
}

/// Writes back the dirty pages of the file system holding [`scratch_root`] and commits its
/// journal (`sync -f`), so that a run does not pay for the writeback, or the discards of
/// deleted files, left by an earlier one. Best effort: does nothing where `sync -f` fails.
pub fn settle() {
    let _ = std::process::Command::new("sync").arg("-f").arg(scratch_root()).status();
}

/// Runs `f` in a new scratch directory, after [`settle`]; the directory is removed afterwards.
///
/// # Errors
/// The directory cannot be created, or `f` fails.
pub fn in_scratch<T>(f: impl FnOnce(&Path) -> BenchResult<T>) -> BenchResult<T> {
    let dir = scratch_dir()?;
    settle();
    f(dir.path())
}

/// Options of a log whose appends return after an fdatasync (the default options).
#[must_use]
pub fn sync_options() -> Options {
    Options { durability: Durability::Sync, ..Options::default() }
}

/// Options of a log made durable only by an explicit sync.
#[must_use]
pub fn manual_options() -> Options {
    Options { durability: Durability::Manual, ..Options::default() }
}

/// Reads the whole log back and checks it holds records `1..=expected`, in order, each of
/// [`PAYLOAD_BYTES`].
///
/// # Errors
/// A read error, or the log does not hold what it should.
pub fn verify_log(log: &Log, expected: u64) -> BenchResult<()> {
    check(log.last_seq() == expected, || {
        format!("log ends at {} where {expected} records were appended", log.last_seq())
    })?;
    check(log.durable_seq() >= expected, || {
        format!("log durable through {} of {expected} records", log.durable_seq())
    })?;
    let read = scan_log(log, expected)?;
    check(read == expected, || format!("read back {read} records of {expected}"))
}

// ---- disk flushes --------------------------------------------------------------------------

/// Counts the cache flushes completed by the block device holding a directory, from its
/// `/sys/dev/block/MAJOR:MINOR/stat` (its 16th field, Linux 5.5 and later). An `fdatasync` that
/// writes to a disk with a volatile write cache completes at least one, so the count tells
/// whether a run that claims durability did any.
#[derive(Debug, Clone)]
pub struct FlushCounter {
    stat: PathBuf,
}

impl FlushCounter {
    /// The counter of the device holding `dir`; `None` where the file system has no block device
    /// with flush statistics (tmpfs, overlay, other systems), or the device has no volatile
    /// write cache (then the kernel sends it no flushes).
    #[must_use]
    pub fn for_dir(dir: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let dev = fs::metadata(dir).ok()?.dev();
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        let mut block = fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
        if block.join("partition").exists() {
            block = block.parent()?.to_path_buf();
        }
        let cache = fs::read_to_string(block.join("queue/write_cache")).ok()?;
        if cache.trim() != "write back" {
            return None;
        }
        let counter = Self { stat: block.join("stat") };
        counter.read().map(|_| counter)
    }

    /// Flushes completed so far.
    #[must_use]
    pub fn read(&self) -> Option<u64> {
        let text = fs::read_to_string(&self.stat).ok()?;
        text.split_whitespace().nth(15)?.parse().ok()
    }

    /// Flushes completed while `f` ran, beside its result.
    pub fn during<T>(counter: Option<&Self>, f: impl FnOnce() -> T) -> (T, Option<u64>) {
        let before = counter.and_then(Self::read);
        let out = f();
        let after = counter.and_then(Self::read);
        (out, before.zip(after).map(|(b, a)| a.saturating_sub(b)))
    }
}

// ---- durable appends -----------------------------------------------------------------------

/// Timings of a run of durable appends.
#[derive(Debug, Clone)]
pub struct DurableRun {
    /// Records made durable.
    pub records: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latency of each append (for many threads: every append of every thread).
    pub latencies: Vec<Duration>,
    /// Cache flushes the disk completed during the run (by any process), when known.
    pub flushes: Option<u64>,
}

impl DurableRun {
    /// Records per second over the whole run.
    #[must_use]
    pub fn records_per_sec(&self) -> f64 {
        per_sec(self.records, self.elapsed)
    }
}

/// `count` per second of `elapsed`.
#[must_use]
pub fn per_sec(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// The baseline of durable appends: a file preallocated with `set_len`, in which each record is
/// written with one `pwrite` of [`PAYLOAD_BYTES`] at the next offset and made durable with one
/// `fdatasync`.
#[derive(Debug)]
pub struct RawSyncFile {
    file: File,
    path: PathBuf,
    capacity: u64,
    next: u64,
}

impl RawSyncFile {
    /// Creates `raw-sync.dat` in `dir` with room for `capacity` records, its length durable.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(dir: &Path, capacity: u64) -> BenchResult<Self> {
        let path = dir.join("raw-sync.dat");
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path)?;
        file.set_len(capacity * PAYLOAD_BYTES as u64)?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Self { file, path, capacity, next: 0 })
    }

    /// Writes the next record and fdatasyncs; past the capacity it wraps to offset 0.
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self) -> std::io::Result<()> {
        let slot = self.next % self.capacity;
        self.file.write_all_at(&payload(self.next), slot * PAYLOAD_BYTES as u64)?;
        self.file.sync_data()?;
        self.next += 1;
        Ok(())
    }

    /// Checks that the file holds the records written, as long as it has not wrapped.
    ///
    /// # Errors
    /// A read error, or different bytes.
    pub fn verify(&self) -> BenchResult<()> {
        let bytes = fs::read(&self.path)?;
        let expected_len = self.capacity * PAYLOAD_BYTES as u64;
        check(bytes.len() as u64 == expected_len, || {
            format!("raw file is {} bytes, not {expected_len}", bytes.len())
        })?;
        if self.next <= self.capacity {
            for (i, chunk) in (0..self.next).zip(bytes.chunks_exact(PAYLOAD_BYTES)) {
                check(chunk == payload(i), || format!("raw record {i} differs"))?;
            }
        }
        Ok(())
    }
}

/// `threads` threads, released together, each append `per_thread` records to `log`. Returns
/// the wall time from the release to the last thread's end, and every append's latency.
///
/// # Errors
/// The first WAL error of any thread.
///
/// # Panics
/// If an appending thread panics.
pub fn spread_appends(
    log: &Arc<Log>,
    threads: usize,
    per_thread: u64,
) -> BenchResult<(Duration, Vec<Duration>)> {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(log);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || -> annal_wal::Result<Vec<Duration>> {
                let mut latencies = Vec::with_capacity(usize::try_from(per_thread).unwrap_or(0));
                let tag = (t as u64) << 48;
                barrier.wait();
                for i in 0..per_thread {
                    let start = Instant::now();
                    log.append(&payload(tag | i))?;
                    latencies.push(start.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut results = Vec::with_capacity(threads);
    for h in handles {
        results.push(h.join().expect("appending thread panicked"));
    }
    let elapsed = start.elapsed();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    Ok((elapsed, latencies))
}

/// Durable appends of annal by `threads` threads (1: the calling thread), each making
/// `per_thread` appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnalLoad {
    /// Appending threads.
    pub threads: usize,
    /// Appends of each thread.
    pub per_thread: u64,
}

impl AnnalLoad {
    /// Appends in all.
    #[must_use]
    pub fn records(self) -> u64 {
        self.threads as u64 * self.per_thread
    }
}

/// Runs `raw_count` baseline appends ([`RawSyncFile`]) and the annal `load` on a new `Sync`
/// log, both in `dir`, cut into `blocks` blocks that alternate between the two (starting with
/// annal if `annal_first`, then swapping which goes first at every block), so that a burst of
/// outside load hits both alike. Returns (baseline, annal), each summed over its blocks.
///
/// # Errors
/// I/O or WAL errors; `blocks` that do not divide both counts; the file or log not holding
/// the appends afterwards.
pub fn interleaved_sync(
    dir: &Path,
    raw_count: u64,
    load: AnnalLoad,
    blocks: u64,
    annal_first: bool,
) -> BenchResult<(DurableRun, DurableRun)> {
    check(
        blocks > 0 && raw_count.is_multiple_of(blocks) && load.per_thread.is_multiple_of(blocks),
        || format!("{blocks} blocks do not divide {raw_count} and {} appends", load.per_thread),
    )?;
    let raw_block = raw_count / blocks;
    let annal_block = load.per_thread / blocks;
    let mut raw = RawSyncFile::create(dir, raw_count)?;
    let log = Arc::new(Log::open(dir.join("log"), sync_options())?);
    let counter = FlushCounter::for_dir(dir);
    let empty = |records| DurableRun {
        records,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(usize::try_from(records).unwrap_or(0)),
        flushes: counter.as_ref().map(|_| 0),
    };
    let mut base = empty(raw_count);
    let mut annal = empty(load.records());
    let add = |run: &mut DurableRun, elapsed: Duration, flushes: Option<u64>| {
        run.elapsed += elapsed;
        run.flushes = run.flushes.zip(flushes).map(|(a, b)| a + b);
    };
    let mut next_seq = 1;
    for block in 0..blocks {
        for annal_turn in [annal_first ^ (block % 2 == 1), !(annal_first ^ (block % 2 == 1))] {
            if annal_turn {
                let (run, flushes) = FlushCounter::during(counter.as_ref(), || {
                    if load.threads == 1 {
                        let start = Instant::now();
                        for _ in 0..annal_block {
                            let t = Instant::now();
                            log.append(&payload(next_seq))?;
                            annal.latencies.push(t.elapsed());
                            next_seq += 1;
                        }
                        Ok(start.elapsed())
                    } else {
                        let (elapsed, latencies) = spread_appends(&log, load.threads, annal_block)?;
                        annal.latencies.extend(latencies);
                        Ok::<_, BenchError>(elapsed)
                    }
                });
                add(&mut annal, run?, flushes);
            } else {
                let (run, flushes) = FlushCounter::during(counter.as_ref(), || {
                    let start = Instant::now();
                    for _ in 0..raw_block {
                        let t = Instant::now();
                        raw.append()?;
                        base.latencies.push(t.elapsed());
                    }
                    Ok::<_, BenchError>(start.elapsed())
                });
                add(&mut base, run?, flushes);
            }
        }
    }
    raw.verify()?;
    verify_log(&log, load.records())?;
    check(annal.latencies.len() as u64 == load.records(), || {
        format!("{} appends timed of {}", annal.latencies.len(), load.records())
    })?;
    Arc::into_inner(log).ok_or("log still shared")?.close()?;
    Ok((base, annal))
}

// ---- bulk ----------------------------------------------------------------------------------

/// Bytes of payload and framing that `records` single-record appends write.
#[must_use]
pub fn framed_bytes(records: u64) -> u64 {
    records * FRAMED_RECORD_BYTES as u64
}

/// Wall time of a run that ends durable, and the disk flushes completed meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct BulkRun {
    /// Wall time of the writes and the final sync.
    pub elapsed: Duration,
    /// Cache flushes the disk completed during the run (by any process), when known.
    pub flushes: Option<u64>,
}

/// Baseline: `bytes` bytes written to a new file in `dir` in writes of
/// [`SEQUENTIAL_CHUNK_BYTES`], then one fdatasync. Times the writes and the fdatasync.
///
/// # Errors
/// I/O errors, or the file is not `bytes` long afterwards.
pub fn raw_sequential_write(dir: &Path, bytes: u64) -> BenchResult<BulkRun> {
    let path = dir.join("raw-seq.dat");
    let mut file = OpenOptions::new().create_new(true).write(true).open(&path)?;
    let chunk: Vec<u8> =
        (0..SEQUENTIAL_CHUNK_BYTES).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect();
    let counter = FlushCounter::for_dir(dir);
    let (elapsed, flushes) = FlushCounter::during(counter.as_ref(), || -> BenchResult<Duration> {
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left.min(SEQUENTIAL_CHUNK_BYTES as u64))?;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_data()?;
        Ok(start.elapsed())
    });
    let elapsed = elapsed?;
    let len = fs::metadata(&path)?.len();
    check(len == bytes, || format!("raw sequential file is {len} bytes, not {bytes}"))?;
    Ok(BulkRun { elapsed, flushes })
}

/// Appends `count` records to a new `Manual` log in `dir`, one append each, then syncs once.
/// Times the appends and the sync (not the open).
///
/// # Errors
/// WAL errors, or the log does not hold the records afterwards.
pub fn annal_bulk(dir: &Path, count: u64) -> BenchResult<BulkRun> {
    let log = Log::open(dir.join("log"), manual_options())?;
    let counter = FlushCounter::for_dir(dir);
    let (elapsed, flushes) = FlushCounter::during(counter.as_ref(), || -> BenchResult<Duration> {
        let start = Instant::now();
        for i in 1..=count {
            log.append(&payload(i))?;
        }
        log.sync()?;
        Ok(start.elapsed())
    });
    let elapsed = elapsed?;
    verify_log(&log, count)?;
    log.close()?;
    Ok(BulkRun { elapsed, flushes })
}

/// Computes the audit hash chain ([`annal_wal::chain_next`]) over the records
/// [`annal_bulk`] appends, alone: no framing, no CRC, no I/O. Returns the time it took and the
/// chain value after the last record (so that the work cannot be optimized away).
#[must_use]
pub fn chain_only(count: u64) -> (Duration, annal_wal::ChainValue) {
    let start = Instant::now();
    let mut chain = annal_wal::CHAIN_START;
    for i in 1..=count {
        chain = annal_wal::chain_next(&chain, i, i, &payload(i));
    }
    (start.elapsed(), std::hint::black_box(chain))
}

// ---- scan ----------------------------------------------------------------------------------

/// A log of records to scan, written once and kept open.
#[derive(Debug)]
pub struct ScanData {
    /// The log.
    pub log: Log,
    /// Records in the log.
    pub records: u64,
    /// The segment files, oldest first.
    pub segment_paths: Vec<PathBuf>,
    /// Sum of the segment files' lengths.
    pub file_bytes: u64,
    _dir: TempDir,
}

/// Writes `count` records to a new log (`Manual`, not preallocated, so that every segment file
/// holds exactly its data), syncs it, and reads it twice to load the page cache.
///
/// # Errors
/// WAL or I/O errors, or the log does not hold the records.
pub fn prepare_scan(count: u64) -> BenchResult<ScanData> {
    let dir = scratch_dir()?;
    let options = Options { preallocate: false, ..manual_options() };
    let log = Log::open(dir.path().join("log"), options)?;
    for i in 1..=count {
        log.append(&payload(i))?;
    }
    log.sync()?;
    let segment_paths: Vec<PathBuf> = log.segments().into_iter().map(|s| s.path).collect();
    let mut file_bytes = 0;
    for p in &segment_paths {
        file_bytes += fs::metadata(p)?.len();
    }
    let data = ScanData { log, records: count, segment_paths, file_bytes, _dir: dir };
    for _ in 0..2 {
        raw_scan(&data)?;
        let read = scan_log(&data.log, count)?;
        check(read == count, || format!("scan read {read} records of {count}"))?;
    }
    Ok(data)
}

/// Reads every record of `log` from sequence 1 through its reader, checking that sequence
/// numbers run `1..` without gaps and that every payload has [`PAYLOAD_BYTES`]. Returns the
/// number of records read.
///
/// # Errors
/// A read error, or a record out of place.
pub fn scan_log(log: &Log, expected: u64) -> BenchResult<u64> {
    let mut next = 1;
    for record in log.read_from(1) {
        let record = record?;
        if record.seq != next || record.payload.len() != PAYLOAD_BYTES {
            return Err(format!(
                "record {} of {} bytes where record {next} was expected",
                record.seq,
                record.payload.len()
            )
            .into());
        }
        next += 1;
    }
    let read = next - 1;
    check(read == expected, || format!("scan read {read} records of {expected}"))?;
    Ok(read)
}

/// What the raw scan read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawScan {
    /// Bytes read.
    pub bytes: u64,
    /// Chunks checksummed.
    pub chunks: u64,
    /// XOR of the chunks' CRC32s, so that the work is not optimized away.
    pub crc_xor: u32,
}

/// Baseline of a scan: reads every segment file of `data` whole with [`std::fs::read`] and
/// computes a CRC32 of each [`FRAMED_RECORD_BYTES`]-byte chunk.
///
/// # Errors
/// I/O errors, or fewer bytes than the files hold.
pub fn raw_scan(data: &ScanData) -> BenchResult<RawScan> {
    let mut out = RawScan { bytes: 0, chunks: 0, crc_xor: 0 };
    for path in &data.segment_paths {
        let bytes = fs::read(path)?;
        out.bytes += bytes.len() as u64;
        for chunk in bytes.chunks(FRAMED_RECORD_BYTES) {
            out.crc_xor ^= crc32fast::hash(chunk);
            out.chunks += 1;
        }
    }
    check(out.bytes == data.file_bytes, || {
        format!("raw scan read {} bytes of {}", out.bytes, data.file_bytes)
    })?;
    Ok(out)
}

// ---- statistics ----------------------------------------------------------------------------

/// Latency percentiles, by nearest rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest sample.
    pub max: Duration,
}

/// Percentiles of `samples` (sorted in place).
///
/// # Panics
/// If `samples` is empty.
#[must_use]
pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    assert!(!samples.is_empty(), "percentiles of no samples");
    samples.sort_unstable();
    Percentiles {
        count: samples.len(),
        p50: nearest_rank(samples, 500),
        p99: nearest_rank(samples, 990),
        p999: nearest_rank(samples, 999),
        max: samples[samples.len() - 1],
    }
}

/// The sample at `per_mille` thousandths of sorted `samples`: the smallest sample with at least
/// that fraction of samples at or below it.
fn nearest_rank(sorted: &[Duration], per_mille: u64) -> Duration {
    let n = sorted.len() as u64;
    let rank = (n * per_mille).div_ceil(1000).clamp(1, n);
    sorted[usize::try_from(rank - 1).expect("rank is below the sample count")]
}

/// Median of `values` (the mean of the middle two for an even count).
///
/// # Panics
/// If `values` is empty or holds a NaN.
#[must_use]
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { f64::midpoint(v[mid - 1], v[mid]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=1000).rev().map(Duration::from_micros).collect();
        let p = percentiles(&mut samples);
        assert_eq!(p.p50, Duration::from_micros(500));
        assert_eq!(p.p99, Duration::from_micros(990));
        assert_eq!(p.p999, Duration::from_micros(999));
        assert_eq!(p.max, Duration::from_micros(1000));
        let mut one = vec![Duration::from_millis(3)];
        assert_eq!(percentiles(&mut one).p999, Duration::from_millis(3));
    }

    #[test]
    fn medians() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
    }

    #[test]
    fn framing_is_144_bytes_per_record() {
        assert_eq!(FRAMED_RECORD_BYTES, 144);
    }

    #[test]
    fn small_workloads_verify() -> BenchResult<()> {
        let one = AnnalLoad { threads: 1, per_thread: 20 };
        let (base, annal) = in_scratch(|d| interleaved_sync(d, 20, one, 4, false))?;
        assert_eq!((base.latencies.len(), annal.latencies.len()), (20, 20));
        let many = AnnalLoad { threads: 4, per_thread: 8 };
        let (base, annal) = in_scratch(|d| interleaved_sync(d, 12, many, 2, true))?;
        assert_eq!((base.records, annal.records, annal.latencies.len()), (12, 32, 32));
        assert!(in_scratch(|d| interleaved_sync(d, 10, many, 3, true)).is_err());
        let dir = scratch_dir()?;
        raw_sequential_write(dir.path(), 3 * 1024 * 1024 + 7)?;
        let dir = scratch_dir()?;
        annal_bulk(dir.path(), 1000)?;
        let data = prepare_scan(1000)?;
        assert_eq!(scan_log(&data.log, 1000)?, 1000);
        assert_eq!(raw_scan(&data)?.bytes, data.file_bytes);
        Ok(())
    }
}
