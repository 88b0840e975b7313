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
use keyless_core::caller::Verifier;
use keyless_core::directory::Directory;
use keyless_core::model::{Account, Entities, Guardrail, InlinePolicy, Origin as Src, Role};
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
        let directory = Directory::build(entities);
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
        let claims = SessionClaims {
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
        mint(&self.ring, &claims, &mut rand::rng()).unwrap()
    }
}

#[allow(dead_code, reason = "not every test reads every field")]
fn sealer() -> MessageSealer {
    MessageSealer::new(&SecretBytes::new(vec![7; 32])).unwrap()
}

fn origin() -> Origin {
    Origin {
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secure_transport: true,
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
    let base = vec![("host".to_owned(), "svc.example".to_owned())];
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
            region: "us-east-1",
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
