//! Mint and open of a typical web-identity session, against the floor: a raw AES-256-GCM
//! seal/open of the same number of bytes with aws-lc-rs.

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{Criterion, criterion_group, criterion_main};
use keyless_token::{FederatedFacts, KeyRing, SessionClaims, mint, open};
use keyless_types::AccountId;
use rand::SeedableRng;
use time::{Duration, OffsetDateTime};

fn bench(c: &mut Criterion) {
    let (Ok(now), Ok(account)) = (
        OffsetDateTime::from_unix_timestamp(1_800_000_000),
        AccountId::parse("123456789012"),
    ) else {
        return;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let Ok(ring) = KeyRing::generate(now, &mut rng) else {
        return;
    };
    let claims = SessionClaims {
        account,
        role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
        role_id: "AROAQWERTYUIOPASDFGHJ".into(),
        session_name: "gh-run-5678901234".into(),
        issued_at: now,
        expires_at: now + Duration::hours(1),
        source_identity: None,
        tags: vec![("repository".into(), "octo-org/demo".into())],
        transitive_tag_keys: vec![],
        session_policy: None,
        policy_arns: vec![],
        mfa: None,
        federated: Some(FederatedFacts {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:octo-org/demo:ref:refs/heads/main".into(),
            audience: "sts.amazonaws.com".into(),
            provider_arn:
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com".into(),
        }),
        chain_depth: 0,
        chained_from: vec![],
    };
    let Ok(creds) = mint(&ring, &claims, &mut rng) else {
        return;
    };
    let plain_len = serde_json::to_vec(&claims).map(|v| v.len()).unwrap_or(0);
    eprintln!(
        "session token: {} bytes, claims {} bytes",
        creds.session_token_size, plain_len
    );

    let Ok(unbound) = UnboundKey::new(&AES_256_GCM, &[7u8; 32]) else {
        return;
    };
    let key = LessSafeKey::new(unbound);
    let plain = vec![0x41u8; plain_len];
    let mut sealed = plain.clone();
    if key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::from(b"ASIAAAAAAAAAAAAAAAAA"),
            &mut sealed,
        )
        .is_err()
    {
        return;
    }

    let mut g = c.benchmark_group("session_token");
    g.bench_function("floor_aes256gcm_seal", |b| {
        b.iter(|| {
            let mut buf = black_box(&plain).clone();
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(b"ASIAAAAAAAAAAAAAAAAA"),
                &mut buf,
            )
            .is_ok()
        })
    });
    g.bench_function("floor_aes256gcm_open", |b| {
        b.iter(|| {
            let mut buf = black_box(&sealed).clone();
            key.open_in_place(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(b"ASIAAAAAAAAAAAAAAAAA"),
                &mut buf,
            )
            .is_ok()
        })
    });
    g.bench_function("keyless_mint", |b| {
        b.iter(|| mint(&ring, black_box(&claims), &mut rng).is_ok())
    });
    g.bench_function("keyless_open", |b| {
        b.iter(|| {
            open(
                &ring,
                black_box(&creds.access_key_id),
                black_box(creds.session_token.expose()),
                now,
            )
            .is_ok()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
