//! RS256 verification of a GitHub-Actions-shaped token through the crate's API, against the
//! floor: a raw aws-lc-rs RSA-2048 PKCS#1 SHA-256 verify of the same signing input; and the
//! parse alone.

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use keyless_jwt::{Alg, Jwks, Signer, UnverifiedToken, Validation};
use serde_json::json;
use time::OffsetDateTime;

const ISS: &str = "https://token.actions.githubusercontent.com";
const NOW: i64 = 1_800_000_000;

fn bench(c: &mut Criterion) {
    let signer = match Signer::generate(Alg::RS256, "38826b17") {
        Ok(s) => s,
        Err(e) => return eprintln!("key generation failed: {e}"),
    };
    let claims = json!({
        "jti": "6f6b5f0e-1111-2222-3333-444444444444", "sub": "repo:octo-org/demo:ref:refs/heads/main",
        "aud": "sts.amazonaws.com", "ref": "refs/heads/main", "sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
        "repository": "octo-org/demo", "repository_owner": "octo-org", "repository_owner_id": "1234",
        "run_id": "5678901234", "run_number": "42", "run_attempt": "1", "repository_visibility": "private",
        "repository_id": "123456", "actor_id": "98765", "actor": "octocat", "workflow": "deploy",
        "head_ref": "", "base_ref": "", "event_name": "push", "ref_protected": "true", "ref_type": "branch",
        "workflow_ref": "octo-org/demo/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
        "job_workflow_ref": "octo-org/demo/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6", "runner_environment": "github-hosted",
        "iss": ISS, "nbf": NOW - 10, "exp": NOW + 290, "iat": NOW - 10
    });
    let Ok(token) = signer.sign(&claims) else {
        return;
    };
    let Ok(jwks) = Jwks::from_json(signer.jwks_json().as_bytes()) else {
        return;
    };
    let validation = Validation::new(ISS, vec!["sts.amazonaws.com".into()]);
    let Ok(now) = OffsetDateTime::from_unix_timestamp(NOW) else {
        return;
    };

    // The floor: the same RSA verify with a pre-parsed key and no JWT work.
    let jwk = signer.public_jwk();
    let dec = |k: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[k].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let (n, e) = (dec("n"), dec("e"));
    let Ok(key) = (RsaPublicKeyComponents {
        n: &n[..],
        e: &e[..],
    })
    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256) else {
        return;
    };
    let dot = token.rfind('.').unwrap_or(0);
    let input = &token.as_bytes()[..dot];
    let sig = URL_SAFE_NO_PAD
        .decode(&token[dot + 1..])
        .unwrap_or_default();

    let mut g = c.benchmark_group("rs256");
    g.bench_function("floor_aws_lc_rsa2048_verify", |b| {
        b.iter(|| key.verify_sig(black_box(input), black_box(&sig)).is_ok())
    });
    g.bench_function("keyless_jwt_parse_peek_verify", |b| {
        b.iter(|| {
            let t = UnverifiedToken::parse(black_box(&token)).ok()?;
            black_box(t.issuer());
            t.verify(&jwks, &validation, now).ok()
        })
    });
    // The JWT work around the signature: decoding and strict parsing of header and payload.
    g.bench_function("keyless_jwt_parse_only", |b| {
        b.iter(|| UnverifiedToken::parse(black_box(&token)).is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
