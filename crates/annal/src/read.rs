//! Reading events: by sequence range, by stream, with a limit; and subscriptions that catch up
//! and then follow live appends.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use annal_projection::{Event, RawEvent};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::journal::Journal;

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// First sequence number (default: the start).
    pub from: u64,
    /// Last sequence number, inclusive (default: the last acknowledged one).
    pub until: Option<u64>,
    /// Only events of this stream.
    pub stream: Option<String>,
    /// At most this many events.
    pub limit: Option<usize>,
}

impl Query {
    /// Every event.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// Events with sequence numbers in `range`.
    #[must_use]
    pub fn range(range: impl RangeBounds<u64>) -> Self {
        let from = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let until = match range.end_bound() {
            Bound::Included(&e) => Some(e),
            Bound::Excluded(&e) => Some(e.saturating_sub(1)),
            Bound::Unbounded => None,
        };
        Self { from, until, ..Self::default() }
    }

    /// Only events of `stream`.
    #[must_use]
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// At most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// An iterator of events decoded as `E` (`serde_json::Value` reads any event).
///
/// After it yields an error it yields nothing more.
#[derive(Debug)]
pub struct Events<E> {
    records: Records,
    until: u64,
    stream: Option<String>,
    left: usize,
    done: bool,
    /// The last sequence number read.
    last: u64,
    _event: PhantomData<fn() -> E>,
}

#[derive(Debug)]
enum Records {
    Plain(annal_wal::Reader),
    Follow(annal_wal::Follow),
}

impl Iterator for Records {
    type Item = annal_wal::Result<annal_wal::Record>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::Plain(r) => r.next(),
            Records::Follow(f) => f.next(),
        }
    }
}

impl<E> Events<E> {
    pub(crate) fn new(reader: annal_wal::Reader, query: Query) -> Self {
        Self::with(Records::Plain(reader), query)
    }

    pub(crate) fn following(follow: annal_wal::Follow, query: Query) -> Self {
        Self::with(Records::Follow(follow), query)
    }

    fn with(records: Records, query: Query) -> Self {
        Self {
            records,
            until: query.until.unwrap_or(u64::MAX),
            stream: query.stream,
            left: query.limit.unwrap_or(usize::MAX),
            done: false,
            last: 0,
            _event: PhantomData,
        }
    }
}

impl<E: DeserializeOwned + 'static> Iterator for Events<E> {
    type Item = Result<Event<E>>;

    fn next(&mut self) -> Option<Result<Event<E>>> {
        if self.done || self.left == 0 || self.last >= self.until {
            return None;
        }
        loop {
            let record = match self.records.next()? {
                Ok(record) => record,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            if record.seq > self.until {
                self.done = true;
                return None;
            }
            // Nothing past `until` is read: damage after it does not fail this read.
            self.last = record.seq;
            let event = RawEvent::parse(record.seq, record.ts, &record.payload).and_then(|raw| {
                if self.stream.as_deref().is_some_and(|s| s != raw.stream) {
                    return Ok(None);
                }
                raw.to_event::<E>().map(Some)
            });
            match event {
                Ok(Some(event)) => {
                    self.left -= 1;
                    self.last = event.seq;
                    return Some(Ok(event));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}

impl Journal {
    /// Reads acknowledged events matching `query`, decoded as `E`. Filtering by stream reads
    /// the whole range (events are not indexed by stream) but decodes only the matching ones.
    pub fn read<E: DeserializeOwned + 'static>(&self, query: Query) -> Events<E> {
        Events::new(self.inner().log.read_from(query.from), query)
    }

    /// Reads events matching `query` as JSON values, without their Rust types.
    pub fn read_raw(&self, query: Query) -> Events<serde_json::Value> {
        self.read(query)
    }

    /// Catches up from sequence `from`, then follows live appends: yields every event from
    /// `from` on exactly once and in order, waiting for new ones, until the journal is closed.
    pub fn subscribe<E: DeserializeOwned + 'static>(&self, from: u64) -> Events<E> {
        Events::following(self.inner().log.read_from(from).follow(), Query::all())
    }
}
