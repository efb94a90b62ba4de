//! The snapshot candidates a repair weighs, and the MANIFEST commit that takes the unusable ones
//! out (after copying them into quarantine).

use super::*;

/// A MANIFEST entry read back from its file.
pub(super) fn candidate(storage: &dyn Storage, dir: &Path, r: &SnapshotRef) -> Candidate {
    let path = annal_compactor::snapshot_path(dir, &r.projection, r.seq);
    let (chain, bad) = match crate::compact::read_snapshot(storage, dir, r) {
        Ok(snap) => (Some(snap.chain), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Candidate { r: r.clone(), path, chain, bad }
}

/// Every snapshot file under `snapshots/`, read on its own (no MANIFEST to check it against).
pub(super) fn snapshot_files(storage: &dyn Storage, dir: &Path) -> Result<Vec<Candidate>> {
    let snaps = dir.join(SNAPSHOTS_DIR);
    let mut out = Vec::new();
    if !storage.exists(&snaps).map_err(io("stat", &snaps))? {
        return Ok(out);
    }
    let mut projections = storage.list_dir(&snaps).map_err(io("list", &snaps))?;
    projections.sort();
    for projection in projections {
        let pdir = snaps.join(&projection);
        let Ok(mut names) = storage.list_dir(&pdir) else { continue };
        names.sort();
        for name in names {
            let Some(seq) = annal_compactor::parse_snapshot_name(&name) else { continue };
            let path = pdir.join(&name);
            let r = SnapshotRef { projection: projection.clone(), schema_version: 0, seq, crc: 0 };
            out.push(match Snapshot::read(storage, &path, None) {
                Ok(snap) if snap.projection == projection && snap.seq == seq => {
                    let bytes = snap.encode()?;
                    let crc = u32::from_le_bytes(
                        bytes[bytes.len() - 4..]
                            .try_into()
                            .expect("a snapshot ends in its checksum"),
                    );
                    Candidate {
                        r: SnapshotRef { schema_version: snap.schema_version, crc, ..r },
                        path,
                        chain: Some(snap.chain),
                        bad: None,
                    }
                }
                Ok(snap) => Candidate {
                    r,
                    path,
                    chain: None,
                    bad: Some(format!(
                        "it holds {} at sequence {} under another name",
                        snap.projection, snap.seq
                    )),
                },
                Err(e) => Candidate { r, path, chain: None, bad: Some(e.to_string()) },
            });
        }
    }
    Ok(out)
}

pub(super) fn why_rewrite(found: &Found, otherwise: &str) -> String {
    match found {
        Found::Intact(_) => format!("it named {otherwise}"),
        Found::Missing => "it was missing".into(),
        Found::Damaged(why) => format!("it was damaged ({why})"),
    }
}

/// Copies a damaged MANIFEST and the snapshot files of `drop_` into quarantine.
pub(super) fn set_aside(
    storage: &dyn Storage,
    dir: &Path,
    why: &str,
    drop_: &[Candidate],
    report: &mut RepairReport,
) -> Result<()> {
    let manifest = dir.join(MANIFEST_FILE);
    if storage.exists(&manifest).map_err(io("stat", &manifest))?
        && Manifest::read(storage, dir).is_err()
    {
        let note = format!("damaged MANIFEST taken out by repair: {why}");
        report.quarantined.push(quarantine::copy(storage, dir, &manifest, &note)?);
    }
    for c in drop_ {
        if storage.exists(&c.path).map_err(io("stat", &c.path))? {
            let note = format!(
                "snapshot taken out of use by repair: {}",
                c.bad.as_deref().unwrap_or("the rebuilt MANIFEST does not name it")
            );
            report.quarantined.push(quarantine::copy(storage, dir, &c.path, &note)?);
        }
    }
    Ok(())
}

/// Removes the snapshot files of `drop_` (already in quarantine) and records them.
pub(super) fn take_out(
    storage: &dyn Storage,
    drop_: Vec<Candidate>,
    report: &mut RepairReport,
) -> Result<()> {
    for c in drop_ {
        if storage.exists(&c.path).map_err(io("stat", &c.path))? {
            remove(storage, &c.path)?;
        }
        report.snapshots_dropped.push((c.path, c.bad.unwrap_or_default()));
    }
    Ok(())
}

/// Takes `drop_` out of use without writing a MANIFEST (none is needed: the log reaches back
/// to sequence 1); a damaged MANIFEST is removed, after it is copied aside.
pub(super) fn drop_aside(
    storage: &dyn Storage,
    dir: &Path,
    found: &Found,
    drop_: Vec<Candidate>,
    report: &mut RepairReport,
) -> Result<()> {
    let why = why_rewrite(found, "nothing usable");
    set_aside(storage, dir, &why, &drop_, report)?;
    if let Found::Damaged(_) = found {
        remove(storage, &dir.join(MANIFEST_FILE))?;
        report.manifest_rewritten =
            Some(format!("{why}: removed, the log reaches back to sequence 1"));
    }
    take_out(storage, drop_, report)
}

/// Commits a MANIFEST naming `keep` with `log_start`, after copying a damaged MANIFEST and
/// every file of `drop_` into quarantine; then removes the dropped files.
#[expect(clippy::too_many_arguments, reason = "one commit step, every input named")]
pub(super) fn commit(
    storage: &dyn Storage,
    dir: &Path,
    base: &Manifest,
    log_start: u64,
    keep: Vec<Candidate>,
    drop_: Vec<Candidate>,
    why: &str,
    report: &mut RepairReport,
) -> Result<()> {
    set_aside(storage, dir, why, &drop_, report)?;
    if log_start > 1 {
        for c in &drop_ {
            let name = &c.r.projection;
            let continued =
                keep.iter().any(|k| &k.r.projection == name && k.r.seq + 1 >= log_start);
            if !continued && !report.projections_lost.iter().any(|(n, _)| n == name) {
                report.projections_lost.push((
                    name.clone(),
                    format!(
                        "its snapshot at sequence {} was taken out ({}) and the log starts at {log_start}",
                        c.r.seq,
                        c.bad.as_deref().unwrap_or("unusable")
                    ),
                ));
            }
        }
    }
    let mut snapshots: Vec<SnapshotRef> = keep.into_iter().map(|c| c.r).collect();
    snapshots.sort_by(|a, b| (&a.projection, a.seq).cmp(&(&b.projection, b.seq)));
    let manifest = Manifest { generation: base.generation + 1, log_start, snapshots };
    manifest.write(storage, dir)?;
    report.manifest_rewritten = Some(why.to_owned());
    take_out(storage, drop_, report)
}

pub(super) fn remove(storage: &dyn Storage, path: &Path) -> Result<()> {
    storage.remove_file(path).map_err(io("remove", path))?;
    if let Some(parent) = path.parent() {
        storage.sync_dir(parent).map_err(io("fsync directory", parent))?;
    }
    Ok(())
}
