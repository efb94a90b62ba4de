//! Guards against two writers at once and against readers blocked by a writer: while this test
//! process holds the writer lock (an open `annal::Journal`), every writing command (init,
//! append, compact, verify, recover) must exit 4 naming this process's pid, and every reading
//! command (read, replay, snapshots, info, export, audit-verify) must still succeed and see the
//! holder's events.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use annal::{Expect, Journal, NewEvent};
use serde_json::json;

use crate::common::{Scratch, s, u};

fn hold(sc: &Scratch) -> Journal {
    Journal::open(&sc.store).expect("the test takes the writer lock")
}

#[test]
fn writers_exit_4_naming_the_holder_while_readers_go_on() {
    let sc = Scratch::init();
    sc.append("a", "t", r#"{"n":1}"#);
    sc.run("compact", &[]).ok();
    let journal = hold(&sc);
    journal
        .append_events(
            "a",
            Expect::Exact(1),
            vec![NewEvent::json("t", &json!({"n": 2})).expect("event")],
        )
        .expect("the holder appends");
    let pid = std::process::id();

    for (command, args) in [
        ("init", &[][..]),
        ("append", &["--stream", "b", "--type", "t"][..]),
        ("compact", &[][..]),
        ("verify", &[][..]),
        ("recover", &["--mode", "truncate-at-corruption"][..]),
    ] {
        let run = sc.run(command, args);
        run.code(4);
        let line = run.one_error_line();
        assert!(
            line.contains(&format!("pid {pid}")),
            "{command}: the error does not name pid {pid}: {line}"
        );
        assert!(line.contains("locked"), "{command}: {line}");
        assert_eq!(run.stdout, "", "{command}");
    }
    let batch = sc.run_stdin("append", &["--jsonl", "-"], "{\"stream\":\"b\",\"type\":\"t\"}\n");
    batch.code(4);
    assert!(batch.one_error_line().contains(&format!("pid {pid}")), "{}", batch.stderr);

    // Readers see the holder's acknowledged event, and nothing from the refused writers.
    let events = sc.read_all();
    let shown: Vec<(u64, &str)> = events.iter().map(|e| (u(e, "seq"), s(e, "stream"))).collect();
    assert_eq!(shown, [(1, "a"), (2, "a")]);
    let replay = sc.run("replay", &[]);
    replay.ok();
    assert_eq!(replay.json()["state"]["a"]["data"], json!({"n": 2}));
    let counts = sc.run("replay", &["--until", "1", "--projection", "counts"]);
    counts.ok();
    assert_eq!(u(&counts.json()["state"], "total"), 1);
    let snapshots = sc.run("snapshots", &[]);
    snapshots.ok();
    assert_eq!(u(&snapshots.json(), "log_start"), 2);
    let info = sc.info();
    assert_eq!(info["lock"], json!({"pid": pid, "held": true}));
    assert_eq!(u(&info, "last_seq"), 2);
    let export = sc.path("audit.jsonl");
    let exported = sc.run("export", &["--out", export.to_str().expect("utf-8")]);
    exported.ok();
    let audit = crate::common::annal(["audit-verify".as_ref(), export.as_os_str()]);
    audit.ok();
    assert_eq!(u(&audit.json(), "records"), 2);

    drop(journal);
    let info = sc.info();
    assert_eq!(info["lock"]["held"], json!(false));
    let run = sc.run("append", &["--stream", "b", "--type", "t"]);
    run.ok();
    assert_eq!(run.json(), json!({"seq": 3, "version": 1}));
}

#[test]
fn wait_gives_up_after_its_timeout_and_succeeds_once_the_lock_is_free() {
    let sc = Scratch::init();
    let journal = hold(&sc);
    let started = Instant::now();
    let run = sc.run("append", &["--stream", "a", "--type", "t", "--wait", "0.3"]);
    run.code(4);
    assert!(started.elapsed() >= Duration::from_millis(300), "--wait 0.3 did not wait");
    assert!(
        run.one_error_line().contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );

    let child = Command::new(env!("CARGO_BIN_EXE_annal"))
        .args(["append".as_ref(), sc.store.as_os_str()])
        .args(["--stream", "a", "--type", "t", "--wait", "30"])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a waiting append");
    std::thread::sleep(Duration::from_millis(300));
    drop(journal);
    let out = child.wait_with_output().expect("the waiting append finishes");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v, json!({"seq": 1, "version": 1}));
}
