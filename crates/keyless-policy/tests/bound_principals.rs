//! A role ARN in a trust policy's `Principal` bound to the unique id of the role it named when
//! the policy was saved names that role only, as in IAM: a role deleted and recreated under
//! the same name holds another id and is not trusted.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{
    Context, Decision, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate,
};

const CI: &str = "arn:aws:iam::123456789012:role/ci-deployer";
const CI_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/ci-deployer/run-1";
const OLD_ID: &str = "AROAOLDOLDOLDOLDOLDOL";
const NEW_ID: &str = "AROANEWNEWNEWNEWNEWNE";

fn trust(principal: &str, ids: &[(&str, &str)]) -> Policy {
    Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"FromCi","Effect":"Allow","Principal":{{"AWS":{principal}}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        PolicyType::Trust,
    )
    .unwrap()
    .with_principal_ids(ids.iter().copied())
}

fn assume(trust: &Policy, caller: &str, caller_role_id: Option<&str>) -> Decision {
    let identity = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    let ctx = Context::new();
    let ids = [&identity];
    evaluate(
        &Request {
            principal: caller,
            principal_id: caller_role_id,
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::123456789012:role/prod-admin",
            resource_account: None,
            context: &ctx,
        },
        &PolicySet {
            identity: &ids,
            resource_policy: Some(trust),
            ..PolicySet::default()
        },
    )
}

#[test]
fn a_bound_role_arn_names_the_role_holding_the_bound_id() {
    let t = trust(&format!("\"{CI}\""), &[(CI, OLD_ID)]);
    assert_eq!(
        assume(&t, CI_SESSION, Some(OLD_ID)).kind(),
        DecisionKind::Allowed
    );
    assert_eq!(assume(&t, CI, Some(OLD_ID)).kind(), DecisionKind::Allowed);
}

#[test]
fn a_recreated_role_of_the_same_name_is_not_named_by_a_bound_arn() {
    let t = trust(&format!("\"{CI}\""), &[(CI, OLD_ID)]);
    for (caller, id) in [
        (CI_SESSION, Some(NEW_ID)),
        (CI_SESSION, None),
        (CI, Some(NEW_ID)),
    ] {
        let d = assume(&t, caller, id);
        assert_eq!(d.kind(), DecisionKind::ImplicitlyDenied, "{caller} {id:?}");
        // DecodeAuthorizationMessage reads this: the statement failed on its principal.
        assert!(
            d.explanation().contains("failed on Principal"),
            "{}",
            d.explanation()
        );
    }
}

#[test]
fn an_unbound_role_arn_still_matches_by_name() {
    let t = trust(&format!("\"{CI}\""), &[]);
    assert_eq!(
        assume(&t, CI_SESSION, Some(NEW_ID)).kind(),
        DecisionKind::Allowed
    );
    assert_eq!(assume(&t, CI_SESSION, None).kind(), DecisionKind::Allowed);
    // A binding for another ARN leaves this one by name.
    let other = trust(
        &format!("\"{CI}\""),
        &[("arn:aws:iam::123456789012:role/other", OLD_ID)],
    );
    assert_eq!(
        assume(&other, CI_SESSION, Some(NEW_ID)).kind(),
        DecisionKind::Allowed
    );
}

#[test]
fn wildcards_and_accounts_are_not_affected_by_bindings() {
    for principal in [
        "\"*\"",
        "\"123456789012\"",
        "\"arn:aws:iam::123456789012:root\"",
    ] {
        let listed = format!("[{principal}, \"{CI}\"]");
        let t = trust(&listed, &[(CI, OLD_ID)]);
        assert_eq!(
            assume(&t, CI_SESSION, Some(NEW_ID)).kind(),
            DecisionKind::Allowed,
            "{principal}"
        );
    }
}

#[test]
fn a_deny_naming_a_bound_arn_still_applies_to_any_role_of_that_name() {
    let t = Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"123456789012"}},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","Principal":{{"AWS":"{CI}"}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        PolicyType::Trust,
    )
    .unwrap()
    .with_principal_ids([(CI, OLD_ID)]);
    assert_eq!(
        assume(&t, CI_SESSION, Some(NEW_ID)).kind(),
        DecisionKind::ExplicitlyDenied
    );
}

#[test]
fn role_principal_arns_lists_exact_role_arns_once() {
    let p = Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Principal":{{"AWS":["{CI}","123456789012","arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/u","arn:aws:sts::123456789012:assumed-role/ci-deployer/s","arn:aws:iam::210987654321:role/team/app"]}},"Action":"sts:AssumeRole"}},
              {{"Effect":"Allow","Principal":{{"AWS":"{CI}","Federated":"arn:aws:iam::123456789012:oidc-provider/x.example"}},"Action":"sts:AssumeRole"}},
              {{"Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        PolicyType::Trust,
    )
    .unwrap();
    assert_eq!(
        p.role_principal_arns(),
        [CI, "arn:aws:iam::210987654321:role/team/app"]
    );
}
