//! JSON Web Key Sets: bounded parsing into pre-parsed aws-lc-rs verification keys.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::JwksError;

/// Largest JWKS document accepted (1 MiB, the fetch cap too).
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// At most this many RSA keys, and separately this many EC/OKP keys, per JWKS.
pub const MAX_KEYS_PER_FAMILY: usize = 100;

/// JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A signature algorithm of the allow-list. There is no `none` and no HMAC variant, so neither
/// can ever be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// ECDSA P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// All allowed algorithms.
    pub const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// Parses a JOSE `alg` name; `None` for anything outside the allow-list (`none`, `HS256`, ...).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

/// The key type of a JWK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC`.
    Ec,
    /// `kty: OKP` (Ed25519 only).
    Okp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn coord_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
    fn verify_alg(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }
    fn alg(self) -> Alg {
        match self {
            Curve::P256 => Alg::ES256,
            Curve::P384 => Alg::ES384,
            Curve::P521 => Alg::ES512,
        }
    }
}

/// One verification key of a JWKS, pre-parsed for every algorithm it may verify.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    kty: KeyType,
    alg: Option<Alg>,
    /// (algorithm, pre-parsed key): the key can verify exactly these algorithms.
    parsed: Vec<(Alg, ParsedPublicKey)>,
    fingerprint: KeyFingerprint,
}

/// SHA-256 of a key's type and public material (leading zeros of RSA integers stripped), so
/// the same key is recognised whatever `kid`, `alg` or `use` it is published under.
pub type KeyFingerprint = [u8; 32];

fn fingerprint_of(kty: KeyType, parts: &[&[u8]]) -> KeyFingerprint {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let tag: &[u8] = match kty {
        KeyType::Rsa => b"keyless/v1/jwk/RSA",
        KeyType::Ec => b"keyless/v1/jwk/EC",
        KeyType::Okp => b"keyless/v1/jwk/OKP",
    };
    ctx.update(tag);
    for part in parts {
        // Length-prefixed, so (n, e) cannot be re-split into another key's parts.
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// The key id, if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The key type.
    pub fn kty(&self) -> KeyType {
        self.kty
    }
    /// The JWK's `alg`, when present (then it is the only algorithm the key verifies).
    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }
    /// What identifies the key itself ([`KeyFingerprint`]).
    pub fn fingerprint(&self) -> &KeyFingerprint {
        &self.fingerprint
    }
    /// Whether this key can verify tokens signed with `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), KeyUse> {
        let (_, key) = self
            .parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(KeyUse::Mismatch)?;
        key.verify_sig(message, sig)
            .map_err(|_| KeyUse::BadSignature)
    }
}

pub(crate) enum KeyUse {
    Mismatch,
    BadSignature,
}

/// A parsed JSON Web Key Set.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: usize,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys":[...]}`).
    ///
    /// Keys whose `use` is not `sig` or whose `key_ops` lack `verify`, whose `kty` is not
    /// RSA/EC/OKP, whose `alg` is outside the allow-list or whose curve is unsupported are
    /// ignored (counted in [`Jwks::skipped`]).
    /// A supported key that is malformed (bad base64, point not on the curve, RSA modulus outside
    /// 2048..=8192 bits or even, RSA exponent even or 1) or that carries private key material
    /// makes the whole document an error, so a broken provider is noticed.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, JwksError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc =
            crate::json::parse_object(bytes).map_err(|e| JwksError::Malformed(e.to_owned()))?;
        let keys = match doc.get("keys") {
            Some(Value::Array(keys)) => keys,
            _ => return Err(JwksError::Malformed("\"keys\" must be an array".to_owned())),
        };
        let (mut rsa, mut other) = (0usize, 0usize);
        let mut out = Jwks::default();
        for (index, key) in keys.iter().enumerate() {
            let invalid = |reason| JwksError::InvalidKey { index, reason };
            let Value::Object(key) = key else {
                return Err(invalid("not a JSON object"));
            };
            match key.get("use") {
                None => {}
                Some(Value::String(u)) if u == "sig" => {}
                Some(Value::String(_)) => {
                    out.skipped += 1;
                    continue;
                }
                Some(_) => return Err(invalid("use is not a string")),
            }
            // `key_ops` (RFC 7517 §4.3) limits a key as `use` does: one not for "verify" is
            // an encryption or wrapping key here.
            match key.get("key_ops") {
                None => {}
                Some(Value::Array(ops)) if !ops.iter().all(Value::is_string) => {
                    return Err(invalid("key_ops is not an array of strings"));
                }
                Some(Value::Array(ops)) if !ops.iter().any(|op| op == "verify") => {
                    out.skipped += 1;
                    continue;
                }
                Some(Value::Array(_)) => {}
                Some(_) => return Err(invalid("key_ops is not an array of strings")),
            }
            let kid = match key.get("kid") {
                None => None,
                Some(Value::String(k)) if k.len() <= 1024 => Some(k.clone()),
                Some(_) => return Err(invalid("kid must be a string of at most 1024 bytes")),
            };
            let alg = match key.get("alg") {
                None => None,
                Some(Value::String(a)) => match Alg::from_name(a) {
                    Some(a) => Some(a),
                    None => {
                        out.skipped += 1;
                        continue;
                    }
                },
                Some(_) => return Err(invalid("alg is not a string")),
            };
            let kty = match key.get("kty") {
                Some(Value::String(k)) if k == "RSA" => KeyType::Rsa,
                Some(Value::String(k)) if k == "EC" => KeyType::Ec,
                Some(Value::String(k)) if k == "OKP" => KeyType::Okp,
                Some(Value::String(_)) => {
                    out.skipped += 1;
                    continue;
                }
                _ => return Err(invalid("kty is missing or not a string")),
            };
            // A published private key lets anyone sign this provider's tokens (RFC 7517 §5:
            // a public set holds none), so the provider is broken, not its one key. Its public
            // part is still read, so that a cache can stop trusting that very key.
            let leaked = PRIVATE_MEMBERS.iter().any(|m| key.contains_key(*m));
            let field = |name: &'static str| -> Result<Vec<u8>, JwksError> {
                match key.get(name) {
                    Some(Value::String(s)) if s.len() <= 2048 => URL_SAFE_NO_PAD
                        .decode(s)
                        .map_err(|_| invalid("a key parameter is not unpadded base64url")),
                    Some(_) => Err(invalid(
                        "a key parameter is not a string of at most 2048 characters",
                    )),
                    None => Err(invalid("a required key parameter is missing")),
                }
            };
            let (parsed, fingerprint) = match kty {
                KeyType::Rsa => {
                    rsa += 1;
                    if rsa > MAX_KEYS_PER_FAMILY {
                        return Err(JwksError::TooManyKeys("RSA"));
                    }
                    if alg.is_some_and(|a| a.rsa_params().is_none()) {
                        return Err(invalid("an RSA key's alg must be RS* or PS*"));
                    }
                    let n = field("n")?;
                    let e = field("e")?;
                    let n = strip_zeros(&n);
                    let e = strip_zeros(&e);
                    let bits = bit_len(n);
                    if !(2048..=8192).contains(&bits) {
                        return Err(invalid("RSA modulus must be 2048 to 8192 bits"));
                    }
                    if e.is_empty() || e.len() > 4 {
                        return Err(invalid("RSA exponent must be 1 to 4 bytes"));
                    }
                    // No signature verifies under these: say so at fetch time, not per token.
                    if e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
                        return Err(invalid("RSA exponent must be odd and at least 3"));
                    }
                    if n.last().is_none_or(|b| b & 1 == 0) {
                        return Err(invalid("RSA modulus must be odd"));
                    }
                    let comps = RsaPublicKeyComponents { n, e };
                    let mut parsed = Vec::new();
                    for a in Alg::ALL {
                        let Some(params) = a.rsa_params() else {
                            continue;
                        };
                        if alg.is_some_and(|want| want != a) {
                            continue;
                        }
                        let p = comps
                            .to_parsed_public_key(params)
                            .map_err(|_| invalid("RSA key rejected by the crypto library"))?;
                        parsed.push((a, p));
                    }
                    (parsed, fingerprint_of(kty, &[n, e]))
                }
                KeyType::Ec => {
                    other += 1;
                    if other > MAX_KEYS_PER_FAMILY {
                        return Err(JwksError::TooManyKeys("EC/OKP"));
                    }
                    let curve = match key.get("crv") {
                        Some(Value::String(c)) if c == "P-256" => Curve::P256,
                        Some(Value::String(c)) if c == "P-384" => Curve::P384,
                        Some(Value::String(c)) if c == "P-521" => Curve::P521,
                        Some(Value::String(_)) => {
                            out.skipped += 1;
                            continue;
                        }
                        _ => return Err(invalid("crv is missing or not a string")),
                    };
                    if alg.is_some_and(|a| a != curve.alg()) {
                        return Err(invalid("an EC key's alg does not match its curve"));
                    }
                    let x = field("x")?;
                    let y = field("y")?;
                    let n = curve.coord_len();
                    if x.len() != n || y.len() != n {
                        return Err(invalid(
                            "EC coordinates have the wrong length for the curve",
                        ));
                    }
                    let mut point = Vec::with_capacity(1 + 2 * n);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    let p = ParsedPublicKey::new(curve.verify_alg(), &point)
                        .map_err(|_| invalid("EC point is not on the curve"))?;
                    (vec![(curve.alg(), p)], fingerprint_of(kty, &[&point]))
                }
                KeyType::Okp => {
                    other += 1;
                    if other > MAX_KEYS_PER_FAMILY {
                        return Err(JwksError::TooManyKeys("EC/OKP"));
                    }
                    match key.get("crv") {
                        Some(Value::String(c)) if c == "Ed25519" => {}
                        Some(Value::String(_)) => {
                            out.skipped += 1;
                            continue;
                        }
                        _ => return Err(invalid("crv is missing or not a string")),
                    }
                    if alg.is_some_and(|a| a != Alg::EdDSA) {
                        return Err(invalid("an OKP key's alg must be EdDSA"));
                    }
                    let x = field("x")?;
                    if x.len() != 32 {
                        return Err(invalid("Ed25519 public key must be 32 bytes"));
                    }
                    let p = ParsedPublicKey::new(&signature::ED25519, &x)
                        .map_err(|_| invalid("Ed25519 key rejected by the crypto library"))?;
                    (vec![(Alg::EdDSA, p)], fingerprint_of(kty, &[&x]))
                }
            };
            if leaked {
                return Err(JwksError::PrivateKeyPublished {
                    index,
                    kid,
                    fingerprint,
                });
            }
            out.keys.push(Jwk {
                kid,
                kty,
                alg,
                parsed,
                fingerprint,
            });
        }
        Ok(out)
    }

    /// The usable keys.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys were ignored (encryption keys, unsupported types, curves or algorithms).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The set without the keys `untrusted` rejects, and whether any went.
    pub fn without(&self, untrusted: impl Fn(&Jwk) -> bool) -> (Jwks, bool) {
        let keys: Vec<Jwk> = self
            .keys
            .iter()
            .filter(|k| !untrusted(k))
            .cloned()
            .collect();
        let removed = keys.len() < self.keys.len();
        let set = Jwks {
            keys,
            skipped: self.skipped,
        };
        (set, removed)
    }

    /// Whether a key with this `kid` is present.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Finds the key for a token: by `kid` when the token has one (a key whose type fits the
    /// algorithm wins over a same-`kid` key that does not); without a `kid`, only when exactly one
    /// key fits the algorithm. `Err(true)`: a key exists for the kid but cannot verify `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Alg) -> Result<&Jwk, bool> {
        match kid {
            Some(kid) => {
                let mut same_kid = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if same_kid.peek().is_none() {
                    return Err(false);
                }
                same_kid.find(|k| k.fits(alg)).ok_or(true)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Ok(k),
                    _ => Err(false),
                }
            }
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}
