//! The in-memory detector: finds AWS key ids, secret access keys and session tokens in a byte
//! buffer, pairs them, and turns them into redacted [`Finding`]s. Pure (no I/O).
//!
//! Speed comes from a two-automaton prefilter (Aho-Corasick, SIMD-accelerated): a buffer with no
//! `AKIA`/`ASIA`, no session-token prefix and no credential keyword is rejected in one pass, and
//! every candidate is then checked with bounded, backtracking-free byte loops.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use keyless_types::SecretString;

use crate::aws::{self, KeyKind};
use crate::finding::{Confidence, Finding, Severity, fingerprint, redact};
use crate::rules;

/// Bytes either side of a key id searched for its secret.
pub const PAIR_WINDOW: usize = 600;
/// Minimum length of a session token value.
pub const MIN_TOKEN_LEN: usize = 100;
/// Maximum session token length considered (AWS caps tokens well below this).
pub const MAX_TOKEN_LEN: usize = 8192;

const ID_PATTERNS: &[&str] = &[
    "AKIA",
    "ASIA",
    "IQoJb3JpZ2lu",
    "FwoGZXIvYXdz",
    "FQoGZXIvYXdz",
    // Base64 of `AKIA`/`ASIA` at the start of an encoded value.
    "QUtJQ",
    "QVNJQ",
];
const N_ID_PREFIXES: usize = 2;
const FIRST_B64_ID: usize = 5;

const SECRET_WORDS: &[&str] = &[
    "secret_access_key",
    "secretaccesskey",
    "secret-access-key",
    "aws_secret",
    "awssecret",
    "aws-secret",
    // Java SDK system properties and profile files: aws.secretKey, aws.secretAccessKey.
    "aws.secret",
];
const TOKEN_WORDS: &[&str] = &[
    "session_token",
    "sessiontoken",
    "session-token",
    "security_token",
    "securitytoken",
];

#[allow(
    clippy::expect_used,
    reason = "static patterns; construction cannot fail"
)]
static IDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(ID_PATTERNS)
        .expect("static patterns")
});

#[allow(
    clippy::expect_used,
    reason = "static patterns; construction cannot fail"
)]
static WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(SECRET_WORDS.iter().chain(TOKEN_WORDS))
        .expect("static patterns")
});

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+'
}
fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.'
}

/// Shannon entropy in bits per character.
#[must_use]
pub fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in s {
        counts[usize::from(c)] += 1;
    }
    #[allow(clippy::cast_precision_loss, reason = "lengths are small")]
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a 40-character candidate looks like a random AWS secret access key rather than a
/// hash, a path or a word: not all hex, has upper case, lower case and a digit or `/`/`+`, and
/// high entropy. Documented example secrets pass (they are classified separately).
#[must_use]
pub fn looks_like_secret(s: &[u8]) -> bool {
    if s.len() != 40 || !s.iter().all(|&c| is_b64(c)) {
        return false;
    }
    if s.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let upper = s.iter().any(u8::is_ascii_uppercase);
    let lower = s.iter().any(u8::is_ascii_lowercase);
    let other = s
        .iter()
        .any(|&c| c.is_ascii_digit() || c == b'/' || c == b'+');
    upper && lower && other && entropy(s) >= 3.5
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// Found by position only (near a key id).
    Near,
    /// Found after a credential keyword.
    Named,
}

#[derive(Debug)]
struct Secret {
    start: usize,
    end: usize,
    ctx: Ctx,
    used: bool,
}

#[derive(Debug)]
struct KeyId {
    start: usize,
    id: String,
    kind: KeyKind,
    example: bool,
}

/// Where a credential was found and what it is, before it becomes a [`Finding`].
#[derive(Debug)]
pub struct Hit {
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Confidence.
    pub confidence: Confidence,
    /// Byte offset of the finding.
    pub offset: usize,
    /// Access key id, when one is involved.
    pub access_key_id: Option<String>,
    /// The secret material (zeroized on drop, redacted in Debug); `None` for a lone key id.
    pub secret: Option<SecretString>,
    /// Documented example key.
    pub example: bool,
}

/// Finds key id candidates; near misses (wrong length, non-base32 characters without the
/// `EXAMPLE` marker, glued to other alphanumerics) are dropped.
fn key_ids(data: &[u8]) -> (Vec<KeyId>, Vec<usize>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut token_starts = Vec::new();
    let mut b64_starts = Vec::new();
    for m in IDS.find_iter(data) {
        let s = m.start();
        if m.pattern().as_usize() >= FIRST_B64_ID {
            if s == 0 || !is_value(data[s - 1]) {
                b64_starts.push(s);
            }
            continue;
        }
        if m.pattern().as_usize() >= N_ID_PREFIXES {
            if s == 0 || !is_b64(data[s - 1]) {
                token_starts.push(s);
            }
            continue;
        }
        if s > 0 && is_alnum(data[s - 1]) {
            continue;
        }
        let Some(body) = data.get(s..s + 20) else {
            continue;
        };
        if data.get(s + 20).is_some_and(|&c| is_alnum(c)) {
            continue;
        }
        if !body
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            continue;
        }
        // Placeholders such as AKIAXXXXXXXXXXXXXXXX: a random 16-character base32 body has
        // about 12 distinct characters; fewer than 5 is not a real key.
        let mut seen = [false; 256];
        let distinct = body[4..]
            .iter()
            .filter(|&&c| !std::mem::replace(&mut seen[usize::from(c)], true))
            .count();
        if distinct < 5 {
            continue;
        }
        let id = String::from_utf8_lossy(body).into_owned();
        let example = aws::is_example(&id);
        if !example && !aws::is_base32(body) {
            continue;
        }
        let kind = if m.pattern().as_usize() == 0 {
            KeyKind::LongTerm
        } else {
            KeyKind::Temporary
        };
        ids.push(KeyId {
            start: s,
            id,
            kind,
            example,
        });
    }
    (ids, token_starts, b64_starts)
}

/// After a keyword at `end`, skips the rest of the identifier, quotes, spaces and an assignment
/// operator; returns where the value starts. Blanks alone also separate a name from its value
/// (`ENV NAME value`, `aws configure set name value`, `setenv NAME value`); the value must
/// still have a secret's shape, so prose after a name is not taken for one.
fn value_start(data: &[u8], mut i: usize) -> Option<usize> {
    let limit = (i + 64).min(data.len());
    while i < limit && is_ident(data[i]) {
        i += 1;
    }
    let mut saw_op = false;
    let mut saw_blank = false;
    while i < limit {
        match data[i] {
            b' ' | b'\t' => {
                saw_blank = true;
                i += 1;
            }
            b'"' | b'\'' | b'\\' | b'`' | b'[' | b']' | b'>' => i += 1,
            b'=' | b':' => {
                saw_op = true;
                i += 1;
            }
            _ => break,
        }
    }
    (saw_op || saw_blank).then_some(i)
}

fn is_value(c: u8) -> bool {
    is_b64(c) || c == b'='
}

/// Measures runs of value characters (base64 and `=`), remembering the last run measured.
/// Keywords and token prefixes can sit inside one long run (`sessiontoken=` is itself made of
/// value characters): measuring each from scratch rescanned up to 8 KiB per match; with the
/// memory each byte of a run is read once.
#[derive(Default)]
struct Runs {
    /// The last run measured is known to hold value characters over `[start, end)`.
    start: usize,
    end: usize,
    /// `end` is the run's real end (a non-value character or the end of the data).
    complete: bool,
}

impl Runs {
    /// End of the run of value characters at `start`, looking at most `max + 1` characters.
    fn end(&mut self, data: &[u8], start: usize, max: usize) -> usize {
        let limit = (start + max + 1).min(data.len());
        if !(self.start <= start && start <= self.end) {
            *self = Runs {
                start,
                end: start,
                complete: false,
            };
        }
        if !self.complete {
            let mut e = self.end;
            while e < limit && is_value(data[e]) {
                e += 1;
            }
            self.end = e;
            self.complete = e < limit || e == data.len();
        }
        self.end.min(limit)
    }
}

/// Where the value after each credential keyword starts, and whether it names a token.
fn keyword_values(data: &[u8]) -> Vec<(usize, bool)> {
    WORDS
        .find_iter(data)
        .filter_map(|m| {
            value_start(data, m.end()).map(|v| (v, m.pattern().as_usize() >= SECRET_WORDS.len()))
        })
        .collect()
}

fn named_values(
    data: &[u8],
    values: &[(usize, bool)],
    runs: &mut Runs,
) -> (Vec<Secret>, Vec<(usize, usize)>) {
    let mut secrets = Vec::new();
    let mut tokens = Vec::new();
    for &(v, is_token) in values {
        if is_token {
            let e = runs.end(data, v, MAX_TOKEN_LEN);
            if e - v >= MIN_TOKEN_LEN && e - v <= MAX_TOKEN_LEN {
                tokens.push((v, e));
            }
        } else {
            let e = runs.end(data, v, 41);
            if e - v == 40 && looks_like_secret(&data[v..e]) {
                secrets.push(Secret {
                    start: v,
                    end: e,
                    ctx: Ctx::Named,
                    used: false,
                });
            }
        }
    }
    (secrets, tokens)
}

/// Standalone 40-character base64 runs in `data[lo..hi]`.
fn nearby_secrets(data: &[u8], lo: usize, hi: usize, out: &mut Vec<Secret>) {
    let mut i = lo;
    while i < hi {
        if !is_b64(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        // At most 41 characters: enough to tell a 40-character run from a longer one. Following
        // a long run to its end made this quadratic when many key ids sit inside one run.
        let limit = data.len().min(start + 41);
        while i < limit && (is_b64(data[i]) || data[i] == b'=') {
            i += 1;
        }
        let boundary_before = start == 0 || !(is_b64(data[start - 1]) || data[start - 1] == b'=');
        if boundary_before && i - start == 40 && looks_like_secret(&data[start..i]) {
            out.push(Secret {
                start,
                end: i,
                ctx: Ctx::Near,
                used: false,
            });
        }
    }
}

fn text(data: &[u8], a: usize, b: usize) -> String {
    String::from_utf8_lossy(&data[a..b]).into_owned()
}

/// Scans a buffer and returns the credentials in it, paired and classified.
#[must_use]
pub fn scan_bytes(data: &[u8]) -> Vec<Hit> {
    let (ids, token_starts, _) = key_ids(data);
    scan_candidates(data, ids, &token_starts, &keyword_values(data))
}

/// [`scan_bytes`] on candidates already found (one pass of each automaton per buffer).
fn scan_candidates(
    data: &[u8],
    ids: Vec<KeyId>,
    token_starts: &[usize],
    values: &[(usize, bool)],
) -> Vec<Hit> {
    let mut runs = Runs::default();
    let (mut secrets, mut tokens) = named_values(data, values, &mut runs);
    // A prefix inside a token already found is part of it. Named tokens are in keyword order
    // (sorted by start), and prefixes ascend: the furthest end seen so far answers "inside".
    tokens.sort_unstable();
    let named_tokens = tokens.len();
    let mut next_named = 0usize;
    let mut covered_to = 0usize;
    for &s in token_starts {
        while next_named < named_tokens && tokens[next_named].0 <= s {
            covered_to = covered_to.max(tokens[next_named].1);
            next_named += 1;
        }
        let e = runs.end(data, s, MAX_TOKEN_LEN);
        if e - s >= MIN_TOKEN_LEN && s >= covered_to {
            tokens.push((s, e));
            covered_to = e;
        }
    }
    tokens.sort_unstable();
    if ids.is_empty() && secrets.is_empty() && tokens.is_empty() {
        return Vec::new();
    }
    // Unnamed 40-char candidates only around key ids.
    let mut near = Vec::new();
    let mut covered = 0usize;
    for k in &ids {
        let lo = k.start.saturating_sub(PAIR_WINDOW).max(covered);
        let hi = (k.start + 20 + PAIR_WINDOW).min(data.len());
        if lo < hi {
            nearby_secrets(data, lo, hi, &mut near);
        }
        covered = covered.max(hi);
    }
    let named: std::collections::HashSet<usize> = secrets.iter().map(|x| x.start).collect();
    secrets.extend(near.into_iter().filter(|s| !named.contains(&s.start)));
    secrets.sort_by_key(|s| s.start);
    let mut token_used = vec![false; tokens.len()];

    let mut hits = Vec::new();
    for k in &ids {
        let dist = |a: usize| a.abs_diff(k.start);
        // Nearest unused secret in the window, preferring named ones on ties.
        // Secrets are sorted by start: only look at the window around the key id.
        let lo = secrets.partition_point(|s| s.start + PAIR_WINDOW + 20 < k.start);
        let hi = secrets.partition_point(|s| s.start <= k.start + PAIR_WINDOW + 20);
        let best = secrets[lo..hi]
            .iter()
            .enumerate()
            .map(|(i, s)| (i + lo, s))
            .filter(|(_, s)| !s.used && dist(s.start) <= PAIR_WINDOW + 20)
            // A real key id is never the pair of AWS's example secret (pasted next to it in a
            // documented snippet): pairing would report the real id as an example.
            .filter(|(_, s)| {
                k.example || !std::str::from_utf8(&data[s.start..s.end]).is_ok_and(aws::is_example)
            })
            .min_by_key(|(_, s)| (dist(s.start), s.ctx == Ctx::Near))
            .map(|(i, _)| i);
        let secret = best.map(|i| {
            secrets[i].used = true;
            SecretString::new(text(data, secrets[i].start, secrets[i].end))
        });
        let token = if k.kind == KeyKind::Temporary {
            let lo = tokens.partition_point(|t| t.0 + PAIR_WINDOW * 4 < k.start);
            let hi = tokens.partition_point(|t| t.0 <= k.start + PAIR_WINDOW * 4);
            tokens[lo..hi]
                .iter()
                .enumerate()
                .map(|(i, t)| (i + lo, t))
                .filter(|(i, t)| !token_used[*i] && dist(t.0) <= PAIR_WINDOW * 4)
                .min_by_key(|(_, t)| dist(t.0))
                .map(|(i, _)| i)
        } else {
            None
        };
        if let Some(i) = token {
            token_used[i] = true;
        }
        let secret_example = secret.as_ref().is_some_and(|s| aws::is_example(s.expose()));
        let example = k.example || secret_example;
        let (rule, severity, confidence) = if example {
            (rules::EXAMPLE_KEY, Severity::Low, Confidence::High)
        } else {
            match (k.kind, secret.is_some(), token.is_some()) {
                (KeyKind::LongTerm, true, _) => {
                    (rules::ACCESS_KEY, Severity::High, Confidence::High)
                }
                (KeyKind::LongTerm, false, _) => {
                    (rules::ACCESS_KEY_ID, Severity::Medium, Confidence::Medium)
                }
                (KeyKind::Temporary, true, true) => {
                    (rules::TEMPORARY, Severity::Medium, Confidence::High)
                }
                (KeyKind::Temporary, _, _) => (rules::TEMPORARY, Severity::Low, Confidence::Medium),
            }
        };
        hits.push(Hit {
            rule,
            severity,
            confidence,
            offset: k.start,
            access_key_id: Some(k.id.clone()),
            secret,
            example,
        });
    }
    for s in secrets.iter().filter(|s| !s.used && s.ctx == Ctx::Named) {
        let value = text(data, s.start, s.end);
        let example = aws::is_example(&value);
        let (rule, severity) = if example {
            (rules::EXAMPLE_KEY, Severity::Low)
        } else {
            (rules::SECRET_KEY, Severity::High)
        };
        hits.push(Hit {
            rule,
            severity,
            confidence: Confidence::Medium,
            offset: s.start,
            access_key_id: None,
            secret: Some(SecretString::new(value)),
            example,
        });
    }
    for (i, &(a, b)) in tokens.iter().enumerate() {
        if !token_used[i] {
            hits.push(Hit {
                rule: rules::SESSION_TOKEN,
                severity: Severity::Low,
                confidence: Confidence::Medium,
                offset: a,
                access_key_id: None,
                secret: Some(SecretString::new(text(data, a, b))),
                example: false,
            });
        }
    }
    hits.sort_by_key(|h| h.offset);
    hits
}

/// Shortest and longest base64 value decoded (a key id is 28 characters encoded, a session
/// token at most [`MAX_TOKEN_LEN`] decoded).
const MIN_B64: usize = 24;
const MAX_B64: usize = MAX_TOKEN_LEN / 3 * 4 + 4;

/// Scans `data` as written and in the forms that hide credentials from a byte scan: JSON with
/// `\/` escapes (PHP's json_encode writes every `/` so), percent-encoded URLs, and base64 values (Kubernetes
/// Secrets' `data`) that start with an encoded key id or follow a credential name. Offsets
/// are into `data`.
fn scan_views(data: &[u8]) -> Vec<Hit> {
    let (ids, token_starts, b64_starts) = key_ids(data);
    let values = keyword_values(data);
    let b64 = base64_hits(data, b64_starts, &values);
    let escaped = memchr::memmem::find(data, b"\\/").is_some()
        || memchr::memmem::find(data, b"%2F").is_some()
        || memchr::memmem::find(data, b"%2f").is_some();
    let mut hits = if escaped {
        // The view writes `\/` (JSON) and `%2F`/`%2B`/`%3D` (URLs) as the character they
        // stand for; `dropped` holds, in view offsets, one entry per byte left out before the
        // byte now at that offset.
        let mut view = Vec::with_capacity(data.len());
        let mut dropped = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let unescaped = match data[i] {
                b'\\' if data.get(i + 1) == Some(&b'/') => Some((b'/', 2)),
                b'%' => match data.get(i + 1..i + 3) {
                    Some(b"2F" | b"2f") => Some((b'/', 3)),
                    Some(b"2B" | b"2b") => Some((b'+', 3)),
                    Some(b"3D" | b"3d") => Some((b'=', 3)),
                    _ => None,
                },
                _ => None,
            };
            match unescaped {
                Some((c, n)) => {
                    dropped.extend(std::iter::repeat_n(view.len(), n - 1));
                    view.push(c);
                    i += n;
                }
                None => {
                    view.push(data[i]);
                    i += 1;
                }
            }
        }
        let mut h = scan_bytes(&view);
        for x in &mut h {
            x.offset += dropped.partition_point(|&d| d < x.offset);
        }
        h
    } else {
        scan_candidates(data, ids, &token_starts, &values)
    };
    hits.extend(b64);
    hits.sort_by_key(|h| h.offset);
    hits
}

/// Findings inside base64 values. The decoded values are laid out one per line, each after
/// the text that led to it on its source line (so a credential name still names it and an id
/// and its secret on neighbouring lines still pair), and scanned together.
fn base64_hits(data: &[u8], mut starts: Vec<usize>, values: &[(usize, bool)]) -> Vec<Hit> {
    use base64::Engine as _;
    starts.extend(values.iter().map(|&(v, _)| v));
    if starts.is_empty() {
        return Vec::new();
    }
    starts.sort_unstable();
    starts.dedup();
    let mut runs = Runs::default();
    let mut synthetic = Vec::new();
    // (start of the decoded text in `synthetic`, its end, where the encoded value starts)
    let mut segments: Vec<(usize, usize, usize)> = Vec::new();
    for s in starts {
        let e = runs.end(data, s, MAX_B64);
        if e - s < MIN_B64 || e - s > MAX_B64 {
            continue;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&data[s..e]) else {
            continue;
        };
        if !decoded.iter().all(|&c| (0x20..0x7f).contains(&c)) {
            continue;
        }
        let line_start = memchr::memrchr(b'\n', &data[..s]).map_or(0, |p| p + 1);
        synthetic.extend_from_slice(&data[line_start.max(s.saturating_sub(64))..s]);
        let at = synthetic.len();
        synthetic.extend_from_slice(&decoded);
        segments.push((at, synthetic.len(), s));
        synthetic.push(b'\n');
    }
    let mut out = Vec::new();
    for mut h in scan_bytes(&synthetic) {
        // Hits in the copied context were found in `data` itself already.
        let i = segments.partition_point(|seg| seg.1 <= h.offset);
        if let Some(&(_, _, orig)) = segments.get(i).filter(|seg| seg.0 <= h.offset) {
            h.offset = orig;
            out.push(h);
        }
    }
    out
}

/// True when the line holding `offset` is an `aws_access_key_id = …` entry inside an INI
/// section, i.e. a `~/.aws/credentials`- or `config`-style profile.
fn in_credentials_profile(data: &[u8], offset: usize) -> bool {
    let line_start = memchr::memrchr(b'\n', &data[..offset]).map_or(0, |p| p + 1);
    let line = data[line_start..offset].trim_ascii_start();
    let lower: Vec<u8> = line.iter().map(u8::to_ascii_lowercase).collect();
    if !lower.starts_with(b"aws_access_key_id") {
        return false;
    }
    // A profile is short: look for its `[section]` header in the preceding 8 KiB only.
    data[line_start.saturating_sub(8192)..line_start]
        .split(|&c| c == b'\n')
        .any(|l| l.trim_ascii().starts_with(b"[") && l.trim_ascii().ends_with(b"]"))
}

/// Scans `data` (the content of `path`) and returns redacted findings with 1-based positions.
#[must_use]
pub fn scan_text(path: &str, data: &[u8]) -> Vec<Finding> {
    scan_text_limited(path, data, usize::MAX).0
}

/// [`scan_text`] listing at most `limit` findings (the first in the file) and counting the
/// others: each finding costs far more memory than the bytes it was found in.
#[must_use]
pub fn scan_text_limited(path: &str, data: &[u8], limit: usize) -> (Vec<Finding>, usize) {
    let mut hits = scan_views(data);
    let not_listed = hits.len().saturating_sub(limit);
    hits.truncate(limit);
    let mut out = Vec::with_capacity(hits.len());
    let mut line = 1usize;
    let mut pos = 0usize;
    // Characters between the start of the current line and `pos`: counted on from the last
    // finding, not from the line start, so a long minified line stays linear.
    let mut chars_before = 0usize;
    for h in hits {
        let gap = &data[pos..h.offset];
        line += memchr::memchr_iter(b'\n', gap).count();
        let counted = match memchr::memrchr(b'\n', gap) {
            Some(p) => {
                chars_before = 0;
                &gap[p + 1..]
            }
            None => gap,
        };
        chars_before += String::from_utf8_lossy(counted).chars().count();
        pos = h.offset;
        let column = chars_before + 1;
        let mut rule = h.rule;
        if rule == rules::ACCESS_KEY && in_credentials_profile(data, h.offset) {
            rule = rules::CREDENTIALS_FILE;
        }
        out.push(hit_to_finding(path, line, column, rule, &h));
    }
    (out, not_listed)
}

fn hit_to_finding(path: &str, line: usize, column: usize, rule: &str, h: &Hit) -> Finding {
    let account_id = h
        .access_key_id
        .as_deref()
        .and_then(aws::account_id_from_key_id);
    let (redacted, fp) = match (&h.secret, &h.access_key_id) {
        (Some(s), _) => (Some(redact(s.expose())), fingerprint(s.expose().as_bytes())),
        (None, Some(id)) => (Some(redact(id)), fingerprint(id.as_bytes())),
        (None, None) => (None, fingerprint(b"")),
    };
    let what = rules::info(rule).map_or("credential", |r| r.name);
    let mut message = match &h.access_key_id {
        Some(id) => format!("{what}: {id}"),
        None => format!("{what}: {}", redacted.as_deref().unwrap_or("")),
    };
    if let Some(a) = &account_id {
        message.push_str(&format!(" (account {a})"));
    }
    if h.secret.is_some() && h.access_key_id.is_some() {
        message.push_str(&format!(
            " with its secret {}",
            redacted.as_deref().unwrap_or("")
        ));
    }
    Finding {
        rule: rule.to_string(),
        severity: h.severity,
        confidence: Some(h.confidence),
        path: path.to_string(),
        line,
        column,
        message,
        why: None,
        fix: rules::info(rule).map(|r| r.fix.to_string()),
        commit: None,
        commits: Vec::new(),
        redacted,
        fingerprint: fp,
        access_key_id: h.access_key_id.clone(),
        account_id,
        example: h.example,
    }
}
