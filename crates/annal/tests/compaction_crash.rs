//! Guards the crash consistency of compaction: a crash after every I/O operation of a
//! compaction (snapshot writes, MANIFEST commit, segment removal, cleanup), in each crash mode,
//! then an open, gives the model's state with no acknowledged event lost; the open after that
//! finds no leftover temporary file and no snapshot the MANIFEST does not name; the journal is
//! appendable and compactable again.

mod common;

use std::path::Path;
use std::sync::Arc;

use annal::{Expect, Journal, JournalOptions};
use annal_compactor::{MANIFEST_FILE, Manifest, SNAPSHOTS_DIR};
use annal_storage::TMP_SUFFIX;
use annal_storage::{CrashMode, SimStorage, Storage};
use common::{Board, Task, model_board};

const DIR: &str = "/j";

fn options(sim: &SimStorage) -> JournalOptions {
    Journal::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(4096)
        .keep_snapshots(1)
        .projection::<Board>()
}

fn populate(sim: &SimStorage, rounds: u32) -> (Journal, Vec<(String, Task)>) {
    let journal = options(sim).open(DIR).expect("open");
    let mut model = Vec::new();
    for round in 0..rounds {
        for i in 0..60u32 {
            let stream = format!("task-{}", i % 4);
            let task = Task::Completed { by: format!("a{}", i % 3), minutes: i + round };
            journal.append(&stream, Expect::Any, [task.clone()]).expect("append");
            model.push((stream, task));
        }
        if round + 1 < rounds {
            journal.compact().expect("an earlier, complete compaction");
        }
    }
    (journal, model)
}

fn leftovers(sim: &SimStorage) -> Vec<String> {
    let dir = Path::new(DIR);
    let mut out: Vec<String> =
        sim.list_dir(dir).expect("list").into_iter().filter(|n| n.ends_with(TMP_SUFFIX)).collect();
    let manifest = Manifest::read(sim, dir).expect("manifest readable");
    let snaps = dir.join(SNAPSHOTS_DIR);
    for projection in sim.list_dir(&snaps).unwrap_or_default() {
        for name in sim.list_dir(&snaps.join(&projection)).unwrap_or_default() {
            let named = manifest.as_ref().is_some_and(|m| {
                m.snapshots_of(&projection).any(|s| format!("{:020}.snap", s.seq) == name)
            });
            if !named {
                out.push(format!("{projection}/{name}"));
            }
        }
    }
    out
}

#[test]
fn crash_after_every_io_step_of_a_compaction() {
    for rounds in [1u32, 2] {
        let probe = SimStorage::new(0);
        let (journal, _) = populate(&probe, rounds);
        let before = probe.op_count();
        journal.compact().expect("probe compaction");
        let total = probe.op_count() - before;
        drop(journal);
        assert!(total >= 8, "a compaction does I/O: {total}");
        let mut states = 0;
        for k in 0..=total {
            for mode in [CrashMode::DropUnsynced, CrashMode::KeepUnsynced, CrashMode::Random] {
                let sim = SimStorage::new(k * 7 + u64::from(rounds));
                let (journal, model) = populate(&sim, rounds);
                sim.halt_after(k);
                let _ = journal.compact();
                drop(journal);
                sim.crash(mode);
                let context = format!("{rounds} rounds, crash after compaction op {k}, {mode:?}");
                let journal =
                    options(&sim).open(DIR).unwrap_or_else(|e| panic!("{context}: open: {e}"));
                assert_eq!(
                    journal.last_seq(),
                    model.len() as u64,
                    "{context}: no acknowledged event lost"
                );
                assert_eq!(
                    journal.state::<Board>().expect("state"),
                    model_board(&model),
                    "{context}"
                );
                drop(journal);
                let journal = options(&sim)
                    .open(DIR)
                    .unwrap_or_else(|e| panic!("{context}: second open: {e}"));
                // Without a MANIFEST (the first compaction never committed) no snapshot is
                // known to be unused, so none is removed; the next compaction removes them.
                let has_manifest =
                    sim.exists(Path::new(DIR).join(MANIFEST_FILE).as_path()).expect("stat");
                let orphans = leftovers(&sim);
                assert!(
                    orphans.is_empty()
                        || (!has_manifest && orphans.iter().all(|o| o.ends_with(".snap"))),
                    "{context}: orphans after a second open: {orphans:?}"
                );
                assert!(
                    sim.exists(Path::new(DIR).join(MANIFEST_FILE).as_path()).expect("stat")
                        || rounds == 1
                );
                journal
                    .append("after", Expect::Any, [Task::Started { by: "z".into() }])
                    .expect("appendable");
                journal.compact().unwrap_or_else(|e| panic!("{context}: compact again: {e}"));
                assert_eq!(leftovers(&sim), Vec::<String>::new(), "{context}: after compacting");
                assert_eq!(
                    journal.replay::<Board>(annal::Until::End).expect("replay").0,
                    journal.state::<Board>().expect("state")
                );
                states += 1;
            }
        }
        assert!(states as u64 > total * 2, "enumerated {states} crash states");
    }
}

/// With `Manual` durability, a compaction must not commit a snapshot or a log start past what
/// is durable: it syncs first.
#[test]
fn a_manual_compaction_then_power_cut_loses_nothing_it_truncated() {
    for mode in [CrashMode::DropUnsynced, CrashMode::Random] {
        let sim = SimStorage::new(5);
        let journal = options(&sim).durability(annal::Durability::Manual).open(DIR).expect("open");
        let mut model = Vec::new();
        for i in 0..100u32 {
            let task = Task::Completed { by: "a".into(), minutes: i };
            journal.append("t", Expect::Any, [task.clone()]).expect("append");
            model.push(("t".to_owned(), task));
            if i == 49 {
                journal.sync().expect("sync");
            }
        }
        journal.compact().expect("compact");
        drop(journal);
        sim.crash(mode);
        let journal = options(&sim).open(DIR).unwrap_or_else(|e| panic!("{mode:?}: open: {e}"));
        assert_eq!(
            journal.last_seq(),
            100,
            "{mode:?}: the compaction made every event it covered durable"
        );
        assert_eq!(journal.state::<Board>().expect("state"), model_board(&model));
    }
}

/// A reader that has started must never skip events a compaction removed before it got there.
#[test]
fn a_started_reader_reports_events_compacted_away_instead_of_skipping_them() {
    let sim = SimStorage::new(6);
    let (journal, _) = populate(&sim, 2);
    let mut reader = journal.log().read_from(0);
    let first = reader.next().expect("a record").expect("valid");
    let start = first.seq;
    for i in 0..200u32 {
        journal.append("t", Expect::Any, [Task::Started { by: format!("{i}") }]).expect("append");
    }
    journal.compact().expect("compact");
    assert!(
        journal.log().first_seq() > start + 1,
        "the compaction removed what the reader had not read"
    );
    // It may finish the segment it holds open; past it, the records are gone: an error naming
    // the earliest one held, never a jump.
    let mut expect = start + 1;
    let err = loop {
        match reader.next().expect("the reader ends in an error, not silently") {
            Ok(record) => {
                assert_eq!(record.seq, expect, "gapless: no jump over compacted events");
                expect += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(expect < journal.log().first_seq(), "the error came before the log start");
    assert!(
        matches!(err, annal::wal::Error::BeforeStart { seq, earliest } if seq == expect && earliest == journal.log().first_seq()),
        "{err}"
    );
}
