//! The HMAC chain: signing-key derivation, signatures and constant-time comparison.

use std::fmt;

use keyless_types::SecretString;
use ring::{digest, hmac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::SigV4Error;

/// SHA-256 of the empty string, hex (the payload hash of an empty body).
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// A SigV4 signature (32 bytes). Compared only in constant time: there is no `PartialEq`.
#[derive(Clone)]
pub struct Signature([u8; 32]);

impl Signature {
    /// Parses a 64-character lower- or upper-case hex signature.
    pub fn from_hex(s: &str) -> Result<Self, SigV4Error> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(SigV4Error::Malformed(format!(
                "the signature must be 64 hex characters, got {}",
                s.len()
            )));
        }
        // Every request carries one: checked in one pass, then decoded without branches
        // (`hex::decode_to_slice` matches each character separately).
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SigV4Error::Malformed("the signature is not hex".to_owned()));
        }
        // '0'-'9' are 0x30-0x39, 'a'-'f' / 'A'-'F' are 0x61-0x66 / 0x41-0x46: the low nibble,
        // plus 9 for letters (bit 6 set).
        let nibble = |b: u8| (b & 0x0f) + 9 * (b >> 6);
        for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            *o = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Signature(out))
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Signature) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lower-case hex (signatures are public once sent; expected signatures are never shown).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn from_tag(tag: &hmac::Tag) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Signature(out)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A signature the client sent is not secret, but one we computed must never be
        // shown; we cannot tell which this is, so print nothing.
        f.write_str("Signature(..)")
    }
}

/// A derived SigV4 signing key for one (secret, date, region, service).
///
/// Derivation costs four HMACs; callers that verify many requests of the same credential may
/// cache this (it is valid for one UTC day) and use [`crate::verify_with_key`].
#[derive(Clone)]
pub struct SigningKey {
    key: hmac::Key,
    raw: Zeroizing<[u8; 32]>,
    date: String,
    region: String,
    service: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key", &"[redacted]")
            .field("scope", &self.scope_string())
            .finish()
    }
}

fn hmac_once(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&k, data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

impl SigningKey {
    /// Derives the key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
    pub fn derive(secret: &SecretString, date: &str, region: &str, service: &str) -> Self {
        let mut k0 = Zeroizing::new(Vec::with_capacity(4 + secret.expose().len()));
        k0.extend_from_slice(b"AWS4");
        k0.extend_from_slice(secret.expose().as_bytes());
        let k1 = hmac_once(&k0, date.as_bytes());
        let k2 = hmac_once(&*k1, region.as_bytes());
        let k3 = hmac_once(&*k2, service.as_bytes());
        let k4 = hmac_once(&*k3, b"aws4_request");
        SigningKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, &*k4),
            raw: k4,
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        }
    }

    /// `date/region/service/aws4_request`.
    pub fn scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }

    /// Whether this key was derived for `date/region/service`.
    pub fn matches_scope(&self, date: &str, region: &str, service: &str) -> bool {
        // Not secret; plain comparison is fine.
        self.date == date && self.region == region && self.service == service
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn sign(&self, data: &[u8]) -> Signature {
        Signature::from_tag(&hmac::sign(&self.key, data))
    }

    /// The raw 32-byte key (for re-creating it elsewhere; never log it).
    pub fn expose(&self) -> &[u8; 32] {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decode_as_the_hex_crate_does_in_either_case() {
        for b in 0..=255u8 {
            let bytes = [b; 32];
            let lower = hex::encode(bytes);
            let upper = lower.to_ascii_uppercase();
            for text in [&lower, &upper] {
                assert_eq!(Signature::from_hex(text).map(|s| s.0).ok(), Some(bytes));
            }
        }
    }

    #[test]
    fn every_non_hex_character_is_refused() {
        for c in (0..=127u8).filter(|c| !c.is_ascii_hexdigit()) {
            let mut text = "0".repeat(64).into_bytes();
            text[17] = c;
            let text = String::from_utf8(text).unwrap();
            assert!(matches!(
                Signature::from_hex(&text),
                Err(SigV4Error::Malformed(m)) if m == "the signature is not hex"
            ));
        }
        let mut multibyte = "0".repeat(62);
        multibyte.push('é');
        assert!(Signature::from_hex(&multibyte).is_err());
        assert!(Signature::from_hex(&"0".repeat(63)).is_err());
    }
}
