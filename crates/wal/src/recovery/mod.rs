//! Open-time recovery. Costs the active segment's written data (never its preallocated zeros):
//! sealed segments are checked by their header and footer only (their frames are checked when
//! read, and by [`LogView::verify`](crate::LogView::verify)), except in
//! `TruncateAtCorruption`, the explicit repair, which reads everything.

use std::path::{Path, PathBuf};

use crate::chain::{CHAIN_START, ChainValue};
use crate::error::{Error, Result};
use crate::format::{
    self, CLEAN_CLOSE_BYTES, CLEAN_CLOSE_FILE, CleanClose, FOOTER_BYTES, Footer,
    INDEX_INTERVAL_BYTES, SEGMENT_HEADER_BYTES, SegmentHeader,
};
use crate::log::{ActiveSeg, Options, RecoveryMode, SealedSeg};
use crate::scan::{End, ScanOptions, scan_segment};
use crate::storage::{OpenMode, Storage, StorageFile};
use crate::writer::create_segment_on;

mod report;

pub use report::{Cut, RecoveryReport, TornTail};

/// Bytes past a cleanly closed segment's frames that opening reads to see that nothing but
/// preallocated zeros follows them.
const CLEAN_CLOSE_SLACK_BYTES: u64 = 4096;

pub(crate) struct Recovered {
    pub next_seq: u64,
    pub start_seq: u64,
    pub last_ts: u64,
    pub chain: ChainValue,
    pub active: ActiveSeg,
    pub sealed: Vec<SealedSeg>,
    pub file: Box<dyn StorageFile>,
    pub report: RecoveryReport,
}

struct Ctx<'a> {
    storage: &'a dyn Storage,
    dir: &'a Path,
    wal_dir: &'a Path,
    options: &'a Options,
    report: RecoveryReport,
    /// The record of the previous writer's clean close, if it closed cleanly.
    clean: Option<CleanClose>,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

pub(crate) fn recover(
    storage: &dyn Storage,
    dir: &Path,
    wal_dir: &Path,
    options: &Options,
) -> Result<Recovered> {
    let mut cx =
        Ctx { storage, dir, wal_dir, options, report: RecoveryReport::default(), clean: None };
    cx.clean = cx.read_clean_close()?;
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for name in storage.list_dir(wal_dir).map_err(io_err("list", wal_dir))? {
        let path = wal_dir.join(&name);
        if let Some(seq) = format::parse_segment_file_name(&name) {
            segments.push((seq, path));
        } else if name.ends_with(".tmp") {
            storage.remove_file(&path).map_err(io_err("remove", &path))?;
            cx.report.removed_temp_files.push(path);
        }
    }
    if !cx.report.removed_temp_files.is_empty() {
        storage.sync_dir(wal_dir).map_err(io_err("fsync directory", wal_dir))?;
    }
    segments.sort();
    // Finish a truncation a crash interrupted: a segment whose successor starts at or below the
    // log start holds only records below it.
    // The last segment below the log start stays known: a tail whose creation a crash
    // interrupted is rebuilt from its footer's chain value. They are removed only once the tail
    // is recovered, so that a failure in between leaves them for the next open.
    let mut discarded: Option<SealedSeg> = None;
    let mut to_discard = Vec::new();
    while segments.len() > 1 && segments[1].0 <= options.log_start {
        let (first_seq, path) = segments.remove(0);
        discarded = check_sealed_light(storage, &path, first_seq, discarded.as_ref()).ok();
        to_discard.push(path);
    }
    cx.report.segments = segments.len();

    let full_check = options.recovery == RecoveryMode::TruncateAtCorruption;
    let mut sealed: Vec<SealedSeg> = Vec::new();
    let mut tail: Option<(u64, PathBuf)> = segments.pop();
    for (i, (first_seq, path)) in segments.iter().enumerate() {
        let expected = sealed.last().map(|s| s.last_seq + 1);
        let checked = if full_check {
            check_sealed_full(storage, path, *first_seq, sealed.last())
        } else {
            check_sealed_light(storage, path, *first_seq, sealed.last())
        };
        let problem = match checked {
            Ok(seg) if expected.is_none_or(|e| e == seg.first_seq) => {
                sealed.push(seg);
                continue;
            }
            Ok(seg) => Problem {
                offset: 0,
                seq: expected.unwrap_or(seg.first_seq),
                reason: format!(
                    "segment starts at sequence {} but the previous one ends at {}",
                    seg.first_seq,
                    expected.unwrap_or(1) - 1
                ),
            },
            Err(problem) => problem,
        };
        if !full_check {
            return Err(Error::corrupt(path, problem.offset, problem.seq, problem.reason));
        }
        // The explicit repair: cut here, move every later segment to quarantine.
        for (_, later) in segments.iter().skip(i + 1).chain(tail.iter()) {
            cx.quarantine_move(later, &format!("moved out by repair: an earlier segment {} was cut at byte offset {} (sequence {}): {}", path.display(), problem.offset, problem.seq, problem.reason))?;
        }
        tail = None;
        cx.report.cut = Some(Cut {
            file: path.clone(),
            offset: problem.offset,
            seq: problem.seq,
            reason: problem.reason.clone(),
        });
        if problem.offset < SEGMENT_HEADER_BYTES as u64 {
            cx.quarantine_move(path, &format!("segment header damaged: {}", problem.reason))?;
        } else {
            cx.cut_segment(path, problem.offset, &problem.reason)?;
            tail = Some((*first_seq, path.clone()));
        }
        break;
    }
    let prev = sealed.last().cloned().or(discarded);
    if full_check
        && cx.report.cut.is_none()
        && let (Some((first_seq, path)), Some(p)) = (&tail, &prev)
        && *first_seq != p.last_seq + 1
    {
        // The explicit repair: segments between the last sealed one and the tail are missing.
        let reason = format!(
            "segment starts at sequence {first_seq} but the previous one ends at {}: segments are missing",
            p.last_seq
        );
        cx.quarantine_move(path, &format!("moved out by repair: {reason}"))?;
        cx.report.cut = Some(Cut { file: path.clone(), offset: 0, seq: p.last_seq + 1, reason });
        tail = None;
    }
    if tail.is_none() && sealed.is_empty() && options.log_start > 1 && cx.report.cut.is_none() {
        return Err(Error::corrupt(
            wal_dir,
            0,
            options.log_start,
            format!(
                "no segment, but the log is recorded to start at sequence {}: segments are missing",
                options.log_start
            ),
        ));
    }
    if tail.is_none()
        && let Some(clean) = cx.clean
        && clean.last_seq >= prev.as_ref().map_or(1, |p| p.last_seq + 1)
        && options.recovery != RecoveryMode::TruncateAtCorruption
    {
        return Err(Error::corrupt(
            wal_dir,
            0,
            clean.first_seq,
            format!(
                "segments are missing: the log was closed cleanly with its last segment starting \
                 at sequence {} and ending at {}",
                clean.first_seq, clean.last_seq
            ),
        ));
    }
    let (active, file, last_ts, chain) = match tail {
        Some((first_seq, path)) => cx.recover_tail(&path, first_seq, prev.as_ref(), &mut sealed)?,
        None => {
            let (first_seq, chain) =
                prev.as_ref().map_or((1, CHAIN_START), |p| (p.last_seq + 1, p.chain_after));
            let path = wal_dir.join(format::segment_file_name(first_seq));
            let header =
                SegmentHeader { first_seq, chain_before: chain, kind: options.kind }.encode();
            let file = create_segment_on(storage, wal_dir, &path, &header, options)?;
            let last_ts = prev.as_ref().map_or(0, |p| p.last_ts);
            (ActiveSeg::new(first_seq, path, chain, options.kind), file, last_ts, chain)
        }
    };
    for path in to_discard {
        crate::log::remove_segment(storage, dir, &path, options.archive)?;
        cx.report.truncated_segments.push(path);
    }
    // From here on this writer may append: the clean-close record no longer describes the log.
    // Its removal is made durable by the directory fsync below, before any append.
    let clean_path = wal_dir.join(CLEAN_CLOSE_FILE);
    if storage.exists(&clean_path).map_err(io_err("stat", &clean_path))? {
        storage.remove_file(&clean_path).map_err(io_err("remove", &clean_path))?;
    }
    // An earlier writer may have created entries whose directory fsync failed or never came
    // (a reopen without a reboot after a failed roll): make every entry durable before frames
    // written from now on can depend on them.
    storage.sync_dir(wal_dir).map_err(io_err("fsync directory", wal_dir))?;
    let start_seq = sealed.first().map(|s| s.first_seq);
    let next_seq = active.first_seq + active.record_count;
    cx.report.last_seq = next_seq - 1;
    Ok(Recovered {
        next_seq,
        start_seq: start_seq.unwrap_or(active.first_seq),
        last_ts,
        chain,
        active,
        sealed,
        file,
        report: cx.report,
    })
}

/// Makes bytes `from..to` of a recovered segment durable before any frame written from now on
/// claims them below its watermark.
///
/// An fdatasync alone is not enough: if the previous writer's fdatasync failed, Linux may have
/// marked the unwritten pages clean, so the page cache serves bytes the disk does not hold and a
/// new fdatasync has nothing to flush. Rewriting the bytes that no frame proves durable (those
/// from the highest watermark on) dirties those pages again, so the fdatasync really writes them.
/// Below the watermark a successful fdatasync already covered the bytes.
fn make_durable(
    file: &dyn StorageFile,
    path: &Path,
    bytes: &[u8],
    from: u64,
    to: u64,
) -> Result<()> {
    let start = usize::try_from(from).expect("offset within the file");
    let end = usize::try_from(to).expect("offset within the file");
    if start < end {
        file.write_all_at(&bytes[start..end], from).map_err(io_err("rewrite", path))?;
    }
    file.sync_data().map_err(io_err("fdatasync", path))
}

/// Damage found in a segment: where, which sequence number was expected there, and what.
pub(crate) struct Problem {
    offset: u64,
    seq: u64,
    reason: String,
}

fn sealed_from(path: &Path, header: SegmentHeader, footer: Footer) -> SealedSeg {
    SealedSeg {
        first_seq: header.first_seq,
        last_seq: footer.last_seq,
        last_ts: footer.last_ts,
        chain_before: header.chain_before,
        chain_after: footer.chain_after,
        path: path.to_path_buf(),
        data_end: footer.data_end,
        on_disk: true,
        index: None,
    }
}

/// Checks a sealed segment's header and footer only.
fn check_sealed_light(
    storage: &dyn Storage,
    path: &Path,
    first_seq: u64,
    prev: Option<&SealedSeg>,
) -> std::result::Result<SealedSeg, Problem> {
    let problem = |offset: u64, reason: String| Problem { offset, seq: first_seq, reason };
    let file = storage
        .open_file(path, OpenMode::Read)
        .map_err(|e| problem(0, format!("cannot open: {e}")))?;
    let len = file.len().map_err(|e| problem(0, format!("cannot stat: {e}")))?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    file.read_exact_at(&mut header, 0).map_err(|e| problem(0, format!("segment header: {e}")))?;
    let header =
        SegmentHeader::decode(&header).map_err(|e| problem(0, format!("segment header: {e}")))?;
    if header.first_seq != first_seq {
        return Err(problem(
            0,
            format!(
                "header names first sequence {} but the file name {first_seq}",
                header.first_seq
            ),
        ));
    }
    if prev.is_none() && first_seq == 1 && header.chain_before != CHAIN_START {
        return Err(problem(0, "the first segment's chain does not start from zero".into()));
    }
    if prev.is_some_and(|p| p.chain_after != header.chain_before) {
        return Err(problem(
            0,
            "chain value before the first record differs from the previous segment's last".into(),
        ));
    }
    let footer_at =
        len.checked_sub(FOOTER_BYTES as u64).filter(|&at| at >= SEGMENT_HEADER_BYTES as u64);
    let Some(footer_at) = footer_at else {
        return Err(problem(len, "sealed segment too short for a footer (missing seal)".into()));
    };
    let mut footer = [0u8; FOOTER_BYTES];
    file.read_exact_at(&mut footer, footer_at)
        .map_err(|e| problem(footer_at, format!("footer: {e}")))?;
    let footer = Footer::decode(&footer)
        .map_err(|e| problem(footer_at, format!("footer of a sealed segment: {e}")))?;
    if footer.last_seq < first_seq || footer.last_seq - first_seq + 1 != footer.record_count {
        return Err(problem(footer_at, "footer record count and last sequence disagree".into()));
    }
    if footer.data_end > footer_at {
        return Err(problem(footer_at, "footer data end lies past the footer".into()));
    }
    Ok(sealed_from(path, header, footer))
}

/// Reads and checks every frame of a sealed segment, its seal and its chain.
pub(crate) fn check_sealed_full(
    storage: &dyn Storage,
    path: &Path,
    first_seq: u64,
    prev: Option<&SealedSeg>,
) -> std::result::Result<SealedSeg, Problem> {
    let bytes = storage.map_file(path).map_err(|e| Problem {
        offset: 0,
        seq: first_seq,
        reason: format!("cannot read: {e}"),
    })?;
    let prev_ts = prev.map_or(0, |p| p.last_ts);
    let scan =
        scan_segment(&bytes, first_seq, ScanOptions { chain: true, prev_ts }).map_err(|e| {
            Problem { offset: 0, seq: first_seq, reason: format!("segment header: {}", e.0) }
        })?;
    if prev.is_some_and(|p| p.chain_after != scan.header.chain_before) {
        return Err(Problem {
            offset: 0,
            seq: first_seq,
            reason: "chain value before the first record differs from the previous segment's last"
                .into(),
        });
    }
    let fail = |offset: u64, reason: String| Problem { offset, seq: scan.last_seq + 1, reason };
    match &scan.end {
        End::Sealed { footer, .. } if footer.chain_after == scan.chain_after => {
            Ok(sealed_from(path, scan.header, *footer))
        }
        End::Sealed { .. } => Err(fail(
            scan.valid_end,
            "footer chain value differs from the chain of the frames".into(),
        )),
        End::Corrupt { offset, reason, .. } => Err(fail(*offset, reason.clone())),
        // In a sealed segment every byte was durable: any damage is corruption.
        End::Torn { reason, .. } => {
            Err(fail(scan.valid_end, format!("{reason} (in a sealed segment)")))
        }
        End::Clean => {
            Err(fail(scan.valid_end, "sealed segment has no index block and footer".into()))
        }
    }
}

/// Why a scan of the last segment contradicts the clean-close record: every frame up to its
/// data end was synced, so anything short of it is damage, never a torn tail.
fn clean_close_mismatch(clean: &CleanClose, scan: &crate::scan::Scan) -> Option<String> {
    let closed = format!(
        "the log was closed cleanly with its frames ending at byte offset {} (sequence {})",
        clean.data_end, clean.last_seq
    );
    // More frames than recorded: a writer that does not know the record (an older build) went
    // on; the recorded ones are all there.
    if scan.valid_end < clean.data_end || scan.last_seq < clean.last_seq {
        let found = match &scan.end {
            End::Torn { reason, .. } | End::Corrupt { reason, .. } => reason.clone(),
            _ => "the frames end early".into(),
        };
        return Some(format!("{found}; {closed}: damage, not a torn tail"));
    }
    None
}

impl Ctx<'_> {
    /// The previous writer's clean-close record. A damaged one is corruption (it cannot say
    /// whether the end of the log is whole), except in the explicit repair, which moves it to
    /// quarantine and treats the end as a crash's.
    fn read_clean_close(&mut self) -> Result<Option<CleanClose>> {
        let path = self.wal_dir.join(CLEAN_CLOSE_FILE);
        if !self.storage.exists(&path).map_err(io_err("stat", &path))? {
            return Ok(None);
        }
        let file = self.storage.open_file(&path, OpenMode::Read).map_err(io_err("open", &path))?;
        let mut bytes = [0u8; CLEAN_CLOSE_BYTES + 1];
        let mut got = 0;
        while got < bytes.len() {
            let n = file.read_at(&mut bytes[got..], got as u64).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        match CleanClose::decode(&bytes[..got]) {
            Ok(record) => Ok(Some(record)),
            Err(e) if self.options.recovery == RecoveryMode::TruncateAtCorruption => {
                drop(file);
                self.quarantine_move(&path, &format!("damaged clean-close record: {e}"))?;
                Ok(None)
            }
            Err(e) => Err(Error::corrupt(&path, 0, 0, format!("clean-close record: {e}"))),
        }
    }

    /// The clean-close record, if it applies to the last segment `path`; a record naming another
    /// segment, or an end past the file, means segments or bytes are missing: corruption. The
    /// explicit repair ignores the record and checks the whole segment as after a crash.
    fn clean_close_of(&self, path: &Path, first_seq: u64, len: u64) -> Result<Option<CleanClose>> {
        let Some(clean) = self.clean else { return Ok(None) };
        if self.options.recovery == RecoveryMode::TruncateAtCorruption {
            // The explicit repair reads the whole segment and cuts at the first bad frame.
            return Ok(None);
        }
        if first_seq > clean.first_seq {
            // A writer that does not know the record (an older build) went on and rolled: the
            // record is stale, and says nothing about this segment.
            return Ok(None);
        }
        let problem = if clean.first_seq != first_seq {
            format!(
                "the log was closed cleanly with its last segment starting at sequence {}, but the \
                 last segment starts at {first_seq}",
                clean.first_seq
            )
        } else if clean.data_end > len {
            format!(
                "the log was closed cleanly with its frames ending at byte offset {}, but the \
                 segment holds {len} bytes",
                clean.data_end
            )
        } else {
            return Ok(Some(clean));
        };
        Err(Error::corrupt(path, len.min(clean.data_end), clean.last_seq + 1, problem))
    }

    /// Saves `bytes` cut from `from` at `offset` into quarantine with a note, durably.
    fn quarantine_bytes(
        &mut self,
        from: &Path,
        offset: u64,
        bytes: &[u8],
        note: &str,
    ) -> Result<()> {
        if bytes.is_empty() {
            // Nothing was cut (the file ends at the cut): no empty file in quarantine.
            return Ok(());
        }
        let path = crate::quarantine::save(self.storage, self.dir, from, offset, bytes, note)?;
        self.report.quarantined.push(path);
        Ok(())
    }

    /// Moves a whole segment file into quarantine with a note: its bytes are copied and made
    /// durable there before the original is removed, so no crash loses both.
    fn quarantine_move(&mut self, path: &Path, note: &str) -> Result<()> {
        let bytes = self.storage.map_file(path).map_err(io_err("read", path))?;
        self.quarantine_bytes(path, 0, &bytes, note)?;
        drop(bytes);
        self.storage.remove_file(path).map_err(io_err("remove", path))?;
        self.storage.sync_dir(self.wal_dir).map_err(io_err("fsync directory", self.wal_dir))?;
        Ok(())
    }

    /// Replaces a sealed segment by its first `offset` bytes (through a temporary file and a
    /// rename, so that a reader that mapped the old file keeps valid bytes), saving the rest in
    /// quarantine.
    fn cut_segment(&mut self, path: &Path, offset: u64, reason: &str) -> Result<()> {
        let bytes = self.storage.map_file(path).map_err(io_err("read", path))?;
        let cut = usize::try_from(offset).expect("offset within a mapped file").min(bytes.len());
        self.quarantine_bytes(path, offset, &bytes[cut..], reason)?;
        Ok(crate::storage::write_atomic(self.storage, path, &bytes[..cut])?)
    }

    /// The explicit repair of a last segment that cannot continue the log: it goes to
    /// quarantine whole (a cut at its start) and an empty segment continuing the chain takes
    /// its place.
    fn replace_tail(
        &mut self,
        path: &Path,
        first_seq: u64,
        chain: ChainValue,
        prev_ts: u64,
        reason: &str,
    ) -> Result<(ActiveSeg, Box<dyn StorageFile>, u64, ChainValue)> {
        self.report.cut = Some(Cut {
            file: path.to_path_buf(),
            offset: 0,
            seq: first_seq,
            reason: reason.into(),
        });
        self.quarantine_move(path, reason)?;
        let header =
            SegmentHeader { first_seq, chain_before: chain, kind: self.options.kind }.encode();
        let file = create_segment_on(self.storage, self.wal_dir, path, &header, self.options)?;
        Ok((
            ActiveSeg::new(first_seq, path.to_path_buf(), chain, self.options.kind),
            file,
            prev_ts,
            chain,
        ))
    }

    /// Recovers the last segment: returns the active segment, its open file and the last
    /// timestamp. A last segment found sealed is kept sealed and a new active one created.
    fn recover_tail(
        &mut self,
        path: &Path,
        first_seq: u64,
        prev: Option<&SealedSeg>,
        sealed: &mut Vec<SealedSeg>,
    ) -> Result<(ActiveSeg, Box<dyn StorageFile>, u64, ChainValue)> {
        let storage = self.storage;
        let file = storage.open_file(path, OpenMode::ReadWrite).map_err(io_err("open", path))?;
        let len = file.len().map_err(io_err("stat", path))?;
        // What a preallocation left as a hole past the written data reads as zeros: it is not
        // read. After a crash the written data is read and scanned whole.
        let data_end = file.data_end().map_err(io_err("seek data", path))?.min(len);
        let clean = self.clean_close_of(path, first_seq, len)?;
        // After a clean close only the frames and a page past them are read: nothing was written
        // past them since. Anything but zeros in that page is read and scanned whole, as after
        // a crash (what follows the frames is then cut into quarantine, never overwritten).
        let read_len =
            clean.map_or(data_end, |c| (c.data_end + CLEAN_CLOSE_SLACK_BYTES).min(data_end));
        let mut bytes =
            vec![0u8; usize::try_from(read_len).expect("segment length fits in memory")];
        file.read_exact_at(&mut bytes, 0).map_err(io_err("read", path))?;
        if let Some(c) = clean
            && read_len < data_end
            && bytes[usize::try_from(c.data_end.min(read_len)).expect("within the file")..]
                .iter()
                .any(|&b| b != 0)
        {
            bytes = vec![0u8; usize::try_from(data_end).expect("segment length fits in memory")];
            file.read_exact_at(&mut bytes, 0).map_err(io_err("read", path))?;
        }
        let prev_ts = prev.map_or(0, |p| p.last_ts);
        let expected_chain =
            prev.map(|p| p.chain_after).or((first_seq == 1).then_some(CHAIN_START));
        let scan = match scan_segment(&bytes, first_seq, ScanOptions { chain: true, prev_ts }) {
            Ok(scan) => scan,
            Err(header_error) => {
                // The header is made durable before any frame is written to the segment: a bad
                // header with no checksummed frame after it is a creation a crash interrupted
                // (its unsynced page may hold zeros or garbage), not damaged data.
                // Garbage rather than zeros is only plausible for a segment a roll was creating
                // (a sealed segment precedes it); a lone segment full of garbage is damage.
                let zeros =
                    bytes.get(SEGMENT_HEADER_BYTES..).is_none_or(|b| b.iter().all(|&x| x == 0));
                let never_written =
                    !crate::scan::has_valid_frame(&bytes, 0) && (zeros || prev.is_some());
                if never_written && let Some(chain) = expected_chain {
                    drop(file);
                    if bytes.iter().any(|&b| b != 0) {
                        let note = format!(
                            "segment whose creation a crash interrupted: {}",
                            header_error.0
                        );
                        self.quarantine_bytes(path, 0, &bytes, &note)?;
                    }
                    let header =
                        SegmentHeader { first_seq, chain_before: chain, kind: self.options.kind }
                            .encode();
                    let tmp = path.with_extension("seg.tmp");
                    let file =
                        create_segment_on(storage, self.wal_dir, &tmp, &header, self.options)?;
                    storage.rename(&tmp, path).map_err(io_err("rename", &tmp))?;
                    storage
                        .sync_dir(self.wal_dir)
                        .map_err(io_err("fsync directory", self.wal_dir))?;
                    self.report.recreated_segment = Some(path.to_path_buf());
                    return Ok((
                        ActiveSeg::new(first_seq, path.to_path_buf(), chain, self.options.kind),
                        file,
                        prev_ts,
                        chain,
                    ));
                }
                let reason = format!("segment header: {}", header_error.0);
                if self.options.recovery != RecoveryMode::TruncateAtCorruption {
                    return Err(Error::corrupt(path, 0, first_seq, reason));
                }
                let Some(chain) = expected_chain else {
                    return Err(Error::corrupt(
                        path,
                        0,
                        first_seq,
                        format!(
                            "{reason}; the chain value before it is unknown, so the segment cannot be rebuilt"
                        ),
                    ));
                };
                drop(file);
                return self.replace_tail(path, first_seq, chain, prev_ts, &reason);
            }
        };
        if let Some(chain) = expected_chain
            && chain != scan.header.chain_before
        {
            let reason =
                "chain value before the first record differs from the previous segment's last";
            if self.options.recovery != RecoveryMode::TruncateAtCorruption {
                return Err(Error::corrupt(path, 0, first_seq, reason));
            }
            // The explicit repair: the segment does not continue the log; it goes to
            // quarantine whole and the log continues after the previous segment.
            drop(file);
            return self.replace_tail(path, first_seq, chain, prev_ts, reason);
        }
        if let Some(clean) = clean
            && let Some(reason) = clean_close_mismatch(&clean, &scan)
        {
            return Err(Error::corrupt(path, scan.valid_end, scan.last_seq + 1, reason));
        }
        let mut cut_at = None;
        // The explicit repair after a clean close: frames short of the record's end were synced,
        // so what is missing is damage, cut and reported as such (even zeros are kept).
        let repaired_clean = self
            .clean
            .filter(|c| {
                self.options.recovery == RecoveryMode::TruncateAtCorruption
                    && c.first_seq == first_seq
            })
            .and_then(|c| clean_close_mismatch(&c, &scan).map(|reason| (c, reason)));
        if let Some((clean, reason)) = repaired_clean
            && !matches!(scan.end, End::Sealed { .. })
        {
            self.report.cut = Some(Cut {
                file: path.to_path_buf(),
                offset: scan.valid_end,
                seq: scan.last_seq + 1,
                reason: reason.clone(),
            });
            let nonzero = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p as u64 + 1);
            cut_at = Some((nonzero.max(clean.data_end).min(len), reason));
        }
        match &scan.end {
            _ if cut_at.is_some() => {}
            End::Clean => {}
            End::Sealed { footer, file_end, .. } => {
                if len > *file_end {
                    file.set_len(*file_end).map_err(io_err("truncate", path))?;
                    self.report.completed_seal = Some(path.to_path_buf());
                }
                make_durable(file.as_ref(), path, &bytes, scan.watermark, *file_end)?;
                let seg = sealed_from(path, scan.header, *footer);
                let next = seg.last_seq + 1;
                let chain = seg.chain_after;
                let last_ts = seg.last_ts;
                sealed.push(seg);
                let next_path = self.wal_dir.join(format::segment_file_name(next));
                let header =
                    SegmentHeader { first_seq: next, chain_before: chain, kind: self.options.kind }
                        .encode();
                let file =
                    create_segment_on(storage, self.wal_dir, &next_path, &header, self.options)?;
                self.report.segments += 1;
                return Ok((
                    ActiveSeg::new(next, next_path, chain, self.options.kind),
                    file,
                    last_ts,
                    chain,
                ));
            }
            End::Torn { garbage_end, orphan_frames, reason } => {
                if self.options.recovery == RecoveryMode::Strict {
                    return Err(Error::TornTail {
                        file: path.to_path_buf(),
                        offset: scan.valid_end,
                        len: garbage_end - scan.valid_end,
                    });
                }
                self.report.torn_tail = Some(TornTail {
                    file: path.to_path_buf(),
                    offset: scan.valid_end,
                    bytes: garbage_end - scan.valid_end,
                    orphan_frames: *orphan_frames,
                    reason: reason.clone(),
                });
                cut_at = Some((*garbage_end, format!("torn tail: {reason}")));
            }
            End::Corrupt { offset, reason, watermark } => {
                let reason =
                    format!("{reason} (below the durable watermark {watermark} of a later frame)");
                if self.options.recovery != RecoveryMode::TruncateAtCorruption {
                    return Err(Error::corrupt(path, *offset, scan.last_seq + 1, reason));
                }
                self.report.cut = Some(Cut {
                    file: path.to_path_buf(),
                    offset: *offset,
                    seq: scan.last_seq + 1,
                    reason: reason.clone(),
                });
                let end = bytes.iter().rposition(|&b| b != 0).map_or(*offset, |p| p as u64 + 1);
                cut_at = Some((end, reason));
            }
        }
        if let Some((end, note)) = cut_at {
            let start = usize::try_from(scan.valid_end).expect("offset within the file");
            let end = usize::try_from(end).expect("offset within the file").max(start);
            self.quarantine_bytes(path, scan.valid_end, &bytes[start..end], &note)?;
            file.set_len(scan.valid_end).map_err(io_err("truncate", path))?;
            if self.options.preallocate {
                file.set_len(len.max(self.options.segment_bytes_target))
                    .map_err(io_err("preallocate", path))?;
            }
        }
        make_durable(file.as_ref(), path, &bytes, scan.watermark, scan.valid_end)?;
        let crc = crc32fast::Hasher::new_with_initial(scan.segment_crc);
        let next_index_at = scan
            .index
            .last()
            .map_or(0, |e| (e.offset / INDEX_INTERVAL_BYTES + 1) * INDEX_INTERVAL_BYTES);
        let active = ActiveSeg {
            first_seq,
            path: path.to_path_buf(),
            chain_before: scan.header.chain_before,
            len: scan.valid_end,
            durable_len: scan.valid_end,
            record_count: scan.record_count,
            crc,
            index: scan.index,
            next_index_at,
        };
        Ok((active, file, scan.last_ts, scan.chain_after))
    }
}
