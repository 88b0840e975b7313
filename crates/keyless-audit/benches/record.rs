//! Per-record CPU cost of the audit trail for a realistic AssumeRoleWithWebIdentity event:
//! the typed, borrowing record (what the server writes) built, serialised straight into the
//! pending buffer and chained (SHA-256 + hex), against the owned `AuditEvent` with
//! `serde_json::Value` parts (the previous path) and the SHA-256 floor of the same number of
//! bytes, all in the same run; and the typed record's serialisation alone.
#![allow(missing_docs, reason = "criterion macros")]
#![allow(clippy::unwrap_used, reason = "bench setup")]

// The allocator the `keyless` binary uses, so allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use keyless_audit::AuditEvent;
use keyless_audit::chain::{ChainHead, seal_event, seal_serialize};
use keyless_audit::event::{
    SOURCE_STS, SessionAttributes, SessionContext, SessionIssuer, UserIdentity, WebIdFederationData,
};
use keyless_audit::record::{
    AssumedRoleUserRef, Bounded, Claims, CredentialsRef, EventRef, EventTime, IssuedRef, Joined,
    KeyRingVersion, Prefix, Principal, Seconds, SessionAttributesRef, SessionContextRef,
    SessionIssuerRef, UserIdentityRef, WebIdRef,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::net::IpAddr;
use time::OffsetDateTime;

fn sample() -> AuditEvent {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut e = AuditEvent::new(
        now,
        SOURCE_STS,
        "AssumeRoleWithWebIdentity",
        "c0ffee00-1234-4abc-8def-0123456789ab",
        "deadbeef-1234-4abc-8def-0123456789ab",
    );
    e.source_ip_address = "127.0.0.1".into();
    e.user_agent = "aws-cli/1.40.0 Python/3.12.3 Linux/6.8 botocore/1.38.0".into();
    let mut attrs = serde_json::Map::new();
    for (k, v) in [
        ("sub", "repo:octo-org/demo:ref:refs/heads/main"),
        ("aud", "sts.amazonaws.com"),
        ("repository", "octo-org/demo"),
        ("ref", "refs/heads/main"),
        (
            "job_workflow_ref",
            "octo-org/demo/.github/workflows/ci.yml@refs/heads/main",
        ),
        ("run_id", "4242"),
    ] {
        attrs.insert(k.into(), json!(v));
    }
    e.user_identity = UserIdentity {
        kind: "WebIdentityUser".into(),
        principal_id: Some("arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:repo:octo-org/demo:ref:refs/heads/main".into()),
        user_name: Some("repo:octo-org/demo:ref:refs/heads/main".into()),
        identity_provider: Some("arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com".into()),
        session_context: Some(SessionContext {
            source_identity: None,
            web_id_federation_data: Some(WebIdFederationData {
                federated_provider: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com".into(),
                attributes: attrs,
            }),
            session_issuer: Some(SessionIssuer {
                kind: "Role".into(),
                principal_id: "AROAQWERTYUIOPASDFGHJ".into(),
                arn: "arn:aws:iam::123456789012:role/gha".into(),
                account_id: "123456789012".into(),
                user_name: "gha".into(),
            }),
            attributes: Some(SessionAttributes {
                creation_date: "2027-01-15T08:00:00Z".into(),
                mfa_authenticated: "false".into(),
            }),
        }),
        ..UserIdentity::default()
    };
    e.request_parameters = Some(json!({
        "roleArn": "arn:aws:iam::123456789012:role/gha",
        "roleSessionName": "gh-run-4242",
        "durationSeconds": 3600,
    }));
    e.response_elements = Some(json!({
        "credentials": {"accessKeyId": "ASIAQWERTYUIOPASDFGH", "expiration": "2027-01-15T09:00:00Z"},
        "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/gha/gh-run-4242", "assumedRoleId": "AROAQWERTYUIOPASDFGHJ:gh-run-4242"},
        "subjectFromWebIdentityToken": "repo:octo-org/demo:ref:refs/heads/main",
        "audience": "sts.amazonaws.com",
        "provider": "https://token.actions.githubusercontent.com",
    }));
    e.recipient_account_id = Some("123456789012".into());
    e
}

/// The facts a handler holds after issuing (what `IssuedFacts` keeps in the server).
struct Facts {
    now: OffsetDateTime,
    request_id: String,
    event_id: String,
    user_agent: String,
    claims: Vec<(String, String)>,
    request_parameters: Value,
}

fn facts() -> Facts {
    Facts {
        now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        request_id: "c0ffee00-1234-4abc-8def-0123456789ab".into(),
        event_id: "deadbeef-1234-4abc-8def-0123456789ab".into(),
        user_agent: "aws-cli/1.40.0 Python/3.12.3 Linux/6.8 botocore/1.38.0".into(),
        claims: [
            ("sub", "repo:octo-org/demo:ref:refs/heads/main"),
            ("aud", "sts.amazonaws.com"),
            ("repository", "octo-org/demo"),
            ("ref", "refs/heads/main"),
            (
                "job_workflow_ref",
                "octo-org/demo/.github/workflows/ci.yml@refs/heads/main",
            ),
            ("run_id", "4242"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        request_parameters: json!({
            "roleArn": "arn:aws:iam::123456789012:role/gha",
            "roleSessionName": "gh-run-4242",
            "durationSeconds": 3600,
        }),
    }
}

const PROVIDER: &str =
    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";
const SUB: &str = "repo:octo-org/demo:ref:refs/heads/main";

fn typed(f: &Facts) -> EventRef<'_, &Value, IssuedRef<'_>, KeyRingVersion> {
    let mut e = EventRef::new(
        f.now,
        "sts.amazonaws.com",
        "AssumeRoleWithWebIdentity",
        &f.request_id,
        &f.event_id,
        IpAddr::from([127, 0, 0, 1]),
    );
    e.user_agent = Prefix(&f.user_agent, 1024);
    e.user_identity = UserIdentityRef {
        principal_id: Some(Principal::Web(Joined(PROVIDER, "sts.amazonaws.com", SUB))),
        user_name: Some(SUB),
        identity_provider: Some(Bounded(PROVIDER, usize::MAX)),
        session_context: Some(SessionContextRef {
            source_identity: None,
            web_id_federation_data: Some(WebIdRef {
                federated_provider: PROVIDER,
                attributes: Claims::Pairs(&f.claims),
            }),
            session_issuer: Some(SessionIssuerRef {
                kind: "Role",
                principal_id: "AROAQWERTYUIOPASDFGHJ",
                arn: "arn:aws:iam::123456789012:role/gha",
                account_id: "123456789012",
                user_name: "gha",
            }),
            attributes: Some(SessionAttributesRef::new(f.now, false)),
        }),
        ..UserIdentityRef::of_kind("WebIdentityUser")
    };
    e.request_parameters = Some(&f.request_parameters);
    e.response_elements = Some(IssuedRef {
        credentials: CredentialsRef {
            access_key_id: "ASIAQWERTYUIOPASDFGH",
            expiration: Seconds(f.now + time::Duration::hours(1)),
        },
        assumed_role_user: AssumedRoleUserRef {
            assumed_role_id: "AROAQWERTYUIOPASDFGHJ:gh-run-4242",
            arn: "arn:aws:sts::123456789012:assumed-role/gha/gh-run-4242",
        },
        subject_from_web_identity_token: Some(SUB),
        audience: Some("sts.amazonaws.com"),
        provider: Some("https://token.actions.githubusercontent.com"),
        packed_policy_size: None,
        source_identity: None,
    });
    e.recipient_account_id = Some("123456789012");
    e.additional_event_data = Some(KeyRingVersion {
        key_ring_version: 1,
    });
    e
}

fn bench(c: &mut Criterion) {
    let event = sample();
    let body = event.to_body().unwrap();
    let mut head = ChainHead::genesis();
    let mut line = Vec::with_capacity(4096);
    seal_event(&mut head, &body, &mut line).unwrap();
    let line_len = line.len();
    let f = facts();
    line.clear();
    seal_serialize(&mut head, &typed(&f), &mut line).unwrap();
    eprintln!(
        "record line: {line_len} bytes (owned event), {} bytes (typed record)",
        line.len()
    );
    let mut g = c.benchmark_group("audit_record");
    g.bench_function("typed: build + serialize into the buffer + chain", |b| {
        b.iter(|| {
            line.clear();
            seal_serialize(&mut head, &typed(black_box(&f)), &mut line).unwrap()
        })
    });
    let mut body = Vec::with_capacity(4096);
    g.bench_function("typed: serialize only", |b| {
        b.iter(|| {
            body.clear();
            serde_json::to_writer(&mut body, &typed(black_box(&f))).unwrap()
        })
    });
    g.bench_function("owned AuditEvent: serialize (Value parts)", |b| {
        b.iter(|| black_box(&event).to_body().unwrap())
    });
    g.bench_function("chain only (seal: SHA-256 + hex)", |b| {
        b.iter(|| {
            line.clear();
            seal_event(&mut head, black_box(&body), &mut line).unwrap()
        })
    });
    g.bench_function("owned AuditEvent: serialize + chain", |b| {
        b.iter(|| {
            let body = black_box(&event).to_body().unwrap();
            line.clear();
            seal_event(&mut head, &body, &mut line).unwrap()
        })
    });
    // The three times of a record, written digit by digit against `time`'s format description.
    g.bench_function("eventTime: digits", |b| {
        b.iter(|| {
            body.clear();
            serde_json::to_writer(&mut body, &EventTime(black_box(f.now))).unwrap()
        })
    });
    g.bench_function("eventTime: time format description", |b| {
        b.iter(|| {
            black_box(f.now)
                .format(keyless_audit::event::EVENT_TIME_FORMAT)
                .unwrap()
        })
    });
    let floor = vec![0x61u8; line_len];
    g.bench_function("SHA-256 floor (same bytes)", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&floor)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
