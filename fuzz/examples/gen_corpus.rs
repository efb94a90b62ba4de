//! Writes the seed corpora under `fuzz/corpus/<target>/`: real segments, frames, headers,
//! footers and index blocks cut from `crates/wal/tests/fixtures/v1`, the MANIFEST and snapshots
//! of `crates/compactor/tests/fixtures/v1`, event payloads and audit-export / JSONL lines made
//! with the library, and a few fixed pseudo-random inputs for the `arbitrary`-driven targets.
//!
//! Run from `fuzz/`: `cargo run --example gen_corpus` (deterministic: rerunning rewrites the
//! same files). Each seed starts with the flag byte its target reads first (see the targets'
//! `//!` comments).

use std::fs;
use std::path::{Path, PathBuf};

use annal_compactor::{Manifest, Snapshot, SnapshotRef};
use annal_projection::Meta;
use annal_projection::envelope::{encode_data, encode_event};
use annal_wal::format::{
    FOOTER_BYTES, Footer, SEGMENT_HEADER_BYTES, decode_frame_header, encode_frame,
};
use annal_wal::{CHAIN_START, chain_next, to_hex};
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(rel: &str) -> Vec<u8> {
    let p = root().join("..").join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("corpus").join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with_flag(flag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(bytes);
    v
}

/// The frames of a segment, from offset 64 up to the first thing that is not a frame.
fn frames(seg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    while let Ok(h) = decode_frame_header(&seg[at..]) {
        let end = at + h.frame_len() as usize;
        if end > seg.len() {
            break;
        }
        out.push(&seg[at..end]);
        at = end;
    }
    out
}

/// splitmix64, for fixed pseudo-random seeds.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn main() {
    let wal = "crates/wal/tests/fixtures/v1";
    let seg1 = read(&format!("{wal}/clean/wal/00000000000000000001.seg"));
    let seg56 = read(&format!("{wal}/clean/wal/00000000000000000056.seg"));
    let torn56 = read(&format!("{wal}/torn-tail/wal/00000000000000000056.seg"));
    let midlog56 = read(&format!("{wal}/mid-log-corruption/wal/00000000000000000056.seg"));
    let sealed_bad1 = read(&format!("{wal}/sealed-corruption/wal/00000000000000000001.seg"));

    // frame_decode: real frames, a batch frame, one with a wrong CRC (flag 1 repairs it).
    let fs1 = frames(&seg1);
    for (i, f) in fs1.iter().take(3).enumerate() {
        put("frame_decode", &format!("fixture-frame-{i}"), &with_flag(0, f));
    }
    let mut batch = Vec::new();
    let recs: [(u64, &[u8]); 3] = [(10, b"hello"), (10, b""), (11, b"world!")];
    encode_frame(&mut batch, 7, 64, recs.iter().copied());
    put("frame_decode", "batch-of-3", &with_flag(0, &batch));
    let mut bad = batch.clone();
    bad[4] ^= 0xff;
    put("frame_decode", "batch-bad-crc-fixed-by-flag", &with_flag(1, &bad));

    // segment_scan: raw fixture segments (mode 0, chain on), frames after a generated header
    // (mode 1), and generated segments (mode 2).
    put("segment_scan", "raw-sealed-1", &with_flag(4, &seg1));
    put("segment_scan", "raw-active-56", &with_flag(4, &seg56));
    put("segment_scan", "raw-torn-56", &with_flag(4, &torn56));
    put("segment_scan", "raw-midlog-corrupt-56", &with_flag(0, &midlog56));
    put("segment_scan", "raw-sealed-corrupt-1", &with_flag(4, &sealed_bad1));
    put("segment_scan", "after-header-sealed-1", &with_flag(5, &seg1[SEGMENT_HEADER_BYTES..]));
    put("segment_scan", "after-header-frames", &with_flag(1, &fs1[..4].concat()));
    for i in 0..3 {
        put("segment_scan", &format!("generated-{i}"), &with_flag(6, &noise(i, 200)));
    }

    // segment_header_footer: the header, footer and index block of the sealed fixture.
    let footer = &seg1[seg1.len() - FOOTER_BYTES..];
    let data_end = Footer::decode(footer).expect("fixture footer").data_end as usize;
    let index = &seg1[data_end..seg1.len() - FOOTER_BYTES];
    put("segment_header_footer", "header", &with_flag(0, &seg1[..SEGMENT_HEADER_BYTES]));
    put("segment_header_footer", "header-56", &with_flag(0, &seg56[..SEGMENT_HEADER_BYTES]));
    put("segment_header_footer", "footer", &with_flag(0, footer));
    put("segment_header_footer", "index", &with_flag(0, index));
    put("segment_header_footer", "footer-crc-by-flag", &with_flag(3, footer));
    put("segment_header_footer", "index-crc-by-flag", &with_flag(5, index));

    // manifest: the fixture, an empty one and one with several entries.
    let cf = "crates/compactor/tests/fixtures/v1";
    put("manifest", "fixture", &with_flag(0, &read(&format!("{cf}/MANIFEST"))));
    let empty = Manifest { generation: 1, log_start: 1, snapshots: vec![] };
    put("manifest", "empty", &with_flag(0, &empty.encode().expect("encode")));
    let snap_ref =
        |p: &str, seq| SnapshotRef { projection: p.into(), schema_version: 2, seq, crc: 9 };
    let m = Manifest {
        generation: 7,
        log_start: 1001,
        snapshots: vec![
            snap_ref("stream-index", 1000),
            snap_ref("counts", 1000),
            snap_ref("a_b", 5),
        ],
    };
    put("manifest", "three-entries", &with_flag(0, &m.encode().expect("encode")));

    // snapshot: the fixtures and a generated one.
    for p in ["counts", "stream-index"] {
        let bytes = read(&format!("{cf}/snapshots/{p}/00000000000000000042.snap"));
        put("snapshot", &format!("fixture-{p}"), &with_flag(0, &bytes));
    }
    let s = Snapshot {
        projection: "entities".into(),
        schema_version: 3,
        seq: 42,
        chain: [9; 32],
        state: encode_data(&json!({"a": [1, 2, 3]})).expect("encode"),
    };
    put("snapshot", "generated", &with_flag(0, &s.encode().expect("encode")));

    // envelope: payloads made by encode_event (sequence and timestamp first).
    let mut meta = Meta::actor("clerk");
    meta.correlation_id = Some("req-1".into());
    meta.extra.insert("ip".into(), json!("10.0.0.1"));
    let events = [
        ("account-1", 1, "opened", Meta::default(), json!({"owner": "ada", "limit": 7})),
        ("account-1", 2, "deposited", meta.clone(), json!({"amount": 10, "note": null})),
        ("s", 3, "t", Meta::default(), json!([1, -2, 3.5, "x", {"k": true}])),
    ];
    let mut payloads = Vec::new();
    for (i, (stream, version, ty, meta, data)) in events.iter().enumerate() {
        let mut payload = Vec::new();
        let data = encode_data(data).expect("encode");
        encode_event(&mut payload, stream, *version, ty, meta, &data).expect("encode");
        let mut input = (i as u64 + 1).to_le_bytes().to_vec();
        input.extend_from_slice(&1_700_000_000_000_000_000u64.to_le_bytes());
        input.extend_from_slice(&payload);
        put("envelope", &format!("event-{i}"), &input);
        payloads.push(payload);
    }

    // audit_line: export lines (the fields `annal audit export` writes, chained) and JSONL
    // input lines.
    let mut chain = CHAIN_START;
    for (i, ((stream, version, ty, meta, data), payload)) in
        events.iter().zip(&payloads).enumerate()
    {
        let seq = i as u64 + 1;
        let ts = 1_700_000_000_000_000_000 + seq;
        let prev = chain;
        chain = chain_next(&chain, seq, ts, payload);
        let line = json!({
            "seq": seq, "ts": "2023-11-14T22:13:20.000000001Z", "stream": stream,
            "version": version, "type": ty, "data": data, "meta": meta,
            "ts_ns": ts,
            "payload": payload.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "prev": to_hex(&prev), "chain": to_hex(&chain),
        });
        put("audit_line", &format!("export-{i}"), line.to_string().as_bytes());
    }
    put("audit_line", "jsonl-min", br#"{"stream":"s","type":"t"}"#);
    put(
        "audit_line",
        "jsonl-full",
        br#"{"stream":"acct-1","type":"deposited","data":{"amount":10,"tags":["a"],"x":1.5},"meta":{"actor":"ada","extra":{"ip":"10.0.0.1"}},"expect":"none"}"#,
    );

    // stateful: fixed pseudo-random inputs of a few sizes (decoded with `arbitrary`).
    for (i, len) in [64usize, 256, 1024].into_iter().enumerate() {
        put("stateful", &format!("noise-{i}"), &noise(100 + i as u64, len));
    }
    eprintln!("seed corpora written under {}", root().join("corpus").display());
}
