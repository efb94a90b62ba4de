//! Classifying the bytes of a segment: where valid frames end, and whether what follows is
//! preallocated zeros, a seal (index block and footer), a torn tail, or corruption.
//!
//! The rule that tells a torn tail from corruption (see `docs/recovery.md`): every frame carries
//! the durable watermark, the segment offset below which all bytes had been fsynced when it was
//! written. If the first bad frame starts at offset X and some valid frame later in the file
//! carries a watermark above X, then X was durable and its damage is corruption. Otherwise
//! nothing proves X was ever durable, and the bytes from X on are a torn tail.

use crate::chain::{ChainValue, chain_next};
use crate::format::{
    self, DecodeError, FOOTER_BYTES, FRAME_MAGIC, Footer, FrameHeader, INDEX_FIXED_BYTES,
    INDEX_INTERVAL_BYTES, INDEX_MAGIC, IndexEntry, SEGMENT_HEADER_BYTES, SegmentHeader,
};

/// What follows the last valid frame of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Only zeros (preallocation) or nothing.
    Clean,
    /// A valid index block and footer that match the frames: the segment is sealed. `file_end`
    /// is where the footer ends (the file may be longer if a crash cut the seal's truncation).
    Sealed {
        /// The footer.
        footer: Footer,
        /// The sparse index from the index block.
        index: Vec<IndexEntry>,
        /// Offset just past the footer.
        file_end: u64,
    },
    /// Bytes after the valid frames that are not zeros and that no later frame vouches for.
    Torn {
        /// Offset just past the last non-zero byte.
        garbage_end: u64,
        /// Complete, checksummed frames found beyond the damage (unsynced, so not kept).
        orphan_frames: u64,
        /// What was found at the end of the valid frames.
        reason: String,
    },
    /// A bad frame below the durable watermark of a later valid frame.
    Corrupt {
        /// Offset of the bad frame.
        offset: u64,
        /// What was wrong.
        reason: String,
        /// The watermark that proves the bytes were durable.
        watermark: u64,
    },
}

/// The result of scanning one segment.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The segment header.
    pub header: SegmentHeader,
    /// Offset just past the last valid frame.
    pub valid_end: u64,
    /// Records in the valid frames.
    pub record_count: u64,
    /// Last sequence number of the valid frames (`first_seq - 1` if none).
    pub last_seq: u64,
    /// Timestamp of the last valid record (0 if none).
    pub last_ts: u64,
    /// Chain value after the last valid record (only computed when asked for).
    pub chain_after: ChainValue,
    /// Highest durable watermark carried by a valid frame.
    pub watermark: u64,
    /// CRC32 of bytes `0..valid_end`.
    pub segment_crc: u32,
    /// Sparse index of the valid frames.
    pub index: Vec<IndexEntry>,
    /// What follows the valid frames.
    pub end: End,
}

/// Options of a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Compute the hash chain (hashes every payload).
    pub chain: bool,
    /// Timestamp of the record before this segment (timestamps never decrease).
    pub prev_ts: u64,
}

/// Why the header itself is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub DecodeError);

/// Scans a whole segment held in memory. `first_seq` is the sequence number its name promises.
///
/// # Errors
/// The header does not decode or names another first sequence number.
pub fn scan_segment(
    bytes: &[u8],
    first_seq: u64,
    options: ScanOptions,
) -> Result<Scan, HeaderError> {
    let header = SegmentHeader::decode(bytes).map_err(HeaderError)?;
    if header.first_seq != first_seq {
        return Err(HeaderError(DecodeError::Field(
            "first sequence number (differs from file name)",
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..SEGMENT_HEADER_BYTES]);
    let mut scan = Scan {
        header,
        valid_end: SEGMENT_HEADER_BYTES as u64,
        record_count: 0,
        last_seq: first_seq - 1,
        last_ts: options.prev_ts,
        chain_after: header.chain_before,
        watermark: 0,
        segment_crc: 0,
        index: Vec::new(),
        end: End::Clean,
    };
    let mut next_index_at = 0u64;
    let mut at = SEGMENT_HEADER_BYTES;
    let failure = loop {
        match check_frame_at(bytes, at, scan.last_seq + 1, scan.last_ts) {
            Ok(fh) => {
                let len = usize::try_from(fh.frame_len()).expect("frame length fits usize");
                let frame = &bytes[at..at + len];
                let mut first_ts = None;
                for (i, (ts, range)) in format::frame_records(frame, fh.count).enumerate() {
                    first_ts.get_or_insert(ts);
                    scan.last_ts = ts;
                    if options.chain {
                        let seq = fh.first_seq + i as u64;
                        scan.chain_after = chain_next(&scan.chain_after, seq, ts, &frame[range]);
                    }
                }
                if at as u64 >= next_index_at {
                    scan.index.push(IndexEntry {
                        seq: fh.first_seq,
                        ts: first_ts.expect("a frame holds a record"),
                        offset: at as u64,
                    });
                    next_index_at = (at as u64 / INDEX_INTERVAL_BYTES + 1) * INDEX_INTERVAL_BYTES;
                }
                crc.update(frame);
                scan.record_count += u64::from(fh.count);
                scan.last_seq = fh.last_seq();
                scan.watermark = scan.watermark.max(fh.synced_through);
                at += len;
                scan.valid_end = at as u64;
            }
            Err(reason) => break reason,
        }
    };
    scan.segment_crc = crc.finalize();
    let rest = &bytes[at..];
    if rest.iter().all(|&b| b == 0) {
        return Ok(scan);
    }
    if let Some(end) = sealed_end(bytes, &scan, options.chain) {
        scan.end = end;
        return Ok(scan);
    }
    // Something other than zeros follows. Look for valid frames beyond it: one whose watermark
    // is past `at` proves the bad bytes had been durable.
    let mut orphan_frames = 0;
    let mut max_later_watermark = 0;
    let mut pos = at + 1;
    while let Some(found) = find_magic(bytes, pos) {
        if let Ok(fh) = format::decode_frame_header(&bytes[found..]) {
            let len = fh.frame_len();
            if (bytes.len() - found) as u64 >= len {
                let end = found + usize::try_from(len).expect("frame length fits usize");
                // A frame's watermark never lies past the frame itself; one that does is not a
                // frame this log wrote, and vouches for nothing.
                let plausible = fh.synced_through <= found as u64;
                if plausible && format::check_frame(&fh, &bytes[found..end]).is_ok() {
                    orphan_frames += 1;
                    max_later_watermark = max_later_watermark.max(fh.synced_through);
                    pos = end;
                    continue;
                }
            }
        }
        pos = found + 1;
    }
    if max_later_watermark > at as u64 {
        scan.end =
            End::Corrupt { offset: at as u64, reason: failure, watermark: max_later_watermark };
    } else {
        let garbage_end = bytes.iter().rposition(|&b| b != 0).map_or(at, |p| p + 1);
        scan.end = End::Torn { garbage_end: garbage_end as u64, orphan_frames, reason: failure };
    }
    Ok(scan)
}

/// Checks the frame at `at`: header, length within the buffer, checksum, record layout, the
/// expected first sequence number and non-decreasing timestamps. Returns what is wrong.
pub fn check_frame_at(
    bytes: &[u8],
    at: usize,
    expect_seq: u64,
    prev_ts: u64,
) -> Result<FrameHeader, String> {
    let fh = match format::decode_frame_header(&bytes[at.min(bytes.len())..]) {
        Ok(fh) => fh,
        Err(DecodeError::Short) => return Err("incomplete frame header".into()),
        Err(DecodeError::Magic) => return Err("no frame magic".into()),
        Err(e) => return Err(format!("frame header: {e}")),
    };
    let len = fh.frame_len();
    if ((bytes.len() - at) as u64) < len {
        return Err(format!(
            "incomplete frame: {len} bytes announced, {} present",
            bytes.len() - at
        ));
    }
    let end = at + usize::try_from(len).expect("frame length fits usize");
    check_whole_frame(&fh, &bytes[at..end], at as u64, expect_seq, prev_ts)?;
    Ok(fh)
}

/// Checks a whole frame found at `offset` of its segment: checksum and record layout, the
/// expected first sequence number, the watermark and non-decreasing timestamps.
pub fn check_whole_frame(
    fh: &FrameHeader,
    frame: &[u8],
    offset: u64,
    expect_seq: u64,
    prev_ts: u64,
) -> Result<(), String> {
    if let Err(e) = format::check_frame(fh, frame) {
        return Err(format!("frame {e}"));
    }
    if fh.first_seq != expect_seq {
        return Err(format!(
            "frame holds sequence {} where {expect_seq} was expected",
            fh.first_seq
        ));
    }
    if fh.synced_through > offset {
        return Err(format!("watermark {} lies past the frame itself", fh.synced_through));
    }
    let mut prev = prev_ts;
    for (ts, _) in format::frame_records(frame, fh.count) {
        if ts < prev {
            return Err(format!("timestamp {ts} is before the previous record's {prev}"));
        }
        prev = ts;
    }
    Ok(())
}

/// Whether any complete, checksummed frame (with a plausible watermark) starts at or after
/// `from`: what tells damaged data from a never-written tail.
#[must_use]
pub fn has_valid_frame(bytes: &[u8], from: usize) -> bool {
    let mut pos = from;
    while let Some(found) = find_magic(bytes, pos) {
        if let Ok(fh) = format::decode_frame_header(&bytes[found..]) {
            let len = fh.frame_len();
            if (bytes.len() - found) as u64 >= len && fh.synced_through <= found as u64 {
                let end = found + usize::try_from(len).expect("frame length fits usize");
                if format::check_frame(&fh, &bytes[found..end]).is_ok() {
                    return true;
                }
            }
        }
        pos = found + 1;
    }
    false
}

pub(crate) fn find_magic(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos < bytes.len() {
        let found = pos + bytes[pos..].iter().position(|&b| b == FRAME_MAGIC[0])?;
        if bytes[found..].starts_with(&FRAME_MAGIC) {
            return Some(found);
        }
        pos = found + 1;
    }
    None
}

/// Recognizes a seal at `scan.valid_end`: an index block, then a footer that agrees with the
/// scanned frames, then nothing but zeros.
fn sealed_end(bytes: &[u8], scan: &Scan, chain: bool) -> Option<End> {
    let at = usize::try_from(scan.valid_end).ok()?;
    let rest = &bytes[at..];
    if rest.len() < INDEX_FIXED_BYTES + FOOTER_BYTES || rest[..4] != INDEX_MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(rest[4..8].try_into().ok()?) as usize;
    let index_len = INDEX_FIXED_BYTES.checked_add(count.checked_mul(format::INDEX_ENTRY_BYTES)?)?;
    let file_end = index_len.checked_add(FOOTER_BYTES)?;
    if rest.len() < file_end || rest[file_end..].iter().any(|&b| b != 0) {
        return None;
    }
    let index = format::decode_index(&rest[..index_len]).ok()?;
    let footer = Footer::decode(&rest[index_len..file_end]).ok()?;
    let agrees = footer.data_end == scan.valid_end
        && footer.last_seq == scan.last_seq
        && footer.record_count == scan.record_count
        && footer.segment_crc == scan.segment_crc
        && index == scan.index
        && (!chain || footer.chain_after == scan.chain_after);
    agrees.then_some(End::Sealed { footer, index, file_end: (at + file_end) as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::CHAIN_START;
    use crate::format::{encode_frame, encode_index};

    const OPTS: ScanOptions = ScanOptions { chain: true, prev_ts: 0 };

    fn segment(frames: usize, synced: bool) -> (Vec<u8>, Vec<usize>) {
        let mut b =
            SegmentHeader { first_seq: 1, chain_before: CHAIN_START, kind: crate::StoreKind::Log }
                .encode()
                .to_vec();
        let mut starts = Vec::new();
        for i in 0..frames {
            starts.push(b.len());
            let watermark = if synced { b.len() as u64 } else { 0 };
            let payload = [u8::try_from(i).expect("few frames") + 1; 20];
            encode_frame(&mut b, i as u64 + 1, watermark, [(i as u64, &payload[..])].into_iter());
        }
        (b, starts)
    }

    #[test]
    fn clean_with_preallocated_zeros() {
        let (mut b, _) = segment(5, true);
        b.resize(b.len() + 4096, 0);
        let s = scan_segment(&b, 1, OPTS).expect("header ok");
        assert_eq!(s.end, End::Clean);
        assert_eq!(s.last_seq, 5);
        assert_eq!(s.record_count, 5);
    }

    #[test]
    fn torn_last_frame_is_torn_and_midlog_flip_is_corrupt() {
        let (b, starts) = segment(5, true);
        let mut torn = b[..b.len() - 3].to_vec();
        torn.resize(torn.len() + 100, 0);
        let s = scan_segment(&torn, 1, OPTS).expect("header ok");
        assert!(matches!(s.end, End::Torn { .. }), "{:?}", s.end);
        assert_eq!(s.last_seq, 4);

        let mut flipped = b.clone();
        flipped[starts[2] + 40] ^= 1;
        let s = scan_segment(&flipped, 1, OPTS).expect("header ok");
        assert_eq!(s.last_seq, 2);
        assert!(
            matches!(s.end, End::Corrupt { offset, .. } if offset == starts[2] as u64),
            "{:?}",
            s.end
        );
    }

    #[test]
    fn unsynced_frames_after_damage_are_torn() {
        let (mut b, starts) = segment(5, false);
        b[starts[2] + 40] ^= 1;
        let s = scan_segment(&b, 1, OPTS).expect("header ok");
        assert!(
            matches!(s.end, End::Torn { orphan_frames: 2, .. }),
            "later frames without a watermark do not prove durability: {:?}",
            s.end
        );
    }

    #[test]
    fn seal_is_recognized() {
        let (mut b, _) = segment(3, true);
        let s = scan_segment(&b, 1, OPTS).expect("header ok");
        b.extend_from_slice(&encode_index(&s.index));
        b.extend_from_slice(
            &Footer {
                record_count: 3,
                last_seq: 3,
                last_ts: s.last_ts,
                chain_after: s.chain_after,
                data_end: s.valid_end,
                segment_crc: s.segment_crc,
            }
            .encode(),
        );
        let sealed = scan_segment(&b, 1, OPTS).expect("header ok");
        assert!(matches!(sealed.end, End::Sealed { .. }), "{:?}", sealed.end);
    }
}
