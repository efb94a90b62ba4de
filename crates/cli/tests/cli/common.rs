//! Helpers shared by the CLI tests: run the built `annal` binary, capture its exit code and
//! output, and parse what it prints. Guards against tests that pass on a crash they never looked
//! at: every run records exit code, stdout and stderr, and failures print all three.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// One finished run of `annal`.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub args: String,
    /// The exit code (`-1` when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn command<I, S>(args: I) -> (Command, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_annal"));
    let mut shown = String::from("annal");
    for arg in args {
        shown.push(' ');
        shown.push_str(&arg.as_ref().to_string_lossy());
        cmd.arg(arg);
    }
    cmd.env("RUST_BACKTRACE", "0").env_remove("RUST_LIB_BACKTRACE");
    (cmd, shown)
}

/// Runs `annal ARGS` to completion.
pub fn annal<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    annal_stdin(args, b"")
}

/// Runs `annal ARGS` with `input` on standard input.
pub fn annal_stdin<I, S>(args: I, input: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (mut cmd, shown) = command(args);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn annal");
    {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A command that does not read stdin may close it early: a broken pipe is fine.
        let _ = stdin.write_all(input);
    }
    let output = child.wait_with_output().expect("wait for annal");
    Run {
        args: shown,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

impl Run {
    /// Asserts the exit code.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\nstdout: {}\nstderr: {}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.code(0)
    }

    /// Stdout as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}`: stdout is not one JSON value ({e}): {:?}", self.args, self.stdout)
        })
    }

    /// Stdout as JSON Lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("`{}`: stdout line is not JSON ({e}): {l:?}", self.args)
                })
            })
            .collect()
    }

    /// Asserts the contract for errors: stderr is exactly one line `error: ...`, with no panic
    /// and no backtrace; returns that line.
    #[track_caller]
    pub fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "`{}`: stderr is not one line: {:?}", self.args, self.stderr);
        assert!(
            lines[0].starts_with("error: "),
            "`{}`: stderr does not start with `error: `: {:?}",
            self.args,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "`{}` panicked: {}", self.args, self.stderr);
        assert!(
            !self.stderr.contains("backtrace"),
            "`{}` printed a backtrace: {}",
            self.args,
            self.stderr
        );
        lines[0]
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "`{}`: stderr lacks {needle:?}: {:?}",
            self.args,
            self.stderr
        );
        self
    }
}

/// A temporary directory and the path of a store inside it (not yet created).
pub struct Scratch {
    pub tmp: tempfile::TempDir,
    pub store: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = tmp.path().join("store");
        Self { tmp, store }
    }

    /// A scratch directory with an initialized store.
    pub fn init() -> Self {
        let s = Self::new();
        annal([OsStr::new("init"), s.store.as_os_str()]).ok();
        s
    }

    /// A path next to the store.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Runs `annal COMMAND STORE ARGS`.
    pub fn run(&self, command: &str, args: &[&str]) -> Run {
        let mut all: Vec<&OsStr> = vec![OsStr::new(command), self.store.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        annal(all)
    }

    /// Runs `annal COMMAND STORE ARGS` with `input` on stdin.
    pub fn run_stdin(&self, command: &str, args: &[&str], input: &str) -> Run {
        let mut all: Vec<&OsStr> = vec![OsStr::new(command), self.store.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        annal_stdin(all, input.as_bytes())
    }

    /// Appends one event from flags; returns its sequence number.
    pub fn append(&self, stream: &str, event_type: &str, data: &str) -> u64 {
        let run = self.run("append", &["--stream", stream, "--type", event_type, "--data", data]);
        run.ok();
        run.json()["seq"].as_u64().expect("append prints seq")
    }

    /// Appends a JSON Lines batch from stdin; returns the printed summary.
    pub fn append_jsonl(&self, lines: &str) -> Value {
        let run = self.run_stdin("append", &["--jsonl", "-"], lines);
        run.ok();
        run.json()
    }

    /// Every event, as `read` prints them.
    pub fn read_all(&self) -> Vec<Value> {
        let run = self.run("read", &[]);
        run.ok();
        run.json_lines()
    }

    /// `info`, parsed.
    pub fn info(&self) -> Value {
        let run = self.run("info", &[]);
        run.ok();
        run.json()
    }
}

/// The files directly in `dir`, by name, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `value[key]` as u64, or a panic naming the key.
#[track_caller]
pub fn u(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

/// `value[key]` as a string, or a panic naming the key.
#[track_caller]
pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}

/// A store of 200 events in 4 KiB segments, written through the library and compacted with
/// `annal compact --keep-snapshots 1` (and `--archive`): its scratch and its log start.
pub fn compacted_store(archive: bool) -> (Scratch, u64) {
    let sc = Scratch::new();
    let journal = annal::Journal::options().segment_bytes(4096).open(&sc.store).expect("create");
    for i in 0..200 {
        let event =
            annal::NewEvent::json("t", &serde_json::json!({"i": i, "pad": "x".repeat(100)}))
                .expect("event");
        journal
            .append_events(&format!("s-{}", i % 2), annal::Expect::Any, vec![event])
            .expect("append");
    }
    drop(journal);
    let mut args = vec!["--keep-snapshots", "1"];
    if archive {
        args.push("--archive");
    }
    sc.run("compact", &args).ok();
    let first = u(&sc.info(), "first_seq");
    assert!(first > 1, "the compaction truncated the log");
    (sc, first)
}

/// Every file under `dir` (relative path -> bytes), to show that a command changed nothing.
pub fn tree_bytes(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}
