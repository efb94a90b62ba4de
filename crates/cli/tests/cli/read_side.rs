//! Guards the read side against silent answers: with one flipped bit in the active segment
//! (which a later frame's durable watermark vouches for), every read command exits 3 naming the
//! file, byte offset and sequence number instead of printing the events before it; a `--from`
//! below the log start reads through `archive/` or fails naming the earliest reachable sequence,
//! never clamps.

use std::path::PathBuf;

use annal::{Expect, Journal, NewEvent};
use serde_json::json;

use crate::common::{Scratch, compacted_store, u};

const SEGMENT_HEADER_BYTES: usize = 64;
const FRAME_HEADER_BYTES: usize = 32;

/// Ten single-event frames, all in the active segment, each durable before the next.
fn active_store() -> (Scratch, PathBuf, Vec<usize>) {
    let sc = Scratch::new();
    let journal = Journal::options().open(&sc.store).expect("create");
    for i in 0..10 {
        let event = NewEvent::json("t", &json!({"i": i})).expect("event");
        journal.append_events("s", Expect::Any, vec![event]).expect("append");
    }
    drop(journal);
    let wal = sc.store.join("wal");
    let file = wal.join(format!("{:020}.seg", 1));
    let bytes = std::fs::read(&file).expect("read segment");
    let mut at = SEGMENT_HEADER_BYTES;
    let mut starts = Vec::new();
    while &bytes[at..at + 4] == b"AFRM" {
        starts.push(at);
        let body = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        at += FRAME_HEADER_BYTES + usize::try_from(body).expect("small");
    }
    assert_eq!(starts.len(), 10, "one frame per event");
    (sc, file, starts)
}

#[test]
fn damage_in_the_active_segment_fails_every_read_command() {
    let (sc, file, starts) = active_store();
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[starts[2] + 45] ^= 0x04;
    std::fs::write(&file, bytes).expect("write");
    let at = format!("offset {}", starts[2]);
    for (command, args) in [
        ("read", &[][..]),
        ("read", &["--from", "2"][..]),
        ("read", &["--follow"][..]),
        ("replay", &[][..]),
        ("replay", &["--until", "8"][..]),
        ("replay", &["--projection", "counts"][..]),
        ("export", &[][..]),
        ("export", &["--format", "csv"][..]),
        ("export", &["--from", "2", "--until", "9"][..]),
        ("info", &[][..]),
    ] {
        let run = sc.run(command, args);
        run.code(3);
        assert!(run.stdout.is_empty() || command == "read" || command == "export", "{run:?}");
        let line = run.one_error_line();
        for needle in ["00000000000000000001.seg", &at, "sequence 3"] {
            assert!(line.contains(needle), "{command} {args:?}: {needle:?} not in {line}");
        }
    }
    // Up to the damage, reads still succeed.
    let run = sc.run("read", &["--until", "2"]);
    run.ok();
    assert_eq!(run.json_lines().len(), 2);
}

#[test]
fn reads_below_the_log_start_fail_naming_the_earliest_without_an_archive() {
    let (sc, first) = compacted_store(false);
    for (command, args) in [("read", &["--from", "1"][..]), ("export", &["--from", "1"][..])] {
        let run = sc.run(command, args);
        run.code(1);
        let line = run.one_error_line();
        assert!(line.contains(&format!("earliest reachable sequence is {first}")), "{line}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // Without --from: what is held, from the earliest.
    let all = sc.read_all();
    assert_eq!(u(&all[0], "seq"), first);
    assert_eq!(all.len(), usize::try_from(201 - first).expect("small"));
}

#[test]
fn reads_below_the_log_start_go_through_the_archive() {
    let (sc, first) = compacted_store(true);
    let all = sc.read_all();
    let seqs: Vec<u64> = all.iter().map(|e| u(e, "seq")).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>(), "log start {first}");
    let run = sc.run("read", &["--from", "1", "--stream", "s-1"]);
    run.ok();
    assert_eq!(run.json_lines().len(), 100, "every event of the stream");
    let run = sc.run("export", &["--from", "1"]);
    run.ok();
    assert_eq!(run.json_lines().len(), 201, "200 records and the tree line");
}

/// After a clean close the last frame was synced like every other: damage to it (a flipped bit,
/// or its bytes zeroed) is corruption for writers and readers, never a torn tail that the next
/// append would cut and reuse the sequence number of.
#[test]
fn damage_to_the_last_frame_after_a_clean_close_is_corruption() {
    for zero in [false, true] {
        let (sc, file, starts) = active_store();
        let mut bytes = std::fs::read(&file).expect("read");
        let last = starts[9];
        if zero {
            bytes[last..last + 60].fill(0);
        } else {
            bytes[last + 40] ^= 0x01;
        }
        std::fs::write(&file, bytes).expect("write");
        let at = format!("offset {last}");
        for (command, args) in [
            ("append", &["--stream", "s", "--type", "t"][..]),
            ("verify", &[][..]),
            ("read", &[][..]),
            ("export", &[][..]),
            ("info", &[][..]),
        ] {
            let run = sc.run(command, args);
            run.code(3);
            let line = run.one_error_line();
            assert!(line.contains(&at) && line.contains("sequence 10"), "{command}: {line}");
        }
        let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
        run.ok();
        assert_eq!(u(&run.json(), "last_seq"), 9, "zero {zero}: {}", run.stdout);
        assert_eq!(u(&run.json()["cut"], "seq"), 10, "zero {zero}: {}", run.stdout);
        sc.run("verify", &[]).ok();
    }
}
