//! The audit export and its verification.
//!
//! Every exported record carries its envelope (as `read` prints it), its timestamp in
//! nanoseconds, its raw payload in hex, and the hash-chain values before and after it:
//! `chain = blake3(prev || seq LE || ts_ns LE || payload)`, the store's own chain. So a file can
//! be checked on its own: each record's chain recomputes from its fields, its envelope matches
//! its payload, and each record's `prev` is the previous record's `chain`. That detects any
//! modified, inserted, deleted or reordered record; the head printed at export time also
//! detects a cut-off end.

use std::io::{BufRead, Write};
use std::path::Path;

use annal::{ChainValue, RawEvent, chain_next, to_hex};
use anyhow::Context;
use serde_json::{Value, json};

use crate::write_cmds::require_journal;
use crate::{integrity, out};

const CSV_HEADER: [&str; 11] =
    ["seq", "ts", "ts_ns", "stream", "version", "type", "data", "meta", "payload", "prev", "chain"];

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// Writes the export; returns the chain head (also printed on stderr).
pub fn export(
    dir: &Path,
    from: u64,
    until: Option<u64>,
    csv: bool,
    out_path: Option<&Path>,
) -> anyhow::Result<String> {
    require_journal(dir)?;
    let reader = annal::JournalReader::open(dir)?;
    let mut records = reader.chained(from)?;
    // A file export is written beside its target under a temporary name and renamed over it
    // only once complete and synced: a failed export leaves no partial file, and an earlier
    // export at that path stays whole. The temporary file is private (0600), like the store.
    // A path that exists and is not a regular file (`/dev/null`, a pipe) is written in place.
    let mut staged = None;
    let sink: Box<dyn Write> = match out_path {
        Some(p) if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) => Box::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("open {}", p.display()))?,
        ),
        Some(p) => {
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let file = tempfile::Builder::new()
                .prefix(".annal-export-")
                .tempfile_in(parent)
                .with_context(|| format!("create a temporary file in {}", parent.display()))?;
            let writer =
                file.reopen().with_context(|| format!("open {}", file.path().display()))?;
            staged = Some(file);
            Box::new(writer)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    // Every write names the file (a full disk, say), not just the OS error.
    let target = match (out_path, &staged) {
        (Some(p), Some(tmp)) => {
            format!("{} (written as {} until complete)", p.display(), tmp.path().display())
        }
        (Some(p), None) => p.display().to_string(),
        (None, _) => "standard output".to_owned(),
    };
    let write_err = || format!("write the export to {target}");
    let mut output = if csv {
        let mut w = csv::Writer::from_writer(sink);
        w.write_record(CSV_HEADER).with_context(write_err)?;
        Output::Csv(Box::new(w))
    } else {
        Output::Json(std::io::BufWriter::new(sink))
    };
    let last = until.unwrap_or(u64::MAX);
    // The bar's total: the range asked for, or (open-ended) up to the log's end. Nothing past
    // `--until` is read, so damage after it does not fail the export, as for `read`.
    let total = match until {
        Some(until) => until.saturating_sub(from.max(1)) + 1,
        None => out::last_seq(&reader)?.saturating_sub(from.max(1)) + 1,
    };
    let bar = out::progress(total, "export");
    let mut count = 0u64;
    let mut chain = None;
    for chained in records.by_ref() {
        let annal::Chained { record, prev, chain: after } = chained?;
        if record.seq > last {
            break;
        }
        chain = Some(after);
        let event = RawEvent::parse(record.seq, record.ts, &record.payload)
            .and_then(|raw| raw.to_event::<Value>())
            .map_err(annal::Error::from)?;
        let fields = out::event_json(&event);
        match &mut output {
            Output::Csv(w) => w
                .write_record([
                    record.seq.to_string(),
                    out::rfc3339(record.ts),
                    record.ts.to_string(),
                    event.stream.clone(),
                    event.version.to_string(),
                    event.event_type.clone(),
                    fields["data"].to_string(),
                    fields["meta"].to_string(),
                    hex(&record.payload),
                    to_hex(&prev),
                    to_hex(&after),
                ])
                .with_context(write_err)?,
            Output::Json(sink) => {
                let mut line = fields;
                line["ts_ns"] = json!(record.ts);
                line["payload"] = json!(hex(&record.payload));
                line["prev"] = json!(to_hex(&prev));
                line["chain"] = json!(to_hex(&after));
                serde_json::to_writer(&mut *sink, &line).with_context(write_err)?;
                sink.write_all(b"\n").with_context(write_err)?;
            }
        }
        count += 1;
        bar.inc(1);
        if record.seq >= last {
            break;
        }
    }
    match &mut output {
        Output::Csv(w) => w.flush().with_context(write_err)?,
        Output::Json(sink) => sink.flush().with_context(write_err)?,
    }
    drop(output);
    if let (Some(file), Some(p)) = (staged, out_path) {
        file.as_file().sync_all().with_context(|| format!("sync {}", file.path().display()))?;
        file.persist(p).with_context(|| format!("rename the export to {}", p.display()))?;
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("sync directory {}", parent.display()))?;
        }
    }
    bar.finish_and_clear();
    // With no record exported, the chain value where the export would have started.
    let chain = chain.unwrap_or_else(|| records.head());
    eprintln!("exported {count} records; chain head: {}", to_hex(&chain));
    Ok(to_hex(&chain))
}

enum Output {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Json(std::io::BufWriter<Box<dyn Write>>),
}

/// One record read back from an export.
struct Exported {
    seq: u64,
    ts: String,
    ts_ns: u64,
    stream: String,
    version: u64,
    event_type: String,
    data: Value,
    meta: Value,
    payload: Vec<u8>,
    prev: String,
    chain: String,
}

fn from_json(line: &str) -> Result<Exported, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let u = |k: &str| v[k].as_u64().ok_or_else(|| format!("\"{k}\" is missing or not a number"));
    let s = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("\"{k}\" is missing or not a string"))
    };
    Ok(Exported {
        seq: u("seq")?,
        ts: s("ts")?,
        ts_ns: u("ts_ns")?,
        stream: s("stream")?,
        version: u("version")?,
        event_type: s("type")?,
        data: v["data"].clone(),
        meta: v["meta"].clone(),
        payload: unhex(&s("payload")?).ok_or("\"payload\" is not hex")?,
        prev: s("prev")?,
        chain: s("chain")?,
    })
}

fn from_csv(r: &csv::StringRecord) -> Result<Exported, String> {
    if r.len() != CSV_HEADER.len() {
        return Err(format!("{} fields where {} were expected", r.len(), CSV_HEADER.len()));
    }
    let num =
        |i: usize| r[i].parse::<u64>().map_err(|_| format!("{} is not a number", CSV_HEADER[i]));
    let json = |i: usize| {
        serde_json::from_str::<Value>(&r[i])
            .map_err(|e| format!("{} is not JSON: {e}", CSV_HEADER[i]))
    };
    Ok(Exported {
        seq: num(0)?,
        ts: r[1].to_owned(),
        ts_ns: num(2)?,
        stream: r[3].to_owned(),
        version: num(4)?,
        event_type: r[5].to_owned(),
        data: json(6)?,
        meta: json(7)?,
        payload: unhex(&r[8]).ok_or("payload is not hex")?,
        prev: r[9].to_owned(),
        chain: r[10].to_owned(),
    })
}

/// Checks one record on its own: the chain recomputes, and the shown fields match the payload.
fn check_record(e: &Exported) -> Result<(), String> {
    let prev: ChainValue = unhex(&e.prev)
        .and_then(|b| b.try_into().ok())
        .ok_or("\"prev\" is not a 32-byte hex chain value")?;
    let chain = chain_next(&prev, e.seq, e.ts_ns, &e.payload);
    if to_hex(&chain) != e.chain {
        return Err("its chain value does not match its contents (modified)".into());
    }
    let raw =
        RawEvent::parse(e.seq, e.ts_ns, &e.payload).map_err(|err| format!("payload: {err}"))?;
    let event = raw.to_event::<Value>().map_err(|err| format!("payload: {err}"))?;
    let shown = out::event_json(&event);
    if e.ts != out::rfc3339(e.ts_ns) {
        return Err("\"ts\" differs from \"ts_ns\" (modified)".into());
    }
    let same = shown["stream"] == json!(e.stream)
        && shown["version"] == json!(e.version)
        && shown["type"] == json!(e.event_type)
        && shown["data"] == e.data
        && shown["meta"] == e.meta;
    if !same {
        return Err("its fields differ from its payload (modified)".into());
    }
    Ok(())
}

pub fn verify_file(file: &Path, head: Option<&str>) -> anyhow::Result<()> {
    out::print(&check_file(file, head)?)
}

/// Checks an export; returns the summary, or an integrity error naming the first bad record.
pub fn check_file(file: &Path, head: Option<&str>) -> anyhow::Result<Value> {
    let handle = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
    let mut reader = std::io::BufReader::new(handle);
    let is_csv = {
        let peek = reader.fill_buf().with_context(|| format!("read {}", file.display()))?;
        peek.first().is_some_and(|&b| b != b'{')
    };
    let name = file.display().to_string();
    let mut records: Box<dyn Iterator<Item = (usize, Result<Exported, String>)>> = if is_csv {
        let mut csv_reader = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let header_ok = csv_reader.headers().is_ok_and(|h| h.iter().eq(CSV_HEADER.iter().copied()));
        if !header_ok {
            return Err(integrity(format!("{name}: line 1: not an annal export (bad CSV header)")));
        }
        Box::new(csv_reader.into_records().enumerate().map(|(i, r)| {
            (i + 2, r.map_err(|e| format!("not CSV: {e}")).and_then(|r| from_csv(&r)))
        }))
    } else {
        Box::new(reader.lines().enumerate().filter_map(|(i, l)| match l {
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some((i + 1, from_json(&l))),
            Err(e) => Some((i + 1, Err(format!("cannot be read: {e}")))),
        }))
    };
    let mut previous: Option<(u64, String)> = None;
    let mut first = None;
    let mut count = 0u64;
    for (line, record) in records.by_ref() {
        let fail = |seq: Option<u64>, why: String| {
            let at = seq.map_or(String::new(), |s| format!(" (seq {s})"));
            integrity(format!("{name}: line {line}{at}: {why}"))
        };
        let e = record.map_err(|why| fail(None, why))?;
        check_record(&e).map_err(|why| fail(Some(e.seq), why))?;
        if let Some((seq, chain)) = &previous {
            if e.seq != seq + 1 {
                return Err(fail(
                    Some(e.seq),
                    format!("follows sequence {seq}: a record was deleted, inserted or moved"),
                ));
            }
            if &e.prev != chain {
                return Err(fail(Some(e.seq), "does not chain to the record before it: a record was deleted, inserted or moved".into()));
            }
        }
        first.get_or_insert(e.seq);
        count += 1;
        previous = Some((e.seq, e.chain));
    }
    let Some((last, chain)) = previous else {
        return Err(integrity(format!("{name}: no records")));
    };
    if let Some(head) = head
        && !head.eq_ignore_ascii_case(&chain)
    {
        return Err(integrity(format!(
            "{name}: the last record (seq {last}) does not end at the given head: records after it were cut off, or the head belongs to another export"
        )));
    }
    Ok(
        json!({"ok": true, "records": count, "first_seq": first, "last_seq": last, "head": chain, "head_checked": head.is_some()}),
    )
}
