//! annal-projection: event envelopes, projections, and the replay engine.
//!
//! A [`Projection`] is a pure fold of events into a state. The state at sequence number S is
//! by definition the fold of events 1..=S; [`replay::fold_records`] computes it by streaming the
//! log (memory is the state plus one segment window), and the journal keeps registered
//! projections current as events are acknowledged.
//!
//! Events are stored as WAL records whose payload is an [envelope] (stream, version,
//! type, metadata) followed by the data in MessagePack with named fields, so that any event can
//! be decoded without its Rust type, as JSON.
//!
//! # Example
//! ```
//! use annal_projection::{Envelope, Projection};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Deposited { amount: u64 }
//!
//! struct Balance;
//! impl Projection for Balance {
//!     const NAME: &'static str = "balance";
//!     const SCHEMA_VERSION: u32 = 1;
//!     type Event = Deposited;
//!     type State = u64;
//!     fn accepts(event_type: &str) -> bool { event_type == "deposited" }
//!     fn apply(state: &mut u64, event: &Envelope<'_, Deposited>) { *state += event.data.amount; }
//! }
//! ```
#![deny(missing_docs)]

pub mod builtin;
pub mod envelope;
mod error;
mod projection;
pub mod replay;

pub use builtin::{Counts, CountsState, Entities, Entity, StreamIndex, merge_patch};
pub use envelope::{Envelope, Event, Meta, MetaRef, RawEvent};
pub use error::{Error, Result};
pub use projection::Projection;
pub use replay::Until;
