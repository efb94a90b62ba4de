//! A read-only view of a journal's directory: it takes no lock and modifies nothing, so it
//! works while another process writes (the CLI's reads use it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal_compactor::Manifest;
use annal_projection::replay::fold_records;
use annal_projection::{Projection, Until};
use annal_storage::{OsStorage, Storage};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::read::{Events, Query};

/// A read-only view of the journal in a directory. Sees the complete, valid events on disk
/// (a writer's unsynced or in-flight appends may or may not be there yet).
#[derive(Debug, Clone)]
pub struct JournalReader {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
}

impl JournalReader {
    /// A reader of the journal in `dir` on the OS file system.
    ///
    /// # Errors
    /// `dir` holds no journal.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(Arc::new(OsStorage::new()), dir)
    }

    /// A reader of the journal in `dir` on `storage`.
    ///
    /// # Errors
    /// `dir` holds no journal.
    pub fn open_with(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        annal_wal::Reader::open(Arc::clone(&storage), &dir, 1)?;
        Ok(Self { storage, dir })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The MANIFEST, if the journal was ever compacted.
    ///
    /// # Errors
    /// The MANIFEST is damaged or unreadable.
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        Ok(Manifest::read(self.storage.as_ref(), &self.dir)?)
    }

    /// The raw records from sequence `from` (0: the earliest held), through `archive/` below
    /// the log start; a segment missing at or above the MANIFEST's log start is corruption.
    ///
    /// # Errors
    /// The MANIFEST is damaged; the log cannot be read.
    pub fn records(&self, from: u64) -> Result<annal_wal::Reader> {
        let log_start = self.manifest()?.map_or(1, |m| m.log_start.max(1));
        let reader = annal_wal::Reader::open(Arc::clone(&self.storage), &self.dir, from)?;
        Ok(reader.expect_start(log_start))
    }

    /// The segments (in the log and the archive), the log's range and chain head, checked as
    /// every reader checks them.
    ///
    /// # Errors
    /// Damage (a missing segment, a damaged footer, damage in the active segment); I/O errors.
    pub fn summary(&self) -> Result<annal_wal::Summary> {
        let summary = annal_wal::DirView::open(Arc::clone(&self.storage), &self.dir)?.summary()?;
        let log_start = self.manifest()?.map_or(1, |m| m.log_start.max(1));
        let wal = self.dir.join(annal_wal::WAL_DIR);
        let wal_empty = !self
            .storage
            .list_dir(&wal)
            .map_err(|e| annal_wal::Error::Io { op: "list", path: wal, source: e })?
            .iter()
            .any(|n| annal_wal::format::parse_segment_file_name(n).is_some());
        if (summary.earliest_seq() > log_start && !summary.segments.is_empty())
            || (log_start > 1 && wal_empty)
        {
            // Not a later start: the segment holding the log start is gone. The reader names it.
            self.records(0)?.next().transpose()?;
        }
        Ok(summary)
    }

    /// The first sequence number the log holds (1 unless compaction truncated it).
    ///
    /// # Errors
    /// The log directory cannot be listed.
    pub fn first_seq(&self) -> Result<u64> {
        let wal = self.dir.join(annal_wal::WAL_DIR);
        let names = self.storage.list_dir(&wal).map_err(|e| annal_wal::Error::Io {
            op: "list",
            path: wal,
            source: e,
        })?;
        Ok(names
            .iter()
            .filter_map(|n| annal_wal::format::parse_segment_file_name(n))
            .min()
            .unwrap_or(1))
    }

    /// Reads events matching `query`, decoded as `E` (`serde_json::Value` for any event).
    /// Reaches into `archive/` for sequence numbers below the log start, when there is one.
    pub fn read<E: DeserializeOwned + 'static>(&self, query: Query) -> Result<Events<E>> {
        let records = self.records(query.from)?;
        Ok(Events::new(records, query))
    }

    /// Like [`JournalReader::read`], waiting for new events instead of ending.
    pub fn follow<E: DeserializeOwned + 'static>(&self, query: Query) -> Result<Events<E>> {
        let records = self.records(query.from)?;
        Ok(Events::following(records.follow(), query))
    }

    /// Replays `P` up to `until`, from the newest usable snapshot at or below the target, or
    /// from the start of the log (through `archive/` when the log was truncated). Returns the
    /// state and the sequence number it stands at.
    ///
    /// # Errors
    /// `Invalid` naming the earliest reachable sequence when the target cannot be reached, or
    /// lies past the end; snapshot, read and decode errors.
    pub fn replay<P: Projection>(&self, until: Until) -> Result<(P::State, u64)> {
        let first = self.first_seq()?;
        let manifest = self.manifest()?;
        let keep = |seq: u64, ts: u64| match until {
            Until::Seq(target) => seq <= target,
            Until::Time(t) => ts <= t,
            Until::End => true,
        };
        // Snapshots usable for this target, newest first.
        let mut candidates: Vec<_> = manifest
            .as_ref()
            .map(|m| {
                m.snapshots_of(P::NAME)
                    .filter(|s| {
                        s.schema_version == P::SCHEMA_VERSION && s.seq >= first.saturating_sub(1)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort_by_key(|s| std::cmp::Reverse(s.seq));
        let mut start = None;
        for r in candidates {
            let fits = match until {
                Until::Seq(target) => r.seq <= target,
                Until::End => true,
                // The snapshot fits if its own last event is not after the time.
                Until::Time(t) => {
                    // A snapshot whose last event is no longer held (it sits right below the log
                    // start) cannot be placed in time: it does not fit.
                    let mut at =
                        annal_wal::Reader::open(Arc::clone(&self.storage), &self.dir, r.seq)?;
                    match at.next() {
                        Some(Ok(rec)) => rec.seq == r.seq && rec.ts <= t,
                        Some(Err(annal_wal::Error::BeforeStart { .. })) | None => false,
                        Some(Err(e)) => return Err(e.into()),
                    }
                }
            };
            if fits {
                let snap = crate::compact::read_snapshot(self.storage.as_ref(), &self.dir, &r)?;
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
        let start = start.unwrap_or_default();
        let from = start.0 + 1;
        if start.0 == 0
            && first > 1
            && !self.storage.exists(&self.dir.join(annal_wal::ARCHIVE_DIR)).unwrap_or(false)
        {
            let earliest = manifest.as_ref().and_then(|m| {
                m.snapshots_of(P::NAME)
                    .filter(|s| s.seq >= first.saturating_sub(1))
                    .map(|s| s.seq)
                    .min()
            });
            return Err(Error::Invalid(match earliest {
                Some(e) => format!(
                    "the target is before the earliest sequence a replay of {} can reach, {e} (the log starts at {first})",
                    P::NAME
                ),
                None => {
                    format!("no snapshot of {} reaches the log, which starts at {first}", P::NAME)
                }
            }));
        }
        let (state, at) =
            fold_records::<P>(self.records(from)?, start, crate::compact::last_of(until), keep)?;
        if let Until::Seq(target) = until
            && at != target
        {
            return Err(Error::Invalid(format!(
                "sequence {target} is past the end of the journal (last: {at})"
            )));
        }
        Ok((state, at))
    }
}

impl JournalReader {
    /// The check of `annal verify --read-only`: every frame of every segment in `wal/` (read
    /// the way every reader reads them), the hash chain across segments, the MANIFEST, and each
    /// snapshot's checksum and chain value against the log. It takes no lock, so it works on a
    /// read-only copy or beside a running writer (whose unsynced appends it may not see).
    /// Unlike [`Journal::verify`](crate::Journal::verify) it does not replay projections to
    /// compare them with their snapshots, and it cannot tell a torn tail from an append under
    /// way, so it reports neither.
    ///
    /// # Errors
    /// Only when the store cannot be read at all (I/O errors).
    pub fn verify(&self) -> Result<crate::VerifyReport> {
        use annal_wal::Problem;
        let mut report = crate::VerifyReport::default();
        let manifest_path = self.dir.join(annal_compactor::MANIFEST_FILE);
        let manifest = match self.manifest() {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(Problem {
                    file: manifest_path.clone(),
                    offset: 0,
                    seq: 0,
                    reason: e.to_string(),
                });
                None
            }
        };
        let seqs = manifest.iter().flat_map(|m| m.snapshots.iter().map(|s| s.seq)).collect();
        let log_start = manifest.as_ref().map_or(0, |m| m.log_start);
        let scan = annal_wal::salvage::scan_log(&self.storage, &self.dir, log_start, &seqs)?;
        let first = scan.first_seq();
        report.log = annal_wal::VerifyReport {
            segments: scan.segments.len(),
            records: scan.last_good + 1 - first,
            chain_head: scan.chain_head,
            problems: scan
                .damage
                .iter()
                .map(|d| Problem {
                    file: d.file.clone(),
                    offset: d.offset,
                    seq: d.seq,
                    reason: d.reason.clone(),
                })
                .collect(),
        };
        report.problems.extend(report.log.problems.iter().cloned());
        let Some(manifest) = manifest else { return Ok(report) };
        if manifest.log_start > 1 && (manifest.log_start < first || scan.segments.is_empty()) {
            report.problems.push(Problem {
                file: manifest_path.clone(),
                offset: 0,
                seq: manifest.log_start,
                reason: if scan.segments.is_empty() {
                    format!(
                        "wal/ holds no segment but the MANIFEST's log start is {}: segments are missing",
                        manifest.log_start
                    )
                } else {
                    format!(
                        "the log starts at {first} but the MANIFEST's log start is {}: segments are missing",
                        manifest.log_start
                    )
                },
            });
        }
        for r in &manifest.snapshots {
            report.snapshots_checked += 1;
            let path = annal_compactor::snapshot_path(&self.dir, &r.projection, r.seq);
            let problem =
                |reason: String| Problem { file: path.clone(), offset: 0, seq: r.seq, reason };
            match crate::compact::read_snapshot(self.storage.as_ref(), &self.dir, r) {
                Err(e) => report.problems.push(problem(e.to_string())),
                Ok(snap) => match scan.chains.get(&r.seq) {
                    Some(chain) if *chain != snap.chain => {
                        report.problems.push(problem("chain value differs from the log's".into()));
                    }
                    Some(_) => {}
                    None if scan.damage.is_none() && r.seq > scan.last_good => {
                        report.problems.push(problem(format!(
                            "stands past the log's last sequence {}",
                            scan.last_good
                        )))
                    }
                    None => {}
                },
            }
        }
        Ok(report)
    }
}
