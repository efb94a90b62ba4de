//! Commands that take the writer lock: init, append, compact, verify, recover.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use annal::{Counts, Entities, Expect, Journal, JournalOptions, Meta, NewEvent, RecoveryMode};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::out::{self, TornTailLine};
use crate::progress::{Bar, Output};

/// The most lines one `append --jsonl` batch may hold.
const JSONL_LINES_MAX: usize = 100_000;
/// The longest line `append --jsonl` reads, in bytes: input is never read further than this
/// past a line's start (`/dev/zero` is refused after it, not read into memory).
const JSONL_LINE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The most input one `append --jsonl` batch may hold, in bytes.
const JSONL_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
const _: () = assert!(JSONL_LINE_BYTES_MAX <= JSONL_BATCH_BYTES_MAX);

fn options(wait: Option<f64>) -> anyhow::Result<JournalOptions> {
    let mut options = Journal::options().projection::<Entities>().projection::<Counts>();
    if let Some(secs) = wait {
        let wait = Duration::try_from_secs_f64(secs)
            .map_err(|_| anyhow::anyhow!("--wait {secs}: not a duration in seconds"))?;
        options = options.lock_timeout(wait);
    }
    Ok(options)
}

/// Fails unless `dir` holds a journal: commands other than `init` and `demo` never create one.
/// A directory that cannot be read (permissions) is reported as such, not as a missing journal.
pub fn require_journal(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("no journal at {}: not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no journal at {}: the directory does not exist (create one with `annal init {}`)",
            dir.display(),
            dir.display()
        ),
        Err(e) => bail!("cannot open the journal at {}: {e}", dir.display()),
    }
    let wal = dir.join(annal::WAL_DIR);
    match std::fs::metadata(&wal) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!("no journal at {}: its wal/ is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no journal at {}: it has no wal/ directory (create one with `annal init DIR`)",
            dir.display()
        ),
        Err(e) => bail!("cannot open the journal at {}: {}: {e}", dir.display(), wal.display()),
    }
}

/// Opens the journal for writing, `bar` showing the open's fold of the log.
fn open(dir: &Path, wait: Option<f64>, bar: &Bar) -> anyhow::Result<Journal> {
    require_journal(dir)?;
    bar.step(format!("opening {}", dir.display()));
    let journal = options(wait)?
        .progress(bar.observer())
        .open(dir)
        .with_context(|| format!("open {}", dir.display()))?;
    out::report_recovery(dir, journal.recovery_report());
    Ok(journal)
}

/// What `init` prints.
#[derive(Debug, Serialize)]
struct InitReport {
    /// The journal's directory.
    dir: String,
    /// Whether `init` created it (false: it held a journal already).
    created: bool,
    /// The journal's last sequence number.
    last_seq: u64,
}

pub fn init(dir: &Path) -> anyhow::Result<()> {
    if let Ok(m) = std::fs::metadata(dir)
        && !m.is_dir()
    {
        bail!("cannot create a journal at {}: it is a file, not a directory", dir.display());
    }
    let existed = dir.join(annal::WAL_DIR).is_dir();
    let journal = Journal::open(dir).with_context(|| format!("create {}", dir.display()))?;
    out::report_recovery(dir, journal.recovery_report());
    out::print(&InitReport {
        dir: dir.display().to_string(),
        created: !existed,
        last_seq: journal.last_seq(),
    })
}

/// Parses `--expect` / `"expect"`: any, none, exists, or a version number.
fn parse_expect(value: &Value) -> Result<Expect, String> {
    match value {
        Value::Null => Ok(Expect::Any),
        Value::String(s) => match s.as_str() {
            "any" => Ok(Expect::Any),
            "none" => Ok(Expect::NoStream),
            "exists" => Ok(Expect::Exists),
            other => other.parse().map(Expect::Exact).map_err(|_| {
                format!("expect {other:?}: use any, none, exists, or a version number")
            }),
        },
        Value::Number(n) => {
            n.as_u64().map(Expect::Exact).ok_or_else(|| format!("expect {n}: not a version number"))
        }
        other => Err(format!("expect {other}: use any, none, exists, or a version number")),
    }
}

fn meta_from(value: Option<&Value>) -> Result<Meta, String> {
    match value {
        None | Some(Value::Null) => Ok(Meta::default()),
        Some(Value::Object(map)) => {
            let mut meta = Meta::default();
            for (key, v) in map {
                let text = || {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("meta.{key} must be a string"))
                };
                match key.as_str() {
                    "actor" => meta.actor = Some(text()?),
                    "correlation_id" => meta.correlation_id = Some(text()?),
                    "causation_id" => meta.causation_id = Some(text()?),
                    _ => {
                        meta.extra.insert(key.clone(), v.clone());
                    }
                }
            }
            Ok(meta)
        }
        Some(other) => Err(format!("meta must be an object, not {other}")),
    }
}

/// What `append` prints for one event.
#[derive(Debug, Serialize)]
struct AppendReport {
    /// The event's sequence number.
    seq: u64,
    /// The stream's version after it.
    version: u64,
}

pub fn append_one(
    dir: &Path,
    stream: &str,
    event_type: &str,
    data: Option<&str>,
    actor: Option<String>,
    expect: &str,
    wait: Option<f64>,
) -> anyhow::Result<()> {
    let expect =
        parse_expect(&Value::String(expect.to_owned())).map_err(|e| anyhow::anyhow!("--{e}"))?;
    let data: Value = match data {
        Some(text) => {
            let value = serde_json::from_str(text)
                .with_context(|| format!("--data is not JSON: {text:?}"))?;
            check_integers(text).map_err(|e| anyhow::anyhow!("--data: {e}"))?;
            value
        }
        None => json!({}),
    };
    let meta = Meta { actor, ..Meta::default() };
    let event = NewEvent::json(event_type, &data)?.meta(meta);
    let bar = Bar::start(format!("opening {}", dir.display()), Output::Answer);
    let journal = open(dir, wait, &bar)?;
    let a = journal.append_events(stream, expect, vec![event])?;
    bar.finish();
    out::print(&AppendReport { seq: a.last, version: a.version })
}

/// One parsed line of `append --jsonl`.
struct Line {
    /// The line's number in the input (from 1, blank lines counted).
    number: usize,
    stream: String,
    expect: Expect,
    event: NewEvent,
}

/// Refuses integer literals that do not fit in 64 bits, which JSON parsing would otherwise turn
/// into approximate floats without a word. Names the literal and its byte offset.
fn check_integers(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
            {
                i += 1;
            }
            let token = &text[start..i];
            let integer = !token.contains(['.', 'e', 'E']);
            if integer && token.parse::<u64>().is_err() && token.parse::<i64>().is_err() {
                return Err(format!(
                    "the integer {token} at byte {start} does not fit in 64 bits (write it as a string)"
                ));
            }
            continue;
        }
        i += 1;
    }
    Ok(())
}

fn parse_line(text: &str) -> Result<Line, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    check_integers(text)?;
    let Value::Object(map) = value else { return Err("not a JSON object".into()) };
    let field = |name: &str| -> Result<String, String> {
        match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(format!("\"{name}\" must be a non-empty string")),
            None => Err(format!("missing \"{name}\"")),
        }
    };
    let stream = field("stream")?;
    let event_type = field("type")?;
    for key in map.keys() {
        if !matches!(key.as_str(), "stream" | "type" | "data" | "meta" | "expect") {
            return Err(format!(
                "unknown field \"{key}\" (expected stream, type, data, meta, expect)"
            ));
        }
    }
    let data = map.get("data").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_from(map.get("meta"))?;
    let expect = parse_expect(map.get("expect").unwrap_or(&Value::Null))?;
    let event = NewEvent::json(event_type, &data).map_err(|e| e.to_string())?.meta(meta);
    Ok(Line { number: 0, stream, expect, event })
}

/// What `append --jsonl` prints.
#[derive(Debug, Serialize)]
struct BatchReport {
    /// The batch's first sequence number.
    first: u64,
    /// Its last sequence number.
    last: u64,
    /// How many events it holds.
    count: usize,
}

pub fn append_jsonl(dir: &Path, source: &str, wait: Option<f64>) -> anyhow::Result<()> {
    let bar = Bar::start(format!("reading {source}"), Output::Answer);
    let mut reader: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(source).with_context(|| format!("open {source}"))?;
        if let Ok(m) = file.metadata()
            && m.is_file()
        {
            bar.bytes("parse", m.len());
        }
        Box::new(std::io::BufReader::new(bar.wrap_read(file)))
    };
    let name = if source == "-" { "standard input".to_owned() } else { source.to_owned() };
    // Every line is parsed and checked before anything is appended.
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut total = 0usize;
    for number in 1.. {
        buf.clear();
        let read = read_line_bounded(reader.as_mut(), &mut buf, JSONL_LINE_BYTES_MAX)
            .with_context(|| format!("{name}: line {number}: cannot be read"))?;
        if read == LineRead::TooLong {
            bail!(
                "{name}: line {number}: longer than {JSONL_LINE_BYTES_MAX} bytes; nothing was appended"
            );
        }
        if read == LineRead::End && buf.is_empty() {
            break;
        }
        // The newline counts too: endless blank lines end at the batch bound as well.
        total += buf.len() + 1;
        if total > JSONL_BATCH_BYTES_MAX {
            bail!(
                "{name}: line {number}: the batch exceeds {JSONL_BATCH_BYTES_MAX} bytes; split the file; nothing was appended"
            );
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            anyhow::anyhow!("{name}: line {number}: not UTF-8 ({e}); nothing was appended")
        })?;
        if text.trim().is_empty() {
            continue;
        }
        if lines.len() == JSONL_LINES_MAX {
            bail!(
                "{name}: line {number}: more than {JSONL_LINES_MAX} events in one batch; split the file"
            );
        }
        let mut line = parse_line(text)
            .map_err(|e| anyhow::anyhow!("{name}: line {number}: {e}; nothing was appended"))?;
        line.number = number;
        lines.push(line);
    }
    if lines.is_empty() {
        bail!("{name}: no events; nothing was appended");
    }
    let journal = open(dir, wait, &bar)?;
    // The expectations, line by line, while the lock is held: a conflict names its line.
    let mut versions: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for line in &lines {
        let actual = *versions
            .entry(line.stream.as_str())
            .or_insert_with(|| journal.stream_version(&line.stream));
        if !line.expect.allows(actual) {
            return Err(crate::Exit {
                code: crate::EXIT_CONFLICT,
                message: format!(
                    "{name}: line {}: expected-version conflict on stream {:?}: expected {}, actual version {actual}; nothing was appended",
                    line.number, line.stream, line.expect
                ),
            }
            .into());
        }
        versions.insert(line.stream.as_str(), actual + 1);
    }
    let batches: Vec<(&str, Expect, Vec<NewEvent>)> =
        lines.iter().map(|l| (l.stream.as_str(), l.expect, vec![l.event.clone()])).collect();
    let count = batches.len();
    bar.step(format!("appending {count} events as one batch"));
    let appended = journal.append_multi(&batches)?;
    bar.finish();
    let first = appended.first().map_or(0, |a| a.first);
    let last = appended.last().map_or(0, |a| a.last);
    out::print(&BatchReport { first, last, count })
}

/// How [`read_line_bounded`] ended.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (its newline dropped).
    Line,
    /// The end of the input (what was read before it, if anything, is the last line).
    End,
    /// The line runs past the limit; the rest of the input is not read.
    TooLong,
}

/// Reads one line into `buf` (without its newline), never holding more than `max` bytes.
fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(LineRead::End);
        }
        let (chunk, newline) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        if buf.len() + chunk.len() > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = chunk.len() + usize::from(newline);
        reader.consume(used);
        if newline {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line);
        }
    }
}

/// What `compact` prints.
#[derive(Debug, Serialize)]
struct CompactReport {
    /// The sequence number the snapshots stand at.
    seq: u64,
    /// The log start after the compaction.
    log_start: u64,
    /// The snapshot files written.
    snapshots_written: Vec<String>,
    /// The segments removed (deleted or archived).
    segments_removed: Vec<String>,
    /// Bytes of the removed segments.
    bytes_reclaimed: u64,
    /// Snapshot and temporary files removed.
    files_removed: Vec<String>,
    /// Whether removed segments went to `archive/`.
    archived: bool,
}

pub fn compact(dir: &Path, keep: usize, archive: bool, wait: Option<f64>) -> anyhow::Result<()> {
    require_journal(dir)?;
    let bar = Bar::start(format!("opening {}", dir.display()), Output::Answer);
    let journal = options(wait)?
        .keep_snapshots(keep)
        .archive(archive)
        .progress(bar.observer())
        .open(dir)
        .with_context(|| format!("open {}", dir.display()))?;
    out::report_recovery(dir, journal.recovery_report());
    bar.step("compacting");
    let r = journal.compact()?;
    bar.finish();
    out::print(&CompactReport {
        seq: r.seq,
        log_start: r.log_start,
        snapshots_written: out::paths(&r.snapshots_written),
        segments_removed: out::paths(&r.segments_removed),
        bytes_reclaimed: r.bytes_reclaimed,
        files_removed: out::paths(&r.files_removed),
        archived: archive,
    })
}

pub fn verify(dir: &Path, wait: Option<f64>, read_only: bool) -> anyhow::Result<()> {
    let bar = Bar::start(format!("opening {}", dir.display()), Output::Answer);
    let (report, failure) =
        if read_only { verify_read_only(dir, &bar)? } else { verify_report(dir, wait, &bar)? };
    bar.finish();
    out::print(&report)?;
    failure.map_or(Ok(()), Err)
}

/// Damage in a file, as `verify` and `recover` print it.
#[derive(Debug, Serialize)]
pub struct DamageLine {
    /// The damaged file.
    pub file: String,
    /// The damage's byte offset in it.
    pub offset: u64,
    /// The sequence number expected there.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

impl DamageLine {
    fn new(file: &Path, offset: u64, seq: u64, reason: &str) -> Self {
        Self { file: file.display().to_string(), offset, seq, reason: reason.to_owned() }
    }
}

/// What `verify` prints.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Whether no problem was found.
    pub ok: bool,
    /// Segments checked.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// The hash chain's head, hex.
    pub chain_head: String,
    /// Snapshots checked.
    pub snapshots_checked: usize,
    /// Snapshots compared with a replay.
    pub snapshots_replayed: usize,
    /// Every problem found.
    pub problems: Vec<DamageLine>,
    /// The torn tail the open cut before the check, if any.
    pub torn_tail_cut: Option<TornTailLine>,
    /// Whether the check ran without the lock (printed only when it did).
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// Runs `verify`; returns the report and, when problems were found, the error to exit with.
pub fn verify_report(
    dir: &Path,
    wait: Option<f64>,
    bar: &Bar,
) -> anyhow::Result<(VerifyReport, Option<anyhow::Error>)> {
    let journal = open(dir, wait, bar)?;
    let report = journal.verify()?;
    Ok(verify_summary(&report, TornTailLine::of(journal.recovery_report()), false))
}

/// `verify --read-only`: the check a reader can make without the writer lock.
fn verify_read_only(
    dir: &Path,
    bar: &Bar,
) -> anyhow::Result<(VerifyReport, Option<anyhow::Error>)> {
    let reader = annal::JournalReader::open(dir)
        .with_context(|| format!("open {} for reading", dir.display()))?;
    bar.step(format!("verifying {} without the lock", dir.display()));
    let report = reader.verify()?;
    Ok(verify_summary(&report, None, true))
}

fn verify_summary(
    report: &annal::VerifyReport,
    torn_tail_cut: Option<TornTailLine>,
    read_only: bool,
) -> (VerifyReport, Option<anyhow::Error>) {
    let summary = VerifyReport {
        ok: report.is_ok(),
        segments: report.log.segments,
        records: report.log.records,
        chain_head: annal::to_hex(&report.log.chain_head),
        snapshots_checked: report.snapshots_checked,
        snapshots_replayed: report.snapshots_replayed,
        problems: report
            .problems
            .iter()
            .map(|p| DamageLine::new(&p.file, p.offset, p.seq, &p.reason))
            .collect(),
        torn_tail_cut,
        read_only,
    };
    let failure = report.problems.first().map(|first| {
        crate::integrity(format!(
            "verify found {} problem(s); the first: {first}",
            report.problems.len()
        ))
    });
    (summary, failure)
}

/// Where `recover` restarted the log, past damage the snapshots cover.
#[derive(Debug, Serialize)]
struct RestartLine {
    /// The first damage in the log.
    damage: DamageLine,
    /// The sequence number of the snapshots the log continues from.
    snapshot_seq: u64,
    /// The new log start.
    log_start: u64,
    /// The segment written with the intact frames from the log start on, if any.
    rewritten: Option<String>,
    /// Segments taken out of `wal/`.
    removed_segments: Vec<String>,
}

/// A projection `recover` left with no state it can rebuild.
#[derive(Debug, Serialize)]
struct LostProjection {
    /// The projection's name.
    projection: String,
    /// Why it cannot be rebuilt.
    reason: String,
}

/// A snapshot `recover` took out of use.
#[derive(Debug, Serialize)]
struct DroppedSnapshot {
    /// The snapshot file.
    file: String,
    /// Why it was dropped.
    reason: String,
}

/// What `recover` prints.
#[derive(Debug, Serialize)]
struct RecoverReport {
    /// The last sequence number after the repair.
    last_seq: u64,
    /// Where the log was cut at its first bad frame, if it was.
    cut: Option<DamageLine>,
    /// The torn tail cut, if any.
    torn_tail: Option<TornTailLine>,
    /// Where the log restarted from the snapshots, if it did.
    restart: Option<RestartLine>,
    /// Segments whose damaged header was rewritten.
    headers_rewritten: Vec<String>,
    /// Snapshots rebuilt from `archive/`.
    snapshots_rebuilt: Vec<String>,
    /// Why the MANIFEST was rewritten, if it was.
    manifest_rewritten: Option<String>,
    /// Projections whose state can no longer be rebuilt.
    projections_lost: Vec<LostProjection>,
    /// Snapshots taken out of use.
    snapshots_dropped: Vec<DroppedSnapshot>,
    /// Files saved in `quarantine/`.
    quarantined: Vec<String>,
}

pub fn recover(dir: &Path) -> anyhow::Result<()> {
    require_journal(dir)?;
    let bar = Bar::start(format!("repairing {}", dir.display()), Output::Answer);
    let (journal, report) = options(None)?
        .recovery(RecoveryMode::TruncateAtCorruption)
        .progress(bar.observer())
        .repair(dir)
        .with_context(|| format!("repair {}", dir.display()))?;
    bar.finish();
    let r = &report.log;
    for path in report.quarantined.iter().chain(&r.quarantined) {
        eprintln!("saved in quarantine: {}", path.display());
    }
    if let Some(rs) = &report.restart {
        eprintln!(
            "damage in {} at byte offset {} (sequence {}): {}; the log restarts at sequence {} from the snapshots at {}",
            rs.damage.file.display(),
            rs.damage.offset,
            rs.damage.seq,
            rs.damage.reason,
            rs.log_start,
            rs.snapshot_seq
        );
    }
    for path in &report.headers_rewritten {
        eprintln!(
            "segment header was damaged: {} rewritten from its intact frames",
            path.display()
        );
    }
    for path in &report.snapshots_rebuilt {
        eprintln!("snapshot rebuilt from archive/: {}", path.display());
    }
    for (name, why) in &report.projections_lost {
        eprintln!("warning: projection {name} can no longer be rebuilt: {why}");
    }
    if !report.quarantined.is_empty() || !r.quarantined.is_empty() {
        eprintln!(
            "`annal salvage FILE` prints the intact events of a quarantined file as JSON Lines"
        );
    }
    let last_seq = journal.last_seq();
    if let Some(c) = &r.cut {
        // How much left the log: everything from the damaged frame on (intact frames after it
        // are in quarantine/, for salvage).
        eprintln!(
            "cut the log at {} byte offset {} (sequence {}): {}; the log now ends at sequence {last_seq}, and the records from sequence {} on are in quarantine/",
            c.file.display(),
            c.offset,
            c.seq,
            c.reason,
            c.seq
        );
    }
    journal.close().with_context(|| format!("close {}", dir.display()))?;
    out::print(&RecoverReport {
        last_seq,
        cut: r.cut.as_ref().map(|c| DamageLine::new(&c.file, c.offset, c.seq, &c.reason)),
        torn_tail: TornTailLine::of(r),
        restart: report.restart.as_ref().map(|rs| RestartLine {
            damage: DamageLine::new(
                &rs.damage.file,
                rs.damage.offset,
                rs.damage.seq,
                &rs.damage.reason,
            ),
            snapshot_seq: rs.snapshot_seq,
            log_start: rs.log_start,
            rewritten: rs.rewritten.as_ref().map(|p| p.display().to_string()),
            removed_segments: out::paths(&rs.removed_segments),
        }),
        headers_rewritten: out::paths(&report.headers_rewritten),
        snapshots_rebuilt: out::paths(&report.snapshots_rebuilt),
        manifest_rewritten: report.manifest_rewritten.clone(),
        projections_lost: report
            .projections_lost
            .iter()
            .map(|(n, why)| LostProjection { projection: n.clone(), reason: why.clone() })
            .collect(),
        snapshots_dropped: report
            .snapshots_dropped
            .iter()
            .map(|(p, why)| DroppedSnapshot { file: p.display().to_string(), reason: why.clone() })
            .collect(),
        quarantined: out::paths(report.quarantined.iter().chain(&r.quarantined)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_field_by_field() {
        assert!(parse_line(r#"{"stream":"s","type":"t"}"#).is_ok());
        assert!(
            parse_line(
                r#"{"stream":"s","type":"t","data":{"a":1},"meta":{"actor":"ada"},"expect":3}"#
            )
            .is_ok()
        );
        for (bad, why) in [
            ("nope", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"type":"t"}"#, "missing \"stream\""),
            (r#"{"stream":"s"}"#, "missing \"type\""),
            (r#"{"stream":"s","type":"t","expect":"maybe"}"#, "expect"),
            (r#"{"stream":"s","type":"t","meta":{"actor":5}}"#, "meta.actor"),
            (r#"{"stream":"s","type":"t","extra":1}"#, "unknown field"),
        ] {
            let err = parse_line(bad).err().unwrap_or_default();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
