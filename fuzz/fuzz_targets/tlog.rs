//! `tlog`: the verifiable log's parsers and verifiers, which take what an auditor is handed:
//! a checkpoint's text, a signed note, verifier and signer key strings, an inclusion or
//! consistency proof (as the raw hashes `annal_tlog::tree` verifies, and as the JSON that
//! `annal prove` prints and `annal verify-proof` reads).
//!
//! Checks: nothing panics; a checkpoint that parses prints back byte for byte; a key string
//! that parses prints back byte for byte; a note that opens carries a verified signature by the
//! one trusted key, and signing its text again with that key gives a note that opens the same;
//! a proof made of arbitrary hashes does not verify against an unrelated root unless it is the
//! honest proof.

#![no_main]

use annal::tlog::HashAlg;
use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::note::{Signer, Verifier, Verifiers, open, sign};
use annal::tlog::tree::{verify_consistency, verify_inclusion};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    index: u64,
    size: u64,
    second: u64,
    leaf: [u8; 32],
    root: [u8; 32],
    proof: Vec<[u8; 32]>,
}

/// The example key of the Go `sumdb/note` package.
const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let text = &input.text;
    if let Ok(c) = Checkpoint::parse(text) {
        assert_eq!(&c.to_text(), text, "a parsed checkpoint prints back as it was");
    }
    if let Ok(v) = Verifier::from_key(text) {
        assert_eq!(&v.key_string(), text);
    }
    if let Ok(s) = Signer::from_key(text) {
        assert_eq!(&s.key_string(), text);
    }
    let signer = Signer::from_key(SKEY).expect("the example key");
    let verifiers = Verifiers::new(vec![signer.verifier()]);
    if let Ok(note) = open(text, &verifiers) {
        assert_eq!(note.verified.len(), 1, "one trusted key: one verified signature");
        let again = sign(&note.text, &[&signer]).expect("an opened text signs");
        assert_eq!(open(&again, &verifiers).expect("re-signed opens").text, note.text);
    }
    // Raw proofs: no panic on any index, size or length; an arbitrary proof of a leaf against
    // an unrelated root does not verify (the chance of a collision is nil).
    let alg = if input.index % 2 == 0 { HashAlg::Sha256 } else { HashAlg::Blake3 };
    let ok = verify_inclusion(alg, input.index, input.size, &input.leaf, &input.proof, &input.root);
    assert!(ok.is_err() || (input.size == 1 && input.proof.is_empty() && input.leaf == input.root));
    let ok =
        verify_consistency(alg, input.size, input.second, &input.leaf, &input.root, &input.proof);
    let trivial = input.proof.is_empty()
        && (input.size == 0 && input.size <= input.second
            || input.size == input.second && input.leaf == input.root);
    assert!(ok.is_err() || trivial, "{:?}", (input.size, input.second));
    // The JSON `annal verify-proof` reads: no panic, whatever it holds.
    if let Ok(p) = serde_json::from_str::<annal::InclusionProof>(text) {
        let c = Checkpoint { origin: "o".into(), size: p.size, root: input.root, extensions: vec![] };
        let _ = p.verify(&c);
    }
    if let Ok(p) = serde_json::from_str::<annal::ConsistencyProof>(text) {
        let c = Checkpoint { origin: "o".into(), size: p.first, root: input.root, extensions: vec![] };
        let _ = p.verify(&[c]);
    }
});
