//! The `annal-crashfuzz` binary: command-line parsing and reporting over the library.

use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

/// Crash-fuzzing harness of annal: breaks the machine under the journal and checks what comes
/// back against a reference model.
#[derive(Debug, Parser)]
#[command(name = "annal-crashfuzz", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Seeded workloads on the simulated file system, crashed and recovered again and again.
    Sim {
        /// Seeds to run, as A..B (B excluded).
        #[arg(long, default_value = "0..100", value_parser = parse_range)]
        seeds: Range<u64>,
        /// Workload steps per seed.
        #[arg(long, default_value_t = 200)]
        ops: usize,
        /// Durability modes of the seeds: mixed (the seed decides), sync or manual.
        #[arg(long, value_enum, default_value_t = ModesArg::Mixed)]
        durability: ModesArg,
        /// Instead of seeds: crash small workloads after every prefix of their I/O operations.
        #[arg(long)]
        enumerate: bool,
        /// Print the summary as JSON on stdout as well.
        #[arg(long)]
        json: bool,
    },
    /// Child processes appending with Durability::Sync, killed with SIGKILL.
    Kill {
        /// Children to kill.
        #[arg(long, default_value_t = 50)]
        iterations: u64,
        /// Seed of the kill timings and workloads.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the summary as JSON on stdout as well.
        #[arg(long)]
        json: bool,
    },
    /// Every kind of damage (bit flips in the active, sealed and archived segments, a segment
    /// header, a snapshot and the MANIFEST; a missing segment, MANIFEST or snapshot, an empty
    /// wal/, a damaged leftover below the log start) against every read path, then `recover` on
    /// each damaged store: as it is, stopped by a crash, and failed by EIO or ENOSPC.
    Damage {
        /// Seeds to run, as A..B (B excluded): one store each, damaged in every way.
        #[arg(long, default_value = "0..20", value_parser = parse_range)]
        seeds: Range<u64>,
        /// Print the summary as JSON on stdout as well.
        #[arg(long)]
        json: bool,
    },
    /// The child side of `kill` (internal).
    #[command(hide = true)]
    KillChild {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        archive: bool,
    },
    /// The follower side of `kill` (internal).
    #[command(hide = true)]
    KillFollower {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ModesArg {
    Mixed,
    Sync,
    Manual,
}

impl From<ModesArg> for annal_crashfuzz::sim::Modes {
    fn from(m: ModesArg) -> Self {
        match m {
            ModesArg::Mixed => Self::Mixed,
            ModesArg::Sync => Self::Sync,
            ModesArg::Manual => Self::Manual,
        }
    }
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if b < a {
        return Err(format!("empty range {s:?}"));
    }
    Ok(a..b)
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the command; `Ok(false)` when an invariant broke.
fn run() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    let started = Instant::now();
    match cli.command {
        Cmd::Sim { enumerate: true, json, .. } => {
            let (stats, failures) = annal_crashfuzz::enumerate::run_enumeration(&mut |f| {
                eprintln!(
                    "VIOLATION {}: workload {}, crash after I/O op {}, {}: {}",
                    f.invariant, f.workload, f.k, f.mode, f.detail
                );
            });
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "sim --enumerate: {} workloads, {} I/O ops, {} crash states, {} writes and syncs failed by EIO/ENOSPC, {} violations, {secs:.1}s",
                stats.workloads,
                thousands(stats.io_ops),
                thousands(stats.crash_states),
                thousands(stats.fault_states),
                failures.len()
            );
            if json {
                let out =
                    serde_json::json!({"stats": stats, "failures": failures, "seconds": secs});
                println!("{out}");
            }
            Ok(failures.is_empty())
        }
        Cmd::Sim { seeds, ops, json, durability, .. } => {
            let modes = annal_crashfuzz::sim::Modes::from(durability);
            let flag = match durability {
                ModesArg::Mixed => String::new(),
                ModesArg::Sync => " --durability sync".into(),
                ModesArg::Manual => " --durability manual".into(),
            };
            let mut printed = 0;
            let outcome = annal_crashfuzz::sim::run_sim(seeds.clone(), ops, modes, &mut |f| {
                printed += 1;
                if printed <= 20 {
                    eprintln!(
                        "VIOLATION seed {} (cycle {}): {}: {}\n  replay: {}{flag}",
                        f.seed,
                        f.cycle,
                        f.invariant,
                        f.detail,
                        f.replay_command()
                    );
                }
            });
            let secs = started.elapsed().as_secs_f64();
            let s = &outcome.stats;
            eprintln!(
                "sim: {} seeds, {} crash states ({} during recovery), {} faults ({} during recovery), {} LOCK removals, {} events, {} compactions, {} replays, {} checkpoints proven consistent after recovery, {} raw Log opens refused, {} journal-written checkpoints checked, {} followers ({} events checked, {} overtaken by a compaction), {} violations, {secs:.1}s",
                thousands(s.seeds),
                thousands(s.crash_states),
                thousands(s.recovery_crashes),
                thousands(s.faults_fired),
                thousands(s.recovery_faults),
                thousands(s.lock_attacks),
                thousands(s.events_acked),
                thousands(s.compactions),
                thousands(s.replays),
                thousands(s.tree_checks),
                thousands(s.kind_refusals),
                thousands(s.written_checkpoints),
                thousands(s.followers),
                thousands(s.follower_events),
                thousands(s.followers_overtaken),
                outcome.failures.len()
            );
            if json {
                let out = serde_json::json!({
                    "seeds": [seeds.start, seeds.end],
                    "ops": ops,
                    "stats": outcome.stats,
                    "failures": outcome.failures,
                    "seconds": secs,
                });
                println!("{out}");
            }
            Ok(outcome.failures.is_empty())
        }
        Cmd::Kill { iterations, seed, json } => {
            let exe = std::env::current_exe().context("locating the harness binary")?;
            let (stats, failures) =
                annal_crashfuzz::kill::run_kills(&exe, iterations, seed, &mut |f| {
                    eprintln!(
                        "VIOLATION kill {} (seed {}): {}: {}\n  replay: annal-crashfuzz kill --iterations {} --seed {}",
                        f.iteration,
                        f.seed,
                        f.invariant,
                        f.detail,
                        f.iteration + 1,
                        f.seed
                    );
                })
                .context("running child processes")?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "kill: {} kills ({} during open, {} during compaction, {} exited early), {} events acknowledged, {} unacknowledged survivors, {} follower processes ({} events checked), {} violations, {secs:.1}s",
                stats.kills,
                stats.during_open,
                stats.during_compaction,
                stats.exited_early,
                thousands(stats.events_acked),
                stats.unacked_survivors,
                stats.followers,
                thousands(stats.follower_events),
                failures.len()
            );
            if json {
                let out =
                    serde_json::json!({"stats": stats, "failures": failures, "seconds": secs});
                println!("{out}");
            }
            Ok(failures.is_empty())
        }
        Cmd::Damage { seeds, json } => {
            let mut printed = 0;
            let (stats, failures) = annal_crashfuzz::damage::run_damage(seeds.clone(), &mut |f| {
                printed += 1;
                if printed <= 20 {
                    eprintln!(
                        "VIOLATION seed {} ({}): {}: {}\n  replay: annal-crashfuzz damage --seeds {}..{}",
                        f.seed,
                        f.kind,
                        f.path,
                        f.detail,
                        f.seed,
                        f.seed + 1
                    );
                }
            });
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "damage: {} damaged stores, {} cells ({} reported the damage, {} returned the intact answer); recover: {} repaired and checked, {} refused with nothing changed, {} stopped by a crash and {} failed by EIO/ENOSPC then run again; {} violations, {secs:.1}s",
                thousands(stats.stores),
                thousands(stats.cells),
                thousands(stats.reported),
                thousands(stats.intact),
                thousands(stats.repaired),
                thousands(stats.refused),
                thousands(stats.repairs_interrupted),
                thousands(stats.repairs_failed),
                failures.len()
            );
            if json {
                let out = serde_json::json!({"seeds": [seeds.start, seeds.end], "stats": stats, "failures": failures, "seconds": secs});
                println!("{out}");
            }
            Ok(failures.is_empty())
        }
        Cmd::KillChild { dir, seed, archive } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match annal_crashfuzz::kill::child(&dir, seed, archive, &mut out) {
                Ok(()) => Ok(true),
                Err(e) => bail!("kill-child: {e}"),
            }
        }
        Cmd::KillFollower { dir } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match annal_crashfuzz::kill::follower(&dir, &mut out) {
                Ok(()) => Ok(true),
                Err(e) => bail!("kill-follower: {e}"),
            }
        }
    }
}
