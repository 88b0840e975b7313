//! `Policy::merged`: a set of session policies evaluated as one.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{Context, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};

fn session(resource: &str) -> Policy {
    Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{resource}"}}]}}"#
        ),
        PolicyType::Session,
    )
    .unwrap()
}

fn decide(session: &Policy, resource: &str) -> DecisionKind {
    let identity = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    let ctx = Context::new();
    let ids = [&identity];
    evaluate(
        &Request {
            principal: "arn:aws:sts::123456789012:assumed-role/r/s",
            principal_id: None,
            action: "s3:GetObject",
            resource,
            resource_account: None,
            context: &ctx,
        },
        &PolicySet {
            identity: &ids,
            session: Some(session),
            ..PolicySet::default()
        },
    )
    .kind()
}

#[test]
fn any_part_may_allow_and_no_parts_allow_nothing() {
    let a = session("arn:aws:s3:::b/a/*");
    let c = session("arn:aws:s3:::b/c/*");
    let merged = Policy::merged(PolicyType::Session, "session policies", &[&a, &c]);
    assert_eq!(merged.statement_count(), 2);
    assert_eq!(decide(&merged, "arn:aws:s3:::b/a/1"), DecisionKind::Allowed);
    assert_eq!(decide(&merged, "arn:aws:s3:::b/c/1"), DecisionKind::Allowed);
    assert_eq!(
        decide(&merged, "arn:aws:s3:::b/x/1"),
        DecisionKind::ImplicitlyDenied
    );
    let empty = Policy::merged(PolicyType::Session, "none", &[]);
    assert_eq!(
        decide(&empty, "arn:aws:s3:::b/a/1"),
        DecisionKind::ImplicitlyDenied
    );
}
