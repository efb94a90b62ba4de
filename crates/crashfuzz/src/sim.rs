//! `sim`: seeded workloads on the simulated file system, crashed again and again.
//!
//! Each seed picks a durability mode, a retention and a preallocation setting, then runs its
//! workload in cycles. A cycle arms a crash (a halt after a random number of I/O operations, or
//! an injected EIO/ENOSPC on the n-th write or sync), runs workload steps until the storage
//! stops it or the cycle ends, cuts the power with a seeded crash mode, and recovers: the
//! recovered journal is checked against the model ([`crate::check`]) before the next cycle goes
//! on from it. Some recoveries are themselves crashed part-way first.

use std::path::Path;
use std::sync::Arc;

use annal::{Durability, Expect, Journal, NewEvent};
use annal_compactor::Manifest;
use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage, Storage};
use serde::Serialize;

use crate::check::{Violation, recover_and_check, time_travel};
use crate::model::{Ev, Model, ModelEvent, Tally, model_fold};
use crate::rng::Rng;

/// Where the journal lives on the simulated file system.
pub const DIR: &str = "/annal";

/// Segment size of harness journals: small, so that appends roll segments often.
pub const SEGMENT_BYTES: u64 = 4096;

/// Streams the workload appends to.
const STREAMS: u64 = 6;

/// Time-travel replays checked at each recovery.
const REPLAYS_PER_RECOVERY: usize = 2;

/// What one seed (or a range of seeds) explored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Seeds run.
    pub seeds: u64,
    /// Crashes followed by a checked recovery (crashes during a recovery included).
    pub crash_states: u64,
    /// Of those, crashes taken in the middle of a recovery.
    pub recovery_crashes: u64,
    /// Recoveries failed by an injected EIO or ENOSPC at a random write or sync, then run again.
    pub recovery_faults: u64,
    /// `LOCK` removed or replaced while the writer ran, each followed by a second writer that
    /// had to be refused.
    pub lock_attacks: u64,
    /// Injected EIO/ENOSPC faults that fired and were checked for poisoning (G6).
    pub faults_fired: u64,
    /// Reopens without a crash after a fault (same boot, page cache intact), then checked.
    pub same_boot_reopens: u64,
    /// Clean reopens taken as workload steps.
    pub reopens: u64,
    /// Events acknowledged.
    pub events_acked: u64,
    /// Compactions that completed.
    pub compactions: u64,
    /// Time-travel replays compared with the model.
    pub replays: u64,
    /// Appends with a wrong expected version that were refused as they must be.
    pub conflicts: u64,
}

impl SimStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &SimStats) {
        self.seeds += other.seeds;
        self.crash_states += other.crash_states;
        self.recovery_crashes += other.recovery_crashes;
        self.recovery_faults += other.recovery_faults;
        self.lock_attacks += other.lock_attacks;
        self.faults_fired += other.faults_fired;
        self.same_boot_reopens += other.same_boot_reopens;
        self.reopens += other.reopens;
        self.events_acked += other.events_acked;
        self.compactions += other.compactions;
        self.replays += other.replays;
        self.conflicts += other.conflicts;
    }
}

/// A seed that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// The workload size it ran with.
    pub ops: usize,
    /// The crash cycle (from 0) in which the violation was found.
    pub cycle: u64,
    /// The invariant broken.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

impl SeedFailure {
    /// The command that replays exactly this seed.
    #[must_use]
    pub fn replay_command(&self) -> String {
        format!("annal-crashfuzz sim --seeds {}..{} --ops {}", self.seed, self.seed + 1, self.ops)
    }
}

/// Which durability modes the seeds use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Modes {
    /// 70% of seeds `Sync`, 30% `Manual` (with explicit syncs).
    #[default]
    Mixed,
    /// Every seed `Sync`.
    Sync,
    /// Every seed `Manual`.
    Manual,
}

/// Why a workload step did not complete.
enum Stop {
    /// The machine halted: the planned crash point was reached.
    Halted,
    /// An injected fault fired; `log_io` says whether it hit the log (an append, a sync, or
    /// a replay writing out buffered frames) rather than a compaction. Only log failures are
    /// checked for poisoning: a failed snapshot or MANIFEST write leaves the log intact.
    Fault { log_io: bool },
    /// An invariant broke.
    Broken(Violation),
}

impl From<Violation> for Stop {
    fn from(v: Violation) -> Self {
        Stop::Broken(v)
    }
}

/// Whether the simulated machine refused an operation because of its halt.
fn halted(sim: &SimStorage) -> bool {
    sim.is_halted()
}

/// Whether `error` is what an injected fault caused: one fired since the cycle armed it, and
/// the error (or one it wraps) is an EIO or ENOSPC, or the refusal of a log it poisoned.
fn injected(sim: &SimStorage, fired_before: u64, error: &annal::Error) -> bool {
    if sim.faults_fired() == fired_before {
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

/// How a seed's journal is opened.
#[derive(Debug, Clone)]
struct Setup {
    sim: SimStorage,
    durability: Durability,
    keep: usize,
    preallocate: bool,
}

impl Setup {
    fn open(&self) -> annal::Result<Journal> {
        Journal::options()
            .storage(Arc::new(self.sim.clone()))
            .segment_bytes(SEGMENT_BYTES)
            .keep_snapshots(self.keep)
            .durability(self.durability)
            .preallocate(self.preallocate)
            .projection::<Tally>()
            .open(DIR)
    }
}

struct Run {
    sim: SimStorage,
    setup: Setup,
    rng: Rng,
    model: Model,
    durability: Durability,
    next_id: u64,
    /// Whether a fault was injected in the current cycle (and may have fired).
    fault_armed: bool,
    /// Faults that had fired when the current cycle was armed.
    fired_at_arm: u64,
    /// Whether to narrate the run on stderr (`ANNAL_CRASHFUZZ_TRACE` set).
    trace: bool,
    stats: SimStats,
}

impl Run {
    fn new(seed: u64, modes: Modes) -> Self {
        let mut rng = Rng::new(seed);
        let manual = rng.chance(30);
        let durability = match modes {
            Modes::Mixed if manual => Durability::Manual,
            Modes::Mixed | Modes::Sync => Durability::Sync,
            Modes::Manual => Durability::Manual,
        };
        let keep = usize::try_from(rng.range(1, 3)).expect("small");
        let preallocate = rng.chance(70);
        let sim = SimStorage::new(seed);
        Self {
            setup: Setup { sim: sim.clone(), durability, keep, preallocate },
            sim,
            rng,
            model: Model::new(),
            durability,
            next_id: 1,
            fault_armed: false,
            fired_at_arm: 0,
            trace: std::env::var_os("ANNAL_CRASHFUZZ_TRACE").is_some(),
            stats: SimStats { seeds: 1, ..SimStats::default() },
        }
    }

    fn open(&self) -> annal::Result<Journal> {
        self.setup.open()
    }

    fn sync_mode(&self) -> bool {
        self.durability == Durability::Sync
    }

    fn event(&mut self) -> Ev {
        let id = self.next_id;
        self.next_id += 1;
        let pad = if self.rng.chance(10) { self.rng.index(2500) } else { self.rng.index(300) };
        Ev::make(id, pad)
    }

    fn stream(&mut self) -> String {
        format!("s{}", self.rng.below(STREAMS))
    }

    /// An expectation that holds for a stream at `version`.
    fn good_expect(&mut self, version: u64) -> Expect {
        match self.rng.below(4) {
            0 => Expect::Exact(version),
            1 if version == 0 => Expect::NoStream,
            1 => Expect::Exists,
            _ => Expect::Any,
        }
    }

    /// Classifies a failed operation.
    fn failed(&self, what: &str, error: &annal::Error, log_io: bool) -> Stop {
        if halted(&self.sim) {
            Stop::Halted
        } else if self.fault_armed && injected(&self.sim, self.fired_at_arm, error) {
            Stop::Fault { log_io }
        } else {
            Stop::Broken(Violation::new("no spurious errors", format!("{what} failed: {error}")))
        }
    }

    /// Appends `batches` (one stream: `append_events`; several: `append_multi`) and records
    /// the outcome in the model.
    fn append(
        &mut self,
        journal: &Journal,
        batches: Vec<(String, Expect, Vec<Ev>)>,
    ) -> Result<(), Stop> {
        let mut encoded = Vec::with_capacity(batches.len());
        let mut events = Vec::new();
        for (stream, expect, evs) in &batches {
            let new: Vec<NewEvent> =
                evs.iter().map(|e| NewEvent::new(e).expect("harness events encode")).collect();
            encoded.push((stream.as_str(), *expect, new));
            events
                .extend(evs.iter().map(|ev| ModelEvent { stream: stream.clone(), ev: ev.clone() }));
        }
        let result = if encoded.len() == 1 {
            let (stream, expect, new) = encoded.pop().expect("one batch");
            journal.append_events(stream, expect, new).map(|a| vec![a])
        } else {
            journal.append_multi(&encoded)
        };
        match result {
            Ok(appended) => {
                let first = self.model.events.len() as u64 + 1;
                let n = events.len() as u64;
                let got_first = appended.first().map_or(0, |a| a.first);
                let got_last = appended.last().map_or(0, |a| a.last);
                if got_first != first || got_last != first + n - 1 {
                    return Err(Stop::Broken(Violation::new(
                        "G3 gapless",
                        format!(
                            "an append of {n} events was acknowledged as {got_first}..={got_last}, expected {first}..={}",
                            first + n - 1
                        ),
                    )));
                }
                self.stats.events_acked += n;
                let durable = self.sync_mode();
                self.model.ack(events, durable);
                Ok(())
            }
            Err(e) => {
                self.model.pending = events;
                Err(self.failed("an append", &e, true))
            }
        }
    }

    /// One append whose expectation cannot hold; it must be refused and write nothing.
    fn conflict(&mut self, journal: &Journal) -> Result<(), Stop> {
        let stream = self.stream();
        let version = self.model.version(&stream);
        let bad = match self.rng.below(3) {
            0 if version > 0 => Expect::NoStream,
            1 if version == 0 => Expect::Exists,
            _ => Expect::Exact(version + 1 + self.rng.below(3)),
        };
        let ev = self.event();
        let mut batches = Vec::new();
        if self.rng.chance(50) {
            let other = format!("c{}", self.rng.below(2));
            let v = self.model.version(&other);
            let expect = self.good_expect(v);
            let ev2 = self.event();
            batches.push((other, expect, vec![NewEvent::new(&ev2).expect("encodes")]));
        }
        batches.push((stream.clone(), bad, vec![NewEvent::new(&ev).expect("encodes")]));
        let batches: Vec<(&str, Expect, Vec<NewEvent>)> =
            batches.iter().map(|(s, e, v)| (s.as_str(), *e, v.clone())).collect();
        match journal.append_multi(&batches) {
            Ok(_) => Err(Stop::Broken(Violation::new(
                "expected version",
                format!(
                    "an append expecting {bad} on {stream:?} at version {version} was acknowledged"
                ),
            ))),
            Err(e) if e.is_conflict() => {
                self.stats.conflicts += 1;
                Ok(())
            }
            Err(e) => Err(self.failed("a conflicting append", &e, true)),
        }
    }

    fn replay_step(&mut self, journal: &Journal) -> Result<(), Stop> {
        let last = journal.last_seq();
        let first = journal.log().first_seq();
        let lo = if first <= 1 {
            0
        } else {
            match Manifest::read(&self.sim, Path::new(DIR)) {
                Ok(m) => m.map_or(1, |m| m.log_start.max(1)) - 1,
                Err(_) if halted(&self.sim) => return Err(Stop::Halted),
                Err(e) => {
                    return Err(Stop::Broken(Violation::new("MANIFEST readable", e.to_string())));
                }
            }
        };
        let target = self.rng.range(lo, last);
        // A replay reads through the log, which in `Manual` mode first writes out buffered
        // frames: an injected fault can fire here, and must poison like any other.
        if let Err(e) = self.journal_replay(journal, target) {
            return Err(self.failed("a time-travel replay", &e, true));
        }
        let all: Vec<&ModelEvent> = self.model.events.iter().collect();
        match time_travel(journal, &all, target) {
            Ok(()) => {
                self.stats.replays += 1;
                Ok(())
            }
            Err(_) if halted(&self.sim) => Err(Stop::Halted),
            Err(v) => Err(Stop::Broken(v)),
        }
    }

    fn journal_replay(&self, journal: &Journal, target: u64) -> annal::Result<()> {
        journal.replay::<Tally>(annal::Until::Seq(target)).map(drop)
    }

    /// One workload step.
    fn step(&mut self, slot: &mut Option<Journal>) -> Result<(), Stop> {
        let pick = self.rng.below(100);
        if self.trace {
            eprintln!(
                "trace: step {pick} at op {} with {} events ({} durable)",
                self.sim.op_count(),
                self.model.events.len(),
                self.model.durable
            );
        }
        if (79..=82).contains(&pick) {
            return self.reopen_step(slot);
        }
        let journal = slot.as_ref().expect("a journal is open during the workload");
        match pick {
            0..=29 => {
                let stream = self.stream();
                let v = self.model.version(&stream);
                let expect = self.good_expect(v);
                let ev = self.event();
                self.append(journal, vec![(stream, expect, vec![ev])])
            }
            30..=44 => {
                let stream = self.stream();
                let v = self.model.version(&stream);
                let expect = self.good_expect(v);
                let n = self.rng.range(2, 6);
                let evs = (0..n).map(|_| self.event()).collect();
                self.append(journal, vec![(stream, expect, evs)])
            }
            45..=56 => {
                let parts = self.rng.range(2, 3);
                let mut overlay: Vec<(String, u64)> = Vec::new();
                let mut batches = Vec::new();
                for _ in 0..parts {
                    let stream = self.stream();
                    let v = overlay
                        .iter()
                        .rev()
                        .find(|(s, _)| *s == stream)
                        .map_or_else(|| self.model.version(&stream), |(_, v)| *v);
                    let expect = self.good_expect(v);
                    let n = self.rng.range(1, 3);
                    let evs: Vec<Ev> = (0..n).map(|_| self.event()).collect();
                    overlay.push((stream.clone(), v + n));
                    batches.push((stream, expect, evs));
                }
                self.append(journal, batches)
            }
            57..=61 => self.conflict(journal),
            62..=71 => match journal.sync() {
                Ok(()) => {
                    self.model.synced();
                    Ok(())
                }
                Err(e) => Err(self.failed("a sync", &e, true)),
            },
            72..=78 => match journal.compact() {
                Ok(report) if report.seq == self.model.events.len() as u64 => {
                    self.stats.compactions += 1;
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
            },
            88..=89 => self.lock_attack(),
            83..=87 => {
                let expected = model_fold(&self.model.events);
                match journal.state::<Tally>() {
                    Ok(state) if state == expected => Ok(()),
                    Ok(_) => Err(Stop::Broken(Violation::new(
                        "G5 state",
                        "the live state differs from the model's fold while running",
                    ))),
                    Err(e) => Err(self.failed("reading the live state", &e, false)),
                }
            }
            _ => self.replay_step(journal),
        }
    }

    /// `LOCK` removed, or replaced by a new file, while the writer runs: a second writer must
    /// still be refused with `Locked` (G9), and the first goes on.
    fn lock_attack(&mut self) -> Result<(), Stop> {
        let lock = Path::new(DIR).join(annal::wal::LOCK_FILE);
        // The entry may be gone already: removed before, or lost in a crash before its
        // directory was synced.
        let removed = match self.sim.remove_file(&lock) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        let attacked = if self.rng.chance(50) {
            removed
        } else {
            removed.and_then(|()| self.sim.write_file_durably(&lock, b"0\n"))
        };
        match attacked {
            Ok(()) => {}
            Err(_) if halted(&self.sim) => return Err(Stop::Halted),
            Err(e) => {
                return Err(Stop::Broken(Violation::new("LOCK can be removed", e.to_string())));
            }
        }
        self.stats.lock_attacks += 1;
        match self.open() {
            Err(annal::Error::Wal(annal::wal::Error::Locked { .. })) => Ok(()),
            Err(_) if halted(&self.sim) => Err(Stop::Halted),
            Err(e) if self.fault_armed && injected(&self.sim, self.fired_at_arm, &e) => {
                Err(Stop::Fault { log_io: false })
            }
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

    /// A clean reopen in the middle of the workload: sync, close, open, check.
    fn reopen_step(&mut self, slot: &mut Option<Journal>) -> Result<(), Stop> {
        let journal = slot.take().expect("a journal is open during the workload");
        if let Err(e) = journal.sync() {
            *slot = Some(journal);
            return Err(self.failed("the sync before a reopen", &e, true));
        }
        self.model.synced();
        drop(journal);
        let reopened = match self.open() {
            Ok(j) => j,
            Err(e) => return Err(self.failed("a clean reopen", &e, false)),
        };
        let checked = crate::check::check_journal(
            &reopened,
            &self.sim,
            Path::new(DIR),
            &mut self.model,
            &mut self.rng,
            1,
        );
        *slot = Some(reopened);
        match checked {
            Ok(r) => {
                self.stats.replays += r.replays as u64;
                self.stats.reopens += 1;
                Ok(())
            }
            Err(_) if halted(&self.sim) => Err(Stop::Halted),
            Err(v) => Err(Stop::Broken(v)),
        }
    }

    /// After an injected fault hit the log: it must refuse appends and syncs (G6).
    fn check_poisoned(&mut self, journal: &Journal) -> Result<(), Violation> {
        let ev = self.event();
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

    /// Opens after a crash or a same-boot restart, checks, and returns the journal.
    fn recover(&mut self) -> Result<Journal, Violation> {
        let setup = self.setup.clone();
        let open = || setup.open();
        let storage: std::sync::Arc<dyn annal_storage::Storage> =
            std::sync::Arc::new(self.sim.clone());
        let (journal, recovered) = recover_and_check(
            &open,
            &storage,
            Path::new(DIR),
            &mut self.model,
            &mut self.rng,
            REPLAYS_PER_RECOVERY,
        )?;
        self.stats.replays += recovered.replays as u64;
        Ok(journal)
    }

    /// Arms this cycle's crash: an injected fault (then the cycle ends with a crash anyway),
    /// or a halt after a random number of I/O operations.
    fn arm(&mut self, steps: usize) {
        self.fault_armed = self.rng.chance(25);
        self.fired_at_arm = self.sim.faults_fired();
        if self.fault_armed {
            let op = if self.rng.chance(50) { FaultOp::Write } else { FaultOp::Sync };
            let kind = if self.rng.chance(50) { FaultKind::Eio } else { FaultKind::Enospc };
            let nth = self.rng.range(1, 30);
            self.sim.inject(Fault { op, nth, kind });
        } else {
            let k = self.rng.below(steps as u64 * 10 + 5);
            self.sim.halt_after(k);
        }
    }

    /// Crashes (with `slot`'s journal still open, so nothing is synced on the way down),
    /// sometimes crashes the recovery too, then recovers and checks.
    fn crash_and_recover(
        &mut self,
        slot: &mut Option<Journal>,
        after_fault: bool,
    ) -> Result<(), Violation> {
        if after_fault && self.rng.chance(50) {
            self.sim.crash(CrashMode::DropUnsynced);
        } else {
            self.sim.crash_random();
        }
        drop(slot.take());
        self.stats.crash_states += 1;
        if self.rng.chance(25) {
            self.sim.halt_after(self.rng.below(16));
            drop(self.open());
            self.sim.crash_random();
            self.stats.crash_states += 1;
            self.stats.recovery_crashes += 1;
        } else if self.rng.chance(20) {
            // A recovery that fails on a full or failing disk at a random step, then (the disk
            // fixed) runs again, in the same boot or after another crash.
            let op = if self.rng.chance(50) { FaultOp::Write } else { FaultOp::Sync };
            let kind = if self.rng.chance(50) { FaultKind::Eio } else { FaultKind::Enospc };
            let fired = self.sim.faults_fired();
            self.sim.inject(Fault { op, nth: self.rng.range(1, 12), kind });
            drop(self.open());
            self.sim.clear_faults();
            if self.sim.faults_fired() > fired {
                self.stats.recovery_faults += 1;
                if self.rng.chance(50) {
                    self.sim.crash_random();
                    self.stats.crash_states += 1;
                }
            }
        }
        *slot = Some(self.recover()?);
        Ok(())
    }

    /// The whole workload of `ops` steps, in crash cycles.
    fn cycles(&mut self, ops: usize) -> Result<(), (u64, Violation)> {
        let mut slot = Some(self.recover().map_err(|v| (0, v))?);
        let mut left = ops;
        let mut cycle = 0u64;
        while left > 0 {
            let steps = usize::try_from(self.rng.range(3, 40)).expect("small").min(left);
            left -= steps;
            self.arm(steps);
            if self.trace {
                eprintln!("trace: cycle {cycle}, {steps} steps, fault armed {}", self.fault_armed);
            }
            let mut stop = None;
            for _ in 0..steps {
                if let Err(s) = self.step(&mut slot) {
                    stop = Some(s);
                    break;
                }
            }
            if self.trace {
                let what = match &stop {
                    None => "ran to the end".to_owned(),
                    Some(Stop::Halted) => "halted".to_owned(),
                    Some(Stop::Fault { log_io }) => format!("fault (log I/O {log_io})"),
                    Some(Stop::Broken(v)) => format!("broken: {v}"),
                };
                eprintln!("trace: cycle {cycle} {what} at op {}", self.sim.op_count());
            }
            let at = |v| (cycle, v);
            match stop {
                Some(Stop::Broken(v)) => return Err(at(v)),
                Some(Stop::Fault { log_io }) => {
                    self.stats.faults_fired += 1;
                    if log_io && let Some(journal) = slot.as_ref() {
                        self.check_poisoned(journal).map_err(at)?;
                    }
                    if self.rng.chance(50) {
                        drop(slot.take());
                        slot = Some(self.recover().map_err(at)?);
                        self.stats.same_boot_reopens += 1;
                    } else {
                        self.crash_and_recover(&mut slot, true).map_err(at)?;
                    }
                }
                Some(Stop::Halted) | None => {
                    self.crash_and_recover(&mut slot, false).map_err(at)?
                }
            }
            let journal = slot.as_ref().expect("recovered");
            let stream = self.stream();
            let ev = self.event();
            match journal.append(&stream, Expect::Any, [ev.clone()]) {
                Ok(_) => {
                    let durable = self.sync_mode();
                    self.model.ack(vec![ModelEvent { stream, ev }], durable);
                    self.stats.events_acked += 1;
                }
                Err(e) => {
                    return Err(at(Violation::new(
                        "appendable after recovery",
                        format!("the first append after recovery failed: {e}"),
                    )));
                }
            }
            cycle += 1;
        }
        Ok(())
    }
}

/// What one seed did: what it explored, and the invariant it broke if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedOutcome {
    /// What was explored (up to the failure, if any).
    pub stats: SimStats,
    /// The first invariant broken.
    pub failure: Option<SeedFailure>,
}

/// Runs seed `seed`: a workload of `ops` steps in crash cycles, every recovery checked.
/// The seed alone decides the durability mode unless `modes` forces one.
#[must_use]
pub fn run_seed(seed: u64, ops: usize, modes: Modes) -> SeedOutcome {
    let mut run = Run::new(seed, modes);
    let failure = run.cycles(ops).err().map(|(cycle, v)| SeedFailure {
        seed,
        ops,
        cycle,
        invariant: v.invariant.to_owned(),
        detail: format!(
            "{} ({:?} durability, keep {} snapshots, preallocate {})",
            v.detail, run.setup.durability, run.setup.keep, run.setup.preallocate
        ),
    });
    SeedOutcome { stats: run.stats, failure }
}

/// The outcome of a range of seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimOutcome {
    /// What was explored, over every seed (failed seeds included up to their failure).
    pub stats: SimStats,
    /// The seeds that broke an invariant.
    pub failures: Vec<SeedFailure>,
}

/// Runs every seed of `seeds` with `ops` workload steps each, calling `on_failure` for each
/// seed that breaks an invariant as soon as it does.
pub fn run_sim(
    seeds: std::ops::Range<u64>,
    ops: usize,
    modes: Modes,
    on_failure: &mut dyn FnMut(&SeedFailure),
) -> SimOutcome {
    let mut out = SimOutcome::default();
    for seed in seeds {
        let outcome = run_seed(seed, ops, modes);
        out.stats.add(&outcome.stats);
        if let Some(failure) = outcome.failure {
            on_failure(&failure);
            out.failures.push(failure);
        }
    }
    out
}
