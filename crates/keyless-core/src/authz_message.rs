//! Encoded authorization messages: every `AccessDenied` carries one, and
//! `sts:DecodeAuthorizationMessage` turns it back into the engine's explanation.
//!
//! The message is AES-256-GCM sealed under a key derived from the key ring
//! (`KeyRing::authorization_message_keys`), so only keyless can read it and a caller learns
//! nothing about policies it may not see. The newest ring version seals and names itself in the
//! message; every version in the ring opens, so a message still decodes after a restart, on
//! another replica, and after a rotation, until its version is retired.
//!
//! A message opens only for a caller in the account of the principal that was denied: the
//! account is part of the additional data. Messages end up in CI logs, which are often public,
//! and one keyless server serves many accounts; a principal allowed
//! `sts:DecodeAuthorizationMessage` in one account must not read another account's policies and
//! request context.
//!
//! Layout: `K` + base64url(`0x03` | key version (u32, big-endian) | nonce | ciphertext + tag),
//! with the first five bytes and the account as additional data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_policy::{Context, ContextValue, Decision, DecisionKind};
use keyless_types::SecretBytes;

use crate::error::ApiError;

/// Largest encoded message we accept back (AWS: 1-10240 characters).
pub const MAX_ENCODED_LEN: usize = 10240;
const AAD: &[u8] = b"keyless authorization message v3";
const PREFIX: char = 'K';
const FORMAT: u8 = 3;
const HEADER_LEN: usize = 1 + 4;

/// Seals and opens authorization messages.
pub struct MessageSealer {
    /// Oldest first; the last one seals.
    keys: Vec<(u32, LessSafeKey)>,
}

impl std::fmt::Debug for MessageSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageSealer([redacted])")
    }
}

impl MessageSealer {
    /// A sealer with one 32-byte key, as version 0 (tests and benchmarks).
    pub fn new(key: &SecretBytes) -> Result<Self, ApiError> {
        Self::versioned(&[(0, key)])
    }

    /// A sealer from the key ring's message keys, oldest first
    /// (`KeyRing::authorization_message_keys`): the last one seals.
    pub fn versioned(keys: &[(u32, &SecretBytes)]) -> Result<Self, ApiError> {
        let keys = keys
            .iter()
            .map(|(id, key)| {
                UnboundKey::new(&AES_256_GCM, key.expose())
                    .map(|k| (*id, LessSafeKey::new(k)))
                    .map_err(|_| ApiError::internal())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ApiError::internal());
        }
        Ok(MessageSealer { keys })
    }

    fn aad(header: &[u8], account: &str) -> Vec<u8> {
        let mut aad = AAD.to_vec();
        aad.extend_from_slice(header);
        aad.extend_from_slice(account.as_bytes());
        aad
    }

    /// Seals the JSON text of a decision.
    /// `account` is the denied principal's, the only one whose callers may open it.
    pub fn seal(&self, json: &str, account: &str) -> Result<String, ApiError> {
        let (id, key) = self.keys.last().ok_or_else(ApiError::internal)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + json.len() + 16);
        out.push(FORMAT);
        out.extend_from_slice(&id.to_be_bytes());
        let aad = Self::aad(&out, account);
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = json.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(&aad),
            &mut buf,
        )
        .map_err(|_| ApiError::internal())?;
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        // A fixed first letter: base64url may start with `-`, which command lines take for an
        // option (`aws sts decode-authorization-message --encoded-message -…` fails).
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens an encoded message for a caller in `account`; tampering, or a message about a
    /// principal in another account, is `InvalidAuthorizationMessageException`.
    pub fn open(&self, encoded: &str, account: &str) -> Result<String, ApiError> {
        let invalid = || {
            ApiError::new(
                "InvalidAuthorizationMessageException",
                400,
                "The encoded authorization message is invalid or was not issued by this keyless server.",
            )
        };
        if encoded.is_empty() || encoded.len() > MAX_ENCODED_LEN {
            return Err(invalid());
        }
        let body = encoded.trim().strip_prefix(PREFIX).ok_or_else(invalid)?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        if raw.len() < HEADER_LEN + NONCE_LEN + 16 {
            return Err(invalid());
        }
        let (header, rest) = raw.split_at(HEADER_LEN);
        let [format, k0, k1, k2, k3] = *header else {
            return Err(invalid());
        };
        if format != FORMAT {
            return Err(invalid());
        }
        let id = u32::from_be_bytes([k0, k1, k2, k3]);
        // A version retired from the ring no longer opens its messages.
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| *k == id)
            .ok_or_else(invalid)?;
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid())?;
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(&Self::aad(header, account)), &mut buf)
            .map_err(|_| invalid())?;
        String::from_utf8(plain.to_vec()).map_err(|_| invalid())
    }
}

/// The fuzz target's entry point (`fuzz/fuzz_targets/authz_message.rs`): opens `data` as an
/// encoded message under a two-version sealer, and checks that what opens is what was sealed
/// when `data` is one of its own messages with a byte changed. Panics only on a wrong outcome.
#[doc(hidden)]
pub fn fuzz_open(data: &[u8]) {
    const ACCOUNT: &str = "123456789012";
    let (k1, k2) = (SecretBytes::new(vec![1; 32]), SecretBytes::new(vec![2; 32]));
    let Ok(sealer) = MessageSealer::versioned(&[(1, &k1), (2, &k2)]) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = sealer.open(text, ACCOUNT)
    {
        assert_eq!(e.code, "InvalidAuthorizationMessageException");
    }
    // One of its own messages with one byte replaced never opens.
    let Ok(sealed) = sealer.seal("{\"allowed\":false}", ACCOUNT) else {
        return;
    };
    if let Some((&at, &byte)) = data.first().zip(data.get(1)) {
        let mut bytes = sealed.clone().into_bytes();
        let i = usize::from(at) % bytes.len();
        if bytes[i] != byte && byte.is_ascii_alphanumeric() {
            bytes[i] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                // A change in base64 padding bits can leave the bytes as they were.
                if let Ok(plain) = sealer.open(&text, ACCOUNT) {
                    assert_eq!(plain, "{\"allowed\":false}");
                }
            }
        }
    }
}

/// The decoded message, shaped like AWS's (`allowed`, `explicitDeny`, `matchedStatements`,
/// `failures`, `context`) with keyless's explanation added.
pub fn describe(
    decision: &Decision,
    principal_id: &str,
    principal_arn: &str,
    action: &str,
    resource: &str,
    context: &Context,
) -> String {
    let mut conditions: Vec<serde_json::Value> = context
        .iter()
        .map(|(k, v)| {
            let values: Vec<serde_json::Value> = match v {
                ContextValue::Single(s) => vec![serde_json::json!({ "value": s })],
                ContextValue::Multi(vs) => vs
                    .iter()
                    .map(|s| serde_json::json!({ "value": s }))
                    .collect(),
            };
            serde_json::json!({ "key": k, "values": { "items": values } })
        })
        .collect();
    conditions.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    let matched: Vec<serde_json::Value> = decision
        .statement()
        .map(|s| serde_json::json!({ "policy": s.to_string() }))
        .into_iter()
        .collect();
    serde_json::json!({
        "allowed": decision.kind() == DecisionKind::Allowed,
        "explicitDeny": decision.kind() == DecisionKind::ExplicitlyDenied,
        "decision": decision.kind().as_str(),
        "explanation": decision.explanation(),
        "matchedStatements": { "items": matched },
        "failures": { "items": [] },
        "context": {
            "principal": { "id": principal_id, "arn": principal_arn },
            "action": action,
            "resource": resource,
            "conditions": { "items": conditions },
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "123456789012";

    fn sealer() -> MessageSealer {
        MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap()
    }

    #[test]
    fn round_trip() {
        let s = sealer();
        let sealed = s.seal("{\"allowed\":false}", A).unwrap();
        assert_eq!(s.open(&sealed, A).unwrap(), "{\"allowed\":false}");
    }

    #[test]
    fn messages_never_start_with_a_dash() {
        let s = sealer();
        for _ in 0..256 {
            assert!(s.seal("{}", A).unwrap().starts_with('K'));
        }
    }

    #[test]
    fn tampered_or_foreign_messages_are_refused() {
        let s = sealer();
        let mut sealed = s.seal("{}", A).unwrap().into_bytes();
        let last = sealed.len() - 2;
        sealed[last] = if sealed[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(sealed).unwrap();
        for bad in [
            tampered.as_str(),
            "",
            "!!!",
            "AAAA",
            &"A".repeat(MAX_ENCODED_LEN + 1),
        ] {
            assert_eq!(
                s.open(bad, A).unwrap_err().code,
                "InvalidAuthorizationMessageException",
                "{bad:.20}"
            );
        }
        let other = MessageSealer::new(&SecretBytes::new(vec![8; 32])).unwrap();
        assert!(other.open(&s.seal("{}", A).unwrap(), A).is_err());
        // A message about a principal in one account does not open for a caller in another.
        let theirs = s.seal("{}", "210987654321").unwrap();
        assert_eq!(
            s.open(&theirs, A).unwrap_err().code,
            "InvalidAuthorizationMessageException"
        );
        assert_eq!(s.open(&theirs, "210987654321").unwrap(), "{}");
    }

    #[test]
    fn the_newest_version_seals_and_every_version_present_opens() {
        let (k1, k2) = (SecretBytes::new(vec![1; 32]), SecretBytes::new(vec![2; 32]));
        let before = MessageSealer::versioned(&[(1, &k1)]).unwrap();
        let old = before.seal("{\"v\":1}", A).unwrap();
        // Rotated: version 2 seals, and version 1's messages still open.
        let after = MessageSealer::versioned(&[(1, &k1), (2, &k2)]).unwrap();
        assert_eq!(after.open(&old, A).unwrap(), "{\"v\":1}");
        let new = after.seal("{\"v\":2}", A).unwrap();
        assert_eq!(after.open(&new, A).unwrap(), "{\"v\":2}");
        assert!(
            before.open(&new, A).is_err(),
            "version 2 is unknown before the rotation"
        );
        // Version 1 retired: its messages no longer open.
        let retired = MessageSealer::versioned(&[(2, &k2)]).unwrap();
        assert!(retired.open(&old, A).is_err());
        assert_eq!(retired.open(&new, A).unwrap(), "{\"v\":2}");
        // A message naming version 2 but sealed under another key of that number is refused.
        let impostor = MessageSealer::versioned(&[(2, &k1)]).unwrap();
        assert!(after.open(&impostor.seal("{}", A).unwrap(), A).is_err());
        assert!(MessageSealer::versioned(&[]).is_err());
    }
}
