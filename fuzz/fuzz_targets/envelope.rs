//! `envelope`: `RawEvent::parse` on arbitrary event payloads, then decoding the data as
//! `serde_json::Value` and the metadata, as `read --json` and the audit export do.
//!
//! Checks: nothing panics (decode errors are fine) and nothing is allocated beyond what the
//! input holds; a parsed envelope respects the documented limits (stream name at most 1024
//! bytes, event type at most 256, actor / correlation / causation ids at most 4096) and its data
//! is the tail of the payload; a payload without free-form metadata and with non-empty stream
//! and type re-encodes with `encode_event` to exactly the same bytes; data that decodes as JSON
//! survives a round trip through `encode_data` (JSON -> MessagePack -> JSON is stable).
//!
//! Input: bytes 0-7 are the sequence number, 8-15 the timestamp, the rest is the payload.

#![no_main]

use annal_projection::envelope::{
    EVENT_TYPE_BYTES_MAX, META_FIELD_BYTES_MAX, STREAM_NAME_BYTES_MAX, encode_data, encode_event,
};
use annal_projection::{Meta, RawEvent};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let seq = u64::from_le_bytes(data[..8].try_into().expect("8"));
    let ts = u64::from_le_bytes(data[8..16].try_into().expect("8"));
    let payload = &data[16..];
    let Ok(raw) = RawEvent::parse(seq, ts, payload) else { return };

    assert_eq!((raw.seq, raw.ts), (seq, ts));
    assert!(raw.stream.len() <= STREAM_NAME_BYTES_MAX);
    assert!(raw.event_type.len() <= EVENT_TYPE_BYTES_MAX);
    for field in [raw.meta.actor, raw.meta.correlation_id, raw.meta.causation_id] {
        assert!(field.is_none_or(|f| f.len() <= META_FIELD_BYTES_MAX));
    }
    assert!(payload.ends_with(raw.data), "the data is the tail of the payload");

    let extra = raw.meta.extra();
    let owned_meta = raw.meta.to_owned();
    assert_eq!(extra.is_ok(), owned_meta.is_ok());
    let decoded = raw.decode::<Value>();
    let event = raw.to_event::<Value>();
    assert_eq!(event.is_ok(), decoded.is_ok() && owned_meta.is_ok());

    if let Ok(meta) = &owned_meta
        && meta.extra.is_empty()
        && !raw.stream.is_empty()
        && !raw.event_type.is_empty()
    {
        let mut out = Vec::new();
        let plain = Meta { extra: Default::default(), ..meta.clone() };
        encode_event(&mut out, raw.stream, raw.version, raw.event_type, &plain, raw.data)
            .expect("a parsed envelope within the limits encodes");
        // A payload whose metadata length is 0 re-encodes exactly; one that stored an empty
        // map (non-zero length) re-encodes with length 0, so compare only the former.
        let meta_len_zero = out.len() == payload.len();
        if meta_len_zero {
            assert!(out == payload, "an envelope re-encodes to the same bytes");
        }
        let again = RawEvent::parse(seq, ts, &out).expect("a re-encoded envelope parses");
        assert_eq!(
            (again.stream, again.version, again.event_type, again.data),
            (raw.stream, raw.version, raw.event_type, raw.data)
        );
        assert_eq!(again.meta.to_owned().as_ref().ok(), Some(&plain));
    }

    if let Ok(value) = decoded {
        let bytes = encode_data(&value).expect("a JSON value encodes");
        let again = RawEvent { data: &bytes, ..raw };
        let back = again.decode::<Value>().expect("re-encoded JSON data decodes");
        assert_eq!(back, value, "JSON -> MessagePack -> JSON is stable");
    }
});
