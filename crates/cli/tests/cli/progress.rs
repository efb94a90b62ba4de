//! Guards the progress bars, in a pseudo-terminal: every long command draws a bar with
//! position, total, elapsed time and ETA on a terminal stderr, clears it before it ends, and
//! never writes it into stdout; `-q` draws none, and a command that streams to stdout draws
//! none when stdout is the same terminal.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use annal::{Expect, Journal, NewEvent};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

use crate::common::Scratch;

/// Events in the store: enough that every phase lasts several frames of a debug build.
const EVENTS: u64 = 60_000;

fn store(sc: &Scratch) {
    let journal =
        Journal::options().durability(annal::Durability::Manual).open(&sc.store).expect("open");
    for chunk in 0..EVENTS / 1000 {
        let batch: Vec<NewEvent> = (0..1000)
            .map(|i| {
                let data = serde_json::json!({"n": chunk * 1000 + i, "pad": "x".repeat(40)});
                NewEvent::json("task-created", &data).expect("event")
            })
            .collect();
        journal.append_events(&format!("task-{}", chunk % 50), Expect::Any, batch).expect("append");
    }
    journal.sync().expect("sync");
    journal.close().expect("close");
}

/// What the child wrote to its terminal, and to stdout (a pipe, or the terminal too).
struct Ran {
    terminal: String,
    stdout: String,
    ok: bool,
}

/// Runs `annal args` with stderr on a fresh 100x30 pseudo-terminal; stdout on the same
/// terminal when `stdout_on_terminal`, else a pipe.
fn in_pty(args: &[&str], stdout_on_terminal: bool) -> Ran {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = File::options()
        .read(true)
        .write(true)
        .open(name.to_str().expect("utf-8"))
        .expect("open the terminal");
    let size = rustix::termios::Winsize { ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&slave, size).expect("window size");
    let mut command = Command::new(env!("CARGO_BIN_EXE_annal"));
    command.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    command.stderr(Stdio::from(slave.try_clone().expect("dup")));
    if stdout_on_terminal {
        command.stdout(Stdio::from(slave.try_clone().expect("dup")));
    } else {
        command.stdout(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn");
    // Only the child holds the terminal now (the command held copies of it): reading the
    // master ends (EIO) when the child exits.
    drop(command);
    drop(slave);
    let mut master = File::from(master);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        bytes
    });
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).expect("stdout");
    }
    let status = child.wait().expect("wait");
    let terminal = reader.join().expect("reader");
    Ran { terminal: String::from_utf8_lossy(&terminal).into_owned(), stdout, ok: status.success() }
}

/// The frames of a bar with a known total: `[====>   ] 12,288/60,000 0s ETA 1s`.
fn bar_frames(terminal: &str) -> Vec<&str> {
    terminal
        .split(['\r', '\n'])
        .filter(|frame| {
            frame.contains("] ") && frame.contains(" ETA ") && {
                let counts = frame.split("] ").nth(1).and_then(|r| r.split(' ').next());
                counts.is_some_and(|c| c.contains('/') && c.chars().any(|ch| ch.is_ascii_digit()))
            }
        })
        .collect()
}

#[track_caller]
fn check_bar(ran: &Ran, what: &str) {
    assert!(ran.ok, "{what}: failed: {}", ran.terminal);
    let frames = bar_frames(&ran.terminal);
    assert!(!frames.is_empty(), "{what}: no progress bar was drawn: {:?}", ran.terminal);
    assert!(
        frames.iter().any(|f| f.contains(&format!("/{}", indicatif::HumanCount(EVENTS)))),
        "{what}: no bar counts to the {EVENTS} events: {frames:?}"
    );
    assert!(
        !ran.stdout.contains(" ETA ") && !ran.stdout.contains('\u{1b}'),
        "{what}: {}",
        ran.stdout
    );
    // The bar is cleared before the command ends: nothing of it is left on the last line.
    let last_line = ran.terminal.rsplit(['\n']).next().unwrap_or("");
    let shown = last_line.rsplit("\u{1b}[2K").next().unwrap_or("");
    assert!(!shown.contains(" ETA "), "{what}: the bar was left on the terminal: {last_line:?}");
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

#[test]
fn every_long_command_draws_a_bar_on_a_terminal_and_clears_it() {
    let sc = Scratch::new();
    store(&sc);
    let dir = s(&sc.store);
    let export = sc.path("audit.jsonl");
    let jsonl = sc.path("more.jsonl");
    let lines: String = (0..EVENTS)
        .map(|i| {
            format!(
                "{{\"stream\":\"more\",\"type\":\"t\",\"data\":{{\"i\":{i},\"pad\":\"{}\"}}}}\n",
                "y".repeat(40)
            )
        })
        .collect();
    std::fs::write(&jsonl, lines).expect("write");

    let read = in_pty(&["read", dir], false);
    check_bar(&read, "read");
    assert_eq!(read.stdout.lines().count() as u64, EVENTS, "read printed every event");
    check_bar(&in_pty(&["replay", dir], false), "replay");
    check_bar(&in_pty(&["verify", dir], false), "verify");
    check_bar(&in_pty(&["export", dir, "--out", s(&export)], false), "export");
    let audit = in_pty(&["audit-verify", s(&export)], false);
    assert!(audit.ok, "{}", audit.terminal);
    assert!(
        audit.terminal.contains(" ETA ") && audit.terminal.contains("MiB"),
        "audit-verify shows no bytes bar: {:?}",
        audit.terminal
    );
    check_bar(&in_pty(&["recover", dir, "--mode", "truncate-at-corruption"], false), "recover");
    let append = in_pty(&["append", dir, "--jsonl", s(&jsonl)], false);
    check_bar(&append, "append --jsonl (the open)");
    assert!(append.terminal.contains("parse"), "no parse phase: {:?}", append.terminal);
    // The store now holds twice the events; compact folds them all at its open.
    let compact = in_pty(&["compact", dir], false);
    assert!(compact.ok && !bar_frames(&compact.terminal).is_empty(), "{:?}", compact.terminal);

    // -q: no bar at all.
    let quiet = in_pty(&["-q", "read", dir], false);
    assert!(quiet.ok && bar_frames(&quiet.terminal).is_empty(), "{:?}", quiet.terminal);
    // stdout on the same terminal: the events go there, and no bar is mixed into them.
    let shared = in_pty(&["read", dir, "--limit", "20000"], true);
    assert!(shared.ok, "{}", shared.terminal);
    assert!(bar_frames(&shared.terminal).is_empty(), "a bar was drawn into the read's output");
    assert!(shared.terminal.lines().filter(|l| l.starts_with("{\"data\"")).count() >= 20_000);
}

/// `-v` writes the libraries' log lines to stderr (here: the compaction), none by default.
#[test]
fn verbose_shows_log_lines_and_the_default_is_quiet() {
    let sc = Scratch::init();
    sc.append("a", "t", "{}");
    let dir = s(&sc.store);
    let run = crate::common::annal(["compact", dir]);
    run.ok();
    assert!(!run.stderr.contains("compacted"), "log lines by default: {}", run.stderr);
    let run = crate::common::annal(["-v", "compact", dir]);
    run.ok();
    assert!(run.stderr.contains("compacted") && run.stderr.contains("log_start"), "{}", run.stderr);
    assert!(!run.stdout.contains("compacted"), "a log line went to stdout: {}", run.stdout);
    let run = crate::common::annal(["-q", "-v", "compact", dir]);
    run.code(2);
}
