//! Guards expected-version checks: each `Expect` variant succeeds and conflicts as documented on
//! `append` and `append_multi`; a conflict writes nothing and names stream, expected and actual
//! versions; checking and appending are one step, so 16 threads racing with `Exact(v)` on one
//! stream produce exactly one winner per version.

mod common;

use std::sync::{Arc, Barrier};

use annal::{Error, Expect, NewEvent};
use common::{Place, Task, both};

fn created(title: &str) -> Task {
    Task::Created { title: title.into() }
}

fn conflict(result: annal::Result<impl std::fmt::Debug>) -> (String, Expect, u64) {
    match result {
        Err(Error::Conflict { stream, expected, actual }) => (stream, expected, actual),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn every_variant_succeeds_and_conflicts_on_append() {
    both(|place| {
        let j = place.options().open(&place.dir).expect("open");
        assert_eq!(
            conflict(j.append("t", Expect::Exists, [created("a")])),
            ("t".into(), Expect::Exists, 0)
        );
        assert_eq!(
            conflict(j.append("t", Expect::Exact(1), [created("a")])),
            ("t".into(), Expect::Exact(1), 0)
        );
        assert_eq!(j.last_seq(), 0, "{}: conflicts write nothing", place.name());
        let a = j.append("t", Expect::NoStream, [created("a"), created("b")]).expect("no stream");
        assert_eq!((a.first, a.last, a.version), (1, 2, 2));
        assert_eq!(
            conflict(j.append("t", Expect::NoStream, [created("c")])),
            ("t".into(), Expect::NoStream, 2)
        );
        assert_eq!(
            conflict(j.append("t", Expect::Exact(1), [created("c")])),
            ("t".into(), Expect::Exact(1), 2)
        );
        assert_eq!(j.append("t", Expect::Exists, [created("c")]).expect("exists").version, 3);
        assert_eq!(j.append("t", Expect::Exact(3), [created("d")]).expect("exact").version, 4);
        assert_eq!(j.append("t", Expect::Any, [created("e")]).expect("any").version, 5);
        assert_eq!(j.append("u", Expect::Any, [created("f")]).expect("any, new stream").version, 1);
        assert_eq!(j.last_seq(), 6);
        let msg = conflict_message(j.append("t", Expect::Exact(9), [created("x")]));
        assert!(
            msg.contains("\"t\"") && msg.contains("version 9") && msg.contains("actual version 5"),
            "{msg}"
        );
    });
}

fn conflict_message(result: annal::Result<impl std::fmt::Debug>) -> String {
    result.expect_err("conflict").to_string()
}

#[test]
fn append_multi_is_all_or_nothing_and_checks_everything_first() {
    both(|place| {
        let j = place.options().open(&place.dir).expect("open");
        j.append("a", Expect::Any, [created("a1")]).expect("seed");
        let ev = |t: &str| vec![NewEvent::new(&created(t)).expect("encode")];
        // The second expectation fails: nothing of the first is written either.
        let err =
            j.append_multi(&[("b", Expect::NoStream, ev("b1")), ("a", Expect::Exact(5), ev("a2"))]);
        assert_eq!(conflict(err), ("a".into(), Expect::Exact(5), 1));
        assert_eq!(j.last_seq(), 1, "{}", place.name());
        assert_eq!(j.stream_version("b"), 0);
        let out = j
            .append_multi(&[
                ("b", Expect::NoStream, ev("b1")),
                ("a", Expect::Exact(1), ev("a2")),
                ("b", Expect::Exact(1), ev("b2")),
            ])
            .expect("multi");
        let got: Vec<_> =
            out.iter().map(|a| (a.stream.as_str(), a.first, a.last, a.version)).collect();
        assert_eq!(got, vec![("b", 2, 2, 1), ("a", 3, 3, 2), ("b", 4, 4, 2)]);
        let versions: Vec<(String, u64)> = j
            .read_raw(annal::Query::all())
            .map(|e| e.map(|e| (e.stream, e.version)))
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(
            versions,
            vec![("a".into(), 1), ("b".into(), 1), ("a".into(), 2), ("b".into(), 2)]
        );
    });
}

#[test]
fn sixteen_threads_racing_on_exact_versions_produce_one_winner_per_version() {
    let place = Place::os();
    let j = Arc::new(place.options().open(&place.dir).expect("open"));
    let rounds = 20u64;
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let j = Arc::clone(&j);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut wins = Vec::new();
                for v in 0..rounds {
                    barrier.wait();
                    let e = Task::Started { by: format!("thread-{t}") };
                    match j.append("race", Expect::Exact(v), [e]) {
                        Ok(a) => wins.push(a.version),
                        Err(Error::Conflict { actual, .. }) => assert!(actual > v),
                        Err(e) => panic!("unexpected error {e}"),
                    }
                    barrier.wait();
                }
                wins
            })
        })
        .collect();
    let mut wins: Vec<u64> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    wins.sort_unstable();
    assert_eq!(wins, (1..=rounds).collect::<Vec<_>>(), "exactly one winner per version");
    assert_eq!(j.last_seq(), rounds);
    assert_eq!(j.stream_version("race"), rounds);
}

#[test]
fn invalid_appends_are_refused_without_writing() {
    both(|place| {
        let j = place.options().open(&place.dir).expect("open");
        let err = j.append("", Expect::Any, [created("a")]).expect_err("empty stream");
        assert!(matches!(err, Error::Projection(_) | Error::Invalid(_)), "{err}");
        let err = j.append("s", Expect::Any, Vec::<Task>::new()).expect_err("no events");
        assert!(err.to_string().contains("at least one event"), "{err}");
        let long = "s".repeat(annal::STREAM_NAME_BYTES_MAX + 1);
        assert!(j.append(&long, Expect::Any, [created("a")]).is_err());
        assert_eq!(j.last_seq(), 0);
    });
}
