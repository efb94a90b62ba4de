//! What a power cut does to the simulated machine: every unsynced entry, length and page is
//! dropped, kept or torn, then the machine restarts.

use std::collections::{BTreeMap, BTreeSet};

use super::{Node, ROOT, State};

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

impl State {
    /// Frees inode `id` if nothing can reach it any more: no open handle, and no live or durable
    /// entry (a durable entry can bring the file back in a crash).
    pub(super) fn collect(&mut self, id: u64) {
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

    pub(super) fn crash(&mut self, mode: CrashMode) {
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
