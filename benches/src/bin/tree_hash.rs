//! Measures what the verifiable log's hashing costs per record, to choose its hash function:
//! for SHA-256 and BLAKE3, the leaf hash of a 100-byte record (0x00, sequence number,
//! timestamp, payload) plus the amortized frontier update (one node hash per leaf), against
//! the linear chain the log uses today (`chain_next`), measured in the same run. Prints a
//! markdown table; medians of 5 rounds of 1M records (`--records N`). Issue target: tree
//! maintenance at most 40 ns per record.

use std::hint::black_box;
use std::time::Instant;

use annal_tlog::HashAlg;
use annal_tlog::tree::Frontier;

fn main() {
    let mut records = 1_000_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--records" {
            records = args.next().and_then(|n| n.parse().ok()).expect("--records N");
        }
    }
    let payload = [0x5au8; 100];
    let round = |f: &mut dyn FnMut(u64)| {
        let started = Instant::now();
        for seq in 1..=records {
            f(seq);
        }
        started.elapsed().as_secs_f64() * 1e9 / records as f64
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut chain_ns, mut sha_ns, mut blake_ns, mut sha_leaf, mut blake_leaf) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..5 {
        let mut chain = annal_wal::CHAIN_START;
        chain_ns.push(round(&mut |seq| {
            chain = annal_wal::chain_next(&chain, seq, seq * 1000, &payload);
        }));
        black_box(chain);
        for (alg, total, leaf_only) in [
            (HashAlg::Sha256, &mut sha_ns, &mut sha_leaf),
            (HashAlg::Blake3, &mut blake_ns, &mut blake_leaf),
        ] {
            let mut frontier = Frontier::new(alg);
            total.push(round(&mut |seq| {
                let leaf =
                    alg.leaf_parts(&[&seq.to_le_bytes(), &(seq * 1000).to_le_bytes(), &payload]);
                frontier.push(leaf);
            }));
            black_box(frontier.root());
            let mut last = [0u8; 32];
            leaf_only.push(round(&mut |seq| {
                last = alg.leaf_parts(&[&seq.to_le_bytes(), &(seq * 1000).to_le_bytes(), &payload]);
            }));
            black_box(last);
        }
    }
    let chain = median(chain_ns);
    println!("| per 100-byte record | ns | against the linear chain |");
    println!("| --- | ---: | ---: |");
    println!("| linear chain (`chain_next`, BLAKE3) | {chain:.1} | 1.00x |");
    for (name, total, leaf) in [("SHA-256", sha_ns, sha_leaf), ("BLAKE3", blake_ns, blake_leaf)] {
        let (total, leaf) = (median(total), median(leaf));
        println!("| {name} leaf hash | {leaf:.1} | {:.2}x |", leaf / chain);
        println!("| {name} leaf hash + frontier update | {total:.1} | {:.2}x |", total / chain);
    }
}
