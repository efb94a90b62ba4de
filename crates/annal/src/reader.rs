//! A read-only view of a journal's directory: it takes no lock and modifies nothing, so it
//! works while another process writes (the CLI's reads use it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal_compactor::{Manifest, SnapshotRef};
use annal_projection::{Projection, Until};
use annal_storage::{OsStorage, Storage};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::read::{Events, Query};

/// What a journal's directory holds, as [`JournalReader::summary`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The log: segments in `wal/` and `archive/`, range, chain head, lock holder.
    pub log: annal_wal::Summary,
    /// The MANIFEST's log start (1 without a MANIFEST).
    pub log_start: u64,
    /// The MANIFEST's generation (0 without one).
    pub generation: u64,
    /// The snapshots the MANIFEST names.
    pub snapshots: Vec<SnapshotRef>,
}

/// Records read from a journal's directory; see [`JournalReader::records`]. After an error it
/// yields nothing more.
#[derive(Debug)]
pub struct Records {
    inner: annal_wal::Reader,
}

impl Iterator for Records {
    type Item = Result<annal_wal::Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| r.map_err(Error::from))
    }
}

/// A record with the hash-chain values before and after it; see [`JournalReader::chained`].
#[derive(Debug, Clone)]
pub struct Chained {
    /// The record.
    pub record: annal_wal::Record,
    /// The chain value before it.
    pub prev: annal_wal::ChainValue,
    /// The chain value after it.
    pub chain: annal_wal::ChainValue,
}

/// Records with their chain values; see [`JournalReader::chained`].
#[derive(Debug)]
pub struct ChainedRecords {
    records: annal_wal::Reader,
    chain: annal_wal::ChainValue,
    from: u64,
}

impl ChainedRecords {
    /// The chain value after the last record read (yielded, or skipped below `from`).
    #[must_use]
    pub fn head(&self) -> annal_wal::ChainValue {
        self.chain
    }
}

impl Iterator for ChainedRecords {
    type Item = Result<Chained>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let record = match self.records.next()? {
                Ok(record) => record,
                Err(e) => return Some(Err(e.into())),
            };
            let prev = self.chain;
            self.chain = annal_wal::chain_next(&prev, record.seq, record.ts, &record.payload);
            if record.seq >= self.from {
                return Some(Ok(Chained { record, prev, chain: self.chain }));
            }
        }
    }
}

/// How many times a directory reader's replay is taken again when a compaction changed the
/// MANIFEST under it.
const REPLAY_ATTEMPTS: u32 = 5;

/// A read-only view of the journal in a directory. Sees the complete, valid events on disk
/// (a writer's unsynced or in-flight appends may or may not be there yet).
#[derive(Debug, Clone)]
pub struct JournalReader {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    progress: crate::progress::Observer,
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
    /// `dir` holds no journal; `WrongKind` when it holds a raw `annal_wal::Log`.
    pub fn open_with(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        annal_wal::Reader::open(Arc::clone(&storage), &dir, 1)?;
        annal_wal::check_store_kind(storage.as_ref(), &dir, annal_wal::StoreKind::Journal)?;
        Ok(Self { storage, dir, progress: None })
    }

    /// The checkpoints the journal wrote into `DIR/checkpoints/` (see
    /// [`JournalOptions::checkpoints`](crate::JournalOptions::checkpoints)), oldest first.
    ///
    /// # Errors
    /// The directory cannot be listed or a file read.
    pub fn written_checkpoints(&self) -> Result<Vec<crate::WrittenCheckpoint>> {
        crate::checkpoints::written(self.storage.as_ref(), &self.dir)
    }

    /// Tells `progress` how far replays (`"replay"`) got.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn crate::Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The file system it reads.
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The MANIFEST, if the journal was ever compacted.
    ///
    /// # Errors
    /// The MANIFEST is damaged or unreadable; it is missing though `wal/` starts past sequence 1
    /// (only a compaction truncates the log, and it commits a MANIFEST first).
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        let manifest = self.read_manifest()?;
        if manifest.is_some() {
            return Ok(manifest);
        }
        // Snapshot files alone prove nothing: a compaction that a crash stopped before its
        // commit leaves them behind.
        let log_first =
            annal_wal::DirView::open(Arc::clone(&self.storage), &self.dir)?.log_first()?;
        if log_first > 1 {
            return Err(Error::Compactor(annal_compactor::Error::Corrupt {
                file: self.dir.join(annal_compactor::MANIFEST_FILE),
                offset: 0,
                reason: format!(
                    "missing, but wal/ starts at sequence {log_first}: the store was compacted, \
                     so the MANIFEST that records its log start and snapshots is lost (`annal \
                     recover` rebuilds it)"
                ),
            }));
        }
        Ok(None)
    }

    /// The MANIFEST as it is on disk (`None`: there is none).
    fn read_manifest(&self) -> Result<Option<Manifest>> {
        Ok(Manifest::read(self.storage.as_ref(), &self.dir)?)
    }

    /// The directory's log reader from `from` (0: the earliest held), through `archive/` below
    /// the log start; a segment missing at or above the MANIFEST's log start is corruption.
    fn log_reader(&self, from: u64) -> Result<annal_wal::Reader> {
        let log_start = self.read_manifest()?.map_or(1, |m| m.log_start.max(1));
        let reader = annal_wal::Reader::open(Arc::clone(&self.storage), &self.dir, from)?;
        let (storage, dir) = (Arc::clone(&self.storage), self.dir.clone());
        let refresh = move || {
            Manifest::read(storage.as_ref(), &dir).ok().map(|m| m.map_or(1, |m| m.log_start))
        };
        Ok(reader.expect_start_from(log_start, refresh))
    }

    /// The stored records from sequence `from` on (0: the earliest held), through `archive/`
    /// below the log start, gapless, each read the way every reader reads them: damage, or a
    /// segment missing at or above the MANIFEST's log start, is an error naming the file,
    /// offset and sequence number, never an early end.
    ///
    /// # Errors
    /// The MANIFEST is damaged; the log cannot be read.
    pub fn records(&self, from: u64) -> Result<Records> {
        Ok(Records { inner: self.log_reader(from)? })
    }

    /// The records from `from` on (0: the earliest held) with the hash-chain values before and
    /// after each (`chain = blake3(prev || seq || ts || payload)`), for an audit export: the
    /// chain is computed from the header of the segment that holds `from`.
    ///
    /// # Errors
    /// As [`JournalReader::records`]; a damaged segment header.
    pub fn chained(&self, from: u64) -> Result<ChainedRecords> {
        let view = annal_wal::DirView::open(Arc::clone(&self.storage), &self.dir)?;
        let (start, chain) = view.chain_start(from)?;
        Ok(ChainedRecords { records: self.log_reader(start)?, chain, from: from.max(start) })
    }

    /// The segments (in the log and the archive), the log's range and chain head, and the
    /// writer lock's holder, checked as every reader checks them; with the MANIFEST's log
    /// start.
    ///
    /// # Errors
    /// Damage (a missing segment, a damaged footer, damage in the active segment, a MANIFEST
    /// whose log start no segment holds); I/O errors.
    pub fn summary(&self) -> Result<Summary> {
        let log = annal_wal::DirView::open(Arc::clone(&self.storage), &self.dir)?.summary()?;
        let manifest = self.manifest()?;
        let log_start = manifest.as_ref().map_or(1, |m| m.log_start.max(1));
        if (log.first_seq > log_start && !log.segments.is_empty())
            || (log_start > 1 && log.segments.is_empty())
        {
            // Not a later start: the segment holding the log start is gone. The reader names it.
            self.log_reader(0)?.next().transpose()?;
            return Err(Error::Wal(annal_wal::Error::Corrupt {
                file: self.dir.join(annal_wal::WAL_DIR),
                offset: 0,
                seq: log_start,
                reason: format!(
                    "the MANIFEST's log start is {log_start} but no segment holds it: segments are missing"
                ),
            }));
        }
        Ok(Summary {
            log,
            log_start,
            generation: manifest.as_ref().map_or(0, |m| m.generation),
            snapshots: manifest.map(|m| m.snapshots).unwrap_or_default(),
        })
    }

    /// The file a snapshot the MANIFEST names is stored in.
    #[must_use]
    pub fn snapshot_path(&self, snapshot: &SnapshotRef) -> PathBuf {
        annal_compactor::snapshot_path(&self.dir, &snapshot.projection, snapshot.seq)
    }

    /// The first sequence number the log holds (1 unless compaction truncated it).
    ///
    /// # Errors
    /// The log directory cannot be listed.
    pub fn first_seq(&self) -> Result<u64> {
        Ok(annal_wal::DirView::open(Arc::clone(&self.storage), &self.dir)?.log_first()?)
    }

    /// Reads events matching `query`, decoded as `E` (`serde_json::Value` for any event).
    /// Reaches into `archive/` for sequence numbers below the log start, when there is one.
    pub fn read<E: DeserializeOwned + 'static>(&self, query: Query) -> Result<Events<E>> {
        let records = self.log_reader(query.from)?;
        Ok(Events::new(records, query))
    }

    /// Like [`JournalReader::read`], waiting for new events instead of ending.
    pub fn follow<E: DeserializeOwned + 'static>(&self, query: Query) -> Result<Events<E>> {
        let records = self.log_reader(query.from)?;
        Ok(Events::following(records.follow(), query))
    }

    /// Replays `P` up to `until`, from the newest usable snapshot at or below the target, or
    /// from the start of the log (through `archive/` when the log was truncated). Returns the
    /// state and the sequence number it stands at. The same replay as
    /// [`Journal::replay`](crate::Journal::replay).
    ///
    /// # Errors
    /// `Invalid` naming the earliest reachable sequence when the target cannot be reached, or
    /// lies past the end; snapshot, read and decode errors.
    pub fn replay<P: Projection>(&self, until: Until) -> Result<(P::State, u64)> {
        // A compaction in another process may commit a new MANIFEST and remove the snapshot
        // or segments this replay chose: when the MANIFEST changed meanwhile, the replay is
        // taken again from the new one, a few times; a failure under an unchanged MANIFEST is
        // the answer.
        let mut attempts = 0;
        loop {
            let manifest = self.manifest()?;
            let last = match &self.progress {
                // Only for the progress: damage past the target must not fail the replay.
                Some(_) => self.summary().map_or(u64::MAX, |s| s.log.last_seq),
                None => 0,
            };
            let result = crate::replay::replay::<P>(
                &crate::replay::Source {
                    storage: self.storage.as_ref(),
                    dir: &self.dir,
                    manifest: manifest.as_ref(),
                    log_first: self.first_seq()?,
                    last: None,
                    records: &|from| self.log_reader(from),
                    progress: self.progress.as_deref().map(|p| (p, last)),
                },
                until,
            );
            attempts += 1;
            match result {
                Err(_) if attempts < REPLAY_ATTEMPTS && self.read_manifest()? != manifest => {}
                other => return other,
            }
        }
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
