//! Guards G5 (state is a replay) on both storages: for random task events over several streams,
//! `replay` until every sequence number equals the fold of a `Vec` model's prefix, the live state
//! equals the replay to the end and the model, stream versions equal the model's, and all of it
//! holds again after a reopen.

mod common;

use annal::{Counts, Expect, Until};
use common::{Board, Place, Task, model_board};
use proptest::prelude::*;

fn task() -> impl Strategy<Value = Task> {
    prop_oneof![
        "[a-z ]{0,20}".prop_map(|title| Task::Created { title }),
        "[a-z]{1,6}".prop_map(|by| Task::Started { by }),
        ("[a-z]{1,6}", 0u32..500).prop_map(|(by, minutes)| Task::Completed { by, minutes }),
    ]
}

/// Appends of 1-3 events to one of 4 streams.
fn appends() -> impl Strategy<Value = Vec<(u8, Vec<Task>)>> {
    proptest::collection::vec((0u8..4, proptest::collection::vec(task(), 1..4)), 1..40)
}

fn run(place: &Place, appends: &[(u8, Vec<Task>)]) -> Result<(), TestCaseError> {
    let journal = place
        .options()
        .projection::<Board>()
        .projection::<Counts>()
        .open(&place.dir)
        .expect("open");
    let mut model: Vec<(String, Task)> = Vec::new();
    for (stream, tasks) in appends {
        let stream = format!("task-{stream}");
        let a = journal.append(&stream, Expect::Any, tasks.clone()).expect("append");
        model.extend(tasks.iter().map(|t| (stream.clone(), t.clone())));
        prop_assert_eq!(a.last, model.len() as u64);
        prop_assert_eq!(a.version, model.iter().filter(|(s, _)| *s == stream).count() as u64);
    }
    for seq in 0..=model.len() {
        let (state, at) = journal.replay::<Board>(Until::Seq(seq as u64)).expect("replay");
        prop_assert_eq!(at, seq as u64);
        prop_assert_eq!(state, model_board(&model[..seq]), "replay until {}", seq);
    }
    let (live, at) = journal.state_at::<Board>().expect("live state");
    prop_assert_eq!(at, model.len() as u64);
    prop_assert_eq!(&live, &model_board(&model));
    prop_assert_eq!(live, journal.replay::<Board>(Until::End).expect("replay").0);
    let counts = journal.state::<Counts>().expect("counts");
    prop_assert_eq!(counts.total, model.len() as u64);
    for stream in 0..4u8 {
        let name = format!("task-{stream}");
        let n = model.iter().filter(|(s, _)| *s == name).count() as u64;
        prop_assert_eq!(journal.stream_version(&name), n);
        prop_assert_eq!(counts.by_stream.get(&name).copied().unwrap_or(0), n);
    }
    drop(journal);
    let journal = place.options().projection::<Board>().open(&place.dir).expect("reopen");
    prop_assert_eq!(journal.state::<Board>().expect("live after reopen"), model_board(&model));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn sim_replay_live_state_and_versions_equal_the_model(seed in any::<u64>(), appends in appends()) {
        run(&Place::sim(seed), &appends)?;
    }

    #[test]
    fn os_replay_live_state_and_versions_equal_the_model(appends in appends()) {
        run(&Place::os(), &appends)?;
    }
}
