//! `sim --enumerate`: small workloads crashed after every prefix of their I/O operations.
//!
//! Each workload (one to three steps: an append, a batch, a multi-stream append, a sync, a
//! segment roll, a compaction) runs once on a probe machine to count its I/O operations `n`.
//! Then, for every `k` in `0..=n` and every crash mode (drop everything unsynced, keep
//! everything, and several seeded random resolutions that tear pages and drop directory
//! entries independently), it runs again on a fresh machine that halts after `k` operations,
//! crashes, recovers, and is checked against the model (ALICE-style exhaustive crash points).
//!
//! Then every write and every sync of the steps is failed in turn by an injected EIO or ENOSPC
//! (the zero-fill ahead of an append, a compaction's snapshot and MANIFEST writes included):
//! the journal is reopened in the same boot and checked, then crashed and checked again.

use std::path::Path;
use std::sync::Arc;

use annal::{Durability, Expect, Journal, NewEvent};
use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use serde::Serialize;

use crate::check::{Violation, recover_and_check};
use crate::model::{Ev, Model, ModelEvent, Tally};
use crate::rng::Rng;
use crate::workload::{DIR, SEGMENT_BYTES};

/// Seeded random crash resolutions tried at every crash point, besides the two fixed modes.
pub const RANDOM_CRASHES_PER_POINT: u64 = 10;

/// Events appended (and made durable) before the crashed steps run.
const PREFILL: u64 = 6;

/// One step of a small workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Step {
    /// One event.
    Append,
    /// Four events to one stream, one append.
    Batch,
    /// Events to three streams, one `append_multi`.
    Multi,
    /// `Journal::sync`.
    Sync,
    /// Large events, enough to seal the active segment and start the next.
    Roll,
    /// `Journal::compact`.
    Compact,
}

const STEPS: [Step; 6] =
    [Step::Append, Step::Batch, Step::Multi, Step::Sync, Step::Roll, Step::Compact];

/// A small workload: its steps, its durability mode, and whether a compaction ran before them
/// (so that the crashed compaction also retires an older snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The steps, crashed at every I/O operation.
    pub steps: Vec<Step>,
    /// `Sync` or `Manual`.
    pub durability: Durability,
    /// Whether the setup compacts once before the steps.
    pub compacted: bool,
}

impl Workload {
    /// A short name for messages.
    #[must_use]
    pub fn name(&self) -> String {
        format!(
            "{:?} {:?}{}",
            self.durability,
            self.steps,
            if self.compacted { " after a compaction" } else { "" }
        )
    }
}

/// Every one- and two-step workload under `Sync`, those with a sync under `Manual`, and a few
/// three-step ones.
#[must_use]
pub fn workloads() -> Vec<Workload> {
    let mut out = Vec::new();
    let w = |steps: Vec<Step>, durability, compacted| Workload { steps, durability, compacted };
    for a in STEPS {
        out.push(w(vec![a], Durability::Sync, false));
        for b in STEPS {
            out.push(w(vec![a, b], Durability::Sync, false));
            if a == Step::Sync || b == Step::Sync {
                out.push(w(vec![a, b], Durability::Manual, false));
            }
        }
    }
    out.push(w(vec![Step::Sync], Durability::Manual, false));
    out.push(w(vec![Step::Compact], Durability::Sync, true));
    out.push(w(vec![Step::Roll, Step::Compact], Durability::Sync, true));
    out.push(w(vec![Step::Append, Step::Compact, Step::Append], Durability::Sync, false));
    out.push(w(vec![Step::Roll, Step::Compact, Step::Roll], Durability::Sync, true));
    out.push(w(vec![Step::Batch, Step::Sync, Step::Compact], Durability::Manual, false));
    out.push(w(vec![Step::Compact, Step::Roll, Step::Compact], Durability::Sync, false));
    out.push(w(vec![Step::Multi, Step::Roll, Step::Sync], Durability::Manual, true));
    out
}

/// What an enumeration explored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnumStats {
    /// Workloads enumerated.
    pub workloads: u64,
    /// I/O operations across the workloads (crash points are these plus one per workload).
    pub io_ops: u64,
    /// Crash states recovered and checked.
    pub crash_states: u64,
    /// Writes and syncs failed by an injected fault, each followed by a checked same-boot
    /// reopen and a checked recovery after a crash.
    pub fault_states: u64,
}

/// A crash state that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnumFailure {
    /// The workload.
    pub workload: String,
    /// The number of I/O operations let through before the halt.
    pub k: u64,
    /// The crash mode.
    pub mode: String,
    /// The invariant broken.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

fn open(sim: &SimStorage, durability: Durability) -> annal::Result<Journal> {
    Journal::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(SEGMENT_BYTES)
        .keep_snapshots(1)
        .durability(durability)
        .projection::<Tally>()
        .open(DIR)
}

/// Appends `batches`; on success records them in `model`, otherwise marks them pending.
fn append(
    journal: &Journal,
    model: &mut Model,
    durable: bool,
    batches: Vec<(String, Vec<Ev>)>,
) -> bool {
    let mut events = Vec::new();
    let encoded: Vec<(&str, Expect, Vec<NewEvent>)> = batches
        .iter()
        .map(|(s, evs)| {
            events.extend(evs.iter().map(|ev| ModelEvent { stream: s.clone(), ev: ev.clone() }));
            (
                s.as_str(),
                Expect::Any,
                evs.iter().map(|e| NewEvent::new(e).expect("encodes")).collect(),
            )
        })
        .collect();
    if journal.append_multi(&encoded).is_ok() {
        model.ack(events, durable);
        true
    } else {
        model.pending = events;
        false
    }
}

/// Opens, prefills and (per `w.compacted`) compacts, with no crash armed. Returns the journal
/// and the model.
fn setup(sim: &SimStorage, w: &Workload) -> (Journal, Model) {
    let journal = open(sim, w.durability).expect("the setup opens a fresh store");
    let mut model = Model::new();
    for id in 0..PREFILL {
        let ok = append(
            &journal,
            &mut model,
            true,
            vec![(format!("p{}", id % 2), vec![Ev::make(id, 40)])],
        );
        assert!(ok, "the setup appends");
    }
    journal.sync().expect("the setup syncs");
    model.synced();
    if w.compacted {
        journal.compact().expect("the setup compacts");
    }
    (journal, model)
}

/// Runs the steps until one fails; the model records what was acknowledged.
fn run_steps(journal: &Journal, model: &mut Model, w: &Workload) {
    let durable = w.durability == Durability::Sync;
    let mut id = 1000;
    let mut ev = |pad| {
        id += 1;
        Ev::make(id, pad)
    };
    for step in &w.steps {
        let ok = match step {
            Step::Append => append(journal, model, durable, vec![("a".into(), vec![ev(60)])]),
            Step::Batch => append(
                journal,
                model,
                durable,
                vec![("b".into(), (0..4).map(|_| ev(90)).collect())],
            ),
            Step::Multi => append(
                journal,
                model,
                durable,
                vec![
                    ("a".into(), vec![ev(30)]),
                    ("m".into(), vec![ev(30), ev(30)]),
                    ("p0".into(), vec![ev(30)]),
                ],
            ),
            Step::Roll => {
                append(journal, model, durable, vec![("r".into(), vec![ev(2000), ev(2000)])])
                    && append(journal, model, durable, vec![("r".into(), vec![ev(1500)])])
            }
            Step::Sync => {
                let ok = journal.sync().is_ok();
                if ok {
                    model.synced();
                }
                ok
            }
            Step::Compact => journal.compact().is_ok(),
        };
        if !ok {
            return;
        }
    }
}

/// Crashes workload `w` after `k` I/O operations of its steps, with crash resolution `mode`
/// (0: drop unsynced, 1: keep unsynced, 2 and up: seeded random), and checks the recovery.
///
/// # Errors
/// The invariant broken.
pub fn crash_point(w: &Workload, k: u64, mode: u64) -> Result<(), Violation> {
    let sim = SimStorage::new(k.wrapping_mul(1_000_003).wrapping_add(mode));
    let (journal, mut model) = setup(&sim, w);
    sim.halt_after(k);
    run_steps(&journal, &mut model, w);
    sim.crash(match mode {
        0 => CrashMode::DropUnsynced,
        1 => CrashMode::KeepUnsynced,
        _ => CrashMode::Random,
    });
    drop(journal);
    let reopen = || open(&sim, w.durability);
    let mut rng = Rng::new(k ^ (mode << 32));
    let storage: std::sync::Arc<dyn annal_storage::Storage> = std::sync::Arc::new(sim.clone());
    let (journal, _) =
        recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut rng, 1)?;
    journal.append("after", Expect::Any, [Ev::make(9999, 10)]).map_err(|e| {
        Violation::new("appendable after recovery", format!("the first append failed: {e}"))
    })?;
    Ok(())
}

/// Fails the `nth` operation of class `op` of workload `w`'s steps with an injected fault, then
/// reopens in the same boot and checks, then crashes and checks again. Returns `false` when the
/// steps have fewer than `nth` such operations (the fault never fired).
///
/// # Errors
/// The invariant broken.
pub fn fault_point(w: &Workload, op: FaultOp, nth: u64) -> Result<bool, Violation> {
    let sim = SimStorage::new(nth.wrapping_mul(7_919) ^ u64::from(op == FaultOp::Sync));
    let (journal, mut model) = setup(&sim, w);
    let kind = if nth.is_multiple_of(2) { FaultKind::Enospc } else { FaultKind::Eio };
    let fired = sim.faults_fired();
    sim.inject(Fault { op, nth, kind });
    run_steps(&journal, &mut model, w);
    sim.clear_faults();
    if sim.faults_fired() == fired {
        return Ok(false);
    }
    drop(journal);
    let reopen = || open(&sim, w.durability);
    let mut rng = Rng::new(nth);
    let storage: std::sync::Arc<dyn annal_storage::Storage> = std::sync::Arc::new(sim.clone());
    let (journal, _) =
        recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut rng, 1)?;
    journal.append("after", Expect::Any, [Ev::make(9999, 10)]).map_err(|e| {
        Violation::new("appendable after a fault", format!("the first append failed: {e}"))
    })?;
    model.ack(
        vec![ModelEvent { stream: "after".into(), ev: Ev::make(9999, 10) }],
        w.durability == Durability::Sync,
    );
    sim.crash(CrashMode::DropUnsynced);
    drop(journal);
    recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut rng, 1)?;
    Ok(true)
}

/// The number of I/O operations of `w`'s steps, counted on a probe machine.
#[must_use]
pub fn count_ops(w: &Workload) -> u64 {
    let sim = SimStorage::new(0);
    let (journal, mut model) = setup(&sim, w);
    let before = sim.op_count();
    run_steps(&journal, &mut model, w);
    sim.op_count() - before
}

/// Enumerates every crash point of every workload of [`workloads`] in every crash mode,
/// calling `on_failure` for each crash state that breaks an invariant.
pub fn run_enumeration(on_failure: &mut dyn FnMut(&EnumFailure)) -> (EnumStats, Vec<EnumFailure>) {
    run_workloads(&workloads(), on_failure)
}

/// Enumerates every crash point of each of `list` in every crash mode, calling `on_failure`
/// for each crash state that breaks an invariant.
pub fn run_workloads(
    list: &[Workload],
    on_failure: &mut dyn FnMut(&EnumFailure),
) -> (EnumStats, Vec<EnumFailure>) {
    let mut stats = EnumStats::default();
    let mut failures = Vec::new();
    for w in list {
        let n = count_ops(w);
        stats.workloads += 1;
        stats.io_ops += n;
        for k in 0..=n {
            for mode in 0..2 + RANDOM_CRASHES_PER_POINT {
                stats.crash_states += 1;
                if let Err(v) = crash_point(w, k, mode) {
                    let failure = EnumFailure {
                        workload: w.name(),
                        k,
                        mode: match mode {
                            0 => "DropUnsynced".into(),
                            1 => "KeepUnsynced".into(),
                            m => format!("Random#{}", m - 1),
                        },
                        invariant: v.invariant.to_owned(),
                        detail: v.detail,
                    };
                    on_failure(&failure);
                    failures.push(failure);
                }
            }
        }
        for op in [FaultOp::Write, FaultOp::Sync] {
            for nth in 1.. {
                match fault_point(w, op, nth) {
                    Ok(false) => break,
                    Ok(true) => stats.fault_states += 1,
                    Err(v) => {
                        stats.fault_states += 1;
                        let failure = EnumFailure {
                            workload: w.name(),
                            k: nth,
                            mode: format!("fault on {op:?} #{nth}"),
                            invariant: v.invariant.to_owned(),
                            detail: v.detail,
                        };
                        on_failure(&failure);
                        failures.push(failure);
                    }
                }
            }
        }
    }
    (stats, failures)
}
