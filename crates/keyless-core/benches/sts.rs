//! The hot paths in process, each next to its crypto floor measured in the same run:
//!
//! - `awiwi/complete` (verify an RS256 GitHub-shaped token, evaluate the trust policy with a
//!   guardrail, mint) against `floor/rsa2048_verify` (aws-lc-rs RSA-2048 PKCS#1 verify alone);
//! - `signed/authenticate` (parse SigV4, find the opened session in the cache, check it, verify
//!   the signature with its kept signing key, check revocations) and `signed/authorize_s3` (the
//!   same plus policy evaluation) against `floor/hmac_chain` (signing-key derivation + signature +
//!   SHA-256 of the canonical request, what a verifier without a cache pays at least);
//!   `signed/authenticate_uncached` opens the token and derives the keys on every request;
//!   `floor/hmac_chain_s3_request` is floor 2 for the benchmarked S3 request itself, whose
//!   canonical request includes its session token.
//!
//! Report: ceiling = 1 / floor time; efficiency = floor time / path time.
//! `KEYLESS_BENCH_RATIO=1` also measures `awiwi/complete` and `signed/authorize_s3` against their
//! floors in alternating slices and prints each efficiency's median and quartiles over the rounds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: a failure should abort loudly"
)]

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use keyless_core::authorize::{AuthorizeInput, GatewayBody, authorize};
use keyless_core::authz_message::MessageSealer;
use keyless_core::caller::{SignedHttp, Verifier, authenticate};
use keyless_core::directory::Directory;
use keyless_core::model::{
    Account, Entities, Guardrail, InlinePolicy, OidcProvider, Origin as Src, Role,
};
use keyless_core::revocation::{Revocation, RevocationRequest, RevocationSet};
use keyless_core::session_cache::SessionCache;
use keyless_core::sts::params::Params;
use keyless_core::sts::web_identity::{WebIdentityEnv, complete, parse};
use keyless_core::sts::{Authorizer, Origin};
use keyless_jwt::{Alg, Jwks, Signer, UnverifiedToken};
use keyless_sigv4::{
    Credentials, HttpRequest, ServiceRules, SignPayload, SignatureLocation, SigningKey,
    SigningParams, sha256_hex, sign,
};
use keyless_token::KeyRing;
use keyless_types::{AccountId, OffsetDateTime, SecretBytes, SecretString};
use serde_json::json;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const PREFIX: &str = "token.actions.githubusercontent.com";

fn world() -> Entities {
    let account = AccountId::parse("123456789012").unwrap();
    let provider = OidcProvider {
        account,
        url: ISSUER.into(),
        client_ids: vec!["sts.amazonaws.com".into()],
        thumbprints: vec![],
        allow_http: false,
        tags: Default::default(),
        origin: Src::Config,
        created: OffsetDateTime::UNIX_EPOCH,
    };
    let trust = json!({"Version":"2012-10-17","Statement":[{"Sid":"GitHubMain","Effect":"Allow",
        "Principal":{"Federated": provider.arn()},"Action":"sts:AssumeRoleWithWebIdentity",
        "Condition":{"StringEquals":{format!("{PREFIX}:aud"):"sts.amazonaws.com",
            format!("{PREFIX}:sub"):"repo:octo-org/app:ref:refs/heads/main"}}}]});
    let perms = json!({"Version":"2012-10-17","Statement":[
        {"Sid":"Read","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::artifacts","arn:aws:s3:::artifacts/*"]},
        {"Sid":"NoSecrets","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::artifacts/secret/*"}]});
    let guardrail = json!({"Version":"2012-10-17","Statement":[{"Sid":"ShortSessions","Effect":"Deny","Action":"sts:AssumeRole*","Resource":"*",
        "Condition":{"NumericGreaterThan":{"sts:DurationSeconds":"3600"}}}]});
    Entities {
        accounts: vec![Account {
            id: account,
            name: "ci".into(),
            ou_path: "/workloads/ci".into(),
            origin: Src::Config,
        }],
        providers: vec![provider],
        roles: vec![Role {
            account,
            name: "deploy".into(),
            path: "/".into(),
            role_id: "AROAEXAMPLEEXAMPLE123".into(),
            trust_policy: trust.to_string(),
            trust_principal_ids: Default::default(),
            inline_policies: vec![InlinePolicy {
                name: "read".into(),
                document: perms.to_string(),
            }],
            permissions_boundary: None,
            permissions_boundary_arn: None,
            attached_policies: vec![],
            max_session_duration: 3600,
            description: String::new(),
            tags: Default::default(),
            origin: Src::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        }],
        guardrails: vec![Guardrail {
            target: "/".into(),
            name: "short".into(),
            document: guardrail.to_string(),
            origin: Src::Config,
        }],
        policies: vec![],
    }
}

fn benches(c: &mut Criterion) {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let revocations = revocations(now);
    let directory = Directory::build(&world());
    assert!(directory.problems.is_empty(), "{:?}", directory.problems);
    let ring = KeyRing::generate(now, &mut rand::rng()).unwrap();
    let sealer = MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap();
    let origin = Origin {
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secure_transport: true,
        // What boto3 sends, so that copying it into `aws:UserAgent` is measured.
        user_agent: Some(
            "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.0",
        ),
        referer: None,
    };

    // Floor 1: one RSA-2048 PKCS#1 SHA-256 verification.
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let msg = vec![0x42u8; 700];
    let mut sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &msg,
        &mut sig,
    )
    .unwrap();
    // Parsed once, as the JWKS cache keeps its keys, so the floor is the signature check alone.
    let public = signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        rsa.public_key().as_ref().to_vec(),
    )
    .parse()
    .unwrap();
    c.bench_function("floor/rsa2048_verify", |b| {
        b.iter(|| public.verify_sig(black_box(&msg), black_box(&sig)).unwrap())
    });

    // AssumeRoleWithWebIdentity, in process.
    let signer = Signer::generate(Alg::RS256, "k1").unwrap();
    let jwks = Jwks::from_json(signer.jwks_json().as_bytes()).unwrap();
    let token = signer
        .sign(&json!({"iss": ISSUER, "sub": "repo:octo-org/app:ref:refs/heads/main", "aud": "sts.amazonaws.com",
            "iat": 1_800_000_000, "nbf": 1_800_000_000, "exp": 1_800_000_300, "repository": "octo-org/app",
            "ref": "refs/heads/main", "job_workflow_ref": "octo-org/app/.github/workflows/deploy.yml@refs/heads/main",
            "run_id": "1234567890", "actor": "octocat", "event_name": "push"}))
        .unwrap();
    let params = Params::from_pairs(vec![
        ("Action".into(), "AssumeRoleWithWebIdentity".into()),
        (
            "RoleArn".into(),
            "arn:aws:iam::123456789012:role/deploy".into(),
        ),
        ("RoleSessionName".into(), "gh-run".into()),
        ("WebIdentityToken".into(), token.clone()),
    ])
    .unwrap();
    let input = parse(&params).unwrap();
    let role = directory
        .role_by_arn("arn:aws:iam::123456789012:role/deploy")
        .unwrap();
    let provider = directory
        .provider(role.role.account, ISSUER)
        .unwrap()
        .clone();
    let env = WebIdentityEnv {
        directory: &directory,
        ring: &ring,
        revocations: &revocations,
        authorizer: Authorizer { sealer: &sealer },
        leeway: time::Duration::minutes(5),
        now,
        origin,
    };
    let validation = keyless_jwt::Validation::new(ISSUER, vec!["sts.amazonaws.com".into()]);
    // The request's form body to its validated input: what the handler does before the token.
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy&RoleSessionName=gh-run&WebIdentityToken={token}"
    );
    c.bench_function("awiwi/params", |b| {
        b.iter(|| {
            let params =
                Params::from_pairs(keyless_core::sts::form::pairs(black_box(body.as_bytes())))
                    .unwrap();
            parse(&params).unwrap()
        })
    });
    c.bench_function("awiwi/jwt_verify", |b| {
        b.iter(|| keyless_jwt::verify(black_box(&token), &jwks, &validation, now).unwrap())
    });
    c.bench_function("awiwi/complete", |b| {
        let mut rng = rand::rng();
        b.iter(|| {
            let input = black_box(&input);
            let token = UnverifiedToken::parse(input.token.expose()).unwrap();
            complete(&env, input, token, &role, &provider, &jwks, &mut rng).unwrap()
        })
    });
    // The same with every claim a real GitHub Actions token carries (31 of them, 1.1 KB): the
    // token above has the dozen the trust policy and the audit read.
    let github_token = signer
        .sign(&json!({
            "jti": "6f6b5f0e-1111-2222-3333-444444444444", "sub": "repo:octo-org/app:ref:refs/heads/main",
            "aud": "sts.amazonaws.com", "ref": "refs/heads/main", "sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
            "repository": "octo-org/app", "repository_owner": "octo-org", "repository_owner_id": "1234",
            "run_id": "5678901234", "run_number": "42", "run_attempt": "1", "repository_visibility": "private",
            "repository_id": "123456", "actor_id": "98765", "actor": "octocat", "workflow": "deploy",
            "head_ref": "", "base_ref": "", "event_name": "push", "ref_protected": "true", "ref_type": "branch",
            "workflow_ref": "octo-org/app/.github/workflows/deploy.yml@refs/heads/main",
            "workflow_sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6",
            "job_workflow_ref": "octo-org/app/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_sha": "d6d8e2c9b7f1a3b4c5d6e7f8a9b0c1d2e3f4a5b6", "runner_environment": "github-hosted",
            "iss": ISSUER, "nbf": 1_800_000_000, "exp": 1_800_000_300, "iat": 1_800_000_000
        }))
        .unwrap();
    let github_params = Params::from_pairs(vec![
        ("Action".into(), "AssumeRoleWithWebIdentity".into()),
        (
            "RoleArn".into(),
            "arn:aws:iam::123456789012:role/deploy".into(),
        ),
        ("RoleSessionName".into(), "gh-run".into()),
        ("WebIdentityToken".into(), github_token),
    ])
    .unwrap();
    let github_input = parse(&github_params).unwrap();
    c.bench_function("awiwi/complete_full_github_token", |b| {
        let mut rng = rand::rng();
        b.iter(|| {
            let input = black_box(&github_input);
            let token = UnverifiedToken::parse(input.token.expose()).unwrap();
            complete(&env, input, token, &role, &provider, &jwks, &mut rng).unwrap()
        })
    });
    if std::env::var_os("KEYLESS_BENCH_RATIO").is_some() {
        let mut rng = rand::rng();
        interleaved_ratio(
            "awiwi/complete vs floor/rsa2048_verify",
            || public.verify_sig(black_box(&msg), black_box(&sig)).unwrap(),
            || {
                let token = UnverifiedToken::parse(input.token.expose()).unwrap();
                complete(&env, &input, token, &role, &provider, &jwks, &mut rng).unwrap()
            },
        );
        interleaved_ratio(
            "awiwi/complete_full_github_token vs floor/rsa2048_verify",
            || public.verify_sig(black_box(&msg), black_box(&sig)).unwrap(),
            || {
                let token = UnverifiedToken::parse(github_input.token.expose()).unwrap();
                complete(
                    &env,
                    &github_input,
                    token,
                    &role,
                    &provider,
                    &jwks,
                    &mut rng,
                )
                .unwrap()
            },
        );
    }

    // Floor 2: the SigV4 HMAC chain for one request.
    let token = UnverifiedToken::parse(input.token.expose()).unwrap();
    let issued = complete(
        &env,
        &input,
        token,
        &role,
        &provider,
        &jwks,
        &mut rand::rng(),
    )
    .unwrap();
    let secret = SecretString::new(issued.credentials.secret_access_key.expose().to_owned());
    let canonical = "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:sts.example\nx-amz-date:20270115T080000Z\n\ncontent-type;host;x-amz-date\nab0b0c2e";
    c.bench_function("floor/hmac_chain", |b| {
        b.iter(|| {
            let key = SigningKey::derive(black_box(&secret), "20270115", "us-east-1", "sts");
            let hash = sha256_hex(canonical.as_bytes());
            key.sign(format!("AWS4-HMAC-SHA256\n20270115T080000Z\n20270115/us-east-1/sts/aws4_request\n{hash}").as_bytes())
        })
    });

    // A signed STS call (as boto3 sends GetCallerIdentity) and a signed S3 GET through authorize.
    let creds = Credentials {
        access_key_id: &issued.credentials.access_key_id,
        secret: &secret,
        session_token: Some(issued.credentials.session_token.expose()),
    };
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let base = [
        ("host", "sts.example"),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let base_bytes: Vec<(&str, &[u8])> = base.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let unsigned = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &base_bytes,
    };
    let out = sign(
        &unsigned,
        &creds,
        &SigningParams {
            region: "us-east-1",
            service: "sts",
            time: now,
            rules: ServiceRules::Standard,
            location: SignatureLocation::Headers,
            payload: SignPayload::Bytes(body),
            content_sha256_header: false,
        },
    )
    .unwrap();
    let mut owned: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    owned.extend(out.headers.clone());
    let headers: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
    };
    let sessions = SessionCache::default();
    let verifier = Verifier {
        directory: &directory,
        ring: &ring,
        revocations: &revocations,
        sessions: &sessions,
    };
    // Without the session cache: every request opens its token and derives its keys.
    c.bench_function("signed/authenticate_uncached", |b| {
        b.iter(|| {
            let fresh = SessionCache::with_capacity(1);
            authenticate(
                &Verifier {
                    sessions: &fresh,
                    ..verifier
                },
                SignedHttp {
                    request: black_box(request),
                    body,
                },
                "sts",
                now,
            )
            .unwrap()
        })
    });
    authenticate(&verifier, SignedHttp { request, body }, "sts", now).unwrap();
    c.bench_function("signed/authenticate", |b| {
        b.iter(|| {
            authenticate(
                &verifier,
                SignedHttp {
                    request: black_box(request),
                    body,
                },
                "sts",
                now,
            )
            .unwrap()
        })
    });

    let s3_base = [("host", "gw.example:9000")];
    let s3_bytes: Vec<(&str, &[u8])> = s3_base.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let s3_unsigned = HttpRequest {
        method: "GET",
        path: "/artifacts/builds/app.tar.gz",
        query: "",
        headers: &s3_bytes,
    };
    let out = sign(
        &s3_unsigned,
        &creds,
        &SigningParams {
            region: "us-east-1",
            service: "s3",
            time: now,
            rules: ServiceRules::S3,
            location: SignatureLocation::Headers,
            payload: SignPayload::Unsigned,
            content_sha256_header: true,
        },
    )
    .unwrap();
    let mut owned: Vec<(String, String)> = s3_base
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    owned.extend(out.headers.clone());
    let headers: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let s3_request = HttpRequest {
        method: "GET",
        path: "/artifacts/builds/app.tar.gz",
        query: "",
        headers: &headers,
    };
    // Floor 3: the same crypto for this very request, whose canonical request carries the
    // session token (about 1.3 KB more to hash than floor 2's).
    let canonical = keyless_sigv4::parse(&s3_request, ServiceRules::S3)
        .unwrap()
        .canonical(&keyless_sigv4::Body::Streaming)
        .unwrap();
    let floor_s3 = || {
        let key = SigningKey::derive(black_box(&secret), "20270115", "us-east-1", "s3");
        let hash = sha256_hex(black_box(canonical.canonical_request.as_bytes()));
        key.sign(
            format!(
                "AWS4-HMAC-SHA256\n20270115T080000Z\n20270115/us-east-1/s3/aws4_request\n{hash}"
            )
            .as_bytes(),
        )
    };
    c.bench_function("floor/hmac_chain_s3_request", |b| b.iter(floor_s3));

    let input = AuthorizeInput {
        request: s3_request,
        body: GatewayBody::NotGiven,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::artifacts/builds/app.tar.gz",
        context: &[],
        origin,
        region: None,
        service: None,
    };
    match authorize(&verifier, &input, now).unwrap() {
        keyless_core::authorize::AuthorizeOutcome::Decided { decision, .. } => {
            assert_eq!(decision, keyless_policy::DecisionKind::Allowed)
        }
        other => panic!("{other:?}"),
    }
    c.bench_function("signed/authorize_s3", |b| {
        b.iter(|| authorize(&verifier, black_box(&input), now).unwrap())
    });
    if std::env::var_os("KEYLESS_BENCH_RATIO").is_some() {
        interleaved_ratio(
            "signed/authorize_s3 vs floor/hmac_chain_s3_request",
            floor_s3,
            || authorize(&verifier, black_box(&input), now).unwrap(),
        );
    }
}

/// Times `floor` and `path` in alternating slices and prints the share of the floor-derived
/// ceiling (floor time / path time) per round: on a shared, noisy machine the two separate
/// criterion runs can land in different noise, while alternating slices of a few milliseconds
/// see the same. Run with `KEYLESS_BENCH_RATIO=1`.
fn interleaved_ratio<A, B>(name: &str, mut floor: impl FnMut() -> A, mut path: impl FnMut() -> B) {
    const ROUNDS: usize = 301;
    const PER_SLICE: u32 = 1_000;
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..PER_SLICE {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(PER_SLICE)
    };
    let mut rounds: Vec<(f64, f64)> = (0..ROUNDS)
        .map(|_| {
            let f = time(&mut || {
                black_box(floor());
            });
            let p = time(&mut || {
                black_box(path());
            });
            (f, p)
        })
        .collect();
    rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let at = |q: usize| rounds[q * (ROUNDS - 1) / 4];
    let show =
        |(f, p): (f64, f64)| format!("{:.0}% ({:.2} / {:.2} µs)", 100.0 * f / p, f * 1e6, p * 1e6);
    println!(
        "ratio {name}: median {}, quartiles {} .. {}, min {}, max {}",
        show(at(2)),
        show(at(1)),
        show(at(3)),
        show(at(0)),
        show(at(4))
    );
}

criterion_group!(sts, benches);
criterion_main!(sts);

/// A realistic revocation set that matches none of the benchmarked sessions: 1,000 revoked
/// sessions, and role, subject and source-identity revocations of other identities, so the
/// benchmarks include the lookups every verification makes.
fn revocations(now: OffsetDateTime) -> RevocationSet {
    let account = AccountId::parse("123456789012").unwrap();
    let mut rng = rand::rng();
    let mut list: Vec<Revocation> = (0..1000)
        .map(|i| Revocation {
            id: i,
            spec: RevocationRequest {
                kind: "session".into(),
                value: keyless_token::new_access_key_id(account, &mut rng),
                ..RevocationRequest::default()
            }
            .validate(None, "bench", 99, now)
            .unwrap(),
            audited_seq: None,
        })
        .collect();
    for (i, (kind, value, issuer)) in [
        ("role", "arn:aws:iam::123456789012:role/other", None),
        (
            "subject",
            "repo:octo-org/other:ref:refs/heads/main",
            Some(ISSUER),
        ),
        ("source-identity", "mallory", None),
    ]
    .into_iter()
    .enumerate()
    {
        list.push(Revocation {
            id: 1000 + i as i64,
            spec: RevocationRequest {
                kind: kind.into(),
                value: value.into(),
                issuer: issuer.map(str::to_owned),
                ..RevocationRequest::default()
            }
            .validate(None, "bench", 99, now)
            .unwrap(),
            audited_seq: None,
        });
    }
    RevocationSet::build(&list, now)
}
