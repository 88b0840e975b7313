//! JWS/JWT verification against a JWKS it is given, with allow-listed algorithms and injected time.
//!
//! This crate is pure: it never fetches anything (the `keyless-oidc` adapter fetches JWKS for
//! configured issuers only) and never reads the clock (`now` is an argument). A token's `jku`,
//! `x5u`, `jwk` or `x5c` header is never honoured.
//!
//! ```
//! use keyless_jwt::{Alg, Jwks, Signer, Validation, peek, verify};
//! use serde_json::json;
//! use time::OffsetDateTime;
//!
//! let signer = Signer::generate(Alg::ES256, "k1").unwrap();
//! let jwks = Jwks::from_json(signer.jwks_json().as_bytes()).unwrap();
//! let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
//! let token = signer
//!     .sign(&json!({"iss": "https://issuer.example", "sub": "repo:o/r:ref:refs/heads/main",
//!                   "aud": "sts.amazonaws.com", "iat": 1_800_000_000, "exp": 1_800_000_300}))
//!     .unwrap();
//! // Find the provider from the unverified issuer, then verify with its keys.
//! assert_eq!(peek(&token).unwrap().iss.as_deref(), Some("https://issuer.example"));
//! let v = Validation::new("https://issuer.example", vec!["sts.amazonaws.com".into()]);
//! let verified = verify(&token, &jwks, &v, now).unwrap();
//! assert_eq!(verified.subject(), "repo:o/r:ref:refs/heads/main");
//! let keys = verified.condition_keys("issuer.example");
//! assert!(keys.contains(&("issuer.example:aud".into(), vec!["sts.amazonaws.com".into()])));
//! ```
//!
//! Errors ([`JwtError`]) carry their AWS code ([`JwtError::aws_code`]); messages never echo the
//! token.

mod claims;
mod error;
mod json;
mod jwks;
mod signer;
mod token;

pub use claims::{
    MAX_SESSION_TAGS, SOURCE_IDENTITY_CLAIM, SessionTagsClaim, TAGS_CLAIM, valid_source_identity,
    valid_tag_key, valid_tag_value,
};
pub use error::{AwsCode, JwksError, JwtError, SignError};
pub use json::MAX_DEPTH;
pub use jwks::{Alg, Jwk, Jwks, KeyFingerprint, KeyType, MAX_JWKS_BYTES, MAX_KEYS_PER_FAMILY};
pub use signer::Signer;
pub use token::{
    ClaimValue, DEFAULT_LEEWAY, KeyValue, MAX_HEADER_BYTES, MAX_TOKEN_AGE, MAX_TOKEN_BYTES,
    MIN_TOKEN_BYTES, OwnedKeyValue, Peeked, UnverifiedToken, Validation, VerifiedToken, peek,
    verify,
};

/// Fuzzing entry point: parses `data` as a token (and peeks it), as a JWKS document and as a
/// token payload. Panics only if the claims parser accepts what the plain JSON parser reads
/// differently; returns whether the token and JWKS parses succeeded.
pub fn fuzz_parse(data: &[u8]) -> (bool, bool) {
    let token_ok = std::str::from_utf8(data)
        .is_ok_and(|s| UnverifiedToken::parse(s).is_ok() && peek(s).is_ok());
    let jwks_ok = Jwks::from_json(data).is_ok();
    // As a token payload: the claims parser accepts a subset of what the plain one accepts,
    // member for member.
    if let Ok(claims) = json::parse_claims(data) {
        assert_eq!(json::parse_members(data), Ok(claims));
    }
    (token_ok, jwks_ok)
}
