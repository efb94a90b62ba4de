//! annal-crashfuzz: the crash-fuzzing harness of annal.
//!
//! It proves the journal's crash guarantees (DESIGN.md section 1) by breaking the machine under
//! it and comparing what comes back with a reference [`model::Model`]:
//! - [`sim`]: seeded workloads (single, batch and multi-stream appends, expected versions,
//!   syncs, segment rolls, compactions with retention, reopens, time travel) on the simulated
//!   file system, crashed at random points with random crash modes or failed by an injected
//!   EIO/ENOSPC, recovered, checked, continued and crashed again;
//! - [`enumerate`]: small workloads crashed after every prefix of their I/O operations, in
//!   every crash mode (ALICE-style);
//! - [`kill`]: real child processes appending with `Durability::Sync`, killed with SIGKILL;
//! - [`damage`]: every kind of damage against every read path, and `recover` on each damaged
//!   store (as it is, stopped by a crash, failed by EIO or ENOSPC).
//!
//! [`workload`] is the one workload `sim` and the `stateful` fuzz target drive.
//!
//! The invariants ([`check`]): acknowledged-durable events all present (G1), appends
//! all-or-nothing (G2), a gapless, ordered, byte-identical prefix with no phantom event (G3),
//! live state = replay = time travel = the model's fold (G5), poisoning after an injected fault
//! (G6), one writer whatever happens to `LOCK` (G9), idempotent recovery, appendability, no
//! orphan files, and repairs that only improve a store (G12).
//!
//! What it does not cover: concurrent appenders (the workloads are single-threaded, to stay
//! deterministic), bit flips (G4, covered by the WAL's own tests), and real power loss.
//!
//! # Example
//! ```
//! let outcome = annal_crashfuzz::sim::run_sim(0..2, 30, annal_crashfuzz::sim::Modes::Sync, &mut |_| {});
//! assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
//! assert!(outcome.stats.crash_states > 0);
//! ```
#![deny(missing_docs)]

pub mod check;
pub mod damage;
pub mod enumerate;
pub mod follow;
pub mod kill;
pub mod model;
pub mod rng;
pub mod sim;
pub mod tree;
pub mod workload;
