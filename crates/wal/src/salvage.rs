//! What is intact in damaged bytes, and what a repair needs to know of a damaged log: where the
//! first damage lies, the chain values at given sequence numbers before it, and a way to write
//! the intact frames after it into a new sealed segment. Nothing here takes the writer lock or
//! changes a file, except [`SegmentImage::write`], which the caller runs under the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::chain::{ChainValue, chain_next};
use crate::error::{Error, Result};
use crate::format::{
    self, FOOTER_BYTES, Footer, SEGMENT_HEADER_BYTES, SegmentHeader, encode_frame, encode_index,
};
use crate::log::WAL_DIR;
use crate::reader::{Reader, segment_firsts};
use crate::scan::{End, ScanOptions, find_magic, scan_segment};
use crate::storage::{OpenMode, Storage};

/// A complete frame whose checksum and record layout are intact, found in damaged bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntactFrame {
    /// Byte offset of the frame in the bytes searched.
    pub offset: u64,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Its records: timestamp (ns) and payload.
    pub records: Vec<(u64, Bytes)>,
}

impl IntactFrame {
    /// Sequence number of its last record.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.records.len() as u64 - 1
    }
}

/// Every intact frame in `bytes` (a segment, or bytes a repair cut from one), in the order they
/// lie. A frame is intact when its header decodes and its checksum covers its whole body; the
/// search goes on past damage byte by byte, and past an intact frame from its end. Sequence
/// numbers are reported as the frames hold them, gaps and repeats included: the caller decides
/// what a gap means.
#[must_use]
pub fn intact_frames(bytes: &[u8]) -> Vec<IntactFrame> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(at) = find_magic(bytes, pos) {
        pos = at + 1;
        let Ok(fh) = format::decode_frame_header(&bytes[at..]) else { continue };
        let Ok(len) = usize::try_from(fh.frame_len()) else { continue };
        let Some(frame) = bytes.get(at..at + len) else { continue };
        if format::check_frame(&fh, frame).is_err() {
            continue;
        }
        let records = format::frame_records(frame, fh.count)
            .map(|(ts, range)| (ts, Bytes::copy_from_slice(&frame[range])))
            .collect();
        found.push(IntactFrame { offset: at as u64, first_seq: fh.first_seq, records });
        pos = at + len;
    }
    found
}

/// One file in `wal/`, as its header and footer describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The file.
    pub path: PathBuf,
    /// Its first sequence number (from its name).
    pub first_seq: u64,
    /// The chain value before its first record, when its header is intact.
    pub chain_before: Option<ChainValue>,
    /// Its footer, when it ends in a valid one (it is sealed).
    pub footer: Option<Footer>,
}

/// The first damage a full read of `wal/` met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file (or, for a missing segment, the directory).
    pub file: PathBuf,
    /// Byte offset of the damage in it.
    pub offset: u64,
    /// The sequence number expected there.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

/// What [`scan_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    /// The segment files in `wal/`, oldest first.
    pub segments: Vec<SegmentFile>,
    /// The last sequence number read intact from the first segment on, in an unbroken chain
    /// (`first - 1` when none was).
    pub last_good: u64,
    /// The chain values asked for, at those of the sequence numbers that lie from the first
    /// segment's start (its `chain_before`) through `last_good`.
    pub chains: BTreeMap<u64, ChainValue>,
    /// The chain value after `last_good`.
    pub chain_head: ChainValue,
    /// The first damage, if any: a bad frame the way every reader judges one, a bad header or
    /// seal, a missing segment, or a hash chain that breaks between segments.
    pub damage: Option<Damage>,
}

impl LogScan {
    /// The first sequence number in `wal/` (1 when it holds no segment).
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(1, |s| s.first_seq)
    }
}

/// Reads every record in `dir/wal/` from its first live segment on, the way a directory reader
/// does (no lock, nothing changed), and reports where the first damage lies. Segments that hold
/// only records below `log_start` (the leftovers of a compaction a crash interrupted, which the
/// next open removes) are not part of the log and are skipped, as recovery skips them.
/// `chains_at` names the sequence numbers whose chain values the caller wants (a snapshot's,
/// say).
///
/// # Errors
/// I/O errors other than damage (an unreadable directory, a failed read).
pub fn scan_log(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    log_start: u64,
    chains_at: &BTreeSet<u64>,
) -> Result<LogScan> {
    let wal_dir = dir.join(WAL_DIR);
    let mut firsts = segment_firsts(storage.as_ref(), &wal_dir)?;
    while firsts.len() > 1 && firsts[1] <= log_start {
        firsts.remove(0);
    }
    let mut segments = Vec::new();
    for first_seq in firsts {
        let path = wal_dir.join(format::segment_file_name(first_seq));
        let (chain_before, footer) = header_and_footer(storage.as_ref(), &path)?;
        segments.push(SegmentFile { path, first_seq, chain_before, footer });
    }
    let mut scan = LogScan {
        last_good: segments.first().map_or(0, |s| s.first_seq - 1),
        segments,
        chains: BTreeMap::new(),
        chain_head: crate::chain::CHAIN_START,
        damage: None,
    };
    let Some(first) = scan.segments.first() else { return Ok(scan) };
    let Some(mut chain) = first.chain_before else {
        scan.damage = Some(Damage {
            file: first.path.clone(),
            offset: 0,
            seq: first.first_seq,
            reason: "segment header damaged".into(),
        });
        return Ok(scan);
    };
    let starts: BTreeMap<u64, (PathBuf, Option<ChainValue>)> =
        scan.segments.iter().map(|s| (s.first_seq, (s.path.clone(), s.chain_before))).collect();
    let keep = |seq: u64, chain: ChainValue, chains: &mut BTreeMap<u64, ChainValue>| {
        if chains_at.contains(&seq) {
            chains.insert(seq, chain);
        }
    };
    keep(scan.last_good, chain, &mut scan.chains);
    scan.chain_head = chain;
    for record in Reader::open(Arc::clone(storage), dir, first.first_seq)? {
        match record {
            Ok(record) => {
                if record.seq != first.first_seq
                    && let Some((path, before)) = starts.get(&record.seq)
                    && *before != Some(chain)
                {
                    scan.damage = Some(Damage {
                        file: path.clone(),
                        offset: 0,
                        seq: record.seq,
                        reason: "the hash chain breaks here: the segment header's chain value \
                                 differs from the previous segment's last"
                            .into(),
                    });
                    return Ok(scan);
                }
                chain = chain_next(&chain, record.seq, record.ts, &record.payload);
                scan.last_good = record.seq;
                scan.chain_head = chain;
                keep(record.seq, chain, &mut scan.chains);
            }
            Err(Error::Corrupt { file, offset, seq, reason }) => {
                scan.damage = Some(Damage { file, offset, seq, reason });
                return Ok(scan);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(scan)
}

/// The chain value in a segment's header and its footer, each when intact.
fn header_and_footer(
    storage: &dyn Storage,
    path: &Path,
) -> Result<(Option<ChainValue>, Option<Footer>)> {
    let file = storage.open_file(path, OpenMode::Read).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    let chain = match file.read_exact_at(&mut header, 0) {
        Ok(()) => SegmentHeader::decode(&header).ok().map(|h| h.chain_before),
        Err(_) => None,
    };
    let mut footer = [0u8; FOOTER_BYTES];
    let footer = match len.checked_sub(FOOTER_BYTES as u64) {
        Some(at) if file.read_exact_at(&mut footer, at).is_ok() => {
            Footer::decode(&footer).ok().filter(|f| f.data_end <= at)
        }
        _ => None,
    };
    Ok((chain, footer))
}

/// A sealed segment built in memory from intact frames, checked the way every reader and
/// recovery check one, and not yet written: [`SegmentImage::write`] puts it in `wal/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentImage {
    /// Its first sequence number.
    pub first_seq: u64,
    /// Its last sequence number (`first_seq - 1` for a header alone).
    pub last_seq: u64,
    /// The chain value after its last record.
    pub chain_after: ChainValue,
    bytes: Vec<u8>,
}

impl SegmentImage {
    /// Builds the segment `<first_seq>.seg` of a store of `kind` whose chain starts at
    /// `chain_before` from `frames`
    /// (contiguous from `first_seq`, oldest first): sealed, or with no frames a header alone
    /// (an empty last segment). The frames keep their records and grouping (a batch stays one
    /// frame); their watermarks are rewritten for their new offsets.
    ///
    /// # Errors
    /// `InvalidOption` for frames that are not contiguous from `first_seq`, or whose
    /// timestamps decrease.
    pub fn new(
        first_seq: u64,
        chain_before: ChainValue,
        kind: crate::StoreKind,
        frames: &[IntactFrame],
    ) -> Result<Self> {
        let mut bytes = SegmentHeader { first_seq, chain_before, kind }.encode().to_vec();
        let mut next = first_seq;
        for frame in frames {
            if frame.first_seq != next || frame.records.is_empty() {
                return Err(Error::InvalidOption(format!(
                    "frames are not contiguous: sequence {} where {next} was expected",
                    frame.first_seq
                )));
            }
            let at = bytes.len() as u64;
            encode_frame(
                &mut bytes,
                frame.first_seq,
                at,
                frame.records.iter().map(|(ts, p)| (*ts, &p[..])),
            );
            next = frame.last_seq() + 1;
        }
        // The seal is computed by the scan every reader and recovery use, so it agrees with them.
        let scan = scan_segment(&bytes, first_seq, ScanOptions { chain: true, prev_ts: 0 })
            .map_err(|e| Error::InvalidOption(format!("the new segment's header: {}", e.0)))?;
        if !matches!(scan.end, End::Clean) || scan.last_seq != next - 1 {
            return Err(Error::InvalidOption(format!(
                "the frames do not form a valid segment (timestamps must not decrease): it ends \
                 at sequence {} of {}",
                scan.last_seq,
                next - 1
            )));
        }
        if !frames.is_empty() {
            bytes.extend_from_slice(&encode_index(&scan.index));
            bytes.extend_from_slice(
                &Footer {
                    record_count: scan.record_count,
                    last_seq: scan.last_seq,
                    last_ts: scan.last_ts,
                    chain_after: scan.chain_after,
                    data_end: scan.valid_end,
                    segment_crc: scan.segment_crc,
                }
                .encode(),
            );
        }
        Ok(Self { first_seq, last_seq: scan.last_seq, chain_after: scan.chain_after, bytes })
    }

    /// Writes the segment as `dir/wal/<first_seq>.seg` through a temporary file and a rename,
    /// durably, and returns its path. An existing file of that name is replaced.
    ///
    /// Run it under the writer lock: it is how a repair restarts the log after damage that a
    /// snapshot covers.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(WAL_DIR).join(format::segment_file_name(self.first_seq));
        crate::storage::write_atomic(storage, &path, &self.bytes)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::CHAIN_START;

    fn frames(n: u64) -> Vec<u8> {
        let mut b =
            SegmentHeader { first_seq: 1, chain_before: CHAIN_START, kind: crate::StoreKind::Log }
                .encode()
                .to_vec();
        for i in 1..=n {
            let at = b.len() as u64;
            let payload = [u8::try_from(i).expect("few"); 30];
            encode_frame(&mut b, i, at, [(i, &payload[..])].into_iter());
        }
        b
    }

    #[test]
    fn finds_every_frame_around_damage() {
        let mut b = frames(5);
        let all = intact_frames(&b);
        assert_eq!(all.iter().map(|f| f.first_seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        // Damage the third frame's payload: the others are still found.
        let third = usize::try_from(all[2].offset).expect("small") + 40;
        b[third] ^= 1;
        let left = intact_frames(&b);
        assert_eq!(left.iter().map(|f| f.first_seq).collect::<Vec<_>>(), [1, 2, 4, 5]);
        assert_eq!(left[2].records[0].1.as_ref(), &[4u8; 30][..]);
        // Bytes cut at an arbitrary offset: frames are found from there.
        let cut = &b[usize::try_from(all[1].offset).expect("small") + 3..];
        assert_eq!(intact_frames(cut).iter().map(|f| f.first_seq).collect::<Vec<_>>(), [4, 5]);
        assert!(intact_frames(&[0u8; 100]).is_empty());
    }

    #[test]
    fn a_written_segment_reads_back_sealed() {
        let all = intact_frames(&frames(4));
        let dir = tempfile::tempdir().expect("tempdir");
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::OsStorage::new());
        storage.create_dir_all(&dir.path().join(WAL_DIR)).expect("wal dir");
        let chain = [7u8; 32];
        let w = SegmentImage::new(2, chain, crate::StoreKind::Log, &all[1..]).expect("image");
        assert_eq!((w.first_seq, w.last_seq), (2, 4));
        let path = w.write(storage.as_ref(), dir.path()).expect("write");
        let (before, footer) = header_and_footer(storage.as_ref(), &path).expect("read");
        assert_eq!(before, Some(chain));
        assert_eq!(footer.map(|f| (f.last_seq, f.chain_after)), Some((4, w.chain_after)));
        let read: Vec<u64> = Reader::open(Arc::clone(&storage), dir.path(), 2)
            .expect("reader")
            .map(|r| r.map(|r| r.seq))
            .collect::<Result<_>>()
            .expect("read");
        assert_eq!(read, [2, 3, 4]);
        let scan = scan_log(&storage, dir.path(), 0, &BTreeSet::from([1, 3])).expect("scan");
        assert_eq!((scan.last_good, scan.damage), (4, None));
        assert_eq!(scan.chains.get(&1), Some(&chain));
        let gap = [all[0].clone(), all[2].clone()];
        assert!(SegmentImage::new(1, chain, crate::StoreKind::Log, &gap).is_err());
    }
}
