//! The finding type shared by `scan` and `lint`, with redaction and fingerprints.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: documented example keys, hygiene.
    Low,
    /// Should be fixed: lone key ids, temporary credentials, weak settings.
    Medium,
    /// A usable permanent credential or a setup that hands one out.
    High,
}

impl Severity {
    /// Lower-case name (`low`, `medium`, `high`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// SARIF `level` for this severity.
    #[must_use]
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Low => "note",
            Severity::Medium => "warning",
            Severity::High => "error",
        }
    }
}

/// How sure the scanner is that a secret finding is a real credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Pattern only.
    Low,
    /// Pattern plus a naming context (`aws_secret_access_key = …`).
    Medium,
    /// Key id paired with its secret (or session token) nearby.
    High,
}

/// One problem found by `scan` or `lint`. Never contains a full secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id (see [`crate::rules`]).
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// Confidence, for secret findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// Path of the file (relative to the scanned root, or inside the repository for git blobs).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was found.
    pub message: String,
    /// Why it matters (lint findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// How to fix it (lint findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// For git history findings: the oldest commit that added the secret at this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// For git history findings: every commit that wrote a blob containing it at this path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
    /// Redacted form of the secret (first 4 characters, then its length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Stable id of the secret (sha256-based) or of the lint finding; used by baselines.
    pub fingerprint: String,
    /// The access key id (not secret), when the finding is about a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Account id decoded offline from the access key id, when the key id encodes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// True for AWS's documented example keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub example: bool,
}

/// Stable fingerprint of secret material: `kl1:` + 24 hex digits of a domain-separated SHA-256.
#[must_use]
pub fn fingerprint(material: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"keyless-scan/v1\0");
    h.update(material);
    let d = h.finalize();
    format!("kl1:{}", hex::encode(d.get(..12).unwrap_or(&[])))
}

/// Redacted form of a secret: its first 4 characters, an ellipsis and its length.
#[must_use]
pub fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({} chars)", secret.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_all_but_prefix() {
        let s = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz";
        let r = redact(s);
        assert_eq!(r, "wJal…(40 chars)");
        assert!(!r.contains("XUtn"));
        let f = fingerprint(s.as_bytes());
        assert_eq!(f.len(), 4 + 24);
        assert_ne!(f, fingerprint(b"other"));
        assert_eq!(f, fingerprint(s.as_bytes()));
    }
}
