//! Guards the verifiable log's commands as an auditor runs them: `keygen` writes a 0600 key
//! and prints its verifier key; `checkpoint` prints a C2SP checkpoint, signed with the key;
//! `prove` prints inclusion and consistency proofs; `verify-proof` exits 0 on a good proof and
//! 3 naming the mismatch on a proof against another tree, a tampered checkpoint, a wrong key,
//! and a log rewritten or cut off since the checkpoint.

use std::ffi::OsStr;

use crate::common::{Scratch, annal};

fn appends(sc: &Scratch, from: u32, to: u32) {
    for i in from..to {
        sc.append("s", "t", &format!("{{\"i\":{i}}}"));
    }
}

fn write(sc: &Scratch, name: &str, text: &str) -> String {
    let path = sc.path(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn an_auditor_checkpoints_proves_and_detects_a_rewritten_or_cut_off_log() {
    let sc = Scratch::init();
    appends(&sc, 0, 12);
    let key = sc.path("log.key");
    let run = annal([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        key.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("example.org/log"),
    ]);
    run.ok();
    let vkey = run.json()["verifier_key"].as_str().expect("verifier key").to_owned();
    assert!(vkey.starts_with("example.org/log+"), "{vkey}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is private");
    }
    annal([OsStr::new("keygen"), OsStr::new("--out"), key.as_os_str()])
        .code(1)
        .stderr_has("never overwritten");
    let key = key.display().to_string();
    let cp12 = sc.run("checkpoint", &["--key", &key]);
    cp12.ok();
    assert!(cp12.stdout.starts_with("example.org/log\n12\n"), "{}", cp12.stdout);
    assert!(cp12.stdout.contains("\n\n\u{2014} example.org/log "), "{}", cp12.stdout);
    let cp12_file = write(&sc, "cp12.txt", &cp12.stdout);
    let unsigned = sc.run("checkpoint", &[]);
    unsigned.ok();
    assert!(unsigned.stdout.starts_with("annal\n12\n") && !unsigned.stdout.contains("\n\n"));

    let proof = sc.run("prove", &["--seq", "5"]);
    proof.ok();
    let proof_file = write(&sc, "p5.json", &proof.stdout);
    annal(["verify-proof", &proof_file, "--checkpoint", &cp12_file, "--key", &vkey]).ok();
    // Without the key the signature is not checked, and the output says so.
    let run = annal(["verify-proof", &proof_file, "--checkpoint", &cp12_file]);
    run.ok();
    assert_eq!(run.json()["signature_checked"], false);

    // The log grows: the old checkpoint is consistent with the new one; old proofs name the size.
    appends(&sc, 12, 30);
    let cp30_file = write(&sc, "cp30.txt", &sc.run("checkpoint", &["--key", &key]).stdout);
    let consistency = write(&sc, "c.json", &sc.run("prove", &["--from-size", "12"]).stdout);
    annal([
        "verify-proof",
        &consistency,
        "--checkpoint",
        &cp12_file,
        "--checkpoint",
        &cp30_file,
        "--key",
        &vkey,
    ])
    .ok();
    annal(["verify-proof", &proof_file, "--checkpoint", &cp30_file, "--key", &vkey])
        .code(3)
        .stderr_has("tree of 12 records");
    let old = write(&sc, "p5-12.json", &sc.run("prove", &["--seq", "5", "--size", "12"]).stdout);
    annal(["verify-proof", &old, "--checkpoint", &cp12_file, "--key", &vkey]).ok();

    // A tampered checkpoint, or another key, is refused.
    let tampered = write(
        &sc,
        "bad.txt",
        &std::fs::read_to_string(&cp12_file).unwrap().replacen("\n12\n", "\n13\n", 1),
    );
    annal(["verify-proof", &proof_file, "--checkpoint", &tampered, "--key", &vkey])
        .code(3)
        .stderr_has("does not verify");
    let other_key = sc.path("other.key");
    let other = annal([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        other_key.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("example.org/log"),
    ]);
    let other_vkey = other.json()["verifier_key"].as_str().expect("key").to_owned();
    annal(["verify-proof", &proof_file, "--checkpoint", &cp12_file, "--key", &other_vkey]).code(3);

    // A log rewritten from scratch with other events: its proofs fail against the checkpoint,
    // and it is not consistent with it.
    let forged = Scratch::init();
    appends(&forged, 100, 130);
    let forged_proof =
        write(&forged, "f.json", &forged.run("prove", &["--seq", "5", "--size", "12"]).stdout);
    annal(["verify-proof", &forged_proof, "--checkpoint", &cp12_file, "--key", &vkey])
        .code(3)
        .stderr_has("not the checkpoint's");
    let forged_consistency =
        write(&forged, "fc.json", &forged.run("prove", &["--from-size", "12"]).stdout);
    annal(["verify-proof", &forged_consistency, "--checkpoint", &cp12_file, "--key", &vkey])
        .code(3);

    // A log cut off below a checkpoint cannot prove it: the tree asked for is past its end.
    let cut = Scratch::init();
    appends(&cut, 0, 8);
    cut.run("prove", &["--from-size", "8", "--size", "12"]).code(1).stderr_has("past the end");

    // A proof edited by hand, or of another kind, is refused.
    let edited = write(
        &sc,
        "e.json",
        &std::fs::read_to_string(&proof_file).unwrap().replacen("\"seq\":5", "\"seq\":6", 1),
    );
    annal(["verify-proof", &edited, "--checkpoint", &cp12_file, "--key", &vkey]).code(3);
    let garbage = write(&sc, "g.json", "{\"type\":\"other\"}");
    annal(["verify-proof", &garbage, "--checkpoint", &cp12_file]).code(3).stderr_has("\"other\"");
}

/// `info` shows the tree's size and root, the same as `checkpoint`; continued from the
/// journal's own newest checkpoint when the log was truncated without an archive, and `null`
/// when neither is possible.
#[test]
fn info_shows_the_tree_size_and_root() {
    let root_hex = |cp: &str| {
        hex::encode(annal::tlog::checkpoint::Checkpoint::parse(cp).expect("checkpoint").root)
    };
    let sc = Scratch::init();
    appends(&sc, 0, 30);
    let info = sc.info();
    let cp = annal([OsStr::new("checkpoint"), sc.store.as_os_str()]);
    cp.ok();
    assert_eq!(info["tree"]["size"], 30, "{info}");
    assert_eq!(info["tree"]["root"], root_hex(&cp.stdout), "{info}");

    // Compacted without an archive: the tree cannot be computed from the log alone.
    let (sc, _) = crate::common::compacted_store(false);
    assert!(sc.info()["tree"].is_null(), "{}", sc.info());

    // The same, by a journal that writes its own checkpoints: info continues from them.
    let sc = Scratch::new();
    let journal = annal::Journal::options()
        .segment_bytes(4096)
        .keep_snapshots(1)
        .checkpoints("example.org/log", None)
        .open(&sc.store)
        .expect("create");
    let mut f = annal::tlog::tree::Frontier::new(annal::TREE_HASH);
    for i in 0..200 {
        let event =
            annal::NewEvent::json("t", &serde_json::json!({"i": i, "pad": "x".repeat(100)}))
                .expect("event");
        let a = journal.append_events("s", annal::Expect::Any, vec![event]).expect("append");
        let r = journal.log().read_from(a.first).next().expect("one").expect("read");
        f.push(annal::leaf_hash(r.seq, r.ts, &r.payload));
    }
    journal.compact().expect("compact");
    assert!(journal.log().first_seq() > 1);
    drop(journal);
    let info = sc.info();
    assert_eq!(info["tree"]["size"], 200, "{info}");
    assert_eq!(info["tree"]["root"], hex::encode(f.root()), "{info}");
}
