//! A deterministic, seeded, in-memory file system that keeps live and durable state apart.
//!
//! Every directory holds two maps of entries: the live ones (what the running program sees) and
//! the durable ones (what survives a power cut). Every file is an inode with live and durable
//! bytes plus the set of 4 KiB pages that may differ between them. `sync_dir` and `sync_data`
//! move live state to durable state; [`SimStorage::crash`] resolves every difference (dropping,
//! keeping or tearing it) and restarts the machine. [`SimStorage::halt_after`] and
//! [`SimStorage::inject`] make chosen operations fail, so a test can crash a workload at every
//! I/O step. All randomness comes from the seed, so a failing run can be replayed exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::mem;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::{LockAttempt, LockHolder, OpenMode, Storage, StorageFile};

mod crash;
mod fault;
mod file;
mod inode;
mod lock;
mod rng;
#[cfg(test)]
mod tests;
mod tree;

pub use crash::CrashMode;
pub use fault::{Fault, FaultKind, FaultOp};
use fault::{PendingFault, halted};
use file::SimFile;
use inode::Inode;
use lock::SimLock;
use rng::Rng;
use tree::{
    Dir, Node, ROOT, invalid_input, is_a_directory, normalize, not_a_directory, not_found, to_usize,
};

/// The value of the simulated clock before its first reading (November 2023, in nanoseconds).
const CLOCK_START: u64 = 1_700_000_000_000_000_000;

/// How far the simulated clock moves on every reading, so that successive readings differ.
const CLOCK_TICK: u64 = 1_000;

/// The simulated file system. Cloning it gives another handle to the same machine.
///
/// Mutating operations (each `write_all_at`, `set_len`, `sync_data`, `sync_dir`, `rename`,
/// `remove_file`, each file created by `open_file` or `try_lock`, each truncation by
/// `OpenMode::CreateTruncate` and each directory created by `create_dir_all`) are counted; see
/// [`SimStorage::op_count`] and [`SimStorage::halt_after`]. Operations rejected before they
/// change anything (a missing file, an existing name) are not counted.
#[derive(Clone)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

impl SimStorage {
    /// An empty file system (only the root directory exists) whose random choices all derive
    /// from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(ROOT, Dir::default());
        let state = State {
            rng: Rng(seed),
            epoch: 0,
            clock: CLOCK_START,
            ops: 0,
            halt_at: None,
            dead: false,
            faults: Vec::new(),
            last_fault: None,
            faults_fired: 0,
            dirs,
            inodes: BTreeMap::new(),
            next_id: ROOT + 1,
            locks: BTreeMap::new(),
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// The number of mutating operations performed so far (across crashes).
    #[must_use]
    pub fn op_count(&self) -> u64 {
        self.state.lock().ops
    }

    /// Lets `ops` more mutating operations happen, then halts the machine: the next operation of
    /// any kind fails with "simulated crash: storage halted", and so does every one after it
    /// until [`SimStorage::crash`]. If that next operation is a `write_all_at`, a random prefix
    /// of its bytes is written first (a torn write).
    pub fn halt_after(&self, ops: u64) {
        let mut state = self.state.lock();
        state.halt_at = Some(state.ops.saturating_add(ops));
    }

    /// Arms a one-shot fault. Faults are cleared by a crash.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().faults.push(PendingFault {
            op: fault.op,
            nth: fault.nth.max(1),
            remaining: fault.nth.max(1),
            kind: fault.kind,
        });
    }

    /// Disarms every pending fault (a crash does too).
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// The last injected fault that fired (its operation failed), if any has.
    #[must_use]
    pub fn last_fault(&self) -> Option<Fault> {
        self.state.lock().last_fault
    }

    /// How many injected faults have fired (across crashes).
    #[must_use]
    pub fn faults_fired(&self) -> u64 {
        self.state.lock().faults_fired
    }

    /// Cuts the power and restarts the machine, resolving every unsynced change according to
    /// `mode`. Afterwards every handle and lock guard from before the crash is dead, the halt
    /// and pending faults are cleared, and live state equals durable state.
    pub fn crash(&self, mode: CrashMode) {
        self.state.lock().crash(mode);
    }

    /// Crashes with a mode drawn from the seeded generator: 10% [`CrashMode::KeepUnsynced`], 10%
    /// [`CrashMode::DropUnsynced`], otherwise [`CrashMode::Random`].
    pub fn crash_random(&self) {
        let mut state = self.state.lock();
        let mode = match state.rng.below(10) {
            0 => CrashMode::KeepUnsynced,
            1 => CrashMode::DropUnsynced,
            _ => CrashMode::Random,
        };
        state.crash(mode);
    }

    /// Flips bit `bit` (0..8) of the byte at `byte_offset` of the file at `path`, in both its
    /// live and durable bytes (media corruption). Neither counted nor stopped by a halt.
    pub fn flip_bit(&self, path: &Path, byte_offset: u64, bit: u8) -> io::Result<()> {
        if bit >= 8 {
            return Err(invalid_input("bit index must be below 8"));
        }
        let offset = to_usize(byte_offset)?;
        let mut state = self.state.lock();
        let id = state.file_id(&normalize(path))?;
        let inode = state.inode_mut(id);
        let mut flipped = false;
        for bytes in [&mut inode.live, &mut inode.durable] {
            if let Some(byte) = bytes.get_mut(offset) {
                *byte ^= 1 << bit;
                flipped = true;
            }
        }
        if flipped { Ok(()) } else { Err(invalid_input("offset beyond the end of the file")) }
    }

    /// Whether the machine is halted: its halt point was reached, and every operation fails
    /// until [`SimStorage::crash`] restarts it.
    #[must_use]
    pub fn is_halted(&self) -> bool {
        self.state.lock().dead
    }

    /// The live bytes of the file at `path`. Not stopped by a halt.
    pub fn file_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        let id = state.file_id(&normalize(path))?;
        Ok(state.inodes[&id].live.clone())
    }

    /// The durable bytes of the file that `path` currently (live) names: what a
    /// [`CrashMode::DropUnsynced`] crash would leave in it. Not stopped by a halt.
    pub fn durable_file_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state.lock();
        let id = state.file_id(&normalize(path))?;
        Ok(state.inodes[&id].durable.clone())
    }

    /// Creates or replaces the file at `path` with `bytes`, creating missing parent directories,
    /// with the data and every entry on the way already durable (a test fixture). Neither
    /// counted nor stopped by a halt.
    pub fn write_file_durably(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let comps = normalize(path);
        let (name, parents) = comps.split_last().ok_or_else(|| invalid_input("no file name"))?;
        let mut state = self.state.lock();
        let mut dir = ROOT;
        for comp in parents {
            let child = match state.dirs[&dir].live.get(comp) {
                Some(&Node::Dir(child)) => child,
                Some(Node::File(_)) => return Err(not_a_directory()),
                None => state.new_dir(),
            };
            let entries = state.dir_mut(dir);
            entries.live.insert(comp.clone(), Node::Dir(child));
            entries.durable.insert(comp.clone(), Node::Dir(child));
            dir = child;
        }
        let id = match state.dirs[&dir].live.get(name) {
            Some(&Node::File(id)) => id,
            Some(Node::Dir(_)) => return Err(is_a_directory()),
            None => state.new_inode(),
        };
        let entries = state.dir_mut(dir);
        entries.live.insert(name.clone(), Node::File(id));
        if let Some(Node::File(old)) = entries.durable.insert(name.clone(), Node::File(id)) {
            state.collect(old);
        }
        let inode = state.inode_mut(id);
        inode.live = bytes.to_vec();
        inode.durable = bytes.to_vec();
        inode.dirty.clear();
        Ok(())
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SimStorage");
        // `try_lock`, so that formatting from inside a locked section cannot deadlock.
        if let Some(state) = self.state.try_lock() {
            out.field("epoch", &state.epoch)
                .field("ops", &state.ops)
                .field("halt_at", &state.halt_at)
                .field("halted", &state.dead)
                .field("dirs", &state.dirs.len())
                .field("files", &state.inodes.len());
        }
        out.finish_non_exhaustive()
    }
}

struct State {
    rng: Rng,
    /// Bumped by every crash; handles and guards from an older epoch are dead.
    epoch: u64,
    clock: u64,
    ops: u64,
    /// The machine dies when `ops` reaches this value.
    halt_at: Option<u64>,
    dead: bool,
    faults: Vec<PendingFault>,
    /// The last injected fault that fired.
    last_fault: Option<Fault>,
    /// Injected faults that fired.
    faults_fired: u64,
    dirs: BTreeMap<u64, Dir>,
    inodes: BTreeMap<u64, Inode>,
    /// One id space for directories and inodes.
    next_id: u64,
    /// Locked directories and inodes (by id), each with the pid of its holder.
    locks: BTreeMap<u64, u32>,
}

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<bool> {
        let comps = normalize(path);
        let mut state = self.state.lock();
        state.enter()?;
        let mut dir = ROOT;
        let mut created = false;
        for (i, comp) in comps.iter().enumerate() {
            match state.dirs[&dir].live.get(comp) {
                Some(&Node::Dir(child)) => {
                    dir = child;
                    created = false;
                }
                Some(Node::File(_)) if i + 1 == comps.len() => {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                }
                Some(Node::File(_)) => return Err(not_a_directory()),
                None => {
                    state.mutate()?;
                    let child = state.new_dir();
                    state.dir_mut(dir).live.insert(comp.clone(), Node::Dir(child));
                    dir = child;
                    created = true;
                }
            }
        }
        Ok(created)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.state.lock();
        state.enter()?;
        Ok(state.lookup(&normalize(path))?.is_some())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.lock();
        state.enter()?;
        let id = state.dir_id(&normalize(path))?;
        // BTreeMap keys are already sorted.
        Ok(state.dirs[&id].live.keys().cloned().collect())
    }

    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let comps = normalize(path);
        let mut state = self.state.lock();
        state.enter()?;
        if comps.is_empty() {
            return Err(is_a_directory());
        }
        let (dir, name) = state.parent(&comps)?;
        let id = match (state.dirs[&dir].live.get(name).copied(), mode) {
            (Some(Node::Dir(_)), _) => return Err(is_a_directory()),
            (Some(Node::File(_)), OpenMode::CreateNew) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            (Some(Node::File(id)), OpenMode::CreateTruncate) => {
                state.mutate()?;
                state.inode_mut(id).set_len(0);
                id
            }
            (Some(Node::File(id)), OpenMode::Read | OpenMode::ReadWrite) => id,
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(not_found()),
            (None, OpenMode::CreateNew | OpenMode::CreateTruncate) => {
                state.mutate()?;
                let id = state.new_inode();
                state.dir_mut(dir).live.insert(name.to_owned(), Node::File(id));
                id
            }
        };
        state.inode_mut(id).open += 1;
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            epoch: state.epoch,
            writable: mode != OpenMode::Read,
        }))
    }

    fn map_file(&self, path: &Path) -> io::Result<Bytes> {
        let mut state = self.state.lock();
        state.enter()?;
        let id = state.file_id(&normalize(path))?;
        Ok(Bytes::copy_from_slice(&state.inodes[&id].live))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let from = normalize(from);
        let to = normalize(to);
        let mut state = self.state.lock();
        state.enter()?;
        let (from_dir, from_name) = state.parent(&from)?;
        let (to_dir, to_name) = state.parent(&to)?;
        let node = *state.dirs[&from_dir].live.get(from_name).ok_or_else(not_found)?;
        let replaced = state.dirs[&to_dir].live.get(to_name).copied();
        match (node, replaced) {
            _ if replaced == Some(node) => {}
            (_, Some(Node::Dir(_))) => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "renaming onto a directory is not simulated",
                ));
            }
            (Node::Dir(_), Some(Node::File(_))) => return Err(not_a_directory()),
            (Node::Dir(_), None) if to.len() > from.len() && to.starts_with(&from) => {
                return Err(invalid_input("cannot move a directory into itself"));
            }
            _ => {}
        }
        state.mutate()?;
        if replaced == Some(node) {
            // Both names already refer to the same file: POSIX makes this a no-op.
            return Ok(());
        }
        state.dir_mut(from_dir).live.remove(from_name);
        state.dir_mut(to_dir).live.insert(to_name.to_owned(), node);
        if let Some(Node::File(old)) = replaced {
            state.collect(old);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let comps = normalize(path);
        let mut state = self.state.lock();
        state.enter()?;
        if comps.is_empty() {
            return Err(is_a_directory());
        }
        let (dir, name) = state.parent(&comps)?;
        let id = match state.dirs[&dir].live.get(name) {
            Some(&Node::File(id)) => id,
            Some(Node::Dir(_)) => return Err(is_a_directory()),
            None => return Err(not_found()),
        };
        state.mutate()?;
        state.dir_mut(dir).live.remove(name);
        state.collect(id);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.enter()?;
        let id = state.dir_id(&normalize(path))?;
        state.mutate()?;
        if let Some(kind) = state.take_fault(FaultOp::Sync) {
            return Err(kind.error());
        }
        let dir = state.dir_mut(id);
        let synced = dir.live.clone();
        let old = mem::replace(&mut dir.durable, synced);
        for node in old.into_values() {
            if let Node::File(file) = node {
                state.collect(file);
            }
        }
        Ok(())
    }

    fn lock_holder(&self, path: &Path) -> io::Result<Option<LockHolder>> {
        let comps = normalize(path);
        let mut state = self.state.lock();
        state.enter()?;
        if comps.is_empty() {
            return Err(is_a_directory());
        }
        let (dir, _) = state.parent(&comps)?;
        let id = match state.file_id(&comps) {
            Ok(id) => id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&state.inodes[&id].live).into_owned();
        let held = state.locks.contains_key(&dir) || state.locks.contains_key(&id);
        Ok(Some(LockHolder { pid: text.trim().parse().ok(), held }))
    }

    fn try_lock(&self, path: &Path, pid: u32) -> io::Result<LockAttempt> {
        // As `OsStorage` does with flock: the directory is locked first, then the file; both
        // locks belong to what the names point at now (a directory, an inode), so removing or
        // replacing the file does not release them.
        let comps = normalize(path);
        let mut state = self.state.lock();
        state.enter()?;
        if comps.is_empty() {
            return Err(is_a_directory());
        }
        let (dir, name) = state.parent(&comps)?;
        let held = |state: &State| {
            let text = state
                .file_id(&comps)
                .ok()
                .map(|id| String::from_utf8_lossy(&state.inodes[&id].live).into_owned());
            LockAttempt::Held { pid: text.and_then(|t| t.trim().parse().ok()) }
        };
        if state.locks.contains_key(&dir) {
            return Ok(held(&state));
        }
        let id = match state.dirs[&dir].live.get(name) {
            Some(&Node::File(id)) => id,
            Some(Node::Dir(_)) => return Err(is_a_directory()),
            None => {
                state.mutate()?;
                let id = state.new_inode();
                state.dir_mut(dir).live.insert(name.to_owned(), Node::File(id));
                id
            }
        };
        if state.locks.contains_key(&id) {
            return Ok(held(&state));
        }
        state.locks.insert(dir, pid);
        state.locks.insert(id, pid);
        let inode = state.inode_mut(id);
        inode.set_len(0);
        inode.write(format!("{pid}\n").as_bytes(), 0);
        Ok(LockAttempt::Acquired(Box::new(SimLock {
            state: Arc::downgrade(&self.state),
            ids: [dir, id],
            epoch: state.epoch,
        })))
    }

    fn now_nanos(&self) -> u64 {
        let mut state = self.state.lock();
        let now = state.clock;
        state.clock = now.saturating_add(CLOCK_TICK);
        now
    }

    fn sleep(&self, duration: Duration) {
        {
            let mut state = self.state.lock();
            let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            state.clock = state.clock.saturating_add(nanos);
        }
        // Lets the threads a test is waiting for make progress, as a real sleep would.
        std::thread::yield_now();
    }
}
