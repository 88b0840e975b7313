//! Baselines: a previous `--format json` report whose findings are accepted and suppressed.

use std::collections::HashSet;

use crate::finding::Finding;
use crate::scan::ScanError;

/// Largest baseline file read.
pub const MAX_BASELINE_BYTES: usize = 16 * 1024 * 1024;

/// Accepted findings, keyed by (fingerprint, path).
#[derive(Debug, Default)]
pub struct Baseline {
    accepted: HashSet<(String, String)>,
}

impl Baseline {
    /// Parses a baseline: a keyless JSON report (`{"findings": [...]}`) or a bare array of
    /// findings; each needs `fingerprint` and `path`. `name` is used in errors.
    ///
    /// # Errors
    /// [`ScanError::Baseline`] when too large, not JSON, or entries lack the fields.
    pub fn parse(name: &str, text: &str) -> Result<Self, ScanError> {
        let bad = |reason: String| ScanError::Baseline {
            path: name.to_string(),
            reason,
        };
        if text.len() > MAX_BASELINE_BYTES {
            return Err(bad(format!("larger than {MAX_BASELINE_BYTES} bytes")));
        }
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e})")))?;
        let list = match &v {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => match o.get("findings") {
                Some(serde_json::Value::Array(a)) => a,
                _ => return Err(bad("no \"findings\" array".into())),
            },
            _ => {
                return Err(bad(
                    "expected an object with \"findings\" or an array".into()
                ));
            }
        };
        let mut accepted = HashSet::new();
        for (i, e) in list.iter().enumerate() {
            let fp = e.get("fingerprint").and_then(|x| x.as_str());
            let path = e.get("path").and_then(|x| x.as_str());
            match (fp, path) {
                (Some(fp), Some(p)) => {
                    accepted.insert((fp.to_string(), p.to_string()));
                }
                _ => {
                    return Err(bad(format!(
                        "finding {i} lacks a string \"fingerprint\" or \"path\""
                    )));
                }
            }
        }
        Ok(Self { accepted })
    }

    /// True when `f` is accepted by this baseline.
    #[must_use]
    pub fn suppresses(&self, f: &Finding) -> bool {
        self.accepted
            .contains(&(f.fingerprint.clone(), f.path.clone()))
    }

    /// Removes accepted findings.
    pub fn filter(&self, findings: &mut Vec<Finding>) {
        findings.retain(|f| !self.suppresses(f));
    }
}
