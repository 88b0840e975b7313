//! Verify throughput (header form, STS-shaped request as boto3 sends it), with the same run's
//! HMAC-chain floor: derive key + HMAC of the string to sign + SHA-256 of the canonical request.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyless_sigv4::*;
use keyless_types::SecretString;

fn bench(c: &mut Criterion) {
    let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
    let now = parse_amz_date("20261122T020000Z").unwrap();
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let base: Vec<(&str, &[u8])> = vec![
        ("Host", b"sts.us-east-1.amazonaws.com"),
        ("Content-Type", b"application/x-www-form-urlencoded; charset=utf-8"),
        ("User-Agent", b"Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.2"),
        ("Content-Length", b"43"),
    ];
    let signable: Vec<(&str, &[u8])> = vec![base[0], base[1]];
    let out = sign(
        &HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &signable,
        },
        &Credentials {
            access_key_id: "ASIAEXAMPLEEXAMPLE01",
            secret: &secret,
            session_token: Some(&"t".repeat(600)),
        },
        &SigningParams {
            region: "us-east-1",
            service: "sts",
            time: now,
            rules: ServiceRules::FromScope,
            location: SignatureLocation::Headers,
            payload: SignPayload::Bytes(body),
            content_sha256_header: false,
        },
    )
    .unwrap();
    let mut headers = base.clone();
    headers.extend(out.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    let opts = VerifyOptions {
        expected_service: Some("sts".into()),
        ..VerifyOptions::default()
    };
    let creq = out.canonical.canonical_request.clone();
    let sts = out.canonical.string_to_sign.clone();

    let mut g = c.benchmark_group("sigv4");
    g.bench_function("floor: derive key + sha256(creq) + hmac(sts)", |b| {
        b.iter(|| {
            let key = SigningKey::derive(black_box(&secret), "20261122", "us-east-1", "sts");
            let h = sha256_hex(black_box(creq.as_bytes()));
            black_box(&h);
            black_box(key.sign(black_box(sts.as_bytes())))
        })
    });
    g.bench_function("parse + verify (derive key per request)", |b| {
        b.iter(|| {
            let signed = parse(black_box(&req), ServiceRules::FromScope).unwrap();
            verify(&signed, Body::Bytes(black_box(body)), &secret, now, &opts).unwrap()
        })
    });
    let key = SigningKey::derive(&secret, "20261122", "us-east-1", "sts");
    g.bench_function("parse + verify_with_key (cached key)", |b| {
        b.iter(|| {
            let signed = parse(black_box(&req), ServiceRules::FromScope).unwrap();
            verify_with_key(&signed, Body::Bytes(black_box(body)), &key, now, &opts).unwrap()
        })
    });
    g.bench_function("parse only", |b| {
        b.iter(|| parse(black_box(&req), ServiceRules::FromScope).unwrap())
    });
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    g.bench_function("canonical only", |b| {
        b.iter(|| signed.canonical(&Body::Bytes(black_box(body))).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
