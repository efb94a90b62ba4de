//! Readers: iterate records from any sequence number.
//!
//! A reader of a live [`Log`](crate::Log) sees acknowledged records only, and reports any bad
//! frame it meets as corruption. A reader opened on a directory ([`Reader::open`], for example in
//! another process while a writer appends) never takes the lock and never modifies a file; in the
//! last segment it treats bytes that hold no valid frame as not yet written only when nothing
//! proves them durable (see `evidence.rs`), and reports them as corruption otherwise.
//!
//! Below the log start every reader reads `archive/`; a sequence number neither holds is
//! `Error::BeforeStart` naming the earliest, never a silent jump (`locate` decides this, once).
//!
//! Sealed segments are memory-mapped; active ones are read through a window of positional reads.
//! Memory is one window or one mapping at a time, never the whole log.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

mod segment;

use segment::{Cursor, Data, Step, locate_dir, locate_live, open_sealed, read_step};
pub(crate) use segment::{sealed_index, segment_firsts};

use crate::error::{Error, Result};
use crate::evidence::clean_close_after;
use crate::format;
use crate::log::{ARCHIVE_DIR, Record, Shared, WAL_DIR};
use crate::storage::Storage;

/// Bytes read at a time from an active segment.
const WINDOW_BYTES: usize = 1024 * 1024;
/// Ends in a row after which a directory reader at the end of the active segment looks it up
/// again from scratch (about every 10 s while following).
const IDLE_ENDS_RELOCATE: u32 = 500;
/// How often a directory reader polls for new records while following.
const POLL_INTERVAL_MS: u64 = 20;

/// An iterator over records, in sequence order, without gaps.
///
/// After it yields an error it yields nothing more.
#[derive(Debug)]
pub struct Reader {
    source: Source,
    next: u64,
    cursor: Option<Cursor>,
    buffered: VecDeque<Record>,
    prev_ts: u64,
    failed: bool,
    /// Whether a record was read.
    started: bool,
    /// Whether the reader was asked to start at the earliest record that can be read (`from`
    /// 0) rather than at a given sequence number: only then does it begin above `from`.
    from_earliest: bool,
    /// Ends met in a row on a kept active cursor (see `next`): every so often the segment is
    /// looked up again from scratch, in case its file was replaced.
    idle_ends: u32,
    /// Where the log is recorded to start (by a compaction's MANIFEST, which this crate does not
    /// read): records from there on must be held; 0 when unknown.
    log_start: u64,
    /// Reads the recorded start again, before a segment below it is called missing: a
    /// compaction may have moved it since the reader was opened.
    refresh_start: Option<RefreshStart>,
}

/// Reads where the log is recorded to start now; `None` when that cannot be read.
struct RefreshStart(Box<dyn Fn() -> Option<u64> + Send + Sync>);

impl std::fmt::Debug for RefreshStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshStart")
    }
}

#[derive(Debug)]
enum Source {
    Live(Arc<Shared>),
    Dir { storage: Arc<dyn Storage>, wal_dir: PathBuf, archive_dir: PathBuf },
}

impl Reader {
    pub(crate) fn live(shared: Arc<Shared>, from: u64) -> Self {
        Self::new(Source::Live(shared), from)
    }

    /// A reader of the log in `dir` that takes no lock and modifies nothing, for use while
    /// another process (or nobody) writes. It yields the records from `from` on (0: from the
    /// earliest record that can be read), through the segments a compaction moved to
    /// `archive/` for those below the log start, and ends at the last complete, valid frame.
    /// In the last segment, bytes that hold no valid frame are not yet written, unless a later
    /// frame's durable watermark proves they had been synced: then they are corruption.
    ///
    /// # Errors
    /// The directory has no `wal/` directory. Reading fails with `BeforeStart` for a `from`
    /// below the earliest record held (naming it), and when a compaction removes records the
    /// reader has not reached yet: never a silent gap.
    pub fn open(storage: Arc<dyn Storage>, dir: impl AsRef<Path>, from: u64) -> Result<Self> {
        let wal_dir = dir.as_ref().join(WAL_DIR);
        if !storage.exists(&wal_dir).map_err(|e| Error::io("stat", &wal_dir, e))? {
            return Err(Error::io(
                "open log",
                &wal_dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no wal directory: not a log"),
            ));
        }
        let archive_dir = dir.as_ref().join(ARCHIVE_DIR);
        Ok(Self::new(Source::Dir { storage, wal_dir, archive_dir }, from))
    }

    fn new(source: Source, from: u64) -> Self {
        Self {
            source,
            next: from.max(1),
            cursor: None,
            buffered: VecDeque::new(),
            prev_ts: 0,
            failed: false,
            started: false,
            from_earliest: from == 0,
            idle_ends: 0,
            log_start: 0,
            refresh_start: None,
        }
    }

    /// Tells the reader where the log is recorded to start (the MANIFEST's log start): a record
    /// at or above it that neither `wal/` nor `archive/` holds is then corruption (a segment is
    /// missing), never a later start of the log.
    #[must_use]
    pub fn expect_start(mut self, log_start: u64) -> Self {
        self.log_start = log_start;
        self
    }

    /// Like [`Reader::expect_start`], with a way to read the recorded start again: before a
    /// reader calls the segments below the earliest held missing, it reads the start once more,
    /// so that a reader that a compaction overtook fails with `BeforeStart`, not as corruption.
    #[must_use]
    pub fn expect_start_from(
        mut self,
        log_start: u64,
        refresh: impl Fn() -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.log_start = log_start;
        self.refresh_start = Some(RefreshStart(Box::new(refresh)));
        self
    }

    /// Whether `wal/` lists a segment after the one starting at `first_seq` (an error listing it
    /// counts as yes: the full lookup then reports it).
    fn newer_segment_than(&self, first_seq: u64) -> bool {
        match &self.source {
            Source::Dir { storage, wal_dir, .. } => segment_firsts(storage.as_ref(), wal_dir)
                .map_or(true, |firsts| firsts.last().is_some_and(|&f| f > first_seq)),
            Source::Live(_) => true,
        }
    }

    /// A directory reader at the end of a sealed segment that no segment follows: nothing more
    /// is written yet (a writer rolls by sealing, then creating the next segment), unless a
    /// clean close recorded a later last segment: then segments are missing.
    fn after_sealed_end(&mut self, path: &Path, first_seq: u64) -> Option<Result<Record>> {
        let wal_dir = path.parent()?.to_path_buf();
        let storage = match &self.source {
            Source::Dir { storage, .. } => Arc::clone(storage),
            Source::Live(_) => return None,
        };
        match clean_close_after(storage.as_ref(), &wal_dir, first_seq) {
            Ok(None) => None,
            Ok(Some(clean)) => {
                let missing = format!(
                    "segments are missing: the log was closed cleanly with its last segment \
                     starting at sequence {} and ending at {}, but no segment follows this one",
                    clean.first_seq, clean.last_seq
                );
                self.fail(Error::corrupt(path, 0, self.next, missing))
            }
            Err(e) => self.fail(e),
        }
    }

    /// The sequence number of the next record this reader will yield.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.buffered.front().map_or(self.next, |r| r.seq)
    }

    /// The offset past the last frame read, while this reader reads the segment at `path` (and
    /// nothing of the next segment yet); `None` once it has moved on.
    pub(crate) fn position_in(&self, path: &Path) -> Option<u64> {
        self.cursor.as_ref().filter(|c| c.path == path).map(|c| c.offset)
    }

    /// The next record, waiting up to `timeout` for one to be appended. `None` on timeout.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<Record>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.next() {
                return Some(item);
            }
            if self.failed {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            match &self.source {
                Source::Live(shared) => {
                    let mut st = shared.state.lock();
                    if st.visible_seq < self.next && !shared.closed.load(Ordering::Acquire) {
                        let _ = shared.cond.wait_until(&mut st, deadline);
                    } else if shared.closed.load(Ordering::Acquire) {
                        return None;
                    }
                }
                Source::Dir { .. } => {
                    let wait = Duration::from_millis(POLL_INTERVAL_MS).min(deadline - now);
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Turns this reader into one that waits for new records instead of ending; it ends when
    /// the log it reads is closed (directory readers never end).
    #[must_use]
    pub fn follow(self) -> Follow {
        Follow { reader: self }
    }

    fn fail(&mut self, err: Error) -> Option<Result<Record>> {
        self.failed = true;
        self.cursor = None;
        Some(Err(err))
    }

    /// Upper bound of what may be read now.
    fn bound(&mut self) -> Result<u64> {
        match &self.source {
            Source::Live(shared) => {
                // Without the lock while nothing needs doing: the common case, read per record.
                let visible = shared.visible.load(Ordering::Acquire);
                let start = shared.start.load(Ordering::Acquire);
                let written = shared.written.load(Ordering::Acquire);
                if self.next >= start && (self.next > visible || self.next <= written) {
                    return Ok(visible);
                }
                let (visible, written) = {
                    let st = shared.state.lock();
                    (st.visible_seq, st.written_seq)
                };
                if self.next <= visible && self.next > written {
                    crate::writer::ensure_written(shared, visible)?;
                }
                Ok(visible)
            }
            Source::Dir { .. } => Ok(u64::MAX),
        }
    }

    /// The segment holding `self.next`: in the log, or below its start in `archive/`. The one
    /// place that decides what a start below the log start means.
    fn locate(&mut self) -> Result<Option<Cursor>> {
        let (storage, archive_dir) = match &self.source {
            Source::Live(shared) => (Arc::clone(&shared.storage), shared.dir.join(ARCHIVE_DIR)),
            Source::Dir { storage, archive_dir, .. } => (Arc::clone(storage), archive_dir.clone()),
        };
        let listed = match &self.source {
            Source::Live(shared) => {
                let start = shared.start.load(Ordering::Acquire);
                if self.next >= start {
                    let cursor = locate_live(shared, self.next)?;
                    if cursor.first_seq > self.next {
                        // A compaction removed the segment between the load and the lock.
                        return self.locate();
                    }
                    return Ok(Some(cursor));
                }
                Some(start)
            }
            Source::Dir { wal_dir, .. } => {
                let firsts = segment_firsts(storage.as_ref(), wal_dir)?;
                match firsts.first() {
                    Some(&min) if self.next >= min => {
                        return locate_dir(&storage, wal_dir, &firsts, self.next);
                    }
                    Some(&min) => Some(min),
                    None if self.log_start > 1 => {
                        return Err(Error::corrupt(
                            wal_dir.clone(),
                            0,
                            self.log_start,
                            format!(
                                "no segment, but the log is recorded to start at sequence {}: \
                                 segments are missing",
                                self.log_start
                            ),
                        ));
                    }
                    None => None,
                }
            }
        };
        let archived =
            if storage.exists(&archive_dir).map_err(|e| Error::io("stat", &archive_dir, e))? {
                segment_firsts(storage.as_ref(), &archive_dir)?
            } else {
                Vec::new()
            };
        let Some(earliest) = archived.first().copied().or(listed) else {
            // Nothing written yet.
            return Ok(None);
        };
        let recorded = self.log_start.max(1);
        // Only for where a reader begins: one that a compaction overtakes later gets
        // `BeforeStart`, since the recorded start it was given may be stale by then.
        if !self.started
            && self.log_start > 0
            && earliest > recorded
            && self.next.max(recorded) < earliest
        {
            if let Some(now) = self.refresh_start.as_ref().and_then(|refresh| (refresh.0)())
                && now > self.log_start
            {
                self.log_start = now;
                return self.locate();
            }
            let dir = match &self.source {
                Source::Live(shared) => shared.wal_dir.clone(),
                Source::Dir { wal_dir, .. } => wal_dir.clone(),
            };
            return Err(Error::corrupt(
                dir,
                0,
                recorded,
                format!(
                    "segment missing: the log is recorded to start at sequence {recorded}, but the \
                     earliest segment held starts at {earliest}"
                ),
            ));
        }
        if self.next < earliest {
            if self.from_earliest && !self.started {
                self.next = earliest;
                return self.locate();
            }
            return Err(Error::BeforeStart { seq: self.next, earliest });
        }
        let i = archived.partition_point(|&f| f <= self.next);
        debug_assert!(i > 0, "next is at or above the first archived segment");
        let first_seq = archived[i - 1];
        let path = archive_dir.join(format::segment_file_name(first_seq));
        open_sealed(storage.as_ref(), &path, first_seq, self.next, false).map(Some)
    }
}

impl Iterator for Reader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if let Some(record) = self.buffered.pop_front() {
            return Some(Ok(record));
        }
        if self.failed {
            return None;
        }
        let bound = match self.bound() {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        if self.next > bound {
            return None;
        }
        let mut relocated_at = None;
        loop {
            if self.cursor.is_none() {
                match self.locate() {
                    Ok(Some(c)) => {
                        assert!(
                            c.first_seq <= self.next,
                            "a located segment starts at or before next"
                        );
                        self.cursor = Some(c);
                        // Starting at the earliest record may have moved past what is written
                        // (a log whose every record a compaction removed).
                        if self.next > bound {
                            return None;
                        }
                    }
                    Ok(None) => return None,
                    Err(e) => return self.fail(e),
                }
            }
            let live = matches!(self.source, Source::Live(_));
            let cursor = self.cursor.as_mut().expect("located above");
            match read_step(cursor, self.next..=bound, live, &mut self.buffered) {
                Ok(Step::Frame(frame_end)) => {
                    cursor.offset = frame_end;
                    if let Some(last) = self.buffered.back() {
                        self.started = true;
                        self.idle_ends = 0;
                        self.next = last.seq + 1;
                        self.prev_ts = last.ts;
                    }
                    if let Some(record) = self.buffered.pop_front() {
                        return Some(Ok(record));
                    }
                }
                Ok(Step::Again) => {
                    cursor.reread_at = Some(cursor.offset);
                    if let Data::File { window, .. } = &mut cursor.data {
                        *window = Bytes::new();
                    }
                }
                Ok(Step::End) => {
                    let (path, first_seq, offset, last) =
                        (cursor.path.clone(), cursor.first_seq, cursor.offset, cursor.last);
                    let sealed = cursor.end.is_some();
                    if !live && last {
                        // A directory reader at the end of the last segment: see whether a new
                        // segment has started since, else nothing more is written yet. While
                        // none has, an active segment's cursor stays where it is (its window
                        // dropped, so the next read sees new frames): a follower polling an idle
                        // log reads nothing again.
                        self.idle_ends += 1;
                        if !sealed
                            && !self.idle_ends.is_multiple_of(IDLE_ENDS_RELOCATE)
                            && !self.newer_segment_than(first_seq)
                        {
                            if let Some(c) = self.cursor.as_mut()
                                && let Data::File { window, file, .. } = &mut c.data
                            {
                                *window = Bytes::new();
                                c.idle_at = file.data_end().ok().map(|end| (offset, end));
                            }
                            return None;
                        }
                        self.cursor = None;
                        match self.locate() {
                            Ok(Some(c)) if c.first_seq != first_seq => {
                                self.cursor = Some(c);
                                continue;
                            }
                            Ok(_) if sealed => return self.after_sealed_end(&path, first_seq),
                            Ok(_) => return None,
                            Err(e) => return self.fail(e),
                        }
                    }
                    if relocated_at == Some(first_seq) {
                        let err = Error::corrupt(
                            path,
                            offset,
                            self.next,
                            "record missing: the segment ends before it",
                        );
                        return self.fail(err);
                    }
                    relocated_at = Some(first_seq);
                    self.cursor = None;
                }
                Err(e) => return self.fail(e),
            }
        }
    }
}

/// A reader that waits for new records; see [`Reader::follow`].
#[derive(Debug)]
pub struct Follow {
    reader: Reader,
}

impl Iterator for Follow {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(item) = self.reader.next_timeout(Duration::from_millis(250)) {
                return Some(item);
            }
            if self.reader.failed {
                return None;
            }
            if let Source::Live(shared) = &self.reader.source {
                let st = shared.state.lock();
                if shared.closed.load(Ordering::Acquire) && st.visible_seq < self.reader.next {
                    return None;
                }
            }
        }
    }
}
