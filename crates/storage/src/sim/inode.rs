//! A simulated file's contents: live and durable bytes and the pages that may differ, and how
//! a sync and a crash resolve them.

use std::collections::BTreeSet;
use std::mem;

use super::{CrashMode, Rng};

/// The granularity at which unsynced file data is tracked, dropped, kept or torn by a crash.
pub(super) const PAGE: usize = 4096;

/// A file's contents.
///
/// Invariant (kept by every operation except a failed `sync_data`, which breaks it on purpose):
/// at every offset `o < live.len()` whose page is not in `dirty`, `live[o]` equals `durable[o]`
/// when `o < durable.len()` and is zero otherwise. So a sync only has to copy the dirty pages and
/// fix the length, and a crash only has to decide about the dirty pages and the length.
#[derive(Default)]
pub(super) struct Inode {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
    pub(super) dirty: BTreeSet<usize>,
    /// Open handles from the current epoch; the inode is freed only when none are left and no
    /// live or durable entry names it.
    pub(super) open: usize,
}

impl Inode {
    pub(super) fn set_len(&mut self, len: usize) {
        let old = self.live.len();
        // Growing zero-fills; where durable bytes exist under the new zeros they now differ.
        self.mark_dirty(old, len.min(self.durable.len()));
        self.live.resize(len, 0);
    }

    pub(super) fn write(&mut self, data: &[u8], offset: usize) {
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

    pub(super) fn mark_dirty(&mut self, start: usize, end: usize) {
        if start < end {
            self.dirty.extend(start / PAGE..=(end - 1) / PAGE);
        }
    }

    pub(super) fn sync(&mut self) {
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

    pub(super) fn crash(&mut self, mode: CrashMode, rng: &mut Rng) {
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
