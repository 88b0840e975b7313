//! Compact JWS parsing, signature verification and claim checks.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use time::OffsetDateTime;

use crate::claims::{self, SessionTagsClaim};
use crate::error::JwtError;
use crate::json::Members;
use crate::jwks::{Alg, Jwks, KeyUse};

/// Longest token accepted (the `WebIdentityToken` parameter limit).
pub const MAX_TOKEN_BYTES: usize = 20_000;
/// Shortest token accepted (the `WebIdentityToken` parameter limit).
pub const MIN_TOKEN_BYTES: usize = 4;
/// Largest decoded JOSE header accepted.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Default clock leeway for `exp`, `nbf` and `iat` (5 minutes, as AWS).
pub const DEFAULT_LEEWAY: time::Duration = time::Duration::seconds(300);
/// The oldest a token may be (`now - iat`, before leeway). A revocation of a subject, an issuer
/// or a source identity refuses tokens issued before its instant, and it is kept only this long
/// (plus the largest leeway) past that instant: without a bound, a token with a far `exp` (a
/// Kubernetes service-account token may live a year) would mint again once the revocation is
/// purged. A kubelet refreshes projected tokens before they are 24 hours old, and GitHub's and
/// GitLab's live minutes.
pub const MAX_TOKEN_AGE: time::Duration = time::Duration::hours(24);
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
    payload: Members,
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
        let header = crate::json::parse_members(&header_bytes).map_err(JwtError::Malformed)?;
        let member = |name: &str| member(&header, name);
        let alg_name = match member("alg") {
            Some(Value::String(a)) if a.len() <= 32 => a.clone(),
            _ => {
                return Err(JwtError::Malformed(
                    "header alg is missing or not a short string",
                ));
            }
        };
        let kid = match member("kid") {
            None => None,
            Some(Value::String(k)) if k.len() <= 1024 => Some(k.clone()),
            Some(_) => {
                return Err(JwtError::Malformed(
                    "header kid is not a string of at most 1024 bytes",
                ));
            }
        };
        if member("crit").is_some() {
            return Err(JwtError::CriticalHeader);
        }
        let payload = crate::json::parse_claims(&b64(p)?).map_err(JwtError::Malformed)?;
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
        member(&self.payload, "iss").and_then(Value::as_str)
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

fn member<'v>(members: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
    members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn timestamp(claim: Option<&Value>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claim {
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

fn string_or_array(claim: Option<Value>, name: &'static str) -> Result<Vec<String>, JwtError> {
    match claim {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) if items.len() <= 100 => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(JwtError::InvalidClaim(name)),
            })
            .collect(),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

fn opt_string(claim: Option<Value>, name: &'static str) -> Result<Option<String>, JwtError> {
    match claim {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// The registered and AWS claims [`check_claims`] reads, taken out of the payload in one pass.
#[derive(Default)]
struct Read {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    azp: Option<Value>,
    amr: Option<Value>,
    jti: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
    tags: Option<Value>,
    source_identity: Option<Value>,
}

/// Splits the payload into the claims read by name and the scalar claims (every top-level
/// string, number or boolean, the read ones included: they are condition keys too).
fn split_payload(members: Members) -> (Read, Vec<(String, ClaimValue)>) {
    let mut read = Read::default();
    let mut scalars = Vec::with_capacity(members.len());
    for (name, value) in members {
        let slot = match name.as_str() {
            "iss" => &mut read.iss,
            "sub" => &mut read.sub,
            "aud" => &mut read.aud,
            "azp" => &mut read.azp,
            "amr" => &mut read.amr,
            "jti" => &mut read.jti,
            "exp" => &mut read.exp,
            "iat" => &mut read.iat,
            "nbf" => &mut read.nbf,
            claims::TAGS_CLAIM => &mut read.tags,
            claims::SOURCE_IDENTITY_CLAIM => &mut read.source_identity,
            _ => {
                if let Some(scalar) = ClaimValue::from_value(value) {
                    scalars.push((name, scalar));
                }
                continue;
            }
        };
        if let Some(scalar) = ClaimValue::from_value_ref(&value) {
            scalars.push((name, scalar));
        }
        *slot = Some(value);
    }
    (read, scalars)
}

fn check_claims(
    members: Members,
    kid: Option<String>,
    alg: Alg,
    v: &Validation,
    now: OffsetDateTime,
) -> Result<VerifiedToken, JwtError> {
    let now_s = now.unix_timestamp();
    let leeway = v.leeway.whole_seconds().max(0);
    let (read, claims) = split_payload(members);

    let issuer = opt_string(read.iss, "iss")?.ok_or(JwtError::MissingClaim("iss"))?;
    if issuer != v.issuer {
        return Err(JwtError::WrongIssuer {
            expected: v.issuer.clone(),
        });
    }
    let subject = opt_string(read.sub, "sub")?.ok_or(JwtError::MissingClaim("sub"))?;
    // Echoed as SubjectFromWebIdentityToken: XML 1.0 cannot carry control characters, and an
    // answer that does not parse would hold credentials nobody can read.
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        return Err(JwtError::InvalidClaim("sub"));
    }
    let exp = timestamp(read.exp.as_ref(), "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    let iat = timestamp(read.iat.as_ref(), "iat")?.ok_or(JwtError::MissingClaim("iat"))?;
    let nbf = timestamp(read.nbf.as_ref(), "nbf")?;
    if now_s >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired { now: now_s, exp });
    }
    if nbf.is_some_and(|nbf| nbf > now_s.saturating_add(leeway)) {
        return Err(JwtError::NotYetValid);
    }
    if iat > now_s.saturating_add(leeway) {
        return Err(JwtError::IssuedInFuture);
    }
    let max_age = MAX_TOKEN_AGE.whole_seconds().saturating_add(leeway);
    let age = now_s.saturating_sub(iat);
    if age > max_age {
        return Err(JwtError::TooOld { age, max: max_age });
    }

    let aud = string_or_array(read.aud, "aud")?;
    let azp = opt_string(read.azp, "azp")?;
    let (audience, other_audiences) = match &azp {
        Some(azp) => (azp.clone(), aud),
        None => match <[String; 1]>::try_from(aud) {
            Ok([one]) => (one, Vec::new()),
            Err(aud) if aud.is_empty() => return Err(JwtError::MissingClaim("aud")),
            Err(_) => return Err(JwtError::MultipleAudiences),
        },
    };
    if !v.client_ids.contains(&audience) {
        return Err(JwtError::AudienceNotAllowed);
    }
    let amr = string_or_array(read.amr, "amr")?;
    let jti = opt_string(read.jti, "jti")?;
    let session_tags = claims::parse_tags_claim(read.tags.as_ref())?;
    let source_identity = claims::parse_source_identity(read.source_identity.as_ref())?;

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

/// The value of a top-level claim that is a string, number or boolean: the claims that become
/// condition keys (objects, arrays and null never do, as on AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimValue {
    /// A JSON string.
    String(String),
    /// A JSON number, as parsed.
    Number(serde_json::Number),
    /// A JSON boolean.
    Bool(bool),
}

impl ClaimValue {
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(ClaimValue::String(s)),
            Value::Number(n) => Some(ClaimValue::Number(n)),
            Value::Bool(b) => Some(ClaimValue::Bool(b)),
            _ => None,
        }
    }

    fn from_value_ref(v: &Value) -> Option<Self> {
        match v {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Self::from_value(v.clone()),
            _ => None,
        }
    }

    /// The value as a condition key's text: strings as they are, numbers as JSON writes them,
    /// booleans as `true`/`false`.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            ClaimValue::String(s) => Cow::Borrowed(s),
            ClaimValue::Number(n) => Cow::Owned(n.to_string()),
            ClaimValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        }
    }
}

/// The value of one token condition key, as [`VerifiedToken::visit_condition_keys`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue<'a> {
    /// A single value (`sub`, `aud`, `azp` and every scalar claim, numbers and booleans as text).
    One(Cow<'a, str>),
    /// A multivalued key (`amr`, `oaud`).
    Many(&'a [String]),
}

/// The value of one token condition key, owned, as [`VerifiedToken::into_condition_keys`]
/// gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedKeyValue {
    /// A single value.
    One(String),
    /// A multivalued key (`amr`, `oaud`).
    Many(Vec<String>),
}

/// The keys the token sets by name (`sub`, `aud`, `oaud`, `azp`, `amr`). A scalar claim whose
/// name equals one of them ignoring case is not a key of its own: it would replace the named
/// key, since key names are case-insensitive, and a claim `SUB` an identity provider let a
/// user choose must not stand in for `sub`.
fn is_named_key(name: &str) -> bool {
    const NAMED: [&str; 5] = ["sub", "aud", "azp", "amr", "oaud"];
    if name.is_ascii() {
        NAMED.iter().any(|n| n.eq_ignore_ascii_case(name))
    } else {
        let lower = name.to_lowercase();
        NAMED.contains(&lower.as_str())
    }
}

/// Whether a scalar claim becomes a condition key `<prefix>:<name>`. A name with a colon never
/// does: the provider prefix ends at a colon, so a claim `8443:sub` from `a.example` would be
/// `a.example:8443:sub`, the `sub` key of the provider `a.example:8443`. That also leaves out
/// the `https://aws.amazon.com/` claims and other URL-named (namespaced) claims.
fn is_claim_key(name: &str) -> bool {
    !is_named_key(name) && !name.contains(':')
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
    /// Every top-level scalar claim, in document order.
    claims: Vec<(String, ClaimValue)>,
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
    /// Every top-level claim whose value is a string, number or boolean, in token order
    /// (bounded by the token size). Objects, arrays and null are checked, then not kept.
    pub fn scalar_claims(&self) -> &[(String, ClaimValue)] {
        &self.claims
    }

    /// The scalar claim `name`, if the token has one.
    pub fn claim(&self, name: &str) -> Option<&ClaimValue> {
        self.claims.iter().find(|(k, _)| k == name).map(|(_, v)| v)
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
            if is_claim_key(name) {
                visit(key(&mut buf, prefix, name), KeyValue::One(value.text()));
            }
        }
    }

    /// The keys of [`Self::visit_condition_keys`] as (name after `<prefix>:`, value), in the
    /// same order, moving the claims out of the token instead of copying them: the request path
    /// hands them to the policy context whole.
    pub fn into_condition_keys(self) -> Vec<(String, OwnedKeyValue)> {
        let mut out = Vec::with_capacity(5 + self.claims.len());
        out.push(("sub".to_owned(), OwnedKeyValue::One(self.subject)));
        out.push(("aud".to_owned(), OwnedKeyValue::One(self.audience)));
        if !self.other_audiences.is_empty() {
            out.push(("oaud".to_owned(), OwnedKeyValue::Many(self.other_audiences)));
        }
        if let Some(azp) = self.azp {
            out.push(("azp".to_owned(), OwnedKeyValue::One(azp)));
        }
        if !self.amr.is_empty() {
            out.push(("amr".to_owned(), OwnedKeyValue::Many(self.amr)));
        }
        for (name, value) in self.claims {
            if is_claim_key(&name) {
                let text = match value {
                    ClaimValue::String(s) => s,
                    other => other.text().into_owned(),
                };
                out.push((name, OwnedKeyValue::One(text)));
            }
        }
        out
    }
}
