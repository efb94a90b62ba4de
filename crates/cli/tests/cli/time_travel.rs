//! Guards against time travel answering with the wrong state: `replay --until N`, `--at TIME`
//! and `--projection counts` must equal a fold, computed here from the events' JSON, of exactly
//! the events up to N (or up to the last event at or before TIME), with JSON Merge Patch
//! (RFC 7386) for the `entities` data.

use annal::{Expect, Journal, NewEvent};
use serde_json::{Map, Value, json};

use crate::common::{Scratch, s, u};

/// RFC 7386 MergePatch(target, patch).
fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else { return patch.clone() };
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

/// The `entities` state after `events` (as `read` prints them).
fn entities(events: &[Value]) -> Value {
    let mut state = Map::new();
    for e in events {
        let stream = s(e, "stream").to_owned();
        let previous = state.get(&stream).map_or(Value::Null, |x: &Value| x["data"].clone());
        // The first event of a stream patches nothing: its data is the patch applied to null.
        let data = merge_patch(&previous, &e["data"]);
        state.insert(
            stream,
            json!({"version": e["version"], "type": e["type"], "updated": e["ts"], "data": data}),
        );
    }
    Value::Object(state)
}

/// The `counts` state after `events`.
fn counts(events: &[Value]) -> Value {
    let mut by_type = Map::new();
    let mut by_stream = Map::new();
    for e in events {
        for (map, key) in [(&mut by_type, s(e, "type")), (&mut by_stream, s(e, "stream"))] {
            let n = map.get(key).and_then(Value::as_u64).unwrap_or(0);
            map.insert(key.to_owned(), json!(n + 1));
        }
    }
    json!({"total": events.len(), "by_type": by_type, "by_stream": by_stream})
}

/// Three batches (so three commit times) of patches over four streams: nested objects, null
/// deletes, arrays replaced whole, scalars replaced by objects and back.
const BATCHES: [&str; 3] = [
    r#"{"stream":"task-1","type":"created","data":{"title":"docs","tags":["a"],"owner":{"name":"ada","team":"core"}},"expect":"none"}
{"stream":"task-2","type":"created","data":{"title":"bench","priority":1},"expect":"none"}
{"stream":"task-1","type":"edited","data":{"owner":{"team":null,"since":2026}},"expect":1}
{"stream":"note","type":"said","data":"hello"}
"#,
    r#"{"stream":"task-2","type":"edited","data":{"priority":null,"tags":["x","y"]},"expect":1}
{"stream":"task-1","type":"tagged","data":{"tags":["b","c"]},"expect":2}
{"stream":"note","type":"said","data":{"text":"object now"}}
{"stream":"list","type":"set","data":[1,2,3]}
"#,
    r#"{"stream":"task-1","type":"closed","data":{"owner":null,"done":true}}
{"stream":"list","type":"set","data":{"first":1}}
{"stream":"task-2","type":"closed","data":{"title":"bench v2","done":true}}
{"stream":"note","type":"said","data":7}
"#,
];

/// A store holding `BATCHES`, and its events as `read` prints them.
fn journal() -> (Scratch, Vec<Value>) {
    let sc = Scratch::init();
    let mut next = 1;
    for batch in BATCHES {
        let summary = sc.append_jsonl(batch);
        let count = batch.lines().count() as u64;
        assert_eq!(summary, json!({"first": next, "last": next + count - 1, "count": count}));
        next += count;
    }
    let events = sc.read_all();
    assert_eq!(events.len(), 12);
    (sc, events)
}

#[test]
fn replay_until_equals_the_model_fold() {
    let (sc, events) = journal();
    // The model is not trivially the last event's data.
    assert_eq!(
        entities(&events)["task-1"]["data"],
        json!({"title": "docs", "tags": ["b", "c"], "done": true})
    );
    for n in [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12] {
        let until = n.to_string();
        let run = sc.run("replay", &["--until", &until]);
        run.ok();
        let v = run.json();
        let upto = &events[..n];
        assert_eq!(v["seq"], json!(n), "--until {n}");
        assert_eq!(v["ts"], upto.last().map_or(Value::Null, |e| e["ts"].clone()), "--until {n}");
        assert_eq!(v["projection"], json!("entities"));
        assert_eq!(v["state"], entities(upto), "--until {n}");

        let run = sc.run("replay", &["--until", &until, "--projection", "counts"]);
        run.ok();
        let v = run.json();
        assert_eq!((v["seq"].clone(), v["projection"].clone()), (json!(n), json!("counts")));
        assert_eq!(v["state"], counts(upto), "counts --until {n}");
    }
    // Without --until: the end.
    assert_eq!(sc.run("replay", &[]).json()["state"], entities(&events));
}

#[test]
fn replay_stream_shows_one_entity() {
    let (sc, events) = journal();
    for n in [3usize, 6, 12] {
        let until = n.to_string();
        let run = sc.run("replay", &["--until", &until, "--stream", "task-1"]);
        run.ok();
        let want = entities(&events[..n])["task-1"].clone();
        assert_eq!(run.json()["state"], json!({"task-1": want}), "--until {n}");
        let run =
            sc.run("replay", &["--until", &until, "--stream", "task-1", "--projection", "counts"]);
        run.ok();
        let want = events[..n].iter().filter(|e| e["stream"] == "task-1").count();
        assert_eq!(run.json()["state"], json!({"stream": "task-1", "events": want}));
    }
    let run = sc.run("replay", &["--stream", "nobody"]);
    run.ok();
    assert_eq!(run.json()["state"], json!({}));
}

#[test]
fn replay_at_a_time_folds_the_events_up_to_it() {
    let (sc, events) = journal();
    // RFC 3339 with fixed-width nanoseconds in UTC orders as text.
    let last_at = |t: &str| events.iter().filter(|e| s(e, "ts") <= t).count();
    for k in [0usize, 3, 4, 7, 11] {
        let t = s(&events[k], "ts");
        let n = last_at(t);
        assert!(n > k, "event {} is at or before its own time", k + 1);
        for projection in ["entities", "counts"] {
            let run = sc.run("replay", &["--at", t, "--projection", projection]);
            run.ok();
            let v = run.json();
            assert_eq!(v["seq"], json!(n), "--at {t}");
            assert_eq!(v["ts"], events[n - 1]["ts"], "--at {t}");
            let want =
                if projection == "counts" { counts(&events[..n]) } else { entities(&events[..n]) };
            assert_eq!(v["state"], want, "--at {t} --projection {projection}");
        }
    }
    // The batches were separate commits: the first batch's time excludes the second batch.
    assert_eq!(last_at(s(&events[0], "ts")), 4);
    let before = sc.run("replay", &["--at", "2000-01-01T00:00:00Z"]);
    before.ok();
    assert_eq!(before.json(), json!({"seq": 0, "ts": null, "projection": "entities", "state": {}}));
    let after = sc.run("replay", &["--at", "2500-01-01T00:00:00Z", "--projection", "counts"]);
    after.ok();
    assert_eq!((u(&after.json(), "seq"), after.json()["state"].clone()), (12, counts(&events)));
}

#[test]
fn replay_after_compaction_still_equals_the_model() {
    let (sc, events) = journal();
    sc.run("compact", &[]).ok();
    sc.append_jsonl(r#"{"stream":"task-1","type":"reopened","data":{"done":false}}"#);
    let events: Vec<Value> = events.into_iter().chain(sc.read_all().into_iter().skip(12)).collect();
    assert_eq!(events.len(), 13);
    for n in [5usize, 12, 13] {
        let until = n.to_string();
        let run = sc.run("replay", &["--until", &until]);
        run.ok();
        assert_eq!(run.json()["state"], entities(&events[..n]), "--until {n} after compact");
    }
}

#[test]
fn replay_at_a_far_future_time_is_the_end() {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    let run = sc.run("replay", &["--at", "2999-01-01T00:00:00Z"]);
    run.ok();
    assert_eq!(run.json()["seq"], json!(1));
}

/// A store of 40 events in 4 KiB segments (so compaction can drop whole ones), written through
/// the library; and its events as `read` prints them.
fn segmented_store() -> (Scratch, Vec<Value>) {
    let sc = Scratch::new();
    let journal = Journal::options().segment_bytes(4096).open(&sc.store).expect("create");
    for i in 0..40u64 {
        let data = json!({"i": i, "pad": "x".repeat(200), "gone": if i % 2 == 0 { json!(null) } else { json!(i) }});
        let event = NewEvent::json(if i % 5 == 0 { "big" } else { "small" }, &data).expect("event");
        journal.append_events(&format!("s-{}", i % 3), Expect::Any, vec![event]).expect("append");
    }
    drop(journal);
    let events = sc.read_all();
    assert_eq!(events.len(), 40);
    (sc, events)
}

#[test]
fn compaction_drops_the_past_unless_archived() {
    let (sc, events) = segmented_store();
    let run = sc.run("compact", &[]);
    run.ok();
    let c = run.json();
    assert_eq!((u(&c, "seq"), u(&c, "log_start")), (40, 41));
    let removed = c["segments_removed"].as_array().expect("list");
    assert!(removed.len() >= 2, "{c}");
    assert!(u(&c, "bytes_reclaimed") >= 4096 * 2, "{c}");
    for path in removed {
        let path = path.as_str().expect("path");
        assert!(!std::path::Path::new(path).exists(), "{path} still exists");
    }
    // The present is unchanged; the removed past is out of reach and the error says how far
    // back a replay can go.
    let run = sc.run("replay", &[]);
    run.ok();
    assert_eq!(run.json()["state"], entities(&events));
    let run = sc.run("replay", &["--until", "5"]);
    run.code(1);
    let line = run.one_error_line();
    assert!(line.contains("40"), "the error does not name the earliest reachable sequence: {line}");
}

#[test]
fn archived_segments_keep_time_travel_and_export_working() {
    let (sc, events) = segmented_store();
    let run = sc.run("compact", &["--archive"]);
    run.ok();
    let c = run.json();
    assert_eq!(c["archived"], json!(true));
    let removed: Vec<&str> =
        c["segments_removed"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    assert!(removed.len() >= 2, "{c}");
    let archive = sc.store.join("archive");
    for path in &removed {
        let name = std::path::Path::new(path).file_name().expect("name");
        assert!(archive.join(name).is_file(), "{path} is not in archive/");
        assert!(!std::path::Path::new(path).exists(), "{path} is still in wal/");
    }
    for n in [1usize, 5, 20, 40] {
        let until = n.to_string();
        let run = sc.run("replay", &["--until", &until]);
        run.ok();
        assert_eq!(run.json()["state"], entities(&events[..n]), "--until {n} through archive/");
        let run = sc.run("replay", &["--until", &until, "--projection", "counts"]);
        run.ok();
        assert_eq!(run.json()["state"], counts(&events[..n]), "counts --until {n}");
    }
    let run = sc.run("read", &["--until", "3"]);
    run.ok();
    assert_eq!(run.json_lines(), events[..3]);
    let out = sc.path("audit.jsonl");
    sc.run("export", &["--out", out.to_str().expect("utf-8")]).ok();
    let run = crate::common::annal(["audit-verify".as_ref(), out.as_os_str()]);
    run.ok();
    assert_eq!((u(&run.json(), "first_seq"), u(&run.json(), "records")), (1, 40));
}
