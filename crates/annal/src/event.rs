//! Events to append, and expected versions.

use std::fmt;

use annal_projection::Meta;
use annal_projection::envelope::encode_data;
use serde::Serialize;

use crate::error::Result;

/// A typed event: its data (serialized as MessagePack with named fields) and its type name.
pub trait TypedEvent: Serialize {
    /// The event type stored with it, for example `"task-created"`.
    fn event_type(&self) -> &str;
}

/// An event ready to append: its type, its encoded data and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub(crate) event_type: String,
    pub(crate) data: Vec<u8>,
    pub(crate) meta: Meta,
}

impl NewEvent {
    /// Encodes a typed event.
    ///
    /// # Errors
    /// The data does not serialize.
    pub fn new<E: TypedEvent + ?Sized>(event: &E) -> Result<Self> {
        Self::with_type(event.event_type(), event)
    }

    /// Encodes any serializable data under an explicit event type.
    ///
    /// # Errors
    /// The data does not serialize.
    pub fn with_type<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        data: &T,
    ) -> Result<Self> {
        Ok(Self { event_type: event_type.into(), data: encode_data(data)?, meta: Meta::default() })
    }

    /// An untyped event from JSON data.
    ///
    /// # Errors
    /// The data does not serialize (it always does for JSON).
    pub fn json(event_type: impl Into<String>, data: &serde_json::Value) -> Result<Self> {
        Self::with_type(event_type, data)
    }

    /// Sets the metadata.
    #[must_use]
    pub fn meta(mut self, meta: Meta) -> Self {
        self.meta = meta;
        self
    }

    /// The event type.
    #[must_use]
    pub fn event_type(&self) -> &str {
        &self.event_type
    }
}

/// The version a stream must have for an append to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No check.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must exist (version 1 or more).
    Exists,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl Expect {
    /// Whether a stream at version `actual` satisfies this expectation.
    #[must_use]
    pub fn allows(self, actual: u64) -> bool {
        match self {
            Expect::Any => true,
            Expect::NoStream => actual == 0,
            Expect::Exists => actual > 0,
            Expect::Exact(v) => actual == v,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Any => f.write_str("any version"),
            Expect::NoStream => f.write_str("no stream"),
            Expect::Exists => f.write_str("an existing stream"),
            Expect::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// What an append to one stream wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream.
    pub stream: String,
    /// Sequence number of the first event.
    pub first: u64,
    /// Sequence number of the last event.
    pub last: u64,
    /// The stream's version after the append.
    pub version: u64,
    /// Timestamp of the events, Unix nanoseconds.
    pub ts: u64,
}
