//! Guards the live projections under concurrent appends: an append folds what earlier commits
//! acknowledged, and only when no other thread is folding, so a read must fold whatever is left
//! (the reader's own append included). Every appender, right after
//! its append returns, must see a state that includes it (read your writes), and the final
//! state must equal a replay of the log, on both storages.

mod common;

use std::sync::Arc;

use annal::{Counts, Expect, Until};
use common::{Task, both};

#[test]
fn concurrent_appenders_read_their_own_writes_and_the_state_equals_a_replay() {
    const THREADS: u64 = 8;
    const APPENDS: u64 = 40;
    both(|place| {
        let j = Arc::new(place.options().projection::<Counts>().open(&place.dir).expect("open"));
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let j = Arc::clone(&j);
                s.spawn(move || {
                    let stream = format!("worker-{t}");
                    for i in 0..APPENDS {
                        let event = Task::Created { title: format!("{t}-{i}") };
                        let appended = j.append(&stream, Expect::Any, [event]).expect("append");
                        let (state, at) = j.state_at::<Counts>().expect("state");
                        assert!(at >= appended.last, "state at {at} misses {}", appended.last);
                        assert!(
                            state.total >= appended.last,
                            "{} < {}",
                            state.total,
                            appended.last
                        );
                        assert_eq!(state.by_stream.get(&stream).copied(), Some(i + 1));
                    }
                });
            }
        });
        let (state, at) = j.state_at::<Counts>().expect("state");
        assert_eq!((at, state.total), (THREADS * APPENDS, THREADS * APPENDS), "{}", place.name());
        let (replayed, replayed_at) = j.replay::<Counts>(Until::End).expect("replay");
        assert_eq!((replayed, replayed_at), (state, at), "{}", place.name());
    });
}
