//! Guards G7: one writer, many readers, across processes, and no stale locks. A second writer
//! (in another process) is refused at once with the holder's pid, or waits with a lock timeout;
//! a writer killed with SIGKILL leaves no lock behind; a directory reader in another process
//! sees only complete records, gapless and byte-identical, while the writer appends and rolls
//! segments; a directory reader never modifies a file; files are 0600 and directories 0700; a
//! directory reader survives the writer sealing (and so shrinking) a preallocated segment it
//! looks at (it used to map that segment and die of SIGBUS).
//!
//! The child processes are this test binary itself: a test spawns `current_exe()` with
//! `--exact <child> --include-ignored --nocapture` and the environment variables `ANNAL_CHILD_ROLE`
//! (the child's name) and `ANNAL_CHILD_DIR` (the log directory). The child "tests" are
//! `#[ignore]`d and do nothing unless `ANNAL_CHILD_ROLE` names them.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use annal_storage::{OsStorage, Storage};
use annal_wal::{Durability, Error, LOCK_FILE, Log, Options, Reader, Record, WAL_DIR};

const ROLE_ENV: &str = "ANNAL_CHILD_ROLE";
const DIR_ENV: &str = "ANNAL_CHILD_DIR";
/// First word of the line a child prints once it holds the log open.
const READY: &str = "ANNAL_CHILD_READY";
/// How long a child lives at most, should its parent never close its stdin.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);
/// How long the parent waits for a child's readiness or exit.
const PATIENCE: Duration = Duration::from_secs(20);

/// Records the appending child writes.
const CHILD_RECORDS: u64 = 400;
/// Segment target of the appending child: small, so that segments roll while the parent reads.
const CHILD_SEGMENT_BYTES: u64 = 16 * 1024;

/// The payload of record `seq` in these tests: names its number, then 40 to 399 bytes that
/// depend on it.
fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("multiprocess record {seq}|").into_bytes();
    let len = 40 + (seq * 73) % 360;
    p.extend((0..len).map(|i| u8::try_from((seq * 31 + i * 7) % 251).expect("below 251")));
    p
}

fn small_options() -> Options {
    Options {
        durability: Durability::Sync,
        segment_bytes_target: CHILD_SEGMENT_BYTES,
        ..Options::default()
    }
}

// ---- the child side ------------------------------------------------------------------------

/// The log directory, if this process was spawned as child `role`.
fn child_dir(role: &str) -> Option<PathBuf> {
    if std::env::var(ROLE_ENV).ok()? != role {
        return None;
    }
    Some(PathBuf::from(std::env::var_os(DIR_ENV).expect("ANNAL_CHILD_DIR is set")))
}

fn announce_ready() {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY} pid={}", std::process::id()).expect("stdout");
    out.flush().expect("flush stdout");
}

/// Waits until the parent closes stdin (or writes a line, when `line` is set), or the lifetime
/// runs out.
fn wait_for_parent(line: bool) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        if line {
            let mut text = String::new();
            let _ = stdin.read_line(&mut text);
        } else {
            let _ = stdin.read_to_end(&mut Vec::new());
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(CHILD_LIFETIME);
}

#[test]
#[ignore = "child process of writer_lock_is_exclusive_across_processes_and_never_stale"]
fn child_hold_writer() {
    let Some(dir) = child_dir("child_hold_writer") else { return };
    let log = Log::open(&dir, small_options()).expect("child: open as writer");
    log.append(b"held by the child").expect("child: append");
    announce_ready();
    wait_for_parent(false);
    log.close().expect("child: close");
}

#[test]
#[ignore = "child process of directory_reader_follows_a_writer_in_another_process"]
fn child_append_writer() {
    let Some(dir) = child_dir("child_append_writer") else { return };
    let log = Log::open(&dir, small_options()).expect("child: open as writer");
    announce_ready();
    // Start appending only once the parent is reading.
    wait_for_parent(true);
    for seq in 1..=CHILD_RECORDS {
        let a = log.append(&payload(seq)).expect("child: append");
        assert_eq!((a.first, a.last), (seq, seq), "child: sequence numbers");
        if seq.is_multiple_of(4) {
            // Give the reader a chance to catch up now and then, so that it reads mid-segment.
            thread::sleep(Duration::from_millis(1));
        }
    }
    log.close().expect("child: close");
}

/// Records of the tailing test: frames of about 5.7 KiB, so that two fill most of a 16 KiB
/// segment and sealing shrinks the preallocated file by more than a page.
const BIG_RECORDS: u64 = 300;

fn big_payload(seq: u64) -> Vec<u8> {
    let mut p = payload(seq);
    let len = 5600 + (seq * 13) % 100;
    p.resize(usize::try_from(len).expect("small"), u8::try_from(seq % 256).expect("below 256"));
    p
}

#[test]
#[ignore = "child process of directory_reader_in_another_process_survives_segment_seals"]
fn child_tail_reader() {
    let Some(dir) = child_dir("child_tail_reader") else { return };
    let storage: Arc<dyn Storage> = Arc::new(OsStorage::new());
    let mut reader = Reader::open(Arc::clone(&storage), &dir, 1).expect("child: reader");
    announce_ready();
    let deadline = Instant::now() + CHILD_LIFETIME;
    let mut next = 1;
    while next <= BIG_RECORDS {
        assert!(Instant::now() < deadline, "child: only {} records read", next - 1);
        // A tailing reader: ask again at once whenever it runs dry.
        for item in reader.by_ref() {
            let record = item.unwrap_or_else(|e| panic!("child: reader error at {next}: {e}"));
            assert_eq!(record.seq, next, "child: gapless and in order");
            assert_eq!(record.payload, big_payload(next), "child: record {next} is identical");
            next += 1;
        }
    }
}

// ---- the parent side -----------------------------------------------------------------------

/// A child process; killed and reaped on drop so that a failing test leaves no process behind.
struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Spawned {
    fn start(role: &str, dir: &Path) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args(["--exact", role, "--include-ignored", "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, role)
            .env(DIR_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut err_pipe = child.stderr.take().expect("child stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            sink.lock().expect("stderr sink").push_str(&text);
        });
        Self { child, stdin, lines, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr sink").clone()
    }

    /// Waits for the child's readiness line and checks that it names the child's pid.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // libtest may have printed "test <name> ... " on the same line first.
                    if let Some(at) = line.find(READY) {
                        let rest = &line[at + READY.len()..];
                        assert_eq!(
                            rest.trim(),
                            format!("pid={}", self.child.id()),
                            "the child is the process we spawned"
                        );
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("child not ready within {PATIENCE:?}; stderr: {}", self.stderr())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait child");
                    thread::sleep(Duration::from_millis(50));
                    panic!("child exited ({status}) before it was ready; stderr: {}", self.stderr())
                }
            }
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("child stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush child stdin");
    }

    /// Waits for the child to exit by itself and checks that it succeeded.
    fn wait_success(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                thread::sleep(Duration::from_millis(50));
                assert!(status.success(), "child failed: {status}; stderr: {}", self.stderr());
                return;
            }
            assert!(Instant::now() < deadline, "child did not exit; stderr: {}", self.stderr());
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn os_storage() -> Arc<dyn Storage> {
    Arc::new(OsStorage::new())
}

/// The pid written in the lock file.
fn lock_file_pid(dir: &Path) -> String {
    fs::read_to_string(dir.join(LOCK_FILE)).expect("lock file").trim().to_owned()
}

#[test]
fn writer_lock_is_exclusive_across_processes_and_never_stale() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let mut holder = Spawned::start("child_hold_writer", &dir);
    holder.wait_ready();
    let child_pid = holder.child.id();
    assert_eq!(lock_file_pid(&dir), child_pid.to_string(), "the lock file names the holder");

    // Without a lock timeout, the second writer is refused at once, naming the holder.
    let started = Instant::now();
    let err = Log::open(&dir, small_options()).expect_err("a second writer is refused");
    let refused_after = started.elapsed();
    match err {
        Error::Locked { path, pid } => {
            assert_eq!(path, dir.join(LOCK_FILE));
            assert_eq!(pid, Some(child_pid), "the error names the holder's pid");
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    assert!(refused_after < Duration::from_secs(1), "refused at once, not after {refused_after:?}");

    // With a lock timeout, it waits that long, then is refused.
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Log::open(&dir, Options { lock_timeout: Some(timeout), ..small_options() })
        .expect_err("still held after the timeout");
    let waited = started.elapsed();
    match err {
        Error::Locked { pid, .. } => assert_eq!(pid, Some(child_pid)),
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    assert!(waited >= timeout, "waited only {waited:?} of the {timeout:?} timeout");

    // A directory reader needs no lock.
    let records: Vec<Record> = Reader::open(os_storage(), &dir, 1)
        .expect("directory reader")
        .collect::<annal_wal::Result<_>>()
        .expect("read while another process writes");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].payload, &b"held by the child"[..]);

    // A writer waiting with a long timeout gets the lock once the holder is killed.
    let waiter_dir = dir.clone();
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let log = Log::open(
            &waiter_dir,
            Options { lock_timeout: Some(Duration::from_secs(20)), ..small_options() },
        );
        (log, started.elapsed())
    });
    let delay = Duration::from_millis(300);
    thread::sleep(delay);
    assert!(!waiter.is_finished(), "the waiting writer got the lock while the holder lived");
    holder.child.kill().expect("SIGKILL the holder");
    let status = holder.child.wait().expect("reap the holder");
    assert!(!status.success(), "the holder was killed, not ended: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    }
    let (log, waited) = waiter.join().expect("waiter thread");
    let log = log.expect("the lock of a killed writer is not stale");
    assert!(waited >= delay, "the writer waited {waited:?}, less than the holder lived");
    assert!(waited < Duration::from_secs(10), "the lock took {waited:?} to be released");
    assert_eq!(
        lock_file_pid(&dir),
        std::process::id().to_string(),
        "the lock names the new holder"
    );
    assert_eq!(log.last_seq(), 1, "the killed writer's acknowledged record survives");
    assert_eq!(log.append(b"parent").expect("append").first, 2);
    drop(log);

    // And without a timeout, once nobody holds it.
    let log = Log::open(&dir, small_options()).expect("reopen after close");
    assert_eq!(log.last_seq(), 2);
}

#[test]
fn directory_reader_follows_a_writer_in_another_process() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let mut writer = Spawned::start("child_append_writer", &dir);
    writer.wait_ready();
    let storage = os_storage();
    let mut reader = Reader::open(Arc::clone(&storage), &dir, 1).expect("directory reader");
    writer.send_line("go");

    let mut next = 1u64;
    let mut prev_ts = 0u64;
    let mut seen_while_running = 0u64;
    let mut max_segments_while_running = 0usize;
    let mut rounds = 0u64;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let exited = writer.child.try_wait().expect("try_wait").is_some();
        for item in reader.by_ref() {
            let record = item.unwrap_or_else(|e| panic!("reader error while at {next}: {e}"));
            assert_eq!(record.seq, next, "gapless and in order");
            assert_eq!(record.payload, payload(next), "record {next} is complete and identical");
            assert!(record.ts >= prev_ts, "timestamp of record {next} goes back");
            prev_ts = record.ts;
            next += 1;
            if !exited {
                seen_while_running += 1;
            }
        }
        if exited {
            break;
        }
        if next > 1 {
            let segments = fs::read_dir(dir.join(WAL_DIR)).expect("wal dir").count();
            max_segments_while_running = max_segments_while_running.max(segments);
        }
        rounds += 1;
        if rounds.is_multiple_of(3) {
            // Alternate between continuing one reader and opening a new one where we are.
            reader = Reader::open(Arc::clone(&storage), &dir, next).expect("reopen reader");
        }
        assert!(Instant::now() < deadline, "child still writing after {PATIENCE:?}");
        thread::sleep(Duration::from_millis(1));
    }
    writer.wait_success();
    println!(
        "read {seen_while_running} records and saw {max_segments_while_running} segments while \
         the writer ran, in {rounds} rounds"
    );
    assert_eq!(next, CHILD_RECORDS + 1, "the reader got every record once the writer exited");
    assert!(seen_while_running > 0, "the reader read while the writer was writing");
    assert!(
        max_segments_while_running >= 2,
        "segments rolled while the reader read ({max_segments_while_running} seen)"
    );

    // A fresh reader, then the writer's own view, agree.
    let all: Vec<Record> = Reader::open(storage, &dir, 1)
        .expect("reader")
        .collect::<annal_wal::Result<_>>()
        .expect("read all");
    assert_eq!(all.len() as u64, CHILD_RECORDS);
    for (i, r) in all.iter().enumerate() {
        assert_eq!((r.seq, &r.payload[..]), (i as u64 + 1, &payload(i as u64 + 1)[..]));
    }
    let log = Log::open(&dir, small_options()).expect("open after the writer exited");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    assert_eq!(log.last_seq(), CHILD_RECORDS);
    let segments = log.segments().len();
    assert!(segments >= 5, "only {segments} segments: the test meant to roll often");
}

/// A file's length, bytes and modification time; `None` for a directory.
type Entry = Option<(u64, Vec<u8>, std::time::SystemTime)>;

/// Every file and directory under `dir` (recursively, `dir` included).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        out.insert(dir.to_path_buf(), None);
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                walk(&path, out);
            } else {
                let bytes = fs::read(&path).expect("read");
                let mtime = meta.modified().expect("mtime");
                out.insert(path, Some((meta.len(), bytes, mtime)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

#[test]
fn directory_reader_never_modifies_a_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    let records = 120u64;
    let active = {
        let log = Log::open(&dir, small_options()).expect("open");
        for seq in 1..=records {
            log.append(&payload(seq)).expect("append");
        }
        let active = log.segments().pop().expect("active segment");
        log.close().expect("close");
        active
    };
    assert!(active.first_seq > 1, "segments rolled");
    // A torn tail after the valid frames (a writer's recovery would cut it): the start of a
    // frame whose header is incomplete.
    {
        let file = fs::OpenOptions::new().write(true).open(&active.path).expect("open segment");
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            file.write_all_at(b"AFRM\x01\x02\x03", active.data_bytes).expect("write torn bytes");
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(active.data_bytes)).expect("seek");
            file.write_all(b"AFRM\x01\x02\x03").expect("write torn bytes");
        }
    }
    // Let a modification show in the mtime even on coarse clocks.
    thread::sleep(Duration::from_millis(20));
    let before = snapshot(&dir);

    let storage = os_storage();
    let all: Vec<Record> = Reader::open(Arc::clone(&storage), &dir, 1)
        .expect("reader")
        .collect::<annal_wal::Result<_>>()
        .expect("read all");
    assert_eq!(all.len() as u64, records, "the reader stops before the torn tail");
    let from_middle: Vec<u64> = Reader::open(Arc::clone(&storage), &dir, active.first_seq - 3)
        .expect("reader")
        .map(|r| r.expect("record").seq)
        .collect();
    assert_eq!(from_middle, (active.first_seq - 3..=records).collect::<Vec<_>>());
    let mut follow = Reader::open(Arc::clone(&storage), &dir, records + 1).expect("reader");
    assert!(follow.next_timeout(Duration::from_millis(60)).is_none(), "nothing past the end");
    drop(follow);

    assert_eq!(snapshot(&dir), before, "a directory reader changed the directory");
}

#[cfg(unix)]
#[test]
fn files_are_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("nested").join("log");
    let active = {
        let log = Log::open(&dir, small_options()).expect("open");
        for seq in 1..=150 {
            log.append(&payload(seq)).expect("append");
        }
        assert!(log.segments().len() > 2, "segments rolled");
        let active = log.segments().pop().expect("active");
        log.close().expect("close");
        active
    };
    // A torn tail, so that reopening writes into quarantine/ too.
    {
        use std::os::unix::fs::FileExt;
        let file = fs::OpenOptions::new().write(true).open(&active.path).expect("open segment");
        file.write_all_at(b"AFRM\x01\x02\x03", active.data_bytes).expect("write torn bytes");
    }
    let log = Log::open(&dir, small_options()).expect("reopen");
    assert!(log.recovery_report().torn_tail.is_some(), "{:?}", log.recovery_report());
    assert!(!log.recovery_report().quarantined.is_empty(), "quarantine written");
    log.append(b"after").expect("append");

    let mut seen = Vec::new();
    let mut stack = vec![tmp.path().join("nested")];
    while let Some(d) = stack.pop() {
        let mode = fs::metadata(&d).expect("metadata").permissions().mode() & 0o777;
        seen.push((d.clone(), mode, 0o700));
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                seen.push((path, meta.permissions().mode() & 0o777, 0o600));
            }
        }
    }
    let wrong: Vec<String> = seen
        .iter()
        .filter(|(_, mode, want)| mode != want)
        .map(|(p, mode, want)| format!("{} is {mode:o}, not {want:o}", p.display()))
        .collect();
    assert_eq!(wrong, Vec::<String>::new(), "modes");
    let files = seen.iter().filter(|(_, _, want)| *want == 0o600).count();
    let dirs = seen.len() - files;
    // nested/, log/, wal/, quarantine/; LOCK, segments, the quarantined bytes and their note.
    assert_eq!(dirs, 4, "{seen:?}");
    assert!(files >= 6, "{seen:?}");
    drop(log);
}

/// A directory reader tails a writer whose preallocated segments shrink by more than a page
/// when sealed.
#[test]
fn directory_reader_in_another_process_survives_segment_seals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("log");
    // A writer that preallocates its segments, as by default, and seals them often.
    let log = Log::open(&dir, small_options()).expect("open");
    assert!(log.options().preallocate, "the default preallocates");
    let mut reader = Spawned::start("child_tail_reader", &dir);
    reader.wait_ready();
    for seq in 1..=BIG_RECORDS {
        assert_eq!(log.append(&big_payload(seq)).expect("append").first, seq);
    }
    assert!(log.segments().len() > 20, "segments rolled: {}", log.segments().len());
    reader.stdin.take();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = reader.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the reader did not finish");
        thread::sleep(Duration::from_millis(5));
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            None,
            "the reader process was killed by signal {:?} (7 is SIGBUS)",
            status.signal()
        );
    }
    thread::sleep(Duration::from_millis(50));
    assert!(status.success(), "reader failed: {status}; stderr: {}", reader.stderr());
}
