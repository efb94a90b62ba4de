//! An open simulated file: positional reads and writes, sync and length, on its inode.

use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FaultOp, State, halted, invalid_input, to_usize};
use crate::StorageFile;

/// An open simulated file: refers to the inode, so it survives renames and unlinks.
pub(super) struct SimFile {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) inode: u64,
    pub(super) epoch: u64,
    pub(super) writable: bool,
}

impl SimFile {
    /// Locks the machine for an operation on this handle, failing if the handle is stale.
    pub(super) fn lock(&self) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let state = self.state.lock();
        if state.epoch != self.epoch {
            return Err(io::Error::other("stale handle after simulated crash"));
        }
        Ok(state)
    }

    pub(super) fn check_writable(&self) -> io::Result<()> {
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

    /// The most a file system could report: past the page holding the last non-zero byte,
    /// everything reads as zeros, so it may all be a hole.
    fn data_end(&self) -> io::Result<u64> {
        let mut state = self.lock()?;
        state.enter()?;
        let live = &state.inodes[&self.inode].live;
        let end = live.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        Ok(end.next_multiple_of(super::inode::PAGE).min(live.len()) as u64)
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
