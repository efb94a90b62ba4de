//! Guards against a non-atomic `append --jsonl` batch: a bad line (unparsable, missing field,
//! unknown field, bad expect) or a version conflict on any line must fail the whole batch, name
//! the line, and leave the journal exactly as it was (checked with `read`).

use serde_json::json;

use crate::common::{Scratch, s, u};

const GOOD: &str = r#"{"stream":"a","type":"t","data":{"n":1}}"#;

/// A store holding two events, and their JSON as `read` prints them.
fn store() -> (Scratch, Vec<serde_json::Value>) {
    let sc = Scratch::init();
    sc.append("a", "t", r#"{"n":0}"#);
    sc.append("b", "t", r#"{"n":0}"#);
    let before = sc.read_all();
    assert_eq!(before.len(), 2);
    (sc, before)
}

#[test]
fn a_bad_line_fails_the_whole_batch_and_names_it() {
    let (sc, before) = store();
    let bad_lines = [
        ("{\"stream\":\"a\",", "not JSON"),
        ("[1,2]", "not a JSON object"),
        (r#"{"type":"t"}"#, "missing \"stream\""),
        (r#"{"stream":"a"}"#, "missing \"type\""),
        (r#"{"stream":"","type":"t"}"#, "\"stream\""),
        (r#"{"stream":"a","type":"t","expect":"maybe"}"#, "expect"),
        (r#"{"stream":"a","type":"t","expect":-3}"#, "expect"),
        (r#"{"stream":"a","type":"t","meta":{"actor":5}}"#, "meta.actor"),
        (r#"{"stream":"a","type":"t","meta":"ada"}"#, "meta"),
        (r#"{"stream":"a","type":"t","dat":{}}"#, "unknown field \"dat\""),
    ];
    for (bad, why) in bad_lines {
        // Line 3 is bad, behind a blank line (which still counts), between good lines.
        let input = format!("{GOOD}\n\n{bad}\n{GOOD}\n");
        let run = sc.run_stdin("append", &["--jsonl", "-"], &input);
        run.code(1);
        let line = run.one_error_line();
        assert!(line.contains("line 3"), "{bad}: {line}");
        assert!(line.contains(why), "{bad}: {line}");
        assert!(line.contains("nothing was appended"), "{bad}: {line}");
        assert_eq!(run.stdout, "", "{bad}");
        assert_eq!(sc.read_all(), before, "{bad}: the batch was partly appended");
    }
}

#[test]
fn a_bad_line_in_a_file_is_named_with_the_file() {
    let (sc, before) = store();
    let file = sc.path("events.jsonl");
    let mut text = String::new();
    for _ in 0..40 {
        text.push_str(GOOD);
        text.push('\n');
    }
    text.push_str("{\"stream\":\"a\",\"type\":\"t\",\"data\":{oops}}\n");
    std::fs::write(&file, text).expect("write events");
    let path = file.to_str().expect("utf-8");
    let run = sc.run("append", &["--jsonl", path]);
    run.code(1);
    let line = run.one_error_line();
    assert!(line.contains(path) && line.contains("line 41"), "{line}");
    assert_eq!(sc.read_all(), before);

    let missing = sc.path("missing.jsonl");
    let run = sc.run("append", &["--jsonl", missing.to_str().expect("utf-8")]);
    run.code(1);
    assert!(run.one_error_line().contains("missing.jsonl"), "{}", run.stderr);
    assert_eq!(sc.read_all(), before);
}

#[test]
fn an_empty_batch_is_refused() {
    let (sc, before) = store();
    for input in ["", "\n\n  \n"] {
        let run = sc.run_stdin("append", &["--jsonl", "-"], input);
        run.code(1);
        assert!(run.one_error_line().contains("no events"), "{}", run.stderr);
    }
    assert_eq!(sc.read_all(), before);
}

#[test]
fn a_version_conflict_on_any_line_fails_the_whole_batch_with_exit_4() {
    let (sc, before) = store();
    let input = concat!(
        "{\"stream\":\"c\",\"type\":\"t\",\"expect\":\"none\"}\n",
        "{\"stream\":\"a\",\"type\":\"t\",\"expect\":2}\n",
        "{\"stream\":\"d\",\"type\":\"t\"}\n",
    );
    let run = sc.run_stdin("append", &["--jsonl", "-"], input);
    run.code(4);
    let line = run.one_error_line();
    assert!(line.contains("\"a\""), "{line}");
    assert!(line.contains("expected version 2") && line.contains("actual version 1"), "{line}");
    assert_eq!(run.stdout, "");
    assert_eq!(sc.read_all(), before, "a conflicting batch was partly appended");
    // The streams the batch would have created do not exist.
    let run = sc.run("append", &["--stream", "c", "--type", "t", "--expect", "none"]);
    run.ok();
    assert_eq!(run.json(), json!({"seq": 3, "version": 1}));
}

#[test]
fn a_version_conflict_in_a_batch_names_the_line() {
    let (sc, _) = store();
    let input =
        format!("{GOOD}\n{GOOD}\n{{\"stream\":\"b\",\"type\":\"t\",\"expect\":\"none\"}}\n");
    let run = sc.run_stdin("append", &["--jsonl", "-"], &input);
    run.code(4);
    let line = run.one_error_line();
    assert!(line.contains("line 3"), "the error does not name the conflicting line: {line}");
}

#[test]
fn a_good_batch_is_one_atomic_append_in_order() {
    let (sc, _) = store();
    let input = concat!(
        "{\"stream\":\"c\",\"type\":\"made\",\"data\":{\"k\":1},\"meta\":{\"actor\":\"ada\",\"correlation_id\":\"r-9\",\"why\":\"test\"},\"expect\":\"none\"}\n",
        "\n",
        "{\"stream\":\"c\",\"type\":\"moved\",\"data\":{\"k\":2},\"expect\":1}\n",
        "{\"stream\":\"a\",\"type\":\"moved\",\"expect\":\"exists\"}\n",
        "{\"stream\":\"c\",\"type\":\"moved\",\"expect\":2}\n",
    );
    let run = sc.run_stdin("append", &["--jsonl", "-"], input);
    run.ok();
    assert_eq!(run.json(), json!({"first": 3, "last": 6, "count": 4}));
    let events = sc.read_all();
    let shown: Vec<(u64, &str, u64, &str)> = events
        .iter()
        .map(|e| (u(e, "seq"), s(e, "stream"), u(e, "version"), s(e, "type")))
        .collect();
    assert_eq!(
        shown[2..],
        [(3, "c", 1, "made"), (4, "c", 2, "moved"), (5, "a", 2, "moved"), (6, "c", 3, "moved")]
    );
    assert_eq!(
        events[2]["meta"],
        json!({"actor": "ada", "correlation_id": "r-9", "extra": {"why": "test"}})
    );
    assert_eq!(events[2]["data"], json!({"k": 1}));
    assert_eq!(events[4]["data"], json!({}));
    // Times never decrease (RFC 3339 with fixed-width nanoseconds orders as text).
    assert!(events.windows(2).all(|w| s(&w[0], "ts") <= s(&w[1], "ts")));
}

/// Input is read with a bound: an endless line (`/dev/zero`), a line over the limit and a JSON
/// integer that does not fit in 64 bits are refused naming the line, and nothing is appended.
#[test]
fn jsonl_input_is_bounded_and_big_integers_are_refused() {
    let sc = Scratch::init();
    let run = sc.run("append", &["--jsonl", "/dev/zero"]);
    run.code(1);
    assert!(run.one_error_line().contains("line 1: longer than"), "{run:?}");
    let long = format!(
        "{{\"stream\":\"a\",\"type\":\"t\",\"data\":{{\"x\":\"{}\"}}}}\n",
        "y".repeat(5 << 20)
    );
    let run = sc.run_stdin(
        "append",
        &["--jsonl", "-"],
        &format!("{{\"stream\":\"a\",\"type\":\"t\"}}\n{long}"),
    );
    run.code(1);
    assert!(run.one_error_line().contains("line 2: longer than"), "{run:?}");
    let big = "{\"stream\":\"a\",\"type\":\"t\"}\n{\"stream\":\"a\",\"type\":\"t\",\"data\":{\"n\":18446744073709551616}}\n";
    let run = sc.run_stdin("append", &["--jsonl", "-"], big);
    run.code(1);
    let line = run.one_error_line();
    assert!(line.contains("line 2") && line.contains("18446744073709551616"), "{line}");
    let run = sc.run(
        "append",
        &["--stream", "a", "--type", "t", "--data", r#"{"n":-9223372036854775809}"#],
    );
    run.code(1);
    assert!(run.one_error_line().contains("does not fit in 64 bits"), "{run:?}");
    // Strings that look like numbers, and integers that fit, are fine.
    let ok = "{\"stream\":\"a\",\"type\":\"t\",\"data\":{\"n\":18446744073709551615,\"m\":-9223372036854775808,\"s\":\"99999999999999999999\",\"f\":1e300}}\n";
    sc.run_stdin("append", &["--jsonl", "-"], ok).ok();
    assert_eq!(u(&sc.info(), "last_seq"), 1, "only the good batch was appended");
}

/// The answer of a committed append is printed last: a closed stdout cannot turn it into a
/// failure (a retry would append it twice).
#[test]
fn a_closed_stdout_does_not_fail_a_committed_append() {
    let sc = Scratch::init();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_annal"))
        .args(["append", sc.store.to_str().expect("utf-8"), "--stream", "a", "--type", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{:?}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(u(&sc.info(), "last_seq"), 1);
}
