//! Live projections: registered projections kept current as events are acknowledged.

use std::any::{Any, TypeId};
use std::collections::VecDeque;

use annal_projection::replay::apply_raw;
use annal_projection::{Projection, RawEvent};

/// A registered projection, type-erased.
pub(crate) trait Live: Send + Sync {
    fn name(&self) -> &'static str;
    fn projection(&self) -> TypeId;
    fn apply(&mut self, raw: &RawEvent<'_>) -> annal_projection::Result<()>;
    fn state(&self) -> &dyn Any;
}

pub(crate) struct LiveOf<P: Projection> {
    state: P::State,
}

impl<P: Projection> LiveOf<P> {
    pub(crate) fn boxed() -> Box<dyn Live> {
        Box::new(Self { state: P::State::default() })
    }
}

impl<P: Projection> Live for LiveOf<P> {
    fn name(&self) -> &'static str {
        P::NAME
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
}

/// How a projection is registered before the journal exists.
pub(crate) type Registration = fn() -> Box<dyn Live>;

pub(crate) fn registration<P: Projection>() -> Registration {
    LiveOf::<P>::boxed
}

/// One acknowledged-or-pending append, waiting to be folded into the live projections.
pub(crate) struct Queued {
    pub first: u64,
    pub ts: u64,
    pub payloads: Vec<Vec<u8>>,
}

impl Queued {
    pub(crate) fn last(&self) -> u64 {
        self.first + self.payloads.len() as u64 - 1
    }
}

/// The live projections and where they stand.
pub(crate) struct LiveSet {
    pub projections: Vec<Box<dyn Live>>,
    /// Every live projection has folded the events up to here.
    pub applied_seq: u64,
    /// The first failure of a projection, which then holds no usable state.
    pub failed: Vec<(&'static str, u64, String)>,
}

impl LiveSet {
    /// Folds one stored event into every projection; a projection that fails is recorded as
    /// failed and skipped from then on.
    pub(crate) fn apply(&mut self, raw: &RawEvent<'_>) {
        for p in &mut self.projections {
            let name = p.name();
            if self.failed.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            if let Err(e) = p.apply(raw) {
                self.failed.push((name, raw.seq, e.to_string()));
            }
        }
        self.applied_seq = raw.seq;
    }
}

/// Appends waiting to be folded, in sequence order.
pub(crate) type Queue = VecDeque<Queued>;
