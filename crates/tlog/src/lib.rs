//! annal-tlog: the transparency-log primitives annal's verifiable log is built from, usable on
//! their own, without a store:
//!
//! - [`tree`]: RFC 9162 Merkle trees (leaf = H(0x00 || data), node = H(0x01 || left || right)),
//!   the right [`Frontier`](tree::Frontier) that grows a tree one leaf at a time, and inclusion
//!   and consistency proofs, produced from any source of subtree hashes and verified from the
//!   proof alone;
//! - [`checkpoint`]: the C2SP `tlog-checkpoint` text (origin, tree size, root hash);
//! - [`note`]: the C2SP `signed-note` format with Ed25519 keys (key ids, verifier and signer key
//!   strings, signing, opening a note against trusted keys).
//!
//! Everything here is checked against published test vectors: the RFC 6962 trees of the
//! Certificate Transparency project and the Go `sumdb/note` example key and note.
//!
//! # Example
//! ```
//! use annal_tlog::checkpoint::Checkpoint;
//! use annal_tlog::note::{Signer, Verifiers, open, sign};
//! use annal_tlog::tree::{Frontier, verify_inclusion};
//! use annal_tlog::HashAlg;
//!
//! let alg = HashAlg::Sha256;
//! let leaves: Vec<_> = (0..10u8).map(|i| alg.leaf(&[i])).collect();
//! let mut frontier = Frontier::new(alg);
//! leaves.iter().for_each(|l| frontier.push(*l));
//! let root = frontier.root();
//!
//! // An inclusion proof of leaf 3, from the leaf hashes, checked against the root alone.
//! let proof = annal_tlog::tree::inclusion_proof(3, 10, &mut |a, b| {
//!     Ok::<_, annal_tlog::tree::ProofError>(annal_tlog::tree::root_of(alg, &leaves[a as usize..b as usize]))
//! })
//! .unwrap();
//! verify_inclusion(alg, 3, 10, &leaves[3], &proof, &root).unwrap();
//!
//! // A signed checkpoint of the tree, opened with the verifier key.
//! let signer = Signer::from_seed("example.org/log", [7; 32]).unwrap();
//! let text = Checkpoint { origin: "example.org/log".into(), size: 10, root, extensions: vec![] }.to_text();
//! let signed = sign(&text, &[&signer]).unwrap();
//! let verifiers = Verifiers::new(vec![signer.verifier()]);
//! let opened = open(&signed, &verifiers).unwrap();
//! assert_eq!(Checkpoint::parse(&opened.text).unwrap().size, 10);
//! ```
#![deny(missing_docs)]

pub mod checkpoint;
pub mod note;
pub mod tree;

use sha2::Digest;

/// A 32-byte hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// The hash function of a tree. Its id is recorded wherever a tree's hashes are stored, so that
/// a verifier knows which one to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256, as RFC 9162 and the C2SP checkpoint specification use.
    Sha256,
    /// BLAKE3 with 32-byte output.
    Blake3,
}

impl HashAlg {
    /// The id stored in files.
    #[must_use]
    pub fn id(self) -> u8 {
        match self {
            HashAlg::Sha256 => 1,
            HashAlg::Blake3 => 2,
        }
    }

    /// The algorithm of a stored id.
    #[must_use]
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(HashAlg::Sha256),
            2 => Some(HashAlg::Blake3),
            _ => None,
        }
    }

    /// Its name, for messages and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Blake3 => "blake3",
        }
    }

    fn hash(self, prefix: &[u8], parts: &[&[u8]]) -> Hash {
        match self {
            HashAlg::Sha256 => {
                let mut h = sha2::Sha256::new();
                h.update(prefix);
                parts.iter().for_each(|p| h.update(p));
                h.finalize().into()
            }
            HashAlg::Blake3 => {
                let mut h = blake3::Hasher::new();
                h.update(prefix);
                parts.iter().for_each(|p| {
                    h.update(p);
                });
                h.finalize().into()
            }
        }
    }

    /// The root of the empty tree: the hash of the empty string.
    #[must_use]
    pub fn empty(self) -> Hash {
        self.hash(&[], &[])
    }

    /// A leaf's hash: H(0x00 || data).
    #[must_use]
    pub fn leaf(self, data: &[u8]) -> Hash {
        self.hash(&[0x00], &[data])
    }

    /// A leaf's hash over data given in parts (hashed as their concatenation).
    #[must_use]
    pub fn leaf_parts(self, parts: &[&[u8]]) -> Hash {
        self.hash(&[0x00], parts)
    }

    /// An interior node's hash: H(0x01 || left || right).
    #[must_use]
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.hash(&[0x01], &[left, right])
    }
}
