//! Shared helpers: run a scenario on the OS file system and on the simulated one.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::PathBuf;
use std::sync::Arc;

use annal_storage::{OsStorage, SimStorage, Storage};
use annal_wal::{Durability, Log, Options, Record};

/// A place to put a log: a storage and a directory on it.
pub struct Env {
    pub storage: Arc<dyn Storage>,
    pub sim: Option<SimStorage>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Env {
    pub fn os() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("log");
        Self { storage: Arc::new(OsStorage::new()), sim: None, dir, _tmp: Some(tmp) }
    }

    pub fn sim(seed: u64) -> Self {
        let sim = SimStorage::new(seed);
        Self {
            storage: Arc::new(sim.clone()),
            sim: Some(sim),
            dir: PathBuf::from("/store"),
            _tmp: None,
        }
    }

    pub fn name(&self) -> &'static str {
        if self.sim.is_some() { "sim" } else { "os" }
    }

    /// Flips one bit of a file, in place (media corruption).
    pub fn flip_bit(&self, path: &std::path::Path, offset: u64, bit: u8) {
        match &self.sim {
            Some(sim) => sim.flip_bit(path, offset, bit).expect("flip"),
            None => {
                let mut bytes = std::fs::read(path).expect("read");
                bytes[usize::try_from(offset).expect("small")] ^= 1 << bit;
                std::fs::write(path, bytes).expect("write");
            }
        }
    }

    pub fn open(&self, options: Options) -> annal_wal::Result<Log> {
        Log::open_with(Arc::clone(&self.storage), &self.dir, options)
    }
}

/// Runs `f` on both storages.
pub fn both(f: impl Fn(&Env)) {
    f(&Env::os());
    f(&Env::sim(7));
}

pub fn small(durability: Durability) -> Options {
    Options { durability, segment_bytes_target: 4096, ..Options::default() }
}

/// A payload that names its sequence number, of varying length.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = usize::try_from(seq % 97).expect("small");
    let mut p = format!("record-{seq}:").into_bytes();
    p.extend(std::iter::repeat_n(u8::try_from(seq % 251).expect("small"), len));
    p
}

pub fn read_all(log: &Log) -> Vec<Record> {
    log.read_from(1).collect::<Result<Vec<_>, _>>().expect("read back")
}

pub fn payloads(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.payload.to_vec()).collect()
}
