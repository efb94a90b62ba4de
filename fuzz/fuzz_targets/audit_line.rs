//! `audit_line`: one line of an audit export (`annal audit export`) or of `append --jsonl`
//! input, taken apart with the library pieces the CLI's verifier and JSONL reader rest on.
//!
//! The CLI's own parsers (`from_json` / `check_record` in `crates/cli/src/audit.rs`,
//! `parse_line` in `crates/cli/src/write_cmds.rs`) live in a binary crate and cannot be called
//! from here; this target fuzzes what they call instead: `serde_json::from_str::<Value>` of the
//! line, then, on the fields the export writes (`seq`, `ts_ns`, `payload` hex, `prev` hex,
//! `chain` hex), `annal_wal::chain_next`, `annal_wal::to_hex` and `RawEvent::parse` +
//! `to_event::<Value>`; and, on the fields a JSONL input line has (`stream`, `type`, `data`,
//! `meta`), `Meta`'s deserializer, `encode_data`, `encode_event` and `RawEvent::parse` again.
//!
//! Checks: nothing panics; `to_hex` gives 64 lowercase hex digits that decode back to the chain
//! value; the chain recomputes identically; an event encoded from a line's JSON `data` and
//! `meta` parses back to the same stream, type, metadata and JSON data (JSON -> MessagePack ->
//! JSON is lossless for what `serde_json` parses).

#![no_main]

use annal_projection::envelope::{encode_data, encode_event};
use annal_projection::{Meta, RawEvent};
use annal_wal::{CHAIN_START, ChainValue, chain_next, to_hex};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Lowercase or uppercase hex to bytes; `None` if not hex. (Input handling for this target,
/// not a copy of the CLI's parser.)
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    digits.chunks_exact(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

fn export_fields(v: &Value) {
    let (Some(seq), Some(ts_ns)) = (v["seq"].as_u64(), v["ts_ns"].as_u64()) else { return };
    let Some(payload) = v["payload"].as_str().and_then(unhex) else { return };
    // A line without a usable `prev` still exercises the chain, from the chain start.
    let prev: ChainValue =
        v["prev"].as_str().and_then(unhex).and_then(|b| b.try_into().ok()).unwrap_or(CHAIN_START);
    let chain = chain_next(&prev, seq, ts_ns, &payload);
    assert_eq!(chain, chain_next(&prev, seq, ts_ns, &payload), "the chain is deterministic");
    let hex = to_hex(&chain);
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{hex}");
    assert_eq!(unhex(&hex).as_deref(), Some(&chain[..]), "hex round trip");
    if let Some(stored) = v["chain"].as_str() {
        // What the verifier compares; equal or not, nothing may panic.
        let _matches = stored == hex;
    }
    if let Ok(raw) = RawEvent::parse(seq, ts_ns, &payload) {
        let _ = raw.to_event::<Value>();
    }
}

fn input_fields(v: &Value) {
    let (Some(stream), Some(event_type)) = (v["stream"].as_str(), v["type"].as_str()) else {
        return;
    };
    let data = match v.get("data") {
        Some(d) => d.clone(),
        None => Value::Object(Default::default()),
    };
    let meta = match v.get("meta") {
        None | Some(Value::Null) => Meta::default(),
        Some(m) => match serde_json::from_value::<Meta>(m.clone()) {
            Ok(meta) => meta,
            Err(_) => return,
        },
    };
    let encoded = encode_data(&data).expect("JSON data encodes as MessagePack");
    let mut payload = Vec::new();
    if encode_event(&mut payload, stream, 1, event_type, &meta, &encoded).is_err() {
        return; // an empty or too long name or field: refused, as it must be
    }
    let raw = RawEvent::parse(7, 9, &payload).expect("an encoded event parses");
    assert_eq!((raw.stream, raw.event_type, raw.version), (stream, event_type, 1));
    let back_meta = raw.meta.to_owned().expect("encoded metadata decodes");
    assert_eq!(back_meta, meta, "metadata survives encoding");
    let back = raw.decode::<Value>().expect("encoded JSON data decodes");
    assert_eq!(back, data, "JSON data survives MessagePack");
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let Ok(v) = serde_json::from_str::<Value>(line) else { return };
    export_fields(&v);
    input_fields(&v);
});
