//! Guards decide-then-append: an application that loads a projection's state with the stream
//! version it reflects, decides on it, and appends with `Expect::Exact(version)` never acts on
//! a state that misses an event of the stream (8 threads withdrawing from 300 accounts that
//! each hold one withdrawal's worth: no account is overdrawn), and bounded retries with backoff
//! get every contested decision made without livelock.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use annal::{Envelope, Expect, Journal, Projection, TypedEvent};
use serde::{Deserialize, Serialize};

use common::both;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Money {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl TypedEvent for Money {
    fn event_type(&self) -> &str {
        match self {
            Money::Deposited { .. } => "deposited",
            Money::Withdrawn { .. } => "withdrawn",
        }
    }
}

/// Balance per account; negative means overdrawn.
struct Balances;

impl Projection for Balances {
    const NAME: &'static str = "balances";
    const SCHEMA_VERSION: u32 = 1;
    type Event = Money;
    type State = BTreeMap<String, i64>;

    fn apply(state: &mut Self::State, event: &Envelope<'_, Money>) {
        let balance = state.entry(event.stream.to_string()).or_default();
        match event.data {
            Money::Deposited { amount } => *balance += i64::try_from(amount).expect("small"),
            Money::Withdrawn { amount } => *balance -= i64::try_from(amount).expect("small"),
        }
    }
}

const ACCOUNTS: usize = 300;
const THREADS: usize = 8;
const ATTEMPTS_MAX: u32 = 200;

/// Withdraws 10 from `account` if its balance allows, retrying conflicts with backoff. Returns
/// whether this call withdrew.
fn withdraw(journal: &Journal, account: &str) -> bool {
    for attempt in 0..ATTEMPTS_MAX {
        let loaded = journal.load::<Balances>(account).expect("load");
        if loaded.state.get(account).copied().unwrap_or(0) < 10 {
            return false;
        }
        let event = Money::Withdrawn { amount: 10 };
        match journal.append(account, Expect::Exact(loaded.version), [event]) {
            Ok(_) => return true,
            Err(e) if e.is_conflict() => {
                std::thread::sleep(Duration::from_micros(20 << attempt.min(6)));
            }
            Err(e) => panic!("append: {e}"),
        }
    }
    panic!("{account}: no decision after {ATTEMPTS_MAX} attempts");
}

#[test]
fn eight_threads_never_overdraw_three_hundred_accounts() {
    both(|place| {
        let journal =
            Arc::new(place.options().projection::<Balances>().open(&place.dir).expect("open"));
        for a in 0..ACCOUNTS {
            journal
                .append(&format!("acct-{a}"), Expect::NoStream, [Money::Deposited { amount: 10 }])
                .expect("deposit");
        }
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let journal = Arc::clone(&journal);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    // Each thread walks the accounts from its own offset, so they collide.
                    (0..ACCOUNTS)
                        .filter(|i| {
                            withdraw(&journal, &format!("acct-{}", (i + t * 37) % ACCOUNTS))
                        })
                        .count()
                })
            })
            .collect();
        let withdrawals: usize = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        let balances = journal.state::<Balances>().expect("state");
        let overdrawn = balances.values().filter(|&&b| b < 0).count();
        assert_eq!(overdrawn, 0, "{}: overdrawn accounts", place.name());
        assert_eq!(withdrawals, ACCOUNTS, "{}: one withdrawal per account", place.name());
        assert!(balances.values().all(|&b| b == 0), "{}", place.name());
        for a in 0..ACCOUNTS {
            assert_eq!(journal.stream_version(&format!("acct-{a}")), 2);
        }
    });
}

#[test]
fn stream_version_agrees_with_the_state_it_is_read_with() {
    both(|place| {
        let journal = place.options().projection::<Balances>().open(&place.dir).expect("open");
        assert_eq!(journal.stream_version("a"), 0);
        let loaded = journal.load::<Balances>("a").expect("load");
        assert_eq!((loaded.version, loaded.seq), (0, 0));
        journal.append("a", Expect::NoStream, [Money::Deposited { amount: 5 }]).expect("append");
        journal.append("b", Expect::NoStream, [Money::Deposited { amount: 7 }]).expect("append");
        let loaded = journal.load::<Balances>("a").expect("load");
        assert_eq!((loaded.version, loaded.seq), (1, 2), "{}", place.name());
        assert_eq!(loaded.state.get("a"), Some(&5));
        assert_eq!(journal.stream_version("a"), 1);
    });
}
