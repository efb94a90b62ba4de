//! The invariant checker: compares a recovered journal with the reference [`Model`].
//!
//! Checked here: G1 (every event that must be durable is present), G2 (the log ends where a
//! whole append ended), G3 (gapless from the log start, in order, no phantom, each payload
//! byte-identical to what the journal returned the first time and equal to the model's event),
//! G5 (live state, replay to the end and time-travel replays equal the model's fold), recovery
//! idempotence (a second open is clean, with the same last sequence number and chain head) and
//! no orphan files after that second open.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use annal::{Journal, RawEvent, Until};
use annal_compactor::{Manifest, SNAPSHOTS_DIR};
use annal_storage::Storage;
use annal_storage::TMP_SUFFIX;

use crate::model::{Ev, Model, ModelEvent, Tally, model_fold};
use crate::rng::Rng;

/// A broken invariant: which one, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, for example `"G1 durability"`.
    pub invariant: &'static str,
    /// What was expected and what was found.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    #[must_use]
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Self { invariant, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What a passed check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// First sequence number the log holds.
    pub first_seq: u64,
    /// Last sequence number after recovery.
    pub last_seq: u64,
    /// The hash chain's head.
    pub chain_head: annal::wal::ChainValue,
    /// Time-travel replays compared with the model.
    pub replays: usize,
}

fn to_index(seq: u64) -> usize {
    usize::try_from(seq).expect("sequence numbers of a harness run fit in a usize")
}

/// Checks an open journal against `model` (G1, G2, G3, G5 and `replays` time-travel replays at
/// seeded random points) and, if everything holds, updates the model to what was recovered.
///
/// # Errors
/// The first invariant found broken.
pub fn check_journal(
    journal: &Journal,
    storage: &dyn Storage,
    dir: &Path,
    model: &mut Model,
    rng: &mut Rng,
    replays: usize,
) -> Result<Recovered, Violation> {
    let last = journal.last_seq();
    let first = journal.log().first_seq();
    // The events the log may hold, in sequence order: the acknowledged ones, then the pending.
    let all: Vec<&ModelEvent> = model.events.iter().chain(&model.pending).collect();
    let len = to_index(last);
    if len < model.durable {
        return Err(Violation::new(
            "G1 durability",
            format!(
                "{} events must be durable but the recovered log ends at sequence {last}",
                model.durable
            ),
        ));
    }
    if len > all.len() {
        return Err(Violation::new(
            "G3 no phantom",
            format!(
                "the log ends at sequence {last} but only {} events were acknowledged and {} attempted",
                model.events.len(),
                model.pending.len()
            ),
        ));
    }
    if !model.cuts.contains(&len) && len != all.len() {
        return Err(Violation::new(
            "G2 atomic batches",
            format!(
                "the log ends at sequence {last}, inside an append (appends end at {:?}, pending up to {})",
                model.cuts.iter().rev().take(8).collect::<Vec<_>>(),
                all.len()
            ),
        ));
    }
    if first == 0 || first > last + 1 {
        return Err(Violation::new(
            "G3 prefix",
            format!("the log starts at {first} and ends at {last}"),
        ));
    }
    let manifest = Manifest::read(storage, dir)
        .map_err(|e| Violation::new("recovery", format!("MANIFEST unreadable: {e}")))?;
    let log_start = manifest.as_ref().map_or(1, |m| m.log_start.max(1));
    if first > log_start {
        return Err(Violation::new(
            "G3 gapless",
            format!("the log starts at {first} but the MANIFEST's log start is {log_start}"),
        ));
    }
    check_records(journal, &all, first, last, &mut model.payloads)?;

    let expected = model_fold(all[..len].iter().copied());
    let state = journal
        .state::<Tally>()
        .map_err(|e| Violation::new("G5 state", format!("live state unavailable: {e}")))?;
    if state != expected {
        return Err(Violation::new(
            "G5 state",
            format!(
                "live state at {last} differs from the model's fold: {}",
                diff(&state, &expected)
            ),
        ));
    }
    let (replayed, at) = journal
        .replay::<Tally>(Until::End)
        .map_err(|e| Violation::new("G5 replay", format!("replay to the end failed: {e}")))?;
    if replayed != expected || at != last {
        return Err(Violation::new(
            "G5 replay",
            format!("replay to the end (at {at}) differs from the live state at {last}"),
        ));
    }
    let lo = if first <= 1 { 0 } else { log_start - 1 };
    let mut done = 0;
    for _ in 0..replays {
        let target = rng.range(lo, last);
        time_travel(journal, &all, target)?;
        done += 1;
    }
    let chain_head = journal
        .log()
        .chain_head()
        .map_err(|e| Violation::new("recovery", format!("chain head unavailable: {e}")))?;
    model.recovered(len);
    Ok(Recovered { first_seq: first, last_seq: last, chain_head, replays: done })
}

/// Replays [`Tally`] to `target` and compares it with the model's fold of the first `target`
/// events of `all`.
///
/// # Errors
/// A failed replay or a different state (G5).
pub fn time_travel(journal: &Journal, all: &[&ModelEvent], target: u64) -> Result<(), Violation> {
    let (state, at) = journal.replay::<Tally>(Until::Seq(target)).map_err(|e| {
        Violation::new("G5 time travel", format!("replay to sequence {target} failed: {e}"))
    })?;
    let expected = model_fold(all[..to_index(target)].iter().copied());
    if at != target || state != expected {
        return Err(Violation::new(
            "G5 time travel",
            format!(
                "replay to sequence {target} (at {at}) differs from the model's fold: {}",
                diff(&state, &expected)
            ),
        ));
    }
    Ok(())
}

/// G3 record by record: gapless, ordered, each event equal to the model's (stream, version,
/// type, data) and byte-identical to the payload first read back for its sequence number.
fn check_records(
    journal: &Journal,
    all: &[&ModelEvent],
    first: u64,
    last: u64,
    payloads: &mut BTreeMap<u64, Vec<u8>>,
) -> Result<(), Violation> {
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    let mut expected_versions = Vec::with_capacity(all.len());
    for e in all {
        let v = versions.entry(e.stream.as_str()).or_insert(0);
        *v += 1;
        expected_versions.push(*v);
    }
    let mut next = first;
    let mut last_ts = 0;
    for record in journal.log().read_from(first) {
        let record = record.map_err(|e| {
            Violation::new("G3 readable", format!("reading sequence {next} failed: {e}"))
        })?;
        if record.seq != next {
            return Err(Violation::new(
                "G3 gapless",
                format!("expected sequence {next}, read {}", record.seq),
            ));
        }
        if record.ts < last_ts {
            return Err(Violation::new(
                "G3 ordered",
                format!("sequence {next}: timestamp {} before {last_ts}", record.ts),
            ));
        }
        last_ts = record.ts;
        let i = to_index(next - 1);
        let want = all.get(i).ok_or_else(|| {
            Violation::new("G3 no phantom", format!("sequence {next} was never appended"))
        })?;
        let raw = RawEvent::parse(record.seq, record.ts, &record.payload).map_err(|e| {
            Violation::new("G3 byte-identical", format!("sequence {next} does not parse: {e}"))
        })?;
        let data: Ev = raw.decode().map_err(|e| {
            Violation::new("G3 byte-identical", format!("sequence {next} does not decode: {e}"))
        })?;
        let wrong = raw.stream != want.stream
            || raw.version != expected_versions[i]
            || raw.event_type != annal::TypedEvent::event_type(&want.ev)
            || data != want.ev;
        if wrong {
            return Err(Violation::new(
                "G3 byte-identical",
                format!(
                    "sequence {next}: read {:?} v{} {:?}, appended {:?} v{} {:?}",
                    raw.stream, raw.version, data, want.stream, expected_versions[i], want.ev
                ),
            ));
        }
        match payloads.get(&next) {
            Some(bytes) if bytes[..] != record.payload[..] => {
                return Err(Violation::new(
                    "G3 byte-identical",
                    format!(
                        "sequence {next}: the payload bytes changed since they were first read"
                    ),
                ));
            }
            Some(_) => {}
            None => {
                payloads.insert(next, record.payload.to_vec());
            }
        }
        next += 1;
    }
    if next != last + 1 {
        return Err(Violation::new(
            "G3 gapless",
            format!("the log claims to end at {last} but reading stopped at {}", next - 1),
        ));
    }
    Ok(())
}

/// The first stream whose tally differs, for messages.
fn diff(
    got: &BTreeMap<String, crate::model::StreamTally>,
    want: &BTreeMap<String, crate::model::StreamTally>,
) -> String {
    for key in got.keys().chain(want.keys()) {
        if got.get(key) != want.get(key) {
            return format!("stream {key:?}: got {:?}, model {:?}", got.get(key), want.get(key));
        }
    }
    "equal".into()
}

/// Temporary files anywhere in the store and snapshot files the MANIFEST does not name. Without
/// a MANIFEST (the first compaction never committed, or one was moved aside) no snapshot file
/// is known to be unused, and none may be removed: only temporary files count then.
#[must_use]
pub fn orphans(storage: &dyn Storage, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join(annal::wal::WAL_DIR)] {
        for name in storage.list_dir(&sub).unwrap_or_default() {
            if name.ends_with(TMP_SUFFIX) {
                out.push(sub.join(name).display().to_string());
            }
        }
    }
    let manifest = Manifest::read(storage, dir).ok().flatten();
    let snaps = dir.join(SNAPSHOTS_DIR);
    for projection in storage.list_dir(&snaps).unwrap_or_default() {
        for name in storage.list_dir(&snaps.join(&projection)).unwrap_or_default() {
            let named = manifest.as_ref().is_none_or(|m| {
                m.snapshots_of(&projection).any(|s| format!("{:020}.snap", s.seq) == name)
            });
            if !named || name.ends_with(TMP_SUFFIX) {
                out.push(format!("{SNAPSHOTS_DIR}/{projection}/{name}"));
            }
        }
    }
    out
}

/// How a store is opened: the closure the harness calls for every (re)open.
pub type Opener<'a> = &'a dyn Fn() -> annal::Result<Journal>;

/// Opens after a crash and checks everything: [`check_journal`], then a second open that must
/// be clean and agree (same last sequence number, chain head and state), and no orphan files.
/// Returns the journal of the second open (the model updated to what was recovered) and the
/// check's findings.
///
/// # Errors
/// The first invariant found broken.
pub fn recover_and_check(
    open: Opener<'_>,
    storage: &Arc<dyn Storage>,
    dir: &Path,
    model: &mut Model,
    rng: &mut Rng,
    replays: usize,
) -> Result<(Journal, Recovered), Violation> {
    let journal = open().map_err(|e| Violation::new("recovery", format!("open failed: {e}")))?;
    let recovered = check_journal(&journal, storage.as_ref(), dir, model, rng, replays)?;
    check_readers(&journal, storage, dir, rng)?;
    drop(journal);
    let journal = open()
        .map_err(|e| Violation::new("recovery idempotent", format!("second open failed: {e}")))?;
    let report = journal.recovery_report();
    if !report.is_clean() {
        return Err(Violation::new(
            "recovery idempotent",
            format!("the second open repaired again: {report:?}"),
        ));
    }
    if journal.last_seq() != recovered.last_seq {
        return Err(Violation::new(
            "recovery idempotent",
            format!("first open ended at {}, second at {}", recovered.last_seq, journal.last_seq()),
        ));
    }
    let head = journal.log().chain_head().map_err(|e| {
        Violation::new("recovery idempotent", format!("chain head unavailable: {e}"))
    })?;
    if head != recovered.chain_head {
        return Err(Violation::new(
            "recovery idempotent",
            format!("the chain head at {} changed between opens", recovered.last_seq),
        ));
    }
    let expected = model_fold(&model.events);
    match journal.state::<Tally>() {
        Ok(state) if state == expected => {}
        Ok(state) => {
            return Err(Violation::new(
                "G5 state",
                format!("after the second open: {}", diff(&state, &expected)),
            ));
        }
        Err(e) => {
            return Err(Violation::new("G5 state", format!("after the second open: {e}")));
        }
    }
    let left = orphans(storage.as_ref(), dir);
    if !left.is_empty() {
        return Err(Violation::new("no orphans", format!("after a second open: {left:?}")));
    }
    Ok((journal, recovered))
}

/// G11 for the readers of another process: a directory reader (no lock, the one every CLI read
/// uses), from the earliest record and from a random point, returns exactly the journal's
/// records; a start below what is held fails naming the earliest; the directory view agrees on
/// the range and the chain head; a `JournalReader` replay to a random target equals the
/// journal's.
///
/// # Errors
/// The first difference found.
pub fn check_readers(
    journal: &Journal,
    storage: &Arc<dyn Storage>,
    dir: &Path,
    rng: &mut Rng,
) -> Result<(), Violation> {
    let fail = |what: String| Violation::new("G11 directory readers", what);
    let log = journal.log();
    let (first, last) = (log.first_seq(), log.last_seq());
    let want: Vec<annal::wal::Record> =
        log.read_from(0).collect::<Result<_, _>>().map_err(|e| {
            let list = |d: &str| storage.list_dir(&dir.join(d)).unwrap_or_default().join(" ");
            fail(format!(
                "the journal's own read failed: {e} (log {first}..={last}; wal/: {}; archive/: {})",
                list("wal"),
                list("archive")
            ))
        })?;
    let read = |from: u64| -> Result<Vec<annal::wal::Record>, String> {
        annal::wal::Reader::open(Arc::clone(storage), dir, from)
            .and_then(Iterator::collect)
            .map_err(|e| e.to_string())
    };
    let got = read(0).map_err(|e| fail(format!("from the earliest: {e}")))?;
    if got != want {
        return Err(fail(format!(
            "from the earliest: {} records ({:?}..{:?}), the journal holds {} ({:?}..{:?})",
            got.len(),
            got.first().map(|r| r.seq),
            got.last().map(|r| r.seq),
            want.len(),
            want.first().map(|r| r.seq),
            want.last().map(|r| r.seq)
        )));
    }
    let earliest = want.first().map_or(first, |r| r.seq);
    let from = rng.range(earliest, last + 1);
    let got = read(from).map_err(|e| fail(format!("from {from}: {e}")))?;
    let skip = usize::try_from(from - earliest).expect("small");
    if got[..] != want[skip.min(want.len())..] {
        return Err(fail(format!(
            "from {from}: {} records, expected {}",
            got.len(),
            want.len() - skip
        )));
    }
    if earliest > 1 {
        match read(earliest - 1) {
            Err(e) if e.contains(&format!("earliest reachable sequence is {earliest}")) => {}
            other => {
                return Err(fail(format!(
                    "from {} (below the earliest, {earliest}): {:?}",
                    earliest - 1,
                    other.map(|r| r.len())
                )));
            }
        }
    }
    let summary = annal::wal::DirView::open(Arc::clone(storage), dir)
        .and_then(|v| v.summary())
        .map_err(|e| fail(format!("directory view: {e}")))?;
    let head = log.chain_head().map_err(|e| fail(format!("chain head: {e}")))?;
    if summary.last_seq != last || summary.first_seq != first || summary.chain_head != head {
        return Err(fail(format!(
            "directory view: {}..={} differs from the journal's {first}..={last} (or its chain head)",
            summary.first_seq, summary.last_seq
        )));
    }
    let reader = annal::JournalReader::open_with(Arc::clone(storage), dir)
        .map_err(|e| fail(format!("JournalReader: {e}")))?;
    let lo = first.saturating_sub(1);
    let target = rng.range(lo, last + 1);
    match (reader.replay::<Tally>(Until::Seq(target)), journal.replay::<Tally>(Until::Seq(target)))
    {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        (a, b) => Err(fail(format!(
            "JournalReader replay to {target}: {:?} against the journal's {:?}",
            a.map(|s| s.1),
            b.map(|s| s.1)
        ))),
    }
}
