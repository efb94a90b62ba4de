//! The explicit repair behind `annal recover`: it only ever improves a store.
//!
//! It plans under the writer lock before it changes anything, then either refuses (nothing
//! moved) or leaves a store that opens, appends and verifies:
//! - **Damage the snapshots cover** (a bad frame or segment at or below the newest intact
//!   snapshot set): the log restarts just past that snapshot. Its intact frames from there on
//!   are rewritten into a new sealed segment (or a later segment already starts there), the
//!   MANIFEST moves the log start up, and the older segments go to `quarantine/`. Every event
//!   from the snapshot on, and the state it holds, stays.
//! - **Damage past every snapshot**: the log is cut at the first bad frame (the rest goes to
//!   `quarantine/`, where `annal salvage` reads it back), and the MANIFEST drops the snapshots
//!   that lay past the cut. If that would leave the stream index with nothing to rebuild from,
//!   it refuses instead.
//! - **A damaged segment header whose chain value the log knows** (the log's start, or the
//!   intact records before it): the segment is rewritten from its intact frames, and nothing is
//!   lost.
//! - **A damaged or missing MANIFEST or snapshot**: the MANIFEST is rebuilt from the snapshot
//!   files that are intact and belong to the log (their chain values match it), whenever the
//!   log can rebuild what the rest covered. When no snapshot of the stream index is left before
//!   a truncated log, the snapshots are rebuilt from `archive/` if it reaches back to sequence
//!   1; otherwise it refuses.
//!
//! Every file it takes out (segments, snapshots, a damaged MANIFEST) is copied into
//! `quarantine/` with a note before it is removed or replaced. Each step leaves a store that a
//! later run (or a normal open) picks up from, so a crash in the middle loses nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal_compactor::{MANIFEST_FILE, Manifest, SNAPSHOTS_DIR, Snapshot, SnapshotRef};
use annal_projection::{Projection, StreamIndex};
use annal_storage::{OsStorage, Storage};
use annal_wal::format::SEGMENT_HEADER_BYTES;
use annal_wal::salvage::{self, Damage, LogScan, SegmentImage};
use annal_wal::{ChainValue, Log, RecoveryMode, RecoveryReport, StoreKind, quarantine};

use crate::error::{Error, Result};
use crate::journal::{Journal, JournalOptions};

mod manifest;
mod restart;
mod salvaged;

use manifest::{candidate, commit, drop_aside, remove, snapshot_files, why_rewrite};
use restart::{restart, rewrite_header};
pub use salvaged::{Salvaged, salvage};

/// What [`JournalOptions::repair`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The damage the snapshots covered, and where the log restarts.
    pub restart: Option<Restart>,
    /// What the log's own repair did on its open: a torn tail or a cut at the first bad frame
    /// past every snapshot, with the files it saved in quarantine.
    pub log: RecoveryReport,
    /// Why the MANIFEST was rewritten, if it was (missing, damaged, or naming snapshots that
    /// are damaged, missing, or do not belong to what the log now holds).
    pub manifest_rewritten: Option<String>,
    /// Snapshots taken out of use, each with the reason.
    pub snapshots_dropped: Vec<(PathBuf, String)>,
    /// Projections (other than the stream index) left with no snapshot the log can continue:
    /// their state cannot be rebuilt from what the store holds, and reading it fails, naming
    /// why. The journal itself works. Each with the reason.
    pub projections_lost: Vec<(String, String)>,
    /// Segments whose damaged header was rewritten from the chain value the log holds before
    /// them (their frames kept; the damaged file copied into quarantine first).
    pub headers_rewritten: Vec<PathBuf>,
    /// Snapshots rebuilt from `archive/` (which reached back to sequence 1) because none the log
    /// could continue from was left.
    pub snapshots_rebuilt: Vec<PathBuf>,
    /// Files copied into `quarantine/` by this repair (the log's own cuts are in `log`).
    pub quarantined: Vec<PathBuf>,
    /// The last sequence number after the repair.
    pub last_seq: u64,
}

/// A restart of the log past damage that an intact snapshot set covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// The first damage in the log.
    pub damage: Damage,
    /// The sequence number of the snapshot set the log continues from.
    pub snapshot_seq: u64,
    /// The new log start (`snapshot_seq + 1`).
    pub log_start: u64,
    /// The segment written with the intact frames from the log start on, if one had to be.
    pub rewritten: Option<PathBuf>,
    /// Segments taken out of `wal/` (copied to quarantine first).
    pub removed_segments: Vec<PathBuf>,
}

/// A snapshot file the repair considered: what names it and whether it can be used.
#[derive(Debug, Clone)]
struct Candidate {
    r: SnapshotRef,
    path: PathBuf,
    /// The chain value it records, when the file is intact and is what the MANIFEST names.
    chain: Option<ChainValue>,
    /// Why it cannot be used, when it cannot.
    bad: Option<String>,
}

/// What the MANIFEST was found to be.
enum Found {
    Intact(Manifest),
    Missing,
    Damaged(String),
}

impl JournalOptions {
    /// Repairs the store in `dir` (see the module documentation of what it does and refuses),
    /// then opens it with these options. `annal recover` is this call.
    ///
    /// # Errors
    /// `Unrepairable` (before anything was changed) when the damage cannot be repaired without
    /// losing what the store must keep, naming the damage and what to do; `Locked`; I/O errors.
    pub fn repair(self, dir: impl AsRef<Path>) -> Result<(Journal, RepairReport)> {
        let dir = dir.as_ref();
        let storage: Arc<dyn Storage> =
            self.storage.clone().unwrap_or_else(|| Arc::new(OsStorage::new()));
        let mut report = RepairReport::default();
        {
            // Before the lock: a store of another kind is left exactly as it is.
            annal_wal::check_store_kind(storage.as_ref(), dir, self.wal.kind)?;
            let _lock = annal_wal::lock_store(storage.as_ref(), dir, self.wal.lock_timeout)?;
            plan_and_apply(&self, &storage, dir, &mut report)?;
        }
        // The log's own repair: a torn tail, and any damage past what a snapshot covers.
        let wal = annal_wal::Options {
            recovery: RecoveryMode::TruncateAtCorruption,
            log_start: Manifest::read(storage.as_ref(), dir)?.map_or(0, |m| m.log_start),
            ..self.wal.clone()
        };
        let log = Log::open_with(Arc::clone(&storage), dir, wal)?;
        report.log = log.recovery_report().clone();
        if let Some(m) = Manifest::read(storage.as_ref(), dir)? {
            // A cut at damage past the restart: snapshots past the new end describe events the
            // log no longer holds.
            let last = log.last_seq();
            if last + 1 < m.log_start {
                // The plan refuses every cut that would reach below the log start; this is a
                // last guard, before the MANIFEST is touched.
                return Err(Error::Unrepairable(format!(
                    "the log's repair left it ending at sequence {last}, below the recorded log start {}; the \
                     MANIFEST and snapshots were left as they are and the cut files are in quarantine/",
                    m.log_start
                )));
            }
            if m.snapshots.iter().any(|s| s.seq > last) {
                let why = format!("the log was cut after sequence {last}");
                let (keep, drop_): (Vec<_>, Vec<_>) = m
                    .snapshots
                    .iter()
                    .map(|r| candidate(storage.as_ref(), dir, r))
                    .map(|mut c| {
                        if c.r.seq > last {
                            c.bad = Some(why.clone());
                        }
                        c
                    })
                    .partition(|c| c.r.seq <= last);
                let start = m.log_start.min(last + 1);
                commit(storage.as_ref(), dir, &m, start, keep, drop_, &why, &mut report)?;
            }
        }
        log.close()?;
        let journal = self.open(dir)?;
        report.last_seq = journal.last_seq();
        // Also what an earlier, interrupted repair took out: the report tells every run.
        for (name, seq, why) in journal.failed_projections() {
            if !report.projections_lost.iter().any(|(n, _)| n == name) {
                report
                    .projections_lost
                    .push((name.to_owned(), format!("at sequence {seq}: {why}")));
            }
        }
        report.trace(dir);
        Ok((journal, report))
    }
}

impl RepairReport {
    /// Emits what the repair decided and did as `tracing` events (the log's own recovery
    /// traced its part when it opened).
    fn trace(&self, dir: &Path) {
        let dir = dir.display();
        if let Some(r) = &self.restart {
            tracing::warn!(
                %dir, damaged = %r.damage.file.display(), offset = r.damage.offset,
                seq = r.damage.seq, reason = %r.damage.reason, snapshot_seq = r.snapshot_seq,
                log_start = r.log_start, removed_segments = r.removed_segments.len(),
                "restarted the log from the snapshots before damage"
            );
        }
        if let Some(why) = &self.manifest_rewritten {
            tracing::warn!(%dir, reason = %why, "rewrote the MANIFEST");
        }
        for (path, why) in &self.snapshots_dropped {
            tracing::warn!(%dir, file = %path.display(), reason = %why, "dropped a snapshot");
        }
        for (name, why) in &self.projections_lost {
            tracing::warn!(%dir, projection = %name, reason = %why, "a projection has no usable state");
        }
        for path in &self.headers_rewritten {
            tracing::warn!(%dir, file = %path.display(), "rewrote a damaged segment header from its intact frames");
        }
        for path in &self.snapshots_rebuilt {
            tracing::info!(%dir, file = %path.display(), "rebuilt a snapshot from archive/");
        }
        for path in &self.quarantined {
            tracing::warn!(%dir, file = %path.display(), "moved to quarantine");
        }
        tracing::info!(%dir, last_seq = self.last_seq, "repaired");
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Wal(annal_wal::Error::Io { op, path: path.to_path_buf(), source })
}

fn plan_and_apply(
    options: &JournalOptions,
    storage: &Arc<dyn Storage>,
    dir: &Path,
    report: &mut RepairReport,
) -> Result<()> {
    let found = match Manifest::read(storage.as_ref(), dir) {
        Ok(Some(m)) => Found::Intact(m),
        Ok(None) => Found::Missing,
        Err(annal_compactor::Error::Corrupt { reason, offset, .. }) => {
            Found::Damaged(format!("at byte offset {offset}: {reason}"))
        }
        Err(e) => return Err(e.into()),
    };
    let mut cands: Vec<Candidate> = match &found {
        Found::Intact(m) => {
            m.snapshots.iter().map(|r| candidate(storage.as_ref(), dir, r)).collect()
        }
        Found::Missing | Found::Damaged(_) => snapshot_files(storage.as_ref(), dir)?,
    };
    let seqs: BTreeSet<u64> = cands.iter().map(|c| c.r.seq).collect();
    let old = match &found {
        Found::Intact(m) => Some(m.clone()),
        Found::Missing | Found::Damaged(_) => None,
    };
    let log_start = old.as_ref().map_or(0, |m| m.log_start);
    let mut scan = salvage::scan_log(storage, dir, log_start, &seqs)?;
    let first = scan.first_seq();
    if log_start > 1 && (scan.segments.is_empty() || log_start < first) {
        // Segments from the recorded log start on are gone: damage before the first one held.
        scan.damage = Some(Damage {
            file: dir.join(annal_wal::WAL_DIR),
            offset: 0,
            seq: log_start,
            reason: if scan.segments.is_empty() {
                format!(
                    "no segment, but the log is recorded to start at sequence {log_start}: segments are missing"
                )
            } else {
                format!(
                    "the log is recorded to start at sequence {log_start} but its first segment starts at {first}: \
                     segments are missing"
                )
            },
        });
    } else if log_start > 1 && scan.damage.is_none() && scan.last_good + 1 < log_start {
        // Only a leftover below the log start is left: the segments from it on are gone.
        scan.damage = Some(Damage {
            file: dir.join(annal_wal::WAL_DIR),
            offset: 0,
            seq: scan.last_good + 1,
            reason: format!(
                "the log ends at sequence {}, below its recorded start {log_start}: segments are missing",
                scan.last_good
            ),
        });
    } else if old.is_none()
        && scan.segments.is_empty()
        && cands.iter().any(|c| c.bad.is_none() && c.r.projection == StreamIndex::NAME)
    {
        // Snapshots stand for events no segment holds, and no MANIFEST says where the log
        // started: nothing can tell what to rebuild.
        return Err(Error::Unrepairable(format!(
            "{} holds no segment, the MANIFEST is {}, and snapshots of the stream index stand for events the log \
             no longer holds. Nothing was changed: put wal/ (and the MANIFEST) back from a backup",
            dir.join(annal_wal::WAL_DIR).display(),
            if matches!(found, Found::Missing) { "missing" } else { "damaged" }
        )));
    }
    // Snapshots the log can check: their chain value must be the log's at their sequence.
    for c in cands.iter_mut().filter(|c| c.bad.is_none()) {
        if c.r.seq + 1 < first {
            c.bad = Some(format!(
                "it stands at sequence {} and the log starts at {first}: nothing can continue it",
                c.r.seq
            ));
        } else if let Some(chain) = scan.chains.get(&c.r.seq) {
            if c.chain != Some(*chain) {
                c.bad = Some(format!(
                    "its chain value differs from the log's at sequence {}: it does not belong to this log",
                    c.r.seq
                ));
            }
        } else if scan.damage.is_none() {
            c.bad = Some(format!(
                "it stands at sequence {} but the log ends at {}",
                c.r.seq, scan.last_good
            ));
        }
    }
    let Some(damage) = scan.damage.clone() else {
        if first > 1
            && !cands.iter().any(|c| c.bad.is_none() && c.r.projection == StreamIndex::NAME)
        {
            rebuild_from_archive(options, storage, dir, &scan, &mut cands, report)?;
        }
        return repair_manifest(
            storage.as_ref(),
            dir,
            &found,
            first,
            scan.last_good,
            cands,
            report,
        );
    };
    if let Some(undo) = rewrite_header(storage, dir, &scan, &damage, report)? {
        // The damage is gone; plan again for what lies past it. A refusal there puts the
        // segment back: a refused repair changes nothing.
        return match plan_and_apply(options, storage, dir, report) {
            Err(Error::Unrepairable(why)) => {
                undo.apply(storage.as_ref(), report)?;
                Err(Error::Unrepairable(why))
            }
            other => other,
        };
    }
    if restart(storage, dir, &scan, &damage, old.as_ref(), &mut cands, report)? {
        return Ok(());
    }
    // No snapshot covers the damage: the log's repair cuts it there. Snapshots past the cut are
    // taken out first, and the stream index must be left something to rebuild from.
    let refuse = |what: &str| {
        Error::Unrepairable(format!(
            "damage in {} at byte offset {} (sequence {}): {}; {what}. Nothing was changed: restore the damaged \
             file (or the snapshots and MANIFEST) from a backup",
            damage.file.display(),
            damage.offset,
            damage.seq,
            damage.reason
        ))
    };
    // A cut must leave the log's first segment: the damage lies past its header. (With the log
    // starting at 1 a damaged first header is rewritten by the restart above.)
    let header_damage = damage.offset < SEGMENT_HEADER_BYTES as u64;
    if damage.seq < first
        || scan.segments.is_empty()
        || (header_damage && damage.seq == first)
        || old.as_ref().is_some_and(|m| damage.seq < m.log_start)
    {
        return Err(refuse(&format!(
            "no intact snapshot of the stream index stands at sequence {} for the log to continue from",
            damage.seq.max(first).max(1) - 1
        )));
    }
    for c in cands.iter_mut().filter(|c| c.bad.is_none() && c.r.seq >= damage.seq) {
        c.bad = Some(format!("it stands past the damage at sequence {}", damage.seq));
    }
    if first > 1 && !cands.iter().any(|c| c.bad.is_none() && c.r.projection == StreamIndex::NAME) {
        rebuild_from_archive(options, storage, dir, &scan, &mut cands, report)?;
    }
    if first > 1 && !cands.iter().any(|c| c.bad.is_none() && c.r.projection == StreamIndex::NAME) {
        return Err(refuse(&format!(
            "the log starts at sequence {first} and no intact snapshot of the stream index covers the damage or \
             stands before it, so cutting the log there would leave nothing to rebuild the journal from"
        )));
    }
    let (keep, drop_): (Vec<_>, Vec<_>) = cands.into_iter().partition(|c| c.bad.is_none());
    match &old {
        Some(_) if drop_.is_empty() && report.snapshots_rebuilt.is_empty() => Ok(()),
        None if keep.is_empty() => drop_aside(storage.as_ref(), dir, &found, drop_, report),
        _ => {
            let base = old.clone().unwrap_or_default();
            let start = old.as_ref().map_or(first, |m| m.log_start.max(first)).min(damage.seq);
            let why = why_rewrite(&found, "snapshots past the damage");
            commit(storage.as_ref(), dir, &base, start, keep, drop_, &why, report)
        }
    }
}

/// When no usable snapshot of the stream index stands before the log's first record: rebuilds
/// the snapshots of every registered projection at `first - 1` from `archive/`, if it reaches
/// back to sequence 1 in an unbroken chain that ends where the log's first segment begins. The
/// rebuilt snapshots become usable candidates (a file in their place is copied to quarantine
/// first, and the candidate it held is taken out). Nothing happens when the archive cannot.
fn rebuild_from_archive(
    options: &JournalOptions,
    storage: &Arc<dyn Storage>,
    dir: &Path,
    scan: &LogScan,
    cands: &mut Vec<Candidate>,
    report: &mut RepairReport,
) -> Result<()> {
    let (Some(first), Some(chain_at)) =
        (scan.segments.first(), scan.segments.first().and_then(|f| f.chain_before))
    else {
        return Ok(());
    };
    let s = first.first_seq - 1;
    let mut lives = options.lives();
    let mut failed = vec![false; lives.len()];
    let Ok(reader) = annal_wal::Reader::open(Arc::clone(storage), dir, 1) else { return Ok(()) };
    let mut chain = annal_wal::CHAIN_START;
    let mut at = 0;
    for record in reader {
        let Ok(record) = record else { return Ok(()) };
        if record.seq > s {
            break;
        }
        if record.seq != at + 1 {
            return Ok(());
        }
        at = record.seq;
        chain = annal_wal::chain_next(&chain, record.seq, record.ts, &record.payload);
        let Ok(raw) = annal_projection::RawEvent::parse(record.seq, record.ts, &record.payload)
        else {
            return Ok(());
        };
        for (live, failed) in lives.iter_mut().zip(&mut failed) {
            *failed = *failed || live.apply(&raw).is_err();
        }
    }
    if at != s || chain != chain_at || failed[0] {
        return Ok(());
    }
    for (live, _) in lives.iter().zip(&failed).filter(|(_, failed)| !**failed) {
        // A usable snapshot of this projection at `s` stays as it is.
        if cands.iter().any(|c| c.bad.is_none() && c.r.projection == live.name() && c.r.seq == s) {
            continue;
        }
        let Ok(state) = live.save() else { continue };
        let path = annal_compactor::snapshot_path(dir, live.name(), s);
        if storage.exists(&path).map_err(io("stat", &path))? {
            let note = "snapshot replaced by one rebuilt from archive/ by repair";
            report.quarantined.push(quarantine::copy(storage.as_ref(), dir, &path, note)?);
        }
        let snap = Snapshot {
            projection: live.name().to_owned(),
            schema_version: live.schema_version(),
            seq: s,
            chain,
            state,
        };
        let (path, crc) = snap.write(storage.as_ref(), dir)?;
        for c in cands.iter_mut().filter(|c| c.r.projection == live.name() && c.r.seq == s) {
            c.bad.get_or_insert_with(|| "replaced by a snapshot rebuilt from archive/".into());
        }
        // The file now holds the rebuilt snapshot: the old candidate must not remove it.
        cands.retain(|c| !(c.r.projection == live.name() && c.r.seq == s));
        cands.push(Candidate {
            r: SnapshotRef {
                projection: live.name().to_owned(),
                schema_version: live.schema_version(),
                seq: s,
                crc,
            },
            path: path.clone(),
            chain: Some(chain),
            bad: None,
        });
        report.snapshots_rebuilt.push(path);
    }
    Ok(())
}

/// The log is intact: rebuilds the MANIFEST when it is missing, damaged, or names snapshots
/// that cannot be used, from the snapshots that can.
fn repair_manifest(
    storage: &dyn Storage,
    dir: &Path,
    found: &Found,
    first: u64,
    last: u64,
    cands: Vec<Candidate>,
    report: &mut RepairReport,
) -> Result<()> {
    let (keep, drop_): (Vec<_>, Vec<_>) = cands.into_iter().partition(|c| c.bad.is_none());
    if matches!(found, Found::Intact(_)) && drop_.is_empty() && report.snapshots_rebuilt.is_empty()
    {
        return Ok(());
    }
    if first > 1 && !keep.iter().any(|c| c.r.projection == StreamIndex::NAME) {
        let what = match found {
            Found::Intact(_) => {
                "the MANIFEST names no usable snapshot of the stream index".to_owned()
            }
            Found::Missing => "the MANIFEST is missing".to_owned(),
            Found::Damaged(why) => format!("the MANIFEST is damaged ({why})"),
        };
        return Err(Error::Unrepairable(format!(
            "{what}, the log starts at sequence {first}, and no intact snapshot of the stream index that belongs to \
             the log stands at {} or later, so the journal cannot be rebuilt. Nothing was changed: put the MANIFEST \
             and snapshots back from a backup",
            first - 1
        )));
    }
    if !matches!(found, Found::Intact(_)) && keep.is_empty() {
        // Never compacted (or nothing usable): the log from sequence 1 is the whole journal.
        return drop_aside(storage, dir, found, drop_, report);
    }
    // Without a snapshot of the stream index that covers the recorded log start, the journal is
    // rebuilt from the log's first record (which is then 1): that is the log start.
    let covered = |m: &Manifest| {
        keep.iter().any(|c| c.r.projection == StreamIndex::NAME && c.r.seq + 1 >= m.log_start)
    };
    let (base, start) = match found {
        Found::Intact(m) if covered(m) => (m.clone(), m.log_start.clamp(first, last + 1)),
        Found::Intact(m) => (m.clone(), first),
        Found::Missing | Found::Damaged(_) => (Manifest::default(), first),
    };
    let why = why_rewrite(found, "snapshots that cannot be used");
    commit(storage, dir, &base, start, keep, drop_, &why, report)
}
