//! Replay to a target, one way for the journal and for its directory reader: which snapshot
//! serves the target (the MANIFEST's [`Manifest::starts`]), where folding starts, and what
//! an unreachable or out-of-range target is, decided once here; what a target includes is
//! [`Until`]'s own decision.

use std::path::Path;

use annal_compactor::Manifest;
use annal_projection::replay::fold_records;
use annal_projection::{Projection, Until};
use annal_storage::Storage;

use crate::error::{Error, Result};

/// What a replay reads: a live log, or a directory seen by a reader.
pub(crate) struct Source<'a> {
    pub storage: &'a dyn Storage,
    pub dir: &'a Path,
    pub manifest: Option<&'a Manifest>,
    /// The first sequence number the log (`wal/`) holds.
    pub log_first: u64,
    /// The last acknowledged sequence number, when known without reading (a live log).
    pub last: Option<u64>,
    /// The records from a sequence number on, through `archive/` below the log start.
    pub records: &'a dyn Fn(u64) -> Result<annal_wal::Reader>,
    /// Told how far the fold got, with the last sequence number it can reach.
    pub progress: Option<(&'a dyn crate::Progress, u64)>,
}

impl Source<'_> {
    fn archived(&self) -> Result<bool> {
        let archive = self.dir.join(annal_wal::ARCHIVE_DIR);
        Ok(self.storage.exists(&archive).map_err(|e| annal_wal::Error::Io {
            op: "stat",
            path: archive,
            source: e,
        })?)
    }

    /// Whether a snapshot at `seq` serves `until`: its last event is not past the target.
    fn serves(&self, seq: u64, until: Until) -> Result<bool> {
        Ok(match until {
            Until::Seq(target) => seq <= target,
            Until::End => true,
            // Placed in time by its own last event; one no longer held (right below the log
            // start, with no archive) cannot be placed, so it does not serve.
            Until::Time(_) => match (self.records)(seq)?.next() {
                Some(Ok(record)) => record.seq == seq && until.includes(record.seq, record.ts),
                Some(Err(annal_wal::Error::BeforeStart { .. })) | None => false,
                Some(Err(e)) => return Err(e.into()),
            },
        })
    }
}

/// Replays `P` up to `until`: from the newest snapshot that serves the target, or from the
/// start of the log (through `archive/` when the log was truncated). Returns the state and the
/// sequence number it stands at.
///
/// # Errors
/// `Invalid` naming the earliest reachable sequence when nothing reaches the target, or the
/// last sequence when a target sequence lies past the end; snapshot, read and decode errors.
pub(crate) fn replay<P: Projection>(src: &Source<'_>, until: Until) -> Result<(P::State, u64)> {
    if let (Until::Seq(target), Some(last)) = (until, src.last)
        && target > last
    {
        return Err(past_the_end(target, last));
    }
    let starts: Vec<_> = src
        .manifest
        .map(|m| m.starts(P::NAME, P::SCHEMA_VERSION, src.log_first).cloned().collect())
        .unwrap_or_default();
    let mut start = None;
    for r in &starts {
        if src.serves(r.seq, until)? {
            let snap = crate::compact::read_snapshot(src.storage, src.dir, r)?;
            let state: P::State =
                rmp_serde::from_slice(&snap.state).map_err(|e| Error::ProjectionFailed {
                    projection: P::NAME,
                    seq: r.seq,
                    reason: format!("snapshot state does not decode: {e}"),
                })?;
            start = Some((r.seq, state));
            break;
        }
    }
    let start = match start {
        Some(start) => start,
        // From sequence 1: in the log, or through archive/ (whose reader names the earliest
        // sequence it holds if it does not reach back to 1).
        None if src.log_first <= 1 || src.archived()? => (0, P::State::default()),
        None => {
            let first = src.log_first;
            return Err(Error::Invalid(match starts.last() {
                // Only a snapshot whose own event is gone is left before the time: its time is
                // unknown, so whether it is at or before the target cannot be told.
                Some(earliest) if matches!(until, Until::Time(_)) && earliest.seq + 1 == first => {
                    format!(
                        "{} cannot be reached by a replay of {}: it is before the first event held ({first}), and the \
                         snapshot at {} cannot be placed in time since its event is no longer held; replay to sequence \
                         {} instead (compact with --archive to keep older segments)",
                        until.describe(),
                        P::NAME,
                        earliest.seq,
                        earliest.seq
                    )
                }
                Some(earliest) => format!(
                    "{} cannot be reached by a replay of {}: the earliest reachable sequence is {} (the log starts at \
                     {first}; compact with --archive to keep older segments)",
                    until.describe(),
                    P::NAME,
                    earliest.seq
                ),
                None => format!(
                    "{}: no snapshot of {} (schema version {}) reaches the log, which starts at {first}",
                    until.describe(),
                    P::NAME,
                    P::SCHEMA_VERSION
                ),
            }));
        }
    };
    let records = (src.records)(start.0 + 1)?;
    let progress = src.progress.and_then(|(p, last)| {
        // An end that is not known (`u64::MAX`) gives no progress.
        let end = until.last_seq().map_or(last, |t| t.min(last));
        (end != u64::MAX).then(|| {
            p.begin("replay", start.0 + 1, end);
            p
        })
    });
    let (state, at) = fold_records::<P>(crate::progress::track(records, progress), start, until)?;
    if let Until::Seq(target) = until
        && at != target
    {
        return Err(past_the_end(target, at));
    }
    Ok((state, at))
}

fn past_the_end(target: u64, last: u64) -> Error {
    Error::Invalid(format!("sequence {target} is past the end of the journal (last: {last})"))
}
