//! Guards against a broken tour: `annal demo DIR` must run end to end, print its JSON summary,
//! and leave a store that `verify`, `read`, `replay` (through the archive) and `audit-verify`
//! accept; it must refuse to overwrite an existing journal.

use serde_json::json;

use crate::common::{Scratch, annal, s, u};

#[test]
fn demo_leaves_a_store_that_verifies() {
    let sc = Scratch::new();
    let run = annal(["demo".as_ref(), sc.store.as_os_str()]);
    run.ok();
    let v = run.json();
    let events = u(&v, "events");
    // 1200 tasks: created and started, three in four completed.
    assert_eq!(events, 1200 * 2 + 900);
    assert_eq!(s(&v, "dir"), sc.store.display().to_string());
    let head = s(&v, "chain_head").to_owned();
    run.stderr_has("Time travel").stderr_has("Compaction").stderr_has("OK");

    let verify = sc.run("verify", &[]);
    verify.ok();
    assert_eq!(verify.json()["ok"], json!(true));
    assert_eq!(verify.json()["chain_head"], json!(head));
    let info = sc.info();
    assert_eq!(u(&info, "last_seq"), events);
    assert!(u(&info, "log_start") > 1, "the demo compacts: {info}");

    let audit = annal(["audit-verify", s(&v, "audit"), "--head", &head]);
    audit.ok();
    assert_eq!(u(&audit.json(), "records"), events);

    let task = sc.run("read", &["--stream", "task-0042"]);
    task.ok();
    let types: Vec<String> = task.json_lines().iter().map(|e| s(e, "type").to_owned()).collect();
    assert_eq!(types, ["task-created", "task-started", "task-completed"]);
    // Sequence 10 is only in archive/ now; time travel still reaches it.
    let early = sc.run("replay", &["--until", "10", "--projection", "counts"]);
    early.ok();
    assert_eq!(early.json()["state"]["total"], json!(10));

    let again = annal(["demo".as_ref(), sc.store.as_os_str()]);
    again.code(1);
    assert!(again.one_error_line().contains("already holds a journal"), "{}", again.stderr);
}
