//! `annal`: the command-line tool over annal journals.
//!
//! Output to stdout is JSON (one object, or JSON Lines for streams of events); messages and
//! progress go to stderr. Exit codes: 0 success, 1 other failure, 2 usage error, 3 integrity
//! failure, 4 conflict (lock held, expected-version mismatch).

mod audit;
mod demo;
mod out;
mod progress;
mod read_cmds;
mod tlog_cmds;
mod write_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::progress::{Bar, Output};

/// An exit code and a message, for failures that are not errors of the library.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Exit code for integrity failures (corruption, failed verification, broken audit chain).
pub const EXIT_INTEGRITY: u8 = 3;
/// Exit code for conflicts (lock held, expected-version mismatch).
pub const EXIT_CONFLICT: u8 = 4;

/// Fails with an integrity exit code.
pub fn integrity(message: impl Into<String>) -> anyhow::Error {
    Exit { code: EXIT_INTEGRITY, message: message.into() }.into()
}

#[derive(Debug, Parser)]
#[command(
    name = "annal",
    version,
    about = "Append, read, time-travel, compact, export and verify annal journals."
)]
#[command(
    after_help = "Exit codes:\n  0  success\n  1  failure (I/O, bad input data, a store that cannot be opened)\n  2  usage error (unknown command or flag, a bad flag value)\n  3  integrity failure (corruption, a failed verification or proof, a broken audit trail)\n  4  conflict (the writer lock is held, an expected version does not match)\n\nRun `annal demo` for a tour; `annal <command> --help` shows examples; `annal man --out DIR`\nwrites the man pages."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log what the libraries do on stderr: -v recoveries, cuts, quarantine moves, compactions
    /// and lock waits; -vv and -vvv more detail. RUST_LOG (for example `annal_wal=debug`)
    /// overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bars, warnings or log lines: only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProjectionName {
    /// Per stream: version, last type, update time, JSON Merge Patch fold of the data.
    Entities,
    /// Totals by type and by stream.
    Counts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RepairMode {
    /// Cut the log at the first bad frame; move the cut bytes and later segments to quarantine/.
    TruncateAtCorruption,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an empty journal.
    #[command(after_help = "Example:\n  annal init ./store")]
    Init {
        /// The directory to create the journal in.
        dir: PathBuf,
    },
    /// Append one event (from flags) or a batch (from JSON Lines), atomically.
    #[command(
        after_help = "Examples:\n  annal append ./store --stream task-1 --type task-created \\\n      --data '{\"title\":\"docs\"}' --actor ada --expect none\n  annal append ./store --jsonl events.jsonl\n  cat events.jsonl | annal append ./store --jsonl -\n\nEach JSON line:\n  {\"stream\":..,\"type\":..,\"data\":..,\"meta\":{\"actor\":..},\n   \"expect\":\"any\"|\"none\"|\"exists\"|N}\nAll lines form one atomic batch of at most 100,000 events: a bad line fails it, naming\nthe line, and nothing is appended."
    )]
    Append {
        /// The journal's directory.
        dir: PathBuf,
        /// The stream to append to.
        #[arg(
            long,
            value_name = "STREAM",
            required_unless_present = "jsonl",
            conflicts_with = "jsonl"
        )]
        stream: Option<String>,
        /// The event type.
        #[arg(
            long = "type",
            value_name = "TYPE",
            required_unless_present = "jsonl",
            conflicts_with = "jsonl"
        )]
        event_type: Option<String>,
        /// The event data, a JSON value (default `{}`).
        #[arg(long, value_name = "JSON", conflicts_with = "jsonl")]
        data: Option<String>,
        /// Who caused the event.
        #[arg(long, value_name = "NAME", conflicts_with = "jsonl")]
        actor: Option<String>,
        /// Expected stream version: any, none, exists, or a number.
        #[arg(long, value_name = "VERSION", default_value = "any", conflicts_with = "jsonl", value_parser = parse_expect)]
        expect: String,
        /// Read events from a JSON Lines file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        jsonl: Option<String>,
        /// Wait up to this many seconds for another writer's lock.
        #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
        wait: Option<f64>,
    },
    /// Print events as JSON Lines.
    #[command(
        after_help = "Examples:\n  annal read ./store --from 100 --limit 10\n  annal read ./store --stream task-1\n  annal read ./store --follow"
    )]
    Read {
        /// The journal's directory.
        dir: PathBuf,
        /// First sequence number (default: the earliest held, archive included); one below it
        /// is an error naming the earliest.
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Last sequence number (default: the last one).
        #[arg(long, value_name = "SEQ")]
        until: Option<u64>,
        /// Only the events of this stream.
        #[arg(long, value_name = "STREAM")]
        stream: Option<String>,
        /// At most this many events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
    },
    /// Print a projection's state after the events up to a sequence number or time.
    #[command(
        after_help = "Examples:\n  annal replay ./store --until 1500\n  annal replay ./store --at 2026-11-23T10:00:00Z --projection counts\n  annal replay ./store --until 200 --stream task-7"
    )]
    Replay {
        /// The journal's directory.
        dir: PathBuf,
        /// The last sequence number to fold.
        #[arg(long, value_name = "SEQ", conflicts_with = "at")]
        until: Option<u64>,
        /// Fold the events up to this RFC 3339 time.
        #[arg(long, value_name = "TIME", value_parser = parse_at)]
        at: Option<String>,
        /// The projection to fold.
        #[arg(long, value_enum, default_value = "entities")]
        projection: ProjectionName,
        /// Show only this stream's part of the state.
        #[arg(long, value_name = "STREAM")]
        stream: Option<String>,
    },
    /// Snapshot the projections and truncate the log behind them.
    #[command(
        after_help = "Examples:\n  annal compact ./store\n  annal compact ./store --keep-snapshots 1 --archive"
    )]
    Compact {
        /// The journal's directory.
        dir: PathBuf,
        /// Snapshots kept per projection (at least 1); the log reaches back to the oldest one.
        #[arg(long, value_name = "N", default_value_t = annal::KEEP_SNAPSHOTS_DEFAULT, value_parser = parse_keep)]
        keep_snapshots: usize,
        /// Move truncated segments to archive/ instead of deleting them.
        #[arg(long)]
        archive: bool,
        /// Wait up to this many seconds for another writer's lock.
        #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
        wait: Option<f64>,
    },
    /// List the snapshots in force.
    #[command(after_help = "Example:\n  annal snapshots ./store")]
    Snapshots {
        /// The journal's directory.
        dir: PathBuf,
    },
    /// Export an audit trail: every record with its hash-chain value.
    #[command(
        after_help = "Examples:\n  annal export ./store --out audit.jsonl\n  annal export ./store --from 100 --until 200 --format csv --out part.csv\n\nThe chain head is printed on stderr; keep it to detect a cut-off end with audit-verify --head."
    )]
    Export {
        /// The journal's directory.
        dir: PathBuf,
        /// First sequence number (default: the earliest held, archive included); one below it
        /// is an error naming the earliest.
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Last sequence number (default: the last one).
        #[arg(long, value_name = "SEQ")]
        until: Option<u64>,
        /// JSON Lines, or CSV with a header line.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check an exported audit trail on its own.
    #[command(
        name = "audit-verify",
        after_help = "Examples:\n  annal audit-verify audit.jsonl\n  annal export ./store --out audit.jsonl 2> export.txt\n  annal audit-verify audit.jsonl --head \"$(grep -Eo '[0-9a-f]{64}' export.txt)\"\n\nExit 3 names the first modified, inserted, deleted or reordered record."
    )]
    AuditVerify {
        /// The export to check (JSON Lines or CSV).
        file: PathBuf,
        /// The chain head printed by export (64 hex digits): detects a cut-off end.
        #[arg(long, value_name = "HEX", value_parser = parse_head)]
        head: Option<String>,
        /// A checkpoint from `annal checkpoint` the records must lead to (same size and root):
        /// detects a rewritten log, and a cut-off end.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The verifier key the checkpoint must be signed with.
        #[arg(long, value_name = "VERIFIERKEY", requires = "checkpoint")]
        key: Option<String>,
    },
    /// Check every checksum, the sequence, the hash chain, the MANIFEST and the snapshots.
    #[command(after_help = "Example:\n  annal verify ./store\n\nExit 3 lists the problems found.")]
    Verify {
        /// The journal's directory.
        dir: PathBuf,
        /// Wait up to this many seconds for another writer's lock.
        #[arg(long, conflicts_with = "read_only", value_name = "SECONDS", value_parser = parse_wait)]
        wait: Option<f64>,
        /// Check without taking the writer lock (a read-only copy, or beside a writer); does
        /// not replay projections against their snapshots.
        #[arg(long)]
        read_only: bool,
    },
    /// Describe a journal: segments, ranges, snapshots, chain head, lock holder.
    #[command(after_help = "Example:\n  annal info ./store")]
    Info {
        /// The journal's directory.
        dir: PathBuf,
    },
    /// Repair a damaged journal, moving what is cut to quarantine/.
    #[command(after_help = "Example:\n  annal recover ./store --mode truncate-at-corruption")]
    Recover {
        /// The journal's directory.
        dir: PathBuf,
        /// How to repair: truncate-at-corruption cuts the log at the first bad frame.
        #[arg(long, value_enum)]
        mode: RepairMode,
    },
    /// Print the intact events of a file in quarantine/ as JSON Lines for `append --jsonl`.
    #[command(
        after_help = "Example:\n  annal salvage ./store/quarantine/00000000000000000001.seg.at-64 > cut.jsonl\n  annal append ./store --jsonl cut.jsonl\n\nEach event's original sequence number and the gaps between them are listed on stderr."
    )]
    Salvage {
        /// A file in quarantine/ (or any segment file).
        file: PathBuf,
    },
    /// Run the main job end to end on a workflow of tasks.
    #[command(
        after_help = "Example:\n  annal demo            # in ./annal-demo\n  annal demo /tmp/demo"
    )]
    Demo {
        #[arg(default_value = "annal-demo")]
        /// The journal's directory.
        dir: PathBuf,
    },
    /// Create an Ed25519 signing key for checkpoints; prints its verifier key.
    #[command(
        after_help = "Example:\n  annal keygen --out log.key --name example.org/log\n\nThe key file is created 0600 and never overwritten; publish the verifier key it prints."
    )]
    Keygen {
        /// Where to write the signer key (created, mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's name (also the default origin of its checkpoints).
        #[arg(long, value_name = "NAME", default_value = "annal")]
        name: String,
    },
    /// Print a C2SP checkpoint of the journal's Merkle tree, signed when a key is given.
    #[command(
        after_help = "Examples:\n  annal checkpoint ./store\n  annal checkpoint ./store --key log.key > checkpoint.txt"
    )]
    Checkpoint {
        /// The journal's directory.
        dir: PathBuf,
        /// A signer key file from `annal keygen`: the checkpoint is printed as a signed note.
        #[arg(long, value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// The checkpoint's origin line (default: the key's name, or "annal").
        #[arg(long, value_name = "NAME")]
        origin: Option<String>,
    },
    /// Print an inclusion proof of one event, or a consistency proof between two tree sizes.
    #[command(
        after_help = "Examples:\n  annal prove ./store --seq 42 > proof.json\n  annal prove ./store --from-size 100 > consistency.json\n\nThe tree size defaults to every event now; --size picks an earlier tree.",
        group = clap::ArgGroup::new("proof").required(true).args(["seq", "from_size"])
    )]
    Prove {
        /// The journal's directory.
        dir: PathBuf,
        /// The event (sequence number) to prove included.
        #[arg(long, value_name = "SEQ")]
        seq: Option<u64>,
        /// The older tree's size, for a consistency proof.
        #[arg(long, value_name = "N")]
        from_size: Option<u64>,
        /// The tree's size (default: every event now).
        #[arg(long, value_name = "N")]
        size: Option<u64>,
    },
    /// Check a proof from `annal prove` against checkpoints, offline.
    #[command(
        name = "verify-proof",
        after_help = "Examples:\n  annal verify-proof proof.json --checkpoint checkpoint.txt \\\n      --key \"$(cat log.pub)\"\n  annal verify-proof consistency.json \\\n      --checkpoint old.txt --checkpoint new.txt --key KEY\n\nExit 3 names what does not match. Without --key the checkpoints' signatures are not checked (the output says so)."
    )]
    VerifyProof {
        /// A proof from `annal prove` (JSON).
        proof: PathBuf,
        /// A checkpoint file (a signed note, or its text); twice for both trees of a
        /// consistency proof.
        #[arg(long, value_name = "FILE", required = true)]
        checkpoint: Vec<PathBuf>,
        /// The verifier key the checkpoints must be signed with (NAME+HASH+KEY).
        #[arg(long, value_name = "VERIFIERKEY")]
        key: Option<String>,
    },
    /// Print shell completions.
    #[command(after_help = "Example:\n  annal completions bash > /etc/bash_completion.d/annal")]
    Completions {
        /// The shell to write completions for.
        shell: clap_complete::Shell,
    },
    /// Write the man pages: annal(1) and one per command.
    #[command(
        after_help = "Examples:\n  annal man --out /usr/local/share/man/man1\n  annal man | man -l -"
    )]
    Man {
        /// Write annal.1 and annal-COMMAND.1 into this directory (created if missing) instead
        /// of printing annal.1 on stdout.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// `--from` after `--until`: a usage error (exit 2), not an empty answer.
fn check_range(from: Option<u64>, until: Option<u64>) -> anyhow::Result<()> {
    match (from, until) {
        (Some(from), Some(until)) if from > until => Err(Exit {
            code: 2,
            message: format!(
                "--from {from} is after --until {until}: no event is in that range; For more \
                 information, try '--help'."
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Read { from, until, .. } | Command::Export { from, until, .. } => {
            check_range(*from, *until)?;
        }
        _ => {}
    }
    match cli.command {
        Command::Init { dir } => write_cmds::init(&dir),
        Command::Append { dir, stream, event_type, data, actor, expect, jsonl, wait } => {
            match jsonl {
                Some(source) => write_cmds::append_jsonl(&dir, &source, wait),
                None => write_cmds::append_one(
                    &dir,
                    &stream.unwrap_or_default(),
                    &event_type.unwrap_or_default(),
                    data.as_deref(),
                    actor,
                    &expect,
                    wait,
                ),
            }
        }
        Command::Read { dir, from, until, stream, limit, follow } => {
            read_cmds::read(&dir, from.unwrap_or(0), until, stream, limit, follow)
        }
        Command::Replay { dir, until, at, projection, stream } => {
            read_cmds::replay(&dir, until, at.as_deref(), projection, stream.as_deref())
        }
        Command::Compact { dir, keep_snapshots, archive, wait } => {
            write_cmds::compact(&dir, keep_snapshots, archive, wait)
        }
        Command::Snapshots { dir } => read_cmds::snapshots(&dir),
        Command::Export { dir, from, until, format, out } => {
            let output = if out.is_some() { Output::Answer } else { Output::Stream };
            let bar = Bar::start(format!("opening {}", dir.display()), output);
            audit::export(
                &dir,
                from.unwrap_or(0),
                until,
                matches!(format, ExportFormat::Csv),
                out.as_deref(),
                &bar,
            )
            .map(drop)
        }
        Command::AuditVerify { file, head, checkpoint, key } => {
            audit::verify_file(&file, head.as_deref(), checkpoint.as_deref(), key.as_deref())
        }
        Command::Verify { dir, wait, read_only } => write_cmds::verify(&dir, wait, read_only),
        Command::Salvage { file } => read_cmds::salvage(&file),
        Command::Info { dir } => read_cmds::info(&dir),
        Command::Recover { dir, mode: RepairMode::TruncateAtCorruption } => {
            write_cmds::recover(&dir)
        }
        Command::Demo { dir } => demo::run(&dir),
        Command::Keygen { out, name } => tlog_cmds::keygen(&out, &name),
        Command::Checkpoint { dir, key, origin } => {
            tlog_cmds::checkpoint(&dir, key.as_deref(), origin.as_deref())
        }
        Command::Prove { dir, seq, from_size, size } => {
            tlog_cmds::prove(&dir, seq, from_size, size)
        }
        Command::VerifyProof { proof, checkpoint, key } => {
            tlog_cmds::verify_proof(&proof, &checkpoint, key.as_deref())
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a failed write (a closed stdout).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "annal", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(())
        }
        Command::Man { out } => man(out.as_deref()),
    }
}

/// `annal man`: annal.1 on stdout, or every page into a directory.
fn man(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let cmd = <Cli as clap::CommandFactory>::command();
    match out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().lock().write_all(&page)?;
        }
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                anyhow::bail!("cannot write the man pages into {}: not a directory", dir.display());
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            let pages = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
                .count();
            eprintln!("wrote {pages} man pages into {}", dir.display());
        }
    }
    Ok(())
}

/// `--wait`: a finite, non-negative number of seconds (a usage error otherwise, exit 2).
fn parse_wait(text: &str) -> Result<f64, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(secs)
        .map(|_| secs)
        .map_err(|_| {
            format!("{text:?} is not a usable number of seconds (finite, not negative, and not beyond what a duration holds)")
        })
}

/// `--head`: a chain value, 64 hex digits (a usage error otherwise, exit 2).
fn parse_head(text: &str) -> Result<String, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a chain value (64 hex digits, as export prints it)"))
    }
}

/// `--keep-snapshots`: at least 1 (a compaction keeps the snapshot it writes).
fn parse_keep(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => {
            Err("0: a compaction keeps at least the snapshot it writes; give 1 or more".into())
        }
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of snapshots")),
    }
}

/// `--at`: an RFC 3339 time (a usage error otherwise, exit 2).
fn parse_at(text: &str) -> Result<String, String> {
    out::parse_time(text).map(|_| text.to_owned()).map_err(|e| format!("{e:#}"))
}

/// `--expect`: any, none, exists, or a version number (a usage error otherwise, exit 2).
fn parse_expect(text: &str) -> Result<String, String> {
    match text {
        "any" | "none" | "exists" => Ok(text.to_owned()),
        _ if text.parse::<u64>().is_ok() => Ok(text.to_owned()),
        _ => Err(format!("{text:?}: use any, none, exists, or a version number")),
    }
}

/// The exit code an error maps to.
fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if let Some(e) = cause.downcast_ref::<annal::Error>() {
            if e.is_conflict() {
                return EXIT_CONFLICT;
            }
            if e.is_integrity() {
                return EXIT_INTEGRITY;
            }
        }
    }
    1
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        // A usage error: one line on stderr, as every error (clap's lines joined), exit 2.
        Err(e) => {
            let text = e.render().to_string();
            let mut line = String::new();
            for part in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !line.is_empty() {
                    // "...not provided:" continues with what was not; other lines are apart.
                    line.push_str(if line.ends_with(':') { " " } else { "; " });
                }
                line.push_str(part);
            }
            eprintln!("{line}");
            return ExitCode::from(2);
        }
    };
    progress::set_quiet(cli.quiet);
    progress::init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if out::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the causes joined, innermost last, each said once (a library error
            // that wraps another shows the same text as its source).
            let mut message: Vec<String> = Vec::new();
            for cause in err.chain() {
                let text = cause.to_string();
                if !message.last().is_some_and(|last| last.ends_with(&text)) {
                    message.push(text);
                }
            }
            let mut line = message.join(": ");
            line.retain(|c| c != '\n');
            eprintln!("error: {line}");
            ExitCode::from(exit_code(&err))
        }
    }
}
