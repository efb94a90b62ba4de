//! The MANIFEST: the single commit point of a compaction. It records the log start (the
//! truncation point) and the snapshots in force, and is replaced atomically. Layout, format
//! version 1, integers little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `ANNALMAN` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | number of snapshot entries E |
//! | 16 | 8 | generation (incremented by every compaction) |
//! | 24 | 8 | log start: the first sequence number the log must hold |
//! | 32 | ... | E entries: name length u16, name, schema version u32, sequence u64, file CRC32 u32 |
//! | end-4 | 4 | CRC32 of every byte before it |

use std::mem::size_of;
use std::path::Path;

use annal_storage::Storage;

use annal_storage::write_atomic;

use crate::error::{Error, Result};
use crate::read::read_limited;
use crate::snapshot::{PROJECTION_NAME_BYTES_MAX, check_projection_name};

/// Name of the MANIFEST file in a store.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Magic at the start of the MANIFEST.
pub const MANIFEST_MAGIC: [u8; 8] = *b"ANNALMAN";
/// Format version of the MANIFEST.
pub const MANIFEST_FORMAT: u32 = 1;
/// Most snapshot entries a MANIFEST may hold.
pub const MANIFEST_ENTRIES_MAX: u32 = 1 << 16;

const MF_MAGIC: usize = 0;
const MF_FORMAT: usize = MF_MAGIC + size_of::<[u8; 8]>();
const MF_COUNT: usize = MF_FORMAT + size_of::<u32>();
const MF_GENERATION: usize = MF_COUNT + size_of::<u32>();
const MF_LOG_START: usize = MF_GENERATION + size_of::<u64>();
const MF_ENTRIES: usize = MF_LOG_START + size_of::<u64>();
const ENTRY_FIXED: usize =
    size_of::<u16>() + size_of::<u32>() + size_of::<u64>() + size_of::<u32>();
const CRC_BYTES: usize = size_of::<u32>();
/// Largest MANIFEST file.
pub const MANIFEST_BYTES_MAX: u64 = (MF_ENTRIES
    + CRC_BYTES
    + MANIFEST_ENTRIES_MAX as usize * (ENTRY_FIXED + PROJECTION_NAME_BYTES_MAX))
    as u64;

/// A snapshot in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRef {
    /// The projection.
    pub projection: String,
    /// Its schema version in the snapshot.
    pub schema_version: u32,
    /// The sequence number the snapshot stands at.
    pub seq: u64,
    /// CRC32 of the whole snapshot file.
    pub crc: u32,
}

/// The contents of the MANIFEST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented by every compaction.
    pub generation: u64,
    /// The first sequence number the log holds; segments wholly below it may be removed.
    pub log_start: u64,
    /// The snapshots in force, oldest first within each projection.
    pub snapshots: Vec<SnapshotRef>,
}

impl Manifest {
    /// Encodes the MANIFEST file.
    ///
    /// # Errors
    /// `Invalid` for a bad projection name or too many entries.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let count = u32::try_from(self.snapshots.len())
            .ok()
            .filter(|&n| n <= MANIFEST_ENTRIES_MAX)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} snapshot entries (at most {MANIFEST_ENTRIES_MAX})",
                    self.snapshots.len()
                ))
            })?;
        let mut b = Vec::new();
        b.extend_from_slice(&MANIFEST_MAGIC);
        b.extend_from_slice(&MANIFEST_FORMAT.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        b.extend_from_slice(&self.log_start.to_le_bytes());
        for s in &self.snapshots {
            check_projection_name(&s.projection)?;
            let len = u16::try_from(s.projection.len()).expect("checked name length");
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(s.projection.as_bytes());
            b.extend_from_slice(&s.schema_version.to_le_bytes());
            b.extend_from_slice(&s.seq.to_le_bytes());
            b.extend_from_slice(&s.crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        Ok(b)
    }

    /// Decodes MANIFEST bytes; `file` names it in errors.
    ///
    /// # Errors
    /// `Corrupt` naming the offset and what is wrong.
    pub fn decode(file: &Path, bytes: &[u8]) -> Result<Self> {
        let corrupt = |offset: usize, reason: String| Error::corrupt(file, offset as u64, reason);
        if bytes.len() < MF_ENTRIES + CRC_BYTES {
            return Err(corrupt(0, format!("MANIFEST of {} bytes is too short", bytes.len())));
        }
        if bytes[MF_MAGIC..MF_FORMAT] != MANIFEST_MAGIC {
            return Err(corrupt(0, "not a MANIFEST (bad magic)".into()));
        }
        let crc_at = bytes.len() - CRC_BYTES;
        if crc32fast::hash(&bytes[..crc_at])
            != u32::from_le_bytes(bytes[crc_at..].try_into().expect("4"))
        {
            return Err(corrupt(crc_at, "MANIFEST checksum mismatch".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let format = u32_at(MF_FORMAT);
        if format != MANIFEST_FORMAT {
            return Err(corrupt(
                MF_FORMAT,
                format!("MANIFEST format {format} (this build reads {MANIFEST_FORMAT})"),
            ));
        }
        let count = u32_at(MF_COUNT);
        if count > MANIFEST_ENTRIES_MAX {
            return Err(corrupt(
                MF_COUNT,
                format!("{count} entries (at most {MANIFEST_ENTRIES_MAX})"),
            ));
        }
        let mut at = MF_ENTRIES;
        let mut snapshots = Vec::with_capacity(count as usize);
        for i in 0..count {
            if crc_at - at < ENTRY_FIXED {
                return Err(corrupt(at, format!("entry {i} is truncated")));
            }
            let len = usize::from(u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2")));
            if crc_at - at < ENTRY_FIXED + len {
                return Err(corrupt(at, format!("entry {i} is truncated")));
            }
            let name = std::str::from_utf8(&bytes[at + 2..at + 2 + len])
                .map_err(|e| corrupt(at + 2, format!("entry {i}: name is not UTF-8: {e}")))?;
            check_projection_name(name).map_err(|e| corrupt(at + 2, format!("entry {i}: {e}")))?;
            let base = at + 2 + len;
            snapshots.push(SnapshotRef {
                projection: name.to_owned(),
                schema_version: u32_at(base),
                seq: u64_at(base + 4),
                crc: u32_at(base + 12),
            });
            at = base + 16;
        }
        if at != crc_at {
            return Err(corrupt(at, format!("{} bytes after the last entry", crc_at - at)));
        }
        Ok(Self { generation: u64_at(MF_GENERATION), log_start: u64_at(MF_LOG_START), snapshots })
    }

    /// Reads the MANIFEST of store `dir`; `None` if the store has none yet.
    ///
    /// # Errors
    /// I/O errors; `Corrupt`.
    pub fn read(storage: &dyn Storage, dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(MANIFEST_FILE);
        if !storage.exists(&path).map_err(|e| Error::io("stat", &path, e))? {
            return Ok(None);
        }
        let bytes = read_limited(storage, &path, MANIFEST_BYTES_MAX)?;
        Self::decode(&path, &bytes).map(Some)
    }

    /// Replaces the MANIFEST of store `dir` atomically: this is the commit point.
    ///
    /// # Errors
    /// Encoding or I/O errors.
    pub fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        Ok(write_atomic(storage, &dir.join(MANIFEST_FILE), &self.encode()?)?)
    }

    /// The snapshots of `projection` in force, oldest first.
    pub fn snapshots_of<'a>(
        &'a self,
        projection: &'a str,
    ) -> impl Iterator<Item = &'a SnapshotRef> + 'a {
        self.snapshots.iter().filter(move |s| s.projection == projection)
    }

    /// The snapshots of `projection` at schema version `schema` that a log whose first record
    /// is `log_first` continues (each at or above `log_first - 1`), newest first: where a
    /// replay or an open of that projection can start.
    pub fn starts<'a>(
        &'a self,
        projection: &'a str,
        schema: u32,
        log_first: u64,
    ) -> impl Iterator<Item = &'a SnapshotRef> + 'a {
        let mut starts: Vec<&SnapshotRef> = self
            .snapshots_of(projection)
            .filter(|s| s.schema_version == schema && s.seq >= log_first.saturating_sub(1))
            .collect();
        starts.sort_by_key(|s| std::cmp::Reverse(s.seq));
        starts.into_iter()
    }

    /// The newest of [`Manifest::starts`] at or below `target`.
    #[must_use]
    pub fn newest_start<'a>(
        &'a self,
        projection: &'a str,
        schema: u32,
        log_first: u64,
        target: u64,
    ) -> Option<&'a SnapshotRef> {
        self.starts(projection, schema, log_first).find(|s| s.seq <= target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bit_flip_is_detected() {
        let m = Manifest {
            generation: 7,
            log_start: 1001,
            snapshots: vec![
                SnapshotRef {
                    projection: "stream-index".into(),
                    schema_version: 1,
                    seq: 1000,
                    crc: 5,
                },
                SnapshotRef { projection: "entities".into(), schema_version: 2, seq: 1000, crc: 6 },
            ],
        };
        let bytes = m.encode().expect("encode");
        let path = Path::new("MANIFEST");
        assert_eq!(Manifest::decode(path, &bytes).expect("decode"), m);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Manifest::decode(path, &bad).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(Manifest::decode(path, &bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
