//! A token signer for the development issuer and for tests.
//!
//! It generates a key with aws-lc-rs (the operating system's random source), exports the public
//! JWK / JWKS JSON, and signs claims into a compact JWS. The private key can be exported as
//! PKCS#8 (as [`SecretBytes`]) so a development issuer can keep its key across restarts.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_types::SecretBytes;
use serde_json::{Value, json};

use crate::error::SignError;
use crate::jwks::Alg;

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its `kid` and algorithm. `Debug` never shows the key.
pub struct Signer {
    kid: String,
    alg: Alg,
    key: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn ec_alg(alg: Alg) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match alg {
        Alg::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Alg::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        Alg::ES512 => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
        _ => None,
    }
}

fn rsa_enc(alg: Alg) -> Option<&'static dyn signature::RsaEncoding> {
    match alg {
        Alg::RS256 => Some(&signature::RSA_PKCS1_SHA256),
        Alg::RS384 => Some(&signature::RSA_PKCS1_SHA384),
        Alg::RS512 => Some(&signature::RSA_PKCS1_SHA512),
        Alg::PS256 => Some(&signature::RSA_PSS_SHA256),
        Alg::PS384 => Some(&signature::RSA_PSS_SHA384),
        Alg::PS512 => Some(&signature::RSA_PSS_SHA512),
        _ => None,
    }
}

impl Signer {
    /// Generates a fresh key for `alg` (RSA-2048 for RS*/PS*, the matching curve for ES*,
    /// Ed25519 for EdDSA).
    pub fn generate(alg: Alg, kid: impl Into<String>) -> Result<Signer, SignError> {
        let key = if let Some(ec) = ec_alg(alg) {
            Key::Ec(
                EcdsaKeyPair::generate(ec)
                    .map_err(|_| SignError::Key("EC key generation failed"))?,
            )
        } else if rsa_enc(alg).is_some() {
            Key::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| SignError::Key("RSA key generation failed"))?,
            )
        } else {
            Key::Ed(
                Ed25519KeyPair::generate()
                    .map_err(|_| SignError::Key("Ed25519 key generation failed"))?,
            )
        };
        Ok(Signer {
            kid: kid.into(),
            alg,
            key,
        })
    }

    /// Loads a key previously exported with [`Signer::to_pkcs8`].
    pub fn from_pkcs8(alg: Alg, kid: impl Into<String>, pkcs8: &[u8]) -> Result<Signer, SignError> {
        let key = if let Some(ec) = ec_alg(alg) {
            Key::Ec(
                EcdsaKeyPair::from_pkcs8(ec, pkcs8)
                    .map_err(|_| SignError::Key("not a PKCS#8 key for this curve"))?,
            )
        } else if rsa_enc(alg).is_some() {
            Key::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| SignError::Key("not a PKCS#8 RSA key"))?,
            )
        } else {
            Key::Ed(
                Ed25519KeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| SignError::Key("not a PKCS#8 Ed25519 key"))?,
            )
        };
        Ok(Signer {
            kid: kid.into(),
            alg,
            key,
        })
    }

    /// The private key as PKCS#8 DER.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, SignError> {
        let err = |_| SignError::Key("PKCS#8 export failed");
        let der = match &self.key {
            Key::Rsa(k) => k.as_der().map_err(err)?.as_ref().to_vec(),
            Key::Ec(k) => k.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
            Key::Ed(k) => k.to_pkcs8().map_err(err)?.as_ref().to_vec(),
        };
        Ok(SecretBytes::new(der))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key as a JWK object (`kty`, `kid`, `alg`, `use: sig` and the key parameters).
    pub fn public_jwk(&self) -> Value {
        let b = |x: &[u8]| URL_SAFE_NO_PAD.encode(x);
        match &self.key {
            Key::Rsa(k) => {
                let p = k.public_key();
                json!({"kty":"RSA","kid":self.kid,"alg":self.alg.name(),"use":"sig",
                    "n": b(p.modulus().big_endian_without_leading_zero()),
                    "e": b(p.exponent().big_endian_without_leading_zero())})
            }
            Key::Ec(k) => {
                let point = k.public_key().as_ref();
                let n = (point.len().saturating_sub(1)) / 2;
                let crv = match self.alg {
                    Alg::ES384 => "P-384",
                    Alg::ES512 => "P-521",
                    _ => "P-256",
                };
                let (x, y) = point.get(1..).unwrap_or_default().split_at(n);
                json!({"kty":"EC","kid":self.kid,"alg":self.alg.name(),"use":"sig","crv":crv,"x":b(x),"y":b(y)})
            }
            Key::Ed(k) => {
                json!({"kty":"OKP","kid":self.kid,"alg":"EdDSA","use":"sig","crv":"Ed25519","x":b(k.public_key().as_ref())})
            }
        }
    }

    /// A JWKS document holding this key (`{"keys":[jwk]}`), as JSON text.
    pub fn jwks_json(&self) -> String {
        json!({"keys":[self.public_jwk()]}).to_string()
    }

    /// Signs `claims` (a JSON object) with header `{"alg","typ":"JWT","kid"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, SignError> {
        let header = json!({"alg": self.alg.name(), "typ": "JWT", "kid": self.kid});
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under an arbitrary `header` object (tests use it to forge hostile headers;
    /// the signature is still made with this key's algorithm).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, SignError> {
        if !claims.is_object() || !header.is_object() {
            return Err(SignError::Claims);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.sign_bytes(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Raw signature of `message` with this key's algorithm.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Rsa(k) => {
                let enc =
                    rsa_enc(self.alg).ok_or(SignError::Key("algorithm does not fit an RSA key"))?;
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(enc, &rng, message, &mut sig)
                    .map_err(|_| SignError::Key("RSA signing failed"))?;
                Ok(sig)
            }
            Key::Ec(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| SignError::Key("ECDSA signing failed"))?
                .as_ref()
                .to_vec()),
            Key::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}
