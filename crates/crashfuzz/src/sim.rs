//! `sim`: seeded workloads on the simulated file system, crashed again and again.
//!
//! Each seed picks a durability mode, a retention and a preallocation setting, then runs its
//! workload ([`crate::workload`]) in cycles. A cycle arms a crash (a halt after a random number
//! of I/O operations, or an injected EIO/ENOSPC on the n-th write or sync), runs workload steps
//! until the storage stops it or the cycle ends, cuts the power with a seeded crash mode, and
//! recovers: the recovered journal is checked against the model ([`crate::check`]) before the
//! next cycle goes on from it. Some recoveries are themselves crashed part-way, or failed by an
//! injected fault, first.

use annal::{Durability, Expect};
use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use serde::Serialize;

use crate::check::Violation;
use crate::model::Ev;
use crate::rng::Rng;
use crate::workload::{Setup, Stop, Workload};

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
    /// Recoveries after which a checkpoint of durable events taken at an earlier sync was
    /// proven consistent with the tree, with an inclusion proof of a random event.
    pub tree_checks: u64,
    /// Raw `Log` opens of the crashed journal, each refused with `WrongKind`.
    pub kind_refusals: u64,
    /// Checkpoints the journal wrote itself, each checked after a recovery against the tree.
    pub written_checkpoints: u64,
    /// Followers opened (live and directory readers drained after every step).
    pub followers: u64,
    /// Events they delivered, each checked against the model.
    pub follower_events: u64,
    /// Followers a compaction without `archive/` overtook, which failed naming the earliest.
    pub followers_overtaken: u64,
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
        self.tree_checks += other.tree_checks;
        self.kind_refusals += other.kind_refusals;
        self.written_checkpoints += other.written_checkpoints;
        self.followers += other.followers;
        self.follower_events += other.follower_events;
        self.followers_overtaken += other.followers_overtaken;
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

struct Run {
    w: Workload,
    /// The choices of the workload: operations, streams, sizes, crash points.
    rng: Rng,
    /// Whether a fault was injected in the current cycle (and may have fired).
    fault_armed: bool,
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
        let archive = rng.chance(30);
        // From the seed, not the generator: the workloads of the seeds stay as they were.
        let checkpoints = seed % 5 < 2;
        let setup = Setup {
            sim: SimStorage::new(seed),
            durability,
            keep,
            preallocate,
            archive,
            checkpoints,
        };
        Self {
            w: Workload::new(setup, seed ^ 0xc4ec_4ed0),
            rng,
            fault_armed: false,
            trace: std::env::var_os("ANNAL_CRASHFUZZ_TRACE").is_some(),
            stats: SimStats { seeds: 1, ..SimStats::default() },
        }
    }

    fn sim(&self) -> SimStorage {
        self.w.sim().clone()
    }

    fn event(&mut self) -> Ev {
        let pad = if self.rng.chance(10) { self.rng.index(2500) } else { self.rng.index(300) };
        self.w.event(pad)
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

    /// Batches for one append to one stream, or to several (an expectation that holds each).
    fn batches(&mut self, parts: u64, min: u64, max: u64) -> Vec<(String, Expect, Vec<Ev>)> {
        let mut overlay: Vec<(String, u64)> = Vec::new();
        let mut batches = Vec::new();
        for _ in 0..parts {
            let stream = self.stream();
            let v = overlay
                .iter()
                .rev()
                .find(|(s, _)| *s == stream)
                .map_or_else(|| self.w.model.version(&stream), |(_, v)| *v);
            let expect = self.good_expect(v);
            let n = self.rng.range(min, max);
            let evs: Vec<Ev> = (0..n).map(|_| self.event()).collect();
            overlay.push((stream.clone(), v + n));
            batches.push((stream, expect, evs));
        }
        batches
    }

    /// An append whose expectation cannot hold (alone, or with a good one to another stream).
    fn conflict(&mut self) -> Result<(), Stop> {
        let stream = self.stream();
        let version = self.w.model.version(&stream);
        let bad = match self.rng.below(3) {
            0 if version > 0 => Expect::NoStream,
            1 if version == 0 => Expect::Exists,
            _ => Expect::Exact(version + 1 + self.rng.below(3)),
        };
        let mut batches = Vec::new();
        if self.rng.chance(50) {
            let other = format!("c{}", self.rng.below(2));
            let v = self.w.model.version(&other);
            let expect = self.good_expect(v);
            batches.push((other, expect, vec![self.event()]));
        }
        batches.push((stream, bad, vec![self.event()]));
        self.w.append(batches)
    }

    /// One workload step.
    fn step(&mut self) -> Result<(), Stop> {
        let pick = self.rng.below(100);
        if self.trace {
            eprintln!(
                "trace: step {pick} at op {} with {} events ({} durable)",
                self.sim().op_count(),
                self.w.model.events.len(),
                self.w.model.durable
            );
        }
        match pick {
            0..=29 => {
                let b = self.batches(1, 1, 1);
                self.w.append(b)
            }
            30..=44 => {
                let b = self.batches(1, 2, 6);
                self.w.append(b)
            }
            45..=56 => {
                let parts = self.rng.range(2, 3);
                let b = self.batches(parts, 1, 3);
                self.w.append(b)
            }
            57..=61 => self.conflict(),
            62..=69 => self.w.sync(),
            70..=76 => self.w.compact(),
            77..=80 => self.w.reopen(),
            81..=84 => self.w.state(),
            85..=86 => {
                let replace = self.rng.chance(50);
                self.w.lock_attack(replace)
            }
            87..=91 => {
                let (kind, pick) = (self.rng.below(8), self.rng.below(1 << 20));
                self.w.follow(kind, pick)
            }
            _ => {
                let (lo, last) = self.w.replay_range()?;
                let target = self.rng.range(lo, last);
                self.w.replay(target)
            }
        }
    }

    /// Arms this cycle's crash: an injected fault (then the cycle ends with a crash anyway),
    /// or a halt after a random number of I/O operations.
    fn arm(&mut self, steps: usize) {
        self.fault_armed = self.rng.chance(25);
        if self.fault_armed {
            let op = if self.rng.chance(50) { FaultOp::Write } else { FaultOp::Sync };
            let kind = if self.rng.chance(50) { FaultKind::Eio } else { FaultKind::Enospc };
            let nth = self.rng.range(1, 30);
            self.sim().inject(Fault { op, nth, kind });
        } else {
            let k = self.rng.below(steps as u64 * 10 + 5);
            self.sim().halt_after(k);
        }
    }

    /// Crashes (with the journal still open, so nothing is synced on the way down), sometimes
    /// crashes or fails the recovery too, then recovers and checks.
    fn crash_and_recover(&mut self, after_fault: bool) -> Result<(), Violation> {
        let sim = self.sim();
        if after_fault && self.rng.chance(50) {
            self.w.crash(CrashMode::DropUnsynced);
        } else {
            sim.crash_random();
            drop(self.w.journal.take());
        }
        self.stats.crash_states += 1;
        if self.rng.chance(25) {
            sim.halt_after(self.rng.below(16));
            drop(self.w.setup.open());
            sim.crash_random();
            self.stats.crash_states += 1;
            self.stats.recovery_crashes += 1;
        } else if self.rng.chance(20) {
            // A recovery that fails on a full or failing disk at a random step, then (the disk
            // fixed) runs again, in the same boot or after another crash.
            let op = if self.rng.chance(50) { FaultOp::Write } else { FaultOp::Sync };
            let kind = if self.rng.chance(50) { FaultKind::Eio } else { FaultKind::Enospc };
            let fired = sim.faults_fired();
            sim.inject(Fault { op, nth: self.rng.range(1, 12), kind });
            drop(self.w.setup.open());
            sim.clear_faults();
            if sim.faults_fired() > fired {
                self.stats.recovery_faults += 1;
                if self.rng.chance(50) {
                    sim.crash_random();
                    self.stats.crash_states += 1;
                }
            }
        }
        self.w.recover(REPLAYS_PER_RECOVERY)
    }

    /// The whole workload of `ops` steps, in crash cycles.
    fn cycles(&mut self, ops: usize) -> Result<(), (u64, Violation)> {
        self.w.recover(REPLAYS_PER_RECOVERY).map_err(|v| (0, v))?;
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
                // Followers read now and then, so that compactions and rolls overtake them.
                let drain = self.rng.chance(40);
                let done = self
                    .step()
                    .and_then(|()| if drain { self.w.drain_followers() } else { Ok(()) });
                if let Err(s) = done {
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
                eprintln!("trace: cycle {cycle} {what} at op {}", self.sim().op_count());
            }
            let at = |v| (cycle, v);
            match stop {
                Some(Stop::Broken(v)) => return Err(at(v)),
                Some(Stop::Fault { log_io }) => {
                    self.stats.faults_fired += 1;
                    if log_io {
                        self.w.check_poisoned().map_err(at)?;
                    }
                    if self.rng.chance(50) {
                        self.w.recover(REPLAYS_PER_RECOVERY).map_err(at)?;
                        self.stats.same_boot_reopens += 1;
                    } else {
                        self.crash_and_recover(true).map_err(at)?;
                    }
                }
                Some(Stop::Halted) | None => self.crash_and_recover(false).map_err(at)?,
            }
            // The recovered journal takes an append.
            let b = self.batches(1, 1, 1);
            match self.w.append(b) {
                Ok(()) => {}
                Err(Stop::Broken(v)) => return Err(at(v)),
                Err(_) => {
                    return Err(at(Violation::new(
                        "appendable after recovery",
                        "the first append after recovery failed",
                    )));
                }
            }
            cycle += 1;
        }
        Ok(())
    }

    /// Folds the workload's counts into the stats.
    fn finish(mut self) -> SimStats {
        let c = &self.w.counts;
        self.stats.events_acked = c.events_acked;
        self.stats.conflicts = c.conflicts;
        self.stats.compactions = c.compactions;
        self.stats.replays = c.replays;
        self.stats.reopens = c.reopens;
        self.stats.lock_attacks = c.lock_attacks;
        self.stats.tree_checks = c.tree_checks;
        self.stats.kind_refusals = c.kind_refusals;
        self.stats.written_checkpoints = c.written_checkpoints;
        let f = self.w.followers.counts;
        self.stats.followers = f.opened;
        self.stats.follower_events = f.delivered;
        self.stats.followers_overtaken = f.overtaken;
        self.stats
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
            v.detail, run.w.setup.durability, run.w.setup.keep, run.w.setup.preallocate
        ),
    });
    SeedOutcome { stats: run.finish(), failure }
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
