//! Live projections: registered projections kept current as events are acknowledged, and
//! saved to or loaded from snapshots.

use std::any::{Any, TypeId};
use std::collections::VecDeque;

use annal_projection::replay::{apply_raw, fold_from};
use annal_projection::{Projection, RawEvent};
use annal_wal::Log;

/// A registered projection, type-erased.
pub(crate) trait Live: Send + Sync {
    fn name(&self) -> &'static str;
    fn schema_version(&self) -> u32;
    fn projection(&self) -> TypeId;
    fn apply(&mut self, raw: &RawEvent<'_>) -> annal_projection::Result<()>;
    fn state(&self) -> &dyn Any;
    /// The state, serialized for a snapshot (MessagePack with named fields).
    fn save(&self) -> Result<Vec<u8>, String>;
    /// Replaces the state by a snapshot's.
    fn load(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// Folds the log from a serialized state at `from.0` (or the default state at 0) to `to`
    /// and returns the serialized result: what a snapshot at `to` must hold.
    fn fold_serialized(
        &self,
        log: &Log,
        from: Option<(u64, &[u8])>,
        to: u64,
    ) -> Result<Vec<u8>, String>;
}

pub(crate) struct LiveOf<P: Projection> {
    state: P::State,
}

impl<P: Projection + Send + Sync> LiveOf<P> {
    pub(crate) fn boxed() -> Box<dyn Live> {
        Box::new(Self { state: P::State::default() })
    }
}

fn decode_state<P: Projection>(bytes: &[u8]) -> Result<P::State, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("state of {} does not decode: {e}", P::NAME))
}

fn encode_state<P: Projection>(state: &P::State) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(state).map_err(|e| format!("state of {} does not encode: {e}", P::NAME))
}

impl<P: Projection + Send + Sync> Live for LiveOf<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn schema_version(&self) -> u32 {
        P::SCHEMA_VERSION
    }

    fn projection(&self) -> TypeId {
        TypeId::of::<P>()
    }

    fn apply(&mut self, raw: &RawEvent<'_>) -> annal_projection::Result<()> {
        apply_raw::<P>(&mut self.state, raw)
    }

    fn state(&self) -> &dyn Any {
        &self.state
    }

    fn save(&self) -> Result<Vec<u8>, String> {
        encode_state::<P>(&self.state)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.state = decode_state::<P>(bytes)?;
        Ok(())
    }

    fn fold_serialized(
        &self,
        log: &Log,
        from: Option<(u64, &[u8])>,
        to: u64,
    ) -> Result<Vec<u8>, String> {
        let start = match from {
            Some((seq, bytes)) => (seq, decode_state::<P>(bytes)?),
            None => (0, P::State::default()),
        };
        let state = fold_from::<P>(log, start, to).map_err(|e| e.to_string())?;
        encode_state::<P>(&state)
    }
}

/// How a projection is registered before the journal exists.
pub(crate) type Registration = fn() -> Box<dyn Live>;

pub(crate) fn registration<P: Projection + Send + Sync>() -> Registration {
    LiveOf::<P>::boxed
}

/// One acknowledged-or-pending append, waiting to be folded into the live projections.
pub(crate) struct Queued {
    pub first: u64,
    pub ts: u64,
    pub payloads: std::sync::Arc<[Vec<u8>]>,
}

impl Queued {
    pub(crate) fn last(&self) -> u64 {
        self.first + self.payloads.len() as u64 - 1
    }
}

/// One live projection and where it stands.
pub(crate) struct Slot {
    pub live: Box<dyn Live>,
    /// The projection has folded the events up to here.
    pub at: u64,
    /// Where and why it failed; its state is unusable from then on.
    pub failed: Option<(u64, String)>,
}

/// The live projections.
pub(crate) struct LiveSet {
    pub slots: Vec<Slot>,
    /// Every projection has folded the events up to here.
    pub applied_seq: u64,
}

impl LiveSet {
    pub(crate) fn new(lives: impl IntoIterator<Item = Box<dyn Live>>) -> Self {
        Self {
            slots: lives.into_iter().map(|live| Slot { live, at: 0, failed: None }).collect(),
            applied_seq: 0,
        }
    }

    /// Folds one stored event into every projection that has not seen it yet; a projection
    /// that fails is recorded as failed and skipped from then on.
    pub(crate) fn apply(&mut self, raw: &RawEvent<'_>) {
        for slot in &mut self.slots {
            if slot.failed.is_some() || slot.at >= raw.seq {
                continue;
            }
            if let Err(e) = slot.live.apply(raw) {
                slot.failed = Some((raw.seq, e.to_string()));
            }
            slot.at = raw.seq;
        }
        self.applied_seq = raw.seq;
    }
}

/// Appends waiting to be folded, in sequence order.
pub(crate) type Queue = VecDeque<Queued>;
