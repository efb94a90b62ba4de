//! Checkpoints the journal writes itself ([`JournalOptions::checkpoints`]): at every segment
//! seal and every compaction, a C2SP checkpoint of the durable events (signed when a key is
//! given) goes into `DIR/checkpoints/<20-digit size>.checkpoint`, next to the tree's right
//! frontier at that size (`<size>.frontier`), from which the next checkpoint continues: opening
//! reads the newest frontier and hashes only the events after it, and a compaction that
//! truncates the log without an archive does not stop the checkpoints.
//!
//! A frontier file (little-endian): magic `ANNALFRT`, u32 format version 1, u8 hash id
//! ([`annal_tlog::HashAlg::id`]), 3 zero bytes, u64 size, u32 count, `count` hashes of 32
//! bytes, u32 CRC32 of everything before it.
//!
//! [`JournalOptions::checkpoints`]: crate::JournalOptions::checkpoints

use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal_storage::{OpenMode, Storage};
use annal_tlog::checkpoint::Checkpoint;
use annal_tlog::note::Signer;
use annal_tlog::tree::Frontier;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::tree::{TREE_HASH, leaf_hash};

/// The directory of the journal's own checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

const MAGIC: [u8; 8] = *b"ANNALFRT";
const VERSION: u32 = 1;
/// Frontier files hold at most this many hashes (a tree of 2^64 leaves has 64).
const HASHES_MAX: u32 = 64;

/// What the journal's checkpoints are made of.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub origin: String,
    pub signer: Option<Arc<Signer>>,
}

/// The checkpoint writer of an open journal.
#[derive(Debug)]
pub(crate) struct Writer {
    config: Config,
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    frontier: Frontier,
    /// Segments the log had created when the last checkpoint was written.
    segments_created: u64,
}

/// The file name of the checkpoint or frontier of a tree of `size` events.
fn file(dir: &Path, size: u64, ext: &str) -> PathBuf {
    dir.join(CHECKPOINTS_DIR).join(format!("{size:020}.{ext}"))
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Compactor(annal_compactor::Error::Corrupt {
        file: path.to_path_buf(),
        offset: 0,
        reason: reason.into(),
    })
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Wal(annal_wal::Error::Io { op, path: path.to_path_buf(), source })
}

fn encode(frontier: &Frontier) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + 32 * frontier.hashes().len());
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&[frontier.alg().id(), 0, 0, 0]);
    b.extend_from_slice(&frontier.size().to_le_bytes());
    let count = u32::try_from(frontier.hashes().len()).expect("at most 64 hashes");
    b.extend_from_slice(&count.to_le_bytes());
    for h in frontier.hashes() {
        b.extend_from_slice(h);
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode(path: &Path, b: &[u8]) -> Result<Frontier> {
    let bad = |why: &str| corrupt(path, format!("not a frontier file: {why}"));
    if b.len() < 32 || b[..8] != MAGIC {
        return Err(bad("no magic"));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(bad("checksum mismatch"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    if u32_at(8) != VERSION {
        return Err(bad(&format!("format version {} (this build reads {VERSION})", u32_at(8))));
    }
    if annal_tlog::HashAlg::from_id(b[12]) != Some(TREE_HASH) {
        return Err(bad(&format!(
            "hash id {} (the journal's tree uses {})",
            b[12],
            TREE_HASH.id()
        )));
    }
    let size = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    let count = u32_at(24);
    if count > HASHES_MAX || body.len() != 28 + 32 * count as usize {
        return Err(bad("length does not match its hash count"));
    }
    let hashes =
        body[28..].chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect::<Vec<_>>();
    Frontier::from_parts(TREE_HASH, size, hashes).ok_or_else(|| bad("hashes do not match its size"))
}

fn read_whole(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    let file = storage.open_file(path, OpenMode::Read).map_err(io("open", path))?;
    let len = usize::try_from(file.len().map_err(io("stat", path))?)
        .map_err(|_| corrupt(path, "too large"))?;
    if len > 64 * 1024 {
        return Err(corrupt(path, format!("{len} bytes: too large for a frontier file")));
    }
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, 0).map_err(io("read", path))?;
    Ok(bytes)
}

/// The sizes of the frontiers in `DIR/checkpoints/`, ascending.
fn frontier_sizes(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>> {
    let cdir = dir.join(CHECKPOINTS_DIR);
    if !storage.exists(&cdir).map_err(io("stat", &cdir))? {
        return Ok(Vec::new());
    }
    let mut sizes: Vec<u64> = storage
        .list_dir(&cdir)
        .map_err(io("list", &cdir))?
        .iter()
        .filter_map(|n| n.strip_suffix(".frontier"))
        .filter(|s| s.len() == 20)
        .filter_map(|s| s.parse().ok())
        .collect();
    sizes.sort_unstable();
    Ok(sizes)
}

/// Pushes the leaves of `records`, which must continue the tree, onto `frontier`, up to
/// sequence `last`.
///
/// # Errors
/// The first failed read; a record that does not continue the tree.
pub(crate) fn extend(
    frontier: &mut Frontier,
    records: impl Iterator<Item = Result<annal_wal::Record>>,
    last: u64,
) -> Result<()> {
    for record in records {
        let record = record?;
        if record.seq > last {
            break;
        }
        if record.seq != frontier.size() + 1 {
            return Err(Error::Invalid(format!(
                "the tree continues at sequence {} but the log gives {}",
                frontier.size() + 1,
                record.seq
            )));
        }
        frontier.push(leaf_hash(record.seq, record.ts, &record.payload));
    }
    Ok(())
}

/// The newest frontier the journal wrote in `DIR/checkpoints/`, if any.
///
/// # Errors
/// A damaged frontier file; I/O errors.
pub(crate) fn newest_frontier(storage: &dyn Storage, dir: &Path) -> Result<Option<Frontier>> {
    let Some(&size) = frontier_sizes(storage, dir)?.last() else { return Ok(None) };
    let path = file(dir, size, "frontier");
    let frontier = decode(&path, &read_whole(storage, &path)?)?;
    if frontier.size() != size {
        return Err(corrupt(
            &path,
            format!("its name says {size} events but it holds {}", frontier.size()),
        ));
    }
    Ok(Some(frontier))
}

impl Writer {
    /// The writer of a journal whose log is `log`: continues from the newest frontier in
    /// `DIR/checkpoints/`, or from sequence 1.
    ///
    /// # Errors
    /// A damaged frontier file; a frontier past the log's end (the log lost events a written
    /// checkpoint covers); a log that no longer reaches back to where the tree must continue.
    pub fn open(
        config: Config,
        storage: &dyn Storage,
        dir: &Path,
        log: &annal_wal::LogView,
    ) -> Result<Self> {
        let frontier = match newest_frontier(storage, dir)? {
            Some(frontier) => {
                let size = frontier.size();
                let path = file(dir, size, "frontier");
                if size > log.last_seq() {
                    return Err(corrupt(
                        &path,
                        format!(
                            "a checkpoint covers {size} events but the log ends at sequence {}: \
                             events a checkpoint covers are missing",
                            log.last_seq()
                        ),
                    ));
                }
                frontier
            }
            None => Frontier::new(TREE_HASH),
        };
        // What a crash in `write_atomic` left behind.
        let cdir = dir.join(CHECKPOINTS_DIR);
        if storage.exists(&cdir).map_err(io("stat", &cdir))? {
            for name in storage.list_dir(&cdir).map_err(io("list", &cdir))? {
                if name.ends_with(annal_storage::TMP_SUFFIX) {
                    let path = cdir.join(&name);
                    storage.remove_file(&path).map_err(io("remove", &path))?;
                }
            }
        }
        let segments_created = log.stats().segments_created;
        Ok(Self {
            config,
            dir: dir.to_path_buf(),
            state: Mutex::new(State { frontier, segments_created }),
        })
    }

    /// Writes a checkpoint of the durable events if the log sealed a segment since the last one.
    pub fn after_append(&self, storage: &dyn Storage, log: &annal_wal::LogView) {
        let created = log.stats().segments_created;
        if self.state.lock().segments_created == created {
            return;
        }
        self.write_logged(storage, log, "segment seal");
    }

    /// Writes a checkpoint of the durable events now (a compaction), reporting failures.
    pub fn write_logged(&self, storage: &dyn Storage, log: &annal_wal::LogView, why: &str) {
        if let Err(e) = self.write(storage, log) {
            // The events are durable and acknowledged: a failed checkpoint must not fail
            // them. The next seal or compaction writes a newer one.
            tracing::error!(dir = %self.dir.display(), error = %e, at = why, "could not write a checkpoint");
        }
    }

    /// Extends the tree to the durable events and writes their checkpoint and frontier.
    ///
    /// # Errors
    /// Read, hash and write failures.
    pub fn write(&self, storage: &dyn Storage, log: &annal_wal::LogView) -> Result<Checkpoint> {
        let mut st = self.state.lock();
        let created = log.stats().segments_created;
        let durable = log.durable_seq();
        let mut frontier = st.frontier.clone();
        if durable > frontier.size() {
            let records = log.read_from(frontier.size() + 1).map(|r| r.map_err(Error::from));
            extend(&mut frontier, records, durable)?;
        }
        let checkpoint = Checkpoint {
            origin: self.config.origin.clone(),
            size: frontier.size(),
            root: frontier.root(),
            extensions: Vec::new(),
        };
        let text = match &self.config.signer {
            Some(signer) => annal_tlog::note::sign(&checkpoint.to_text(), &[signer])
                .map_err(|e| Error::Invalid(format!("signing the checkpoint: {e}")))?,
            None => checkpoint.to_text(),
        };
        let cdir = self.dir.join(CHECKPOINTS_DIR);
        annal_storage::ensure_dir(storage, &cdir).map_err(annal_wal::Error::from)?;
        // The frontier first: a crash between the two leaves a frontier without its
        // checkpoint, which the next checkpoint continues from, never the other way round.
        let fpath = file(&self.dir, checkpoint.size, "frontier");
        annal_storage::write_atomic(storage, &fpath, &encode(&frontier))
            .map_err(annal_wal::Error::from)?;
        let cpath = file(&self.dir, checkpoint.size, "checkpoint");
        annal_storage::write_atomic(storage, &cpath, text.as_bytes())
            .map_err(annal_wal::Error::from)?;
        tracing::info!(dir = %self.dir.display(), size = checkpoint.size, file = %cpath.display(), "wrote a checkpoint");
        st.frontier = frontier;
        st.segments_created = created;
        Ok(checkpoint)
    }
}

/// A checkpoint the journal wrote into `DIR/checkpoints/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCheckpoint {
    /// The tree size it checkpoints.
    pub size: u64,
    /// Its file.
    pub file: PathBuf,
    /// Its text: a signed note when the journal was given a key, else the checkpoint's text.
    pub text: String,
}

/// The checkpoints the journal in `dir` wrote itself (`DIR/checkpoints/*.checkpoint`), oldest
/// first.
///
/// # Errors
/// The directory cannot be listed or a file read.
pub(crate) fn written(storage: &dyn Storage, dir: &Path) -> Result<Vec<WrittenCheckpoint>> {
    let cdir = dir.join(CHECKPOINTS_DIR);
    if !storage.exists(&cdir).map_err(io("stat", &cdir))? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in storage.list_dir(&cdir).map_err(io("list", &cdir))? {
        let Some(size) = name.strip_suffix(".checkpoint").and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let path = cdir.join(&name);
        let text = String::from_utf8(read_whole(storage, &path)?)
            .map_err(|_| corrupt(&path, "not UTF-8"))?;
        out.push(WrittenCheckpoint { size, file: path, text });
    }
    out.sort_by_key(|c| c.size);
    Ok(out)
}
