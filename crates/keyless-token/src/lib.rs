//! Temporary credentials: `ASIA` access key ids, derived secrets, sealed session tokens and the
//! key ring (design.md section 4).
//!
//! Pure: randomness comes from an injected [`rand::CryptoRng`], time from a `now` argument; the
//! server reads and writes the key ring file (mode 0600) itself.
//!
//! Formats:
//! - access key id: `ASIA` + 16 base32 characters = 80 bits: account id (40 bits) | random (40
//!   bits). The key ring version is carried in the token envelope, not in the key id.
//! - secret access key: base64 of the first 30 bytes of HMAC-SHA256(K_secret, access key id)
//!   (40 characters), recomputed on every request, never stored.
//! - session token: standard base64 of `0x01 | key version (u32 BE) | nonce (12) |
//!   AES-256-GCM(K_seal, compact JSON claims, aad = 0x01 | key version | access key id)`, at most
//!   4096 bytes.
//! - purpose keys: HKDF-SHA256(salt "keyless key ring v1", root secret, info = label) with
//!   [`LABEL_SECRET_KEY`], [`LABEL_TOKEN_SEAL`]; the 32-byte output under [`LABEL_AUDIT_SIGN`]
//!   is the Ed25519 seed of the audit-digest signing key of that version
//!   ([`KeyRing::audit_signing_key`], [`KeyRing::audit_public_key`]), and the one under
//!   [`LABEL_AUTHZ_MESSAGE`] the AES-256-GCM key of its encoded authorization messages
//!   ([`KeyRing::authorization_message_keys`]).
//!
//! ```
//! use keyless_token::{KeyRing, SessionClaims, account_from_access_key_id, mint, open};
//! use keyless_types::AccountId;
//! use time::{Duration, OffsetDateTime};
//!
//! let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
//! let mut rng = rand::rng();
//! let mut ring = KeyRing::generate(now, &mut rng).unwrap();
//! let claims = SessionClaims {
//!     account: AccountId::parse("123456789012").unwrap(),
//!     role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
//!     role_id: "AROAEXAMPLEEXAMPLE123".into(),
//!     session_name: "gh".into(),
//!     issued_at: now,
//!     expires_at: now + Duration::hours(1),
//!     source_identity: None,
//!     tags: vec![],
//!     transitive_tag_keys: vec![],
//!     session_policy: None,
//!     policy_arns: vec![],
//!     mfa: None,
//!     federated: None,
//!     chain_depth: 0,
//!     chained_from: vec![],
//! };
//! let creds = mint(&ring, &claims, &mut rng).unwrap();
//! assert_eq!(account_from_access_key_id(&creds.access_key_id).unwrap(), claims.account);
//! ring.rotate(now, &mut rng).unwrap(); // live sessions keep working
//! let opened = open(&ring, &creds.access_key_id, creds.session_token.expose(), now).unwrap();
//! assert_eq!(opened.claims, claims);
//! assert!(opened.secret_access_key.ct_eq(creds.secret_access_key.expose()));
//! ```

mod akid;
mod error;
mod ring;
mod session;

pub use akid::{ACCESS_KEY_ID_LEN, PREFIX, account_from_access_key_id, new_access_key_id};
pub use error::{AccessKeyIdError, KeyRingError, MintError, OpenError};
pub use ring::{
    KeyRing, LABEL_AUDIT_SIGN, LABEL_AUTHZ_MESSAGE, LABEL_SECRET_KEY, LABEL_TOKEN_SEAL,
    ROOT_SECRET_LEN,
};
pub use session::{
    Credentials, ENVELOPE_VERSION, FederatedFacts, MAX_CHAINED_FROM, MAX_CLOCK_SKEW,
    MAX_SESSION_TOKEN_BYTES, MfaFacts, OpenedSession, SessionClaims, check_live, fuzz_open_sealed,
    mint, mint_at_least, open,
};

/// Fuzzing entry point: tries to open arbitrary bytes as a session token (with a fixed key id)
/// under `ring`. Never panics; returns whether it opened (it never should).
pub fn fuzz_open(ring: &KeyRing, data: &[u8], now: time::OffsetDateTime) -> bool {
    std::str::from_utf8(data).is_ok_and(|t| open(ring, "ASIAAAAAAAAAAAAAAAAA", t, now).is_ok())
}
