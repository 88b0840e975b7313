//! Every case of every suite in `shared/vectors/sigv4`, read in place.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

use std::path::{Path, PathBuf};

use keyless_sigv4::*;
use keyless_types::SecretString;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/sigv4")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn opts() -> VerifyOptions<'static> {
    VerifyOptions::default()
}

/// Verifies a raw signed request; returns the canonical request we computed.
fn verify_raw(
    raw: &[u8],
    rules: ServiceRules,
    secret: &SecretString,
    now: OffsetDateTime,
) -> Result<(Canonical, Verified<SigV4Auth<'static>>), SigV4Error> {
    let r = parse_raw_http(raw, MAX_RAW_REQUEST).unwrap();
    let h = r.header_refs();
    let req = r.as_http(&h);
    let signed = parse(&req, rules)?;
    let canon = signed.canonical(&Body::Bytes(&r.body))?;
    let v = verify(&signed, Body::Bytes(&r.body), secret, now, &opts())?.into_owned();
    Ok((canon, v))
}

/// Case directories of the botocore suite (including nested ones).
fn botocore_cases(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            if p.join(format!("{name}.sreq")).exists() {
                out.push(p.clone());
            }
            botocore_cases(&p, out);
        }
    }
}

#[test]
fn botocore_suite() {
    let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
    let now = OffsetDateTime::parse("2015-08-30T12:36:00Z", &Rfc3339).unwrap();
    let mut cases = Vec::new();
    botocore_cases(&vectors().join("aws4-testsuite-botocore"), &mut cases);
    cases.sort();
    assert!(cases.len() >= 34, "found only {} cases", cases.len());
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let sreq_file = read(&case.join(format!("{name}.sreq")));
        let authz = read(&case.join(format!("{name}.authz")));
        // The .authz file is the suite's answer; in get-vanilla-with-session-token the .sreq
        // carries a different (wrong) signature, so the Authorization line is rebuilt from it
        // and the original .sreq must be rejected.
        let sreq: Vec<u8> = sreq_file
            .lines()
            .map(|l| {
                if l.to_ascii_lowercase().starts_with("authorization:") {
                    format!("Authorization: {}", authz.trim())
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes();
        if !sreq_file.contains(authz.trim()) {
            assert_eq!(
                verify_raw(sreq_file.as_bytes(), ServiceRules::Standard, &secret, now).err(),
                Some(SigV4Error::SignatureDoesNotMatch),
                "{name}: inconsistent .sreq must fail"
            );
        }
        let creq = read(&case.join(format!("{name}.creq")));
        let sts = read(&case.join(format!("{name}.sts")));
        let (canon, v) = verify_raw(&sreq, ServiceRules::Standard, &secret, now)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(canon.canonical_request, creq, "{name}: canonical request");
        assert_eq!(canon.string_to_sign, sts, "{name}: string to sign");
        assert_eq!(v.access_key_id, "AKIDEXAMPLE");
        // The same request with a different secret must fail.
        let wrong = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ".into());
        assert_eq!(
            verify_raw(&sreq, ServiceRules::Standard, &wrong, now).err(),
            Some(SigV4Error::SignatureDoesNotMatch),
            "{name}: wrong secret"
        );
    }
}

#[derive(serde::Deserialize)]
struct Ctx {
    credentials: Creds,
    normalize: bool,
    region: String,
    service: String,
    timestamp: String,
    #[serde(default)]
    omit_session_token: bool,
}
#[derive(serde::Deserialize)]
struct Creds {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
}

fn suite_rules(ctx: &Ctx) -> ServiceRules {
    ServiceRules::Custom {
        double_encode: true,
        normalize: ctx.normalize,
    }
}

#[test]
fn aws_signing_test_suite_v4() {
    let dir = vectors().join("aws-signing-test-suite/v4");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        let ctx: Ctx = serde_json::from_str(&read(&case.join("context.json"))).unwrap();
        let secret = SecretString::new(ctx.credentials.secret_access_key.clone());
        let now = OffsetDateTime::parse(&ctx.timestamp, &Rfc3339).unwrap();
        for form in ["header", "query"] {
            let raw = std::fs::read(case.join(format!("{form}-signed-request.txt"))).unwrap();
            let creq = read(&case.join(format!("{form}-canonical-request.txt")));
            let sts = read(&case.join(format!("{form}-string-to-sign.txt")));
            let sig = read(&case.join(format!("{form}-signature.txt")));
            let r = parse_raw_http(&raw, MAX_RAW_REQUEST).unwrap();
            let h = r.header_refs();
            let req = r.as_http(&h);
            let signed =
                parse(&req, suite_rules(&ctx)).unwrap_or_else(|e| panic!("{name}/{form}: {e:?}"));
            assert_eq!(signed.access_key_id(), ctx.credentials.access_key_id);
            assert_eq!(signed.scope().region, ctx.region);
            assert_eq!(signed.scope().service, ctx.service);
            assert_eq!(signed.is_presigned(), form == "query");
            let v = verify(&signed, Body::Bytes(&r.body), &secret, now, &opts())
                .unwrap_or_else(|e| panic!("{name}/{form}: {e:?}"));
            assert_eq!(
                v.security_token.as_deref(),
                ctx.credentials.token.as_deref(),
                "{name}"
            );
            if v.security_token.is_some() {
                assert_eq!(
                    v.security_token_signed, !ctx.omit_session_token,
                    "{name}/{form}"
                );
            }
            // Where the token is part of the signature our canonical matches the suite's
            // exactly; where it was appended afterwards the suite's canonical omits it.
            let canon = signed.canonical(&Body::Bytes(&r.body)).unwrap();
            if !(ctx.omit_session_token && form == "query") {
                assert_eq!(
                    canon.canonical_request.trim_end(),
                    creq.trim_end(),
                    "{name}/{form}"
                );
                assert_eq!(
                    canon.string_to_sign.trim_end(),
                    sts.trim_end(),
                    "{name}/{form}"
                );
            }
            assert!(
                r.headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case("authorization")
                        && String::from_utf8_lossy(v).ends_with(sig.trim()))
                    || r.query.ends_with(sig.trim()),
                "{name}/{form}: signature file"
            );
            // Tampering with the method is caught.
            let req2 = HttpRequest {
                method: if req.method == "GET" { "PUT" } else { "GET" },
                ..req
            };
            let signed2 = parse(&req2, suite_rules(&ctx)).unwrap();
            assert_eq!(
                verify(&signed2, Body::Bytes(&r.body), &secret, now, &opts()).err(),
                Some(SigV4Error::SignatureDoesNotMatch),
                "{name}/{form}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 76);
}

#[test]
fn aws_signing_test_suite_v4a() {
    let dir = vectors().join("aws-signing-test-suite/v4a");
    let mut n = 0;
    let mut skipped = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        let ctx: Ctx = serde_json::from_str(&read(&case.join("context.json"))).unwrap();
        let secret = SecretString::new(ctx.credentials.secret_access_key.clone());
        let now = OffsetDateTime::parse(&ctx.timestamp, &Rfc3339).unwrap();
        if !case.join("public-key.json").exists() {
            // Two cases ship only context.json and request.txt: nothing signed to verify.
            assert!(!case.join("header-signed-request.txt").exists(), "{name}");
            skipped += 1;
            continue;
        }
        let pk: serde_json::Value =
            serde_json::from_str(&read(&case.join("public-key.json"))).unwrap();
        let key =
            SigV4aPublicKey::from_xy_hex(pk["X"].as_str().unwrap(), pk["Y"].as_str().unwrap())
                .unwrap();
        let other = SigV4aPublicKey::from_xy_hex(
            "18b7d04643359f6ec270dcbab8dce6d169d66ddc9778c75cfb08dfdb701637ab",
            "fa36b35e4fe67e3112261d2e17a956ef85b06e44712d2850bcd3c2161e9993f2",
        )
        .unwrap();
        for form in ["header", "query"] {
            let raw = std::fs::read(case.join(format!("{form}-signed-request.txt"))).unwrap();
            let creq = read(&case.join(format!("{form}-canonical-request.txt")));
            let sts = read(&case.join(format!("{form}-string-to-sign.txt")));
            let r = parse_raw_http(&raw, MAX_RAW_REQUEST).unwrap();
            let h = r.header_refs();
            let req = r.as_http(&h);
            let signed =
                parse(&req, suite_rules(&ctx)).unwrap_or_else(|e| panic!("{name}/{form}: {e:?}"));
            assert_eq!(signed.algorithm(), Algorithm::EcdsaP256Sha256);
            if !(ctx.omit_session_token && form == "query") {
                let canon = signed.canonical(&Body::Bytes(&r.body)).unwrap();
                assert_eq!(
                    canon.canonical_request.trim_end(),
                    creq.trim_end(),
                    "{name}/{form}"
                );
                assert_eq!(
                    canon.string_to_sign.trim_end(),
                    sts.trim_end(),
                    "{name}/{form}"
                );
            }
            verify_sigv4a(&signed, Body::Bytes(&r.body), &key, now, &opts())
                .unwrap_or_else(|e| panic!("{name}/{form}: {e:?}"));
            // Never mis-verified: the secret path refuses, another key fails.
            assert_eq!(
                verify(&signed, Body::Bytes(&r.body), &secret, now, &opts()).err(),
                Some(SigV4Error::SigV4aUnsupported)
            );
            assert_eq!(
                verify_sigv4a(&signed, Body::Bytes(&r.body), &other, now, &opts()).err(),
                Some(SigV4Error::SignatureDoesNotMatch),
                "{name}/{form}"
            );
            n += 1;
        }
        // The standalone header-signature.txt is a second valid signature of the same request.
        let raw = read(&case.join("header-signed-request.txt"));
        let sig2 = read(&case.join("header-signature.txt"));
        let cur = raw
            .split("Signature=")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let raw2 = raw.replace(&cur, sig2.trim());
        let r = parse_raw_http(raw2.as_bytes(), MAX_RAW_REQUEST).unwrap();
        let h = r.header_refs();
        let signed = parse(&r.as_http(&h), suite_rules(&ctx)).unwrap();
        verify_sigv4a(&signed, Body::Bytes(&r.body), &key, now, &opts())
            .unwrap_or_else(|e| panic!("{name}/header-signature.txt: {e:?}"));
    }
    assert_eq!((n, skipped), (76, 2));
}

// ---- S3 streaming -------------------------------------------------------------------------

#[test]
fn s3_docs_streaming_example() {
    let d: serde_json::Value =
        serde_json::from_str(&read(&vectors().join("s3-docs-streaming-example.json"))).unwrap();
    let s = |k: &str| d[k].as_str().unwrap().to_owned();
    let secret = SecretString::new(s("secret_access_key"));
    let now = parse_amz_date(&s("x_amz_date")).unwrap();
    let req_json = &d["request"];
    let headers_owned: Vec<(String, Vec<u8>)> = req_json["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .chain([("authorization".to_owned(), s("authorization").into_bytes())])
        .collect();
    let headers: Vec<(&str, &[u8])> = headers_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = HttpRequest {
        method: req_json["method"].as_str().unwrap(),
        path: req_json["path"].as_str().unwrap(),
        query: "",
        headers: &headers,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert_eq!(signed.payload(), &PayloadMode::StreamingSigned);
    let v = verify(&signed, Body::Streaming, &secret, now, &opts()).unwrap();
    let seed = v.stream.clone().unwrap();
    assert!(s("authorization").ends_with(&s("seed_signature")));

    // Build the body from the listed chunks and their signatures.
    let build = |chunks: &[serde_json::Value], tamper: Option<usize>| -> Vec<u8> {
        let mut body = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let size = c["size"].as_u64().unwrap() as usize;
            let mut data = vec![b'a'; size];
            if tamper == Some(i) {
                data[size / 2] = b'b';
            }
            body.extend_from_slice(
                format!(
                    "{size:x};chunk-signature={}\r\n",
                    c["signature"].as_str().unwrap()
                )
                .as_bytes(),
            );
            body.extend_from_slice(&data);
            body.extend_from_slice(b"\r\n");
        }
        body
    };
    let chunks = d["chunks"].as_array().unwrap();
    let body = build(chunks, None);
    assert_eq!(body.len(), 66824);
    // Feed in odd-sized pieces.
    for piece in [1usize, 7, 1000, 65536, body.len()] {
        let mut dec = seed.decoder();
        let mut out = Vec::new();
        for part in body.chunks(piece) {
            dec.feed(part, &mut out).unwrap();
        }
        let sum = dec.finish().unwrap();
        assert_eq!(sum.decoded_len, 66560);
        assert_eq!(out, vec![b'a'; 66560]);
        assert_eq!(sum.chunks, 3);
    }
    // A tampered second chunk: the first chunk's data is released, then the stream stops.
    let bad = build(chunks, Some(1));
    let mut dec = seed.decoder();
    let mut out = Vec::new();
    assert_eq!(
        dec.feed(&bad, &mut out),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(1))
    );
    assert_eq!(out.len(), 65536);
    assert_eq!(
        dec.feed(b"", &mut out),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(1))
    );

    // Trailer variant: same seed and chunks, then signed trailers.
    let key = SigningKey::derive(&secret, "20130524", "us-east-1", "s3");
    let mut prev = Signature::from_hex(chunks[2]["signature"].as_str().unwrap()).unwrap();
    let trailers = vec![
        ("first".to_owned(), "1st".to_owned()),
        ("second".to_owned(), "2nd".to_owned()),
        ("third".to_owned(), "3rd".to_owned()),
    ];
    let ts = trailer_signature(
        &key,
        &s("x_amz_date"),
        "20130524/us-east-1/s3/aws4_request",
        &prev,
        &trailers,
    );
    assert_eq!(
        ts.to_hex(),
        d["trailer_variant"]["trailer_signature"].as_str().unwrap()
    );
    // And the chunk chain itself recomputes.
    prev = Signature::from_hex(&s("seed_signature")).unwrap();
    for c in chunks {
        let size = c["size"].as_u64().unwrap() as usize;
        let sig = chunk_signature(
            &key,
            &s("x_amz_date"),
            "20130524/us-east-1/s3/aws4_request",
            &prev,
            &vec![b'a'; size],
        );
        assert_eq!(sig.to_hex(), c["signature"].as_str().unwrap());
        prev = sig;
    }
}

/// The smithy-rs recordings use the SDK's test credentials.
const RECORDING_SECRET: &str = "notrealrnrELgWzOk3IfjzDKtFBhDby";

/// Headers, method, target and body of a recorded request.
type Recording = (Vec<(String, Vec<u8>)>, String, String, Vec<u8>);

fn recording(name: &str) -> Recording {
    let d: serde_json::Value = serde_json::from_str(&read(
        &vectors().join(format!("s3-aws-chunked-recordings/{name}.json")),
    ))
    .unwrap();
    let events = d["events"].as_array().unwrap();
    let req = &events[0]["action"]["Request"]["request"];
    let uri = req["uri"].as_str().unwrap();
    let rest = uri.strip_prefix("https://").unwrap();
    let (host, target) = rest.split_once('/').unwrap();
    let mut headers: Vec<(String, Vec<u8>)> = vec![("host".to_owned(), host.as_bytes().to_vec())];
    for (k, vs) in req["headers"].as_object().unwrap() {
        for v in vs.as_array().unwrap() {
            headers.push((k.clone(), v.as_str().unwrap().as_bytes().to_vec()));
        }
    }
    let mut body = Vec::new();
    for e in &events[1..] {
        if let Some(data) = e["action"].get("Data")
            && data["direction"] == "Request"
        {
            body.extend_from_slice(data["data"]["Utf8"].as_str().unwrap().as_bytes());
        }
    }
    (
        headers,
        req["method"].as_str().unwrap().to_owned(),
        format!("/{target}"),
        body,
    )
}

fn check_recording(name: &str, mode: PayloadMode, decoded: usize, checksum: &str) {
    let (headers_owned, method, target, body) = recording(name);
    let headers: Vec<(&str, &[u8])> = headers_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let req = HttpRequest {
        method: &method,
        path,
        query,
        headers: &headers,
    };
    let secret = SecretString::new(RECORDING_SECRET.into());
    let now = parse_amz_date("20090213T233130Z").unwrap();
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert_eq!(signed.payload(), &mode, "{name}");
    let v = verify(&signed, Body::Streaming, &secret, now, &opts())
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let mut dec = v.stream.clone().unwrap().decoder();
    let mut out = Vec::new();
    for part in body.chunks(333) {
        dec.feed(part, &mut out)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let sum = dec.finish().unwrap();
    assert_eq!(out, vec![b'a'; decoded], "{name}");
    assert_eq!(
        sum.trailers,
        vec![("x-amz-checksum-crc32".to_owned(), checksum.to_owned())]
    );

    // Any single-byte change to the body is rejected (signed) or changes the output (unsigned).
    for idx in [
        0usize,
        5,
        100,
        body.len() / 2,
        body.len() - 40,
        body.len() - 3,
    ] {
        let mut bad = body.clone();
        bad[idx] ^= 0x01;
        let mut dec = v.stream.clone().unwrap().decoder();
        let mut out2 = Vec::new();
        let r = dec
            .feed(&bad, &mut out2)
            .and_then(|()| dec.finish().map(|_| ()));
        if mode == PayloadMode::StreamingSignedTrailer {
            assert!(r.is_err(), "{name}: tamper at {idx} accepted");
        } else {
            assert!(
                r.is_err() || out2 != out || bad != body,
                "{name}: tamper at {idx}"
            );
        }
    }
    // Wrong secret: the seed signature fails.
    let wrong = SecretString::new("notrealrnrELgWzOk3IfjzDKtFBhDbz".into());
    assert_eq!(
        verify(&signed, Body::Streaming, &wrong, now, &opts()).err(),
        Some(SigV4Error::SignatureDoesNotMatch)
    );
}

#[test]
fn s3_aws_chunked_recording_chunk_signing() {
    check_recording(
        "chunk-signing",
        PayloadMode::StreamingSignedTrailer,
        10240,
        "X9RA0w==",
    );
}

#[test]
fn s3_aws_chunked_recording_custom_chunk_size() {
    check_recording(
        "custom-chunk-size",
        PayloadMode::StreamingUnsignedTrailer,
        10240,
        "X9RA0w==",
    );
}

#[test]
fn s3_aws_chunked_recording_no_chunking() {
    check_recording(
        "no-chunking",
        PayloadMode::StreamingUnsignedTrailer,
        66560,
        "sK4Y7A==",
    );
}
