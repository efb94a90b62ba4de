//! The verifiable log under the harness: a checkpoint of the durable events, taken at a sync,
//! must stay consistent with the tree after every later crash and recovery (a consistency
//! proof from it verifies), a random event's inclusion proof verifies against it, and the tree
//! a directory reader computes equals the one over the journal's own records.

use std::path::Path;
use std::sync::Arc;

use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::tree::root_of;
use annal::{Journal, JournalReader};
use annal_storage::Storage;

use crate::check::Violation;
use crate::rng::Rng;

/// The origin of the checkpoints the harness journals write.
pub const ORIGIN: &str = "harness";

/// Checks every checkpoint the journal wrote itself against the recovered log that ends at
/// `last`: none covers more events than it holds (a checkpoint is only ever taken of durable
/// events), and each one's root is the tree of that many events (when the log still reaches
/// back to sequence 1). Returns how many were checked.
///
/// # Errors
/// The first checkpoint that does not hold.
pub fn check_written(storage: &Arc<dyn Storage>, dir: &Path, last: u64) -> Result<u64, Violation> {
    let fail = |what: String| Violation::new("journal-written checkpoints", what);
    let r = reader(storage, dir).map_err(|e| fail(format!("reader: {e}")))?;
    let written = r.written_checkpoints().map_err(|e| fail(format!("list: {e}")))?;
    let mut checked = 0;
    for w in &written {
        let c = Checkpoint::parse(&w.text)
            .map_err(|e| fail(format!("{}: not a checkpoint: {e}", w.file.display())))?;
        if c.size != w.size || c.origin != ORIGIN {
            return Err(fail(format!(
                "{}: names size {} origin {:?}",
                w.file.display(),
                c.size,
                c.origin
            )));
        }
        if c.size > last {
            return Err(fail(format!(
                "{} covers {} events but the recovered log ends at {last}: it checkpointed events that were not durable",
                w.file.display(),
                c.size
            )));
        }
        match r.checkpoint(ORIGIN, Some(c.size)) {
            Ok(now) if now.root == c.root => checked += 1,
            Ok(_) => {
                return Err(fail(format!(
                    "{}: its root is not the tree of the first {} events of the recovered log",
                    w.file.display(),
                    c.size
                )));
            }
            Err(e) if unreachable(&e) => {}
            Err(e) => return Err(fail(format!("tree of {}: {e}", c.size))),
        }
    }
    Ok(checked)
}

fn reader(storage: &Arc<dyn Storage>, dir: &Path) -> annal::Result<JournalReader> {
    JournalReader::open_with(Arc::clone(storage), dir)
}

/// Whether `e` says the tree cannot be computed: events below the log start were deleted.
fn unreachable(e: &annal::Error) -> bool {
    e.is_before_start()
}

/// The checkpoint of the first `durable` events; `None` when the log no longer reaches back to
/// sequence 1 (compacted without `archive/`).
///
/// # Errors
/// Any other failure to compute it.
pub fn take(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    durable: u64,
) -> Result<Option<Checkpoint>, Violation> {
    let fail = |e: annal::Error| Violation::new("tree", format!("checkpoint of {durable}: {e}"));
    match reader(storage, dir).and_then(|r| r.checkpoint("harness", Some(durable))) {
        Ok(c) => Ok(Some(c)),
        Err(e) if unreachable(&e) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// Checks the recovered store against `old`, a checkpoint of durable events taken before:
/// consistency, one inclusion proof, and the reader's tree against the journal's records.
/// Returns whether the checks ran (not when the log no longer reaches back to sequence 1).
///
/// # Errors
/// The first check that fails.
pub fn check(
    journal: &Journal,
    storage: &Arc<dyn Storage>,
    dir: &Path,
    old: &Checkpoint,
    rng: &mut Rng,
) -> Result<bool, Violation> {
    let fail = |what: String| Violation::new("tree", what);
    let r = reader(storage, dir).map_err(|e| fail(format!("reader: {e}")))?;
    let now = match r.checkpoint("harness", None) {
        Ok(c) => c,
        Err(e) if unreachable(&e) => return Ok(false),
        Err(e) => return Err(fail(format!("checkpoint after recovery: {e}"))),
    };
    let leaves: Vec<_> = journal
        .log()
        .read_from(1)
        .map(|r| r.map(|r| annal::leaf_hash(r.seq, r.ts, &r.payload)))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("the journal's records: {e}")))?;
    if root_of(annal::TREE_HASH, &leaves) != now.root || leaves.len() as u64 != now.size {
        return Err(fail("the directory reader's tree differs from the journal's records".into()));
    }
    let proof = r
        .consistency_proof(old.size, None)
        .map_err(|e| fail(format!("consistency proof from {}: {e}", old.size)))?;
    proof.verify(&[old.clone(), now.clone()]).map_err(|e| {
        fail(format!(
            "the checkpoint of {} durable events is not consistent with the tree of {} after recovery: {e}",
            old.size, now.size
        ))
    })?;
    if old.size > 0 {
        let seq = rng.range(1, old.size);
        let p = r
            .inclusion_proof(seq, Some(old.size))
            .map_err(|e| fail(format!("inclusion proof of {seq}: {e}")))?;
        p.verify(old).map_err(|e| fail(format!("inclusion of {seq} in {}: {e}", old.size)))?;
    }
    Ok(true)
}
