//! Guards the verifiable log on both file systems: a checkpoint's root is the RFC 9162 tree of
//! the records' leaves; inclusion proofs of every record and consistency proofs between every
//! earlier size verify against checkpoints; they survive a compaction that archives and are
//! refused (naming the earliest sequence) by one that does not; a rewritten record changes the
//! root and its old proofs fail.

mod common;

use annal::tlog::tree::{Frontier, root_of};
use annal::{Expect, Query};
use common::{Place, Task, both, dir_reader as reader};

#[test]
fn checkpoints_and_proofs_verify_and_survive_an_archiving_compaction() {
    for archive in [true, false] {
        both(|place| {
            let journal = place
                .options()
                .segment_bytes(4096)
                .keep_snapshots(1)
                .archive(archive)
                .open(&place.dir)
                .expect("open");
            let mut checkpoints = Vec::new();
            for i in 0..120u32 {
                let task = Task::Completed { by: format!("a{i}"), minutes: i };
                journal.append(&format!("t{}", i % 3), Expect::Any, [task]).expect("append");
                if i % 17 == 0 {
                    checkpoints.push(reader(place).checkpoint("test", None).expect("checkpoint"));
                }
            }
            // The root is the tree of the records' leaf hashes, and the frontier agrees.
            let leaves: Vec<_> = journal
                .log()
                .read_from(1)
                .map(|r| r.map(|r| annal::leaf_hash(r.seq, r.ts, &r.payload)))
                .collect::<Result<_, _>>()
                .expect("read");
            let now = reader(place).checkpoint("test", None).expect("checkpoint");
            assert_eq!(now.size, 120);
            assert_eq!(now.root, root_of(annal::TREE_HASH, &leaves));
            let mut frontier = Frontier::new(annal::TREE_HASH);
            leaves.iter().for_each(|l| frontier.push(*l));
            assert_eq!(frontier.root(), now.root);
            journal.compact().expect("compact");
            assert!(journal.log().first_seq() > 1, "{}: truncated", place.name());
            let r = reader(place);
            if !archive {
                let err = r.checkpoint("test", None).expect_err("the tree needs every record");
                assert!(err.to_string().contains("earliest reachable"), "{err}");
                return;
            }
            assert_eq!(r.checkpoint("test", None).expect("after compaction"), now);
            for seq in (1..=120).step_by(7) {
                let proof = r.inclusion_proof(seq, None).expect("prove");
                proof.verify(&now).expect("verifies");
                for old in checkpoints.iter().filter(|c| c.size >= seq) {
                    let p = r.inclusion_proof(seq, Some(old.size)).expect("prove in an old tree");
                    p.verify(old).expect("verifies against the old checkpoint");
                    assert!(p.verify(&now).is_err() || old.size == now.size);
                }
            }
            for old in &checkpoints {
                let p = r.consistency_proof(old.size, None).expect("consistency");
                p.verify(&[old.clone(), now.clone()]).expect("old is a prefix of now");
            }
            // A record past the end, or seq 0, is refused.
            assert!(r.inclusion_proof(0, None).is_err());
            assert!(r.inclusion_proof(121, None).is_err());
            assert!(r.consistency_proof(5, Some(500)).is_err());
            let events = r.read::<Task>(Query::all()).expect("read").count();
            assert_eq!(events, 120);
        });
    }
}

/// On the simulated file system (a deterministic clock), three logs of the same 40 events:
/// a copy gives the same root; one with a single event changed gives proofs that fail against
/// the first log's checkpoint, and is not consistent with it.
#[test]
fn a_rewritten_record_breaks_its_proofs_and_the_consistency_with_earlier_checkpoints() {
    let build = |changed: Option<u32>| {
        let place = Place::sim(5);
        let journal = place.options().open(&place.dir).expect("open");
        for i in 0..40u32 {
            let minutes = if Some(i) == changed { 999 } else { i };
            let task = Task::Completed { by: format!("a{i}"), minutes };
            journal.append("t", Expect::Any, [task]).expect("append");
        }
        drop(journal);
        place
    };
    let first = build(None);
    let before = reader(&first).checkpoint("test", None).expect("checkpoint");
    reader(&first).inclusion_proof(10, None).expect("prove").verify(&before).expect("verifies");
    let copy = build(None);
    assert_eq!(
        reader(&copy).checkpoint("test", None).expect("checkpoint"),
        before,
        "deterministic"
    );
    let rewritten = build(Some(9));
    let r = reader(&rewritten);
    assert_ne!(r.checkpoint("test", None).expect("checkpoint").root, before.root);
    for seq in [1, 10, 11, 40] {
        let err = r.inclusion_proof(seq, None).expect("prove").verify(&before).expect_err("forged");
        assert!(err.is_integrity(), "{err}");
    }
    // The events before the change are the same: their tree is the first log's prefix.
    let grown = r.consistency_proof(9, None).expect("consistency");
    let old9 = reader(&first).consistency_proof(9, None).expect("consistency");
    assert_eq!(grown.first_root, old9.first_root, "the first 9 events are the same");
    assert!(grown.verify(&[before]).is_err(), "the rewritten log is not the checkpointed one");
}
