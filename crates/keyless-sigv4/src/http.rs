//! A small, bounded parser for one raw HTTP/1.1 request (for `keyless sigv4 check` and the
//! test suites' `.req` files). Not a server parser: it takes the whole request as bytes.

use crate::SigV4Error;
use crate::request::HttpRequest;

/// Largest raw request accepted by default (headers and body).
pub const MAX_RAW_REQUEST: usize = 16 * 1024 * 1024;
/// Largest header section.
pub const MAX_RAW_HEAD: usize = 64 * 1024;

/// One parsed raw request, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// Method.
    pub method: String,
    /// Raw path (before `?`).
    pub path: String,
    /// Raw query (after `?`, empty if none).
    pub query: String,
    /// Headers in order; obs-fold continuation lines joined with a space.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body (HTTP `Transfer-Encoding: chunked` already removed; `aws-chunked` kept).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// Header references for [`HttpRequest::headers`].
    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// An [`HttpRequest`] over this request and `headers` (from [`RawRequest::header_refs`]).
    pub fn as_http<'a>(&'a self, headers: &'a [(&'a str, &'a [u8])]) -> HttpRequest<'a> {
        HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers,
        }
    }
}

fn bad(msg: &str) -> SigV4Error {
    SigV4Error::MalformedHttp(msg.to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one raw HTTP/1.1 request. Lines may end in CRLF or LF. The request target may
/// contain spaces (the AWS suites use `GET /example space/ HTTP/1.1`).
pub fn parse_raw_http(raw: &[u8], max_len: usize) -> Result<RawRequest, SigV4Error> {
    if raw.len() > max_len {
        return Err(SigV4Error::TooLarge {
            what: "HTTP request",
            limit: max_len,
        });
    }
    let (head, body) = match (find(raw, b"\r\n\r\n"), find(raw, b"\n\n")) {
        (Some(a), Some(b)) if b + 1 < a => (&raw[..b], &raw[b + 2..]),
        (Some(a), _) => (&raw[..a], &raw[a + 4..]),
        (None, Some(b)) => (&raw[..b], &raw[b + 2..]),
        (None, None) => (raw, &b""[..]),
    };
    if head.len() > MAX_RAW_HEAD {
        return Err(SigV4Error::TooLarge {
            what: "HTTP header section",
            limit: MAX_RAW_HEAD,
        });
    }
    let head = std::str::from_utf8(head).map_err(|_| bad("the header section is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, rest) = request_line
        .split_once(' ')
        .ok_or_else(|| bad("the request line must be 'METHOD target HTTP/1.1'"))?;
    let (target, version) = rest
        .rsplit_once(' ')
        .ok_or_else(|| bad("the request line must be 'METHOD target HTTP/1.1'"))?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("the method must be upper-case letters"));
    }
    if !version.starts_with("HTTP/") {
        return Err(bad("the request line must end with the HTTP version"));
    }
    if !target.starts_with('/') {
        return Err(bad("the request target must be a path starting with '/'"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.last_mut() else {
                return Err(bad("a continuation line before any header"));
            };
            last.1.push(b' ');
            last.1.extend_from_slice(line.trim().as_bytes());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("a header line has no ':'"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("a header name is empty or contains spaces"));
        }
        if headers.len() >= crate::request::MAX_HEADERS {
            return Err(SigV4Error::TooLarge {
                what: "header count",
                limit: crate::request::MAX_HEADERS,
            });
        }
        headers.push((
            name.to_owned(),
            value.trim_start_matches([' ', '\t']).as_bytes().to_vec(),
        ));
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(n))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        decode_http_chunked(body)?
    } else if let Some(cl) = get("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| bad("Content-Length is not a number"))?;
        if body.len() < n {
            return Err(bad("the body is shorter than Content-Length"));
        }
        body[..n].to_vec()
    } else {
        body.to_vec()
    };
    Ok(RawRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    })
}

/// Removes HTTP/1.1 `Transfer-Encoding: chunked` framing (chunk extensions ignored).
fn decode_http_chunked(mut b: &[u8]) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::new();
    loop {
        let end = find(b, b"\r\n").ok_or_else(|| bad("truncated HTTP chunk header"))?;
        let line = std::str::from_utf8(&b[..end]).map_err(|_| bad("bad HTTP chunk header"))?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad("bad HTTP chunk size"))?;
        b = &b[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 || &b[size..size + 2] != b"\r\n" {
            return Err(bad("truncated HTTP chunk"));
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}
