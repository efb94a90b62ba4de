//! `manifest`: `annal_compactor::Manifest::decode` on arbitrary bytes, with a round trip.
//!
//! Checks: nothing panics; a decoded MANIFEST has at most `MANIFEST_ENTRIES_MAX` entries, every
//! projection name passes `check_projection_name`, and it re-encodes to exactly the input bytes
//! (every field, the generation included, is stored and read back). Decoding errors are
//! `Error::Corrupt` naming an offset inside the file.
//!
//! Input: byte 0 holds flags, the rest is the file. Flag bit 0 makes the target write the
//! correct trailing CRC before decoding, so the fuzzer gets past the checksum to the entry
//! parsing (counts, name lengths, UTF-8, name rules, trailing bytes).

#![no_main]

use std::path::Path;

use annal_compactor::{Error, Manifest, check_projection_name};
use libfuzzer_sys::fuzz_target;

/// `annal_compactor`'s `MANIFEST_ENTRIES_MAX` (documented in `docs/format.md`, not exported).
const MANIFEST_ENTRIES_MAX: u32 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0
        && let Some(at) = bytes.len().checked_sub(4)
    {
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
    }
    let path = Path::new("MANIFEST");
    match Manifest::decode(path, &bytes) {
        Ok(m) => {
            assert!(m.snapshots.len() <= MANIFEST_ENTRIES_MAX as usize);
            for s in &m.snapshots {
                assert!(check_projection_name(&s.projection).is_ok(), "{:?}", s.projection);
            }
            let enc = m.encode().expect("a decoded MANIFEST encodes");
            assert!(enc == bytes, "a MANIFEST re-encodes to the same bytes");
            assert_eq!(Manifest::decode(path, &enc).expect("decodes again"), m);
        }
        Err(Error::Corrupt { offset, .. }) => {
            assert!(offset <= bytes.len() as u64, "error offset {offset} inside the file");
        }
        Err(e) => panic!("decode fails only with Corrupt, got {e:?}"),
    }
});
