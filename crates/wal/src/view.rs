//! The read-only view of a log directory: which segments it holds (in `wal/` and `archive/`),
//! what each holds, where the log starts and ends and its chain head, checked the way every
//! reader checks. It takes no lock and modifies nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chain::{CHAIN_START, ChainValue, chain_next};
use crate::error::{Error, Result};
use crate::format::{self, FOOTER_BYTES, Footer, SEGMENT_HEADER_BYTES, SegmentHeader};
use crate::log::{ARCHIVE_DIR, LOCK_FILE, WAL_DIR};
use crate::reader::{Reader, segment_firsts};
use crate::storage::{LockHolder, OpenMode, Storage};

/// One segment file as a [`DirView`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The file.
    pub path: PathBuf,
    /// First sequence number (the file name).
    pub first_seq: u64,
    /// Last sequence number held (`first_seq - 1` for an empty segment).
    pub last_seq: u64,
    /// Bytes of header and frames.
    pub data_bytes: u64,
    /// The file's length, preallocation and seal included.
    pub file_bytes: u64,
    /// Whether a valid footer seals it.
    pub sealed: bool,
}

/// What a log directory holds, as [`DirView::summary`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Segments in `wal/`, oldest first, contiguous.
    pub segments: Vec<SegmentSummary>,
    /// Segments in `archive/`, oldest first.
    pub archived: Vec<SegmentSummary>,
    /// First sequence number in `wal/` (the log start; 1 for an empty log).
    pub first_seq: u64,
    /// Last readable sequence number (`first_seq - 1` when empty).
    pub last_seq: u64,
    /// Chain value after `last_seq`.
    pub chain_head: ChainValue,
    /// Who the writer lock file names, and whether a live writer holds it (`None`: no lock
    /// file, so no writer ever opened the log).
    pub lock: Option<LockHolder>,
}

impl Summary {
    /// The earliest sequence number a reader can start at: the archive's first, or the log's.
    #[must_use]
    pub fn earliest_seq(&self) -> u64 {
        self.archived.first().map_or(self.first_seq, |a| a.first_seq.min(self.first_seq))
    }
}

/// A read-only view of the log in a directory.
#[derive(Debug, Clone)]
pub struct DirView {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
}

/// Fails with [`Error::WrongKind`] when the segments of `wal_dir` record a kind that does not
/// admit `wanted`: the first and the last segment are read (every segment writer records the
/// kind it was opened as, and one of another kind is refused before it writes). A header that
/// cannot be read or decoded is left to recovery and readers, which report it with its offset.
///
/// # Errors
/// `WrongKind`; `Io` if `wal_dir` cannot be listed.
pub(crate) fn check_kind(
    storage: &dyn Storage,
    wal_dir: &Path,
    wanted: format::StoreKind,
) -> Result<()> {
    if !storage.exists(wal_dir).map_err(|e| Error::io("stat", wal_dir, e))? {
        return Ok(());
    }
    let firsts = segment_firsts(storage, wal_dir)?;
    let ends = [firsts.first(), firsts.last()];
    for first in ends.into_iter().flatten() {
        let path = wal_dir.join(format::segment_file_name(*first));
        let Ok(file) = storage.open_file(&path, OpenMode::Read) else { continue };
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        if file.read_exact_at(&mut header, 0).is_err() {
            continue;
        }
        if let Ok(h) = SegmentHeader::decode(&header)
            && !h.kind.admits(wanted)
        {
            return Err(Error::WrongKind { file: path, found: h.kind, wanted });
        }
    }
    Ok(())
}

/// Fails with [`Error::WrongKind`] when the segments of the store in `dir` record a kind that
/// `wanted` does not admit (a raw log opened as a journal, say); a store without `wal/` passes.
/// Reads two segment headers and writes nothing.
///
/// # Errors
/// `WrongKind`; `Io` if `wal/` cannot be listed.
pub fn check_store_kind(
    storage: &dyn Storage,
    dir: &Path,
    wanted: format::StoreKind,
) -> Result<()> {
    check_kind(storage, &dir.join(WAL_DIR), wanted)
}

impl DirView {
    /// A view of the log in `dir`.
    ///
    /// # Errors
    /// `dir` has no `wal/` directory.
    pub fn open(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        Reader::open(Arc::clone(&storage), &dir, 0)?;
        Ok(Self { storage, dir })
    }

    /// A reader from sequence `from` (0: the earliest held); see [`Reader::open`].
    ///
    /// # Errors
    /// As [`Reader::open`].
    pub fn read_from(&self, from: u64) -> Result<Reader> {
        Reader::open(Arc::clone(&self.storage), &self.dir, from)
    }

    /// The segments and the range of the log. Sealed segments are described by their footers,
    /// the last unsealed one by reading its frames (as a reader would: damage that a later
    /// frame's durable watermark vouches for is corruption). Costs the active segment's data,
    /// never its preallocated zeros.
    ///
    /// # Errors
    /// `Corrupt` for a segment other than the last without a valid footer, a missing segment
    /// (a gap between two), damage in the active segment; I/O errors.
    pub fn summary(&self) -> Result<Summary> {
        let wal = self.dir.join(WAL_DIR);
        let archive = self.dir.join(ARCHIVE_DIR);
        let firsts = segment_firsts(self.storage.as_ref(), &wal)?;
        let mut segments = Vec::with_capacity(firsts.len());
        let mut chain = CHAIN_START;
        for (i, &first) in firsts.iter().enumerate() {
            let path = wal.join(format::segment_file_name(first));
            if let Some(prev) = segments.last().map(|s: &SegmentSummary| s.last_seq)
                && prev + 1 != first
            {
                return Err(Error::corrupt(
                    &path,
                    0,
                    prev + 1,
                    format!(
                        "segment missing: the log holds {prev}, then this segment starts at {first}"
                    ),
                ));
            }
            let last = i + 1 == firsts.len();
            let (segment, after) = self.describe(&path, first, last, chain)?;
            chain = after;
            segments.push(segment);
        }
        if let Some(last) = segments.last().filter(|s| s.sealed)
            && let Some(clean) =
                crate::evidence::clean_close_after(self.storage.as_ref(), &wal, last.first_seq)?
        {
            return Err(Error::corrupt(
                &last.path,
                0,
                last.last_seq + 1,
                format!(
                    "segments are missing: the log was closed cleanly with its last segment \
                     starting at sequence {} and ending at {}, but no segment follows this one",
                    clean.first_seq, clean.last_seq
                ),
            ));
        }
        let mut archived = Vec::new();
        if self.storage.exists(&archive).map_err(|e| Error::io("stat", &archive, e))? {
            for first in segment_firsts(self.storage.as_ref(), &archive)? {
                let path = archive.join(format::segment_file_name(first));
                match self.describe(&path, first, false, CHAIN_START) {
                    Ok((segment, _)) => archived.push(segment),
                    // A copy a compaction is writing (or a crash interrupted) while the segment
                    // is still in the log: the log's is the one that counts.
                    Err(_) if firsts.contains(&first) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // The archive holds the log below its start without a gap, up to where `wal/` begins.
        for pair in archived.windows(2) {
            if pair[0].last_seq + 1 != pair[1].first_seq {
                return Err(Error::corrupt(
                    &archive,
                    0,
                    pair[0].last_seq + 1,
                    format!(
                        "archived segment missing: the archive holds {}, then a segment starting at {}",
                        pair[0].last_seq, pair[1].first_seq
                    ),
                ));
            }
        }
        if let (Some(a), Some(&w)) = (archived.last(), firsts.first())
            && a.last_seq + 1 < w
        {
            return Err(Error::corrupt(
                &archive,
                0,
                a.last_seq + 1,
                format!(
                    "segment missing: the archive ends at {}, and wal/ starts at {w}",
                    a.last_seq
                ),
            ));
        }
        let first_seq = firsts.first().copied().unwrap_or(1);
        let last_seq = segments.last().map_or(first_seq - 1, |s| s.last_seq);
        let lock_path = self.dir.join(LOCK_FILE);
        let lock =
            self.storage.lock_holder(&lock_path).map_err(|e| Error::io("probe", &lock_path, e))?;
        Ok(Summary { segments, archived, first_seq, last_seq, chain_head: chain, lock })
    }

    /// The first sequence number `wal/` holds (the first segment's; 1 for an empty log),
    /// from the file names alone.
    ///
    /// # Errors
    /// `wal/` cannot be listed.
    pub fn log_first(&self) -> Result<u64> {
        let firsts = segment_firsts(self.storage.as_ref(), &self.dir.join(WAL_DIR))?;
        Ok(firsts.first().copied().unwrap_or(1))
    }

    /// Where a hash chain through `seq` can start: the first sequence number of the segment
    /// (in `archive/` below the log's first segment, else in `wal/`) that holds `seq` (0: the
    /// earliest held), and the chain value before it, from that segment's header.
    ///
    /// # Errors
    /// `BeforeStart` for a `seq` below the earliest held; `Corrupt` for a damaged header; I/O.
    pub fn chain_start(&self, seq: u64) -> Result<(u64, ChainValue)> {
        let wal = self.dir.join(WAL_DIR);
        let archive = self.dir.join(ARCHIVE_DIR);
        let in_log = segment_firsts(self.storage.as_ref(), &wal)?;
        let archived =
            if self.storage.exists(&archive).map_err(|e| Error::io("stat", &archive, e))? {
                segment_firsts(self.storage.as_ref(), &archive)?
            } else {
                Vec::new()
            };
        let Some(&log_first) = in_log.first() else {
            return Ok((1, CHAIN_START));
        };
        let earliest = archived.first().map_or(log_first, |&a| a.min(log_first));
        let seq = if seq == 0 { earliest } else { seq };
        if seq < earliest {
            return Err(Error::BeforeStart { seq, earliest });
        }
        let (place, firsts) = if seq < log_first { (archive, &archived) } else { (wal, &in_log) };
        let first = firsts.iter().rev().find(|&&f| f <= seq).copied().unwrap_or(earliest);
        let path = place.join(format::segment_file_name(first));
        let file = self
            .storage
            .open_file(&path, OpenMode::Read)
            .map_err(|e| Error::io("open", &path, e))?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        let got = file.read_at(&mut header, 0).map_err(|e| Error::io("read", &path, e))?;
        match SegmentHeader::decode(&header[..got]) {
            Ok(h) if h.first_seq == first => Ok((first, h.chain_before)),
            Ok(_) => Err(Error::corrupt(
                &path,
                0,
                first,
                "segment header names another first sequence number",
            )),
            // A segment being created, before its header is written: the chain starts where
            // the segment before it starts.
            Err(_) if header[..got].iter().all(|&b| b == 0) => {
                if first == 1 {
                    Ok((1, CHAIN_START))
                } else {
                    self.chain_start(first - 1)
                }
            }
            Err(e) => Err(Error::corrupt(&path, 0, first, format!("segment header: {e}"))),
        }
    }

    /// One segment and the chain value after it (`chain` is the value before it, used only for
    /// an empty segment whose header is not written yet).
    fn describe(
        &self,
        path: &Path,
        first_seq: u64,
        last: bool,
        chain: ChainValue,
    ) -> Result<(SegmentSummary, ChainValue)> {
        let storage = self.storage.as_ref();
        let file =
            storage.open_file(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
        let file_bytes = file.len().map_err(|e| Error::io("stat", path, e))?;
        let corrupt = |offset: u64, reason: String| Error::corrupt(path, offset, first_seq, reason);
        if let Some(at) = file_bytes.checked_sub(FOOTER_BYTES as u64) {
            let mut tail = [0u8; FOOTER_BYTES];
            file.read_exact_at(&mut tail, at).map_err(|e| Error::io("read", path, e))?;
            match Footer::decode(&tail) {
                Ok(f) if f.data_end <= at => {
                    let summary = SegmentSummary {
                        path: path.to_path_buf(),
                        first_seq,
                        last_seq: f.last_seq,
                        data_bytes: f.data_end,
                        file_bytes,
                        sealed: true,
                    };
                    return Ok((summary, f.chain_after));
                }
                Ok(_) => return Err(corrupt(at, "footer data end lies past the footer".into())),
                Err(e) if !last => {
                    return Err(corrupt(at, format!("sealed segment's footer: {e}")));
                }
                Err(_) => {}
            }
        } else if !last {
            return Err(corrupt(file_bytes, "sealed segment too short for a footer".into()));
        }
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        let got = file.read_at(&mut header, 0).map_err(|e| Error::io("read", path, e))?;
        let header = match SegmentHeader::decode(&header[..got]) {
            Ok(h) => h,
            // Being created: the header is the first thing written.
            Err(_) if header[..got].iter().all(|&b| b == 0) => {
                let summary = SegmentSummary {
                    path: path.to_path_buf(),
                    first_seq,
                    last_seq: first_seq - 1,
                    data_bytes: 0,
                    file_bytes,
                    sealed: false,
                };
                return Ok((summary, chain));
            }
            Err(e) => return Err(corrupt(0, format!("segment header: {e}"))),
        };
        if header.first_seq != first_seq {
            return Err(corrupt(0, "segment header names another first sequence number".into()));
        }
        let mut reader = self.read_from(first_seq)?;
        let mut chain = header.chain_before;
        let mut last_seq = first_seq - 1;
        let mut data_bytes = SEGMENT_HEADER_BYTES as u64;
        while let Some(record) = reader.next() {
            let record = record?;
            match reader.position_in(path) {
                Some(offset) => data_bytes = offset,
                None => break,
            }
            chain = chain_next(&chain, record.seq, record.ts, &record.payload);
            last_seq = record.seq;
        }
        let summary = SegmentSummary {
            path: path.to_path_buf(),
            first_seq,
            last_seq,
            data_bytes,
            file_bytes,
            sealed: false,
        };
        Ok((summary, chain))
    }
}
