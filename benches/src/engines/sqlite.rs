//! The `sqlite` engine: SQLite (bundled, through rusqlite) in WAL mode with
//! `synchronous=FULL`, so that a commit returns after the WAL is synced. One row per event in
//! `events(seq INTEGER PRIMARY KEY, data BLOB)`, the sequence number given by SQLite (the
//! rowid). Durable appends: one connection per appending thread, each event an autocommit
//! `INSERT`; concurrent writers wait for the write lock ([`BUSY_TIMEOUT`]) instead of failing.
//! Bulk loads: every `INSERT` in one transaction. Everything else at SQLite's defaults
//! (automatic checkpoints every 1,000 WAL pages, the page cache size).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use super::{Appender, Context, Engine, Fold, Mode, Payloads, Spec, Store, wrong_mode};
use crate::{BenchResult, check};

/// How long a writer waits for another's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

const INSERT: &str = "INSERT INTO events (data) VALUES (?1)";

/// Opens a connection to the database at `path` with the harness's settings.
fn connect(path: &Path) -> BenchResult<Connection> {
    let conn = Connection::open(path).ctx("sqlite: open")?;
    conn.busy_timeout(BUSY_TIMEOUT).ctx("sqlite: busy_timeout")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .ctx("sqlite: journal_mode")?;
    check(mode.eq_ignore_ascii_case("wal"), || format!("sqlite: journal mode {mode}, not WAL"))?;
    conn.pragma_update(None, "synchronous", "FULL").ctx("sqlite: synchronous")?;
    let sync: i64 =
        conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).ctx("sqlite: synchronous")?;
    check(sync == 2, || format!("sqlite: synchronous is {sync}, not 2 (FULL)"))?;
    Ok(conn)
}

/// A database open in a directory.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// The connection of bulk loads and reads.
    conn: Mutex<Connection>,
    mode: Mode,
}

impl SqliteStore {
    /// Creates `dir/events.sqlite` and its table.
    ///
    /// # Errors
    /// SQLite's.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let path = dir.join("events.sqlite");
        let conn = connect(&path)?;
        conn.execute_batch("CREATE TABLE events (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
            .ctx("sqlite: create table")?;
        Ok(Self { path, conn: Mutex::new(conn), mode: spec.mode })
    }

    fn conn(&self) -> BenchResult<std::sync::MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| "sqlite: connection lock poisoned".into())
    }
}

struct SqliteAppender {
    conn: Connection,
}

impl Appender for SqliteAppender {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        let mut insert = self.conn.prepare_cached(INSERT).ctx("sqlite: prepare")?;
        let rows = insert.execute([payload]).ctx("sqlite: insert")?;
        check(rows == 1, || format!("sqlite: insert changed {rows} rows"))
    }
}

impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn appender(&self, _writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::Sqlite, Mode::Durable));
        }
        let conn = connect(&self.path)?;
        // Prepared before the clock starts, and cached with the connection.
        conn.prepare_cached(INSERT).ctx("sqlite: prepare")?;
        Ok(Box::new(SqliteAppender { conn }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::Sqlite, Mode::Bulk));
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction().ctx("sqlite: begin")?;
        {
            let mut insert = tx.prepare_cached(INSERT).ctx("sqlite: prepare")?;
            let mut buf = Vec::with_capacity(payloads.bytes());
            for n in 0..count {
                payloads.fill(n, &mut buf);
                insert.execute([&buf[..]]).ctx("sqlite: insert")?;
            }
        }
        tx.commit().ctx("sqlite: commit")
    }

    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        self.each(visit)
    }

    fn replay(&self) -> BenchResult<Fold> {
        let mut fold = Fold::default();
        self.each(|payload| {
            fold.add(payload);
            Ok(())
        })?;
        Ok(fold)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        let conn = self.conn.into_inner().map_err(|_| "sqlite: connection lock poisoned")?;
        conn.close().map_err(|(_, e)| e).ctx("sqlite: close")
    }
}

impl SqliteStore {
    /// Reads every row in sequence order, checking sequence numbers, calling `visit` with each
    /// payload. Returns the count.
    fn each(&self, mut visit: impl FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let conn = self.conn()?;
        let mut select = conn
            .prepare_cached("SELECT seq, data FROM events ORDER BY seq")
            .ctx("sqlite: prepare")?;
        let mut rows = select.query([]).ctx("sqlite: select")?;
        let mut next = 1;
        while let Some(row) = rows.next().ctx("sqlite: step")? {
            let seq: i64 = row.get(0).ctx("sqlite: seq")?;
            check(seq == next, || format!("sqlite: row {seq} where {next} was due"))?;
            let data = row.get_ref(1).ctx("sqlite: data")?.as_blob().ctx("sqlite: data")?;
            visit(data)?;
            next += 1;
        }
        Ok(u64::try_from(next - 1)?)
    }
}
