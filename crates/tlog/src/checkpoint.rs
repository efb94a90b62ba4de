//! The C2SP `tlog-checkpoint` text: a log's origin, its tree size and its root hash, one per
//! line, then optional extension lines. It is the text of a signed note (see [`crate::note`]).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;

/// A checkpoint of a log: the tree of its first `size` leaves has root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line: a unique name, for example a schema-less URL.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Extension lines, in order (without their newlines).
    pub extensions: Vec<String>,
}

/// What is wrong with a checkpoint's text, naming the line (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CheckpointError {}

impl Checkpoint {
    /// The checkpoint's text: origin, size in decimal, root in base64, extensions, each line
    /// ending in a newline.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint's text (the text of a note, signatures removed).
    ///
    /// # Errors
    /// The line that is missing or malformed: an empty origin, a size that is not a decimal
    /// number without leading zeros, a root that is not 32 bytes of standard base64, an empty
    /// extension line, text that does not end in a newline.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let fail = |line: usize, reason: &str| CheckpointError { line, reason: reason.into() };
        let Some(body) = text.strip_suffix('\n') else {
            return Err(fail(text.lines().count().max(1), "the text does not end in a newline"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let origin = lines.first().copied().unwrap_or_default();
        if origin.is_empty() {
            return Err(fail(1, "the origin is empty"));
        }
        let size = lines.get(1).ok_or_else(|| fail(2, "the tree size is missing"))?;
        let valid = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size.len() == 1 || !size.starts_with('0'));
        let size: u64 = valid.then(|| size.parse().ok()).flatten().ok_or_else(|| {
            fail(2, "the tree size is not a decimal number without leading zeros")
        })?;
        let root = lines.get(2).ok_or_else(|| fail(3, "the root hash is missing"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail(3, "the root hash is not 32 bytes of standard base64"))?;
        let extensions: Vec<String> = lines[3..].iter().map(|&l| l.to_owned()).collect();
        if let Some(i) = extensions.iter().position(String::is_empty) {
            return Err(fail(4 + i, "an extension line is empty"));
        }
        Ok(Self { origin: origin.to_owned(), size, root, extensions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_bad_line() {
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 123,
            root: [9; 32],
            extensions: vec!["ext one".into()],
        };
        let text = c.to_text();
        assert_eq!(
            text,
            "example.com/log\n123\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\next one\n"
        );
        assert_eq!(Checkpoint::parse(&text), Ok(c));
        for (bad, line) in [
            ("\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n", 1),
            ("o\n01\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n", 2),
            ("o\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n", 2),
            ("o\n1\nCQkJ\n", 3),
            ("o\n1\n", 3),
            ("o\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n\n", 4),
            ("o\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=", 3),
        ] {
            assert_eq!(Checkpoint::parse(bad).map_err(|e| e.line), Err(line), "{bad:?}");
        }
    }
}
