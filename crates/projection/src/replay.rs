//! Replay: folding a projection over records, from the start or from a known state, up to a
//! target ([`Until`], whose meaning is decided here, once). Streams the records: memory is the
//! state plus one segment window, not the log. Which snapshot serves a target is the
//! compactor's decision (`Manifest::starts`); the journal and its directory reader share
//! one replay built from these pieces.

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

impl Until {
    /// Whether a replay to this target folds the record `seq` with timestamp `ts` (records come
    /// in sequence order with non-decreasing timestamps, so the first one it does not fold ends
    /// the replay).
    #[must_use]
    pub fn includes(self, seq: u64, ts: u64) -> bool {
        match self {
            Until::Seq(target) => seq <= target,
            Until::Time(t) => ts <= t,
            Until::End => true,
        }
    }

    /// The last sequence number a replay to this target folds, when the target names it.
    #[must_use]
    pub fn last_seq(self) -> Option<u64> {
        match self {
            Until::Seq(seq) => Some(seq),
            Until::Time(_) | Until::End => None,
        }
    }

    /// The target in words, for messages.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Until::Seq(seq) => format!("sequence {seq}"),
            Until::Time(ts) => format!("time {ts} ns"),
            Until::End => "the end".to_owned(),
        }
    }
}

/// Folds `P` over events `from.0 + 1 ..= target`, starting from state `from.1` (use
/// `(log.first_seq() - 1, P::State::default())` for a replay from the start, which must be from
/// sequence 0 unless the state before the log start is known).
///
/// # Errors
/// Read errors of the log, malformed envelopes, events that do not decode as `P::Event`.
pub fn fold_from<P: Projection>(log: &Log, from: (u64, P::State), target: u64) -> Result<P::State> {
    let at = from.0;
    Ok(fold_records::<P>(log.read_from(at + 1), from, Until::Seq(target))?.0)
}

/// Folds `P` over records in sequence order up to `until`, starting from `state` at `at`;
/// returns the state and the sequence number it stands at. Reads no record past a target
/// sequence number; for any other target, the first record past it ends the fold. Records at or
/// below `at` are skipped; a record that is not the next one is a [`Error::Gap`].
///
/// # Errors
/// Read errors, malformed envelopes, events that do not decode.
pub fn fold_records<P: Projection>(
    records: impl Iterator<Item = annal_wal::Result<annal_wal::Record>>,
    (mut at, mut state): (u64, P::State),
    until: Until,
) -> Result<(P::State, u64)> {
    let last = until.last_seq();
    if last.is_some_and(|last| at >= last) {
        return Ok((state, at));
    }
    for record in records {
        let record = record?;
        if record.seq <= at {
            continue;
        }
        if !until.includes(record.seq, record.ts) {
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
