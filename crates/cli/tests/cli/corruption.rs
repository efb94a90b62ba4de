//! Guards against silent corruption: one flipped bit in a sealed segment must make `verify`
//! and `read` exit 3 naming the file, byte offset and sequence number; `recover --mode
//! truncate-at-corruption` must cut there, move the cut bytes and every later segment to
//! quarantine/ (never delete them) and report it; afterwards `verify` passes and the journal
//! holds exactly the events before the damage.

use std::path::{Path, PathBuf};

use annal::{Expect, Journal, NewEvent};
use serde_json::{Value, json};

use crate::common::{Scratch, file_names, s, u};

const EVENTS: u64 = 60;
const SEGMENT_HEADER_BYTES: usize = 64;
const FRAME_HEADER_BYTES: usize = 32;
const RECORD_HEADER_BYTES: usize = 12;

/// A store of `EVENTS` single-event frames in 4 KiB segments, written through the library.
fn store() -> Scratch {
    let sc = Scratch::new();
    let journal = Journal::options().segment_bytes(4096).open(&sc.store).expect("create");
    for i in 0..EVENTS {
        let data = json!({"i": i, "pad": "x".repeat(200)});
        let event = NewEvent::json("t", &data).expect("event");
        journal.append_events(&format!("s-{}", i % 3), Expect::Any, vec![event]).expect("append");
    }
    drop(journal);
    sc
}

/// Frame start offsets and their first sequence numbers in a segment file.
fn frames(bytes: &[u8]) -> Vec<(usize, u64)> {
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let mut at = SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    while at + FRAME_HEADER_BYTES <= bytes.len() && &bytes[at..at + 4] == b"AFRM" {
        let body = usize::try_from(le32(at + 8)).expect("small");
        out.push((at, le64(at + 16)));
        at += FRAME_HEADER_BYTES + body;
    }
    out
}

/// Flips one bit inside the payload of the third frame of the first segment; returns the
/// segment, the frame's offset and its sequence number.
fn flip_a_bit(sc: &Scratch) -> (PathBuf, u64, u64) {
    let info = sc.info();
    let segments = info["segments"].as_array().expect("segments");
    assert!(segments.len() >= 3, "expected several segments: {info}");
    assert_eq!(segments[0]["sealed"], json!(true));
    let file = PathBuf::from(s(&segments[0], "file"));
    let mut bytes = std::fs::read(&file).expect("read segment");
    let found = frames(&bytes);
    assert_eq!(found.len(), usize::try_from(u(&segments[0], "last_seq")).expect("small"));
    let (offset, seq) = found[2];
    assert_eq!(seq, 3);
    bytes[offset + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES + 40] ^= 0x10;
    std::fs::write(&file, bytes).expect("write segment");
    (file, u64::try_from(offset).expect("small"), seq)
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().expect("a file name").to_string_lossy().into_owned()
}

#[test]
fn verify_read_replay_and_export_exit_3_naming_file_offset_and_sequence() {
    let sc = store();
    let before = sc.read_all();
    assert_eq!(before.len(), usize::try_from(EVENTS).expect("small"));
    let (file, offset, seq) = flip_a_bit(&sc);
    let name = file_name(&file.display().to_string());
    let at = format!("offset {offset}");
    let sequence = format!("sequence {seq}");
    let data = || {
        let mut files = crate::common::tree_bytes(&sc.store);
        files.remove(Path::new("LOCK")); // the pid of the last process that took the lock
        files
    };
    let damaged = data();

    // No snapshot: opening folds the log from 1 and meets the damage; every command that reads
    // that far fails with one line naming where.
    for (command, args) in [
        ("verify", &[][..]),
        ("read", &[][..]),
        ("read", &["--from", "3", "--limit", "1"][..]),
        ("replay", &[][..]),
        ("replay", &["--until", "3"][..]),
        ("export", &["--out", "/dev/null"][..]),
        ("compact", &[][..]),
        ("append", &["--stream", "s-0", "--type", "t"][..]),
        // info's tree reads every event.
        ("info", &[][..]),
    ] {
        let run = sc.run(command, args);
        run.code(3);
        let line = run.one_error_line();
        for needle in [&name, &at, &sequence] {
            assert!(line.contains(needle.as_str()), "{command} {args:?}: {needle:?} not in {line}");
        }
    }
    // What comes before the damaged frame still reads.
    let run = sc.run("read", &["--limit", "2"]);
    run.ok();
    assert_eq!(run.json_lines(), before[..2]);
    // Nothing was changed by the failed commands.
    assert!(data() == damaged, "a failed command changed the store");
}

/// Appends events `from..to` through the library, in 4 KiB segments.
fn append_with_library(dir: &Path, from: u64, to: u64) {
    let journal = Journal::options().segment_bytes(4096).open(dir).expect("open");
    for i in from..to {
        let data = json!({"i": i, "pad": "x".repeat(200)});
        let event = NewEvent::json("t", &data).expect("event");
        journal.append_events("s", Expect::Any, vec![event]).expect("append");
    }
}

#[test]
fn verify_lists_damage_that_opening_does_not_read() {
    let sc = Scratch::new();
    append_with_library(&sc.store, 0, 20);
    // Snapshots at 20: the first segment (1..=14) goes, the one holding 15..=28 stays.
    let compacted = sc.run("compact", &[]);
    compacted.ok();
    assert_eq!(u(&compacted.json(), "log_start"), 21);
    append_with_library(&sc.store, 20, 45);
    // Snapshots at 45 too; the log still reaches back to the snapshots at 20.
    let compacted = sc.run("compact", &[]);
    compacted.ok();
    assert_eq!(u(&compacted.json(), "log_start"), 21);
    let info = sc.info();
    let segment = &info["segments"][0];
    assert_eq!((u(segment, "first_seq"), segment["sealed"].clone()), (15, json!(true)), "{info}");
    let file = PathBuf::from(s(segment, "file"));
    let mut bytes = std::fs::read(&file).expect("segment");
    let (offset, seq) = frames(&bytes)[7];
    assert_eq!(seq, 22);
    bytes[offset + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES + 40] ^= 0x01;
    std::fs::write(&file, bytes).expect("damage");
    let offset = u64::try_from(offset).expect("small");

    // Opening starts from the newest snapshots, so the current state is still served...
    let run = sc.run("replay", &["--projection", "counts"]);
    run.ok();
    assert_eq!(run.json()["state"]["total"], json!(45));
    // ...but verify reads everything and lists the damage.
    let run = sc.run("verify", &[]);
    run.code(3);
    let v = run.json();
    assert_eq!(v["ok"], json!(false));
    let first = &v["problems"][0];
    assert_eq!(s(first, "file"), file.display().to_string(), "{v}");
    assert_eq!((u(first, "offset"), u(first, "seq")), (offset, 22));
    assert!(!s(first, "reason").is_empty());
    let line = run.one_error_line();
    assert!(line.contains(&file_name(s(first, "file"))), "{line}");
    assert!(line.contains(&format!("offset {offset}")), "{line}");
    // Time travel into the damage fails the same way.
    let run = sc.run("replay", &["--until", "30"]);
    run.code(3);
    assert!(run.one_error_line().contains("sequence 22"), "{}", run.stderr);
}

#[test]
fn reading_up_to_the_damage_succeeds() {
    let sc = store();
    let before = sc.read_all();
    let (_, _, seq) = flip_a_bit(&sc);
    let until = (seq - 1).to_string();
    let run = sc.run("read", &["--until", &until]);
    run.ok();
    assert_eq!(run.json_lines(), before[..2]);
    let run = sc.run("replay", &["--until", &until, "--projection", "counts"]);
    run.ok();
    assert_eq!(run.json()["state"]["total"], json!(2));
}

#[test]
fn the_error_names_the_damaged_sequence() {
    let sc = Scratch::new();
    append_with_library(&sc.store, 0, 20);
    sc.run("compact", &[]).ok();
    append_with_library(&sc.store, 20, 40);
    let file = PathBuf::from(s(&sc.info()["segments"][0], "file"));
    let mut bytes = std::fs::read(&file).expect("segment");
    let (offset, seq) = frames(&bytes)[2];
    assert_eq!(seq, 17);
    bytes[offset + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES + 40] ^= 0x01;
    std::fs::write(&file, bytes).expect("damage");
    // Reading from 21 scans the segment from its start and meets frame 17 at `offset`.
    let run = sc.run("read", &["--from", "21"]);
    run.code(3);
    let line = run.one_error_line();
    assert!(line.contains(&format!("offset {offset} (sequence 17)")), "{line}");
}

#[test]
fn recover_quarantines_from_the_damage_on_and_verify_passes_after() {
    let sc = store();
    let before = sc.read_all();
    let segments_before: Vec<String> = sc.info()["segments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|x| s(x, "file").to_owned())
        .collect();
    let (file, offset, seq) = flip_a_bit(&sc);

    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!(u(&v, "last_seq"), seq - 1);
    let cut = &v["cut"];
    assert_eq!(s(cut, "file"), file.display().to_string());
    assert_eq!((u(cut, "offset"), u(cut, "seq")), (offset, seq));
    assert!(!s(cut, "reason").is_empty());
    // The cut part of the first segment and every later segment, kept in quarantine/.
    let quarantined: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    assert_eq!(quarantined.len(), segments_before.len(), "{v}");
    for path in &quarantined {
        assert!(Path::new(path).starts_with(sc.store.join("quarantine")), "{path}");
        assert!(Path::new(path).is_file(), "{path} was reported but does not exist");
    }
    for later in &segments_before[1..] {
        let name = file_name(later);
        assert!(
            quarantined.iter().any(|q| file_name(q).starts_with(&name)),
            "{name} not quarantined"
        );
        assert!(!Path::new(later).exists(), "{later} is still in wal/");
    }
    let saved = run.stderr.lines().filter(|l| l.starts_with("saved in quarantine: ")).count();
    assert_eq!(saved, quarantined.len(), "{}", run.stderr);
    run.stderr_has("annal salvage");
    // It says where the log now ends and from which sequence the records were cut.
    run.stderr_has(&format!("the log now ends at sequence {}", seq - 1));
    run.stderr_has(&format!("the records from sequence {seq} on are in quarantine/"));
    assert!(file_names(&sc.store.join("quarantine")).len() >= quarantined.len());

    let run = sc.run("verify", &[]);
    run.ok();
    let v = run.json();
    assert_eq!((v["ok"].clone(), u(&v, "records")), (json!(true), seq - 1));
    assert_eq!(v["problems"], json!([]));
    assert_eq!(sc.read_all(), before[..2]);
    let run = sc.run("append", &["--stream", "s-0", "--type", "t"]);
    run.ok();
    assert_eq!(u(&run.json(), "seq"), seq);
}

#[test]
fn a_damaged_snapshot_fails_verify() {
    let sc = Scratch::init();
    for i in 0..5 {
        sc.append("a", "t", &format!(r#"{{"i":{i}}}"#));
    }
    let compacted = sc.run("compact", &[]);
    compacted.ok();
    let snapshot = compacted.json()["snapshots_written"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .find(|p| p.contains("/entities/"))
        .expect("an entities snapshot")
        .to_owned();
    let mut bytes = std::fs::read(&snapshot).expect("snapshot");
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0x01;
    std::fs::write(&snapshot, bytes).expect("damage snapshot");
    let run = sc.run("verify", &[]);
    run.code(3);
    assert!(run.one_error_line().contains(&file_name(&snapshot)), "{}", run.stderr);
}

#[test]
fn a_failed_export_leaves_no_partial_file_and_keeps_an_earlier_export() {
    let sc = store();
    let out = sc.path("audit.jsonl");
    let out_arg = out.to_str().expect("utf-8");
    sc.run("export", &["--out", out_arg]).ok();
    let earlier = std::fs::read(&out).expect("the first export");
    assert_eq!(earlier.iter().filter(|&&b| b == b'\n').count(), 61, "60 records and the tree line");

    flip_a_bit(&sc);
    let run = sc.run("export", &["--out", out_arg]);
    run.code(3);
    assert_eq!(std::fs::read(&out).expect("the earlier export"), earlier, "export changed");
    let fresh = sc.path("fresh.jsonl");
    sc.run("export", &["--out", fresh.to_str().expect("utf-8")]).code(3);
    assert!(!fresh.exists(), "a failed export left {}", fresh.display());
    let parent = out.parent().expect("a directory");
    let leftovers: Vec<String> =
        file_names(parent).into_iter().filter(|n| n.starts_with(".annal-export-")).collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}
