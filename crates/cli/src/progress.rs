//! Progress bars on stderr, and the log writer that keeps clear of them.
//!
//! A command that can take more than a second starts its bar before it opens the store, so the
//! open is covered: a spinner with the elapsed time until the first phase with a known total
//! begins, then a bar with position, total, elapsed time, ETA and rate. Bars are drawn only when
//! stderr is a terminal and `-q` was not given, and not at all by a command that streams data to
//! stdout when stdout is that same terminal (lines and bar would interleave). Log lines
//! (`tracing`) are written with the bar suspended, so neither garbles the other.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressState, ProgressStyle};
use parking_lot::Mutex;

/// Set by `-q`: no bars.
static QUIET: AtomicBool = AtomicBool::new(false);

/// The bar being drawn, if any, for the log writer to suspend.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// `-q`: no bars from now on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Where data goes, to keep bars off a terminal that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The command prints one answer when done (after the bar is cleared).
    Answer,
    /// The command streams data to stdout as it runs.
    Stream,
}

/// A progress bar on stderr (hidden when it must not be drawn). Cloning shares the bar.
#[derive(Debug, Clone)]
pub struct Bar {
    bar: ProgressBar,
    /// The sequence number (or byte offset) position 0 stands for.
    first: Arc<AtomicU64>,
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let per_sec = state.per_sec();
    let _ = if per_sec.is_finite() && per_sec >= 1.0 {
        // Whole records per second: a rate with decimals says nothing more.
        #[expect(clippy::cast_possible_truncation, reason = "a rate, rounded for display")]
        let whole = per_sec.round() as u64;
        write!(w, "{}/s", HumanCount(whole))
    } else {
        Ok(())
    };
}

fn count_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>8} [{wide_bar}] {human_pos}/{human_len} {elapsed} ETA {eta} {rate}",
    )
    .map(|s| s.with_key("rate", rate).progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>8} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {elapsed} ETA {eta} {binary_bytes_per_sec}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Bar {
    /// Starts a bar for a command whose first step is `what` (for example "opening ./store").
    pub fn start(what: impl Into<String>, output: Output) -> Self {
        let visible = !quiet()
            && std::io::stderr().is_terminal()
            && !(output == Output::Stream && std::io::stdout().is_terminal());
        let bar = if visible { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
        bar.set_style(spinner_style());
        bar.set_message(what.into());
        if visible {
            bar.enable_steady_tick(Duration::from_millis(100));
            *ACTIVE.lock() = Some(bar.clone());
        }
        Self { bar, first: Arc::new(AtomicU64::new(0)) }
    }

    /// A bar that is never drawn.
    pub fn hidden() -> Self {
        Self { bar: ProgressBar::hidden(), first: Arc::new(AtomicU64::new(0)) }
    }

    /// `read` wrapped so that the bytes read advance a bytes phase.
    pub fn wrap_read<R: std::io::Read>(&self, read: R) -> indicatif::ProgressBarIter<R> {
        self.bar.wrap_read(read)
    }

    /// A phase of known length begins: records `first..=last`.
    pub fn phase(&self, what: &str, first: u64, last: u64) {
        self.first.store(first, Ordering::Relaxed);
        // A spinner while the counts change: no frame shows the old phase's counts under the
        // new name.
        self.bar.set_style(spinner_style());
        self.bar.set_message(what.to_owned());
        self.bar.set_length((last + 1).saturating_sub(first));
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.bar.reset_elapsed();
        self.bar.set_style(count_style());
    }

    /// A phase over `total` bytes begins.
    pub fn bytes(&self, what: &str, total: u64) {
        self.first.store(0, Ordering::Relaxed);
        self.bar.set_message(what.to_owned());
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.bar.set_style(bytes_style());
    }

    /// A step of unknown length ("syncing", "compacting"): a spinner with the elapsed time.
    pub fn step(&self, what: impl Into<String>) {
        // Style first: no frame shows the new message on the old phase's bar.
        self.bar.set_style(spinner_style());
        self.bar.set_message(what.into());
    }

    /// Record `seq` (or byte offset `seq`) of the phase is done.
    pub fn at(&self, seq: u64) {
        self.bar.set_position((seq + 1).saturating_sub(self.first.load(Ordering::Relaxed)));
    }

    /// Removes the bar from the terminal; call before printing the answer.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        *ACTIVE.lock() = None;
    }

    /// The bar as the library's observer of long operations.
    pub fn observer(&self) -> Arc<dyn annal::Progress> {
        Arc::new(self.clone())
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // The last handle going away (an error returned early) clears the bar too.
        if Arc::strong_count(&self.first) == 1 {
            self.finish();
        }
    }
}

impl annal::Progress for Bar {
    fn begin(&self, phase: &str, first: u64, last: u64) {
        self.phase(phase, first, last);
    }

    fn reached(&self, seq: u64) {
        self.at(seq);
    }
}

/// Prints a message line on stderr, with any bar suspended meanwhile.
pub fn note(line: &str) {
    let mut text = line.to_owned();
    text.push('\n');
    let _ = LogWriter.write_all(text.as_bytes());
}

/// The writer of log lines: stderr, with any bar suspended while a line is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = ACTIVE.lock().clone();
        match active {
            Some(bar) => bar.suspend(|| std::io::stderr().lock().write_all(buf))?,
            None => std::io::stderr().lock().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Sets up log lines on stderr: `RUST_LOG` when set (for example `RUST_LOG=annal_wal=debug`),
/// otherwise none by default, `-v` info, `-vv` debug, `-vvv` trace; `-q` none.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        // `-q` wins: no log lines.
        Ok(spec) if !spec.is_empty() && !quiet => EnvFilter::new(spec),
        _ => EnvFilter::new(match (quiet, verbose) {
            (true, _) | (false, 0) => "off",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .try_init();
}
