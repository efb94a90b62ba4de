//! Guards the basic contract of the log on both storages: records read back byte-identical,
//! gapless and in order, across segment rolls and reopens; timestamps never decrease; the hash
//! chain is computable at every sequence; limits and the writer lock are enforced.

mod common;

use annal_wal::{CHAIN_START, Durability, Error, Options, chain_next};
use common::{Env, both, payload, payloads, read_all, small};

#[test]
fn append_read_reopen_across_segments() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        let mut want = Vec::new();
        for seq in 1..=300u64 {
            let a = log.append(&payload(seq)).expect("append");
            assert_eq!((a.first, a.last), (seq, seq), "{}", env.name());
            want.push(payload(seq));
        }
        let batch: Vec<Vec<u8>> = (301..=310).map(payload).collect();
        let a = log.append_batch(&batch).expect("batch");
        assert_eq!((a.first, a.last), (301, 310));
        want.extend(batch);
        assert!(log.segments().len() > 3, "{}: small segments roll", env.name());
        let got = read_all(&log);
        assert_eq!(payloads(&got), want, "{}", env.name());
        assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts && w[0].seq + 1 == w[1].seq));
        let head = log.chain_head().expect("head");
        drop(log);

        let log = env.open(small(Durability::Sync)).expect("reopen");
        assert!(log.recovery_report().is_clean(), "{}: {:?}", env.name(), log.recovery_report());
        assert_eq!(log.last_seq(), 310);
        assert_eq!(log.chain_head().expect("head"), head, "{}: chain survives reopen", env.name());
        assert_eq!(payloads(&read_all(&log)), want);
        let a = log.append(b"after reopen").expect("append after reopen");
        assert_eq!(a.first, 311);
    });
}

#[test]
fn read_from_every_position() {
    both(|env| {
        let log = env.open(small(Durability::Manual)).expect("open");
        for seq in 1..=200u64 {
            if seq % 10 == 0 {
                let b: Vec<Vec<u8>> = (0..3).map(|i| payload(seq * 1000 + i)).collect();
                log.append_batch(&b).expect("batch");
            } else {
                log.append(&payload(seq)).expect("append");
            }
        }
        log.sync().expect("sync");
        let all = read_all(&log);
        for from in [1, 2, 9, 10, 11, 12, 57, 150, all.len() as u64] {
            let got: Vec<_> = log.read_from(from).map(|r| r.expect("read")).collect();
            assert_eq!(
                got,
                all[usize::try_from(from - 1).expect("small")..],
                "{} from {from}",
                env.name()
            );
        }
        assert_eq!(log.read_from(all.len() as u64 + 1).count(), 0);
    });
}

#[test]
fn chain_at_every_sequence_matches_a_recomputation() {
    both(|env| {
        let log = env.open(small(Durability::Manual)).expect("open");
        for seq in 1..=120u64 {
            log.append(&payload(seq)).expect("append");
        }
        let records = read_all(&log);
        let mut chain = CHAIN_START;
        assert_eq!(log.chain_at(0).expect("chain before first"), CHAIN_START);
        for r in &records {
            chain = chain_next(&chain, r.seq, r.ts, &r.payload);
            assert_eq!(log.chain_at(r.seq).expect("chain"), chain, "{} at {}", env.name(), r.seq);
        }
        assert_eq!(log.chain_head().expect("head"), chain);
        assert!(matches!(log.chain_at(121), Err(Error::OutOfRange { seq: 121, .. })));
    });
}

#[test]
fn limits_and_empty_batches_are_refused_without_writing() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        let err = log.append_batch::<&[u8]>(&[]).expect_err("empty batch");
        assert!(matches!(err, Error::EmptyBatch), "{err}");
        let huge = vec![0u8; annal_wal::format::FRAME_BYTES_MAX as usize];
        let err = log.append(&huge).expect_err("too large");
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert_eq!(log.last_seq(), 0);
        log.append(b"fine").expect("log still usable");
        assert_eq!(log.last_seq(), 1);
    });
}

#[test]
fn second_writer_is_refused_with_the_holder_pid() {
    both(|env| {
        let log = env.open(Options::default()).expect("open");
        let err = env.open(Options::default()).expect_err("second writer");
        match err {
            Error::Locked { pid, .. } => {
                assert_eq!(pid, Some(std::process::id()), "{}", env.name())
            }
            other => panic!("{}: expected Locked, got {other}", env.name()),
        }
        drop(log);
        env.open(Options::default()).expect("lock released on drop");
    });
}

#[test]
fn periodic_mode_makes_records_durable_without_sync_calls() {
    both(|env| {
        let log = env.open(small(Durability::Periodic(5))).expect("open");
        for seq in 1..=50u64 {
            log.append(&payload(seq)).expect("append");
        }
        assert_eq!(log.last_seq(), 50, "acknowledged at once");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while log.durable_seq() < 50 {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: periodic sync never ran",
                env.name()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
}

#[test]
fn concurrent_appenders_get_distinct_gapless_sequences() {
    both(|env| {
        let log = std::sync::Arc::new(env.open(small(Durability::Sync)).expect("open"));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    (0..40u64)
                        .map(|i| {
                            let p = format!("t{t}-{i}").into_bytes();
                            (log.append(&p).expect("append").first, p)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked: Vec<(u64, Vec<u8>)> =
            threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        let stats = log.stats();
        assert_eq!(stats.appends, 320);
        // Group commit: appenders waiting while a leader syncs share the next fdatasync. The
        // simulated fdatasync is instant, so sharing there depends on scheduling.
        assert!(
            env.sim.is_some() || stats.fdatasyncs < stats.appends,
            "{}: {} fdatasyncs for {} concurrent appends",
            env.name(),
            stats.fdatasyncs,
            stats.appends
        );
        acked.sort();
        assert_eq!(acked.len(), 320);
        let got = read_all(&log);
        assert_eq!(got.len(), 320, "{}", env.name());
        for (r, (seq, p)) in got.iter().zip(&acked) {
            assert_eq!((r.seq, r.payload.as_ref()), (*seq, p.as_slice()), "{}", env.name());
        }
    });
}

#[test]
fn follow_sees_appends_from_another_thread() {
    both(|env| {
        let log = std::sync::Arc::new(env.open(small(Durability::Sync)).expect("open"));
        let mut follower = log.read_from(1).follow();
        let writer = {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                for seq in 1..=100u64 {
                    log.append(&payload(seq)).expect("append");
                }
            })
        };
        for seq in 1..=100u64 {
            let r = follower.next().expect("a record").expect("valid");
            assert_eq!((r.seq, r.payload.to_vec()), (seq, payload(seq)), "{}", env.name());
        }
        writer.join().expect("writer");
    });
}

#[test]
fn directory_reader_reads_what_the_writer_acknowledged() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        for seq in 1..=150u64 {
            log.append(&payload(seq)).expect("append");
        }
        let reader = annal_wal::Reader::open(std::sync::Arc::clone(&env.storage), &env.dir, 1)
            .expect("reader");
        let got: Vec<_> = reader.map(|r| r.expect("read")).collect();
        assert_eq!(payloads(&got), (1..=150).map(payload).collect::<Vec<_>>(), "{}", env.name());
        let reader = annal_wal::Reader::open(std::sync::Arc::clone(&env.storage), &env.dir, 77)
            .expect("reader");
        assert_eq!(reader.map(|r| r.expect("read").seq).next(), Some(77));
    });
}

#[test]
fn invalid_options_are_refused() {
    let env = Env::sim(1);
    let err = env
        .open(Options { segment_bytes_target: 10, ..Options::default() })
        .expect_err("tiny segments");
    assert!(matches!(err, Error::InvalidOption(_)), "{err}");
}

#[test]
fn seq_at_time_finds_the_last_record_at_or_before_a_time() {
    both(|env| {
        let log = env.open(small(Durability::Manual)).expect("open");
        assert_eq!(log.seq_at_time(u64::MAX).expect("empty"), None);
        for seq in 1..=400u64 {
            if seq % 7 == 0 {
                log.append_batch(&[payload(seq), payload(seq + 1000)]).expect("batch");
            } else {
                log.append(&payload(seq)).expect("append");
            }
        }
        assert!(log.segments().len() > 5);
        let records = read_all(&log);
        drop(log);
        // Reopened, so that sealed segments' indexes come from disk.
        let log = env.open(small(Durability::Manual)).expect("reopen");
        let first_ts = records[0].ts;
        assert_eq!(log.seq_at_time(first_ts - 1).expect("before"), None);
        for r in records.iter().step_by(3) {
            let want = records.iter().rev().find(|x| x.ts <= r.ts).map(|x| x.seq);
            assert_eq!(
                log.seq_at_time(r.ts).expect("lookup"),
                want,
                "{} at ts {}",
                env.name(),
                r.ts
            );
            let want = records.iter().rev().find(|x| x.ts < r.ts).map(|x| x.seq);
            assert_eq!(log.seq_at_time(r.ts - 1).expect("lookup"), want, "{}", env.name());
        }
        assert_eq!(log.seq_at_time(u64::MAX).expect("end"), Some(records.len() as u64));
    });
}

#[test]
fn verify_reports_every_damaged_segment_and_nothing_on_an_intact_log() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        for seq in 1..=120u64 {
            log.append(&payload(seq)).expect("append");
        }
        let report = log.verify().expect("verify");
        assert!(report.is_ok(), "{}: {:?}", env.name(), report.problems);
        assert_eq!(report.records, 120);
        assert_eq!(report.chain_head, log.chain_head().expect("head"));
        let segments = log.segments();
        assert!(segments.len() >= 3);
        drop(log);
        // One flipped bit in the frames of each of the first two sealed segments.
        let offset = annal_wal::format::SEGMENT_HEADER_BYTES as u64 + 40;
        env.flip_bit(&segments[0].path, offset, 3);
        env.flip_bit(&segments[1].path, offset, 5);
        let log = env.open(small(Durability::Sync)).expect("open checks seals only");
        let report = log.verify().expect("verify");
        let files: Vec<_> = report.problems.iter().map(|p| p.file.clone()).collect();
        assert_eq!(
            files,
            vec![segments[0].path.clone(), segments[1].path.clone()],
            "{}",
            env.name()
        );
        assert_eq!(report.problems[0].offset, annal_wal::format::SEGMENT_HEADER_BYTES as u64);
        assert_eq!(report.problems[0].seq, 1);
        assert_eq!(report.problems[1].seq, segments[1].first_seq);
    });
}

#[test]
fn removing_segments_below_a_sequence_and_finishing_an_interrupted_truncation() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        for seq in 1..=200u64 {
            log.append(&payload(seq)).expect("append");
        }
        let segments = log.segments();
        assert!(segments.len() >= 5, "{}", env.name());
        // Everything below the third segment's first record goes, to the archive.
        let cut = segments[2].first_seq;
        let chain_before_cut = log.chain_at(cut - 1).expect("chain");
        let (removed, bytes) = log.remove_segments_below(cut, true).expect("remove");
        assert_eq!(removed, vec![segments[0].path.clone(), segments[1].path.clone()]);
        assert!(bytes > 0);
        assert_eq!(log.first_seq(), cut, "{}", env.name());
        let got: Vec<u64> = log.read_from(1).map(|r| r.expect("read").seq).collect();
        assert_eq!(got, (1..=200).collect::<Vec<_>>(), "below the start, through archive/");
        let got: Vec<u64> = log.read_from(cut + 1).map(|r| r.expect("read").seq).collect();
        assert_eq!(got, (cut + 1..=200).collect::<Vec<_>>(), "{}", env.name());
        assert_eq!(log.chain_at(cut - 1).expect("chain before the start"), chain_before_cut);
        assert!(log.chain_at(cut - 2).is_err(), "nothing below the start");
        let archived =
            env.dir.join(annal_wal::ARCHIVE_DIR).join(segments[0].path.file_name().expect("name"));
        assert!(env.storage.exists(&archived).expect("stat"), "{}: archived", env.name());
        drop(log);
        assert_eq!(env.open(small(Durability::Sync)).expect("reopen").first_seq(), cut);

        // A crash in the middle of a later truncation left a gap: the fourth segment removed,
        // the third not yet.
        env.storage.remove_file(&segments[3].path).expect("remove");
        let err = env.open(small(Durability::Sync)).expect_err("a gap is corruption");
        assert!(err.is_integrity(), "{err}");
        let options = Options { log_start: segments[4].first_seq, ..small(Durability::Sync) };
        let log = env.open(options).expect("the log start finishes the truncation");
        assert_eq!(log.recovery_report().truncated_segments, vec![segments[2].path.clone()]);
        assert_eq!(log.first_seq(), segments[4].first_seq);
        assert_eq!(log.last_seq(), 200);
        // The archive ends before the log starts: reading across the hole fails there.
        let got: Vec<annal_wal::Result<annal_wal::Record>> = log.read_from(1).collect();
        assert_eq!(got.len(), usize::try_from(cut).expect("small"), "{}", env.name());
        assert!(got.last().expect("items").is_err(), "{}: the hole is an error", env.name());
        drop(log);
        // Without the archive, a start below the log is an error naming the earliest.
        env.storage.remove_file(&archived).expect("remove archived");
        let log = env.open(small(Durability::Sync)).expect("reopen");
        let mut reader = log.read_from(1);
        let err = reader.next().expect("an item").expect_err("below the start");
        assert!(matches!(err, Error::BeforeStart { seq: 1, .. }), "{}: {err}", env.name());
        assert_eq!(
            log.read_from(0).next().expect("a record").expect("ok").seq,
            segments[1].first_seq
        );
    });
}

#[test]
fn a_segment_whose_roll_is_only_planned_is_never_removed() {
    both(|env| {
        let log = env.open(small(Durability::Manual)).expect("open");
        for seq in 1..=200u64 {
            log.append(&payload(seq)).expect("append");
        }
        assert!(log.segments().len() > 3, "{}: rolls were planned", env.name());
        // With `Manual`, the rolls above are queued, not done: no seal is on disk yet.
        let (removed, _) = log.remove_segments_below(u64::MAX, false).expect("remove");
        assert!(
            removed.is_empty(),
            "{}: removed {removed:?} before its seal was written",
            env.name()
        );
        log.sync().expect("sync");
        let got: Vec<u64> = log.read_from(1).map(|r| r.expect("read").seq).collect();
        assert_eq!(got, (1..=200).collect::<Vec<_>>(), "{}", env.name());
        let (removed, _) = log.remove_segments_below(u64::MAX, false).expect("remove");
        assert!(!removed.is_empty(), "{}: once sealed on disk they can go", env.name());
    });
}

/// G7: the writer lock cannot be sidestepped by removing or replacing `LOCK`: a second writer is
/// refused while the first one runs, and gets in once it is closed.
#[test]
fn removing_or_replacing_the_lock_file_lets_no_second_writer_in() {
    both(|env| {
        let log = env.open(small(Durability::Sync)).expect("open");
        log.append(b"first").expect("append");
        let lock = env.dir.join(annal_wal::LOCK_FILE);
        for replace in [false, true] {
            if env.storage.exists(&lock).expect("stat") {
                env.storage.remove_file(&lock).expect("remove LOCK");
            }
            if replace {
                let f = env
                    .storage
                    .open_file(&lock, annal_storage::OpenMode::CreateTruncate)
                    .expect("a new LOCK");
                f.write_all_at(b"1\n", 0).expect("write");
            }
            let second = env.open(small(Durability::Sync));
            assert!(
                matches!(second, Err(Error::Locked { .. })),
                "{}: replace {replace}: a second writer got in: {:?}",
                env.name(),
                second.map(|l| l.last_seq())
            );
        }
        log.close().expect("close");
        let again = env.open(small(Durability::Sync)).expect("after the close");
        assert_eq!(again.last_seq(), 1);
    });
}
