//! Fuzzes what an issuer sends back before its keys: the discovery document (which names the
//! one URL we then fetch) and the Cache-Control value of the JWKS response.
#![no_main]

use keyless_oidc::{DiscoveryRules, cache_control_max_age, jwks_url_from_discovery};
use reqwest::Url;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte sets the two flags; the rest is the document.
    let (flags, doc) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, data),
    };
    let Ok(issuer_url) = Url::parse("https://token.actions.githubusercontent.com") else {
        return;
    };
    let rules = DiscoveryRules {
        issuer: "https://token.actions.githubusercontent.com",
        issuer_url: &issuer_url,
        allow_http: flags & 1 != 0,
        allow_foreign_jwks_host: flags & 2 != 0,
    };
    if let Ok(url) = jwks_url_from_discovery(doc, &rules) {
        // Whatever passes is https (or loopback http) and, unless allowed, on the issuer's host.
        let https = url.scheme() == "https";
        let loopback_http = url.scheme() == "http" && rules.allow_http;
        assert!(https || loopback_http, "{url}");
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{url}"
        );
        if !rules.allow_foreign_jwks_host {
            assert_eq!(url.host_str(), issuer_url.host_str(), "{url}");
        }
    }
    if let Ok(value) = std::str::from_utf8(doc) {
        let _ = cache_control_max_age(value);
    }
});
