//! Decisions where keyless once differed from AWS's documented semantics
//! (`shared/reference/iam-policy.md`), found in the policy-engine review of 2026-12-07. Each
//! test names the section of the reference it follows.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{Context, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};

/// The decision for `s3:GetObject` on `arn:aws:s3:::b/k` by user alice, under one identity
/// policy.
fn decide(policy: &str, ctx: &Context) -> DecisionKind {
    let p = Policy::parse(policy, PolicyType::Identity).unwrap();
    let ids = [&p];
    evaluate(
        &Request {
            principal: "arn:aws:iam::123456789012:user/alice",
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            resource_account: None,
            context: ctx,
        },
        &PolicySet {
            identity: &ids,
            ..PolicySet::default()
        },
    )
    .kind()
}

/// An identity policy allowing everything when `condition` holds.
fn allow_if(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}]}}"#
    )
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::new();
    for (k, v) in pairs {
        c.insert_single(k, *v);
    }
    c
}

// A.6 / A.5: key names are case-insensitive, in a policy variable as in a condition key. The
// context folds names as Unicode does; a variable folded ASCII-only did not find a tag whose
// key has a non-ASCII capital, and then fell back to its default.

#[test]
fn a_variable_names_a_key_with_non_ascii_capitals_case_insensitively() {
    let c = ctx(&[
        ("aws:RequestTag/team", "blue"),
        ("aws:PrincipalTag/équipe", "blue"),
    ]);
    let policy =
        allow_if(r#"{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/ÉQUIPE}"}}"#);
    assert_eq!(decide(&policy, &c), DecisionKind::Allowed);
}

#[test]
fn a_variable_default_is_not_used_when_the_key_is_present_in_another_case() {
    // The principal is tagged équipe=blue; a request tag "none" must not match the default.
    let c = ctx(&[
        ("aws:RequestTag/team", "none"),
        ("aws:PrincipalTag/Équipe", "blue"),
    ]);
    let policy = allow_if(
        r#"{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/ÉQUIPE, 'none'}"}}"#,
    );
    assert_eq!(decide(&policy, &c), DecisionKind::ImplicitlyDenied);
}
