//! The events the harness appends, the projection it registers, and the reference model: the
//! list of events the journal acknowledged (and the one batch it may have been writing), with an
//! independent fold of that list to compare projection states against.

use std::collections::{BTreeMap, BTreeSet};

use annal::{Envelope, Projection, TypedEvent};
use serde::{Deserialize, Serialize};

/// An event of the workload. The padding makes segments fill and roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ev {
    /// Adds `n` to the stream's total.
    Add {
        /// The amount.
        n: u64,
        /// Filler bytes (ASCII), part of the payload compared after recovery.
        pad: String,
    },
    /// Sets the stream's mark.
    Mark {
        /// The mark.
        label: String,
    },
}

impl TypedEvent for Ev {
    fn event_type(&self) -> &str {
        match self {
            Ev::Add { .. } => "add",
            Ev::Mark { .. } => "mark",
        }
    }
}

impl Ev {
    /// A deterministic event: `id` makes its content unique, `pad` its size.
    #[must_use]
    pub fn make(id: u64, pad: usize) -> Self {
        if id % 5 == 4 {
            Ev::Mark { label: format!("m{id}") }
        } else {
            let fill = char::from(b'a' + u8::try_from(id % 26).expect("below 26"));
            Ev::Add { n: id * 7 + 1, pad: std::iter::repeat_n(fill, pad).collect() }
        }
    }
}

/// Per stream: what [`Tally`] folds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTally {
    /// Version of the last event folded.
    pub version: u64,
    /// Events folded.
    pub events: u64,
    /// Sum of the `Add` amounts.
    pub total: u64,
    /// Bytes of `Add` padding.
    pub pad_bytes: u64,
    /// The last `Mark` label.
    pub mark: String,
    /// Sequence number of the last event folded.
    pub last_seq: u64,
}

/// The projection under test: a per-stream tally.
#[derive(Debug)]
pub struct Tally;

impl Projection for Tally {
    const NAME: &'static str = "tally";
    const SCHEMA_VERSION: u32 = 1;
    type Event = Ev;
    type State = BTreeMap<String, StreamTally>;

    fn apply(state: &mut Self::State, event: &Envelope<'_, Ev>) {
        let t = state.entry(event.stream.to_owned()).or_default();
        t.version = event.version;
        t.events += 1;
        t.last_seq = event.seq;
        match &event.data {
            Ev::Add { n, pad } => {
                t.total += n;
                t.pad_bytes += pad.len() as u64;
            }
            Ev::Mark { label } => t.mark.clone_from(label),
        }
    }
}

/// One event as the model knows it; its sequence number is its position in the list plus one
/// and its version the count of earlier events of its stream plus one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEvent {
    /// The stream.
    pub stream: String,
    /// The event.
    pub ev: Ev,
}

/// The independent fold: the state [`Tally`] must have after `events`.
#[must_use]
pub fn model_fold<'a>(
    events: impl IntoIterator<Item = &'a ModelEvent>,
) -> BTreeMap<String, StreamTally> {
    let mut out: BTreeMap<String, StreamTally> = BTreeMap::new();
    for (seq, e) in (1u64..).zip(events) {
        let t = out.entry(e.stream.clone()).or_default();
        t.events += 1;
        t.version = t.events;
        t.last_seq = seq;
        match &e.ev {
            Ev::Add { n, pad } => {
                t.total += n;
                t.pad_bytes += pad.len() as u64;
            }
            Ev::Mark { label } => t.mark.clone_from(label),
        }
    }
    out
}

/// What the journal was told and what it answered.
///
/// Invariants: `durable <= events.len()`; `cuts` holds 0, `durable` and every length at which
/// an acknowledged append ended; every key of `payloads` is at most `events.len() + pending.len()`.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Every acknowledged event, in sequence order (event `i` has sequence number `i + 1`).
    pub events: Vec<ModelEvent>,
    /// How many leading events must survive any crash (acknowledged under `Sync`, or covered by
    /// a successful `sync`, or recovered and then followed by such an event).
    pub durable: usize,
    /// Lengths at which the log may legally end after a crash: the ends of whole appends.
    pub cuts: BTreeSet<usize>,
    /// The events of the one append that was attempted but not acknowledged (its I/O failed or
    /// the machine halted during it); they would follow `events`.
    pub pending: Vec<ModelEvent>,
    /// The payload bytes of events as first read back from the journal, by sequence number;
    /// later recoveries must return the same bytes.
    pub payloads: BTreeMap<u64, Vec<u8>>,
}

impl Model {
    /// An empty model.
    #[must_use]
    pub fn new() -> Self {
        Self { cuts: BTreeSet::from([0]), ..Self::default() }
    }

    /// The version `stream` has after the acknowledged events.
    #[must_use]
    pub fn version(&self, stream: &str) -> u64 {
        self.events.iter().filter(|e| e.stream == stream).count() as u64
    }

    /// Records an acknowledged append; `durable` says whether the acknowledgement promises
    /// durability (a `Sync` journal).
    pub fn ack(&mut self, events: Vec<ModelEvent>, durable: bool) {
        self.events.extend(events);
        self.cuts.insert(self.events.len());
        if durable {
            self.durable = self.events.len();
        }
        self.pending.clear();
    }

    /// Records a successful `sync`: everything acknowledged is durable.
    pub fn synced(&mut self) {
        self.durable = self.events.len();
    }

    /// Records the outcome of a recovery that found `len` events: the pending append is either
    /// entirely kept (and joins the events) or dropped, and acknowledged events past `len` are
    /// gone. Call only after the recovery passed the checks.
    pub fn recovered(&mut self, len: usize) {
        if len > self.events.len() {
            let extra = std::mem::take(&mut self.pending);
            self.events.extend(extra);
        }
        self.pending.clear();
        self.events.truncate(len);
        self.payloads.retain(|&seq, _| seq <= len as u64);
        self.durable = self.durable.min(len);
        self.cuts.retain(|&c| c <= len);
        self.cuts.insert(len);
    }
}
