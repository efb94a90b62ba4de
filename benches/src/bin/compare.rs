//! Runs the same workloads on annal and its peers in one run (see
//! [`annal_benches::compare`]): durable appends by one writer and by many, a bulk load with
//! one sync, and a full replay; on annal (the `Journal` facade, and the raw `annal_wal::Log`),
//! SQLite, fjall, okaywal and the raw file-system baselines, every engine storing the same
//! payload bytes. Prints a markdown table per workload (events/s, latency percentiles of the
//! durable ones, ratios to annal) and the performance targets with met or missed, and writes
//! the same figures as JSON.
//!
//! Exits 0 if every target that could be judged is met, 1 if one is missed, 2 on an error
//! (including a store that does not read back what was written to it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use annal_benches::compare::report::{
    report, settings_list, targets_table, workload_table, write_json,
};
use annal_benches::compare::{Config, QUICK_DIVISOR, Workload, run_workload};
use annal_benches::engines::{Engine, Payloads};
use annal_benches::scratch_root;

const USAGE: &str = "usage: compare [--quick] [--rounds N] [--warmup N] [--only W[,W..]]
               [--engines E[,E..]] [--writers N] [--payload BYTES] [--json PATH]
               [--appends N] [--per-writer N] [--bulk N] [--replay N]

Runs the workloads on every engine, N rounds each (default 3) after warm-up rounds that are
not counted (default 1), each round in the reverse engine order of the one before; prints a
markdown table per workload and the targets; writes the figures as JSON.

  --quick          divide every count by 10 (before the count options below)
  --only           workloads: sync1, writers, bulk, replay (default: all)
  --engines        engines: annal, annal-wal, sqlite, fjall, okaywal, raw (default: all)
  --writers N      writer threads of the writers workload (default 16)
  --payload BYTES  bytes of every event's payload (default 100)
  --json PATH      where to write the JSON (default target/compare.json)
  --appends N      appends of the one-writer workload (default 2,000)
  --per-writer N   appends of each writer of the writers workload (default 250)
  --bulk N         appends of the bulk workload (default 1,000,000)
  --replay N       events of the replay workload (default 1,000,000)

Exits 0 if every target is met, 1 if one is missed, 2 on an error. Scratch files go under
$ANNAL_BENCH_DIR (default: the system temp directory).";

/// The JSON's path without `--json`.
const JSON_PATH_DEFAULT: &str = "target/compare.json";

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} takes a number"))?;
    value
        .replace(['_', ','], "")
        .parse()
        .map_err(|_| format!("{flag} takes a number, not {value:?}"))
}

fn list<T>(
    flag: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let value = value.ok_or_else(|| format!("{flag} takes a list"))?;
    value
        .split(',')
        .map(|name| parse(name.trim()).ok_or_else(|| format!("{flag}: unknown name {name:?}")))
        .collect()
}

fn parse_args() -> Result<Option<(Config, PathBuf)>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::new(args.iter().any(|a| a == "--quick"));
    let mut json = PathBuf::from(JSON_PATH_DEFAULT);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {}
            "--rounds" => config.rounds = number(&arg, args.next())?,
            "--warmup" => config.warmup = number(&arg, args.next())?,
            "--writers" => config.writers = number(&arg, args.next())?,
            "--payload" => config.payload_bytes = number(&arg, args.next())?,
            "--appends" => config.appends = number(&arg, args.next())?,
            "--per-writer" => config.per_writer = number(&arg, args.next())?,
            "--bulk" => config.bulk = number(&arg, args.next())?,
            "--replay" => config.replay = number(&arg, args.next())?,
            "--only" => config.workloads = list(&arg, args.next(), Workload::parse)?,
            "--engines" => config.engines = list(&arg, args.next(), Engine::parse)?,
            "--json" => json = args.next().map(PathBuf::from).ok_or("--json takes a path")?,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(Some((config, json)))
}

fn main() -> ExitCode {
    let (config, json) = match parse_args() {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("compare: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let payloads = match Payloads::new(config.payload_bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "annal comparison: {} counted rounds after {} warm-up, {} B payloads{}, engines {}, \
         scratch under {}",
        config.rounds,
        config.warmup,
        config.payload_bytes,
        if config.quick { format!(", --quick (counts / {QUICK_DIVISOR})") } else { String::new() },
        config.engines.iter().map(|e| e.name()).collect::<Vec<_>>().join(", "),
        scratch_root().display()
    );
    println!();
    let started = Instant::now();
    let mut results = Vec::new();
    for &w in &config.workloads {
        match run_workload(&config, w, &payloads, &mut |line| eprintln!("{line}")) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("compare: {}: {e}", w.name());
                return ExitCode::from(2);
            }
        }
    }
    let report = report(&config, &results);
    for w in &report.workloads {
        println!("{}", workload_table(w));
    }
    println!("### targets\n\n{}", targets_table(&report.targets));
    println!("### settings\n\n{}", settings_list(&report));
    if let Err(e) = write_json(&report, &json) {
        eprintln!("compare: {e}");
        return ExitCode::from(2);
    }
    println!("JSON written to {}; ran in {:.1} s", json.display(), started.elapsed().as_secs_f64());
    if report.targets.iter().any(|t| t.met == Some(false)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
