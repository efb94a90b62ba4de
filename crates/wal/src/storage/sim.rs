//! A deterministic, seeded, in-memory file system that keeps live and durable state apart.
//!
//! Every directory holds two maps of entries: the live ones (what the running program sees) and
//! the durable ones (what survives a power cut). Every file is an inode with live and durable
//! bytes plus the set of 4 KiB pages that may differ between them. `sync_dir` and `sync_data`
//! move live state to durable state; [`SimStorage::crash`] resolves every difference (dropping,
//! keeping or tearing it) and restarts the machine. [`SimStorage::halt_after`] and
//! [`SimStorage::inject`] make chosen operations fail, so a test can crash a workload at every
//! I/O step. All randomness comes from the seed, so a failing run can be replayed exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::mem;
use std::path::{Component, Path};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{LockAttempt, LockGuard, OpenMode, Storage, StorageFile};

/// The granularity at which unsynced file data is tracked, dropped, kept or torn by a crash.
const PAGE: usize = 4096;

/// The directory id of the root; the root always exists.
const ROOT: u64 = 0;

/// The value of the simulated clock before its first reading (November 2023, in nanoseconds).
const CLOCK_START: u64 = 1_700_000_000_000_000_000;

/// How far the simulated clock moves on every reading, so that successive readings differ.
const CLOCK_TICK: u64 = 1_000;

/// What a crash does with state that was not made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// Everything unsynced is lost: the durable state wins everywhere.
    DropUnsynced,
    /// Everything unsynced happens to have reached the disk: the live state wins everywhere.
    KeepUnsynced,
    /// Each unsynced directory entry, file length and dirty page is independently dropped or
    /// kept, and a page may also be torn.
    Random,
}

/// The class of operation an injected [`Fault`] targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `StorageFile::write_all_at` and `StorageFile::set_len`.
    Write,
    /// `StorageFile::sync_data` and `Storage::sync_dir`.
    Sync,
}

/// The error an injected [`Fault`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// An I/O error (`EIO`, raw OS error 5 on Linux).
    Eio,
    /// No space left on the device (`ENOSPC`, raw OS error 28 on Linux).
    Enospc,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            Self::Eio => io::Error::from_raw_os_error(5),
            Self::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// A one-shot failure of a chosen operation, armed with [`SimStorage::inject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    /// Which class of operation fails.
    pub op: FaultOp,
    /// Which one fails: the `nth` operation of class `op` after the fault is injected, counting
    /// from 1 (0 is treated as 1).
    pub nth: u64,
    /// The error it fails with.
    pub kind: FaultKind,
}

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

/// splitmix64: tiny, seedable, and good enough for choosing crash outcomes.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (up to a negligible modulo bias); `bound` must be positive.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in `0..=max`.
    fn up_to(&mut self, max: usize) -> usize {
        let drawn = self.below(max as u64 + 1);
        usize::try_from(drawn).expect("a value not above a usize fits in a usize")
    }

    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }

    fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }
}

/// A directory entry: a file (inode id) or a directory (directory id); ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Default)]
struct Dir {
    live: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
}

/// A file's contents.
///
/// Invariant (kept by every operation except a failed `sync_data`, which breaks it on purpose):
/// at every offset `o < live.len()` whose page is not in `dirty`, `live[o]` equals `durable[o]`
/// when `o < durable.len()` and is zero otherwise. So a sync only has to copy the dirty pages and
/// fix the length, and a crash only has to decide about the dirty pages and the length.
#[derive(Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    dirty: BTreeSet<usize>,
    /// Open handles from the current epoch; the inode is freed only when none are left and no
    /// live or durable entry names it.
    open: usize,
}

impl Inode {
    fn set_len(&mut self, len: usize) {
        let old = self.live.len();
        // Growing zero-fills; where durable bytes exist under the new zeros they now differ.
        self.mark_dirty(old, len.min(self.durable.len()));
        self.live.resize(len, 0);
    }

    fn write(&mut self, data: &[u8], offset: usize) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len();
        if end > self.live.len() {
            self.set_len(end);
        }
        self.live[offset..end].copy_from_slice(data);
        self.mark_dirty(offset, end);
    }

    fn mark_dirty(&mut self, start: usize, end: usize) {
        if start < end {
            self.dirty.extend(start / PAGE..=(end - 1) / PAGE);
        }
    }

    fn sync(&mut self) {
        let len = self.live.len();
        self.durable.resize(len, 0);
        for &page in &self.dirty {
            let start = page * PAGE;
            if start < len {
                let end = (start + PAGE).min(len);
                self.durable[start..end].copy_from_slice(&self.live[start..end]);
            }
        }
        self.dirty.clear();
    }

    fn crash(&mut self, mode: CrashMode, rng: &mut Rng) {
        let live_len = self.live.len();
        let durable_len = self.durable.len();
        let keep_len = match mode {
            CrashMode::DropUnsynced => false,
            CrashMode::KeepUnsynced => true,
            CrashMode::Random => live_len != durable_len && rng.coin(),
        };
        let len = if keep_len { live_len } else { durable_len };
        let mut out = mem::take(&mut self.durable);
        out.resize(len, 0);
        for &page in &self.dirty {
            let start = page * PAGE;
            if start >= len {
                break;
            }
            let end = (start + PAGE).min(len);
            // When the durable length won over a shorter live file, the live page ends early or
            // is gone; bytes live no longer has stay as they are durably.
            let live_end = end.min(live_len);
            if start >= live_end {
                continue;
            }
            let choice = match mode {
                CrashMode::DropUnsynced => 0,
                CrashMode::KeepUnsynced => 1,
                CrashMode::Random => rng.below(3),
            };
            match choice {
                0 => {}
                1 => out[start..live_end].copy_from_slice(&self.live[start..live_end]),
                _ => {
                    let cut = start + rng.up_to(live_end - start);
                    out[start..cut].copy_from_slice(&self.live[start..cut]);
                    let garbage = rng.coin();
                    // Only bytes the program changed since the last sync are damaged: a byte
                    // that is durable and equal in live is the same on disk whatever happens.
                    let tail = out[cut..live_end].iter_mut().zip(&self.live[cut..live_end]);
                    for (offset, (byte, &new)) in (cut..).zip(tail) {
                        let unchanged = offset < durable_len && *byte == new;
                        if !unchanged {
                            *byte = if garbage { rng.byte() } else { 0 };
                        }
                    }
                }
            }
        }
        self.dirty.clear();
        self.live.clone_from(&out);
        self.durable = out;
        self.open = 0;
    }
}

#[derive(Debug)]
struct PendingFault {
    op: FaultOp,
    /// The `nth` it was armed with.
    nth: u64,
    /// How many more operations of class `op` until the failing one (that one included).
    remaining: u64,
    kind: FaultKind,
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

impl State {
    /// Fails if the machine is halted, or halts it now if the halt point has been reached.
    fn enter(&mut self) -> io::Result<()> {
        if self.halt_at == Some(self.ops) {
            self.dead = true;
        }
        if self.dead { Err(halted()) } else { Ok(()) }
    }

    /// Admits one mutating operation: fails as `enter` does, otherwise counts it.
    fn mutate(&mut self) -> io::Result<()> {
        self.enter()?;
        self.ops += 1;
        Ok(())
    }

    /// Counts one operation of class `op` against the pending faults; returns the error kind if
    /// this operation is one that must fail.
    fn take_fault(&mut self, op: FaultOp) -> Option<FaultKind> {
        let mut hit = None;
        self.faults.retain_mut(|fault| {
            if fault.op != op {
                return true;
            }
            fault.remaining -= 1;
            if fault.remaining > 0 {
                return true;
            }
            hit.get_or_insert(Fault { op, nth: fault.nth, kind: fault.kind });
            false
        });
        if hit.is_some() {
            self.last_fault = hit;
            self.faults_fired += 1;
        }
        hit.map(|f| f.kind)
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn new_dir(&mut self) -> u64 {
        let id = self.new_id();
        self.dirs.insert(id, Dir::default());
        id
    }

    fn new_inode(&mut self) -> u64 {
        let id = self.new_id();
        self.inodes.insert(id, Inode::default());
        id
    }

    fn dir_mut(&mut self, id: u64) -> &mut Dir {
        self.dirs.get_mut(&id).expect("every entry names an existing directory")
    }

    fn inode_mut(&mut self, id: u64) -> &mut Inode {
        self.inodes.get_mut(&id).expect("every entry and handle names an existing inode")
    }

    /// Follows live entries from the root. `Ok(None)` if the last or an intermediate name is
    /// missing.
    fn lookup(&self, comps: &[String]) -> io::Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for comp in comps {
            let Node::Dir(dir) = node else { return Err(not_a_directory()) };
            match self.dirs[&dir].live.get(comp) {
                Some(&child) => node = child,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory that must hold the last component of `comps`, and that component.
    fn parent<'a>(&self, comps: &'a [String]) -> io::Result<(u64, &'a str)> {
        let (name, parent) = comps.split_last().ok_or_else(|| invalid_input("no file name"))?;
        match self.lookup(parent)? {
            Some(Node::Dir(dir)) => Ok((dir, name)),
            Some(Node::File(_)) => Err(not_a_directory()),
            None => Err(not_found()),
        }
    }

    fn file_id(&self, comps: &[String]) -> io::Result<u64> {
        match self.lookup(comps)? {
            Some(Node::File(id)) => Ok(id),
            Some(Node::Dir(_)) => Err(is_a_directory()),
            None => Err(not_found()),
        }
    }

    fn dir_id(&self, comps: &[String]) -> io::Result<u64> {
        match self.lookup(comps)? {
            Some(Node::Dir(id)) => Ok(id),
            Some(Node::File(_)) => Err(not_a_directory()),
            None => Err(not_found()),
        }
    }

    /// Frees inode `id` if nothing can reach it any more: no open handle, and no live or durable
    /// entry (a durable entry can bring the file back in a crash).
    fn collect(&mut self, id: u64) {
        let Some(inode) = self.inodes.get(&id) else { return };
        if inode.open > 0 {
            return;
        }
        let node = Node::File(id);
        let named = self
            .dirs
            .values()
            .any(|dir| dir.live.values().chain(dir.durable.values()).any(|&n| n == node));
        if !named {
            self.inodes.remove(&id);
        }
    }

    fn crash(&mut self, mode: CrashMode) {
        self.epoch += 1;
        self.dead = false;
        self.halt_at = None;
        self.faults.clear();
        self.locks.clear();

        for dir in self.dirs.values_mut() {
            let names: BTreeSet<String> =
                dir.live.keys().chain(dir.durable.keys()).cloned().collect();
            let mut resolved = BTreeMap::new();
            for name in names {
                let live = dir.live.get(&name).copied();
                let durable = dir.durable.get(&name).copied();
                let keep_live = match mode {
                    _ if live == durable => true,
                    CrashMode::DropUnsynced => false,
                    CrashMode::KeepUnsynced => true,
                    CrashMode::Random => self.rng.coin(),
                };
                if let Some(node) = if keep_live { live } else { durable } {
                    resolved.insert(name, node);
                }
            }
            dir.durable.clone_from(&resolved);
            dir.live = resolved;
        }

        // Entries may now form odd shapes (a directory named twice, even a cycle after
        // cross-directory renames), so the walk tracks what it has seen.
        let mut reachable_dirs = BTreeSet::new();
        let mut reachable_files = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            if !reachable_dirs.insert(id) {
                continue;
            }
            for node in self.dirs[&id].live.values() {
                match *node {
                    Node::Dir(child) => stack.push(child),
                    Node::File(file) => {
                        reachable_files.insert(file);
                    }
                }
            }
        }
        self.dirs.retain(|id, _| reachable_dirs.contains(id));
        self.inodes.retain(|id, _| reachable_files.contains(id));
        for inode in self.inodes.values_mut() {
            inode.crash(mode, &mut self.rng);
        }
    }
}

/// An open simulated file: refers to the inode, so it survives renames and unlinks.
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    epoch: u64,
    writable: bool,
}

impl SimFile {
    /// Locks the machine for an operation on this handle, failing if the handle is stale.
    fn lock(&self) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let state = self.state.lock();
        if state.epoch != self.epoch {
            return Err(io::Error::other("stale handle after simulated crash"));
        }
        Ok(state)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable { Ok(()) } else { Err(io::Error::from_raw_os_error(9)) }
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("inode", &self.inode)
            .field("epoch", &self.epoch)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if state.epoch != self.epoch {
            return;
        }
        if let Some(inode) = state.inodes.get_mut(&self.inode) {
            inode.open -= 1;
        }
        state.collect(self.inode);
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut state = self.lock()?;
        state.enter()?;
        let live = &state.inodes[&self.inode].live;
        let Some(available) = usize::try_from(offset).ok().and_then(|at| live.get(at..)) else {
            return Ok(0);
        };
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let offset = to_usize(offset)?;
        if offset.checked_add(buf.len()).is_none() {
            return Err(invalid_input("write past the largest possible file"));
        }
        let mut state = self.lock()?;
        if state.dead {
            return Err(halted());
        }
        self.check_writable()?;
        // Not `mutate`: a write that meets the halt is torn rather than dropped.
        if state.halt_at == Some(state.ops) {
            state.dead = true;
            let torn = state.rng.up_to(buf.len());
            state.inode_mut(self.inode).write(&buf[..torn], offset);
            return Err(halted());
        }
        state.ops += 1;
        if let Some(kind) = state.take_fault(FaultOp::Write) {
            let torn = state.rng.up_to(buf.len());
            state.inode_mut(self.inode).write(&buf[..torn], offset);
            return Err(kind.error());
        }
        state.inode_mut(self.inode).write(buf, offset);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.lock()?;
        state.mutate()?;
        let failed = state.take_fault(FaultOp::Sync);
        let inode = state.inode_mut(self.inode);
        if let Some(kind) = failed {
            // Linux marks the pages clean after a failed writeback even though they never reached
            // the disk: a later sync has nothing to write and succeeds, yet the data is lost.
            inode.dirty.clear();
            return Err(kind.error());
        }
        inode.sync();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut state = self.lock()?;
        state.enter()?;
        Ok(state.inodes[&self.inode].live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        let mut state = self.lock()?;
        state.enter()?;
        self.check_writable()?;
        state.mutate()?;
        if let Some(kind) = state.take_fault(FaultOp::Write) {
            return Err(kind.error());
        }
        state.inode_mut(self.inode).set_len(len);
        Ok(())
    }
}

/// A held simulated lock. Weak, so a forgotten guard does not keep the machine alive.
struct SimLock {
    state: Weak<Mutex<State>>,
    /// The directory and the inode it locks.
    ids: [u64; 2],
    epoch: u64,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock")
            .field("ids", &self.ids)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let Some(state) = self.state.upgrade() else { return };
        let mut state = state.lock();
        // After a crash the lock table was emptied and the ids may be held by someone new.
        if state.epoch == self.epoch {
            for id in self.ids {
                state.locks.remove(&id);
            }
        }
    }
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

/// The names along `path`, with `.` dropped and `..` applied; the root is the empty list, and
/// relative paths are taken from the root.
fn normalize(path: &Path) -> Vec<String> {
    let mut comps = Vec::new();
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                comps.pop();
            }
            Component::Normal(name) => comps.push(name.to_string_lossy().into_owned()),
        }
    }
    comps
}

fn to_usize(value: u64) -> io::Result<usize> {
    usize::try_from(value).map_err(|_| invalid_input("offset or length exceeds the address space"))
}

fn halted() -> io::Error {
    io::Error::other("simulated crash: storage halted")
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

fn not_a_directory() -> io::Error {
    io::Error::from(io::ErrorKind::NotADirectory)
}

fn is_a_directory() -> io::Error {
    io::Error::from(io::ErrorKind::IsADirectory)
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [CrashMode; 3] =
        [CrashMode::DropUnsynced, CrashMode::KeepUnsynced, CrashMode::Random];

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
        assert!(matches!(
            sim.try_lock(p("/LOCK"), 42).unwrap(),
            LockAttempt::Held { pid: Some(41) }
        ));
        drop(guard);
        let LockAttempt::Acquired(stale) = sim.try_lock(p("/LOCK"), 43).unwrap() else {
            panic!("a dropped guard releases the lock");
        };
        sim.crash(CrashMode::KeepUnsynced);
        let LockAttempt::Acquired(_fresh) = sim.try_lock(p("/LOCK"), 44).unwrap() else {
            panic!("a crash releases every lock");
        };
        drop(stale);
        assert!(matches!(
            sim.try_lock(p("/LOCK"), 45).unwrap(),
            LockAttempt::Held { pid: Some(44) }
        ));
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
        assert!(matches!(
            sim.try_lock(p("/s/LOCK"), 43).unwrap(),
            LockAttempt::Held { pid: Some(7) }
        ));
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
}
