//! Session claims, minting (key id + derived secret + sealed token) and opening.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyless_types::{AccountId, SecretString};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::akid::{account_from_access_key_id, new_access_key_id};
use crate::error::{MintError, OpenError};
use crate::ring::{KeyRing, KeyVersion};

/// Largest assembled session token (base64 text), AWS's limit since 2026.
pub const MAX_SESSION_TOKEN_BYTES: usize = 4096;
/// Envelope format version byte.
pub const ENVELOPE_VERSION: u8 = 1;
/// Allowed clock skew between replicas for a token's issue instant.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::seconds(300);
const HEADER_LEN: usize = 1 + 4;
const TAG_LEN: usize = 16;

/// MFA facts of the session (AssumeRole with `SerialNumber`/`TokenCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFacts {
    /// `aws:MultiFactorAuthPresent`.
    #[serde(rename = "ok")]
    pub present: bool,
    /// When the MFA code was checked (`aws:MultiFactorAuthAge` derives from it).
    #[serde(rename = "at", with = "time::serde::timestamp")]
    pub authenticated_at: OffsetDateTime,
}

/// The web identity a session was federated from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedFacts {
    /// The token's issuer URL.
    #[serde(rename = "i")]
    pub issuer: String,
    /// The token's `sub`.
    #[serde(rename = "s")]
    pub subject: String,
    /// The effective audience.
    #[serde(rename = "a")]
    pub audience: String,
    /// The OIDC provider ARN.
    #[serde(rename = "p")]
    pub provider_arn: String,
}

/// Everything a session carries, sealed into its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The account of the role.
    #[serde(rename = "a")]
    pub account: AccountId,
    /// The role ARN.
    #[serde(rename = "r")]
    pub role_arn: String,
    /// The role's unique id (`AROA...`).
    #[serde(rename = "ri")]
    pub role_id: String,
    /// `RoleSessionName`.
    #[serde(rename = "n")]
    pub session_name: String,
    /// When the credentials were issued.
    #[serde(rename = "ia", with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// When they expire.
    #[serde(rename = "ex", with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    /// `SourceIdentity`, persisted across chaining.
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Session tags (key, value).
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Transitive tag keys.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// Inline session policy (JSON text), as given.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// Managed session policy ARNs.
    #[serde(rename = "pa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// MFA facts.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaFacts>,
    /// Federation facts (web identity sessions and their chained descendants).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub federated: Option<FederatedFacts>,
    /// 0 = minted from a web identity (or first hop); > 0 = role chaining depth.
    #[serde(rename = "d", default)]
    pub chain_depth: u8,
    /// The access key ids of the sessions this one was chained from, the first session first
    /// and its caller last: revoking any of them ends this one too, since a leaked session's
    /// holder would otherwise keep the sessions it had already chained to. At most
    /// [`MAX_CHAINED_FROM`].
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub chained_from: Vec<String>,
}

/// How many sessions a chained session may descend from: 32 hops of at most an hour each.
/// Each ancestor adds about 30 bytes to the session token.
pub const MAX_CHAINED_FROM: usize = 32;

/// Freshly minted temporary credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `ASIA...` (20 characters).
    pub access_key_id: String,
    /// The derived 40-character secret.
    pub secret_access_key: SecretString,
    /// The sealed session token (standard base64).
    pub session_token: SecretString,
    /// Expiry (from the claims).
    pub expiration: OffsetDateTime,
    /// `SessionTokenSize`: the token length in bytes.
    pub session_token_size: usize,
    /// `PackedPolicySize` / `SessionTokenUtilization`: percent of the 4096-byte limit used,
    /// rounded up.
    pub packed_policy_size: u32,
    /// The key ring version that sealed the token.
    pub key_version: u32,
}

/// A session token that opened: its claims and the derived secret to verify signatures with.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The sealed claims.
    pub claims: SessionClaims,
    /// The secret access key (derived again, never stored).
    pub secret_access_key: SecretString,
    /// The key ring version that sealed it.
    pub key_version: u32,
}

/// The secret access key of `access_key_id` under `version`: base64 of the first 30 bytes of
/// HMAC-SHA256(secret-derivation key, access key id) = 40 characters.
pub(crate) fn derive_secret(version: &KeyVersion, access_key_id: &str) -> SecretString {
    let tag = hmac::sign(&version.secret_key, access_key_id.as_bytes());
    let bytes = tag.as_ref().get(..30).unwrap_or_default();
    SecretString::new(STANDARD.encode(bytes))
}

fn percent(size: usize) -> u32 {
    let p = (size * 100).div_ceil(MAX_SESSION_TOKEN_BYTES);
    u32::try_from(p).unwrap_or(u32::MAX)
}

fn aad(header: &[u8], access_key_id: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + access_key_id.len());
    a.extend_from_slice(header);
    a.extend_from_slice(access_key_id.as_bytes());
    a
}

/// The size in bytes of the token that would carry `plaintext_len` bytes of claims.
fn token_len(plaintext_len: usize) -> usize {
    (HEADER_LEN + NONCE_LEN + plaintext_len + TAG_LEN).div_ceil(3) * 4
}

/// The fewest padding bytes that make a token of `plaintext_len` bytes of claims at least
/// `min_token_bytes` long (base64 grows in steps of 4 characters per 3 bytes, so the token may
/// come out up to 3 bytes longer than asked, never longer than the limit).
fn padding_for(plaintext_len: usize, min_token_bytes: usize) -> usize {
    let overhead = HEADER_LEN + NONCE_LEN + TAG_LEN;
    let raw_needed = (min_token_bytes.div_ceil(4) * 3).saturating_sub(overhead);
    raw_needed.saturating_sub(plaintext_len)
}

/// Mints credentials for `claims` with the ring's newest version: a fresh `ASIA` key id for
/// `claims.account`, its derived secret, and the sealed token
/// `base64(version | key version | nonce | AES-256-GCM(claims, aad = version | key version | key id))`.
pub fn mint<R: CryptoRng + ?Sized>(
    ring: &KeyRing,
    claims: &SessionClaims,
    rng: &mut R,
) -> Result<Credentials, MintError> {
    mint_at_least(ring, claims, 0, rng)
}

/// [`mint`], with the token padded to at least `min_token_bytes` (STS's
/// `MinimumSessionTokenSize`, at most [`MAX_SESSION_TOKEN_BYTES`]), so that a caller can test
/// that its systems carry tokens of that size. The padding is JSON whitespace after the sealed
/// claims: it is encrypted and authenticated with them, and opening ignores it.
pub fn mint_at_least<R: CryptoRng + ?Sized>(
    ring: &KeyRing,
    claims: &SessionClaims,
    min_token_bytes: usize,
    rng: &mut R,
) -> Result<Credentials, MintError> {
    if claims.expires_at <= claims.issued_at {
        return Err(MintError::InvalidClaims(
            "expires_at must be after issued_at",
        ));
    }
    if min_token_bytes > MAX_SESSION_TOKEN_BYTES {
        return Err(MintError::InvalidClaims(
            "the minimum token size is above the 4096-byte limit",
        ));
    }
    let version = ring.current().ok_or(MintError::Crypto)?;
    let mut plaintext =
        serde_json::to_vec(claims).map_err(|_| MintError::InvalidClaims("not serialisable"))?;
    let size = token_len(plaintext.len());
    if size > MAX_SESSION_TOKEN_BYTES {
        return Err(MintError::PackedPolicyTooLarge {
            size,
            percent: percent(size),
        });
    }
    let padding = padding_for(plaintext.len(), min_token_bytes);
    plaintext.resize(plaintext.len() + padding, b' ');
    let size = token_len(plaintext.len());
    let access_key_id = new_access_key_id(claims.account, rng);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let token = seal(version, &access_key_id, nonce, plaintext)?;
    debug_assert_eq!(token.len(), size);
    Ok(Credentials {
        secret_access_key: derive_secret(version, &access_key_id),
        access_key_id,
        expiration: claims.expires_at,
        session_token_size: token.len(),
        packed_policy_size: percent(token.len()),
        session_token: SecretString::new(token),
        key_version: version.id,
    })
}

/// Seals `plaintext` into a token envelope for `access_key_id` under `version`.
fn seal(
    version: &KeyVersion,
    access_key_id: &str,
    nonce: [u8; NONCE_LEN],
    plaintext: Vec<u8>,
) -> Result<String, MintError> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&version.id.to_be_bytes());
    let aad = aad(&out, access_key_id);
    out.extend_from_slice(&nonce);
    let mut sealed = plaintext;
    version
        .seal_key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut sealed,
        )
        .map_err(|_| MintError::Crypto)?;
    out.extend_from_slice(&sealed);
    Ok(STANDARD.encode(&out))
}

/// Fuzzing entry point for the claims decoder: seals arbitrary `plaintext` (as if it were
/// claims) with the ring's newest version for a fixed key id of account 0, then opens it.
/// Never panics; returns whether it opened (only for well-formed claims of account 0 that are
/// live at `now`).
pub fn fuzz_open_sealed(ring: &KeyRing, plaintext: &[u8], now: OffsetDateTime) -> bool {
    const AKID: &str = "ASIAAAAAAAAAAAAAAAAA";
    let Some(version) = ring.current() else {
        return false;
    };
    match seal(version, AKID, [0u8; NONCE_LEN], plaintext.to_vec()) {
        Ok(token) => open(ring, AKID, &token, now).is_ok(),
        Err(_) => false,
    }
}

/// Opens a session token presented with `access_key_id` at `now`: checks the envelope, finds
/// the key version, authenticates and decrypts (the key id is bound as AAD, so a token cannot be
/// replayed with another key id), checks that the key id encodes the claims' account, expiry and
/// clock skew, and derives the secret access key.
pub fn open(
    ring: &KeyRing,
    access_key_id: &str,
    token: &str,
    now: OffsetDateTime,
) -> Result<OpenedSession, OpenError> {
    let account =
        account_from_access_key_id(access_key_id).map_err(|_| OpenError::MalformedAccessKeyId)?;
    if token.len() > MAX_SESSION_TOKEN_BYTES || token.len() < token_len(0) {
        return Err(OpenError::Malformed);
    }
    let raw = STANDARD
        .decode(token.as_bytes())
        .map_err(|_| OpenError::Malformed)?;
    let (header, rest) = raw
        .split_at_checked(HEADER_LEN)
        .ok_or(OpenError::Malformed)?;
    let [ver, k0, k1, k2, k3] = *header else {
        return Err(OpenError::Malformed);
    };
    if ver != ENVELOPE_VERSION {
        return Err(OpenError::Malformed);
    }
    let key_id = u32::from_be_bytes([k0, k1, k2, k3]);
    let version = ring.get(key_id).ok_or(OpenError::UnknownKeyVersion)?;
    let (nonce, sealed) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or(OpenError::Malformed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
    let aad = aad(header, access_key_id);
    let mut buf = sealed.to_vec();
    let plain = version
        .seal_key
        .open_in_place(nonce, Aad::from(&aad), &mut buf)
        .map_err(|_| OpenError::Tampered)?;
    let claims: SessionClaims = serde_json::from_slice(plain).map_err(|_| OpenError::Malformed)?;
    if claims.account != account {
        return Err(OpenError::Tampered);
    }
    check_live(&claims, now)?;
    Ok(OpenedSession {
        secret_access_key: derive_secret(version, access_key_id),
        claims,
        key_version: key_id,
    })
}

/// The time checks of [`open`]: the session has not expired at `now`, and was not issued later
/// than `now` plus the allowed clock skew. A verifier that keeps opened sessions applies them on
/// every request.
pub fn check_live(claims: &SessionClaims, now: OffsetDateTime) -> Result<(), OpenError> {
    if now >= claims.expires_at {
        return Err(OpenError::Expired);
    }
    if claims.issued_at > now + MAX_CLOCK_SKEW {
        return Err(OpenError::NotYetValid);
    }
    Ok(())
}
