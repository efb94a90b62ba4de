//! Guards against a torn tail (a partial frame after the last complete one in the active
//! segment, as a crash mid-write leaves it) being taken for data or for corruption: readers
//! ignore it, the next writing command cuts it off, `recover` reports it with its file, offset
//! and size, moves it to quarantine/, and no event is lost or added. (After a clean close the
//! same bytes inside the frames are corruption: `corruption.rs`.)

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::{Scratch, file_names, s, u};

/// Bytes that start like a frame and then stop: magic, then junk where the length should be.
const TORN: &[u8] = b"AFRM\xde\xad\xbe\xef\x01\x02\x03";

/// A store with three events and a torn frame after them; its events and where the tear is.
fn torn_store() -> (Scratch, Vec<Value>, PathBuf, u64) {
    let sc = Scratch::init();
    for i in 0..3 {
        sc.append("a", "t", &format!(r#"{{"i":{i}}}"#));
    }
    let events = sc.read_all();
    let info = sc.info();
    let segment = &info["segments"][0];
    let file = PathBuf::from(s(segment, "file"));
    let end = u(segment, "data_bytes");
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).expect("open segment");
    f.seek(SeekFrom::Start(end)).expect("seek");
    f.write_all(TORN).expect("tear");
    f.sync_all().expect("sync");
    // A torn tail is what a crash leaves: the writer never closed, so no clean-close record.
    std::fs::remove_file(sc.store.join("wal").join("CLOSED")).expect("a clean close's record");
    (sc, events, file, end)
}

#[test]
fn readers_ignore_a_torn_tail() {
    let (sc, events, _, end) = torn_store();
    assert_eq!(sc.read_all(), events);
    let info = sc.info();
    assert_eq!((u(&info, "last_seq"), u(&info, "events")), (3, 3));
    assert_eq!(u(&info["segments"][0], "data_bytes"), end);
    let replay = sc.run("replay", &[]);
    replay.ok();
    assert_eq!(replay.json()["state"]["a"]["data"], json!({"i": 2}));
}

#[test]
fn recover_reports_and_quarantines_a_torn_tail() {
    let (sc, events, file, end) = torn_store();
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!(u(&v, "last_seq"), 3);
    assert_eq!(v["cut"], Value::Null);
    let torn = &v["torn_tail"];
    assert_eq!(s(torn, "file"), file.display().to_string());
    assert_eq!(u(torn, "offset"), end);
    assert_eq!(u(torn, "bytes"), TORN.len() as u64);
    assert!(!s(torn, "reason").is_empty());
    let quarantined = v["quarantined"].as_array().expect("list");
    assert_eq!(quarantined.len(), 1, "{v}");
    let moved = PathBuf::from(quarantined[0].as_str().expect("path"));
    assert!(moved.starts_with(sc.store.join("quarantine")), "{}", moved.display());
    assert_eq!(std::fs::read(&moved).expect("quarantined bytes"), TORN);
    run.stderr_has("quarantine");
    // The tear is gone from the segment: zeros after the data again.
    let bytes = std::fs::read(&file).expect("segment");
    let end = usize::try_from(end).expect("small");
    assert!(bytes[end..end + TORN.len()].iter().all(|&b| b == 0));

    assert_eq!(sc.read_all(), events);
    let again = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    again.ok();
    let v = again.json();
    for (key, want) in [
        ("last_seq", json!(3)),
        ("cut", Value::Null),
        ("torn_tail", Value::Null),
        ("restart", Value::Null),
        ("manifest_rewritten", Value::Null),
        ("quarantined", json!([])),
        ("snapshots_dropped", json!([])),
    ] {
        assert_eq!(v[key], want, "{key} in {v}");
    }
    let verify = sc.run("verify", &[]);
    verify.ok();
    assert_eq!((verify.json()["ok"].clone(), u(&verify.json(), "records")), (json!(true), 3));
}

#[test]
fn the_next_append_cuts_a_torn_tail_and_continues_the_sequence() {
    let (sc, events, _, _) = torn_store();
    let run = sc.run("append", &["--stream", "a", "--type", "t", "--data", r#"{"i":3}"#]);
    run.ok();
    assert_eq!(run.json(), json!({"seq": 4, "version": 4}));
    let after = sc.read_all();
    assert_eq!(after.len(), 4);
    assert_eq!(after[..3], events[..]);
    assert_eq!(after[3]["data"], json!({"i": 3}));
    // The cut bytes were kept, not deleted.
    assert_eq!(file_names(&sc.store.join("quarantine")).len(), 2, "the torn bytes and a note");
    let verify = sc.run("verify", &[]);
    verify.ok();
    assert_eq!(u(&verify.json(), "records"), 4);
}

#[test]
fn every_writing_command_reports_the_cut_on_stderr() {
    for (command, args) in [
        ("append", &["--stream", "a", "--type", "t"][..]),
        ("compact", &[][..]),
        ("init", &[][..]),
        ("verify", &[][..]),
    ] {
        let (sc, _, file, end) = torn_store();
        let run = sc.run(command, args);
        run.ok();
        let warning = run
            .stderr
            .lines()
            .find(|l| l.starts_with("warning:") && l.contains("torn tail"))
            .unwrap_or_else(|| panic!("{command}: no torn-tail warning in {:?}", run.stderr));
        let bytes = format!("{} bytes from byte offset {end}", TORN.len());
        for needle in [file.display().to_string(), bytes, "quarantine".into(), "sequence 3".into()]
        {
            assert!(warning.contains(&needle), "{command}: {needle:?} not in {warning}");
        }
        if command == "verify" {
            let torn = &run.json()["torn_tail_cut"];
            assert_eq!(u(torn, "offset"), end, "{torn}");
        }
        // Said once: the next command has nothing to report.
        let again = sc.run("verify", &[]);
        again.ok();
        assert!(!again.stderr.contains("torn tail"), "{}", again.stderr);
    }
}
