//! The full check: every frame of every segment, the seals, sequence continuity and the hash
//! chain. Reads one segment at a time, so memory is one segment, not the log.

use std::path::PathBuf;

use crate::chain::{CHAIN_START, ChainValue};
use crate::error::{Error, Result};
use crate::log::LogView;
use crate::scan::{End, ScanOptions, scan_segment};

/// One problem found by [`LogView::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The damaged file.
    pub file: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// Sequence number expected there.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte offset {} (sequence {}): {}",
            self.file.display(),
            self.offset,
            self.seq,
            self.reason
        )
    }
}

/// What [`LogView::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Records whose frames checked.
    pub records: u64,
    /// Chain value after the last record checked.
    pub chain_head: ChainValue,
    /// Every problem found; empty when the log is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl LogView {
    /// Checks every checksum of every segment, sequence continuity, timestamps, the seals and
    /// the hash chain across segments. Problems are collected, not returned as errors, so that
    /// one damaged segment does not hide another.
    ///
    /// # Errors
    /// Only when a segment cannot be read at all (I/O errors), or the log is poisoned.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_reporting(&mut |_| {})
    }

    /// [`verify`](Self::verify), calling `reached` with the last sequence number of each
    /// segment once it is checked (for a progress bar).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_reporting(&self, reached: &mut dyn FnMut(u64)) -> Result<VerifyReport> {
        let shared = &*self.shared;
        let visible = self.last_seq();
        crate::writer::ensure_written(shared, visible)?;
        let segments = self.segments();
        let start = self.first_seq();
        let mut report = VerifyReport { segments: segments.len(), ..VerifyReport::default() };
        let mut expect_seq = start;
        let mut chain: Option<ChainValue> = (start == 1).then_some(CHAIN_START);
        let mut prev_ts = 0;
        for seg in &segments {
            let bytes = if seg.sealed {
                shared.storage.map_file(&seg.path)
            } else {
                read_whole(shared.storage.as_ref(), &seg.path)
            }
            .map_err(|e| Error::io("read", &seg.path, e))?;
            let problem = |offset: u64, seq: u64, reason: String| Problem {
                file: seg.path.clone(),
                offset,
                seq,
                reason,
            };
            if seg.first_seq != expect_seq {
                report.problems.push(problem(
                    0,
                    expect_seq,
                    format!(
                        "segment starts at sequence {} where {expect_seq} was expected",
                        seg.first_seq
                    ),
                ));
            }
            let scan =
                match scan_segment(&bytes, seg.first_seq, ScanOptions { chain: true, prev_ts }) {
                    Ok(scan) => scan,
                    Err(e) => {
                        report.problems.push(problem(
                            0,
                            seg.first_seq,
                            format!("segment header: {}", e.0),
                        ));
                        expect_seq = seg.last_seq + 1;
                        chain = None;
                        continue;
                    }
                };
            if chain.is_some_and(|c| c != scan.header.chain_before) {
                report.problems.push(problem(
                    0,
                    seg.first_seq,
                    "chain value before the first record differs from the previous segment's last"
                        .into(),
                ));
            }
            let seq_at_end = scan.last_seq + 1;
            let problems_before = report.problems.len();
            match (&scan.end, seg.sealed) {
                (End::Sealed { footer, .. }, true) if footer.chain_after == scan.chain_after => {}
                (End::Sealed { .. }, true) => report.problems.push(problem(
                    scan.valid_end,
                    seq_at_end,
                    "footer chain value differs from the chain of the frames".into(),
                )),
                (End::Clean | End::Torn { .. }, false)
                    if scan.last_seq >= seg.last_seq.min(visible) => {}
                (End::Corrupt { offset, reason, .. }, _) => {
                    report.problems.push(problem(*offset, seq_at_end, reason.clone()));
                }
                (End::Torn { reason, .. }, _) => {
                    report.problems.push(problem(scan.valid_end, seq_at_end, reason.clone()));
                }
                (End::Clean, true) => report.problems.push(problem(
                    scan.valid_end,
                    seq_at_end,
                    "sealed segment has no index block and footer".into(),
                )),
                (End::Clean | End::Sealed { .. }, false) => report.problems.push(problem(
                    scan.valid_end,
                    seq_at_end,
                    format!(
                        "frames end at sequence {} but the log holds {}",
                        scan.last_seq, seg.last_seq
                    ),
                )),
            }
            report.records += scan.record_count;
            prev_ts = scan.last_ts;
            // Past damage the chain is unknown: continuity is checked again from the next
            // segment's header on, instead of reporting every later segment.
            chain = (report.problems.len() == problems_before).then_some(scan.chain_after);
            expect_seq = seg.last_seq + 1;
            reached(seg.last_seq);
        }
        report.chain_head = chain.unwrap_or_default();
        Ok(report)
    }
}

fn read_whole(
    storage: &dyn crate::storage::Storage,
    path: &std::path::Path,
) -> std::io::Result<bytes::Bytes> {
    let file = storage.open_file(path, crate::storage::OpenMode::Read)?;
    let len = usize::try_from(file.len()?).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(bytes::Bytes::from(buf))
}
