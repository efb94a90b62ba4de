//! Byte layouts of segment files, format version 1. `docs/format.md` has the same tables.
//!
//! A segment file is: a header, frames, and, once sealed, an index block and a footer:
//!
//! ```text
//! [SegmentHeader 64 B][Frame]...[Frame][IndexBlock][Footer 80 B]
//! ```
//!
//! An active (unsealed) segment may be preallocated: after its last frame come zeros up to its
//! preallocated length. All integers are little-endian.

use std::mem::size_of;

use crate::chain::ChainValue;

/// Format version written in every segment header.
pub const FORMAT_VERSION: u32 = 1;

/// Largest frame, header included. A length field larger than this is corruption, and is
/// rejected before anything is allocated.
pub const FRAME_BYTES_MAX: u32 = 16 * 1024 * 1024;

/// Default size at which the active segment is sealed and a new one started.
pub const SEGMENT_BYTES_TARGET: u64 = 64 * 1024 * 1024;

/// Smallest configurable segment target (tests use small segments to roll often).
pub const SEGMENT_BYTES_MIN: u64 = 4 * 1024;

/// Distance in bytes between sparse index entries of a segment.
pub const INDEX_INTERVAL_BYTES: u64 = 64 * 1024;

const _: () = assert!((FRAME_BYTES_MAX as u64) < SEGMENT_BYTES_TARGET);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_TARGET);
const _: () = assert!(INDEX_INTERVAL_BYTES < SEGMENT_BYTES_TARGET);

// ---- segment header ------------------------------------------------------------------------

/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ANNALSEG";

const SH_MAGIC: usize = 0;
const SH_VERSION: usize = SH_MAGIC + size_of::<[u8; 8]>();
const SH_KIND: usize = SH_VERSION + size_of::<u32>();
const SH_FIRST_SEQ: usize = SH_KIND + size_of::<u32>();
const SH_CHAIN: usize = SH_FIRST_SEQ + size_of::<u64>();
const SH_RESERVED2: usize = SH_CHAIN + size_of::<ChainValue>();
const SH_CRC: usize = SH_RESERVED2 + size_of::<u32>();
/// Size of the segment header.
pub const SEGMENT_HEADER_BYTES: usize = SH_CRC + size_of::<u32>();
const _: () = assert!(SEGMENT_HEADER_BYTES == 64);

/// What a store's records are: raw payloads of a [`Log`](crate::Log), or the envelopes of an
/// `annal::Journal`. Every segment header records it, so that neither opens the other's store
/// (a raw append would corrupt a journal; a journal cannot decode raw payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// Written by a version that did not record the kind (the field was reserved and 0):
    /// accepted by both.
    Unmarked,
    /// Raw payloads, appended through [`Log`](crate::Log).
    #[default]
    Log,
    /// Journal envelopes, appended through `annal::Journal`.
    Journal,
}

impl StoreKind {
    /// The kind's code in the segment header.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            StoreKind::Unmarked => 0,
            StoreKind::Log => 1,
            StoreKind::Journal => 2,
        }
    }

    /// The kind a header code names, if any.
    #[must_use]
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(StoreKind::Unmarked),
            1 => Some(StoreKind::Log),
            2 => Some(StoreKind::Journal),
            _ => None,
        }
    }

    /// Whether a store of this kind can be opened as `wanted`.
    #[must_use]
    pub fn admits(self, wanted: StoreKind) -> bool {
        self == wanted || self == StoreKind::Unmarked || wanted == StoreKind::Unmarked
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::Unmarked => "a store of unrecorded kind",
            StoreKind::Log => "a log (annal_wal::Log, raw payloads)",
            StoreKind::Journal => "a journal (annal::Journal, event envelopes)",
        })
    }
}

/// The header at offset 0 of every segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the segment's first record (also its file name).
    pub first_seq: u64,
    /// Chain value before the segment's first record.
    pub chain_before: ChainValue,
    /// What the store's records are.
    pub kind: StoreKind,
}

/// Why a header, frame, index block or footer did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    Short,
    /// The magic does not match (for frames: not a frame at all).
    Magic,
    /// A format version this build does not read.
    Version(u32),
    /// The stored checksum does not match the bytes.
    Checksum,
    /// A field holds an impossible value.
    Field(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Short => f.write_str("truncated"),
            DecodeError::Magic => f.write_str("bad magic"),
            DecodeError::Version(v) => {
                write!(f, "unsupported format version {v} (this build reads {FORMAT_VERSION})")
            }
            DecodeError::Checksum => f.write_str("checksum mismatch"),
            DecodeError::Field(what) => write!(f, "invalid {what}"),
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("slice of 4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("slice of 8 bytes"))
}

fn chain_at(bytes: &[u8], at: usize) -> ChainValue {
    bytes[at..at + 32].try_into().expect("slice of 32 bytes")
}

impl SegmentHeader {
    /// Encodes the header.
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[SH_MAGIC..SH_VERSION].copy_from_slice(&SEGMENT_MAGIC);
        b[SH_VERSION..SH_KIND].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[SH_KIND..SH_FIRST_SEQ].copy_from_slice(&self.kind.code().to_le_bytes());
        b[SH_FIRST_SEQ..SH_CHAIN].copy_from_slice(&self.first_seq.to_le_bytes());
        b[SH_CHAIN..SH_RESERVED2].copy_from_slice(&self.chain_before);
        let crc = crc32fast::hash(&b[..SH_CRC]);
        b[SH_CRC..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    ///
    /// # Errors
    /// Names what is wrong: length, magic, version or checksum.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err(DecodeError::Short);
        }
        let b = &bytes[..SEGMENT_HEADER_BYTES];
        if b[SH_MAGIC..SH_VERSION] != SEGMENT_MAGIC {
            return Err(DecodeError::Magic);
        }
        if crc32fast::hash(&b[..SH_CRC]) != u32_at(b, SH_CRC) {
            return Err(DecodeError::Checksum);
        }
        let version = u32_at(b, SH_VERSION);
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let first_seq = u64_at(b, SH_FIRST_SEQ);
        if first_seq == 0 {
            return Err(DecodeError::Field("first sequence number 0"));
        }
        let kind = StoreKind::from_code(u32_at(b, SH_KIND))
            .ok_or(DecodeError::Field("store kind (not 0, 1 or 2)"))?;
        Ok(Self { first_seq, chain_before: chain_at(b, SH_CHAIN), kind })
    }
}

// ---- frames --------------------------------------------------------------------------------

/// Magic at the start of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"AFRM";

const FH_MAGIC: usize = 0;
const FH_CRC: usize = FH_MAGIC + size_of::<[u8; 4]>();
const FH_BODY_LEN: usize = FH_CRC + size_of::<u32>();
const FH_COUNT: usize = FH_BODY_LEN + size_of::<u32>();
const FH_FIRST_SEQ: usize = FH_COUNT + size_of::<u32>();
const FH_SYNCED: usize = FH_FIRST_SEQ + size_of::<u64>();
/// Size of a frame header.
pub const FRAME_HEADER_BYTES: usize = FH_SYNCED + size_of::<u64>();
const _: () = assert!(FRAME_HEADER_BYTES == 32);

const RH_TS: usize = 0;
const RH_LEN: usize = RH_TS + size_of::<u64>();
/// Size of the header of one record inside a frame body.
pub const RECORD_HEADER_BYTES: usize = RH_LEN + size_of::<u32>();

/// Largest payload of a single record.
pub const PAYLOAD_BYTES_MAX: usize =
    FRAME_BYTES_MAX as usize - FRAME_HEADER_BYTES - RECORD_HEADER_BYTES;

/// The decoded header of a frame (its checksum already verified against header and body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of the body that follows the header.
    pub body_len: u32,
    /// Records in the body (at least 1).
    pub count: u32,
    /// Sequence number of the first record; the others follow without gaps.
    pub first_seq: u64,
    /// Segment offset below which every byte was durable when this frame was written: the
    /// durable watermark. A bad frame below a later frame's watermark is corruption, not a torn
    /// write.
    pub synced_through: u64,
}

impl FrameHeader {
    /// Total bytes of the frame, header included.
    #[must_use]
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_BYTES as u64 + u64::from(self.body_len)
    }

    /// Sequence number of the last record.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }
}

/// Encodes a frame holding `records` (timestamp, payload) into `out`, and returns its length.
///
/// # Panics
/// If `records` is empty or the frame would exceed [`FRAME_BYTES_MAX`]: callers check both.
pub fn encode_frame<'a>(
    out: &mut Vec<u8>,
    first_seq: u64,
    synced_through: u64,
    records: impl ExactSizeIterator<Item = (u64, &'a [u8])> + Clone,
) -> usize {
    let count = records.len();
    assert!(count > 0, "a frame holds at least one record");
    let body_len: usize = records.clone().map(|(_, p)| RECORD_HEADER_BYTES + p.len()).sum();
    let frame_len = FRAME_HEADER_BYTES + body_len;
    assert!(frame_len <= FRAME_BYTES_MAX as usize, "frame of {frame_len} bytes over the limit");
    let start = out.len();
    out.reserve(frame_len);
    out.extend_from_slice(&FRAME_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u32::try_from(body_len).expect("checked above").to_le_bytes());
    out.extend_from_slice(&u32::try_from(count).expect("checked above").to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&synced_through.to_le_bytes());
    for (ts, payload) in records {
        out.extend_from_slice(&ts.to_le_bytes());
        out.extend_from_slice(&u32::try_from(payload.len()).expect("checked above").to_le_bytes());
        out.extend_from_slice(payload);
    }
    let crc = crc32fast::hash(&out[start + FH_BODY_LEN..]);
    out[start + FH_CRC..start + FH_BODY_LEN].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, frame_len, "encoded length matches the computed length");
    debug_assert!(
        decode_frame_header(&out[start..start + FRAME_HEADER_BYTES]).is_ok(),
        "an encoded frame header decodes"
    );
    frame_len
}

/// Decodes a frame header without checking the checksum (which needs the body). Checks the
/// magic, the length against [`FRAME_BYTES_MAX`] and that the record count fits the body.
///
/// # Errors
/// `Short` if fewer than [`FRAME_HEADER_BYTES`] bytes; `Magic`; `Field` for an impossible length
/// or count.
pub fn decode_frame_header(bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(DecodeError::Short);
    }
    if bytes[FH_MAGIC..FH_CRC] != FRAME_MAGIC {
        return Err(DecodeError::Magic);
    }
    let body_len = u32_at(bytes, FH_BODY_LEN);
    let count = u32_at(bytes, FH_COUNT);
    let first_seq = u64_at(bytes, FH_FIRST_SEQ);
    let synced_through = u64_at(bytes, FH_SYNCED);
    if u64::from(body_len) + FRAME_HEADER_BYTES as u64 > u64::from(FRAME_BYTES_MAX) {
        return Err(DecodeError::Field("frame length"));
    }
    if count == 0 || u64::from(count) * RECORD_HEADER_BYTES as u64 > u64::from(body_len) {
        return Err(DecodeError::Field("record count"));
    }
    if first_seq == 0 || first_seq.checked_add(u64::from(count)).is_none() {
        return Err(DecodeError::Field("sequence number"));
    }
    Ok(FrameHeader { body_len, count, first_seq, synced_through })
}

/// Checks a whole frame (`bytes` holds exactly header and body): the checksum, then that the
/// records exactly fill the body.
///
/// # Errors
/// `Checksum` or `Field("record length")`.
pub fn check_frame(header: &FrameHeader, bytes: &[u8]) -> Result<(), DecodeError> {
    debug_assert_eq!(bytes.len() as u64, header.frame_len(), "caller passes the whole frame");
    let stored = u32_at(bytes, FH_CRC);
    if crc32fast::hash(&bytes[FH_BODY_LEN..]) != stored {
        return Err(DecodeError::Checksum);
    }
    let mut at = FRAME_HEADER_BYTES;
    for _ in 0..header.count {
        if bytes.len() - at < RECORD_HEADER_BYTES {
            return Err(DecodeError::Field("record length"));
        }
        let len = u32_at(bytes, at + RH_LEN) as usize;
        at += RECORD_HEADER_BYTES;
        if bytes.len() - at < len {
            return Err(DecodeError::Field("record length"));
        }
        at += len;
    }
    if at != bytes.len() {
        return Err(DecodeError::Field("record length"));
    }
    Ok(())
}

/// Iterates the records (timestamp, payload range within `frame`) of a checked frame.
pub fn frame_records(
    frame: &[u8],
    count: u32,
) -> impl Iterator<Item = (u64, std::ops::Range<usize>)> + '_ {
    let mut at = FRAME_HEADER_BYTES;
    (0..count).map(move |_| {
        let ts = u64_at(frame, at + RH_TS);
        let len = u32_at(frame, at + RH_LEN) as usize;
        let start = at + RECORD_HEADER_BYTES;
        at = start + len;
        (ts, start..start + len)
    })
}

// ---- index block and footer ----------------------------------------------------------------

/// Magic of the sparse index block written when a segment is sealed.
pub const INDEX_MAGIC: [u8; 4] = *b"AIDX";

/// One sparse index entry: the first frame at or after an [`INDEX_INTERVAL_BYTES`] boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// First sequence number of the frame.
    pub seq: u64,
    /// Timestamp of the frame's first record.
    pub ts: u64,
    /// Offset of the frame in the segment.
    pub offset: u64,
}

/// Size of one encoded index entry.
pub const INDEX_ENTRY_BYTES: usize = 3 * size_of::<u64>();
const IX_MAGIC: usize = 0;
const IX_COUNT: usize = IX_MAGIC + size_of::<[u8; 4]>();
const IX_ENTRIES: usize = IX_COUNT + size_of::<u32>();
/// Fixed bytes of an index block besides its entries (magic, count, checksum).
pub const INDEX_FIXED_BYTES: usize = IX_ENTRIES + size_of::<u32>();

/// Encodes an index block.
#[must_use]
pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let mut b = Vec::with_capacity(INDEX_FIXED_BYTES + entries.len() * INDEX_ENTRY_BYTES);
    b.extend_from_slice(&INDEX_MAGIC);
    b.extend_from_slice(&u32::try_from(entries.len()).expect("index fits u32").to_le_bytes());
    for e in entries {
        b.extend_from_slice(&e.seq.to_le_bytes());
        b.extend_from_slice(&e.ts.to_le_bytes());
        b.extend_from_slice(&e.offset.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes an index block that must fill `bytes` exactly.
///
/// # Errors
/// Length, magic or checksum problems.
pub fn decode_index(bytes: &[u8]) -> Result<Vec<IndexEntry>, DecodeError> {
    if bytes.len() < INDEX_FIXED_BYTES {
        return Err(DecodeError::Short);
    }
    if bytes[IX_MAGIC..IX_COUNT] != INDEX_MAGIC {
        return Err(DecodeError::Magic);
    }
    let count = u32_at(bytes, IX_COUNT) as usize;
    let expected =
        count.checked_mul(INDEX_ENTRY_BYTES).and_then(|n| n.checked_add(INDEX_FIXED_BYTES));
    if expected != Some(bytes.len()) {
        return Err(DecodeError::Field("index entry count"));
    }
    let crc_at = bytes.len() - size_of::<u32>();
    if crc32fast::hash(&bytes[..crc_at]) != u32_at(bytes, crc_at) {
        return Err(DecodeError::Checksum);
    }
    Ok(bytes[IX_ENTRIES..crc_at]
        .chunks_exact(INDEX_ENTRY_BYTES)
        .map(|c| IndexEntry { seq: u64_at(c, 0), ts: u64_at(c, 8), offset: u64_at(c, 16) })
        .collect())
}

/// Magic of a sealed segment's footer.
pub const FOOTER_MAGIC: [u8; 8] = *b"ANNALEND";

const FT_MAGIC: usize = 0;
const FT_COUNT: usize = FT_MAGIC + size_of::<[u8; 8]>();
const FT_LAST_SEQ: usize = FT_COUNT + size_of::<u64>();
const FT_LAST_TS: usize = FT_LAST_SEQ + size_of::<u64>();
const FT_CHAIN: usize = FT_LAST_TS + size_of::<u64>();
const FT_DATA_END: usize = FT_CHAIN + size_of::<ChainValue>();
const FT_SEGMENT_CRC: usize = FT_DATA_END + size_of::<u64>();
const FT_CRC: usize = FT_SEGMENT_CRC + size_of::<u32>();
/// Size of a segment footer; it fills the last bytes of a sealed segment.
pub const FOOTER_BYTES: usize = FT_CRC + size_of::<u32>();
const _: () = assert!(FOOTER_BYTES == 80);

/// The footer of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Records in the segment.
    pub record_count: u64,
    /// Sequence number of the last record.
    pub last_seq: u64,
    /// Timestamp of the last record.
    pub last_ts: u64,
    /// Chain value after the last record.
    pub chain_after: ChainValue,
    /// Offset of the end of the last frame, where the index block starts.
    pub data_end: u64,
    /// CRC32 of bytes `0..data_end` (header and frames).
    pub segment_crc: u32,
}

impl Footer {
    /// Encodes the footer.
    #[must_use]
    pub fn encode(&self) -> [u8; FOOTER_BYTES] {
        let mut b = [0u8; FOOTER_BYTES];
        b[FT_MAGIC..FT_COUNT].copy_from_slice(&FOOTER_MAGIC);
        b[FT_COUNT..FT_LAST_SEQ].copy_from_slice(&self.record_count.to_le_bytes());
        b[FT_LAST_SEQ..FT_LAST_TS].copy_from_slice(&self.last_seq.to_le_bytes());
        b[FT_LAST_TS..FT_CHAIN].copy_from_slice(&self.last_ts.to_le_bytes());
        b[FT_CHAIN..FT_DATA_END].copy_from_slice(&self.chain_after);
        b[FT_DATA_END..FT_SEGMENT_CRC].copy_from_slice(&self.data_end.to_le_bytes());
        b[FT_SEGMENT_CRC..FT_CRC].copy_from_slice(&self.segment_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[..FT_CRC]);
        b[FT_CRC..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a footer from exactly its bytes.
    ///
    /// # Errors
    /// Length, magic or checksum problems.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != FOOTER_BYTES {
            return Err(DecodeError::Short);
        }
        if bytes[FT_MAGIC..FT_COUNT] != FOOTER_MAGIC {
            return Err(DecodeError::Magic);
        }
        if crc32fast::hash(&bytes[..FT_CRC]) != u32_at(bytes, FT_CRC) {
            return Err(DecodeError::Checksum);
        }
        let footer = Self {
            record_count: u64_at(bytes, FT_COUNT),
            last_seq: u64_at(bytes, FT_LAST_SEQ),
            last_ts: u64_at(bytes, FT_LAST_TS),
            chain_after: chain_at(bytes, FT_CHAIN),
            data_end: u64_at(bytes, FT_DATA_END),
            segment_crc: u32_at(bytes, FT_SEGMENT_CRC),
        };
        if footer.record_count == 0 {
            return Err(DecodeError::Field("record count 0"));
        }
        if footer.data_end < SEGMENT_HEADER_BYTES as u64 {
            return Err(DecodeError::Field("data end"));
        }
        Ok(footer)
    }
}

// ---- clean-close record --------------------------------------------------------------------

/// Name of the clean-close record in `wal/`: written when a log is closed cleanly (everything
/// synced), removed durably by the next writer's open before it can append.
pub const CLEAN_CLOSE_FILE: &str = "CLOSED";

/// Magic at the start of the clean-close record.
pub const CLEAN_CLOSE_MAGIC: [u8; 8] = *b"ANNALCLS";

const CC_MAGIC: usize = 0;
const CC_VERSION: usize = CC_MAGIC + size_of::<[u8; 8]>();
const CC_RESERVED: usize = CC_VERSION + size_of::<u32>();
const CC_FIRST_SEQ: usize = CC_RESERVED + size_of::<u32>();
const CC_DATA_END: usize = CC_FIRST_SEQ + size_of::<u64>();
const CC_LAST_SEQ: usize = CC_DATA_END + size_of::<u64>();
const CC_CRC: usize = CC_LAST_SEQ + size_of::<u64>();
/// Size of the clean-close record.
pub const CLEAN_CLOSE_BYTES: usize = CC_CRC + size_of::<u32>();
const _: () = assert!(CLEAN_CLOSE_BYTES == 44);

/// What a clean close left: the last segment and where its frames end. After it, damage to the
/// last frames is corruption (they were synced), never a torn tail, and opening reads the
/// segment's frames only, not its preallocated zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanClose {
    /// First sequence number of the last segment (its file name).
    pub first_seq: u64,
    /// Offset just past the segment's last frame.
    pub data_end: u64,
    /// Last sequence number of the log (`first_seq - 1` when the segment holds none).
    pub last_seq: u64,
}

impl CleanClose {
    /// Encodes the record.
    #[must_use]
    pub fn encode(&self) -> [u8; CLEAN_CLOSE_BYTES] {
        let mut b = [0u8; CLEAN_CLOSE_BYTES];
        b[CC_MAGIC..CC_VERSION].copy_from_slice(&CLEAN_CLOSE_MAGIC);
        b[CC_VERSION..CC_RESERVED].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[CC_FIRST_SEQ..CC_DATA_END].copy_from_slice(&self.first_seq.to_le_bytes());
        b[CC_DATA_END..CC_LAST_SEQ].copy_from_slice(&self.data_end.to_le_bytes());
        b[CC_LAST_SEQ..CC_CRC].copy_from_slice(&self.last_seq.to_le_bytes());
        let crc = crc32fast::hash(&b[..CC_CRC]);
        b[CC_CRC..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a record that fills `bytes` exactly.
    ///
    /// # Errors
    /// Length, magic, checksum, version or an impossible field.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != CLEAN_CLOSE_BYTES {
            return Err(DecodeError::Short);
        }
        if bytes[CC_MAGIC..CC_VERSION] != CLEAN_CLOSE_MAGIC {
            return Err(DecodeError::Magic);
        }
        if crc32fast::hash(&bytes[..CC_CRC]) != u32_at(bytes, CC_CRC) {
            return Err(DecodeError::Checksum);
        }
        let version = u32_at(bytes, CC_VERSION);
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let record = Self {
            first_seq: u64_at(bytes, CC_FIRST_SEQ),
            data_end: u64_at(bytes, CC_DATA_END),
            last_seq: u64_at(bytes, CC_LAST_SEQ),
        };
        if record.first_seq == 0 || record.last_seq + 1 < record.first_seq {
            return Err(DecodeError::Field("sequence numbers"));
        }
        if record.data_end < SEGMENT_HEADER_BYTES as u64 {
            return Err(DecodeError::Field("data end"));
        }
        Ok(record)
    }
}

/// The file name of the segment whose first record is `first_seq`.
#[must_use]
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// Parses a segment file name; `None` if `name` is not one.
#[must_use]
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_every_bit_flip_is_detected() {
        let mut out = Vec::new();
        let recs: Vec<(u64, &[u8])> = vec![(10, b"hello"), (11, b""), (12, b"world!")];
        let len = encode_frame(&mut out, 7, 64, recs.iter().copied());
        assert_eq!(len, out.len());
        let h = decode_frame_header(&out).expect("header decodes");
        assert_eq!((h.first_seq, h.count, h.synced_through), (7, 3, 64));
        check_frame(&h, &out).expect("frame checks");
        let got: Vec<(u64, Vec<u8>)> =
            frame_records(&out, h.count).map(|(ts, r)| (ts, out[r].to_vec())).collect();
        let want: Vec<(u64, Vec<u8>)> = recs.iter().map(|(t, p)| (*t, p.to_vec())).collect();
        assert_eq!(got, want);
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let ok = decode_frame_header(&bad)
                .ok()
                .filter(|h| h.frame_len() == bad.len() as u64)
                .is_some_and(|h| check_frame(&h, &bad).is_ok());
            assert!(!ok, "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn header_footer_index_round_trip() {
        let h = SegmentHeader { first_seq: 42, chain_before: [7; 32], kind: StoreKind::Journal };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
        let mut bad = h.encode();
        bad[20] ^= 4;
        assert_eq!(SegmentHeader::decode(&bad), Err(DecodeError::Checksum));
        for kind in [StoreKind::Unmarked, StoreKind::Log, StoreKind::Journal] {
            let h = SegmentHeader { kind, ..h };
            let bytes = h.encode();
            assert_eq!(u32_at(&bytes, 12), kind.code());
            assert_eq!(StoreKind::from_code(kind.code()), Some(kind));
            assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        }
        // A kind this build does not know (with a valid CRC) is refused, not read as another.
        let mut unknown = h.encode();
        unknown[12] = 3;
        let crc = crc32fast::hash(&unknown[..SH_CRC]);
        unknown[SH_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(SegmentHeader::decode(&unknown), Err(DecodeError::Field(_))));
        assert!(StoreKind::Journal.admits(StoreKind::Journal));
        assert!(StoreKind::Unmarked.admits(StoreKind::Journal));
        assert!(StoreKind::Log.admits(StoreKind::Unmarked));
        assert!(!StoreKind::Log.admits(StoreKind::Journal));
        assert!(!StoreKind::Journal.admits(StoreKind::Log));
        let f = Footer {
            record_count: 3,
            last_seq: 44,
            last_ts: 99,
            chain_after: [1; 32],
            data_end: 400,
            segment_crc: 5,
        };
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
        let entries = vec![
            IndexEntry { seq: 1, ts: 2, offset: 64 },
            IndexEntry { seq: 9, ts: 3, offset: 70000 },
        ];
        assert_eq!(decode_index(&encode_index(&entries)), Ok(entries));
    }

    #[test]
    fn clean_close_round_trip_and_every_bit_flip_is_detected() {
        let c = CleanClose { first_seq: 9, data_end: 4000, last_seq: 20 };
        let bytes = c.encode();
        assert_eq!(CleanClose::decode(&bytes), Ok(c));
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(CleanClose::decode(&bad).is_err(), "flip of bit {bit} went unnoticed");
        }
    }

    #[test]
    fn huge_length_field_is_rejected_before_allocation() {
        let mut out = Vec::new();
        encode_frame(&mut out, 1, 0, [(1u64, &b"x"[..])].into_iter());
        out[FH_BODY_LEN..FH_COUNT].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame_header(&out), Err(DecodeError::Field("frame length")));
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(1), "00000000000000000001.seg");
        assert_eq!(parse_segment_file_name("00000000000000000001.seg"), Some(1));
        assert_eq!(parse_segment_file_name("1.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000000.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.seg"), None);
    }
}
