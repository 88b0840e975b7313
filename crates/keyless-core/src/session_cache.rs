//! Sessions already opened, so the later requests of a credential skip the token open (base64,
//! AES-256-GCM, claims parse), the secret derivation, the compilation of its inline session
//! policy and the four-HMAC signing-key derivation. AWS's own verifiers cache signing keys the
//! same way; a key is valid for one day, region and service.
//!
//! A hit still checks everything that can change between requests: the token presented must be
//! byte for byte the one that opened (compared in constant time), the session must be live at
//! `now`, and its key-ring version must still be in the ring. Revocations, the role and its
//! current policies are checked by the caller on every request, hit or miss. Only sessions and
//! signing keys that verified a signature are kept, so a forged request cannot fill the cache.
//!
//! One cache belongs to one key-ring snapshot: the server builds a new one with every new ring.

use std::sync::{Arc, OnceLock, RwLock};

use keyless_policy::{Context, Policy, PolicyType};
use keyless_sigv4::SigningKey;
use keyless_token::{KeyRing, OpenError, OpenedSession, SessionClaims};
use keyless_types::{OffsetDateTime, SecretString};
use subtle::ConstantTimeEq;

use crate::authorize::PrincipalInfo;

/// Sessions kept by default. An entry is the token, its claims and a few signing keys (about
/// 3 KiB), so the default bounds the cache near 30 MiB.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Signing keys kept per session: one per (day, region, service) it signs for.
const KEYS_PER_SESSION: usize = 4;

/// Opened sessions by access key id, bounded; eviction is by use.
pub struct SessionCache {
    sessions: quick_cache::sync::Cache<String, Arc<OpenSession>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("len", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl SessionCache {
    /// A cache of at most `capacity` sessions (0 keeps nothing).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            sessions: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Number of sessions kept.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session of `token` presented with `access_key_id` at `now`: the kept one if the token
    /// is the same and still usable, else opened afresh (not kept until [`SessionCache::keep`]).
    /// Errors are those of [`keyless_token::open`].
    pub fn open(
        &self,
        ring: &KeyRing,
        access_key_id: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Opened, OpenError> {
        if let Some(kept) = self.sessions.get(access_key_id) {
            let same_token = same_bytes(kept.token.as_bytes(), token.as_bytes());
            if same_token && ring.has_version(kept.opened.key_version) {
                keyless_token::check_live(&kept.opened.claims, now)?;
                return Ok(Opened {
                    session: kept,
                    kept: true,
                });
            }
        }
        let opened = keyless_token::open(ring, access_key_id, token, now)?;
        Ok(Opened {
            session: Arc::new(OpenSession::new(access_key_id, token, opened)),
            kept: false,
        })
    }

    /// Keeps a session whose request verified.
    pub fn keep(&self, access_key_id: &str, opened: &Opened) {
        if !opened.kept {
            self.sessions
                .insert(access_key_id.to_owned(), Arc::clone(&opened.session));
        }
    }
}

/// Whether `a` and `b` are equal, in time that depends on their length only. The XOR-OR fold has
/// no early exit and vectorises, unlike a per-byte barrier, which matters for a 1-4 KB token.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    bool::from(std::hint::black_box(diff).ct_eq(&0))
}

/// The result of [`SessionCache::open`].
#[derive(Debug, Clone)]
pub struct Opened {
    /// The session.
    pub session: Arc<OpenSession>,
    /// Whether it came from the cache.
    pub kept: bool,
}

/// An opened session token and what was derived from it.
pub struct OpenSession {
    access_key_id: String,
    token: String,
    opened: OpenedSession,
    inline_policy: Option<Result<Arc<Policy>, ()>>,
    signing_keys: RwLock<Vec<Arc<SigningKey>>>,
    principal_context: OnceLock<Arc<Context>>,
    assumed_role_arn: OnceLock<String>,
    principal_info: OnceLock<Arc<PrincipalInfo>>,
}

impl std::fmt::Debug for OpenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSession")
            .field("claims", &self.opened.claims)
            .field("key_version", &self.opened.key_version)
            .finish_non_exhaustive()
    }
}

impl OpenSession {
    fn new(access_key_id: &str, token: &str, opened: OpenedSession) -> Self {
        let inline_policy = opened.claims.session_policy.as_deref().map(|doc| {
            Policy::parse(doc, PolicyType::Session)
                .map(|p| Arc::new(p.with_label("session policy")))
                .map_err(|_| ())
        });
        Self {
            access_key_id: access_key_id.to_owned(),
            token: token.to_owned(),
            opened,
            inline_policy,
            signing_keys: RwLock::new(Vec::new()),
            principal_context: OnceLock::new(),
            assumed_role_arn: OnceLock::new(),
            principal_info: OnceLock::new(),
        }
    }

    /// The access key id the token belongs to (a kept session is found only by it).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The sealed claims.
    pub fn claims(&self) -> &SessionClaims {
        &self.opened.claims
    }

    /// The key-ring version that sealed the token.
    pub fn key_version(&self) -> u32 {
        self.opened.key_version
    }

    /// The secret access key.
    pub fn secret(&self) -> &SecretString {
        &self.opened.secret_access_key
    }

    /// The inline session policy, compiled: `None` without one, `Some(Err(()))` if it no longer
    /// parses (it was checked at issuance, so that is an internal error).
    pub fn inline_policy(&self) -> Option<Result<&Arc<Policy>, ()>> {
        self.inline_policy
            .as_ref()
            .map(|r| r.as_ref().map_err(|_| ()))
    }

    /// The condition keys that describe this session's principal, built once by `build` and
    /// shared by its requests (each sets its own keys over them, see [`Context::over`]).
    pub fn principal_context(&self, build: impl FnOnce() -> Context) -> Arc<Context> {
        Arc::clone(self.principal_context.get_or_init(|| Arc::new(build())))
    }

    /// The session's `arn:aws:sts::…:assumed-role/…` ARN, built once by `build`.
    pub fn assumed_role_arn(&self, build: impl FnOnce() -> String) -> &str {
        self.assumed_role_arn.get_or_init(build)
    }

    /// Who this session's principal is, as the authorize API reports it, built once by `build`.
    pub fn principal_info(&self, build: impl FnOnce() -> PrincipalInfo) -> Arc<PrincipalInfo> {
        Arc::clone(self.principal_info.get_or_init(|| Arc::new(build())))
    }

    /// The signing key for `date/region/service`: a kept one, or derived now (and not kept until
    /// [`OpenSession::keep_signing_key`]).
    pub fn signing_key(&self, date: &str, region: &str, service: &str) -> (Arc<SigningKey>, bool) {
        if let Ok(keys) = self.signing_keys.read()
            && let Some(k) = keys.iter().find(|k| k.matches_scope(date, region, service))
        {
            return (Arc::clone(k), true);
        }
        let key = SigningKey::derive(self.secret(), date, region, service);
        (Arc::new(key), false)
    }

    /// Keeps a signing key that verified a request (the oldest goes when the list is full).
    pub fn keep_signing_key(&self, key: Arc<SigningKey>) {
        if let Ok(mut keys) = self.signing_keys.write() {
            if keys
                .iter()
                .any(|k| Arc::ptr_eq(k, &key) || k.scope_string() == key.scope_string())
            {
                return;
            }
            if keys.len() >= KEYS_PER_SESSION {
                keys.remove(0);
            }
            keys.push(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_token::mint;
    use keyless_types::AccountId;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn claims(policy: Option<&str>) -> SessionClaims {
        SessionClaims {
            account: AccountId::parse("123456789012").unwrap(),
            role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
            role_id: "AROAEXAMPLEEXAMPLE123".into(),
            session_name: "s".into(),
            issued_at: now(),
            expires_at: now() + time::Duration::hours(1),
            source_identity: None,
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: policy.map(str::to_owned),
            policy_arns: vec![],
            mfa: None,
            federated: None,
            chain_depth: 0,
            chained_from: vec![],
        }
    }

    #[test]
    fn a_kept_session_is_found_again_only_with_the_same_token_and_while_live() {
        let mut rng = rand::rng();
        let ring = KeyRing::generate(now(), &mut rng).unwrap();
        let creds = mint(&ring, &claims(None), &mut rng).unwrap();
        let cache = SessionCache::default();
        let akid = &creds.access_key_id;
        let token = creds.session_token.expose();

        let first = cache.open(&ring, akid, token, now()).unwrap();
        assert!(!first.kept);
        assert!(
            cache.is_empty(),
            "nothing is kept before the caller says the request verified"
        );
        cache.keep(akid, &first);
        let second = cache.open(&ring, akid, token, now()).unwrap();
        assert!(second.kept);
        assert!(
            second
                .session
                .secret()
                .ct_eq(creds.secret_access_key.expose())
        );

        // Another token under the same key id is opened afresh, and fails as a forgery.
        let mut forged = token.to_owned();
        let last = if forged.ends_with('A') { "B" } else { "A" };
        forged.replace_range(forged.len() - 1.., last);
        assert!(cache.open(&ring, akid, &forged, now()).is_err());
        // A kept session still expires.
        let later = now() + time::Duration::hours(2);
        assert_eq!(
            cache.open(&ring, akid, token, later).unwrap_err(),
            OpenError::Expired
        );
    }

    #[test]
    fn same_bytes_is_equality() {
        assert!(same_bytes(b"", b""));
        assert!(same_bytes(b"token", b"token"));
        assert!(!same_bytes(b"token", b"tokem"));
        assert!(!same_bytes(b"token", b"Token"));
        assert!(!same_bytes(b"token", b"token "));
        let long = vec![7u8; 4096];
        let mut other = long.clone();
        assert!(same_bytes(&long, &other));
        other[2048] ^= 1;
        assert!(!same_bytes(&long, &other));
    }

    #[test]
    fn a_retired_key_version_ends_kept_sessions() {
        let mut rng = rand::rng();
        let mut ring = KeyRing::generate(now(), &mut rng).unwrap();
        let creds = mint(&ring, &claims(None), &mut rng).unwrap();
        let cache = SessionCache::default();
        let opened = cache
            .open(
                &ring,
                &creds.access_key_id,
                creds.session_token.expose(),
                now(),
            )
            .unwrap();
        cache.keep(&creds.access_key_id, &opened);
        ring.rotate(now() + time::Duration::seconds(1), &mut rng)
            .unwrap();
        ring.retire_before(now() + time::Duration::seconds(2));
        assert_eq!(
            cache
                .open(
                    &ring,
                    &creds.access_key_id,
                    creds.session_token.expose(),
                    now()
                )
                .unwrap_err(),
            OpenError::UnknownKeyVersion
        );
    }

    #[test]
    fn signing_keys_are_kept_per_scope_and_bounded() {
        let mut rng = rand::rng();
        let ring = KeyRing::generate(now(), &mut rng).unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let creds = mint(&ring, &claims(Some(policy)), &mut rng).unwrap();
        let cache = SessionCache::default();
        let s = cache
            .open(
                &ring,
                &creds.access_key_id,
                creds.session_token.expose(),
                now(),
            )
            .unwrap()
            .session;
        assert!(matches!(s.inline_policy(), Some(Ok(_))));
        let (k, kept) = s.signing_key("20270115", "us-east-1", "s3");
        assert!(!kept);
        s.keep_signing_key(Arc::clone(&k));
        s.keep_signing_key(k);
        let (k2, kept) = s.signing_key("20270115", "us-east-1", "s3");
        assert!(kept);
        assert!(k2.matches_scope("20270115", "us-east-1", "s3"));
        for region in ["a", "b", "c", "d", "e"] {
            let (k, _) = s.signing_key("20270115", region, "s3");
            s.keep_signing_key(k);
        }
        assert_eq!(s.signing_keys.read().unwrap().len(), KEYS_PER_SESSION);
        assert!(
            !s.signing_key("20270115", "us-east-1", "s3").1,
            "the oldest went first"
        );
    }
}
