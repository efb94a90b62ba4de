//! The `annal-wal` engine: the raw `annal_wal::Log` under the journal, each payload one record
//! (no envelope); `Durability::Sync` for durable appends, `Durability::Manual` and one
//! `sync()` for bulk loads; default options otherwise (64 MiB segments, preallocated).

use std::path::Path;

use annal_wal::Log;

use super::{Appender, Context, Engine, Fold, Mode, Payloads, Spec, Store, wrong_mode};
use crate::{BenchResult, check, manual_options, sync_options};

/// A log open in a directory.
#[derive(Debug)]
pub struct WalStore {
    log: Log,
    mode: Mode,
    written_at_open: u64,
}

impl WalStore {
    /// Opens a new log in `dir/wal`.
    ///
    /// # Errors
    /// The log's.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let options = match spec.mode {
            Mode::Durable => sync_options(),
            Mode::Bulk => manual_options(),
        };
        let log = Log::open(dir.join("wal"), options).ctx("annal-wal: open the log")?;
        let written_at_open = log.stats().bytes_written;
        Ok(Self { log, mode: spec.mode, written_at_open })
    }
}

impl WalStore {
    /// Reads every record from sequence 1, checking sequence numbers, calling `visit` with each
    /// payload. Returns the count.
    fn each(&self, mut visit: impl FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let mut next = 1;
        for record in self.log.read_from(1) {
            let record = record.ctx("annal-wal: read")?;
            check(record.seq == next, || {
                format!("annal-wal: record {} where {next} was due", record.seq)
            })?;
            visit(&record.payload)?;
            next += 1;
        }
        Ok(next - 1)
    }
}

struct WalAppender<'a> {
    log: &'a Log,
}

impl Appender for WalAppender<'_> {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        self.log.append(payload).ctx("annal-wal: append")?;
        Ok(())
    }
}

impl Store for WalStore {
    fn engine(&self) -> Engine {
        Engine::AnnalWal
    }

    fn appender(&self, _writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::AnnalWal, Mode::Durable));
        }
        Ok(Box::new(WalAppender { log: &self.log }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::AnnalWal, Mode::Bulk));
        }
        let mut buf = Vec::with_capacity(payloads.bytes());
        for n in 0..count {
            payloads.fill(n, &mut buf);
            self.log.append(&buf).ctx("annal-wal: append")?;
        }
        self.log.sync().ctx("annal-wal: sync")
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
        Some(self.log.stats().bytes_written - self.written_at_open)
    }

    fn fdatasyncs(&self) -> Option<u64> {
        Some(self.log.stats().fdatasyncs)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.log.close().ctx("annal-wal: close")
    }
}
