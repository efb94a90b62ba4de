//! `snapshot`: `annal_compactor::Snapshot::decode` on arbitrary bytes, with a round trip.
//!
//! Checks: nothing panics and nothing is allocated beyond the input (a huge `state_len` is
//! corruption, not an allocation); decoding errors are `Error::Corrupt` with an offset inside the
//! file; a decoded snapshot's lengths add up to the file's (`70 + N + S`).
//!
//! Round trip, as `docs/format.md` states the contract: `Snapshot::encode` refuses a projection
//! name that fails `check_projection_name`, while `Snapshot::decode` checks the name only for
//! UTF-8. So: a decoded snapshot whose name passes `check_projection_name` re-encodes to exactly
//! the input bytes; one whose name does not must be refused by `encode` with `Error::Invalid`
//! (not a panic).
//!
//! Input: byte 0 holds flags, the rest is the file. Flag bit 0 makes the target write the
//! correct trailing CRC before decoding, so the fuzzer gets past the checksum to the length and
//! name checks.

#![no_main]

use std::path::Path;

use annal_compactor::{Error, Snapshot, check_projection_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if flags & 1 != 0
        && let Some(at) = bytes.len().checked_sub(4)
    {
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
    }
    let path = Path::new("00000000000000000042.snap");
    match Snapshot::decode(path, &bytes) {
        Ok(s) => {
            assert_eq!(70 + s.projection.len() + s.state.len(), bytes.len(), "lengths add up");
            match s.encode() {
                Ok(enc) => {
                    assert!(check_projection_name(&s.projection).is_ok());
                    assert!(enc == bytes, "a snapshot re-encodes to the same bytes");
                    assert_eq!(Snapshot::decode(path, &enc).expect("decodes again"), s);
                }
                Err(Error::Invalid(_)) => {
                    assert!(
                        check_projection_name(&s.projection).is_err(),
                        "encode refused a snapshot with the valid name {:?}",
                        s.projection
                    );
                }
                Err(e) => panic!("encode fails only with Invalid, got {e:?}"),
            }
        }
        Err(Error::Corrupt { offset, .. }) => {
            assert!(offset <= bytes.len() as u64, "error offset {offset} inside the file");
        }
        Err(e) => panic!("decode fails only with Corrupt, got {e:?}"),
    }
});
