//! The verifiable log's commands: keygen, checkpoint, prove, verify-proof.

use std::io::Write;
use std::path::Path;

use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::note::{Signer, Verifier, Verifiers, open, sign};
use annal::{ConsistencyProof, InclusionProof, JournalReader};
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::write_cmds::require_journal;
use crate::{integrity, out};

/// What `keygen` prints.
#[derive(Debug, Serialize)]
struct KeygenReport {
    /// The signer key's file.
    key_file: String,
    /// The key's name.
    name: String,
    /// The verifier key to publish.
    verifier_key: String,
}

pub fn keygen(path: &Path, name: &str) -> anyhow::Result<()> {
    let signer = Signer::generate(name)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!("create {} (an existing key file is never overwritten)", path.display())
    })?;
    writeln!(file, "{}", signer.key_string())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", path.display()))?;
    out::print(&KeygenReport {
        key_file: path.display().to_string(),
        name: signer.name().to_owned(),
        verifier_key: signer.verifier().key_string(),
    })
}

fn read_signer(path: &Path) -> anyhow::Result<Signer> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Signer::from_key(text.trim()).with_context(|| format!("{}: not a signer key", path.display()))
}

pub fn checkpoint(dir: &Path, key: Option<&Path>, origin: Option<&str>) -> anyhow::Result<()> {
    require_journal(dir)?;
    let signer = key.map(read_signer).transpose()?;
    let origin = origin.or(signer.as_ref().map(Signer::name)).unwrap_or("annal");
    let checkpoint = JournalReader::open(dir)?.checkpoint(origin, None)?;
    let text = checkpoint.to_text();
    let printed = match &signer {
        Some(s) => sign(&text, &[s])?,
        None => text,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(printed.as_bytes()).context("write the checkpoint")?;
    stdout.flush().context("write the checkpoint")
}

/// A proof as `prove` prints it: the library's proof, its kind, and the tree's hash.
#[derive(Debug, Serialize)]
struct ProofLine<P> {
    /// The proof.
    #[serde(flatten)]
    proof: P,
    /// `inclusion` or `consistency`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The tree's hash function.
    hash: &'static str,
}

pub fn prove(
    dir: &Path,
    seq: Option<u64>,
    from_size: Option<u64>,
    size: Option<u64>,
) -> anyhow::Result<()> {
    require_journal(dir)?;
    let reader = JournalReader::open(dir)?;
    let hash = annal::TREE_HASH.name();
    match (seq, from_size) {
        (Some(seq), _) => {
            let proof = reader.inclusion_proof(seq, size)?;
            out::print(&ProofLine { proof, kind: "inclusion", hash })
        }
        (None, Some(first)) => {
            let proof = reader.consistency_proof(first, size)?;
            out::print(&ProofLine { proof, kind: "consistency", hash })
        }
        (None, None) => anyhow::bail!("give --seq N or --from-size N"),
    }
}

/// Reads a checkpoint file: a signed note checked with `verifier`, or (without one) the text
/// before any signature lines, unchecked.
fn read_checkpoint(path: &Path, verifier: Option<&Verifiers>) -> anyhow::Result<Checkpoint> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let body = match verifier {
        Some(v) => open(&text, v).map_err(|e| integrity(format!("{}: {e}", path.display())))?.text,
        None => match text.rfind("\n\n") {
            Some(split) => text[..=split].to_owned(),
            None => text,
        },
    };
    Checkpoint::parse(&body).map_err(|e| integrity(format!("{}: {e}", path.display())))
}

/// A checkpoint an auditor trusts: read from `path`, its signature checked with `key` (or, with
/// no key, its text taken as it is).
pub fn trusted_checkpoint(path: &Path, key: Option<&str>) -> anyhow::Result<Checkpoint> {
    let verifiers = key
        .map(|k| Verifier::from_key(k.trim()).map(|v| Verifiers::new(vec![v])))
        .transpose()
        .context("--key")?;
    read_checkpoint(path, verifiers.as_ref())
}

/// What `verify-proof` prints for an inclusion proof that holds.
#[derive(Debug, Serialize)]
struct InclusionChecked {
    /// Always true: a proof that fails is an error instead.
    ok: bool,
    /// `inclusion`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The record's sequence number.
    seq: u64,
    /// The tree's size.
    size: u64,
    /// Whether the checkpoint's signature was checked.
    signature_checked: bool,
}

/// What `verify-proof` prints for a consistency proof that holds.
#[derive(Debug, Serialize)]
struct ConsistencyChecked {
    /// Always true: a proof that fails is an error instead.
    ok: bool,
    /// `consistency`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The older tree's size.
    first: u64,
    /// The newer tree's size.
    second: u64,
    /// The checkpoints checked.
    checkpoints: usize,
    /// Whether the checkpoints' signatures were checked.
    signature_checked: bool,
}

pub fn verify_proof(
    proof: &Path,
    checkpoints: &[std::path::PathBuf],
    key: Option<&str>,
) -> anyhow::Result<()> {
    let checkpoints: Vec<Checkpoint> =
        checkpoints.iter().map(|p| trusted_checkpoint(p, key)).collect::<anyhow::Result<_>>()?;
    let text =
        std::fs::read_to_string(proof).with_context(|| format!("read {}", proof.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| integrity(format!("{}: not JSON: {e}", proof.display())))?;
    let fail = |e: annal::Error| integrity(format!("{}: {e}", proof.display()));
    if let Some(hash) = value.get("hash").and_then(Value::as_str)
        && hash != annal::TREE_HASH.name()
    {
        return Err(integrity(format!(
            "{}: a proof over {hash}, where annal's tree uses {}",
            proof.display(),
            annal::TREE_HASH.name()
        )));
    }
    let kind = value["type"].as_str().unwrap_or_default().to_owned();
    match kind.as_str() {
        "inclusion" => {
            let p: InclusionProof = serde_json::from_value(value).map_err(|e| {
                integrity(format!("{}: not an inclusion proof: {e}", proof.display()))
            })?;
            if checkpoints.len() != 1 {
                anyhow::bail!("an inclusion proof is checked against one checkpoint");
            }
            p.verify(&checkpoints[0]).map_err(fail)?;
            out::print(&InclusionChecked {
                ok: true,
                kind: "inclusion",
                seq: p.seq,
                size: p.size,
                signature_checked: key.is_some(),
            })
        }
        "consistency" => {
            let p: ConsistencyProof = serde_json::from_value(value).map_err(|e| {
                integrity(format!("{}: not a consistency proof: {e}", proof.display()))
            })?;
            p.verify(&checkpoints).map_err(fail)?;
            out::print(&ConsistencyChecked {
                ok: true,
                kind: "consistency",
                first: p.first,
                second: p.second,
                checkpoints: checkpoints.len(),
                signature_checked: key.is_some(),
            })
        }
        other => Err(integrity(format!(
            "{}: \"type\" is {other:?}, not \"inclusion\" or \"consistency\"",
            proof.display()
        ))),
    }
}
