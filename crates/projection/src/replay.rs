//! Replay: folding a projection over the log, from the start or from a known state, up to a
//! sequence number, a time, or the end. Streams from the log: memory is the state plus one
//! segment window, not the log.

use annal_wal::Log;

use crate::envelope::RawEvent;
use crate::error::{Error, Result};
use crate::projection::Projection;

/// How far a replay goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Up to and including this sequence number.
    Seq(u64),
    /// Up to and including the last event with a timestamp at or before this one (Unix
    /// nanoseconds).
    Time(u64),
    /// Up to the last acknowledged event.
    End,
}

/// Resolves `until` to a sequence number of `log` (0 when it selects nothing).
///
/// # Errors
/// `OutOfRange` for a sequence number past the end or before the log start, or a time before
/// the first event held.
pub fn resolve(log: &Log, until: Until) -> Result<u64> {
    let first = log.first_seq();
    let last = log.last_seq();
    match until {
        Until::End => Ok(last),
        Until::Seq(seq) if seq > last || seq < first.saturating_sub(1) => {
            Err(Error::OutOfRange { asked: format!("sequence {seq}"), first, last })
        }
        Until::Seq(seq) => Ok(seq),
        Until::Time(ts) => match log.seq_at_time(ts)? {
            Some(seq) => Ok(seq),
            None if first == 1 => Ok(0),
            None => Err(Error::OutOfRange { asked: format!("time {ts} ns"), first, last }),
        },
    }
}

/// Folds `P` over events `from.0 + 1 ..= target`, starting from state `from.1` (use
/// `(log.first_seq() - 1, P::State::default())` for a replay from the start, which must be from
/// sequence 0 unless the state before the log start is known).
///
/// # Errors
/// Read errors of the log, malformed envelopes, events that do not decode as `P::Event`.
pub fn fold_from<P: Projection>(log: &Log, from: (u64, P::State), target: u64) -> Result<P::State> {
    let (at, mut state) = from;
    if target <= at {
        return Ok(state);
    }
    for (expected, record) in (at + 1..).zip(log.read_from(at + 1)) {
        let record = record?;
        if record.seq > target {
            break;
        }
        if record.seq != expected {
            return Err(Error::Gap { expected, found: record.seq });
        }
        apply_raw::<P>(&mut state, &RawEvent::parse(record.seq, record.ts, &record.payload)?)?;
        if record.seq == target {
            break;
        }
    }
    Ok(state)
}

/// Folds `P` over records in sequence order while `keep(seq, ts)` holds, and not past `last`
/// (no record after it is read), starting from `state` at `at`; returns the state and the
/// sequence number it stands at. For readers other
/// than a live log's, such as one that also reads archived segments.
///
/// # Errors
/// Read errors, malformed envelopes, events that do not decode.
pub fn fold_records<P: Projection>(
    records: impl Iterator<Item = annal_wal::Result<annal_wal::Record>>,
    (mut at, mut state): (u64, P::State),
    last: Option<u64>,
    mut keep: impl FnMut(u64, u64) -> bool,
) -> Result<(P::State, u64)> {
    if last.is_some_and(|last| at >= last) {
        return Ok((state, at));
    }
    for record in records {
        let record = record?;
        if record.seq <= at {
            continue;
        }
        if !keep(record.seq, record.ts) {
            break;
        }
        if record.seq != at + 1 {
            return Err(Error::Gap { expected: at + 1, found: record.seq });
        }
        apply_raw::<P>(&mut state, &RawEvent::parse(record.seq, record.ts, &record.payload)?)?;
        at = record.seq;
        if Some(at) == last {
            break;
        }
    }
    Ok((state, at))
}

/// Applies one stored event to `state` if `P` accepts its type.
///
/// # Errors
/// The data does not decode as `P::Event`.
pub fn apply_raw<P: Projection>(state: &mut P::State, raw: &RawEvent<'_>) -> Result<()> {
    if P::accepts(raw.event_type) {
        P::apply(state, &raw.envelope::<P::Event>()?);
    }
    Ok(())
}

/// Replays `P` from the start of the log up to `until`; returns the state and the sequence
/// number it stands at.
///
/// # Errors
/// As [`resolve`] and [`fold_from`]; `OutOfRange` if segments were removed below the log start
/// (replay from a snapshot then).
pub fn replay<P: Projection>(log: &Log, until: Until) -> Result<(P::State, u64)> {
    let target = resolve(log, until)?;
    let first = log.first_seq();
    if first > 1 {
        return Err(Error::OutOfRange {
            asked: "a replay from sequence 1 (segments below the log start were removed)".into(),
            first,
            last: log.last_seq(),
        });
    }
    Ok((fold_from::<P>(log, (0, P::State::default()), target)?, target))
}
