//! Output: JSON on stdout, RFC 3339 timestamps, and progress bars on stderr (only when stderr
//! is a terminal).

use std::io::{IsTerminal, Write};

use annal::{Event, JournalReader, Meta};
use anyhow::Context;
use serde_json::{Value, json};

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
    let t: jiff::Timestamp = text.parse().with_context(|| {
        format!("--at {text:?} is not an RFC 3339 time (like 2026-11-23T10:00:00Z)")
    })?;
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
pub fn event_json(e: &Event<Value>) -> Value {
    json!({
        "seq": e.seq,
        "ts": rfc3339(e.ts),
        "stream": e.stream,
        "version": e.version,
        "type": e.event_type,
        "data": e.data,
        "meta": meta_json(&e.meta),
    })
}

/// Writes one JSON value and a newline to stdout.
pub fn print(value: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// A spinner on stderr for work whose length is unknown (a replay), when stderr is a terminal.
pub fn spinner(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// The last sequence number readable in the journal (a scan of the active segment).
pub fn last_seq(reader: &JournalReader) -> anyhow::Result<u64> {
    let info = annal_wal_info(reader)?;
    Ok(info.last_seq)
}

/// What `info` and progress bars need to know about the log on disk.
pub struct LogInfo {
    pub segments: Vec<Value>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub chain_head: Option<[u8; 32]>,
}

/// Reads segment headers, footers, and the active segment, without the lock.
pub fn annal_wal_info(reader: &JournalReader) -> anyhow::Result<LogInfo> {
    use annal_wal::format::{FOOTER_BYTES, Footer, parse_segment_file_name, segment_file_name};
    let wal = reader.dir().join(annal_wal::WAL_DIR);
    let mut firsts: Vec<u64> = std::fs::read_dir(&wal)
        .with_context(|| format!("list {}", wal.display()))?
        .filter_map(|e| {
            e.ok().and_then(|e| parse_segment_file_name(&e.file_name().to_string_lossy()))
        })
        .collect();
    firsts.sort_unstable();
    let mut segments = Vec::new();
    let mut last_seq = firsts.first().map_or(0, |f| f - 1);
    let mut chain_head = None;
    for (i, &first) in firsts.iter().enumerate() {
        let path = wal.join(segment_file_name(first));
        let file =
            std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let len = file.metadata().with_context(|| format!("stat {}", path.display()))?.len();
        let mut tail = [0u8; FOOTER_BYTES];
        let footer = len
            .checked_sub(FOOTER_BYTES as u64)
            .filter(|&at| std::os::unix::fs::FileExt::read_exact_at(&file, &mut tail, at).is_ok())
            .and_then(|at| Footer::decode(&tail).ok().filter(|f| f.data_end <= at));
        let is_last = i + 1 == firsts.len();
        let (last, data_bytes, sealed) = match footer {
            Some(f) => {
                chain_head = Some(f.chain_after);
                (f.last_seq, f.data_end, true)
            }
            None => {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                let opts = annal_wal::scan::ScanOptions { chain: true, prev_ts: 0 };
                match annal_wal::scan::scan_segment(&bytes, first, opts) {
                    Ok(scan) => {
                        chain_head = Some(scan.chain_after);
                        (scan.last_seq, scan.valid_end, false)
                    }
                    Err(_) if is_last && bytes.iter().take(64).all(|&b| b == 0) => {
                        (first - 1, 0, false)
                    }
                    Err(e) => {
                        return Err(crate::integrity(format!(
                            "{}: segment header: {}",
                            path.display(),
                            e.0
                        )));
                    }
                }
            }
        };
        last_seq = last_seq.max(last);
        segments.push(json!({
            "file": path.display().to_string(),
            "first_seq": first,
            "last_seq": last,
            "data_bytes": data_bytes,
            "file_bytes": len,
            "sealed": sealed,
        }));
    }
    Ok(LogInfo { segments, first_seq: firsts.first().copied().unwrap_or(1), last_seq, chain_head })
}
