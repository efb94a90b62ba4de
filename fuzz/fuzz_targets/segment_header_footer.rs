//! `segment_header_footer`: `SegmentHeader::decode`, `Footer::decode` and `decode_index` on
//! arbitrary bytes, with round trips.
//!
//! Checks: nothing panics; the index decoder allocates only for entries the input holds; and
//! whatever decodes re-encodes to the same bytes. The one documented exception: the two reserved
//! u32 fields of the header (offsets 12 and 56) are "written as 0, not interpreted on read"
//! (`docs/format.md`), so a header with non-zero reserved bytes re-encodes with zeros there (and
//! a new CRC) and must decode to the same value; with zero reserved bytes it re-encodes exactly.
//! Every decoded value also meets the checks the decoders document (`first_seq != 0`,
//! `record_count != 0`, `data_end >= 64`, exact index length).
//!
//! Input: byte 0 holds flags, the rest is the structure. Flag bit 0 makes the target write the
//! correct CRC (of the header, footer or index block, per bits 1-2) before decoding, so the
//! fuzzer gets past the checksum to the field checks.

#![no_main]

use annal_wal::format::{
    FOOTER_BYTES, Footer, INDEX_ENTRY_BYTES, INDEX_FIXED_BYTES, SEGMENT_HEADER_BYTES,
    SegmentHeader, decode_index, encode_index,
};
use libfuzzer_sys::fuzz_target;

fn fix_crc(bytes: &mut [u8], crc_at: usize) {
    if bytes.len() >= crc_at + 4 {
        let crc = crc32fast::hash(&bytes[..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0 {
        match (flags >> 1) & 3 {
            0 => fix_crc(&mut bytes, SEGMENT_HEADER_BYTES - 4),
            1 => fix_crc(&mut bytes, FOOTER_BYTES - 4),
            _ => {
                if let Some(at) = bytes.len().checked_sub(4) {
                    fix_crc(&mut bytes, at);
                }
            }
        }
    }

    if let Ok(h) = SegmentHeader::decode(&bytes) {
        assert!(h.first_seq != 0);
        let enc = h.encode();
        assert_eq!(SegmentHeader::decode(&enc), Ok(h), "an encoded header decodes to itself");
        let given = &bytes[..SEGMENT_HEADER_BYTES];
        assert_eq!(enc[..12], given[..12], "magic and version");
        assert_eq!(enc[16..56], given[16..56], "first_seq and chain_before");
        let reserved_zero = given[12..16] == [0; 4] && given[56..60] == [0; 4];
        if reserved_zero {
            assert_eq!(enc[..], given[..], "a header with zero reserved fields re-encodes exactly");
        }
    }

    if let Ok(f) = Footer::decode(&bytes) {
        assert_eq!(bytes.len(), FOOTER_BYTES);
        assert!(f.record_count != 0 && f.data_end >= SEGMENT_HEADER_BYTES as u64, "{f:?}");
        assert_eq!(f.encode()[..], bytes[..], "a footer re-encodes to the same bytes");
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
    }

    if let Ok(entries) = decode_index(&bytes) {
        assert_eq!(bytes.len(), INDEX_FIXED_BYTES + entries.len() * INDEX_ENTRY_BYTES);
        assert_eq!(encode_index(&entries), bytes, "an index block re-encodes to the same bytes");
    }
});
