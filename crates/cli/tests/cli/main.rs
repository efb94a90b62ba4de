//! Integration tests of the `annal` binary, run as a user runs it: as a child process, reading
//! its exit code, its JSON on stdout and its one-line errors on stderr. They guard against the
//! CLI drifting from its contract (docs/cli.md, DESIGN.md section 5): wrong output shapes, wrong
//! exit codes, time travel that disagrees with a replay model, non-atomic batches, writers that
//! ignore the lock, corruption that goes unreported, audit exports whose tampering goes unseen,
//! and panics on bad input.

mod append;
mod audit;
mod bad_store;
mod commands;
mod common;
mod corruption;
mod demo;
mod lock;
mod progress;
mod read_paths;
mod read_side;
mod readme;
mod repair;
mod time_travel;
mod tlog;
mod torn_tail;
