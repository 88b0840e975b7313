//! `NotPrincipal` with `Deny`: only a principal named exactly is spared. AWS checks the
//! account, the role and the session separately ("all principals except the assumed-role user
//! named cross-account-audit-app ... are explicitly denied", even with the role and the account
//! listed; "all principals except the user named Bob" with Bob and the account listed), so
//! naming the account does not spare its users and sessions, and naming a role does not spare
//! its sessions ("Principals must always name a specific session").

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{Context, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};

fn decide(principal: &str, not_principals: &[&str]) -> DecisionKind {
    let identity = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    let listed: Vec<String> = not_principals.iter().map(|p| format!("\"{p}\"")).collect();
    let bucket = Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","NotPrincipal":{{"AWS":[{}]}},"Action":"s3:*","Resource":"*"}}]}}"#,
            listed.join(",")
        ),
        PolicyType::Resource,
    )
    .unwrap();
    let ctx = Context::new();
    let ids = [&identity];
    evaluate(
        &Request {
            principal,
            principal_id: None,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            resource_account: None,
            context: &ctx,
        },
        &PolicySet {
            identity: &ids,
            resource_policy: Some(&bucket),
            ..PolicySet::default()
        },
    )
    .kind()
}

const ROOT: &str = "arn:aws:iam::123456789012:root";
const ROLE: &str = "arn:aws:iam::123456789012:role/audit";
const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/audit/app";

#[test]
fn not_principal_naming_the_account_does_not_spare_its_users() {
    assert_eq!(
        decide("arn:aws:iam::123456789012:user/alice", &[ROOT]),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        decide("arn:aws:iam::123456789012:user/alice", &["123456789012"]),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        decide(
            "arn:aws:iam::123456789012:user/alice",
            &["arn:aws:iam::123456789012:user/bob", ROOT]
        ),
        DecisionKind::ExplicitlyDenied
    );
}

#[test]
fn not_principal_naming_a_role_does_not_spare_its_sessions() {
    assert_eq!(decide(SESSION, &[ROLE]), DecisionKind::ExplicitlyDenied);
    assert_eq!(
        decide(SESSION, &[ROLE, ROOT]),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        decide(
            "arn:aws:sts::123456789012:assumed-role/audit/other",
            &[SESSION, ROLE, ROOT]
        ),
        DecisionKind::ExplicitlyDenied
    );
}

#[test]
fn not_principal_spares_a_principal_named_exactly() {
    assert_eq!(
        decide(SESSION, &[SESSION, ROLE, ROOT]),
        DecisionKind::Allowed
    );
    assert_eq!(decide(SESSION, &[SESSION]), DecisionKind::Allowed);
    assert_eq!(
        decide(
            "arn:aws:iam::123456789012:user/bob",
            &["arn:aws:iam::123456789012:user/bob", ROOT]
        ),
        DecisionKind::Allowed
    );
    assert_eq!(decide(ROOT, &[ROOT]), DecisionKind::Allowed);
    assert_eq!(decide(ROOT, &["123456789012"]), DecisionKind::Allowed);
    assert_eq!(decide(SESSION, &["*"]), DecisionKind::Allowed);
}
