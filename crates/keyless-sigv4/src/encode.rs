//! URI encoding and the canonical path and query rules.

/// How the canonical URI is derived from the request path.
///
/// AWS uses two rules. S3 signs the path as sent, encoded once, and does not remove dot
/// segments or repeated slashes (`a//b` and `a/./b` are distinct keys). Every other service
/// URI-encodes the (already encoded) path a second time and normalizes it (dot segments
/// removed, repeated slashes collapsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRules {
    /// Pick [`ServiceRules::S3`] when the credential scope's service is `s3`,
    /// `s3-object-lambda` or `s3express`, else [`ServiceRules::Standard`].
    FromScope,
    /// S3: single encoding, no normalization.
    S3,
    /// All other services: double encoding and path normalization.
    Standard,
    /// Explicit choice (used by the test suites, which vary normalization per case).
    Custom {
        /// Encode the path as sent once more (`%` becomes `%25`).
        double_encode: bool,
        /// Remove dot segments and collapse repeated slashes.
        normalize: bool,
    },
}

impl ServiceRules {
    /// Resolves [`ServiceRules::FromScope`] for `service`; returns `(double_encode, normalize)`.
    pub fn resolve(self, service: &str) -> (bool, bool) {
        match self {
            ServiceRules::FromScope => {
                if matches!(service, "s3" | "s3-object-lambda" | "s3express") {
                    (false, false)
                } else {
                    (true, true)
                }
            }
            ServiceRules::S3 => (false, false),
            ServiceRules::Standard => (true, true),
            ServiceRules::Custom {
                double_encode,
                normalize,
            } => (double_encode, normalize),
        }
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved characters: the only ones SigV4 leaves unencoded.
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[inline]
fn push_pct(out: &mut Vec<u8>, b: u8) {
    out.push(b'%');
    out.push(HEX_UPPER[usize::from(b >> 4)]);
    out.push(HEX_UPPER[usize::from(b & 0x0f)]);
}

/// SigV4 URI encoding of `input` into `out`; `/` is kept when `keep_slash`.
pub fn uri_encode_into(out: &mut Vec<u8>, input: &[u8], keep_slash: bool) {
    for &b in input {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            push_pct(out, b);
        }
    }
}

/// SigV4 URI encoding of `input` as a `String`.
pub fn uri_encode(input: &[u8], keep_slash: bool) -> String {
    let mut out = Vec::with_capacity(input.len() + 8);
    uri_encode_into(&mut out, input, keep_slash);
    // Only ASCII is produced.
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `input` (`+` stays `+`); an invalid `%` sequence is kept literally.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex_val),
                input.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Removes dot segments and collapses repeated slashes (non-S3 normalization).
fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let trailing = path.ends_with(b"/") || path.ends_with(b"/.") || path.ends_with(b"/..");
    let mut out = Vec::with_capacity(path.len() + 1);
    out.push(b'/');
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

/// Appends the canonical URI of the raw (as sent, still percent-encoded) `path` to `out`.
pub fn canonical_uri_into(out: &mut Vec<u8>, path: &[u8], double_encode: bool, normalize: bool) {
    if path.is_empty() {
        out.push(b'/');
        return;
    }
    let normalized;
    let p: &[u8] = if normalize {
        normalized = normalize_path(path);
        &normalized
    } else {
        path
    };
    if double_encode {
        uri_encode_into(out, p, true);
        return;
    }
    // Single encoding: keep valid percent-escapes (upper-cased; decoded when they encode an
    // unreserved byte), encode everything else that is not unreserved or '/'.
    let mut i = 0;
    while i < p.len() {
        let b = p[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                p.get(i + 1).copied().and_then(hex_val),
                p.get(i + 2).copied().and_then(hex_val),
            )
        {
            let d = (h << 4) | l;
            if is_unreserved(d) {
                out.push(d);
            } else {
                push_pct(out, d);
            }
            i += 3;
            continue;
        }
        if is_unreserved(b) || b == b'/' {
            out.push(b);
        } else {
            push_pct(out, b);
        }
        i += 1;
    }
}

/// One query parameter, encoded canonically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// Canonically encoded name.
    pub name: String,
    /// Canonically encoded value.
    pub value: String,
    /// Decoded name (for lookups like `X-Amz-Signature`).
    pub raw_name: Vec<u8>,
    /// Decoded value.
    pub raw_value: Vec<u8>,
}

/// Maximum number of query parameters accepted.
pub const MAX_QUERY_PARAMS: usize = 1000;

/// Parses a raw query string (without `?`) into canonically encoded, sorted parameters.
///
/// Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty value.
pub fn parse_query(query: &str) -> Result<Vec<QueryParam>, crate::SigV4Error> {
    let mut params = Vec::new();
    for piece in query.as_bytes().split(|&b| b == b'&') {
        if piece.is_empty() {
            continue;
        }
        if params.len() >= MAX_QUERY_PARAMS {
            return Err(crate::SigV4Error::TooLarge {
                what: "query parameter count",
                limit: MAX_QUERY_PARAMS,
            });
        }
        let (k, v) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        let raw_name = percent_decode(k);
        let raw_value = percent_decode(v);
        params.push(QueryParam {
            name: uri_encode(&raw_name, false),
            value: uri_encode(&raw_value, false),
            raw_name,
            raw_value,
        });
    }
    params.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(path: &str, d: bool, n: bool) -> String {
        let mut out = Vec::new();
        canonical_uri_into(&mut out, path.as_bytes(), d, n);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn s3_keeps_path_and_encodes_once() {
        assert_eq!(
            canon("/bkt/a%20b/c%2Bd.txt", false, false),
            "/bkt/a%20b/c%2Bd.txt"
        );
        assert_eq!(
            canon("/bkt/a b/c+d.txt", false, false),
            "/bkt/a%20b/c%2Bd.txt"
        );
        assert_eq!(canon("/bkt//a/./b", false, false), "/bkt//a/./b");
        assert_eq!(canon("/%7e%2f", false, false), "/~%2F");
        assert_eq!(canon("/%zz", false, false), "/%25zz");
    }

    #[test]
    fn standard_double_encodes_and_normalizes() {
        assert_eq!(canon("/a%20b", true, true), "/a%2520b");
        assert_eq!(canon("//example//", true, true), "/example/");
        assert_eq!(canon("/example/..", true, true), "/");
        assert_eq!(canon("/./", true, true), "/");
        assert_eq!(canon("/a/b/../c/./d", true, true), "/a/c/d");
        assert_eq!(canon("", true, true), "/");
        assert_eq!(canon("/../../..", true, true), "/");
    }

    #[test]
    fn query_sorted_and_reencoded() {
        let p = parse_query("b=2&a=&c&a=1&&x=%7e+%2f").unwrap();
        let s: Vec<String> = p
            .iter()
            .map(|p| format!("{}={}", p.name, p.value))
            .collect();
        assert_eq!(s, ["a=", "a=1", "b=2", "c=", "x=~%2B%2F"]);
    }

    #[test]
    fn query_count_bounded() {
        let q = "a=1&".repeat(MAX_QUERY_PARAMS + 1);
        assert_eq!(
            parse_query(&q),
            Err(crate::SigV4Error::TooLarge {
                what: "query parameter count",
                limit: MAX_QUERY_PARAMS
            })
        );
    }
}
