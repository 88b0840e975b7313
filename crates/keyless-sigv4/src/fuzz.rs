//! Entry points for the fuzz targets in `fuzz/` (also run by the crate's property tests).
//!
//! Each takes arbitrary bytes, must never panic, and checks invariants that must hold for
//! any input.

use keyless_types::SecretString;

use crate::{
    Body, ChunkLimits, HttpRequest, PayloadMode, ServiceRules, SigV4Error, VerifyOptions, parse,
    parse_amz_date, parse_authorization_header, verify,
};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Parses `data` as an `Authorization` header value, alone and inside a request, and runs
/// verification on whatever parses (it must never succeed for fuzzed input without the
/// right signature, and must never panic).
pub fn authorization_header(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_authorization_header(s);
    let headers: [(&str, &[u8]); 3] = [
        ("host", b"example.amazonaws.com"),
        ("x-amz-date", b"20150830T123600Z"),
        ("authorization", data),
    ];
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
    };
    if let Ok(signed) = parse(&req, ServiceRules::FromScope) {
        let _ = signed.canonical(&Body::Bytes(b""));
        let secret = SecretString::new(SECRET.to_owned());
        if let Ok(now) = parse_amz_date("20150830T123600Z") {
            let _ = verify(
                &signed,
                Body::Bytes(b""),
                &secret,
                now,
                &VerifyOptions::default(),
            );
        }
    }
}

/// Parses `data` as a raw query string (canonical query and the presigned form).
pub fn query(data: &[u8]) {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(params) = crate::parse_query(q) {
        // Canonical names and values contain only unreserved characters and escapes.
        for p in &params {
            debug_assert!(
                p.name
                    .bytes()
                    .chain(p.value.bytes())
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
            );
        }
    }
    let headers: [(&str, &[u8]); 1] = [("host", b"example.amazonaws.com")];
    let req = HttpRequest {
        method: "GET",
        path: "/",
        query: q,
        headers: &headers,
    };
    if let Ok(signed) = parse(&req, ServiceRules::FromScope) {
        let _ = signed.canonical(&Body::Streaming);
        let secret = SecretString::new(SECRET.to_owned());
        let _ = verify(
            &signed,
            Body::Bytes(b""),
            &secret,
            signed.request_time(),
            &VerifyOptions::default(),
        );
    }
}

/// Feeds `data` to a chunk decoder of each streaming mode, split at a data-derived point.
/// Returns how many modes accepted the body (a signed mode can only accept it by forging
/// HMAC-SHA256, so for random input this is at most 1: the unsigned-trailer mode).
pub fn chunk_decoder(data: &[u8]) -> usize {
    let Ok(now) = parse_amz_date("20150830T123600Z") else {
        return 0;
    };
    let secret = SecretString::new(SECRET.to_owned());
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut accepted = 0;
    for mode in [
        PayloadMode::StreamingSigned,
        PayloadMode::StreamingSignedTrailer,
        PayloadMode::StreamingUnsignedTrailer,
    ] {
        let Some(seed) = crate::chunked::test_seed(&secret, now, mode) else {
            continue;
        };
        let mut dec = crate::ChunkDecoder::new(
            seed,
            ChunkLimits {
                max_chunk_size: 4096,
                ..ChunkLimits::default()
            },
        );
        let mut out = Vec::new();
        let mut r: Result<(), SigV4Error> = Ok(());
        for part in data.chunks(split) {
            r = dec.feed(part, &mut out);
            if r.is_err() {
                break;
            }
        }
        if r.is_ok() && dec.finish().is_ok() {
            accepted += 1;
        }
    }
    accepted
}
