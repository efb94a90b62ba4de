//! The verifiable log's commands: keygen, checkpoint, prove, verify-proof.

use std::io::Write;
use std::path::Path;

use annal::tlog::checkpoint::Checkpoint;
use annal::tlog::note::{Signer, Verifier, Verifiers, open, sign};
use annal::{ConsistencyProof, InclusionProof, JournalReader};
use anyhow::Context;
use serde_json::{Value, json};

use crate::write_cmds::require_journal;
use crate::{integrity, out};

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
    out::print(&json!({
        "key_file": path.display().to_string(),
        "name": signer.name(),
        "verifier_key": signer.verifier().key_string(),
    }))
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

pub fn prove(
    dir: &Path,
    seq: Option<u64>,
    from_size: Option<u64>,
    size: Option<u64>,
) -> anyhow::Result<()> {
    require_journal(dir)?;
    let reader = JournalReader::open(dir)?;
    let proof = match (seq, from_size) {
        (Some(seq), _) => {
            let mut v = serde_json::to_value(reader.inclusion_proof(seq, size)?)?;
            v["type"] = json!("inclusion");
            v
        }
        (None, Some(first)) => {
            let mut v = serde_json::to_value(reader.consistency_proof(first, size)?)?;
            v["type"] = json!("consistency");
            v
        }
        (None, None) => anyhow::bail!("give --seq N or --from-size N"),
    };
    let mut proof = proof;
    proof["hash"] = json!(annal::TREE_HASH.name());
    out::print(&proof)
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
            out::print(
                &json!({"ok": true, "type": kind, "seq": p.seq, "size": p.size, "signature_checked": key.is_some()}),
            )
        }
        "consistency" => {
            let p: ConsistencyProof = serde_json::from_value(value).map_err(|e| {
                integrity(format!("{}: not a consistency proof: {e}", proof.display()))
            })?;
            p.verify(&checkpoints).map_err(fail)?;
            out::print(
                &json!({"ok": true, "type": kind, "first": p.first, "second": p.second, "checkpoints": checkpoints.len(), "signature_checked": key.is_some()}),
            )
        }
        other => Err(integrity(format!(
            "{}: \"type\" is {other:?}, not \"inclusion\" or \"consistency\"",
            proof.display()
        ))),
    }
}
