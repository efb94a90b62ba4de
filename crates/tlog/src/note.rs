//! The C2SP `signed-note` format with Ed25519 keys, as the Go `sumdb/note` package writes it.
//!
//! A note is a text (UTF-8, ending in a newline, no control characters but newlines), a blank
//! line, and one line per signature: `— NAME BASE64`, where the base64 holds the key's 4-byte
//! hash (big-endian) and the signature over the text. A key's hash is the first 4 bytes of
//! SHA-256(name || "\n" || 0x01 || public key), 0x01 naming Ed25519. Keys travel as strings:
//! `NAME+HASH+BASE64(0x01 || public key)` for a verifier, `PRIVATE+KEY+NAME+HASH+BASE64(0x01 ||
//! seed)` for a signer.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::Digest;

/// The signature type byte of Ed25519.
const ED25519: u8 = 0x01;
/// The most signatures a note may carry.
const SIGNATURES_MAX: usize = 100;
/// What starts a signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// What is wrong with a key, a text or a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// A key string does not parse (says why).
    Key(String),
    /// The text cannot be signed, or the note is malformed (says where).
    Malformed(String),
    /// A signature by a trusted key does not verify.
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's hash.
        hash: u32,
    },
    /// No signature is by a trusted key.
    Unverified {
        /// The names of the keys that signed it.
        names: Vec<String>,
    },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteError::Key(why) => write!(f, "bad key: {why}"),
            NoteError::Malformed(why) => write!(f, "malformed note: {why}"),
            NoteError::BadSignature { name, hash } => write!(
                f,
                "the signature by {name}+{hash:08x} does not verify: the text was changed, or \
                 signed with another key of that name"
            ),
            NoteError::Unverified { names } if names.is_empty() => {
                f.write_str("the note is not signed")
            }
            NoteError::Unverified { names } => {
                write!(f, "no signature is by a trusted key (signed by: {})", names.join(", "))
            }
        }
    }
}

impl std::error::Error for NoteError {}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::Key(format!(
            "the name {name:?} is empty or holds a space or a '+'"
        )));
    }
    Ok(())
}

/// A key's hash: the first 4 bytes of SHA-256(name || "\n" || type || public key).
#[must_use]
pub fn key_hash(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key that verifies signatures of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    hash: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key string, `NAME+HASH+BASE64(0x01 || public key)`.
    ///
    /// # Errors
    /// The part that is wrong: the name, the hash (8 hex digits), the key (base64 of 33 bytes
    /// starting with 0x01), a hash that does not match the name and key.
    pub fn from_key(key: &str) -> Result<Self, NoteError> {
        let (name, hash, public) = key_parts(key, "verifier")?;
        if key_hash(&name, &public) != hash {
            return Err(NoteError::Key(format!(
                "the hash {hash:08x} does not match the name and key"
            )));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|e| NoteError::Key(format!("not an Ed25519 public key: {e}")))?;
        Ok(Self { name, hash, key })
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's hash.
    #[must_use]
    pub fn hash(&self) -> u32 {
        self.hash
    }

    /// The verifier key string.
    #[must_use]
    pub fn key_string(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(material))
    }

    fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|s| self.key.verify_strict(text.as_bytes(), &s).is_ok())
    }
}

/// The parts of a key string after its prefix: `NAME+HASH+BASE64(0x01 || 32 bytes)`.
fn key_parts(key: &str, what: &str) -> Result<(String, u32, [u8; 32]), NoteError> {
    let mut parts = key.splitn(3, '+');
    let (Some(name), Some(hash), Some(material)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(NoteError::Key(format!("a {what} key is NAME+HASH+KEY")));
    };
    check_name(name)?;
    let hash = parse_hash(hash)?;
    let bytes = STANDARD
        .decode(material)
        .map_err(|e| NoteError::Key(format!("the key is not base64: {e}")))?;
    let key: [u8; 32] = match bytes.split_first() {
        Some((&ED25519, rest)) => {
            rest.try_into().map_err(|_| NoteError::Key("an Ed25519 key is 32 bytes".into()))?
        }
        Some((t, _)) => return Err(NoteError::Key(format!("unknown key type {t:#04x}"))),
        None => return Err(NoteError::Key("the key is empty".into())),
    };
    Ok((name.to_owned(), hash, key))
}

fn parse_hash(hash: &str) -> Result<u32, NoteError> {
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::Key(format!("the hash {hash:?} is not 8 hex digits")));
    }
    u32::from_str_radix(hash, 16).map_err(|e| NoteError::Key(e.to_string()))
}

/// A key that signs notes under one name.
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from its 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// A name that is empty or holds a space or a '+'.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let hash = key_hash(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.to_owned(), hash, key })
    }

    /// A new signer with a seed from the operating system's random source.
    ///
    /// # Errors
    /// A bad name; the random source cannot be read.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        use std::io::Read;
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| NoteError::Key(format!("cannot read /dev/urandom: {e}")))?;
        Self::from_seed(name, seed)
    }

    /// Parses a signer key string, `PRIVATE+KEY+NAME+HASH+BASE64(0x01 || seed)`.
    ///
    /// # Errors
    /// The part that is wrong, as for [`Verifier::from_key`].
    pub fn from_key(key: &str) -> Result<Self, NoteError> {
        let Some(rest) = key.strip_prefix("PRIVATE+KEY+") else {
            return Err(NoteError::Key("a signer key starts with PRIVATE+KEY+".into()));
        };
        let (name, hash, seed) = key_parts(rest, "signer")?;
        let signer = Self::from_seed(&name, seed)?;
        if signer.hash != hash {
            return Err(NoteError::Key(format!(
                "the hash {hash:08x} does not match the name and key"
            )));
        }
        Ok(signer)
    }

    /// The signer key string (secret: keep it private).
    #[must_use]
    pub fn key_string(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.hash, STANDARD.encode(material))
    }

    /// The verifier of this signer's signatures.
    #[must_use]
    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), hash: self.hash, key: self.key.verifying_key() }
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The keys a reader trusts.
#[derive(Debug, Clone, Default)]
pub struct Verifiers(Vec<Verifier>);

impl Verifiers {
    /// Trusts `keys`.
    #[must_use]
    pub fn new(keys: Vec<Verifier>) -> Self {
        Self(keys)
    }

    fn find(&self, name: &str, hash: u32) -> Option<&Verifier> {
        self.0.iter().find(|v| v.name == name && v.hash == hash)
    }
}

/// A signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key's name.
    pub name: String,
    /// The key's hash.
    pub hash: u32,
    /// The signature bytes.
    pub bytes: Vec<u8>,
}

/// An opened note: its text, the signatures that verified, and those by unknown keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text.
    pub text: String,
    /// Signatures by trusted keys, all verified.
    pub verified: Vec<Signature>,
    /// Signatures by keys the reader does not know (not checked).
    pub unknown: Vec<Signature>,
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end in a newline".into()));
    }
    if let Some(at) = text.find(|c: char| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed(format!(
            "the text holds a control character at byte {at}"
        )));
    }
    Ok(())
}

/// Signs `text` with every signer: the text, a blank line, one signature line each.
///
/// # Errors
/// The text does not end in a newline or holds a control character other than a newline.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    check_text(text)?;
    let mut out = format!("{text}\n");
    for s in signers {
        let mut bytes = s.hash.to_be_bytes().to_vec();
        bytes.extend_from_slice(&s.key.sign(text.as_bytes()).to_bytes());
        out.push_str(&format!("{SIG_PREFIX}{} {}\n", s.name, STANDARD.encode(bytes)));
    }
    Ok(out)
}

/// Opens a note: splits it at its last blank line, parses every signature line, and verifies
/// each one by a trusted key.
///
/// # Errors
/// `Malformed` naming the line; `BadSignature` for a trusted key's signature that does not
/// verify; `Unverified` when no signature is by a trusted key.
pub fn open(note: &str, verifiers: &Verifiers) -> Result<Note, NoteError> {
    let Some(split) = note.rfind("\n\n") else {
        return Err(NoteError::Malformed("no blank line before the signatures".into()));
    };
    let text = &note[..=split];
    check_text(text)?;
    let sigs = &note[split + 2..];
    if !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the last signature line does not end in a newline".into(),
        ));
    }
    let mut verified: Vec<Signature> = Vec::new();
    let mut unknown = Vec::new();
    for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if i >= SIGNATURES_MAX {
            return Err(NoteError::Malformed(format!("more than {SIGNATURES_MAX} signatures")));
        }
        let bad = |why: &str| NoteError::Malformed(format!("signature line {}: {why}", i + 1));
        let rest =
            line.strip_prefix(SIG_PREFIX).ok_or_else(|| bad("does not start with \"— \""))?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("no space after the name"))?;
        check_name(name).map_err(|_| bad("the name is empty or holds a space or a '+'"))?;
        let bytes = STANDARD.decode(b64).map_err(|_| bad("the signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(bad("the signature is shorter than a key hash and one byte"));
        }
        let hash = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
        let sig = Signature { name: name.to_owned(), hash, bytes: bytes[4..].to_vec() };
        match verifiers.find(name, hash) {
            Some(v) if verified.iter().any(|s| s.name == sig.name && s.hash == sig.hash) => {
                return Err(NoteError::Malformed(format!(
                    "signature line {}: {}+{hash:08x} signed twice",
                    i + 1,
                    v.name
                )));
            }
            Some(v) if v.verifies(text, &sig.bytes) => verified.push(sig),
            Some(_) => return Err(NoteError::BadSignature { name: sig.name, hash }),
            None => unknown.push(sig),
        }
    }
    if verified.is_empty() {
        return Err(NoteError::Unverified {
            names: unknown.iter().map(|s| s.name.clone()).collect(),
        });
    }
    Ok(Note { text: text.to_owned(), verified, unknown })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key and note of the Go `sumdb/note` package (`note_test.go`).
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn the_go_example_key_signs_and_verifies_byte_for_byte() {
        let signer = Signer::from_key(SKEY).unwrap();
        assert_eq!(signer.key_string(), SKEY);
        assert_eq!(signer.verifier().key_string(), VKEY);
        let verifier = Verifier::from_key(VKEY).unwrap();
        assert_eq!(verifier.hash(), 0xc74f_20a3);
        let note = sign(TEXT, &[&signer]).unwrap();
        assert_eq!(note, format!("{TEXT}\n{SIG}"));
        let opened = open(&note, &Verifiers::new(vec![verifier])).unwrap();
        assert_eq!(opened.text, TEXT);
        assert_eq!(opened.verified.len(), 1);
    }

    #[test]
    fn altered_notes_and_keys_are_refused() {
        let verifiers = Verifiers::new(vec![Verifier::from_key(VKEY).unwrap()]);
        let note = format!("{TEXT}\n{SIG}");
        let changed = note.replacen("problem", "pr0blem", 1);
        assert!(matches!(open(&changed, &verifiers), Err(NoteError::BadSignature { .. })));
        let other = Signer::from_seed("Other", [3; 32]).unwrap();
        let signed_by_other = sign(TEXT, &[&other]).unwrap();
        assert!(matches!(open(&signed_by_other, &verifiers), Err(NoteError::Unverified { .. })));
        let both = sign(TEXT, &[&other, &Signer::from_key(SKEY).unwrap()]).unwrap();
        let opened = open(&both, &verifiers).unwrap();
        assert_eq!((opened.verified.len(), opened.unknown.len()), (1, 1));
        let twice = format!("{note}{SIG}");
        assert!(matches!(open(&twice, &verifiers), Err(NoteError::Malformed(_))));
        for bad in [
            TEXT.to_owned(),
            format!("{TEXT}\n{}", SIG.trim_end()),
            format!("{TEXT}\n- PeterNeumann x08go\n"),
            format!("{TEXT}\n\u{2014} PeterNeumann !!!\n"),
        ] {
            assert!(open(&bad, &verifiers).is_err(), "{bad:?}");
        }
        assert!(sign("no newline", &[&other]).is_err());
        assert!(sign("bell\u{7}\n", &[&other]).is_err());
        // Every byte of the verifier key changed by one, as the Go package tests it: refused.
        let b = VKEY.as_bytes();
        for i in 0..b.len() {
            let mut k = b.to_vec();
            k[i] = k[i].wrapping_add(1);
            if let Ok(k) = String::from_utf8(k) {
                assert!(Verifier::from_key(&k).is_err(), "{k}");
            }
        }
        assert!(Signer::from_seed("has space", [1; 32]).is_err());
        assert!(Signer::from_seed("has+plus", [1; 32]).is_err());
    }
}
