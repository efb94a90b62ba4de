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

use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::tree::Frontier;
use annal::{ChainValue, RawEvent, chain_next, to_hex};
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::out::EventLine;
use crate::progress::Bar;
use crate::write_cmds::require_journal;
use crate::{integrity, out};

const CSV_HEADER: [&str; 12] = [
    "seq", "ts", "ts_ns", "stream", "version", "type", "data", "meta", "payload", "prev", "chain",
    "leaf",
];

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// A record as the JSON Lines export writes it: its envelope, as `read` prints it, and what
/// checks it.
#[derive(Debug, Serialize)]
struct RecordLine<'a> {
    /// The envelope.
    #[serde(flatten)]
    event: EventLine<'a>,
    /// The timestamp, Unix nanoseconds.
    ts_ns: u64,
    /// The raw payload, hex.
    payload: String,
    /// The chain value before the record, hex.
    prev: String,
    /// The chain value after it, hex.
    chain: String,
    /// Its leaf hash in the Merkle tree, hex.
    leaf: String,
}

/// The last line of a JSON Lines export: the Merkle tree.
#[derive(Debug, Serialize)]
struct TreeLine<'a> {
    /// The tree before the first record.
    tree_before: TreeBefore<'a>,
    /// The checkpoint of the tree after the last record, as text.
    checkpoint: String,
}

/// The tree before an export's first record.
#[derive(Debug, Serialize)]
struct TreeBefore<'a> {
    /// Its size in records.
    size: u64,
    /// Its frontier hashes, hex.
    frontier: &'a [String],
}

/// Writes the export; returns the chain head (also printed on stderr).
pub fn export(
    dir: &Path,
    from: u64,
    until: Option<u64>,
    csv: bool,
    out_path: Option<&Path>,
    bar: &Bar,
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
    // The bar's range; a store whose end cannot be summarized gets a spinner (the export
    // itself decides what fails).
    match reader.summary() {
        Ok(summary) => {
            let first = if from == 0 { summary.log.earliest_seq() } else { from };
            bar.phase("export", first, until.unwrap_or(u64::MAX).min(summary.log.last_seq));
        }
        Err(_) => bar.step("exporting"),
    }
    let mut count = 0u64;
    let mut chain = None;
    // The Merkle tree up to the record before the first exported one, continued over the
    // export; `None` when the store no longer holds the events it needs (compacted without
    // archive/).
    let mut tree: Option<(u64, Vec<String>, Frontier)> = None;
    let mut tree_missing = None;
    for chained in records.by_ref() {
        let annal::Chained { record, prev, chain: after } = chained?;
        if record.seq > last {
            break;
        }
        if count == 0 {
            match reader.frontier(record.seq - 1) {
                Ok(f) => {
                    let before = f.hashes().iter().map(|h| hex(h)).collect();
                    tree = Some((record.seq - 1, before, f));
                }
                Err(e) if e.is_before_start() => {
                    tree_missing = Some(e.to_string());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let leaf = annal::leaf_hash(record.seq, record.ts, &record.payload);
        if let Some((_, _, f)) = &mut tree {
            f.push(leaf);
        }
        chain = Some(after);
        let event = RawEvent::parse(record.seq, record.ts, &record.payload)
            .and_then(|raw| raw.to_event::<Value>())
            .map_err(annal::Error::from)?;
        match &mut output {
            Output::Csv(w) => w
                .write_record([
                    record.seq.to_string(),
                    out::rfc3339(record.ts),
                    record.ts.to_string(),
                    event.stream.clone(),
                    event.version.to_string(),
                    event.event_type.clone(),
                    event.data.to_string(),
                    out::meta_json(&event.meta).to_string(),
                    hex(&record.payload),
                    to_hex(&prev),
                    to_hex(&after),
                    hex(&leaf),
                ])
                .with_context(write_err)?,
            Output::Json(sink) => {
                let line = RecordLine {
                    event: EventLine::of(&event),
                    ts_ns: record.ts,
                    payload: hex(&record.payload),
                    prev: to_hex(&prev),
                    chain: to_hex(&after),
                    leaf: hex(&leaf),
                };
                serde_json::to_writer(&mut *sink, &out::to_json(&line)?).with_context(write_err)?;
                sink.write_all(b"\n").with_context(write_err)?;
            }
        }
        count += 1;
        bar.at(record.seq);
        if record.seq >= last {
            break;
        }
    }
    // The JSON Lines export ends with the tree: its frontier before the first record and the
    // checkpoint of its end, which `audit-verify` recomputes from the records.
    if let (Output::Json(sink), Some((before, frontier_before, f))) = (&mut output, &tree) {
        let checkpoint = Checkpoint {
            origin: "annal".into(),
            size: f.size(),
            root: f.root(),
            extensions: Vec::new(),
        };
        let trailer = TreeLine {
            tree_before: TreeBefore { size: *before, frontier: frontier_before },
            checkpoint: checkpoint.to_text(),
        };
        serde_json::to_writer(&mut *sink, &out::to_json(&trailer)?).with_context(write_err)?;
        sink.write_all(b"\n").with_context(write_err)?;
    }
    match &mut output {
        Output::Csv(w) => w.flush().with_context(write_err)?,
        Output::Json(sink) => sink.flush().with_context(write_err)?,
    }
    drop(output);
    if let (Some(file), Some(p)) = (staged, out_path) {
        bar.step(format!("syncing {}", p.display()));
        file.as_file().sync_all().with_context(|| format!("sync {}", file.path().display()))?;
        file.persist(p).with_context(|| format!("rename the export to {}", p.display()))?;
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("sync directory {}", parent.display()))?;
        }
    }
    bar.finish();
    if let Some(why) = tree_missing {
        eprintln!("warning: the export carries no Merkle tree (its leaf hashes only): {why}");
    }
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
    /// The leaf hash, in exports that carry it.
    leaf: Option<String>,
}

/// A line of an export: a record, or the trailer with the Merkle tree.
enum Line {
    Record(Box<Exported>),
    Tree(Value),
}

fn from_json(line: &str) -> Result<Line, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("checkpoint").is_some() {
        return Ok(Line::Tree(v));
    }
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
        leaf: v.get("leaf").map(|_| s("leaf")).transpose()?,
    })
    .map(|e| Line::Record(Box::new(e)))
}

fn from_csv(r: &csv::StringRecord, columns: usize) -> Result<Line, String> {
    if r.len() != columns {
        return Err(format!("{} fields where {columns} were expected", r.len()));
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
        leaf: (columns == CSV_HEADER.len()).then(|| r[11].to_owned()),
    })
    .map(|e| Line::Record(Box::new(e)))
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
    if let Some(leaf) = &e.leaf
        && hex(&annal::leaf_hash(e.seq, e.ts_ns, &e.payload)) != *leaf
    {
        return Err("its leaf hash does not match its contents (modified)".into());
    }
    let raw =
        RawEvent::parse(e.seq, e.ts_ns, &e.payload).map_err(|err| format!("payload: {err}"))?;
    let event = raw.to_event::<Value>().map_err(|err| format!("payload: {err}"))?;
    if e.ts != out::rfc3339(e.ts_ns) {
        return Err("\"ts\" differs from \"ts_ns\" (modified)".into());
    }
    let same = event.stream == e.stream
        && event.version == e.version
        && event.event_type == e.event_type
        && event.data == e.data
        && out::meta_json(&event.meta) == e.meta;
    if !same {
        return Err("its fields differ from its payload (modified)".into());
    }
    Ok(())
}

pub fn verify_file(
    file: &Path,
    head: Option<&str>,
    checkpoint: Option<&Path>,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let trusted = checkpoint.map(|c| crate::tlog_cmds::trusted_checkpoint(c, key)).transpose()?;
    let bar = Bar::start(format!("reading {}", file.display()), crate::progress::Output::Answer);
    let report = check_file(file, head, trusted.as_ref(), &bar)?;
    bar.finish();
    out::print(&report)
}

/// The export's Merkle tree, from its trailer line: the frontier before its first record, and
/// the checkpoint of its end.
fn tree_of(v: &Value, first: u64) -> Result<(Frontier, Checkpoint), String> {
    let size = v["tree_before"]["size"].as_u64().ok_or("\"tree_before.size\" is missing")?;
    if size + 1 != first {
        return Err(format!(
            "the tree before the export has {size} records, but the export starts at {first}"
        ));
    }
    let hashes = v["tree_before"]["frontier"]
        .as_array()
        .ok_or("\"tree_before.frontier\" is missing")?
        .iter()
        .map(|h| h.as_str().and_then(unhex).and_then(|b| b.try_into().ok()))
        .collect::<Option<Vec<annal::tlog::Hash>>>()
        .ok_or("a frontier hash is not 32 bytes of hex")?;
    let frontier = Frontier::from_parts(annal::TREE_HASH, size, hashes)
        .ok_or("the frontier does not match its size")?;
    let checkpoint =
        Checkpoint::parse(v["checkpoint"].as_str().ok_or("\"checkpoint\" is not a string")?)
            .map_err(|e| e.to_string())?;
    Ok((frontier, checkpoint))
}

/// What `audit-verify` prints.
#[derive(Debug, Serialize)]
pub struct AuditSummary {
    /// Always true: a failed check is an error instead.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// The first record's sequence number.
    pub first_seq: u64,
    /// The last record's sequence number.
    pub last_seq: u64,
    /// The chain value after the last record, hex.
    pub head: String,
    /// Whether that head was checked against a given one.
    pub head_checked: bool,
    /// The Merkle tree's root after the last record, hex, when the export lets it be computed.
    pub tree_root: Option<String>,
    /// Whether the records were checked against a trusted checkpoint.
    pub checkpoint_checked: bool,
}

/// Checks an export; returns the summary, or an integrity error naming the first bad record.
/// With `trusted`, the records must also lead to that checkpoint's root.
pub fn check_file(
    file: &Path,
    head: Option<&str>,
    trusted: Option<&Checkpoint>,
    bar: &Bar,
) -> anyhow::Result<AuditSummary> {
    let handle = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    bar.bytes("check", size);
    let mut reader = std::io::BufReader::new(bar.wrap_read(handle));
    let is_csv = {
        let peek = reader.fill_buf().with_context(|| format!("read {}", file.display()))?;
        peek.first().is_some_and(|&b| b != b'{')
    };
    let name = file.display().to_string();
    let mut lines: Box<dyn Iterator<Item = (usize, Result<Line, String>)>> = if is_csv {
        let mut csv_reader = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        // The current header, or the one of exports before leaf hashes (without `leaf`).
        let columns = csv_reader.headers().ok().and_then(|h| {
            let n = h.len();
            (n >= CSV_HEADER.len() - 1
                && h.iter().eq(CSV_HEADER[..n.min(CSV_HEADER.len())].iter().copied()))
            .then_some(n)
        });
        let Some(columns) = columns else {
            return Err(integrity(format!("{name}: line 1: not an annal export (bad CSV header)")));
        };
        Box::new(csv_reader.into_records().enumerate().map(move |(i, r)| {
            (i + 2, r.map_err(|e| format!("not CSV: {e}")).and_then(|r| from_csv(&r, columns)))
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
    let mut leaves: Vec<annal::tlog::Hash> = Vec::new();
    let mut trailer: Option<(usize, Value)> = None;
    for (line, parsed) in lines.by_ref() {
        let fail = |seq: Option<u64>, why: String| {
            let at = seq.map_or(String::new(), |s| format!(" (seq {s})"));
            integrity(format!("{name}: line {line}{at}: {why}"))
        };
        if let Some((at, _)) = &trailer {
            return Err(fail(None, format!("follows the tree line {at}, which must be the last")));
        }
        let e = match parsed.map_err(|why| fail(None, why))? {
            Line::Record(e) => e,
            Line::Tree(v) => {
                trailer = Some((line, v));
                continue;
            }
        };
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
        leaves.push(annal::leaf_hash(e.seq, e.ts_ns, &e.payload));
        previous = Some((e.seq, e.chain));
    }
    let Some((last, chain)) = previous else {
        return Err(integrity(format!("{name}: no records")));
    };
    let first = first.expect("a record was read");
    if let Some(head) = head
        && !head.eq_ignore_ascii_case(&chain)
    {
        return Err(integrity(format!(
            "{name}: the last record (seq {last}) does not end at the given head: records after it were cut off, or the head belongs to another export"
        )));
    }
    // The tree: from the export's own frontier, or from nothing for an export from record 1.
    let mut frontier = match &trailer {
        Some((line, v)) => {
            let (f, c) = tree_of(v, first)
                .map_err(|why| integrity(format!("{name}: line {line}: {why}")))?;
            let mut f = f;
            leaves.iter().for_each(|l| f.push(*l));
            if c.size != last || c.root != f.root() {
                return Err(integrity(format!(
                    "{name}: line {line}: the records do not lead to the export's checkpoint (of {} records): a record was changed, or the tree line belongs to another export",
                    c.size
                )));
            }
            Some(f)
        }
        None if first == 1 => {
            let mut f = Frontier::new(annal::TREE_HASH);
            leaves.iter().for_each(|l| f.push(*l));
            Some(f)
        }
        None => None,
    };
    if let Some(c) = trusted {
        let Some(f) = frontier.as_mut() else {
            return Err(integrity(format!(
                "{name}: the export starts at sequence {first} and carries no tree before it, so it cannot be checked against a checkpoint"
            )));
        };
        if c.size != last {
            return Err(integrity(format!(
                "{name}: the checkpoint is of {} records, the export ends at {last}: export up to the checkpoint's size",
                c.size
            )));
        }
        if c.root != f.root() {
            return Err(integrity(format!(
                "{name}: the records do not lead to the checkpoint's root: the log was rewritten, or the export changed"
            )));
        }
    }
    Ok(AuditSummary {
        ok: true,
        records: count,
        first_seq: first,
        last_seq: last,
        head: chain,
        head_checked: head.is_some(),
        tree_root: frontier.as_ref().map(|f| hex(&f.root())),
        checkpoint_checked: trusted.is_some(),
    })
}
