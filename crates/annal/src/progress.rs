//! Progress of long operations: an open that folds the log, a replay, a verification. A
//! [`Progress`] set on [`JournalOptions::progress`](crate::JournalOptions::progress) or
//! [`JournalReader::with_progress`](crate::JournalReader::with_progress) is told each phase
//! and how far it got, for a progress bar or a log line.

use std::sync::Arc;

/// Told how far a long operation got. Calls come from the thread running the operation.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// A phase begins over the sequence numbers `first..=last`: `"open"` (folding the log past
    /// the snapshots into the projections), `"replay"`, `"verify"`.
    fn begin(&self, phase: &str, first: u64, last: u64);

    /// Every record of the phase up to `seq` is done. Called every [`PROGRESS_EVERY`]
    /// records and at the phase's end.
    fn reached(&self, seq: u64);
}

/// Records between two [`Progress::reached`] calls.
pub const PROGRESS_EVERY: u64 = 4096;

/// An optional observer, cheap to clone and to pass around.
pub(crate) type Observer = Option<Arc<dyn Progress>>;

/// Wraps a record iterator so that `progress` hears of every [`PROGRESS_EVERY`]th record and
/// of the last one.
pub(crate) fn track<I>(records: I, progress: Option<&dyn Progress>) -> Tracked<'_, I> {
    Tracked { records, progress, seen: 0, last: None }
}

pub(crate) struct Tracked<'a, I> {
    records: I,
    progress: Option<&'a dyn Progress>,
    seen: u64,
    last: Option<u64>,
}

impl<I: Iterator<Item = annal_wal::Result<annal_wal::Record>>> Iterator for Tracked<'_, I> {
    type Item = annal_wal::Result<annal_wal::Record>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(progress) = self.progress else { return self.records.next() };
        let next = self.records.next();
        match &next {
            Some(Ok(record)) => {
                self.seen += 1;
                self.last = Some(record.seq);
                if self.seen.is_multiple_of(PROGRESS_EVERY) {
                    progress.reached(record.seq);
                }
            }
            _ => {
                if let Some(last) = self.last.take() {
                    progress.reached(last);
                }
            }
        }
        next
    }
}

impl<I> Drop for Tracked<'_, I> {
    fn drop(&mut self) {
        if let (Some(progress), Some(last)) = (self.progress, self.last) {
            progress.reached(last);
        }
    }
}
