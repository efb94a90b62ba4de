//! `kill`: real processes appending with `Durability::Sync`, killed with SIGKILL.
//!
//! The parent spawns the harness binary's hidden `kill-child` subcommand on a store in a
//! temporary directory. The child opens the journal, then appends batches of events to one
//! stream (so that each event's content, stream and version follow from its sequence number)
//! and compacts now and then, printing `begin FIRST LAST` before each append, `ack FIRST LAST`
//! after it is acknowledged, and `compact` / `compacted` around compactions, one flushed line
//! each. The parent kills it at a random moment (during open, after some acknowledgements, or
//! during a compaction), reads every line the child managed to print, reopens the store and
//! checks: every acknowledged event present (G1), the log ending where an append ended (G2),
//! gapless and byte-for-byte as derived from the sequence number (G3), live state = replay =
//! the model's fold (G5), a clean second open with no orphans, and appendable. Several kills
//! hit the same store in a row, so recoveries of recovered stores are exercised too.
//!
//! Beside the writers, each store has a follower in a process of its own (the hidden
//! `kill-follower` subcommand), a `JournalReader::follow` from the earliest event that lives
//! across the kills. It checks every event it is given (its stream, version and data follow from
//! its sequence number) and prints `seq N` for each, or `overtaken N EARLIEST` when a compaction
//! removed what it needed (only on stores without `archive/`; it then follows again from the
//! earliest held). The parent checks that the sequence numbers are gapless and never repeat
//! (only an `overtaken` line may skip, and never backwards), and that the follower reached the
//! end of the log.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annal::{Durability, Expect, Journal, JournalReader, Query, Until};
use annal_storage::OsStorage;
use serde::Serialize;

use crate::check::{Violation, orphans};
use crate::model::{Ev, ModelEvent, Tally, model_fold};
use crate::rng::Rng;

/// The one stream the child appends to: an event's version equals its sequence number.
pub const STREAM: &str = "kill";

/// Kills in a row on one store before a fresh one is started.
const KILLS_PER_STORE: u64 = 5;

/// Appends after which a child stops by itself (if the parent never kills it).
const CHILD_APPENDS_MAX: u64 = 20_000;

/// Segment size of the child's journal: small, so that segments roll and compaction truncates.
const CHILD_SEGMENT_BYTES: u64 = 16 * 1024;

/// The event with sequence number `seq`, as the child appends it.
#[must_use]
pub fn event_for(seq: u64) -> Ev {
    Ev::make(seq, usize::try_from(seq * 37 % 400).expect("below 400"))
}

/// How long the parent waits for a follower to reach the end of the log.
const FOLLOWER_CATCH_UP: Duration = Duration::from_secs(20);

fn open(dir: &Path, archive: bool) -> annal::Result<Journal> {
    Journal::options()
        .durability(Durability::Sync)
        .segment_bytes(CHILD_SEGMENT_BYTES)
        .keep_snapshots(2)
        .archive(archive)
        .projection::<Tally>()
        .open(dir)
}

/// The follower's side: waits for the journal in `dir` to exist, then follows it from the
/// earliest event until killed, checking each event and reporting on `out`.
///
/// # Errors
/// An event that is not the one its sequence number names, a read error other than being
/// overtaken by a compaction, or a write error (reported as `error ...` first).
pub fn follower(dir: &Path, out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let reader = loop {
        match JournalReader::open(dir) {
            Ok(reader) => break reader,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.into()),
        }
    };
    let mut from = 0;
    loop {
        for event in reader.follow::<Ev>(Query::range(from..))? {
            let e = match event {
                Ok(e) => e,
                Err(annal::Error::Wal(annal::wal::Error::BeforeStart { seq, earliest })) => {
                    writeln!(out, "overtaken {seq} {earliest}")?;
                    out.flush()?;
                    from = 0;
                    break;
                }
                Err(e) => {
                    writeln!(out, "error {e}")?;
                    out.flush()?;
                    return Err(e.into());
                }
            };
            if e.stream != STREAM || e.version != e.seq || e.data != event_for(e.seq) {
                let what = format!(
                    "sequence {} is {:?} v{} {:?}, not the event appended",
                    e.seq, e.stream, e.version, e.data
                );
                writeln!(out, "error {what}")?;
                out.flush()?;
                return Err(what.into());
            }
            writeln!(out, "seq {}", e.seq)?;
            out.flush()?;
        }
    }
}

/// A follower process and what it printed so far.
struct FollowerProc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl FollowerProc {
    fn spawn(exe: &Path, dir: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .arg("kill-follower")
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                sink.lock().expect("not poisoned").push(line);
            }
        });
        Ok(Self { child, lines, reader })
    }

    /// The last sequence number it reported.
    fn reached(&self) -> u64 {
        let lines = self.lines.lock().expect("not poisoned");
        lines.iter().rev().find_map(|l| l.strip_prefix("seq ")?.parse().ok()).unwrap_or(0)
    }

    /// Waits (a bounded time) for it to reach `last`, stops it, and checks what it printed;
    /// returns how many events it delivered.
    fn finish(mut self, last: u64) -> Result<u64, Violation> {
        let deadline = Instant::now() + FOLLOWER_CATCH_UP;
        while self.reached() < last
            && Instant::now() < deadline
            && self.child.try_wait().ok().flatten().is_none()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let lines = self.lines.lock().expect("not poisoned").clone();
        let fail = |what: String| Violation::new("G11 follower process", what);
        let mut expected: Option<u64> = None;
        let mut skip_from: Option<u64> = None;
        let mut delivered = 0u64;
        for line in &lines {
            let mut words = line.split_whitespace();
            match (words.next(), words.next().and_then(|w| w.parse::<u64>().ok())) {
                (Some("seq"), Some(seq)) => {
                    let ok = match (expected, skip_from) {
                        (None, _) => true,
                        (Some(_), Some(at_least)) => seq >= at_least,
                        (Some(next), None) => seq == next,
                    };
                    if !ok {
                        return Err(fail(format!(
                            "delivered {seq} where {} was due: a gap or a repeat",
                            expected.unwrap_or(0)
                        )));
                    }
                    expected = Some(seq + 1);
                    skip_from = None;
                    delivered += 1;
                }
                (Some("overtaken"), Some(seq)) => {
                    if expected.is_some_and(|next| seq != next) {
                        return Err(fail(format!("overtaken at {seq}, but {expected:?} was due")));
                    }
                    skip_from = Some(seq);
                }
                _ => return Err(fail(format!("the follower said: {line}"))),
            }
        }
        let reached = expected.map_or(0, |n| n - 1);
        if reached < last {
            return Err(fail(format!(
                "reached {reached} in {FOLLOWER_CATCH_UP:?}, the log ends at {last}"
            )));
        }
        Ok(delivered)
    }
}

/// The child's side: opens the journal in `dir` and appends (with a compaction every so often)
/// until killed, reporting on `out`. The workload's shape derives from `seed`.
///
/// # Errors
/// Open, append, compaction or write errors (the parent sees the child exit early).
pub fn child(
    dir: &Path,
    seed: u64,
    archive: bool,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(seed);
    let journal = open(dir, archive)?;
    writeln!(out, "open {}", journal.last_seq())?;
    out.flush()?;
    let compact_every = rng.range(20, 80);
    for i in 0..CHILD_APPENDS_MAX {
        let first = journal.last_seq() + 1;
        let n = if rng.chance(30) { rng.range(2, 6) } else { 1 };
        let last = first + n - 1;
        writeln!(out, "begin {first} {last}")?;
        out.flush()?;
        let events: Vec<Ev> = (first..=last).map(event_for).collect();
        let a = journal.append(STREAM, Expect::Exact(first - 1), events)?;
        if (a.first, a.last) != (first, last) {
            return Err(format!("appended {}..={} for {first}..={last}", a.first, a.last).into());
        }
        writeln!(out, "ack {first} {last}")?;
        out.flush()?;
        if i % compact_every == compact_every - 1 {
            writeln!(out, "compact")?;
            out.flush()?;
            journal.compact()?;
            writeln!(out, "compacted")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// What the kill runs explored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KillStats {
    /// Children killed and their stores checked.
    pub kills: u64,
    /// Kills aimed at the open (no line read first).
    pub during_open: u64,
    /// Kills aimed at a compaction (after the child announced one).
    pub during_compaction: u64,
    /// Children that exited by themselves before the kill (still checked).
    pub exited_early: u64,
    /// Events acknowledged by children, over all kills.
    pub events_acked: u64,
    /// Events found after recovery beyond the last acknowledged one (an append in flight that
    /// made it to disk).
    pub unacked_survivors: u64,
    /// Follower processes run beside the writers, one per store.
    pub followers: u64,
    /// Events they delivered, checked.
    pub follower_events: u64,
}

/// A kill after which an invariant broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillFailure {
    /// The iteration (from 0).
    pub iteration: u64,
    /// The seed of the run.
    pub seed: u64,
    /// The invariant broken.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

/// What the child reported before it died.
#[derive(Debug, Default)]
struct Reported {
    /// The end of the last acknowledged append.
    acked: u64,
    /// Sequence numbers at which an acknowledged append ended.
    cuts: Vec<u64>,
    /// The end of the append in flight, if one was begun and not acknowledged.
    in_flight: Option<u64>,
}

fn parse(lines: &[String], base: u64) -> Reported {
    let mut r = Reported { acked: base, cuts: vec![base], in_flight: None };
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(tag), Some(first), Some(last)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(_first), Ok(last)) = (first.parse::<u64>(), last.parse::<u64>()) else { continue };
        match tag {
            "begin" => r.in_flight = Some(last),
            "ack" => {
                r.acked = last;
                r.cuts.push(last);
                r.in_flight = None;
            }
            _ => {}
        }
    }
    r
}

/// Checks the store in `dir` after a kill: G1, G2, G3 against `reported`, G5, a clean second
/// open without orphans, and appendability. Returns the last sequence number after the one
/// event appended to prove appendability.
///
/// # Errors
/// The invariant broken.
fn check_store(
    dir: &Path,
    archive: bool,
    reported: &Reported,
    stats: &mut KillStats,
) -> Result<u64, Violation> {
    let journal =
        open(dir, archive).map_err(|e| Violation::new("recovery", format!("open failed: {e}")))?;
    let last = journal.last_seq();
    if last < reported.acked {
        return Err(Violation::new(
            "G1 durability",
            format!("{} events were acknowledged but the log ends at {last}", reported.acked),
        ));
    }
    let bound = reported.in_flight.unwrap_or(reported.acked);
    if last > bound {
        return Err(Violation::new(
            "G3 no phantom",
            format!("the log ends at {last} but appends were only begun up to {bound}"),
        ));
    }
    if !reported.cuts.contains(&last) && Some(last) != reported.in_flight {
        return Err(Violation::new(
            "G2 atomic batches",
            format!("the log ends at {last}, inside an append"),
        ));
    }
    stats.unacked_survivors += last - reported.acked;
    let first = journal.log().first_seq();
    let mut next = first;
    for record in journal.log().read_from(first) {
        let record =
            record.map_err(|e| Violation::new("G3 readable", format!("sequence {next}: {e}")))?;
        if record.seq != next {
            return Err(Violation::new(
                "G3 gapless",
                format!("expected {next}, read {}", record.seq),
            ));
        }
        let raw = annal::RawEvent::parse(record.seq, record.ts, &record.payload)
            .map_err(|e| Violation::new("G3 byte-identical", format!("sequence {next}: {e}")))?;
        let data: Ev = raw
            .decode()
            .map_err(|e| Violation::new("G3 byte-identical", format!("sequence {next}: {e}")))?;
        if raw.stream != STREAM || raw.version != next || data != event_for(next) {
            return Err(Violation::new(
                "G3 byte-identical",
                format!("sequence {next}: read {:?} v{} {data:?}", raw.stream, raw.version),
            ));
        }
        next += 1;
    }
    if next != last + 1 {
        return Err(Violation::new("G3 gapless", format!("reading stopped at {}", next - 1)));
    }
    let model: Vec<ModelEvent> =
        (1..=last).map(|s| ModelEvent { stream: STREAM.into(), ev: event_for(s) }).collect();
    let expected = model_fold(&model);
    let state = journal.state::<Tally>().map_err(|e| Violation::new("G5 state", e.to_string()))?;
    let (replayed, _) = journal
        .replay::<Tally>(Until::End)
        .map_err(|e| Violation::new("G5 replay", e.to_string()))?;
    if state != expected || replayed != expected {
        return Err(Violation::new("G5 state", "live state or replay differs from the model"));
    }
    let head = journal.log().chain_head().map_err(|e| Violation::new("recovery", e.to_string()))?;
    drop(journal);
    let journal = open(dir, archive)
        .map_err(|e| Violation::new("recovery idempotent", format!("second open: {e}")))?;
    if !journal.recovery_report().is_clean()
        || journal.last_seq() != last
        || journal.log().chain_head().ok() != Some(head)
    {
        return Err(Violation::new(
            "recovery idempotent",
            format!("second open differs: {:?}", journal.recovery_report()),
        ));
    }
    let left = orphans(&OsStorage::new(), dir);
    if !left.is_empty() {
        return Err(Violation::new("no orphans", format!("{left:?}")));
    }
    journal.append(STREAM, Expect::Exact(last), [event_for(last + 1)]).map_err(|e| {
        Violation::new("appendable after recovery", format!("append after recovery: {e}"))
    })?;
    Ok(last + 1)
}

/// One store of a kill run: its directory, the last sequence number checked, whether it
/// archives, and its follower.
struct Store {
    tmp: tempfile::TempDir,
    base: u64,
    archive: bool,
    follower: Option<FollowerProc>,
}

impl Store {
    fn new(exe: &Path, rng: &mut Rng) -> std::io::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let follower = Some(FollowerProc::spawn(exe, &tmp.path().join("journal"))?);
        Ok(Self { tmp, base: 0, archive: rng.chance(50), follower })
    }

    /// Stops the follower and checks it reached the store's end.
    fn finish(&mut self, stats: &mut KillStats) -> Result<(), Violation> {
        let Some(follower) = self.follower.take() else { return Ok(()) };
        stats.followers += 1;
        stats.follower_events += follower.finish(self.base)?;
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(mut f) = self.follower.take() {
            let _ = f.child.kill();
            let _ = f.child.wait();
        }
    }
}

/// Runs `iterations` kills of children started as `exe kill-child --dir D --seed S`, seeded by
/// `seed`, with a follower process per store; calls `on_failure` for each kill after which an
/// invariant broke.
///
/// # Errors
/// The harness could not create a temporary directory or start a child.
pub fn run_kills(
    exe: &Path,
    iterations: u64,
    seed: u64,
    on_failure: &mut dyn FnMut(&KillFailure),
) -> std::io::Result<(KillStats, Vec<KillFailure>)> {
    let mut rng = Rng::new(seed);
    let mut stats = KillStats::default();
    let mut failures = Vec::new();
    let mut store: Option<Store> = None;
    let mut fail = |iteration: u64, v: Violation, failures: &mut Vec<KillFailure>| {
        let failure =
            KillFailure { iteration, seed, invariant: v.invariant.to_owned(), detail: v.detail };
        on_failure(&failure);
        failures.push(failure);
    };
    for iteration in 0..iterations {
        if iteration % KILLS_PER_STORE == 0 || store.is_none() {
            store = Some(Store::new(exe, &mut rng)?);
        }
        let st = store.as_mut().expect("a store is set up");
        let dir = st.tmp.path().join("journal");
        let mut command = Command::new(exe);
        command.arg("kill-child").arg("--dir").arg(&dir);
        command.arg("--seed").arg(rng.next_u64().to_string());
        if st.archive {
            command.arg("--archive");
        }
        let mut child =
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut read_line = |lines: &mut Vec<String>| -> bool {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => false,
                Ok(_) => {
                    if line.ends_with('\n') {
                        lines.push(line.trim_end().to_owned());
                    }
                    true
                }
            }
        };
        match rng.below(10) {
            0..=1 => {
                stats.during_open += 1;
                std::thread::sleep(Duration::from_micros(rng.below(4000)));
            }
            2..=4 => {
                stats.during_compaction += 1;
                while read_line(&mut lines) {
                    if lines.last().is_some_and(|l| l == "compact") {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_micros(rng.below(2000)));
            }
            _ => {
                let acks = rng.range(1, 300);
                let mut seen = 0;
                while seen < acks && read_line(&mut lines) {
                    if lines.last().is_some_and(|l| l.starts_with("ack")) {
                        seen += 1;
                    }
                }
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        }
        if child.try_wait()?.is_some() {
            stats.exited_early += 1;
        }
        let _ = child.kill();
        child.wait()?;
        while read_line(&mut lines) {}
        drop(reader);
        let reported = parse(&lines, st.base);
        stats.kills += 1;
        stats.events_acked += reported.acked - st.base;
        match check_store(&dir, st.archive, &reported, &mut stats) {
            Ok(last) => st.base = last,
            Err(v) => {
                fail(iteration, v, &mut failures);
                store = None;
                continue;
            }
        }
        let last_of_store = (iteration + 1) % KILLS_PER_STORE == 0 || iteration + 1 == iterations;
        if last_of_store && let Err(v) = st.finish(&mut stats) {
            fail(iteration, v, &mut failures);
        }
    }
    Ok((stats, failures))
}
