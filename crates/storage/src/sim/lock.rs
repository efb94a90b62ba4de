//! The writer lock, held on the directory and on the inode, as flock holds it.

use std::fmt;
use std::sync::Weak;

use parking_lot::Mutex;

use super::State;
use crate::LockGuard;

/// A held simulated lock. Weak, so a forgotten guard does not keep the machine alive.
pub(super) struct SimLock {
    pub(super) state: Weak<Mutex<State>>,
    /// The directory and the inode it locks.
    pub(super) ids: [u64; 2],
    pub(super) epoch: u64,
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
