//! annal-compactor: snapshots, the MANIFEST and the truncation point.
//!
//! A compaction writes one snapshot per projection at a sequence number S, each atomically
//! (temporary file, fdatasync, rename, directory fsync), then commits a new MANIFEST (same
//! procedure): the MANIFEST is the single commit point, naming the log start and the snapshots
//! in force. Only after it is durable are segments below the log start and snapshots beyond
//! retention removed. A crash at any step leaves either the old MANIFEST with the old files or
//! the new one with the new files; leftovers (temporary files, snapshots the MANIFEST does not
//! name) are removed by [`cleanup`] at the next open.
//!
//! This crate knows files, not projections: the journal (`annal`) decides what to snapshot.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use annal_compactor::{Manifest, Snapshot, SnapshotRef};
//! use annal_storage::{SimStorage, Storage};
//!
//! # fn main() -> Result<(), annal_compactor::Error> {
//! let storage = SimStorage::new(1);
//! let dir = std::path::Path::new("/store");
//! let snap = Snapshot { projection: "counts".into(), schema_version: 1, seq: 10, chain: [0; 32], state: vec![0x90] };
//! let (path, crc) = snap.write(&storage, dir)?;
//! let manifest = Manifest { generation: 1, log_start: 1, snapshots: vec![SnapshotRef { projection: "counts".into(), schema_version: 1, seq: 10, crc }] };
//! manifest.write(&storage, dir)?;
//! assert_eq!(Manifest::read(&storage, dir)?, Some(manifest));
//! assert_eq!(Snapshot::read(&storage, &path, Some(crc))?, snap);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod manifest;
mod read;
mod snapshot;

use std::path::{Path, PathBuf};

use annal_storage::Storage;

use annal_storage::TMP_SUFFIX;
pub use error::{Error, Result};
pub use manifest::{MANIFEST_FILE, Manifest, SnapshotRef};
pub use read::read_limited;
pub use snapshot::{
    PROJECTION_NAME_BYTES_MAX, SNAPSHOT_BYTES_MAX, SNAPSHOTS_DIR, Snapshot, check_projection_name,
    parse_snapshot_name, snapshot_path,
};

/// Removes what an interrupted compaction or an old retention left behind: temporary files in
/// the store directory and under `snapshots/`, and snapshot files the MANIFEST does not name.
/// Directories are fsynced after removals. Returns the removed paths.
///
/// # Errors
/// I/O errors.
pub fn cleanup(
    storage: &dyn Storage,
    dir: &Path,
    manifest: Option<&Manifest>,
) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::io(op, p, e)
    };
    let remove_in =
        |d: &Path, keep: &dyn Fn(&str) -> bool, removed: &mut Vec<PathBuf>| -> Result<()> {
            let mut any = false;
            for name in storage.list_dir(d).map_err(io("list", d))? {
                let path = d.join(&name);
                let is_dir = storage.list_dir(&path).is_ok();
                if is_dir || keep(&name) {
                    continue;
                }
                storage.remove_file(&path).map_err(io("remove", &path))?;
                removed.push(path);
                any = true;
            }
            if any {
                storage.sync_dir(d).map_err(io("fsync directory", d))?;
            }
            Ok(())
        };
    if storage.exists(dir).map_err(io("stat", dir))? {
        remove_in(dir, &|name: &str| !name.ends_with(TMP_SUFFIX), &mut removed)?;
    }
    let snaps = dir.join(SNAPSHOTS_DIR);
    if storage.exists(&snaps).map_err(io("stat", &snaps))? {
        for projection in storage.list_dir(&snaps).map_err(io("list", &snaps))? {
            let pdir = snaps.join(&projection);
            if storage.list_dir(&pdir).is_err() {
                continue;
            }
            // Without a MANIFEST (never compacted, or one moved aside) no snapshot is known to
            // be unused: none is removed, only temporary files.
            let keep = |name: &str| {
                parse_snapshot_name(name).is_some_and(|seq| {
                    manifest.is_none_or(|m| m.snapshots_of(&projection).any(|s| s.seq == seq))
                })
            };
            remove_in(&pdir, &keep, &mut removed)?;
        }
    }
    Ok(removed)
}
