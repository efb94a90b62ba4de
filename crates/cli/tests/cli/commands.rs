//! Guards against the output shapes and exit codes of the everyday commands drifting from the
//! contract: `init`, `append`, `read`, `replay`, `info`, `compact`, `snapshots`, `completions`,
//! every `--help`, usage errors (exit 2), and private file modes (0600 files, 0700 directories).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Scratch, annal, s, u};

const COMMANDS: [&str; 19] = [
    "init",
    "append",
    "read",
    "replay",
    "compact",
    "snapshots",
    "export",
    "audit-verify",
    "verify",
    "info",
    "recover",
    "salvage",
    "demo",
    "keygen",
    "checkpoint",
    "prove",
    "verify-proof",
    "completions",
    "man",
];

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// `2026-11-23T10:00:00.123456789Z`: RFC 3339, UTC, nanoseconds.
#[track_caller]
fn assert_rfc3339_ns(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 30, "{ts}");
    for (i, &c) in b.iter().enumerate() {
        let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 29);
        assert_eq!(c.is_ascii_digit(), want_digit, "{ts}: byte {i}");
    }
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19], b[29]),
        (b'-', b'-', b'T', b':', b':', b'.', b'Z')
    );
}

#[test]
fn init_reports_creation_and_is_idempotent() {
    let sc = Scratch::new();
    let first = sc.run("init", &[]);
    first.ok();
    let v = first.json();
    assert_eq!(keys(&v), set(&["dir", "created", "last_seq"]));
    assert_eq!(v["created"], json!(true));
    assert_eq!(v["last_seq"], json!(0));
    assert_eq!(s(&v, "dir"), sc.store.display().to_string());
    assert!(sc.store.join("wal").is_dir());

    sc.append("a", "t", "{}");
    let again = sc.run("init", &[]);
    again.ok();
    assert_eq!(
        again.json(),
        json!({"dir": sc.store.display().to_string(), "created": false, "last_seq": 1})
    );
}

fn assert_private(root: &Path) -> usize {
    let mut checked = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).expect("stat");
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "directory {} has mode {mode:o}", path.display());
            for entry in std::fs::read_dir(&path).expect("list") {
                stack.push(entry.expect("entry").path());
            }
        } else {
            assert_eq!(mode, 0o600, "file {} has mode {mode:o}", path.display());
        }
        checked += 1;
    }
    checked
}

#[test]
fn files_are_private_after_init_append_and_compact() {
    let sc = Scratch::new();
    sc.run("init", &[]).ok();
    // The store, LOCK, wal/ and its segment.
    assert!(assert_private(&sc.store) >= 4);
    sc.append("a", "t", r#"{"x":1}"#);
    sc.append_jsonl("{\"stream\":\"b\",\"type\":\"t\"}\n");
    assert!(assert_private(&sc.store) >= 4);
    sc.run("compact", &[]).ok();
    // Adds MANIFEST, snapshots/ and a directory and a file per projection.
    assert!(assert_private(&sc.store) >= 11, "{:?}", crate::common::file_names(&sc.store));
}

#[test]
fn audit_export_file_is_private() {
    let sc = Scratch::init();
    sc.append("a", "t", r#"{"secret":"s3cr3t"}"#);
    let export = sc.path("audit.jsonl");
    sc.run("export", &["--out", export.to_str().expect("utf-8")]).ok();
    let mode = std::fs::metadata(&export).expect("export file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit export, a copy of every event, has mode {mode:o}");
}

#[test]
fn append_prints_seq_and_stream_version() {
    let sc = Scratch::init();
    let run = sc.run("append", &["--stream", "a", "--type", "made", "--data", r#"{"k":1}"#]);
    run.ok();
    assert_eq!(run.json(), json!({"seq": 1, "version": 1}));
    let cases = [
        (
            &["--stream", "b", "--type", "made", "--expect", "none"][..],
            json!({"seq": 2, "version": 1}),
        ),
        (
            &["--stream", "a", "--type", "more", "--expect", "1"][..],
            json!({"seq": 3, "version": 2}),
        ),
        (
            &["--stream", "a", "--type", "more", "--expect", "exists"][..],
            json!({"seq": 4, "version": 3}),
        ),
        (
            &["--stream", "b", "--type", "more", "--expect", "any"][..],
            json!({"seq": 5, "version": 2}),
        ),
    ];
    for (args, want) in cases {
        let run = sc.run("append", args);
        run.ok();
        assert_eq!(run.json(), want, "{args:?}");
    }
    // Data defaults to {}, the actor lands in meta.
    sc.run("append", &["--stream", "c", "--type", "t", "--actor", "ada"]).ok();
    let events = sc.read_all();
    assert_eq!(events.len(), 6);
    assert_eq!(events[5]["data"], json!({}));
    assert_eq!(events[5]["meta"], json!({"actor": "ada"}));
    assert_eq!(events[0]["meta"], json!({}));
}

#[test]
fn expected_version_mismatch_exits_4_and_appends_nothing() {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    sc.append("a", "t", "{}");
    for (stream, expect, expected, actual) in [
        ("a", "none", "expected no stream", "actual version 2"),
        ("a", "1", "expected version 1", "actual version 2"),
        ("a", "3", "expected version 3", "actual version 2"),
        ("new", "exists", "expected", "new"),
        ("new", "4", "expected version 4", "new"),
    ] {
        let run = sc.run("append", &["--stream", stream, "--type", "t", "--expect", expect]);
        run.code(4);
        let line = run.one_error_line();
        assert!(line.contains(&format!("\"{stream}\"")), "{line}");
        assert!(line.contains(expected), "{line}");
        assert!(line.contains(actual), "{line}");
        assert_eq!(run.stdout, "", "a refused append printed a result");
    }
    assert_eq!(sc.read_all().len(), 2);
    assert_eq!(u(&sc.info(), "last_seq"), 2);
}

#[test]
fn bad_flag_values_fail_with_one_error_line() {
    let sc = Scratch::init();
    for (args, flag) in [
        (&["append", "--stream", "a", "--type", "t", "--data", "{not json"][..], "--data"),
        (&["append", "--stream", "a", "--type", "t", "--expect", "maybe"][..], "--expect"),
        (&["replay", "--at", "yesterday"][..], "--at"),
        (&["append", "--stream", "a", "--type", "t", "--wait=-1"][..], "--wait"),
        (&["append", "--stream", "a", "--type", "t", "--wait", "nan"][..], "--wait"),
        (&["compact", "--wait", "soon"][..], "--wait"),
        (&["audit-verify", "--head", "not-hex"][..], "--head"),
        (&["compact", "--keep-snapshots", "0"][..], "--keep-snapshots"),
    ] {
        let run = sc.run(args[0], &args[1..]);
        // A malformed --data is found reading the JSON (exit 1); the rest are usage errors.
        let want = if flag == "--data" { 1 } else { 2 };
        assert_eq!(run.code, want, "{args:?} exited {}: {}", run.code, run.stderr);
        let line = run.one_error_line();
        assert!(line.contains(flag), "{args:?}: the error does not name {flag}: {line}");
    }
    assert_eq!(sc.read_all().len(), 0);
}

#[test]
fn read_prints_envelopes_and_filters() {
    let sc = Scratch::init();
    sc.append_jsonl(concat!(
        "{\"stream\":\"a\",\"type\":\"t1\",\"data\":{\"n\":1},\"meta\":{\"actor\":\"ada\",\"correlation_id\":\"c-1\",\"causation_id\":\"k-1\",\"tenant\":7}}\n",
        "{\"stream\":\"b\",\"type\":\"t2\",\"data\":[1,2]}\n",
        "{\"stream\":\"a\",\"type\":\"t3\",\"data\":\"text\"}\n",
        "{\"stream\":\"b\",\"type\":\"t4\",\"data\":null}\n",
        "{\"stream\":\"a\",\"type\":\"t5\"}\n",
    ));
    let all = sc.read_all();
    assert_eq!(all.len(), 5);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(keys(e), set(&["seq", "ts", "stream", "version", "type", "data", "meta"]));
        assert_eq!(u(e, "seq"), i as u64 + 1);
        assert_rfc3339_ns(s(e, "ts"));
    }
    // Free-form keys are shown under "extra".
    assert_eq!(
        all[0]["meta"],
        json!({"actor": "ada", "correlation_id": "c-1", "causation_id": "k-1", "extra": {"tenant": 7}})
    );
    let shown: Vec<(&str, u64, &str, Value)> = all
        .iter()
        .map(|e| (s(e, "stream"), u(e, "version"), s(e, "type"), e["data"].clone()))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("a", 1, "t1", json!({"n": 1})),
            ("b", 1, "t2", json!([1, 2])),
            ("a", 2, "t3", json!("text")),
            ("b", 2, "t4", Value::Null),
            ("a", 3, "t5", json!({})),
        ]
    );
    let seqs = |args: &[&str]| -> Vec<u64> {
        let run = sc.run("read", args);
        run.ok();
        run.json_lines().iter().map(|e| u(e, "seq")).collect()
    };
    assert_eq!(seqs(&["--from", "2"]), [2, 3, 4, 5]);
    assert_eq!(seqs(&["--until", "3"]), [1, 2, 3]);
    assert_eq!(seqs(&["--from", "2", "--until", "4"]), [2, 3, 4]);
    assert_eq!(seqs(&["--stream", "a"]), [1, 3, 5]);
    assert_eq!(seqs(&["--stream", "b", "--from", "3"]), [4]);
    assert_eq!(seqs(&["--limit", "2"]), [1, 2]);
    assert_eq!(seqs(&["--stream", "a", "--limit", "2"]), [1, 3]);
    assert_eq!(seqs(&["--stream", "nobody"]), Vec::<u64>::new());
    assert_eq!(seqs(&["--from", "6"]), Vec::<u64>::new());
}

#[test]
fn read_follow_prints_events_appended_later() {
    let sc = Scratch::init();
    sc.append("a", "before", "{}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_annal"))
        .args(["read".as_ref(), sc.store.as_os_str(), "--follow".as_ref()])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn read --follow");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let pump = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || rx.recv_timeout(Duration::from_secs(20)).expect("read --follow printed a line");
    let first: Value = serde_json::from_str(&next()).expect("JSON");
    assert_eq!((u(&first, "seq"), s(&first, "type")), (1, "before"));
    // The follower holds no lock: appends go through while it runs.
    sc.append("b", "after", r#"{"late":true}"#);
    let second: Value = serde_json::from_str(&next()).expect("JSON");
    assert_eq!((u(&second, "seq"), s(&second, "type")), (2, "after"));
    assert_eq!(second["data"], json!({"late": true}));
    assert_eq!(child.try_wait().expect("poll"), None, "read --follow exited early");
    child.kill().expect("kill the follower");
    child.wait().expect("reap the follower");
    pump.join().expect("pump thread");
}

#[test]
fn replay_prints_seq_ts_projection_and_state() {
    let sc = Scratch::init();
    let empty = sc.run("replay", &[]);
    empty.ok();
    assert_eq!(empty.json(), json!({"seq": 0, "ts": null, "projection": "entities", "state": {}}));
    sc.append("a", "t", r#"{"x":1}"#);
    sc.append("b", "u", r#"{"y":2}"#);
    let events = sc.read_all();
    let run = sc.run("replay", &[]);
    run.ok();
    let v = run.json();
    assert_eq!(keys(&v), set(&["seq", "ts", "projection", "state"]));
    assert_eq!(v["seq"], json!(2));
    assert_eq!(v["ts"], events[1]["ts"]);
    assert_eq!(v["projection"], json!("entities"));
    assert_eq!(
        v["state"]["a"],
        json!({"version": 1, "type": "t", "updated": events[0]["ts"], "data": {"x": 1}})
    );
    let counts = sc.run("replay", &["--projection", "counts"]);
    counts.ok();
    assert_eq!(
        counts.json()["state"],
        json!({"total": 2, "by_type": {"t": 1, "u": 1}, "by_stream": {"a": 1, "b": 1}})
    );
    let past = sc.run("replay", &["--until", "3"]);
    past.code(1);
    let line = past.one_error_line();
    assert!(line.contains('3') && line.contains("last: 2"), "{line}");
}

#[test]
fn info_describes_segments_ranges_chain_and_lock() {
    let sc = Scratch::init();
    let empty = sc.info();
    assert_eq!(empty["events"], json!(0));
    assert_eq!(empty["last_seq"], json!(0));
    assert_eq!(empty["first_ts"], Value::Null);
    assert_eq!(empty["last_ts"], Value::Null);

    for i in 0..3 {
        sc.append("a", "t", &format!(r#"{{"i":{i}}}"#));
    }
    let events = sc.read_all();
    let v = sc.info();
    assert_eq!(
        keys(&v),
        set(&[
            "dir",
            "first_seq",
            "last_seq",
            "events",
            "first_ts",
            "last_ts",
            "chain_head",
            "bytes",
            "segments",
            "archived",
            "earliest_seq",
            "snapshots",
            "log_start",
            "lock",
            "tree"
        ])
    );
    assert_eq!(s(&v, "dir"), sc.store.display().to_string());
    assert_eq!((u(&v, "first_seq"), u(&v, "last_seq"), u(&v, "events")), (1, 3, 3));
    assert_eq!(v["first_ts"], events[0]["ts"]);
    assert_eq!(v["last_ts"], events[2]["ts"]);
    let head = s(&v, "chain_head");
    assert_eq!(head.len(), 64);
    assert!(head.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");
    let verified = sc.run("verify", &[]);
    verified.ok();
    assert_eq!(verified.json()["chain_head"], v["chain_head"]);
    assert_eq!((u(&v, "snapshots"), u(&v, "log_start")), (0, 1));
    assert_eq!(v["lock"]["held"], json!(false));

    let segments = v["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 1);
    let seg = &segments[0];
    assert_eq!(
        keys(seg),
        set(&["file", "first_seq", "last_seq", "data_bytes", "file_bytes", "sealed"])
    );
    let file = Path::new(s(seg, "file"));
    assert!(file.starts_with(sc.store.join("wal")), "{}", file.display());
    assert_eq!(std::fs::metadata(file).expect("segment").len(), u(seg, "file_bytes"));
    assert_eq!(u(&v, "bytes"), u(seg, "file_bytes"));
    assert_eq!((u(seg, "first_seq"), u(seg, "last_seq")), (1, 3));
    assert_eq!(seg["sealed"], json!(false));
    // Header, then three frames; the rest is preallocated zeros.
    let data = u(seg, "data_bytes");
    assert!(data > 64 && data < u(seg, "file_bytes"), "{seg}");
    let bytes = std::fs::read(file).expect("read segment");
    assert!(bytes[usize::try_from(data).expect("small")..].iter().all(|&b| b == 0));
}

#[test]
fn compact_then_snapshots_lists_what_is_in_force() {
    let sc = Scratch::init();
    let none = sc.run("snapshots", &[]);
    none.ok();
    assert_eq!(none.json(), json!({"log_start": 1, "generation": 0, "snapshots": []}));

    for i in 0..4 {
        sc.append(if i % 2 == 0 { "a" } else { "b" }, "t", &format!(r#"{{"i":{i}}}"#));
    }
    let before = sc.run("replay", &[]).json();
    let run = sc.run("compact", &[]);
    run.ok();
    let c = run.json();
    assert_eq!(
        keys(&c),
        set(&[
            "seq",
            "log_start",
            "snapshots_written",
            "segments_removed",
            "bytes_reclaimed",
            "files_removed",
            "archived"
        ])
    );
    assert_eq!((u(&c, "seq"), u(&c, "log_start")), (4, 5));
    assert_eq!(c["archived"], json!(false));
    let written: Vec<&str> =
        c["snapshots_written"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    for projection in ["entities", "counts"] {
        assert!(
            written.iter().any(|p| p.contains(&format!("snapshots/{projection}/"))),
            "no {projection} snapshot in {written:?}"
        );
    }
    for p in &written {
        assert!(Path::new(p).is_file(), "{p} was reported written but does not exist");
    }

    let run = sc.run("snapshots", &[]);
    run.ok();
    let v = run.json();
    assert_eq!((u(&v, "log_start"), u(&v, "generation")), (5, 1));
    let list = v["snapshots"].as_array().expect("list");
    assert_eq!(list.len(), written.len());
    let mut names = Vec::new();
    for snap in list {
        assert_eq!(keys(snap), set(&["projection", "schema_version", "seq", "file", "bytes"]));
        assert_eq!(u(snap, "seq"), 4);
        assert!(u(snap, "schema_version") >= 1);
        let file = s(snap, "file");
        assert_eq!(std::fs::metadata(file).expect("snapshot file").len(), u(snap, "bytes"));
        assert!(written.contains(&file), "{file} not in {written:?}");
        names.push(s(snap, "projection").to_owned());
    }
    assert!(names.contains(&"entities".to_owned()) && names.contains(&"counts".to_owned()));
    // State is a replay: compaction changes nothing a replay shows.
    assert_eq!(sc.run("replay", &[]).json(), before);
    assert_eq!(u(&sc.info(), "snapshots"), list.len() as u64);

    // More events, compact again keeping one snapshot per projection: the old ones go.
    sc.append("c", "t", "{}");
    let run = sc.run("compact", &["--keep-snapshots", "1"]);
    run.ok();
    let c2 = run.json();
    assert_eq!((u(&c2, "seq"), u(&c2, "log_start")), (5, 6));
    let removed: Vec<&str> =
        c2["files_removed"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    for old in &written {
        assert!(removed.contains(old), "{old} was not reported removed: {removed:?}");
        assert!(!Path::new(old).exists(), "{old} still exists");
    }
    let v = sc.run("snapshots", &[]).json();
    assert_eq!((u(&v, "log_start"), u(&v, "generation")), (6, 2));
    let seqs: Vec<u64> =
        v["snapshots"].as_array().expect("list").iter().map(|x| u(x, "seq")).collect();
    assert_eq!(seqs.len(), written.len());
    assert!(seqs.iter().all(|&s| s == 5), "{seqs:?}");
    let verified = sc.run("verify", &[]);
    verified.ok();
    assert_eq!(u(&verified.json(), "snapshots_checked"), seqs.len() as u64);
    // Replay still reaches back to sequence 1: the segment is still the active one.
    let early = sc.run("replay", &["--until", "1"]);
    early.ok();
    assert_eq!(early.json()["state"]["a"]["data"], json!({"i": 0}));
}

#[test]
fn completions_print_a_script() {
    for shell in ["bash", "zsh", "fish"] {
        let run = annal(["completions", shell]);
        run.ok();
        assert!(run.stdout.len() > 500, "{shell}: {} bytes", run.stdout.len());
        for command in COMMANDS {
            assert!(run.stdout.contains(command), "{shell} completions lack {command}");
        }
    }
    let run = annal(["completions", "bash"]);
    assert!(run.stdout.contains("complete") && run.stdout.contains("_annal"), "{}", run.stdout);
}

#[test]
fn every_help_has_an_example() {
    for command in COMMANDS {
        let run = annal([command, "--help"]);
        run.ok();
        assert!(run.stdout.contains("Example"), "`annal {command} --help` has no example");
        assert!(run.stdout.contains(&format!("annal {command}")), "{command}: {}", run.stdout);
        let run = annal(["help", command]);
        run.ok();
        assert!(run.stdout.contains("Example"), "`annal help {command}` has no example");
    }
    let top = annal(["--help"]);
    top.ok();
    for command in COMMANDS {
        assert!(top.stdout.contains(command), "`annal --help` does not list {command}");
    }
    let version = annal(["--version"]);
    version.ok();
    assert_eq!(version.stdout.trim(), format!("annal {}", env!("CARGO_PKG_VERSION")));
}

/// Every command, given a bad value (or a missing or unknown argument), is a usage error: exit
/// 2, clap's message on stderr, nothing on stdout, nothing appended.
#[test]
fn usage_errors_exit_2() {
    let sc = Scratch::init();
    let store = sc.store.to_str().expect("utf-8");
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["init"],
        &["init", store, "extra"],
        &["read"],
        &["append", store],
        &["append", store, "--stream", "a"],
        &["append", store, "--jsonl", "-", "--stream", "a"],
        &["append", store, "--stream", "a", "--type", "t", "--expect", "soon"],
        &["append", store, "--jsonl", "-", "--wait", "nan"],
        &["read", store, "--from", "one"],
        &["read", store, "--limit", "-1"],
        &["read", store, "--bogus"],
        &["read", store, "--from", "3", "--until", "1"],
        &["export", store, "--from", "4", "--until", "2"],
        &["replay", store, "--until", "2", "--at", "2026-01-01T00:00:00Z"],
        &["replay", store, "--at", "yesterday"],
        &["replay", store, "--until", "last"],
        &["replay", store, "--projection", "nope"],
        &["compact", store, "--keep-snapshots", "0"],
        &["compact", store, "--wait", "soon"],
        &["snapshots", store, "--all"],
        &["export", store, "--format", "xml"],
        &["export", store, "--from", "x"],
        &["audit-verify", "audit.jsonl", "--head", "not-hex"],
        &["audit-verify", "audit.jsonl", "--key", "k"],
        &["verify", store, "--wait", "-1"],
        &["verify", store, "--read-only", "--wait", "1"],
        &["info", store, "--bogus"],
        &["recover", store],
        &["recover", store, "--mode", "yolo"],
        &["salvage"],
        &["demo", store, "extra"],
        &["keygen"],
        &["checkpoint", store, "--key"],
        &["prove", store],
        &["prove", store, "--seq", "x"],
        &["prove", store, "--seq", "1", "--from-size", "1"],
        &["verify-proof", "proof.json"],
        &["completions", "cmd.exe"],
        &["man", "--out"],
    ];
    for command in COMMANDS {
        assert!(
            cases.iter().any(|args| args.first() == Some(&command)),
            "no usage error is tried for `annal {command}`"
        );
    }
    for args in cases {
        let run = annal(*args);
        run.code(2);
        // Without a command clap prints the help instead of an error.
        assert!(args.is_empty() || run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("Usage") || run.stderr.contains("--help"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
    }
    assert_eq!(sc.read_all().len(), 0);
    assert!(!sc.path("audit.jsonl").exists() && !sc.path("proof.json").exists());
}

/// The examples of every `--help` fit 100 and 80 columns: none wraps in the middle of a
/// command, and no line of the help runs past the width.
#[test]
fn help_examples_do_not_wrap_at_100_or_80_columns() {
    for columns in [100, 80] {
        for command in COMMANDS {
            let out = Command::new(env!("CARGO_BIN_EXE_annal"))
                .args([command, "--help"])
                .env("COLUMNS", columns.to_string())
                .output()
                .expect("run");
            let help = String::from_utf8(out.stdout).expect("utf-8");
            for line in help.lines() {
                assert!(
                    line.chars().count() <= columns,
                    "`annal {command} --help` at {columns}: {line:?}"
                );
            }
            let examples = help.split_once("Example").expect("an example").1;
            let mut continued = false;
            for line in examples.lines().skip(1).take_while(|l| !l.is_empty()) {
                let command_line = line.starts_with("  annal ") || line.starts_with("  cat ");
                assert!(
                    command_line || continued,
                    "`annal {command} --help` at {columns}: an example wraps mid-command: {line:?}\n{help}"
                );
                continued = line.ends_with('\\');
            }
        }
    }
}

/// `annal man` prints annal(1) and writes one page per command, each with its examples.
#[test]
fn man_pages_cover_every_command() {
    let top = annal(["man"]);
    top.ok();
    assert!(top.stdout.starts_with(".ie") || top.stdout.contains(".TH annal 1"), "{}", top.stdout);
    assert!(top.stdout.contains("Exit codes"), "annal.1 lacks the exit codes");
    let sc = Scratch::new();
    let dir = sc.path("man1");
    let run = annal([std::ffi::OsStr::new("man"), "--out".as_ref(), dir.as_os_str()]);
    run.ok();
    assert_eq!(run.stdout, "");
    for command in COMMANDS {
        let page = std::fs::read_to_string(dir.join(format!("annal-{command}.1")))
            .unwrap_or_else(|e| panic!("annal-{command}.1: {e}"));
        assert!(page.contains(&format!(".TH annal-{command} 1")), "{command}: {page}");
        assert!(page.contains("Example"), "annal-{command}.1 has no example");
    }
}

#[test]
fn init_on_a_file_says_it_is_a_file() {
    let sc = Scratch::new();
    let file = sc.path("afile");
    std::fs::write(&file, b"not a journal").expect("write");
    let run = annal([std::ffi::OsStr::new("init"), file.as_os_str()]);
    run.code(1);
    assert!(run.one_error_line().contains("it is a file, not a directory"), "{}", run.stderr);
    assert_eq!(std::fs::read(&file).expect("read"), b"not a journal", "the file is left as it was");
}

/// `annal read DIR | head -1`: a reader that goes away ends the command quietly, exit 0; the
/// same for every command that can print much (`export` in both formats, `completions`, `man`).
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let sc = Scratch::init();
    let lines: String = (0..5000)
        .map(|i| {
            format!("{{\"stream\":\"s\",\"type\":\"t\",\"data\":{{\"pad\":\"{i:0>200}\"}}}}\n")
        })
        .collect();
    sc.append_jsonl(&lines);
    let store = sc.store.to_str().expect("utf-8");
    for (command, read_first) in [
        (&["read", store][..], true),
        (&["export", store], true),
        (&["export", store, "--format", "csv"], true),
        (&["completions", "zsh"], false),
        (&["man"], false),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_annal"))
            .args(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        if read_first {
            // The output has started; the pipe is closed with more than its buffer to come.
            let mut first = String::new();
            BufReader::new(stdout).read_line(&mut first).expect("line");
            assert!(!first.is_empty(), "{command:?}");
        } else {
            // Closed before the command writes anything.
            drop(stdout);
        }
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command:?}: {:?} {stderr}", out.status);
        assert!(
            !stderr.contains("error")
                && !stderr.contains("Broken pipe")
                && !stderr.contains("panicked"),
            "{command:?}: {stderr}"
        );
    }
}
