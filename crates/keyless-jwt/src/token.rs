//! Compact JWS parsing, signature verification and claim checks.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::claims::{self, SessionTagsClaim};
use crate::error::JwtError;
use crate::jwks::{Alg, Jwks, KeyUse};

/// Longest token accepted (the `WebIdentityToken` parameter limit).
pub const MAX_TOKEN_BYTES: usize = 20_000;
/// Shortest token accepted (the `WebIdentityToken` parameter limit).
pub const MIN_TOKEN_BYTES: usize = 4;
/// Largest decoded JOSE header accepted.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Default clock leeway for `exp`, `nbf` and `iat` (5 minutes, as AWS).
pub const DEFAULT_LEEWAY: time::Duration = time::Duration::seconds(300);
/// Largest timestamp accepted (9999-12-31T23:59:59Z).
const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// What a provider accepts: its exact issuer URL, its client ids (audiences) and the clock leeway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The issuer URL, compared byte for byte with `iss`.
    pub issuer: String,
    /// Accepted audiences (AWS "client IDs"). Empty accepts nothing.
    pub client_ids: Vec<String>,
    /// Leeway applied to `exp`, `nbf` and `iat` (default 300 s).
    pub leeway: time::Duration,
    /// The provider's allowed algorithms (default: the whole allow-list, [`Alg::ALL`]). It can
    /// only narrow the allow-list; `none` and HMAC can never be added.
    pub algorithms: Vec<Alg>,
}

impl Validation {
    /// A validation with the default 300 s leeway and every allowed algorithm.
    pub fn new(issuer: impl Into<String>, client_ids: Vec<String>) -> Self {
        Validation {
            issuer: issuer.into(),
            client_ids,
            leeway: DEFAULT_LEEWAY,
            algorithms: Alg::ALL.to_vec(),
        }
    }
}

/// What [`peek`] reveals of a token before any verification. Never trust it beyond choosing
/// which provider's keys to verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    /// Unverified `iss`, when it is a string.
    pub iss: Option<String>,
    /// Unverified header `kid`.
    pub kid: Option<String>,
    /// Unverified header `alg` (any string, even `none`).
    pub alg: String,
}

/// A structurally valid compact JWS whose signature and claims have not been checked yet.
///
/// Parse once with [`UnverifiedToken::parse`], look at [`UnverifiedToken::issuer`] to find the
/// provider, then call [`UnverifiedToken::verify`].
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    alg_name: String,
    kid: Option<String>,
    payload: Map<String, Value>,
    signing_input: &'a [u8],
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("a part is not unpadded base64url"))
}

impl<'a> UnverifiedToken<'a> {
    /// Parses `header.payload.signature` with every bound applied. Header fields `jku`, `x5u`,
    /// `jwk`, `x5c` are ignored (never fetched, never trusted); `crit` is refused.
    pub fn parse(token: &'a str) -> Result<Self, JwtError> {
        if token.len() > MAX_TOKEN_BYTES || token.len() < MIN_TOKEN_BYTES {
            return Err(JwtError::Size);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "a JWT has exactly three dot-separated parts",
            ));
        };
        if h.is_empty() || p.is_empty() {
            return Err(JwtError::Malformed("empty header or payload"));
        }
        let header_bytes = b64(h)?;
        if header_bytes.len() > MAX_HEADER_BYTES {
            return Err(JwtError::Malformed("header too large"));
        }
        let header = crate::json::parse_object(&header_bytes).map_err(JwtError::Malformed)?;
        let alg_name = match header.get("alg") {
            Some(Value::String(a)) if a.len() <= 32 => a.clone(),
            _ => {
                return Err(JwtError::Malformed(
                    "header alg is missing or not a short string",
                ));
            }
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) if k.len() <= 1024 => Some(k.clone()),
            Some(_) => {
                return Err(JwtError::Malformed(
                    "header kid is not a string of at most 1024 bytes",
                ));
            }
        };
        if header.contains_key("crit") {
            return Err(JwtError::CriticalHeader);
        }
        let payload = crate::json::parse_object(&b64(p)?).map_err(JwtError::Malformed)?;
        let signature = b64(s)?;
        let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
        Ok(UnverifiedToken {
            alg_name,
            kid,
            payload,
            signing_input,
            signature,
        })
    }

    /// The unverified `iss` claim, if it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.payload.get("iss").and_then(Value::as_str)
    }

    /// The unverified header `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The unverified header `alg`.
    pub fn alg(&self) -> &str {
        &self.alg_name
    }

    /// Verifies the signature against `jwks` and the claims against `validation` at `now`.
    pub fn verify(
        self,
        jwks: &Jwks,
        validation: &Validation,
        now: OffsetDateTime,
    ) -> Result<VerifiedToken, JwtError> {
        let alg = Alg::from_name(&self.alg_name)
            .filter(|a| validation.algorithms.contains(a))
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        let key = jwks.select(self.kid.as_deref(), alg).map_err(|mismatch| {
            if mismatch {
                JwtError::KeyAlgorithmMismatch
            } else {
                JwtError::UnknownKey
            }
        })?;
        key.verify(alg, self.signing_input, &self.signature)
            .map_err(|e| match e {
                KeyUse::Mismatch => JwtError::KeyAlgorithmMismatch,
                KeyUse::BadSignature => JwtError::BadSignature,
            })?;
        check_claims(self.payload, self.kid, alg, validation, now)
    }
}

/// Returns the unverified `iss`, `kid` and `alg` of a token, to pick the provider.
pub fn peek(token: &str) -> Result<Peeked, JwtError> {
    let t = UnverifiedToken::parse(token)?;
    Ok(Peeked {
        iss: t.issuer().map(str::to_owned),
        kid: t.kid.clone(),
        alg: t.alg_name.clone(),
    })
}

/// Parses and verifies `token` in one call (see [`UnverifiedToken::verify`]).
pub fn verify(
    token: &str,
    jwks: &Jwks,
    validation: &Validation,
    now: OffsetDateTime,
) -> Result<VerifiedToken, JwtError> {
    UnverifiedToken::parse(token)?.verify(jwks, validation, now)
}

fn timestamp(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let t = if let Some(i) = n.as_i64() {
                i
            } else if let Some(f) = n.as_f64() {
                if !f.is_finite() || f.abs() > MAX_TIMESTAMP as f64 {
                    return Err(JwtError::InvalidClaim(name));
                }
                f.floor() as i64
            } else {
                return Err(JwtError::InvalidClaim(name));
            };
            if !(0..=MAX_TIMESTAMP).contains(&t) {
                return Err(JwtError::InvalidClaim(name));
            }
            Ok(Some(t))
        }
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

fn string_or_array(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Vec<String>, JwtError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.len() <= 100 => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(JwtError::InvalidClaim(name))
            })
            .collect(),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

fn opt_string(claims: &Map<String, Value>, name: &'static str) -> Result<Option<String>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

fn check_claims(
    claims: Map<String, Value>,
    kid: Option<String>,
    alg: Alg,
    v: &Validation,
    now: OffsetDateTime,
) -> Result<VerifiedToken, JwtError> {
    let now_s = now.unix_timestamp();
    let leeway = v.leeway.whole_seconds().max(0);

    let issuer = opt_string(&claims, "iss")?.ok_or(JwtError::MissingClaim("iss"))?;
    if issuer != v.issuer {
        return Err(JwtError::WrongIssuer {
            expected: v.issuer.clone(),
        });
    }
    let subject = opt_string(&claims, "sub")?.ok_or(JwtError::MissingClaim("sub"))?;
    if subject.is_empty() || subject.len() > 255 {
        return Err(JwtError::InvalidClaim("sub"));
    }
    let exp = timestamp(&claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    let iat = timestamp(&claims, "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
    let nbf = timestamp(&claims, "nbf")?;
    if now_s >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired { now: now_s, exp });
    }
    if nbf.is_some_and(|nbf| nbf > now_s.saturating_add(leeway)) {
        return Err(JwtError::NotYetValid);
    }
    if iat > now_s.saturating_add(leeway) {
        return Err(JwtError::IssuedInFuture);
    }

    let aud = string_or_array(&claims, "aud")?;
    let azp = opt_string(&claims, "azp")?;
    let (audience, other_audiences) = match &azp {
        Some(azp) => (azp.clone(), aud),
        None => match aud.as_slice() {
            [] => return Err(JwtError::MissingClaim("aud")),
            [one] => (one.clone(), Vec::new()),
            _ => return Err(JwtError::MultipleAudiences),
        },
    };
    if !v.client_ids.contains(&audience) {
        return Err(JwtError::AudienceNotAllowed);
    }
    let amr = string_or_array(&claims, "amr")?;
    let jti = opt_string(&claims, "jti")?;
    let session_tags = claims::parse_tags_claim(claims.get(claims::TAGS_CLAIM))?;
    let source_identity = claims::parse_source_identity(claims.get(claims::SOURCE_IDENTITY_CLAIM))?;

    Ok(VerifiedToken {
        issuer,
        subject,
        audience,
        other_audiences,
        azp,
        amr,
        iat,
        exp,
        nbf,
        jti,
        kid,
        alg,
        session_tags,
        source_identity,
        claims,
    })
}

/// The value of one token condition key, as [`VerifiedToken::visit_condition_keys`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue<'a> {
    /// A single value (`sub`, `aud`, `azp` and every scalar claim, numbers and booleans as text).
    One(Cow<'a, str>),
    /// A multivalued key (`amr`, `oaud`).
    Many(&'a [String]),
}

/// A token whose signature, issuer, audience and times were verified. Only [`verify`] and
/// [`UnverifiedToken::verify`] construct it.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    issuer: String,
    subject: String,
    audience: String,
    other_audiences: Vec<String>,
    azp: Option<String>,
    amr: Vec<String>,
    iat: i64,
    exp: i64,
    nbf: Option<i64>,
    jti: Option<String>,
    kid: Option<String>,
    alg: Alg,
    session_tags: Option<SessionTagsClaim>,
    source_identity: Option<String>,
    claims: Map<String, Value>,
}

fn ts(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl VerifiedToken {
    /// `iss`, equal to the provider's issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// `sub` (AWS `SubjectFromWebIdentityToken`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The effective audience: `azp` when present, else the single `aud` (AWS `Audience`).
    pub fn audience(&self) -> &str {
        &self.audience
    }
    /// The `aud` values when `azp` decided the audience (the `:oaud` key); empty otherwise.
    pub fn other_audiences(&self) -> &[String] {
        &self.other_audiences
    }
    /// `azp`, when present.
    pub fn azp(&self) -> Option<&str> {
        self.azp.as_deref()
    }
    /// `amr` values (string or array in the token).
    pub fn amr(&self) -> &[String] {
        &self.amr
    }
    /// `iat`.
    pub fn issued_at(&self) -> OffsetDateTime {
        ts(self.iat)
    }
    /// `exp`. The session lifetime must not depend on it.
    pub fn expires_at(&self) -> OffsetDateTime {
        ts(self.exp)
    }
    /// `nbf`, when present.
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.nbf.map(ts)
    }
    /// `jti`, when present.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }
    /// The header `kid` of the key that verified the token.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The algorithm that verified the token.
    pub fn alg(&self) -> Alg {
        self.alg
    }
    /// The validated `https://aws.amazon.com/tags` claim.
    pub fn session_tags(&self) -> Option<&SessionTagsClaim> {
        self.session_tags.as_ref()
    }
    /// The validated `https://aws.amazon.com/source_identity` claim.
    pub fn source_identity(&self) -> Option<&str> {
        self.source_identity.as_deref()
    }
    /// Every claim of the payload (bounded by the token size and [`crate::MAX_DEPTH`]).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The IAM condition keys this token provides, for a provider key prefix (the issuer URL
    /// without `https://`, e.g. `token.actions.githubusercontent.com`).
    ///
    /// Keys: `<prefix>:sub`, `<prefix>:aud` (effective audience), `<prefix>:oaud` (when `azp`
    /// decided), `<prefix>:azp`, `<prefix>:amr` (multi-valued), and every other top-level claim
    /// whose value is a string, number or boolean as `<prefix>:<claim>`. Nested objects, arrays
    /// (other than `aud`/`amr`) and null are not keys, as on AWS. Sorted by key.
    pub fn condition_keys(&self, prefix: &str) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        self.visit_condition_keys(prefix, |key, value| {
            let values = match value {
                KeyValue::One(v) => vec![v.into_owned()],
                KeyValue::Many(vs) => vs.to_vec(),
            };
            out.push((key.to_owned(), values));
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The keys of [`Self::condition_keys`], unsorted and borrowed: `visit` gets each key
    /// (built in one reused buffer) with its value. The request path uses this to fill a
    /// policy context without building the list first.
    pub fn visit_condition_keys(&self, prefix: &str, mut visit: impl FnMut(&str, KeyValue<'_>)) {
        fn key<'b>(buf: &'b mut String, prefix: &str, name: &str) -> &'b str {
            buf.clear();
            buf.push_str(prefix);
            buf.push(':');
            buf.push_str(name);
            buf
        }
        let mut buf = String::with_capacity(prefix.len() + 32);
        visit(
            key(&mut buf, prefix, "sub"),
            KeyValue::One(Cow::Borrowed(&self.subject)),
        );
        visit(
            key(&mut buf, prefix, "aud"),
            KeyValue::One(Cow::Borrowed(&self.audience)),
        );
        if !self.other_audiences.is_empty() {
            visit(
                key(&mut buf, prefix, "oaud"),
                KeyValue::Many(&self.other_audiences),
            );
        }
        if let Some(azp) = &self.azp {
            visit(
                key(&mut buf, prefix, "azp"),
                KeyValue::One(Cow::Borrowed(azp)),
            );
        }
        if !self.amr.is_empty() {
            visit(key(&mut buf, prefix, "amr"), KeyValue::Many(&self.amr));
        }
        for (name, value) in &self.claims {
            if matches!(name.as_str(), "sub" | "aud" | "azp" | "amr" | "oaud")
                || name.starts_with("https://aws.amazon.com/")
            {
                continue;
            }
            let text = match value {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                Value::Number(n) => Cow::Owned(n.to_string()),
                Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                _ => continue,
            };
            visit(key(&mut buf, prefix, name), KeyValue::One(text));
        }
    }
}
