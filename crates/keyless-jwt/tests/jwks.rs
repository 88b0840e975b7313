//! JWKS parsing: limits, ignored keys and malformed keys.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failure must panic"
)]

use keyless_jwt::*;
use serde_json::{Value, json};

fn parse(v: &Value) -> Result<Jwks, JwksError> {
    Jwks::from_json(v.to_string().as_bytes())
}

fn rsa_jwk() -> Value {
    Signer::generate(Alg::RS256, "r").unwrap().public_jwk()
}

#[test]
fn parses_each_key_type() {
    let mut keys = Vec::new();
    for alg in Alg::ALL {
        keys.push(Signer::generate(alg, alg.name()).unwrap().public_jwk());
    }
    let jwks = parse(&json!({ "keys": keys })).unwrap();
    assert_eq!(jwks.len(), 10);
    assert!(jwks.contains_kid("ES512"));
    assert!(!jwks.contains_kid("nope"));
    let k = jwks
        .keys()
        .iter()
        .find(|k| k.kid() == Some("EdDSA"))
        .unwrap();
    assert_eq!(k.kty(), KeyType::Okp);
    assert!(k.fits(Alg::EdDSA) && !k.fits(Alg::ES256));
}

#[test]
fn ignores_non_signature_and_unsupported_keys() {
    let mut enc = rsa_jwk();
    enc["use"] = json!("enc");
    let mut oaep = rsa_jwk();
    oaep["alg"] = json!("RSA-OAEP");
    let oct = json!({"kty":"oct","k":"c2VjcmV0","kid":"h"});
    let secp = json!({"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"});
    let ed448 = json!({"kty":"OKP","crv":"Ed448","x":"AA"});
    let hs = json!({"kty":"RSA","alg":"HS256","n":"AA","e":"AQAB"});
    let jwks = parse(&json!({"keys":[enc, oaep, oct, secp, ed448, hs, rsa_jwk()]})).unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.skipped(), 6);
}

#[test]
fn keys_whose_key_ops_exclude_verify_are_ignored() {
    // `key_ops` says what a key is for, as `use` does: a key published for encryption or
    // wrapping only must not verify signatures (one RSA key used both ways lets a decryption
    // oracle forge signatures).
    let with_ops = |ops: Value| {
        let mut k = rsa_jwk();
        k.as_object_mut().unwrap().remove("use");
        k["key_ops"] = ops;
        k
    };
    let jwks = parse(&json!({"keys":[
        with_ops(json!(["encrypt", "wrapKey"])),
        with_ops(json!([])),
        with_ops(json!(["verify"])),
        with_ops(json!(["sign", "verify"])),
    ]}))
    .unwrap();
    assert_eq!((jwks.len(), jwks.skipped()), (2, 2));
    assert_eq!(
        parse(&json!({"keys":[with_ops(json!("verify"))]})).unwrap_err(),
        JwksError::InvalidKey {
            index: 0,
            reason: "key_ops is not an array of strings"
        }
    );
}

#[test]
fn structural_errors() {
    assert_eq!(
        Jwks::from_json(b"nope").unwrap_err(),
        JwksError::Malformed("invalid JSON".into())
    );
    assert_eq!(
        parse(&json!({"keys":{}})).unwrap_err(),
        JwksError::Malformed("\"keys\" must be an array".into())
    );
    assert_eq!(
        parse(&json!({})).unwrap_err(),
        JwksError::Malformed("\"keys\" must be an array".into())
    );
    assert_eq!(
        parse(&json!({"keys":[5]})).unwrap_err(),
        JwksError::InvalidKey {
            index: 0,
            reason: "not a JSON object"
        }
    );
    assert_eq!(
        Jwks::from_json(br#"{"keys":[],"keys":[]}"#).unwrap_err(),
        JwksError::Malformed("duplicate JSON key".into())
    );
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    assert_eq!(Jwks::from_json(&big).unwrap_err(), JwksError::TooLarge);
}

#[test]
fn key_count_limits() {
    let k = rsa_jwk();
    let hundred: Vec<Value> = (0..100).map(|_| k.clone()).collect();
    assert_eq!(parse(&json!({ "keys": hundred })).unwrap().len(), 100);
    let too_many: Vec<Value> = (0..101).map(|_| k.clone()).collect();
    assert_eq!(
        parse(&json!({ "keys": too_many })).unwrap_err(),
        JwksError::TooManyKeys("RSA")
    );
    let ec = Signer::generate(Alg::ES256, "e").unwrap().public_jwk();
    let too_many: Vec<Value> = (0..101).map(|_| ec.clone()).collect();
    assert_eq!(
        parse(&json!({ "keys": too_many })).unwrap_err(),
        JwksError::TooManyKeys("EC/OKP")
    );
}

#[test]
fn malformed_keys_are_errors() {
    let bad = |k: Value, reason: &'static str| {
        assert_eq!(
            parse(&json!({"keys":[k.clone()]})).unwrap_err(),
            JwksError::InvalidKey { index: 0, reason },
            "{k}"
        );
    };
    let mut k = rsa_jwk();
    k["n"] = json!("AQAB");
    bad(k, "RSA modulus must be 2048 to 8192 bits");
    let mut k = rsa_jwk();
    k["n"] = json!(base64_url(&[0xffu8; 1025])); // 8200 bits
    bad(k, "RSA modulus must be 2048 to 8192 bits");
    let mut k = rsa_jwk();
    k["n"] = json!(base64_url(&[0xffu8; 1600]));
    bad(
        k,
        "a key parameter is not a string of at most 2048 characters",
    );
    let mut k = rsa_jwk();
    k["n"] = json!("!!!");
    bad(k, "a key parameter is not unpadded base64url");
    let mut k = rsa_jwk();
    k["e"] = json!(base64_url(&[1, 0, 0, 0, 1]));
    bad(k, "RSA exponent must be 1 to 4 bytes");
    let mut k = rsa_jwk();
    k.as_object_mut().unwrap().remove("e");
    bad(k, "a required key parameter is missing");
    let mut k = rsa_jwk();
    k["alg"] = json!("ES256");
    bad(k, "an RSA key's alg must be RS* or PS*");
    let mut k = rsa_jwk();
    k["kty"] = json!(1);
    bad(k, "kty is missing or not a string");
    let mut k = rsa_jwk();
    k["kid"] = json!(["x"]);
    bad(k, "kid must be a string of at most 1024 bytes");
    // 1024-bit modulus (too small) built by hand.
    let mut n = vec![0xc5u8; 128];
    n[127] |= 1;
    bad(
        json!({"kty":"RSA","n":base64_url(&n),"e":"AQAB"}),
        "RSA modulus must be 2048 to 8192 bits",
    );

    let ec = Signer::generate(Alg::ES256, "e").unwrap().public_jwk();
    let mut k = ec.clone();
    k["x"] = json!(base64_url(&[1u8; 31]));
    bad(k, "EC coordinates have the wrong length for the curve");
    let mut k = ec.clone();
    k["y"] = json!(base64_url(&[7u8; 32]));
    bad(k, "EC point is not on the curve");
    let mut k = ec.clone();
    k["alg"] = json!("ES384");
    bad(k, "an EC key's alg does not match its curve");
    let mut k = ec.clone();
    k["crv"] = json!(null);
    bad(k, "crv is missing or not a string");
    let ed = Signer::generate(Alg::EdDSA, "d").unwrap().public_jwk();
    let mut k = ed.clone();
    k["x"] = json!(base64_url(&[1u8; 31]));
    bad(k, "Ed25519 public key must be 32 bytes");
    let mut k = ed;
    k["alg"] = json!("ES256");
    bad(k, "an OKP key's alg must be EdDSA");
}

#[test]
fn private_key_material_is_an_error() {
    // A provider that publishes a private key lets anyone sign its tokens: the whole document
    // is refused (the provider is noticed, and tokens fail closed) rather than trusted.
    for (k, field) in [
        (Signer::generate(Alg::ES256, "e").unwrap().public_jwk(), "d"),
        (Signer::generate(Alg::EdDSA, "o").unwrap().public_jwk(), "d"),
        (rsa_jwk(), "d"),
        (rsa_jwk(), "p"),
        (rsa_jwk(), "qi"),
    ] {
        let public = parse(&json!({"keys":[k.clone()]})).unwrap();
        let mut k = k;
        k[field] = json!(base64_url(&[7u8; 32]));
        let good = rsa_jwk();
        // The error names the key itself, so a cache can stop trusting it.
        assert_eq!(
            parse(&json!({"keys":[good, k.clone()]})).unwrap_err(),
            JwksError::PrivateKeyPublished {
                index: 1,
                kid: k["kid"].as_str().map(str::to_owned),
                fingerprint: *public.keys()[0].fingerprint(),
            },
            "{field}"
        );
    }
    // A private encryption key is not ours to judge: it is skipped like any encryption key.
    let mut enc = rsa_jwk();
    enc["use"] = json!("enc");
    enc["d"] = json!(base64_url(&[7u8; 32]));
    assert_eq!(parse(&json!({"keys":[enc]})).unwrap().skipped(), 1);
}

#[test]
fn degenerate_rsa_keys_are_errors() {
    // No signature verifies under these (e = 1 makes the signature its own message), so a
    // provider publishing one is broken: say so when the keys are fetched, not per token.
    let mut odd = vec![0xc5u8; 256];
    odd[255] |= 1;
    let mut even = odd.clone();
    even[255] &= 0xfe;
    for (n, e, reason) in [
        (&odd, &[1u8][..], "RSA exponent must be odd and at least 3"),
        (
            &odd,
            &[1, 0, 0][..],
            "RSA exponent must be odd and at least 3",
        ),
        (&odd, &[0, 1][..], "RSA exponent must be odd and at least 3"),
        (&even, &[1, 0, 1][..], "RSA modulus must be odd"),
    ] {
        let k = json!({"kty":"RSA","n":base64_url(n),"e":base64_url(e)});
        assert_eq!(
            parse(&json!({"keys":[k]})).unwrap_err(),
            JwksError::InvalidKey { index: 0, reason },
            "e={e:?}"
        );
    }
    let k = json!({"kty":"RSA","n":base64_url(&odd),"e":base64_url(&[3])});
    assert_eq!(parse(&json!({"keys":[k]})).unwrap().len(), 1);
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn signer_round_trips_pkcs8_and_debug_is_redacted() {
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
        let s = Signer::generate(alg, "k").unwrap();
        let der = s.to_pkcs8().unwrap();
        let s2 = Signer::from_pkcs8(alg, "k", der.expose()).unwrap();
        assert_eq!(s.public_jwk(), s2.public_jwk());
        let shown = format!("{s:?} {der:?}");
        assert!(!shown.contains("BEGIN") && shown.contains("redacted"));
    }
    assert!(Signer::from_pkcs8(Alg::ES256, "k", b"junk").is_err());
    assert_eq!(
        Signer::generate(Alg::ES256, "k")
            .unwrap()
            .sign(&json!([1]))
            .unwrap_err(),
        SignError::Claims
    );
}

#[test]
fn a_key_is_recognised_under_any_kid_or_alg() {
    for alg in [Alg::RS256, Alg::ES384, Alg::EdDSA] {
        let k = Signer::generate(alg, "one").unwrap().public_jwk();
        let mut renamed = k.clone();
        renamed["kid"] = json!("another");
        renamed.as_object_mut().unwrap().remove("alg");
        let other = Signer::generate(alg, "one").unwrap().public_jwk();
        let set = parse(&json!({"keys":[k, renamed, other]})).unwrap();
        let fp: Vec<_> = set.keys().iter().map(|k| *k.fingerprint()).collect();
        assert_eq!(fp[0], fp[1], "{alg:?}: same key, another kid and no alg");
        assert_ne!(fp[0], fp[2], "{alg:?}: another key");
    }
    // RSA integers with leading zero bytes are the same key.
    let k = rsa_jwk();
    let mut padded = k.clone();
    let n = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(k["n"].as_str().unwrap())
            .unwrap()
    };
    padded["n"] = json!(base64_url(&[&[0u8][..], &n].concat()));
    let set = parse(&json!({"keys":[k, padded]})).unwrap();
    assert_eq!(set.keys()[0].fingerprint(), set.keys()[1].fingerprint());
}
