//! The `okaywal` engine. okaywal is a write-ahead log meant to sit in front of another store:
//! past `checkpoint_after_bytes` it hands the active file to its `LogManager` to copy the
//! entries elsewhere, then recycles the file. Here the log *is* the store, as the journal is,
//! so checkpointing is turned off (`checkpoint_after_bytes = u64::MAX`): entries stay where
//! they were written, and no checkpoint, file switch or directory sync runs during a workload.
//! The file is preallocated (okaywal writes zeros up front, when the log is opened, outside
//! the timing) with room for the run, from okaywal's default 1 MiB up to 64 MiB, the size of
//! annal's segments; other options are okaywal's defaults (16 KiB buffers).
//!
//! Durable appends: one entry per event (`begin_entry`, one `write_chunk`, `commit`, which
//! returns after an fdatasync shared by concurrent committers). Bulk loads: okaywal has no
//! commit without a sync, so the closest equivalent is one entry holding every event as its
//! own chunk, committed once (one fdatasync). Reads go through okaywal's only API for reading
//! a log whole, recovery: the log is reopened with a `LogManager` whose `recover` reads every
//! chunk of every entry and checks its CRC.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use okaywal::{Configuration, Entry, EntryId, LogManager, ReadChunkResult, SegmentReader};

use super::{Appender, Context, Engine, Fold, Mode, Payloads, Spec, Store, wrong_mode};
use crate::{BenchResult, check};

/// Smallest preallocation (okaywal's default).
pub const PREALLOCATE_BYTES_MIN: u64 = 1024 * 1024;
/// Largest preallocation (annal's segment size).
pub const PREALLOCATE_BYTES_MAX: u64 = annal_wal::format::SEGMENT_BYTES_TARGET;

/// Bytes okaywal writes around a one-chunk entry: entry header (9), chunk header (5), CRC (4),
/// end of entry (1).
const ENTRY_OVERHEAD_BYTES: u64 = 19;

/// The configuration of a log in `dir` for `spec`.
fn configuration(dir: &Path, spec: Spec) -> BenchResult<Configuration> {
    let needed = spec.capacity * (spec.payload_bytes as u64 + ENTRY_OVERHEAD_BYTES) + 1024;
    let preallocate = needed
        .next_multiple_of(PREALLOCATE_BYTES_MIN)
        .clamp(PREALLOCATE_BYTES_MIN, PREALLOCATE_BYTES_MAX);
    Ok(Configuration::default_for(dir.join("okaywal"))
        .preallocate_bytes(u32::try_from(preallocate)?)
        .checkpoint_after_bytes(u64::MAX))
}

/// A log open in a directory.
#[derive(Debug)]
pub struct OkaywalStore {
    config: Configuration,
    /// The log being written; shut down before the first read.
    writer: Mutex<Option<okaywal::WriteAheadLog>>,
    mode: Mode,
}

impl OkaywalStore {
    /// Creates a log in `dir/okaywal`.
    ///
    /// # Errors
    /// okaywal's.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let config = configuration(dir, spec)?;
        let wal = config.clone().open(Refuse).ctx("okaywal: open")?;
        Ok(Self { config, writer: Mutex::new(Some(wal)), mode: spec.mode })
    }

    fn writer(&self) -> BenchResult<MutexGuard<'_, Option<okaywal::WriteAheadLog>>> {
        self.writer.lock().map_err(|_| "okaywal: writer lock poisoned".into())
    }

    fn log(&self) -> BenchResult<okaywal::WriteAheadLog> {
        self.writer()?.clone().ok_or_else(|| "okaywal: the log was shut down for reading".into())
    }

    /// Shuts the writing log down (once), then reopens the log with `sink` receiving every
    /// chunk, and shuts it down again.
    fn recover(&self, sink: Sink) -> BenchResult<Sink> {
        if let Some(wal) = self.writer()?.take() {
            wal.shutdown().ctx("okaywal: shut down")?;
        }
        let shared = Arc::new(Mutex::new(sink));
        let manager = Reader { sink: Arc::clone(&shared) };
        let wal = self.config.clone().open(manager).ctx("okaywal: recover")?;
        wal.shutdown().ctx("okaywal: shut down")?;
        let sink = Arc::into_inner(shared).ok_or("okaywal: log manager still held")?;
        Ok(sink.into_inner().map_err(|_| "okaywal: reader lock poisoned")?)
    }
}

/// The manager of the writing log: it refuses to checkpoint (which would recycle the file
/// and drop its entries), and finds nothing to recover in a new directory.
#[derive(Debug)]
struct Refuse;

impl LogManager for Refuse {
    fn recover(&mut self, _entry: &mut Entry<'_>) -> io::Result<()> {
        Err(io::Error::other("okaywal: the log to write was not empty"))
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> io::Result<()> {
        Err(io::Error::other("okaywal: checkpointing is off, every entry is kept"))
    }
}

/// What recovery does with the chunks it reads.
#[derive(Debug, Default)]
struct Sink {
    /// Set: fold every chunk. Unset: keep every chunk (`data`, cut at `ends`).
    fold: Option<Fold>,
    data: Vec<u8>,
    ends: Vec<usize>,
    chunks: u64,
    last_entry: u64,
}

/// The manager of a reading log: reads every chunk of every entry, checking its CRC, into the
/// shared [`Sink`].
#[derive(Debug)]
struct Reader {
    sink: Arc<Mutex<Sink>>,
}

impl Reader {
    fn read_entry(sink: &mut Sink, entry: &mut Entry<'_>) -> io::Result<()> {
        let id = entry.id().0;
        if id <= sink.last_entry {
            return Err(io::Error::other(format!(
                "okaywal: entry {id} after entry {}",
                sink.last_entry
            )));
        }
        sink.last_entry = id;
        let mut buf = Vec::new();
        loop {
            let mut chunk = match entry.read_chunk()? {
                ReadChunkResult::Chunk(chunk) => chunk,
                ReadChunkResult::EndOfEntry => return Ok(()),
                ReadChunkResult::AbortedEntry => {
                    return Err(io::Error::other(format!("okaywal: entry {id} aborted")));
                }
            };
            buf.clear();
            io::Read::read_to_end(&mut chunk, &mut buf)?;
            if !chunk.check_crc()? {
                return Err(io::Error::other(format!("okaywal: bad CRC in entry {id}")));
            }
            sink.chunks += 1;
            match &mut sink.fold {
                Some(fold) => fold.add(&buf),
                None => {
                    sink.data.extend_from_slice(&buf);
                    sink.ends.push(sink.data.len());
                }
            }
        }
    }
}

impl LogManager for Reader {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        let mut sink = self.sink.lock().map_err(|_| io::Error::other("reader lock poisoned"))?;
        Self::read_entry(&mut sink, entry)
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> io::Result<()> {
        Err(io::Error::other("okaywal: checkpointing is off, every entry is kept"))
    }
}

struct OkaywalAppender {
    wal: okaywal::WriteAheadLog,
}

impl Appender for OkaywalAppender {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        let mut entry = self.wal.begin_entry().ctx("okaywal: begin entry")?;
        entry.write_chunk(payload).ctx("okaywal: write chunk")?;
        entry.commit().ctx("okaywal: commit")?;
        Ok(())
    }
}

impl Store for OkaywalStore {
    fn engine(&self) -> Engine {
        Engine::Okaywal
    }

    fn appender(&self, _writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::Okaywal, Mode::Durable));
        }
        Ok(Box::new(OkaywalAppender { wal: self.log()? }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::Okaywal, Mode::Bulk));
        }
        let wal = self.log()?;
        let mut entry = wal.begin_entry().ctx("okaywal: begin entry")?;
        let mut buf = Vec::with_capacity(payloads.bytes());
        for n in 0..count {
            payloads.fill(n, &mut buf);
            entry.write_chunk(&buf).ctx("okaywal: write chunk")?;
        }
        entry.commit().ctx("okaywal: commit")?;
        Ok(())
    }

    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let sink = self.recover(Sink::default())?;
        let mut start = 0;
        for &end in &sink.ends {
            visit(&sink.data[start..end])?;
            start = end;
        }
        check(sink.ends.len() as u64 == sink.chunks, || {
            format!("okaywal: {} chunks kept of {}", sink.ends.len(), sink.chunks)
        })?;
        Ok(sink.chunks)
    }

    fn replay(&self) -> BenchResult<Fold> {
        let sink = self.recover(Sink { fold: Some(Fold::default()), ..Sink::default() })?;
        sink.fold.ok_or_else(|| "okaywal: no fold".into())
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        let writer = self.writer.into_inner().map_err(|_| "okaywal: writer lock poisoned")?;
        if let Some(wal) = writer {
            wal.shutdown().ctx("okaywal: shut down")?;
        }
        Ok(())
    }
}
