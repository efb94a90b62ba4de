//! Guards the crash guarantees on the simulated file system:
//! - G1: every record acknowledged under `Sync` is present after any crash;
//! - G2: a batch is all-or-nothing;
//! - G3: the log is a gapless, ordered, byte-identical prefix of what was appended;
//! - G4: a flipped bit below the durable watermark is reported as corruption, never truncated;
//! - G6: after an injected EIO or ENOSPC the log is poisoned and acknowledges nothing unsynced;
//! - recovery is idempotent and the log is appendable after it.
//!
//! Crashes are taken after every I/O operation of small workloads, and at random points of
//! larger ones, with each crash mode.

mod common;

use std::sync::Arc;

use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use annal_wal::{Durability, Error, Log, Options, RecoveryMode};
use common::small;

const DIR: &str = "/store";

/// One step of a workload.
#[derive(Debug, Clone)]
enum Step {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
}

/// What the workload did before the storage stopped it.
#[derive(Debug, Default)]
struct Outcome {
    /// Every record whose append was attempted, in sequence order, with the batch it was in.
    attempted: Vec<(Vec<u8>, usize)>,
    /// Number of leading records acknowledged durable.
    durable: usize,
    /// Boundaries (record counts) at which a batch ends.
    batch_ends: Vec<usize>,
}

fn open(sim: &SimStorage, options: Options) -> annal_wal::Result<Log> {
    Log::open_with(Arc::new(sim.clone()), DIR, options)
}

/// The clean-close record of the log in `DIR`.
fn clean_close_path() -> std::path::PathBuf {
    std::path::Path::new(DIR).join(annal_wal::WAL_DIR).join(annal_wal::format::CLEAN_CLOSE_FILE)
}

/// Makes the last close look like a crash: no clean-close record, as a killed writer leaves it.
fn forget_clean_close(sim: &SimStorage) {
    use annal_storage::Storage;
    sim.remove_file(&clean_close_path()).expect("the close left a clean-close record");
}

/// Runs `steps` until the storage fails; returns what was acknowledged.
fn run(sim: &SimStorage, options: &Options, steps: &[Step]) -> Outcome {
    let mut out = Outcome::default();
    let Ok(log) = open(sim, options.clone()) else { return out };
    let sync_mode = options.durability == Durability::Sync;
    for (i, step) in steps.iter().enumerate() {
        let result = match step {
            Step::Append(p) => {
                out.attempted.push((p.clone(), i));
                log.append(p).map(|_| ())
            }
            Step::Batch(b) => {
                out.attempted.extend(b.iter().map(|p| (p.clone(), i)));
                log.append_batch(b).map(|_| ())
            }
            Step::Sync => log.sync(),
        };
        if !matches!(step, Step::Sync) {
            out.batch_ends.push(out.attempted.len());
        }
        match result {
            Ok(()) if sync_mode || matches!(step, Step::Sync) => out.durable = out.attempted.len(),
            Ok(()) => {}
            Err(_) => break,
        }
    }
    drop(log);
    out
}

/// Reopens after a crash and checks G1, G2, G3, idempotence and appendability.
fn check_recovered(sim: &SimStorage, options: &Options, out: &Outcome, context: &str) {
    let log = open(sim, options.clone())
        .unwrap_or_else(|e| panic!("{context}: recovery after a crash failed: {e}"));
    let got: Vec<Vec<u8>> = log
        .read_from(1)
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{context}: read after recovery: {e}")).payload.to_vec()
        })
        .collect();
    assert!(
        got.len() >= out.durable,
        "{context}: G1 lost acknowledged records: {} present, {} acknowledged",
        got.len(),
        out.durable
    );
    assert!(
        got.len() <= out.attempted.len(),
        "{context}: G3 phantom records: {} present, {} attempted",
        got.len(),
        out.attempted.len()
    );
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p, &out.attempted[i].0, "{context}: G3 record {} differs", i + 1);
    }
    assert!(
        got.is_empty() || out.batch_ends.contains(&got.len()),
        "{context}: G2 a batch was cut: {} records present, batch ends {:?}",
        got.len(),
        out.batch_ends
    );
    let head = log.chain_head().expect("chain head");
    drop(log);
    let log = open(sim, options.clone()).unwrap_or_else(|e| panic!("{context}: second open: {e}"));
    assert!(
        log.recovery_report().is_clean(),
        "{context}: recovery not idempotent: {:?}",
        log.recovery_report()
    );
    assert_eq!(log.last_seq(), got.len() as u64, "{context}: second open");
    assert_eq!(log.chain_head().expect("head"), head, "{context}: chain after second open");
    let a = log.append(b"after recovery").unwrap_or_else(|e| panic!("{context}: append: {e}"));
    assert_eq!(a.first, got.len() as u64 + 1, "{context}: appendable after recovery");
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut p = format!("p{i}:").into_bytes();
    p.resize(p.len() + len, u8::try_from(i % 200).expect("small") + 1);
    p
}

fn small_workloads() -> Vec<(&'static str, Options, Vec<Step>)> {
    let sync = small(Durability::Sync);
    let manual = small(Durability::Manual);
    let mut out = vec![
        ("three appends", sync.clone(), (0..3).map(|i| Step::Append(payload(i, 40))).collect()),
        (
            "batch between appends",
            sync.clone(),
            vec![
                Step::Append(payload(0, 10)),
                Step::Batch((1..5).map(|i| payload(i, 30)).collect()),
                Step::Append(payload(5, 10)),
            ],
        ),
        (
            "segment roll",
            sync.clone(),
            (0..6).map(|i| Step::Append(payload(i, 1500))).collect::<Vec<_>>(),
        ),
        (
            "manual with syncs",
            manual.clone(),
            vec![
                Step::Append(payload(0, 100)),
                Step::Batch((1..4).map(|i| payload(i, 100)).collect()),
                Step::Sync,
                Step::Append(payload(4, 3000)),
                Step::Append(payload(5, 3000)),
                Step::Sync,
            ],
        ),
    ];
    out.push((
        "no preallocation",
        Options { preallocate: false, ..sync },
        (0..5).map(|i| Step::Append(payload(i, 1200))).collect(),
    ));
    out
}

#[test]
fn crash_after_every_io_step_of_small_workloads() {
    let mut states = 0;
    for (name, options, steps) in small_workloads() {
        let probe = SimStorage::new(0);
        run(&probe, &options, &steps);
        let total = probe.op_count();
        assert!(total > 5, "{name}: the workload does I/O");
        for k in 0..=total {
            for (m, mode) in [
                CrashMode::DropUnsynced,
                CrashMode::KeepUnsynced,
                CrashMode::Random,
                CrashMode::Random,
                CrashMode::Random,
            ]
            .into_iter()
            .enumerate()
            {
                let sim = SimStorage::new(k * 31 + m as u64);
                sim.halt_after(k);
                let out = run(&sim, &options, &steps);
                sim.crash(mode);
                check_recovered(
                    &sim,
                    &options,
                    &out,
                    &format!("{name}, crash after op {k}, {mode:?}"),
                );
                states += 1;
            }
        }
    }
    assert!(states > 600, "enumerated {states} crash states");
}

#[test]
fn crash_at_random_points_of_larger_workloads() {
    for seed in 0..60u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let durability = if next() % 2 == 0 { Durability::Sync } else { Durability::Manual };
        let options = Options { segment_bytes_target: 8192, durability, ..Options::default() };
        let steps: Vec<Step> = (0..80)
            .map(|i| match next() % 10 {
                0..=5 => Step::Append(payload(i, usize::try_from(next() % 700).expect("small"))),
                6..=7 => Step::Batch(
                    (0..1 + next() % 6)
                        .map(|j| payload(i * 10 + usize::try_from(j).expect("small"), 50))
                        .collect(),
                ),
                _ => Step::Sync,
            })
            .collect();
        let probe = SimStorage::new(seed);
        run(&probe, &options, &steps);
        let total = probe.op_count();
        let sim = SimStorage::new(seed);
        sim.halt_after(next() % (total + 1));
        let out = run(&sim, &options, &steps);
        sim.crash_random();
        check_recovered(&sim, &options, &out, &format!("seed {seed}"));
    }
}

/// Appends `n` records with `Sync` on a fresh simulated store; returns the active segment path
/// and each frame's offset.
fn synced_store(sim: &SimStorage, n: usize) -> (std::path::PathBuf, Vec<u64>) {
    let log =
        open(sim, Options { segment_bytes_target: 1 << 20, ..Options::default() }).expect("open");
    for i in 0..n {
        log.append(&payload(i, 60)).expect("append");
    }
    let seg = log.segments().pop().expect("active segment").path;
    drop(log);
    let bytes = sim.file_bytes(&seg).expect("segment bytes");
    let mut offsets = Vec::new();
    let mut at = annal_wal::format::SEGMENT_HEADER_BYTES;
    while let Ok(h) = annal_wal::format::decode_frame_header(&bytes[at..]) {
        offsets.push(at as u64);
        at += usize::try_from(h.frame_len()).expect("small");
    }
    assert_eq!(offsets.len(), n, "one frame per append");
    (seg, offsets)
}

#[test]
fn bit_flip_below_the_watermark_is_reported_never_truncated() {
    let n = 12;
    let (_, offsets) = synced_store(&SimStorage::new(1), n);
    // With `Sync`, frame k+1 carries the end of frame k as its watermark: every byte before the
    // last frame is below the watermark.
    let watermark = *offsets.last().expect("frames");
    let mut checked = 0;
    for byte in (0..watermark).step_by(3) {
        let sim = SimStorage::new(byte);
        let (seg, _) = synced_store(&sim, n);
        sim.flip_bit(&seg, byte, u8::try_from(byte % 8).expect("bit")).expect("flip");
        let before = sim.file_bytes(&seg).expect("bytes");
        match open(&sim, Options::default()) {
            Err(Error::Corrupt { file, offset, seq, .. }) => {
                assert_eq!(file, seg, "byte {byte}: names the file");
                if byte >= annal_wal::format::SEGMENT_HEADER_BYTES as u64 {
                    let frame = offsets.iter().rposition(|&o| o <= byte).expect("in a frame");
                    assert_eq!(offset, offsets[frame], "byte {byte}: names the frame's offset");
                    assert_eq!(seq, frame as u64 + 1, "byte {byte}: names the sequence number");
                }
            }
            Err(other) => panic!("byte {byte}: expected Corrupt, got {other}"),
            Ok(log) => panic!("byte {byte}: flip went unreported: {:?}", log.recovery_report()),
        }
        assert_eq!(sim.file_bytes(&seg).expect("bytes"), before, "byte {byte}: nothing truncated");
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn bit_flip_in_a_sealed_segment_is_reported_on_read() {
    let sim = SimStorage::new(3);
    let options = small(Durability::Sync);
    let log = open(&sim, options.clone()).expect("open");
    for i in 0..40 {
        log.append(&payload(i, 200)).expect("append");
    }
    let sealed = log.segments()[0].clone();
    assert!(sealed.sealed);
    drop(log);
    let len = u64::try_from(sim.file_bytes(&sealed.path).expect("bytes").len()).expect("len");
    for byte in (0..len).step_by(7) {
        let sim2 = SimStorage::new(byte);
        let log = open(&sim2, options.clone()).expect("open");
        for i in 0..40 {
            log.append(&payload(i, 200)).expect("append");
        }
        drop(log);
        sim2.flip_bit(&sealed.path, byte, 1).expect("flip");
        let reported = match open(&sim2, options.clone()) {
            Err(e) => e.is_integrity(),
            Ok(log) => log.read_from(1).any(|r| matches!(r, Err(Error::Corrupt { .. }))),
        };
        assert!(reported, "flip at byte {byte} of a sealed segment went unreported");
    }
}

#[test]
fn truncate_at_corruption_moves_the_damage_to_quarantine() {
    let sim = SimStorage::new(9);
    let (seg, offsets) = synced_store(&sim, 10);
    sim.flip_bit(&seg, offsets[4] + 40, 2).expect("flip");
    let options = Options { recovery: RecoveryMode::TruncateAtCorruption, ..Options::default() };
    let log = open(&sim, options).expect("repair");
    let cut = log.recovery_report().cut.clone().expect("a cut");
    assert_eq!((cut.offset, cut.seq), (offsets[4], 5));
    assert_eq!(log.last_seq(), 4);
    let quarantined = &log.recovery_report().quarantined;
    assert!(!quarantined.is_empty());
    let saved = sim.file_bytes(&quarantined[0]).expect("quarantined bytes");
    assert!(saved.len() as u64 >= offsets[9] - offsets[4], "the cut bytes are kept");
    log.append(b"after repair").expect("appendable");
    drop(log);
    let log = open(&sim, Options::default()).expect("clean after repair");
    assert_eq!(log.last_seq(), 5);
}

#[test]
fn strict_mode_refuses_a_torn_tail_and_the_default_cuts_and_keeps_it() {
    let sim = SimStorage::new(4);
    let (seg, offsets) = synced_store(&sim, 5);
    forget_clean_close(&sim);
    // Tear the last frame: garbage from its middle on.
    let at = offsets[4] + 20;
    for i in 0..10 {
        sim.flip_bit(&seg, at + i, 3).expect("flip");
    }
    let err = open(&sim, Options { recovery: RecoveryMode::Strict, ..Options::default() })
        .expect_err("strict refuses");
    assert!(matches!(err, Error::TornTail { offset, .. } if offset == offsets[4]), "{err}");
    let log = open(&sim, Options::default()).expect("default tolerates");
    let torn = log.recovery_report().torn_tail.clone().expect("reported");
    assert_eq!(torn.offset, offsets[4]);
    assert_eq!(log.last_seq(), 4);
    assert_eq!(log.recovery_report().quarantined.len(), 1, "torn bytes kept in quarantine");
}

#[test]
fn injected_eio_and_enospc_poison_and_acknowledge_nothing_unsynced() {
    let options = small(Durability::Sync);
    let steps: Vec<Step> = (0..12).map(|i| Step::Append(payload(i, 700))).collect();
    for op in [FaultOp::Write, FaultOp::Sync] {
        for kind in [FaultKind::Eio, FaultKind::Enospc] {
            for nth in 1..25 {
                let sim = SimStorage::new(nth);
                // Let open finish first: faults are injected into the appends.
                let log = open(&sim, options.clone()).expect("open");
                sim.inject(Fault { op, nth, kind });
                let mut out = Outcome::default();
                let mut failed = false;
                for (i, step) in steps.iter().enumerate() {
                    let Step::Append(p) = step else { unreachable!() };
                    out.attempted.push((p.clone(), i));
                    out.batch_ends.push(out.attempted.len());
                    match log.append(p) {
                        Ok(_) => {
                            assert!(
                                !failed,
                                "{op:?} {kind:?} #{nth}: append acknowledged after a failure"
                            );
                            out.durable = out.attempted.len();
                        }
                        Err(Error::Poisoned { .. }) => {
                            assert!(failed, "{op:?} {kind:?} #{nth}: poisoned before any failure");
                        }
                        Err(e) => {
                            assert!(!failed, "{op:?} {kind:?} #{nth}: second I/O error {e}");
                            failed = true;
                        }
                    }
                }
                if failed {
                    assert!(
                        matches!(log.sync(), Err(Error::Poisoned { .. })),
                        "{op:?} {kind:?} #{nth}: sync after a failure must not succeed"
                    );
                }
                drop(log);
                sim.crash(CrashMode::Random);
                check_recovered(&sim, &options, &out, &format!("{op:?} {kind:?} #{nth}"));
            }
        }
    }
}

/// Concurrent appenders wait for a leader's commit parked outside the state lock; when that
/// commit's write or fdatasync fails, every one of them must wake and fail (none hangs, none is
/// acknowledged), and every record acknowledged before survives a power cut.
#[test]
fn concurrent_appenders_parked_on_a_failing_commit_all_fail_and_nothing_unsynced_is_acknowledged() {
    const THREADS: usize = 8;
    const APPENDS: usize = 30;
    let options = small(Durability::Sync);
    for op in [FaultOp::Write, FaultOp::Sync] {
        for nth in [1, 3, 10, 40] {
            let sim = SimStorage::new(nth);
            let log = Arc::new(open(&sim, options.clone()).expect("open"));
            sim.inject(Fault { op, nth, kind: FaultKind::Eio });
            let results: Vec<Vec<(Vec<u8>, bool)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let log = Arc::clone(&log);
                        s.spawn(move || {
                            (0..APPENDS)
                                .map(|i| {
                                    let p = payload(t * 1000 + i, 300);
                                    let ok = log.append(&p).is_ok();
                                    (p, ok)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("appender")).collect()
            });
            let what = format!("{op:?} #{nth}");
            for per_thread in &results {
                // Once a thread saw a failure, the log stays poisoned for it.
                let first_err = per_thread.iter().position(|(_, ok)| !ok);
                if let Some(at) = first_err {
                    assert!(
                        per_thread[at..].iter().all(|(_, ok)| !ok),
                        "{what}: ok after an error"
                    );
                }
            }
            // A write fault can land on the zero-fill ahead of the frames, which fails no
            // append (their frames were durable); any other fault fails the commit it hit.
            let failed = results.iter().flatten().any(|(_, ok)| !ok);
            assert!(failed || op == FaultOp::Write, "{what}: the fault fired");
            if failed {
                assert!(
                    matches!(log.sync(), Err(Error::Poisoned { .. })),
                    "{what}: still poisoned"
                );
            }
            drop(log);
            sim.crash(CrashMode::DropUnsynced);
            let log = open(&sim, options.clone()).expect("reopen");
            let got: std::collections::HashSet<Vec<u8>> =
                log.read_from(1).map(|r| r.expect("read").payload.to_vec()).collect();
            for (p, _) in results.iter().flatten().filter(|(_, ok)| *ok) {
                assert!(got.contains(p), "{what}: an acknowledged record was lost");
            }
            log.append(b"after").expect("appendable after reopen");
        }
    }
}

/// A failed fdatasync may leave pages that the page cache serves but the disk never got. A
/// reopen in the same boot must not let later frames vouch for them.
#[test]
fn reopen_after_a_failed_fdatasync_then_power_cut_keeps_every_acknowledged_record() {
    for nth in 1..4 {
        let sim = SimStorage::new(nth);
        let options = Options::default();
        let log = open(&sim, options.clone()).expect("open");
        let mut acked = Vec::new();
        for i in 0..5 {
            log.append(&payload(i, 80)).expect("append");
            acked.push(payload(i, 80));
        }
        sim.inject(Fault { op: FaultOp::Sync, nth, kind: FaultKind::Eio });
        let mut failed = false;
        // Records spanning whole pages, so that no later write dirties their pages again.
        for i in 5..10 {
            match log.append(&payload(i, 9000)) {
                Ok(_) if !failed => acked.push(payload(i, 9000)),
                Ok(_) => panic!("acknowledged after a failed fdatasync"),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "the injected fault fired");
        drop(log);
        // Same boot: the page cache still holds the record whose fdatasync failed.
        let log = open(&sim, options.clone()).expect("reopen after poison");
        let base = log.last_seq();
        for i in 100..103 {
            log.append(&payload(i, 80)).expect("append after reopen");
        }
        let mut expected: Vec<Vec<u8>> =
            log.read_from(1).map(|r| r.expect("read").payload.to_vec()).collect();
        drop(log);
        sim.crash(CrashMode::DropUnsynced);
        let log = open(&sim, options)
            .unwrap_or_else(|e| panic!("fault #{nth}: open after power cut: {e}"));
        let got: Vec<Vec<u8>> =
            log.read_from(1).map(|r| r.expect("read").payload.to_vec()).collect();
        expected.truncate(got.len().max(usize::try_from(base).expect("small") + 3));
        assert_eq!(
            got, expected,
            "fault #{nth}: every record acknowledged after the reopen survives"
        );
        assert!(
            got.starts_with(&acked),
            "fault #{nth}: records acknowledged before the fault survive"
        );
    }
}

#[test]
fn repeated_repairs_never_overwrite_quarantined_bytes() {
    let sim = SimStorage::new(11);
    let (seg, offsets) = synced_store(&sim, 6);
    let mut saved = Vec::new();
    for round in 0..2 {
        // Tear the last frame in the same place each time.
        let log = open(&sim, Options::default()).expect("open");
        if round == 1 {
            log.append(&payload(5, 60)).expect("append the same record again");
        }
        drop(log);
        forget_clean_close(&sim);
        for i in 0..4 {
            sim.flip_bit(&seg, offsets[5] + 10 + i, 1).expect("flip");
        }
        let log = open(&sim, Options::default()).expect("open");
        let quarantined = log.recovery_report().quarantined.clone();
        assert_eq!(quarantined.len(), 1, "round {round}");
        saved.push((quarantined[0].clone(), sim.file_bytes(&quarantined[0]).expect("bytes")));
    }
    assert_ne!(saved[0].0, saved[1].0, "a second repair gets a new name");
    assert_eq!(sim.file_bytes(&saved[0].0).expect("first still there"), saved[0].1);
}

/// A crash in the middle of a roll can leave the new segment's unsynced page torn with garbage:
/// no frame was ever written to it, so recovery rebuilds it (keeping the bytes). A lone segment
/// full of garbage, with no sealed segment before it, is damage, never rebuilt.
#[test]
fn a_garbage_new_segment_is_rebuilt_but_a_lone_garbage_segment_is_corruption() {
    let sim = SimStorage::new(21);
    let options = small(Durability::Sync);
    let log = open(&sim, options.clone()).expect("open");
    for i in 0..40 {
        log.append(&payload(i, 200)).expect("append");
    }
    let segments = log.segments();
    let sealed_last = segments[segments.len() - 2].last_seq;
    let active = segments.last().expect("active").path.clone();
    drop(log);
    forget_clean_close(&sim);
    let garbage: Vec<u8> =
        (0..4096u32).map(|i| u8::try_from((i * 7919 + 13) % 251).expect("byte")).collect();
    sim.write_file_durably(&active, &garbage).expect("write");
    let log = open(&sim, options.clone()).expect("rebuilt");
    assert_eq!(log.recovery_report().recreated_segment.as_deref(), Some(active.as_path()));
    assert_eq!(log.last_seq(), sealed_last);
    let kept = &log.recovery_report().quarantined;
    assert_eq!(kept.len(), 1, "the garbage is kept");
    assert_eq!(sim.file_bytes(&kept[0]).expect("bytes"), garbage);
    log.append(b"after").expect("appendable");
    drop(log);

    let lone = SimStorage::new(22);
    let log = open(&lone, options.clone()).expect("open");
    log.append(b"the only event").expect("append");
    let only = log.segments()[0].path.clone();
    drop(log);
    forget_clean_close(&lone);
    lone.write_file_durably(&only, &garbage).expect("write");
    let err = open(&lone, options).expect_err("a lone garbage segment is corruption");
    assert!(err.is_integrity(), "{err}");
}

/// After a clean close every frame was synced: damage to the last frame, or its bytes zeroed, is
/// corruption for the writer's open and for a directory reader, never a torn tail to cut; the
/// explicit repair still cuts it into quarantine. After a crash (no clean-close record), the
/// same damage is a torn tail.
#[test]
fn after_a_clean_close_damage_to_the_last_frame_is_corruption() {
    for zero in [false, true] {
        let sim = SimStorage::new(31);
        let (seg, offsets) = synced_store(&sim, 5);
        assert!(
            annal_storage::Storage::exists(&sim, &clean_close_path()).expect("stat"),
            "a clean close leaves its record"
        );
        let last = offsets[4];
        let bytes = sim.file_bytes(&seg).expect("bytes");
        let mut damaged = bytes.clone();
        if zero {
            damaged[usize::try_from(last).expect("small")..].fill(0);
        } else {
            damaged[usize::try_from(last).expect("small") + 40] ^= 0x20;
        }
        sim.write_file_durably(&seg, &damaged).expect("damage");
        let err = open(&sim, Options::default()).expect_err("corruption, not a torn tail");
        assert!(
            matches!(&err, Error::Corrupt { offset, seq: 5, .. } if *offset == last),
            "zero {zero}: {err}"
        );
        let reader: annal_wal::Result<Vec<_>> =
            annal_wal::Reader::open(Arc::new(sim.clone()), DIR, 1).expect("reader").collect();
        assert!(
            matches!(&reader, Err(Error::Corrupt { offset, seq: 5, .. }) if *offset == last),
            "zero {zero}: the directory reader reports it: {:?}",
            reader.map(|r| r.len())
        );
        let log = open(
            &sim,
            Options { recovery: RecoveryMode::TruncateAtCorruption, ..Options::default() },
        )
        .expect("the repair cuts it");
        assert_eq!(log.last_seq(), 4);
        assert_eq!(log.recovery_report().quarantined.len(), 1, "the cut bytes are kept");
        drop(log);

        // The same damage after a crash is a torn tail.
        let sim = SimStorage::new(32);
        let (seg, _) = synced_store(&sim, 5);
        forget_clean_close(&sim);
        sim.write_file_durably(&seg, &damaged).expect("damage");
        let log = open(&sim, Options::default()).expect("a torn tail is cut");
        assert_eq!(log.last_seq(), 4);
        assert!(log.recovery_report().torn_tail.is_some() || zero, "zero {zero}");
    }
}

/// The writer's open removes the clean-close record durably before it can append: a crash after
/// appends never finds a stale record that would call the new frames damage.
#[test]
fn a_reopened_writer_removes_the_clean_close_record_before_appending() {
    for mode in [CrashMode::DropUnsynced, CrashMode::Random] {
        let sim = SimStorage::new(33);
        let (_, _) = synced_store(&sim, 3);
        let log = open(&sim, Options::default()).expect("reopen");
        assert!(!annal_storage::Storage::exists(&sim, &clean_close_path()).expect("stat"));
        log.append(b"after the reopen").expect("append");
        std::mem::forget(log);
        sim.crash(mode);
        let log = open(&sim, Options::default()).expect("open after the crash");
        assert_eq!(log.last_seq(), 4, "{mode:?}");
    }
}

/// An append's result is the truth: the zeros written ahead of the frames only make later
/// fdatasyncs cheaper, so a full disk while writing them does not fail an append whose frames
/// were written and synced (a retry would duplicate it).
#[test]
fn a_failed_zero_fill_does_not_fail_a_durable_append() {
    for kind in [FaultKind::Enospc, FaultKind::Eio] {
        let sim = SimStorage::new(41);
        let options = small(Durability::Sync);
        assert!(options.preallocate, "zeros are written ahead only when preallocating");
        let log = open(&sim, options.clone()).expect("open");
        // The first append writes its frame (write 1), then zeros ahead (write 2), then syncs.
        sim.inject(Fault { op: FaultOp::Write, nth: 2, kind });
        let a = log.append(b"first").expect("the frame was written and synced: appended");
        assert_eq!(a.first, 1);
        log.append(b"second").expect("not poisoned");
        std::mem::forget(log);
        sim.crash(CrashMode::DropUnsynced);
        let log = open(&sim, options).expect("reopen");
        assert_eq!(log.last_seq(), 2, "{kind:?}: both acknowledged appends are durable");
    }
}

/// A clean-close record that a writer unaware of it (an older build) left behind while it
/// appended is stale, not a claim that the new frames are damage; a record whose segments are
/// all gone is corruption, never a fresh log.
#[test]
fn a_stale_clean_close_record_is_ignored_and_missing_segments_are_corruption() {
    use annal_storage::Storage;
    let sim = SimStorage::new(51);
    let (seg, _) = synced_store(&sim, 3);
    let record = sim.file_bytes(&clean_close_path()).expect("record");
    let log = open(&sim, Options::default()).expect("reopen");
    log.append(b"four").expect("append");
    log.append(b"five").expect("append");
    drop(log);
    sim.write_file_durably(&clean_close_path(), &record).expect("the stale record");
    let log = open(&sim, Options::default()).expect("a stale record does not fail the open");
    assert_eq!(log.last_seq(), 5);
    drop(log);
    sim.remove_file(&seg).expect("remove the only segment");
    let err = open(&sim, Options::default()).expect_err("segments missing");
    assert!(err.is_integrity(), "{err}");
}

/// A truncation into `archive/` that a failed write or fdatasync stops, retried in the same
/// boot (the page cache still shows the archived copy as written), then crashed: every record
/// stays readable, through `archive/`. A failed writeback leaves the page cache as it was, so
/// an archived copy that reads the same as the original is no proof that it is on disk.
#[test]
fn an_archive_copy_whose_sync_failed_is_written_again_before_the_original_goes() {
    for (nth, op) in (1..=4).flat_map(|n| [(n, FaultOp::Sync), (n, FaultOp::Write)]) {
        let sim = SimStorage::new(nth);
        let options = Options { archive: true, ..small(Durability::Sync) };
        let log = open(&sim, options.clone()).expect("open");
        for seq in 1..=200u64 {
            log.append(&common::payload(seq)).expect("append");
        }
        let cut = log.segments()[3].first_seq;
        sim.inject(Fault { op, nth, kind: FaultKind::Eio });
        let first = log.remove_segments_below(cut, true);
        sim.clear_faults();
        drop(log);
        // Same boot: the open finishes the truncation the MANIFEST-less log asks for.
        let log = open(&sim, Options { log_start: cut, ..options.clone() }).expect("reopen");
        assert_eq!(log.first_seq(), cut, "{op:?} {nth}: {first:?}");
        drop(log);
        sim.crash(CrashMode::DropUnsynced);
        let log = open(&sim, Options { log_start: cut, ..options.clone() }).expect("after crash");
        let got: Result<Vec<u64>, _> = log.read_from(1).map(|r| r.map(|r| r.seq)).collect();
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Ok((1..=200).collect::<Vec<_>>()),
            "{op:?} {nth}: the first attempt gave {first:?}"
        );
    }
}
