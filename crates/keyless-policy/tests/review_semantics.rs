//! Decisions where keyless once differed from AWS's documented semantics
//! (`shared/reference/iam-policy.md`), found in the policy-engine review of 2026-12-07. Each
//! test names the section of the reference it follows.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{
    Context, DecisionKind, Policy, PolicySet, PolicyType, Request, Severity, evaluate, validate,
};

/// The decision for `s3:GetObject` on `arn:aws:s3:::b/k` by user alice, under one identity
/// policy.
fn decide(policy: &str, ctx: &Context) -> DecisionKind {
    let p = Policy::parse(policy, PolicyType::Identity).unwrap();
    let ids = [&p];
    evaluate(
        &Request {
            principal: "arn:aws:iam::123456789012:user/alice",
            principal_id: None,
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

/// An identity policy allowing everything, except when `condition` holds.
fn deny_if(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{condition}}}]}}"#
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

// A.5 set operators: ForAllValues is true, and ForAnyValue false, when the key is absent "or
// the value set is empty ('null data set, such as an empty string')".

#[test]
fn for_any_value_on_an_empty_string_is_false() {
    let c = ctx(&[("idp:groups", "")]);
    let policy = allow_if(r#"{"ForAnyValue:StringLike":{"idp:groups":"*"}}"#);
    assert_eq!(decide(&policy, &c), DecisionKind::ImplicitlyDenied);
    let negated = allow_if(r#"{"ForAnyValue:StringNotEquals":{"idp:groups":"guest"}}"#);
    assert_eq!(decide(&negated, &c), DecisionKind::ImplicitlyDenied);
}

#[test]
fn for_all_values_on_an_empty_string_is_true() {
    let c = ctx(&[("idp:groups", "")]);
    let policy = deny_if(r#"{"ForAllValues:StringEquals":{"idp:groups":["guest"]}}"#);
    assert_eq!(decide(&policy, &c), DecisionKind::ExplicitlyDenied);
    // A non-empty value is tested as usual.
    let c = ctx(&[("idp:groups", "admin")]);
    assert_eq!(decide(&policy, &c), DecisionKind::Allowed);
}

// A.1: "NotPrincipal must be used with Deny. Using it with Allow is not supported" (current
// NotPrincipal page). Failing closed, an Allow with NotPrincipal grants no one.

#[test]
fn an_allow_with_not_principal_grants_no_one() {
    let rp = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"s3:*","Resource":"*"}]}"#,
        PolicyType::Resource,
    )
    .unwrap();
    let c = Context::new();
    let d = evaluate(
        &Request {
            principal: "arn:aws:iam::123456789012:user/alice",
            principal_id: None,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::b/k",
            resource_account: Some("123456789012"),
            context: &c,
        },
        &PolicySet {
            resource_policy: Some(&rp),
            ..PolicySet::default()
        },
    );
    assert_eq!(d.kind(), DecisionKind::ImplicitlyDenied);
}

// A.5 table: ArnLike compares the six colon-delimited parts separately, so a value that is not
// a six-part ARN pattern, `*` included, matches nothing: a Deny on `ArnLike … "*"` never
// applies. The validator must say so rather than let `*` pass silently.

#[test]
fn arn_like_star_matches_nothing_and_the_validator_says_so() {
    let c = ctx(&[("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:t")]);
    let policy = deny_if(r#"{"ArnLike":{"aws:SourceArn":"*"}}"#);
    assert_eq!(decide(&policy, &c), DecisionKind::Allowed);
    let findings = validate(&policy, PolicyType::Identity);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "INVALID_ARN_FORMAT" && f.severity == Severity::Warning),
        "{findings:?}"
    );
}

// A.7 / design "any doubt denies": in a web-identity trust policy every policy variable is
// filled from the request (the token's own claims, the session name the caller picks), so a
// variable in the subject or repository condition lets the token decide what it must match.
// `repo:${…:repository_owner}/*` accepts every repository on GitHub; it must be flagged like
// `repo:*`, and a repository claim compared with a variable is no repository condition.

const GH: &str = "token.actions.githubusercontent.com";

fn github_trust(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{GH}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{condition}}}]}}"#
    )
}

fn security_warnings(doc: &str) -> Vec<String> {
    validate(doc, PolicyType::Trust)
        .into_iter()
        .filter(|f| f.severity == Severity::SecurityWarning)
        .map(|f| f.code)
        .collect()
}

#[test]
fn a_variable_in_a_github_subject_counts_as_a_wildcard() {
    for (op, sub) in [
        (
            "StringEquals",
            format!("repo:${{{GH}:repository_owner}}/app:ref:refs/heads/main"),
        ),
        ("StringLike", format!("repo:${{{GH}:repository}}:*")),
        ("StringEquals", format!("${{{GH}:sub}}")),
    ] {
        let doc = github_trust(&format!(r#"{{"{op}":{{"{GH}:sub":"{sub}"}}}}"#));
        assert_eq!(
            security_warnings(&doc),
            ["OVERLY_BROAD_GITHUB_SUB"],
            "{op} {sub}"
        );
    }
    // A variable after the repository is complete still names one repository.
    let doc = github_trust(&format!(
        r#"{{"StringLike":{{"{GH}:sub":"repo:octo-org/app:ref:refs/heads/${{{GH}:actor}}"}}}}"#
    ));
    assert_eq!(security_warnings(&doc), Vec::<String>::new());
    // An escaped `${*}` is a literal star, not a wildcard.
    let doc = github_trust(&format!(
        r#"{{"StringLike":{{"{GH}:sub":"repo:octo-org/app${{*}}:ref:refs/heads/main"}}}}"#
    ));
    assert_eq!(security_warnings(&doc), Vec::<String>::new());
}

#[test]
fn a_repository_claim_compared_with_a_variable_is_no_repository_condition() {
    for key in ["repository", "repository_id", "job_workflow_ref"] {
        let doc = github_trust(&format!(
            r#"{{"StringEquals":{{"{GH}:{key}":"${{{GH}:{key}}}"}}}}"#
        ));
        assert_eq!(
            security_warnings(&doc),
            ["MISSING_GITHUB_REPO_CONDITION_KEY"],
            "{key}"
        );
    }
}

// IAM UG, Resource element ("Using wildcards in resource ARNs"): "If the * wildcard is the
// last character of a resource ARN segment, it can expand to match beyond the colon
// boundaries." The digest (A.4) is silent, and the documentation wins. Matched field by field
// only, a Deny whose pattern lost a colon, or names fewer fields than the value has, did not
// apply where AWS denies.

/// The decision for `action` on `resource` under `policy`.
fn decide_on(policy: &str, action: &str, resource: &str) -> DecisionKind {
    let p = Policy::parse(policy, PolicyType::Identity).unwrap();
    let ids = [&p];
    let c = Context::new();
    evaluate(
        &Request {
            principal: "arn:aws:iam::123456789012:user/alice",
            principal_id: None,
            action,
            resource,
            resource_account: None,
            context: &c,
        },
        &PolicySet {
            identity: &ids,
            ..PolicySet::default()
        },
    )
    .kind()
}

fn deny_resource(pattern: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},{{"Effect":"Deny","Action":"*","Resource":"{pattern}"}}]}}"#
    )
}

fn allow_resource(pattern: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"{pattern}"}}]}}"#
    )
}

#[test]
fn a_star_ending_a_resource_segment_spans_colons() {
    // One colon short: the region's `*` spans `::` to the bucket.
    let d = deny_resource("arn:aws:s3:*:secret-bucket/*");
    assert_eq!(
        decide_on(&d, "s3:GetObject", "arn:aws:s3:::secret-bucket/k"),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        decide_on(&d, "s3:GetObject", "arn:aws:s3:::public/k"),
        DecisionKind::Allowed
    );
    // The account left out: the region's `*` spans region and account.
    let d = deny_resource("arn:aws:logs:*:log-group:prod-*");
    assert_eq!(
        decide_on(
            &d,
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:123456789012:log-group:prod-app"
        ),
        DecisionKind::ExplicitlyDenied
    );
    let a = allow_resource("arn:aws:logs:*:log-group:prod-*");
    assert_eq!(
        decide_on(
            &a,
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:123456789012:log-group:prod-app"
        ),
        DecisionKind::Allowed
    );
}

#[test]
fn a_star_inside_a_resource_segment_stays_in_it() {
    // `us-*1` does not end its segment, so it cannot take `east-1:123456789012`.
    let a = allow_resource("arn:aws:logs:us-*1:log-group:x");
    assert_eq!(
        decide_on(
            &a,
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-1:123456789012:log-group:x"
        ),
        DecisionKind::ImplicitlyDenied
    );
    // Nor does `?`, anywhere before the resource segment.
    let a = allow_resource("arn:aws:s3:?:b/k");
    assert_eq!(
        decide_on(&a, "s3:GetObject", "arn:aws:s3:::b/k"),
        DecisionKind::ImplicitlyDenied
    );
}

#[test]
fn arn_condition_operators_still_compare_field_by_field() {
    // A.5 table: ArnLike `arn:aws:svc:*:111122223333:finance/*` does not match a value with
    // extra colons before the resource, even though the region's `*` ends its segment.
    let c = ctx(&[(
        "aws:SourceArn",
        "arn:aws:svc:us-east-1:extra:111122223333:finance/x",
    )]);
    let policy =
        allow_if(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:svc:*:111122223333:finance/*"}}"#);
    assert_eq!(decide(&policy, &c), DecisionKind::ImplicitlyDenied);
}
