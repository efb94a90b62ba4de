//! `segment_scan`: `scan::scan_segment` on whole segments, checking the classification
//! contract of `docs/recovery.md`.
//!
//! Three ways to build the segment from the input (byte 0, bits 0-1):
//! - 0: the raw bytes, scanned with the `first_seq` their header names (or 1 if it names none);
//! - 1: a valid header for `first_seq` 1 (chain start) followed by the fuzz bytes;
//! - 2: a valid header followed by frames generated from the input with `arbitrary` (valid
//!   CRCs, so damage, watermarks, tears and seals are reached quickly), then byte edits, a cut
//!   and zero padding.
//!
//! Bit 2 of byte 0 turns on the hash-chain computation. Checks, for every scan that returns:
//! `64 <= valid_end <= len`; `last_seq = first_seq - 1 + record_count`; the CRC covers exactly
//! `0..valid_end`; and by kind of end:
//! - `Clean`: only zeros follow `valid_end`;
//! - `Clean` or `Torn`: the bytes cut at `valid_end` plus zero padding rescan as `Clean` with the
//!   same `last_seq`, `record_count`, CRC and chain;
//! - `Torn`: `valid_end < garbage_end <= len`, and a non-zero byte ends at `garbage_end`;
//! - `Corrupt`: `64 <= offset < len`, `offset == valid_end`, and its watermark lies past it;
//! - `Sealed`: `valid_end < file_end <= len`, the footer agrees with the scan, only zeros
//!   follow `file_end`, and the bytes cut at `file_end` rescan as the same seal.

#![no_main]

use std::sync::OnceLock;

use annal_wal::format::{
    Footer, INDEX_INTERVAL_BYTES, IndexEntry, SEGMENT_HEADER_BYTES, SegmentHeader, encode_frame,
    encode_index,
};
use annal_wal::scan::{End, Scan, ScanOptions, scan_segment};
use annal_wal::{CHAIN_START, StoreKind, chain_next};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A generated segment (mode 2).
#[derive(Debug, Arbitrary)]
struct Generated {
    first_seq: u8,
    frames: Vec<GenFrame>,
    /// Seal the segment (index block and footer) after the frames.
    seal: bool,
    /// Single-byte edits: (offset modulo the length, value XORed in).
    edits: Vec<(u16, u8)>,
    /// Cut the segment to this length (modulo the length + 1), if set.
    cut: Option<u16>,
    /// Zeros appended at the end (preallocation).
    zeros: u8,
    /// Arbitrary bytes appended after the frames (before the seal, edits and cut).
    tail: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct GenFrame {
    /// Records: (timestamp increment, payload length, payload byte).
    records: Vec<(u8, u8, u8)>,
    /// The durable watermark: 0 = none, 1 = the frame's own offset, 2 = the previous frame's
    /// offset, 3 = an arbitrary value below 4096.
    watermark: (u8, u16),
    /// Skip a sequence number before this frame (a gap the scan must refuse).
    gap: bool,
}

fn generate(g: &Generated) -> (Vec<u8>, u64) {
    let first_seq = u64::from(g.first_seq).max(1);
    let chain_before = if first_seq == 1 { CHAIN_START } else { [first_seq as u8; 32] };
    let mut b = SegmentHeader { first_seq, chain_before, kind: StoreKind::Log }.encode().to_vec();
    let mut seq = first_seq;
    let mut ts = 1_000u64;
    let mut prev_at = 0u64;
    let mut chain = chain_before;
    let mut index = Vec::new();
    let mut next_index_at = 0;
    let mut count = 0u64;
    for f in g.frames.iter().take(64) {
        if f.records.is_empty() {
            continue;
        }
        if f.gap {
            seq += 1;
        }
        let at = b.len() as u64;
        let watermark = match f.watermark.0 % 4 {
            0 => 0,
            1 => at,
            2 => prev_at,
            _ => u64::from(f.watermark.1 % 4096),
        };
        let payloads: Vec<(u64, Vec<u8>)> = f
            .records
            .iter()
            .take(16)
            .map(|&(dt, len, byte)| {
                ts += u64::from(dt);
                (ts, vec![byte; usize::from(len)])
            })
            .collect();
        if at >= next_index_at {
            index.push(IndexEntry { seq, ts: payloads[0].0, offset: at });
            next_index_at = (at / INDEX_INTERVAL_BYTES + 1) * INDEX_INTERVAL_BYTES;
        }
        for (i, (t, p)) in payloads.iter().enumerate() {
            chain = chain_next(&chain, seq + i as u64, *t, p);
        }
        encode_frame(&mut b, seq, watermark, payloads.iter().map(|(t, p)| (*t, &p[..])));
        count += payloads.len() as u64;
        seq += payloads.len() as u64;
        prev_at = at;
    }
    b.extend_from_slice(&g.tail[..g.tail.len().min(512)]);
    if g.seal && count > 0 {
        let data_end = b.len() as u64;
        let segment_crc = crc32fast::hash(&b);
        b.extend_from_slice(&encode_index(&index));
        b.extend_from_slice(
            &Footer {
                record_count: count,
                last_seq: seq - 1,
                last_ts: ts,
                chain_after: chain,
                data_end,
                segment_crc,
            }
            .encode(),
        );
    }
    if !b.is_empty() {
        for &(off, x) in g.edits.iter().take(8) {
            let i = usize::from(off) % b.len();
            b[i] ^= x;
        }
    }
    if let Some(cut) = g.cut {
        let len = usize::from(cut) % (b.len() + 1);
        b.truncate(len);
    }
    b.resize(b.len() + usize::from(g.zeros), 0);
    (b, first_seq)
}

/// Whether to print each scan's outcome on stderr (`ANNAL_FUZZ_TRACE` set).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("ANNAL_FUZZ_TRACE").is_some())
}

fn check(bytes: &[u8], first_seq: u64, options: ScanOptions) {
    let result = scan_segment(bytes, first_seq, options);
    if trace() {
        match &result {
            Ok(s) => {
                eprintln!("trace: {} bytes, {} records, {:?}", bytes.len(), s.record_count, s.end)
            }
            Err(e) => eprintln!("trace: {} bytes, header error {e:?}", bytes.len()),
        }
    }
    let Ok(scan) = result else { return };
    let len = bytes.len() as u64;
    let header = SEGMENT_HEADER_BYTES as u64;
    assert!(scan.valid_end >= header && scan.valid_end <= len, "{scan:?}");
    assert_eq!(scan.last_seq, first_seq - 1 + scan.record_count, "{scan:?}");
    let valid_end = usize::try_from(scan.valid_end).expect("within the input");
    assert_eq!(scan.segment_crc, crc32fast::hash(&bytes[..valid_end]), "CRC of 0..valid_end");
    match &scan.end {
        End::Clean => {
            assert!(bytes[valid_end..].iter().all(|&b| b == 0), "Clean is followed by zeros only");
            rescan_clean(bytes, first_seq, options, &scan);
        }
        End::Torn { garbage_end, .. } => {
            assert!(*garbage_end > scan.valid_end && *garbage_end <= len, "{scan:?}");
            let g = usize::try_from(*garbage_end).expect("within the input");
            assert!(bytes[g - 1] != 0 && bytes[g..].iter().all(|&b| b == 0), "{scan:?}");
            rescan_clean(bytes, first_seq, options, &scan);
        }
        End::Corrupt { offset, watermark, .. } => {
            assert!(*offset >= header && *offset < len, "{scan:?}");
            assert_eq!(*offset, scan.valid_end, "{scan:?}");
            assert!(*watermark > *offset, "{scan:?}");
        }
        End::Sealed { footer, index, file_end } => {
            assert!(*file_end > scan.valid_end && *file_end <= len, "{scan:?}");
            assert_eq!(footer.data_end, scan.valid_end);
            assert_eq!(footer.last_seq, scan.last_seq);
            assert_eq!(footer.record_count, scan.record_count);
            assert_eq!(footer.segment_crc, scan.segment_crc);
            assert_eq!(index, &scan.index);
            if options.chain {
                assert_eq!(footer.chain_after, scan.chain_after);
            }
            let fe = usize::try_from(*file_end).expect("within the input");
            assert!(bytes[fe..].iter().all(|&b| b == 0), "only zeros follow a seal");
            let again = scan_segment(&bytes[..fe], first_seq, options).expect("same header");
            assert_eq!(again.end, scan.end, "a seal cut at its end is the same seal");
        }
    }
}

/// The valid frames alone, followed by zeros, scan as `Clean` with the same results.
fn rescan_clean(bytes: &[u8], first_seq: u64, options: ScanOptions, scan: &Scan) {
    let valid_end = usize::try_from(scan.valid_end).expect("within the input");
    for pad in [0usize, 1, 4096] {
        let mut cut = bytes[..valid_end].to_vec();
        cut.resize(valid_end + pad, 0);
        let again = scan_segment(&cut, first_seq, options).expect("the header is unchanged");
        assert_eq!(again.end, End::Clean, "cut at valid_end {valid_end} + {pad} zeros: {scan:?}");
        assert_eq!(again.valid_end, scan.valid_end);
        assert_eq!(again.last_seq, scan.last_seq);
        assert_eq!(again.record_count, scan.record_count);
        assert_eq!(again.segment_crc, scan.segment_crc);
        assert_eq!(again.chain_after, scan.chain_after);
        assert_eq!(again.last_ts, scan.last_ts);
        assert_eq!(again.index, scan.index);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let options = ScanOptions { chain: flags & 4 != 0, prev_ts: 0 };
    match flags & 3 {
        0 => {
            let first_seq = SegmentHeader::decode(rest).map_or(1, |h| h.first_seq);
            check(rest, first_seq, options);
        }
        1 => {
            let mut bytes =
                SegmentHeader { first_seq: 1, chain_before: CHAIN_START, kind: StoreKind::Log }.encode().to_vec();
            bytes.extend_from_slice(rest);
            check(&bytes, 1, options);
        }
        _ => {
            let Ok(g) = Generated::arbitrary_take_rest(Unstructured::new(rest)) else { return };
            let (bytes, first_seq) = generate(&g);
            check(&bytes, first_seq, options);
        }
    }
});
