//! Authenticating a signed request made with keyless credentials.
//!
//! The only way to obtain a [`Caller`] is [`authenticate`]: SigV4 verified with the secret
//! derived from the session token, the token opened and unexpired, and the role still the one
//! that issued it. Use cases that act for a caller take `&Caller`, so an unverified request
//! cannot reach them.

use std::borrow::Cow;
use std::sync::Arc;

use keyless_policy::{Context, PolicySet};
use keyless_sigv4::{Body, HttpRequest, ServiceRules, SigV4Auth, SigV4Error, VerifyOptions};
use keyless_token::{KeyRing, OpenError, SessionClaims};
use keyless_types::{AccountId, OffsetDateTime};

use crate::authorize::PrincipalInfo;
use crate::directory::{CompiledRole, Directory};
use crate::error::ApiError;
use crate::revocation::{RevocationSet, revoked_session_error};
use crate::session_cache::{OpenSession, SessionCache};
use crate::sts::{Origin, assumed_role_arn, iso8601};

/// A verified caller: a live session of a role that still exists.
#[derive(Debug)]
pub struct Caller {
    session: Arc<OpenSession>,
    role: Arc<CompiledRole>,
    session_policy: Option<Arc<keyless_policy::Policy>>,
    /// The region of the verified signature's credential scope: the endpoint's region as the
    /// client addressed it, AWS's `aws:RequestedRegion`. A request's own key, not the
    /// session's: one session may sign for several regions.
    region: String,
}

impl Caller {
    /// The access key id used.
    pub fn access_key_id(&self) -> &str {
        self.session.access_key_id()
    }

    /// The session's sealed claims.
    pub fn claims(&self) -> &SessionClaims {
        self.session.claims()
    }

    /// The role (current policies).
    pub fn role(&self) -> &CompiledRole {
        &self.role
    }

    /// The account.
    pub fn account(&self) -> AccountId {
        self.claims().account
    }

    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub fn arn(&self) -> &str {
        // A session's role keeps its name (the role id was checked), so the ARN is built once.
        self.session.assumed_role_arn(|| {
            assumed_role_arn(
                self.claims().account,
                &self.role.role.name,
                &self.claims().session_name,
            )
        })
    }

    /// Who this caller is, as the authorize API reports it (built once per session).
    pub fn principal_info(&self) -> Arc<PrincipalInfo> {
        self.session.principal_info(|| {
            let claims = self.claims();
            PrincipalInfo {
                arn: self.arn().to_owned(),
                account: claims.account.to_string(),
                role_arn: claims.role_arn.clone(),
                session_name: claims.session_name.clone(),
                source_identity: claims.source_identity.clone(),
                tags: claims.tags.clone(),
                access_key_id: self.access_key_id().to_owned(),
                subject: claims.federated.as_ref().map(|f| f.subject.clone()),
                provider_arn: claims.federated.as_ref().map(|f| f.provider_arn.clone()),
                role_id: claims.role_id.clone(),
                user_id: self.user_id(),
            }
        })
    }

    /// `AROA…:<session>` (`aws:userid`).
    pub fn user_id(&self) -> String {
        format!("{}:{}", self.claims().role_id, self.claims().session_name)
    }

    /// The session policy, compiled.
    pub fn session_policy(&self) -> Option<&keyless_policy::Policy> {
        self.session_policy.as_deref()
    }

    /// The request context of this principal (`aws:PrincipalArn`, `aws:userid`,
    /// `aws:TokenIssueTime`, `aws:PrincipalTag/*`, `sts:SourceIdentity`, …) plus the base keys.
    pub fn context(&self, now: OffsetDateTime, origin: &Origin<'_>) -> Context {
        let mut c = Context::over(self.session.principal_context(|| {
            principal_context(&self.role.arn, self.claims(), self.role.org.as_deref())
        }));
        crate::sts::add_base_context(&mut c, now, origin);
        c.insert_single("aws:RequestedRegion", self.region.as_str());
        if let Some(m) = self.claims().mfa.as_ref().filter(|m| m.present) {
            c.insert_single(
                "aws:MultiFactorAuthAge",
                (now - m.authenticated_at)
                    .whole_seconds()
                    .max(0)
                    .to_string(),
            );
        }
        c
    }

    /// Requires this caller's own policies (guardrails of its account, the role's current
    /// policies, its boundary and the session policy) to allow `action` on `resource`; the
    /// denial is AWS's "is not authorized to perform" with an encoded authorization message.
    #[allow(
        clippy::too_many_arguments,
        reason = "the snapshot, the sealer, the request and its time and origin"
    )]
    pub fn require_allowed(
        &self,
        directory: &Directory,
        authorizer: &crate::sts::Authorizer<'_>,
        action: &str,
        resource: &str,
        resource_account: Option<&str>,
        now: OffsetDateTime,
        origin: &Origin<'_>,
    ) -> Result<(), ApiError> {
        let mut context = self.context(now, origin);
        // AWS: the resource owner's account, when the resource has one (not for `*`).
        if let Some(account) = resource_account {
            context.insert_single("aws:ResourceAccount", account);
            if let Some(keys) = AccountId::parse(account)
                .ok()
                .and_then(|a| directory.org_keys(a))
            {
                keys.insert_resource(&mut context);
            }
        }
        let levels = directory.guardrail_levels(self.account());
        let identity = self.role.identity_policies();
        let policies = self.identity_policies(&levels, &identity);
        let arn = self.arn();
        let id = self.user_id();
        let request = keyless_policy::Request {
            principal: arn,
            principal_id: Some(&self.claims().role_id),
            action,
            resource,
            resource_account,
            context: &context,
        };
        let on = if resource == "*" {
            String::new()
        } else {
            format!(" on resource: {resource}")
        };
        authorizer
            .require(crate::sts::Asker { arn, id: &id }, &request, &policies, || {
                format!("User: {arn} is not authorized to perform: {action}{on} because no identity-based policy allows the {action} action")
            })
            .map(|_| ())
    }

    /// The policies that bound this session: guardrails of its account, the role's current inline
    /// policies, its boundary and the session policy. `resource_policy` is left for the caller.
    pub fn identity_policies<'a>(
        &'a self,
        levels: &'a [Vec<&'a keyless_policy::Policy>],
        identity: &'a [&'a keyless_policy::Policy],
    ) -> PolicySet<'a> {
        PolicySet {
            guardrails: levels,
            resource_policy: None,
            identity,
            boundary: self.role.boundary.as_ref(),
            session: self.session_policy.as_deref(),
        }
    }
}

/// The keys that describe the principal of a session and do not change while it lives. `org`
/// is its account's place in the declared organization.
fn principal_context(
    role_arn: &str,
    claims: &SessionClaims,
    org: Option<&crate::organization::OrgKeys>,
) -> Context {
    let mut c = Context::new();
    c.insert_single("aws:PrincipalArn", role_arn);
    c.insert_single("aws:PrincipalAccount", claims.account.to_string());
    c.insert_single("aws:PrincipalType", "AssumedRole");
    if let Some(keys) = org {
        keys.insert_principal(&mut c);
    }
    c.insert_single(
        "aws:userid",
        format!("{}:{}", claims.role_id, claims.session_name),
    );
    c.insert_single("aws:TokenIssueTime", iso8601(claims.issued_at));
    // AWS puts these in every signed request's context. No AWS service calls through keyless,
    // so both are false; without them the documented guard `Deny … NotIpAddress aws:SourceIp`
    // with `Bool aws:ViaAWSService false` would never match. They never change within a
    // session, so they live here, built once per session, rather than per request.
    c.insert_single("aws:PrincipalIsAWSService", "false");
    c.insert_single("aws:ViaAWSService", "false");
    let mfa = claims.mfa.as_ref().is_some_and(|m| m.present);
    c.insert_single(
        "aws:MultiFactorAuthPresent",
        if mfa { "true" } else { "false" },
    );
    for (k, v) in &claims.tags {
        c.insert_single(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    if let Some(si) = &claims.source_identity {
        c.insert_single("sts:SourceIdentity", si.clone());
        c.insert_single("aws:SourceIdentity", si.clone());
    }
    // Only the session the token was exchanged for: a session chained from it is another
    // role's, and AWS does not carry the key into it. The facts stay in the claims for the
    // audit and for revoking by subject.
    if let Some(f) = claims
        .federated
        .as_ref()
        .filter(|_| claims.chain_depth == 0)
    {
        c.insert_single("aws:FederatedProvider", f.provider_arn.clone());
    }
    c
}

/// The parts of a request authentication needs.
#[derive(Debug, Clone, Copy)]
pub struct SignedHttp<'a> {
    /// The request as received.
    pub request: HttpRequest<'a>,
    /// The whole body (query APIs are small; streaming bodies are verified elsewhere).
    pub body: &'a [u8],
}

/// Maps a signature failure to the query-protocol error the SDKs expect.
pub fn sigv4_error(e: &SigV4Error, service: &str) -> ApiError {
    ApiError::new(e.code(service), e.http_status(service), e.to_string())
}

fn open_error(e: &OpenError, service: &str) -> ApiError {
    // S3 names these differently from the query APIs.
    let code = match (service, e) {
        ("s3", OpenError::Expired) => "ExpiredToken",
        ("s3", _) => "InvalidToken",
        _ => e.aws_code(),
    };
    let status = if service == "s3" && matches!(e, OpenError::Expired) {
        400
    } else {
        e.http_status()
    };
    ApiError::new(code, status, e.to_string())
}

/// What verifying a signed request reads: the snapshots of the directory, the key ring and the
/// revocations, and the sessions already opened under that ring.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    /// Roles, policies, guardrails.
    pub directory: &'a Directory,
    /// The key ring that sealed the session tokens.
    pub ring: &'a KeyRing,
    /// Live revocations.
    pub revocations: &'a RevocationSet,
    /// Sessions opened under `ring`.
    pub sessions: &'a SessionCache,
}

/// Authenticates a signed request for a query-protocol service (`sts`, `iam`).
pub fn authenticate(
    verifier: &Verifier<'_>,
    http: SignedHttp<'_>,
    service: &str,
    now: OffsetDateTime,
) -> Result<Caller, ApiError> {
    authenticate_any(
        verifier,
        http.request,
        Body::Bytes(http.body),
        ServiceRules::Standard,
        Expect {
            service: Some(service),
            region: None,
        },
        now,
    )
    .map(|(caller, _)| caller)
}

/// What the endpoint serves: a signature scoped to another service or region is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect<'a> {
    /// The service (`sts`, `iam`, `s3`); `None` accepts any.
    pub service: Option<&'a str>,
    /// The region; `None` accepts any.
    pub region: Option<&'a str>,
}

/// Authenticates a request signed for any service (the authorize API): S3 canonicalisation is
/// chosen from the credential scope, and the body is given as the gateway saw it.
pub fn authenticate_any<'r>(
    verifier: &Verifier<'_>,
    request: HttpRequest<'r>,
    body: Body<'_>,
    rules: ServiceRules,
    expect: Expect<'_>,
    now: OffsetDateTime,
) -> Result<(Caller, SigV4Auth<'r>), ApiError> {
    let hint = expect.service.unwrap_or("sts");
    let signed = keyless_sigv4::parse(&request, rules).map_err(|e| sigv4_error(&e, hint))?;
    authenticate_parsed(verifier, &signed, body, expect, now)
}

/// [`authenticate_any`] for a request already parsed.
pub fn authenticate_parsed<'r>(
    verifier: &Verifier<'_>,
    signed: &keyless_sigv4::SignedRequest<'r>,
    body: Body<'_>,
    expect: Expect<'_>,
    now: OffsetDateTime,
) -> Result<(Caller, SigV4Auth<'r>), ApiError> {
    // Errors are written for the service the endpoint serves: a client scoped its signature to
    // another one by mistake and expects this service's error.
    let service = expect.service.unwrap_or(&signed.scope().service);
    let invalid = || {
        ApiError::new(
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid.",
        )
    };
    let Some(token) = signed.security_token() else {
        return Err(invalid());
    };
    let opened = verifier
        .sessions
        .open(verifier.ring, signed.access_key_id(), token, now)
        .map_err(|e| open_error(&e, service))?;
    let session = &opened.session;
    let opts = VerifyOptions {
        expected_service: expect.service.map(Cow::Borrowed),
        expected_region: expect.region.map(Cow::Borrowed),
        ..VerifyOptions::default()
    };
    let scope = signed.scope();
    let (key, key_kept) = session.signing_key(&scope.date, &scope.region, &scope.service);
    let verified = keyless_sigv4::verify_with_key(signed, body, &key, now, &opts)
        .map_err(|e| sigv4_error(&e, service))?;
    let auth = verified.into_inner();
    // Checked after the signature, so only the holder of the secret learns the session is dead.
    if verifier
        .revocations
        .check_session(&auth.access_key_id, session.claims(), session.key_version())
        .is_some()
    {
        return Err(revoked_session_error(service));
    }
    // A deleted role, or one deleted and created again under the same name, ends its sessions.
    let claims = session.claims();
    let role = verifier
        .directory
        .role_by_arn(&claims.role_arn)
        .filter(|r| r.role.role_id == claims.role_id)
        .ok_or_else(invalid)?;
    let session_policy = crate::sts::session_policies::resolve_opened(verifier.directory, session)?;
    // The signature verified: keep what it took, for this credential's next requests.
    verifier.sessions.keep(&auth.access_key_id, &opened);
    if !key_kept {
        session.keep_signing_key(key);
    }
    let caller = Caller {
        session: Arc::clone(session),
        role,
        session_policy,
        region: auth.scope.region.clone().into_owned(),
    };
    Ok((caller, auth))
}
