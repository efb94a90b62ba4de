//! Segments as readers read them: a cursor over one segment (memory-mapped when sealed, read a
//! window at a time when active), finding the segment that holds a sequence number, and one
//! step of reading at a cursor's offset, which decides whether bytes without a valid frame are
//! the end of what is written or damage (see `evidence.rs`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::WINDOW_BYTES;
use crate::error::{Error, Result};
use crate::evidence::{clean_close_covering, vouching_watermark, whole_frame_at};
use crate::format::{
    self, DecodeError, FOOTER_BYTES, FRAME_HEADER_BYTES, Footer, IndexEntry, SEGMENT_HEADER_BYTES,
    SegmentHeader,
};
use crate::log::{Record, Shared};
use crate::scan::check_whole_frame;
use crate::storage::{OpenMode, Storage, StorageFile};

#[derive(Debug)]
pub(super) struct Cursor {
    pub(super) path: PathBuf,
    pub(super) first_seq: u64,
    pub(super) data: Data,
    pub(super) offset: u64,
    /// End of the frames, for a sealed segment.
    pub(super) end: Option<u64>,
    /// Whether this is the last segment of a directory reader.
    pub(super) last: bool,
    /// First sequence number the next frame must hold; unknown right after a seek.
    pub(super) expect: Option<u64>,
    /// Timestamp of the last record read through this cursor.
    pub(super) prev_ts: u64,
    /// The offset whose bytes were read again once, as stale ([`Step::Again`]): at most once.
    pub(super) reread_at: Option<u64>,
    /// Where a directory reader found the end of an active segment's frames, and where the
    /// file's data ended then: while both still hold and no frame header has appeared there,
    /// the end is still the end (a follower's poll reads 32 bytes, not the window).
    pub(super) idle_at: Option<(u64, u64)>,
}

#[derive(Debug)]
pub(super) enum Data {
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
pub(super) enum Step {
    /// A valid frame, whose records in the wanted range were queued; the offset past it.
    Frame(u64),
    /// No frame here: the end of the segment, or (for the last segment) not yet written.
    End,
    /// The bytes read were stale (a frame being written then, complete now): read again.
    Again,
}

/// Where to start reading for `seq`: the offset of the last indexed frame at or before it, and
/// that frame's first sequence number (`None`: the segment's first frame).
pub(super) fn index_offset(index: &[IndexEntry], seq: u64) -> (u64, Option<u64>) {
    let i = index.partition_point(|e| e.seq <= seq);
    if i == 0 {
        (SEGMENT_HEADER_BYTES as u64, None)
    } else {
        (index[i - 1].offset, Some(index[i - 1].seq))
    }
}

pub(super) fn locate_live(shared: &Shared, seq: u64) -> Result<Cursor> {
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
pub(super) fn locate_dir(
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
pub(super) fn has_footer(storage: &dyn Storage, path: &Path) -> Result<bool> {
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
pub(super) fn open_sealed(
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
        idle_at: None,
    })
}

pub(super) fn open_active(
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
        idle_at: None,
    })
}

/// Reads the frame at the cursor and queues its records within `wanted` on `out`. `strict`
/// readers (of a live log, below its acknowledged bound) report a bad frame as corruption;
/// directory readers treat it as not yet written. The frame is checked in place: the only
/// copies of the data are the records' payloads, slices sharing the mapping or the window.
pub(super) fn read_step(
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
    if let (Some(idle), Data::File { file, .. }) = (cursor.idle_at, &cursor.data) {
        let data_end = file.data_end().map_err(|e| Error::io("seek data", &cursor.path, e))?;
        let mut header = [0u8; FRAME_HEADER_BYTES];
        let got =
            file.read_at(&mut header, offset).map_err(|e| Error::io("read", &cursor.path, e))?;
        if idle == (offset, data_end) && header[..got].iter().all(|&b| b == 0) {
            return Ok(Step::End);
        }
        cursor.idle_at = None;
    }
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
pub(super) fn unwritten_or_damaged(
    cursor: &Cursor,
    offset: u64,
    seq: u64,
    reason: &str,
) -> Result<Step> {
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
    // The common case, the end of the written frames: zeros up to the end of a window read just
    // now from `offset`, and no written data after the window (what follows is a preallocated
    // hole). Written data after it (the zeros a writer writes ahead of its frames, or frames
    // after a zeroed stretch) is searched for a later frame's watermark, up to where the data
    // ends: a zeroed stretch of any length cannot hide frames that vouch for it.
    let rest =
        usize::try_from(offset.saturating_sub(*window_start)).ok().and_then(|at| window.get(at..));
    let data_end = file.data_end().map_err(|e| Error::io("seek data", &cursor.path, e))?;
    if offset >= *window_start
        && rest.is_some_and(|r| r.iter().all(|&b| b == 0))
        && *window_start + window.len() as u64 >= data_end
    {
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
pub(super) fn strict_mapped(cursor: &Cursor) -> bool {
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
