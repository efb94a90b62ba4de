//! Guards the checkpoints a journal writes itself (`JournalOptions::checkpoints`), on both file
//! systems: one at every segment seal and every compaction, signed by the journal's key, each
//! the tree of exactly the events durable at the time, continued across reopens and across a
//! compaction that truncates the log without an archive; a damaged frontier, or one past the
//! log's end (events a checkpoint covers are gone), fails the open naming the file.

mod common;

use annal::storage::{OpenMode, Storage};
use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::note::{Signer, Verifiers, open as open_note};
use annal::tlog::tree::Frontier;
use annal::{Expect, JournalOptions, TREE_HASH};
use common::{Place, Task, both, dir_reader as reader};

const ORIGIN: &str = "example.org/journal";

fn signer() -> Signer {
    Signer::from_seed(ORIGIN, [7; 32]).expect("signer")
}

fn options(place: &Place) -> JournalOptions {
    place.options().segment_bytes(4096).keep_snapshots(1).checkpoints(ORIGIN, Some(signer()))
}

/// Every checkpoint the journal wrote, its signature checked, with its tree size.
fn written(place: &Place) -> Vec<Checkpoint> {
    let verifiers = Verifiers::new(vec![signer().verifier()]);
    reader(place)
        .written_checkpoints()
        .expect("list")
        .into_iter()
        .map(|w| {
            let note = open_note(&w.text, &verifiers).expect("signed by the journal's key");
            let c = Checkpoint::parse(&note.text).expect("a checkpoint");
            assert_eq!(c.size, w.size, "{}", w.file.display());
            assert_eq!(c.origin, ORIGIN);
            c
        })
        .collect()
}

/// Appends `n` events, one per append, and returns the leaf hash of each (read back).
fn append(journal: &annal::Journal, from: u32, n: u32, leaves: &mut Vec<annal::tlog::Hash>) {
    for i in from..from + n {
        let task = Task::Completed { by: format!("a{i}"), minutes: i };
        let a = journal.append(&format!("t{}", i % 3), Expect::Any, [task]).expect("append");
        let record = journal.log().read_from(a.first).next().expect("record").expect("read");
        leaves.push(annal::leaf_hash(record.seq, record.ts, &record.payload));
    }
}

fn root_of(leaves: &[annal::tlog::Hash]) -> annal::tlog::Hash {
    let mut f = Frontier::new(TREE_HASH);
    leaves.iter().for_each(|l| f.push(*l));
    f.root()
}

/// Each checkpoint's root is the tree of that many of `leaves`.
#[track_caller]
fn assert_roots(place: &Place, checkpoints: &[Checkpoint], leaves: &[annal::tlog::Hash]) {
    for c in checkpoints {
        let n = usize::try_from(c.size).expect("fits");
        assert_eq!(c.root, root_of(&leaves[..n]), "{}: size {}", place.name(), c.size);
    }
}

#[test]
fn a_checkpoint_at_every_seal_and_compaction_continues_the_tree() {
    both(|place| {
        let mut leaves = Vec::new();
        let journal = options(place).open(&place.dir).expect("open");
        append(&journal, 0, 150, &mut leaves);
        let after_seals = written(place);
        let seals = journal.log().stats().segments_created;
        assert!(
            seals >= 2 && after_seals.len() as u64 >= seals - 1,
            "{seals} seals, {after_seals:?}"
        );
        assert_roots(place, &after_seals, &leaves);
        // A compaction without archive truncates the log; its checkpoint covers every event.
        journal.compact().expect("compact");
        let after_compaction = written(place);
        let last = after_compaction.last().expect("one");
        assert_eq!(last.size, 150, "{}", place.name());
        assert_eq!(last.root, root_of(&leaves));
        assert!(journal.log().first_seq() > 1, "the compaction truncated the log");
        drop(journal);
        // Reopened: the tree continues from the newest frontier, not from the (gone) start.
        let journal = options(place).open(&place.dir).expect("reopen");
        append(&journal, 150, 150, &mut leaves);
        journal.compact().expect("compact");
        let all = written(place);
        assert!(all.len() > after_compaction.len());
        assert_roots(place, &all, &leaves);
        assert_eq!(all.last().expect("one").size, 300);
        // Consecutive checkpoints are consistent: every earlier tree is a prefix of a later one.
        for pair in all.windows(2) {
            assert!(pair[0].size <= pair[1].size);
        }
    });
}

#[test]
fn a_damaged_frontier_or_one_past_the_end_fails_the_open() {
    both(|place| {
        let mut leaves = Vec::new();
        let journal = options(place).open(&place.dir).expect("open");
        append(&journal, 0, 60, &mut leaves);
        journal.compact().expect("compact");
        drop(journal);
        let storage = place
            .storage
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(annal::storage::OsStorage::new()));
        let cdir = place.dir.join(annal::CHECKPOINTS_DIR);
        let frontier = cdir.join(format!("{:020}.frontier", 60));
        let file = storage.open_file(&frontier, OpenMode::ReadWrite).expect("open frontier");
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, 30).expect("read");
        file.write_all_at(&[byte[0] ^ 1], 30).expect("flip");
        file.sync_data().expect("sync");
        drop(file);
        // Meanwhile, a journal of 61 events beside it, whose frontier is valid.
        let other = place.dir.with_extension("other");
        let journal = options(place).open(&other).expect("open other");
        append(&journal, 0, 61, &mut Vec::new());
        journal.compact().expect("compact");
        drop(journal);
        let err = options(place).open(&place.dir).expect_err("a damaged frontier was used");
        assert!(err.is_integrity(), "{err:?}");
        assert!(err.to_string().contains("00000000000000000060.frontier"), "{err}");
        // A journal opened without checkpoints does not read them.
        drop(place.options().open(&place.dir).expect("open without checkpoints"));
        // A frontier past the log's end: events a checkpoint covers are missing.
        let name61 = format!("{:020}.frontier", 61);
        file_copy(
            storage.as_ref(),
            &other.join(annal::CHECKPOINTS_DIR).join(&name61),
            &cdir.join(&name61),
        );
        storage.remove_file(&frontier).expect("remove");
        let err = options(place).open(&place.dir).expect_err("a frontier past the end was used");
        assert!(
            err.to_string().contains("covers 61 events but the log ends at sequence 60"),
            "{err}"
        );
    });
}

fn file_copy(storage: &dyn Storage, from: &std::path::Path, to: &std::path::Path) {
    let src = storage.open_file(from, OpenMode::Read).expect("open");
    let mut bytes = vec![0; usize::try_from(src.len().expect("len")).expect("fits")];
    src.read_exact_at(&mut bytes, 0).expect("read");
    annal::storage::write_atomic(storage, to, &bytes).expect("write");
}
