//! Output: JSON on stdout, RFC 3339 timestamps, and progress bars on stderr (only when stderr
//! is a terminal).

use std::io::Write;
use std::path::Path;

use annal::{Event, Meta};
use serde::Serialize;
use serde_json::Value;

/// RFC 3339 with nanoseconds, UTC: `2026-11-23T10:00:00.123456789Z`.
pub fn rfc3339(ts_ns: u64) -> String {
    let secs = i64::try_from(ts_ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = ts_ns % 1_000_000_000;
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => format!("{}.{nanos:09}Z", t.strftime("%Y-%m-%dT%H:%M:%S")),
        Err(_) => format!("{ts_ns}ns"),
    }
}

/// Parses an RFC 3339 time into Unix nanoseconds.
pub fn parse_time(text: &str) -> anyhow::Result<u64> {
    let t: jiff::Timestamp = match text.parse() {
        Ok(t) => t,
        // A valid date at the very end of the calendar (9999-12-31T23:59:59Z) lies past what a
        // timestamp holds, and after every event.
        Err(_)
            if text
                .get(..19)
                .and_then(|civil| civil.parse::<jiff::civil::DateTime>().ok())
                .is_some_and(|d| d.year() >= 9999) =>
        {
            return Ok(u64::MAX);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "--at {text:?} is not an RFC 3339 time (like 2026-11-23T10:00:00Z)"
            )));
        }
    };
    let nanos = t.as_nanosecond();
    if nanos < 0 {
        anyhow::bail!("--at {text:?} is before 1970, before any event");
    }
    // Past the year 2554 nanoseconds overflow u64: every event is before such a time.
    Ok(u64::try_from(nanos).unwrap_or(u64::MAX))
}

pub fn meta_json(meta: &Meta) -> Value {
    serde_json::to_value(meta).unwrap_or(Value::Null)
}

/// The JSON envelope of an event, as `read` prints it.
#[derive(Debug, Serialize)]
pub struct EventLine<'a> {
    /// The event's sequence number.
    pub seq: u64,
    /// Its timestamp, RFC 3339.
    pub ts: String,
    /// Its stream.
    pub stream: &'a str,
    /// Its version in the stream.
    pub version: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// Its data.
    pub data: &'a Value,
    /// Its metadata.
    pub meta: &'a Meta,
}

impl<'a> EventLine<'a> {
    /// The envelope of `e`.
    pub fn of(e: &'a Event<Value>) -> Self {
        Self {
            seq: e.seq,
            ts: rfc3339(e.ts),
            stream: &e.stream,
            version: e.version,
            event_type: &e.event_type,
            data: &e.data,
            meta: &e.meta,
        }
    }
}

/// `value` as a JSON `Value`, whose objects hold their keys sorted: every line the tool prints
/// has its keys in that order, whatever the order of a struct's fields.
pub fn to_json(value: &impl Serialize) -> serde_json::Result<Value> {
    serde_json::to_value(value)
}

/// Writes one JSON value and a newline to stdout, its keys sorted (see [`to_json`]).
pub fn print(value: &impl Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(&to_json(value)?)?;
    line.push(b'\n');
    // A write error stays an `io::Error`, so that `main` can tell a closed stdout (the reader
    // went away: the command ends quietly) from a real failure.
    std::io::stdout().lock().write_all(&line).map_err(|e| {
        // The io::Error stays the source, for `is_closed_stdout`.
        anyhow::Error::new(e).context("write to standard output")
    })?;
    Ok(())
}

/// Whether `err` is a write to a closed stdout (`annal read DIR | head -1`): not a failure of
/// the command, whose work (an append, a compaction) is done when its answer is printed.
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    // serde_json and csv wrap the io::Error without giving it as their source.
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe),
            )
    })
}

/// A segment as `info` prints it.
#[derive(Debug, Serialize)]
pub struct SegmentLine {
    /// The segment file.
    pub file: String,
    /// Its first sequence number.
    pub first_seq: u64,
    /// Its last sequence number (`first_seq - 1` when empty).
    pub last_seq: u64,
    /// Bytes of header and frames.
    pub data_bytes: u64,
    /// The file's length.
    pub file_bytes: u64,
    /// Whether a footer seals it.
    pub sealed: bool,
}

impl SegmentLine {
    /// The line of `s`.
    pub fn of(s: &annal::SegmentSummary) -> Self {
        Self {
            file: s.path.display().to_string(),
            first_seq: s.first_seq,
            last_seq: s.last_seq,
            data_bytes: s.data_bytes,
            file_bytes: s.file_bytes,
            sealed: s.sealed,
        }
    }
}

/// Tells on stderr what opening for writing repaired: a torn tail cut (what, where, and where
/// its bytes were kept), a seal completed, a segment rebuilt, an interrupted truncation done.
pub fn report_recovery(dir: &Path, report: &annal::RecoveryReport) {
    if crate::progress::quiet() {
        return;
    }
    if let Some(t) = &report.torn_tail {
        let kept = report.quarantined.iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
        crate::progress::note(&format!(
            "warning: {}: cut a torn tail of {}: {} bytes from byte offset {} ({} complete frame(s) \
             never synced; {}); the log now ends at sequence {}; the bytes are kept in {}",
            dir.display(),
            t.file.display(),
            t.bytes,
            t.offset,
            t.orphan_frames,
            t.reason,
            report.last_seq,
            if kept.is_empty() { "quarantine/".to_string() } else { kept.join(", ") },
        ));
    }
    if let Some(path) = &report.completed_seal {
        crate::progress::note(&format!(
            "warning: completed the interrupted seal of {}",
            path.display()
        ));
    }
    if let Some(path) = &report.recreated_segment {
        crate::progress::note(&format!(
            "warning: rebuilt {}, whose creation a crash interrupted",
            path.display()
        ));
    }
    for path in &report.truncated_segments {
        crate::progress::note(&format!(
            "note: removed {} from wal/, below the log start: a compaction left it (its seal was \
             not on disk yet when it ran, or a crash stopped the removal)",
            path.display()
        ));
    }
}

/// The torn tail a writer's open cut, as reports print it.
#[derive(Debug, Serialize)]
pub struct TornTailLine {
    /// The segment cut.
    pub file: String,
    /// Where the cut starts, in bytes.
    pub offset: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// Complete frames in the cut bytes, never synced.
    pub orphan_frames: u64,
    /// What was found at `offset`.
    pub reason: String,
}

impl TornTailLine {
    /// The torn tail `report` cut, if any.
    pub fn of(report: &annal::RecoveryReport) -> Option<Self> {
        report.torn_tail.as_ref().map(|t| Self {
            file: t.file.display().to_string(),
            offset: t.offset,
            bytes: t.bytes,
            orphan_frames: t.orphan_frames,
            reason: t.reason.clone(),
        })
    }
}

/// Paths as reports print them.
pub fn paths<'a>(paths: impl IntoIterator<Item = &'a std::path::PathBuf>) -> Vec<String> {
    paths.into_iter().map(|p| p.display().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_keys_are_sorted_whatever_the_field_order() {
        let meta = Meta {
            actor: Some("ada".into()),
            correlation_id: Some("k".into()),
            causation_id: Some("c".into()),
            ..Meta::default()
        };
        let data = serde_json::json!({"z": 1, "a": 2});
        let line = EventLine {
            seq: 7,
            ts: rfc3339(0),
            stream: "s",
            version: 1,
            event_type: "t",
            data: &data,
            meta: &meta,
        };
        let text = serde_json::to_string(&to_json(&line).expect("json")).expect("text");
        assert_eq!(
            text,
            r#"{"data":{"a":2,"z":1},"meta":{"actor":"ada","causation_id":"c","correlation_id":"k"},"seq":7,"stream":"s","ts":"1970-01-01T00:00:00.000000000Z","type":"t","version":1}"#
        );
    }
}
