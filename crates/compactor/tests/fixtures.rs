//! Guards against format drift of snapshots and the MANIFEST: a change to either encoding that
//! would make existing stores unreadable (a build that can no longer decode the snapshots and
//! MANIFEST that format version 1 wrote, or that writes different bytes without bumping the
//! version). The files under `tests/fixtures/v1/` are committed bytes laid out as a store:
//!
//! - `MANIFEST`: generation 1, log start 43, two entries (`counts` and `stream-index`, both
//!   schema 1 at sequence 42), as `Journal::compact` writes them for a journal with `Counts`
//!   registered;
//! - `snapshots/counts/00000000000000000042.snap`: schema 1, sequence 42, chain value 32 bytes of
//!   `0x07`, state [`COUNTS_STATE`];
//! - `snapshots/stream-index/00000000000000000042.snap`: the same with state [`INDEX_STATE`].
//!
//! The tests only read the committed files. To regenerate them (only when adding a new format
//! version's directory, never to make a failing test pass):
//!
//! ```text
//! ANNAL_WRITE_FIXTURES=1 cargo test -p annal-compactor --test fixtures -- --ignored --exact write_fixtures
//! ```
//!
//! A difference between the committed files and what the encoders produce means the format
//! changed: bump `SNAPSHOT_FORMAT` or `MANIFEST_FORMAT` and add a `fixtures/v<N>/` directory next
//! to this one, which stays.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use annal_compactor::{
    Error, MANIFEST_FILE, Manifest, SNAPSHOTS_DIR, Snapshot, SnapshotRef, parse_snapshot_name,
    snapshot_path,
};
use annal_storage::{OsStorage, SimStorage, Storage};

// ---- what the fixtures hold ----------------------------------------------------------------

/// Sequence number both snapshots stand at.
const SEQ: u64 = 42;
/// Schema version of both projections.
const SCHEMA: u32 = 1;
/// Hash-chain value recorded in both snapshots.
const CHAIN: [u8; 32] = [7; 32];
/// Generation of the MANIFEST (its first compaction).
const GENERATION: u64 = 1;
/// Log start of the MANIFEST: one past the oldest snapshot it names.
const LOG_START: u64 = SEQ + 1;

/// `rmp_serde::to_vec_named` of `CountsState { total: 3, by_type: {"added": 2, "done": 1},
/// by_stream: {"task-7": 3} }`.
const COUNTS_STATE: &[u8] = &[
    0x83, // map of 3 fields
    0xa5, b't', b'o', b't', b'a', b'l', 0x03, // "total": 3
    0xa7, b'b', b'y', b'_', b't', b'y', b'p', b'e', 0x82, // "by_type": map of 2
    0xa5, b'a', b'd', b'd', b'e', b'd', 0x02, // "added": 2
    0xa4, b'd', b'o', b'n', b'e', 0x01, // "done": 1
    0xa9, b'b', b'y', b'_', b's', b't', b'r', b'e', b'a', b'm', 0x81, // "by_stream": map of 1
    0xa6, b't', b'a', b's', b'k', b'-', b'7', 0x03, // "task-7": 3
];
/// `rmp_serde::to_vec_named` of the stream index `{"task-7": 3}`.
const INDEX_STATE: &[u8] = &[0x81, 0xa6, b't', b'a', b's', b'k', b'-', b'7', 0x03];

/// The checksums of the two snapshot files (the CRC32 at each one's end), as the MANIFEST
/// records them.
const COUNTS_CRC: u32 = 0x43ab_c78d;

/// Paths of the committed snapshot files, relative to the fixture store.
const COUNTS_FILE: &str = "snapshots/counts/00000000000000000042.snap";
const INDEX_FILE: &str = "snapshots/stream-index/00000000000000000042.snap";

/// Sizes of the committed files: 66 + name + state + 4 for a snapshot; 32 + entries + 4 for
/// the MANIFEST, an entry being 2 + name + 4 + 8 + 4.
const COUNTS_FILE_BYTES: usize = 66 + 6 + 49 + 4;
const INDEX_FILE_BYTES: usize = 66 + 12 + 9 + 4;
const MANIFEST_BYTES: usize = 32 + (18 + 6) + (18 + 12) + 4;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("v1")
}

fn snapshot(projection: &str, state: &[u8]) -> Snapshot {
    Snapshot {
        projection: projection.to_owned(),
        schema_version: SCHEMA,
        seq: SEQ,
        chain: CHAIN,
        state: state.to_vec(),
    }
}

fn manifest() -> Manifest {
    let entry = |projection: &str, state: &[u8]| {
        let bytes = snapshot(projection, state).encode().expect("encode");
        let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        SnapshotRef { projection: projection.to_owned(), schema_version: SCHEMA, seq: SEQ, crc }
    };
    Manifest {
        generation: GENERATION,
        log_start: LOG_START,
        snapshots: vec![entry("counts", COUNTS_STATE), entry("stream-index", INDEX_STATE)],
    }
}

/// Every fixture file by path relative to the store, as today's encoders produce it.
fn encoded_today() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (file, projection, state) in
        [(COUNTS_FILE, "counts", COUNTS_STATE), (INDEX_FILE, "stream-index", INDEX_STATE)]
    {
        files.insert(file.to_owned(), snapshot(projection, state).encode().expect("encode"));
    }
    files.insert(MANIFEST_FILE.to_owned(), manifest().encode().expect("encode MANIFEST"));
    files
}

/// Every committed file by path relative to the store.
fn committed() -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("below base");
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.insert(rel, fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&fixtures_dir(), &fixtures_dir(), &mut out);
    out
}

// ---- decoding the committed files ----------------------------------------------------------

#[test]
fn committed_manifest_decodes_to_the_expected_fields() {
    let dir = fixtures_dir();
    let bytes = fs::read(dir.join(MANIFEST_FILE)).expect("read MANIFEST");
    assert_eq!(bytes.len(), MANIFEST_BYTES);
    let m = Manifest::read(&OsStorage::new(), &dir).expect("read").expect("a MANIFEST");
    assert_eq!(m.generation, 1);
    assert_eq!(m.log_start, 43);
    assert_eq!(m.snapshots.len(), 2);
    let names: Vec<&str> = m.snapshots.iter().map(|s| s.projection.as_str()).collect();
    assert_eq!(names, ["counts", "stream-index"]);
    for s in &m.snapshots {
        assert_eq!(s.schema_version, 1, "{}", s.projection);
        assert_eq!(s.seq, 42, "{}", s.projection);
    }
    assert_eq!(m.snapshots[0].crc, COUNTS_CRC, "the counts snapshot's own checksum");
    assert_ne!(m.snapshots[0].crc, m.snapshots[1].crc, "checksums tell snapshots apart");
    assert_eq!(m.snapshots_of("counts").map(|s| s.seq).collect::<Vec<_>>(), [42]);
    assert_eq!(m.snapshots_of("entities").count(), 0);
}

#[test]
fn committed_snapshots_decode_to_the_expected_fields() {
    let dir = fixtures_dir();
    let storage = OsStorage::new();
    let m = Manifest::read(&storage, &dir).expect("read").expect("a MANIFEST");
    let expected = [
        ("counts", COUNTS_FILE, COUNTS_FILE_BYTES, COUNTS_STATE),
        ("stream-index", INDEX_FILE, INDEX_FILE_BYTES, INDEX_STATE),
    ];
    for (entry, (projection, file, len, state)) in m.snapshots.iter().zip(expected) {
        let path = snapshot_path(&dir, &entry.projection, entry.seq);
        assert_eq!(path, dir.join(file), "the MANIFEST names {file}");
        let name = path.file_name().and_then(|n| n.to_str()).expect("file name");
        assert_eq!(parse_snapshot_name(name), Some(42));
        let bytes = fs::read(&path).expect("read snapshot");
        assert_eq!(bytes.len(), len, "{file}");
        let stored = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        assert_eq!(stored, entry.crc, "{file}: the MANIFEST records the file's checksum");

        let snap = Snapshot::read(&storage, &path, Some(entry.crc)).expect("read snapshot");
        assert_eq!(snap.projection, projection, "{file}");
        assert_eq!(snap.schema_version, 1, "{file}");
        assert_eq!(snap.seq, 42, "{file}");
        assert_eq!(snap.chain, [7; 32], "{file}");
        assert_eq!(snap.state, state, "{file}");
        assert_eq!(Snapshot::decode(&path, &bytes).expect("decode"), snap, "{file}");
    }
}

#[test]
fn committed_snapshot_bytes_sit_at_the_documented_offsets() {
    let bytes = fs::read(fixtures_dir().join(COUNTS_FILE)).expect("read snapshot");
    assert_eq!(&bytes[0..8], b"ANNALSNP");
    assert_eq!(bytes[8..12], 1u32.to_le_bytes(), "format version");
    assert_eq!(bytes[12..16], 1u32.to_le_bytes(), "schema version");
    assert_eq!(bytes[16..24], 42u64.to_le_bytes(), "sequence number");
    assert_eq!(bytes[24..56], [7; 32], "chain value");
    assert_eq!(bytes[56..64], 49u64.to_le_bytes(), "state length");
    assert_eq!(bytes[64..66], 6u16.to_le_bytes(), "name length");
    assert_eq!(&bytes[66..72], b"counts");
    assert_eq!(&bytes[72..121], COUNTS_STATE);
    assert_eq!(bytes[121..], [0x8d, 0xc7, 0xab, 0x43], "CRC32 of bytes 0..121");
    assert_eq!(crc32fast::hash(&bytes[..121]), 0x43ab_c78d);
}

// ---- encoding today ------------------------------------------------------------------------

/// The committed files are exactly what the encoders produce today: a change of the bytes fails
/// here until the format version is bumped and new fixtures are added.
#[test]
fn fixtures_match_what_the_encoders_produce() {
    compare_or_write_fixtures(false);
}

/// With `ANNAL_WRITE_FIXTURES=1`, writes the fixtures; otherwise only compares them.
#[test]
#[ignore = "writes tests/fixtures/v1 when ANNAL_WRITE_FIXTURES=1; see the file header"]
fn write_fixtures() {
    compare_or_write_fixtures(std::env::var("ANNAL_WRITE_FIXTURES").as_deref() == Ok("1"));
}

fn compare_or_write_fixtures(write: bool) {
    let today = encoded_today();
    let root = fixtures_dir();
    if !write {
        let committed = committed();
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            today.keys().collect::<Vec<_>>(),
            "committed fixture files"
        );
        for (file, bytes) in &today {
            assert_eq!(&committed[file], bytes, "{file}: committed bytes differ from today's");
        }
        return;
    }
    if root.exists() {
        fs::remove_dir_all(&root).expect("remove old fixtures");
    }
    for (file, bytes) in today {
        let path = root.join(&file);
        fs::create_dir_all(path.parent().expect("in a directory")).expect("create directory");
        fs::write(&path, bytes).expect("write fixture");
    }
}

// ---- damage --------------------------------------------------------------------------------

/// Asserts that `result` is `Error::Corrupt` naming `file` at an offset inside the file.
fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, Error>,
    file: &Path,
    len: usize,
    ctx: &str,
) {
    match result {
        Err(Error::Corrupt { file: named, offset, reason }) => {
            assert_eq!(named, file, "{ctx}: {reason}");
            assert!(offset < len as u64, "{ctx}: offset {offset} past the file: {reason}");
        }
        other => panic!("{ctx}: expected Error::Corrupt naming {}, got {other:?}", file.display()),
    }
}

#[test]
fn a_flipped_bit_in_a_committed_snapshot_is_reported_as_corrupt_naming_the_file() {
    let store = Path::new("/store");
    for file in [COUNTS_FILE, INDEX_FILE] {
        let bytes = fs::read(fixtures_dir().join(file)).expect("read snapshot");
        let path = store.join(file);
        let sim = SimStorage::new(1);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let ctx = format!("{file}, bit {bit}");
            assert_corrupt(Snapshot::decode(&path, &bad), &path, bad.len(), &ctx);
            sim.write_file_durably(&path, &bad).expect("write");
            assert_corrupt(Snapshot::read(&sim, &path, None), &path, bad.len(), &ctx);
            let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
            assert_corrupt(Snapshot::read(&sim, &path, Some(crc)), &path, bad.len(), &ctx);
        }
    }
}

#[test]
fn a_flipped_bit_in_the_committed_manifest_is_reported_as_corrupt_naming_the_file() {
    let bytes = fs::read(fixtures_dir().join(MANIFEST_FILE)).expect("read MANIFEST");
    let store = Path::new("/store");
    let path = store.join(MANIFEST_FILE);
    let sim = SimStorage::new(1);
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let ctx = format!("MANIFEST, bit {bit}");
        assert_corrupt(Manifest::decode(&path, &bad), &path, bad.len(), &ctx);
        sim.write_file_durably(&path, &bad).expect("write");
        assert_corrupt(Manifest::read(&sim, store), &path, bad.len(), &ctx);
    }
}

#[test]
fn the_fixture_store_lists_only_the_named_snapshots() {
    let dir = fixtures_dir();
    let storage = OsStorage::new();
    let m = Manifest::read(&storage, &dir).expect("read").expect("a MANIFEST");
    let mut on_disk = Vec::new();
    for projection in storage.list_dir(&dir.join(SNAPSHOTS_DIR)).expect("list snapshots") {
        for name in storage.list_dir(&dir.join(SNAPSHOTS_DIR).join(&projection)).expect("list") {
            on_disk.push((projection.clone(), parse_snapshot_name(&name)));
        }
    }
    on_disk.sort();
    let named: Vec<(String, Option<u64>)> =
        m.snapshots.iter().map(|s| (s.projection.clone(), Some(s.seq))).collect();
    assert_eq!(on_disk, named);
}
