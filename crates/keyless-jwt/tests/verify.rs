//! Verification tests: every input path with malformed, oversized, wrong-type and hostile values.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failure must panic"
)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_jwt::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

const ISS: &str = "https://token.actions.githubusercontent.com";
const AUD: &str = "sts.amazonaws.com";
const NOW: i64 = 1_800_000_000;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn validation() -> Validation {
    Validation::new(ISS, vec![AUD.to_owned()])
}

fn github_claims() -> Value {
    json!({
        "jti": "6f6b5f0e-1111-2222-3333-444444444444",
        "sub": "repo:octo-org/demo:ref:refs/heads/main",
        "aud": AUD,
        "ref": "refs/heads/main",
        "sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
        "repository": "octo-org/demo",
        "repository_owner": "octo-org",
        "repository_id": "123456",
        "run_attempt": "1",
        "actor": "octocat",
        "event_name": "push",
        "ref_protected": "true",
        "runner_environment": "github-hosted",
        "iss": ISS,
        "nbf": NOW - 10,
        "exp": NOW + 290,
        "iat": NOW - 10,
    })
}

fn setup(alg: Alg) -> (Signer, Jwks) {
    let s = Signer::generate(alg, "key-1").unwrap();
    let jwks = Jwks::from_json(s.jwks_json().as_bytes()).unwrap();
    (s, jwks)
}

fn with(mut claims: Value, k: &str, v: Value) -> Value {
    claims[k] = v;
    claims
}

fn without(mut claims: Value, k: &str) -> Value {
    claims.as_object_mut().unwrap().remove(k);
    claims
}

#[test]
fn every_allowed_algorithm_verifies() {
    for alg in Alg::ALL {
        let (s, jwks) = setup(alg);
        let t = s.sign(&github_claims()).unwrap();
        let v = verify(&t, &jwks, &validation(), now()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(v.alg(), alg);
        assert_eq!(v.subject(), "repo:octo-org/demo:ref:refs/heads/main");
        assert_eq!(v.audience(), AUD);
        assert_eq!(v.kid(), Some("key-1"));
    }
}

#[test]
fn peek_reveals_issuer_kid_alg_without_verifying() {
    let (s, _) = setup(Alg::ES256);
    let t = s.sign(&github_claims()).unwrap();
    let p = peek(&t).unwrap();
    assert_eq!(
        p,
        Peeked {
            iss: Some(ISS.into()),
            kid: Some("key-1".into()),
            alg: "ES256".into()
        }
    );
    // peek works on alg=none too: it only picks the provider.
    let none = format!("{}.{}.", b64(&json!({"alg":"none"})), b64(&github_claims()));
    assert_eq!(peek(&none).unwrap().alg, "none");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let (s, jwks) = setup(Alg::RS256);
    let body = b64(&github_claims());
    // alg none, empty signature
    let t = format!("{}.{body}.", b64(&json!({"alg":"none","kid":"key-1"})));
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    // alg none with a copied RS256 signature
    let good = s.sign(&github_claims()).unwrap();
    let sig = good.rsplit('.').next().unwrap();
    let t = format!("{}.{body}.{sig}", b64(&json!({"alg":"none","kid":"key-1"})));
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    // HS256 "signed" with the public key (the classic key-confusion attack).
    let input = format!("{}.{body}", b64(&json!({"alg":"HS256","kid":"key-1"})));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, s.jwks_json().as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(e, JwtError::AlgorithmNotAllowed);
    assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    for alg in [
        "HS384", "HS512", "none", "None", "NONE", "rs256", "ES256K", "RSA-OAEP", "",
    ] {
        let t = format!("{}.{body}.AAAA", b64(&json!({"alg":alg,"kid":"key-1"})));
        assert_eq!(
            verify(&t, &jwks, &validation(), now()).unwrap_err(),
            JwtError::AlgorithmNotAllowed,
            "{alg}"
        );
    }
}

#[test]
fn provider_algorithm_list_narrows_the_allow_list() {
    let (s, jwks) = setup(Alg::ES256);
    let t = s.sign(&github_claims()).unwrap();
    let mut v = validation();
    v.algorithms = vec![Alg::RS256];
    assert_eq!(
        verify(&t, &jwks, &v, now()).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    v.algorithms = vec![Alg::RS256, Alg::ES256];
    verify(&t, &jwks, &v, now()).unwrap();
}

#[test]
fn key_type_must_fit_the_algorithm() {
    // An RSA key cannot verify ES256 even with the same kid.
    let (_, rsa_jwks) = setup(Alg::RS256);
    let ec = Signer::generate(Alg::ES256, "key-1").unwrap();
    let t = ec.sign(&github_claims()).unwrap();
    assert_eq!(
        verify(&t, &rsa_jwks, &validation(), now()).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    // A JWK alg (RS256) must equal the header alg: a PS256 token is refused by that key.
    let rs = Signer::generate(Alg::RS256, "key-1").unwrap();
    let jwks = Jwks::from_json(rs.jwks_json().as_bytes()).unwrap();
    let ps = Signer::from_pkcs8(Alg::PS256, "key-1", rs.to_pkcs8().unwrap().expose()).unwrap();
    let t = ps.sign(&github_claims()).unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    // Without a JWK alg, the same RSA key verifies PS256 too.
    let mut jwk = rs.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let jwks = Jwks::from_json(json!({"keys":[jwk]}).to_string().as_bytes()).unwrap();
    verify(&t, &jwks, &validation(), now()).unwrap();
    // An ES384 token against a P-256 key with the same kid.
    let (_, p256) = setup(Alg::ES256);
    let t = Signer::generate(Alg::ES384, "key-1")
        .unwrap()
        .sign(&github_claims())
        .unwrap();
    assert_eq!(
        verify(&t, &p256, &validation(), now()).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
}

#[test]
fn unknown_kid_and_missing_kid() {
    let (s, jwks) = setup(Alg::RS256);
    let other = Signer::generate(Alg::RS256, "key-2").unwrap();
    let t = other.sign(&github_claims()).unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(e, JwtError::UnknownKey);
    assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    assert!(
        e.to_string()
            .starts_with("Couldn't retrieve verification key from your identity provider")
    );
    // No kid: accepted when exactly one key fits the algorithm.
    let t = s
        .sign_with_header(&json!({"alg":"RS256"}), &github_claims())
        .unwrap();
    verify(&t, &jwks, &validation(), now()).unwrap();
    // No kid with two candidate keys: refused rather than trying each.
    let two = json!({"keys":[s.public_jwk(), other.public_jwk()]}).to_string();
    let two = Jwks::from_json(two.as_bytes()).unwrap();
    assert_eq!(
        verify(&t, &two, &validation(), now()).unwrap_err(),
        JwtError::UnknownKey
    );
}

#[test]
fn embedded_jwk_jku_x5u_are_never_honoured() {
    let (_, jwks) = setup(Alg::RS256);
    let attacker = Signer::generate(Alg::RS256, "key-1").unwrap();
    let header = json!({"alg":"RS256","kid":"key-1","jwk":attacker.public_jwk(),
        "jku":"https://evil.example/jwks","x5u":"https://evil.example/cert"});
    let t = attacker
        .sign_with_header(&header, &github_claims())
        .unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn tampered_payload_or_signature_fails() {
    let (s, jwks) = setup(Alg::RS256);
    let t = s.sign(&github_claims()).unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let evil = b64(&with(
        github_claims(),
        "sub",
        json!("repo:octo-org/demo-evil:ref:refs/heads/main"),
    ));
    let t2 = format!("{}.{evil}.{}", parts[0], parts[2]);
    let e = verify(&t2, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(e, JwtError::BadSignature);
    assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let t3 = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        verify(&t3, &jwks, &validation(), now()).unwrap_err(),
        JwtError::BadSignature
    );
    // truncated / empty signature
    let t4 = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        verify(&t4, &jwks, &validation(), now()).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn malformed_tokens() {
    let (_, jwks) = setup(Alg::RS256);
    let body = b64(&github_claims());
    let hdr = b64(&json!({"alg":"RS256","kid":"key-1"}));
    let cases: Vec<(String, JwtError)> = vec![
        ("abc".into(), JwtError::Size),
        ("a".repeat(20_001), JwtError::Size),
        (
            "abcd".into(),
            JwtError::Malformed("a JWT has exactly three dot-separated parts"),
        ),
        (
            format!("{hdr}.{body}"),
            JwtError::Malformed("a JWT has exactly three dot-separated parts"),
        ),
        (
            format!("{hdr}.{body}.AA.AA"),
            JwtError::Malformed("a JWT has exactly three dot-separated parts"),
        ),
        (
            format!(".{body}.AA"),
            JwtError::Malformed("empty header or payload"),
        ),
        (
            format!("{hdr}.{body}=.AA"),
            JwtError::Malformed("a part is not unpadded base64url"),
        ),
        (
            format!("{hdr}.{body}.A+/A"),
            JwtError::Malformed("a part is not unpadded base64url"),
        ),
        (
            format!("{}.{body}.AA", URL_SAFE_NO_PAD.encode("not json")),
            JwtError::Malformed("invalid JSON"),
        ),
        (
            format!("{}.{body}.AA", URL_SAFE_NO_PAD.encode("[1]")),
            JwtError::Malformed("JSON is not an object"),
        ),
        (
            format!("{}.{body}.AA", b64(&json!({"kid":"key-1"}))),
            JwtError::Malformed("header alg is missing or not a short string"),
        ),
        (
            format!("{}.{body}.AA", b64(&json!({"alg":256}))),
            JwtError::Malformed("header alg is missing or not a short string"),
        ),
        (
            format!("{}.{body}.AA", b64(&json!({"alg":"RS256","kid":7}))),
            JwtError::Malformed("header kid is not a string of at most 1024 bytes"),
        ),
        (
            format!(
                "{}.{body}.AA",
                b64(&json!({"alg":"RS256","crit":["exp"],"exp":1}))
            ),
            JwtError::CriticalHeader,
        ),
        (
            format!(
                "{hdr}.{}.AA",
                URL_SAFE_NO_PAD.encode(r#"{"sub":"a","sub":"b"}"#)
            ),
            JwtError::Malformed("duplicate JSON key"),
        ),
        (
            format!("{hdr}.{}.AA", URL_SAFE_NO_PAD.encode(r#"{"a":1} x"#)),
            JwtError::Malformed("trailing data after JSON"),
        ),
        (
            format!(
                "{hdr}.{}.AA",
                URL_SAFE_NO_PAD.encode(format!("{{\"a\":{}{}}}", "[".repeat(20), "]".repeat(20)))
            ),
            JwtError::Malformed("invalid JSON"),
        ),
        (
            format!(
                "{}.{body}.AA",
                URL_SAFE_NO_PAD.encode(format!(
                    "{{\"alg\":\"RS256\",\"x\":\"{}\"}}",
                    "a".repeat(5000)
                ))
            ),
            JwtError::Malformed("header too large"),
        ),
    ];
    for (t, want) in cases {
        assert_eq!(
            verify(&t, &jwks, &validation(), now()).unwrap_err(),
            want,
            "{}",
            &t[..t.len().min(60)]
        );
        assert_eq!(want.aws_code(), AwsCode::InvalidIdentityToken);
    }
}

#[test]
fn error_messages_never_echo_the_token() {
    let (s, jwks) = setup(Alg::RS256);
    let secretish = "SUPERSECRETMARKER";
    let claims = with(
        github_claims(),
        "iss",
        json!(format!("https://{secretish}")),
    );
    let t = s.sign(&claims).unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(
        e,
        JwtError::WrongIssuer {
            expected: ISS.into()
        }
    );
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(secretish));
        assert!(!shown.contains(&t[..20]));
    }
    let hdr = json!({"alg": format!("{secretish}"), "kid":"k"});
    let t = s.sign_with_header(&hdr, &github_claims()).unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(secretish));
}

#[test]
fn issuer_must_match_exactly() {
    let (s, jwks) = setup(Alg::ES256);
    for iss in [
        format!("{ISS}/"),
        "http://token.actions.githubusercontent.com".into(),
        ISS.to_uppercase(),
        format!("{ISS} "),
    ] {
        let t = s.sign(&with(github_claims(), "iss", json!(iss))).unwrap();
        let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
        assert_eq!(
            e,
            JwtError::WrongIssuer {
                expected: ISS.into()
            }
        );
        assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    }
    let t = s.sign(&with(github_claims(), "iss", json!(5))).unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::InvalidClaim("iss")
    );
    let t = s.sign(&without(github_claims(), "iss")).unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::MissingClaim("iss")
    );
}

#[test]
fn required_claims_and_types() {
    let (s, jwks) = setup(Alg::ES256);
    let check = |claims: Value, want: JwtError| {
        let t = s.sign(&claims).unwrap();
        assert_eq!(verify(&t, &jwks, &validation(), now()).unwrap_err(), want);
        // All of these are InvalidIdentityToken on AWS ("Missing a required claim: sub.").
        assert_eq!(want.aws_code(), AwsCode::InvalidIdentityToken);
    };
    check(
        without(github_claims(), "sub"),
        JwtError::MissingClaim("sub"),
    );
    check(
        without(github_claims(), "iat"),
        JwtError::MissingClaim("iat"),
    );
    check(
        without(github_claims(), "exp"),
        JwtError::MissingClaim("exp"),
    );
    check(
        without(github_claims(), "aud"),
        JwtError::MissingClaim("aud"),
    );
    check(
        with(github_claims(), "sub", json!(12)),
        JwtError::InvalidClaim("sub"),
    );
    check(
        with(github_claims(), "sub", json!("")),
        JwtError::InvalidClaim("sub"),
    );
    check(
        with(github_claims(), "sub", json!("x".repeat(256))),
        JwtError::InvalidClaim("sub"),
    );
    // `sub` is echoed as SubjectFromWebIdentityToken, and XML 1.0 has no way to write most
    // control characters: the answer would not parse, with the credentials issued inside it.
    for sub in [
        "repo:o/r:\u{1}x",
        "repo:o/r\u{0}",
        "a\u{1b}[31mb",
        "a\u{85}b",
    ] {
        check(
            with(github_claims(), "sub", json!(sub)),
            JwtError::InvalidClaim("sub"),
        );
    }
    // Timestamps: numbers only (AWS: "timestamps integer"); strings, null, negative refused.
    check(
        with(github_claims(), "exp", json!("1800000300")),
        JwtError::InvalidClaim("exp"),
    );
    check(
        with(github_claims(), "iat", json!(null)),
        JwtError::InvalidClaim("iat"),
    );
    check(
        with(github_claims(), "nbf", json!(true)),
        JwtError::InvalidClaim("nbf"),
    );
    check(
        with(github_claims(), "iat", json!(-5)),
        JwtError::InvalidClaim("iat"),
    );
    check(
        with(github_claims(), "exp", json!(1e300)),
        JwtError::InvalidClaim("exp"),
    );
    check(
        with(github_claims(), "exp", json!(u64::MAX)),
        JwtError::InvalidClaim("exp"),
    );
    check(
        with(github_claims(), "aud", json!(5)),
        JwtError::InvalidClaim("aud"),
    );
    check(
        with(github_claims(), "aud", json!([AUD, 5])),
        JwtError::InvalidClaim("aud"),
    );
    check(
        with(github_claims(), "azp", json!([AUD])),
        JwtError::InvalidClaim("azp"),
    );
    check(
        with(github_claims(), "amr", json!({"a":1})),
        JwtError::InvalidClaim("amr"),
    );
    // Fractional numeric timestamps are accepted (floored).
    let t = s
        .sign(&with(
            github_claims(),
            "exp",
            json!((NOW + 100) as f64 + 0.5),
        ))
        .unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now())
            .unwrap()
            .expires_at()
            .unix_timestamp(),
        NOW + 100
    );
}

#[test]
fn expiry_with_leeway() {
    let (s, jwks) = setup(Alg::ES256);
    let t = s
        .sign(&with(github_claims(), "exp", json!(NOW - 299)))
        .unwrap();
    verify(&t, &jwks, &validation(), now()).unwrap(); // inside the 300 s leeway
    let t = s
        .sign(&with(github_claims(), "exp", json!(NOW - 300)))
        .unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(
        e,
        JwtError::Expired {
            now: NOW,
            exp: NOW - 300
        }
    );
    // AWS answers ExpiredTokenException (400) for an expired web identity token.
    assert_eq!(e.aws_code(), AwsCode::ExpiredTokenException);
    assert_eq!(e.aws_code().http_status(), 400);
    assert_eq!(
        e.to_string(),
        format!(
            "Token expired: current date/time {NOW} must be before the expiration date/time {}",
            NOW - 300
        )
    );
    // Zero leeway is configurable.
    let mut v = validation();
    v.leeway = time::Duration::ZERO;
    let t = s.sign(&with(github_claims(), "exp", json!(NOW))).unwrap();
    assert!(matches!(
        verify(&t, &jwks, &v, now()).unwrap_err(),
        JwtError::Expired { .. }
    ));
    let t = s
        .sign(&with(github_claims(), "exp", json!(NOW + 1)))
        .unwrap();
    verify(&t, &jwks, &v, now()).unwrap();
}

#[test]
fn not_yet_valid_and_issued_in_future() {
    let (s, jwks) = setup(Alg::ES256);
    let t = s
        .sign(&with(github_claims(), "nbf", json!(NOW + 300)))
        .unwrap();
    verify(&t, &jwks, &validation(), now()).unwrap();
    let t = s
        .sign(&with(github_claims(), "nbf", json!(NOW + 301)))
        .unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(e, JwtError::NotYetValid);
    // Our choice: a well-formed, correctly signed token that the IdP says is not valid yet is a
    // rejected claim: IDPRejectedClaim (403), AWS's code for claims that are invalid "or expired".
    assert_eq!(e.aws_code(), AwsCode::IdpRejectedClaim);
    assert_eq!(e.aws_code().http_status(), 403);
    let t = s
        .sign(&with(github_claims(), "iat", json!(NOW + 301)))
        .unwrap();
    let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
    assert_eq!(e, JwtError::IssuedInFuture);
    assert_eq!(e.aws_code(), AwsCode::IdpRejectedClaim);
    // Older than a day (plus leeway) is too old, however far `exp` is.
    let day = MAX_TOKEN_AGE.whole_seconds();
    let old = |age: i64| {
        let claims = with(github_claims(), "iat", json!(NOW - age));
        let claims = with(claims, "nbf", json!(NOW - age));
        let claims = with(claims, "exp", json!(NOW + 365 * 86_400));
        verify(&s.sign(&claims).unwrap(), &jwks, &validation(), now())
    };
    let too_old = old(day + 301).unwrap_err();
    assert_eq!(
        too_old,
        JwtError::TooOld {
            age: day + 301,
            max: day + 300
        }
    );
    assert_eq!(too_old.aws_code(), AwsCode::ExpiredTokenException);
    assert!(
        too_old.to_string().starts_with("Token too old"),
        "{too_old}"
    );
    assert!(old(day + 300).is_ok());
    let t = s
        .sign(&with(github_claims(), "iat", json!(NOW + 300)))
        .unwrap();
    verify(&t, &jwks, &validation(), now()).unwrap();
}

#[test]
fn audience_rules_per_aws() {
    let (s, jwks) = setup(Alg::ES256);
    let v = validation();
    // Wrong audience: AWS answers InvalidIdentityToken "Incorrect token audience" (seen by
    // configure-aws-credentials users), not IDPRejectedClaim.
    let t = s
        .sign(&with(github_claims(), "aud", json!("sts.amazon.com")))
        .unwrap();
    let e = verify(&t, &jwks, &v, now()).unwrap_err();
    assert_eq!(e, JwtError::AudienceNotAllowed);
    assert_eq!(e.to_string(), "Incorrect token audience");
    assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    // Single-element array is fine.
    let t = s.sign(&with(github_claims(), "aud", json!([AUD]))).unwrap();
    assert_eq!(verify(&t, &jwks, &v, now()).unwrap().audience(), AUD);
    // Several aud without azp -> InvalidIdentityToken.
    let t = s
        .sign(&with(github_claims(), "aud", json!([AUD, "other"])))
        .unwrap();
    let e = verify(&t, &jwks, &v, now()).unwrap_err();
    assert_eq!(e, JwtError::MultipleAudiences);
    assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    // azp present: it is the effective audience and aud values become oaud.
    let claims = with(
        with(github_claims(), "aud", json!(["api://x", "api://y"])),
        "azp",
        json!(AUD),
    );
    let t = s.sign(&claims).unwrap();
    let vt = verify(&t, &jwks, &v, now()).unwrap();
    assert_eq!(vt.audience(), AUD);
    assert_eq!(
        vt.other_audiences(),
        ["api://x".to_owned(), "api://y".to_owned()]
    );
    let keys = vt.condition_keys("p");
    assert!(keys.contains(&("p:aud".into(), vec![AUD.into()])));
    assert!(keys.contains(&("p:oaud".into(), vec!["api://x".into(), "api://y".into()])));
    assert!(keys.contains(&("p:azp".into(), vec![AUD.into()])));
    // azp not among the client ids, even if aud is: refused.
    let claims = with(github_claims(), "azp", json!("someone-else"));
    let t = s.sign(&claims).unwrap();
    assert_eq!(
        verify(&t, &jwks, &v, now()).unwrap_err(),
        JwtError::AudienceNotAllowed
    );
    // Empty client id list accepts nothing.
    let t = s.sign(&github_claims()).unwrap();
    let empty = Validation::new(ISS, vec![]);
    assert_eq!(
        verify(&t, &jwks, &empty, now()).unwrap_err(),
        JwtError::AudienceNotAllowed
    );
}

#[test]
fn condition_keys_of_a_github_token() {
    let (s, jwks) = setup(Alg::RS256);
    let claims = with(
        with(github_claims(), "amr", json!(["pwd", "mfa"])),
        "nested",
        json!({"a": "b"}),
    );
    let claims = with(claims, "list", json!(["x"]));
    let claims = with(claims, "flag", json!(true));
    let claims = with(claims, "nothing", json!(null));
    let claims = with(claims, "ratio", json!(0.25));
    let t = s.sign(&claims).unwrap();
    let vt = verify(&t, &jwks, &validation(), now()).unwrap();
    // Only scalar claims are kept, with their JSON types.
    assert_eq!(vt.claim("flag"), Some(&ClaimValue::Bool(true)));
    assert_eq!(
        vt.claim("repository"),
        Some(&ClaimValue::String("octo-org/demo".into()))
    );
    assert_eq!(
        vt.claim("ratio").map(ClaimValue::text).as_deref(),
        Some("0.25")
    );
    for gone in ["nested", "list", "nothing", "amr"] {
        assert_eq!(vt.claim(gone), None, "{gone}");
    }
    assert!(vt.scalar_claims().iter().any(|(k, _)| k == "iss"));
    let p = "token.actions.githubusercontent.com";
    let keys = vt.condition_keys(p);
    let get = |k: &str| {
        keys.iter()
            .find(|(n, _)| n == &format!("{p}:{k}"))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("sub"),
        Some(vec!["repo:octo-org/demo:ref:refs/heads/main".into()])
    );
    assert_eq!(get("aud"), Some(vec![AUD.into()]));
    assert_eq!(get("amr"), Some(vec!["pwd".into(), "mfa".into()]));
    assert_eq!(get("repository"), Some(vec!["octo-org/demo".into()]));
    assert_eq!(get("actor"), Some(vec!["octocat".into()]));
    assert_eq!(get("flag"), Some(vec!["true".into()]));
    assert_eq!(get("ratio"), Some(vec!["0.25".into()]));
    assert_eq!(get("exp"), Some(vec![(NOW + 290).to_string()]));
    assert_eq!(get("oaud"), None);
    assert_eq!(get("azp"), None);
    assert_eq!(get("nested"), None);
    assert_eq!(get("list"), None);
    assert_eq!(get("nothing"), None);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn claim_names_that_differ_only_in_case_are_refused() {
    // Key names are case-insensitive, so `SUB` next to `sub` (or `Repository` next to
    // `repository`) would name one condition key, and an identity provider that lets users add
    // claims would let them choose what a trust policy sees. Such a token is malformed.
    let (s, jwks) = setup(Alg::RS256);
    for (name, value) in [
        ("SUB", "repo:attacker/x:ref:refs/heads/main"),
        ("Repository", "attacker/x"),
    ] {
        let t = s.sign(&with(github_claims(), name, json!(value))).unwrap();
        let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
        assert_eq!(
            e,
            JwtError::Malformed("two claim names differ only in case"),
            "{name}"
        );
        assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    }
}

#[test]
fn claims_with_a_colon_in_their_name_are_not_keys() {
    // A provider URL may hold a port, so `8443:sub` from `a.example` would spell
    // `a.example:8443:sub`: the subject key of another provider.
    let (s, jwks) = setup(Alg::RS256);
    let claims = with(
        github_claims(),
        "8443:sub",
        json!("repo:victim/app:ref:refs/heads/main"),
    );
    let claims = with(claims, "https://example.com/roles", json!("admin"));
    let claims = with(claims, "plain", json!("kept"));
    let t = s.sign(&claims).unwrap();
    let vt = verify(&t, &jwks, &validation(), now()).unwrap();
    let keys = vt.condition_keys("a.example");
    assert!(
        keys.iter().all(|(k, _)| k.matches(':').count() == 1),
        "{keys:?}"
    );
    assert!(keys.contains(&("a.example:plain".into(), vec!["kept".into()])));
    let owned = vt.into_condition_keys();
    assert!(owned.iter().all(|(k, _)| !k.contains(':')), "{owned:?}");
}

#[test]
fn claims_named_like_the_named_keys_in_another_case_are_not_keys() {
    // With `azp` deciding the audience and no `aud` claim, a claim `AUD` clashes with no other
    // name, but it must still not become `<prefix>:aud`; likewise `AMR` is not `<prefix>:amr`.
    let (s, jwks) = setup(Alg::RS256);
    let claims = with(without(github_claims(), "aud"), "azp", json!(AUD));
    let claims = with(claims, "AUD", json!("sts.amazonaws.com.evil"));
    let claims = with(claims, "AMR", json!("mfa"));
    let claims = with(claims, "Workflow_Name", json!("deploy"));
    let t = s.sign(&claims).unwrap();
    let vt = verify(&t, &jwks, &validation(), now()).unwrap();
    let keys = vt.condition_keys("p");
    assert!(
        keys.iter()
            .all(|(k, _)| !matches!(k.as_str(), "p:AUD" | "p:AMR")),
        "{keys:?}"
    );
    assert!(keys.contains(&("p:aud".into(), vec![AUD.into()])));
    assert!(keys.contains(&("p:Workflow_Name".into(), vec!["deploy".into()])));
    // The owned form carries the same keys, in the same order.
    let owned: Vec<(String, Vec<String>)> = vt
        .clone()
        .into_condition_keys()
        .into_iter()
        .map(|(name, value)| {
            let values = match value {
                OwnedKeyValue::One(one) => vec![one],
                OwnedKeyValue::Many(many) => many,
            };
            (format!("p:{name}"), values)
        })
        .collect();
    let mut visited = Vec::new();
    vt.visit_condition_keys("p", |key, value| {
        let values = match value {
            KeyValue::One(one) => vec![one.into_owned()],
            KeyValue::Many(many) => many.to_vec(),
        };
        visited.push((key.to_owned(), values));
    });
    assert_eq!(owned, visited);
    assert_eq!(
        owned
            .iter()
            .find(|(k, _)| k == "p:sub")
            .map(|(_, v)| v.clone()),
        Some(vec!["repo:octo-org/demo:ref:refs/heads/main".into()])
    );
}

#[test]
fn session_tags_and_source_identity_claims() {
    let (s, jwks) = setup(Alg::ES256);
    let tags = json!({"principal_tags":{"team":["web"],"Cost Center":["42"]},"transitive_tag_keys":["team"]});
    let claims = with(
        with(github_claims(), TAGS_CLAIM, tags),
        SOURCE_IDENTITY_CLAIM,
        json!("octocat"),
    );
    let t = s.sign(&claims).unwrap();
    let vt = verify(&t, &jwks, &validation(), now()).unwrap();
    let st = vt.session_tags().unwrap();
    assert_eq!(
        st.principal_tags,
        vec![
            ("team".into(), "web".into()),
            ("Cost Center".into(), "42".into())
        ]
    );
    assert_eq!(st.transitive_tag_keys, vec!["team".to_owned()]);
    assert_eq!(vt.source_identity(), Some("octocat"));
    // The AWS claims are not condition keys themselves.
    assert!(
        vt.condition_keys("p")
            .iter()
            .all(|(k, _)| !k.contains("amazon.com"))
    );

    let bad_tags: Vec<(Value, &str)> = vec![
        (json!("x"), "it must be a JSON object"),
        (
            json!({"principal_tags":{"k":["v"]},"other":1}),
            "only principal_tags and transitive_tag_keys are allowed",
        ),
        (
            json!({"principal_tags":[]}),
            "principal_tags must be an object",
        ),
        (
            json!({"principal_tags":{"k":"v"}}),
            "each principal_tags value must be an array of exactly one string",
        ),
        (
            json!({"principal_tags":{"k":["v","w"]}}),
            "each principal_tags value must be an array of exactly one string",
        ),
        (
            json!({"principal_tags":{"k":[1]}}),
            "each principal_tags value must be an array of exactly one string",
        ),
        (
            json!({"principal_tags":{"":["v"]}}),
            "a tag key must be 1-128 characters of letters, digits, spaces and _.:/=+-@",
        ),
        (
            json!({"principal_tags":{"k!":["v"]}}),
            "a tag key must be 1-128 characters of letters, digits, spaces and _.:/=+-@",
        ),
        (
            json!({"principal_tags":{"k".repeat(129):["v"]}}),
            "a tag key must be 1-128 characters of letters, digits, spaces and _.:/=+-@",
        ),
        (
            json!({"principal_tags":{"k":["v".repeat(257)]}}),
            "a tag value must be 0-256 characters of letters, digits, spaces and _.:/=+-@",
        ),
        (
            json!({"principal_tags":{"k":["v\n"]}}),
            "a tag value must be 0-256 characters of letters, digits, spaces and _.:/=+-@",
        ),
        (
            json!({"principal_tags":{"Team":["a"],"team":["b"]}}),
            "tag keys must be unique ignoring case",
        ),
        (
            json!({"principal_tags":{"k":["v"]},"transitive_tag_keys":["other"]}),
            "every transitive tag key must be one of principal_tags",
        ),
        (
            json!({"principal_tags":{"k":["v"]},"transitive_tag_keys":"k"}),
            "transitive_tag_keys must be an array",
        ),
        (
            json!({"principal_tags":{"k":["v"]},"transitive_tag_keys":[1]}),
            "transitive_tag_keys must be strings",
        ),
    ];
    for (tags, why) in bad_tags {
        let t = s
            .sign(&with(github_claims(), TAGS_CLAIM, tags.clone()))
            .unwrap();
        let e = verify(&t, &jwks, &validation(), now()).unwrap_err();
        assert_eq!(e, JwtError::InvalidTagsClaim(why), "{tags}");
        assert_eq!(e.aws_code(), AwsCode::InvalidIdentityToken);
    }
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(["v"]))).collect();
    let t = s
        .sign(&with(
            github_claims(),
            TAGS_CLAIM,
            json!({"principal_tags": many}),
        ))
        .unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now()).unwrap_err(),
        JwtError::InvalidTagsClaim("more than 50 principal_tags")
    );
    let fifty: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!(["v"]))).collect();
    let t = s
        .sign(&with(
            github_claims(),
            TAGS_CLAIM,
            json!({"principal_tags": fifty}),
        ))
        .unwrap();
    assert_eq!(
        verify(&t, &jwks, &validation(), now())
            .unwrap()
            .session_tags()
            .unwrap()
            .principal_tags
            .len(),
        50
    );

    for bad in [
        json!("a"),
        json!("aws:x"),
        json!("AWS:abc"),
        json!("has space"),
        json!("x".repeat(65)),
        json!(5),
    ] {
        let t = s
            .sign(&with(github_claims(), SOURCE_IDENTITY_CLAIM, bad.clone()))
            .unwrap();
        assert_eq!(
            verify(&t, &jwks, &validation(), now()).unwrap_err(),
            JwtError::InvalidSourceIdentity,
            "{bad}"
        );
    }
}

#[test]
fn fuzz_entry_point_handles_garbage() {
    assert_eq!(fuzz_parse(b""), (false, false));
    assert_eq!(fuzz_parse(b"{\"keys\":[]}"), (false, true));
    let (s, _) = setup(Alg::ES256);
    let t = s.sign(&github_claims()).unwrap();
    assert_eq!(fuzz_parse(t.as_bytes()), (true, false));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = fuzz_parse(&data);
        }

        #[test]
        fn dotted_garbage_never_verifies(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}") {
            let (_, jwks) = setup(Alg::ES256);
            let t = format!("{a}.{b}.{c}");
            prop_assert!(verify(&t, &jwks, &validation(), now()).is_err());
        }
    }
}
