//! Restarting the log past damage that snapshots cover, and rewriting a damaged segment header
//! whose chain value the log knows.

use super::*;

/// Restarts the log past `damage` from the first intact snapshot set at or past it that the
/// log can continue from. Returns whether it did.
///
/// Damage at a segment's start (a bad header, missing segments) can also be restarted from a
/// snapshot just before it. A restart a crash interrupted (its new segment written, the MANIFEST not yet
/// committed) is finished from the same snapshot.
pub(super) fn restart(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    scan: &LogScan,
    damage: &Damage,
    old: Option<&Manifest>,
    cands: &mut [Candidate],
    report: &mut RepairReport,
) -> Result<bool> {
    let at_segment_start = damage.offset < SEGMENT_HEADER_BYTES as u64;
    let mut points: Vec<(u64, ChainValue)> = cands
        .iter()
        .filter(|c| c.bad.is_none() && c.r.projection == StreamIndex::NAME)
        .filter(|c| c.r.seq >= damage.seq || (at_segment_start && c.r.seq + 1 == damage.seq))
        .filter_map(|c| c.chain.map(|chain| (c.r.seq, chain)))
        .collect();
    points.sort_by_key(|p| p.0);
    if let Some(done) = points.iter().copied().find(|p| half_done(storage.as_ref(), scan, *p)) {
        points = vec![done];
    }
    // The first point the log continues from; but when nothing of the log survives past it (an
    // empty restart), the newest such point, whose snapshots hold the most.
    let mut chosen: Option<(u64, ChainValue, Continuation, bool)> = None;
    for (s, chain) in points {
        let Some(plan) = continue_from(storage.as_ref(), scan, s, chain)? else { continue };
        let empty = plan.image.as_ref().is_some_and(|i| i.last_seq == s);
        match &chosen {
            None => chosen = Some((s, chain, plan, empty)),
            Some((.., true)) if empty => chosen = Some((s, chain, plan, empty)),
            Some(_) => break,
        }
    }
    if let Some((s, chain, plan, _)) = chosen {
        // Copies first, then the new segment, then the commit, then the removals: a crash at any
        // point leaves files that a later repair (or an open) continues from.
        let doomed: Vec<PathBuf> = scan
            .segments
            .iter()
            .filter(|seg| seg.first_seq <= s)
            .map(|seg| seg.path.clone())
            .collect();
        // A segment at s + 1 that is rewritten (its header was damaged) is replaced in place.
        let replaced = scan
            .segments
            .iter()
            .find(|seg| seg.first_seq == s + 1 && plan.image.is_some())
            .map(|seg| seg.path.clone());
        let note = format!(
            "taken out of wal/ by repair: damage in {} at byte offset {} (sequence {}): {}; the log restarts at \
             sequence {} from the snapshots at {s}",
            damage.file.display(),
            damage.offset,
            damage.seq,
            damage.reason,
            s + 1
        );
        for path in doomed.iter().chain(&replaced) {
            report.quarantined.push(quarantine::copy(storage.as_ref(), dir, path, &note)?);
        }
        let rewritten = match &plan.image {
            Some(image) => Some(image.write(storage.as_ref(), dir)?),
            None => None,
        };
        for c in cands.iter_mut().filter(|c| c.bad.is_none()) {
            let checked = plan.chains.iter().find(|(q, _)| *q == c.r.seq).map(|(_, ch)| *ch);
            c.bad = if c.r.seq < s {
                Some(format!("the log now restarts at sequence {} past damage", s + 1))
            } else if c.r.seq == s && c.chain != Some(chain) {
                Some(format!("its chain value differs from the stream index's at sequence {s}"))
            } else if c.r.seq > s && checked.is_none() {
                Some(format!(
                    "it stands past the damage at sequence {} where the log cannot check it; the snapshots at {s} are used",
                    damage.seq
                ))
            } else if checked.is_some_and(|ch| c.chain != Some(ch)) {
                Some(format!(
                    "its chain value differs from the log's at sequence {}: it does not belong to this log",
                    c.r.seq
                ))
            } else {
                None
            };
        }
        let (keep, drop_): (Vec<_>, Vec<_>) = cands.iter().cloned().partition(|c| c.bad.is_none());
        let base = old.cloned().unwrap_or_default();
        let why = format!(
            "the log restarts at sequence {} past damage at sequence {}",
            s + 1,
            damage.seq
        );
        commit(storage.as_ref(), dir, &base, s + 1, keep, drop_, &why, report)?;
        for path in &doomed {
            storage.remove_file(path).map_err(io("remove", path))?;
        }
        let wal_dir = dir.join(annal_wal::WAL_DIR);
        storage.sync_dir(&wal_dir).map_err(io("fsync directory", &wal_dir))?;
        report.restart = Some(Restart {
            damage: damage.clone(),
            snapshot_seq: s,
            log_start: s + 1,
            rewritten,
            removed_segments: doomed,
        });
        return Ok(true);
    }
    Ok(false)
}

/// Rewrites a segment whose header is damaged while the chain value before it is known (the
/// log's start, or the intact records before it), from its intact frames, when they reach the
/// segment's known end: nothing is lost, and the damaged file is copied into quarantine first.
/// Returns what undoes it (the plan that follows may still refuse), or `None` when it did not.
pub(super) fn rewrite_header(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    scan: &LogScan,
    damage: &Damage,
    report: &mut RepairReport,
) -> Result<Option<Undo>> {
    let Some(i) = scan.segments.iter().position(|seg| seg.first_seq == damage.seq) else {
        return Ok(None);
    };
    let seg = &scan.segments[i];
    if damage.offset >= SEGMENT_HEADER_BYTES as u64 || seg.chain_before.is_some() {
        return Ok(None);
    }
    let chain = if damage.seq == 1 {
        annal_wal::CHAIN_START
    } else if damage.seq > scan.first_seq() && scan.last_good + 1 == damage.seq {
        scan.chain_head
    } else {
        return Ok(None);
    };
    let Some(Continuation { image: Some(image), .. }) =
        continue_from(storage.as_ref(), scan, damage.seq - 1, chain)?
    else {
        return Ok(None);
    };
    // Frames short of the segment's known end: more damage inside it, which a restart or a cut
    // judges better on the original bytes.
    let end = seg
        .footer
        .map(|f| f.last_seq)
        .or_else(|| scan.segments.get(i + 1).map(|n| n.first_seq - 1));
    if end.is_some_and(|e| e != image.last_seq) {
        return Ok(None);
    }
    let original = storage.map_file(&seg.path).map_err(io("read", &seg.path))?.to_vec();
    let note = format!(
        "segment header rewritten by repair: {} at byte offset {}; the chain value before sequence {} is the log's",
        damage.reason, damage.offset, damage.seq
    );
    let copy = quarantine::copy(storage.as_ref(), dir, &seg.path, &note)?;
    report.quarantined.push(copy.clone());
    report.headers_rewritten.push(image.write(storage.as_ref(), dir)?);
    Ok(Some(Undo { path: seg.path.clone(), original, copy }))
}

/// How to put back a segment [`rewrite_header`] rewrote, when the rest of the plan refuses.
pub(super) struct Undo {
    pub(super) path: PathBuf,
    pub(super) original: Vec<u8>,
    pub(super) copy: PathBuf,
}

impl Undo {
    /// Restores the original bytes and removes the quarantine copy and its note, so that a
    /// refusal leaves every file as it found it.
    pub(super) fn apply(self, storage: &dyn Storage, report: &mut RepairReport) -> Result<()> {
        annal_storage::write_atomic(storage, &self.path, &self.original)
            .map_err(|e| Error::Wal(e.into()))?;
        let mut note = self.copy.clone().into_os_string();
        note.push(".why.txt");
        for p in [self.copy.clone(), PathBuf::from(note)] {
            remove(storage, &p)?;
        }
        report.quarantined.retain(|q| *q != self.copy);
        report.headers_rewritten.retain(|h| *h != self.path);
        Ok(())
    }
}

/// Whether a restart from `(s, chain)` was begun and not finished: a segment starts at `s + 1`
/// with that chain value while an older segment still holds records past `s`, which only a
/// restart that wrote the new segment and was stopped before its commit leaves.
pub(super) fn half_done(
    storage: &dyn Storage,
    scan: &LogScan,
    (s, chain): (u64, ChainValue),
) -> bool {
    let segs = &scan.segments;
    let Some(i) = segs.iter().position(|seg| seg.first_seq == s + 1) else { return false };
    if i == 0 || segs[i].chain_before != Some(chain) {
        return false;
    }
    let prev = &segs[i - 1];
    if let Some(footer) = prev.footer {
        return footer.last_seq > s;
    }
    storage
        .map_file(&prev.path)
        .is_ok_and(|bytes| salvage::intact_frames(&bytes).iter().any(|f| f.last_seq() > s))
}

/// How the log continues past a snapshot at `s` whose chain value is `chain`.
pub(super) struct Continuation {
    /// The segment to write from `s + 1` on with the intact frames past `s` (a header alone
    /// when there are none); `None` when a segment already starts at `s + 1` and continues the
    /// chain.
    pub(super) image: Option<SegmentImage>,
    /// Chain values computed along the rewritten records.
    pub(super) chains: Vec<(u64, ChainValue)>,
}

pub(super) fn continue_from(
    storage: &dyn Storage,
    scan: &LogScan,
    s: u64,
    chain: ChainValue,
) -> Result<Option<Continuation>> {
    let segs = &scan.segments;
    let (i, holder) = match segs.iter().position(|seg| seg.first_seq == s + 1) {
        // A segment that starts right after the snapshot: the log continues from it unchanged,
        // or, when its header is damaged, from its frames rewritten under a new header.
        Some(i) => match segs[i].chain_before {
            Some(before) if before == chain => {
                // The chain values along what follows, so that later snapshots can be checked.
                let mut chains = Vec::new();
                follow_chain(storage, &segs[i..], s + 1, chain, &mut chains);
                return Ok(Some(Continuation { image: None, chains }));
            }
            Some(_) => return Ok(None),
            None => (i, &segs[i]),
        },
        None => match segs.iter().rposition(|seg| seg.first_seq <= s) {
            Some(i) => (i, &segs[i]),
            // No segment at all (every one is missing): the log restarts empty past the snapshot.
            None if segs.is_empty() => {
                let image = SegmentImage::new(s + 1, chain, StoreKind::Journal, &[]).ok();
                return Ok(
                    image.map(|image| Continuation { image: Some(image), chains: Vec::new() })
                );
            }
            None => return Ok(None),
        },
    };
    let bytes = storage.map_file(&holder.path).map_err(io("read", &holder.path))?;
    let intact = salvage::intact_frames(&bytes);
    let mut frames = Vec::new();
    let mut next = s + 1;
    for f in intact.iter().filter(|f| f.last_seq() > s) {
        if f.first_seq != next {
            break;
        }
        next = f.last_seq() + 1;
        frames.push(f.clone());
    }
    // The snapshot must stand at a frame boundary and the holder must reach it.
    let held_to_s = holder.first_seq == s + 1
        || frames
            .first()
            .map_or_else(|| intact.iter().any(|f| f.last_seq() == s), |f| f.first_seq == s + 1);
    if !held_to_s {
        // The log ends before the snapshot (its last segment holds nothing from `s` on): it
        // restarts empty past the snapshot, which holds the state of what was lost.
        let ends_before = i + 1 == segs.len()
            && frames.is_empty()
            && intact.iter().all(|f| f.last_seq() < s)
            && holder.footer.is_none_or(|f| f.last_seq < s);
        if ends_before && let Ok(image) = SegmentImage::new(s + 1, chain, StoreKind::Journal, &[]) {
            return Ok(Some(Continuation { image: Some(image), chains: Vec::new() }));
        }
        return Ok(None);
    }
    let mut chains = Vec::new();
    let mut c = chain;
    for f in &frames {
        for (k, (ts, payload)) in f.records.iter().enumerate() {
            let seq = f.first_seq + k as u64;
            c = annal_wal::chain_next(&c, seq, *ts, payload);
            chains.push((seq, c));
        }
    }
    // Where the holder is known to end, the frames must reach it and continue into what follows
    // with the same chain value. Short of it, what follows is damage too: the log's repair cuts
    // it after the new segment.
    let end =
        holder.footer.map(|f| f.last_seq).or_else(|| segs.get(i + 1).map(|n| n.first_seq - 1));
    if end == Some(next - 1) {
        let expected =
            segs.get(i + 1).and_then(|n| n.chain_before).or(holder.footer.map(|f| f.chain_after));
        if expected.is_some_and(|e| e != c) {
            return Ok(None);
        }
    }
    // The new segment is built (and checked) before anything is changed.
    let Ok(image) = SegmentImage::new(s + 1, chain, StoreKind::Journal, &frames) else {
        return Ok(None);
    };
    if end == Some(next - 1) {
        follow_chain(storage, &segs[i + 1..], next, c, &mut chains);
    }
    Ok(Some(Continuation { image: Some(image), chains }))
}

/// Extends `chains` along `segs` (oldest first) from sequence `next`, whose chain value before
/// is `chain`, through their intact frames for as long as they continue the log: each segment
/// must start at the next sequence number with that chain value in its header.
pub(super) fn follow_chain(
    storage: &dyn Storage,
    segs: &[salvage::SegmentFile],
    mut next: u64,
    mut chain: ChainValue,
    chains: &mut Vec<(u64, ChainValue)>,
) {
    for seg in segs {
        if seg.first_seq != next || seg.chain_before != Some(chain) {
            return;
        }
        let Ok(bytes) = storage.map_file(&seg.path) else { return };
        for f in salvage::intact_frames(&bytes) {
            if f.first_seq != next {
                return;
            }
            for (k, (ts, payload)) in f.records.iter().enumerate() {
                let seq = f.first_seq + k as u64;
                chain = annal_wal::chain_next(&chain, seq, *ts, payload);
                chains.push((seq, chain));
            }
            next = f.last_seq() + 1;
        }
        if seg.footer.is_some_and(|footer| footer.last_seq + 1 != next) {
            return;
        }
    }
}
