//! Guards a directory reader's replay against a compaction in another process that commits a
//! new MANIFEST and removes the snapshot the replay chose, between the two: the replay is taken
//! again from the new MANIFEST and gives the right state; it is not reported as corruption.
//! The race is made deterministic with a file system that runs the compaction at the moment
//! the reader opens its snapshot.

use std::path::Path;
use std::sync::Arc;

use annal::storage::{LockAttempt, LockHolder, OpenMode, SimStorage, Storage, StorageFile};
use annal::{Counts, Expect, Journal, JournalReader, NewEvent, Until};
use parking_lot::Mutex;

/// The simulated file system, running `hook` once, just before the first open of a snapshot.
struct Racing {
    inner: SimStorage,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for Racing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Racing")
    }
}

impl Storage for Racing {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<bool> {
        self.inner.create_dir_all(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.inner.exists(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn open_file(&self, path: &Path, mode: OpenMode) -> std::io::Result<Box<dyn StorageFile>> {
        if path.extension().is_some_and(|e| e == "snap")
            && let Some(hook) = self.hook.lock().take()
        {
            hook();
        }
        self.inner.open_file(path, mode)
    }
    fn map_file(&self, path: &Path) -> std::io::Result<bytes::Bytes> {
        self.inner.map_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn try_lock(&self, path: &Path, pid: u32) -> std::io::Result<LockAttempt> {
        self.inner.try_lock(path, pid)
    }
    fn lock_holder(&self, path: &Path) -> std::io::Result<Option<LockHolder>> {
        self.inner.lock_holder(path)
    }
    fn now_nanos(&self) -> u64 {
        self.inner.now_nanos()
    }
}

#[test]
fn a_replay_whose_snapshot_a_compaction_removes_meanwhile_is_taken_again() {
    let sim = SimStorage::new(9);
    let journal = Arc::new(
        Journal::options()
            .storage(Arc::new(sim.clone()))
            .keep_snapshots(1)
            .projection::<Counts>()
            .open("/j")
            .expect("open"),
    );
    let append = |n: u32| {
        for i in 0..n {
            let event = NewEvent::json("noted", &serde_json::json!({ "i": i })).expect("event");
            journal.append_events("s", Expect::Any, vec![event]).expect("append");
        }
    };
    append(50);
    journal.compact().expect("compact at 50");
    append(30);
    let racing = Arc::new(Racing { inner: sim.clone(), hook: Mutex::new(None) });
    let reader =
        JournalReader::open_with(Arc::clone(&racing) as Arc<dyn Storage>, "/j").expect("reader");
    // When the reader opens the snapshot at 50, a compaction at 80 commits a new MANIFEST
    // keeping one snapshot, and removes the one at 50.
    let compacting = Arc::clone(&journal);
    *racing.hook.lock() = Some(Box::new(move || {
        let report = compacting.compact().expect("compact at 80");
        assert!(!report.files_removed.is_empty(), "the old snapshot is removed");
    }));
    let (state, at) =
        reader.replay::<Counts>(Until::End).expect("replayed again from the new MANIFEST");
    assert_eq!(at, 80);
    assert_eq!(state, journal.state::<Counts>().expect("live"));
    assert!(racing.hook.lock().is_none(), "the compaction ran during the replay");
}
