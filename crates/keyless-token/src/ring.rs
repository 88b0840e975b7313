//! The key ring: versioned root secrets and the purpose keys derived from them.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyless_types::{SecretBytes, SecretString};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::KeyRingError;

/// Length of a root secret in bytes.
pub const ROOT_SECRET_LEN: usize = 32;
/// HKDF salt of every derivation (domain separation from any other use of the root).
const HKDF_SALT: &[u8] = b"keyless key ring v1";
/// HKDF info of the key that derives secret access keys.
pub const LABEL_SECRET_KEY: &[u8] = b"keyless/v1/secret-access-key";
/// HKDF info of the session token sealing key.
pub const LABEL_TOKEN_SEAL: &[u8] = b"keyless/v1/session-token-seal";
/// HKDF info of the Ed25519 seed that signs audit-log digests (one keypair per ring version).
pub const LABEL_AUDIT_SIGN: &[u8] = b"keyless/v1/audit-signing";
/// HKDF info of the AES-256-GCM key that seals encoded authorization messages.
pub const LABEL_AUTHZ_MESSAGE: &[u8] = b"keyless/v1/authorization-message";

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// One version of the ring: its id, creation instant, root secret and derived purpose keys.
pub(crate) struct KeyVersion {
    pub(crate) id: u32,
    pub(crate) created_at: OffsetDateTime,
    root: SecretBytes,
    pub(crate) secret_key: hmac::Key,
    pub(crate) seal_key: LessSafeKey,
}

fn derive(root: &[u8], label: &[u8]) -> Result<SecretBytes, KeyRingError> {
    let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(root);
    let labels = [label];
    let okm = prk
        .expand(&labels, Len32)
        .map_err(|_| KeyRingError::Crypto)?;
    let mut out = vec![0u8; 32];
    okm.fill(&mut out).map_err(|_| KeyRingError::Crypto)?;
    Ok(SecretBytes::new(out))
}

fn audit_keypair(root: &SecretBytes) -> Result<Ed25519KeyPair, KeyRingError> {
    let seed = derive(root.expose(), LABEL_AUDIT_SIGN)?;
    Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| KeyRingError::Crypto)
}

impl KeyVersion {
    fn new(id: u32, created_at: OffsetDateTime, root: SecretBytes) -> Result<Self, KeyRingError> {
        if root.len() != ROOT_SECRET_LEN {
            return Err(KeyRingError::BadSecret(id));
        }
        let sk = derive(root.expose(), LABEL_SECRET_KEY)?;
        let seal = derive(root.expose(), LABEL_TOKEN_SEAL)?;
        let secret_key = hmac::Key::new(hmac::HMAC_SHA256, sk.expose());
        let seal_key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, seal.expose()).map_err(|_| KeyRingError::Crypto)?,
        );
        Ok(KeyVersion {
            id,
            created_at,
            root,
            secret_key,
            seal_key,
        })
    }
}

/// Versioned root secrets. The newest version mints; every version present verifies.
///
/// `Debug` shows only ids and creation times.
pub struct KeyRing {
    /// Sorted by ascending id; never empty.
    versions: Vec<KeyVersion>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.versions
                    .iter()
                    .map(|v| (v.id, v.created_at, "[redacted]")),
            )
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    format: String,
    keys: Vec<FileKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    id: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    secret: String,
}

const FILE_FORMAT: &str = "keyless-keyring-v1";

fn random_root<R: CryptoRng + ?Sized>(rng: &mut R) -> SecretBytes {
    let mut b = vec![0u8; ROOT_SECRET_LEN];
    rng.fill_bytes(&mut b);
    SecretBytes::new(b)
}

impl KeyRing {
    /// A new ring with one version (id 1) created at `now`.
    pub fn generate<R: CryptoRng + ?Sized>(
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<KeyRing, KeyRingError> {
        Ok(KeyRing {
            versions: vec![KeyVersion::new(1, now, random_root(rng))?],
        })
    }

    /// Builds a ring from explicit versions (id, created_at, 32-byte root secret).
    pub fn from_versions(
        versions: impl IntoIterator<Item = (u32, OffsetDateTime, SecretBytes)>,
    ) -> Result<KeyRing, KeyRingError> {
        let mut out: Vec<KeyVersion> = Vec::new();
        for (id, at, root) in versions {
            if out.iter().any(|v| v.id == id) {
                return Err(KeyRingError::DuplicateVersion(id));
            }
            out.push(KeyVersion::new(id, at, root)?);
        }
        if out.is_empty() {
            return Err(KeyRingError::Empty);
        }
        out.sort_by_key(|v| v.id);
        Ok(KeyRing { versions: out })
    }

    /// Adds a version (id = newest + 1) that mints from now on; returns its id. Older versions
    /// keep verifying, so live sessions survive the rotation.
    pub fn rotate<R: CryptoRng + ?Sized>(
        &mut self,
        now: OffsetDateTime,
        rng: &mut R,
    ) -> Result<u32, KeyRingError> {
        let id = self
            .current_id()
            .checked_add(1)
            .ok_or(KeyRingError::Format("key version ids exhausted".into()))?;
        self.versions
            .push(KeyVersion::new(id, now, random_root(rng))?);
        Ok(id)
    }

    /// Drops the versions that no live credential can use: a version stops minting when its
    /// successor is created, so once that successor is older than `cutoff` every credential the
    /// version sealed has expired. Pass `cutoff = now - (longest credential lifetime + skew)`,
    /// e.g. `now - 12 h - 5 min`. The newest version is never dropped. Returns the dropped ids.
    pub fn retire_before(&mut self, cutoff: OffsetDateTime) -> Vec<u32> {
        let mut dropped = Vec::new();
        let successors: Vec<OffsetDateTime> =
            self.versions.iter().skip(1).map(|v| v.created_at).collect();
        let mut i = 0usize;
        self.versions.retain(|v| {
            let keep = successors.get(i).is_none_or(|succ| *succ > cutoff);
            i += 1;
            if !keep {
                dropped.push(v.id);
            }
            keep
        });
        dropped
    }

    /// The id of the version that mints.
    pub fn current_id(&self) -> u32 {
        self.versions.last().map_or(0, |v| v.id)
    }

    /// (id, created_at) of every version, oldest first.
    pub fn versions(&self) -> Vec<(u32, OffsetDateTime)> {
        self.versions.iter().map(|v| (v.id, v.created_at)).collect()
    }

    /// The Ed25519 keypair that signs audit digests under the newest version, with that version's
    /// id. The seed is HKDF(root, [`LABEL_AUDIT_SIGN`]), so every process holding the ring derives
    /// the same key and a verifier with the ring can pin the public key per version.
    pub fn audit_signing_key(&self) -> Result<(u32, Ed25519KeyPair), KeyRingError> {
        let v = self.current().ok_or(KeyRingError::Empty)?;
        Ok((v.id, audit_keypair(&v.root)?))
    }

    /// The 32-byte Ed25519 public key of version `id`'s audit signing key, if the version is in
    /// the ring.
    pub fn audit_public_key(&self, id: u32) -> Result<Option<[u8; 32]>, KeyRingError> {
        let Some(v) = self.get(id) else {
            return Ok(None);
        };
        let pair = audit_keypair(&v.root)?;
        let mut out = [0u8; 32];
        let public = pair.public_key().as_ref();
        if public.len() != out.len() {
            return Err(KeyRingError::Crypto);
        }
        out.copy_from_slice(public);
        Ok(Some(out))
    }

    /// The key that seals encoded authorization messages, per version, oldest first: the newest
    /// seals, and every version present opens, so a message decodes after a restart, on another
    /// replica holding the ring, and across a rotation until its version is retired.
    pub fn authorization_message_keys(&self) -> Result<Vec<(u32, SecretBytes)>, KeyRingError> {
        self.versions
            .iter()
            .map(|v| Ok((v.id, derive(v.root.expose(), LABEL_AUTHZ_MESSAGE)?)))
            .collect()
    }

    pub(crate) fn current(&self) -> Option<&KeyVersion> {
        self.versions.last()
    }

    /// Whether version `id` is in the ring (a verifier that keeps opened sessions checks that
    /// their version was not retired since).
    pub fn has_version(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn get(&self, id: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// Serialises the ring to its file format: JSON
    /// `{"format":"keyless-keyring-v1","keys":[{"id":1,"created_at":"<RFC 3339>","secret":"<base64>"}]}`.
    /// The text contains the root secrets, hence the [`SecretString`]; the caller writes it to a
    /// file of mode 0600.
    pub fn to_file_string(&self) -> Result<SecretString, KeyRingError> {
        let file = FileFormat {
            format: FILE_FORMAT.to_owned(),
            keys: self
                .versions
                .iter()
                .map(|v| FileKey {
                    id: v.id,
                    created_at: v.created_at,
                    secret: STANDARD.encode(v.root.expose()),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&file)
            .map(SecretString::new)
            .map_err(|_| KeyRingError::Format("serialisation failed".into()))
    }

    /// Parses the file format written by [`KeyRing::to_file_string`] (at most 1 MiB).
    pub fn from_file_str(text: &str) -> Result<KeyRing, KeyRingError> {
        if text.len() > 1024 * 1024 {
            return Err(KeyRingError::Format("larger than 1 MiB".into()));
        }
        let file: FileFormat = serde_json::from_str(text).map_err(|e| {
            // serde_json errors name the position and the expected type, never the value.
            KeyRingError::Format(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                classify(&e)
            ))
        })?;
        if file.format != FILE_FORMAT {
            return Err(KeyRingError::Format(format!(
                "format must be \"{FILE_FORMAT}\""
            )));
        }
        let mut versions = Vec::new();
        for k in file.keys {
            let secret = STANDARD
                .decode(k.secret.as_bytes())
                .map_err(|_| KeyRingError::BadSecret(k.id))?;
            versions.push((k.id, k.created_at, SecretBytes::new(secret)));
        }
        KeyRing::from_versions(versions)
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "JSON syntax error",
        serde_json::error::Category::Data => "unexpected field or value type",
        serde_json::error::Category::Eof => "unexpected end of file",
    }
}
