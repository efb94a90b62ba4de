//! Compaction, opening from snapshots, replay from snapshots, and `verify`.
//!
//! A compaction snapshots every live projection (the stream index included) at one sequence
//! number S, commits a MANIFEST naming them and the log start, then removes what the MANIFEST no
//! longer needs. The log start is one past the oldest snapshot kept (of any projection, including
//! those this process did not register), so every projection can still be rebuilt, and every
//! sequence number from the oldest snapshot on stays reachable by a replay.

use std::collections::BTreeMap;
use std::path::PathBuf;

use annal_compactor::{Manifest, Snapshot, SnapshotRef, snapshot_path};
use annal_projection::{Projection, StreamIndex};
use annal_storage::Storage;
use annal_wal::{Log, Problem};

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::live::LiveSet;

/// What [`Journal::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The sequence number the snapshots stand at (0: the journal was empty, nothing done).
    pub seq: u64,
    /// The snapshot files written.
    pub snapshots_written: Vec<PathBuf>,
    /// The log start after the compaction.
    pub log_start: u64,
    /// Segments removed (deleted or archived).
    pub segments_removed: Vec<PathBuf>,
    /// Bytes of the removed segments.
    pub bytes_reclaimed: u64,
    /// Snapshot and temporary files removed by retention and cleanup.
    pub files_removed: Vec<PathBuf>,
    /// Registered projections not snapshotted because they failed (their older snapshots stay).
    pub skipped: Vec<&'static str>,
    /// A cleanup that failed after the commit (the next open finishes it).
    pub cleanup_error: Option<String>,
}

/// What [`Journal::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The log's own report: every frame, seal, sequence and the hash chain.
    pub log: annal_wal::VerifyReport,
    /// Snapshots checked (checksum, chain value, and replay where a starting point exists).
    pub snapshots_checked: usize,
    /// Snapshots compared with the replay that should produce them.
    pub snapshots_replayed: usize,
    /// Every problem found, the log's included.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub(crate) fn read_snapshot(
    storage: &dyn Storage,
    dir: &std::path::Path,
    r: &SnapshotRef,
) -> Result<Snapshot> {
    let path = snapshot_path(dir, &r.projection, r.seq);
    let snap = Snapshot::read(storage, &path, Some(r.crc)).map_err(|e| match e {
        annal_compactor::Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            annal_compactor::Error::Corrupt {
                file: path.clone(),
                offset: 0,
                reason: format!(
                    "snapshot of {} at sequence {} is missing: the MANIFEST names it",
                    r.projection, r.seq
                ),
            }
        }
        annal_compactor::Error::Corrupt { file, offset, reason } => {
            annal_compactor::Error::Corrupt {
                file,
                offset,
                reason: format!("snapshot of {} at sequence {}: {reason}", r.projection, r.seq),
            }
        }
        other => other,
    })?;
    if snap.projection != r.projection
        || snap.seq != r.seq
        || snap.schema_version != r.schema_version
    {
        return Err(Error::Compactor(annal_compactor::Error::Corrupt {
            file: path,
            offset: 0,
            reason: format!(
                "holds {} at sequence {} (schema {}) where the MANIFEST names {} at {} (schema {})",
                snap.projection,
                snap.seq,
                snap.schema_version,
                r.projection,
                r.seq,
                r.schema_version
            ),
        }));
    }
    Ok(snap)
}

/// Loads each live projection from its newest usable snapshot, checking it against the log's
/// hash chain. A projection without one starts from the empty state, which needs the log to
/// start at sequence 1.
pub(crate) fn load_snapshots(
    storage: &dyn Storage,
    dir: &std::path::Path,
    log: &Log,
    manifest: Option<&Manifest>,
    live: &mut LiveSet,
) -> Result<()> {
    let last = log.last_seq();
    // Projections snapshotted together share their sequence number: one chain lookup each.
    let mut chains: std::collections::BTreeMap<u64, annal_wal::ChainValue> =
        std::collections::BTreeMap::new();
    if let Some(beyond) =
        manifest.and_then(|m| m.snapshots.iter().map(|s| s.seq).max()).filter(|&s| s > last)
    {
        return Err(Error::Compactor(annal_compactor::Error::Corrupt {
            file: dir.join(annal_compactor::MANIFEST_FILE),
            offset: 0,
            reason: format!(
                "names a snapshot at sequence {beyond} but the log ends at {last}: events {}..={beyond} are missing",
                last + 1
            ),
        }));
    }
    for slot in &mut live.slots {
        let name = slot.live.name();
        let schema = slot.live.schema_version();
        match manifest.and_then(|m| m.newest_start(name, schema, log.first_seq(), last)) {
            Some(r) => {
                let snap = read_snapshot(storage, dir, r)?;
                let chain = match chains.get(&r.seq) {
                    Some(chain) => *chain,
                    None => *chains.entry(r.seq).or_insert(log.chain_at(r.seq)?),
                };
                if chain != snap.chain {
                    return Err(Error::Compactor(annal_compactor::Error::Corrupt {
                        file: snapshot_path(dir, name, r.seq),
                        offset: 0,
                        reason: format!(
                            "its chain value differs from the log's at sequence {}: it does not belong to this log",
                            r.seq
                        ),
                    }));
                }
                slot.live.load(&snap.state).map_err(|reason| Error::ProjectionFailed {
                    projection: name,
                    seq: r.seq,
                    reason,
                })?;
                slot.at = r.seq;
            }
            None if log.first_seq() > 1 => {
                let found: Vec<String> = manifest
                    .map(|m| {
                        m.snapshots_of(name)
                            .map(|s| format!("sequence {} schema {}", s.seq, s.schema_version))
                            .collect()
                    })
                    .unwrap_or_default();
                let reason = format!(
                    "projection {name} (schema version {schema}) has no usable snapshot (found: {}) and the log starts at \
                     sequence {}, so its state cannot be rebuilt; open with the projection's previous schema version \
                     (older states stay readable through archive/ with `annal replay` if the store archives)",
                    if found.is_empty() { "none".into() } else { found.join(", ") },
                    log.first_seq()
                );
                if name == StreamIndex::NAME {
                    return Err(Error::Invalid(reason));
                }
                // Only this projection is unusable: `state` reports it, the journal works.
                slot.failed = Some((log.first_seq(), reason));
                slot.at = u64::MAX;
            }
            None => {}
        }
    }
    Ok(())
}

impl Journal {
    /// Snapshots every registered projection (and the stream index) at the last acknowledged
    /// sequence number S, commits a new MANIFEST, then removes segments below the new log start
    /// (deleting or archiving them) and snapshots beyond retention. Appends are held back only
    /// while the live states are serialized. A crash at any step leaves the store consistent:
    /// the old MANIFEST with the old files, or the new one with the new.
    ///
    /// # Errors
    /// I/O errors (the store stays consistent); `ProjectionFailed` if a projection failed.
    pub fn compact(&self) -> Result<CompactReport> {
        let inner = self.inner();
        let _one_at_a_time = inner.compacting.lock();
        let mut report_skipped = Vec::new();
        let (seq, states) = {
            self.state_at::<StreamIndex>()?;
            let live = inner.live.lock();
            let mut states = Vec::with_capacity(live.slots.len());
            for slot in &live.slots {
                let name = slot.live.name();
                if let Some((seq, reason)) = &slot.failed {
                    // The stream index is the journal's own; a failed registered projection is
                    // skipped (its snapshots in force stay, and keep the log reaching them).
                    if name == StreamIndex::NAME {
                        return Err(Error::ProjectionFailed {
                            projection: name,
                            seq: *seq,
                            reason: reason.clone(),
                        });
                    }
                    report_skipped.push(name);
                    continue;
                }
                let state = slot.live.save().map_err(|reason| Error::ProjectionFailed {
                    projection: name,
                    seq: slot.at,
                    reason,
                })?;
                states.push((name, slot.live.schema_version(), state));
            }
            (live.applied_seq, states)
        };
        let mut report = CompactReport {
            seq,
            log_start: inner.log.first_seq(),
            skipped: report_skipped,
            ..CompactReport::default()
        };
        if seq == 0 {
            return Ok(report);
        }
        // The snapshots and the MANIFEST must never stand past what is durable (with `Manual`
        // or `Periodic` durability, acknowledged events may not be yet).
        inner.log.sync()?;
        // The checkpoint of every durable event, before the truncation removes any: later
        // checkpoints continue from its frontier.
        if let Some(checkpoints) = &inner.checkpoints {
            checkpoints.write(inner.storage.as_ref(), &inner.log)?;
        }
        let chain = inner.log.chain_at(seq)?;
        let storage = inner.storage.as_ref();
        let old = inner.manifest.lock().clone().unwrap_or_default();
        let mut snapshots: Vec<SnapshotRef> = old.snapshots.clone();
        for (name, schema_version, state) in states {
            // The file name has no schema version: rewriting a snapshot the MANIFEST in force
            // names with another schema would break that MANIFEST if a crash came before the
            // commit. Keep the old one; the log still reaches back to it.
            if old
                .snapshots
                .iter()
                .any(|s| s.projection == name && s.seq == seq && s.schema_version != schema_version)
            {
                continue;
            }
            let snap = Snapshot { projection: name.to_owned(), schema_version, seq, chain, state };
            let (path, crc) = snap.write(storage, &inner.dir)?;
            snapshots.retain(|s| !(s.projection == name && s.seq == seq));
            snapshots.push(SnapshotRef { projection: name.to_owned(), schema_version, seq, crc });
            report.snapshots_written.push(path);
        }
        // Retention: the newest `keep_snapshots` of each projection.
        let mut by_projection: BTreeMap<String, Vec<SnapshotRef>> = BTreeMap::new();
        for s in snapshots {
            by_projection.entry(s.projection.clone()).or_default().push(s);
        }
        let mut kept = Vec::new();
        for list in by_projection.values_mut() {
            list.sort_by_key(|s| s.seq);
            let skip = list.len().saturating_sub(inner.keep_snapshots);
            kept.extend(list.drain(skip..));
        }
        // The log must still reach every projection's snapshots, those of projections this
        // process did not register (and so did not snapshot now) included.
        let oldest = kept.iter().map(|s| s.seq).min();
        let log_start = oldest.map_or(1, |s| s + 1).max(old.log_start);
        let manifest = Manifest { generation: old.generation + 1, log_start, snapshots: kept };
        manifest.write(storage, &inner.dir)?;
        *inner.manifest.lock() = Some(manifest.clone());
        let (removed, bytes) = inner.log.remove_segments_below(log_start, inner.archive)?;
        report.log_start = log_start;
        report.segments_removed = removed;
        report.bytes_reclaimed = bytes;
        // The compaction is committed: a failed cleanup leaves files the next open removes.
        match annal_compactor::cleanup(storage, &inner.dir, Some(&manifest)) {
            Ok(removed) => report.files_removed = removed,
            Err(e) => report.cleanup_error = Some(e.to_string()),
        }
        tracing::info!(
            dir = %inner.dir.display(),
            seq = report.seq,
            log_start = report.log_start,
            snapshots = report.snapshots_written.len(),
            segments_removed = report.segments_removed.len(),
            bytes_reclaimed = report.bytes_reclaimed,
            archived = inner.archive,
            skipped = ?report.skipped,
            "compacted"
        );
        if let Some(e) = &report.cleanup_error {
            tracing::warn!(dir = %inner.dir.display(), error = %e, "compaction committed; its cleanup failed (the next open finishes it)");
        }
        Ok(report)
    }

    /// Checks everything: every checksum of every segment, sequence continuity and the hash
    /// chain (the log's `verify`), the MANIFEST, every snapshot's checksum and chain value, and
    /// that each snapshot of a registered projection equals the replay that should produce it
    /// (from the previous snapshot, or the log start). Problems are listed, not returned as
    /// errors.
    ///
    /// # Errors
    /// Only when the log cannot be read at all.
    pub fn verify(&self) -> Result<VerifyReport> {
        let inner = self.inner();
        let log = &inner.log;
        let checked = match inner.progress.as_deref() {
            Some(p) => {
                p.begin("verify", log.first_seq(), log.last_seq());
                log.verify_reporting(&mut |seq| p.reached(seq))?
            }
            None => log.verify()?,
        };
        let mut report = VerifyReport { log: checked, ..VerifyReport::default() };
        report.problems.clone_from(&report.log.problems);
        let manifest_path = inner.dir.join(annal_compactor::MANIFEST_FILE);
        let problem =
            |file: PathBuf, seq: u64, reason: String| Problem { file, offset: 0, seq, reason };
        let manifest = match Manifest::read(inner.storage.as_ref(), &inner.dir) {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(problem(manifest_path, 0, e.to_string()));
                return Ok(report);
            }
        };
        let Some(manifest) = manifest else { return Ok(report) };
        if manifest.log_start > log.first_seq().max(1) && manifest.log_start > log.last_seq() + 1 {
            report.problems.push(problem(
                manifest_path.clone(),
                manifest.log_start,
                format!(
                    "the MANIFEST's log start {} lies past the log's last sequence {}",
                    manifest.log_start,
                    log.last_seq()
                ),
            ));
        }
        if log.first_seq() > manifest.log_start.max(1) {
            report.problems.push(problem(
                manifest_path,
                manifest.log_start,
                format!(
                    "the log starts at {} but the MANIFEST's log start is {}: segments are missing",
                    log.first_seq(),
                    manifest.log_start
                ),
            ));
        }
        let live = inner.live.lock();
        for r in &manifest.snapshots {
            let path = snapshot_path(&inner.dir, &r.projection, r.seq);
            report.snapshots_checked += 1;
            let snap = match read_snapshot(inner.storage.as_ref(), &inner.dir, r) {
                Ok(s) => s,
                Err(e) => {
                    report.problems.push(problem(path, r.seq, e.to_string()));
                    continue;
                }
            };
            if r.seq >= log.first_seq().saturating_sub(1) && r.seq <= log.last_seq() {
                match log.chain_at(r.seq) {
                    Ok(chain) if chain == snap.chain => {}
                    Ok(_) => report.problems.push(problem(
                        path.clone(),
                        r.seq,
                        "chain value differs from the log's".into(),
                    )),
                    Err(e) => report.problems.push(problem(path.clone(), r.seq, e.to_string())),
                }
            }
            let slot = live.slots.iter().find(|s| {
                s.live.name() == r.projection && s.live.schema_version() == r.schema_version
            });
            let Some(slot) = slot else { continue };
            let previous = match r.seq.checked_sub(1) {
                Some(below) => {
                    manifest.newest_start(&r.projection, r.schema_version, log.first_seq(), below)
                }
                None => None,
            };
            let from = match previous {
                Some(p) => match read_snapshot(inner.storage.as_ref(), &inner.dir, p) {
                    Ok(prev) => Some((p.seq, prev.state)),
                    Err(_) => continue,
                },
                None if log.first_seq() <= 1 => None,
                None => continue,
            };
            report.snapshots_replayed += 1;
            match slot.live.fold_serialized(
                log,
                from.as_ref().map(|(s, b)| (*s, b.as_slice())),
                r.seq,
            ) {
                Ok(bytes) if bytes == snap.state => {}
                Ok(_) => report.problems.push(problem(
                    path,
                    r.seq,
                    format!(
                        "state differs from the replay of {} up to sequence {}",
                        r.projection, r.seq
                    ),
                )),
                Err(reason) => report.problems.push(problem(path, r.seq, reason)),
            }
        }
        Ok(report)
    }
}
