//! Guards what every library read path promises over damage (G11), as a table: every read
//! path x every kind of damage, on the OS file system and on the simulated one. A path either
//! returns exactly what the intact store returns, or fails; it never succeeds with less. Each
//! kind of damage must be reported by some path (a kind no path notices would test nothing).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal::storage::{OpenMode, OsStorage, Storage};
use annal::{Journal, JournalReader, Query, Until};
use common::{Board, Place, Task};

/// The kinds of damage, each applied to a fresh copy of the same store.
const KINDS: [&str; 12] = [
    "bit flip in the active segment's first frame",
    "bit flip in the active segment's last frame",
    "bit flip in a sealed segment",
    "bit flip in an archived segment",
    "bit flip in a segment header",
    "bit flip in a snapshot",
    "bit flip in the MANIFEST",
    "a sealed segment missing",
    "the last segment missing",
    "the MANIFEST missing",
    "a snapshot missing",
    "an archived segment missing",
];

fn storage(place: &Place) -> Arc<dyn Storage> {
    place.storage.clone().unwrap_or_else(|| Arc::new(OsStorage::new()))
}

fn reader(place: &Place) -> annal::Result<JournalReader> {
    JournalReader::open_with(storage(place), &place.dir)
}

fn open(place: &Place) -> annal::Result<Journal> {
    place
        .options()
        .segment_bytes(4096)
        .keep_snapshots(1)
        .archive(true)
        .projection::<Board>()
        .open(&place.dir)
}

/// 300 events over 6 streams, a compaction (archiving) at 200, a clean close.
fn build(place: &Place) {
    let journal = open(place).expect("open");
    for i in 0..300u32 {
        let stream = format!("task-{}", i % 6);
        let task = match i % 3 {
            0 => Task::Created { title: format!("t{i}") },
            1 => Task::Started { by: format!("a{}", i % 4) },
            _ => Task::Completed { by: format!("a{}", i % 5), minutes: i },
        };
        journal.append(&stream, annal::Expect::Any, [task]).expect("append");
        if i == 200 {
            journal.compact().expect("compact");
        }
    }
    journal.close().expect("close");
}

fn list(storage: &dyn Storage, dir: &Path) -> Vec<PathBuf> {
    let mut names = storage.list_dir(dir).unwrap_or_default();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

fn flip(storage: &dyn Storage, path: &Path, offset: u64) {
    let file = storage.open_file(path, OpenMode::ReadWrite).expect("open for damage");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read the byte");
    byte[0] ^= 0x10;
    file.write_all_at(&byte, offset).expect("write the byte");
    file.sync_data().expect("sync");
}

/// Applies damage `kind` to the store.
fn damage(place: &Place, kind: usize) {
    let storage = storage(place);
    let s = storage.as_ref();
    let dir = &place.dir;
    let segments = list(s, &dir.join(annal::WAL_DIR));
    let segments: Vec<&PathBuf> =
        segments.iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).collect();
    let archived = list(s, &dir.join("archive"));
    let snapshots: Vec<PathBuf> =
        list(s, &dir.join("snapshots")).iter().flat_map(|p| list(s, p)).collect();
    let summary = reader(place).expect("reader").summary().expect("intact summary");
    let active = summary.log.segments.last().expect("an active segment");
    let len = |p: &Path| s.open_file(p, OpenMode::Read).and_then(|f| f.len()).expect("len");
    match kind {
        0 => flip(s, &active.path, 64 + 20),
        1 => flip(s, &active.path, active.data_bytes - 3),
        2 => flip(s, segments[0], len(segments[0]) / 2),
        3 => flip(s, &archived[archived.len() / 2], len(&archived[archived.len() / 2]) / 2),
        4 => flip(s, segments[1], 9),
        5 => flip(s, &snapshots[0], len(&snapshots[0]) / 2),
        6 => flip(s, &dir.join("MANIFEST"), len(&dir.join("MANIFEST")) / 2),
        7 => s.remove_file(segments[1]).expect("remove"),
        8 => s.remove_file(segments[segments.len() - 1]).expect("remove"),
        9 => s.remove_file(&dir.join("MANIFEST")).expect("remove"),
        10 => s.remove_file(&snapshots[0]).expect("remove"),
        _ => s.remove_file(&archived[archived.len() / 2]).expect("remove"),
    }
}

/// Every library read path, each as what it returned, in words, or its error.
fn read_paths(place: &Place, target: u64, ts: u64) -> Vec<(&'static str, Result<String, String>)> {
    let text = |r: annal::Result<String>| r.map_err(|e| e.to_string());
    let dir_reader = reader(place);
    let with_reader = |f: &dyn Fn(&JournalReader) -> annal::Result<String>| {
        text(dir_reader.as_ref().map_err(|e| annal::Error::Invalid(e.to_string())).and_then(f))
    };
    let seqs = |events: Box<dyn Iterator<Item = annal::Result<annal::Event<Task>>>>| {
        events
            .map(|e| e.map(|e| format!("{}:{}:{}", e.seq, e.stream, e.version)))
            .collect::<annal::Result<Vec<_>>>()
            .map(|v| v.join(" "))
    };
    let mut out = vec![
        (
            "JournalReader::read all",
            with_reader(&|r| seqs(Box::new(r.read::<Task>(Query::all())?))),
        ),
        (
            "JournalReader::read from a point",
            with_reader(&|r| seqs(Box::new(r.read::<Task>(Query::range(150..))?))),
        ),
        (
            "JournalReader::read a range",
            with_reader(&|r| seqs(Box::new(r.read::<Task>(Query::range(100..=260))?))),
        ),
        (
            "JournalReader::read one stream",
            with_reader(&|r| seqs(Box::new(r.read::<Task>(Query::all().stream("task-2"))?))),
        ),
        (
            "JournalReader::records",
            with_reader(&|r| {
                r.records(0)?
                    .map(|r| r.map(|r| format!("{}:{}", r.seq, r.payload.len())))
                    .collect::<annal::Result<Vec<_>>>()
                    .map(|v| v.join(" "))
            }),
        ),
        (
            "JournalReader::chained (export)",
            with_reader(&|r| {
                r.chained(0)?
                    .map(|c| c.map(|c| format!("{}:{}", c.record.seq, annal::to_hex(&c.chain))))
                    .collect::<annal::Result<Vec<_>>>()
                    .map(|v| v.join(" "))
            }),
        ),
        (
            "JournalReader::summary (info)",
            with_reader(&|r| {
                r.summary().map(|s| {
                    format!(
                        "{}..={} {} {}",
                        s.log.earliest_seq(),
                        s.log.last_seq,
                        annal::to_hex(&s.log.chain_head),
                        s.log_start
                    )
                })
            }),
        ),
        (
            "JournalReader::replay to the end",
            with_reader(&|r| r.replay::<Board>(Until::End).map(|s| format!("{:?}", s))),
        ),
        (
            "JournalReader::replay to a sequence",
            with_reader(&|r| r.replay::<Board>(Until::Seq(target)).map(|s| format!("{:?}", s))),
        ),
        (
            "JournalReader::replay to a time",
            with_reader(&|r| r.replay::<Board>(Until::Time(ts)).map(|s| format!("{:?}", s))),
        ),
        (
            "JournalReader::replay below the log start",
            with_reader(&|r| r.replay::<Board>(Until::Seq(50)).map(|s| format!("{:?}", s))),
        ),
    ];
    // The writer last: its open may repair what it may repair.
    let journal = open(place);
    let with_journal = |f: &dyn Fn(&Journal) -> annal::Result<String>| {
        text(journal.as_ref().map_err(|e| annal::Error::Invalid(e.to_string())).and_then(f))
    };
    out.extend([
        (
            "Journal::open and state",
            with_journal(&|j| j.state::<Board>().map(|s| format!("{s:?}"))),
        ),
        ("Journal::read all", with_journal(&|j| seqs(Box::new(j.read::<Task>(Query::all()))))),
        (
            "Journal::read one stream",
            with_journal(&|j| seqs(Box::new(j.read::<Task>(Query::all().stream("task-2"))))),
        ),
        (
            "Journal::subscribe (caught up)",
            with_journal(&|j| {
                let n = usize::try_from(j.last_seq()).expect("small");
                seqs(Box::new(j.subscribe::<Task>(1).take(n)))
            }),
        ),
        (
            "Journal::replay to a sequence",
            with_journal(&|j| j.replay::<Board>(Until::Seq(target)).map(|s| format!("{s:?}"))),
        ),
        (
            "Journal::replay below the log start",
            with_journal(&|j| j.replay::<Board>(Until::Seq(50)).map(|s| format!("{s:?}"))),
        ),
    ]);
    out
}

/// Copies the directory tree `from` to `to` (the OS file system).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A store equal to `intact`, byte for byte: a copy on the OS file system; on the simulated
/// one (whose clock is deterministic) the same store built again.
fn same_store(intact: &Place) -> Place {
    if intact.storage.is_some() {
        let place = Place::sim(11);
        build(&place);
        place
    } else {
        let place = Place::os();
        copy_tree(&intact.dir, &place.dir);
        place
    }
}

#[test]
fn every_read_path_over_every_damage_returns_the_intact_answer_or_fails() {
    let places: [fn() -> Place; 2] = [Place::os, || Place::sim(11)];
    for make in places {
        let intact = make();
        build(&intact);
        let target = 250;
        let ts = {
            let events = reader(&intact).expect("reader").read::<Task>(Query::range(240..));
            events.expect("read").next().expect("one").expect("event").ts
        };
        let want = read_paths(&same_store(&intact), target, ts);
        for (path, answer) in &want {
            assert!(answer.is_ok(), "{}: the intact store fails {path}: {answer:?}", intact.name());
        }
        let mut cells = 0;
        for (kind, what) in KINDS.iter().enumerate() {
            let place = same_store(&intact);
            damage(&place, kind);
            let got = read_paths(&place, target, ts);
            let mut reported = 0;
            for ((path, got), (_, want)) in got.iter().zip(&want) {
                cells += 1;
                match got {
                    Err(_) => reported += 1,
                    Ok(text) => assert_eq!(
                        Ok(text),
                        want.as_ref(),
                        "{}: {what}: {path} succeeded with another answer",
                        place.name()
                    ),
                }
            }
            assert!(reported > 0, "{}: {what}: no read path reported it", place.name());
        }
        assert_eq!(cells, KINDS.len() * want.len());
    }
}
