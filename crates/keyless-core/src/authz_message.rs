//! Encoded authorization messages: every `AccessDenied` carries one, and
//! `sts:DecodeAuthorizationMessage` turns it back into the engine's explanation.
//!
//! The message is AES-256-GCM sealed under a key derived from the key ring, so only keyless can
//! read it and a caller learns nothing about policies it may not see.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_policy::{Context, ContextValue, Decision, DecisionKind};
use keyless_types::SecretBytes;

use crate::error::ApiError;

/// Largest encoded message we accept back (AWS: 1-10240 characters).
pub const MAX_ENCODED_LEN: usize = 10240;
const AAD: &[u8] = b"keyless authorization message v1";
const PREFIX: char = 'K';

/// Seals and opens authorization messages.
pub struct MessageSealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for MessageSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageSealer([redacted])")
    }
}

impl MessageSealer {
    /// A sealer from a 32-byte key.
    pub fn new(key: &SecretBytes) -> Result<Self, ApiError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| ApiError::internal())?;
        Ok(MessageSealer {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals the JSON text of a decision.
    pub fn seal(&self, json: &str) -> Result<String, ApiError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = json.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(AAD),
                &mut buf,
            )
            .map_err(|_| ApiError::internal())?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        // A fixed first letter: base64url may start with `-`, which command lines take for an
        // option (`aws sts decode-authorization-message --encoded-message -…` fails).
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens an encoded message; any tampering is `InvalidAuthorizationMessageException`.
    pub fn open(&self, encoded: &str) -> Result<String, ApiError> {
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
        if raw.len() < NONCE_LEN + 16 {
            return Err(invalid());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| invalid())?;
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut buf)
            .map_err(|_| invalid())?;
        String::from_utf8(plain.to_vec()).map_err(|_| invalid())
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

    fn sealer() -> MessageSealer {
        MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap()
    }

    #[test]
    fn round_trip() {
        let s = sealer();
        let sealed = s.seal("{\"allowed\":false}").unwrap();
        assert_eq!(s.open(&sealed).unwrap(), "{\"allowed\":false}");
    }

    #[test]
    fn messages_never_start_with_a_dash() {
        let s = sealer();
        for _ in 0..256 {
            assert!(s.seal("{}").unwrap().starts_with('K'));
        }
    }

    #[test]
    fn tampered_or_foreign_messages_are_refused() {
        let s = sealer();
        let mut sealed = s.seal("{}").unwrap().into_bytes();
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
                s.open(bad).unwrap_err().code,
                "InvalidAuthorizationMessageException",
                "{bad:.20}"
            );
        }
        let other = MessageSealer::new(&SecretBytes::new(vec![8; 32])).unwrap();
        assert!(other.open(&s.seal("{}").unwrap()).is_err());
    }
}
