//! Signed requests made with keyless credentials, in process: a session is minted for a role,
//! requests are signed with it the way SDKs sign them, and what the verifier and the use cases
//! then allow is checked against what AWS allows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure should abort loudly"
)]

use std::net::{IpAddr, Ipv4Addr};

use keyless_core::authorize::{AuthorizeInput, AuthorizeOutcome, GatewayBody, authorize};
use keyless_core::authz_message::MessageSealer;
use keyless_core::caller::{SignedHttp, Verifier, authenticate};
use keyless_core::directory::Directory;
use keyless_core::model::{Account, Entities, Guardrail, InlinePolicy, Origin as Src, Role};
use keyless_core::organization::Organization;
use keyless_core::revocation::RevocationSet;
use keyless_core::session_cache::SessionCache;
use keyless_core::sts::Origin;
use keyless_policy::DecisionKind;
use keyless_sigv4::{
    Credentials, HttpRequest, ServiceRules, SignPayload, SignatureLocation, SigningParams, sign,
};
use keyless_token::{KeyRing, SessionClaims, mint};
use keyless_types::{AccountId, OffsetDateTime, SecretBytes, SecretString};
use serde_json::json;

const ACCOUNT: &str = "123456789012";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap()
}

fn role(name: &str, id: &str, trust: serde_json::Value, perms: serde_json::Value) -> Role {
    Role {
        account: account(),
        name: name.into(),
        path: "/".into(),
        role_id: id.into(),
        trust_policy: trust.to_string(),
        trust_principal_ids: Default::default(),
        inline_policies: vec![InlinePolicy {
            name: "perms".into(),
            document: perms.to_string(),
        }],
        permissions_boundary: None,
        permissions_boundary_arn: None,
        attached_policies: vec![],
        max_session_duration: 43_200,
        description: String::new(),
        tags: Default::default(),
        origin: Src::Config,
        created: OffsetDateTime::UNIX_EPOCH,
    }
}

/// One account with a role `src` (the caller's) allowed S3 and STS.
fn world() -> Entities {
    let nobody = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"sts:AssumeRole"}]});
    let src_perms = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:*","sts:*"],"Resource":"*"}]});
    Entities {
        accounts: vec![Account {
            id: account(),
            name: "ci".into(),
            ou_path: "/workloads/ci".into(),
            origin: Src::Config,
        }],
        providers: vec![],
        roles: vec![role("src", "AROASRCEXAMPLE0000001", nobody, src_perms)],
        guardrails: vec![],
        policies: vec![],
    }
}

/// What a verifier needs, owned.
struct Server {
    directory: Directory,
    ring: KeyRing,
    revocations: RevocationSet,
    sessions: SessionCache,
}

impl Server {
    fn new(entities: &Entities) -> Self {
        Server::in_organization(entities, None)
    }

    /// A server whose accounts are in `organization`.
    fn in_organization(
        entities: &Entities,
        organization: Option<std::sync::Arc<Organization>>,
    ) -> Self {
        let directory = Directory::build_in_organization(entities, organization);
        assert!(directory.problems.is_empty(), "{:?}", directory.problems);
        Server {
            directory,
            ring: KeyRing::generate(now(), &mut rand::rng()).unwrap(),
            revocations: RevocationSet::default(),
            sessions: SessionCache::default(),
        }
    }

    fn verifier(&self) -> Verifier<'_> {
        Verifier {
            directory: &self.directory,
            ring: &self.ring,
            revocations: &self.revocations,
            sessions: &self.sessions,
        }
    }

    /// A live session of `role` issued now.
    fn session(&self, role: &str, role_id: &str) -> keyless_token::Credentials {
        self.session_with(role, role_id, |_| {})
    }

    /// [`Server::session`] with its claims changed by `edit`.
    fn session_with(
        &self,
        role: &str,
        role_id: &str,
        edit: impl FnOnce(&mut SessionClaims),
    ) -> keyless_token::Credentials {
        let mut claims = SessionClaims {
            account: account(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
            role_id: role_id.into(),
            session_name: "s1".into(),
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
        edit(&mut claims);
        mint(&self.ring, &claims, &mut rand::rng()).unwrap()
    }
}

#[allow(dead_code, reason = "not every test reads every field")]
fn sealer() -> MessageSealer {
    MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap()
}

fn origin() -> Origin<'static> {
    Origin {
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secure_transport: true,
        user_agent: None,
        referer: None,
    }
}

/// A request as it goes on the wire: method, path, query and headers.
struct Wire {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Wire {
    fn headers(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect()
    }
}

/// Signs `method path?query` for `service` with `creds`, presigned or in headers.
fn signed(
    creds: &keyless_token::Credentials,
    method: &'static str,
    path: &str,
    query: &str,
    service: &str,
    location: SignatureLocation,
) -> Wire {
    signed_in(
        creds,
        method,
        path,
        query,
        service,
        location,
        "us-east-1",
        &[],
    )
}

/// [`signed`] for `region`, with `extra` headers (e.g. `user-agent`) sent and signed too.
#[allow(clippy::too_many_arguments, reason = "the parts of one signed request")]
fn signed_in(
    creds: &keyless_token::Credentials,
    method: &'static str,
    path: &str,
    query: &str,
    service: &str,
    location: SignatureLocation,
    region: &str,
    extra: &[(&str, &str)],
) -> Wire {
    let mut base = vec![("host".to_owned(), "svc.example".to_owned())];
    base.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let base_bytes: Vec<(&str, &[u8])> = base
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let secret = SecretString::new(creds.secret_access_key.expose().to_owned());
    let out = sign(
        &HttpRequest {
            method,
            path,
            query,
            headers: &base_bytes,
        },
        &Credentials {
            access_key_id: &creds.access_key_id,
            secret: &secret,
            session_token: Some(creds.session_token.expose()),
        },
        &SigningParams {
            region,
            service,
            time: now(),
            rules: ServiceRules::FromScope,
            location,
            payload: SignPayload::Bytes(b""),
            content_sha256_header: false,
        },
    )
    .unwrap();
    let mut headers = base;
    headers.extend(out.headers);
    Wire {
        method,
        path: path.to_owned(),
        query: out.query,
        headers,
    }
}

fn authorize_as(
    server: &Server,
    wire: &Wire,
    action: &str,
    resource: &str,
    service: Option<&str>,
) -> AuthorizeOutcome {
    let headers = wire.headers();
    let input = AuthorizeInput {
        request: HttpRequest {
            method: wire.method,
            path: &wire.path,
            query: &wire.query,
            headers: &headers,
        },
        body: GatewayBody::Bytes(b""),
        action,
        resource,
        context: &[],
        origin: origin(),
        region: None,
        service,
    };
    authorize(&server.verifier(), &input, now()).unwrap()
}

/// The decision for `action` on an S3 object, asked with a header-signed `GET` of `creds`.
fn s3_decision(server: &Server, creds: &keyless_token::Credentials, action: &str) -> DecisionKind {
    let wire = signed(
        creds,
        "GET",
        "/artifacts/k",
        "",
        "s3",
        SignatureLocation::Headers,
    );
    match authorize_as(server, &wire, action, "arn:aws:s3:::artifacts/k", None) {
        AuthorizeOutcome::Decided { decision, .. } => decision,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_signed_for_the_service_of_the_action_is_authorized() {
    let server = Server::new(&world());
    let creds = server.session("src", "AROASRCEXAMPLE0000001");
    assert_eq!(
        s3_decision(&server, &creds, "s3:GetObject"),
        DecisionKind::Allowed
    );
}

/// A presigned `sts:GetCallerIdentity` URL is handed to third parties as proof of identity
/// (Vault's and Kubernetes' AWS authenticators). AWS refuses it anywhere but STS: a signature
/// is bound to the service of its credential scope. Replayed to an S3 gateway as
/// `GET /?Action=GetCallerIdentity…` (ListBuckets to S3), it must not act for its signer.
#[test]
fn a_signature_scoped_to_another_service_is_refused() {
    let server = Server::new(&world());
    let creds = server.session("src", "AROASRCEXAMPLE0000001");
    let presigned_sts = signed(
        &creds,
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        "sts",
        SignatureLocation::Query { expires_secs: 900 },
    );
    for service in [None, Some("s3")] {
        match authorize_as(&server, &presigned_sts, "s3:ListAllMyBuckets", "*", service) {
            AuthorizeOutcome::Unauthenticated { error } => {
                // What S3 answers to a credential scoped to another service.
                assert_eq!(error.code, "AuthorizationHeaderMalformed", "{error:?}");
                assert_eq!(error.status, 400);
                assert!(error.message.contains("'s3'"), "{}", error.message);
            }
            other => panic!("a request signed for sts was accepted by s3: {other:?}"),
        }
    }
    // The same in the header form, for a service named explicitly.
    let header_sts = signed(&creds, "GET", "/", "", "sts", SignatureLocation::Headers);
    match authorize_as(
        &server,
        &header_sts,
        "execute-api:Invoke",
        "*",
        Some("execute-api"),
    ) {
        AuthorizeOutcome::Unauthenticated { error } => {
            assert_eq!(error.code, "SignatureDoesNotMatch", "{error:?}");
            assert_eq!(error.status, 403);
        }
        other => panic!("a request signed for sts was accepted by execute-api: {other:?}"),
    }
}

/// AWS's documented guard against credentials used from outside a network: deny when the
/// source address is elsewhere and the call is not made by an AWS service on the caller's
/// behalf. It only works if `aws:ViaAWSService` is in the context, as AWS always puts it.
#[test]
fn the_source_ip_guard_with_via_aws_service_denies_from_elsewhere() {
    let mut entities = world();
    let nobody = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"sts:AssumeRole"}]});
    let guarded = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Effect":"Deny","Action":"*","Resource":"*","Condition":{
            "NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"},
            "Bool":{"aws:ViaAWSService":"false","aws:PrincipalIsAWSService":"false"}}}]});
    entities
        .roles
        .push(role("guarded", "AROAGUARDEDEXAMPLE001", nobody, guarded));
    let server = Server::new(&entities);
    let creds = server.session("guarded", "AROAGUARDEDEXAMPLE001");
    assert_eq!(
        s3_decision(&server, &creds, "s3:GetObject"),
        DecisionKind::ExplicitlyDenied
    );
}

/// A level whose guardrails only deny keeps the implicit allow-all (AWS's `FullAWSAccess`,
/// attached by default); a level with an `Allow` among its guardrails is an allow-list, as when
/// `FullAWSAccess` is detached: what none of its guardrails allows is denied.
#[test]
fn a_guardrail_with_an_allow_statement_is_an_allow_list_for_its_level() {
    let decide = |guardrails: Vec<(&str, serde_json::Value)>, action: &str| {
        let mut entities = world();
        entities.guardrails = guardrails
            .into_iter()
            .enumerate()
            .map(|(i, (target, doc))| Guardrail {
                target: target.into(),
                name: format!("g{i}"),
                document: doc.to_string(),
                origin: Src::Config,
            })
            .collect();
        let server = Server::new(&entities);
        let creds = server.session("src", "AROASRCEXAMPLE0000001");
        s3_decision(&server, &creds, action)
    };
    let deny_delete = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]});
    let only_reads = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]});
    // Deny-only at the root: everything else stays allowed.
    let deny_only = || vec![("/", deny_delete.clone())];
    assert_eq!(decide(deny_only(), "s3:PutObject"), DecisionKind::Allowed);
    assert_eq!(
        decide(deny_only(), "s3:DeleteObject"),
        DecisionKind::ExplicitlyDenied
    );
    // An allow-list on the account's OU, beside the root's deny.
    let listed = || {
        vec![
            ("/", deny_delete.clone()),
            ("/workloads", only_reads.clone()),
        ]
    };
    assert_eq!(decide(listed(), "s3:GetObject"), DecisionKind::Allowed);
    assert_eq!(
        decide(listed(), "s3:PutObject"),
        DecisionKind::ImplicitlyDenied
    );
    assert_eq!(
        decide(listed(), "s3:DeleteObject"),
        DecisionKind::ExplicitlyDenied
    );
}

/// The decision for `s3:GetObject` asked with a request signed for `region` sending `extra`
/// headers, and the gateway's `context`.
fn s3_decision_in(
    server: &Server,
    creds: &keyless_token::Credentials,
    region: &str,
    extra: &[(&str, &str)],
) -> DecisionKind {
    let wire = signed_in(
        creds,
        "GET",
        "/artifacts/k",
        "",
        "s3",
        SignatureLocation::Headers,
        region,
        extra,
    );
    match authorize_as(
        server,
        &wire,
        "s3:GetObject",
        "arn:aws:s3:::artifacts/k",
        None,
    ) {
        AuthorizeOutcome::Decided { decision, .. } => decision,
        other => panic!("{other:?}"),
    }
}

/// `world()` with `guardrail` (one statement) at the root.
fn guarded_world(guardrail: serde_json::Value) -> Entities {
    let mut entities = world();
    entities.guardrails.push(Guardrail {
        target: "/".into(),
        name: "g".into(),
        document: json!({"Version":"2012-10-17","Statement":[guardrail]}).to_string(),
        origin: Src::Config,
    });
    entities
}

/// AWS: `aws:RequestedRegion` is the region of the endpoint called, which a signature's
/// credential scope must name. A gateway's request is signed for its region, so that is the
/// key's value; region guardrails (AWS's "deny outside approved regions") then hold at every
/// gateway.
#[test]
fn the_requested_region_of_a_gateway_request_is_its_signatures() {
    let server = Server::new(&guarded_world(
        json!({"Effect":"Deny","Action":"*","Resource":"*",
        "Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1"]}}}),
    ));
    let creds = server.session("src", "AROASRCEXAMPLE0000001");
    assert_eq!(
        s3_decision_in(&server, &creds, "eu-west-1", &[]),
        DecisionKind::Allowed
    );
    assert_eq!(
        s3_decision_in(&server, &creds, "us-east-1", &[]),
        DecisionKind::ExplicitlyDenied
    );
    // Each request's own region, not the session's first: one session may sign for several.
    assert_eq!(
        s3_decision_in(&server, &creds, "eu-west-1", &[]),
        DecisionKind::Allowed
    );
    let other = server.session("src", "AROASRCEXAMPLE0000001");
    assert_eq!(
        s3_decision_in(&server, &other, "us-east-1", &[]),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        s3_decision_in(&server, &other, "eu-west-1", &[]),
        DecisionKind::Allowed
    );
    assert_eq!(
        s3_decision_in(&server, &other, "us-east-1", &[]),
        DecisionKind::ExplicitlyDenied
    );
}

/// AWS: `aws:UserAgent` is the client's `User-Agent` header; the gateway forwards the request's
/// headers, so keyless reads it there, as it reads the signature.
#[test]
fn the_user_agent_of_a_gateway_request_is_the_forwarded_header() {
    let server = Server::new(&guarded_world(
        json!({"Effect":"Deny","Action":"s3:*","Resource":"*",
        "Condition":{"StringNotLike":{"aws:UserAgent":"aws-cli/*"}}}),
    ));
    let creds = server.session("src", "AROASRCEXAMPLE0000001");
    let cli = [(
        "user-agent",
        "aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.8.0",
    )];
    assert_eq!(
        s3_decision_in(&server, &creds, "us-east-1", &cli),
        DecisionKind::Allowed
    );
    assert_eq!(
        s3_decision_in(
            &server,
            &creds,
            "us-east-1",
            &[("user-agent", "curl/8.5.0")]
        ),
        DecisionKind::ExplicitlyDenied
    );
    assert_eq!(
        s3_decision_in(&server, &creds, "us-east-1", &[]),
        DecisionKind::ExplicitlyDenied
    );
}

/// A chained `AssumeRole` of the session `src` to `target` (whose trust policy is `trust`),
/// signed for `region` with `extra` headers; the error code, or `None` when issued.
fn assume_role_in(
    trust: serde_json::Value,
    region: &str,
    extra: &[(&str, &str)],
) -> Option<String> {
    assume_role_in_organization(trust, region, extra, None)
}

/// [`assume_role_in`] with the account in `organization`.
fn assume_role_in_organization(
    trust: serde_json::Value,
    region: &str,
    extra: &[(&str, &str)],
    organization: Option<std::sync::Arc<Organization>>,
) -> Option<String> {
    let mut entities = world();
    let perms = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:*","Resource":"*"}]});
    entities
        .roles
        .push(role("target", "AROATARGETEXAMPLE0001", trust, perms));
    let server = Server::in_organization(&entities, organization);
    let creds = server.session("src", "AROASRCEXAMPLE0000001");
    let body = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftarget&RoleSessionName=s2";
    let wire = signed_in(
        &creds,
        "POST",
        "/",
        body,
        "sts",
        SignatureLocation::Headers,
        region,
        extra,
    );
    let headers = wire.headers();
    let request = HttpRequest {
        method: wire.method,
        path: &wire.path,
        query: &wire.query,
        headers: &headers,
    };
    let caller = authenticate(
        &server.verifier(),
        SignedHttp { request, body: b"" },
        "sts",
        now(),
    )
    .unwrap();
    let params = keyless_core::sts::params::Params::from_pairs(
        [
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", "arn:aws:iam::123456789012:role/target"),
            ("RoleSessionName", "s2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
    .unwrap();
    let input = keyless_core::sts::assume_role::parse(&params).unwrap();
    let sealer = sealer();
    let user_agent = extra
        .iter()
        .find(|(k, _)| *k == "user-agent")
        .map(|(_, v)| *v);
    let env = keyless_core::sts::assume_role::AssumeRoleEnv {
        directory: &server.directory,
        ring: &server.ring,
        authorizer: keyless_core::sts::Authorizer { sealer: &sealer },
        now: now(),
        origin: Origin {
            user_agent,
            ..origin()
        },
    };
    keyless_core::sts::assume_role::assume_role(&env, &caller, &input, &mut rand::rng())
        .err()
        .map(|e| e.code.to_owned())
}

/// `target`'s trust policy: the session `src` may assume it when `condition` holds.
fn trust_src_when(condition: serde_json::Value) -> serde_json::Value {
    json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":format!("arn:aws:iam::{ACCOUNT}:role/src")},
        "Action":"sts:AssumeRole","Condition":condition}]})
}

/// AWS: a signed STS call's `aws:RequestedRegion` is its endpoint's region, the one the
/// credential scope names (a regional STS endpoint refuses any other).
#[test]
fn a_chained_assume_roles_requested_region_is_its_signatures() {
    let trust = || trust_src_when(json!({"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}));
    assert_eq!(assume_role_in(trust(), "eu-west-1", &[]), None);
    assert_eq!(
        assume_role_in(trust(), "us-east-1", &[]).as_deref(),
        Some("AccessDenied")
    );
}

/// AWS: in an AssumeRole request `aws:ResourceAccount` is the role's account and
/// `aws:UserAgent` the client's header.
#[test]
fn a_chained_assume_role_has_the_resource_account_and_user_agent() {
    let cli = [("user-agent", "aws-cli/2.22.0 ua/2.0")];
    for condition in [
        json!({"StringEquals":{"aws:ResourceAccount": ACCOUNT}}),
        json!({"StringLike":{"aws:UserAgent":"aws-cli/*"}}),
    ] {
        assert_eq!(
            assume_role_in(trust_src_when(condition.clone()), "us-east-1", &cli),
            None,
            "{condition}"
        );
    }
}

/// AWS puts `aws:FederatedProvider` in the requests of a role session assumed with a web
/// identity token; a session chained from it is another role's and has none (observed on AWS:
/// the chained session's own token carries no `federated_provider`, the claim AWS documents as
/// this key). Carried along, it let a chained session pass a guardrail that admits only
/// sessions straight from a trusted issuer.
#[test]
fn only_a_session_assumed_with_a_token_has_the_federated_provider() {
    const PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/idp.example";
    let server = Server::new(&guarded_world(
        json!({"Effect":"Deny","Action":"s3:*","Resource":"*",
        "Condition":{"StringNotEquals":{"aws:FederatedProvider": PROVIDER}}}),
    ));
    let federated = |depth: u8| {
        server.session_with("src", "AROASRCEXAMPLE0000001", |c| {
            c.federated = Some(keyless_token::FederatedFacts {
                issuer: "https://idp.example".into(),
                subject: "alice".into(),
                audience: "sts.amazonaws.com".into(),
                provider_arn: PROVIDER.into(),
            });
            c.chain_depth = depth;
            if depth > 0 {
                c.chained_from = vec!["ASIAPARENTEXAMPLE001".into()];
            }
        })
    };
    assert_eq!(
        s3_decision(&server, &federated(0), "s3:GetObject"),
        DecisionKind::Allowed
    );
    assert_eq!(
        s3_decision(&server, &federated(1), "s3:GetObject"),
        DecisionKind::ExplicitlyDenied
    );
}

/// The account `world()` has, at `/workloads/ci`, in a declared organization.
fn organization() -> std::sync::Arc<Organization> {
    std::sync::Arc::new(
        Organization::new(
            "o-a1b2c3d4e5".into(),
            "r-ab12".into(),
            [
                ("/workloads".to_owned(), "ou-ab12-11111111".to_owned()),
                ("/workloads/ci".to_owned(), "ou-ab12-22222222".to_owned()),
            ]
            .into(),
        )
        .unwrap(),
    )
}

/// AWS's most common cross-account trust: any principal of the organization, by
/// `aws:PrincipalOrgID`, or of an OU subtree, by `aws:PrincipalOrgPaths`. The role's own place
/// is `aws:ResourceOrgID`/`aws:ResourceOrgPaths`. Without a declared organization the keys are
/// absent (as for an AWS account in no organization), so the same trust denies.
#[test]
fn a_chained_assume_role_has_the_organization_keys_when_one_is_declared() {
    let path = "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/";
    let allowed = [
        json!({"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}),
        json!({"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":"o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/*"}}),
        json!({"ForAnyValue:StringEquals":{"aws:PrincipalOrgPaths": path}}),
        json!({"StringEquals":{"aws:ResourceOrgID":"o-a1b2c3d4e5"}}),
        json!({"ForAnyValue:StringEquals":{"aws:ResourceOrgPaths": path}}),
    ];
    for condition in &allowed {
        let trust = || trust_src_when(condition.clone());
        assert_eq!(
            assume_role_in_organization(trust(), "us-east-1", &[], Some(organization())),
            None,
            "{condition}"
        );
        assert_eq!(
            assume_role_in(trust(), "us-east-1", &[]).as_deref(),
            Some("AccessDenied"),
            "without an organization: {condition}"
        );
    }
    for condition in [
        json!({"StringEquals":{"aws:PrincipalOrgID":"o-0000000000"}}),
        // The path of an OU the account is not under.
        json!({"ForAnyValue:StringLike":{"aws:PrincipalOrgPaths":"o-a1b2c3d4e5/r-ab12/ou-ab12-33333333/*"}}),
    ] {
        assert_eq!(
            assume_role_in_organization(
                trust_src_when(condition.clone()),
                "us-east-1",
                &[],
                Some(organization())
            )
            .as_deref(),
            Some("AccessDenied"),
            "{condition}"
        );
    }
}

/// The data-perimeter guardrail "deny unless the principal is in our organization" holds at a
/// gateway: a session of a declared account passes, one of an undeclared organization's does
/// not. A gateway cannot claim the key for the caller (it is a principal key).
#[test]
fn a_gateway_request_has_the_callers_organization() {
    let perimeter = json!({"Effect":"Deny","Action":"s3:*","Resource":"*",
        "Condition":{"StringNotEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}});
    let inside = Server::in_organization(&guarded_world(perimeter.clone()), Some(organization()));
    let creds = inside.session("src", "AROASRCEXAMPLE0000001");
    assert_eq!(
        s3_decision(&inside, &creds, "s3:GetObject"),
        DecisionKind::Allowed
    );
    assert!(
        inside
            .directory
            .policies_naming_absent_org_keys()
            .is_empty()
    );
    let outside = Server::new(&guarded_world(perimeter));
    // The operator is warned at start-up that this guardrail cannot match.
    assert_eq!(
        outside.directory.policies_naming_absent_org_keys(),
        ["guardrail g at /"]
    );
    let creds = outside.session("src", "AROASRCEXAMPLE0000001");
    assert_eq!(
        s3_decision(&outside, &creds, "s3:GetObject"),
        DecisionKind::ExplicitlyDenied
    );
}
