//! Snapshot files: `snapshots/<projection>/<20-digit seq>.snap`, one projection's state at one
//! sequence number. Layout, format version 1, integers little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `ANNALSNP` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | projection schema version |
//! | 16 | 8 | sequence number the state stands at |
//! | 24 | 32 | hash-chain value after that sequence number |
//! | 56 | 8 | state length S |
//! | 64 | 2 | projection name length N |
//! | 66 | N | projection name, UTF-8 |
//! | 66+N | S | state (MessagePack) |
//! | 66+N+S | 4 | CRC32 of every byte before it |

use std::mem::size_of;
use std::path::{Path, PathBuf};

use annal_storage::Storage;
use annal_wal::ChainValue;

use annal_storage::{ensure_dir, write_atomic};

use crate::error::{Error, Result};
use crate::read::read_limited;

/// Magic at the start of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ANNALSNP";
/// Format version of snapshot files.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Largest snapshot file; a larger one is refused before anything is allocated.
pub const SNAPSHOT_BYTES_MAX: u64 = 1 << 30;
/// Longest projection name, in bytes; names are also directory names.
pub const PROJECTION_NAME_BYTES_MAX: usize = 128;
/// Directory of snapshots in a store.
pub const SNAPSHOTS_DIR: &str = "snapshots";

const SN_MAGIC: usize = 0;
const SN_FORMAT: usize = SN_MAGIC + size_of::<[u8; 8]>();
const SN_SCHEMA: usize = SN_FORMAT + size_of::<u32>();
const SN_SEQ: usize = SN_SCHEMA + size_of::<u32>();
const SN_CHAIN: usize = SN_SEQ + size_of::<u64>();
const SN_STATE_LEN: usize = SN_CHAIN + size_of::<ChainValue>();
const SN_NAME_LEN: usize = SN_STATE_LEN + size_of::<u64>();
const SN_NAME: usize = SN_NAME_LEN + size_of::<u16>();
const SN_CRC_BYTES: usize = size_of::<u32>();
const _: () = assert!(SN_NAME == 66);
const _: () = assert!(PROJECTION_NAME_BYTES_MAX < u16::MAX as usize);

/// One projection's state at one sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The projection's name.
    pub projection: String,
    /// The projection's schema version when the state was taken.
    pub schema_version: u32,
    /// The state is the fold of events `..=seq`.
    pub seq: u64,
    /// The hash-chain value after `seq`, tying the snapshot to the log.
    pub chain: ChainValue,
    /// The state, serialized (MessagePack).
    pub state: Vec<u8>,
}

/// Checks that `name` can be a projection name (and a directory name).
///
/// # Errors
/// `Invalid` naming the problem.
pub fn check_projection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= PROJECTION_NAME_BYTES_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "projection name {name:?}: 1 to {PROJECTION_NAME_BYTES_MAX} ASCII letters, digits, '-' or '_'"
        )))
    }
}

/// The path of the snapshot of `projection` at `seq` in store `dir`.
#[must_use]
pub fn snapshot_path(dir: &Path, projection: &str, seq: u64) -> PathBuf {
    dir.join(SNAPSHOTS_DIR).join(projection).join(format!("{seq:020}.snap"))
}

/// Parses a snapshot file name into its sequence number.
#[must_use]
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".snap")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())?
}

impl Snapshot {
    /// Encodes the snapshot file.
    ///
    /// # Errors
    /// `Invalid` for a bad projection name or a state over the limit.
    pub fn encode(&self) -> Result<Vec<u8>> {
        check_projection_name(&self.projection)?;
        let len = SN_NAME + self.projection.len() + self.state.len() + SN_CRC_BYTES;
        if len as u64 > SNAPSHOT_BYTES_MAX {
            return Err(Error::Invalid(format!(
                "snapshot of {} is {len} bytes, over the limit of {SNAPSHOT_BYTES_MAX}",
                self.projection
            )));
        }
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&SNAPSHOT_MAGIC);
        b.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        b.extend_from_slice(&self.schema_version.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.extend_from_slice(&self.chain);
        b.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        let name_len = u16::try_from(self.projection.len()).expect("checked name length");
        b.extend_from_slice(&name_len.to_le_bytes());
        b.extend_from_slice(self.projection.as_bytes());
        b.extend_from_slice(&self.state);
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), len, "encoded length matches the computed one");
        Ok(b)
    }

    /// Decodes a snapshot file's bytes; `file` names it in errors.
    ///
    /// # Errors
    /// `Corrupt` naming the offset and what is wrong.
    pub fn decode(file: &Path, bytes: &[u8]) -> Result<Self> {
        let corrupt = |offset: usize, reason: String| Error::corrupt(file, offset as u64, reason);
        if bytes.len() < SN_NAME + SN_CRC_BYTES {
            return Err(corrupt(0, format!("snapshot of {} bytes is too short", bytes.len())));
        }
        if bytes[SN_MAGIC..SN_FORMAT] != SNAPSHOT_MAGIC {
            return Err(corrupt(SN_MAGIC, "not a snapshot (bad magic)".into()));
        }
        let crc_at = bytes.len() - SN_CRC_BYTES;
        let stored = u32::from_le_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..crc_at]) != stored {
            return Err(corrupt(crc_at, "snapshot checksum mismatch".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let format = u32_at(SN_FORMAT);
        if format != SNAPSHOT_FORMAT {
            return Err(corrupt(
                SN_FORMAT,
                format!("snapshot format {format} (this build reads {SNAPSHOT_FORMAT})"),
            ));
        }
        let name_len =
            usize::from(u16::from_le_bytes(bytes[SN_NAME_LEN..SN_NAME].try_into().expect("2")));
        let state_len = u64_at(SN_STATE_LEN);
        let expected = ((SN_NAME + name_len + SN_CRC_BYTES) as u64).checked_add(state_len);
        if expected != Some(bytes.len() as u64) {
            return Err(corrupt(
                SN_STATE_LEN,
                format!(
                    "name and state lengths ({name_len}, {state_len}) do not add up to the file's {} bytes",
                    bytes.len()
                ),
            ));
        }
        let name_end = SN_NAME + name_len;
        let projection = std::str::from_utf8(&bytes[SN_NAME..name_end])
            .map_err(|e| corrupt(SN_NAME, format!("projection name is not UTF-8: {e}")))?
            .to_owned();
        Ok(Self {
            projection,
            schema_version: u32_at(SN_SCHEMA),
            seq: u64_at(SN_SEQ),
            chain: bytes[SN_CHAIN..SN_STATE_LEN].try_into().expect("32 bytes"),
            state: bytes[name_end..crc_at].to_vec(),
        })
    }

    /// Writes the snapshot into store `dir` atomically; returns its path and its checksum (the
    /// CRC32 stored at its end), which the MANIFEST records to tell this file from any other.
    ///
    /// # Errors
    /// Encoding or I/O errors.
    pub fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<(PathBuf, u32)> {
        let bytes = self.encode()?;
        let path = snapshot_path(dir, &self.projection, self.seq);
        ensure_dir(storage, &dir.join(SNAPSHOTS_DIR))?;
        ensure_dir(storage, path.parent().expect("snapshot paths have a directory"))?;
        write_atomic(storage, &path, &bytes)?;
        Ok((path, stored_crc(&bytes)))
    }

    /// Reads and checks a snapshot file; `expected_crc` (from the MANIFEST) must equal its
    /// checksum when given.
    ///
    /// # Errors
    /// I/O errors; `Corrupt`.
    pub fn read(storage: &dyn Storage, path: &Path, expected_crc: Option<u32>) -> Result<Self> {
        let bytes = read_limited(storage, path, SNAPSHOT_BYTES_MAX)?;
        let snapshot = Self::decode(path, &bytes)?;
        if let Some(crc) = expected_crc {
            let actual = stored_crc(&bytes);
            if actual != crc {
                return Err(Error::corrupt(
                    path,
                    (bytes.len() - SN_CRC_BYTES) as u64,
                    format!(
                        "checksum {actual:08x} differs from the MANIFEST's {crc:08x}: not the snapshot it names"
                    ),
                ));
            }
        }
        Ok(snapshot)
    }
}

/// The CRC32 stored in the last bytes of an encoded snapshot (checked by `decode`).
fn stored_crc(bytes: &[u8]) -> u32 {
    let at = bytes.len() - SN_CRC_BYTES;
    u32::from_le_bytes(bytes[at..].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            projection: "entities".into(),
            schema_version: 3,
            seq: 42,
            chain: [9; 32],
            state: vec![1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn round_trip_and_every_bit_flip_is_detected() {
        let s = sample();
        let bytes = s.encode().expect("encode");
        let path = Path::new("x.snap");
        assert_eq!(Snapshot::decode(path, &bytes).expect("decode"), s);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Snapshot::decode(path, &bad).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(Snapshot::decode(path, &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn checksums_tell_snapshots_apart() {
        let a = sample().encode().expect("a");
        let mut other = sample();
        other.seq = 43;
        let b = other.encode().expect("b");
        assert_ne!(stored_crc(&a), stored_crc(&b));
    }

    #[test]
    fn huge_state_length_is_corruption_not_overflow() {
        let mut bytes = sample().encode().expect("encode");
        bytes[SN_STATE_LEN..SN_NAME_LEN].copy_from_slice(&u64::MAX.to_le_bytes());
        let at = bytes.len() - SN_CRC_BYTES;
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
        assert!(Snapshot::decode(Path::new("x"), &bytes).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(parse_snapshot_name("00000000000000000042.snap"), Some(42));
        assert_eq!(parse_snapshot_name("42.snap"), None);
        assert!(check_projection_name("stream-index").is_ok());
        assert!(check_projection_name("../etc").is_err());
        assert!(check_projection_name("").is_err());
    }
}
