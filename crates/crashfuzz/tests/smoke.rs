//! Guards the harness itself: a few seeds, a small enumeration and a handful of SIGKILLed
//! children run clean and explore crash states, and the invariant checker does report a
//! violation when the model claims what the journal never acknowledged (a harness that cannot
//! fail proves nothing).

use std::path::Path;
use std::sync::Arc;

use annal::{Durability, Expect, Journal};
use annal_crashfuzz::check::recover_and_check;
use annal_crashfuzz::enumerate::{Step, Workload, run_workloads};
use annal_crashfuzz::kill::run_kills;
use annal_crashfuzz::model::{Ev, Model, ModelEvent, Tally};
use annal_crashfuzz::rng::Rng;
use annal_crashfuzz::sim::{Modes, run_sim};
use annal_crashfuzz::workload::{DIR, SEGMENT_BYTES};
use annal_storage::{CrashMode, SimStorage};

#[test]
fn seeds_hold_every_invariant() {
    let outcome = run_sim(0..8, 60, Modes::Mixed, &mut |_| {});
    assert!(outcome.failures.is_empty(), "violations: {:#?}", outcome.failures);
    assert_eq!(outcome.stats.seeds, 8);
    assert!(outcome.stats.crash_states >= 8, "{:?}", outcome.stats);
    assert!(outcome.stats.events_acked > 0, "{:?}", outcome.stats);
}

/// Seeds that once found bugs: a recovery that failed after removing the segment below the log
/// start whose chain value the next open needed (5953); crashes while starting a segment after a
/// compaction (235, 355, 465); restarts after a failed roll without a reboot (56, 73, 250).
#[test]
fn seeds_that_found_bugs_stay_fixed() {
    for seed in [5953u64, 235, 355, 465, 56, 73, 250, 587, 1202] {
        let outcome = run_sim(seed..seed + 1, 200, Modes::Mixed, &mut |_| {});
        assert!(outcome.failures.is_empty(), "seed {seed}: {:#?}", outcome.failures);
    }
}

#[test]
fn small_enumeration_holds_every_invariant() {
    let w = |steps: Vec<Step>, durability| Workload { steps, durability, compacted: false };
    let list = [
        w(vec![Step::Append, Step::Batch], Durability::Sync),
        w(vec![Step::Multi, Step::Sync], Durability::Manual),
        w(vec![Step::Compact, Step::Roll], Durability::Sync),
    ];
    let (stats, failures) = run_workloads(&list, &mut |_| {});
    assert!(failures.is_empty(), "violations: {failures:#?}");
    assert_eq!(stats.workloads, 3);
    assert!(stats.crash_states > 100, "{stats:?}");
}

#[test]
fn killed_children_lose_nothing_acknowledged() {
    let exe = Path::new(env!("CARGO_BIN_EXE_annal-crashfuzz"));
    let (stats, failures) = run_kills(exe, 6, 1, &mut |_| {}).expect("children start");
    assert!(failures.is_empty(), "violations: {failures:#?}");
    assert_eq!(stats.kills, 6);
}

/// A journal on a simulated machine holding three acknowledged events, and the model of them.
fn journal_with_three_events() -> (SimStorage, Model) {
    let sim = SimStorage::new(5);
    let journal = open(&sim).expect("open");
    let mut model = Model::new();
    for id in 0..3 {
        let ev = Ev::make(id, 20);
        journal.append("s", Expect::Any, [ev.clone()]).expect("append");
        model.ack(vec![ModelEvent { stream: "s".into(), ev }], true);
    }
    sim.crash(CrashMode::Random);
    drop(journal);
    (sim, model)
}

fn open(sim: &SimStorage) -> annal::Result<Journal> {
    Journal::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(SEGMENT_BYTES)
        .projection::<Tally>()
        .open(DIR)
}

#[test]
fn the_checker_passes_a_true_model() {
    let (sim, mut model) = journal_with_three_events();
    let reopen = || open(&sim);
    let storage: Arc<dyn annal_storage::Storage> = Arc::new(sim.clone());
    let checked =
        recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut Rng::new(1), 2);
    assert!(checked.is_ok(), "{:?}", checked.err());
}

#[test]
fn the_checker_reports_a_claimed_event_that_was_never_appended() {
    let (sim, mut model) = journal_with_three_events();
    model.ack(vec![ModelEvent { stream: "s".into(), ev: Ev::make(99, 1) }], true);
    let reopen = || open(&sim);
    let storage: Arc<dyn annal_storage::Storage> = Arc::new(sim.clone());
    let checked =
        recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut Rng::new(1), 2);
    let violation = checked.expect_err("a missing acknowledged event is a violation");
    assert_eq!(violation.invariant, "G1 durability", "{violation}");
}

#[test]
fn the_checker_reports_an_event_with_other_content() {
    let (sim, mut model) = journal_with_three_events();
    model.events[1].ev = Ev::make(77, 20);
    let reopen = || open(&sim);
    let storage: Arc<dyn annal_storage::Storage> = Arc::new(sim.clone());
    let checked =
        recover_and_check(&reopen, &storage, Path::new(DIR), &mut model, &mut Rng::new(1), 2);
    let violation = checked.expect_err("a different event is a violation");
    assert_eq!(violation.invariant, "G3 byte-identical", "{violation}");
}
