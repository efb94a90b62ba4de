//! `stateful`: a journal on the simulated file system driven by a fuzzer-chosen sequence of
//! operations (appends to streams with expected versions, multi-stream appends, syncs,
//! compactions, reopens, crashes in every `CrashMode`, `halt_after(k)` followed by an operation,
//! injected EIO / ENOSPC, `LOCK` removed or replaced while the writer runs, live-state and
//! time-travel checks), against a plain model of what the journal acknowledged.
//!
//! Every operation and what it must answer is the harness's own
//! (`annal_crashfuzz::workload::Workload`, which `annal-crashfuzz sim` drives too); this target
//! only decodes the operations from its input. A broken invariant panics:
//! - an append is acknowledged exactly when the model says its expectation holds, with the next
//!   gapless sequence numbers and the right stream versions; a refused one is a conflict;
//! - no operation fails except through the halt or an injected fault (no spurious errors);
//! - after an injected fault hit the log, appends and syncs are refused until a reopen (G6);
//! - a second writer is refused while the first runs, whatever happened to `LOCK` (G9);
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

use annal::{Durability, Expect};
use annal_crashfuzz::model::Ev;
use annal_crashfuzz::workload::{DIR, Setup, Stop, Workload};
use annal_storage::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Operations per input, at most.
const OPS_MAX: usize = 48;
/// Streams the operations append to.
const STREAMS: u8 = 4;

#[derive(Debug, Arbitrary)]
struct Input {
    manual: bool,
    preallocate: bool,
    archive: bool,
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
    /// `LOCK` removed (and with `replace` a new file put there) while the writer runs; a
    /// second writer must be refused.
    LockAttack {
        replace: bool,
    },
    /// A reader that follows the journal from then on (read path `kind`, start `at`), drained
    /// and checked after every operation until a crash or recovery ends it.
    Follow {
        kind: u8,
        at: u32,
    },
}

struct Run {
    w: Workload,
    /// Faults injected since the last crash (a crash clears them).
    injected_since_crash: u32,
    /// Whether a halt was armed since the last crash.
    halt_armed: bool,
    /// Whether the last injected fault asks for a same-boot reopen rather than a crash.
    same_boot: bool,
    /// Narrate the run on stderr (`ANNAL_FUZZ_TRACE` set), to read what a crashing input does.
    trace: bool,
}

/// The result of an operation; a broken invariant panics.
fn checked(result: Result<(), Stop>) -> Result<(), Stop> {
    match result {
        Err(Stop::Broken(v)) => panic!("{v}"),
        other => other,
    }
}

impl Run {
    fn events(&mut self, n: u8, pad: u16) -> Vec<Ev> {
        (0..1 + n % 8)
            .map(|i| self.w.event(usize::from(pad.rotate_left(u32::from(i))) % 700))
            .collect()
    }

    fn append(&mut self, stream: u8, n: u8, expect: ExpectSel, pad: u16) -> Result<(), Stop> {
        let stream = format!("s{}", stream % STREAMS);
        let version = self.w.model.version(&stream);
        let expect = match expect {
            ExpectSel::Any => Expect::Any,
            ExpectSel::NoStream => Expect::NoStream,
            ExpectSel::Exists => Expect::Exists,
            ExpectSel::Current => Expect::Exact(version),
            ExpectSel::Off(d) => Expect::Exact(version.saturating_add_signed(i64::from(d))),
        };
        let events = self.events(n, pad);
        checked(self.w.append(vec![(stream, expect, events)]))
    }

    fn append_multi(&mut self, parts: &[(u8, u8)]) -> Result<(), Stop> {
        let mut overlay: Vec<(String, u64)> = Vec::new();
        let mut batches = Vec::new();
        for &(stream, n) in parts {
            let stream = format!("s{}", stream % STREAMS);
            let version = overlay
                .iter()
                .rev()
                .find(|(s, _)| *s == stream)
                .map_or_else(|| self.w.model.version(&stream), |(_, v)| *v);
            let events = self.events(n % 3, n.rotate_left(3).into());
            overlay.push((stream.clone(), version + events.len() as u64));
            let expect = if n & 0x80 != 0 { Expect::Any } else { Expect::Exact(version) };
            batches.push((stream, expect, events));
        }
        checked(self.w.append(batches))
    }

    fn replay(&mut self, at: u16) -> Result<(), Stop> {
        let (lo, last) = match self.w.replay_range() {
            Err(Stop::Broken(v)) => panic!("{v}"),
            range => range?,
        };
        let target = lo + u64::from(at) * last.saturating_sub(lo) / u64::from(u16::MAX);
        checked(self.w.replay(target))
    }

    fn simple(&mut self, op: Simple) -> Result<(), Stop> {
        match op {
            Simple::Append { stream, n, pad } => self.append(stream, n, ExpectSel::Any, pad),
            Simple::Sync => checked(self.w.sync()),
            Simple::Compact => checked(self.w.compact()),
            Simple::Reopen => checked(self.w.reopen()),
        }
    }

    /// Lists the store's files (length, first bytes) on stderr.
    fn trace_files(&self, when: &str) {
        use annal_storage::Storage;
        let sim = self.w.sim();
        eprintln!("trace: files {when}:");
        let mut dirs = vec![std::path::PathBuf::from(DIR)];
        while let Some(dir) = dirs.pop() {
            for name in sim.list_dir(&dir).unwrap_or_default() {
                let path = dir.join(&name);
                match sim.file_bytes(&path) {
                    Ok(b) => {
                        let head: Vec<u8> = b.iter().take(8).copied().collect();
                        let nonzero = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
                        let durable = sim.durable_file_bytes(&path).unwrap_or_default();
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

    /// Opens the store and checks it against the model.
    fn recover(&mut self) {
        if let Err(v) = self.w.recover(1) {
            panic!("after recovery: {v}");
        }
    }

    /// Cuts the power with the journal still open (nothing synced on the way down) and recovers.
    fn crash(&mut self, mode: CrashMode) {
        self.w.crash(mode);
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
            eprintln!("trace: stopped: {stop:?}");
        }
        match stop {
            Stop::Broken(v) => panic!("{v}"),
            Stop::Halted => self.crash(mode),
            Stop::Fault { log_io } => {
                if log_io && let Err(v) = self.w.check_poisoned() {
                    panic!("{v}");
                }
                if self.same_boot && self.injected_since_crash == 1 && !self.halt_armed {
                    // The one armed fault has fired: nothing else can fail the reopen.
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
                self.w.sim().op_count(),
                self.w.model.events.len(),
                self.w.model.durable
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
            Op::Sync => checked(self.w.sync()),
            Op::Compact => checked(self.w.compact()),
            Op::Reopen => checked(self.w.reopen()),
            Op::Crash(mode) => {
                self.crash(mode.into());
                Ok(())
            }
            Op::Halt { after, then, mode } => {
                self.w.sim().halt_after(u64::from(after % 32));
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
                self.w.sim().inject(Fault { op, nth: u64::from(1 + nth % 16), kind });
                self.injected_since_crash += 1;
                self.same_boot = same_boot;
                Ok(())
            }
            Op::State => checked(self.w.state()),
            Op::Replay(at) => self.replay(at),
            Op::LockAttack { replace } => checked(self.w.lock_attack(replace)),
            Op::Follow { kind, at } => checked(self.w.follow(u64::from(kind), u64::from(at))),
        };
        let result = result.and_then(|()| checked(self.w.drain_followers()));
        if let Err(stop) = result {
            self.stopped(stop, CrashMode::Random);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let setup = Setup {
        sim: SimStorage::new(input.seed),
        durability: if input.manual { Durability::Manual } else { Durability::Sync },
        keep: usize::from(1 + input.keep % 3),
        preallocate: input.preallocate,
        archive: input.archive,
        checkpoints: input.seed % 5 < 2,
    };
    let mut run = Run {
        w: Workload::new(setup, input.seed),
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
