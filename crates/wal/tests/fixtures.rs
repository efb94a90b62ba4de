//! Guards against format drift: a build that can no longer read, recover or repair stores written
//! in format version 1. The stores under `tests/fixtures/v1/` are committed bytes; every test
//! copies one into a temporary directory (the committed files are never opened for writing) and
//! checks what opening, reading and repairing it gives, down to file names, byte offsets and
//! sequence numbers.
//!
//! The stores (each a log directory holding `wal/*.seg`, plus an `expected.txt`):
//! - `clean/`: two sealed segments and an active one, records with known payloads (see
//!   [`payload`]), records 10..=12 written as one batch;
//! - `torn-tail/`: the same log plus record 61, whose frame is cut after 52 of its bytes (a write
//!   torn by a crash);
//! - `mid-log-corruption/`: the clean log with one bit flipped in the payload of the frame of
//!   record 57 in the active segment; the later frames' durable watermarks cover it;
//! - `sealed-corruption/`: the clean log with one bit flipped in the payload of the frame of
//!   record 5 in the first (sealed) segment.
//!
//! The stores are generated on `SimStorage` (whose clock is deterministic), so regenerating gives
//! the same bytes as long as the writer writes format version 1 the same way. To regenerate:
//!
//! ```text
//! ANNAL_WRITE_FIXTURES=1 cargo test -p annal-wal --test fixtures -- --ignored --exact write_fixtures
//! ```
//!
//! Never regenerate to make a failing test pass: a difference means the format changed, which
//! needs a new format version and a new `fixtures/v<N>/` directory next to this one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annal_storage::{OsStorage, SimStorage, Storage};
use annal_wal::format::{
    CLEAN_CLOSE_FILE, CleanClose, FRAME_HEADER_BYTES, RECORD_HEADER_BYTES, decode_frame_header,
};
use annal_wal::{
    CHAIN_START, ChainValue, Cut, Durability, Error, Log, Options, QUARANTINE_DIR, Reader, Record,
    RecoveryMode, StoreKind, TornTail, WAL_DIR, chain_next, to_hex,
};

// ---- what the fixtures hold ----------------------------------------------------------------

/// Records of the clean log.
const CLEAN_RECORDS: u64 = 60;
/// Records `BATCH_FIRST..BATCH_FIRST + 3` are appended as one batch (one frame).
const BATCH_FIRST: u64 = 10;
/// Segment target of the generating writer (the minimum).
const SEGMENT_BYTES: u64 = 4096;
/// Seed of the simulated storage (it only drives crashes, which the generator does not use).
const SEED: u64 = 1;
/// Where the generator puts the log on the simulated storage.
const SIM_DIR: &str = "/fixture";

/// Segment files of the clean log, oldest first.
const SEG_1: &str = "00000000000000000001.seg";
const SEG_2: &str = "00000000000000000029.seg";
const SEG_3: &str = "00000000000000000056.seg";

/// Bytes of record 61's frame left in `torn-tail/`.
const TORN_KEPT_BYTES: u64 = 52;
/// Offset of record 61's frame in the active segment `SEG_3` of `torn-tail/`.
const TORN_OFFSET: u64 = 803;
/// Length of record 61's whole frame.
const TORN_FRAME_BYTES: u64 = 123;

/// Record whose frame is damaged in `mid-log-corruption/` (in the active segment `SEG_3`).
const MID_SEQ: u64 = 57;
/// Offset of that frame in `SEG_3`.
const MID_OFFSET: u64 = 196;

/// Record whose frame is damaged in `sealed-corruption/` (in the sealed segment `SEG_1`).
const SEALED_SEQ: u64 = 5;
/// Offset of that frame in `SEG_1`.
const SEALED_OFFSET: u64 = 624;

/// Byte of a frame's first payload that is damaged (from the frame start), and the bit.
const FLIP_AT: u64 = (FRAME_HEADER_BYTES + RECORD_HEADER_BYTES) as u64 + 5;
const FLIP_BIT: u8 = 0;

/// The payload of record `seq`: names its number, then 24 to 120 letters.
fn payload(seq: u64) -> Vec<u8> {
    let mut p = format!("annal fixture v1, record {seq}: ").into_bytes();
    let len = 24 + (seq * 37) % 97;
    p.extend((0..len).map(|i| b'a' + u8::try_from((seq + i) % 26).expect("below 26")));
    p
}

fn fixture_options() -> Options {
    Options {
        durability: Durability::Sync,
        segment_bytes_target: SEGMENT_BYTES,
        preallocate: false,
        // The fixtures were written before segment headers recorded the store kind (the field
        // was reserved, 0): an unmarked writer still produces them byte for byte.
        kind: StoreKind::Unmarked,
        ..Options::default()
    }
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("v1")
}

// ---- generating ----------------------------------------------------------------------------

/// Appends records `1..=upto` (with the batch) to `log`.
fn append_records(log: &Log, upto: u64) {
    let mut seq = 1;
    while seq <= upto {
        if seq == BATCH_FIRST {
            let batch: Vec<Vec<u8>> = (seq..seq + 3).map(payload).collect();
            let a = log.append_batch(&batch).expect("append batch");
            assert_eq!((a.first, a.last), (seq, seq + 2));
            seq += 3;
        } else {
            let a = log.append(&payload(seq)).expect("append");
            assert_eq!(a.first, seq);
            seq += 1;
        }
    }
}

/// The `wal/` files (name, bytes) of a log of `records` records written on a fresh simulated
/// storage.
fn generate(records: u64) -> BTreeMap<String, Vec<u8>> {
    let sim = SimStorage::new(SEED);
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let log = Log::open_with(Arc::clone(&storage), SIM_DIR, fixture_options()).expect("open");
    append_records(&log, records);
    log.close().expect("close");
    let wal = Path::new(SIM_DIR).join(WAL_DIR);
    let mut files: BTreeMap<String, Vec<u8>> = storage
        .list_dir(&wal)
        .expect("list")
        .into_iter()
        .map(|name| {
            let bytes = sim.file_bytes(&wal.join(&name)).expect("read sim file");
            (name, bytes)
        })
        .collect();
    // The clean-close record is not part of the v1 fixtures (stores written before it have
    // none, and open as after a crash); it is checked here and left out.
    check_clean_close(files.remove(CLEAN_CLOSE_FILE), records);
    files
}

/// The clean-close record a close left: present, and naming the last record.
fn check_clean_close(bytes: Option<Vec<u8>>, last_seq: u64) {
    let bytes = bytes.expect("a clean close leaves its record");
    let record = CleanClose::decode(&bytes).expect("the clean-close record decodes");
    assert_eq!(record.last_seq, last_seq, "the clean-close record names the last record");
}

/// (offset, first seq, frame length) of every frame of a segment.
fn frames(segment: &[u8]) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    let mut at = annal_wal::format::SEGMENT_HEADER_BYTES;
    while let Ok(fh) = decode_frame_header(&segment[at..]) {
        out.push((at as u64, fh.first_seq, fh.frame_len()));
        at += usize::try_from(fh.frame_len()).expect("small frame");
    }
    out
}

fn frame_of(segment: &[u8], seq: u64) -> (u64, u64) {
    frames(segment)
        .into_iter()
        .find(|&(_, first, _)| first == seq)
        .map(|(offset, _, len)| (offset, len))
        .unwrap_or_else(|| panic!("no frame starts with record {seq}"))
}

fn to_index(offset: u64) -> usize {
    usize::try_from(offset).expect("small offset")
}

/// A store: its name, its `wal/` files (name and bytes), the lines of its expected.txt.
type Store = (&'static str, BTreeMap<String, Vec<u8>>, Vec<String>);

/// Every store.
fn stores() -> Vec<Store> {
    let clean = generate(CLEAN_RECORDS);
    let names: Vec<&String> = clean.keys().collect();
    assert_eq!(names, [SEG_1, SEG_2, SEG_3], "segment layout of the clean log");
    let head = expected_chain(CLEAN_RECORDS, &clean);
    let mut out = Vec::new();
    out.push((
        "clean",
        clean.clone(),
        vec![
            "# Two sealed segments and an active one; no damage.".into(),
            format!("last_seq={CLEAN_RECORDS}"),
            format!("chain_head={}", to_hex(&head)),
        ],
    ));

    let mut torn = generate(CLEAN_RECORDS + 1);
    assert_eq!(torn.keys().collect::<Vec<_>>(), names, "record 61 lands in the active segment");
    let active = torn.get_mut(SEG_3).expect("active segment");
    let (offset, len) = frame_of(active, CLEAN_RECORDS + 1);
    assert_eq!(offset + len, active.len() as u64, "record 61 is the last frame");
    assert_eq!((offset, len), (TORN_OFFSET, TORN_FRAME_BYTES), "frame of record 61");
    active.truncate(to_index(offset + TORN_KEPT_BYTES));
    out.push((
        "torn-tail",
        torn,
        vec![
            format!(
                "# The clean log plus the frame of record 61 at byte offset {offset} of {SEG_3}, cut \
                 after {TORN_KEPT_BYTES} of its {len} bytes."
            ),
            format!("last_seq={CLEAN_RECORDS}"),
            format!("chain_head={}", to_hex(&head)),
        ],
    ));

    let mut mid = clean.clone();
    let active = mid.get_mut(SEG_3).expect("active segment");
    let (offset, _) = frame_of(active, MID_SEQ);
    assert!(frames(active).len() > 2, "frames follow the damaged one");
    assert_eq!(offset, MID_OFFSET, "frame of record {MID_SEQ}");
    active[to_index(offset + FLIP_AT)] ^= 1 << FLIP_BIT;
    out.push((
        "mid-log-corruption",
        mid,
        vec![
            format!(
                "# The clean log with bit {FLIP_BIT} of byte {} of {SEG_3} flipped (the payload of \
                 record {MID_SEQ}, whose frame starts at byte offset {offset}).",
                offset + FLIP_AT
            ),
            format!("last_seq_after_repair={}", MID_SEQ - 1),
            format!("chain_head_after_repair={}", to_hex(&expected_chain(MID_SEQ - 1, &clean))),
        ],
    ));

    let mut sealed = clean.clone();
    let first = sealed.get_mut(SEG_1).expect("first segment");
    let (offset, _) = frame_of(first, SEALED_SEQ);
    assert_eq!(offset, SEALED_OFFSET, "frame of record {SEALED_SEQ}");
    first[to_index(offset + FLIP_AT)] ^= 1 << FLIP_BIT;
    out.push((
        "sealed-corruption",
        sealed,
        vec![
            format!(
                "# The clean log with bit {FLIP_BIT} of byte {} of {SEG_1} flipped (the payload of \
                 record {SEALED_SEQ}, whose frame starts at byte offset {offset}).",
                offset + FLIP_AT
            ),
            format!("last_seq_after_repair={}", SEALED_SEQ - 1),
            format!("chain_head_after_repair={}", to_hex(&expected_chain(SEALED_SEQ - 1, &clean))),
        ],
    ));
    out
}

/// The chain value after record `upto` of the undamaged log whose files are `files`, computed
/// by this file from the payloads and the timestamps in the frames.
fn expected_chain(upto: u64, files: &BTreeMap<String, Vec<u8>>) -> ChainValue {
    let mut chain = CHAIN_START;
    let mut seq = 1;
    for bytes in files.values() {
        for (offset, first, len) in frames(bytes) {
            let frame = &bytes[to_index(offset)..to_index(offset + len)];
            let fh = decode_frame_header(frame).expect("frame header");
            let mut at = FRAME_HEADER_BYTES;
            for i in 0..u64::from(fh.count) {
                assert_eq!(first + i, seq, "gapless");
                let ts = u64::from_le_bytes(frame[at..at + 8].try_into().expect("8 bytes"));
                let plen = u32::from_le_bytes(frame[at + 8..at + 12].try_into().expect("4 bytes"));
                let start = at + RECORD_HEADER_BYTES;
                let end = start + usize::try_from(plen).expect("small");
                assert_eq!(frame[start..end], payload(seq), "payload of record {seq}");
                if seq <= upto {
                    chain = chain_next(&chain, seq, ts, &frame[start..end]);
                }
                seq += 1;
                at = end;
            }
        }
    }
    chain
}

/// The committed stores are exactly what the writer produces today: a change of the bytes the
/// writer produces fails here, until the format version is bumped and new fixtures are added.
#[test]
fn fixtures_match_what_the_writer_produces() {
    compare_or_write_fixtures(false);
}

/// With `ANNAL_WRITE_FIXTURES=1`, writes the stores; otherwise only compares them.
#[test]
#[ignore = "writes tests/fixtures/v1 when ANNAL_WRITE_FIXTURES=1; see the file header"]
fn write_fixtures() {
    compare_or_write_fixtures(std::env::var("ANNAL_WRITE_FIXTURES").as_deref() == Ok("1"));
}

fn compare_or_write_fixtures(write: bool) {
    let stores = stores();
    let root = fixtures_root();
    for (name, files, expected) in stores {
        let store = root.join(name);
        let mut text = expected.join("\n");
        text.push('\n');
        if !write {
            assert_eq!(read_tree(&store.join(WAL_DIR)), files, "{name}: committed segments");
            assert_eq!(
                fs::read_to_string(store.join("expected.txt")).expect("expected.txt"),
                text,
                "{name}: committed expected.txt"
            );
            continue;
        }
        if store.exists() {
            fs::remove_dir_all(&store).expect("remove old store");
        }
        fs::create_dir_all(store.join(WAL_DIR)).expect("create store");
        for (file, bytes) in files {
            fs::write(store.join(WAL_DIR).join(file), bytes).expect("write segment");
        }
        fs::write(store.join("expected.txt"), text).expect("write expected.txt");
    }
}

// ---- helpers of the tests ------------------------------------------------------------------

/// Every file under `dir` (recursively), by path relative to `dir`, with its bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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
    walk(dir, dir, &mut out);
    out
}

/// A copy of store `name` in a fresh temporary directory: (guard, log directory).
fn copy_store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(name);
    let wal = dir.join(WAL_DIR);
    fs::create_dir_all(&wal).expect("create wal dir");
    for (file, bytes) in committed_wal(name) {
        fs::write(wal.join(file), bytes).expect("copy segment");
    }
    (tmp, dir)
}

/// The committed `wal/` files of store `name`.
fn committed_wal(name: &str) -> BTreeMap<String, Vec<u8>> {
    let files = read_tree(&fixtures_root().join(name).join(WAL_DIR));
    assert!(!files.is_empty(), "fixture store {name} is missing");
    files
}

fn committed(name: &str, segment: &str) -> Vec<u8> {
    committed_wal(name).remove(segment).unwrap_or_else(|| panic!("{name}: no {segment}"))
}

/// The `key=value` lines of store `name`'s expected.txt.
fn expected(name: &str) -> BTreeMap<String, String> {
    let path = fixtures_root().join(name).join("expected.txt");
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("bad line {l:?}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

fn expected_value(name: &str, key: &str) -> String {
    expected(name).remove(key).unwrap_or_else(|| panic!("{name}/expected.txt has no {key}"))
}

fn options(recovery: RecoveryMode) -> Options {
    Options { recovery, ..fixture_options() }
}

fn open(dir: &Path, recovery: RecoveryMode) -> annal_wal::Result<Log> {
    Log::open(dir, options(recovery))
}

fn seg(dir: &Path, name: &str) -> PathBuf {
    dir.join(WAL_DIR).join(name)
}

fn quarantined(dir: &Path, name: &str) -> PathBuf {
    dir.join(QUARANTINE_DIR).join(name)
}

/// Checks that `records` are records `1..=records.len()` with the known payloads and
/// non-decreasing timestamps, and returns the chain value after the last one.
fn check_records(records: &[Record]) -> ChainValue {
    let mut chain = CHAIN_START;
    let mut prev_ts = 0;
    for (i, r) in records.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(r.seq, seq, "gapless, in order");
        assert_eq!(r.payload, payload(seq), "payload of record {seq}");
        assert!(r.ts >= prev_ts, "timestamp of record {seq} goes back");
        prev_ts = r.ts;
        chain = chain_next(&chain, seq, r.ts, &r.payload);
    }
    chain
}

fn read_all(log: &Log) -> Vec<Record> {
    log.read_from(1).collect::<annal_wal::Result<Vec<_>>>().expect("read back")
}

fn read_dir_reader(dir: &Path, from: u64) -> Vec<annal_wal::Result<Record>> {
    Reader::open(Arc::new(OsStorage::new()), dir, from).expect("directory reader").collect()
}

/// The fields of an `Error::Corrupt`: (file, offset, seq, reason).
fn corruption(err: &Error) -> (PathBuf, u64, u64, String) {
    match err {
        Error::Corrupt { file, offset, seq, reason } => {
            (file.clone(), *offset, *seq, reason.clone())
        }
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
}

// ---- clean ---------------------------------------------------------------------------------

#[test]
fn clean_store_opens_clean_and_reads_back_every_record_and_the_chain_head() {
    let (_tmp, dir) = copy_store("clean");
    let log = open(&dir, RecoveryMode::TolerateTornTail).expect("open clean store");
    assert_eq!(
        *log.recovery_report(),
        annal_wal::RecoveryReport { segments: 3, last_seq: CLEAN_RECORDS, ..Default::default() },
        "nothing to repair in a clean store"
    );
    assert_eq!((log.first_seq(), log.last_seq()), (1, CLEAN_RECORDS));
    let layout: Vec<(PathBuf, u64, u64, bool)> =
        log.segments().into_iter().map(|s| (s.path, s.first_seq, s.last_seq, s.sealed)).collect();
    assert_eq!(
        layout,
        [
            (seg(&dir, SEG_1), 1, 28, true),
            (seg(&dir, SEG_2), 29, 55, true),
            (seg(&dir, SEG_3), 56, CLEAN_RECORDS, false),
        ]
    );

    let records = read_all(&log);
    assert_eq!(records.len() as u64, CLEAN_RECORDS);
    let chain = check_records(&records);
    let want = expected_value("clean", "chain_head");
    assert_eq!(to_hex(&chain), want, "chain of the records read back");
    assert_eq!(to_hex(&log.chain_head().expect("chain head")), want, "the log's chain head");
    assert_eq!(
        log.chain_at(28).expect("chain at the end of the first segment"),
        check_records(&records[..28])
    );
    // Records 10..=12 were one batch: one timestamp.
    assert_eq!(records[9].ts, records[11].ts, "a batch shares its timestamp");

    let from_dir: Vec<Record> = read_dir_reader(&dir, 1)
        .into_iter()
        .collect::<annal_wal::Result<_>>()
        .expect("directory reader reads the clean store");
    assert_eq!(from_dir, records, "a directory reader sees the same records");
    log.close().expect("close");
    let mut tree = read_tree(&dir.join(WAL_DIR));
    check_clean_close(tree.remove(CLEAN_CLOSE_FILE), CLEAN_RECORDS);
    assert_eq!(tree, committed_wal("clean"), "opening and reading a clean store changes no byte");

    let log = open(&dir, RecoveryMode::Strict).expect("strict open of a clean store");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    let a = log.append(&payload(CLEAN_RECORDS + 1)).expect("append");
    assert_eq!(a.first, CLEAN_RECORDS + 1);
    assert_eq!(log.read_from(CLEAN_RECORDS + 1).count(), 1);
}

// ---- torn tail -----------------------------------------------------------------------------

#[test]
fn torn_tail_store_is_cut_and_quarantined_by_the_default_open() {
    let (_tmp, dir) = copy_store("torn-tail");
    let active = seg(&dir, SEG_3);
    let log = Log::open(&dir, Options { recovery: RecoveryMode::default(), ..fixture_options() })
        .expect("the default mode tolerates a torn tail");
    let report = log.recovery_report().clone();
    let torn = report.torn_tail.clone().expect("a torn tail is reported");
    assert_eq!(
        TornTail { reason: String::new(), ..torn.clone() },
        TornTail {
            file: active.clone(),
            offset: TORN_OFFSET,
            bytes: TORN_KEPT_BYTES,
            orphan_frames: 0,
            reason: String::new(),
        }
    );
    assert!(torn.reason.contains("incomplete frame"), "reason: {}", torn.reason);
    assert_eq!(report.last_seq, CLEAN_RECORDS);
    assert_eq!(report.cut, None, "a torn tail is not a repair cut");
    let saved = quarantined(&dir, &format!("{SEG_3}.at-{TORN_OFFSET}"));
    assert_eq!(report.quarantined, std::slice::from_ref(&saved));
    let original = committed("torn-tail", SEG_3);
    assert_eq!(original.len() as u64, TORN_OFFSET + TORN_KEPT_BYTES, "fixture is as described");
    assert_eq!(
        fs::read(&saved).expect("quarantined bytes"),
        original[to_index(TORN_OFFSET)..],
        "the cut bytes are kept in quarantine"
    );
    let note = fs::read_to_string(quarantined(&dir, &format!("{SEG_3}.at-{TORN_OFFSET}.why.txt")))
        .expect("quarantine note");
    assert!(
        note.contains(&format!("{TORN_KEPT_BYTES} bytes cut from"))
            && note.contains(&format!("at byte offset {TORN_OFFSET}")),
        "note: {note}"
    );
    assert_eq!(
        fs::read(&active).expect("active segment"),
        original[..to_index(TORN_OFFSET)],
        "the active segment ends where the valid frames end"
    );

    assert_eq!(log.last_seq(), CLEAN_RECORDS);
    let records = read_all(&log);
    assert_eq!(to_hex(&check_records(&records)), expected_value("torn-tail", "chain_head"));
    assert_eq!(
        expected_value("torn-tail", "chain_head"),
        expected_value("clean", "chain_head"),
        "the torn store holds the clean log"
    );
    let a = log.append(&payload(CLEAN_RECORDS + 1)).expect("append after the cut");
    assert_eq!(a.first, CLEAN_RECORDS + 1);
    log.close().expect("close");

    let log = open(&dir, RecoveryMode::Strict).expect("reopen strict");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    assert_eq!(log.last_seq(), CLEAN_RECORDS + 1);
    let records = read_all(&log);
    assert_eq!(records.len() as u64, CLEAN_RECORDS + 1);
    check_records(&records);
}

#[test]
fn torn_tail_store_is_refused_in_strict_mode_without_changing_a_byte() {
    let (_tmp, dir) = copy_store("torn-tail");
    let err = open(&dir, RecoveryMode::Strict).expect_err("strict refuses a torn tail");
    match err {
        Error::TornTail { file, offset, len } => {
            assert_eq!((file, offset, len), (seg(&dir, SEG_3), TORN_OFFSET, TORN_KEPT_BYTES));
        }
        other => panic!("expected Error::TornTail, got {other:?}"),
    }
    assert_eq!(read_tree(&dir.join(WAL_DIR)), committed_wal("torn-tail"), "nothing was cut");
    assert!(!dir.join(QUARANTINE_DIR).exists(), "nothing was quarantined");
}

#[test]
fn torn_tail_store_reads_to_its_last_complete_record_with_a_directory_reader() {
    let (_tmp, dir) = copy_store("torn-tail");
    let records: Vec<Record> = read_dir_reader(&dir, 1)
        .into_iter()
        .collect::<annal_wal::Result<_>>()
        .expect("a directory reader stops quietly at a torn tail");
    assert_eq!(records.len() as u64, CLEAN_RECORDS);
    assert_eq!(to_hex(&check_records(&records)), expected_value("torn-tail", "chain_head"));
    assert_eq!(read_tree(&dir.join(WAL_DIR)), committed_wal("torn-tail"), "reader changes nothing");
}

// ---- corruption in the active segment ------------------------------------------------------

#[test]
fn mid_log_corruption_fails_the_default_and_strict_opens_naming_file_offset_and_seq() {
    let (_tmp, dir) = copy_store("mid-log-corruption");
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::Strict] {
        let err = open(&dir, mode).expect_err("damage below a durable watermark fails the open");
        let (file, offset, seq, reason) = corruption(&err);
        assert_eq!((file, offset, seq), (seg(&dir, SEG_3), MID_OFFSET, MID_SEQ), "{mode:?}");
        assert!(reason.contains("watermark"), "{mode:?}: reason names the watermark: {reason}");
        let text = err.to_string();
        assert!(
            text.contains(SEG_3)
                && text.contains(&format!("offset {MID_OFFSET}"))
                && text.contains(&format!("sequence {MID_SEQ}")),
            "the message names file, offset and sequence: {text}"
        );
    }
    assert_eq!(read_tree(&dir.join(WAL_DIR)), committed_wal("mid-log-corruption"));
    assert!(!dir.join(QUARANTINE_DIR).exists(), "a failed open quarantines nothing");
}

#[test]
fn mid_log_corruption_is_cut_by_truncate_at_corruption_and_the_log_is_appendable() {
    let (_tmp, dir) = copy_store("mid-log-corruption");
    let log = open(&dir, RecoveryMode::TruncateAtCorruption).expect("the repair opens");
    let report = log.recovery_report().clone();
    let cut = report.cut.clone().expect("the repair reports its cut");
    assert_eq!(
        Cut { reason: String::new(), ..cut.clone() },
        Cut { file: seg(&dir, SEG_3), offset: MID_OFFSET, seq: MID_SEQ, reason: String::new() }
    );
    assert!(cut.reason.contains("checksum"), "reason: {}", cut.reason);
    assert_eq!(report.torn_tail, None);
    assert_eq!(report.last_seq, MID_SEQ - 1);
    let saved = quarantined(&dir, &format!("{SEG_3}.at-{MID_OFFSET}"));
    assert_eq!(report.quarantined, std::slice::from_ref(&saved));
    let original = committed("mid-log-corruption", SEG_3);
    assert_eq!(fs::read(&saved).expect("quarantined"), original[to_index(MID_OFFSET)..]);
    assert!(quarantined(&dir, &format!("{SEG_3}.at-{MID_OFFSET}.why.txt")).is_file());
    assert_eq!(fs::read(seg(&dir, SEG_3)).expect("active"), original[..to_index(MID_OFFSET)]);
    assert_eq!(
        read_tree(&dir.join(WAL_DIR)).remove(SEG_1),
        Some(committed("mid-log-corruption", SEG_1)),
        "sealed segments are untouched"
    );

    assert_eq!(log.last_seq(), MID_SEQ - 1);
    let want = expected_value("mid-log-corruption", "chain_head_after_repair");
    assert_eq!(to_hex(&check_records(&read_all(&log))), want);
    assert_eq!(to_hex(&log.chain_head().expect("head")), want);
    let a = log.append(&payload(MID_SEQ)).expect("append after the repair");
    assert_eq!((a.first, a.last), (MID_SEQ, MID_SEQ));
    log.close().expect("close");

    let log = open(&dir, RecoveryMode::Strict).expect("reopen strict after the repair");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    assert_eq!(log.last_seq(), MID_SEQ);
    let records = read_all(&log);
    assert_eq!(records.len() as u64, MID_SEQ);
    check_records(&records);
}

// ---- corruption in a sealed segment --------------------------------------------------------

#[test]
fn sealed_corruption_is_reported_by_reads_naming_file_offset_and_seq() {
    let (_tmp, dir) = copy_store("sealed-corruption");
    let log = open(&dir, RecoveryMode::TolerateTornTail)
        .expect("open checks sealed segments by header and footer only");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    assert_eq!(log.last_seq(), CLEAN_RECORDS);

    let items: Vec<annal_wal::Result<Record>> = log.read_from(1).collect();
    assert_eq!(items.len() as u64, SEALED_SEQ, "records before the damage, then one error");
    let good: Vec<Record> =
        items[..items.len() - 1].iter().map(|r| r.as_ref().expect("record").clone()).collect();
    check_records(&good);
    let err = items.last().expect("an item").as_ref().expect_err("the damaged record fails");
    let (file, offset, seq, reason) = corruption(err);
    assert_eq!((file, offset, seq), (seg(&dir, SEG_1), SEALED_OFFSET, SEALED_SEQ));
    assert!(reason.contains("checksum"), "reason: {reason}");

    let first = log.read_from(SEALED_SEQ).next().expect("an item").expect_err("seek to damage");
    let (file, offset, seq, _) = corruption(&first);
    assert_eq!((file, offset, seq), (seg(&dir, SEG_1), SEALED_OFFSET, SEALED_SEQ));

    let later: Vec<Record> = log
        .read_from(29)
        .collect::<annal_wal::Result<_>>()
        .expect("later segments read past the damage");
    assert_eq!(later.first().map(|r| r.seq), Some(29));
    assert_eq!(later.len() as u64, CLEAN_RECORDS - 28);

    let from_dir = read_dir_reader(&dir, 1);
    assert_eq!(from_dir.len() as u64, SEALED_SEQ);
    let err = from_dir.last().expect("an item").as_ref().expect_err("directory reader fails too");
    let (file, offset, seq, _) = corruption(err);
    assert_eq!((file, offset, seq), (seg(&dir, SEG_1), SEALED_OFFSET, SEALED_SEQ));
}

#[test]
fn sealed_corruption_is_cut_by_truncate_at_corruption_and_later_segments_quarantined() {
    let (_tmp, dir) = copy_store("sealed-corruption");
    let log = open(&dir, RecoveryMode::TruncateAtCorruption).expect("the repair opens");
    let report = log.recovery_report().clone();
    let cut = report.cut.clone().expect("the repair reports its cut");
    assert_eq!(
        Cut { reason: String::new(), ..cut.clone() },
        Cut {
            file: seg(&dir, SEG_1),
            offset: SEALED_OFFSET,
            seq: SEALED_SEQ,
            reason: String::new()
        }
    );
    assert_eq!(report.last_seq, SEALED_SEQ - 1);
    assert_eq!(
        report.quarantined,
        [
            quarantined(&dir, &format!("{SEG_2}.at-0")),
            quarantined(&dir, &format!("{SEG_3}.at-0")),
            quarantined(&dir, &format!("{SEG_1}.at-{SEALED_OFFSET}")),
        ]
    );
    let original = committed_wal("sealed-corruption");
    let moved = |seg: &str| fs::read(quarantined(&dir, &format!("{seg}.at-0"))).ok();
    assert_eq!(moved(SEG_2).as_ref(), original.get(SEG_2));
    assert_eq!(moved(SEG_3).as_ref(), original.get(SEG_3));
    assert_eq!(
        fs::read(quarantined(&dir, &format!("{SEG_1}.at-{SEALED_OFFSET}"))).expect("cut bytes"),
        original[SEG_1][to_index(SEALED_OFFSET)..]
    );
    assert_eq!(
        read_tree(&dir.join(WAL_DIR)),
        BTreeMap::from([(SEG_1.to_owned(), original[SEG_1][..to_index(SEALED_OFFSET)].to_vec())]),
        "only the cut first segment is left, and it becomes the active one"
    );

    assert_eq!(log.last_seq(), SEALED_SEQ - 1);
    let want = expected_value("sealed-corruption", "chain_head_after_repair");
    assert_eq!(to_hex(&check_records(&read_all(&log))), want);
    assert_eq!(to_hex(&log.chain_head().expect("head")), want);
    let a = log.append(&payload(SEALED_SEQ)).expect("append after the repair");
    assert_eq!(a.first, SEALED_SEQ);
    log.close().expect("close");

    let log = open(&dir, RecoveryMode::Strict).expect("reopen strict after the repair");
    assert!(log.recovery_report().is_clean(), "{:?}", log.recovery_report());
    assert_eq!(log.last_seq(), SEALED_SEQ);
    let records = read_all(&log);
    assert_eq!(records.len() as u64, SEALED_SEQ);
    check_records(&records);
}
