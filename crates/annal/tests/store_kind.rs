//! Guards that a raw `Log` and a `Journal` never open each other's store: every segment header
//! records the store's kind, and an open of the other kind fails with `WrongKind`, naming the
//! segment, before it changes a byte. On the OS file system and on the simulated one.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use annal::storage::{OpenMode, OsStorage, Storage};
use annal::wal::{Log, Options, StoreKind, WAL_DIR};
use annal::{Expect, JournalReader, NewEvent};
use common::{Place, both};

fn storage(place: &Place) -> Arc<dyn Storage> {
    place.storage.clone().unwrap_or_else(|| Arc::new(OsStorage::new()))
}

/// Every file of the store (name -> bytes), to show that a refused open changed nothing.
fn files(storage: &dyn Storage, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in [dir.to_path_buf(), dir.join(WAL_DIR)] {
        for name in storage.list_dir(&sub).expect("list") {
            let path = sub.join(&name);
            if storage.list_dir(&path).is_ok() {
                continue; // wal/ itself, listed on its own
            }
            let Ok(file) = storage.open_file(&path, OpenMode::Read) else { continue };
            let len = usize::try_from(file.len().expect("len")).expect("fits");
            let mut bytes = vec![0; len];
            file.read_exact_at(&mut bytes, 0).expect("read");
            out.insert(path.display().to_string(), bytes);
        }
    }
    out
}

fn log_options() -> Options {
    Options { segment_bytes_target: 8 * 1024, ..Options::default() }
}

fn open_log(place: &Place) -> annal::wal::Result<Log> {
    Log::open_with(storage(place), &place.dir, log_options())
}

fn wrong_kind(message: &str, found: &str, wanted: &str) {
    assert!(message.contains(found) && message.contains(wanted), "{message}");
    assert!(message.contains(".seg"), "the error does not name the segment: {message}");
    assert!(message.contains("nothing was changed"), "{message}");
}

#[test]
fn a_log_refuses_a_journal_and_leaves_it_alone() {
    both(|place| {
        let journal = place.options().open(&place.dir).expect("open journal");
        for i in 0..200 {
            let event =
                NewEvent::json("task-created", &serde_json::json!({ "n": i })).expect("event");
            journal.append_events("s", Expect::Any, vec![event]).expect("append");
        }
        journal.close().expect("close");
        let before = files(storage(place).as_ref(), &place.dir);
        assert!(before.keys().filter(|k| k.ends_with(".seg")).count() > 1, "{:?}", before.keys());
        let err = open_log(place).expect_err("a Log opened a journal");
        assert!(
            matches!(err, annal::wal::Error::WrongKind { found: StoreKind::Journal, .. }),
            "{}: {err:?}",
            place.name()
        );
        wrong_kind(&err.to_string(), "holds a journal", "not a log");
        assert_eq!(files(storage(place).as_ref(), &place.dir), before, "{}", place.name());
        let journal = place.options().open(&place.dir).expect("the journal still opens");
        assert_eq!(journal.last_seq(), 200);
    });
}

#[test]
fn a_journal_and_its_reader_refuse_a_log_and_leave_it_alone() {
    both(|place| {
        let log = open_log(place).expect("open log");
        for i in 0..200u32 {
            log.append(&i.to_le_bytes()).expect("append");
        }
        drop(log);
        let before = files(storage(place).as_ref(), &place.dir);
        let err = place.options().open(&place.dir).expect_err("a Journal opened a log");
        wrong_kind(&err.to_string(), "holds a log", "not a journal");
        assert!(!err.is_integrity() && !err.is_conflict(), "{err:?}");
        let err = JournalReader::open_with(storage(place), &place.dir)
            .expect_err("a JournalReader opened a log");
        wrong_kind(&err.to_string(), "holds a log", "not a journal");
        let err = place.options().repair(&place.dir).expect_err("repair took a log for a journal");
        wrong_kind(&err.to_string(), "holds a log", "not a journal");
        assert_eq!(files(storage(place).as_ref(), &place.dir), before, "{}", place.name());
        assert_eq!(open_log(place).expect("the log still opens").last_seq(), 200);
    });
}

/// Rewrites the kind in the header of `segment` (a journal's only, active segment: no footer
/// CRC covers its header) as a build that did not record it wrote it: 0.
fn unmark(storage: &dyn Storage, segment: &Path) {
    use annal::wal::format::{SEGMENT_HEADER_BYTES, SegmentHeader};
    let file = storage.open_file(segment, OpenMode::ReadWrite).expect("open");
    let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
    file.read_exact_at(&mut bytes, 0).expect("read");
    let mut header = SegmentHeader::decode(&bytes).expect("header");
    assert_eq!(header.kind, StoreKind::Journal);
    header.kind = StoreKind::Unmarked;
    file.write_all_at(&header.encode(), 0).expect("write");
    file.sync_data().expect("sync");
}

fn segments(storage: &dyn Storage, dir: &Path) -> Vec<(String, Vec<u8>)> {
    files(storage, dir).into_iter().filter(|(name, _)| name.ends_with(".seg")).collect()
}

/// The kind sits at byte offset 12 of every segment header (1 log, 2 journal); a store written
/// before it was recorded (0 there) opens as either, and the segments a writer starts on it
/// carry the writer's kind, which from then on refuses the other.
#[test]
fn the_kind_is_in_every_header_and_an_unmarked_store_opens_as_either() {
    both(|place| {
        let storage = storage(place);
        let log = open_log(place).expect("open log");
        log.append(b"raw").expect("append");
        drop(log);
        for (name, bytes) in segments(storage.as_ref(), &place.dir) {
            assert_eq!(bytes[12..16], [1, 0, 0, 0], "{name}");
        }
        let other = Place::os();
        let other = if place.storage.is_some() { Place::sim(4) } else { other };
        let journal = other.options().open(&other.dir).expect("open journal");
        let event = NewEvent::json("t", &serde_json::json!({})).expect("event");
        journal.append_events("s", Expect::Any, vec![event]).expect("append");
        drop(journal);
        let other_storage = self::storage(&other);
        let segs = segments(other_storage.as_ref(), &other.dir);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].1[12..16], [2, 0, 0, 0]);
        unmark(other_storage.as_ref(), Path::new(&segs[0].0));
        // Unmarked: the journal, its reader and a raw log all open it.
        JournalReader::open_with(Arc::clone(&other_storage), &other.dir).expect("reader");
        drop(Log::open_with(Arc::clone(&other_storage), &other.dir, log_options()).expect("log"));
        let journal = other.options().open(&other.dir).expect("an unmarked journal opens");
        for i in 0..200 {
            let event = NewEvent::json("t", &serde_json::json!({ "n": i })).expect("event");
            journal.append_events("s", Expect::Any, vec![event]).expect("append");
        }
        assert_eq!(journal.last_seq(), 201);
        drop(journal);
        let segs = segments(other_storage.as_ref(), &other.dir);
        assert!(segs.len() > 1, "{}", segs.len());
        assert_eq!(segs[0].1[12..16], [0, 0, 0, 0], "the old segment is left as it was");
        assert_eq!(segs.last().expect("newest").1[12..16], [2, 0, 0, 0]);
        let err = Log::open_with(other_storage, &other.dir, log_options())
            .expect_err("the store now holds journal segments");
        assert!(matches!(err, annal::wal::Error::WrongKind { .. }), "{err:?}");
    });
}
