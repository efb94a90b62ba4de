//! Guards the directory reader (the one every CLI read and every reader in another process
//! uses) against returning a silent prefix: damage in the active segment that a later frame's
//! durable watermark vouches for is corruption naming the file, offset and sequence number,
//! never "not yet written"; and a reader never jumps over records that are gone from the log.

mod common;

use std::sync::Arc;

use annal_wal::{Durability, Error, Reader, Record};
use common::{Env, both, payload, small};

fn dir_read(env: &Env, from: u64) -> annal_wal::Result<Vec<Record>> {
    Reader::open(Arc::clone(&env.storage), &env.dir, from)?.collect()
}

/// Appends `n` durable records one by one (each frame vouches for the ones before it) and
/// returns the active segment's path and the offsets where its frames start.
fn synced_frames(env: &Env, n: u64) -> (std::path::PathBuf, Vec<u64>) {
    let options = annal_wal::Options { segment_bytes_target: 1 << 20, ..small(Durability::Sync) };
    let log = env.open(options).expect("open");
    for seq in 1..=n {
        log.append(&payload(seq)).expect("append");
    }
    let active = log.segments().pop().expect("a segment");
    let starts: Vec<u64> = {
        let mut at = annal_wal::format::SEGMENT_HEADER_BYTES as u64;
        let mut starts = Vec::new();
        for seq in 1..=n {
            starts.push(at);
            let record = annal_wal::format::RECORD_HEADER_BYTES + payload(seq).len();
            at += (annal_wal::format::FRAME_HEADER_BYTES + record) as u64;
        }
        starts
    };
    drop(log);
    (active.path, starts)
}

#[test]
fn a_flip_below_a_later_watermark_fails_the_directory_reader_at_every_byte() {
    both(|env| {
        let n = 6;
        let (path, starts) = synced_frames(env, n);
        let intact = dir_read(env, 1).expect("intact store reads");
        assert_eq!(intact.len(), 6, "{}", env.name());
        // Every byte of frames 2..5: frame 6 (and those after the damaged one) vouch for them.
        for (i, window) in starts.windows(2).enumerate().skip(1).take(4) {
            for offset in window[0]..window[1] {
                env.flip_bit(&path, offset, 3);
                let got = dir_read(env, 1);
                env.flip_bit(&path, offset, 3);
                let seq = i as u64 + 1;
                match got {
                    Err(Error::Corrupt { file, offset: at, seq: s, .. }) => {
                        assert_eq!(file, path, "{}", env.name());
                        assert_eq!(at, window[0], "{}: offset of the damaged frame", env.name());
                        assert_eq!(s, seq, "{}: sequence of the damaged frame", env.name());
                    }
                    other => panic!(
                        "{}: flip at {offset} (frame of seq {seq}) gave {:?}",
                        env.name(),
                        other.map(|r| r.len())
                    ),
                }
            }
        }
        assert_eq!(dir_read(env, 1).expect("restored").len(), 6);
    });
}

#[test]
fn a_reader_from_the_middle_reports_damage_ahead_of_it() {
    both(|env| {
        let (path, starts) = synced_frames(env, 6);
        env.flip_bit(&path, starts[3] + 40, 0);
        let got = dir_read(env, 3);
        assert!(
            matches!(got, Err(Error::Corrupt { seq: 4, .. })),
            "{}: {:?}",
            env.name(),
            got.map(|r| r.len())
        );
    });
}

/// A zeroed stretch longer than a reader's window, after a crash (no clean-close record) in an
/// active segment whose later frames vouch for it: the directory reader reports it, from the
/// start and from a point past it; it never ends early with success. Both file systems.
#[test]
fn a_zeroed_stretch_longer_than_a_window_is_damage_when_later_frames_vouch_for_it() {
    both(|env| {
        let options =
            annal_wal::Options { segment_bytes_target: 8 << 20, ..small(Durability::Sync) };
        let log = env.open(options).expect("open");
        let body = vec![0x42u8; 2000];
        for _ in 0..1500 {
            log.append(&body).expect("append");
        }
        let active = log.segments().pop().expect("a segment").path;
        drop(log);
        let closed = env.dir.join(annal_wal::WAL_DIR).join(annal_wal::format::CLEAN_CLOSE_FILE);
        env.storage.remove_file(&closed).expect("as after a crash");
        let file = env
            .storage
            .open_file(&active, annal_storage::OpenMode::ReadWrite)
            .expect("open the segment");
        // From the start of frame 3 on, 1.3 MB: more than a reader's 1 MiB window.
        let frame = (annal_wal::format::FRAME_HEADER_BYTES
            + annal_wal::format::RECORD_HEADER_BYTES
            + body.len()) as u64;
        let start = annal_wal::format::SEGMENT_HEADER_BYTES as u64 + 2 * frame;
        file.write_all_at(&vec![0u8; 1_300_000], start).expect("zero a stretch");
        drop(file);
        for from in [1, 1400] {
            match dir_read(env, from) {
                Err(Error::Corrupt { offset, .. }) => {
                    assert_eq!(offset, start, "{}: the first zeroed frame", env.name());
                }
                other => panic!(
                    "{}: from {from}: {:?} instead of corruption",
                    env.name(),
                    other.map(|r| r.len())
                ),
            }
        }
    });
}
