//! Step one: parse the signature out of a request (header or presigned form).

use std::borrow::Cow;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::SigV4Error;
use crate::crypto::Signature;
use crate::encode::{QueryParam, ServiceRules, parse_query};

/// Bound on the `Authorization` header length.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;
/// Bound on the number of request headers considered.
pub const MAX_HEADERS: usize = 200;
/// Bound on the raw query string length.
pub const MAX_QUERY_LEN: usize = 64 * 1024;
/// Bound on the raw path length.
pub const MAX_PATH_LEN: usize = 16 * 1024;
/// Bound on the number of signed headers.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// Bound on the session token length.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest presign lifetime AWS accepts (one week).
pub const MAX_PRESIGN_EXPIRES: u32 = 604_800;

/// An HTTP request as the server received it.
///
/// `path` and `query` are raw (as on the wire, still percent-encoded; `query` without the `?`).
/// `headers` are all request headers in order of arrival (names in any case; repeated names
/// allowed). Under HTTP/2, pass `:authority` as a `host` header.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// Method, e.g. `GET`.
    pub method: &'a str,
    /// Raw path, e.g. `/bkt/a%20b`.
    pub path: &'a str,
    /// Raw query without `?`, e.g. `list-type=2&prefix=a%2Fb`.
    pub query: &'a str,
    /// Headers as received.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> HttpRequest<'a> {
    /// All values of header `name` (case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first value of header `name` as trimmed UTF-8, if present and valid.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header_values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// The signing algorithm named by the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `AWS4-HMAC-SHA256` (SigV4).
    HmacSha256,
    /// `AWS4-ECDSA-P256-SHA256` (SigV4a).
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "AWS4-HMAC-SHA256",
            Algorithm::EcdsaP256Sha256 => "AWS4-ECDSA-P256-SHA256",
        }
    }

    fn parse(s: &str) -> Result<Self, SigV4Error> {
        match s {
            "AWS4-HMAC-SHA256" => Ok(Algorithm::HmacSha256),
            "AWS4-ECDSA-P256-SHA256" => Ok(Algorithm::EcdsaP256Sha256),
            other => Err(SigV4Error::UnsupportedAlgorithm(truncate(other, 64))),
        }
    }
}

/// The credential scope `date/region/service/aws4_request` (SigV4a has no region).
///
/// The parts borrow the `Authorization` header they came from; those of a presigned query
/// string are percent-decoded and so owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// `yyyymmdd`.
    pub date: Cow<'a, str>,
    /// Region (empty for SigV4a, whose regions are in `X-Amz-Region-Set`).
    pub region: Cow<'a, str>,
    /// Service, e.g. `sts`, `s3`.
    pub service: Cow<'a, str>,
}

impl CredentialScope<'_> {
    /// The same scope, owning its parts.
    pub fn into_owned(self) -> CredentialScope<'static> {
        CredentialScope {
            date: Cow::Owned(self.date.into_owned()),
            region: Cow::Owned(self.region.into_owned()),
            service: Cow::Owned(self.service.into_owned()),
        }
    }

    /// The scope as it appears in the string to sign.
    pub fn to_scope_string(&self) -> String {
        if self.region.is_empty() {
            format!("{}/{}/aws4_request", self.date, self.service)
        } else {
            format!(
                "{}/{}/{}/aws4_request",
                self.date, self.region, self.service
            )
        }
    }
}

/// How the payload is bound into the signature (`x-amz-content-sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// A hex SHA-256 of the body was declared.
    Sha256(String),
    /// Nothing declared: the body hash is computed by the verifier (boto3 on STS/IAM).
    Computed,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: signed aws-chunked body.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and a signed trailer.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: unsigned chunks with a trailer.
    StreamingUnsignedTrailer,
    /// `STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]` (SigV4a streaming; refused).
    StreamingEcdsa(String),
}

impl PayloadMode {
    fn parse(v: &str) -> Result<Self, SigV4Error> {
        Ok(match v {
            "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::StreamingSigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::StreamingSignedTrailer,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsignedTrailer,
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
            | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
                PayloadMode::StreamingEcdsa(v.to_owned())
            }
            h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                PayloadMode::Sha256(h.to_owned())
            }
            other => {
                return Err(SigV4Error::Malformed(format!(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… value or a hex SHA-256, got '{}'",
                    truncate(other, 80)
                )));
            }
        })
    }

    /// True for the aws-chunked modes.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            PayloadMode::StreamingSigned
                | PayloadMode::StreamingSignedTrailer
                | PayloadMode::StreamingUnsignedTrailer
                | PayloadMode::StreamingEcdsa(_)
        )
    }
}

/// The signature carried by a request.
#[derive(Debug, Clone)]
pub(crate) enum SigBytes {
    Hmac(Signature),
    Ecdsa(Vec<u8>),
}

/// A parsed, not yet verified, signed request. Obtain one with [`parse`].
///
/// Values taken from headers borrow the request; those of a presigned query string are
/// percent-decoded and so owned.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub(crate) req: HttpRequest<'a>,
    pub(crate) algorithm: Algorithm,
    pub(crate) access_key_id: Cow<'a, str>,
    pub(crate) scope: CredentialScope<'a>,
    pub(crate) amz_date: Cow<'a, str>,
    pub(crate) time: OffsetDateTime,
    pub(crate) signed_headers: Vec<Cow<'a, str>>,
    pub(crate) signature: SigBytes,
    pub(crate) security_token: Option<Cow<'a, str>>,
    pub(crate) token_in_signed_headers: bool,
    pub(crate) presign_expires: Option<u32>,
    pub(crate) payload: PayloadMode,
    pub(crate) double_encode: bool,
    pub(crate) normalize: bool,
    pub(crate) query: Vec<QueryParam>,
    pub(crate) region_set: Option<String>,
}

impl<'a> SignedRequest<'a> {
    /// The access key id from the credential.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
    /// The session token (`X-Amz-Security-Token` header or query), if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }
    /// The credential scope.
    pub fn scope(&self) -> &CredentialScope<'a> {
        &self.scope
    }
    /// How the body is bound.
    pub fn payload(&self) -> &PayloadMode {
        &self.payload
    }
    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    /// The request time (`X-Amz-Date`, or `Date`).
    pub fn request_time(&self) -> OffsetDateTime {
        self.time
    }
    /// `X-Amz-Date` as signed (ISO 8601 basic).
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }
    /// True for the presigned (query) form.
    pub fn is_presigned(&self) -> bool {
        self.presign_expires.is_some()
    }
    /// `X-Amz-Expires` of a presigned request.
    pub fn presign_expires_secs(&self) -> Option<u32> {
        self.presign_expires
    }
    /// The lower-case signed header names, as listed.
    pub fn signed_headers(&self) -> &[Cow<'a, str>] {
        &self.signed_headers
    }
    /// `X-Amz-Region-Set` of a SigV4a request.
    pub fn region_set(&self) -> Option<&str> {
        self.region_set.as_deref()
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parses `yyyymmddThhmmssZ`.
pub fn parse_amz_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    let bad = || {
        SigV4Error::Malformed(format!(
            "invalid X-Amz-Date '{}': expected yyyyMMddTHHmmssZ",
            truncate(s, 40)
        ))
    };
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, SigV4Error> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(num(0..4)?).map_err(|_| bad())?;
    let month = Month::try_from(u8::try_from(num(4..6)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let day = u8::try_from(num(6..8)?).map_err(|_| bad())?;
    let hour = u8::try_from(num(9..11)?).map_err(|_| bad())?;
    let min = u8::try_from(num(11..13)?).map_err(|_| bad())?;
    let sec = u8::try_from(num(13..15)?).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let t = Time::from_hms(hour, min, sec).map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, t).assume_utc())
}

/// Formats a time as `yyyymmddThhmmssZ`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_http_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).map_err(|_| {
        SigV4Error::Malformed(format!(
            "invalid Date header '{}': expected an RFC 1123 date or use X-Amz-Date",
            truncate(s, 60)
        ))
    })
}

fn parse_credential(
    cred: &str,
    algorithm: Algorithm,
) -> Result<(&str, CredentialScope<'_>), SigV4Error> {
    let malformed = || {
        SigV4Error::Malformed(format!(
            "the Credential '{}' must be <access key id>/<yyyyMMdd>/<region>/<service>/aws4_request",
            truncate(cred, 120)
        ))
    };
    // Split from the right: an access key id with a '/' is then refused by the character check.
    let mut parts = cred.rsplitn(5, '/');
    let mut next = || parts.next().ok_or_else(malformed);
    if next()? != "aws4_request" {
        return Err(malformed());
    }
    let service = next()?;
    let (key, date, region) = match algorithm {
        Algorithm::HmacSha256 => {
            let region = next()?;
            let date = next()?;
            (next()?, date, region)
        }
        // key/date/service/aws4_request: no region.
        Algorithm::EcdsaP256Sha256 => {
            let date = next()?;
            let key = match (next(), next()) {
                (Ok(k), Err(_)) => k,
                _ => return Err(malformed()),
            };
            (key, date, "")
        }
    };
    if key.is_empty()
        || key.len() > 128
        || !key.bytes().all(|b| b.is_ascii_alphanumeric())
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || service.is_empty()
        || service.len() > 64
        || region.len() > 64
        || (algorithm == Algorithm::HmacSha256 && region.is_empty())
    {
        return Err(malformed());
    }
    Ok((
        key,
        CredentialScope {
            date: Cow::Borrowed(date),
            region: Cow::Borrowed(region),
            service: Cow::Borrowed(service),
        },
    ))
}

fn parse_signed_headers(s: &str) -> Result<Vec<Cow<'_, str>>, SigV4Error> {
    let mut out = Vec::with_capacity(s.bytes().filter(|b| *b == b';').count() + 1);
    for h in s.split(';') {
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
        {
            return Err(SigV4Error::Malformed(format!(
                "SignedHeaders '{}' must be lower-case header names separated by ';'",
                truncate(s, 120)
            )));
        }
        if out.len() >= MAX_SIGNED_HEADERS {
            return Err(SigV4Error::TooLarge {
                what: "SignedHeaders",
                limit: MAX_SIGNED_HEADERS,
            });
        }
        out.push(Cow::Borrowed(h));
    }
    if !out.iter().any(|h| h == "host") {
        return Err(SigV4Error::Malformed(format!(
            "SignedHeaders '{}' must include 'host'",
            truncate(s, 120)
        )));
    }
    Ok(out)
}

fn parse_signature(s: &str, algorithm: Algorithm) -> Result<SigBytes, SigV4Error> {
    match algorithm {
        Algorithm::HmacSha256 => Ok(SigBytes::Hmac(Signature::from_hex(s)?)),
        Algorithm::EcdsaP256Sha256 => {
            if s.len() > 160 || !s.len().is_multiple_of(2) {
                return Err(SigV4Error::Malformed(
                    "the SigV4a signature must be a hex DER ECDSA signature".to_owned(),
                ));
            }
            hex::decode(s)
                .map(SigBytes::Ecdsa)
                .map_err(|_| SigV4Error::Malformed("the SigV4a signature is not hex".to_owned()))
        }
    }
}

/// The components of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'h> {
    /// Algorithm name as sent.
    pub algorithm: &'h str,
    /// `Credential=` value.
    pub credential: &'h str,
    /// `SignedHeaders=` value.
    pub signed_headers: &'h str,
    /// `Signature=` value.
    pub signature: &'h str,
}

/// Splits an `Authorization` header value into its components (no semantic checks).
///
/// Accepts `, ` or `,` between components. Missing components give
/// [`SigV4Error::Incomplete`] naming them; unknown or repeated ones [`SigV4Error::Malformed`].
pub fn parse_authorization_header(value: &str) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(SigV4Error::TooLarge {
            what: "Authorization header",
            limit: MAX_AUTHORIZATION_LEN,
        });
    }
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').ok_or_else(|| {
        SigV4Error::Incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"
                .to_owned(),
        )
    })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for comp in rest.split(',') {
        let comp = comp.trim();
        if comp.is_empty() {
            continue;
        }
        let (k, v) = comp.split_once('=').ok_or_else(|| {
            SigV4Error::Malformed(format!(
                "Authorization component '{}' is not key=value",
                truncate(comp, 60)
            ))
        })?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(SigV4Error::Malformed(format!(
                    "unknown Authorization component '{}'",
                    truncate(other, 40)
                )));
            }
        };
        if slot.replace(v.trim()).is_some() {
            return Err(SigV4Error::Malformed(format!(
                "Authorization component '{k}' is repeated"
            )));
        }
    }
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Credential");
    }
    if signed_headers.is_none() {
        missing.push("SignedHeaders");
    }
    if signature.is_none() {
        missing.push("Signature");
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(AuthorizationHeader {
            algorithm,
            credential,
            signed_headers,
            signature,
        }),
        _ => Err(SigV4Error::Incomplete(format!(
            "Authorization header requires {} parameter{}",
            missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() > 1 { "s" } else { "" }
        ))),
    }
}

fn utf8_param(p: &QueryParam) -> Result<&str, SigV4Error> {
    std::str::from_utf8(&p.raw_value).map_err(|_| {
        SigV4Error::QueryMalformed(format!(
            "query parameter {} is not valid UTF-8",
            String::from_utf8_lossy(&p.raw_name)
        ))
    })
}

/// Step one: finds the signature of `req` (the `Authorization` header, else presigned query
/// parameters) and parses it. Nothing is verified yet; the caller uses
/// [`SignedRequest::access_key_id`] and [`SignedRequest::security_token`] to find the secret,
/// then calls [`crate::verify`].
pub fn parse<'a>(
    req: &HttpRequest<'a>,
    rules: ServiceRules,
) -> Result<SignedRequest<'a>, SigV4Error> {
    if req.headers.len() > MAX_HEADERS {
        return Err(SigV4Error::TooLarge {
            what: "header count",
            limit: MAX_HEADERS,
        });
    }
    if req.query.len() > MAX_QUERY_LEN {
        return Err(SigV4Error::TooLarge {
            what: "query string",
            limit: MAX_QUERY_LEN,
        });
    }
    if req.path.len() > MAX_PATH_LEN {
        return Err(SigV4Error::TooLarge {
            what: "path",
            limit: MAX_PATH_LEN,
        });
    }
    let query = parse_query(req.query)?;
    let mut auth_values = req.header_values("authorization");
    let auth = auth_values.next();
    if auth_values.next().is_some() {
        return Err(SigV4Error::Malformed(
            "more than one Authorization header".to_owned(),
        ));
    }
    let has_query_sig = query
        .iter()
        .any(|p| p.raw_name == b"X-Amz-Algorithm" || p.raw_name == b"X-Amz-Signature");
    match auth {
        Some(a) => {
            if has_query_sig {
                return Err(SigV4Error::Malformed(
                    "only one auth mechanism allowed: found both an Authorization header and X-Amz-Algorithm/X-Amz-Signature query parameters".to_owned(),
                ));
            }
            let a = std::str::from_utf8(a).map_err(|_| {
                SigV4Error::Malformed("the Authorization header is not valid UTF-8".to_owned())
            })?;
            parse_header_form(req, rules, a, query)
        }
        None if has_query_sig => parse_presigned(req, rules, query),
        None => Err(SigV4Error::MissingAuthentication),
    }
}

fn payload_from_header(req: &HttpRequest<'_>) -> Result<Option<PayloadMode>, SigV4Error> {
    match req.header_values("x-amz-content-sha256").next() {
        None => Ok(None),
        Some(v) => {
            let v = std::str::from_utf8(v).map_err(|_| {
                SigV4Error::Malformed("x-amz-content-sha256 is not UTF-8".to_owned())
            })?;
            PayloadMode::parse(v.trim()).map(Some)
        }
    }
}

fn token_from_header<'a>(req: &HttpRequest<'a>) -> Result<Option<Cow<'a, str>>, SigV4Error> {
    match req.header_values("x-amz-security-token").next() {
        None => Ok(None),
        Some(v) => {
            if v.len() > MAX_TOKEN_LEN {
                return Err(SigV4Error::TooLarge {
                    what: "X-Amz-Security-Token",
                    limit: MAX_TOKEN_LEN,
                });
            }
            let s = std::str::from_utf8(v).map_err(|_| {
                SigV4Error::Malformed("X-Amz-Security-Token is not UTF-8".to_owned())
            })?;
            Ok(Some(Cow::Borrowed(s.trim())))
        }
    }
}

fn parse_header_form<'a>(
    req: &HttpRequest<'a>,
    rules: ServiceRules,
    auth: &'a str,
    query: Vec<QueryParam>,
) -> Result<SignedRequest<'a>, SigV4Error> {
    let h = parse_authorization_header(auth)?;
    let algorithm = Algorithm::parse(h.algorithm)?;
    let (access_key_id, scope) = parse_credential(h.credential, algorithm)?;
    let signed_headers = parse_signed_headers(h.signed_headers)?;
    let signature = parse_signature(h.signature, algorithm)?;
    let (amz_date, time) = match req.header_str("x-amz-date") {
        Some(d) => (Cow::Borrowed(d), parse_amz_date(d)?),
        None => match req.header_str("date") {
            Some(d) => {
                let t = parse_http_date(d)?;
                (Cow::Owned(format_amz_date(t)), t)
            }
            None => {
                return Err(SigV4Error::Incomplete(
                    "Authorization requires an X-Amz-Date or Date header".to_owned(),
                ));
            }
        },
    };
    let security_token = token_from_header(req)?;
    let token_in_signed_headers = signed_headers.iter().any(|h| h == "x-amz-security-token");
    let payload = payload_from_header(req)?.unwrap_or(PayloadMode::Computed);
    let (double_encode, normalize) = rules.resolve(&scope.service);
    let region_set = req.header_str("x-amz-region-set").map(str::to_owned);
    Ok(SignedRequest {
        req: *req,
        algorithm,
        access_key_id: Cow::Borrowed(access_key_id),
        scope,
        amz_date,
        time,
        signed_headers,
        signature,
        security_token,
        token_in_signed_headers,
        presign_expires: None,
        payload,
        double_encode,
        normalize,
        query,
        region_set,
    })
}

fn parse_presigned<'a>(
    req: &HttpRequest<'a>,
    rules: ServiceRules,
    query: Vec<QueryParam>,
) -> Result<SignedRequest<'a>, SigV4Error> {
    let get = |name: &str| -> Result<Option<&str>, SigV4Error> {
        let mut it = query.iter().filter(|p| p.raw_name == name.as_bytes());
        let first = it.next();
        if it.next().is_some() {
            return Err(SigV4Error::QueryMalformed(format!(
                "query parameter {name} is repeated"
            )));
        }
        first.map(utf8_param).transpose()
    };
    let mut missing = Vec::new();
    let alg = get("X-Amz-Algorithm")?;
    let cred = get("X-Amz-Credential")?;
    let date = get("X-Amz-Date")?;
    let sh = get("X-Amz-SignedHeaders")?;
    let sig = get("X-Amz-Signature")?;
    let expires = get("X-Amz-Expires")?;
    for (n, v) in [
        ("X-Amz-Algorithm", alg),
        ("X-Amz-Credential", cred),
        ("X-Amz-Signature", sig),
        ("X-Amz-Date", date),
        ("X-Amz-SignedHeaders", sh),
        ("X-Amz-Expires", expires),
    ] {
        if v.is_none() {
            missing.push(n);
        }
    }
    let (Some(alg), Some(cred), Some(date), Some(sh), Some(sig), Some(expires)) =
        (alg, cred, date, sh, sig, expires)
    else {
        return Err(SigV4Error::QueryMalformed(format!(
            "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; missing: {}",
            missing.join(", ")
        )));
    };
    let algorithm = Algorithm::parse(alg)?;
    let (access_key_id, scope) =
        parse_credential(cred, algorithm).map_err(|e| SigV4Error::QueryMalformed(e.to_string()))?;
    let access_key_id = Cow::Owned(access_key_id.to_owned());
    let scope = scope.into_owned();
    let signed_headers: Vec<Cow<'a, str>> = parse_signed_headers(sh)
        .map_err(|e| SigV4Error::QueryMalformed(e.to_string()))?
        .into_iter()
        .map(|h| Cow::Owned(h.into_owned()))
        .collect();
    let signature =
        parse_signature(sig, algorithm).map_err(|e| SigV4Error::QueryMalformed(e.to_string()))?;
    let time = parse_amz_date(date).map_err(|e| SigV4Error::QueryMalformed(e.to_string()))?;
    let expires: u32 = if !expires.is_empty()
        && expires.len() <= 10
        && expires.bytes().all(|b| b.is_ascii_digit())
    {
        expires.parse().unwrap_or(u32::MAX)
    } else {
        return Err(SigV4Error::QueryMalformed(format!(
            "X-Amz-Expires should be a number, got '{}'",
            truncate(expires, 20)
        )));
    };
    if expires == 0 || expires > MAX_PRESIGN_EXPIRES {
        return Err(SigV4Error::QueryMalformed(format!(
            "X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES} seconds (one week), got {expires}"
        )));
    }
    let security_token = match get("X-Amz-Security-Token")? {
        Some(t) if t.len() > MAX_TOKEN_LEN => {
            return Err(SigV4Error::TooLarge {
                what: "X-Amz-Security-Token",
                limit: MAX_TOKEN_LEN,
            });
        }
        Some(t) => Some(Cow::Owned(t.to_owned())),
        None => token_from_header(req)?,
    };
    // A token in the query is covered by the canonical query string (when the signature was
    // made with it); one sent in a header only if that header is signed.
    let token_in_signed_headers = get("X-Amz-Security-Token")?.is_some()
        || signed_headers.iter().any(|h| h == "x-amz-security-token");
    let payload = match get("X-Amz-Content-Sha256")? {
        Some(v) => Some(PayloadMode::parse(v)?),
        None => payload_from_header(req)?,
    };
    let (double_encode, normalize) = rules.resolve(&scope.service);
    let payload = payload.unwrap_or(if double_encode {
        PayloadMode::Computed
    } else {
        PayloadMode::Unsigned
    });
    let region_set = get("X-Amz-Region-Set")?.map(str::to_owned);
    Ok(SignedRequest {
        req: *req,
        algorithm,
        access_key_id,
        scope,
        amz_date: Cow::Owned(date.to_owned()),
        time,
        signed_headers,
        signature,
        security_token,
        token_in_signed_headers,
        presign_expires: Some(expires),
        payload,
        double_encode,
        normalize,
        query,
        region_set,
    })
}
