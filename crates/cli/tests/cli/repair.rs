//! Guards against repairs that make things worse: with the MANIFEST moved aside (the obvious
//! manual fix for a damaged one), no command deletes a snapshot, writers refuse naming the
//! MANIFEST when the log can no longer rebuild the state, and putting it back restores the store.

use crate::common::{Scratch, compacted_store, file_names, u};

#[test]
fn a_missing_manifest_deletes_no_snapshot_and_putting_it_back_restores_the_store() {
    let (sc, _) = compacted_store(false);
    let snapshots = |sc: &Scratch| {
        let dir = sc.store.join("snapshots");
        let mut all = Vec::new();
        for p in file_names(&dir) {
            all.extend(file_names(&dir.join(&p)).into_iter().map(|f| format!("{p}/{f}")));
        }
        all
    };
    let before = snapshots(&sc);
    assert!(!before.is_empty(), "the compaction wrote snapshots");
    let manifest = sc.store.join("MANIFEST");
    let aside = sc.path("MANIFEST.aside");
    std::fs::rename(&manifest, &aside).expect("move the MANIFEST aside");
    for (command, args) in [
        ("append", &["--stream", "s-0", "--type", "t"][..]),
        ("compact", &[][..]),
        ("verify", &[][..]),
        ("init", &[][..]),
    ] {
        let run = sc.run(command, args);
        run.code(3);
        assert!(run.one_error_line().contains("MANIFEST"), "{command}: {run:?}");
        assert_eq!(snapshots(&sc), before, "{command} removed a snapshot");
    }
    std::fs::rename(&aside, &manifest).expect("put it back");
    sc.run("append", &["--stream", "s-0", "--type", "t"]).ok();
    assert_eq!(snapshots(&sc), before);
    sc.run("verify", &[]).ok();
    assert_eq!(u(&sc.info(), "last_seq"), 201);
}

/// Flips one bit in the payload of the frame holding `seq` (0: its second frame) in the first
/// segment of `wal/`; returns its byte offset.
fn flip_frame_of(sc: &Scratch, seq: u64) -> u64 {
    let first = file_names(&sc.store.join("wal")).into_iter().find(|n| n.ends_with(".seg"));
    let seg = sc.store.join("wal").join(first.expect("a segment"));
    let mut bytes = std::fs::read(&seg).expect("segment");
    let frame = annal::wal::salvage::intact_frames(&bytes)
        .into_iter()
        .enumerate()
        .find(|(i, f)| if seq == 0 { *i == 1 } else { f.first_seq <= seq && seq <= f.last_seq() })
        .map(|(_, f)| f)
        .expect("the frame is there");
    let at = usize::try_from(frame.offset).expect("small") + 40;
    bytes[at] ^= 0x10;
    std::fs::write(&seg, bytes).expect("write back");
    frame.offset
}

/// The store that `recover` once bricked: 35 events, a compaction, 3 more, one flipped bit in
/// a frame the snapshots cover. Recover restarts the log past the snapshots, keeps every event
/// from them on and the state, and the events it took out come back with salvage.
#[test]
fn recover_restarts_past_damage_the_snapshots_cover_and_salvage_gets_the_rest_back() {
    let sc = Scratch::init();
    let lines: String = (1..=35)
        .map(|i| format!("{{\"stream\":\"s-{}\",\"type\":\"t\",\"data\":{{\"i\":{i}}}}}\n", i % 3))
        .collect();
    sc.append_jsonl(&lines);
    sc.run("compact", &[]).ok();
    for i in 36..=38 {
        sc.append("s-1", "t", &format!("{{\"i\":{i}}}"));
    }
    let before = sc.run("replay", &["--projection", "counts"]).json();
    let head = crate::common::s(&sc.info(), "chain_head").to_owned();
    flip_frame_of(&sc, 14);
    sc.run("append", &["--stream", "s-0", "--type", "t"]).code(3);
    sc.run("verify", &["--read-only"]).code(3);

    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!(u(&v, "last_seq"), 38, "{v}");
    assert_eq!((u(&v["restart"], "snapshot_seq"), u(&v["restart"], "log_start")), (35, 36));
    run.stderr_has("annal salvage");
    // Nothing acknowledged from the snapshots on is lost: same state, same chain head.
    assert_eq!(sc.run("replay", &["--projection", "counts"]).json()["state"], before["state"]);
    assert_eq!(crate::common::s(&sc.info(), "chain_head"), head);
    sc.run("verify", &[]).ok();
    sc.run("verify", &["--read-only"]).ok();
    assert_eq!(sc.append("s-0", "t", "{}"), 39);

    // The segment taken out is in quarantine; salvage prints what is intact in it, as lines
    // `append --jsonl` takes back.
    let saved: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(|p| p.as_str()).collect();
    assert_eq!(saved.len(), 1, "{v}");
    let salvage = crate::common::annal(["salvage", saved[0]]);
    salvage.ok();
    let lines = salvage.json_lines();
    // All 35 were one batch, one frame: the flipped bit destroyed it; 36..=38 are intact.
    let got: Vec<u64> = lines.iter().map(|l| l["data"]["i"].as_u64().expect("i")).collect();
    assert_eq!(got, [36, 37, 38]);
    salvage.stderr_has("sequences 36 to 38");
    let again = sc.run_stdin("append", &["--jsonl", "-"], &salvage.stdout);
    again.ok();
    assert_eq!(sc.read_all().len(), 39 - 35 + 3);
}

/// Damage past every snapshot: the log is cut at it and the snapshots beyond the cut are taken
/// out, instead of a MANIFEST that names events the log no longer holds.
#[test]
fn recover_cuts_damage_past_the_snapshots_and_keeps_a_store_that_works() {
    let sc = Scratch::init();
    for i in 1..=10 {
        sc.append("s-0", "t", &format!("{{\"i\":{i}}}"));
    }
    sc.run("compact", &[]).ok();
    for i in 11..=20 {
        sc.append("s-0", "t", &format!("{{\"i\":{i}}}"));
    }
    flip_frame_of(&sc, 15);
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!(u(&v, "last_seq"), 14, "{v}");
    assert_eq!(u(&v["cut"], "seq"), 15);
    sc.run("verify", &[]).ok();
    assert_eq!(sc.append("s-0", "t", "{}"), 15);
    // What was cut is in quarantine, readable with salvage: 16..=20 intact.
    let cut: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(|p| p.as_str()).collect();
    let salvage = crate::common::annal(["salvage", cut[0]]);
    salvage.ok();
    let got: Vec<u64> =
        salvage.json_lines().iter().map(|l| l["data"]["i"].as_u64().expect("i")).collect();
    assert_eq!(got, [16, 17, 18, 19, 20]);
}

/// A copy of a store on a read-only medium can be verified: no lock, nothing written.
#[test]
fn verify_read_only_takes_no_lock_and_finds_damage() {
    let (sc, _) = compacted_store(false);
    // A writer holds the lock: the plain verify waits for it, the read-only one does not.
    let journal = annal::Journal::open(&sc.store).expect("writer");
    let run = sc.run("verify", &["--read-only"]);
    run.ok();
    let v = run.json();
    assert_eq!(
        (v["ok"].clone(), v["read_only"].clone()),
        (serde_json::json!(true), serde_json::json!(true))
    );
    assert!(u(&v, "snapshots_checked") > 0, "{v}");
    sc.run("verify", &[]).code(4);
    drop(journal);
    flip_frame_of(&sc, 0);
    let run = sc.run("verify", &["--read-only"]);
    run.code(3);
    assert!(run.json()["problems"][0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

/// Damage at the very start of the log after a compaction: a flipped bit in the header of the
/// segment that starts at the log start, then every segment gone. Each time the log restarts
/// from the snapshots just before it, with their state, instead of emptying the store.
#[test]
fn recover_restarts_from_the_snapshots_when_the_log_start_itself_is_damaged() {
    let sc = Scratch::init();
    for i in 1..=10 {
        sc.append("s-0", "t", &format!("{{\"i\":{i}}}"));
    }
    sc.run("compact", &[]).ok();
    flip_frame_of(&sc, 3);
    // The first restart leaves a segment that starts at the log start, 11.
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    assert_eq!(u(&run.json()["restart"], "log_start"), 11);
    let state = sc.run("replay", &["--projection", "counts"]).json()["state"].clone();
    let wal = sc.store.join("wal");
    let seg = wal.join("00000000000000000011.seg");
    let mut bytes = std::fs::read(&seg).expect("segment");
    bytes[20] ^= 0x01;
    std::fs::write(&seg, bytes).expect("write back");
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    assert_eq!((u(&v, "last_seq"), u(&v["restart"], "snapshot_seq")), (10, 10), "{v}");
    assert_eq!(sc.run("replay", &["--projection", "counts"]).json()["state"], state);
    sc.run("verify", &[]).ok();

    // Every segment removed: readers and writers report it, recover restarts empty at 11.
    for name in file_names(&wal).into_iter().filter(|n| n.ends_with(".seg")) {
        std::fs::remove_file(wal.join(name)).expect("remove");
    }
    sc.run("read", &[]).code(3);
    sc.run("verify", &["--read-only"]).code(3);
    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    assert_eq!(u(&run.json(), "last_seq"), 10);
    assert_eq!(sc.run("replay", &["--projection", "counts"]).json()["state"], state);
    assert_eq!(sc.append("s-0", "t", "{}"), 11);
    sc.run("verify", &[]).ok();
}

/// The only snapshot of the stream index is damaged and the log was truncated, but archive/
/// still reaches back to sequence 1: recover rebuilds the snapshots from it, and the journal
/// has the same state as before.
#[test]
fn recover_rebuilds_damaged_snapshots_from_the_archive() {
    let (sc, first) = compacted_store(true);
    let state = sc.run("replay", &["--projection", "counts"]).json()["state"].clone();
    let snap = sc.store.join("snapshots").join("stream-index");
    let name = file_names(&snap).pop().expect("a stream-index snapshot");
    let path = snap.join(name);
    let mut bytes = std::fs::read(&path).expect("snapshot");
    bytes[30] ^= 0x04;
    std::fs::write(&path, &bytes).expect("write back");
    sc.run("append", &["--stream", "s-0", "--type", "t"]).code(3);

    let run = sc.run("recover", &["--mode", "truncate-at-corruption"]);
    run.ok();
    let v = run.json();
    let rebuilt: Vec<&str> = v["snapshots_rebuilt"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(rebuilt.iter().any(|p| p.contains("stream-index")), "{v}");
    // The damaged file was kept in quarantine before its place was taken.
    let saved: Vec<&str> =
        v["quarantined"].as_array().expect("list").iter().filter_map(|p| p.as_str()).collect();
    assert!(saved.iter().any(|p| std::fs::read(p).is_ok_and(|b| b == bytes)), "{v}");
    assert_eq!(u(&sc.info(), "first_seq"), first, "the log was not touched");
    assert_eq!(sc.run("replay", &["--projection", "counts"]).json()["state"], state);
    sc.run("verify", &[]).ok();
    assert_eq!(sc.append("s-0", "t", "{}"), 201);
}

/// The first segment removed and the MANIFEST gone: writers name what is missing (the MANIFEST,
/// or the segments), not an unrelated projection message.
#[test]
fn a_missing_first_segment_without_a_manifest_is_named() {
    let (sc, first) = compacted_store(false);
    std::fs::remove_file(sc.store.join("MANIFEST")).expect("remove the MANIFEST");
    let wal = sc.store.join("wal");
    let oldest = file_names(&wal).into_iter().find(|n| n.ends_with(".seg")).expect("a segment");
    std::fs::remove_file(wal.join(&oldest)).expect("remove the first segment");
    for (command, args) in
        [("append", &["--stream", "s-0", "--type", "t"][..]), ("verify", &[][..])]
    {
        let run = sc.run(command, args);
        run.code(3);
        let line = run.one_error_line();
        assert!(
            line.contains("MANIFEST") || line.contains("segments are missing"),
            "{command}: {line}"
        );
        assert!(!line.contains("schema"), "{command}: {line}");
    }
    assert!(first > 1);
}
