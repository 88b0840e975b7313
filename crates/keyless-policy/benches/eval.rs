//! Evaluations per second for a 10-statement identity policy with conditions and for a GitHub
//! trust policy (the cases in `benches/cases.json`, which `tests/policy/oracle.mjs --bench N`
//! also times for iam-simulate), next to the crypto floor: one SigV4 key derivation + signature
//! (five HMAC-SHA256), measured in the same run.

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use keyless_policy::case::parse_cases;
use keyless_policy::{DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};
use sha2::Sha256;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(data);
    m.finalize().into_bytes().into()
}

fn bench(c: &mut Criterion) {
    let cases: Vec<_> = parse_cases(include_str!("cases.json"))
        .unwrap_or_else(|e| unreachable!("bench cases parse: {e}"))
        .into_iter()
        .map(|c| c.unwrap_or_else(|e| unreachable!("bench case: {e}")))
        .collect();
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("crypto_floor_sigv4_derive_and_sign", |b| {
        b.iter(|| {
            let k = hmac(black_box(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), b"20261122");
            let k = hmac(&k, b"us-east-1");
            let k = hmac(&k, b"sts");
            let k = hmac(&k, b"aws4_request");
            black_box(hmac(&k, black_box(b"AWS4-HMAC-SHA256\n20261122T030000Z\n20261122/us-east-1/sts/aws4_request\n3511de7e95d28ecd39e9513b642aee07e54f4941150d8df8bf94b328ef7e55e2")))
        })
    });
    for case in &cases {
        assert!(
            case.evaluate().kind() == DecisionKind::Allowed,
            "bench case {} must be allowed",
            case.id
        );
        let identity: Vec<&Policy> = case.identity.iter().collect();
        let set = PolicySet {
            resource_policy: case.resource_policy.as_ref(),
            identity: &identity,
            ..PolicySet::default()
        };
        let req = Request {
            principal: &case.principal,
            principal_id: None,
            action: &case.action,
            resource: &case.resource,
            resource_account: Some(&case.resource_account),
            context: &case.context,
        };
        assert!(evaluate(&req, &set).kind() == DecisionKind::Allowed);
        g.bench_function(format!("evaluate_{}", case.id), |b| {
            b.iter(|| black_box(evaluate(black_box(&req), black_box(&set))))
        });
    }
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"GitHubMain","Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/app:ref:refs/heads/main"}}}]}"#;
    g.bench_function("parse_github_trust", |b| {
        b.iter(|| black_box(Policy::parse(black_box(doc), PolicyType::Trust)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
