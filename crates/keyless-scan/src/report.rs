//! Output formats: text, JSON and SARIF 2.1.0 (as GitHub code scanning accepts it).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::finding::{Finding, Severity};
use crate::rules;
use crate::scan::ScanStats;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// `{"tool": …, "findings": [...], "stats": {...}}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "sarif" => Ok(Self::Sarif),
            other => Err(format!("unknown format {other:?}; use text, json or sarif")),
        }
    }
}

/// Renders findings in `format`. `command` is `scan` or `lint` (used in texts and SARIF).
#[must_use]
pub fn render(
    format: Format,
    command: &str,
    findings: &[Finding],
    stats: Option<&ScanStats>,
) -> String {
    match format {
        Format::Text => text(command, findings, stats),
        Format::Json => {
            let v = json!({
                "tool": "keyless",
                "command": command,
                "version": env!("CARGO_PKG_VERSION"),
                "findings": findings,
                "stats": stats,
            });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Sarif => {
            let mut s = serde_json::to_string_pretty(&sarif(command, findings)).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

/// `s` safe to print on a terminal: file names and YAML keys come from the repository, and a
/// control character (ESC sequences, `\r`) or a bidirectional override in one could move the
/// cursor, erase findings already printed or reorder what is shown. Those are written escaped.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn text(command: &str, findings: &[Finding], stats: Option<&ScanStats>) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{}:{}:{}: {} [{}] {}",
            printable(&f.path),
            f.line,
            f.column,
            f.severity.as_str(),
            printable(&f.rule),
            printable(&f.message)
        );
        if let Some(c) = &f.commit {
            let short: Vec<&str> = f
                .commits
                .iter()
                .take(5)
                .map(|c| c.get(..12).unwrap_or(c))
                .collect();
            let more = f.commits.len().saturating_sub(5);
            let _ = write!(
                out,
                "    commit {} (in {}",
                c.get(..12).unwrap_or(c),
                short.join(", ")
            );
            if more > 0 {
                let _ = write!(out, " and {more} more");
            }
            out.push_str(")\n");
        }
        let _ = writeln!(out, "    fingerprint {}", f.fingerprint);
        if let Some(w) = &f.why {
            let _ = writeln!(out, "    why: {}", printable(w));
        }
        if let Some(x) = &f.fix {
            let _ = writeln!(out, "    fix: {}", printable(x));
        }
    }
    let high = findings
        .iter()
        .filter(|f| f.severity == Severity::High)
        .count();
    let _ = write!(
        out,
        "keyless {command}: {} finding(s), {high} high",
        findings.len()
    );
    if let Some(s) = stats {
        let _ = write!(out, "; {} file(s), {} byte(s) scanned", s.files, s.bytes);
        if s.commits > 0 {
            let _ = write!(out, ", {} commit(s)", s.commits);
        }
    }
    out.push('\n');
    out
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::High => "8.0",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
    }
}

/// Builds a SARIF 2.1.0 log: one run, the rules that fired, one result per finding with a
/// `partialFingerprints` entry so GitHub tracks findings across runs.
#[must_use]
pub fn sarif(command: &str, findings: &[Finding]) -> Value {
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut rules_json = Vec::new();
    for f in findings {
        if rule_index.contains_key(&f.rule) {
            continue;
        }
        rule_index.insert(f.rule.clone(), rules_json.len());
        let info = rules::info(&f.rule);
        let name = info.map_or(f.rule.as_str(), |r| r.name);
        let why = info.map_or_else(
            || f.why.clone().unwrap_or_else(|| f.message.clone()),
            |r| r.why.to_string(),
        );
        let fix = info.map_or_else(|| f.fix.clone().unwrap_or_default(), |r| r.fix.to_string());
        let sev = info.map_or(f.severity, |r| r.severity);
        rules_json.push(json!({
            "id": f.rule,
            "name": name.replace(' ', ""),
            "shortDescription": {"text": name},
            "fullDescription": {"text": why},
            "help": {"text": format!("{why}\n\nFix: {fix}"), "markdown": format!("{why}\n\n**Fix:** {fix}")},
            "defaultConfiguration": {"level": sev.sarif_level()},
            "properties": {"tags": ["security"], "security-severity": security_severity(sev), "precision": "high"},
        }));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut props = serde_json::Map::new();
            if !f.commits.is_empty() {
                props.insert("commits".into(), json!(f.commits));
            }
            if let Some(a) = &f.access_key_id {
                props.insert("accessKeyId".into(), json!(a));
            }
            if let Some(a) = &f.account_id {
                props.insert("accountId".into(), json!(a));
            }
            if let Some(r) = &f.redacted {
                props.insert("redacted".into(), json!(r));
            }
            let mut message = f.message.clone();
            if let Some(c) = &f.commit {
                message.push_str(&format!(" (git history, commit {c})"));
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index.get(&f.rule).copied().unwrap_or(0),
                "level": f.severity.sarif_level(),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact_location(&f.path),
                        "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)},
                    }
                }],
                "partialFingerprints": {"keylessFingerprint/v1": f.fingerprint},
                "properties": props,
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyless",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/keyless",
                "rules": rules_json,
            }},
            "automationDetails": {"id": format!("keyless/{command}/")},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// A finding's path as SARIF should name it: from the directory the command ran in, where
/// GitHub resolves relative URIs from (the repository root). `path` is relative to `root`, the
/// directory given on the command line, or, when `root` is a file, the file as given.
#[must_use]
pub fn path_from_cwd(root: &std::path::Path, root_is_dir: bool, path: &str) -> String {
    if !root_is_dir {
        return path.to_string();
    }
    let r = root.to_string_lossy().replace('\\', "/");
    if r.starts_with('/') && r.trim_matches('/').is_empty() {
        return format!("/{path}");
    }
    let mut r = r.trim_end_matches('/');
    while let Some(rest) = r.strip_prefix("./") {
        r = rest.trim_start_matches('/');
    }
    if r.is_empty() || r == "." {
        return path.to_string();
    }
    format!("{r}/{path}")
}

/// `artifactLocation` of a path: a relative reference against `%SRCROOT%`, or, for an absolute
/// path, a `file:` URI without a base (SARIF allows a base only for relative references;
/// GitHub makes file URIs relative to the checkout).
fn artifact_location(path: &str) -> Value {
    let drive = path.len() >= 3 && path.as_bytes()[0].is_ascii_alphabetic() && &path[1..3] == ":/";
    if path.starts_with('/') {
        json!({"uri": format!("file://{}", uri(path))})
    } else if drive {
        json!({"uri": format!("file:///{}", uri(path))})
    } else {
        json!({"uri": uri(path), "uriBaseId": "%SRCROOT%"})
    }
}

/// Percent-encodes what a relative URI reference may not contain (spaces, `%`, `#`, `?`, non-ASCII).
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.trim_start_matches("./").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{artifact_location, path_from_cwd, uri};

    #[test]
    fn uris_are_escaped() {
        assert_eq!(uri("./a b/c#d.txt"), "a%20b/c%23d.txt");
        assert_eq!(uri("é"), "%C3%A9");
    }

    #[test]
    fn paths_from_the_working_directory() {
        for (root, want) in [
            (".", "x/.env"),
            ("./", "x/.env"),
            ("infra", "infra/x/.env"),
            ("./infra/", "infra/x/.env"),
            ("/", "/x/.env"),
            ("/srv/repo", "/srv/repo/x/.env"),
        ] {
            assert_eq!(
                path_from_cwd(Path::new(root), true, "x/.env"),
                want,
                "{root}"
            );
        }
        assert_eq!(
            path_from_cwd(Path::new("a/b.env"), false, "a/b.env"),
            "a/b.env"
        );
        assert_eq!(
            artifact_location("/srv/a b"),
            serde_json::json!({"uri": "file:///srv/a%20b"})
        );
        assert_eq!(
            artifact_location("C:/r/x"),
            serde_json::json!({"uri": "file:///C:/r/x"})
        );
        assert_eq!(
            artifact_location("x"),
            serde_json::json!({"uri": "x", "uriBaseId": "%SRCROOT%"})
        );
    }
}
