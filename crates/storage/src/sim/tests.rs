use std::collections::BTreeSet;

use super::inode::PAGE;
use super::*;

const MODES: [CrashMode; 3] = [CrashMode::DropUnsynced, CrashMode::KeepUnsynced, CrashMode::Random];

fn p(path: &str) -> &Path {
    Path::new(path)
}

/// A file `/d/f` whose entry (and that of `/d`) is durable, with no data.
fn durable_file(sim: &SimStorage) -> Box<dyn StorageFile> {
    sim.create_dir_all(p("/d")).unwrap();
    sim.sync_dir(p("/")).unwrap();
    let file = sim.open_file(p("/d/f"), OpenMode::CreateNew).unwrap();
    sim.sync_dir(p("/d")).unwrap();
    file
}

fn is_halted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Other && err.to_string().contains("storage halted")
}

#[test]
fn unsynced_write_is_lost_on_drop_crash() {
    let sim = SimStorage::new(1);
    let file = durable_file(&sim);
    file.write_all_at(b"hello", 0).unwrap();
    assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), b"hello");
    sim.crash(CrashMode::DropUnsynced);
    assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), b"");
}

#[test]
fn unsynced_write_is_kept_on_keep_crash() {
    let sim = SimStorage::new(1);
    let file = durable_file(&sim);
    file.write_all_at(b"hello", 10).unwrap();
    sim.crash(CrashMode::KeepUnsynced);
    let mut expected = vec![0; 10];
    expected.extend_from_slice(b"hello");
    assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), expected);
}

#[test]
fn synced_write_survives_every_crash() {
    for seed in 0..200 {
        for mode in MODES {
            let sim = SimStorage::new(seed);
            let file = durable_file(&sim);
            let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            file.write_all_at(&data, 0).unwrap();
            file.sync_data().unwrap();
            // Unsynced traffic after the sync must not disturb the synced bytes.
            file.write_all_at(b"tail", 10_000).unwrap();
            sim.crash(mode);
            let after = sim.file_bytes(p("/d/f")).unwrap();
            assert_eq!(&after[..10_000], &data[..], "seed {seed} {mode:?}");
        }
        let sim = SimStorage::new(seed);
        let file = durable_file(&sim);
        file.write_all_at(b"synced", 0).unwrap();
        file.sync_data().unwrap();
        sim.crash_random();
        assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), b"synced", "seed {seed}");
    }
}

#[test]
fn creation_needs_sync_dir() {
    let sim = SimStorage::new(2);
    let file = sim.open_file(p("/new"), OpenMode::CreateNew).unwrap();
    file.write_all_at(b"x", 0).unwrap();
    file.sync_data().unwrap();
    sim.crash(CrashMode::DropUnsynced);
    assert!(!sim.exists(p("/new")).unwrap());

    for mode in MODES {
        let sim = SimStorage::new(2);
        let file = sim.open_file(p("/new"), OpenMode::CreateNew).unwrap();
        file.write_all_at(b"x", 0).unwrap();
        file.sync_data().unwrap();
        sim.sync_dir(p("/")).unwrap();
        sim.crash(mode);
        assert_eq!(sim.file_bytes(p("/new")).unwrap(), b"x", "{mode:?}");
    }
}

#[test]
fn new_directory_needs_its_parent_synced() {
    let sim = SimStorage::new(3);
    assert!(sim.create_dir_all(p("/a/b")).unwrap());
    assert!(!sim.create_dir_all(p("/a/b")).unwrap());
    sim.write_file_durably(p("/keep/x"), b"1").unwrap();
    sim.sync_dir(p("/a")).unwrap();
    sim.crash(CrashMode::DropUnsynced);
    assert_eq!(sim.list_dir(p("/")).unwrap(), ["keep"]);
    assert_eq!(sim.state.lock().dirs.len(), 2, "unreachable directories are freed");
}

#[test]
fn rename_needs_sync_dir() {
    for synced in [false, true] {
        let sim = SimStorage::new(4);
        sim.write_file_durably(p("/tmp"), b"new").unwrap();
        sim.write_file_durably(p("/cur"), b"old").unwrap();
        sim.rename(p("/tmp"), p("/cur")).unwrap();
        assert_eq!(sim.list_dir(p("/")).unwrap(), ["cur"]);
        assert_eq!(sim.file_bytes(p("/cur")).unwrap(), b"new");
        if synced {
            sim.sync_dir(p("/")).unwrap();
        }
        sim.crash(CrashMode::DropUnsynced);
        if synced {
            assert_eq!(sim.list_dir(p("/")).unwrap(), ["cur"]);
            assert_eq!(sim.file_bytes(p("/cur")).unwrap(), b"new");
        } else {
            assert_eq!(sim.list_dir(p("/")).unwrap(), ["cur", "tmp"]);
            assert_eq!(sim.file_bytes(p("/cur")).unwrap(), b"old");
        }
    }
}

#[test]
fn removal_needs_sync_dir_and_handles_outlive_unlink() {
    let sim = SimStorage::new(5);
    sim.write_file_durably(p("/f"), b"data").unwrap();
    let file = sim.open_file(p("/f"), OpenMode::Read).unwrap();
    sim.remove_file(p("/f")).unwrap();
    assert!(!sim.exists(p("/f")).unwrap());
    let mut buf = [0; 4];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"data");
    drop(file);
    sim.crash(CrashMode::DropUnsynced);
    assert_eq!(sim.file_bytes(p("/f")).unwrap(), b"data");

    sim.remove_file(p("/f")).unwrap();
    sim.sync_dir(p("/")).unwrap();
    assert!(sim.state.lock().inodes.is_empty(), "an unnamed, closed inode is freed");
    sim.crash(CrashMode::KeepUnsynced);
    assert!(!sim.exists(p("/f")).unwrap());
}

#[test]
fn failed_sync_loses_data_even_after_a_good_sync() {
    for mode in [CrashMode::DropUnsynced, CrashMode::KeepUnsynced] {
        let sim = SimStorage::new(6);
        let file = durable_file(&sim);
        sim.inject(Fault { op: FaultOp::Sync, nth: 2, kind: FaultKind::Eio });
        file.write_all_at(b"first", 0).unwrap();
        file.sync_data().unwrap();
        file.write_all_at(b"second", 5).unwrap();
        let err = file.sync_data().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(5));
        file.sync_data().unwrap();
        assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), b"firstsecond");
        sim.crash(mode);
        let after = sim.file_bytes(p("/d/f")).unwrap();
        assert_eq!(&after[..5], b"first", "{mode:?}");
        assert_ne!(after.get(5..), Some(&b"second"[..]), "{mode:?}");
    }
}

#[test]
fn failed_write_applies_at_most_a_prefix() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..50 {
        let sim = SimStorage::new(seed);
        let file = durable_file(&sim);
        sim.inject(Fault { op: FaultOp::Write, nth: 1, kind: FaultKind::Enospc });
        let err = file.write_all_at(b"abcdefgh", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        let live = sim.file_bytes(p("/d/f")).unwrap();
        assert!(b"abcdefgh".starts_with(&live), "seed {seed}: {live:?}");
        outcomes.insert(live.len());
        file.write_all_at(b"ok", 0).unwrap();
    }
    assert!(outcomes.len() > 2, "the prefix length varies: {outcomes:?}");
}

#[test]
fn halt_after_fails_the_next_op_and_everything_after() {
    for k in 0..4 {
        let sim = SimStorage::new(7);
        let file = durable_file(&sim);
        let base = sim.op_count();
        sim.halt_after(k);
        let mut results = Vec::new();
        for i in 0..4u64 {
            results.push(file.set_len(i + 1).map(|()| i));
        }
        assert_eq!(sim.op_count(), base + k);
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(_) => assert!((i as u64) < k),
                Err(err) => assert!((i as u64) >= k && is_halted(err), "{err}"),
            }
        }
        assert!(is_halted(&file.len().unwrap_err()));
        assert!(is_halted(&sim.list_dir(p("/")).unwrap_err()));
        assert!(is_halted(&sim.exists(p("/d")).unwrap_err()));
        assert!(is_halted(&sim.map_file(p("/d/f")).unwrap_err()));
        assert_eq!(sim.op_count(), base + k, "failed operations change nothing");

        sim.crash(CrashMode::KeepUnsynced);
        assert!(file.len().unwrap_err().to_string().contains("stale handle"));
        assert_eq!(sim.file_bytes(p("/d/f")).unwrap().len() as u64, k);
        sim.open_file(p("/d/f"), OpenMode::ReadWrite).unwrap().set_len(9).unwrap();
    }
}

#[test]
fn halt_tears_the_write_it_lands_on() {
    let mut lengths = BTreeSet::new();
    for seed in 0..50 {
        let sim = SimStorage::new(seed);
        let file = durable_file(&sim);
        sim.halt_after(0);
        assert!(is_halted(&file.write_all_at(b"abcdefgh", 0).unwrap_err()));
        let live = sim.file_bytes(p("/d/f")).unwrap();
        assert!(b"abcdefgh".starts_with(&live));
        lengths.insert(live.len());
    }
    assert!(lengths.len() > 2, "{lengths:?}");
}

#[test]
fn random_crash_tears_pages_but_never_durable_clean_bytes() {
    const A: u8 = 0xA5;
    const B: u8 = 0x3C;
    let (changed_start, changed_end) = (PAGE + 100, PAGE + 1000);
    let mut dropped = false;
    let mut kept = false;
    let mut torn = false;
    for seed in 0..300 {
        let sim = SimStorage::new(seed);
        let file = durable_file(&sim);
        file.write_all_at(&[A; 3 * PAGE], 0).unwrap();
        file.sync_data().unwrap();
        file.write_all_at(&[B; 900], changed_start as u64).unwrap();
        sim.crash(CrashMode::Random);
        let after = sim.file_bytes(p("/d/f")).unwrap();
        assert_eq!(after.len(), 3 * PAGE);
        for (i, &byte) in after.iter().enumerate() {
            if !(changed_start..changed_end).contains(&i) {
                assert_eq!(byte, A, "seed {seed}: durable clean byte {i} changed");
            }
        }
        let region = &after[changed_start..changed_end];
        let prefix = region.iter().take_while(|&&b| b == B).count();
        if region.iter().all(|&b| b == A) {
            dropped = true;
        } else if prefix == region.len() {
            kept = true;
        } else if region[prefix..].iter().any(|&b| b != A) {
            torn = true;
        }
    }
    assert!(dropped && kept && torn, "dropped {dropped}, kept {kept}, torn {torn}");
}

#[test]
fn truncate_then_extend_zeroes_durably() {
    let sim = SimStorage::new(8);
    let file = durable_file(&sim);
    file.write_all_at(&[7; 2 * PAGE], 0).unwrap();
    file.sync_data().unwrap();
    file.set_len(10).unwrap();
    file.set_len(2 * PAGE as u64).unwrap();
    file.sync_data().unwrap();
    let mut expected = vec![7; 10];
    expected.resize(2 * PAGE, 0);
    assert_eq!(sim.durable_file_bytes(p("/d/f")).unwrap(), expected);
    sim.crash(CrashMode::DropUnsynced);
    assert_eq!(sim.file_bytes(p("/d/f")).unwrap(), expected);
}

#[test]
fn open_modes_follow_std() {
    let sim = SimStorage::new(9);
    let kind = |r: io::Result<Box<dyn StorageFile>>| r.unwrap_err().kind();
    assert_eq!(kind(sim.open_file(p("/x"), OpenMode::Read)), io::ErrorKind::NotFound);
    assert_eq!(kind(sim.open_file(p("/no/x"), OpenMode::CreateNew)), io::ErrorKind::NotFound);
    sim.open_file(p("/x"), OpenMode::CreateNew).unwrap().write_all_at(b"abc", 0).unwrap();
    assert_eq!(kind(sim.open_file(p("/x"), OpenMode::CreateNew)), io::ErrorKind::AlreadyExists);
    let read = sim.open_file(p("/x"), OpenMode::Read).unwrap();
    assert!(read.write_all_at(b"z", 0).is_err());
    assert_eq!(read.len().unwrap(), 3);
    let truncated = sim.open_file(p("/x"), OpenMode::CreateTruncate).unwrap();
    assert_eq!(truncated.len().unwrap(), 0);
    assert_eq!(sim.map_file(p("/x")).unwrap(), Bytes::new());
}

#[test]
fn locks_are_exclusive_and_die_with_the_machine() {
    let sim = SimStorage::new(10);
    let LockAttempt::Acquired(guard) = sim.try_lock(p("/LOCK"), 41).unwrap() else {
        panic!("first lock must succeed");
    };
    assert_eq!(sim.file_bytes(p("/LOCK")).unwrap(), b"41\n");
    assert!(matches!(sim.try_lock(p("/LOCK"), 42).unwrap(), LockAttempt::Held { pid: Some(41) }));
    drop(guard);
    let LockAttempt::Acquired(stale) = sim.try_lock(p("/LOCK"), 43).unwrap() else {
        panic!("a dropped guard releases the lock");
    };
    sim.crash(CrashMode::KeepUnsynced);
    let LockAttempt::Acquired(_fresh) = sim.try_lock(p("/LOCK"), 44).unwrap() else {
        panic!("a crash releases every lock");
    };
    drop(stale);
    assert!(matches!(sim.try_lock(p("/LOCK"), 45).unwrap(), LockAttempt::Held { pid: Some(44) }));
}

#[test]
fn a_lock_survives_its_file_being_removed_or_replaced() {
    let sim = SimStorage::new(12);
    sim.create_dir_all(p("/s")).unwrap();
    let LockAttempt::Acquired(_guard) = sim.try_lock(p("/s/LOCK"), 41).unwrap() else {
        panic!("first lock must succeed");
    };
    sim.remove_file(p("/s/LOCK")).unwrap();
    assert!(matches!(sim.try_lock(p("/s/LOCK"), 42).unwrap(), LockAttempt::Held { .. }));
    sim.write_file_durably(p("/s/LOCK"), b"7\n").unwrap();
    assert!(matches!(sim.try_lock(p("/s/LOCK"), 43).unwrap(), LockAttempt::Held { pid: Some(7) }));
    // Another directory is another lock.
    sim.create_dir_all(p("/t")).unwrap();
    assert!(matches!(sim.try_lock(p("/t/LOCK"), 44).unwrap(), LockAttempt::Acquired(_)));
}

#[test]
fn clock_is_deterministic() {
    let sim = SimStorage::new(11);
    assert_eq!(sim.now_nanos(), CLOCK_START);
    assert_eq!(sim.now_nanos(), CLOCK_START + CLOCK_TICK);
    sim.sleep(Duration::from_secs(1));
    assert_eq!(sim.now_nanos(), CLOCK_START + 2 * CLOCK_TICK + 1_000_000_000);
}

#[test]
fn flip_bit_corrupts_durable_bytes() {
    let sim = SimStorage::new(12);
    sim.write_file_durably(p("/f"), &[0, 0]).unwrap();
    sim.flip_bit(p("/f"), 1, 3).unwrap();
    sim.crash(CrashMode::DropUnsynced);
    assert_eq!(sim.file_bytes(p("/f")).unwrap(), [0, 8]);
    assert!(sim.flip_bit(p("/f"), 2, 0).is_err());
}

/// Runs a workload full of unsynced state, crashes, and returns what survived.
fn workload_outcome(seed: u64) -> (Vec<String>, Vec<Vec<u8>>) {
    let sim = SimStorage::new(seed);
    let file = durable_file(&sim);
    file.write_all_at(&[1; 5 * PAGE], 0).unwrap();
    file.sync_data().unwrap();
    for i in 0..5u8 {
        file.write_all_at(&[i + 2; 3000], u64::from(i) * 3001).unwrap();
    }
    file.set_len(6 * PAGE as u64).unwrap();
    for name in ["a", "b", "c", "e"] {
        let other = sim.open_file(&Path::new("/d").join(name), OpenMode::CreateNew).unwrap();
        other.write_all_at(name.as_bytes(), 0).unwrap();
    }
    sim.rename(p("/d/f"), p("/d/g")).unwrap();
    sim.crash_random();
    let names = sim.list_dir(p("/d")).unwrap();
    let contents =
        names.iter().map(|name| sim.file_bytes(&Path::new("/d").join(name)).unwrap()).collect();
    (names, contents)
}

#[test]
fn same_seed_same_outcome() {
    let mut distinct = BTreeSet::new();
    for seed in 0..20 {
        let outcome = workload_outcome(seed);
        assert_eq!(workload_outcome(seed), outcome, "seed {seed}");
        distinct.insert(outcome);
    }
    assert!(distinct.len() > 5, "the seed drives the outcome");
}
