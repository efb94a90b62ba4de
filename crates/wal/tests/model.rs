//! Guards against any divergence between the log and a plain `Vec` model: for random sequences
//! of appends, batches, syncs, segment rolls and reopens, on both storages, the log reads back
//! exactly the model (from the start and from any position), with matching last sequence.

mod common;

use annal_wal::Durability;
use common::{Env, payloads, read_all, small};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
    Reopen,
    ReadFrom(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..600).prop_map(Op::Append),
        2 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8)
            .prop_map(Op::Batch),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => (1u64..200).prop_map(Op::ReadFrom),
    ]
}

fn durability() -> impl Strategy<Value = Durability> {
    prop_oneof![Just(Durability::Sync), Just(Durability::Manual), Just(Durability::Periodic(2))]
}

fn run(env: &Env, durability: Durability, ops: &[Op]) -> Result<(), TestCaseError> {
    let options = small(durability);
    let mut log = env.open(options.clone()).expect("open");
    let mut model: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        match op {
            Op::Append(p) => {
                let a = log.append(p).expect("append");
                model.push(p.clone());
                prop_assert_eq!(a.last, model.len() as u64);
            }
            Op::Batch(b) => {
                let a = log.append_batch(b).expect("batch");
                prop_assert_eq!(a.first, model.len() as u64 + 1);
                model.extend(b.iter().cloned());
                prop_assert_eq!(a.last, model.len() as u64);
            }
            Op::Sync => log.sync().expect("sync"),
            Op::Reopen => {
                drop(log);
                log = env.open(options.clone()).expect("reopen");
                prop_assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
            }
            Op::ReadFrom(from) => {
                let got: Vec<Vec<u8>> =
                    log.read_from(*from).map(|r| r.expect("read").payload.to_vec()).collect();
                let skip = usize::try_from(*from - 1).expect("small").min(model.len());
                prop_assert_eq!(&got, &model[skip..]);
            }
        }
        prop_assert_eq!(log.last_seq(), model.len() as u64);
    }
    prop_assert_eq!(payloads(&read_all(&log)), model.clone());
    drop(log);
    let log = env.open(options).expect("final reopen");
    prop_assert_eq!(payloads(&read_all(&log)), model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sim_log_equals_vec_model(seed in any::<u64>(), d in durability(), ops in proptest::collection::vec(op(), 1..80)) {
        run(&Env::sim(seed), d, &ops)?;
    }

    #[test]
    fn os_log_equals_vec_model(d in durability(), ops in proptest::collection::vec(op(), 1..40)) {
        // The OS file system makes every fsync real: fewer cases, same model.
        run(&Env::os(), d, &ops)?;
    }
}
