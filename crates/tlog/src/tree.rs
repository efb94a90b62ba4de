//! RFC 9162 Merkle trees (section 2.1): the tree hash of a list of leaves, inclusion and
//! consistency proofs, and their verification.
//!
//! Proofs are produced from a source of subtree hashes, `subtree(start, end)` for the leaves
//! `start..end` (a store answers from what it persisted; a test from the leaf hashes), and only
//! ever ask for the O(log n) subtrees a proof holds. Verification needs nothing but the proof.

use std::fmt;

use crate::{Hash, HashAlg};

/// Why a proof does not verify, or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The index or sizes asked for are out of range (named).
    Range(String),
    /// The proof has the wrong number of hashes for its index and sizes.
    Length {
        /// Hashes a proof of this shape has.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// The root the proof leads to differs from the one given.
    RootMismatch {
        /// Which root (`"root"`, `"first root"` or `"second root"`).
        which: &'static str,
        /// The root computed from the proof, in hex.
        computed: String,
    },
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Range(what) => f.write_str(what),
            ProofError::Length { expected, got } => {
                write!(f, "the proof holds {got} hashes where one of this shape holds {expected}")
            }
            ProofError::RootMismatch { which, computed } => write!(
                f,
                "the proof leads to {which} {computed}, not the one given: the leaf or the \
                 tree is not the one the proof was made for"
            ),
        }
    }
}

impl std::error::Error for ProofError {}

/// The largest power of two smaller than `n` (for `n >= 2`): where RFC 9162 splits a tree.
#[must_use]
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2, "only a tree of two or more leaves splits");
    1 << (63 - (n - 1).leading_zeros())
}

/// The tree hash (MTH) of `leaves`, given as leaf hashes.
#[must_use]
pub fn root_of(alg: HashAlg, leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => alg.empty(),
        1 => leaves[0],
        n => {
            let k = usize::try_from(split(n as u64)).expect("below n");
            alg.node(&root_of(alg, &leaves[..k]), &root_of(alg, &leaves[k..]))
        }
    }
}

/// The inclusion proof (RFC 9162 2.1.3.1, `PATH`) of leaf `index` in the tree of the first
/// `size` leaves, asking `subtree(start, end)` for the hashes of the subtrees it holds.
///
/// # Errors
/// `Range` when `index >= size`; what `subtree` fails with.
pub fn inclusion_proof<E: From<ProofError>>(
    index: u64,
    size: u64,
    subtree: &mut dyn FnMut(u64, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if index >= size {
        return Err(
            ProofError::Range(format!("leaf {index} is not in a tree of {size} leaves")).into()
        );
    }
    let mut out = Vec::new();
    path(index, 0, size, subtree, &mut out)?;
    Ok(out)
}

fn path<E>(
    m: u64,
    start: u64,
    end: u64,
    subtree: &mut dyn FnMut(u64, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < start + k {
        path(m, start, start + k, subtree, out)?;
        out.push(subtree(start + k, end)?);
    } else {
        path(m, start + k, end, subtree, out)?;
        out.push(subtree(start, start + k)?);
    }
    Ok(())
}

/// The consistency proof (RFC 9162 2.1.4.1, `PROOF`) between the trees of the first `first`
/// and the first `second` leaves, asking `subtree` for the hashes it holds. Empty when
/// `first` is 0 or equals `second`.
///
/// # Errors
/// `Range` when `first > second`; what `subtree` fails with.
pub fn consistency_proof<E: From<ProofError>>(
    first: u64,
    second: u64,
    subtree: &mut dyn FnMut(u64, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    if first > second {
        return Err(ProofError::Range(format!(
            "a tree of {first} leaves cannot be a prefix of one of {second}"
        ))
        .into());
    }
    let mut out = Vec::new();
    if first > 0 && first < second {
        subproof(first, 0, second, true, subtree, &mut out)?;
    }
    Ok(out)
}

fn subproof<E>(
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    subtree: &mut dyn FnMut(u64, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree(start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, subtree, out)?;
        out.push(subtree(start + k, end)?);
    } else {
        subproof(m - k, start + k, end, false, subtree, out)?;
        out.push(subtree(start, start + k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2): that `leaf` is leaf `index` of the tree of
/// `size` leaves whose root is `root`.
///
/// # Errors
/// `Range`, `Length` or `RootMismatch`, saying which.
pub fn verify_inclusion(
    alg: HashAlg,
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!("leaf {index} is not in a tree of {size} leaves")));
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Length {
                expected: inclusion_len(index, size),
                got: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = alg.node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = alg.node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length { expected: inclusion_len(index, size), got: proof.len() });
    }
    if r != *root {
        return Err(ProofError::RootMismatch { which: "root", computed: hex(&r) });
    }
    Ok(())
}

/// The number of hashes of an inclusion proof of `index` in a tree of `size` leaves.
fn inclusion_len(index: u64, size: u64) -> usize {
    let mut n = 0;
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            end = start + k
        } else {
            start += k
        }
        n += 1;
    }
    n
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2): that the tree of `first` leaves with root
/// `first_root` is a prefix of the tree of `second` leaves with root `second_root`.
///
/// # Errors
/// `Range`, `Length` or `RootMismatch`, saying which.
pub fn verify_consistency(
    alg: HashAlg,
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Range(format!(
            "a tree of {first} leaves cannot be a prefix of one of {second}"
        )));
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::Length { expected: 0, got: proof.len() });
        }
        if first == second && first_root != second_root {
            return Err(ProofError::RootMismatch {
                which: "second root",
                computed: hex(first_root),
            });
        }
        return Ok(());
    }
    let expected = consistency_len(first, second);
    if proof.len() != expected {
        return Err(ProofError::Length { expected, got: proof.len() });
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let mut fn_ = first - 1;
    let mut sn = second - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::Length { expected, got: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = alg.node(c, &fr);
            sr = alg.node(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = alg.node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length { expected, got: proof.len() });
    }
    if fr != *first_root {
        return Err(ProofError::RootMismatch { which: "first root", computed: hex(&fr) });
    }
    if sr != *second_root {
        return Err(ProofError::RootMismatch { which: "second root", computed: hex(&sr) });
    }
    Ok(())
}

/// The number of hashes of a consistency proof between sizes `0 < first < second`.
fn consistency_len(first: u64, second: u64) -> usize {
    let mut n = 0;
    let (mut m, mut size, mut whole) = (first, second, true);
    while m != size {
        let k = split(size);
        if m <= k {
            size = k;
        } else {
            m -= k;
            size -= k;
            whole = false;
        }
        n += 1;
    }
    n + usize::from(!whole)
}

fn hex(h: &Hash) -> String {
    hex::encode(h)
}

/// The right frontier of a tree: the roots of its perfect subtrees from the left, one per bit
/// of its size. It grows the tree one leaf at a time in O(1) amortized hashes and gives the
/// root in O(log n), without the leaves; it is what a store persists so that opening never
/// rehashes the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    alg: HashAlg,
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new(alg: HashAlg) -> Self {
        Self { alg, size: 0, hashes: Vec::new() }
    }

    /// A frontier from its persisted parts: the tree's size and the roots of its perfect
    /// subtrees, largest first. `None` when their number is not the number of bits set in
    /// `size`.
    #[must_use]
    pub fn from_parts(alg: HashAlg, size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { alg, size, hashes })
    }

    /// The hash function.
    #[must_use]
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, largest (leftmost) first.
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The perfect subtrees as `(start, end, hash)` over leaf indexes, leftmost first.
    pub fn subtrees(&self) -> impl Iterator<Item = (u64, u64, Hash)> + '_ {
        let mut start = 0;
        let mut bits = (0..64).rev().filter(move |b| self.size >> b & 1 == 1);
        self.hashes.iter().map(move |h| {
            let width = 1u64 << bits.next().expect("one bit per hash");
            let s = start;
            start += width;
            (s, start, *h)
        })
    }

    /// Appends a leaf, given as its leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.hashes.pop().expect("one hash per set bit");
            h = self.alg.node(&left, &h);
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The tree's root.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(&last) = it.next() else { return self.alg.empty() };
        it.fold(last, |r, h| self.alg.node(h, &r))
    }
}

#[cfg(test)]
#[expect(clippy::cast_possible_truncation, reason = "the test trees have at most 77 leaves")]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn h(s: &str) -> Hash {
        unhex(s).try_into().unwrap()
    }

    /// The RFC 6962 reference leaves of the Certificate Transparency project.
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|d| HashAlg::Sha256.leaf(&unhex(d)))
        .collect()
    }

    /// Their roots for sizes 0 to 8.
    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn from_leaves(leaves: &[Hash]) -> impl FnMut(u64, u64) -> Result<Hash, ProofError> + '_ {
        |a, b| Ok(root_of(HashAlg::Sha256, &leaves[a as usize..b as usize]))
    }

    #[test]
    fn roots_and_frontier_match_the_reference_trees() {
        let leaves = reference_leaves();
        let mut frontier = Frontier::new(HashAlg::Sha256);
        assert_eq!(frontier.root(), h(REFERENCE_ROOTS[0]));
        for (n, want) in REFERENCE_ROOTS.iter().enumerate() {
            assert_eq!(root_of(HashAlg::Sha256, &leaves[..n]), h(want), "size {n}");
            if n > 0 {
                frontier.push(leaves[n - 1]);
                assert_eq!(frontier.root(), h(want), "frontier of size {n}");
            }
        }
        let parts = Frontier::from_parts(HashAlg::Sha256, 8, frontier.hashes().to_vec());
        assert_eq!(parts.map(|f| f.root()), Some(h(REFERENCE_ROOTS[8])));
        assert_eq!(Frontier::from_parts(HashAlg::Sha256, 7, vec![]), None);
    }

    #[test]
    fn inclusion_and_consistency_proofs_match_the_reference_proofs() {
        let leaves = reference_leaves();
        let inclusion = [
            (
                0,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, size, want) in inclusion {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            let got = inclusion_proof(index, size, &mut from_leaves(&leaves)).unwrap();
            assert_eq!(got, want, "inclusion of {index} in {size}");
            let root = h(REFERENCE_ROOTS[size as usize]);
            verify_inclusion(HashAlg::Sha256, index, size, &leaves[index as usize], &got, &root)
                .unwrap();
        }
        let consistency = [
            (
                2,
                8,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (first, second, want) in consistency {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            let got = consistency_proof(first, second, &mut from_leaves(&leaves)).unwrap();
            assert_eq!(got, want, "consistency {first} -> {second}");
            let (a, b) = (h(REFERENCE_ROOTS[first as usize]), h(REFERENCE_ROOTS[second as usize]));
            verify_consistency(HashAlg::Sha256, first, second, &a, &b, &got).unwrap();
        }
    }

    /// Every proof of every shape up to 40 leaves verifies, and no altered one does.
    #[test]
    fn every_proof_verifies_and_no_altered_one_does() {
        for alg in [HashAlg::Sha256, HashAlg::Blake3] {
            let leaves: Vec<Hash> = (0..40u32).map(|i| alg.leaf(&i.to_le_bytes())).collect();
            let mut sub =
                |a: u64, b: u64| Ok::<_, ProofError>(root_of(alg, &leaves[a as usize..b as usize]));
            for size in 1..=40u64 {
                let root = root_of(alg, &leaves[..size as usize]);
                for index in 0..size {
                    let proof = inclusion_proof(index, size, &mut sub).unwrap();
                    assert_eq!(proof.len(), inclusion_len(index, size));
                    let leaf = &leaves[index as usize];
                    verify_inclusion(alg, index, size, leaf, &proof, &root).unwrap();
                    let other = &leaves[((index + 1) % 40) as usize];
                    assert!(verify_inclusion(alg, index, size, other, &proof, &root).is_err());
                    if size > 1 {
                        let wrong = (index + 1) % size;
                        assert!(verify_inclusion(alg, wrong, size, leaf, &proof, &root).is_err());
                    }
                    for i in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[i][0] ^= 1;
                        assert!(verify_inclusion(alg, index, size, leaf, &bad, &root).is_err());
                    }
                    let mut longer = proof.clone();
                    longer.push(root);
                    assert!(verify_inclusion(alg, index, size, leaf, &longer, &root).is_err());
                }
                for first in 0..=size {
                    let a = root_of(alg, &leaves[..first as usize]);
                    let proof = consistency_proof(first, size, &mut sub).unwrap();
                    verify_consistency(alg, first, size, &a, &root, &proof).unwrap();
                    if first > 0 && first < size {
                        assert_eq!(proof.len(), consistency_len(first, size));
                        let other = root_of(alg, &leaves[1..=first as usize]);
                        assert!(
                            verify_consistency(alg, first, size, &other, &root, &proof).is_err()
                        );
                        assert!(verify_consistency(alg, first, size, &a, &a, &proof).is_err());
                        for i in 0..proof.len() {
                            let mut bad = proof.clone();
                            bad[i][31] ^= 0x80;
                            assert!(verify_consistency(alg, first, size, &a, &root, &bad).is_err());
                        }
                        assert!(
                            verify_consistency(alg, first, size, &a, &root, &proof[1..]).is_err()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn frontier_subtrees_cover_the_leaves_in_order() {
        let alg = HashAlg::Blake3;
        let leaves: Vec<Hash> = (0..77u32).map(|i| alg.leaf(&i.to_le_bytes())).collect();
        let mut f = Frontier::new(alg);
        for (n, l) in leaves.iter().enumerate() {
            f.push(*l);
            let mut at = 0;
            for (start, end, hash) in f.subtrees() {
                assert_eq!(start, at);
                assert!((end - start).is_power_of_two());
                assert_eq!(hash, root_of(alg, &leaves[start as usize..end as usize]));
                at = end;
            }
            assert_eq!(at, n as u64 + 1);
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in
            [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512), (1 << 40, 1 << 39)]
        {
            assert_eq!(split(n), k, "{n}");
        }
    }
}
