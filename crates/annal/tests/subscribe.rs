//! Guards subscriptions against skipping or repeating events under concurrent appends (a known
//! failure of other event stores): subscribers started before, during and after concurrent
//! appenders each see exactly the events from their start on, once, in order.

mod common;

use std::sync::Arc;

use annal::{Expect, Journal};
use common::{Task, both};

fn seqs(journal: &Arc<Journal>, from: u64, n: u64) -> std::thread::JoinHandle<Vec<u64>> {
    let journal = Arc::clone(journal);
    std::thread::spawn(move || {
        journal
            .subscribe::<Task>(from)
            .take(usize::try_from(n).expect("small"))
            .map(|e| e.expect("event").seq)
            .collect()
    })
}

#[test]
fn subscribers_see_every_sequence_once_in_order() {
    both(|place| {
        let journal = Arc::new(place.options().open(&place.dir).expect("open"));
        let writers = 8u64;
        let per_writer = 40u64;
        let total = writers * per_writer;
        let before = seqs(&journal, 1, total);
        let appenders: Vec<_> = (0..writers)
            .map(|w| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    for i in 0..per_writer {
                        let e = Task::Started { by: format!("w{w}-{i}") };
                        journal.append(&format!("task-{w}"), Expect::Any, [e]).expect("append");
                    }
                })
            })
            .collect();
        while journal.last_seq() < total / 2 {
            std::thread::yield_now();
        }
        let during = seqs(&journal, 7, total - 6);
        for a in appenders {
            a.join().expect("appender");
        }
        let after = seqs(&journal, 100, total - 99);
        assert_eq!(
            before.join().expect("before"),
            (1..=total).collect::<Vec<_>>(),
            "{}",
            place.name()
        );
        assert_eq!(
            during.join().expect("during"),
            (7..=total).collect::<Vec<_>>(),
            "{}",
            place.name()
        );
        assert_eq!(
            after.join().expect("after"),
            (100..=total).collect::<Vec<_>>(),
            "{}",
            place.name()
        );
    });
}
