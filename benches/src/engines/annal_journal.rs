//! The `annal` engine: the `Journal` facade. Each payload is the data of a typed event
//! ([`Blob`], a MessagePack map with one `bin` field), appended with `Expect::Any` to one of
//! [`STREAMS`] streams; `Durability::Sync` for durable appends, `Durability::Manual` and one
//! `sync()` for bulk loads. No projection is registered (no live fold on the append path); the
//! replay workload uses `Journal::replay` of the [`FoldBlobs`] projection, which decodes every
//! event.

use std::fmt;
use std::path::Path;

use annal::{Durability, Envelope, Expect, Journal, Projection, Query, TypedEvent, Until};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::{Appender, Context, Engine, Fold, Mode, Payloads, STREAMS, Spec, Store, wrong_mode};
use crate::{BenchResult, check};

/// The event type of every event.
pub const BLOB_EVENT_TYPE: &str = "blob";

/// An event to append: the payload, borrowed, serialized as a MessagePack `bin`.
#[derive(Debug, Clone, Copy)]
pub struct BlobRef<'a> {
    /// The payload.
    pub payload: &'a [u8],
}

impl Serialize for BlobRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Blob", 1)?;
        s.serialize_field("payload", &Bin(self.payload))?;
        s.end()
    }
}

impl TypedEvent for BlobRef<'_> {
    fn event_type(&self) -> &str {
        BLOB_EVENT_TYPE
    }
}

/// Bytes serialized as bytes (MessagePack `bin`), not as a sequence of numbers.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// An event read back: its payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Blob {
    /// The payload.
    #[serde(deserialize_with = "bytes")]
    pub payload: Vec<u8>,
}

fn bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_byte_buf(BytesVisitor)
}

/// The replay workload's projection: folds every event's payload into a [`Fold`].
#[derive(Debug, Clone, Copy)]
pub struct FoldBlobs;

impl Projection for FoldBlobs {
    const NAME: &'static str = "compare-fold";
    const SCHEMA_VERSION: u32 = 1;
    type Event = Blob;
    type State = Fold;

    fn accepts(event_type: &str) -> bool {
        event_type == BLOB_EVENT_TYPE
    }

    fn apply(state: &mut Fold, event: &Envelope<'_, Blob>) {
        state.add(&event.data.payload);
    }
}

/// The stream names, made once.
fn stream_names() -> Vec<String> {
    (0..STREAMS).map(|s| format!("stream-{s}")).collect()
}

/// A journal open in a directory.
#[derive(Debug)]
pub struct JournalStore {
    journal: Journal,
    mode: Mode,
    streams: Vec<String>,
    written_at_open: u64,
}

impl JournalStore {
    /// Opens a new journal in `dir/journal`.
    ///
    /// # Errors
    /// The journal's.
    pub fn open(dir: &Path, spec: Spec) -> BenchResult<Self> {
        let durability = match spec.mode {
            Mode::Durable => Durability::Sync,
            Mode::Bulk => Durability::Manual,
        };
        let journal = Journal::options()
            .durability(durability)
            .open(dir.join("journal"))
            .ctx("annal: open the journal")?;
        let written_at_open = journal.log().stats().bytes_written;
        Ok(Self { journal, mode: spec.mode, streams: stream_names(), written_at_open })
    }
}

struct JournalAppender<'a> {
    journal: &'a Journal,
    stream: &'a str,
}

impl Appender for JournalAppender<'_> {
    fn append(&mut self, payload: &[u8]) -> BenchResult<()> {
        self.journal
            .append(self.stream, Expect::Any, [BlobRef { payload }])
            .ctx("annal: append")?;
        Ok(())
    }
}

impl Store for JournalStore {
    fn engine(&self) -> Engine {
        Engine::Annal
    }

    fn appender(&self, writer: usize) -> BenchResult<Box<dyn Appender + '_>> {
        if self.mode != Mode::Durable {
            return Err(wrong_mode(Engine::Annal, Mode::Durable));
        }
        let stream = &self.streams[writer % STREAMS];
        Ok(Box::new(JournalAppender { journal: &self.journal, stream }))
    }

    fn bulk(&self, payloads: &Payloads, count: u64) -> BenchResult<()> {
        if self.mode != Mode::Bulk {
            return Err(wrong_mode(Engine::Annal, Mode::Bulk));
        }
        let mut buf = Vec::with_capacity(payloads.bytes());
        for (n, stream) in (0..count).zip(self.streams.iter().cycle()) {
            payloads.fill(n, &mut buf);
            self.journal
                .append(stream, Expect::Any, [BlobRef { payload: &buf }])
                .ctx("annal: append")?;
        }
        self.journal.sync().ctx("annal: sync")
    }

    fn scan(&self, visit: &mut dyn FnMut(&[u8]) -> BenchResult<()>) -> BenchResult<u64> {
        let mut next = 1;
        for event in self.journal.read::<Blob>(Query::all()) {
            let event = event.ctx("annal: read")?;
            check(event.seq == next, || {
                format!("annal: event {} where {next} was due", event.seq)
            })?;
            visit(&event.data.payload)?;
            next += 1;
        }
        Ok(next - 1)
    }

    fn replay(&self) -> BenchResult<Fold> {
        let (fold, at) = self.journal.replay::<FoldBlobs>(Until::End).ctx("annal: replay")?;
        let last = self.journal.last_seq();
        check(at == last, || format!("annal: replay stands at {at} of {last}"))?;
        Ok(fold)
    }

    fn written_bytes(&self) -> Option<u64> {
        Some(self.journal.log().stats().bytes_written - self.written_at_open)
    }

    fn fdatasyncs(&self) -> Option<u64> {
        Some(self.journal.log().stats().fdatasyncs)
    }

    fn close(self: Box<Self>) -> BenchResult<()> {
        self.journal.close().ctx("annal: close")
    }
}
