//! Guards time travel: replay until a timestamp gives the state after the last event at or
//! before it, for events spread over many segments, and equals replay until that sequence.
//! Also guards decoding: an event read as the wrong type is an error naming its sequence
//! number and type.

mod common;

use annal::{Counts, Error, Expect, Until};
use common::{Board, Task, both, model_board};

#[test]
fn replay_until_a_time_across_segments() {
    both(|place| {
        let journal = place.options().open(&place.dir).expect("open");
        let mut model = Vec::new();
        for i in 0..300u32 {
            let stream = format!("task-{}", i % 7);
            let task = Task::Completed { by: format!("actor-{}", i % 3), minutes: i };
            journal.append(&stream, Expect::Any, [task.clone()]).expect("append");
            model.push((stream, task));
        }
        assert!(journal.log().segments().len() > 4, "{}: events span segments", place.name());
        let events: Vec<_> =
            journal.read::<Task>(annal::Query::all()).collect::<Result<_, _>>().expect("read");
        for e in events.iter().step_by(13) {
            let (state, at) = journal.replay::<Board>(Until::Time(e.ts)).expect("replay");
            let want = events.iter().rev().find(|x| x.ts <= e.ts).expect("itself").seq;
            assert_eq!(at, want, "{}", place.name());
            assert_eq!(state, model_board(&model[..usize::try_from(at).expect("small")]));
        }
        let (counts, at) = journal.replay::<Counts>(Until::Time(events[0].ts - 1)).expect("before");
        assert_eq!((counts.total, at), (0, 0), "a time before the first event selects nothing");
        let err = journal.replay::<Board>(Until::Seq(301)).expect_err("past the end");
        assert!(err.to_string().contains("301"), "{err}");
    });
}

#[test]
fn decoding_as_the_wrong_type_names_sequence_and_type() {
    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "only decoding is tested")]
    struct Other {
        amount: u64,
    }
    both(|place| {
        let journal = place.options().open(&place.dir).expect("open");
        journal.append("t", Expect::Any, [Task::Created { title: "x".into() }]).expect("append");
        journal.append("t", Expect::Any, [Task::Started { by: "ada".into() }]).expect("append");
        let err = journal
            .read::<Other>(annal::Query::range(2..))
            .next()
            .expect("one")
            .expect_err("wrong type");
        match &err {
            Error::Projection(annal_projection_error) => {
                let text = annal_projection_error.to_string();
                assert!(text.contains("sequence 2") && text.contains("task-started"), "{text}");
            }
            other => panic!("{}: expected a decode error, got {other}", place.name()),
        }
    });
}
