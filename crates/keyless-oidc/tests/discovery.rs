//! The discovery document check on its own: untrusted bytes in, the one URL we will fetch out.
#![allow(clippy::unwrap_used, reason = "tests")]

use keyless_oidc::{DiscoveryRules, FetchError, jwks_url_from_discovery};
use reqwest::Url;

const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn check(doc: &str, allow_http: bool, foreign: bool) -> Result<String, FetchError> {
    let issuer_url = Url::parse(ISSUER).unwrap();
    let rules = DiscoveryRules {
        issuer: ISSUER,
        issuer_url: &issuer_url,
        allow_http,
        allow_foreign_jwks_host: foreign,
    };
    let result = jwks_url_from_discovery(doc.as_bytes(), &rules).map(|u| u.to_string());
    if let Err(e) = &result {
        // What STS answers when an issuer's document is refused: the caller's token cannot be
        // checked, so no credential is issued.
        assert_eq!(
            (e.aws_code(), e.http_status()),
            ("InvalidIdentityToken", 400),
            "{e:?}"
        );
    }
    result
}

fn doc(issuer: &str, jwks_uri: &str) -> String {
    serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string()
}

#[test]
fn a_good_document_gives_its_jwks_uri() {
    let uri = format!("{ISSUER}/.well-known/jwks");
    assert_eq!(check(&doc(ISSUER, &uri), false, false).unwrap(), uri);
    // A trailing slash on either issuer is the same issuer.
    assert_eq!(
        check(&doc(&format!("{ISSUER}/"), &uri), false, false).unwrap(),
        uri
    );
}

#[test]
fn malformed_and_wrong_typed_documents_are_refused() {
    for (body, why) in [
        ("", "not JSON"),
        ("{", "not JSON"),
        ("\u{feff}{}", "not JSON"),
        ("[]", "no issuer"),
        ("\"issuer\"", "no issuer"),
        ("{}", "no issuer"),
        (r#"{"issuer": 7, "jwks_uri": "x"}"#, "no issuer"),
        (r#"{"issuer": ["a"], "jwks_uri": "x"}"#, "no issuer"),
        (r#"{"issuer": null}"#, "no issuer"),
        (&format!(r#"{{"issuer": "{ISSUER}"}}"#), "no jwks_uri"),
        (
            &format!(r#"{{"issuer": "{ISSUER}", "jwks_uri": {{"href": "x"}}}}"#),
            "no jwks_uri",
        ),
        (&doc(ISSUER, "not a url"), "jwks_uri is not a URL"),
        (&doc(ISSUER, ""), "jwks_uri is not a URL"),
    ] {
        assert_eq!(
            check(body, false, false).unwrap_err(),
            FetchError::Discovery(why),
            "{body}"
        );
    }
}

#[test]
fn hostile_values_are_refused() {
    let differs = FetchError::Discovery("its issuer differs from the configured issuer");
    let https = FetchError::Discovery("jwks_uri must be https");
    let host = FetchError::Discovery("jwks_uri must be on the issuer's host");
    for (issuer, uri, want) in [
        // Another issuer, a prefix of ours, or ours with a path appended.
        (
            "https://evil.example",
            "https://evil.example/jwks",
            &differs,
        ),
        (
            "https://token.actions.githubusercontent.com.evil.example",
            "https://token.actions.githubusercontent.com/jwks",
            &differs,
        ),
        (
            &format!("{ISSUER}/other"),
            &format!("{ISSUER}/jwks"),
            &differs,
        ),
        // Schemes other than https, and credentials in the URL.
        (
            ISSUER,
            "http://token.actions.githubusercontent.com/jwks",
            &https,
        ),
        (ISSUER, "file:///etc/passwd", &https),
        (ISSUER, "javascript:alert(1)", &https),
        (
            ISSUER,
            "https://user:pass@token.actions.githubusercontent.com/jwks",
            &https,
        ),
        (
            ISSUER,
            "https://user@token.actions.githubusercontent.com/jwks",
            &https,
        ),
        // Another host or port than the issuer's (e.g. an internal address).
        (ISSUER, "https://169.254.169.254/latest/meta-data", &host),
        (
            ISSUER,
            "https://token.actions.githubusercontent.com:8443/jwks",
            &host,
        ),
        (
            ISSUER,
            "https://token.actions.githubusercontent.com.evil.example/jwks",
            &host,
        ),
    ] {
        assert_eq!(
            &check(&doc(issuer, uri), false, false).unwrap_err(),
            want,
            "{issuer} {uri}"
        );
    }
}

#[test]
fn the_flags_widen_only_what_they_name() {
    // A foreign host is accepted when allowed, still https only.
    let foreign = "https://www.googleapis.com/oauth2/v3/certs";
    assert_eq!(check(&doc(ISSUER, foreign), false, true).unwrap(), foreign);
    assert_eq!(
        check(&doc(ISSUER, "http://www.googleapis.com/certs"), false, true).unwrap_err(),
        FetchError::Discovery("jwks_uri must be https")
    );
    // allow_http admits http only for loopback hosts.
    let issuer_url = Url::parse("http://127.0.0.1:8080").unwrap();
    let rules = |allow_http| DiscoveryRules {
        issuer: "http://127.0.0.1:8080",
        issuer_url: &issuer_url,
        allow_http,
        allow_foreign_jwks_host: false,
    };
    let local = doc("http://127.0.0.1:8080", "http://127.0.0.1:8080/jwks");
    assert!(jwks_url_from_discovery(local.as_bytes(), &rules(true)).is_ok());
    assert_eq!(
        jwks_url_from_discovery(local.as_bytes(), &rules(false)).unwrap_err(),
        FetchError::Discovery("jwks_uri must be https")
    );
    let remote = doc("http://127.0.0.1:8080", "http://10.0.0.1:8080/jwks");
    assert_eq!(
        jwks_url_from_discovery(remote.as_bytes(), &rules(true)).unwrap_err(),
        FetchError::Discovery("jwks_uri must be https")
    );
}
