//! Measures what opening costs on small stores, against issue targets, and prints a markdown
//! table:
//!
//! | workload | baseline in the same run | target |
//! | --- | --- | --- |
//! | `Journal::open` of an empty directory (creates the journal), default options | the same with `preallocate(false)` | <= 5 ms |
//! | `Journal::open` of a 4-event store after a clean close | the same store opened as after a crash | for context |
//! | `Journal::open` of a 4-event store after a crash (no clean-close record), 64 MiB preallocated segment | the same open with a file system that reports no holes (reads the whole segment, as before) | for context |
//! | `annal info` on the 4-event store, as a process: wall time and max RSS | `annal read` on the same store | <= 10 ms, <= 10 MB |
//!
//! Each measurement alternates with its baseline, 30 times (`--runs`) after a warm-up; figures
//! are medians. `--annal PATH` names the CLI binary (default `target/release/annal`); without
//! it the CLI rows are skipped. Exits 0 if every target is met, 1 if one is missed, 2 on an
//! error.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annal::storage::{LockAttempt, LockHolder, OpenMode, OsStorage, Storage, StorageFile};
use annal::{Expect, Journal, NewEvent};
use annal_benches::{BenchResult, scratch_root};

const USAGE: &str = "usage: open_targets [--runs N] [--annal PATH]";
const EMPTY_OPEN_TARGET: Duration = Duration::from_millis(5);
const INFO_TARGET: Duration = Duration::from_millis(10);
const INFO_RSS_TARGET_KB: u64 = 10 * 1024;

/// The OS file system, as one that tracks no holes: every file's data ends at its length.
#[derive(Debug)]
struct NoHoles(OsStorage);

#[derive(Debug)]
struct NoHolesFile(Box<dyn StorageFile>);

impl StorageFile for NoHolesFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

impl Storage for NoHoles {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<bool> {
        self.0.create_dir_all(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.0.exists(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn open_file(&self, path: &Path, mode: OpenMode) -> std::io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(NoHolesFile(self.0.open_file(path, mode)?)))
    }
    fn map_file(&self, path: &Path) -> std::io::Result<bytes::Bytes> {
        self.0.map_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.0.sync_dir(path)
    }
    fn try_lock(&self, path: &Path, pid: u32) -> std::io::Result<LockAttempt> {
        self.0.try_lock(path, pid)
    }
    fn lock_holder(&self, path: &Path) -> std::io::Result<Option<LockHolder>> {
        self.0.lock_holder(path)
    }
    fn now_nanos(&self) -> u64 {
        self.0.now_nanos()
    }
}

/// A 4-event store, closed cleanly.
fn small_store(dir: &Path) -> BenchResult<()> {
    let journal = Journal::open(dir)?;
    for i in 0..4 {
        let event = NewEvent::json("noted", &serde_json::json!({ "i": i }))?;
        journal.append_events("s", Expect::Any, vec![event])?;
    }
    journal.close()?;
    Ok(())
}

/// The store as a crash leaves it: no clean-close record.
fn forget_clean_close(dir: &Path) -> BenchResult<()> {
    let record = dir.join("wal").join("CLOSED");
    if record.exists() {
        std::fs::remove_file(record)?;
    }
    Ok(())
}

fn time(f: &mut dyn FnMut() -> BenchResult<()>) -> BenchResult<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

/// Medians of `runs` alternating runs of `a` and `b`, after one warm-up of each.
fn pair(
    runs: usize,
    a: &mut dyn FnMut() -> BenchResult<()>,
    b: &mut dyn FnMut() -> BenchResult<()>,
) -> BenchResult<(Duration, Duration)> {
    time(a)?;
    time(b)?;
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ta.push(time(a)?);
        tb.push(time(b)?);
    }
    Ok((median(&mut ta), median(&mut tb)))
}

/// Wall time and max RSS (KiB) of `annal ARGS`, through `/usr/bin/time`.
fn cli(annal: &Path, args: &[&str]) -> BenchResult<(Duration, u64)> {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time").arg("-f").arg("%M").arg(annal).args(args).output()?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err(format!("annal {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr.lines().last().and_then(|l| l.trim().parse().ok()).ok_or("no RSS")?;
    Ok((elapsed, rss))
}

/// The median of durations.
fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn run() -> BenchResult<bool> {
    let mut runs = 30usize;
    let mut annal = Some(PathBuf::from("target/release/annal"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or(USAGE)?.parse()?,
            "--annal" => annal = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            _ => return Err(USAGE.into()),
        }
    }
    let annal = annal.filter(|p| p.exists());
    let root = tempfile::tempdir_in(scratch_root())?;
    let mut met = true;
    println!("| workload | figure | baseline in the same run | ratio | target |");
    println!("| --- | ---: | ---: | ---: | --- |");

    let made = std::cell::Cell::new(0u64);
    let create = |preallocate: bool| -> BenchResult<()> {
        made.set(made.get() + 1);
        let dir = root.path().join(format!("empty-{}", made.get()));
        drop(Journal::options().preallocate(preallocate).open(&dir)?);
        Ok(())
    };
    let (empty, empty_unprealloc) = pair(runs, &mut || create(true), &mut || create(false))?;
    let ok = empty <= EMPTY_OPEN_TARGET;
    met &= ok;
    println!(
        "| open (create) an empty journal | {} | {} without preallocation | {:.2}x | <= 5 ms: {} |",
        ms(empty),
        ms(empty_unprealloc),
        empty.as_secs_f64() / empty_unprealloc.as_secs_f64(),
        if ok { "met" } else { "missed" }
    );

    let store = root.path().join("small");
    small_store(&store)?;
    let reclose = |dir: &Path| -> BenchResult<()> {
        Journal::open(dir)?.close()?;
        Ok(())
    };
    let (clean, crashed) = pair(runs, &mut || reclose(&store), &mut || {
        forget_clean_close(&store)?;
        reclose(&store)
    })?;
    println!(
        "| open and close a 4-event store after a clean close | {} | {} after a crash | {:.2}x | context |",
        ms(clean),
        ms(crashed),
        clean.as_secs_f64() / crashed.as_secs_f64()
    );
    let no_holes: Arc<dyn Storage> = Arc::new(NoHoles(OsStorage::new()));
    let crash_open = |storage: Option<Arc<dyn Storage>>| -> BenchResult<()> {
        forget_clean_close(&store)?;
        let options = Journal::options();
        let options = match storage {
            Some(s) => options.storage(s),
            None => options,
        };
        options.open(&store)?.close()?;
        Ok(())
    };
    let (holes, whole) =
        pair(runs, &mut || crash_open(None), &mut || crash_open(Some(Arc::clone(&no_holes))))?;
    println!(
        "| open and close a 4-event store after a crash (64 MiB preallocated) | {} | {} reading the whole segment | {:.3}x | context |",
        ms(holes),
        ms(whole),
        holes.as_secs_f64() / whole.as_secs_f64()
    );

    if let Some(annal) = &annal {
        let dir = store.to_string_lossy().into_owned();
        let (mut info, mut read, mut rss, mut read_rss) = (Vec::new(), Vec::new(), 0, 0);
        cli(annal, &["info", &dir])?;
        for _ in 0..runs {
            let (t, r) = cli(annal, &["info", &dir])?;
            info.push(t);
            rss = rss.max(r);
            let (t, r) = cli(annal, &["read", &dir])?;
            read.push(t);
            read_rss = read_rss.max(r);
        }
        let (info, read) = (median(&mut info), median(&mut read));
        let ok = info <= INFO_TARGET && rss <= INFO_RSS_TARGET_KB;
        met &= ok;
        println!(
            "| `annal info` on the 4-event store (process, through /usr/bin/time) | {}, max RSS {} KB | `annal read`: {}, {} KB | {:.2}x | <= 10 ms and <= 10 MB: {} |",
            ms(info),
            rss,
            ms(read),
            read_rss,
            info.as_secs_f64() / read.as_secs_f64(),
            if ok { "met" } else { "missed" }
        );
    }
    Ok(met)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("open_targets: {e}");
            ExitCode::from(2)
        }
    }
}
