//! An account principal names the account of one partition: `arn:aws-cn:iam::N:root` is not
//! the `aws` account N (account IDs and principals are per partition).

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use keyless_policy::{Context, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};

fn assume(principal_in_trust: &str) -> DecisionKind {
    let identity = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        PolicyType::Identity,
    )
    .unwrap();
    let trust = Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal_in_trust}"}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        PolicyType::Trust,
    )
    .unwrap();
    let ctx = Context::new();
    let ids = [&identity];
    evaluate(
        &Request {
            principal: "arn:aws:sts::123456789012:assumed-role/ci/s",
            principal_id: None,
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::123456789012:role/deploy",
            resource_account: None,
            context: &ctx,
        },
        &PolicySet {
            identity: &ids,
            resource_policy: Some(&trust),
            ..PolicySet::default()
        },
    )
    .kind()
}

#[test]
fn an_account_root_of_another_partition_does_not_name_the_principals_account() {
    assert_eq!(
        assume("arn:aws-cn:iam::123456789012:root"),
        DecisionKind::ImplicitlyDenied
    );
    assert_eq!(
        assume("arn:aws-us-gov:iam::123456789012:root"),
        DecisionKind::ImplicitlyDenied
    );
    assert_eq!(
        assume("arn:aws:iam::123456789012:root"),
        DecisionKind::Allowed
    );
    assert_eq!(assume("123456789012"), DecisionKind::Allowed);
}
