//! The runs of the scaling measurements: annal's durable and bulk appends of events of a given
//! size, and the raw baselines, each checking what it wrote outside the timed part.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use annal::{Counts, Durability, Expect, Journal, RawEvent, TypedEvent};
use annal_projection::envelope::encode_data;
use serde::{Deserialize, Serialize};

use crate::{BenchResult, check, median, percentiles, raw_sequential_write};

/// The event type of the payload workloads' events.
pub const BLOB_EVENT_TYPE: &str = "blob";

/// Bytes of MessagePack around a [`Blob`]'s body, besides the body's string header: the map
/// header (1) and the key `"b"` (2).
const BLOB_OVERHEAD_BYTES: usize = 3;

/// The stream appending thread `t` writes to.
fn writer_stream(t: usize) -> String {
    format!("writer-{t:03}")
}

/// The event of the payload workloads: a string body, sized so that the event's data (the
/// MessagePack map `{"b": body}`) has an exact number of bytes ([`blob_body`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Blob<'a> {
    b: &'a str,
}

impl<'a> Blob<'a> {
    /// The event holding `body`.
    #[must_use]
    pub fn new(body: &'a str) -> Self {
        Self { b: body }
    }
}

impl TypedEvent for Blob<'_> {
    fn event_type(&self) -> &str {
        BLOB_EVENT_TYPE
    }
}

/// Bytes of the MessagePack header of a string of `len` bytes (fixstr, str8, str16, str32).
fn str_header_bytes(len: usize) -> usize {
    match len {
        0..32 => 1,
        32..256 => 2,
        256..65_536 => 3,
        _ => 5,
    }
}

/// A body of printable bytes for which [`Blob`]'s data encodes to exactly `data_bytes`.
///
/// # Errors
/// `data_bytes` is below 4 (the smallest encoded `Blob`) or one of the few sizes that a longer
/// string header skips over (36, 261, 65,542 and 65,543), or the encoding differs.
pub fn blob_body(data_bytes: usize) -> BenchResult<String> {
    let len = [1, 2, 3, 5]
        .into_iter()
        .filter_map(|header| {
            let len = data_bytes.checked_sub(BLOB_OVERHEAD_BYTES + header)?;
            (str_header_bytes(len) == header).then_some(len)
        })
        .next()
        .ok_or_else(|| format!("no blob event has {data_bytes} bytes of data"))?;
    let mut state = 0x2545_f491_u32;
    let body: String = (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            char::from(b' ' + u8::try_from((state >> 24) % 95).unwrap_or(0))
        })
        .collect();
    let encoded = encode_data(&Blob::new(&body))?.len();
    check(encoded == data_bytes, || format!("a blob of {data_bytes} bytes encodes to {encoded}"))?;
    Ok(body)
}

// ---- runs ----------------------------------------------------------------------------------

/// One timed run of writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Events (or records) written.
    pub events: u64,
    /// Bytes of event data (or record payload) written; framing not counted.
    pub payload_bytes: u64,
    /// Wall time of the writes and the syncs.
    pub seconds: f64,
    /// fdatasyncs of annal's log during the run (`Log::stats`); none for the baselines.
    pub fdatasyncs: Option<u64>,
    /// Median latency of an append, microseconds, for runs of durable appends.
    pub p50_us: Option<f64>,
    /// 99th percentile latency of an append, microseconds, for runs of durable appends.
    pub p99_us: Option<f64>,
}

impl Run {
    fn new(events: u64, payload_bytes: u64, elapsed: Duration) -> Self {
        Self {
            events,
            payload_bytes,
            seconds: elapsed.as_secs_f64(),
            fdatasyncs: None,
            p50_us: None,
            p99_us: None,
        }
    }

    /// Events per second.
    #[must_use]
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    /// Megabytes (10^6 bytes) of payload per second.
    #[must_use]
    pub fn mb_per_sec(&self) -> f64 {
        self.payload_bytes as f64 / self.seconds / 1e6
    }
}

/// The median of `values`, NaNs left out; none when none is left.
pub(super) fn median_of(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    (!values.is_empty()).then(|| median(&values))
}

/// Median events per second of `runs`.
#[must_use]
pub fn median_events_per_sec(runs: &[Run]) -> Option<f64> {
    median_of(runs.iter().map(Run::events_per_sec))
}

/// Median MB per second of `runs`.
#[must_use]
pub fn median_mb_per_sec(runs: &[Run]) -> Option<f64> {
    median_of(runs.iter().map(Run::mb_per_sec))
}

/// Reads the whole journal back and checks that it holds `expected` durable events, without
/// gaps, of `data_bytes` of data each when given, and that the live [`Counts`] state counted
/// them.
///
/// # Errors
/// A read or envelope error, or the journal does not hold what it should.
pub fn verify_journal(
    journal: &Journal,
    expected: u64,
    data_bytes: Option<usize>,
) -> BenchResult<()> {
    let log = journal.log();
    check(log.last_seq() == expected && log.durable_seq() >= expected, || {
        format!(
            "journal ends at {}, durable through {}, where {expected} events were appended",
            log.last_seq(),
            log.durable_seq()
        )
    })?;
    let mut next = 1;
    for record in log.read_from(1) {
        let record = record?;
        let raw = RawEvent::parse(record.seq, record.ts, &record.payload)?;
        check(raw.seq == next, || format!("event {} where {next} was expected", raw.seq))?;
        if let Some(n) = data_bytes {
            check(raw.data.len() == n, || {
                format!("event {next} has {} bytes of data, not {n}", raw.data.len())
            })?;
        }
        next += 1;
    }
    check(next - 1 == expected, || format!("read back {} events of {expected}", next - 1))?;
    let counts = journal.state::<Counts>()?;
    check(counts.total == expected, || {
        format!("the Counts projection counted {} events of {expected}", counts.total)
    })
}

/// Durable (`Sync`) appends through `Journal::append` by `threads` threads (1: the calling
/// thread), released together, each appending `per_thread` events made by `event(t, i)` to its
/// own stream, on a new journal in `dir` with [`Counts`] registered. Times the appends only;
/// then checks the journal with [`verify_journal`] and that every stream has `per_thread`
/// events.
///
/// # Errors
/// Journal errors, or the journal does not hold the events.
pub fn durable_appends<E: TypedEvent>(
    dir: &Path,
    threads: usize,
    per_thread: u64,
    data_bytes: usize,
    event: impl Fn(usize, u64) -> E + Sync,
) -> BenchResult<Run> {
    let journal = Journal::options().projection::<Counts>().open(dir.join("journal"))?;
    let streams: Vec<String> = (0..threads).map(writer_stream).collect();
    let work: Vec<Vec<(usize, u64)>> =
        (0..threads).map(|t| (0..per_thread).map(|i| (t, i)).collect()).collect();
    let syncs = journal.log().stats().fdatasyncs;
    let (elapsed, mut latencies) = crate::journal::run_appenders(work, |(t, i)| {
        journal.append(&streams[t], Expect::Any, [event(t, i)])?;
        Ok(())
    })?;
    let fdatasyncs = journal.log().stats().fdatasyncs - syncs;
    let events = threads as u64 * per_thread;
    verify_journal(&journal, events, Some(data_bytes))?;
    for s in &streams {
        let version = journal.stream_version(s);
        check(version == per_thread, || format!("stream {s} at version {version}"))?;
    }
    journal.close()?;
    check(!latencies.is_empty(), || "no append was timed".to_owned())?;
    let p = percentiles(&mut latencies);
    Ok(Run {
        fdatasyncs: Some(fdatasyncs),
        p50_us: Some(p.p50.as_secs_f64() * 1e6),
        p99_us: Some(p.p99.as_secs_f64() * 1e6),
        ..Run::new(events, events * data_bytes as u64, elapsed)
    })
}

/// Appends `events` [`Blob`] events of `data_bytes` through `Journal::append` to a new journal
/// in `dir` (`Durability::Manual`, [`Counts`] registered), one event per append, then syncs
/// once. Times the appends and the sync (not the open), then checks the journal.
///
/// # Errors
/// Journal errors, or the journal does not hold the events.
pub fn bulk_appends(dir: &Path, data_bytes: usize, events: u64) -> BenchResult<Run> {
    let body = blob_body(data_bytes)?;
    let journal = Journal::options()
        .projection::<Counts>()
        .durability(Durability::Manual)
        .open(dir.join("journal"))?;
    let stream = writer_stream(0);
    let syncs = journal.log().stats().fdatasyncs;
    let start = Instant::now();
    for _ in 0..events {
        journal.append(&stream, Expect::Any, [Blob::new(&body)])?;
    }
    journal.sync()?;
    let elapsed = start.elapsed();
    let fdatasyncs = journal.log().stats().fdatasyncs - syncs;
    verify_journal(&journal, events, Some(data_bytes))?;
    journal.close()?;
    Ok(Run {
        fdatasyncs: Some(fdatasyncs),
        ..Run::new(events, events * data_bytes as u64, elapsed)
    })
}

/// The baseline of durable appends: in a file of `dir` preallocated with `set_len` for `count`
/// records of `record_bytes` (at least 8), record `i` (its number in its first 8 bytes) is
/// written with one `pwrite` at offset `i * record_bytes` and made durable with one
/// `fdatasync`. Times the writes; then reads the file back and checks every record.
///
/// # Errors
/// I/O errors, records under 8 bytes, or a record read back differs.
pub fn raw_sync(dir: &Path, record_bytes: usize, count: u64) -> BenchResult<Run> {
    check(record_bytes >= 8, || format!("raw records of {record_bytes} bytes hold no number"))?;
    let size = record_bytes as u64;
    let path = dir.join("raw-sync.dat");
    let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path)?;
    file.set_len(count * size)?;
    file.sync_all()?;
    File::open(dir)?.sync_all()?;
    let mut record: Vec<u8> =
        (0..record_bytes).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect();
    let mut latencies = Vec::with_capacity(usize::try_from(count)?);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        record[..8].copy_from_slice(&i.to_le_bytes());
        file.write_all_at(&record, i * size)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let bytes = fs::read(&path)?;
    check(bytes.len() as u64 == count * size, || format!("raw file of {} bytes", bytes.len()))?;
    let mut read = 0;
    for (i, chunk) in (0..count).zip(bytes.chunks_exact(record_bytes)) {
        check(chunk[..8] == i.to_le_bytes() && chunk[8..] == record[8..], || {
            format!("raw record {i} differs")
        })?;
        read += 1;
    }
    check(read == count, || format!("read back {read} raw records of {count}"))?;
    check(!latencies.is_empty(), || "no raw write was timed".to_owned())?;
    let p = percentiles(&mut latencies);
    Ok(Run {
        p50_us: Some(p.p50.as_secs_f64() * 1e6),
        p99_us: Some(p.p99.as_secs_f64() * 1e6),
        ..Run::new(count, count * size, elapsed)
    })
}

/// The baseline of bulk appends: `records * record_bytes` bytes written to a new file of `dir`
/// in 1 MiB writes, then one `fdatasync` ([`raw_sequential_write`], which checks the file's
/// length). Counts `records` events.
///
/// # Errors
/// I/O errors.
pub fn raw_sequential(dir: &Path, record_bytes: usize, records: u64) -> BenchResult<Run> {
    let bytes = records * record_bytes as u64;
    let run = raw_sequential_write(dir, bytes)?;
    Ok(Run::new(records, bytes, run.elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_have_exact_sizes() -> BenchResult<()> {
        for n in [4, 16, 34, 35, 37, 260, 262, 1024, 65_536, 65_541, 65_544, 1 << 20] {
            assert_eq!(encode_data(&Blob::new(&blob_body(n)?))?.len(), n, "blob of {n} bytes");
        }
        for n in [3, 36, 261, 65_542, 65_543] {
            assert!(blob_body(n).is_err(), "a blob of {n} bytes");
        }
        Ok(())
    }
}
