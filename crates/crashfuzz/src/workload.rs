//! The workload both the `sim` mode and the `stateful` fuzz target drive: a journal on the
//! simulated file system, every operation on it checked against the [`Model`] of what it
//! acknowledged. `sim` picks the operations with a seeded generator, the fuzz target decodes
//! them from its input; what an operation does and what it must answer is written once, here.

use std::path::Path;
use std::sync::Arc;

use annal::{Durability, Expect, Journal, NewEvent};
use annal_compactor::Manifest;
use annal_storage::{CrashMode, SimStorage, Storage};

use crate::check::{Violation, check_journal, recover_and_check, time_travel};
use crate::follow::{DrainError, Followers, KINDS};
use crate::model::{Ev, Model, ModelEvent, Tally, model_fold};
use crate::rng::Rng;

/// Where the journal lives on the simulated file system.
pub const DIR: &str = "/annal";

/// Segment size of harness journals: the smallest the log accepts, so that appends roll
/// segments often.
pub const SEGMENT_BYTES: u64 = 4096;

/// How a workload's journal is opened.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The simulated machine.
    pub sim: SimStorage,
    /// The journal's durability mode.
    pub durability: Durability,
    /// Snapshots kept per projection.
    pub keep: usize,
    /// Whether segments are preallocated.
    pub preallocate: bool,
    /// Whether compactions keep removed segments in `archive/`.
    pub archive: bool,
    /// Whether the journal writes its own checkpoints (`JournalOptions::checkpoints`).
    pub checkpoints: bool,
}

impl Setup {
    /// Opens (and so recovers) the journal.
    ///
    /// # Errors
    /// What the open returns.
    pub fn open(&self) -> annal::Result<Journal> {
        let options = Journal::options();
        let options =
            if self.checkpoints { options.checkpoints(crate::tree::ORIGIN, None) } else { options };
        options
            .storage(Arc::new(self.sim.clone()))
            .segment_bytes(SEGMENT_BYTES)
            .keep_snapshots(self.keep)
            .durability(self.durability)
            .preallocate(self.preallocate)
            .archive(self.archive)
            .projection::<Tally>()
            .open(DIR)
    }
}

/// Why an operation did not complete.
#[derive(Debug)]
pub enum Stop {
    /// The machine halted: the planned crash point was reached.
    Halted,
    /// An injected fault fired; `log_io` says whether it hit the log (an append, a sync, or a
    /// replay writing out buffered frames) rather than a compaction or an open. Only log
    /// failures are checked for poisoning: a failed snapshot or MANIFEST write leaves the log
    /// intact.
    Fault {
        /// Whether the log's own I/O failed.
        log_io: bool,
    },
    /// An invariant broke.
    Broken(Violation),
}

impl From<Violation> for Stop {
    fn from(v: Violation) -> Self {
        Stop::Broken(v)
    }
}

/// What a workload did, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events acknowledged.
    pub events_acked: u64,
    /// Appends with an expectation that did not hold, refused as they must be.
    pub conflicts: u64,
    /// Compactions that completed.
    pub compactions: u64,
    /// Time-travel replays compared with the model (those of recoveries included).
    pub replays: u64,
    /// Clean reopens.
    pub reopens: u64,
    /// `LOCK` removed or replaced while the writer ran.
    pub lock_attacks: u64,
    /// Recoveries after which a checkpoint taken at an earlier sync was checked against the
    /// tree (consistency and inclusion proofs).
    pub tree_checks: u64,
    /// Checkpoints the journal wrote itself, checked after a recovery against its tree.
    pub written_checkpoints: u64,
    /// Raw `Log` opens tried on the crashed journal before its recovery, each refused with
    /// `WrongKind` (the recovery check after it then shows that nothing was changed).
    pub kind_refusals: u64,
}

/// A journal under a workload, and the model it is checked against.
#[derive(Debug)]
pub struct Workload {
    /// How the journal is opened.
    pub setup: Setup,
    /// What the journal acknowledged.
    pub model: Model,
    /// The generator the checks draw from (replay targets, reader starts).
    pub rng: Rng,
    /// The open journal, between operations.
    pub journal: Option<Journal>,
    /// What was done.
    pub counts: Counts,
    /// Readers following the journal between operations.
    pub followers: Followers,
    /// A checkpoint of the durable events, taken at a sync.
    pub checkpoint: Option<annal::tlog::checkpoint::Checkpoint>,
    next_id: u64,
    /// Faults that had fired at the last recovery: an error is an injected fault's only if one
    /// fired since.
    fired_base: u64,
}

impl Workload {
    /// A workload on `setup` with nothing open yet; [`Workload::recover`] opens it.
    #[must_use]
    pub fn new(setup: Setup, seed: u64) -> Self {
        Self {
            setup,
            model: Model::new(),
            rng: Rng::new(seed),
            journal: None,
            counts: Counts::default(),
            followers: Followers::default(),
            checkpoint: None,
            next_id: 1,
            fired_base: 0,
        }
    }

    /// The simulated machine.
    #[must_use]
    pub fn sim(&self) -> &SimStorage {
        &self.setup.sim
    }

    fn journal(&self) -> &Journal {
        self.journal.as_ref().expect("a journal is open between operations")
    }

    fn sync_mode(&self) -> bool {
        self.setup.durability == Durability::Sync
    }

    /// A new event with `pad` bytes of padding.
    pub fn event(&mut self, pad: usize) -> Ev {
        let id = self.next_id;
        self.next_id += 1;
        Ev::make(id, pad)
    }

    /// Whether `error` is what an injected fault caused: one fired since the last recovery, and
    /// the error (or one it wraps) is an EIO or ENOSPC, or the refusal of a log it poisoned.
    fn injected(&self, error: &annal::Error) -> bool {
        if self.sim().faults_fired() == self.fired_base {
            return false;
        }
        if matches!(error, annal::Error::Wal(annal::wal::Error::Poisoned { .. })) {
            return true;
        }
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && matches!(io.raw_os_error(), Some(5 | 28))
            {
                return true;
            }
            cur = e.source();
        }
        false
    }

    /// Classifies a failed operation: the halt, an injected fault, or a broken invariant.
    #[must_use]
    pub fn failed(&self, what: &str, error: &annal::Error, log_io: bool) -> Stop {
        if self.sim().is_halted() {
            Stop::Halted
        } else if self.injected(error) {
            Stop::Fault { log_io }
        } else {
            Stop::Broken(Violation::new("no spurious errors", format!("{what} failed: {error}")))
        }
    }

    /// Appends `batches` (one stream: `append_events`; several: `append_multi`). It must be
    /// acknowledged with the next gapless sequence numbers and stream versions exactly when every
    /// expectation holds for the model, and refused as a conflict otherwise.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn append(&mut self, batches: Vec<(String, Expect, Vec<Ev>)>) -> Result<(), Stop> {
        let mut overlay: Vec<(String, u64)> = Vec::new();
        let mut allowed = true;
        let mut versions = Vec::with_capacity(batches.len());
        let mut encoded = Vec::with_capacity(batches.len());
        let mut events = Vec::new();
        for (stream, expect, evs) in &batches {
            let v = overlay
                .iter()
                .rev()
                .find(|(s, _)| s == stream)
                .map_or_else(|| self.model.version(stream), |(_, v)| *v);
            allowed &= expect.allows(v);
            overlay.push((stream.clone(), v + evs.len() as u64));
            versions.push(v + evs.len() as u64);
            let new: Vec<NewEvent> =
                evs.iter().map(|e| NewEvent::new(e).expect("harness events encode")).collect();
            encoded.push((stream.as_str(), *expect, new));
            events
                .extend(evs.iter().map(|ev| ModelEvent { stream: stream.clone(), ev: ev.clone() }));
        }
        let result = if encoded.len() == 1 {
            let (stream, expect, new) = encoded.pop().expect("one batch");
            self.journal().append_events(stream, expect, new).map(|a| vec![a])
        } else {
            self.journal().append_multi(&encoded)
        };
        let n = events.len() as u64;
        match result {
            Ok(_) if !allowed => Err(Stop::Broken(Violation::new(
                "expected version",
                format!("an append whose expectations do not hold was acknowledged: {batches:?}"),
            ))),
            Ok(appended) => {
                let first = self.model.events.len() as u64 + 1;
                let got = (
                    appended.first().map_or(0, |a| a.first),
                    appended.last().map_or(0, |a| a.last),
                );
                if got != (first, first + n - 1) {
                    return Err(Stop::Broken(Violation::new(
                        "G3 gapless",
                        format!(
                            "an append of {n} events was acknowledged as {}..={}, expected {first}..={}",
                            got.0,
                            got.1,
                            first + n - 1
                        ),
                    )));
                }
                let got_versions: Vec<u64> = appended.iter().map(|a| a.version).collect();
                if got_versions != versions {
                    return Err(Stop::Broken(Violation::new(
                        "stream versions",
                        format!(
                            "acknowledged with versions {got_versions:?}, expected {versions:?}"
                        ),
                    )));
                }
                self.counts.events_acked += n;
                let durable = self.sync_mode();
                self.model.ack(events, durable);
                Ok(())
            }
            Err(e) if e.is_conflict() && !allowed => {
                self.counts.conflicts += 1;
                Ok(())
            }
            Err(e) if e.is_conflict() => Err(Stop::Broken(Violation::new(
                "expected version",
                format!("an append whose expectations hold was refused: {e}"),
            ))),
            Err(e) => {
                self.model.pending = events;
                Err(self.failed("an append", &e, true))
            }
        }
    }

    /// `sync`; afterwards every acknowledged event must survive any crash.
    ///
    /// # Errors
    /// The halt or an injected fault.
    pub fn sync(&mut self) -> Result<(), Stop> {
        match self.journal().sync() {
            Ok(()) => {
                self.model.synced();
                let storage: Arc<dyn Storage> = Arc::new(self.setup.sim.clone());
                let durable = self.model.durable as u64;
                match crate::tree::take(&storage, Path::new(DIR), durable) {
                    Ok(Some(c)) => self.checkpoint = Some(c),
                    Ok(None) => {}
                    Err(_) if self.sim().is_halted() => return Err(Stop::Halted),
                    Err(v) => return Err(Stop::Broken(v)),
                }
                Ok(())
            }
            Err(e) => Err(self.failed("a sync", &e, true)),
        }
    }

    /// A compaction, which must stand at the last acknowledged event.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn compact(&mut self) -> Result<(), Stop> {
        match self.journal().compact() {
            Ok(report) if report.seq == self.model.events.len() as u64 => {
                self.counts.compactions += 1;
                Ok(())
            }
            Ok(report) => Err(Stop::Broken(Violation::new(
                "compaction",
                format!(
                    "compacted at sequence {} with {} events acknowledged",
                    report.seq,
                    self.model.events.len()
                ),
            ))),
            Err(e) => Err(self.failed("a compaction", &e, false)),
        }
    }

    /// A clean reopen: sync, close, open, and a check against the model.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn reopen(&mut self) -> Result<(), Stop> {
        if let Err(e) = self.journal().sync() {
            return Err(self.failed("the sync before a reopen", &e, true));
        }
        self.model.synced();
        self.followers.close_live();
        drop(self.journal.take());
        let reopened = match self.setup.open() {
            Ok(j) => j,
            Err(e) => return Err(self.failed("a clean reopen", &e, false)),
        };
        let checked = check_journal(
            &reopened,
            &self.setup.sim,
            Path::new(DIR),
            &mut self.model,
            &mut self.rng,
            1,
        );
        self.journal = Some(reopened);
        match checked {
            Ok(r) => {
                self.counts.replays += r.replays as u64;
                self.counts.reopens += 1;
                Ok(())
            }
            Err(_) if self.sim().is_halted() => Err(Stop::Halted),
            Err(v) => Err(Stop::Broken(v)),
        }
    }

    /// The live state equals the model's fold.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn state(&mut self) -> Result<(), Stop> {
        let expected = model_fold(&self.model.events);
        match self.journal().state::<Tally>() {
            Ok(state) if state == expected => Ok(()),
            Ok(_) => Err(Stop::Broken(Violation::new(
                "G5 state",
                "the live state differs from the model's fold while running",
            ))),
            Err(e) => Err(self.failed("reading the live state", &e, false)),
        }
    }

    /// The range a time-travel replay can target: from just before the log start to the end.
    ///
    /// # Errors
    /// The halt, or an unreadable MANIFEST.
    pub fn replay_range(&self) -> Result<(u64, u64), Stop> {
        let journal = self.journal();
        let last = journal.last_seq();
        if journal.log().first_seq() <= 1 {
            return Ok((0, last));
        }
        match Manifest::read(self.sim(), Path::new(DIR)) {
            Ok(m) => Ok((m.map_or(1, |m| m.log_start.max(1)) - 1, last)),
            Err(_) if self.sim().is_halted() => Err(Stop::Halted),
            Err(e) => Err(Stop::Broken(Violation::new("MANIFEST readable", e.to_string()))),
        }
    }

    /// A time-travel replay to `target`, compared with the model's fold.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn replay(&mut self, target: u64) -> Result<(), Stop> {
        // In `Manual` mode a replay first writes out buffered frames: an injected fault can
        // fire here, and must poison like any other.
        if let Err(e) = self.journal().replay::<Tally>(annal::Until::Seq(target)) {
            return Err(self.failed("a time-travel replay", &e, true));
        }
        let all: Vec<&ModelEvent> = self.model.events.iter().collect();
        match time_travel(self.journal(), &all, target) {
            Ok(()) => {
                self.counts.replays += 1;
                Ok(())
            }
            Err(_) if self.sim().is_halted() => Err(Stop::Halted),
            Err(v) => Err(Stop::Broken(v)),
        }
    }

    /// `LOCK` removed (and, with `replace`, a new file put in its place) while the writer runs:
    /// a second writer must still be refused with `Locked` (G9), and the first goes on.
    ///
    /// # Errors
    /// The halt, an injected fault, or a broken invariant.
    pub fn lock_attack(&mut self, replace: bool) -> Result<(), Stop> {
        let lock = Path::new(DIR).join(annal::wal::LOCK_FILE);
        let sim = self.sim().clone();
        // The entry may be gone already: removed before, or lost in a crash before its
        // directory was synced.
        let removed = match sim.remove_file(&lock) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        let attacked = if replace {
            removed.and_then(|()| sim.write_file_durably(&lock, b"0\n"))
        } else {
            removed
        };
        match attacked {
            Ok(()) => {}
            Err(_) if sim.is_halted() => return Err(Stop::Halted),
            Err(e) => {
                return Err(Stop::Broken(Violation::new("LOCK can be removed", e.to_string())));
            }
        }
        self.counts.lock_attacks += 1;
        match self.setup.open() {
            Err(annal::Error::Wal(annal::wal::Error::Locked { .. })) => Ok(()),
            Err(_) if sim.is_halted() => Err(Stop::Halted),
            Err(e) if self.injected(&e) => Err(Stop::Fault { log_io: false }),
            Err(e) => Err(Stop::Broken(Violation::new(
                "G9 one writer",
                format!(
                    "a second writer after LOCK was removed failed with something else than Locked: {e}"
                ),
            ))),
            Ok(_) => Err(Stop::Broken(Violation::new(
                "G9 one writer",
                "a second writer opened the store after LOCK was removed or replaced",
            ))),
        }
    }

    /// After an injected fault hit the log: it must refuse appends and syncs until a reopen
    /// (G6).
    ///
    /// # Errors
    /// The broken invariant.
    pub fn check_poisoned(&mut self) -> Result<(), Violation> {
        let ev = self.event(1);
        let Some(journal) = self.journal.as_ref() else { return Ok(()) };
        if journal.append("g6", Expect::Any, [ev]).is_ok() {
            return Err(Violation::new(
                "G6 poison",
                "an append was acknowledged after a failed write or fsync, before any reopen",
            ));
        }
        if journal.sync().is_ok() {
            return Err(Violation::new(
                "G6 poison",
                "a sync succeeded after a failed write or fsync, before any reopen",
            ));
        }
        Ok(())
    }

    /// Cuts the power with the journal still open (nothing synced on the way down).
    pub fn crash(&mut self, mode: CrashMode) {
        self.setup.sim.crash(mode);
        self.followers.clear();
        drop(self.journal.take());
    }

    /// Opens a follower with read path `kind` (any number: taken modulo the paths) at a point
    /// `pick` chooses among those a reader may start at (0 among them: the earliest held).
    ///
    /// # Errors
    /// The halt, or a broken invariant.
    pub fn follow(&mut self, kind: u64, pick: u64) -> Result<(), Stop> {
        let journal = self.journal.as_ref().expect("a journal is open between operations");
        let last = journal.last_seq();
        let lo = if self.setup.archive { 1 } else { journal.log().first_seq() };
        let from =
            if pick.is_multiple_of(5) { 0 } else { lo + pick % (last + 2 - lo.min(last + 1)) };
        let storage: Arc<dyn Storage> = Arc::new(self.setup.sim.clone());
        let kind = usize::try_from(kind % KINDS.len() as u64).expect("small");
        match self.followers.open(journal, &storage, kind, from) {
            Ok(()) => Ok(()),
            Err(_) if self.sim().is_halted() => Err(Stop::Halted),
            Err(v) => Err(Stop::Broken(v)),
        }
    }

    /// Drains every follower and checks what it delivered (after each operation that
    /// completed).
    ///
    /// # Errors
    /// The halt, or a broken invariant.
    pub fn drain_followers(&mut self) -> Result<(), Stop> {
        let Some(journal) = self.journal.as_ref() else { return Ok(()) };
        match self.followers.drain(journal, &self.model.events, self.setup.archive) {
            Ok(()) => Ok(()),
            Err(_) if self.sim().is_halted() => Err(Stop::Halted),
            // A live reader writes out `Manual` mode's buffered frames first: a fault there
            // hits the log.
            Err(DrainError::Read(kind, e)) => {
                Err(self.failed(&format!("a follower ({kind})"), &e, true))
            }
            Err(DrainError::Broken(v)) => Err(Stop::Broken(v)),
        }
    }

    /// Opens the store (after a crash, or in the same boot after a fault) and checks it against
    /// the model with `replays` time-travel replays: every recovery check of the harness.
    ///
    /// # Errors
    /// The broken invariant.
    pub fn recover(&mut self, replays: usize) -> Result<(), Violation> {
        self.followers.clear();
        drop(self.journal.take());
        let setup = self.setup.clone();
        let open = || setup.open();
        let storage: Arc<dyn Storage> = Arc::new(self.setup.sim.clone());
        if self.model.durable > 0 && self.rng.chance(20) {
            // A raw log must not open the journal (a raw append would corrupt it), whatever
            // state the crash left it in: a segment holds the durable events, and says journal.
            let options = annal::wal::Options::default();
            match annal::wal::Log::open_with(Arc::clone(&storage), Path::new(DIR), options) {
                Err(annal::wal::Error::WrongKind { .. }) => self.counts.kind_refusals += 1,
                Err(_) if self.sim().is_halted() => {}
                Err(e) => {
                    return Err(Violation::new(
                        "store kind",
                        format!("a raw Log open of the journal failed with another error: {e}"),
                    ));
                }
                Ok(log) => {
                    drop(log);
                    return Err(Violation::new(
                        "store kind",
                        "a raw Log opened the journal (its segments must say journal)",
                    ));
                }
            }
        }
        let (journal, recovered) = recover_and_check(
            &open,
            &storage,
            Path::new(DIR),
            &mut self.model,
            &mut self.rng,
            replays,
        )?;
        self.counts.replays += recovered.replays as u64;
        self.counts.written_checkpoints +=
            crate::tree::check_written(&storage, Path::new(DIR), journal.last_seq())?;
        if let Some(old) = &self.checkpoint
            && crate::tree::check(&journal, &storage, Path::new(DIR), old, &mut self.rng)?
        {
            self.counts.tree_checks += 1;
        }
        self.journal = Some(journal);
        self.fired_base = self.sim().faults_fired();
        Ok(())
    }
}
