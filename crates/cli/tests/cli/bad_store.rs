//! Guards against panics, backtraces, multi-line noise and silent success on a store that is not
//! there or not a journal: a nonexistent path, a regular file, an empty directory, a wal/ that
//! is a file, a segment of garbage, a garbage MANIFEST. Each must give exactly one line
//! `error: ...` on stderr naming the path and a non-zero exit (3 where data is damaged), and
//! must not create or change anything.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;

use crate::common::{Run, Scratch, annal, file_names, s};

/// Every command that takes a store directory, with the arguments it needs.
const STORE_COMMANDS: [(&str, &[&str]); 11] = [
    ("read", &[]),
    ("replay", &[]),
    ("info", &[]),
    ("snapshots", &[]),
    ("export", &[]),
    ("verify", &[]),
    ("compact", &[]),
    ("recover", &["--mode", "truncate-at-corruption"]),
    ("append", &["--stream", "a", "--type", "t"]),
    ("checkpoint", &[]),
    ("prove", &["--seq", "1"]),
];

fn run_on(command: &str, dir: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&OsStr> = vec![OsStr::new(command), dir.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    annal(all)
}

/// Deterministic bytes that are not a segment: no magic, no structure.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[track_caller]
fn assert_refused(run: &Run, code: i32, needles: &[&str]) {
    run.code(code);
    let line = run.one_error_line();
    for needle in needles {
        assert!(line.contains(needle), "`{}`: the error lacks {needle:?}: {line}", run.args);
    }
    assert_eq!(run.stdout, "", "`{}` printed a result", run.args);
}

#[test]
fn a_nonexistent_store_is_an_error_and_is_not_created() {
    let sc = Scratch::new();
    let path = sc.store.display().to_string();
    for (command, args) in STORE_COMMANDS {
        let run = run_on(command, &sc.store, args);
        assert_refused(&run, 1, &[&path, "does not exist", "annal init"]);
        assert!(!sc.store.exists(), "`annal {command}` created the store");
    }
}

#[test]
fn a_regular_file_is_not_a_store() {
    let sc = Scratch::new();
    std::fs::write(&sc.store, b"just a file\n").expect("write");
    let path = sc.store.display().to_string();
    for (command, args) in STORE_COMMANDS {
        let run = run_on(command, &sc.store, args);
        assert_refused(&run, 1, &[&path, "not a directory"]);
    }
    let run = annal(["init".as_ref(), sc.store.as_os_str()]);
    assert_refused(&run, 1, &[&path]);
    let run = annal(["init".as_ref(), sc.store.join("sub").as_os_str()]);
    assert_refused(&run, 1, &[&path]);
    assert_eq!(std::fs::read(&sc.store).expect("file"), b"just a file\n");
}

#[test]
fn an_empty_directory_or_a_wal_file_is_not_a_store_and_is_left_alone() {
    let sc = Scratch::new();
    std::fs::create_dir(&sc.store).expect("mkdir");
    let path = sc.store.display().to_string();
    for (command, args) in STORE_COMMANDS {
        let run = run_on(command, &sc.store, args);
        assert_refused(&run, 1, &[&path, "wal/"]);
        assert_eq!(file_names(&sc.store), Vec::<String>::new(), "`annal {command}` wrote files");
    }
    std::fs::write(sc.store.join("wal"), b"not a directory").expect("write");
    for (command, args) in STORE_COMMANDS {
        let run = run_on(command, &sc.store, args);
        assert_refused(&run, 1, &[&path, "wal/"]);
    }
    assert_eq!(file_names(&sc.store), ["wal"]);
}

/// A raw `annal_wal::Log` store is not a journal: every command refuses it, saying what it
/// holds, and leaves every byte as it was.
#[test]
fn a_raw_log_is_not_a_journal_and_is_left_alone() {
    let sc = Scratch::new();
    let log = annal::wal::Log::open(&sc.store, annal::wal::Options::default()).expect("open log");
    log.append(b"raw bytes, not an envelope").expect("append");
    drop(log);
    // Every file, LOCK included: the kind is checked before the lock is taken.
    let data = || crate::common::tree_bytes(&sc.store);
    let before = data();
    for (command, args) in STORE_COMMANDS {
        let run = run_on(command, &sc.store, args);
        assert_refused(&run, 1, &["holds a log", "not a journal", ".seg", "nothing was changed"]);
        let after = data();
        assert!(after == before, "`annal {command}` changed the log: {:?}", after.keys());
    }
}

/// A store whose only segment, which held one event, was overwritten with garbage.
fn garbage_segment() -> (Scratch, String) {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    let segment = sc.store.join("wal").join("00000000000000000001.seg");
    std::fs::write(&segment, garbage(5000)).expect("overwrite segment");
    (sc, segment.display().to_string())
}

#[test]
fn a_garbage_segment_is_corruption_for_writers_and_export() {
    for (command, args) in STORE_COMMANDS {
        if matches!(command, "read" | "replay" | "info" | "snapshots" | "recover") {
            continue;
        }
        let (sc, segment) = garbage_segment();
        let run = sc.run(command, args);
        assert_refused(&run, 3, &[&segment]);
        assert_eq!(std::fs::read(&segment).expect("segment"), garbage(5000), "{command}");
    }
}

#[test]
fn a_garbage_segment_is_corruption_for_readers() {
    for command in ["read", "replay", "info"] {
        let (sc, segment) = garbage_segment();
        let run = sc.run(command, &[]);
        assert_refused(&run, 3, &[&segment]);
    }
}

#[test]
fn recover_quarantines_a_garbage_segment() {
    let (sc, _) = garbage_segment();
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!(v["last_seq"], 0);
    // The chain value before sequence 1 is known: the segment is rewritten from its intact
    // frames (none) under a new header, after a copy went to quarantine.
    assert!(
        v["headers_rewritten"][0]
            .as_str()
            .expect("a rewritten segment")
            .ends_with("00000000000000000001.seg")
    );
    // The clean-close record vouches for sequence 1, which the garbage destroyed: the log's
    // repair reports it as damage.
    assert_eq!(v["cut"]["seq"], 1);
    let kept: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(|p| p.as_str()).collect();
    assert_eq!(kept.len(), 1, "one copy, no empty file: {kept:?}");
    assert_eq!(std::fs::read(kept[0]).expect("quarantined bytes"), garbage(5000));
    sc.run("verify", &[]).ok();
    assert_eq!(sc.append("a", "t", "{}"), 1);
}

#[test]
fn a_garbage_manifest_is_corruption() {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    sc.run("compact", &[]).ok();
    let manifest = sc.store.join("MANIFEST");
    std::fs::write(&manifest, garbage(300)).expect("overwrite MANIFEST");
    let name = manifest.display().to_string();
    for (command, args) in STORE_COMMANDS {
        if matches!(command, "read" | "export" | "recover") {
            // They read the log from sequence 1, which is all still there (and recover
            // rebuilds from it, below).
            continue;
        }
        let run = sc.run(command, args);
        assert_refused(&run, 3, &[&name]);
    }
    assert_eq!(std::fs::read(&manifest).expect("MANIFEST"), garbage(300));
    // The repair: the garbage goes to quarantine, the MANIFEST is rebuilt from the snapshots
    // that belong to the log, and the store works again.
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert!(s(&v, "manifest_rewritten").contains("damaged"), "{v}");
    let saved: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    assert_eq!(saved.len(), 1, "{v}");
    assert_eq!(std::fs::read(saved[0]).expect("quarantined MANIFEST"), garbage(300));
    assert_eq!(sc.append("a", "t", "{}"), 2);
    sc.run("verify", &[]).ok();
}

#[test]
fn an_error_names_its_cause_once() {
    let (sc, segment) = garbage_segment();
    let run = sc.run("verify", &[]);
    run.code(3);
    let line = run.one_error_line();
    assert_eq!(line.matches(&segment).count(), 1, "{line}");
}

#[test]
fn stray_files_in_wal_are_ignored() {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    std::fs::write(sc.store.join("wal").join("notes.txt"), garbage(100)).expect("write");
    std::fs::write(sc.store.join("wal").join("1.seg"), garbage(100)).expect("write");
    for (command, args) in STORE_COMMANDS {
        let run = sc.run(command, args);
        run.ok();
    }
    assert_eq!(sc.read_all().len(), 2);
    sc.run("verify", &[]).ok();
}

/// `salvage` of a file that holds no frame (a text file, JSON Lines) is an error, not "0
/// events salvaged".
#[test]
fn salvage_of_a_file_without_frames_is_an_error() {
    let sc = Scratch::new();
    for (name, bytes) in [("notes.txt", b"just some text\n".to_vec()), ("garbage", garbage(5000))] {
        let file = sc.path(name);
        std::fs::write(&file, &bytes).expect("write");
        let run = annal([OsStr::new("salvage"), file.as_os_str()]);
        assert_refused(&run, 1, &["no intact frame", name, "nothing to salvage"]);
    }
}
