//! Commands that never take the writer lock: read, replay, snapshots, info.

use std::collections::BTreeMap;
use std::path::Path;

use annal::{Counts, CountsState, Entities, JournalReader, Meta, Query, Until};
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::out::{EventLine, SegmentLine};
use crate::progress::{Bar, Output};
use crate::write_cmds::require_journal;
use crate::{ProjectionName, out};

fn reader(dir: &Path) -> anyhow::Result<JournalReader> {
    require_journal(dir)?;
    JournalReader::open(dir).with_context(|| format!("open {}", dir.display()))
}

pub fn read(
    dir: &Path,
    from: u64,
    until: Option<u64>,
    stream: Option<String>,
    limit: Option<usize>,
    follow: bool,
) -> anyhow::Result<()> {
    if follow {
        // No bar: a follow has no end.
        let reader = reader(dir)?;
        for event in reader.follow::<Value>(Query { from, until, stream, limit })? {
            out::print(&EventLine::of(&event?))?;
        }
        return Ok(());
    }
    let bar = Bar::start(format!("opening {}", dir.display()), Output::Stream);
    let reader = reader(dir)?;
    // The bar's range; a store whose end cannot be summarized (damage past `--until`, say)
    // gets a spinner: the read itself decides what fails.
    match reader.summary() {
        Ok(summary) => {
            let first = if from == 0 { summary.log.earliest_seq() } else { from };
            let mut last = until.unwrap_or(summary.log.last_seq).min(summary.log.last_seq);
            if let (Some(n), None) = (limit, &stream) {
                last = last.min(first.saturating_add(n as u64).saturating_sub(1));
            }
            bar.phase("read", first, last);
        }
        Err(_) => bar.step("reading"),
    }
    let events = reader.read::<Value>(Query { from, until, stream, limit })?;
    for event in events {
        let event = event?;
        bar.at(event.seq);
        out::print(&EventLine::of(&event))?;
    }
    bar.finish();
    Ok(())
}

/// The timestamp of event `seq`: `None` for 0, past the end, or below what the store holds
/// (a state a snapshot serves whose event was compacted away); other failures are errors.
fn ts_of(reader: &JournalReader, seq: u64) -> anyhow::Result<Option<u64>> {
    if seq == 0 {
        return Ok(None);
    }
    let mut events = reader.read::<serde::de::IgnoredAny>(Query::range(seq..=seq))?;
    match events.next() {
        None => Ok(None),
        Some(Ok(e)) => Ok(Some(e.ts)),
        Some(Err(e)) if e.is_before_start() => Ok(None),
        Some(Err(e)) => Err(e.into()),
    }
}

/// What `replay` prints.
#[derive(Debug, Serialize)]
struct ReplayReport {
    /// The sequence number the state stands at.
    seq: u64,
    /// That event's timestamp, if the store still holds it.
    ts: Option<String>,
    /// The projection replayed.
    projection: &'static str,
    /// Its state.
    state: State,
}

/// A replayed state, as `replay` prints it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum State {
    /// `entities`: each stream's entity, by stream.
    Entities(BTreeMap<String, EntityLine>),
    /// `counts`: every total.
    Counts(CountsState),
    /// `counts --stream`: one stream's count.
    Stream(StreamCount),
}

/// One stream's entity, as `replay` prints it.
#[derive(Debug, Serialize)]
struct EntityLine {
    /// The stream's version.
    version: u64,
    /// Its last event's type.
    #[serde(rename = "type")]
    event_type: String,
    /// Its last event's timestamp, RFC 3339.
    updated: String,
    /// The merge-patch fold of its events' data.
    data: Value,
}

/// One stream's event count.
#[derive(Debug, Serialize)]
struct StreamCount {
    /// The stream.
    stream: String,
    /// Its events.
    events: u64,
}

pub fn replay(
    dir: &Path,
    until: Option<u64>,
    at: Option<&str>,
    projection: ProjectionName,
    stream: Option<&str>,
) -> anyhow::Result<()> {
    let bar = Bar::start(format!("opening {}", dir.display()), Output::Answer);
    let reader = reader(dir)?.with_progress(bar.observer());
    let target = match (until, at) {
        (Some(seq), _) => Until::Seq(seq),
        (None, Some(text)) => Until::Time(out::parse_time(text)?),
        (None, None) => Until::End,
    };
    let (name, seq, state) = match projection {
        ProjectionName::Entities => {
            let (state, seq) = reader.replay::<Entities>(target)?;
            let entities = state
                .into_iter()
                .filter(|(s, _)| stream.is_none_or(|want| want == s))
                .map(|(s, e)| {
                    let entity = EntityLine {
                        version: e.version,
                        event_type: e.event_type,
                        updated: out::rfc3339(e.updated),
                        data: e.data,
                    };
                    (s, entity)
                })
                .collect();
            ("entities", seq, State::Entities(entities))
        }
        ProjectionName::Counts => {
            let (state, seq) = reader.replay::<Counts>(target)?;
            let state = match stream {
                Some(s) => State::Stream(StreamCount {
                    stream: s.to_owned(),
                    events: state.by_stream.get(s).copied().unwrap_or(0),
                }),
                None => State::Counts(state),
            };
            ("counts", seq, state)
        }
    };
    bar.finish();
    out::print(&ReplayReport {
        seq,
        ts: ts_of(&reader, seq)?.map(out::rfc3339),
        projection: name,
        state,
    })
}

/// What `snapshots` prints.
#[derive(Debug, Serialize)]
struct SnapshotsReport {
    /// The first sequence number the log holds.
    log_start: u64,
    /// The MANIFEST's generation (0: none yet).
    generation: u64,
    /// The snapshots the MANIFEST names.
    snapshots: Vec<SnapshotLine>,
}

/// A snapshot as `snapshots` prints it.
#[derive(Debug, Serialize)]
struct SnapshotLine {
    /// The projection.
    projection: String,
    /// Its schema version in the snapshot.
    schema_version: u32,
    /// The sequence number it stands at.
    seq: u64,
    /// The snapshot file.
    file: String,
    /// The file's size, or null when it is missing.
    bytes: Option<u64>,
}

pub fn snapshots(dir: &Path) -> anyhow::Result<()> {
    let reader = reader(dir)?;
    // A compaction in another process may replace the MANIFEST and remove the files it no
    // longer names between the read and the look at the files: a file missing under a MANIFEST
    // that changed meanwhile is looked at again, with the new one.
    let mut attempts = 0;
    let (manifest, list, missing) = loop {
        let manifest = reader.manifest()?;
        let list: Vec<SnapshotLine> = manifest
            .as_ref()
            .map(|m| {
                m.snapshots
                    .iter()
                    .map(|s| {
                        let path = reader.snapshot_path(s);
                        SnapshotLine {
                            projection: s.projection.clone(),
                            schema_version: s.schema_version,
                            seq: s.seq,
                            file: path.display().to_string(),
                            bytes: std::fs::metadata(&path).map(|m| m.len()).ok(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<String> =
            list.iter().filter(|s| s.bytes.is_none()).map(|s| s.file.clone()).collect();
        attempts += 1;
        if missing.is_empty() || attempts >= 5 || reader.manifest()? == manifest {
            break (manifest, list, missing);
        }
    };
    out::print(&SnapshotsReport {
        log_start: manifest.as_ref().map_or(1, |m| m.log_start.max(1)),
        generation: manifest.as_ref().map_or(0, |m| m.generation),
        snapshots: list,
    })?;
    match missing.first() {
        Some(first) => Err(crate::integrity(format!(
            "{} snapshot file(s) the MANIFEST names are missing, the first: {first}; `annal recover` rebuilds the MANIFEST",
            missing.len()
        ))),
        None => Ok(()),
    }
}

/// What `info` prints.
#[derive(Debug, Serialize)]
struct InfoReport {
    /// The journal's directory.
    dir: String,
    /// The first sequence number in `wal/`.
    first_seq: u64,
    /// The last sequence number.
    last_seq: u64,
    /// Events in `wal/`.
    events: u64,
    /// The first event's timestamp, RFC 3339.
    first_ts: Option<String>,
    /// The last event's timestamp, RFC 3339.
    last_ts: Option<String>,
    /// The hash chain's head, hex.
    chain_head: String,
    /// Bytes of the segment files in `wal/`.
    bytes: u64,
    /// The segments in `wal/`.
    segments: Vec<SegmentLine>,
    /// The earliest sequence number a reader can start at.
    earliest_seq: u64,
    /// The segments in `archive/`.
    archived: Vec<SegmentLine>,
    /// Snapshots in force.
    snapshots: usize,
    /// The log start the MANIFEST names.
    log_start: u64,
    /// The writer lock, when its file names a pid.
    lock: Option<LockLine>,
    /// The Merkle tree over every event: its size and root (hex), `null` when it cannot be
    /// computed (compacted without an archive and no checkpoints written).
    tree: Option<TreeHead>,
}

/// The tree as `info` prints it.
#[derive(Debug, Serialize)]
struct TreeHead {
    /// Events in the tree.
    size: u64,
    /// The root hash, hex.
    root: String,
}

/// The writer lock as `info` prints it.
#[derive(Debug, Serialize)]
struct LockLine {
    /// The pid in the lock file.
    pid: Option<u32>,
    /// Whether a live holder has the lock now.
    held: bool,
}

pub fn info(dir: &Path) -> anyhow::Result<()> {
    let reader = reader(dir)?;
    let summary = reader.summary()?;
    let log = &summary.log;
    let first_ts =
        if log.last_seq >= log.first_seq { ts_of(&reader, log.first_seq.max(1))? } else { None };
    let last_ts = ts_of(&reader, log.last_seq)?;
    let bytes: u64 = log.segments.iter().map(|s| s.file_bytes).sum();
    // The tree reads every event after the newest written frontier: damage there fails info
    // (exit 3, naming it) rather than giving a description without the tree.
    let tree =
        reader.tree_head()?.map(|(size, root)| TreeHead { size, root: annal::to_hex(&root) });
    out::print(&InfoReport {
        dir: dir.display().to_string(),
        first_seq: log.first_seq,
        last_seq: log.last_seq,
        events: log.last_seq + 1 - log.first_seq.min(log.last_seq + 1),
        first_ts: first_ts.map(out::rfc3339),
        last_ts: last_ts.map(out::rfc3339),
        chain_head: annal::to_hex(&log.chain_head),
        bytes,
        segments: log.segments.iter().map(SegmentLine::of).collect(),
        earliest_seq: log.earliest_seq(),
        archived: log.archived.iter().map(SegmentLine::of).collect(),
        snapshots: summary.snapshots.len(),
        log_start: summary.log_start,
        lock: log.lock.filter(|l| l.pid.is_some()).map(|l| LockLine { pid: l.pid, held: l.held }),
        tree,
    })
}

/// An event as `salvage` prints it: a line for `append --jsonl`.
#[derive(Debug, Serialize)]
struct SalvagedLine<'a> {
    /// The event's stream.
    stream: &'a str,
    /// Its type.
    #[serde(rename = "type")]
    event_type: &'a str,
    /// Its data.
    data: &'a Value,
    /// Its metadata.
    meta: &'a Meta,
}

pub fn salvage(file: &Path) -> anyhow::Result<()> {
    let storage = annal::storage::OsStorage::new();
    let found =
        annal::salvage(&storage, file).with_context(|| format!("salvage {}", file.display()))?;
    if found.frames == 0 {
        anyhow::bail!(
            "no intact frame in {}: it is not an annal segment or a quarantined part of one; nothing to salvage",
            file.display()
        );
    }
    let mut prev: Option<u64> = None;
    let mut stdout = std::io::stdout().lock();
    for e in &found.events {
        if let Some(p) = prev
            && e.seq != p + 1
        {
            eprintln!("gap: nothing intact between sequences {p} and {}", e.seq);
        }
        prev = Some(e.seq);
        let line = SalvagedLine {
            stream: &e.stream,
            event_type: &e.event_type,
            data: &e.data,
            meta: &e.meta,
        };
        serde_json::to_writer(&mut stdout, &out::to_json(&line)?)?;
        std::io::Write::write_all(&mut stdout, b"\n")?;
    }
    std::io::Write::flush(&mut stdout)?;
    let range = match (found.events.first(), found.events.last()) {
        (Some(a), Some(b)) => format!(", sequences {} to {}", a.seq, b.seq),
        _ => String::new(),
    };
    eprintln!(
        "salvaged {} events from {} intact frames in {}{range}",
        found.events.len(),
        found.frames,
        file.display()
    );
    if let Some((seq, why)) = found.undecodable.first() {
        return Err(crate::integrity(format!(
            "{} intact record(s) are not annal events and were not printed; the first, sequence {seq}: {why}",
            found.undecodable.len()
        )));
    }
    Ok(())
}
