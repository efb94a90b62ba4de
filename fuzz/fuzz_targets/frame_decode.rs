//! `frame_decode`: `format::decode_frame_header`, `format::check_frame` and
//! `format::frame_records` on arbitrary bytes.
//!
//! Checks: nothing panics or allocates; a decoded header satisfies what `docs/format.md`
//! promises (`count >= 1`, `12 * count <= body_len`, `32 + body_len <= FRAME_BYTES_MAX`,
//! `first_seq != 0`, `last_seq` does not overflow); a frame that passes `check_frame` yields
//! exactly `count` records whose payload ranges tile the body in order, and re-encodes with
//! `encode_frame` to the very same bytes (the CRC covers every byte but the magic and itself).
//!
//! Input: byte 0 holds flags, the rest is the frame. Flag bit 0 makes the target write the
//! correct CRC into the frame before checking it, so that the fuzzer gets past the checksum and
//! exercises the record layout checks.

#![no_main]

use annal_wal::format::{
    FRAME_BYTES_MAX, FRAME_HEADER_BYTES, RECORD_HEADER_BYTES, check_frame, decode_frame_header,
    encode_frame, frame_records,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    let Ok(header) = decode_frame_header(&bytes) else { return };

    assert!(header.count >= 1, "{header:?}");
    assert!(u64::from(header.count) * RECORD_HEADER_BYTES as u64 <= u64::from(header.body_len));
    assert!(header.frame_len() <= u64::from(FRAME_BYTES_MAX));
    assert!(header.first_seq != 0);
    assert!(header.first_seq.checked_add(u64::from(header.count)).is_some());
    assert!(header.last_seq() >= header.first_seq);

    let len = usize::try_from(header.frame_len()).expect("at most 16 MiB");
    if bytes.len() < len {
        return;
    }
    bytes.truncate(len);
    if flags & 1 != 0 {
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    }
    if check_frame(&header, &bytes).is_err() {
        return;
    }

    let records: Vec<(u64, std::ops::Range<usize>)> = frame_records(&bytes, header.count).collect();
    assert_eq!(records.len(), header.count as usize);
    let mut at = FRAME_HEADER_BYTES;
    for (ts, range) in &records {
        assert_eq!(range.start, at + RECORD_HEADER_BYTES, "records are packed back to back");
        assert!(range.end <= bytes.len(), "a payload range lies inside the frame");
        assert_eq!(u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8")), *ts);
        at = range.end;
    }
    assert_eq!(at, bytes.len(), "the records fill the body exactly");

    let mut again = Vec::new();
    let n = encode_frame(
        &mut again,
        header.first_seq,
        header.synced_through,
        records.iter().map(|(ts, r)| (*ts, &bytes[r.clone()])),
    );
    assert_eq!(n, bytes.len());
    assert!(again == bytes, "a checked frame re-encodes to the same bytes");
});
