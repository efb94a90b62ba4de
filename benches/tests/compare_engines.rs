//! Guards against an engine of the comparison harness whose code path does not work, or that
//! would be timed doing nothing: every engine runs every workload on tiny counts, and its store
//! must read back exactly the events written to it. No timings are checked.

use annal_benches::BenchResult;
use annal_benches::compare::report::{Bound, report};
use annal_benches::compare::{
    Config, DurableLoad, ReplayStores, Workload, bulk_run, durable_run, durable_writers,
    run_workload,
};
use annal_benches::engines::{self, Engine, Mode, Payloads, Spec, check_contents};

#[test]
fn one_durable_writer_on_every_engine() -> BenchResult<()> {
    let payloads = Payloads::new(100)?;
    for engine in Engine::ALL {
        let run = durable_run(engine, DurableLoad { writers: 1, per_writer: 20 }, &payloads)?;
        assert_eq!(run.engine, engine);
        assert_eq!(run.events, 20, "{engine}");
        assert_eq!(run.latencies.len(), 20, "{engine}");
    }
    Ok(())
}

#[test]
fn four_durable_writers_on_every_engine() -> BenchResult<()> {
    let payloads = Payloads::new(100)?;
    for engine in Engine::ALL {
        let run = durable_run(engine, DurableLoad { writers: 4, per_writer: 5 }, &payloads)?;
        assert_eq!(run.events, 20, "{engine}");
        assert_eq!(run.latencies.len(), 20, "{engine}");
    }
    Ok(())
}

#[test]
fn bulk_on_every_engine() -> BenchResult<()> {
    for bytes in [100, 1000] {
        let payloads = Payloads::new(bytes)?;
        for engine in Engine::ALL {
            let run = bulk_run(engine, 200, &payloads)?;
            assert_eq!(run.events, 200, "{engine}");
            let counted = matches!(engine, Engine::Annal | Engine::AnnalWal | Engine::Raw);
            assert_eq!(run.written_bytes.is_some(), counted, "{engine}");
            if let Some(written) = run.written_bytes {
                assert!(written >= 200 * bytes as u64, "{engine} wrote {written} B");
            }
        }
    }
    Ok(())
}

#[test]
fn replay_on_every_engine() -> BenchResult<()> {
    let payloads = Payloads::new(100)?;
    let stores = ReplayStores::prepare(&Engine::ALL, 200, &payloads)?;
    assert_eq!(stores.expected.events, 200);
    for engine in Engine::ALL {
        // Twice: reading must leave every store readable (okaywal reopens its log to read).
        for _ in 0..2 {
            let run = stores.replay(engine)?;
            assert_eq!(run.events, 200, "{engine}");
        }
    }
    stores.close()
}

#[test]
fn durable_writers_summarizes_every_append() -> BenchResult<()> {
    for engine in [Engine::Annal, Engine::Okaywal] {
        let summary = durable_writers(engine, 3, 4, 64)?;
        assert_eq!(summary.engine, engine);
        assert_eq!(summary.writers, 3);
        assert_eq!(summary.events, 12);
        assert!(summary.p50_us <= summary.p999_us);
        assert!(summary.p999_us <= summary.max_us);
        // annal counts its fdatasyncs, at least one per append of a writer; okaywal does not.
        match engine {
            Engine::Annal => assert!(summary.fdatasyncs.is_some_and(|s| (4..=12).contains(&s))),
            _ => assert_eq!(summary.fdatasyncs, None),
        }
    }
    Ok(())
}

#[test]
fn a_store_that_does_not_hold_the_events_fails_the_check() -> BenchResult<()> {
    let payloads = Payloads::new(100)?;
    for engine in Engine::ALL {
        let dir = annal_benches::scratch_dir()?;
        let spec = Spec { mode: Mode::Durable, capacity: 3, payload_bytes: 100 };
        let store = engines::open(engine, dir.path(), spec)?;
        {
            let mut appender = store.appender(0)?;
            for n in [0, 1, 2] {
                appender.append(&payloads.make(n))?;
            }
        }
        assert!(check_contents(store.as_ref(), &payloads, 4, true).is_err(), "{engine}: short");
        assert!(check_contents(store.as_ref(), &payloads, 2, true).is_err(), "{engine}: long");
        let other = Payloads::new(99)?;
        assert!(check_contents(store.as_ref(), &other, 3, true).is_err(), "{engine}: bytes");
        check_contents(store.as_ref(), &payloads, 3, true)?;
        assert!(store.bulk(&payloads, 1).is_err(), "{engine}: bulk on a durable store");
        store.close()?;
    }
    Ok(())
}

#[test]
fn every_workload_reports_every_engine() -> BenchResult<()> {
    let config = Config {
        rounds: 1,
        warmup: 0,
        appends: 10,
        writers: 2,
        per_writer: 5,
        bulk: 100,
        replay: 100,
        ..Config::new(true)
    };
    config.validate()?;
    let payloads = Payloads::new(config.payload_bytes)?;
    let mut results = Vec::new();
    for w in Workload::ALL {
        results.push(run_workload(&config, w, &payloads, &mut |_| {})?);
    }
    let report = report(&config, &results);
    assert_eq!(report.workloads.len(), 4);
    for w in &report.workloads {
        assert_eq!(w.rows.len(), Engine::ALL.len(), "{:?}", w.workload);
        for row in &w.rows {
            assert_eq!(row.events_per_sec_rounds.len(), 1);
            assert_eq!(row.latency_us.is_some(), w.workload.is_durable());
            assert!(row.vs_annal.is_some());
        }
    }
    assert_eq!(report.targets.len(), 8);
    assert!(report.targets.iter().all(|t| t.value.is_some() && t.met.is_some()));
    assert!(report.targets.iter().any(|t| t.bound == Bound::AtMost));
    Ok(())
}
