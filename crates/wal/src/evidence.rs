//! Evidence that bytes of a segment had been durable: what lets a directory reader tell damage
//! from a frame a writer has not finished yet. A later frame's durable watermark above them, or
//! a clean-close record whose frames reach past them, proves they were synced; the bytes are
//! then read afresh before anyone calls them damage.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{self, FRAME_HEADER_BYTES, FRAME_MAGIC};
use crate::storage::{OpenMode, Storage, StorageFile};

/// Bytes read at a time when looking for later frames.
const WINDOW_BYTES: usize = 1024 * 1024;

/// Whether a complete frame with a matching checksum is at `offset` now (read afresh).
pub(crate) fn whole_frame_at(file: &dyn StorageFile, path: &Path, offset: u64) -> Result<bool> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    if read_up_to(file, path, &mut header, offset)? < header.len() {
        return Ok(false);
    }
    let Ok(fh) = format::decode_frame_header(&header) else { return Ok(false) };
    let mut frame = vec![0u8; usize::try_from(fh.frame_len()).expect("at most FRAME_BYTES_MAX")];
    if read_up_to(file, path, &mut frame, offset)? < frame.len() {
        return Ok(false);
    }
    Ok(format::check_frame(&fh, &frame).is_ok())
}

/// The clean-close record in `wal_dir`; `None` when there is none, or it cannot be decoded
/// (a record that cannot be read vouches for nothing; the writer's open reports it).
fn clean_close(storage: &dyn Storage, wal_dir: &Path) -> Result<Option<format::CleanClose>> {
    let path = wal_dir.join(format::CLEAN_CLOSE_FILE);
    let file = match storage.open_file(&path, OpenMode::Read) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let mut bytes = [0u8; format::CLEAN_CLOSE_BYTES];
    if read_up_to(file.as_ref(), &path, &mut bytes, 0)? < bytes.len() {
        return Ok(None);
    }
    Ok(format::CleanClose::decode(&bytes).ok())
}

/// The clean-close record, when it says the last segment's frames reach past `offset`: then a
/// frame was synced there, and a missing one is damage. A writer removes the record before it
/// appends, and only appends past the record's end, so a stale record never covers new frames.
pub(crate) fn clean_close_covering(
    storage: &dyn Storage,
    segment: &Path,
    first_seq: u64,
    offset: u64,
) -> Result<Option<format::CleanClose>> {
    let Some(wal_dir) = segment.parent() else { return Ok(None) };
    Ok(clean_close(storage, wal_dir)?.filter(|c| c.first_seq == first_seq && offset < c.data_end))
}

/// The clean-close record, when it names a last segment after the one starting at `first_seq`
/// in `wal_dir`: a directory reader that finds no segment after that one then knows segments
/// are missing (a stale record only ever names an earlier state, never a later segment).
pub(crate) fn clean_close_after(
    storage: &dyn Storage,
    wal_dir: &Path,
    first_seq: u64,
) -> Result<Option<format::CleanClose>> {
    Ok(clean_close(storage, wal_dir)?.filter(|c| c.first_seq > first_seq))
}

/// The highest durable watermark above `bad_at` carried by a complete, checksummed frame that
/// starts after `bad_at` in `file`. Reads the file a window at a time, and each candidate frame
/// that a window does not hold on its own (at most `FRAME_BYTES_MAX`): memory stays bounded.
pub(crate) fn vouching_watermark(
    file: &dyn StorageFile,
    path: &Path,
    bad_at: u64,
) -> Result<Option<u64>> {
    // Past where the file's data ends it is a hole: zeros, no frame.
    let len = file.data_end().map_err(|e| Error::io("seek data", path, e))?;
    let mut best: Option<u64> = None;
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut chunk_start = bad_at + 1;
    while chunk_start < len {
        let want = usize::try_from(len - chunk_start).unwrap_or(usize::MAX).min(WINDOW_BYTES);
        // The file may shrink meanwhile (a writer sealing it): what is gone vouches for nothing.
        let want = read_up_to(file, path, &mut buf[..want], chunk_start)?;
        if want == 0 {
            break;
        }
        let chunk = &buf[..want];
        let mut pos = 0;
        while let Some(found) = crate::scan::find_magic(chunk, pos) {
            pos = found + 1;
            let at = chunk_start + found as u64;
            if let Some(watermark) = frame_watermark_at(file, path, chunk, found, at, len)?
                && watermark > bad_at
            {
                best = best.max(Some(watermark));
            }
        }
        // Overlap by less than a magic, so that one split across two windows is still found.
        chunk_start += (want as u64).saturating_sub(FRAME_MAGIC.len() as u64 - 1).max(1);
    }
    Ok(best)
}

/// The watermark of the frame at `at` (found at `found` in `chunk`), if a complete frame with a
/// plausible watermark and a matching checksum is there.
fn frame_watermark_at(
    file: &dyn StorageFile,
    path: &Path,
    chunk: &[u8],
    found: usize,
    at: u64,
    file_len: u64,
) -> Result<Option<u64>> {
    let read = |buf: &mut [u8]| Ok::<_, Error>(read_up_to(file, path, buf, at)? == buf.len());
    let mut header = [0u8; FRAME_HEADER_BYTES];
    if chunk.len() - found >= FRAME_HEADER_BYTES {
        header.copy_from_slice(&chunk[found..found + FRAME_HEADER_BYTES]);
    } else if file_len - at < FRAME_HEADER_BYTES as u64 || !read(&mut header)? {
        return Ok(None);
    }
    let Ok(fh) = format::decode_frame_header(&header) else { return Ok(None) };
    if fh.synced_through > at || file_len - at < fh.frame_len() {
        return Ok(None);
    }
    let frame_len = usize::try_from(fh.frame_len()).expect("frame length fits usize");
    let owned;
    let frame = if chunk.len() - found >= frame_len {
        &chunk[found..found + frame_len]
    } else {
        let mut buf = vec![0u8; frame_len];
        if !read(&mut buf)? {
            return Ok(None);
        }
        owned = buf;
        &owned[..]
    };
    Ok(format::check_frame(&fh, frame).is_ok().then_some(fh.synced_through))
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
fn read_up_to(file: &dyn StorageFile, path: &Path, buf: &mut [u8], offset: u64) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = file
            .read_at(&mut buf[got..], offset + got as u64)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}
