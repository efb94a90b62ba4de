//! Projections that work on any events: the stream index the journal keeps its versions in,
//! and the two generic projections of the CLI, `entities` and `counts`.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::envelope::Envelope;
use crate::projection::Projection;

/// The version of every stream: the journal's source of truth for expected-version checks.
#[derive(Debug, Clone, Copy)]
pub struct StreamIndex;

impl Projection for StreamIndex {
    const NAME: &'static str = "stream-index";
    const SCHEMA_VERSION: u32 = 1;
    type Event = IgnoredAny;
    type State = BTreeMap<String, u64>;

    fn apply(state: &mut Self::State, event: &Envelope<'_, IgnoredAny>) {
        match state.get_mut(event.stream) {
            Some(version) => *version = event.version,
            None => {
                state.insert(event.stream.to_owned(), event.version);
            }
        }
    }
}

/// Totals of events by type and by stream.
#[derive(Debug, Clone, Copy)]
pub struct Counts;

/// The state of [`Counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountsState {
    /// All events.
    pub total: u64,
    /// Events by type.
    pub by_type: BTreeMap<String, u64>,
    /// Events by stream.
    pub by_stream: BTreeMap<String, u64>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl Projection for Counts {
    const NAME: &'static str = "counts";
    const SCHEMA_VERSION: u32 = 1;
    type Event = IgnoredAny;
    type State = CountsState;

    fn apply(state: &mut CountsState, event: &Envelope<'_, IgnoredAny>) {
        state.total += 1;
        bump(&mut state.by_type, event.event_type);
        bump(&mut state.by_stream, event.stream);
    }
}

/// Per stream: its version, last event type, last update time, and the JSON Merge Patch
/// (RFC 7386) fold of its events' data.
#[derive(Debug, Clone, Copy)]
pub struct Entities;

/// One stream's entry in [`Entities`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// The stream's version (its last event's).
    pub version: u64,
    /// The last event's type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The last event's timestamp, Unix nanoseconds.
    pub updated: u64,
    /// The merge-patch fold of the events' data.
    pub data: Value,
}

impl Projection for Entities {
    const NAME: &'static str = "entities";
    const SCHEMA_VERSION: u32 = 1;
    type Event = Value;
    type State = BTreeMap<String, Entity>;

    fn apply(state: &mut Self::State, event: &Envelope<'_, Value>) {
        let entity = match state.get_mut(event.stream) {
            Some(entity) => entity,
            None => state.entry(event.stream.to_owned()).or_default(),
        };
        entity.version = event.version;
        event.event_type.clone_into(&mut entity.event_type);
        entity.updated = event.ts;
        merge_patch(&mut entity.data, &event.data);
    }
}

/// Applies an RFC 7386 JSON Merge Patch to `target`: objects merge key by key, `null` removes
/// a key, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else { unreachable!("made an object above") };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        // The test cases of RFC 7386, appendix A.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":"b","b":"c"}), json!({"a":null}), json!({"b":"c"})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (json!({"a":{"b":"c"}}), json!({"a":{"b":"d","c":null}}), json!({"a":{"b":"d"}})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (json!({}), json!({"a":{"bb":{"ccc":null}}}), json!({"a":{"bb":{}}})),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }
}
