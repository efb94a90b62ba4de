//! Guards the read-only view: while a writer holds the lock, a `JournalReader` reads the
//! acknowledged events and replays projections (from snapshots after a compaction) to the same
//! states as the writer, and modifies nothing.

mod common;

use annal::{Counts, Expect, JournalReader, Query, Until};
use common::{Board, Task, both, dir_reader, model_board};

#[test]
fn reader_sees_what_the_writer_wrote_and_replays_the_same() {
    both(|place| {
        let journal = place
            .options()
            .keep_snapshots(3)
            .projection::<Board>()
            .projection::<Counts>()
            .open(&place.dir)
            .expect("open");
        let reader = match &place.storage {
            Some(s) => JournalReader::open_with(std::sync::Arc::clone(s), &place.dir),
            None => JournalReader::open(&place.dir),
        }
        .expect("reader while the writer holds the lock");
        let mut model = Vec::new();
        for round in 0..3u32 {
            for i in 0..120u32 {
                let stream = format!("task-{}", i % 6);
                let task = Task::Completed { by: format!("a{}", i % 4), minutes: i + round };
                journal.append(&stream, Expect::Any, [task.clone()]).expect("append");
                model.push((stream, task));
            }
            if round < 2 {
                journal.compact().expect("compact");
            }
        }
        let events: Vec<_> = reader
            .read::<Task>(Query::all())
            .expect("read")
            .collect::<Result<_, _>>()
            .expect("events");
        let first = usize::try_from(events[0].seq).expect("small");
        assert!(first > 1, "{}: compaction truncated the log", place.name());
        assert_eq!(
            events.len(),
            model.len() - (first - 1),
            "{}: a read from 1 starts at the log start",
            place.name()
        );
        assert!(
            events
                .iter()
                .zip(&model[first - 1..])
                .all(|(e, (s, t))| &e.stream == s && &e.data == t)
        );
        for seq in [0u64, 1, 119] {
            let err =
                reader.replay::<Board>(Until::Seq(seq)).expect_err("before the oldest snapshot");
            assert!(
                err.to_string().contains("120"),
                "{}: names the earliest reachable: {err}",
                place.name()
            );
        }
        for seq in [120u64, 121, 250, 360] {
            let (state, at) = reader.replay::<Board>(Until::Seq(seq)).expect("replay");
            assert_eq!(
                (state, at),
                (model_board(&model[..usize::try_from(seq).expect("small")]), seq),
                "{} at {seq}",
                place.name()
            );
        }
        let (counts, _) = reader.replay::<Counts>(Until::End).expect("counts");
        assert_eq!(counts, journal.state::<Counts>().expect("live"));
        let t = events[200].ts;
        assert_eq!(
            reader.replay::<Board>(Until::Time(t)).expect("by time").0,
            journal.replay::<Board>(Until::Time(t)).expect("writer").0
        );
        let err = reader.replay::<Board>(Until::Seq(999)).expect_err("past the end");
        assert!(err.to_string().contains("999"), "{err}");
        let tail: Vec<u64> = reader
            .read::<serde_json::Value>(Query::range(300..).stream("task-1").limit(3))
            .expect("read")
            .map(|e| e.expect("event").seq)
            .collect();
        assert_eq!(tail.len(), 3);
        assert!(tail.iter().all(|&s| s >= 300));
    });
}

/// A journal on 4 KiB segments keeping one snapshot, archiving or not.
fn small_segments(place: &common::Place, archive: bool) -> annal::Journal {
    place
        .options()
        .segment_bytes(4096)
        .keep_snapshots(1)
        .archive(archive)
        .projection::<Board>()
        .open(&place.dir)
        .expect("open")
}

/// Below the log start, every library read path reaches into `archive/` (or fails naming the
/// earliest reachable sequence without one); none starts at the log start in silence.
#[test]
fn reads_below_the_log_start_reach_the_archive_or_fail() {
    for archive in [true, false] {
        both(|place| {
            let journal = small_segments(place, archive);
            for i in 0..500u32 {
                let stream = if i % 5 == 0 { "acct" } else { "other" };
                let task = Task::Completed { by: format!("a{i}"), minutes: i };
                journal.append(stream, Expect::Any, [task]).expect("append");
            }
            journal.compact().expect("compact");
            let start = journal.log().first_seq();
            assert!(start > 1, "the compaction truncated the log");
            let reader = dir_reader(place);
            let seqs = |events: Vec<annal::Result<annal::Event<Task>>>| {
                events.into_iter().map(|e| e.map(|e| e.seq)).collect::<annal::Result<Vec<_>>>()
            };
            let all = seqs(journal.read::<Task>(Query::all()).collect());
            let from_one = seqs(journal.read::<Task>(Query::range(1..)).collect());
            let acct = seqs(journal.read::<Task>(Query::all().stream("acct")).collect());
            let dir_all = seqs(reader.read::<Task>(Query::all()).expect("read").collect());
            let dir_one = seqs(reader.read::<Task>(Query::range(1..)).expect("read").collect());
            let sub: Vec<_> = journal.subscribe::<Task>(1).take(1).collect();
            if archive {
                let want: Vec<u64> = (1..=500).collect();
                assert_eq!(all.as_ref().expect("all"), &want, "{}", place.name());
                assert_eq!(from_one.as_ref().expect("from 1"), &want);
                assert_eq!(dir_all.as_ref().expect("dir all"), &want);
                assert_eq!(dir_one.as_ref().expect("dir from 1"), &want);
                assert_eq!(acct.expect("acct").len(), 100, "{}", place.name());
                assert_eq!(sub[0].as_ref().expect("subscribe").seq, 1);
            } else {
                let want: Vec<u64> = (start..=500).collect();
                assert_eq!(all.expect("all"), want, "{}: from the earliest held", place.name());
                assert_eq!(dir_all.expect("dir all"), want);
                for got in [from_one.map(|_| ()), dir_one.map(|_| ())] {
                    let err = got.expect_err("a start below the log start is an error");
                    assert!(err.to_string().contains(&format!("is {start}")), "{err}");
                }
                assert!(sub[0].is_err(), "{}: subscribe(1) fails", place.name());
            }
        });
    }
}

/// A reader that a compaction overtakes, before or after its first event, continues through
/// `archive/` or fails naming the earliest sequence held (`BeforeStart`, not an integrity
/// error: nothing is damaged); it never jumps. For the journal's own reader, a directory
/// reader, and the chained reader an export uses.
#[test]
fn readers_overtaken_by_a_compaction_continue_through_the_archive_or_fail_without_a_gap() {
    for archive in [true, false] {
        both(|place| {
            let journal = small_segments(place, archive);
            let append = |n: u32| {
                for i in 0..n {
                    let task = Task::Completed { by: format!("a{i}"), minutes: i };
                    journal.append("t", Expect::Any, [task]).expect("append");
                }
            };
            append(100);
            let reader = dir_reader(place);
            // Opened before the compaction, at 10: one has read an event, one has not.
            let mut started = reader.read::<Task>(Query::range(10..)).expect("read");
            assert_eq!(started.next().expect("one").expect("event").seq, 10);
            let mut waiting = reader.read::<Task>(Query::range(20..)).expect("read");
            let mut live = journal.read::<Task>(Query::range(10..));
            let mut chained = reader.chained(30).expect("chained");
            append(300);
            journal.compact().expect("compact");
            let start = journal.log().first_seq();
            assert!(start > 30, "{}: the compaction removed what the readers need", place.name());
            let name = place.name();
            let check = |what: &str, from: u64, got: Vec<annal::Result<u64>>| {
                if archive {
                    let seqs: Vec<u64> =
                        got.into_iter().collect::<annal::Result<_>>().expect("through archive/");
                    assert_eq!(seqs, (from..=400).collect::<Vec<_>>(), "{name}: {what}");
                } else {
                    // What it still held (its current segment), gapless, then the error.
                    let (last, held) = got.split_last().expect("at least the error");
                    let seqs: Vec<u64> =
                        held.iter().map(|r| *r.as_ref().expect("held events")).collect();
                    let want: Vec<u64> = (from..).take(seqs.len()).collect();
                    assert_eq!(seqs, want, "{name}: {what}");
                    let err = last.as_ref().expect_err("overtaken");
                    assert!(!err.is_integrity(), "{name}: {what}: {err}");
                    assert!(err.to_string().contains(&format!("is {start}")), "{what}: {err}");
                }
            };
            check(
                "started directory reader",
                11,
                started.by_ref().map(|e| e.map(|e| e.seq)).collect(),
            );
            check(
                "waiting directory reader",
                20,
                waiting.by_ref().map(|e| e.map(|e| e.seq)).collect(),
            );
            check("the journal's reader", 10, live.by_ref().map(|e| e.map(|e| e.seq)).collect());
            check(
                "chained reader",
                30,
                chained.by_ref().map(|c| c.map(|c| c.record.seq)).collect(),
            );
        });
    }
}
