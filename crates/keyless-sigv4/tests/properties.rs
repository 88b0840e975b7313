//! Property tests: our signer and verifier agree; any tampered byte is rejected; an independent
//! signer (the `aws-sigv4` crate) produces requests we accept.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

use keyless_sigv4::*;
use keyless_types::SecretString;
use proptest::prelude::*;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    service: &'static str,
    presigned: bool,
    token: Option<String>,
    time_offset: i64,
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 ._~+!*'()%/&=ü€-]{0,12}").unwrap()
}

fn segment() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 _~+!*'()ü€-]{1,10}").unwrap()
}

fn req() -> impl Strategy<Value = Req> {
    (
        prop_oneof![
            Just("GET"),
            Just("PUT"),
            Just("POST"),
            Just("DELETE"),
            Just("HEAD")
        ],
        prop::collection::vec(segment(), 0..4),
        prop::collection::vec(
            (
                proptest::string::string_regex("[a-zA-Z0-9._~-]{1,8}").unwrap(),
                text(),
            ),
            0..4,
        ),
        prop::collection::vec(
            (
                proptest::string::string_regex("x-amz-meta-[a-z0-9]{1,6}").unwrap(),
                proptest::string::string_regex("[a-zA-Z0-9]([a-zA-Z0-9 ,;=/]{0,12}[a-zA-Z0-9])?")
                    .unwrap(),
            ),
            0..4,
        ),
        prop::collection::vec(any::<u8>(), 0..64),
        prop_oneof![Just("sts"), Just("s3"), Just("execute-api")],
        any::<bool>(),
        proptest::option::of(proptest::string::string_regex("[A-Za-z0-9+/=]{10,40}").unwrap()),
        0i64..86_400,
    )
        .prop_map(
            |(method, segments, query, headers, body, service, presigned, token, time_offset)| {
                Req {
                    method,
                    segments,
                    query,
                    headers,
                    body,
                    service,
                    presigned,
                    token,
                    time_offset,
                }
            },
        )
}

fn wire_path(r: &Req) -> String {
    let mut p = String::new();
    for s in &r.segments {
        p.push('/');
        p.push_str(&uri_encode(s.as_bytes(), false));
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

fn wire_query(r: &Req) -> String {
    r.query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                uri_encode(k.as_bytes(), false),
                uri_encode(v.as_bytes(), false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn base_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A fully signed request in owned form.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn sign_ours(r: &Req) -> Wire {
    let secret = SecretString::new(SECRET.into());
    let path = wire_path(r);
    let query = wire_query(r);
    let mut headers: Vec<(String, Vec<u8>)> = vec![("Host".into(), b"example.com".to_vec())];
    if !r.presigned {
        for (k, v) in &r.headers {
            headers.push((k.clone(), v.as_bytes().to_vec()));
        }
    }
    let hrefs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = HttpRequest {
        method: r.method,
        path: &path,
        query: &query,
        headers: &hrefs,
    };
    let out = sign(
        &req,
        &Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret: &secret,
            session_token: r.token.as_deref(),
        },
        &SigningParams {
            region: "us-east-1",
            service: r.service,
            time: base_time() + time::Duration::seconds(r.time_offset),
            rules: ServiceRules::FromScope,
            location: if r.presigned {
                SignatureLocation::Query { expires_secs: 3600 }
            } else {
                SignatureLocation::Headers
            },
            payload: SignPayload::Bytes(&r.body),
            content_sha256_header: r.service == "s3",
        },
    )
    .unwrap();
    for (k, v) in out.headers {
        headers.push((k, v.into_bytes()));
    }
    Wire {
        method: r.method.into(),
        path,
        query: out.query,
        headers,
        body: r.body.clone(),
    }
}

fn verify_wire(w: &Wire, r: &Req) -> Result<Verified<SigV4Auth<'static>>, SigV4Error> {
    let hrefs: Vec<(&str, &[u8])> = w
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = HttpRequest {
        method: &w.method,
        path: &w.path,
        query: &w.query,
        headers: &hrefs,
    };
    let signed = parse(&req, ServiceRules::FromScope)?;
    verify(
        &signed,
        Body::Bytes(&w.body),
        &SecretString::new(SECRET.into()),
        base_time() + time::Duration::seconds(r.time_offset + 60),
        &VerifyOptions {
            expected_region: Some("us-east-1".into()),
            expected_service: Some(r.service.into()),
            ..VerifyOptions::default()
        },
    )
    .map(Verified::into_owned)
}

fn flip(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => Some(b + 1),
        b'9' => Some(b'0'),
        b'z' => Some(b'a'),
        b'Z' => Some(b'A'),
        _ => None,
    }
}

fn flip_at(s: &mut [u8], pick: usize) -> bool {
    let idx: Vec<usize> = s
        .iter()
        .enumerate()
        .filter(|(_, b)| flip(**b).is_some())
        .map(|(i, _)| i)
        .collect();
    if idx.is_empty() {
        return false;
    }
    let i = idx[pick % idx.len()];
    s[i] = flip(s[i]).unwrap();
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sign_then_verify_agrees(r in req()) {
        let w = sign_ours(&r);
        let v = verify_wire(&w, &r);
        prop_assert!(v.is_ok(), "{:?}", v.err());
        let v = v.unwrap();
        prop_assert_eq!(&*v.access_key_id, "AKIDEXAMPLE");
        prop_assert_eq!(v.security_token.as_deref(), r.token.as_deref());
        prop_assert_eq!(v.security_token_signed, r.token.is_some());
    }

    #[test]
    fn tampered_byte_is_rejected(r in req(), what in 0usize..5, pick in any::<usize>()) {
        let mut w = sign_ours(&r);
        let changed = match what {
            0 => { w.method = if w.method == "GET" { "PUT".into() } else { "GET".into() }; true }
            1 => { let mut p = w.path.clone().into_bytes(); let c = flip_at(&mut p, pick); w.path = String::from_utf8(p).unwrap(); c }
            2 => {
                // Tamper any query byte except inside the signature itself (also rejected, but
                // that is the signature, not the request).
                let mut q = w.query.clone().into_bytes(); let c = flip_at(&mut q, pick); w.query = String::from_utf8(q).unwrap(); c
            }
            3 => {
                let n = w.headers.len();
                let i = pick % n;
                if w.headers[i].0.eq_ignore_ascii_case("authorization") { false } else { flip_at(&mut w.headers[i].1, pick / n) }
            }
            _ => {
                if w.body.is_empty() || (r.presigned && r.service == "s3") { false } else { let i = pick % w.body.len(); w.body[i] ^= 1; true }
            }
        };
        prop_assume!(changed);
        prop_assert!(verify_wire(&w, &r).is_err(), "tamper {} accepted: {:?}", what, w);
    }

    #[test]
    fn aws_sigv4_crate_signatures_verify(r in req()) {
        use aws_sigv4::http_request::{self as hr, SignableBody, SignableRequest, SigningSettings};
        use aws_sigv4::sign::v4;
        let path = wire_path(&r);
        let query = wire_query(&r);
        let uri = if query.is_empty() { format!("https://example.com{path}") } else { format!("https://example.com{path}?{query}") };
        let mut headers: Vec<(String, String)> = vec![("host".into(), "example.com".into())];
        if !r.presigned {
            headers.extend(r.headers.iter().cloned());
        }
        let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", SECRET, r.token.clone(), None, "test");
        let identity = creds.into();
        let mut settings = SigningSettings::default();
        if r.service == "s3" {
            settings.percent_encoding_mode = hr::PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = hr::UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = hr::PayloadChecksumKind::XAmzSha256;
        }
        if r.presigned {
            settings.signature_location = hr::SignatureLocation::QueryParams;
            settings.expires_in = Some(std::time::Duration::from_secs(3600));
        }
        let when = base_time() + time::Duration::seconds(r.time_offset);
        let params: hr::SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(r.service)
            .time(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(when.unix_timestamp() as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let body = if r.presigned && r.service == "s3" { SignableBody::UnsignedPayload } else { SignableBody::Bytes(&r.body) };
        let signable = SignableRequest::new(r.method, uri, headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), body).unwrap();
        let (instructions, _) = hr::sign(signable, &params).unwrap().into_parts();
        let mut all: Vec<(String, Vec<u8>)> = headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
        for (k, v) in instructions.headers() {
            all.push((k.to_owned(), v.as_bytes().to_vec()));
        }
        let mut q = query.clone();
        for (k, v) in instructions.params() {
            if !q.is_empty() { q.push('&'); }
            q.push_str(&format!("{}={}", uri_encode(k.as_bytes(), false), uri_encode(v.as_bytes(), false)));
        }
        let w = Wire { method: r.method.into(), path, query: q, headers: all, body: r.body.clone() };
        let v = verify_wire(&w, &r);
        prop_assert!(v.is_ok(), "{:?} {:?}", v.err(), w);
        let mut t = w.clone();
        t.method = if t.method == "GET" { "PUT".into() } else { "GET".into() };
        prop_assert!(verify_wire(&t, &r).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The fuzz entry points never panic on arbitrary bytes.
    #[test]
    fn fuzz_entry_points_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        keyless_sigv4::fuzz::authorization_header(&data);
        keyless_sigv4::fuzz::query(&data);
        prop_assert!(keyless_sigv4::fuzz::chunk_decoder(&data) <= 1);
    }

    /// ... and on inputs shaped like the real thing.
    #[test]
    fn fuzz_entry_points_on_structured_input(
        auth in "AWS4-(HMAC|ECDSA-P256)-SHA256 Credential=[A-Z0-9]{1,20}(/[0-9a-z-]{0,10}){3,5}, ?SignedHeaders=[a-z;-]{0,30}, ?Signature=[0-9a-f]{0,70}",
        query in "(X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)=[A-Za-z0-9%/-]{0,20}&){0,8}",
        chunks in "([0-9a-f]{1,3}(;chunk-signature=[0-9a-f]{64})?\r\n[a]{0,20}\r\n){0,3}0\r\n(x-amz-checksum-crc32:[A-Za-z0-9=]{0,8}\r\n)?\r\n",
    ) {
        keyless_sigv4::fuzz::authorization_header(auth.as_bytes());
        keyless_sigv4::fuzz::query(query.as_bytes());
        prop_assert!(keyless_sigv4::fuzz::chunk_decoder(chunks.as_bytes()) <= 1);
    }
}
