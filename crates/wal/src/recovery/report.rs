//! What recovery found and did: the report an open returns, and its `tracing` events.

use std::path::{Path, PathBuf};

/// What recovery found and did when a log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: usize,
    /// Last sequence number after recovery (0 for an empty log).
    pub last_seq: u64,
    /// A torn tail that was cut off.
    pub torn_tail: Option<TornTail>,
    /// Where `TruncateAtCorruption` cut the log.
    pub cut: Option<Cut>,
    /// Files written to or moved into `quarantine/`.
    pub quarantined: Vec<PathBuf>,
    /// A seal that a crash interrupted and that was completed.
    pub completed_seal: Option<PathBuf>,
    /// A segment whose creation a crash interrupted, and that was created again.
    pub recreated_segment: Option<PathBuf>,
    /// Leftover temporary files removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// Segments below the log start removed (a truncation a crash had interrupted).
    pub truncated_segments: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Emits what the recovery of the log in `dir` did as `tracing` events: a torn tail cut and
    /// a cut at corruption as warnings (with file, byte offset and sequence number), each file
    /// moved to quarantine, a seal completed or a segment rebuilt as warnings, segments removed
    /// below the log start and temporary files removed as info.
    pub(crate) fn trace(&self, dir: &Path) {
        let dir = dir.display();
        if let Some(t) = &self.torn_tail {
            tracing::warn!(
                %dir, file = %t.file.display(), offset = t.offset, bytes = t.bytes,
                orphan_frames = t.orphan_frames, reason = %t.reason, last_seq = self.last_seq,
                "cut a torn tail"
            );
        }
        if let Some(c) = &self.cut {
            tracing::warn!(
                %dir, file = %c.file.display(), offset = c.offset, seq = c.seq,
                reason = %c.reason, last_seq = self.last_seq,
                "cut the log at corruption"
            );
        }
        for path in &self.quarantined {
            tracing::warn!(%dir, file = %path.display(), "moved to quarantine");
        }
        if let Some(path) = &self.completed_seal {
            tracing::warn!(%dir, file = %path.display(), "completed an interrupted seal");
        }
        if let Some(path) = &self.recreated_segment {
            tracing::warn!(%dir, file = %path.display(), "rebuilt a segment whose creation a crash interrupted");
        }
        for path in &self.truncated_segments {
            tracing::info!(%dir, file = %path.display(), "removed a segment below the log start");
        }
        for path in &self.removed_temp_files {
            tracing::info!(%dir, file = %path.display(), "removed a temporary file");
        }
        tracing::debug!(%dir, segments = self.segments, last_seq = self.last_seq, clean = self.is_clean(), "recovered");
    }

    /// Whether recovery found nothing to repair.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none()
            && self.cut.is_none()
            && self.completed_seal.is_none()
            && self.recreated_segment.is_none()
    }
}

/// A torn tail cut off the active segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The active segment.
    pub file: PathBuf,
    /// Where the valid frames end and the cut starts.
    pub offset: u64,
    /// Bytes cut (up to the last non-zero byte).
    pub bytes: u64,
    /// Complete frames found in the cut bytes (written, never synced).
    pub orphan_frames: u64,
    /// What was found at `offset`.
    pub reason: String,
}

/// Where the explicit repair cut the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The segment holding the first bad frame.
    pub file: PathBuf,
    /// Offset of the first bad frame.
    pub offset: u64,
    /// Sequence number expected there: the log now ends at `seq - 1`.
    pub seq: u64,
    /// What was wrong.
    pub reason: String,
}
