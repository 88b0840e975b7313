//! Unit tests of the IAM use cases: real signed callers against a directory built from
//! in-memory entities, `now` fixed, changes applied to the entities as the store would.

use std::collections::BTreeMap;

use keyless_sigv4::{
    Credentials as SignCreds, HttpRequest, ServiceRules, SignPayload, SignatureLocation,
    SigningParams,
};
use keyless_token::{KeyRing, SessionClaims, mint};
use keyless_types::{AccountId, OffsetDateTime, SecretBytes};

use super::*;
use crate::authz_message::MessageSealer;
use crate::caller::{SignedHttp, authenticate};
use crate::model::{Account, Entities, InlinePolicy, Origin as EntityOrigin, Role};

const ACCT: &str = "123456789012";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_796_158_800).unwrap() // 2026-12-01T21:00:00Z
}

fn acct() -> AccountId {
    AccountId::parse(ACCT).unwrap()
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com","token.actions.githubusercontent.com:sub":"repo:octo/app:ref:refs/heads/main"}}}]}"#;
const OPEN_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}}]}"#;

fn config_role(name: &str, perms: &str) -> Role {
    Role {
        account: acct(),
        name: name.into(),
        path: "/".into(),
        role_id: unique_id("AROA", &mut rand::rng()),
        trust_policy: TRUST.into(),
        trust_principal_ids: Default::default(),
        inline_policies: vec![InlinePolicy {
            name: "perms".into(),
            document: doc(perms),
        }],
        permissions_boundary: None,
        permissions_boundary_arn: None,
        attached_policies: vec![],
        max_session_duration: 3600,
        description: String::new(),
        tags: BTreeMap::new(),
        origin: EntityOrigin::Config,
        created: now(),
    }
}

/// A world: entities, a key ring, a sealer; applies changes like the store.
struct World {
    entities: Entities,
    ring: KeyRing,
    sealer: MessageSealer,
    role_usage: crate::role_usage::RoleUsage,
}

impl World {
    fn new() -> World {
        let entities = Entities {
            accounts: vec![Account {
                id: acct(),
                name: "ci".into(),
                ou_path: "/workloads".into(),
                origin: EntityOrigin::Config,
            }],
            roles: vec![
                config_role(
                    "admin",
                    r#"{"Effect":"Allow","Action":["iam:*","sts:*"],"Resource":"*"}"#,
                ),
                config_role(
                    "reader",
                    r#"{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}"#,
                ),
            ],
            guardrails: vec![no_long_term_keys_guardrail()],
            ..Entities::default()
        };
        World {
            entities,
            ring: KeyRing::generate(now(), &mut rand::rng()).unwrap(),
            sealer: MessageSealer::new(&SecretBytes::new(vec![9; 32])).unwrap(),
            role_usage: Default::default(),
        }
    }

    fn directory(&self) -> Directory {
        let d = Directory::build(&self.entities);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        d
    }

    /// Runs `action` as a session of `role`; a change is applied to the entities.
    fn call(
        &mut self,
        role: &str,
        action: &str,
        pairs: &[(&str, &str)],
    ) -> Result<IamOutcome, ApiError> {
        let directory = self.directory();
        let compiled = directory.role(acct(), role).unwrap();
        let claims = SessionClaims {
            account: acct(),
            role_arn: compiled.arn.clone(),
            role_id: compiled.role.role_id.clone(),
            session_name: "unit".into(),
            issued_at: now(),
            expires_at: now() + time::Duration::hours(1),
            source_identity: None,
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: None,
            policy_arns: vec![],
            mfa: None,
            federated: None,
            chain_depth: 0,
            chained_from: vec![],
        };
        let creds = mint(&self.ring, &claims, &mut rand::rng()).unwrap();
        let mut all = vec![("Action".to_owned(), action.to_owned())];
        all.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let body = serde_urlencoded_body(&all);
        let headers = [
            ("host", b"iam.test".as_slice()),
            (
                "content-type",
                b"application/x-www-form-urlencoded".as_slice(),
            ),
        ];
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
        };
        let signed = keyless_sigv4::sign(
            &req,
            &SignCreds {
                access_key_id: &creds.access_key_id,
                secret: &creds.secret_access_key,
                session_token: Some(creds.session_token.expose()),
            },
            &SigningParams {
                region: "us-east-1",
                service: "iam",
                time: now(),
                rules: ServiceRules::Standard,
                location: SignatureLocation::Headers,
                payload: SignPayload::Bytes(body.as_bytes()),
                content_sha256_header: false,
            },
        )
        .unwrap();
        let mut owned: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect();
        owned.extend(signed.headers.into_iter().map(|(k, v)| (k, v.into_bytes())));
        let header_refs: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let request = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &header_refs,
        };
        let revocations = crate::revocation::RevocationSet::default();
        let sessions = crate::session_cache::SessionCache::default();
        let verifier = crate::caller::Verifier {
            directory: &directory,
            ring: &self.ring,
            revocations: &revocations,
            sessions: &sessions,
        };
        let caller = authenticate(
            &verifier,
            SignedHttp {
                request,
                body: body.as_bytes(),
            },
            "iam",
            now(),
        )
        .unwrap();
        let params = Params::from_pairs(all).unwrap();
        let env = IamEnv {
            directory: &directory,
            authorizer: Authorizer {
                sealer: &self.sealer,
            },
            now: now(),
            origin: Origin {
                source_ip: "127.0.0.1".parse().unwrap(),
                secure_transport: true,
                user_agent: None,
                referer: None,
            },
            allow_loopback_http_providers: false,
            role_usage: &self.role_usage,
        };
        let out = execute(&env, &caller, action, &params, &mut rand::rng())?;
        if let Some(change) = &out.change {
            self.apply(change.clone());
        }
        Ok(out)
    }

    fn apply(&mut self, change: Change) {
        let e = &mut self.entities;
        match change {
            Change::PutProvider(p) => {
                e.providers
                    .retain(|x| !(x.account == p.account && x.url == p.url));
                e.providers.push(p);
            }
            Change::DeleteProvider { account, url } => {
                e.providers
                    .retain(|x| !(x.account == account && x.url == url));
            }
            Change::PutRole(r) => {
                e.roles
                    .retain(|x| !(x.account == r.account && x.name.eq_ignore_ascii_case(&r.name)));
                e.roles.push(r);
            }
            Change::DeleteRole { account, name } => {
                e.roles
                    .retain(|x| !(x.account == account && x.name.eq_ignore_ascii_case(&name)));
            }
            Change::PutPolicy(p) => {
                e.policies
                    .retain(|x| !(x.account == p.account && x.name.eq_ignore_ascii_case(&p.name)));
                e.policies.push(p);
            }
            Change::DeletePolicy { account, name } => {
                e.policies
                    .retain(|x| !(x.account == account && x.name.eq_ignore_ascii_case(&name)));
            }
        }
    }

    fn code(&mut self, role: &str, action: &str, pairs: &[(&str, &str)]) -> (&'static str, u16) {
        let before = self.entities.clone();
        let e = self.call(role, action, pairs).unwrap_err();
        assert_eq!(
            self.entities, before,
            "{action} failed but changed entities"
        );
        (e.code, e.status)
    }
}

fn serde_urlencoded_body(pairs: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn leaf<'a>(nodes: &'a [Node], name: &str) -> Option<&'a str> {
    nodes.iter().find_map(|n| match n {
        Node::Leaf(n2, t) | Node::Document(n2, t) if *n2 == name => Some(t.as_str()),
        Node::Group(_, children) => leaf(children, name),
        _ => None,
    })
}

#[test]
fn create_role_uses_the_injected_clock_and_a_fresh_id() {
    let mut w = World::new();
    let out = w
        .call(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "ci"),
                ("Path", "/teams/"),
                ("AssumeRolePolicyDocument", TRUST),
            ],
        )
        .unwrap();
    let nodes = out.result.unwrap();
    assert_eq!(
        leaf(&nodes, "Arn"),
        Some("arn:aws:iam::123456789012:role/teams/ci")
    );
    assert_eq!(leaf(&nodes, "CreateDate"), Some("2026-12-01T21:00:00Z"));
    let id = leaf(&nodes, "RoleId").unwrap();
    assert!(id.starts_with("AROA") && id.len() == 21, "{id}");
    let role = w.entities.roles.iter().find(|r| r.name == "ci").unwrap();
    assert_eq!(role.origin, EntityOrigin::Api);
    assert_eq!(role.max_session_duration, 3600);
    assert_eq!(
        w.code(
            "admin",
            "CreateRole",
            &[("RoleName", "CI"), ("AssumeRolePolicyDocument", TRUST)]
        ),
        ("EntityAlreadyExists", 409)
    );
}

#[test]
fn security_warnings_need_the_acknowledgement_tag() {
    let mut w = World::new();
    assert_eq!(
        w.code(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "open"),
                ("AssumeRolePolicyDocument", OPEN_TRUST)
            ]
        ),
        ("MalformedPolicyDocument", 400)
    );
    let e = w
        .call(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "open"),
                ("AssumeRolePolicyDocument", OPEN_TRUST),
            ],
        )
        .unwrap_err();
    assert!(
        e.message.contains("MISSING_GITHUB_REPO_CONDITION_KEY"),
        "{}",
        e.message
    );
    // The acknowledgement is the exact key only: a guardrail denying that key compares case.
    assert_eq!(
        w.code(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "open"),
                ("AssumeRolePolicyDocument", OPEN_TRUST),
                ("Tags.member.1.Key", "Keyless:Acknowledge-Risk"),
                ("Tags.member.1.Value", "MISSING_GITHUB_REPO_CONDITION_KEY"),
            ]
        ),
        ("MalformedPolicyDocument", 400)
    );
    let out = w
        .call(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "open"),
                ("AssumeRolePolicyDocument", OPEN_TRUST),
                ("Tags.member.1.Key", ACKNOWLEDGE_RISK_TAG),
                ("Tags.member.1.Value", "MISSING_GITHUB_REPO_CONDITION_KEY"),
            ],
        )
        .unwrap();
    assert_eq!(out.acknowledged.len(), 1);
    assert_eq!(
        out.acknowledged[0].code,
        "MISSING_GITHUB_REPO_CONDITION_KEY"
    );
    assert_eq!(
        out.acknowledged[0].role_arn,
        "arn:aws:iam::123456789012:role/open"
    );
    // Duplicate keys are never acknowledgeable.
    let dup = r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}"#;
    assert_eq!(
        w.code(
            "admin",
            "UpdateAssumeRolePolicy",
            &[("RoleName", "open"), ("PolicyDocument", dup)]
        ),
        ("MalformedPolicyDocument", 400)
    );
}

#[test]
fn guardrail_denies_long_term_keys_to_the_admin_with_an_explained_message() {
    let mut w = World::new();
    for (action, pairs) in [
        ("CreateAccessKey", vec![]),
        ("CreateUser", vec![("UserName", "bob")]),
        (
            "CreateLoginProfile",
            vec![("UserName", "bob"), ("Password", "hunter2-Secret")],
        ),
        (
            "UpdateAccessKey",
            vec![
                ("AccessKeyId", "AKIAIOSFODNN7EXAMPLE"),
                ("Status", "Active"),
            ],
        ),
    ] {
        let e = w.call("admin", action, &pairs).unwrap_err();
        assert_eq!((e.code, e.status), ("AccessDenied", 403), "{action}");
        assert!(
            e.message
                .contains("explicit deny in a service control policy"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("hunter2"));
        let encoded = e.message.rsplit(' ').next().unwrap();
        let decoded = w.sealer.open(encoded, ACCT).unwrap();
        assert!(decoded.contains("no-long-term-keys"), "{decoded}");
    }
}

#[test]
fn weaker_callers_are_denied_before_existence_is_revealed() {
    let mut w = World::new();
    assert_eq!(
        w.code(
            "reader",
            "CreateRole",
            &[("RoleName", "x"), ("AssumeRolePolicyDocument", TRUST)]
        ),
        ("AccessDenied", 403)
    );
    assert_eq!(
        w.code("reader", "DeleteRole", &[("RoleName", "ghost")]),
        ("AccessDenied", 403)
    );
    assert_eq!(
        w.code("admin", "DeleteRole", &[("RoleName", "ghost")]),
        ("NoSuchEntity", 404)
    );
    assert!(
        w.call("reader", "GetRole", &[("RoleName", "admin")])
            .is_ok()
    );
    // Config entities are read-only through the API.
    assert_eq!(
        w.code("admin", "DeleteRole", &[("RoleName", "reader")]),
        ("UnmodifiableEntity", 400)
    );
}

#[test]
fn managed_policies_attach_version_and_conflict() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "read"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    let arn = "arn:aws:iam::123456789012:policy/read";
    w.call(
        "admin",
        "AttachRolePolicy",
        &[("RoleName", "ci"), ("PolicyArn", arn)],
    )
    .unwrap();
    let d = w.directory();
    assert_eq!(d.role(acct(), "ci").unwrap().identity_policies().len(), 1);
    assert_eq!(d.managed_policy_by_arn(arn).unwrap().attachment_count, 1);
    assert_eq!(
        w.code("admin", "DeleteRole", &[("RoleName", "ci")]),
        ("DeleteConflict", 409)
    );
    assert_eq!(
        w.code("admin", "DeletePolicy", &[("PolicyArn", arn)]),
        ("DeleteConflict", 409)
    );
    for _ in 0..4 {
        w.call(
            "admin",
            "CreatePolicyVersion",
            &[("PolicyArn", arn), ("PolicyDocument", &allow)],
        )
        .unwrap();
    }
    assert_eq!(
        w.code(
            "admin",
            "CreatePolicyVersion",
            &[("PolicyArn", arn), ("PolicyDocument", &allow)]
        ),
        ("LimitExceeded", 409)
    );
    assert_eq!(
        w.code(
            "admin",
            "DeletePolicyVersion",
            &[("PolicyArn", arn), ("VersionId", "v1")]
        ),
        ("DeleteConflict", 409)
    );
    w.call(
        "admin",
        "SetDefaultPolicyVersion",
        &[("PolicyArn", arn), ("VersionId", "v5")],
    )
    .unwrap();
    w.call(
        "admin",
        "DeletePolicyVersion",
        &[("PolicyArn", arn), ("VersionId", "v1")],
    )
    .unwrap();
    let p = w
        .entities
        .policies
        .iter()
        .find(|p| p.name == "read")
        .unwrap();
    assert_eq!(p.default_version, "v5");
    assert_eq!(p.versions.len(), 4);
    w.call(
        "admin",
        "DetachRolePolicy",
        &[("RoleName", "ci"), ("PolicyArn", arn)],
    )
    .unwrap();
    w.call("admin", "DeleteRole", &[("RoleName", "ci")])
        .unwrap();
    assert!(w.directory().role(acct(), "ci").is_none());
}

#[test]
fn list_roles_pages_with_markers() {
    let mut w = World::new();
    for i in 0..7 {
        w.call(
            "admin",
            "CreateRole",
            &[
                ("RoleName", &format!("r{i}")),
                ("AssumeRolePolicyDocument", TRUST),
            ],
        )
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut pairs = vec![("MaxItems", "4".to_owned())];
        if let Some(m) = &marker {
            pairs.push(("Marker", m.clone()));
        }
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let nodes = w
            .call("admin", "ListRoles", &pairs)
            .unwrap()
            .result
            .unwrap();
        let Node::Group("Roles", members) = &nodes[0] else {
            panic!("{nodes:?}")
        };
        for m in members {
            let Node::Group(_, fields) = m else { panic!() };
            seen.push(leaf(fields, "RoleName").unwrap().to_owned());
        }
        marker = leaf(&nodes, "Marker").map(str::to_owned);
        if leaf(&nodes, "IsTruncated") == Some("false") {
            assert!(marker.is_none());
            break;
        }
    }
    assert_eq!(seen.len(), 9); // admin, reader and the seven
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(
        w.code("admin", "ListRoles", &[("MaxItems", "0")]),
        ("ValidationError", 400)
    );
    assert_eq!(
        w.code("admin", "ListRoles", &[("Marker", "garbage")]),
        ("InvalidInput", 400)
    );
}

#[test]
fn simulation_includes_guardrails_and_explains() {
    let mut w = World::new();
    let out = w
        .call(
            "admin",
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::123456789012:role/admin"),
                ("ActionNames.member.1", "iam:CreateUser"),
                ("ActionNames.member.2", "iam:CreateRole"),
            ],
        )
        .unwrap();
    let nodes = out.result.unwrap();
    let Node::Group("EvaluationResults", members) = &nodes[0] else {
        panic!()
    };
    let decisions: Vec<&str> = members
        .iter()
        .map(|m| {
            let Node::Group(_, f) = m else { panic!() };
            leaf(f, "EvalDecision").unwrap()
        })
        .collect();
    assert_eq!(decisions, ["explicitDeny", "allowed"]);
    let Node::Group(_, first) = &members[0] else {
        panic!()
    };
    assert!(
        leaf(first, "Explanation")
            .unwrap()
            .contains("no-long-term-keys")
    );
    assert_eq!(leaf(first, "AllowedByOrganizations"), Some("false"));
}

#[test]
fn providers_need_https_and_are_unique() {
    let mut w = World::new();
    let url = "https://token.actions.githubusercontent.com";
    w.call(
        "admin",
        "CreateOpenIDConnectProvider",
        &[("Url", url), ("ClientIDList.member.1", "sts.amazonaws.com")],
    )
    .unwrap();
    assert_eq!(
        w.code("admin", "CreateOpenIDConnectProvider", &[("Url", url)]),
        ("EntityAlreadyExists", 409)
    );
    assert_eq!(
        w.code(
            "admin",
            "CreateOpenIDConnectProvider",
            &[("Url", "http://127.0.0.1:9/x")]
        ),
        ("InvalidInput", 400)
    );
    let arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";
    w.call(
        "admin",
        "AddClientIDToOpenIDConnectProvider",
        &[("OpenIDConnectProviderArn", arn), ("ClientID", "other")],
    )
    .unwrap();
    assert_eq!(
        w.entities.providers[0].client_ids,
        ["sts.amazonaws.com", "other"]
    );
    let nodes = w
        .call(
            "admin",
            "GetOpenIDConnectProvider",
            &[("OpenIDConnectProviderArn", arn)],
        )
        .unwrap()
        .result
        .unwrap();
    assert_eq!(
        leaf(&nodes, "Url"),
        Some("token.actions.githubusercontent.com")
    );
}

#[test]
fn rebuilding_reuses_unchanged_roles_only() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "read"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    let arn = "arn:aws:iam::123456789012:policy/read";
    w.call(
        "admin",
        "AttachRolePolicy",
        &[("RoleName", "ci"), ("PolicyArn", arn)],
    )
    .unwrap();
    let before = w.directory();
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "other"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    let after = Directory::build_reusing(&w.entities, Some(&before));
    let same = |d: &Directory, name: &str| d.role(acct(), name).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &same(&before, "ci"),
        &same(&after, "ci")
    ));
    assert!(std::sync::Arc::ptr_eq(
        &same(&before, "admin"),
        &same(&after, "admin")
    ));
    // A new default version of an attached policy recompiles the role.
    let deny_all = doc(r#"{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreatePolicyVersion",
        &[
            ("PolicyArn", arn),
            ("PolicyDocument", &deny_all),
            ("SetAsDefault", "true"),
        ],
    )
    .unwrap();
    let changed = Directory::build_reusing(&w.entities, Some(&after));
    assert!(!std::sync::Arc::ptr_eq(
        &same(&after, "ci"),
        &same(&changed, "ci")
    ));
    assert!(std::sync::Arc::ptr_eq(
        &same(&after, "admin"),
        &same(&changed, "admin")
    ));
    assert!(same(&changed, "ci").managed[0].1.label().contains("(v2)"));
}

#[test]
fn a_policy_arn_spelled_another_way_is_authorized_as_the_policy_it_names() {
    // The managed policy is found by name ignoring case (and whatever the partition says), so
    // it must be authorized, and its `iam:PolicyARN` tested, as the policy found: otherwise a
    // Deny on `policy/Guard*` is stepped around with `policy/guard` or `arn:aws-cn:...`.
    let mut w = World::new();
    w.entities.roles.push(config_role(
        "delegate",
        r#"{"Effect":"Allow","Action":"iam:*","Resource":"*"},
           {"Effect":"Deny","Action":["iam:CreatePolicyVersion","iam:DeletePolicy"],"Resource":"arn:aws:iam::123456789012:policy/Guard*"},
           {"Effect":"Deny","Action":"iam:AttachRolePolicy","Resource":"*","Condition":{"ArnLike":{"iam:PolicyARN":"arn:aws:iam::123456789012:policy/Guard*"}}}"#,
    ));
    let allow = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "Guard"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    for arn in [
        "arn:aws:iam::123456789012:policy/Guard",
        "arn:aws:iam::123456789012:policy/guard",
        "arn:aws:iam::123456789012:policy/GUARD",
    ] {
        assert_eq!(
            w.code(
                "delegate",
                "CreatePolicyVersion",
                &[("PolicyArn", arn), ("PolicyDocument", &allow)]
            ),
            ("AccessDenied", 403),
            "{arn}"
        );
        assert_eq!(
            w.code("delegate", "DeletePolicy", &[("PolicyArn", arn)]),
            ("AccessDenied", 403),
            "{arn}"
        );
        assert_eq!(
            w.code(
                "delegate",
                "AttachRolePolicy",
                &[("RoleName", "ci"), ("PolicyArn", arn)]
            ),
            ("AccessDenied", 403),
            "{arn}"
        );
    }
    // Another partition names no policy of this server, so nothing is changed through it.
    assert_eq!(
        w.code(
            "delegate",
            "CreatePolicyVersion",
            &[
                ("PolicyArn", "arn:aws-cn:iam::123456789012:policy/Guard"),
                ("PolicyDocument", &allow)
            ]
        ),
        ("NoSuchEntity", 404)
    );
    // A policy that does not exist is still authorized before it is looked up.
    assert_eq!(
        w.code(
            "delegate",
            "DeletePolicy",
            &[("PolicyArn", "arn:aws:iam::123456789012:policy/Guardian")]
        ),
        ("AccessDenied", 403)
    );
    assert_eq!(
        w.code(
            "delegate",
            "DeletePolicy",
            &[("PolicyArn", "arn:aws:iam::123456789012:policy/nothing")]
        ),
        ("NoSuchEntity", 404)
    );
}

/// Adds a guardrail at the organization root (as the config file would).
fn guard(w: &mut World, name: &str, statements: &str) {
    w.entities.guardrails.push(crate::model::Guardrail {
        target: "/".into(),
        name: name.into(),
        document: doc(statements),
        origin: EntityOrigin::Config,
    });
}

#[test]
fn a_guardrail_naming_a_policy_binds_in_whatever_case_the_caller_writes_its_arn() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let widen = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "Protected"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    guard(
        &mut w,
        "protect",
        r#"{"Effect":"Deny","Action":["iam:CreatePolicyVersion","iam:SetDefaultPolicyVersion","iam:DeletePolicy"],"Resource":"arn:aws:iam::123456789012:policy/Protected"},
           {"Effect":"Deny","Action":"iam:AttachRolePolicy","Resource":"*","Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::123456789012:policy/Protected"}}}"#,
    );
    for arn in [
        "arn:aws:iam::123456789012:policy/Protected",
        "arn:aws:iam::123456789012:policy/protected",
        "arn:aws:iam::123456789012:policy/PROTECTED",
    ] {
        assert_eq!(
            w.code(
                "admin",
                "CreatePolicyVersion",
                &[
                    ("PolicyArn", arn),
                    ("PolicyDocument", &widen),
                    ("SetAsDefault", "true")
                ]
            ),
            ("AccessDenied", 403),
            "{arn}"
        );
        assert_eq!(
            w.code("admin", "DeletePolicy", &[("PolicyArn", arn)]),
            ("AccessDenied", 403),
            "{arn}"
        );
        assert_eq!(
            w.code(
                "admin",
                "AttachRolePolicy",
                &[("RoleName", "ci"), ("PolicyArn", arn)]
            ),
            ("AccessDenied", 403),
            "{arn}"
        );
    }
    let p = w
        .entities
        .policies
        .iter()
        .find(|p| p.name == "Protected")
        .unwrap();
    assert_eq!((p.versions.len(), p.default_version.as_str()), (1, "v1"));
    // Roles are looked up the same way: a simulation of a protected role, whatever the case.
    guard(
        &mut w,
        "no-peeking",
        r#"{"Effect":"Deny","Action":"iam:SimulatePrincipalPolicy","Resource":"arn:aws:iam::123456789012:role/ci"}"#,
    );
    for arn in [
        "arn:aws:iam::123456789012:role/ci",
        "arn:aws:iam::123456789012:role/CI",
    ] {
        assert_eq!(
            w.code(
                "admin",
                "SimulatePrincipalPolicy",
                &[
                    ("PolicySourceArn", arn),
                    ("ActionNames.member.1", "s3:GetObject")
                ]
            ),
            ("AccessDenied", 403),
            "{arn}"
        );
    }
}

#[test]
fn arns_of_another_partition_name_nothing() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "read"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    let d = w.directory();
    assert!(
        d.role_by_arn("arn:aws:iam::123456789012:role/ADMIN")
            .is_some()
    );
    assert!(
        d.managed_policy_by_arn("arn:aws:iam::123456789012:policy/read")
            .is_some()
    );
    for partition in ["aws-cn", "aws-us-gov", "x", "AWS"] {
        assert!(
            d.role_by_arn(&format!("arn:{partition}:iam::123456789012:role/admin"))
                .is_none(),
            "{partition}"
        );
        assert!(
            d.managed_policy_by_arn(&format!("arn:{partition}:iam::123456789012:policy/read"))
                .is_none(),
            "{partition}"
        );
    }
}

#[test]
fn calls_on_a_role_carry_its_permissions_boundary_as_aws_does() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let boundary = "arn:aws:iam::123456789012:policy/OrgBoundary";
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "OrgBoundary"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "read"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    let read = "arn:aws:iam::123456789012:policy/read";
    for (name, bounded) in [("bounded", true), ("free", false)] {
        let mut pairs = vec![("RoleName", name), ("AssumeRolePolicyDocument", TRUST)];
        if bounded {
            pairs.push(("PermissionsBoundary", boundary));
        }
        w.call("admin", "CreateRole", &pairs).unwrap();
    }
    // The delegated-administrator pattern of AWS's permissions-boundary guide.
    w.entities.roles.push(config_role(
        "delegate",
        r#"{"Effect":"Allow","Action":["iam:PutRolePolicy","iam:DeleteRolePolicy","iam:AttachRolePolicy","iam:DetachRolePolicy"],"Resource":"*","Condition":{"StringEquals":{"iam:PermissionsBoundary":"arn:aws:iam::123456789012:policy/OrgBoundary"}}}"#,
    ));
    guard(
        &mut w,
        "keep-org-boundary",
        r#"{"Effect":"Deny","Action":"iam:DeleteRolePermissionsBoundary","Resource":"*","Condition":{"StringEquals":{"iam:PermissionsBoundary":"arn:aws:iam::123456789012:policy/OrgBoundary"}}}"#,
    );
    assert_eq!(
        w.code(
            "admin",
            "DeleteRolePermissionsBoundary",
            &[("RoleName", "bounded")]
        ),
        ("AccessDenied", 403)
    );
    let inline = [("PolicyName", "p"), ("PolicyDocument", allow.as_str())];
    let attach = [("PolicyArn", read)];
    for (action, extra) in [
        ("PutRolePolicy", &inline[..]),
        ("AttachRolePolicy", &attach[..]),
    ] {
        let mut pairs = vec![("RoleName", "free")];
        pairs.extend_from_slice(extra);
        assert_eq!(
            w.code("delegate", action, &pairs),
            ("AccessDenied", 403),
            "{action} on a role without the boundary"
        );
        pairs[0].1 = "bounded";
        w.call("delegate", action, &pairs).unwrap();
    }
    w.call(
        "delegate",
        "DetachRolePolicy",
        &[("RoleName", "bounded"), ("PolicyArn", read)],
    )
    .unwrap();
    w.call(
        "delegate",
        "DeleteRolePolicy",
        &[("RoleName", "bounded"), ("PolicyName", "p")],
    )
    .unwrap();
    let role = w
        .entities
        .roles
        .iter()
        .find(|r| r.name == "bounded")
        .unwrap();
    assert_eq!(role.permissions_boundary_arn.as_deref(), Some(boundary));
}

#[test]
fn guardrails_see_the_tags_of_policies_and_providers_and_of_tagging_requests() {
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let widen = doc(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let owned = [
        ("Tags.member.1.Key", "owner"),
        ("Tags.member.1.Value", "platform"),
    ];
    let mut pairs = vec![("PolicyName", "deploy"), ("PolicyDocument", allow.as_str())];
    pairs.extend(owned);
    w.call("admin", "CreatePolicy", &pairs).unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "other"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    let url = "https://token.actions.githubusercontent.com";
    let mut pairs = vec![("Url", url), ("ClientIDList.member.1", "sts.amazonaws.com")];
    pairs.extend(owned);
    w.call("admin", "CreateOpenIDConnectProvider", &pairs)
        .unwrap();
    guard(
        &mut w,
        "platform-owned",
        r#"{"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/owner":"platform"}}},
           {"Effect":"Deny","Action":["iam:Tag*","iam:Untag*","iam:Create*"],"Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"owner"}}}"#,
    );
    let deploy = "arn:aws:iam::123456789012:policy/deploy";
    let other = "arn:aws:iam::123456789012:policy/other";
    let provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";
    let denied: [(&str, Vec<(&str, &str)>); 9] = [
        (
            "CreatePolicyVersion",
            vec![
                ("PolicyArn", deploy),
                ("PolicyDocument", &widen),
                ("SetAsDefault", "true"),
            ],
        ),
        (
            "UntagPolicy",
            vec![("PolicyArn", deploy), ("TagKeys.member.1", "x")],
        ),
        (
            "UntagPolicy",
            vec![("PolicyArn", other), ("TagKeys.member.1", "owner")],
        ),
        ("TagPolicy", vec![("PolicyArn", other), owned[0], owned[1]]),
        (
            "AddClientIDToOpenIDConnectProvider",
            vec![("OpenIDConnectProviderArn", provider), ("ClientID", "evil")],
        ),
        (
            "UntagOpenIDConnectProvider",
            vec![
                ("OpenIDConnectProviderArn", provider),
                ("TagKeys.member.1", "owner"),
            ],
        ),
        (
            "TagOpenIDConnectProvider",
            vec![
                ("OpenIDConnectProviderArn", provider),
                ("Tags.member.1.Key", "x"),
                ("Tags.member.1.Value", "y"),
            ],
        ),
        (
            "DeleteOpenIDConnectProvider",
            vec![("OpenIDConnectProviderArn", provider)],
        ),
        (
            "CreateOpenIDConnectProvider",
            vec![("Url", "https://gitlab.com"), owned[0], owned[1]],
        ),
    ];
    for (action, pairs) in &denied {
        assert_eq!(
            w.code("admin", action, pairs),
            ("AccessDenied", 403),
            "{action} {pairs:?}"
        );
    }
    // What the guardrail does not cover still works.
    w.call(
        "admin",
        "CreatePolicyVersion",
        &[("PolicyArn", other), ("PolicyDocument", &allow)],
    )
    .unwrap();
    w.call(
        "admin",
        "TagPolicy",
        &[
            ("PolicyArn", other),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "web"),
        ],
    )
    .unwrap();
}

fn trusting_role(arn: &str) -> String {
    doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{arn}"}},"Action":"sts:AssumeRole"}}"#
    ))
}

fn role_id(w: &World, name: &str) -> String {
    w.entities
        .roles
        .iter()
        .find(|r| r.name == name)
        .unwrap()
        .role_id
        .clone()
}

/// Whether a session of `ci` holding `ci_id` passes the trust policy of `prod`.
fn prod_trusts(w: &World, ci_id: &str) -> bool {
    let d = w.directory();
    let prod = d.role(acct(), "prod").unwrap();
    let ctx = keyless_policy::Context::new();
    let req = keyless_policy::Request {
        principal: "arn:aws:sts::123456789012:assumed-role/ci/run",
        principal_id: Some(ci_id),
        action: "sts:AssumeRole",
        resource: &prod.arn,
        resource_account: None,
        context: &ctx,
    };
    let set = keyless_policy::PolicySet {
        resource_policy: Some(&prod.trust),
        ..keyless_policy::PolicySet::default()
    };
    keyless_policy::evaluate(&req, &set).kind() == DecisionKind::Allowed
}

#[test]
fn a_saved_trust_policy_trusts_the_role_it_named_not_one_recreated_under_its_name() {
    const CI: &str = "arn:aws:iam::123456789012:role/ci";
    let mut w = World::new();
    let ci = [("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)];
    w.call("admin", "CreateRole", &ci).unwrap();
    let old_id = role_id(&w, "ci");
    let prod_trust = trusting_role(CI);
    let out = w
        .call(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "prod"),
                ("AssumeRolePolicyDocument", &prod_trust),
            ],
        )
        .unwrap();
    // The document reads back as written; the binding is kept beside it.
    assert_eq!(
        leaf(&out.result.unwrap(), "AssumeRolePolicyDocument"),
        Some(prod_trust.as_str())
    );
    let prod = w.entities.roles.iter().find(|r| r.name == "prod").unwrap();
    assert_eq!(
        prod.trust_principal_ids,
        BTreeMap::from([(CI.to_owned(), old_id.clone())])
    );
    assert!(prod_trusts(&w, &old_id));

    w.call("admin", "DeleteRole", &[("RoleName", "ci")])
        .unwrap();
    w.call("admin", "CreateRole", &ci).unwrap();
    let new_id = role_id(&w, "ci");
    assert_ne!(new_id, old_id);
    assert!(!prod_trusts(&w, &new_id), "a recreated ci is trusted");

    // Saving the trust policy again binds the role that holds the name now.
    w.call(
        "admin",
        "UpdateAssumeRolePolicy",
        &[("RoleName", "prod"), ("PolicyDocument", &prod_trust)],
    )
    .unwrap();
    assert!(prod_trusts(&w, &new_id));
    assert!(!prod_trusts(&w, &old_id));
}

#[test]
fn a_trust_policy_naming_a_role_that_does_not_exist_is_malformed_and_saves_nothing() {
    let mut w = World::new();
    let ghost = trusting_role("arn:aws:iam::123456789012:role/ghost");
    let before = w.entities.clone();
    let e = w
        .call(
            "admin",
            "CreateRole",
            &[("RoleName", "prod"), ("AssumeRolePolicyDocument", &ghost)],
        )
        .unwrap_err();
    assert_eq!((e.code, e.status), ("MalformedPolicyDocument", 400));
    assert_eq!(
        e.message,
        r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:role/ghost""#
    );
    assert_eq!(w.entities, before);
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "prod"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    assert_eq!(
        w.code(
            "admin",
            "UpdateAssumeRolePolicy",
            &[("RoleName", "prod"), ("PolicyDocument", &ghost)]
        ),
        ("MalformedPolicyDocument", 400)
    );
    // A role of another path is another role.
    assert_eq!(
        w.code(
            "admin",
            "UpdateAssumeRolePolicy",
            &[
                ("RoleName", "prod"),
                (
                    "PolicyDocument",
                    &trusting_role("arn:aws:iam::123456789012:role/team/admin")
                )
            ]
        ),
        ("MalformedPolicyDocument", 400)
    );
}

#[test]
fn a_detach_is_authorized_and_matched_as_the_attachment_it_removes() {
    // DetachRolePolicy once removed any attachment equal to the given ARN ignoring ASCII case,
    // while `iam:PolicyARN` was the ARN as written whenever its path's case differed from the
    // stored one: `policy/security/Baseline` stepped around a guardrail on `policy/Security/*`.
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let arn = "arn:aws:iam::123456789012:policy/Security/Baseline";
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreatePolicy",
        &[
            ("PolicyName", "Baseline"),
            ("Path", "/Security/"),
            ("PolicyDocument", &allow),
        ],
    )
    .unwrap();
    w.call(
        "admin",
        "AttachRolePolicy",
        &[("RoleName", "ci"), ("PolicyArn", arn)],
    )
    .unwrap();
    guard(
        &mut w,
        "keep-security",
        r#"{"Effect":"Deny","Action":"iam:DetachRolePolicy","Resource":"*","Condition":{"ArnLike":{"iam:PolicyARN":"arn:aws:iam::*:policy/Security/*"}}}"#,
    );
    assert_eq!(
        w.code(
            "admin",
            "DetachRolePolicy",
            &[("RoleName", "ci"), ("PolicyArn", arn)]
        ),
        ("AccessDenied", 403)
    );
    for other in [
        "arn:aws:iam::123456789012:policy/security/Baseline",
        "arn:aws:iam::123456789012:policy/SECURITY/BASELINE",
        "arn:AWS:IAM::123456789012:policy/Security/Baseline",
        "ARN:aws:iam::123456789012:POLICY/security/baseline",
    ] {
        assert_eq!(
            w.code(
                "admin",
                "DetachRolePolicy",
                &[("RoleName", "ci"), ("PolicyArn", other)]
            ),
            ("NoSuchEntity", 404),
            "{other}"
        );
    }
    let ci = w.entities.roles.iter().find(|r| r.name == "ci").unwrap();
    assert_eq!(ci.attached_policies, vec![arn.to_owned()]);
}

#[test]
fn calls_on_a_role_carry_its_tags_as_iam_resource_tag_too() {
    // IAM documents `iam:ResourceTag/<key>` beside `aws:ResourceTag/<key>` for users and roles
    // (CDK's bootstrap policies use it). Without it a Deny keyed on it never matched.
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreateRole",
        &[
            ("RoleName", "prod"),
            ("AssumeRolePolicyDocument", TRUST),
            ("Tags.member.1.Key", "protected"),
            ("Tags.member.1.Value", "true"),
        ],
    )
    .unwrap();
    guard(
        &mut w,
        "protected-roles",
        r#"{"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"StringEquals":{"iam:ResourceTag/protected":"true"}}}"#,
    );
    for (action, pairs) in [
        ("DeleteRole", vec![("RoleName", "prod")]),
        (
            "PutRolePolicy",
            vec![
                ("RoleName", "prod"),
                ("PolicyName", "more"),
                ("PolicyDocument", allow.as_str()),
            ],
        ),
        (
            "UpdateAssumeRolePolicy",
            vec![("RoleName", "prod"), ("PolicyDocument", OPEN_TRUST)],
        ),
        (
            "UntagRole",
            vec![("RoleName", "prod"), ("TagKeys.member.1", "protected")],
        ),
        ("GetRole", vec![("RoleName", "PROD")]),
    ] {
        let before = w.entities.clone();
        let e = w.call("admin", action, &pairs).unwrap_err();
        assert_eq!((e.code, e.status), ("AccessDenied", 403), "{action}");
        assert_eq!(w.entities, before, "{action}");
    }
    assert_eq!(
        w.code(
            "admin",
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::123456789012:role/prod"),
                ("ActionNames.member.1", "s3:GetObject")
            ]
        ),
        ("AccessDenied", 403)
    );
    // Both keys, the tag key matched ignoring case as for every tag key.
    let mut c = keyless_policy::Context::new();
    params::role_resource_tags(&mut c, &[("team".to_owned(), "a".to_owned())].into());
    assert!(c.get("iam:ResourceTag/TEAM").is_some());
    assert!(c.get("aws:ResourceTag/team").is_some());
}

#[test]
fn tags_refuse_control_characters_as_the_iam_pattern_does() {
    // `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: `\p{Z}` is the separators (space, no-break space, U+2028…),
    // not TAB, LF or CR. A tag with a CR would not even come back as written (XML turns it
    // into LF).
    let mut w = World::new();
    for (key, value) in [
        ("a\nb", "v"),
        ("tab\tkey", "v"),
        ("k", "line\r\nbreak"),
        ("k", "nul\u{0}"),
        ("k", "next\u{85}line"),
    ] {
        assert_eq!(
            w.code(
                "admin",
                "CreateRole",
                &[
                    ("RoleName", "tagged"),
                    ("AssumeRolePolicyDocument", TRUST),
                    ("Tags.member.1.Key", key),
                    ("Tags.member.1.Value", value),
                ]
            ),
            ("ValidationError", 400),
            "{key:?}={value:?}"
        );
    }
    w.call(
        "admin",
        "CreateRole",
        &[
            ("RoleName", "tagged"),
            ("AssumeRolePolicyDocument", TRUST),
            ("Tags.member.1.Key", "cost center"),
            ("Tags.member.1.Value", "no\u{a0}break\u{2028}sep"),
        ],
    )
    .unwrap();
    assert_eq!(
        w.code(
            "admin",
            "TagRole",
            &[
                ("RoleName", "tagged"),
                ("Tags.member.1.Key", "k"),
                ("Tags.member.1.Value", "a\tb"),
            ]
        ),
        ("ValidationError", 400)
    );
}

#[test]
fn managed_policies_must_be_version_2012_10_17() {
    // IAM refuses a managed policy (or a new version of one) without `"Version": "2012-10-17"`:
    // "Policy document must be version 2012-10-17 or greater." Inline policies may omit it.
    let mut w = World::new();
    let stmt =
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}"}"#;
    let none = format!(r#"{{"Statement":[{stmt}]}}"#);
    let old = format!(r#"{{"Version":"2008-10-17","Statement":[{stmt}]}}"#);
    for d in [&none, &old] {
        let before = w.entities.clone();
        let e = w
            .call(
                "admin",
                "CreatePolicy",
                &[("PolicyName", "legacy"), ("PolicyDocument", d)],
            )
            .unwrap_err();
        assert_eq!((e.code, e.status), ("MalformedPolicyDocument", 400), "{d}");
        assert_eq!(
            e.message,
            "Policy document must be version 2012-10-17 or greater."
        );
        assert_eq!(w.entities, before);
    }
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "current"), ("PolicyDocument", &doc(stmt))],
    )
    .unwrap();
    for d in [&none, &old] {
        assert_eq!(
            w.code(
                "admin",
                "CreatePolicyVersion",
                &[
                    ("PolicyArn", "arn:aws:iam::123456789012:policy/current"),
                    ("PolicyDocument", d),
                    ("SetAsDefault", "true"),
                ]
            ),
            ("MalformedPolicyDocument", 400)
        );
    }
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    w.call(
        "admin",
        "PutRolePolicy",
        &[
            ("RoleName", "ci"),
            ("PolicyName", "inline"),
            ("PolicyDocument", &none),
        ],
    )
    .unwrap();
}

#[test]
fn policy_paths_follow_the_stricter_policy_path_pattern() {
    // CreatePolicy's Path and the PathPrefix of ListPolicies/ListAttachedRolePolicies are
    // `((/[A-Za-z0-9\.,\+@=_-]+)*)/` in the IAM model, not the role path pattern: a `*` in a
    // stored policy ARN would read as a wildcard wherever the ARN is written into a policy.
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    for path in ["/a*b/", "/a//b/", "/a:b/", "/a b/", "/é/", "/x", "x/"] {
        assert_eq!(
            w.code(
                "admin",
                "CreatePolicy",
                &[
                    ("PolicyName", "p"),
                    ("Path", path),
                    ("PolicyDocument", &allow)
                ]
            ),
            ("ValidationError", 400),
            "{path}"
        );
    }
    for path in ["/", "/team/", "/a.b,c+d@e=f_g-h/x/"] {
        let name = format!("p{}", path.len());
        w.call(
            "admin",
            "CreatePolicy",
            &[
                ("PolicyName", &name),
                ("Path", path),
                ("PolicyDocument", &allow),
            ],
        )
        .unwrap();
    }
    w.call(
        "admin",
        "CreateRole",
        &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .unwrap();
    for prefix in ["/te", "/a*/", "//"] {
        assert_eq!(
            w.code("admin", "ListPolicies", &[("PathPrefix", prefix)]),
            ("ValidationError", 400),
            "{prefix}"
        );
        assert_eq!(
            w.code(
                "admin",
                "ListAttachedRolePolicies",
                &[("RoleName", "ci"), ("PathPrefix", prefix)]
            ),
            ("ValidationError", 400),
            "{prefix}"
        );
    }
    let out = w
        .call("admin", "ListPolicies", &[("PathPrefix", "/team/")])
        .unwrap();
    assert_eq!(
        leaf(&out.result.unwrap(), "Arn"),
        Some("arn:aws:iam::123456789012:policy/team/p6")
    );
    // ListRoles keeps the looser role path prefix pattern.
    w.call("admin", "ListRoles", &[("PathPrefix", "/te")])
        .unwrap();
}

#[test]
fn simulation_refuses_inputs_it_would_otherwise_ignore() {
    // A resource policy with a Deny, a caller, an exclusion list or organization policies
    // change AWS's answer. Ignoring them silently answered "allowed" where AWS says
    // "explicitDeny"; a simulator must refuse what it does not evaluate.
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let deny_all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    let custom = [
        ("PolicyInputList.member.1", allow.as_str()),
        ("ActionNames.member.1", "s3:GetObject"),
    ];
    let principal = [
        ("PolicySourceArn", "arn:aws:iam::123456789012:role/admin"),
        ("ActionNames.member.1", "s3:GetObject"),
    ];
    for (name, value) in [
        ("ResourcePolicy", deny_all),
        ("ResourceOwner", "arn:aws:iam::210987654321:root"),
        ("CallerArn", "arn:aws:iam::123456789012:role/admin"),
        ("ResourceHandlingOption", "EC2-VPC-InstanceStore"),
        ("PolicyExclusionList.member.1", "perms"),
        ("OrderedOrganizationPolicyInputList.member.1", deny_all),
    ] {
        for (action, base) in [
            ("SimulateCustomPolicy", &custom),
            ("SimulatePrincipalPolicy", &principal),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            assert_eq!(
                w.code("admin", action, &pairs),
                ("InvalidInput", 400),
                "{action} {name}"
            );
        }
    }
    let mut pairs = custom.to_vec();
    pairs.extend([
        ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
        ("ContextEntries.member.1.ContextKeyType", "address"),
        (
            "ContextEntries.member.1.ContextKeyValues.member.1",
            "10.0.0.1",
        ),
    ]);
    assert_eq!(
        w.code("admin", "SimulateCustomPolicy", &pairs),
        ("ValidationError", 400)
    );
    pairs.pop();
    pairs.pop();
    pairs.push(("ContextEntries.member.1.ContextKeyType", "ip"));
    pairs.push((
        "ContextEntries.member.1.ContextKeyValues.member.1",
        "10.0.0.1",
    ));
    w.call("admin", "SimulateCustomPolicy", &pairs).unwrap();
}

#[test]
fn list_roles_leaves_out_what_aws_leaves_out() {
    // ListRoles does not return PermissionsBoundary, RoleLastUsed or Tags (IAM API reference:
    // "IAM resource-listing operations return a subset of the available attributes");
    // GetRole does.
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    w.call(
        "admin",
        "CreatePolicy",
        &[("PolicyName", "bound"), ("PolicyDocument", &allow)],
    )
    .unwrap();
    w.call(
        "admin",
        "CreateRole",
        &[
            ("RoleName", "ci"),
            ("AssumeRolePolicyDocument", TRUST),
            (
                "PermissionsBoundary",
                "arn:aws:iam::123456789012:policy/bound",
            ),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
        ],
    )
    .unwrap();
    let listed = w.call("admin", "ListRoles", &[]).unwrap().result.unwrap();
    for absent in ["PermissionsBoundaryArn", "Key", "RoleLastUsed"] {
        assert_eq!(leaf(&listed, absent), None, "{absent}");
    }
    let Node::Group("Roles", members) = &listed[0] else {
        panic!("{listed:?}")
    };
    for m in members {
        let Node::Group(_, fields) = m else { panic!() };
        assert!(
            fields.iter().all(|f| !matches!(
                f,
                Node::Group("PermissionsBoundary" | "Tags" | "RoleLastUsed", _)
            )),
            "{fields:?}"
        );
    }
    let got = w
        .call("admin", "GetRole", &[("RoleName", "ci")])
        .unwrap()
        .result
        .unwrap();
    assert_eq!(
        leaf(&got, "PermissionsBoundaryArn"),
        Some("arn:aws:iam::123456789012:policy/bound")
    );
    assert_eq!(leaf(&got, "Key"), Some("team"));
}

#[test]
fn a_managed_policy_description_has_only_a_length_limit() {
    // policyDescriptionType is `max 1000` with no pattern (a role's description has one).
    let mut w = World::new();
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let text = "Lecture seule — équipe données ✓";
    let out = w
        .call(
            "admin",
            "CreatePolicy",
            &[
                ("PolicyName", "read"),
                ("Description", text),
                ("PolicyDocument", &allow),
            ],
        )
        .unwrap();
    assert_eq!(leaf(&out.result.unwrap(), "Description"), Some(text));
    let long = "é".repeat(1001);
    assert_eq!(
        w.code(
            "admin",
            "CreatePolicy",
            &[
                ("PolicyName", "long"),
                ("Description", &long),
                ("PolicyDocument", &allow),
            ]
        ),
        ("ValidationError", 400)
    );
    assert_eq!(
        w.code(
            "admin",
            "CreateRole",
            &[
                ("RoleName", "ci"),
                ("Description", text),
                ("AssumeRolePolicyDocument", TRUST),
            ]
        ),
        ("ValidationError", 400)
    );
}

#[test]
fn iam_calls_are_made_to_us_east_1_as_aws_requested_region_says() {
    // IAM is a global service whose one endpoint is in us-east-1; AWS's region guardrails key
    // on `aws:RequestedRegion` and list us-east-1 for it. Without the key, an allow-list of
    // regions locked everyone (the admin too) out of IAM, and a Deny on us-east-1 let IAM
    // calls through.
    let mut w = World::new();
    guard(
        &mut w,
        "approved-regions",
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"]}}}"#,
    );
    w.call("admin", "GetRole", &[("RoleName", "admin")])
        .unwrap();
    guard(
        &mut w,
        "no-us-east-1",
        r#"{"Effect":"Deny","Action":"iam:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}"#,
    );
    assert_eq!(
        w.code(
            "admin",
            "CreateRole",
            &[("RoleName", "ci"), ("AssumeRolePolicyDocument", TRUST)]
        ),
        ("AccessDenied", 403)
    );
}

#[test]
fn iam_resources_are_owned_by_the_callers_account_as_aws_resource_account_says() {
    // AWS puts the resource owner's account in `aws:ResourceAccount`; data-perimeter
    // guardrails deny when it is not one of theirs. Absent, such a guardrail denied every IAM
    // call, its own account's included.
    let mut w = World::new();
    guard(
        &mut w,
        "own-accounts",
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceAccount":["123456789012"]}}}"#,
    );
    w.call("admin", "GetRole", &[("RoleName", "admin")])
        .unwrap();
    guard(
        &mut w,
        "other-accounts",
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:ResourceAccount":["210987654321"]}}}"#,
    );
    assert_eq!(
        w.code("admin", "GetRole", &[("RoleName", "admin")]),
        ("AccessDenied", 403)
    );
}

#[test]
fn a_provider_with_trusted_identity_propagation_is_refused_not_half_created() {
    // ContextProvider and IdentityCenterInstanceArn change what the provider's tokens mean
    // (the subject is derived from another claim, keys are mapped into trusted context).
    // keyless does not do that; creating the provider without them made a provider other than
    // the one asked for.
    let mut w = World::new();
    let url = "https://idp.example.com";
    for extra in [
        ("ContextProvider.SubjectSourceKey", "email"),
        (
            "IdentityCenterInstanceArn",
            "arn:aws:sso:::instance/ssoins-1234567890abcdef",
        ),
    ] {
        assert_eq!(
            w.code(
                "admin",
                "CreateOpenIDConnectProvider",
                &[("Url", url), ("ClientIDList.member.1", "sts"), extra]
            ),
            ("InvalidInput", 400),
            "{extra:?}"
        );
    }
    w.call(
        "admin",
        "CreateOpenIDConnectProvider",
        &[("Url", url), ("ClientIDList.member.1", "sts")],
    )
    .unwrap();
}

/// AWS authorizes the tags of a create call as their tagging action too: a principal allowed
/// CreateRole but not TagRole may create the role untagged, not tagged (the tags are what
/// tag-keyed trust and guardrails read). Likewise CreatePolicy/TagPolicy and
/// CreateOpenIDConnectProvider/TagOpenIDConnectProvider.
#[test]
fn tags_given_at_creation_need_the_tagging_action_too() {
    let mut w = World::new();
    w.entities.roles.push(config_role(
        "creator",
        r#"{"Effect":"Allow","Action":["iam:CreateRole","iam:CreatePolicy","iam:CreateOpenIDConnectProvider"],"Resource":"*"}"#,
    ));
    w.entities.roles.push(config_role(
        "tagger",
        r#"{"Effect":"Allow","Action":["iam:Create*","iam:Tag*"],"Resource":"*"}"#,
    ));
    let tags = [("Tags.member.1.Key", "ci"), ("Tags.member.1.Value", "yes")];
    let allow = doc(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    // (create action, the tagging action it implies, its parameters without tags)
    type Creation<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let creations: [Creation<'_>; 3] = [
        (
            "CreateRole",
            "iam:TagRole",
            vec![("RoleName", "tagged"), ("AssumeRolePolicyDocument", TRUST)],
        ),
        (
            "CreatePolicy",
            "iam:TagPolicy",
            vec![("PolicyName", "tagged"), ("PolicyDocument", allow.as_str())],
        ),
        (
            "CreateOpenIDConnectProvider",
            "iam:TagOpenIDConnectProvider",
            vec![
                ("Url", "https://token.actions.githubusercontent.com"),
                ("ClientIDList.member.1", "sts.amazonaws.com"),
            ],
        ),
    ];
    for (action, tag_action, pairs) in &creations {
        let mut tagged = pairs.clone();
        tagged.extend(tags);
        let before = w.entities.clone();
        let e = w.call("creator", action, &tagged).unwrap_err();
        assert_eq!((e.code, e.status), ("AccessDenied", 403), "{action}");
        assert!(
            e.message.contains(&format!(
                "is not authorized to perform: {tag_action} on resource"
            )),
            "{action}: {}",
            e.message
        );
        assert_eq!(w.entities, before, "{action} denied but changed entities");
        // Without tags the create alone is authorized.
        w.call("creator", action, pairs).unwrap();
    }
    // A principal allowed both creates the tagged entities (the names are taken now, so new ones).
    let mut role = vec![("RoleName", "tagged2"), ("AssumeRolePolicyDocument", TRUST)];
    role.extend(tags);
    w.call("tagger", "CreateRole", &role).unwrap();
    let created = w.directory().role(acct(), "tagged2").unwrap();
    assert_eq!(created.role.tags.get("ci").map(String::as_str), Some("yes"));
}
