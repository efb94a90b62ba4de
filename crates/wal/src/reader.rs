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

use crate::error::{Error, Result};
use crate::evidence::{
    clean_close_after, clean_close_covering, vouching_watermark, whole_frame_at,
};
use crate::format::{
    self, DecodeError, FOOTER_BYTES, FRAME_HEADER_BYTES, Footer, IndexEntry, SEGMENT_HEADER_BYTES,
    SegmentHeader,
};
use crate::log::{ARCHIVE_DIR, Record, Shared, WAL_DIR};
use crate::scan::check_whole_frame;
use crate::storage::{OpenMode, Storage, StorageFile};

/// Bytes read at a time from an active segment.
const WINDOW_BYTES: usize = 1024 * 1024;
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

#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    first_seq: u64,
    data: Data,
    offset: u64,
    /// End of the frames, for a sealed segment.
    end: Option<u64>,
    /// Whether this is the last segment of a directory reader.
    last: bool,
    /// First sequence number the next frame must hold; unknown right after a seek.
    expect: Option<u64>,
    /// Timestamp of the last record read through this cursor.
    prev_ts: u64,
    /// The offset whose bytes were read again once, as stale ([`Step::Again`]): at most once.
    reread_at: Option<u64>,
}

#[derive(Debug)]
enum Data {
    Mapped(Bytes),
    File {
        file: Box<dyn StorageFile>,
        window: Bytes,
        window_start: u64,
        /// Where the clean-close record is read from (see `unwritten_or_damaged`).
        storage: Arc<dyn Storage>,
    },
}

/// What reading at a cursor's offset found.
enum Step {
    /// A valid frame, whose records in the wanted range were queued; the offset past it.
    Frame(u64),
    /// No frame here: the end of the segment, or (for the last segment) not yet written.
    End,
    /// The bytes read were stale (a frame being written then, complete now): read again.
    Again,
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
                        // segment has started since, else nothing more is written yet.
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

/// Where to start reading for `seq`: the offset of the last indexed frame at or before it, and
/// that frame's first sequence number (`None`: the segment's first frame).
fn index_offset(index: &[IndexEntry], seq: u64) -> (u64, Option<u64>) {
    let i = index.partition_point(|e| e.seq <= seq);
    if i == 0 {
        (SEGMENT_HEADER_BYTES as u64, None)
    } else {
        (index[i - 1].offset, Some(index[i - 1].seq))
    }
}

fn locate_live(shared: &Shared, seq: u64) -> Result<Cursor> {
    let st = shared.state.lock();
    let i = st.sealed.partition_point(|s| s.last_seq < seq);
    if let Some(s) = st.sealed.get(i).filter(|s| s.first_seq <= seq) {
        let s = s.clone();
        drop(st);
        if s.on_disk {
            return open_sealed(shared.storage.as_ref(), &s.path, s.first_seq, seq, false);
        }
        let offset = s
            .index
            .as_deref()
            .map_or((SEGMENT_HEADER_BYTES as u64, None), |ix| index_offset(ix, seq));
        return open_active(&shared.storage, s.path, s.first_seq, offset, false);
    }
    let path = st.active.path.clone();
    let first_seq = st.active.first_seq;
    let offset = index_offset(&st.active.index, seq);
    drop(st);
    open_active(&shared.storage, path, first_seq, offset, false)
}

/// The first sequence numbers of the segment files in `dir`, ascending.
pub(crate) fn segment_firsts(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>> {
    let names = storage.list_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut firsts: Vec<u64> =
        names.iter().filter_map(|n| format::parse_segment_file_name(n)).collect();
    firsts.sort_unstable();
    Ok(firsts)
}

/// The segment of `wal_dir` (whose segments start at `firsts`) that holds `seq`, at or above
/// the first of them.
fn locate_dir(
    storage: &Arc<dyn Storage>,
    wal_dir: &Path,
    firsts: &[u64],
    seq: u64,
) -> Result<Option<Cursor>> {
    let i = firsts.partition_point(|&f| f <= seq);
    assert!(i > 0, "the caller checked that seq is at or above the first segment");
    let i = i - 1;
    let first_seq = firsts[i];
    let last = i + 1 == firsts.len();
    let path = wal_dir.join(format::segment_file_name(first_seq));
    // Only a segment known to be sealed is mapped: the writer shrinks a preallocated active
    // segment when it seals it, and touching a mapped page past the new end would kill this
    // process (SIGBUS). A valid footer at the end of the file proves the seal is complete, and a
    // sealed segment never changes again.
    if !last || has_footer(storage.as_ref(), &path)? {
        return open_sealed(storage.as_ref(), &path, first_seq, seq, last).map(Some);
    }
    let file = storage.open_file(&path, OpenMode::Read).map_err(|e| Error::io("open", &path, e))?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    let mut got = 0;
    while got < header.len() {
        match file.read_at(&mut header[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(Error::io("read", &path, e)),
        }
    }
    if let Err(e) = SegmentHeader::decode(&header[..got]) {
        // Being created: the header is the first thing written, so nothing is there yet. Any
        // other bad header is damage (after a crash, the writer's recovery repairs it).
        if header[..got].iter().all(|&b| b == 0) {
            return Ok(None);
        }
        return Err(Error::corrupt(&path, 0, first_seq, format!("segment header: {e}")));
    }
    drop(file);
    open_active(storage, path, first_seq, (SEGMENT_HEADER_BYTES as u64, None), true).map(Some)
}

/// Whether the file ends in a valid footer, read without mapping it.
fn has_footer(storage: &dyn Storage, path: &Path) -> Result<bool> {
    let file = storage.open_file(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let Some(at) = len.checked_sub(FOOTER_BYTES as u64) else { return Ok(false) };
    let mut footer = [0u8; FOOTER_BYTES];
    if file.read_exact_at(&mut footer, at).is_err() {
        return Ok(false);
    }
    Ok(Footer::decode(&footer).is_ok_and(|f| f.data_end <= at))
}

/// The sparse index of a sealed segment, read from its index block.
pub(crate) fn sealed_index(
    storage: &dyn Storage,
    path: &Path,
    first_seq: u64,
) -> Result<Vec<IndexEntry>> {
    let cursor = open_sealed(storage, path, first_seq, first_seq, false)?;
    let Data::Mapped(bytes) = &cursor.data else { unreachable!("sealed segments are mapped") };
    let end = usize::try_from(cursor.end.expect("sealed")).expect("mapped offset");
    let footer_at = bytes.len() - FOOTER_BYTES;
    format::decode_index(&bytes[end..footer_at])
        .map_err(|e| Error::corrupt(path, end as u64, first_seq, format!("index block: {e}")))
}

/// Opens a sealed segment by mapping it; checks its header and footer.
fn open_sealed(
    storage: &dyn Storage,
    path: &Path,
    first_seq: u64,
    seq: u64,
    last: bool,
) -> Result<Cursor> {
    let bytes = storage.map_file(path).map_err(|e| Error::io("map", path, e))?;
    let corrupt = |offset: u64, reason: String| Error::corrupt(path, offset, first_seq, reason);
    let header =
        SegmentHeader::decode(&bytes).map_err(|e| corrupt(0, format!("segment header: {e}")))?;
    if header.first_seq != first_seq {
        return Err(corrupt(0, "segment header names another first sequence number".into()));
    }
    let footer_at = bytes.len().checked_sub(FOOTER_BYTES).filter(|&a| a >= SEGMENT_HEADER_BYTES);
    let Some(footer_at) = footer_at else {
        return Err(corrupt(bytes.len() as u64, "sealed segment too short for a footer".into()));
    };
    let footer = Footer::decode(&bytes[footer_at..])
        .map_err(|e| corrupt(footer_at as u64, format!("footer: {e}")))?;
    let data_end = usize::try_from(footer.data_end).ok().filter(|&d| d <= footer_at);
    let Some(data_end) = data_end else {
        return Err(corrupt(footer_at as u64, "footer data end lies past the footer".into()));
    };
    let index = format::decode_index(&bytes[data_end..footer_at])
        .map_err(|e| corrupt(data_end as u64, format!("index block: {e}")))?;
    let (offset, indexed) = index_offset(&index, seq);
    Ok(Cursor {
        path: path.to_path_buf(),
        first_seq,
        offset,
        data: Data::Mapped(bytes),
        end: Some(data_end as u64),
        last,
        expect: Some(indexed.unwrap_or(first_seq)),
        prev_ts: 0,
        reread_at: None,
    })
}

fn open_active(
    storage: &Arc<dyn Storage>,
    path: PathBuf,
    first_seq: u64,
    (offset, indexed): (u64, Option<u64>),
    last: bool,
) -> Result<Cursor> {
    let file = storage.open_file(&path, OpenMode::Read).map_err(|e| Error::io("open", &path, e))?;
    Ok(Cursor {
        path,
        first_seq,
        data: Data::File {
            file,
            window: Bytes::new(),
            window_start: 0,
            storage: Arc::clone(storage),
        },
        offset,
        end: None,
        last,
        expect: Some(indexed.unwrap_or(first_seq)),
        prev_ts: 0,
        reread_at: None,
    })
}

/// Reads the frame at the cursor and queues its records within `wanted` on `out`. `strict`
/// readers (of a live log, below its acknowledged bound) report a bad frame as corruption;
/// directory readers treat it as not yet written. The frame is checked in place: the only
/// copies of the data are the records' payloads, slices sharing the mapping or the window.
fn read_step(
    cursor: &mut Cursor,
    wanted: std::ops::RangeInclusive<u64>,
    strict: bool,
    out: &mut VecDeque<Record>,
) -> Result<Step> {
    let offset = cursor.offset;
    // The sequence number the frame here must hold: what errors name.
    let next = cursor.expect.unwrap_or(*wanted.start());
    if cursor.end.is_some_and(|end| offset >= end) {
        return Ok(Step::End);
    }
    let sealed = cursor.end.is_some();
    let mapped = strict_mapped(cursor);
    // The frame header decides the frame's length; refresh a stale window once before deciding
    // that nothing is there.
    let mut refreshed = false;
    let (fh, at) = loop {
        let (data, at, got) = window(cursor, offset, FRAME_HEADER_BYTES, refreshed)?;
        let fh = match format::decode_frame_header(&data[at..at + got]) {
            Ok(fh) => fh,
            Err(DecodeError::Short | DecodeError::Magic) if refreshed || sealed => {
                if sealed && mapped {
                    return Err(Error::corrupt(
                        &cursor.path,
                        offset,
                        next,
                        "no frame where the footer says frames are",
                    ));
                }
                if sealed {
                    return Ok(Step::End);
                }
                return unwritten_or_damaged(cursor, offset, next, "no frame here");
            }
            Err(DecodeError::Short | DecodeError::Magic) => {
                refreshed = true;
                continue;
            }
            Err(e) if strict || sealed => {
                return Err(Error::corrupt(
                    &cursor.path,
                    offset,
                    next,
                    format!("frame header: {e}"),
                ));
            }
            Err(_) if !refreshed => {
                refreshed = true;
                continue;
            }
            Err(e) => {
                return unwritten_or_damaged(cursor, offset, next, &format!("frame header: {e}"));
            }
        };
        let len = usize::try_from(fh.frame_len()).expect("frame length fits usize");
        let (_, at, got) = window(cursor, offset, len, refreshed)?;
        let past_end = cursor.end.is_some_and(|end| offset + fh.frame_len() > end);
        if got < len || past_end {
            if sealed {
                return Err(Error::corrupt(
                    &cursor.path,
                    offset,
                    next,
                    format!("frame of {len} bytes runs past the end of the segment's frames"),
                ));
            }
            if !refreshed {
                refreshed = true;
                continue;
            }
            if strict {
                return Err(Error::corrupt(&cursor.path, offset, next, "incomplete frame"));
            }
            return unwritten_or_damaged(cursor, offset, next, "incomplete frame");
        }
        break (fh, at);
    };
    let len = usize::try_from(fh.frame_len()).expect("frame length fits usize");
    // Right after a seek through the sparse index the first frame may start before `next`.
    let expect =
        cursor.expect.unwrap_or(if fh.first_seq <= next && fh.first_seq >= cursor.first_seq {
            fh.first_seq
        } else {
            next
        });
    let data = match &cursor.data {
        Data::Mapped(bytes) => bytes,
        Data::File { window, .. } => window,
    };
    let frame = &data[at..at + len];
    match check_whole_frame(&fh, frame, offset, expect, cursor.prev_ts) {
        Ok(()) => {}
        Err(reason) if strict || sealed => {
            return Err(Error::corrupt(&cursor.path, offset, next, reason));
        }
        Err(reason) => return unwritten_or_damaged(cursor, offset, next, &reason),
    }
    let mut prev_ts = cursor.prev_ts;
    for (i, (ts, range)) in format::frame_records(frame, fh.count).enumerate() {
        prev_ts = ts;
        let seq = fh.first_seq + i as u64;
        if wanted.contains(&seq) {
            out.push_back(Record {
                seq,
                ts,
                payload: data.slice(at + range.start..at + range.end),
            });
        }
    }
    cursor.prev_ts = prev_ts;
    cursor.expect = Some(fh.last_seq() + 1);
    Ok(Step::Frame(offset + fh.frame_len()))
}

/// What a directory reader makes of bytes at `offset` of the last segment that hold no valid
/// frame: not yet written (the end, for now), unless a later complete frame carries a durable
/// watermark above `offset`. The writer stamps every frame with the offset below which the
/// segment was durable when the frame was written, so such a frame proves that the bytes here
/// had been synced: their damage is corruption, reported, never a silent end of the log.
fn unwritten_or_damaged(cursor: &Cursor, offset: u64, seq: u64, reason: &str) -> Result<Step> {
    let Data::File { file, window, window_start, storage } = &cursor.data else {
        unreachable!("only active segments are read leniently")
    };
    // Evidence that the bytes here were synced is read after the bytes were; before calling
    // them damage, they are read once more: a frame a writer was still writing when they were
    // first read is complete by the time evidence of its durability exists.
    if let Some(clean) =
        clean_close_covering(storage.as_ref(), &cursor.path, cursor.first_seq, offset)?
    {
        if cursor.reread_at != Some(offset) && whole_frame_at(file.as_ref(), &cursor.path, offset)?
        {
            return Ok(Step::Again);
        }
        return Err(Error::corrupt(
            &cursor.path,
            offset,
            seq,
            format!(
                "{reason}, where the log was closed cleanly with its frames ending at byte offset \
                 {} (sequence {}): damage, not an unfinished write",
                clean.data_end, clean.last_seq
            ),
        ));
    }
    // The common case, the end of the written frames: zeros (preallocation) up to the end of a
    // window read just now from `offset`. A zeroed stretch longer than a window followed by
    // frames is beyond what a reader checks here; the writer's recovery and `verify` scan it.
    let rest =
        usize::try_from(offset.saturating_sub(*window_start)).ok().and_then(|at| window.get(at..));
    if offset >= *window_start && rest.is_some_and(|r| r.iter().all(|&b| b == 0)) {
        return Ok(Step::End);
    }
    match vouching_watermark(file.as_ref(), &cursor.path, offset)? {
        None => Ok(Step::End),
        Some(_)
            if cursor.reread_at != Some(offset)
                && whole_frame_at(file.as_ref(), &cursor.path, offset)? =>
        {
            Ok(Step::Again)
        }
        Some(watermark) => Err(Error::corrupt(
            &cursor.path,
            offset,
            seq,
            format!(
                "{reason}, below the durable watermark {watermark} of a later frame (the bytes \
                 here had been synced)"
            ),
        )),
    }
}

/// Mapped (sealed) segments are immutable: a missing frame before `end` is corruption.
fn strict_mapped(cursor: &Cursor) -> bool {
    matches!(cursor.data, Data::Mapped(_))
}

/// Makes the cursor's data hold `len` bytes at `offset` (fewer at the end of the file): the
/// mapping, or the window, read again when it does not cover them or `refresh` is set. Returns
/// the data, where `offset` is in it and how many of the `len` bytes it has.
fn window(
    cursor: &mut Cursor,
    offset: u64,
    len: usize,
    refresh: bool,
) -> Result<(&Bytes, usize, usize)> {
    match &mut cursor.data {
        Data::Mapped(bytes) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
            let end = start.saturating_add(len).min(bytes.len());
            Ok((bytes, start, end - start))
        }
        Data::File { file, window, window_start, .. } => {
            let inside = offset >= *window_start
                && offset + len as u64 <= *window_start + window.len() as u64;
            if refresh || !inside {
                let want = len.max(WINDOW_BYTES);
                let mut buf = vec![0u8; want];
                let mut got = 0;
                while got < want {
                    let n = file
                        .read_at(&mut buf[got..], offset + got as u64)
                        .map_err(|e| Error::io("read", &cursor.path, e))?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                buf.truncate(got);
                *window = Bytes::from(buf);
                *window_start = offset;
            }
            let start = usize::try_from(offset - *window_start).expect("offset inside the window");
            let end = (start + len).min(window.len());
            let start = start.min(end);
            Ok((window, start, end - start))
        }
    }
}
