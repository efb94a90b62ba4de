//! The `Journal`: opening, appends with expected versions, live state and replay.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use annal_compactor::Manifest;
use annal_projection::envelope::{
    check_stream, encode_data_into, encode_event, encode_event_header, set_version,
};
use annal_projection::replay::Until;
use annal_projection::{Meta, Projection, RawEvent, StreamIndex};
use annal_storage::{OsStorage, Storage};
use annal_wal::{Durability, Log, RecoveryMode, RecoveryReport, StoreKind};
use parking_lot::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::event::{Appended, Expect, NewEvent, TypedEvent};
use crate::live::{Live, LiveSet, Queue, Queued, Registration, registration};

/// Options of [`Journal::open`], as a builder: `Journal::options().projection::<P>().open(dir)`.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub(crate) wal: annal_wal::Options,
    pub(crate) storage: Option<Arc<dyn Storage>>,
    projections: Vec<(TypeId, &'static str, Registration)>,
    keep_snapshots: usize,
    archive: bool,
    progress: crate::progress::Observer,
    checkpoints: Option<crate::checkpoints::Config>,
}

/// Initial capacity of a typed event's payload buffer, besides the stream name: the envelope's
/// fixed fields and a small event's data fit without growing it.
const PAYLOAD_CAPACITY: usize = 256;

/// Snapshots kept per projection by default; the log reaches back to the oldest one kept.
pub const KEEP_SNAPSHOTS_DEFAULT: usize = 10;

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            wal: annal_wal::Options { kind: StoreKind::Journal, ..annal_wal::Options::default() },
            storage: None,
            projections: Vec::new(),
            keep_snapshots: KEEP_SNAPSHOTS_DEFAULT,
            archive: false,
            progress: None,
            checkpoints: None,
        }
    }
}

impl JournalOptions {
    /// A fresh live instance of every registered projection, the stream index first.
    pub(crate) fn lives(&self) -> Vec<Box<dyn Live>> {
        let mut lives: Vec<Box<dyn Live>> = vec![registration::<StreamIndex>()()];
        lives.extend(
            self.projections
                .iter()
                .filter(|(id, _, _)| *id != TypeId::of::<StreamIndex>())
                .map(|(_, _, make)| make()),
        );
        lives
    }

    /// How appends are made durable (default `Sync`).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.wal.durability = durability;
        self
    }

    /// Size at which a segment is sealed (default 64 MiB).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.wal.segment_bytes_target = bytes;
        self
    }

    /// What opening does with damage (default: cut a torn tail, refuse anything else).
    #[must_use]
    pub fn recovery(mut self, mode: RecoveryMode) -> Self {
        self.wal.recovery = mode;
        self
    }

    /// Wait up to this long for another writer's lock (default: fail at once).
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.wal.lock_timeout = Some(timeout);
        self
    }

    /// Whether segments are preallocated (default `true`).
    #[must_use]
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.wal.preallocate = preallocate;
        self
    }

    /// The file system to use (default: the OS's); tests pass a simulated one.
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// How many snapshots [`Journal::compact`] keeps per projection (at least 1; default 10).
    /// The log is truncated below the oldest one kept, so time travel without an archive
    /// reaches back to it.
    #[must_use]
    pub fn keep_snapshots(mut self, keep: usize) -> Self {
        self.keep_snapshots = keep.max(1);
        self
    }

    /// Whether segments truncated by [`Journal::compact`] are moved to `archive/` instead of
    /// deleted (default `false`).
    #[must_use]
    pub fn archive(mut self, archive: bool) -> Self {
        self.archive = archive;
        self
    }

    /// Tells `progress` how far the long operations of the journal got: the open's fold of
    /// the log past the snapshots (`"open"`), replays (`"replay"`) and `verify` (`"verify"`).
    #[must_use]
    pub fn progress(mut self, progress: Arc<dyn crate::Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Writes a C2SP checkpoint of the durable events into `DIR/checkpoints/` at every segment
    /// seal and every compaction (before it truncates), with `origin` as its origin line, as a
    /// signed note when `signer` is given; see [`JournalReader::written_checkpoints`]. Each
    /// checkpoint continues the tree from the previous one's frontier (kept beside it), so the
    /// events are hashed once. A checkpoint that cannot be written does not fail the append
    /// that sealed the segment (it is logged, and the next seal writes a newer one); it fails a
    /// compaction.
    ///
    /// [`JournalReader::written_checkpoints`]: crate::JournalReader::written_checkpoints
    #[must_use]
    pub fn checkpoints(
        mut self,
        origin: impl Into<String>,
        signer: Option<annal_tlog::note::Signer>,
    ) -> Self {
        self.checkpoints = Some(crate::checkpoints::Config {
            origin: origin.into(),
            signer: signer.map(Arc::new),
        });
        self
    }

    /// Registers a projection, kept current as events are acknowledged and read with
    /// [`Journal::state`].
    #[must_use]
    pub fn projection<P: Projection + Send + Sync>(mut self) -> Self {
        if !self.projections.iter().any(|(id, _, _)| *id == TypeId::of::<P>()) {
            self.projections.push((TypeId::of::<P>(), P::NAME, registration::<P>()));
        }
        self
    }

    /// Opens (creating if needed) the journal in `dir`.
    ///
    /// # Errors
    /// As [`Journal::open`].
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Journal> {
        Journal::open_with(dir.as_ref(), self)
    }
}

/// An event-sourced journal: typed events appended to streams with expected versions, read
/// back, folded into registered projections, and replayed up to any sequence number or time.
///
/// `Journal` is `Send + Sync`; concurrent appenders share fdatasyncs.
#[derive(Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub log: Log,
    pub storage: Arc<dyn Storage>,
    pub dir: PathBuf,
    pub keep_snapshots: usize,
    pub archive: bool,
    pub progress: crate::progress::Observer,
    pub checkpoints: Option<crate::checkpoints::Writer>,
    /// The MANIFEST in force (`None` before the first compaction).
    pub manifest: Mutex<Option<Manifest>>,
    /// Held by a compaction, one at a time.
    pub compacting: Mutex<()>,
    /// Stream versions including appends not yet acknowledged, for expected-version checks.
    write: Mutex<WriteSide>,
    queue: Mutex<Queue>,
    pub live: Mutex<LiveSet>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("dir", &self.log.dir()).finish_non_exhaustive()
    }
}

struct WriteSide {
    versions: BTreeMap<String, u64>,
    /// Set when an append's I/O failed: versions may be ahead of the log.
    poisoned: Option<String>,
}

impl Journal {
    /// The options builder.
    #[must_use]
    pub fn options() -> JournalOptions {
        JournalOptions::default()
    }

    /// Opens (creating if needed) the journal in `dir` with default options and no projections.
    ///
    /// # Errors
    /// The log's errors (lock held, corruption, I/O); events that do not fold.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::options().open(dir)
    }

    fn open_with(dir: &Path, options: JournalOptions) -> Result<Self> {
        let _span = tracing::info_span!("open", dir = %dir.display()).entered();
        let lives = options.lives();
        let storage = options.storage.unwrap_or_else(|| Arc::new(OsStorage::new()));
        // Read before the lock to learn the log start; read again under it.
        let before = Manifest::read(storage.as_ref(), dir)?;
        let mut wal = options.wal;
        wal.log_start = before.as_ref().map_or(0, |m| m.log_start);
        // Finishing an interrupted truncation archives if this store has ever archived, even
        // when this opener did not ask for it: nothing the archive should hold is deleted.
        wal.archive =
            options.archive || storage.exists(&dir.join(annal_wal::ARCHIVE_DIR)).unwrap_or(false);
        let log = Log::open_with(Arc::clone(&storage), dir, wal)?;
        let manifest = Manifest::read(storage.as_ref(), dir)?;
        if manifest.is_none()
            && log.first_seq() > 1
            && matches!(log.read_from(1).next(), Some(Err(annal_wal::Error::BeforeStart { .. })))
        {
            // The state cannot be rebuilt without the snapshots the MANIFEST names: refuse
            // before anything (a snapshot file, say) is touched.
            return Err(Error::Compactor(annal_compactor::Error::Corrupt {
                file: dir.join(annal_compactor::MANIFEST_FILE),
                offset: 0,
                reason: format!(
                    "missing, but the log starts at sequence {} (a compaction truncated it and \
                     archive/ does not reach back to 1): the MANIFEST names the snapshots that \
                     cover the events before it; put it back",
                    log.first_seq()
                ),
            }));
        }
        annal_compactor::cleanup(storage.as_ref(), dir, manifest.as_ref())?;
        let mut live = LiveSet::new(lives);
        crate::compact::load_snapshots(storage.as_ref(), dir, &log, manifest.as_ref(), &mut live)?;
        let from = live.slots.iter().map(|s| s.at).min().unwrap_or(0).min(log.last_seq());
        let progress = options.progress.as_deref().filter(|_| from < log.last_seq());
        if from < log.last_seq() {
            tracing::debug!(
                from = from + 1,
                to = log.last_seq(),
                projections = live.slots.len(),
                "folding the log past the snapshots"
            );
        }
        if let Some(p) = progress {
            p.begin("open", from + 1, log.last_seq());
        }
        for record in crate::progress::track(log.read_from(from + 1), progress) {
            let record = record?;
            live.apply(&RawEvent::parse(record.seq, record.ts, &record.payload)?);
        }
        live.applied_seq = log.last_seq();
        for slot in &live.slots {
            if let Some((seq, reason)) = &slot.failed {
                tracing::warn!(projection = slot.live.name(), seq, %reason, "a projection failed to fold an event");
            }
        }
        let versions = stream_index(&live).clone();
        if let Some((seq, reason)) = &live.slots[0].failed {
            return Err(Error::ProjectionFailed {
                projection: StreamIndex::NAME,
                seq: *seq,
                reason: reason.clone(),
            });
        }
        let checkpoints = match options.checkpoints {
            Some(config) => {
                Some(crate::checkpoints::Writer::open(config, storage.as_ref(), dir, &log)?)
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                storage,
                dir: dir.to_path_buf(),
                keep_snapshots: options.keep_snapshots,
                archive: options.archive,
                progress: options.progress.clone(),
                checkpoints,
                manifest: Mutex::new(manifest),
                compacting: Mutex::new(()),
                write: Mutex::new(WriteSide { versions, poisoned: None }),
                queue: Mutex::new(Queue::new()),
                live: Mutex::new(live),
            }),
        })
    }

    /// What recovery found and did when the journal was opened.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.inner.log.recovery_report()
    }

    /// A read-only view of the underlying write-ahead log (appending through it would bypass
    /// the journal's streams and projections, so the view cannot).
    #[must_use]
    pub fn log(&self) -> &annal_wal::LogView {
        &self.inner.log
    }

    /// Syncs (with `Manual` or `Periodic` durability, the last appends), releases the writer
    /// lock and closes the journal, reporting a failure that dropping it would have to ignore.
    ///
    /// # Errors
    /// The final sync failed.
    pub fn close(self) -> Result<()> {
        let inner = Arc::try_unwrap(self.inner).map_err(|_| {
            Error::Invalid(
                "the journal is still shared (a subscription or another handle holds it)".into(),
            )
        })?;
        Ok(inner.log.close()?)
    }

    /// Last acknowledged sequence number (0 when empty).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.inner.log.last_seq()
    }

    /// The version of `stream` (0 if it has no events) after the acknowledged appends, the
    /// same events [`Journal::state`] reflects: appends still inside a group commit are not
    /// counted. To decide on a projection's state and append with the version it reflects, use
    /// [`Journal::load`], which reads both at once.
    #[must_use]
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.catch_up();
        let live = self.inner.live.lock();
        stream_index(&live).get(stream).copied().unwrap_or(0)
    }

    /// The state of registered projection `P` together with the version of `stream` it
    /// reflects, read at one point of the log: what decide-then-append needs. Appending with
    /// `Expect::Exact(loaded.version)` then succeeds only if no event was appended to `stream`
    /// since (acknowledged or still in flight), so a decision is never applied on top of an
    /// event it did not see; on `Conflict`, load again and decide again.
    ///
    /// ```
    /// # use annal::{Expect, Journal, Counts, NewEvent};
    /// # fn main() -> annal::Result<()> {
    /// # let dir = tempfile::tempdir().expect("tempdir");
    /// let journal = Journal::options().projection::<Counts>().open(dir.path())?;
    /// journal.append_events("acct-1", Expect::Any, vec![NewEvent::json("deposit", &serde_json::json!({}))?])?;
    /// for attempt in 0..10u32 {
    ///     let loaded = journal.load::<Counts>("acct-1")?;
    ///     if loaded.state.by_type.get("withdrawal").copied().unwrap_or(0) > 0 {
    ///         break; // decided: nothing to do
    ///     }
    ///     let event = NewEvent::json("withdrawal", &serde_json::json!({}))?;
    ///     match journal.append_events("acct-1", Expect::Exact(loaded.version), vec![event]) {
    ///         Err(e) if e.is_conflict() => {
    ///             std::thread::sleep(std::time::Duration::from_micros(50 << attempt.min(6)));
    ///         }
    ///         other => { other?; break; }
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Journal::state_at`].
    pub fn load<P: Projection>(&self, stream: &str) -> Result<Loaded<P::State>> {
        self.catch_up();
        let live = self.inner.live.lock();
        let version = stream_index(&live).get(stream).copied().unwrap_or(0);
        let (state, seq) = state_of::<P>(&live)?;
        Ok(Loaded { state, version, seq })
    }

    /// Appends typed events to one stream as one atomic batch, if the stream's version satisfies
    /// `expect`.
    ///
    /// # Errors
    /// `Conflict` (nothing written) if the expectation fails; `Invalid` for no events or a bad
    /// stream name; encoding and log errors.
    pub fn append<E: TypedEvent>(
        &self,
        stream: &str,
        expect: Expect,
        events: impl IntoIterator<Item = E>,
    ) -> Result<Appended> {
        check_stream(stream)?;
        // Each envelope is encoded with its data in one buffer (the data is its last field).
        let payloads = events
            .into_iter()
            .map(|event| {
                let mut payload = Vec::with_capacity(PAYLOAD_CAPACITY + stream.len());
                encode_event_header(&mut payload, stream, 0, event.event_type(), &Meta::default())?;
                encode_data_into(&mut payload, &event)?;
                Ok(payload)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = self.append_payloads(&[(stream, expect, payloads.len())], payloads)?;
        Ok(out.pop().expect("one batch, one result"))
    }

    /// Appends already encoded events (for example untyped JSON ones) to one stream.
    ///
    /// # Errors
    /// As [`Journal::append`].
    pub fn append_events(
        &self,
        stream: &str,
        expect: Expect,
        events: Vec<NewEvent>,
    ) -> Result<Appended> {
        let mut out = self.append_batches(&[(stream, expect, &events)])?;
        Ok(out.pop().expect("one batch, one result"))
    }

    /// Appends to several streams at once, all or nothing: every expectation is checked before
    /// anything is written, and all events form one atomic batch. A stream named twice sees its
    /// earlier events' versions.
    ///
    /// # Errors
    /// As [`Journal::append`]; a `Conflict` names the first failing stream.
    pub fn append_multi(&self, batches: &[(&str, Expect, Vec<NewEvent>)]) -> Result<Vec<Appended>> {
        let batches: Vec<(&str, Expect, &Vec<NewEvent>)> =
            batches.iter().map(|(s, e, ev)| (*s, *e, ev)).collect();
        self.append_batches(&batches)
    }

    fn append_batches(&self, batches: &[(&str, Expect, &Vec<NewEvent>)]) -> Result<Vec<Appended>> {
        let mut payloads = Vec::with_capacity(batches.iter().map(|b| b.2.len()).sum());
        for (stream, _, events) in batches {
            check_stream(stream)?;
            for event in *events {
                let mut payload = Vec::with_capacity(64 + stream.len() + event.data.len());
                encode_event(&mut payload, stream, 0, &event.event_type, &event.meta, &event.data)?;
                payloads.push(payload);
            }
        }
        let counts: Vec<(&str, Expect, usize)> = batches
            .iter()
            .map(|(stream, expect, events)| (*stream, *expect, events.len()))
            .collect();
        self.append_payloads(&counts, payloads)
    }

    /// Appends encoded envelopes (version 0, set here), `batches` saying how many of them, in
    /// order, go to which stream with which expectation.
    fn append_payloads(
        &self,
        batches: &[(&str, Expect, usize)],
        payloads: Vec<Vec<u8>>,
    ) -> Result<Vec<Appended>> {
        if batches.is_empty() {
            return Err(Error::Invalid("an append needs at least one stream".into()));
        }
        for (stream, _, count) in batches {
            if *count == 0 {
                return Err(Error::Invalid(format!(
                    "an append to stream {stream:?} needs at least one event"
                )));
            }
        }
        debug_assert_eq!(batches.iter().map(|b| b.2).sum::<usize>(), payloads.len());
        let inner = &*self.inner;
        annal_wal::check_batch(&payloads)?;
        // What can be prepared is prepared outside the critical section below; inside it the
        // versions are checked and filled in, and nothing is allocated but a new stream's name
        // and, now and then, room in the fold queue.
        let mut payloads: Arc<[Vec<u8>]> = payloads.into();
        let mut versions = Vec::with_capacity(batches.len());
        // For each batch, the earlier batch of this append to the same stream, if any.
        let mut earlier: Vec<Option<usize>> = Vec::new();
        if batches.len() > 1 {
            let mut last_of: HashMap<&str, usize> = HashMap::with_capacity(batches.len());
            earlier = batches.iter().enumerate().map(|(i, b)| last_of.insert(b.0, i)).collect();
        }
        // Expectations are checked, versions given and the envelopes queued for the live
        // projections inside the log's own critical section, where the batch also takes its
        // sequence numbers: one serialized step per append, and no other append in between.
        let enqueued = inner.log.enqueue_with(|first, ts| -> Result<Arc<[Vec<u8>]>> {
            let mut write = inner.write.lock();
            if let Some(cause) = &write.poisoned {
                return Err(Error::Wal(annal_wal::Error::Poisoned { cause: cause.clone() }));
            }
            let encoded = Arc::get_mut(&mut payloads).expect("not shared before it is queued");
            let mut next_payload = 0;
            for (i, (stream, expect, count)) in batches.iter().enumerate() {
                // A stream named earlier in this append stands at the version it gave it.
                let actual = match earlier.get(i).copied().flatten() {
                    Some(j) => versions[j],
                    None => write.versions.get(*stream).copied().unwrap_or(0),
                };
                if !expect.allows(actual) {
                    return Err(Error::Conflict {
                        stream: (*stream).to_owned(),
                        expected: *expect,
                        actual,
                    });
                }
                for (k, payload) in
                    encoded[next_payload..next_payload + count].iter_mut().enumerate()
                {
                    set_version(payload, actual + 1 + k as u64);
                }
                next_payload += count;
                versions.push(actual + *count as u64);
            }
            for ((stream, _, _), version) in batches.iter().zip(&versions) {
                match write.versions.get_mut(*stream) {
                    Some(v) => *v = (*v).max(*version),
                    None => {
                        write.versions.insert((*stream).to_owned(), *version);
                    }
                }
            }
            inner.queue.lock().push_back(Queued { first, ts, payloads: Arc::clone(&payloads) });
            Ok(Arc::clone(&payloads))
        });
        let ticket = enqueued??;
        let appended = ticket.appended();
        // While this append's commit is under way, fold what earlier commits acknowledged, if
        // nobody is folding already. Done after the wait instead, the fold would hold back this
        // appender's next append, which the next group commit waits for. This append is
        // folded by a later one, or by a read: reads fold whatever is left (`state_at` waits
        // for the lock), so they still see every acknowledged append.
        if let Some(live) = inner.live.try_lock() {
            self.fold_queued(live);
        }
        if let Err(e) = ticket.wait() {
            inner.write.lock().poisoned = Some(e.to_string());
            return Err(e.into());
        }
        if let Some(checkpoints) = &inner.checkpoints {
            checkpoints.after_append(inner.storage.as_ref(), &inner.log);
        }
        let mut next = appended.first;
        Ok(batches
            .iter()
            .zip(versions)
            .map(|((stream, _, count), version)| {
                let first = next;
                next += *count as u64;
                Appended {
                    stream: (*stream).to_owned(),
                    first,
                    last: next - 1,
                    version,
                    ts: appended.ts,
                }
            })
            .collect())
    }

    /// Folds every acknowledged, queued append into the live projections, in sequence order.
    fn catch_up(&self) {
        self.fold_queued(self.inner.live.lock());
    }

    /// [`Journal::catch_up`], given the projections' lock.
    fn fold_queued(&self, mut live: MutexGuard<'_, LiveSet>) {
        let inner = &*self.inner;
        let visible = inner.log.last_seq();
        loop {
            let next = {
                let mut queue = inner.queue.lock();
                match queue.front() {
                    Some(q) if q.last() <= visible => queue.pop_front(),
                    _ => None,
                }
            };
            let Some(queued) = next else { break };
            debug_assert_eq!(queued.first, live.applied_seq + 1, "live projections fold in order");
            for (i, payload) in queued.payloads.iter().enumerate() {
                let raw = RawEvent::parse(queued.first + i as u64, queued.ts, payload)
                    .expect("the journal encoded this envelope");
                live.apply(&raw);
            }
        }
    }

    /// The registered projections whose state is unusable, each with where and why it failed
    /// (an event it could not fold, or no snapshot the log can continue).
    pub(crate) fn failed_projections(&self) -> Vec<(&'static str, u64, String)> {
        self.catch_up();
        let live = self.inner.live.lock();
        live.slots
            .iter()
            .filter_map(|s| s.failed.as_ref().map(|(q, why)| (s.live.name(), *q, why.clone())))
            .collect()
    }

    /// The current state of registered projection `P`, without a replay: it always equals
    /// `replay::<P>(Until::End)`. Returns the state and the sequence number it stands at.
    ///
    /// # Errors
    /// `NotRegistered`; `ProjectionFailed` if `P` could not fold an event.
    pub fn state_at<P: Projection>(&self) -> Result<(P::State, u64)> {
        self.catch_up();
        state_of::<P>(&self.inner.live.lock())
    }

    /// The current state of registered projection `P`; see [`Journal::state_at`].
    ///
    /// # Errors
    /// As [`Journal::state_at`].
    pub fn state<P: Projection>(&self) -> Result<P::State> {
        self.state_at::<P>().map(|(state, _)| state)
    }

    /// Replays `P` up to `until`: time travel. Starts from the newest snapshot of `P` at or
    /// below the target (with `P`'s schema version), or from the start of the log, through
    /// `archive/` below the log start. Returns the state and the sequence number it stands at.
    /// Streams from the log: memory is the state, not the log. `P` need not be registered (but
    /// only registered projections have snapshots). The same replay as
    /// [`JournalReader::replay`](crate::JournalReader::replay).
    ///
    /// # Errors
    /// `Invalid` for a target past the end, or before the earliest reachable sequence (which
    /// the error names); snapshot, read, envelope and decode errors.
    pub fn replay<P: Projection>(&self, until: Until) -> Result<(P::State, u64)> {
        let inner = &self.inner;
        // No compaction removes segments while this replay reads them.
        let _no_compaction = inner.compacting.lock();
        let manifest = inner.manifest.lock().clone();
        let log = &inner.log;
        crate::replay::replay::<P>(
            &crate::replay::Source {
                storage: inner.storage.as_ref(),
                dir: &inner.dir,
                manifest: manifest.as_ref(),
                log_first: log.first_seq(),
                last: Some(log.last_seq()),
                records: &|from| Ok(log.read_from(from)),
                progress: inner.progress.as_deref().map(|p| (p, log.last_seq())),
            },
            until,
        )
    }

    /// Makes every acknowledged event durable (needed only with `Manual` durability).
    ///
    /// # Errors
    /// The log's I/O errors.
    pub fn sync(&self) -> Result<()> {
        self.inner.log.sync()?;
        if let Some(checkpoints) = &self.inner.checkpoints {
            checkpoints.after_append(self.inner.storage.as_ref(), &self.inner.log);
        }
        Ok(())
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

/// A projection's state and the version of one stream it reflects; see [`Journal::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<S> {
    /// The projection's state after the events up to `seq`.
    pub state: S,
    /// The stream's version after the events up to `seq` (0: no events): what to expect.
    pub version: u64,
    /// The last event folded.
    pub seq: u64,
}

/// The stream versions the live set has folded (slot 0 is always the stream index).
fn stream_index(live: &LiveSet) -> &BTreeMap<String, u64> {
    live.slots[0]
        .live
        .state()
        .downcast_ref::<BTreeMap<String, u64>>()
        .expect("slot 0 is the stream index")
}

fn state_of<P: Projection>(live: &LiveSet) -> Result<(P::State, u64)> {
    let slot = live.slots.iter().find(|s| s.live.projection() == TypeId::of::<P>());
    let Some(slot) = slot else { return Err(Error::NotRegistered { projection: P::NAME }) };
    if let Some((seq, reason)) = &slot.failed {
        return Err(Error::ProjectionFailed {
            projection: P::NAME,
            seq: *seq,
            reason: reason.clone(),
        });
    }
    let state =
        slot.live.state().downcast_ref::<P::State>().expect("registered with its state type");
    Ok((state.clone(), live.applied_seq))
}
