//! Guards against an audit export whose tampering goes unseen: `audit-verify` must exit 3
//! naming the first bad line for a modified field, a deleted, duplicated or swapped line, a
//! forged record with a recomputed chain, and (given the head printed by `export`) a cut-off
//! end, in JSON Lines and CSV alike; an untouched export verifies, and its chain values are
//! exactly `blake3(prev || seq LE u64 || ts_ns LE u64 || payload)` as documented.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{Scratch, annal, s, u};

const N: usize = 6;

/// A change to one exported record.
type RecordEdit = fn(&mut Value);
/// A change to the lines of an export.
type LinesEdit = fn(&mut Vec<String>);

/// A store with `N` events whose data carry unique markers `mark-1`..`mark-N`.
fn store() -> Scratch {
    let sc = Scratch::init();
    let mut batch = String::new();
    for i in 1..=N {
        batch.push_str(&format!(
            "{{\"stream\":\"s-{}\",\"type\":\"t\",\"data\":{{\"note\":\"mark-{i}\",\"n\":{i}}},\"meta\":{{\"actor\":\"ada\"}}}}\n",
            i % 2
        ));
        if i == 3 {
            sc.append_jsonl(&batch);
            batch.clear();
        }
    }
    sc.append_jsonl(&batch);
    sc
}

/// Exports; returns the file and the chain head from stderr.
fn export(sc: &Scratch, name: &str, args: &[&str]) -> (PathBuf, String) {
    let out = sc.path(name);
    let mut all = vec!["--out", out.to_str().expect("utf-8")];
    all.extend_from_slice(args);
    let run = sc.run("export", &all);
    run.ok();
    assert_eq!(run.stdout, "", "export --out wrote to stdout");
    let head = run
        .stderr
        .lines()
        .find_map(|l| l.split("chain head: ").nth(1))
        .unwrap_or_else(|| panic!("no chain head on stderr: {}", run.stderr))
        .trim()
        .to_owned();
    assert_eq!(head.len(), 64, "{head}");
    (out, head)
}

fn audit_verify(file: &Path, head: Option<&str>) -> crate::common::Run {
    let mut args = vec!["audit-verify".as_ref(), file.as_os_str()];
    if let Some(head) = head {
        args.push("--head".as_ref());
        args.push(head.as_ref());
    }
    annal(args)
}

/// Rewrites the file's lines with `edit`.
fn tamper(file: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(file).expect("export");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(file, out).expect("rewrite export");
}

/// Asserts exit 3 with one error line naming `line`.
#[track_caller]
fn assert_caught(file: &Path, head: Option<&str>, line: usize) -> String {
    let run = audit_verify(file, head);
    run.code(3);
    let error = run.one_error_line().to_owned();
    assert!(error.contains(&format!("line {line}")), "expected line {line} to be named: {error}");
    assert_eq!(run.stdout, "");
    error
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn chain(prev: &str, seq: u64, ts_ns: u64, payload: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&unhex(prev));
    h.update(&seq.to_le_bytes());
    h.update(&ts_ns.to_le_bytes());
    h.update(&unhex(payload));
    hex(h.finalize().as_bytes())
}

#[test]
fn an_untouched_export_verifies_and_matches_read_and_the_chain_formula() {
    let sc = store();
    let (file, head) = export(&sc, "audit.jsonl", &[]);
    let events = sc.read_all();
    let text = std::fs::read_to_string(&file).expect("export");
    let mut records: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    // The last line is the Merkle tree: the frontier before the export, its checkpoint.
    let tree = records.pop().expect("the tree line");
    assert_eq!(tree["tree_before"], json!({"size": 0, "frontier": []}));
    assert!(tree["checkpoint"].as_str().expect("checkpoint").starts_with(&format!("annal\n{N}\n")));
    assert_eq!(records.len(), N);
    let mut prev = "0".repeat(64);
    for (record, event) in records.iter().zip(&events) {
        for key in ["seq", "ts", "stream", "version", "type", "data", "meta"] {
            assert_eq!(record[key], event[key], "{key} differs from `read`");
        }
        assert_eq!(s(record, "prev"), prev);
        let want = chain(&prev, u(record, "seq"), u(record, "ts_ns"), s(record, "payload"));
        assert_eq!(s(record, "chain"), want, "seq {}", record["seq"]);
        prev = want;
    }
    assert_eq!(head, prev);
    assert_eq!(sc.info()["chain_head"], json!(head));

    for given in [None, Some(head.as_str()), Some(&*head.to_uppercase())] {
        let run = audit_verify(&file, given);
        run.ok();
        let mut v = run.json();
        let root = v.as_object_mut().expect("object").remove("tree_root").expect("tree_root");
        assert_eq!(root.as_str().map(str::len), Some(64), "{root}");
        assert_eq!(
            v,
            json!({"ok": true, "records": N, "first_seq": 1, "last_seq": N, "head": head, "head_checked": given.is_some(), "checkpoint_checked": false})
        );
    }
}

#[test]
fn a_partial_export_chains_on_from_the_record_before_it() {
    let sc = store();
    let (full, _) = export(&sc, "full.jsonl", &[]);
    let (part, head) = export(&sc, "part.jsonl", &["--from", "3", "--until", "5"]);
    let full: Vec<Value> = std::fs::read_to_string(full)
        .expect("export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let mut part_lines: Vec<Value> = std::fs::read_to_string(&part)
        .expect("export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let tree = part_lines.pop().expect("the tree line");
    assert_eq!(tree["tree_before"]["size"], json!(2), "the tree before record 3");
    assert_eq!(part_lines, full[2..5]);
    assert_eq!(head, s(&full[4], "chain"));
    let run = audit_verify(&part, Some(&head));
    run.ok();
    let v = run.json();
    assert_eq!((u(&v, "records"), u(&v, "first_seq"), u(&v, "last_seq")), (3, 3, 5));
}

#[test]
fn a_modified_field_is_caught_at_its_line() {
    let sc = store();
    let (file, _) = export(&sc, "audit.jsonl", &[]);
    let pristine = std::fs::read_to_string(&file).expect("export");
    let edits: [(&str, RecordEdit); 6] = [
        ("data", |r| r["data"]["note"] = json!("mark-X")),
        ("meta", |r| r["meta"]["actor"] = json!("mallory")),
        ("stream", |r| r["stream"] = json!("s-9")),
        ("version", |r| r["version"] = json!(9)),
        ("ts", |r| r["ts"] = json!("2001-01-01T00:00:00.000000000Z")),
        ("payload", |r| {
            let p = s(r, "payload").replace("6d61726b2d33", "6d61726b2d39");
            r["payload"] = json!(p);
        }),
    ];
    for (what, edit) in edits {
        std::fs::write(&file, &pristine).expect("restore");
        tamper(&file, |lines| {
            let mut record: Value = serde_json::from_str(&lines[2]).expect("JSON");
            let before = record.clone();
            edit(&mut record);
            assert_ne!(record, before, "{what}: the edit changed nothing");
            lines[2] = record.to_string();
        });
        let error = assert_caught(&file, None, 3);
        assert!(error.contains("seq 3"), "{what}: {error}");
        assert!(error.contains("modified"), "{what}: {error}");
    }
}

#[test]
fn deleted_duplicated_and_swapped_lines_are_caught() {
    let sc = store();
    let (file, head) = export(&sc, "audit.jsonl", &[]);
    let pristine = std::fs::read_to_string(&file).expect("export");
    let cases: [(&str, LinesEdit, usize); 5] = [
        ("delete line 2", |l| drop(l.remove(1)), 2),
        ("delete the first line", |l| drop(l.remove(0)), 0),
        ("duplicate line 4", |l| l.insert(4, l[3].clone()), 5),
        ("swap lines 2 and 3", |l| l.swap(1, 2), 2),
        ("move the last record first", |l| l[..N].rotate_right(1), 2),
    ];
    for (what, edit, line) in cases {
        std::fs::write(&file, &pristine).expect("restore");
        tamper(&file, edit);
        if line == 0 {
            // Without the first record the chain of 2..=N is consistent, and the head is
            // intact; the tree line says the export starts after 0 records.
            let error = assert_caught(&file, Some(&head), N);
            assert!(error.contains("starts at 2"), "{what}: {error}");
            continue;
        }
        let error = assert_caught(&file, Some(&head), line);
        assert!(error.contains("deleted, inserted or moved"), "{what}: {error}");
        assert_caught(&file, None, line);
    }
}

#[test]
fn a_forged_record_with_a_recomputed_chain_breaks_the_next_link() {
    let sc = store();
    let (file, head) = export(&sc, "audit.jsonl", &[]);
    tamper(&file, |lines| {
        let mut r: Value = serde_json::from_str(&lines[1]).expect("JSON");
        // Shift the time by one nanosecond, consistently in ts, ts_ns and chain.
        let ts_ns = u(&r, "ts_ns");
        let forged_ns = if ts_ns % 10 == 9 { ts_ns - 1 } else { ts_ns + 1 };
        let ts = s(&r, "ts").to_owned();
        let digit =
            char::from_digit(u32::try_from(forged_ns % 10).expect("digit"), 10).expect("digit");
        let forged_ts = format!("{}{digit}Z", &ts[..ts.len() - 2]);
        let forged_chain = chain(s(&r, "prev"), u(&r, "seq"), forged_ns, s(&r, "payload"));
        r["ts_ns"] = json!(forged_ns);
        r["ts"] = json!(forged_ts);
        r["chain"] = json!(forged_chain);
        let payload = unhex(s(&r, "payload"));
        r["leaf"] = json!(hex(&annal::leaf_hash(u(&r, "seq"), forged_ns, &payload)));
        lines[1] = r.to_string();
    });
    let error = assert_caught(&file, Some(&head), 3);
    assert!(error.contains("does not chain"), "{error}");
}

#[test]
fn a_cut_off_end_is_caught_by_the_tree_line_or_the_head() {
    let sc = store();
    let (file, head) = export(&sc, "audit.jsonl", &[]);
    let pristine = std::fs::read_to_string(&file).expect("export");
    // The last record removed: the tree line's checkpoint is of N records.
    tamper(&file, |lines| drop(lines.remove(N - 1)));
    let error = assert_caught(&file, None, N);
    assert!(error.contains("do not lead to the export's checkpoint"), "{error}");
    // The last record and the tree line removed: a consistent shorter export, which only the
    // head (or a checkpoint) tells from the whole.
    std::fs::write(&file, &pristine).expect("restore");
    tamper(&file, |lines| lines.truncate(N - 1));
    let run = audit_verify(&file, Some(&head));
    run.code(3);
    let error = run.one_error_line();
    assert!(error.contains(&format!("seq {}", N - 1)) && error.contains("cut off"), "{error}");
    let run = audit_verify(&file, None);
    run.ok();
    assert_eq!(u(&run.json(), "last_seq"), (N - 1) as u64);
    // A head from another export does not match either.
    let other = "ab".repeat(32);
    let run = audit_verify(&file, Some(&other));
    run.code(3);
}

/// An export checked against a checkpoint taken of the store: it verifies when whole; a
/// record changed, or the export cut off, fails against it.
#[test]
fn an_export_verifies_against_a_checkpoint_of_the_store() {
    let sc = store();
    let (file, _) = export(&sc, "audit.jsonl", &[]);
    let cp = sc.path("cp.txt");
    std::fs::write(&cp, sc.run("checkpoint", &[]).stdout).expect("checkpoint");
    let check = |file: &Path| {
        annal([
            OsStr::new("audit-verify"),
            file.as_os_str(),
            OsStr::new("--checkpoint"),
            cp.as_os_str(),
        ])
    };
    let run = check(&file);
    run.ok();
    assert_eq!(run.json()["checkpoint_checked"], json!(true));
    let (part, _) = export(&sc, "part.jsonl", &["--from", "3"]);
    check(&part).ok();
    let (short, _) = export(&sc, "short.jsonl", &["--until", "4"]);
    check(&short).code(3).stderr_has("export up to the checkpoint's size");
    // A rewritten log's export is consistent in itself, and fails the checkpoint.
    let other = Scratch::init();
    for i in 1..=N {
        other.append(
            &format!("s-{}", i % 2),
            "t",
            &format!("{{\"note\":\"forged-{i}\",\"n\":{i}}}"),
        );
    }
    let (forged, _) = export(&other, "forged.jsonl", &[]);
    audit_verify(&forged, None).ok();
    check(&forged).code(3).stderr_has("do not lead to the checkpoint's root");
}

#[test]
fn csv_exports_verify_and_catch_tampering() {
    let sc = store();
    let (file, head) = export(&sc, "audit.csv", &["--format", "csv"]);
    let text = std::fs::read_to_string(&file).expect("export");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("seq,ts,ts_ns,stream,version,type,data,meta,payload,prev,chain,leaf")
    );
    assert_eq!(lines.count(), N);
    let run = audit_verify(&file, Some(&head));
    run.ok();
    assert_eq!(u(&run.json(), "records"), N as u64);
    let (jsonl, jsonl_head) = export(&sc, "audit.jsonl", &[]);
    assert_eq!(head, jsonl_head);
    drop(jsonl);

    // Record 3 is on line 4, under the header.
    std::fs::write(&file, text.replace("mark-3", "mark-X")).expect("modify");
    let error = assert_caught(&file, None, 4);
    assert!(error.contains("seq 3") && error.contains("modified"), "{error}");

    std::fs::write(&file, &text).expect("restore");
    tamper(&file, |l| drop(l.remove(3)));
    assert_caught(&file, Some(&head), 4);

    std::fs::write(&file, &text).expect("restore");
    tamper(&file, |l| l.swap(2, 3));
    assert_caught(&file, Some(&head), 3);

    std::fs::write(&file, &text).expect("restore");
    tamper(&file, |l| drop(l.pop()));
    audit_verify(&file, Some(&head)).code(3);
    audit_verify(&file, None).ok();

    std::fs::write(&file, text.replacen("seq,ts", "seq,time", 1)).expect("break the header");
    let error = assert_caught(&file, None, 1);
    assert!(error.contains("header"), "{error}");
}

#[test]
fn garbage_and_missing_files_fail_cleanly() {
    let sc = Scratch::new();
    let missing = sc.path("missing.jsonl");
    let run = audit_verify(&missing, None);
    run.code(1);
    assert!(run.one_error_line().contains("missing.jsonl"), "{}", run.stderr);

    for (name, content, code) in [
        ("empty.jsonl", &b""[..], 3),
        ("text.jsonl", b"{\"hello\": \"world\"}\n", 3),
        ("binary.jsonl", b"\xff\xfe\x00garbage\x01", 3),
        ("not-json.jsonl", b"{not json\n", 3),
    ] {
        let file = sc.path(name);
        std::fs::write(&file, content).expect("write");
        let run = audit_verify(&file, None);
        run.code(code);
        assert!(run.one_error_line().contains(name), "{name}: {}", run.stderr);
    }
}
