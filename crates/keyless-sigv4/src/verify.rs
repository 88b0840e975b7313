//! Step two: canonicalise and verify.

use std::borrow::Cow;

use keyless_types::SecretString;
use ring::digest;
use time::{Duration, OffsetDateTime};

use crate::SigV4Error;
use crate::chunked::StreamSeed;
use crate::crypto::{Signature, SigningKey, sha256_hex};
use crate::encode::canonical_uri_into;
use crate::request::{
    Algorithm, CredentialScope, PayloadMode, SigBytes, SignedRequest, format_amz_date,
};

/// The body as the verifier can see it.
#[derive(Debug, Clone, Copy)]
pub enum Body<'b> {
    /// The whole body (it is hashed when the signature covers it).
    Bytes(&'b [u8]),
    /// The hex SHA-256 of the body, computed by the caller while reading it.
    Sha256Hex(&'b str),
    /// An `aws-chunked` body the caller will feed to a [`crate::ChunkDecoder`] (streaming modes),
    /// or a body the signature does not cover (`UNSIGNED-PAYLOAD`).
    Streaming,
}

/// Verification policy.
#[derive(Debug, Clone)]
pub struct VerifyOptions<'a> {
    /// Allowed distance between the request time and `now` (AWS: 15 minutes).
    pub max_skew: Duration,
    /// Region this endpoint serves; `None` accepts any region.
    pub expected_region: Option<Cow<'a, str>>,
    /// Service this endpoint serves; `None` accepts any service.
    pub expected_service: Option<Cow<'a, str>>,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        VerifyOptions {
            max_skew: Duration::minutes(15),
            expected_region: None,
            expected_service: None,
        }
    }
}

/// Proof that a value came out of a successful verification. It has no public constructor.
#[derive(Debug, Clone)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }
    /// Unwraps the verified value (dropping the proof).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl Verified<SigV4Auth<'_>> {
    /// The same proof, owning what it borrowed from the request (to keep it past the request).
    pub fn into_owned(self) -> Verified<SigV4Auth<'static>> {
        let a = self.0;
        Verified(SigV4Auth {
            access_key_id: Cow::Owned(a.access_key_id.into_owned()),
            security_token: a.security_token.map(|t| Cow::Owned(t.into_owned())),
            security_token_signed: a.security_token_signed,
            scope: a.scope.into_owned(),
            request_time: a.request_time,
            presign_expires_at: a.presign_expires_at,
            payload: a.payload,
            algorithm: a.algorithm,
            stream: a.stream,
        })
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

thread_local! {
    /// Where the canonical request is built. It carries the session token, so it is several KB,
    /// and allocating and freeing a buffer that size for every request cost a sizeable share of
    /// verification; each thread reuses one instead.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Bound on the scratch buffer kept between requests.
const MAX_KEPT_SCRATCH: usize = 64 * 1024;

/// Runs `f` with this thread's empty scratch buffer (of at least `capacity`), or a fresh one if
/// it is in use.
fn with_scratch<R>(capacity: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            buf.reserve(capacity);
            let out = f(&mut buf);
            buf.clear();
            if buf.capacity() > MAX_KEPT_SCRATCH {
                *buf = Vec::new();
            }
            out
        }
        Err(_) => f(&mut Vec::with_capacity(capacity)),
    })
}

/// What a successful SigV4 verification establishes. It borrows the request's header values
/// (a presigned query's are owned).
#[derive(Debug, Clone)]
pub struct SigV4Auth<'a> {
    /// Access key id of the signer.
    pub access_key_id: Cow<'a, str>,
    /// Session token sent with the request, if any.
    pub security_token: Option<Cow<'a, str>>,
    /// True when the session token is covered by the signature.
    pub security_token_signed: bool,
    /// Credential scope.
    pub scope: CredentialScope<'a>,
    /// Request time (`X-Amz-Date`).
    pub request_time: OffsetDateTime,
    /// Expiry of a presigned request.
    pub presign_expires_at: Option<OffsetDateTime>,
    /// How the body is bound.
    pub payload: PayloadMode,
    /// Algorithm used.
    pub algorithm: Algorithm,
    /// For the streaming modes: what a [`crate::ChunkDecoder`] needs (contains the signing key).
    pub stream: Option<StreamSeed>,
}

/// The canonical request and string to sign that verification computes (for diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The canonical request (non-UTF-8 header bytes shown lossily).
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
}

fn push_header_value(out: &mut Vec<u8>, v: &[u8]) {
    // Trim, and fold runs of whitespace (including obs-fold line breaks) to one space,
    // copying the runs between them in bulk.
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = v.iter().position(|b| !is_ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    let mut rest = &v[start..end];
    // Most values (a session token above all) have no inner whitespace: one branch-free pass
    // that the compiler vectorises finds that, and the value is copied whole.
    if !rest.iter().fold(false, |any, b| any | is_ws(b)) {
        out.extend_from_slice(rest);
        return;
    }
    while let Some(p) = rest.iter().position(is_ws) {
        out.extend_from_slice(&rest[..p]);
        out.push(b' ');
        let skip = rest[p..]
            .iter()
            .position(|b| !is_ws(b))
            .unwrap_or(rest.len() - p);
        rest = &rest[p + skip..];
    }
    out.extend_from_slice(rest);
}

impl SignedRequest<'_> {
    /// The payload-hash line of the canonical request for `body`.
    fn payload_line<'s>(&'s self, body: &Body<'_>) -> Result<Cow<'s, str>, SigV4Error> {
        Ok(match &self.payload {
            PayloadMode::Sha256(h) => Cow::Borrowed(h),
            PayloadMode::Computed => match body {
                Body::Bytes(b) => Cow::Owned(sha256_hex(b)),
                Body::Sha256Hex(h) => Cow::Owned(h.to_ascii_lowercase()),
                Body::Streaming => {
                    return Err(SigV4Error::PayloadModeMismatch(
                        "the request has no x-amz-content-sha256 header, so the body must be given to compute its hash".to_owned(),
                    ));
                }
            },
            PayloadMode::Unsigned => Cow::Borrowed("UNSIGNED-PAYLOAD"),
            PayloadMode::StreamingSigned => Cow::Borrowed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            PayloadMode::StreamingSignedTrailer => {
                Cow::Borrowed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
            }
            PayloadMode::StreamingUnsignedTrailer => {
                Cow::Borrowed("STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            }
            PayloadMode::StreamingEcdsa(s) => Cow::Borrowed(s),
        })
    }

    /// Writes the canonical request into `out`.
    fn write_canonical(
        &self,
        out: &mut Vec<u8>,
        payload_line: &str,
        include_token_param: bool,
    ) -> Result<(), SigV4Error> {
        out.extend_from_slice(self.req.method.as_bytes());
        out.push(b'\n');
        canonical_uri_into(
            out,
            self.req.path.as_bytes(),
            self.double_encode,
            self.normalize,
        );
        out.push(b'\n');
        let mut first = true;
        for p in &self.query {
            if self.presign_expires.is_some() {
                if p.raw_name == b"X-Amz-Signature" {
                    continue;
                }
                if !include_token_param && p.raw_name == b"X-Amz-Security-Token" {
                    continue;
                }
            }
            if !first {
                out.push(b'&');
            }
            first = false;
            out.extend_from_slice(p.name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(p.value.as_bytes());
        }
        out.push(b'\n');
        for name in &self.signed_headers {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            let mut found = false;
            for v in self.req.header_values(name) {
                if found {
                    out.push(b',');
                }
                found = true;
                push_header_value(out, v);
            }
            if !found {
                return Err(SigV4Error::SignedHeaderMissing(name.to_string()));
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        for (i, name) in self.signed_headers.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(payload_line.as_bytes());
        Ok(())
    }

    fn string_to_sign(&self, creq_hash_hex: &str) -> String {
        let mut v = Vec::with_capacity(160);
        self.write_string_to_sign(&mut v, creq_hash_hex.as_bytes());
        String::from_utf8_lossy(&v).into_owned()
    }

    /// Writes the string to sign (all ASCII) without intermediate allocations.
    fn write_string_to_sign(&self, out: &mut Vec<u8>, creq_hash_hex: &[u8]) {
        out.extend_from_slice(self.algorithm.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.amz_date.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.scope.date.as_bytes());
        out.push(b'/');
        if !self.scope.region.is_empty() {
            out.extend_from_slice(self.scope.region.as_bytes());
            out.push(b'/');
        }
        out.extend_from_slice(self.scope.service.as_bytes());
        out.extend_from_slice(b"/aws4_request\n");
        out.extend_from_slice(creq_hash_hex);
    }

    /// A capacity that fits the canonical request without reallocation.
    fn canonical_capacity(&self) -> usize {
        let headers: usize = self
            .req
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        self.req.method.len() + 3 * (self.req.path.len() + self.req.query.len()) + headers + 256
    }

    /// The canonical request and string to sign verification uses for `body`.
    pub fn canonical(&self, body: &Body<'_>) -> Result<Canonical, SigV4Error> {
        let line = self.payload_line(body)?;
        let mut creq = Vec::with_capacity(512);
        self.write_canonical(&mut creq, &line, true)?;
        let hash = sha256_hex(&creq);
        Ok(Canonical {
            canonical_request: String::from_utf8_lossy(&creq).into_owned(),
            string_to_sign: self.string_to_sign(&hash),
        })
    }

    /// Presigned requests whose token was appended after signing are also accepted; this
    /// gives the canonical forms to try, most common first.
    fn token_variants(&self) -> &'static [bool] {
        if self.presign_expires.is_some()
            && self
                .query
                .iter()
                .any(|p| p.raw_name == b"X-Amz-Security-Token")
        {
            &[true, false]
        } else {
            &[true]
        }
    }
}

fn check_scope_and_time(
    signed: &SignedRequest<'_>,
    now: OffsetDateTime,
    opts: &VerifyOptions<'_>,
) -> Result<Option<OffsetDateTime>, SigV4Error> {
    if let Some(service) = &opts.expected_service
        && &signed.scope.service != service
    {
        return Err(SigV4Error::WrongService {
            got: signed.scope.service.to_string(),
            expected: service.to_string(),
        });
    }
    if let Some(region) = &opts.expected_region {
        let ok = match signed.algorithm {
            Algorithm::HmacSha256 => &signed.scope.region == region,
            Algorithm::EcdsaP256Sha256 => signed.region_set.as_deref().is_some_and(|set| {
                set.split(',')
                    .any(|r| r.trim() == "*" || r.trim() == region)
            }),
        };
        if !ok {
            return Err(SigV4Error::WrongRegion {
                got: if signed.algorithm == Algorithm::HmacSha256 {
                    signed.scope.region.to_string()
                } else {
                    signed.region_set.clone().unwrap_or_default()
                },
                expected: region.to_string(),
            });
        }
    }
    if !signed.amz_date.starts_with(&*signed.scope.date) {
        return Err(SigV4Error::CredentialDateMismatch {
            scope_date: signed.scope.date.to_string(),
            request_date: signed.amz_date.get(..8).unwrap_or_default().to_owned(),
        });
    }
    let skewed = || SigV4Error::RequestTimeTooSkewed {
        request_time: signed.amz_date.to_string(),
        server_time: format_amz_date(now),
        max_skew_secs: opts.max_skew.whole_seconds(),
    };
    match signed.presign_expires {
        None => {
            if (signed.time - now).abs() > opts.max_skew {
                return Err(skewed());
            }
            Ok(None)
        }
        Some(exp) => {
            if signed.time - now > opts.max_skew {
                return Err(skewed());
            }
            let expires_at = signed.time + Duration::seconds(i64::from(exp));
            if now > expires_at {
                return Err(SigV4Error::PresignExpired {
                    expires_at: format_amz_date(expires_at),
                    server_time: format_amz_date(now),
                });
            }
            Ok(Some(expires_at))
        }
    }
}

fn check_body(signed: &SignedRequest<'_>, body: &Body<'_>) -> Result<(), SigV4Error> {
    if let PayloadMode::Sha256(declared) = &signed.payload {
        let actual = match body {
            Body::Bytes(b) => sha256_hex(b),
            Body::Sha256Hex(h) => h.to_ascii_lowercase(),
            Body::Streaming => {
                return Err(SigV4Error::PayloadModeMismatch(
                    "x-amz-content-sha256 declares a body hash, so the body (or its hash) must be given".to_owned(),
                ));
            }
        };
        if !actual.eq_ignore_ascii_case(declared) {
            return Err(SigV4Error::ContentSha256Mismatch);
        }
    }
    Ok(())
}

/// Step two: verifies `signed` with the secret access key `secret` as of `now`.
///
/// Derives the signing key (four HMACs) and calls [`verify_with_key`].
pub fn verify<'a>(
    signed: &SignedRequest<'a>,
    body: Body<'_>,
    secret: &SecretString,
    now: OffsetDateTime,
    opts: &VerifyOptions<'_>,
) -> Result<Verified<SigV4Auth<'a>>, SigV4Error> {
    if signed.algorithm != Algorithm::HmacSha256 {
        return Err(SigV4Error::SigV4aUnsupported);
    }
    let key = SigningKey::derive(
        secret,
        &signed.scope.date,
        &signed.scope.region,
        &signed.scope.service,
    );
    verify_with_key(signed, body, &key, now, opts)
}

/// Like [`verify`] with a (cached) signing key derived for the request's scope.
pub fn verify_with_key<'a>(
    signed: &SignedRequest<'a>,
    body: Body<'_>,
    key: &SigningKey,
    now: OffsetDateTime,
    opts: &VerifyOptions<'_>,
) -> Result<Verified<SigV4Auth<'a>>, SigV4Error> {
    let SigBytes::Hmac(provided) = &signed.signature else {
        return Err(SigV4Error::SigV4aUnsupported);
    };
    if let PayloadMode::StreamingEcdsa(_) = signed.payload {
        return Err(SigV4Error::SigV4aUnsupported);
    }
    if !key.matches_scope(
        &signed.scope.date,
        &signed.scope.region,
        &signed.scope.service,
    ) {
        return Err(SigV4Error::KeyScopeMismatch {
            key_scope: key.scope_string(),
            request_scope: signed.scope.to_scope_string(),
        });
    }
    let presign_expires_at = check_scope_and_time(signed, now, opts)?;
    let line = signed.payload_line(&body)?;
    let matched = with_scratch(signed.canonical_capacity(), |creq| {
        let mut sts = Vec::with_capacity(192);
        let mut hash_hex = [0u8; 64];
        for &with_token in signed.token_variants() {
            creq.clear();
            signed.write_canonical(creq, &line, with_token)?;
            let digest = digest::digest(&digest::SHA256, creq);
            hex::encode_to_slice(digest.as_ref(), &mut hash_hex)
                .map_err(|_| SigV4Error::Malformed("internal: digest length".to_owned()))?;
            sts.clear();
            signed.write_string_to_sign(&mut sts, &hash_hex);
            let expected: Signature = key.sign(&sts);
            if expected.ct_eq(provided) {
                return Ok(Some(with_token));
            }
        }
        Ok(None)
    })?;
    let Some(with_token) = matched else {
        return Err(SigV4Error::SignatureDoesNotMatch);
    };
    check_body(signed, &body)?;
    let stream = if signed.payload.is_streaming() {
        Some(StreamSeed::new(
            key.clone(),
            provided.clone(),
            signed.amz_date.to_string(),
            signed.scope.to_scope_string(),
            signed.payload.clone(),
            signed
                .req
                .header_str("x-amz-decoded-content-length")
                .and_then(|v| v.parse().ok()),
            signed
                .req
                .header_str("x-amz-trailer")
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        ))
    } else {
        None
    };
    let security_token_signed = signed.security_token.is_some()
        && if signed.presign_expires.is_some() {
            with_token && signed.token_in_signed_headers
        } else {
            signed.token_in_signed_headers
        };
    Ok(Verified(SigV4Auth {
        access_key_id: signed.access_key_id.clone(),
        security_token: signed.security_token.clone(),
        security_token_signed,
        scope: signed.scope.clone(),
        request_time: signed.time,
        presign_expires_at,
        payload: signed.payload.clone(),
        algorithm: signed.algorithm,
        stream,
    }))
}

/// A SigV4a public key (P-256, uncompressed SEC1 point `04 || X || Y`).
#[derive(Debug, Clone)]
pub struct SigV4aPublicKey(Vec<u8>);

impl SigV4aPublicKey {
    /// From the affine coordinates as hex (64 characters each).
    pub fn from_xy_hex(x: &str, y: &str) -> Result<Self, SigV4Error> {
        let bad = || SigV4Error::InvalidPublicKey("X and Y must be 32-byte hex values".to_owned());
        let (mut xb, mut yb) = ([0u8; 32], [0u8; 32]);
        hex::decode_to_slice(x, &mut xb).map_err(|_| bad())?;
        hex::decode_to_slice(y, &mut yb).map_err(|_| bad())?;
        let mut v = Vec::with_capacity(65);
        v.push(4);
        v.extend_from_slice(&xb);
        v.extend_from_slice(&yb);
        Ok(SigV4aPublicKey(v))
    }
}

/// Verifies a SigV4a (`AWS4-ECDSA-P256-SHA256`) request against the signer's public key.
///
/// The public key must come from a trusted source (the caller's key store); keyless does not
/// derive SigV4a keys from secrets, so [`verify`] refuses SigV4a with
/// [`SigV4Error::SigV4aUnsupported`].
pub fn verify_sigv4a<'a>(
    signed: &SignedRequest<'a>,
    body: Body<'_>,
    public_key: &SigV4aPublicKey,
    now: OffsetDateTime,
    opts: &VerifyOptions<'_>,
) -> Result<Verified<SigV4Auth<'a>>, SigV4Error> {
    let SigBytes::Ecdsa(der) = &signed.signature else {
        return Err(SigV4Error::UnsupportedAlgorithm(
            "AWS4-HMAC-SHA256 request given to the SigV4a verifier".to_owned(),
        ));
    };
    if signed.payload.is_streaming() {
        return Err(SigV4Error::SigV4aUnsupported);
    }
    let presign_expires_at = check_scope_and_time(signed, now, opts)?;
    let line = signed.payload_line(&body)?;
    let pk = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        &public_key.0,
    );
    let mut matched = None;
    let mut creq = Vec::with_capacity(512);
    for &with_token in signed.token_variants() {
        creq.clear();
        signed.write_canonical(&mut creq, &line, with_token)?;
        let sts = signed.string_to_sign(&sha256_hex(&creq));
        if pk.verify(sts.as_bytes(), der).is_ok() {
            matched = Some(with_token);
            break;
        }
    }
    let Some(with_token) = matched else {
        return Err(SigV4Error::SignatureDoesNotMatch);
    };
    check_body(signed, &body)?;
    Ok(Verified(SigV4Auth {
        access_key_id: signed.access_key_id.clone(),
        security_token: signed.security_token.clone(),
        security_token_signed: signed.security_token.is_some()
            && if signed.presign_expires.is_some() {
                with_token && signed.token_in_signed_headers
            } else {
                signed.token_in_signed_headers
            },
        scope: signed.scope.clone(),
        request_time: signed.time,
        presign_expires_at,
        payload: signed.payload.clone(),
        algorithm: signed.algorithm,
        stream: None,
    }))
}

/// Where two canonical requests (or strings to sign) first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstDifference {
    /// 1-based line number.
    pub line: usize,
    /// What that line means in a canonical request (`method`, `path`, `query`, a header name,
    /// `signed headers`, `payload hash`).
    pub meaning: String,
    /// Our line (`None` when ours is shorter).
    pub ours: Option<String>,
    /// Their line (`None` when theirs is shorter).
    pub theirs: Option<String>,
}

/// Compares our canonical request with a client's (S3 returns it in its error, SDKs log it)
/// and reports the first differing line, or `None` when they are identical (line endings
/// normalized).
pub fn first_difference(ours: &str, theirs: &str) -> Option<FirstDifference> {
    let a: Vec<&str> = ours.lines().collect();
    let b: Vec<&str> = theirs
        .trim_end_matches(['\r', '\n'])
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    let n = a.len().max(b.len());
    let blank = a.iter().position(|l| l.is_empty()).unwrap_or(a.len());
    for i in 0..n {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            let meaning = match i {
                0 => "method".to_owned(),
                1 => "canonical path".to_owned(),
                2 => "canonical query string".to_owned(),
                i if i < blank => format!(
                    "header '{}'",
                    x.or(y).and_then(|l| l.split(':').next()).unwrap_or("")
                ),
                i if i == blank => "end of headers".to_owned(),
                i if i == blank + 1 => "signed headers".to_owned(),
                _ => "payload hash".to_owned(),
            };
            return Some(FirstDifference {
                line: i + 1,
                meaning,
                ours: x.map(str::to_owned),
                theirs: y.map(str::to_owned),
            });
        }
    }
    None
}
