//! The `Projection` trait: a pure fold of events into state.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::envelope::Envelope;

/// A projection folds events into a state: `state = events.fold(State::default(), apply)`.
///
/// `apply` must be pure: the same events in the same order give the same state, so that the
/// state at any sequence number is the result of a replay, and a snapshot plus the events after
/// it equals a replay from the start.
pub trait Projection: 'static {
    /// Unique name (used for snapshots and the CLI).
    const NAME: &'static str;
    /// Version of the state's schema; bump it when `State` or `apply` changes meaning, so that
    /// old snapshots are rebuilt rather than used.
    const SCHEMA_VERSION: u32;
    /// The events this projection reads (decoded from MessagePack with named fields).
    /// [`serde::de::IgnoredAny`] decodes nothing.
    type Event: DeserializeOwned;
    /// The state. Serialization must be deterministic (use `BTreeMap`, not `HashMap`).
    type State: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Whether events of this type concern the projection; others are skipped undecoded.
    #[must_use]
    fn accepts(event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    /// Folds one event into the state.
    fn apply(state: &mut Self::State, event: &Envelope<'_, Self::Event>);
}
