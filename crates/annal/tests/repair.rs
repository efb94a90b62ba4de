//! `JournalOptions::repair` on stores whose log lost its start or its segments: it restarts from
//! the newest snapshots that hold what was lost, or refuses with every file unchanged. On the
//! OS file system and on the simulated one.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal::{Counts, Error, Expect, Journal, NewEvent};
use annal_storage::{OsStorage, Storage};
use common::{Place, both};

fn storage(place: &Place) -> Arc<dyn Storage> {
    place.storage.clone().unwrap_or_else(|| Arc::new(OsStorage::new()))
}

/// Every file under `dir` with its bytes.
fn files(storage: &dyn Storage, dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for name in storage.list_dir(&d).unwrap_or_default() {
            let p = d.join(&name);
            if storage.list_dir(&p).is_ok() {
                dirs.push(p);
            } else if name != "LOCK" {
                out.insert(p.clone(), storage.map_file(&p).expect("read").to_vec());
            }
        }
    }
    out
}

fn append(journal: &Journal, n: u64) {
    for i in 0..n {
        let event = NewEvent::json("t", &serde_json::json!({"i": i})).expect("event");
        journal.append_events(&format!("s-{}", i % 3), Expect::Any, vec![event]).expect("append");
    }
}

/// 100 events, a compaction, 100 more, another compaction (two snapshot sets kept), 5 more.
fn two_compactions(place: &Place) -> Journal {
    let journal =
        place.options().keep_snapshots(2).projection::<Counts>().open(&place.dir).expect("open");
    append(&journal, 100);
    journal.compact().expect("compact");
    append(&journal, 100);
    journal.compact().expect("compact");
    journal
}

fn remove_segments(storage: &dyn Storage, dir: &Path) {
    let wal = dir.join("wal");
    for name in storage.list_dir(&wal).expect("list") {
        if name.ends_with(".seg") {
            storage.remove_file(&wal.join(name)).expect("remove");
        }
    }
}

fn repair(place: &Place) -> annal::Result<(Journal, annal::RepairReport)> {
    place
        .options()
        .keep_snapshots(2)
        .projection::<Counts>()
        .recovery(annal::RecoveryMode::TruncateAtCorruption)
        .repair(&place.dir)
}

#[test]
fn every_segment_lost_restarts_from_the_newest_snapshots() {
    both(|place| {
        let journal = two_compactions(place);
        let state = journal.state::<Counts>().expect("state");
        journal.close().expect("close");
        let storage = storage(place);
        remove_segments(storage.as_ref(), &place.dir);
        let (journal, report) = repair(place).expect("repaired");
        let restart = report.restart.expect("a restart");
        assert_eq!(restart.snapshot_seq, 200, "{}: the newest snapshots", place.name());
        assert_eq!(journal.last_seq(), 200);
        assert_eq!(journal.state::<Counts>().expect("state"), state);
        assert!(journal.verify().expect("verify").is_ok());
        let event = NewEvent::json("t", &serde_json::json!({})).expect("event");
        assert_eq!(
            journal.append_events("a", Expect::Any, vec![event]).expect("append").first,
            201
        );
    });
}

#[test]
fn a_log_that_ends_below_its_recorded_start_restarts_from_the_snapshots() {
    both(|place| {
        let journal = two_compactions(place);
        let state = journal.state::<Counts>().expect("state");
        journal.close().expect("close");
        let storage = storage(place);
        // Only a leftover below the log start is left in wal/: a segment of the first events.
        let wal = place.dir.join("wal");
        let mut segments: Vec<String> = storage
            .list_dir(&wal)
            .expect("list")
            .into_iter()
            .filter(|n| n.ends_with(".seg"))
            .collect();
        segments.sort();
        let leftover = annal::wal::salvage::SegmentImage::new(
            1,
            annal::wal::CHAIN_START,
            annal::wal::StoreKind::Journal,
            &[],
        )
        .expect("an empty segment");
        remove_segments(storage.as_ref(), &place.dir);
        leftover.write(storage.as_ref(), &place.dir).expect("write the leftover");
        let (journal, report) = repair(place).expect("repaired");
        assert_eq!(report.restart.map(|r| r.snapshot_seq), Some(200), "{}", place.name());
        assert_eq!(journal.last_seq(), 200, "not rewound below the log start");
        assert_eq!(journal.state::<Counts>().expect("state"), state);
        assert!(!segments.is_empty());
    });
}

#[test]
fn no_segment_and_no_manifest_is_refused_with_nothing_changed() {
    both(|place| {
        let journal = two_compactions(place);
        journal.close().expect("close");
        let storage = storage(place);
        remove_segments(storage.as_ref(), &place.dir);
        storage.remove_file(&place.dir.join("MANIFEST")).expect("remove the MANIFEST");
        let before = files(storage.as_ref(), &place.dir);
        match repair(place) {
            Err(Error::Unrepairable(why)) => assert!(why.contains("no segment"), "{why}"),
            other => panic!("{}: {other:?}", place.name()),
        }
        assert_eq!(files(storage.as_ref(), &place.dir), before, "{}", place.name());
    });
}

#[test]
fn a_refused_repair_puts_back_a_segment_header_it_rewrote() {
    both(|place| {
        let journal = place
            .options()
            .keep_snapshots(2)
            .projection::<Counts>()
            .open(&place.dir)
            .expect("open");
        // Compactions past the first segment's end, so that the log no longer reaches 1.
        append(&journal, 150);
        journal.compact().expect("compact");
        append(&journal, 100);
        journal.compact().expect("compact");
        append(&journal, 200);
        journal.close().expect("close");
        let storage = storage(place);
        // Every snapshot of the stream index damaged, and the log truncated: refused. But
        // first a later segment's header is damaged, which the repair can rewrite.
        let snaps = place.dir.join("snapshots").join("stream-index");
        for name in storage.list_dir(&snaps).expect("list") {
            let p = snaps.join(name);
            let mut bytes = storage.map_file(&p).expect("read").to_vec();
            bytes[20] ^= 1;
            annal_storage::write_atomic(storage.as_ref(), &p, &bytes).expect("write");
        }
        let wal = place.dir.join("wal");
        let mut segments: Vec<String> = storage
            .list_dir(&wal)
            .expect("list")
            .into_iter()
            .filter(|n| n.ends_with(".seg"))
            .collect();
        segments.sort();
        assert!(segments.len() >= 3, "{segments:?}");
        let p = wal.join(&segments[1]);
        let mut bytes = storage.map_file(&p).expect("read").to_vec();
        bytes[40] ^= 1;
        annal_storage::write_atomic(storage.as_ref(), &p, &bytes).expect("write");
        let before = files(storage.as_ref(), &place.dir);
        match repair(place) {
            Err(Error::Unrepairable(_)) => {}
            other => panic!("{}: {other:?}", place.name()),
        }
        assert_eq!(files(storage.as_ref(), &place.dir), before, "{}", place.name());
    });
}
