//! Chosen failures: a halt after a number of operations, and one-shot EIO or ENOSPC faults on
//! the n-th write or sync.

use std::io;

use super::State;

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
    pub(super) fn error(self) -> io::Error {
        match self {
            Self::Eio => io::Error::from_raw_os_error(5),
            Self::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// A one-shot failure of a chosen operation, armed with [`SimStorage::inject`](super::SimStorage::inject).
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

#[derive(Debug)]
pub(super) struct PendingFault {
    pub(super) op: FaultOp,
    /// The `nth` it was armed with.
    pub(super) nth: u64,
    /// How many more operations of class `op` until the failing one (that one included).
    pub(super) remaining: u64,
    pub(super) kind: FaultKind,
}

pub(super) fn halted() -> io::Error {
    io::Error::other("simulated crash: storage halted")
}

impl State {
    /// Fails if the machine is halted, or halts it now if the halt point has been reached.
    pub(super) fn enter(&mut self) -> io::Result<()> {
        if self.halt_at == Some(self.ops) {
            self.dead = true;
        }
        if self.dead { Err(halted()) } else { Ok(()) }
    }

    /// Admits one mutating operation: fails as `enter` does, otherwise counts it.
    pub(super) fn mutate(&mut self) -> io::Result<()> {
        self.enter()?;
        self.ops += 1;
        Ok(())
    }

    /// Counts one operation of class `op` against the pending faults; returns the error kind if
    /// this operation is one that must fail.
    pub(super) fn take_fault(&mut self, op: FaultOp) -> Option<FaultKind> {
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
}
