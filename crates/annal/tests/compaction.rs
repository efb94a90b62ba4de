//! Guards compaction (G5, G10): state after `compact` equals state before and equals the
//! model; appends after it continue the sequence and the chain; time travel to every reachable
//! sequence equals the model, and to an unreachable one is an error naming the earliest
//! reachable sequence; retention keeps exactly K snapshots; archive mode keeps the truncated
//! segments; a reopen starts from the snapshots; a schema-version change rebuilds or explains;
//! `verify` finds nothing on a healthy store and reports damaged snapshots and MANIFESTs.

mod common;

use annal::{Counts, Entities, Expect, Journal, Projection, Until};
use annal_compactor::{MANIFEST_FILE, SNAPSHOTS_DIR};
use common::{Board, Place, Task, both, model_board};

fn append_tasks(journal: &Journal, model: &mut Vec<(String, Task)>, n: u32) {
    for i in 0..n {
        let stream = format!("task-{}", (model.len() + i as usize) % 5);
        let task = Task::Completed { by: format!("actor-{}", i % 3), minutes: i };
        journal.append(&stream, Expect::Any, [task.clone()]).expect("append");
        model.push((stream, task));
    }
}

fn files_in(place: &Place, dir: &std::path::Path) -> Vec<String> {
    match &place.storage {
        Some(s) => s.list_dir(dir).unwrap_or_default(),
        None => {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .map(|r| {
                    r.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        }
    }
}

#[test]
fn compaction_keeps_state_and_time_travel_and_truncates() {
    both(|place| {
        let open = || {
            place
                .options()
                .keep_snapshots(2)
                .projection::<Board>()
                .projection::<Counts>()
                .open(&place.dir)
                .expect("open")
        };
        let journal = open();
        let mut model = Vec::new();
        append_tasks(&journal, &mut model, 150);
        let before = journal.state::<Board>().expect("state");
        let r1 = journal.compact().expect("compact");
        assert_eq!(r1.seq, 150);
        assert!(
            r1.log_start > 1 && r1.log_start <= 151,
            "{}: truncated below the snapshot: {r1:?}",
            place.name()
        );
        assert!(
            !r1.segments_removed.is_empty() && r1.bytes_reclaimed > 0,
            "{}: {r1:?}",
            place.name()
        );
        assert_eq!(
            journal.state::<Board>().expect("state"),
            before,
            "{}: compaction changes no state",
            place.name()
        );
        append_tasks(&journal, &mut model, 150);
        let r2 = journal.compact().expect("compact 2");
        assert_eq!(r2.seq, 300);
        assert_eq!(
            r2.log_start,
            r1.log_start,
            "{}: two snapshots kept, the older one still needs the log",
            place.name()
        );
        assert!(r2.segments_removed.is_empty(), "{}: {r2:?}", place.name());
        append_tasks(&journal, &mut model, 100);
        let r3 = journal.compact().expect("compact 3");
        assert_eq!(r3.seq, 400);
        assert!(
            r3.log_start > 150 && r3.log_start <= 301,
            "{}: the snapshot at 150 dropped out: {r3:?}",
            place.name()
        );
        assert!(!r3.segments_removed.is_empty(), "{}: {r3:?}", place.name());
        // Retention: exactly two snapshots per projection.
        for projection in ["stream-index", "board", "counts"] {
            let snaps = files_in(place, &place.dir.join(SNAPSHOTS_DIR).join(projection));
            assert_eq!(snaps.len(), 2, "{}: {projection}: {snaps:?}", place.name());
        }
        let a = journal
            .append("task-9", Expect::Any, [Task::Started { by: "zed".into() }])
            .expect("append");
        assert_eq!(a.first, 401, "the sequence continues");
        model.push(("task-9".into(), Task::Started { by: "zed".into() }));
        let head = journal.log().chain_head().expect("head");
        drop(journal);

        let journal = open();
        assert_eq!(
            journal.log().chain_head().expect("head"),
            head,
            "{}: chain continues",
            place.name()
        );
        assert_eq!(journal.state::<Board>().expect("state"), model_board(&model));
        assert_eq!(journal.state::<Counts>().expect("counts").total, 401);
        let earliest = 300; // the older of the two snapshots kept
        for seq in (earliest..=401).step_by(7) {
            let (state, at) = journal.replay::<Board>(Until::Seq(seq)).expect("reachable");
            assert_eq!(
                (state, at),
                (model_board(&model[..usize::try_from(seq).expect("small")]), seq),
                "{}: time travel to {seq}",
                place.name()
            );
        }
        let err = journal.replay::<Board>(Until::Seq(10)).expect_err("truncated");
        assert!(err.to_string().contains(&format!("{earliest}")), "{}: {err}", place.name());
        // A projection without snapshots cannot be rebuilt from a truncated log.
        let err = journal.replay::<Entities>(Until::End).expect_err("no snapshots of entities");
        assert!(err.to_string().contains("entities"), "{err}");
        let v = journal.verify().expect("verify");
        assert!(v.is_ok(), "{}: {:?}", place.name(), v.problems);
        assert!(v.snapshots_replayed >= 3, "{}: {v:?}", place.name());
    });
}

#[test]
fn archive_mode_keeps_truncated_segments() {
    let place = Place::os();
    let journal = place
        .options()
        .keep_snapshots(1)
        .archive(true)
        .projection::<Board>()
        .open(&place.dir)
        .expect("open");
    let mut model = Vec::new();
    append_tasks(&journal, &mut model, 300);
    let report = journal.compact().expect("compact");
    assert!(!report.segments_removed.is_empty());
    let archived = files_in(&place, &place.dir.join("archive"));
    let removed: Vec<String> = report
        .segments_removed
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(archived, removed, "every truncated segment is in archive/");
    assert!(journal.log().first_seq() > 100);
    // Time travel before the log start reaches back through the archive.
    for seq in [1u64, 10, 57, 99] {
        let (state, at) = journal.replay::<Board>(Until::Seq(seq)).expect("through the archive");
        assert_eq!((state, at), (model_board(&model[..usize::try_from(seq).expect("small")]), seq));
    }
    let events: Vec<_> = annal::wal::Reader::open(
        std::sync::Arc::new(annal_storage::OsStorage::new()),
        &place.dir,
        1,
    )
    .expect("reader")
    .map(|r| r.expect("record"))
    .collect();
    assert_eq!(events.len(), 300, "archive and log together hold every event, in order");
    assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    let (state, at) = journal.replay::<Board>(Until::Time(events[41].ts)).expect("by time");
    let want = events.iter().rev().find(|e| e.ts <= events[41].ts).expect("itself").seq;
    assert_eq!((state, at), (model_board(&model[..usize::try_from(want).expect("small")]), want));
}

#[test]
fn reopen_starts_from_snapshots_and_schema_changes_rebuild_or_explain() {
    struct BoardV2;
    impl Projection for BoardV2 {
        const NAME: &'static str = "board";
        const SCHEMA_VERSION: u32 = 2;
        type Event = Task;
        type State = <Board as Projection>::State;
        fn apply(state: &mut Self::State, event: &annal::Envelope<'_, Task>) {
            Board::apply(state, event);
        }
    }
    both(|place| {
        let journal =
            place.options().keep_snapshots(1).projection::<Board>().open(&place.dir).expect("open");
        let mut model = Vec::new();
        append_tasks(&journal, &mut model, 40);
        journal.compact().expect("compact while the log still starts at 1");
        drop(journal);
        // The log still reaches back to sequence 1 only if nothing was truncated; with one
        // segment holding everything the schema change rebuilds from the log.
        let journal = place.options().projection::<BoardV2>().open(&place.dir);
        match journal {
            Ok(j) => assert_eq!(j.state::<BoardV2>().expect("rebuilt"), model_board(&model)),
            Err(e) => assert!(e.to_string().contains("board"), "{e}"),
        }
        let journal =
            place.options().keep_snapshots(1).projection::<Board>().open(&place.dir).expect("open");
        append_tasks(&journal, &mut model, 400);
        journal.compact().expect("compact");
        assert!(journal.log().first_seq() > 1, "{}: truncated", place.name());
        drop(journal);
        // The journal opens; only the projection that cannot be rebuilt is unusable, and says why.
        let journal = place.options().projection::<BoardV2>().open(&place.dir).expect("opens");
        let err = journal.state::<BoardV2>().expect_err("cannot rebuild");
        let text = err.to_string();
        assert!(
            text.contains("board")
                && text.contains("schema version 2")
                && text.contains("schema 1"),
            "{text}"
        );
        let task = Task::Started { by: "y".into() };
        journal.append("task-x", Expect::Any, [task.clone()]).expect("still appendable");
        model.push(("task-x".into(), task));
        let report = journal.compact().expect("compaction skips the failed projection");
        assert_eq!(report.skipped, vec!["board"]);
        drop(journal);
        let journal = place
            .options()
            .projection::<Board>()
            .open(&place.dir)
            .expect("the old schema still opens");
        assert_eq!(journal.state::<Board>().expect("state"), model_board(&model));
    });
}

#[test]
fn damaged_snapshots_and_manifests_are_reported_never_used() {
    both(|place| {
        let journal =
            place.options().keep_snapshots(1).projection::<Board>().open(&place.dir).expect("open");
        let mut model = Vec::new();
        append_tasks(&journal, &mut model, 300);
        journal.compact().expect("compact");
        drop(journal);
        let snap = place.dir.join(SNAPSHOTS_DIR).join("board").join(format!("{:020}.snap", 300));
        let manifest = place.dir.join(MANIFEST_FILE);
        for (file, offset) in [(&snap, 20u64), (&snap, 70), (&manifest, 30)] {
            flip(place, file, offset);
            let opened = place.options().projection::<Board>().open(&place.dir);
            let err = opened.expect_err("a damaged file is not used");
            assert!(err.is_integrity(), "{}: {}: {err}", place.name(), file.display());
            assert!(
                err.to_string().contains(&*file.file_name().expect("name").to_string_lossy()),
                "{err}"
            );
            flip(place, file, offset);
        }
        let journal = place.options().projection::<Board>().open(&place.dir).expect("intact again");
        assert_eq!(journal.state::<Board>().expect("state"), model_board(&model));
    });
}

fn flip(place: &Place, file: &std::path::Path, offset: u64) {
    match &place.storage {
        Some(s) => {
            let mut bytes = s_read(s.as_ref(), file);
            bytes[usize::try_from(offset).expect("small")] ^= 0x10;
            s_write(s.as_ref(), file, &bytes);
        }
        None => {
            let mut bytes = std::fs::read(file).expect("read");
            bytes[usize::try_from(offset).expect("small")] ^= 0x10;
            std::fs::write(file, bytes).expect("write");
        }
    }
}

fn s_read(s: &dyn annal_storage::Storage, path: &std::path::Path) -> Vec<u8> {
    s.map_file(path).expect("read").to_vec()
}

fn s_write(s: &dyn annal_storage::Storage, path: &std::path::Path, bytes: &[u8]) {
    let f = s.open_file(path, annal_storage::OpenMode::ReadWrite).expect("open");
    f.write_all_at(bytes, 0).expect("write");
    f.sync_data().expect("sync");
}

#[test]
fn compacting_without_a_projection_never_strands_it() {
    both(|place| {
        let journal =
            place.options().keep_snapshots(1).projection::<Board>().open(&place.dir).expect("open");
        let mut model = Vec::new();
        append_tasks(&journal, &mut model, 200);
        journal.compact().expect("compact with board");
        drop(journal);
        // Another program compacts without registering `board`.
        let other = place.options().keep_snapshots(1).open(&place.dir).expect("open without board");
        append_tasks(&other, &mut model, 200);
        other.compact().expect("compact without board");
        drop(other);
        let journal = place
            .options()
            .projection::<Board>()
            .open(&place.dir)
            .expect("board can still be rebuilt");
        assert_eq!(
            journal.state::<Board>().expect("state"),
            model_board(&model),
            "{}",
            place.name()
        );
    });
}
