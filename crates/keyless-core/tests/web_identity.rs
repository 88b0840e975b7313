//! AssumeRoleWithWebIdentity in process: what a token's claims can and cannot stand in for.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failure must panic"
)]

use std::net::{IpAddr, Ipv4Addr};

use keyless_core::authz_message::MessageSealer;
use keyless_core::directory::Directory;
use keyless_core::model::{Account, Entities, Guardrail, OidcProvider, Origin as Src, Role};
use keyless_core::organization::Organization;
use keyless_core::revocation::RevocationSet;
use keyless_core::sts::params::Params;
use keyless_core::sts::web_identity::{WebIdentityEnv, complete, parse};
use keyless_core::sts::{Authorizer, Origin};
use keyless_jwt::{Alg, Jwks, Signer, UnverifiedToken};
use keyless_token::KeyRing;
use keyless_types::{AccountId, OffsetDateTime, SecretBytes};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

/// One account with a provider at `issuer`, a role `deploy` trusting it with no condition, and
/// the operator's guardrail `guardrail` (a Deny on AssumeRoleWithWebIdentity).
fn world(issuer: &str, guardrail: Value) -> Entities {
    let provider = OidcProvider {
        account: account(),
        url: issuer.into(),
        client_ids: vec!["sts.amazonaws.com".into()],
        thumbprints: vec![],
        allow_http: false,
        tags: Default::default(),
        origin: Src::Config,
        created: OffsetDateTime::UNIX_EPOCH,
    };
    let trust = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Federated": provider.arn()},"Action":"sts:AssumeRoleWithWebIdentity"}]});
    Entities {
        accounts: vec![Account {
            id: account(),
            name: "ci".into(),
            ou_path: "/workloads".into(),
            origin: Src::Config,
        }],
        providers: vec![provider],
        roles: vec![Role {
            account: account(),
            name: "deploy".into(),
            path: "/".into(),
            role_id: "AROAEXAMPLEEXAMPLE123".into(),
            trust_policy: trust.to_string(),
            trust_principal_ids: Default::default(),
            inline_policies: vec![],
            permissions_boundary: None,
            permissions_boundary_arn: None,
            attached_policies: vec![],
            max_session_duration: 3600,
            description: String::new(),
            tags: [("ci-assumable".to_owned(), "true".to_owned())].into(),
            origin: Src::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        }],
        guardrails: vec![Guardrail {
            target: "/".into(),
            name: "operator".into(),
            document: json!({"Version":"2012-10-17","Statement":[guardrail]}).to_string(),
            origin: Src::Config,
        }],
        policies: vec![],
    }
}

/// The error code of AssumeRoleWithWebIdentity with a token carrying `claims` (on top of the
/// required ones), or `None` when credentials were issued.
fn assume(issuer: &str, guardrail: Value, claims: Value) -> Option<String> {
    assume_from(issuer, guardrail, claims, None)
}

/// [`assume`] with the request's `User-Agent`.
fn assume_from(
    issuer: &str,
    guardrail: Value,
    claims: Value,
    user_agent: Option<&str>,
) -> Option<String> {
    assume_with(issuer, guardrail, claims, user_agent, None)
}

/// [`assume_from`] with the account in `organization`.
fn assume_with(
    issuer: &str,
    guardrail: Value,
    claims: Value,
    user_agent: Option<&str>,
    organization: Option<std::sync::Arc<Organization>>,
) -> Option<String> {
    let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let directory = Directory::build_in_organization(&world(issuer, guardrail), organization);
    assert!(directory.problems.is_empty(), "{:?}", directory.problems);
    let ring = KeyRing::generate(now, &mut rand::rng()).unwrap();
    let sealer = MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap();
    let revocations = RevocationSet::default();
    let signer = Signer::generate(Alg::ES256, "k1").unwrap();
    let jwks = Jwks::from_json(signer.jwks_json().as_bytes()).unwrap();
    let mut all = json!({"iss": issuer, "sub": "alice", "aud": "sts.amazonaws.com",
        "iat": NOW, "exp": NOW + 300});
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    let token = signer.sign(&all).unwrap();
    let params = Params::from_pairs(vec![
        (
            "RoleArn".into(),
            "arn:aws:iam::123456789012:role/deploy".into(),
        ),
        ("RoleSessionName".into(), "s1".into()),
        ("WebIdentityToken".into(), token),
    ])
    .unwrap();
    let input = parse(&params).unwrap();
    let role = directory
        .role_by_arn("arn:aws:iam::123456789012:role/deploy")
        .unwrap();
    let provider = directory.provider(account(), issuer).unwrap().clone();
    let env = WebIdentityEnv {
        directory: &directory,
        ring: &ring,
        revocations: &revocations,
        authorizer: Authorizer { sealer: &sealer },
        leeway: time::Duration::minutes(5),
        now,
        origin: Origin {
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secure_transport: true,
            user_agent,
            referer: None,
        },
    };
    let token = UnverifiedToken::parse(input.token.expose()).unwrap();
    complete(
        &env,
        &input,
        token,
        &role,
        &provider,
        &jwks,
        &mut rand::rng(),
    )
    .err()
    .map(|e| e.code.to_owned())
}

#[test]
fn claims_never_stand_in_for_aws_or_sts_keys_whatever_the_provider_host() {
    // A provider's keys are `<host>:<claim>`, so a provider at host `aws` (or `sts`) would make
    // every claim an `aws:` (`sts:`) key: a claim `PrincipalOrgID` would satisfy the operator's
    // guardrail on `aws:PrincipalOrgID`, and `SourceIdentity` one on `sts:SourceIdentity`,
    // which only a validated source identity may set.
    let org = json!({"Effect":"Deny","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*",
        "Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-trusted"}}});
    let source = json!({"Effect":"Deny","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*",
        "Condition":{"StringNotEquals":{"sts:SourceIdentity":"approved"}}});
    for (issuer, guardrail, claims) in [
        ("https://aws", &org, json!({"PrincipalOrgID": "o-trusted"})),
        ("https://AWS", &org, json!({"principalorgid": "o-trusted"})),
        (
            "https://sts",
            &source,
            json!({"SourceIdentity": "approved"}),
        ),
    ] {
        assert_eq!(
            assume(issuer, guardrail.clone(), claims).as_deref(),
            Some("AccessDenied"),
            "{issuer}"
        );
    }
    // Elsewhere the claim is `idp.example:PrincipalOrgID`, and the guardrail denies alike.
    assert_eq!(
        assume(
            "https://idp.example",
            org.clone(),
            json!({"PrincipalOrgID": "o-trusted"})
        )
        .as_deref(),
        Some("AccessDenied")
    );
    // A claim still is a key under its provider's own prefix.
    let repo = json!({"Effect":"Deny","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*",
        "Condition":{"StringNotEquals":{"idp.example:repository":"octo-org/app"}}});
    assert_eq!(
        assume(
            "https://idp.example",
            repo,
            json!({"repository": "octo-org/app"})
        ),
        None
    );
}

/// A guardrail denying AssumeRoleWithWebIdentity when `condition` holds.
fn deny_when(condition: Value) -> Value {
    json!({"Effect":"Deny","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*",
        "Condition": condition})
}

const ISSUER: &str = "https://idp.example";

/// AWS: `aws:RequestedRegion` is in every request's context. The call is unsigned, so nothing
/// names a region but the endpoint: keyless is one endpoint and names `us-east-1`, where AWS's
/// global STS endpoint is. A region guardrail copied from AWS (deny outside an allow-list that
/// includes us-east-1, or exempts `sts:*`) must not deny every federation.
#[test]
fn the_requested_region_is_the_endpoints() {
    let outside = |regions: Value| {
        assume(
            ISSUER,
            deny_when(json!({"StringNotEquals":{"aws:RequestedRegion": regions}})),
            json!({}),
        )
    };
    assert_eq!(outside(json!(["us-east-1", "eu-west-1"])), None);
    assert_eq!(
        outside(json!(["eu-west-1"])).as_deref(),
        Some("AccessDenied")
    );
}

/// AWS: `aws:ResourceAccount` is the account that owns the resource, here the role's.
#[test]
fn the_resource_account_is_the_roles() {
    let not_owner = |account: &str| {
        assume(
            ISSUER,
            deny_when(json!({"StringNotEquals":{"aws:ResourceAccount": account}})),
            json!({}),
        )
    };
    assert_eq!(not_owner("123456789012"), None);
    assert_eq!(not_owner("210987654321").as_deref(), Some("AccessDenied"));
}

/// AWS: `aws:UserAgent` holds the client's `User-Agent` header as sent; without one there is
/// nothing to compare, and a guardrail that requires a client denies.
#[test]
fn the_user_agent_is_the_clients_header() {
    let boto_only = || deny_when(json!({"StringNotLike":{"aws:UserAgent":"Boto3/*"}}));
    let boto = "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.8.0 Botocore/1.35.0";
    assert_eq!(
        assume_from(ISSUER, boto_only(), json!({}), Some(boto)),
        None
    );
    assert_eq!(
        assume_from(ISSUER, boto_only(), json!({}), Some("curl/8.5.0")).as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(
        assume_from(ISSUER, boto_only(), json!({}), None).as_deref(),
        Some("AccessDenied")
    );
}

/// AWS: the role is the resource of AssumeRoleWithWebIdentity as of AssumeRole, and STS's role
/// resource has `aws:ResourceTag/*` and `iam:ResourceTag/*` (Service Authorization Reference,
/// AWS Security Token Service). A guardrail that lets tokens into tagged roles only must see
/// the tags.
#[test]
fn the_roles_tags_are_resource_tags() {
    for key in [
        "aws:ResourceTag/ci-assumable",
        "iam:ResourceTag/CI-Assumable",
    ] {
        let untagged_only = |value: &str| {
            assume(
                ISSUER,
                deny_when(json!({"StringNotEquals":{key: value}})),
                json!({}),
            )
        };
        assert_eq!(untagged_only("true"), None, "{key}");
        assert_eq!(
            untagged_only("false").as_deref(),
            Some("AccessDenied"),
            "{key}"
        );
    }
}

/// With a declared organization, the role is a resource of it (`aws:ResourceOrgID`,
/// `aws:ResourceOrgPaths`), and the guardrail "only roles of our organization" admits it. The
/// token's identity is no account's principal, so `aws:PrincipalOrgID` stays absent, as at AWS.
#[test]
fn the_role_is_the_organizations_resource_and_the_token_no_principal_of_it() {
    let organization = || {
        Some(std::sync::Arc::new(
            Organization::new(
                "o-a1b2c3d4e5".into(),
                "r-ab12".into(),
                [("/workloads".to_owned(), "ou-ab12-11111111".to_owned())].into(),
            )
            .unwrap(),
        ))
    };
    let issuer = "https://idp.example";
    let deny_unless = |condition: Value| {
        json!({"Effect":"Deny","Action":"sts:AssumeRoleWithWebIdentity","Resource":"*",
            "Condition": condition})
    };
    for condition in [
        json!({"StringNotEquals":{"aws:ResourceOrgID":"o-a1b2c3d4e5"}}),
        json!({"ForAllValues:StringNotLike":{"aws:ResourceOrgPaths":"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}}),
        // Denies whenever the key is present.
        json!({"Null":{"aws:PrincipalOrgID":"false"}}),
    ] {
        let g = deny_unless(condition.clone());
        assert_eq!(
            assume_with(issuer, g, json!({}), None, organization()),
            None,
            "{condition}"
        );
    }
    // Without the organization, the resource keys are absent and the first guardrail denies.
    let g = deny_unless(json!({"StringNotEquals":{"aws:ResourceOrgID":"o-a1b2c3d4e5"}}));
    assert_eq!(
        assume_from(issuer, g, json!({}), None).as_deref(),
        Some("AccessDenied")
    );
}
