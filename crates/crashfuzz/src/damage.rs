//! `annal-crashfuzz damage`: every kind of damage against every read path, and `recover` on
//! it. Each seed builds a store on the simulated file system (sealed segments, a compaction with snapshots and a
//! MANIFEST, archived segments on odd seeds, an active segment, a clean close), damages one
//! thing, and runs every read path over it. A path passes when it returns exactly what the
//! intact store held, or fails; one that succeeds with anything else (fewer events, another
//! state) is a violation: damage went unreported (G4, G11).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal::wal::{ARCHIVE_DIR, DirView, Reader, WAL_DIR};
use annal::{Expect, Journal, JournalReader, Projection, Query, Until};
use annal_compactor::{MANIFEST_FILE, SNAPSHOTS_DIR};
use annal_storage::{Fault, FaultKind, FaultOp, SimStorage, Storage};
use serde::Serialize;

use crate::model::{Ev, StreamTally, Tally};
use crate::rng::Rng;
use crate::workload::{DIR, SEGMENT_BYTES};
use annal::wal::format::SEGMENT_HEADER_BYTES;

/// A kind of damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One bit flipped in the frames of the active (last) segment.
    FlipActive,
    /// One bit flipped anywhere in a sealed segment of `wal/`.
    FlipSealed,
    /// One bit flipped in a segment in `archive/`.
    FlipArchived,
    /// One bit flipped in a snapshot file.
    FlipSnapshot,
    /// One bit flipped in the MANIFEST.
    FlipManifest,
    /// A segment of `wal/` other than the last removed.
    MissingSegment,
    /// The MANIFEST removed.
    MissingManifest,
    /// A snapshot file removed.
    MissingSnapshot,
    /// One bit flipped in the header of a segment of `wal/` (the first one on even seeds).
    FlipHeader,
    /// Every segment of `wal/` removed.
    EmptyWal,
    /// A segment below the log start (one a compaction removed or archived) back in `wal/` with
    /// a bit flipped, as a compaction a crash interrupted leaves it: not part of the log.
    DamagedLeftover,
    /// A bit flipped in the first frame of the log, repaired (the log restarts past the
    /// snapshots, so that its first segment starts at the log start), then a bit flipped in the
    /// header of that first segment.
    HeaderAfterRestart,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 12] = [
        Kind::FlipActive,
        Kind::FlipSealed,
        Kind::FlipArchived,
        Kind::FlipSnapshot,
        Kind::FlipManifest,
        Kind::MissingSegment,
        Kind::MissingManifest,
        Kind::MissingSnapshot,
        Kind::FlipHeader,
        Kind::EmptyWal,
        Kind::DamagedLeftover,
        Kind::HeaderAfterRestart,
    ];

    /// The name reports use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::FlipActive => "bit flip in the active segment",
            Kind::FlipSealed => "bit flip in a sealed segment",
            Kind::FlipArchived => "bit flip in an archived segment",
            Kind::FlipSnapshot => "bit flip in a snapshot",
            Kind::FlipManifest => "bit flip in the MANIFEST",
            Kind::MissingSegment => "missing segment",
            Kind::MissingManifest => "missing MANIFEST",
            Kind::MissingSnapshot => "missing snapshot",
            Kind::FlipHeader => "bit flip in a segment header",
            Kind::EmptyWal => "every segment missing",
            Kind::DamagedLeftover => "damaged leftover below the log start",
            Kind::HeaderAfterRestart => "bit flip in the first header after a restart",
        }
    }
}

/// What a damage run covered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DamageStats {
    /// Damaged stores built (seed x kind, where the store had something of that kind).
    pub stores: u64,
    /// Read-path runs over damaged stores.
    pub cells: u64,
    /// Cells that reported the damage (failed).
    pub reported: u64,
    /// Cells that returned exactly the intact store's answer.
    pub intact: u64,
    /// Damaged stores that `recover` (`JournalOptions::repair`) repaired, each checked: it opens,
    /// appends and verifies, holds only events of the intact log, and every intact event of it
    /// is still in the log, in `archive/` or in `quarantine/`.
    pub repaired: u64,
    /// Damaged stores whose repair was refused, each checked to have changed no file.
    pub refused: u64,
    /// Repairs stopped by a simulated crash at a random step (then run again and checked).
    pub repairs_interrupted: u64,
    /// Repairs an injected `EIO` or `ENOSPC` made fail (then run again and checked).
    pub repairs_failed: u64,
}

/// A read path that succeeded with a wrong answer.
#[derive(Debug, Clone, Serialize)]
pub struct DamageFailure {
    /// The seed of the store.
    pub seed: u64,
    /// The damage.
    pub kind: &'static str,
    /// The read path.
    pub path: &'static str,
    /// What it returned, against what the intact store held.
    pub detail: String,
}

/// What the intact store answers: every record (sequence number and payload), the state of
/// [`Tally`], and a replay target with its state.
#[derive(Debug, Clone, PartialEq)]
struct Answers {
    records: Vec<(u64, Vec<u8>)>,
    state: std::collections::BTreeMap<String, StreamTally>,
    target: u64,
    at_target: std::collections::BTreeMap<String, StreamTally>,
}

fn open(sim: &SimStorage, archive: bool) -> annal::Result<Journal> {
    Journal::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(SEGMENT_BYTES)
        .keep_snapshots(1)
        .archive(archive)
        .projection::<Tally>()
        .open(DIR)
}

/// Builds the store of `seed` and returns its storage and whether it archives.
fn build(seed: u64) -> (SimStorage, bool) {
    let sim = SimStorage::new(seed);
    let archive = seed % 2 == 1;
    let journal = open(&sim, archive).expect("a fresh store opens");
    let mut rng = Rng::new(seed);
    for id in 0..160u64 {
        let stream = format!("s{}", rng.index(4));
        let pad = rng.index(200);
        if id % 7 == 3 {
            let batch = [Ev::make(id, pad), Ev::make(id + 1000, pad)];
            journal.append(&stream, Expect::Any, batch).expect("append");
        } else {
            journal.append(&stream, Expect::Any, [Ev::make(id, pad)]).expect("append");
        }
        if id == 110 {
            journal.compact().expect("compact");
        }
    }
    journal.close().expect("clean close");
    (sim, archive)
}

fn answers(sim: &SimStorage, target: u64) -> Answers {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let records = Reader::open(Arc::clone(&storage), DIR, 0)
        .expect("reader")
        .map(|r| r.map(|r| (r.seq, r.payload.to_vec())))
        .collect::<Result<_, _>>()
        .expect("the intact store reads");
    let reader = JournalReader::open_with(storage, DIR).expect("reader");
    let state = reader.replay::<Tally>(Until::End).expect("intact replay").0;
    let at_target = reader.replay::<Tally>(Until::Seq(target)).expect("intact replay").0;
    Answers { records, state, target, at_target }
}

/// Applies `kind` to the store; `None` when it holds nothing of that kind.
fn damage(sim: &SimStorage, kind: Kind, rng: &mut Rng) -> Option<PathBuf> {
    let dir = Path::new(DIR);
    let files = |sub: &Path| -> Vec<PathBuf> {
        let mut names = sim.list_dir(sub).unwrap_or_default();
        names.sort();
        names.into_iter().map(|n| sub.join(n)).filter(|p| sim.list_dir(p).is_err()).collect()
    };
    let segments: Vec<PathBuf> = files(&dir.join(WAL_DIR))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    let snapshots: Vec<PathBuf> = sim
        .list_dir(&dir.join(SNAPSHOTS_DIR))
        .unwrap_or_default()
        .into_iter()
        .flat_map(|p| files(&dir.join(SNAPSHOTS_DIR).join(p)))
        .collect();
    let pick = |list: &[PathBuf], rng: &mut Rng| -> Option<PathBuf> {
        (!list.is_empty()).then(|| list[rng.index(list.len())].clone())
    };
    let flip = |path: PathBuf, lo: u64, hi: u64, rng: &mut Rng| -> Option<PathBuf> {
        if hi <= lo {
            return None;
        }
        let at = rng.range(lo, hi - 1);
        let bit = u8::try_from(rng.index(8)).expect("below 8");
        sim.flip_bit(&path, at, bit).expect("flip");
        Some(path)
    };
    let len = |p: &Path| sim.file_bytes(p).map_or(0, |b| b.len() as u64);
    match kind {
        Kind::FlipActive => {
            let active = segments.last()?.clone();
            let data_end = DirView::open(Arc::new(sim.clone()), DIR)
                .and_then(|v| v.summary())
                .ok()?
                .segments
                .last()?
                .data_bytes;
            flip(active, 64, data_end, rng)
        }
        Kind::FlipSealed => {
            let sealed = pick(&segments[..segments.len().saturating_sub(1)], rng)?;
            let n = len(&sealed);
            flip(sealed, 0, n, rng)
        }
        Kind::FlipArchived => {
            let archived = pick(&files(&dir.join(ARCHIVE_DIR)), rng)?;
            let n = len(&archived);
            flip(archived, 0, n, rng)
        }
        Kind::FlipSnapshot => {
            let snap = pick(&snapshots, rng)?;
            let n = len(&snap);
            flip(snap, 0, n, rng)
        }
        Kind::FlipManifest => {
            let manifest = dir.join(MANIFEST_FILE);
            let n = len(&manifest);
            flip(manifest, 0, n, rng)
        }
        Kind::MissingSegment => {
            let gone = pick(&segments[..segments.len().saturating_sub(1)], rng)?;
            sim.remove_file(&gone).ok()?;
            Some(gone)
        }
        Kind::MissingManifest => {
            let manifest = dir.join(MANIFEST_FILE);
            sim.remove_file(&manifest).ok()?;
            Some(manifest)
        }
        Kind::MissingSnapshot => {
            let gone = pick(&snapshots, rng)?;
            sim.remove_file(&gone).ok()?;
            Some(gone)
        }
        Kind::FlipHeader => {
            let seg =
                if rng.index(2) == 0 { segments.first()?.clone() } else { pick(&segments, rng)? };
            flip(seg, 0, SEGMENT_HEADER_BYTES as u64, rng)
        }
        Kind::EmptyWal => {
            for seg in &segments {
                sim.remove_file(seg).ok()?;
            }
            Some(dir.join(WAL_DIR))
        }
        Kind::DamagedLeftover => {
            // The newest archived segment lies below the log start: put it back, as a compaction
            // interrupted before its removal leaves it, and damage its frames.
            let archived = files(&dir.join(ARCHIVE_DIR));
            let newest = archived.last()?;
            let bytes = sim.file_bytes(newest).ok()?;
            let back = dir.join(WAL_DIR).join(newest.file_name()?);
            sim.write_file_durably(&back, &bytes).ok()?;
            let n = bytes.len() as u64;
            flip(back, SEGMENT_HEADER_BYTES as u64, n, rng)
        }
        Kind::HeaderAfterRestart => {
            let first = segments.first()?.clone();
            flip(first, SEGMENT_HEADER_BYTES as u64 + 30, SEGMENT_HEADER_BYTES as u64 + 31, rng)?;
            let (journal, report) = repair(sim, archive_of(sim)).ok()?;
            journal.close().ok()?;
            let restarted = report.restart?;
            let now = sim.list_dir(&dir.join(WAL_DIR)).ok()?;
            let name = annal::wal::format::segment_file_name(restarted.log_start);
            now.contains(&name).then_some(())?;
            flip(dir.join(WAL_DIR).join(name), 0, SEGMENT_HEADER_BYTES as u64, rng)
        }
    }
}

/// Whether the store archives: it has an `archive/` directory (odd seeds).
fn archive_of(sim: &SimStorage) -> bool {
    sim.exists(&Path::new(DIR).join(ARCHIVE_DIR)).unwrap_or(false)
}

/// The first sequence number the damage may take out of the live log (`wal/` from the log
/// start on), judged from the files alone: a removed segment's first, a segment's first when its
/// header changed, else the first record of a changed segment that is no longer intact in it,
/// else the one past its last. `None` when no live segment changed.
fn first_hit(
    before: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    log_start: u64,
) -> Option<u64> {
    let wal = Path::new(DIR).join(WAL_DIR);
    let mut segs: Vec<(u64, &PathBuf, &Vec<u8>)> = before
        .iter()
        .filter(|(p, _)| p.parent() == Some(wal.as_path()))
        .filter_map(|(p, b)| {
            let first =
                annal::wal::format::parse_segment_file_name(&p.file_name()?.to_string_lossy())?;
            Some((first, p, b))
        })
        .collect();
    segs.sort();
    while segs.len() > 1 && segs[1].0 <= log_start {
        segs.remove(0);
    }
    let mut hit: Option<u64> = None;
    for (first, path, bytes) in segs {
        let d = match after.get(path) {
            Some(now) if now == bytes => continue,
            None => first,
            Some(now)
                if now[..SEGMENT_HEADER_BYTES.min(now.len())] != bytes[..SEGMENT_HEADER_BYTES] =>
            {
                first
            }
            Some(now) => {
                let held: std::collections::BTreeSet<(u64, Vec<u8>)> =
                    records_of(now).into_iter().collect();
                let was = records_of(bytes);
                was.iter()
                    .find(|r| !held.contains(r))
                    .map_or_else(|| was.last().map_or(first, |r| r.0 + 1), |r| r.0)
            }
        };
        hit = Some(hit.map_or(d, |h| h.min(d)));
    }
    hit
}

/// The records of the intact frames in `bytes`.
fn records_of(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
    annal::wal::salvage::intact_frames(bytes)
        .into_iter()
        .flat_map(|f| {
            let first = f.first_seq;
            f.records.into_iter().enumerate().map(move |(k, (_, p))| (first + k as u64, p.to_vec()))
        })
        .collect()
}

/// One read path's answer: `Err` when it reported something.
type Answer = Result<String, String>;

fn show<T: std::fmt::Debug>(t: &T) -> String {
    let text = format!("{t:?}");
    if text.len() > 120 { format!("{}...", &text[..120]) } else { text }
}

/// Runs every read path over the damaged store; each returns what it found, as text to compare
/// with the intact store's, or an error.
fn read_paths(
    sim: &SimStorage,
    archive: bool,
    want: &Answers,
) -> Vec<(&'static str, Answer, String)> {
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    // The log start a MANIFEST records, as the facade gives it to the readers it opens.
    let log_start = annal_compactor::Manifest::read(sim, Path::new(DIR))
        .ok()
        .flatten()
        .map_or(1, |m| m.log_start.max(1));
    let records = |from: u64| -> Answer {
        Reader::open(Arc::clone(&storage), DIR, from)
            .map(|r| r.expect_start(log_start))
            .and_then(|r| {
                r.map(|r| r.map(|r| (r.seq, r.payload.to_vec()))).collect::<Result<Vec<_>, _>>()
            })
            .map(|v| show(&v))
            .map_err(|e| e.to_string())
    };
    let middle = want.records.get(want.records.len() / 2).map_or(0, |r| r.0);
    let want_middle: Vec<(u64, Vec<u8>)> =
        want.records.iter().filter(|r| r.0 >= middle).cloned().collect();
    let mut out = vec![
        ("Reader from the earliest", records(0), show(&want.records)),
        ("Reader from the middle", records(middle), show(&want_middle)),
    ];
    let last = want.records.last().map_or(0, |r| r.0);
    let reader = JournalReader::open_with(Arc::clone(&storage), DIR).map_err(|e| e.to_string());
    let summary = reader.as_ref().map_err(Clone::clone).and_then(|r| {
        r.summary()
            .map(|s| format!("{}..={}", s.log.earliest_seq(), s.log.last_seq))
            .map_err(|e| e.to_string())
    });
    let first = want.records.first().map_or(1, |r| r.0);
    out.push(("JournalReader::summary", summary, format!("{first}..={last}")));
    let events = reader.as_ref().map_err(Clone::clone).and_then(|r| {
        r.read::<serde_json::Value>(Query::all())
            .and_then(|e| e.map(|e| e.map(|e| e.seq)).collect::<annal::Result<Vec<_>>>())
            .map(|v| show(&v))
            .map_err(|e| e.to_string())
    });
    let seqs: Vec<u64> = want.records.iter().map(|r| r.0).collect();
    out.push(("JournalReader::read", events, show(&seqs)));
    let replay = |target: Until| -> Answer {
        reader
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|r| r.replay::<Tally>(target).map(|s| show(&s.0)).map_err(|e| e.to_string()))
    };
    out.push(("JournalReader::replay to the end", replay(Until::End), show(&want.state)));
    out.push((
        "JournalReader::replay to a target",
        replay(Until::Seq(want.target)),
        show(&want.at_target),
    ));
    // The writer last: its open may repair (cut a torn tail), which the readers must not see.
    let journal = open(sim, archive).map_err(|e| e.to_string());
    let state = journal
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|j| j.state::<Tally>().map(|s| show(&s)).map_err(|e| e.to_string()));
    out.push(("Journal::open and state", state, show(&want.state)));
    let read = journal.as_ref().map_err(Clone::clone).and_then(|j| {
        j.read::<serde_json::Value>(Query::all())
            .map(|e| e.map(|e| e.seq))
            .collect::<annal::Result<Vec<_>>>()
            .map(|v| show(&v))
            .map_err(|e| e.to_string())
    });
    out.push(("Journal::read", read, show(&seqs)));
    let replay = journal.as_ref().map_err(Clone::clone).and_then(|j| {
        j.replay::<Tally>(Until::Seq(want.target)).map(|s| show(&s.0)).map_err(|e| e.to_string())
    });
    out.push(("Journal::replay to a target", replay, show(&want.at_target)));
    out
}

/// Runs the damage mode over `seeds`, every kind for each.
///
/// On every damaged store `recover` runs three times over: on the store as damaged; stopped by
/// a simulated crash at a random step of it and run again after the restart; and failed by an
/// injected `EIO` or `ENOSPC` at a random write or sync of it and run again. Each final repair
/// is checked the same way.
pub fn run_damage(
    seeds: Range<u64>,
    on_failure: &mut dyn FnMut(&DamageFailure),
) -> (DamageStats, Vec<DamageFailure>) {
    let mut stats = DamageStats::default();
    let mut failures = Vec::new();
    for seed in seeds {
        let (intact, archive) = build(seed);
        let mut rng = Rng::new(seed ^ 0x5eed);
        let last = DirView::open(Arc::new(intact.clone()), DIR)
            .and_then(|v| v.summary())
            .expect("intact summary")
            .last_seq;
        // A target past the compaction, which every store can replay to.
        let want = answers(&intact, rng.range(last - 20, last));
        let log_start = annal_compactor::Manifest::read(&intact, Path::new(DIR))
            .ok()
            .flatten()
            .map_or(1, |m| m.log_start);
        let pristine = all_files(&intact);
        for kind in Kind::ALL {
            let damaged_store = |rng: &mut Rng| {
                let (sim, _) = build(seed);
                let damaged = damage(&sim, kind, rng)?;
                Some((sim, damaged))
            };
            let at_damage = rng.clone();
            let Some((sim, damaged)) = damaged_store(&mut rng) else {
                continue;
            };
            let hit = first_hit(&pristine, &all_files(&sim), log_start);
            stats.stores += 1;
            // After a repair the store no longer holds the intact store's answers: its readers
            // are checked against header damage by `FlipHeader`.
            let reads = if kind == Kind::HeaderAfterRestart {
                Vec::new()
            } else {
                read_paths(&sim, archive, &want)
            };
            for (path, got, expected) in reads {
                stats.cells += 1;
                match got {
                    Err(_) => stats.reported += 1,
                    Ok(text) if text == expected => stats.intact += 1,
                    Ok(text) => {
                        let failure = DamageFailure {
                            seed,
                            kind: kind.name(),
                            path,
                            detail: format!(
                                "succeeded with a wrong answer: returned {text} where the store held {expected}"
                            ),
                        };
                        on_failure(&failure);
                        failures.push(failure);
                    }
                }
            }
            let mut fail = |path: &'static str, detail: String| {
                let failure = DamageFailure { seed, kind: kind.name(), path, detail };
                on_failure(&failure);
                failures.push(failure);
            };
            let case =
                RepairCase { intact: &intact, archive, kind, damaged: &damaged, hit, want: &want };
            let ops = match check_repair(&case, &sim, &mut stats) {
                Ok(ops) => ops,
                Err(detail) => {
                    fail("recover", detail);
                    continue;
                }
            };
            // Stopped by a crash at a random step, then run again.
            let mut again = at_damage.clone();
            let (sim, _) = damaged_store(&mut again).expect("the same damage again");
            let step = rng.range(0, ops.max(1) - 1);
            sim.halt_after(step);
            let _ = repair(&sim, archive);
            sim.crash_random();
            stats.repairs_interrupted += 1;
            if let Err(detail) = check_repair(&case, &sim, &mut stats) {
                fail(
                    "recover stopped by a crash, then recover",
                    format!("crash after {step} of {ops} operations: {detail}"),
                );
            }
            // Failed by an I/O error at a random write or sync, then run again.
            let mut again = at_damage;
            let (sim, _) = damaged_store(&mut again).expect("the same damage again");
            let fault = Fault {
                op: if rng.index(2) == 0 { FaultOp::Write } else { FaultOp::Sync },
                nth: rng.range(1, 12),
                kind: if rng.index(2) == 0 { FaultKind::Eio } else { FaultKind::Enospc },
            };
            sim.inject(fault);
            let first = repair(&sim, archive).map(|(j, _)| j.close());
            sim.clear_faults();
            stats.repairs_failed += u64::from(sim.last_fault().is_some());
            if let Err(detail) = check_repair(&case, &sim, &mut stats) {
                fail(
                    "recover failed by an I/O error, then recover",
                    format!("{fault:?} (first run: {first:?}): {detail}"),
                );
            }
        }
    }
    (stats, failures)
}

/// What a damaged store is checked against.
struct RepairCase<'a> {
    intact: &'a SimStorage,
    archive: bool,
    kind: Kind,
    damaged: &'a Path,
    /// The first sequence number the damage may take out of the live log.
    hit: Option<u64>,
    want: &'a Answers,
}

fn repair(sim: &SimStorage, archive: bool) -> annal::Result<(Journal, annal::RepairReport)> {
    Journal::options()
        .storage(Arc::new(sim.clone()))
        .segment_bytes(SEGMENT_BYTES)
        .keep_snapshots(1)
        .archive(archive)
        .projection::<Tally>()
        .recovery(annal::RecoveryMode::TruncateAtCorruption)
        .repair(DIR)
}

/// Every file under the store, with its bytes.
fn all_files(sim: &SimStorage) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![PathBuf::from(DIR)];
    while let Some(d) = dirs.pop() {
        for name in sim.list_dir(&d).unwrap_or_default() {
            if name == annal::wal::LOCK_FILE {
                // Created by every writer; a crash may have dropped its unsynced entry.
                continue;
            }
            let p = d.join(name);
            if sim.list_dir(&p).is_ok() {
                dirs.push(p);
            } else if let Ok(bytes) = sim.file_bytes(&p) {
                out.insert(p, bytes);
            }
        }
    }
    out
}

/// Runs the repair on the damaged store and checks that it only improved it (G12): refused
/// with no file changed, or a store that opens, appends and verifies, whose log holds only
/// records of the intact log and whose state is the intact log's at the same point, and where
/// every record of the intact log is still in `wal/`, `archive/` or `quarantine/`, except those
/// the damage itself destroyed (one frame of a flipped bit, a removed segment's).
fn check_repair(
    case: &RepairCase<'_>,
    sim: &SimStorage,
    stats: &mut DamageStats,
) -> Result<u64, String> {
    let RepairCase { intact, archive, kind, damaged, hit, want } = *case;
    let before = all_files(sim);
    let ops_before = sim.op_count();
    let repaired = repair(sim, archive);
    let ops = sim.op_count() - ops_before;
    let (journal, report) = match repaired {
        Ok(done) => done,
        Err(annal::Error::Unrepairable(why)) => {
            stats.refused += 1;
            return if all_files(sim) == before {
                Ok(ops)
            } else {
                Err(format!("refused ({why}) but changed files"))
            };
        }
        Err(e) => return Err(format!("failed: {e}")),
    };
    stats.repaired += 1;
    // From the first segment in wal/: a gap or damage in archive/ stays, reported to every reader
    // of it (the read paths above check that).
    let held: Vec<(u64, Vec<u8>)> = journal
        .log()
        .read_from(journal.log().first_seq())
        .map(|r| r.map(|r| (r.seq, r.payload.to_vec())))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the repaired log does not read: {e}"))?;
    // Nothing before the damage is cut: the log reaches at least to the record before it.
    let intact_last = want.records.last().map_or(0, |r| r.0);
    let reach = hit.map_or(intact_last, |h| (h - 1).min(intact_last));
    if journal.last_seq() < reach {
        return Err(format!(
            "the repaired log ends at sequence {} though the damage first touched {} ({report:?})",
            journal.last_seq(),
            hit.map_or("nothing of it".to_owned(), |h| format!("sequence {h}"))
        ));
    }
    // Where no live segment was damaged the log is left as it is: no restart, cut or rewrite.
    if hit.is_none()
        && (report.restart.is_some()
            || report.log.cut.is_some()
            || !report.headers_rewritten.is_empty())
    {
        return Err(format!("the live log was intact but the repair changed it ({report:?})"));
    }
    let intact_records: std::collections::BTreeMap<u64, &Vec<u8>> =
        want.records.iter().map(|(q, p)| (*q, p)).collect();
    if let Some((q, _)) = held.iter().find(|(q, p)| intact_records.get(q) != Some(&p)) {
        return Err(format!("the repaired log holds sequence {q}, which the intact log does not"));
    }
    let last = journal.last_seq();
    let lost_tally = report.projections_lost.iter().any(|(n, _)| n == Tally::NAME);
    let state = match journal.state::<Tally>() {
        Err(annal::Error::ProjectionFailed { .. }) if lost_tally => None,
        Err(e) => return Err(format!("state after repair: {e}")),
        Ok(state) if lost_tally => {
            return Err(format!(
                "the repair reported tally lost but its state reads: {}",
                show(&state)
            ));
        }
        Ok(state) => Some(state),
    };
    let expected = JournalReader::open_with(Arc::new(intact.clone()), DIR)
        .and_then(|r| r.replay::<Tally>(Until::Seq(last)))
        .map_err(|e| format!("intact replay to {last}: {e}"))?
        .0;
    if state.is_some_and(|s| s != expected) {
        return Err(format!(
            "the repaired state at sequence {last} differs from the intact log's ({report:?})"
        ));
    }
    // Every intact record is somewhere: the log, archive/, or a file in quarantine/.
    let mut found: std::collections::BTreeSet<u64> = held.iter().map(|r| r.0).collect();
    for (path, bytes) in all_files(sim) {
        let in_archive = path.starts_with(Path::new(DIR).join(ARCHIVE_DIR));
        let in_quarantine = path.starts_with(Path::new(DIR).join(annal::wal::QUARANTINE_DIR));
        if !in_archive && !in_quarantine {
            continue;
        }
        for frame in annal::wal::salvage::intact_frames(&bytes) {
            for (k, (_, payload)) in frame.records.iter().enumerate() {
                let q = frame.first_seq + k as u64;
                if intact_records.get(&q).is_some_and(|p| **p == payload[..]) {
                    found.insert(q);
                }
            }
        }
    }
    let lost: Vec<u64> = want.records.iter().map(|r| r.0).filter(|q| !found.contains(q)).collect();
    let destroyed = match kind {
        // A flipped bit destroys at most the frame it lands in (a batch of two here).
        Kind::FlipActive | Kind::FlipSealed | Kind::FlipArchived | Kind::HeaderAfterRestart => {
            lost.len() <= 2 && lost.windows(2).all(|w| w[1] == w[0] + 1)
        }
        Kind::MissingSegment => {
            let first = damaged
                .file_name()
                .and_then(|n| annal::wal::format::parse_segment_file_name(&n.to_string_lossy()))
                .unwrap_or(0);
            let next = before
                .keys()
                .filter_map(|p| {
                    p.parent().filter(|d| d.ends_with(WAL_DIR))?;
                    annal::wal::format::parse_segment_file_name(&p.file_name()?.to_string_lossy())
                })
                .filter(|&f| f > first)
                .min()
                .unwrap_or(u64::MAX);
            lost.iter().all(|&q| q >= first && q < next)
        }
        // Every record of the removed segments is gone; those in archive/ stay.
        Kind::EmptyWal => true,
        Kind::FlipSnapshot
        | Kind::FlipManifest
        | Kind::MissingManifest
        | Kind::MissingSnapshot
        | Kind::FlipHeader
        | Kind::DamagedLeftover => lost.is_empty(),
    };
    if !destroyed {
        return Err(format!(
            "intact records are in neither the log, archive/ nor quarantine/ after the repair: {} ({report:?})",
            show(&lost)
        ));
    }
    journal
        .append("after-repair", Expect::Any, [Ev::make(9_999, 0)])
        .map_err(|e| format!("append after repair: {e}"))?;
    let verify = journal.verify().map_err(|e| format!("verify after repair: {e}"))?;
    if !verify.is_ok() {
        return Err(format!("verify after repair: {}", show(&verify.problems)));
    }
    journal.close().map_err(|e| format!("close after repair: {e}"))?;
    open(sim, archive).map_err(|e| format!("reopen after repair: {e}"))?;
    Ok(ops)
}
