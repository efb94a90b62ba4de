//! `stateful`: a journal on the simulated file system driven by a fuzzer-chosen sequence of
//! operations (appends to streams with expected versions, multi-stream appends, syncs,
//! compactions, reopens, crashes in every `CrashMode`, `halt_after(k)` followed by an operation,
//! injected EIO / ENOSPC, live-state and time-travel checks), against a plain model of what the
//! journal acknowledged (`annal_crashfuzz::model::Model`).
//!
//! Checks, with the invariants of `crates/crashfuzz` (whose checker this target reuses):
//! - an append is acknowledged exactly when the model says its expectation holds, with the next
//!   gapless sequence numbers and the right stream version; a refused one is a conflict;
//! - no operation fails except through the halt or an injected fault (no spurious errors);
//! - after an injected fault hit the log, appends and syncs are refused until a reopen (G6);
//! - after every crash and recovery (`check::recover_and_check`): every event that must be
//!   durable is present (G1), the log ends at the end of a whole append (G2), it is gapless,
//!   ordered, has no phantom event and every payload is byte-identical to the model's event and
//!   to what was read before (G3), live state = replay = time travel = the model's fold (G5),
//!   recovery is idempotent, and no orphan files are left;
//! - a compaction stands at the last acknowledged sequence number; a clean reopen loses nothing.
//!
//! The input is decoded with `arbitrary`: the settings (durability, preallocation, snapshots
//! kept, the simulator's seed) and then up to `OPS_MAX` operations. Every run ends with a crash
//! that drops everything unsynced, and a checked recovery.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use annal::{Durability, Expect, Journal, NewEvent};
use annal_compactor::Manifest;
use annal_crashfuzz::check::{check_journal, recover_and_check, time_travel};
use annal_crashfuzz::model::{Ev, Model, ModelEvent, Tally, model_fold};
use annal_crashfuzz::rng::Rng;
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Where the journal lives on the simulated file system.
const DIR: &str = "/annal";
/// The smallest segment size the log accepts, so that appends roll segments often.
const SEGMENT_BYTES: u64 = 4096;
/// Operations per input, at most.
const OPS_MAX: usize = 48;
/// Streams the operations append to.
const STREAMS: u8 = 4;

#[derive(Debug, Arbitrary)]
struct Input {
    manual: bool,
    preallocate: bool,
    keep: u8,
    seed: u64,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum ExpectSel {
    Any,
    NoStream,
    Exists,
    /// The stream's current version.
    Current,
    /// The current version plus an offset (mostly wrong).
    Off(i8),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Mode {
    DropUnsynced,
    KeepUnsynced,
    Random,
}

impl From<Mode> for CrashMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::DropUnsynced => CrashMode::DropUnsynced,
            Mode::KeepUnsynced => CrashMode::KeepUnsynced,
            Mode::Random => CrashMode::Random,
        }
    }
}

/// An operation that can follow a `halt_after`.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Simple {
    Append { stream: u8, n: u8, pad: u16 },
    Sync,
    Compact,
    Reopen,
}

#[derive(Debug, Clone, Arbitrary)]
enum Op {
    /// Append `n` events (1..=8) to stream `stream` with an expectation.
    Append {
        stream: u8,
        n: u8,
        expect: ExpectSel,
        pad: u16,
    },
    /// One atomic append to two or three streams, with expectations that hold.
    AppendMulti {
        parts: [(u8, u8); 3],
        three: bool,
    },
    Sync,
    Compact,
    /// Sync, close, open again and check.
    Reopen,
    /// Cut the power and recover.
    Crash(Mode),
    /// `halt_after(after)`, then an operation; if the machine halted, crash with `mode`.
    Halt {
        after: u8,
        then: Simple,
        mode: Mode,
    },
    /// Arm a one-shot EIO or ENOSPC on the `nth` write or sync from now.
    Inject {
        write: bool,
        enospc: bool,
        nth: u8,
        same_boot: bool,
    },
    /// The live state equals the model's fold.
    State,
    /// A time-travel replay to a point given as a fraction of the log.
    Replay(u16),
}

/// Why an operation did not complete.
enum Stop {
    /// The machine halted.
    Halted,
    /// An injected fault fired; `log_io` says whether it hit the log (append, sync, replay)
    /// rather than a compaction or an open.
    Fault { log_io: bool },
}

struct Run {
    sim: SimStorage,
    durability: Durability,
    keep: usize,
    preallocate: bool,
    model: Model,
    rng: Rng,
    journal: Option<Journal>,
    next_id: u64,
    /// Faults injected since the last crash (a crash clears them).
    injected_since_crash: u32,
    /// Whether a halt was armed since the last crash.
    halt_armed: bool,
    /// Whether the last injected fault asks for a same-boot reopen rather than a crash.
    same_boot: bool,
    /// Narrate the run on stderr (`ANNAL_FUZZ_TRACE` set), to read what a crashing input does.
    trace: bool,
}

/// Whether the simulated machine refused an operation because of its halt.
fn halted(sim: &SimStorage) -> bool {
    sim.is_halted()
}

/// Whether `error` (or an error it wraps) is an injected EIO or ENOSPC.
fn injected(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(error);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(5 | 28))
        {
            return true;
        }
        cur = e.source();
    }
    let text = error.to_string();
    text.contains("os error 5)") || text.contains("os error 28)")
}

impl Run {
    fn open(&self) -> annal::Result<Journal> {
        Journal::options()
            .storage(Arc::new(self.sim.clone()))
            .segment_bytes(SEGMENT_BYTES)
            .keep_snapshots(self.keep)
            .durability(self.durability)
            .preallocate(self.preallocate)
            .projection::<Tally>()
            .open(DIR)
    }

    fn journal(&self) -> &Journal {
        self.journal.as_ref().expect("a journal is open between operations")
    }

    fn sync_mode(&self) -> bool {
        self.durability == Durability::Sync
    }

    /// Classifies a failed operation: the halt, an injected fault, or a bug.
    fn failed(&self, what: &str, error: &annal::Error, log_io: bool) -> Stop {
        if halted(&self.sim) {
            Stop::Halted
        } else if self.injected_since_crash > 0 && injected(error) {
            Stop::Fault { log_io }
        } else {
            panic!("no spurious errors: {what} failed: {error}");
        }
    }

    fn events(&mut self, stream: &str, n: u8, pad: u16) -> Vec<ModelEvent> {
        (0..1 + n % 8)
            .map(|i| {
                let id = self.next_id;
                self.next_id += 1;
                let pad = usize::from(pad.rotate_left(u32::from(i))) % 700;
                ModelEvent { stream: stream.to_owned(), ev: Ev::make(id, pad) }
            })
            .collect()
    }

    fn append(&mut self, stream: u8, n: u8, expect: ExpectSel, pad: u16) -> Result<(), Stop> {
        let stream = format!("s{}", stream % STREAMS);
        let version = self.model.version(&stream);
        let expect = match expect {
            ExpectSel::Any => Expect::Any,
            ExpectSel::NoStream => Expect::NoStream,
            ExpectSel::Exists => Expect::Exists,
            ExpectSel::Current => Expect::Exact(version),
            ExpectSel::Off(d) => Expect::Exact(version.saturating_add_signed(i64::from(d))),
        };
        let allowed = expect.allows(version);
        let events = self.events(&stream, n, pad);
        let new: Vec<NewEvent> =
            events.iter().map(|e| NewEvent::new(&e.ev).expect("events encode")).collect();
        match self.journal().append_events(&stream, expect, new) {
            Ok(a) => {
                assert!(allowed, "an append expecting {expect} on {stream:?} at {version} went in");
                let first = self.model.events.len() as u64 + 1;
                let count = events.len() as u64;
                assert_eq!((a.first, a.last), (first, first + count - 1), "gapless: {a:?}");
                assert_eq!(a.version, version + count, "stream version: {a:?}");
                let durable = self.sync_mode();
                self.model.ack(events, durable);
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                assert!(!allowed, "an append expecting {expect} at version {version} refused: {e}");
                Ok(())
            }
            Err(e) => {
                self.model.pending = events;
                Err(self.failed("an append", &e, true))
            }
        }
    }

    fn append_multi(&mut self, parts: &[(u8, u8)]) -> Result<(), Stop> {
        let mut overlay: Vec<(String, u64)> = Vec::new();
        let mut batches = Vec::new();
        let mut all = Vec::new();
        for &(stream, n) in parts {
            let stream = format!("s{}", stream % STREAMS);
            let version = overlay
                .iter()
                .rev()
                .find(|(s, _)| *s == stream)
                .map_or_else(|| self.model.version(&stream), |(_, v)| *v);
            let events = self.events(&stream, n % 3, n.rotate_left(3).into());
            overlay.push((stream.clone(), version + events.len() as u64));
            let new: Vec<NewEvent> =
                events.iter().map(|e| NewEvent::new(&e.ev).expect("events encode")).collect();
            let expect = if n & 0x80 != 0 { Expect::Any } else { Expect::Exact(version) };
            batches.push((stream, expect, new));
            all.extend(events);
        }
        let batches: Vec<(&str, Expect, Vec<NewEvent>)> =
            batches.iter().map(|(s, e, v)| (s.as_str(), *e, v.clone())).collect();
        match self.journal().append_multi(&batches) {
            Ok(appended) => {
                let first = self.model.events.len() as u64 + 1;
                let count = all.len() as u64;
                let got = (appended.first().map(|a| a.first), appended.last().map(|a| a.last));
                assert_eq!(got, (Some(first), Some(first + count - 1)), "gapless: {appended:?}");
                let durable = self.sync_mode();
                self.model.ack(all, durable);
                Ok(())
            }
            Err(e) => {
                self.model.pending = all;
                Err(self.failed("a multi-stream append", &e, true))
            }
        }
    }

    fn sync(&mut self) -> Result<(), Stop> {
        match self.journal().sync() {
            Ok(()) => {
                self.model.synced();
                Ok(())
            }
            Err(e) => Err(self.failed("a sync", &e, true)),
        }
    }

    fn compact(&mut self) -> Result<(), Stop> {
        match self.journal().compact() {
            Ok(report) => {
                assert_eq!(
                    report.seq,
                    self.model.events.len() as u64,
                    "a compaction stands at the last acknowledged event"
                );
                Ok(())
            }
            Err(e) => Err(self.failed("a compaction", &e, false)),
        }
    }

    /// A clean reopen: sync, close, open, check against the model.
    fn reopen(&mut self) -> Result<(), Stop> {
        if let Err(e) = self.journal().sync() {
            return Err(self.failed("the sync before a reopen", &e, true));
        }
        self.model.synced();
        drop(self.journal.take());
        let reopened = match self.open() {
            Ok(j) => j,
            Err(e) => return Err(self.failed("a clean reopen", &e, false)),
        };
        let checked =
            check_journal(&reopened, &self.sim, Path::new(DIR), &mut self.model, &mut self.rng, 1);
        self.journal = Some(reopened);
        match checked {
            Ok(_) => Ok(()),
            Err(_) if halted(&self.sim) => Err(Stop::Halted),
            Err(v) => panic!("after a clean reopen: {v}"),
        }
    }

    fn state(&mut self) -> Result<(), Stop> {
        let expected = model_fold(&self.model.events);
        match self.journal().state::<Tally>() {
            Ok(state) => {
                assert!(state == expected, "the live state differs from the model's fold");
                Ok(())
            }
            Err(e) => Err(self.failed("reading the live state", &e, false)),
        }
    }

    fn replay(&mut self, at: u16) -> Result<(), Stop> {
        let journal = self.journal();
        let last = journal.last_seq();
        let lo = if journal.log().first_seq() <= 1 {
            0
        } else {
            match Manifest::read(&self.sim, Path::new(DIR)) {
                Ok(m) => m.map_or(1, |m| m.log_start.max(1)) - 1,
                Err(_) if halted(&self.sim) => return Err(Stop::Halted),
                Err(e) => panic!("MANIFEST unreadable: {e}"),
            }
        };
        let target = lo + u64::from(at) * last.saturating_sub(lo) / u64::from(u16::MAX);
        // In `Manual` mode a replay first writes out buffered frames: a fault can fire here.
        if let Err(e) = journal.replay::<Tally>(annal::Until::Seq(target)) {
            return Err(self.failed("a time-travel replay", &e, true));
        }
        let all: Vec<&ModelEvent> = self.model.events.iter().collect();
        match time_travel(self.journal(), &all, target) {
            Ok(()) => Ok(()),
            Err(_) if halted(&self.sim) => Err(Stop::Halted),
            Err(v) => panic!("{v}"),
        }
    }

    fn simple(&mut self, op: Simple) -> Result<(), Stop> {
        match op {
            Simple::Append { stream, n, pad } => self.append(stream, n, ExpectSel::Any, pad),
            Simple::Sync => self.sync(),
            Simple::Compact => self.compact(),
            Simple::Reopen => self.reopen(),
        }
    }

    /// After an injected fault hit the log: appends and syncs are refused until a reopen (G6).
    fn check_poisoned(&mut self) {
        let Some(journal) = self.journal.as_ref() else { return };
        let ev = Ev::make(self.next_id, 1);
        self.next_id += 1;
        assert!(
            journal.append("g6", Expect::Any, [ev]).is_err(),
            "G6: an append was acknowledged after a failed write or fsync, before any reopen"
        );
        assert!(
            journal.sync().is_err(),
            "G6: a sync succeeded after a failed write or fsync, before any reopen"
        );
    }

    /// Lists the store's files (length, first bytes) on stderr.
    fn trace_files(&self, when: &str) {
        use annal_storage::Storage;
        eprintln!("trace: files {when}:");
        let mut dirs = vec![std::path::PathBuf::from(DIR)];
        while let Some(dir) = dirs.pop() {
            for name in self.sim.list_dir(&dir).unwrap_or_default() {
                let path = dir.join(&name);
                match self.sim.file_bytes(&path) {
                    Ok(b) => {
                        let head: Vec<u8> = b.iter().take(8).copied().collect();
                        let nonzero = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
                        let durable = self.sim.durable_file_bytes(&path).unwrap_or_default();
                        eprintln!(
                            "trace:   {} {} bytes (non-zero up to {nonzero}) {:?}, durable {} bytes {:?}",
                            path.display(),
                            b.len(),
                            String::from_utf8_lossy(&head),
                            durable.len(),
                            String::from_utf8_lossy(&durable[..durable.len().min(8)]),
                        );
                    }
                    Err(_) => dirs.push(path),
                }
            }
        }
    }

    /// Opens the store and checks it against the model (twice, idempotence included).
    fn recover(&mut self) {
        let sim = self.sim.clone();
        let (durability, keep, preallocate) = (self.durability, self.keep, self.preallocate);
        let open = move || {
            Journal::options()
                .storage(Arc::new(sim.clone()))
                .segment_bytes(SEGMENT_BYTES)
                .keep_snapshots(keep)
                .durability(durability)
                .preallocate(preallocate)
                .projection::<Tally>()
                .open(DIR)
        };
        let storage: std::sync::Arc<dyn annal_storage::Storage> =
            std::sync::Arc::new(self.sim.clone());
        match recover_and_check(&open, &storage, Path::new(DIR), &mut self.model, &mut self.rng, 1)
        {
            Ok((journal, _)) => self.journal = Some(journal),
            Err(v) => panic!("after recovery: {v}"),
        }
    }

    /// Cuts the power with the journal still open (nothing synced on the way down) and recovers.
    fn crash(&mut self, mode: CrashMode) {
        self.sim.crash(mode);
        drop(self.journal.take());
        if self.trace {
            self.trace_files(&format!("after a {mode:?} crash"));
        }
        self.injected_since_crash = 0;
        self.halt_armed = false;
        self.recover();
    }

    /// Handles an operation that stopped: crash (or, after a lone fault, reopen in the same
    /// boot) and recover.
    fn stopped(&mut self, stop: Stop, mode: CrashMode) {
        if self.trace {
            let what = match stop {
                Stop::Halted => "halted".to_owned(),
                Stop::Fault { log_io } => format!("fault (log I/O {log_io})"),
            };
            eprintln!("trace: stopped: {what}");
        }
        match stop {
            Stop::Halted => self.crash(mode),
            Stop::Fault { log_io } => {
                if log_io {
                    self.check_poisoned();
                }
                if self.same_boot && self.injected_since_crash == 1 && !self.halt_armed {
                    // The one armed fault has fired: nothing else can fail the reopen.
                    drop(self.journal.take());
                    self.injected_since_crash = 0;
                    self.recover();
                } else {
                    self.crash(CrashMode::DropUnsynced);
                }
            }
        }
    }

    fn step(&mut self, op: Op) {
        if self.trace {
            eprintln!(
                "trace: {op:?} at op {} with {} events ({} durable)",
                self.sim.op_count(),
                self.model.events.len(),
                self.model.durable
            );
            // Listing a directory meets an armed halt like any operation: only when none is.
            if !self.halt_armed {
                self.trace_files("before it");
            }
        }
        let result = match op {
            Op::Append { stream, n, expect, pad } => self.append(stream, n, expect, pad),
            Op::AppendMulti { parts, three } => {
                self.append_multi(&parts[..if three { 3 } else { 2 }])
            }
            Op::Sync => self.sync(),
            Op::Compact => self.compact(),
            Op::Reopen => self.reopen(),
            Op::Crash(mode) => {
                self.crash(mode.into());
                Ok(())
            }
            Op::Halt { after, then, mode } => {
                self.sim.halt_after(u64::from(after % 32));
                self.halt_armed = true;
                match self.simple(then) {
                    Err(stop) => {
                        self.stopped(stop, mode.into());
                        return;
                    }
                    Ok(()) => Ok(()),
                }
            }
            Op::Inject { write, enospc, nth, same_boot } => {
                let op = if write { FaultOp::Write } else { FaultOp::Sync };
                let kind = if enospc { FaultKind::Enospc } else { FaultKind::Eio };
                self.sim.inject(Fault { op, nth: u64::from(1 + nth % 16), kind });
                self.injected_since_crash += 1;
                self.same_boot = same_boot;
                Ok(())
            }
            Op::State => self.state(),
            Op::Replay(at) => self.replay(at),
        };
        if let Err(stop) = result {
            self.stopped(stop, CrashMode::Random);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let sim = SimStorage::new(input.seed);
    let mut run = Run {
        sim,
        durability: if input.manual { Durability::Manual } else { Durability::Sync },
        keep: usize::from(1 + input.keep % 3),
        preallocate: input.preallocate,
        model: Model::new(),
        rng: Rng::new(input.seed),
        journal: None,
        next_id: 1,
        injected_since_crash: 0,
        halt_armed: false,
        same_boot: false,
        trace: std::env::var_os("ANNAL_FUZZ_TRACE").is_some(),
    };
    run.recover();
    for op in input.ops.into_iter().take(OPS_MAX) {
        run.step(op);
    }
    run.crash(CrashMode::DropUnsynced);
});
