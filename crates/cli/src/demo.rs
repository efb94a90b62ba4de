//! `annal demo`: the main job end to end, on a workflow of tasks created, started and
//! completed by actors. Explanations go to stderr, a JSON summary to stdout.

use std::path::Path;
use std::time::Instant;

use annal::{Counts, Entities, Expect, Journal, Meta, NewEvent, Query, Until};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::out;

const TASKS: u64 = 1_000;
const ACTORS: [&str; 5] = ["ada", "grace", "linus", "barbara", "ken"];

fn say(text: &str) {
    eprintln!("{text}");
}

fn event(kind: &str, data: Value, actor: &str) -> anyhow::Result<NewEvent> {
    Ok(NewEvent::json(kind, &data)?.meta(Meta::actor(actor)))
}

/// Appends the lifecycle of tasks `range`: created, started, completed, as atomic per-task
/// batches with expected versions.
fn workflow(journal: &Journal, range: std::ops::Range<u64>) -> anyhow::Result<()> {
    for t in range {
        let stream = format!("task-{t:04}");
        let actor = ACTORS[usize::try_from(t % 5).expect("small")];
        let other = ACTORS[usize::try_from((t + 2) % 5).expect("small")];
        journal.append_events(
            &stream,
            Expect::NoStream,
            vec![event(
                "task-created",
                json!({"title": format!("Task {t}"), "priority": t % 3, "status": "open"}),
                actor,
            )?],
        )?;
        journal.append_events(
            &stream,
            Expect::Exact(1),
            vec![event("task-started", json!({"status": "started", "assignee": other}), other)?],
        )?;
        if t % 4 != 0 {
            journal.append_events(
                &stream,
                Expect::Exact(2),
                vec![event(
                    "task-completed",
                    json!({"status": "done", "minutes": 15 + t % 90}),
                    other,
                )?],
            )?;
        }
    }
    Ok(())
}

/// What `demo` prints at its end.
#[derive(Debug, Serialize)]
struct DemoSummary {
    /// The journal's directory.
    dir: String,
    /// Events in it.
    events: u64,
    /// The audit export's file.
    audit: String,
    /// The export's chain head, hex.
    chain_head: String,
}

pub fn run(dir: &Path) -> anyhow::Result<()> {
    if dir.join(annal::WAL_DIR).exists() {
        bail!(
            "{} already holds a journal; remove it or pass another directory (annal demo DIR)",
            dir.display()
        );
    }
    let started = Instant::now();
    say(&format!("annal demo: a journal of tasks in {}\n", dir.display()));
    let journal = Journal::options()
        .projection::<Entities>()
        .projection::<Counts>()
        .keep_snapshots(1)
        .archive(true)
        .segment_bytes(64 * 1024)
        .open(dir)
        .with_context(|| format!("create {}", dir.display()))?;

    say(&format!(
        "1. Appending the lifecycle of {TASKS} tasks: created, started, and (3 in 4) completed by actors."
    ));
    say(
        "   Each append is durable (fdatasync) before it returns and checks the stream's expected version.",
    );
    let t = Instant::now();
    workflow(&journal, 0..TASKS / 2)?;
    let half = journal.last_seq();
    let half_ts = journal.read_raw(Query::range(half..=half)).next().context("an event")??.ts;
    workflow(&journal, TASKS / 2..TASKS)?;
    let first_batch = journal.last_seq();
    say(&format!("   {first_batch} events in {:.1} s.", t.elapsed().as_secs_f64()));

    let counts = journal.state::<Counts>()?;
    say(&format!(
        "2. Now: {} created, {} started, {} completed (the live `counts` projection, no replay).",
        counts.by_type.get("task-created").unwrap_or(&0),
        counts.by_type.get("task-started").unwrap_or(&0),
        counts.by_type.get("task-completed").unwrap_or(&0)
    ));
    let conflict = journal.append_events(
        "task-0001",
        Expect::NoStream,
        vec![event("task-created", json!({}), "ada")?],
    );
    if let Err(e) = &conflict {
        say(&format!("   Creating task-0001 again is refused: {e}."));
    }

    let (then, _) = journal.replay::<Counts>(Until::Seq(half))?;
    say(&format!(
        "3. Time travel: at sequence {half}, {} tasks existed and {} were done.",
        then.by_type.get("task-created").unwrap_or(&0),
        then.by_type.get("task-completed").unwrap_or(&0)
    ));
    let (at_time, seq) = journal.replay::<Entities>(Until::Time(half_ts))?;
    say(&format!(
        "   At {} (sequence {seq}), task-0100 was {}.",
        out::rfc3339(half_ts),
        at_time.get("task-0100").map(|e| e.data["status"].clone()).unwrap_or(Value::Null)
    ));

    let report = journal.compact()?;
    say(&format!(
        "4. Compaction: snapshots of every projection at {}, MANIFEST committed, log starts at {}.",
        report.seq, report.log_start
    ));
    workflow(&journal, TASKS..TASKS + 200)?;
    let report = journal.compact()?;
    say(&format!(
        "   200 more tasks, compacted again (keeping one snapshot): {} segment(s) moved to archive/, {} bytes.",
        report.segments_removed.len(),
        report.bytes_reclaimed
    ));
    let (early, _) = journal.replay::<Counts>(Until::Seq(10))?;
    say(&format!(
        "   Time travel to sequence 10 still works through the archive: {} events then.",
        early.total
    ));

    let audit = dir.join("audit.jsonl");
    drop(journal);
    say("5. Audit export of every event, archived ones included, each with its hash-chain value:");
    let quiet = crate::progress::Bar::hidden();
    let head = crate::audit::export(dir, 1, None, false, Some(&audit), &quiet)?;
    let checked = crate::audit::check_file(&audit, Some(&head), None, &quiet)?;
    say(&format!(
        "   {} holds records {}..={} and verifies on its own against the chain head.",
        audit.display(),
        checked.first_seq,
        checked.last_seq
    ));

    say(
        "6. Full verification: checksums, sequence, chain, MANIFEST, and snapshots equal to replays.",
    );
    let (report, failure) =
        crate::write_cmds::verify_report(dir, None, &crate::progress::Bar::hidden())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    say(&format!(
        "   OK: {} records in the log, {} snapshots checked.",
        report.records, report.snapshots_checked
    ));
    let journal = Journal::options().projection::<Entities>().projection::<Counts>().open(dir)?;
    let secs = started.elapsed().as_secs_f64();
    let (d, events, audit_path) = (dir.display(), journal.last_seq(), audit.display());
    say(&format!(
        "\nDone in {secs:.1} s. The journal is left in {d} ({events} events). Try:\n  annal info {d}\n  annal read {d} --stream task-0042\n  annal replay {d} --until {half} --stream task-0100\n  annal audit-verify {audit_path}"
    ));
    out::print(&DemoSummary {
        dir: dir.display().to_string(),
        events: journal.last_seq(),
        audit: audit.display().to_string(),
        chain_head: head,
    })
}
