//! Minting and opening credentials, the key ring and its file format.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure must panic"
)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyless_token::*;
use keyless_types::{AccountId, SecretBytes};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

fn claims() -> SessionClaims {
    SessionClaims {
        account: AccountId::parse("123456789012").unwrap(),
        role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
        role_id: "AROAQWERTYUIOPASDFGHJ".into(),
        session_name: "gh-run-42".into(),
        issued_at: t0(),
        expires_at: t0() + Duration::hours(1),
        source_identity: Some("octocat".into()),
        tags: vec![("team".into(), "web".into()), ("env".into(), "prod".into())],
        transitive_tag_keys: vec!["team".into()],
        session_policy: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into()),
        policy_arns: vec!["arn:aws:iam::123456789012:policy/ro".into()],
        mfa: Some(MfaFacts { present: true, authenticated_at: t0() }),
        federated: Some(FederatedFacts {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:octo-org/demo:ref:refs/heads/main".into(),
            audience: "sts.amazonaws.com".into(),
            provider_arn: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com".into(),
        }),
        chain_depth: 0,
        chained_from: vec![],
    }
}

#[test]
fn mint_then_open_round_trips() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let c = mint(&ring, &claims(), &mut r).unwrap();
    assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
    assert_eq!(c.secret_access_key.expose().len(), 40);
    assert!(
        c.secret_access_key
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    );
    assert!(c.session_token_size <= 4096);
    assert_eq!(c.session_token_size, c.session_token.expose().len());
    assert_eq!(
        c.packed_policy_size as usize,
        (c.session_token_size * 100).div_ceil(4096)
    );
    assert_eq!(c.expiration, t0() + Duration::hours(1));
    assert!(STANDARD.decode(c.session_token.expose()).is_ok());
    let o = open(
        &ring,
        &c.access_key_id,
        c.session_token.expose(),
        t0() + Duration::minutes(59),
    )
    .unwrap();
    assert_eq!(o.claims, claims());
    assert!(o.secret_access_key.ct_eq(c.secret_access_key.expose()));
    assert_eq!(o.key_version, 1);
    assert_eq!(
        account_from_access_key_id(&c.access_key_id).unwrap(),
        claims().account
    );
}

#[test]
fn minimal_claims_round_trip() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let mut cl = claims();
    cl.source_identity = None;
    cl.tags.clear();
    cl.transitive_tag_keys.clear();
    cl.session_policy = None;
    cl.policy_arns.clear();
    cl.mfa = None;
    cl.federated = None;
    cl.chain_depth = 1;
    let c = mint(&ring, &cl, &mut r).unwrap();
    assert!(c.session_token_size < 400, "{}", c.session_token_size);
    assert_eq!(
        open(&ring, &c.access_key_id, c.session_token.expose(), t0())
            .unwrap()
            .claims,
        cl
    );
}

#[test]
fn expiry_is_exact() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let c = mint(&ring, &claims(), &mut r).unwrap();
    let exp = t0() + Duration::hours(1);
    assert!(
        open(
            &ring,
            &c.access_key_id,
            c.session_token.expose(),
            exp - Duration::seconds(1)
        )
        .is_ok()
    );
    let e = open(&ring, &c.access_key_id, c.session_token.expose(), exp).unwrap_err();
    assert_eq!(e, OpenError::Expired);
    assert_eq!((e.aws_code(), e.http_status()), ("ExpiredToken", 400));
    // Issued in the future beyond the 5-minute skew.
    let e = open(
        &ring,
        &c.access_key_id,
        c.session_token.expose(),
        t0() - Duration::seconds(301),
    )
    .unwrap_err();
    assert_eq!(e, OpenError::NotYetValid);
    assert!(
        open(
            &ring,
            &c.access_key_id,
            c.session_token.expose(),
            t0() - Duration::seconds(300)
        )
        .is_ok()
    );
}

#[test]
fn token_cannot_be_replayed_with_another_key_id() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let a = mint(&ring, &claims(), &mut r).unwrap();
    let b = mint(&ring, &claims(), &mut r).unwrap();
    assert_ne!(a.access_key_id, b.access_key_id);
    assert_ne!(a.secret_access_key.expose(), b.secret_access_key.expose());
    let e = open(&ring, &b.access_key_id, a.session_token.expose(), t0()).unwrap_err();
    assert_eq!(e, OpenError::Tampered);
    assert_eq!(
        (e.aws_code(), e.http_status()),
        ("InvalidClientTokenId", 403)
    );
    // Same random part, other account: refused too.
    let other_acct = format!("ASIAAAAAAAAA{}", &a.access_key_id[12..]);
    assert_eq!(
        open(&ring, &other_acct, a.session_token.expose(), t0()).unwrap_err(),
        OpenError::Tampered
    );
}

#[test]
fn tampering_is_detected_everywhere() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let c = mint(&ring, &claims(), &mut r).unwrap();
    let raw = STANDARD.decode(c.session_token.expose()).unwrap();
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        let e = open(&ring, &c.access_key_id, &STANDARD.encode(&t), t0()).unwrap_err();
        let want = match i {
            0 => OpenError::Malformed,
            1..=4 => OpenError::UnknownKeyVersion,
            _ => OpenError::Tampered,
        };
        assert_eq!(e, want, "byte {i}");
        assert_eq!(e.aws_code(), "InvalidClientTokenId");
    }
    // Truncated.
    let e = open(
        &ring,
        &c.access_key_id,
        &STANDARD.encode(&raw[..raw.len() - 1]),
        t0(),
    )
    .unwrap_err();
    assert_eq!(e, OpenError::Tampered);
}

#[test]
fn malformed_inputs() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let c = mint(&ring, &claims(), &mut r).unwrap();
    let tok = c.session_token.expose();
    let akid = &c.access_key_id;
    let cases: Vec<(String, String, OpenError)> = vec![
        (
            "AKIAIOSFODNN7EXAMPLE".into(),
            tok.into(),
            OpenError::MalformedAccessKeyId,
        ),
        ("ASIA".into(), tok.into(), OpenError::MalformedAccessKeyId),
        (
            akid.to_lowercase(),
            tok.into(),
            OpenError::MalformedAccessKeyId,
        ),
        (akid.clone(), "".into(), OpenError::Malformed),
        (akid.clone(), "AAAA".into(), OpenError::Malformed),
        (akid.clone(), "A".repeat(4097), OpenError::Malformed),
        (akid.clone(), format!("{tok}!"), OpenError::Malformed),
        (
            akid.clone(),
            tok.replace('+', "-").replace('/', "_") + "%%%%",
            OpenError::Malformed,
        ),
        (
            akid.clone(),
            STANDARD.encode([9u8; 64]),
            OpenError::Malformed,
        ),
        (
            akid.clone(),
            STANDARD.encode(
                [1u8, 0, 0, 0, 9]
                    .iter()
                    .chain([0u8; 40].iter())
                    .copied()
                    .collect::<Vec<_>>(),
            ),
            OpenError::UnknownKeyVersion,
        ),
    ];
    for (a, t, want) in cases {
        assert_eq!(
            open(&ring, &a, &t, t0()).unwrap_err(),
            want,
            "{a} {}",
            &t[..t.len().min(20)]
        );
    }
}

#[test]
fn oversized_claims_fail_with_packed_policy_too_large() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let mut cl = claims();
    cl.tags = (0..50)
        .map(|i| (format!("key-{i:03}-{}", "k".repeat(100)), "v".repeat(256)))
        .collect();
    let e = mint(&ring, &cl, &mut r).unwrap_err();
    let MintError::PackedPolicyTooLarge { size, percent } = e else {
        panic!("{e:?}")
    };
    assert!(size > 4096);
    assert!(percent > 100);
    assert_eq!(e.aws_code(), "PackedPolicyTooLarge");
    assert_eq!(e.http_status(), 400);
    assert!(e.to_string().starts_with(&format!(
        "Packed policy consumes {percent}% of allotted space"
    )));
    // Find the boundary: grow a policy until it no longer fits; the last fitting one is <= 4096.
    let mut cl = claims();
    let mut last_ok = 0;
    for n in (1500..3200).step_by(7) {
        cl.session_policy = Some("x".repeat(n));
        match mint(&ring, &cl, &mut r) {
            Ok(c) => {
                assert!(c.session_token_size <= 4096);
                last_ok = c.session_token_size;
            }
            Err(MintError::PackedPolicyTooLarge { size, .. }) => {
                assert!(size > 4096);
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(last_ok > 4000, "{last_ok}");
}

#[test]
fn invalid_claims_are_refused() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let mut cl = claims();
    cl.expires_at = cl.issued_at;
    assert_eq!(
        mint(&ring, &cl, &mut r).unwrap_err(),
        MintError::InvalidClaims("expires_at must be after issued_at")
    );
}

#[test]
fn rotation_keeps_live_sessions_and_retirement_drops_old_versions() {
    let mut r = rng();
    let mut ring = KeyRing::generate(t0(), &mut r).unwrap();
    let old = mint(&ring, &claims(), &mut r).unwrap();
    let t1 = t0() + Duration::minutes(10);
    assert_eq!(ring.rotate(t1, &mut r).unwrap(), 2);
    assert_eq!(ring.current_id(), 2);
    let new = mint(&ring, &claims(), &mut r).unwrap();
    assert_eq!((old.key_version, new.key_version), (1, 2));
    // Both open after rotation; secrets derive from the version that sealed the token.
    let o = open(&ring, &old.access_key_id, old.session_token.expose(), t1).unwrap();
    assert!(o.secret_access_key.ct_eq(old.secret_access_key.expose()));
    assert_eq!(o.key_version, 1);
    assert_eq!(
        open(&ring, &new.access_key_id, new.session_token.expose(), t1)
            .unwrap()
            .key_version,
        2
    );
    // Version 1 stopped minting at t1: it is needed until t1 + max lifetime.
    assert_eq!(
        ring.retire_before(t1 - Duration::seconds(1)),
        Vec::<u32>::new()
    );
    assert_eq!(ring.versions().len(), 2);
    assert_eq!(ring.retire_before(t1), vec![1]);
    assert_eq!(ring.versions(), vec![(2, t1)]);
    assert_eq!(
        open(&ring, &old.access_key_id, old.session_token.expose(), t1).unwrap_err(),
        OpenError::UnknownKeyVersion
    );
    // The newest version is never dropped.
    assert_eq!(
        ring.retire_before(t1 + Duration::days(365)),
        Vec::<u32>::new()
    );
    assert_eq!(ring.current_id(), 2);
}

#[test]
fn key_ring_file_round_trip_and_redaction() {
    let mut r = rng();
    let mut ring = KeyRing::generate(t0(), &mut r).unwrap();
    ring.rotate(t0() + Duration::days(1), &mut r).unwrap();
    let c = mint(&ring, &claims(), &mut r).unwrap();
    let text = ring.to_file_string().unwrap();
    let back = KeyRing::from_file_str(text.expose()).unwrap();
    assert_eq!(back.versions(), ring.versions());
    let o = open(&back, &c.access_key_id, c.session_token.expose(), t0()).unwrap();
    assert!(o.secret_access_key.ct_eq(c.secret_access_key.expose()));
    // Debug output of the ring, the file text and credentials never shows a secret.
    let v: serde_json::Value = serde_json::from_str(text.expose()).unwrap();
    let secret = v["keys"][0]["secret"].as_str().unwrap().to_owned();
    let shown = format!("{ring:?} {text:?} {c:?} {o:?}");
    assert!(!shown.contains(&secret));
    assert!(!shown.contains(c.secret_access_key.expose()));
    assert!(!shown.contains(&c.session_token.expose()[..30]));
}

#[test]
fn key_ring_file_errors() {
    let good = |id: u32| {
        format!(
            r#"{{"id":{id},"created_at":"2026-11-22T00:00:00Z","secret":"{}"}}"#,
            STANDARD.encode([7u8; 32])
        )
    };
    let file = |keys: &str| format!(r#"{{"format":"keyless-keyring-v1","keys":[{keys}]}}"#);
    assert!(KeyRing::from_file_str(&file(&good(3))).is_ok());
    assert_eq!(
        KeyRing::from_file_str(&file("")).unwrap_err(),
        KeyRingError::Empty
    );
    assert_eq!(
        KeyRing::from_file_str(&file(&format!("{},{}", good(1), good(1)))).unwrap_err(),
        KeyRingError::DuplicateVersion(1)
    );
    let short = format!(
        r#"{{"id":4,"created_at":"2026-11-22T00:00:00Z","secret":"{}"}}"#,
        STANDARD.encode([7u8; 31])
    );
    assert_eq!(
        KeyRing::from_file_str(&file(&short)).unwrap_err(),
        KeyRingError::BadSecret(4)
    );
    let nonb64 = r#"{"id":5,"created_at":"2026-11-22T00:00:00Z","secret":"***"}"#;
    assert_eq!(
        KeyRing::from_file_str(&file(nonb64)).unwrap_err(),
        KeyRingError::BadSecret(5)
    );
    let wrong_format = good(1);
    let e = KeyRing::from_file_str(&format!(r#"{{"format":"other","keys":[{wrong_format}]}}"#))
        .unwrap_err();
    assert_eq!(
        e,
        KeyRingError::Format("format must be \"keyless-keyring-v1\"".into())
    );
    let e = KeyRing::from_file_str(&file(&good(1).replace("}", r#","extra":1}"#))).unwrap_err();
    assert!(
        matches!(e, KeyRingError::Format(ref m) if m.contains("unexpected field")),
        "{e:?}"
    );
    let e = KeyRing::from_file_str("{").unwrap_err();
    assert!(matches!(e, KeyRingError::Format(_)));
    // Errors never echo the secret.
    let leaky = r#"{"format":"keyless-keyring-v1","keys":[{"id":"SECRETVALUE","created_at":"x","secret":"SECRETVALUE"}]}"#;
    let e = KeyRing::from_file_str(leaky).unwrap_err();
    assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
    assert_eq!(
        KeyRing::from_file_str(&" ".repeat(1024 * 1024 + 1)).unwrap_err(),
        KeyRingError::Format("larger than 1 MiB".into())
    );
    assert_eq!(
        KeyRing::from_versions(vec![(
            1,
            OffsetDateTime::UNIX_EPOCH,
            SecretBytes::new(vec![0; 16])
        )])
        .unwrap_err(),
        KeyRingError::BadSecret(1)
    );
}

#[test]
fn purpose_keys_are_distinct_and_deterministic() {
    // Same root -> same secret for the same key id; different root -> different secret.
    let root = || SecretBytes::new(vec![1u8; 32]);
    let a = KeyRing::from_versions(vec![(1, t0(), root())]).unwrap();
    let b = KeyRing::from_versions(vec![(1, t0(), root())]).unwrap();
    let other = KeyRing::from_versions(vec![(1, t0(), SecretBytes::new(vec![2u8; 32]))]).unwrap();
    let c = mint(&a, &claims(), &mut rng()).unwrap();
    let ob = open(&b, &c.access_key_id, c.session_token.expose(), t0()).unwrap();
    assert!(ob.secret_access_key.ct_eq(c.secret_access_key.expose()));
    assert_eq!(
        open(&other, &c.access_key_id, c.session_token.expose(), t0()).unwrap_err(),
        OpenError::Tampered
    );
    assert_ne!(LABEL_SECRET_KEY, LABEL_TOKEN_SEAL);
    assert_ne!(LABEL_AUDIT_SIGN, LABEL_TOKEN_SEAL);
    for label in [LABEL_SECRET_KEY, LABEL_TOKEN_SEAL, LABEL_AUDIT_SIGN] {
        assert_ne!(LABEL_AUTHZ_MESSAGE, label);
    }
    // The authorization-message key: one per version, the same in every process holding the
    // ring, and different for another root.
    let keys = |r: &KeyRing| r.authorization_message_keys().unwrap();
    let (ka, kb, ko) = (keys(&a), keys(&b), keys(&other));
    assert_eq!(ka.len(), 1);
    assert_eq!(ka[0].0, 1);
    assert!(ka[0].1.ct_eq(kb[0].1.expose()));
    assert!(!ka[0].1.ct_eq(ko[0].1.expose()));
    let two = KeyRing::from_versions(vec![
        (1, t0(), root()),
        (2, t0(), SecretBytes::new(vec![3u8; 32])),
    ])
    .unwrap();
    let k2 = keys(&two);
    assert_eq!(k2.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(k2[0].1.ct_eq(ka[0].1.expose()) && !k2[1].1.ct_eq(ka[0].1.expose()));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_opens(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let ring = KeyRing::from_versions(vec![(1, t0(), SecretBytes::new(vec![3u8; 32]))]).unwrap();
            prop_assert!(!fuzz_open(&ring, &data, t0()));
            prop_assert!(!fuzz_open(&ring, STANDARD.encode(&data).as_bytes(), t0()));
        }

        #[test]
        fn any_session_name_and_tags_round_trip(name in "[\\w+=,.@-]{2,64}", v in ".{0,40}", depth in 0u8..5) {
            let mut r = rng();
            let ring = KeyRing::generate(t0(), &mut r).unwrap();
            let mut cl = claims();
            cl.session_name = name;
            cl.tags = vec![("k".into(), v)];
            cl.chain_depth = depth;
            let c = mint(&ring, &cl, &mut r).unwrap();
            prop_assert_eq!(open(&ring, &c.access_key_id, c.session_token.expose(), t0()).unwrap().claims, cl);
        }
    }
}

#[test]
fn sealed_garbage_claims_are_malformed_not_panics() {
    let ring = KeyRing::from_versions(vec![(1, t0(), SecretBytes::new(vec![3u8; 32]))]).unwrap();
    assert!(!fuzz_open_sealed(&ring, b"", t0()));
    assert!(!fuzz_open_sealed(&ring, b"{}", t0()));
    assert!(!fuzz_open_sealed(&ring, b"\xff\xfe", t0()));
    // Well-formed claims of account 0, live at t0: they open.
    let mut cl = claims();
    cl.account = AccountId::from_u64(0).unwrap();
    assert!(fuzz_open_sealed(
        &ring,
        &serde_json::to_vec(&cl).unwrap(),
        t0()
    ));
    // The same claims for account 123456789012 do not match the key id's account.
    assert!(!fuzz_open_sealed(
        &ring,
        &serde_json::to_vec(&claims()).unwrap(),
        t0()
    ));
}

mod sealed_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn sealed_arbitrary_claims_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let ring = KeyRing::from_versions(vec![(1, t0(), SecretBytes::new(vec![3u8; 32]))]).unwrap();
            let _ = fuzz_open_sealed(&ring, &data, t0());
        }
    }
}

#[test]
fn audit_signing_keys_are_per_version_deterministic_and_verify() {
    use aws_lc_rs::signature::{ED25519, KeyPair as _, UnparsedPublicKey};
    let mut ring = KeyRing::generate(t0(), &mut rng()).unwrap();
    let (v1, pair1) = ring.audit_signing_key().unwrap();
    assert_eq!(v1, 1);
    let public1 = ring.audit_public_key(1).unwrap().unwrap();
    assert_eq!(pair1.public_key().as_ref(), public1.as_slice());
    // Same root, same key: a reloaded ring derives the same public key.
    let reloaded = KeyRing::from_file_str(ring.to_file_string().unwrap().expose()).unwrap();
    assert_eq!(reloaded.audit_public_key(1).unwrap().unwrap(), public1);

    ring.rotate(t0(), &mut StdRng::seed_from_u64(7)).unwrap();
    let (v2, pair2) = ring.audit_signing_key().unwrap();
    assert_eq!(v2, 2);
    assert_ne!(pair2.public_key().as_ref(), public1.as_slice());
    assert!(ring.audit_public_key(3).unwrap().is_none());

    let sig = pair2.sign(b"digest");
    let public2 = ring.audit_public_key(2).unwrap().unwrap();
    assert!(
        UnparsedPublicKey::new(&ED25519, public2)
            .verify(b"digest", sig.as_ref())
            .is_ok()
    );
    assert!(
        UnparsedPublicKey::new(&ED25519, public1)
            .verify(b"digest", sig.as_ref())
            .is_err()
    );
}

#[test]
fn a_minimum_token_size_pads_the_token_and_it_still_opens() {
    let mut r = rng();
    let ring = KeyRing::generate(t0(), &mut r).unwrap();
    let natural = mint(&ring, &claims(), &mut r).unwrap().session_token_size;
    // Nothing asked, or less than the natural size: unchanged.
    for min in [0, 1, natural - 3, natural] {
        let c = mint_at_least(&ring, &claims(), min, &mut r).unwrap();
        assert_eq!(c.session_token_size, natural, "min {min}");
    }
    // More: at least that, at most 3 bytes more (base64 grows 4 characters at a time), never
    // past the limit; the utilization follows the padded size; the claims are unchanged.
    for min in [natural + 1, 1000, 2047, 3001, 4095, 4096] {
        let c = mint_at_least(&ring, &claims(), min, &mut r).unwrap();
        let size = c.session_token_size;
        assert!(
            (min..min + 4).contains(&size) && size <= 4096,
            "min {min}: {size}"
        );
        assert_eq!(c.session_token.expose().len(), size);
        assert_eq!(
            c.packed_policy_size,
            u32::try_from(size * 100).unwrap().div_ceil(4096)
        );
        let opened = open(&ring, &c.access_key_id, c.session_token.expose(), t0()).unwrap();
        assert_eq!(opened.claims, claims(), "min {min}");
    }
    // Above the limit is the caller's validation error, never a longer token.
    assert!(matches!(
        mint_at_least(&ring, &claims(), 4097, &mut r),
        Err(MintError::InvalidClaims(_))
    ));
}
