//! The `raw` engine: the file-system baselines the others are judged against, storing each
//! event as a record of its CRC32 ([`CRC_BYTES`], little-endian) and its payload, back to back
//! in one file.
//!
//! - Durable appends: the file is preallocated with `set_len` for the run and its length made
//!   durable up front (as [`crate::RawSyncFile`] does); each append takes the next slot (an
//!   atomic counter, so concurrent writers never collide), writes the record there with one
//!   `pwrite` and makes it durable with one `fdatasync`.
//! - Bulk loads: a new file written sequentially in writes of at most
//!   [`crate::SEQUENTIAL_CHUNK_BYTES`] (as [`crate::raw_sequential_write`] does, but with the
//!   records themselves, so that they can be read back), then one `fdatasync`.
//! - Reads: the file read in chunks of about [`crate::SEQUENTIAL_CHUNK_BYTES`] into one buffer,
//!   every record's CRC32 checked.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Appender, Context, Engine, Fold, Mode, Payloads, Spec, Store, wrong_mode};
use crate::{BenchResult, SEQUENTIAL_CHUNK_BYTES, check};

/// Bytes of the CRC32 before every payload.
pub const CRC_BYTES: usize = size_of::<u32>();

/// A file of records open in a directory.
#[derive(Debug)]
pub struct RawStore {
    file: File,
    path: PathBuf,
    mode: Mode,
    /// Bytes of one record.
    record_bytes: u64,
    /// Records the file has room for (durable appends).
    capacity: u64,
    /// Records written or being written: the next free slot.
    records: AtomicU64,
    /// Bytes written so far.
    written: AtomicU64,
    /// `fdatasync` calls so far, besides the one making the preallocation durable.
    syncs: AtomicU64,
}

impl RawStore {
    /// Creates `dir/raw.dat`, preallocated for `spec.capacity` records for durable appends.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let path = dir.join("raw.dat");
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .ctx("raw: create")?;
        let record_bytes = (CRC_BYTES + spec.payload_bytes) as u64;
        if spec.mode == Mode::Durable {
            file.set_len(spec.capacity * record_bytes).ctx("raw: set_len")?;
            file.sync_all().ctx("raw: fsync")?;
            File::open(dir).and_then(|d| d.sync_all()).ctx("raw: fsync the directory")?;
        }
        Ok(Self {
            file,
            path,
            mode: spec.mode,
            record_bytes,
            capacity: spec.capacity,
            records: AtomicU64::new(0),
            written: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
        })
    }
}

/// Appends the record of `payload` (CRC32, then the payload) to `out`.
fn push_record(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

struct RawAppender<'a> {
    store: &'a RawStore,
    record: Vec<u8>,
}

impl Appender for RawAppender<'_> {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        let store = self.store;
        let slot = store.records.fetch_add(1, Ordering::Relaxed);
        check(slot < store.capacity, || {
            format!("raw: record {slot} past the {} preallocated", store.capacity)
        })?;
        self.record.clear();
        push_record(&mut self.record, payload);
        store.file.write_all_at(&self.record, slot * store.record_bytes).ctx("raw: pwrite")?;
        store.file.sync_data().ctx("raw: fdatasync")?;
        store.syncs.fetch_add(1, Ordering::Relaxed);
        store.written.fetch_add(self.record.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl Store for RawStore {
    fn engine(&self) -> Engine {
        Engine::Raw
    }

    fn appender(&self, _writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::Raw, Mode::Durable));
        }
        let record = Vec::with_capacity(usize::try_from(self.record_bytes)?);
        Ok(Box::new(RawAppender { store: self, record }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::Raw, Mode::Bulk));
        }
        let mut chunk = Vec::with_capacity(SEQUENTIAL_CHUNK_BYTES);
        let mut buf = Vec::with_capacity(payloads.bytes());
        let mut out = &self.file;
        for n in 0..count {
            payloads.fill(n, &mut buf);
            if chunk.len() + CRC_BYTES + buf.len() > SEQUENTIAL_CHUNK_BYTES && !chunk.is_empty() {
                out.write_all(&chunk).ctx("raw: write")?;
                self.written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                chunk.clear();
            }
            push_record(&mut chunk, &buf);
        }
        out.write_all(&chunk).ctx("raw: write")?;
        self.written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.file.sync_data().ctx("raw: fdatasync")?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.records.store(count, Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        self.each(visit)
    }

    fn replay(&self) -> BenchResult<Fold> {
        let mut fold = Fold::default();
        self.each(|payload| {
            fold.add(payload);
            Ok(())
        })?;
        Ok(fold)
    }

    fn written_bytes(&self) -> Option<u64> {
        Some(self.written.load(Ordering::Relaxed))
    }

    fn fdatasyncs(&self) -> Option<u64> {
        Some(self.syncs.load(Ordering::Relaxed))
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        Ok(())
    }
}

impl RawStore {
    /// Reads the records written, checking every CRC32, calling `visit` with each payload.
    /// Returns the count.
    fn each(&self, mut visit: impl FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let records = self.records.load(Ordering::Relaxed);
        let record_bytes = usize::try_from(self.record_bytes)?;
        let per_chunk = (SEQUENTIAL_CHUNK_BYTES / record_bytes).max(1);
        let mut buf = vec![0; per_chunk * record_bytes];
        let mut at = 0_u64;
        while at < records {
            let n = usize::try_from((records - at).min(per_chunk as u64))?;
            let chunk = &mut buf[..n * record_bytes];
            self.file.read_exact_at(chunk, at * self.record_bytes).ctx("raw: read")?;
            for record in chunk.chunks_exact(record_bytes) {
                let (crc, payload) = record.split_at(CRC_BYTES);
                check(crc32fast::hash(payload).to_le_bytes() == crc, || {
                    format!("raw: bad CRC32 in record {at} of {}", self.path.display())
                })?;
                visit(payload)?;
                at += 1;
            }
        }
        Ok(records)
    }
}
