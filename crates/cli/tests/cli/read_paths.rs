//! Guards what every CLI read path promises over damage, as a table: every read command (with
//! its flags) x every kind of damage, on copies of one store. A command either prints exactly
//! what it prints on the intact store and exits 0, or exits 3 naming the damage; it never exits
//! 0 with less. `read --follow` either exits 3 or, still waiting, has printed everything.
//! Each kind of damage must be reported by some command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use annal::{Expect, Journal, NewEvent};
use serde_json::json;

use crate::common::Scratch;

/// The kinds of damage, each applied to a fresh copy of the store.
const KINDS: [&str; 12] = [
    "bit flip in the active segment's first frame",
    "bit flip in the active segment's last frame",
    "bit flip in a sealed segment",
    "bit flip in an archived segment",
    "bit flip in a segment header",
    "bit flip in a snapshot",
    "bit flip in the MANIFEST",
    "a sealed segment missing",
    "the last segment missing",
    "the MANIFEST missing",
    "a snapshot missing",
    "an archived segment missing",
];

/// 300 events over 6 streams, a compaction (archiving) at 200, a clean close.
fn build(dir: &Path) {
    let journal = Journal::options()
        .segment_bytes(4096)
        .keep_snapshots(1)
        .archive(true)
        .projection::<annal::Entities>()
        .projection::<annal::Counts>()
        .open(dir)
        .expect("create");
    for i in 0..300u32 {
        let event =
            NewEvent::json(["created", "started", "done"][i as usize % 3], &json!({"i": i}))
                .expect("event");
        journal
            .append_events(&format!("task-{}", i % 6), Expect::Any, vec![event])
            .expect("append");
        if i == 200 {
            journal.compact().expect("compact");
        }
    }
    journal.close().expect("close");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).expect("write");
}

/// The end of the frames of the active segment: its data, before the preallocated zeros.
fn data_end(segment: &Path) -> usize {
    let bytes = std::fs::read(segment).expect("read");
    let mut at = 64;
    while bytes.get(at..at + 4) == Some(b"AFRM") {
        let body = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        at += 32 + usize::try_from(body).expect("small");
    }
    at
}

fn damage(store: &Path, kind: usize) {
    let segments: Vec<PathBuf> = files(&store.join("wal"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    let archived = files(&store.join("archive"));
    let snapshots: Vec<PathBuf> =
        files(&store.join("snapshots")).iter().flat_map(|p| files(p)).collect();
    let active = segments.last().expect("an active segment");
    let len = |p: &Path| usize::try_from(std::fs::metadata(p).expect("stat").len()).expect("small");
    match kind {
        0 => flip(active, 64 + 20),
        1 => flip(active, data_end(active) - 3),
        2 => flip(&segments[0], len(&segments[0]) / 2),
        3 => flip(&archived[archived.len() / 2], len(&archived[archived.len() / 2]) / 2),
        4 => flip(&segments[1], 9),
        5 => flip(&snapshots[0], len(&snapshots[0]) / 2),
        6 => flip(&store.join("MANIFEST"), len(&store.join("MANIFEST")) / 2),
        7 => std::fs::remove_file(&segments[1]).expect("remove"),
        8 => std::fs::remove_file(active).expect("remove"),
        9 => std::fs::remove_file(store.join("MANIFEST")).expect("remove"),
        10 => std::fs::remove_file(&snapshots[0]).expect("remove"),
        _ => std::fs::remove_file(&archived[archived.len() / 2]).expect("remove"),
    }
}

/// The read commands, as arguments after the command name and the store.
fn commands(at: &str, out: &Path) -> Vec<(&'static str, Vec<String>)> {
    let out = out.display().to_string();
    let owned = |args: &[&str]| args.iter().map(|&a| a.to_owned()).collect::<Vec<_>>();
    vec![
        ("read", owned(&["read"])),
        ("read --from", owned(&["read", "--from", "150"])),
        ("read --from --until", owned(&["read", "--from", "100", "--until", "260"])),
        ("read --stream", owned(&["read", "--stream", "task-2"])),
        ("read --limit", owned(&["read", "--from", "280", "--limit", "30"])),
        ("replay", owned(&["replay", "--projection", "counts"])),
        ("replay --until", owned(&["replay", "--until", "250"])),
        ("replay --at", vec!["replay".into(), "--at".into(), at.to_owned()]),
        ("replay --stream", owned(&["replay", "--stream", "task-2"])),
        ("replay below the log start", owned(&["replay", "--until", "50"])),
        ("export", owned(&["export"])),
        ("export --format csv", owned(&["export", "--format", "csv"])),
        ("export --from --until", owned(&["export", "--from", "150", "--until", "260"])),
        ("export --out", vec!["export".into(), "--out".into(), out]),
        ("info", owned(&["info"])),
        ("snapshots", owned(&["snapshots"])),
    ]
}

/// Runs `annal ARGS[0] STORE ARGS[1..]`: exit code and stdout (with `--out`, the file), the
/// store's path replaced by `STORE`.
fn run(store: &Path, args: &[String], out: &Path) -> (i32, String) {
    let _ = std::fs::remove_file(out);
    let output = Command::new(env!("CARGO_BIN_EXE_annal"))
        .arg(&args[0])
        .arg(store)
        .args(&args[1..])
        .output()
        .expect("run annal");
    let mut text = String::from_utf8(output.stdout).expect("UTF-8");
    if let Ok(file) = std::fs::read_to_string(out) {
        text.push_str(&file);
    }
    (output.status.code().unwrap_or(-1), text.replace(&store.display().to_string(), "STORE"))
}

/// `read --follow`: its exit code if it exits within a second, else what it printed by then.
fn follow(store: &Path) -> Result<String, i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_annal"))
        .arg("read")
        .arg(store)
        .arg("--follow")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return Err(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let output = child.wait_with_output().expect("output");
    Ok(String::from_utf8(output.stdout).expect("UTF-8"))
}

#[test]
fn every_read_command_over_every_damage_prints_the_intact_answer_or_exits_3() {
    let intact = Scratch::new();
    build(&intact.store);
    let at = {
        let run = intact.run("read", &["--from", "240", "--limit", "1"]);
        run.ok();
        run.json()["ts"].as_str().expect("ts").to_owned()
    };
    let out = intact.path("export.out");
    let want: Vec<(i32, String)> = commands(&at, &out)
        .iter()
        .map(|(name, args)| {
            let got = run(&intact.store, args, &out);
            assert_eq!(got.0, 0, "the intact store fails {name}: {}", got.1);
            got
        })
        .collect();
    let want_follow = follow(&intact.store).expect("following the intact store waits");
    assert_eq!(want_follow, want[0].1, "read --follow prints what read prints, then waits");
    for (kind, what) in KINDS.iter().enumerate() {
        let copy = Scratch::new();
        copy_tree(&intact.store, &copy.store);
        damage(&copy.store, kind);
        let mut reported = 0;
        for ((name, args), (_, intact_out)) in commands(&at, &out).iter().zip(&want) {
            let (code, text) = run(&copy.store, args, &out);
            match code {
                0 => assert_eq!(&text, intact_out, "{what}: `{name}` exited 0 with another answer"),
                3 => reported += 1,
                other => panic!("{what}: `{name}` exited {other}: {text}"),
            }
        }
        match follow(&copy.store) {
            Ok(text) => assert_eq!(text, want_follow, "{what}: read --follow waits after less"),
            Err(3) => reported += 1,
            Err(code) => panic!("{what}: read --follow exited {code}"),
        }
        assert!(reported > 0, "{what}: no read command reported it");
    }
}

/// `read` and `export` in one process while `compact` removes segments in another: each
/// prints a gapless run from the first event and either reaches the end (exit 0; export's head
/// is the store's) or fails naming the earliest sequence held (exit 1, not a false exit 3);
/// with `--archive` each always reaches the end. Several rounds, the compaction started at
/// different moments.
#[test]
fn reads_racing_a_compaction_in_another_process_are_gapless() {
    let template = Scratch::new();
    let events = 6_000u64;
    {
        let journal = Journal::options()
            .segment_bytes(4096)
            .durability(annal::Durability::Manual)
            .open(&template.store)
            .expect("create");
        for i in 0..events {
            let event = NewEvent::json("t", &json!({ "i": i })).expect("event");
            journal
                .append_events(&format!("s-{}", i % 3), Expect::Any, vec![event])
                .expect("append");
        }
        journal.close().expect("close");
    }
    let head =
        crate::common::annal([OsStr::new("info"), template.store.as_os_str()]).json()["chain_head"]
            .as_str()
            .expect("head")
            .to_owned();
    let mut raced = 0;
    for round in 0..8u64 {
        let archive = round % 2 == 1;
        for command in ["read", "export"] {
            let copy = Scratch::new();
            copy_tree(&template.store, &copy.store);
            let reader = Command::new(env!("CARGO_BIN_EXE_annal"))
                .arg(command)
                .arg(&copy.store)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn the reader");
            std::thread::sleep(Duration::from_millis(round * 3));
            let mut args = vec!["compact", "--keep-snapshots", "1"];
            if archive {
                args.push("--archive");
            }
            copy.run(args[0], &args[1..]).ok();
            let out = reader.wait_with_output().expect("reader output");
            let stdout = String::from_utf8(out.stdout).expect("UTF-8");
            let stderr = String::from_utf8(out.stderr).expect("UTF-8");
            // Records (export ends with its tree line).
            let seqs: Vec<u64> = stdout
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
                .filter(|v| v.get("checkpoint").is_none())
                .map(|v| v["seq"].as_u64().expect("seq"))
                .collect();
            let want: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, want, "{command} (archive {archive}, round {round}): a gap");
            match out.status.code() {
                Some(0) => {
                    assert_eq!(seqs.len() as u64, events, "{command}: exit 0 before the end");
                    if command == "export" {
                        assert!(stderr.contains(&head), "export's head: {stderr}");
                    }
                }
                Some(1) if !archive => {
                    assert!(stderr.contains("earliest reachable sequence"), "{command}: {stderr}");
                    raced += 1;
                }
                other => panic!("{command} (archive {archive}) exited {other:?}: {stderr}"),
            }
        }
    }
    eprintln!("{raced} of 16 reads were overtaken by the compaction and said so");
}
