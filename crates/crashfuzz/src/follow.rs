//! Readers that follow the journal while a workload runs: opened at random points, drained
//! after every step, across segment rolls, compactions and clean reopens. Each must deliver
//! every acknowledged event from its start exactly once, in order, equal to the model's, with a
//! reported position that never passes what it delivered; one that a compaction overtakes may
//! only fail naming the earliest sequence still held, and only when the events it needed are
//! gone (no `archive/`). Followers die with the process: a crash or a recovery drops them.

use std::path::Path;
use std::sync::Arc;

use annal::{ChainValue, Event, Journal, JournalReader, Query};
use annal_storage::Storage;

use crate::check::Violation;
use crate::model::{Ev, ModelEvent};
use crate::workload::DIR;

/// The read paths a follower uses.
pub const KINDS: [&str; 4] = [
    "Journal::read (live log)",
    "Journal::log().read_from",
    "JournalReader::read",
    "JournalReader::chained",
];

enum Source {
    /// The journal's own reader of decoded events; tied to the journal it was opened on.
    Live(annal::Events<Ev>),
    /// The live log's record reader, whose position is checked too.
    LiveRecords(annal::wal::Reader),
    /// A directory reader of decoded events, as another process would open it.
    Dir(annal::Events<Ev>),
    /// A directory reader of records with their chain values, as `export` reads them.
    Chained(annal::ChainedRecords, Option<ChainValue>),
}

/// One follower: where it is, and what it reads with.
struct Follower {
    kind: usize,
    source: Source,
    /// The sequence number it must deliver next.
    next: u64,
}

/// What followers did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowCounts {
    /// Followers opened.
    pub opened: u64,
    /// Events delivered and checked.
    pub delivered: u64,
    /// Followers a compaction overtook, which then failed as they must.
    pub overtaken: u64,
}

/// Whether the live followers of a journal (not the directory ones) end with it.
fn is_live(source: &Source) -> bool {
    matches!(source, Source::Live(_) | Source::LiveRecords(_))
}

/// The followers of a workload.
#[derive(Default)]
pub struct Followers {
    list: Vec<Follower>,
    /// What they did.
    pub counts: FollowCounts,
}

impl std::fmt::Debug for Followers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Followers")
            .field("open", &self.list.len())
            .field("counts", &self.counts)
            .finish()
    }
}

impl Followers {
    /// Opens a follower of kind `kind` (an index into [`KINDS`]) from sequence `from` (0: the
    /// earliest held).
    ///
    /// # Errors
    /// Opening failed (a directory reader that cannot open).
    pub fn open(
        &mut self,
        journal: &Journal,
        storage: &Arc<dyn Storage>,
        kind: usize,
        from: u64,
    ) -> Result<(), Violation> {
        let fail = |e: annal::Error| {
            Violation::new("G11 followers", format!("{} from {from} cannot open: {e}", KINDS[kind]))
        };
        let dir = || JournalReader::open_with(Arc::clone(storage), Path::new(DIR)).map_err(fail);
        let query = Query::range(from..);
        let source = match kind {
            0 => Source::Live(journal.read::<Ev>(query)),
            1 => Source::LiveRecords(journal.log().read_from(from)),
            2 => Source::Dir(dir()?.read::<Ev>(query).map_err(fail)?),
            _ => Source::Chained(dir()?.chained(from).map_err(fail)?, None),
        };
        // From 0 a follower starts at the earliest held, which the first event tells.
        self.list.push(Follower { kind, source, next: from });
        self.counts.opened += 1;
        Ok(())
    }

    /// Drops every follower: the process died, or the journal was recovered.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Drops the followers tied to the journal that is being closed.
    pub fn close_live(&mut self) {
        self.list.retain(|f| !is_live(&f.source));
    }

    /// Reads what every follower can read now and checks it against `model`; `journal` tells
    /// where the log starts, and its chain values. `archived`: whether compactions keep the
    /// removed segments in `archive/` (then no follower may be overtaken).
    ///
    /// # Errors
    /// The first follower that delivered a wrong, missing or repeated event, or failed
    /// otherwise than by being overtaken.
    pub fn drain(
        &mut self,
        journal: &Journal,
        model: &[ModelEvent],
        archived: bool,
    ) -> Result<(), DrainError> {
        let mut overtaken = Vec::new();
        for (i, f) in self.list.iter_mut().enumerate() {
            match f.drain(journal, model) {
                Ok(n) => self.counts.delivered += n,
                Err(Drained::Overtaken(e, needed)) => {
                    // The record it needed (the chained reader reads from its segment's start)
                    // must be gone: below the log start, with no archive to read it from.
                    let first = journal.log().first_seq();
                    if archived || needed >= first || (f.next != 0 && needed > f.next) {
                        return Err(DrainError::Broken(Violation::new(
                            "G11 followers",
                            format!(
                                "{} at {} failed needing {needed}, though the log holds {first}.. (archive kept: {archived}): {e}",
                                KINDS[f.kind], f.next
                            ),
                        )));
                    }
                    overtaken.push(i);
                }
                Err(Drained::Failed(e)) => return Err(DrainError::Read(KINDS[f.kind], e)),
                Err(Drained::Broken(v)) => return Err(DrainError::Broken(v)),
            }
        }
        for i in overtaken.into_iter().rev() {
            self.list.remove(i);
            self.counts.overtaken += 1;
        }
        Ok(())
    }
}

enum Drained {
    /// The follower failed with `BeforeStart`: the record it needed (the sequence number) was
    /// removed.
    Overtaken(annal::Error, u64),
    /// Reading failed otherwise.
    Failed(annal::Error),
    Broken(Violation),
}

/// Why followers stopped: a read failed (an injected fault, or a broken invariant: the caller
/// tells), or what one delivered broke an invariant.
#[derive(Debug)]
pub enum DrainError {
    /// A read failed with this error.
    Read(&'static str, annal::Error),
    /// An invariant broke.
    Broken(Violation),
}

impl Follower {
    fn fail(&self, what: String) -> Drained {
        Drained::Broken(Violation::new(
            "G11 followers",
            format!("{} at {}: {what}", KINDS[self.kind], self.next),
        ))
    }

    /// Checks one delivered event against the model.
    fn check(
        &mut self,
        seq: u64,
        stream: &str,
        ev: &Ev,
        model: &[ModelEvent],
    ) -> Result<(), Drained> {
        if self.next == 0 {
            self.next = seq;
        }
        if seq != self.next {
            return Err(self.fail(format!("delivered sequence {seq}: a gap or a repeat")));
        }
        let i = usize::try_from(seq - 1).expect("small");
        match model.get(i) {
            Some(want) if want.stream == stream && want.ev == *ev => {}
            Some(want) => {
                return Err(self.fail(format!(
                    "delivered {stream:?} {ev:?}, the model holds {:?} {:?}",
                    want.stream, want.ev
                )));
            }
            None => return Err(self.fail(format!("delivered {seq}, never acknowledged"))),
        }
        self.next += 1;
        Ok(())
    }

    fn record(&mut self, r: &annal::Record, model: &[ModelEvent]) -> Result<(), Drained> {
        let raw = annal::RawEvent::parse(r.seq, r.ts, &r.payload)
            .map_err(|e| self.fail(format!("sequence {} does not parse: {e}", r.seq)))?;
        let ev: Ev = raw
            .decode()
            .map_err(|e| self.fail(format!("sequence {} does not decode: {e}", r.seq)))?;
        let stream = raw.stream.to_owned();
        self.check(r.seq, &stream, &ev, model)
    }

    /// Reads to the current end; returns how many events it delivered.
    fn drain(&mut self, journal: &Journal, model: &[ModelEvent]) -> Result<u64, Drained> {
        let mut delivered = 0u64;
        loop {
            let item: Option<annal::Result<Item>> = match &mut self.source {
                Source::Live(events) | Source::Dir(events) => {
                    events.next().map(|r| r.map(Item::Event))
                }
                Source::LiveRecords(reader) => {
                    reader.next().map(|r| r.map(Item::Record).map_err(annal::Error::from))
                }
                Source::Chained(records, _) => records.next().map(|r| r.map(Item::Chained)),
            };
            let Some(item) = item else { break };
            match item.map_err(classify)? {
                Item::Event(e) => self.check(e.seq, &e.stream, &e.data, model)?,
                Item::Record(r) => self.record(&r, model)?,
                Item::Chained(c) => {
                    if let Source::Chained(_, prev) = &mut self.source {
                        let broken = prev.is_some_and(|p| p != c.prev);
                        *prev = Some(c.chain);
                        if broken {
                            return Err(self.fail(format!(
                                "sequence {}: its previous chain value is not the one before it",
                                c.record.seq
                            )));
                        }
                    }
                    self.record(&c.record, model)?;
                }
            }
            delivered += 1;
        }
        let last = self.next.saturating_sub(1);
        if let Source::LiveRecords(reader) = &self.source
            && self.next > 0
            && reader.position() != self.next
        {
            return Err(self.fail(format!(
                "reports position {} after delivering up to {last}",
                reader.position()
            )));
        }
        // The chain value the export would print: the log's own, while the log holds it.
        if let Source::Chained(_, Some(chain)) = &self.source
            && last + 1 >= journal.log().first_seq()
        {
            match journal.log().chain_at(last) {
                Ok(want) if want == *chain => {}
                Ok(_) => {
                    return Err(self.fail(format!("chain value after {last} is not the log's")));
                }
                Err(e) => return Err(self.fail(format!("the log's chain value at {last}: {e}"))),
            }
        }
        Ok(delivered)
    }
}

enum Item {
    Event(Event<Ev>),
    Record(annal::Record),
    Chained(annal::Chained),
}

/// A follower's error: overtaken by a compaction, or another failure.
fn classify(e: annal::Error) -> Drained {
    if let annal::Error::Wal(annal::wal::Error::BeforeStart { seq, .. }) = e {
        Drained::Overtaken(e, seq)
    } else {
        Drained::Failed(e)
    }
}
