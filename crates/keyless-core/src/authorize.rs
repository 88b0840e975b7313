//! Authorize a request that a gateway or service received, signed with keyless credentials:
//! is it authentic (SigV4 + session token), and do the role's *current* policies, the session
//! policy and the guardrails allow this action on this resource?
//!
//! The same code answers `POST /v1/authorize` and can be embedded in a Rust service.

use std::borrow::Cow;
use std::sync::Arc;

use keyless_policy::{DecisionKind, Policy, Request};
use keyless_sigv4::{Body, HttpRequest, ServiceRules};
use keyless_types::OffsetDateTime;

use crate::caller::{Expect, Verifier, authenticate_parsed};
use crate::error::ApiError;
use crate::sts::Origin;

/// Context keys a gateway may not set: they describe the principal and are ours to say.
const RESERVED_PREFIXES: &[&str] = &[
    "aws:principal",
    "aws:userid",
    "aws:username",
    "aws:tokenissuetime",
    "aws:multifactorauth",
    "aws:federatedprovider",
    "aws:sourceidentity",
    "aws:currenttime",
    "aws:epochtime",
    "aws:sourceip",
    "aws:securetransport",
    "aws:viaawsservice",
    // No AWS service calls through keyless (`aws:ViaAWSService` is false), so no call chain,
    // and no service principal acting for a resource.
    "aws:calledvia",
    "aws:sourcearn",
    "aws:sourceaccount",
    "aws:sourceorg",
    // Read from the signed request itself: its credential scope and its headers.
    "aws:requestedregion",
    "aws:useragent",
    "aws:referer",
    "sts:sourceidentity",
];

/// A context value supplied by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraValue {
    /// Single-valued.
    Single(String),
    /// Multivalued.
    Multi(Vec<String>),
}

/// What the gateway asks.
#[derive(Debug)]
pub struct AuthorizeInput<'a> {
    /// The request as the service received it.
    pub request: HttpRequest<'a>,
    /// Its body, as far as the gateway has it.
    pub body: GatewayBody<'a>,
    /// The action, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// The resource ARN, or `*`.
    pub resource: &'a str,
    /// Service-specific context keys (e.g. `s3:prefix`).
    pub context: &'a [(String, ExtraValue)],
    /// Where the client connected from, and whether over TLS.
    pub origin: Origin<'a>,
    /// The region the service is in; a signature scoped to another region is refused.
    pub region: Option<&'a str>,
    /// The service's signing name (the service of the credential scope, e.g. `s3`); `None`
    /// means the service prefix of `action`. A signature scoped to another service is refused,
    /// as AWS refuses it: otherwise a request signed for one service (a presigned STS
    /// `GetCallerIdentity` URL handed out as proof of identity, say) would act for its signer at
    /// another.
    pub service: Option<&'a str>,
}

/// The body as the gateway passes it.
#[derive(Debug, Clone, Copy)]
pub enum GatewayBody<'a> {
    /// The whole body (for `aws-chunked` bodies, the encoded chunks, which are then verified).
    Bytes(&'a [u8]),
    /// The hex SHA-256 of the body, computed by the gateway.
    Sha256Hex(&'a str),
    /// Not given: only signatures that do not cover the body (`UNSIGNED-PAYLOAD`, or the seed
    /// signature of a streaming upload) can be checked, and `payload_verified` says so.
    NotGiven,
}

/// The principal behind a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// The account.
    pub account: String,
    /// The role ARN.
    pub role_arn: String,
    /// The session name.
    pub session_name: String,
    /// Source identity, if set.
    pub source_identity: Option<String>,
    /// Principal tags.
    pub tags: Vec<(String, String)>,
    /// The access key id used.
    pub access_key_id: String,
    /// The federated subject, when the session came from an OIDC token.
    pub subject: Option<String>,
    /// The OIDC provider's ARN, when the session came from an OIDC token.
    pub provider_arn: Option<String>,
    /// The role's id (`AROA…`).
    pub role_id: String,
    /// `AROA…:<session>` (`aws:userid`, CloudTrail's `principalId` of an assumed role).
    pub user_id: String,
}

/// The answer.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The signature or credentials were refused; `error` is what the client should be told.
    Unauthenticated {
        /// AWS error for the client.
        error: ApiError,
    },
    /// Authenticated and evaluated.
    Decided {
        /// Who (the same for every request of a session, so shared).
        principal: Arc<PrincipalInfo>,
        /// The decision.
        decision: DecisionKind,
        /// The explanation (for the operator; do not show it to the client).
        explanation: String,
        /// Whether the payload itself was verified (false when the body was not given and the
        /// signature covers it only through streaming chunk signatures, or it is unsigned).
        payload_verified: bool,
    },
}

/// Rejects gateway-supplied context that would impersonate principal facts, or that lies outside
/// what the gateway's service can know: its own keys (`<action prefix>:…`) and the global
/// `aws:` keys that keyless does not set. A token's keys (`<issuer>:sub`) or `sts:`/`iam:`
/// keys never reach a request to another service in AWS, so a policy condition on them must not
/// become satisfiable by whatever a gateway forwards.
pub fn check_extra_context(
    context: &[(String, ExtraValue)],
    action_prefix: &str,
) -> Result<(), ApiError> {
    if context.len() > 100 {
        return Err(ApiError::new(
            "InvalidParameterValue",
            400,
            "At most 100 context keys.",
        ));
    }
    for (k, v) in context {
        // Lowercased as the context lowercases keys (Unicode, not ASCII only): a key whose
        // letters fold to a reserved name is that name once inserted.
        let lower = k.to_lowercase();
        let in_namespace = match lower.split_once(':') {
            Some((ns, name)) if !name.is_empty() => {
                ns == "aws" || ns.eq_ignore_ascii_case(action_prefix)
            }
            _ => false,
        };
        if !in_namespace {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!(
                    "Context key {k:.64} is not the action's: a gateway may pass {}:… keys and aws: keys, nothing else; remove it.",
                    action_prefix.to_ascii_lowercase()
                ),
            ));
        }
        if RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!(
                    "Context key {k} describes the principal or the request origin and is set by keyless; remove it."
                ),
            ));
        }
        let size = match v {
            ExtraValue::Single(s) => s.len(),
            ExtraValue::Multi(vs) => vs.iter().map(String::len).sum(),
        };
        if k.is_empty() || k.len() > 256 || size > 4096 {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!("Context key {k:.64}: keys 1-256 bytes, values at most 4096 bytes."),
            ));
        }
    }
    Ok(())
}

/// An action as a request names it: `service:Name` in ASCII letters, digits, `-`, `_` and `.`.
/// Policies match actions with wildcards and ASCII case folding, so a request action holding
/// `*` or `?` (`s3:*` matches an `Allow s3:*` but no `Deny s3:DeleteObject`), or a letter that
/// folds to ASCII only under Unicode rules (the Kelvin sign for `k`), could slip past a Deny.
fn check_action(action: &str) -> Result<(), ApiError> {
    let word = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || extra.contains(&b))
    };
    match action.split_once(':') {
        Some((prefix, name)) if word(prefix, b"") && word(name, b"_.") => Ok(()),
        _ => Err(ApiError::new(
            "InvalidParameterValue",
            400,
            format!(
                "The action {:?} is not service:Action (e.g. s3:GetObject): ASCII letters, digits, '-', '_' and '.', no wildcards.",
                action.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// The signing name a request for `input` must be scoped to: the one given, else the action's
/// service prefix in lower case (IAM action prefixes ignore case; signing names are lower case).
fn expected_service<'a>(input: &AuthorizeInput<'a>) -> Result<Cow<'a, str>, ApiError> {
    check_action(input.action)?;
    if let Some(service) = input.service {
        return Ok(Cow::Borrowed(service));
    }
    let prefix = input.action.split_once(':').map_or("", |(p, _)| p);
    Ok(if prefix.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(prefix.to_ascii_lowercase())
    } else {
        Cow::Borrowed(prefix)
    })
}

/// Authenticates and authorizes.
pub fn authorize(
    verifier: &Verifier<'_>,
    input: &AuthorizeInput<'_>,
    now: OffsetDateTime,
) -> Result<AuthorizeOutcome, ApiError> {
    let service = expected_service(input)?;
    let action_prefix = input.action.split_once(':').map_or("", |(p, _)| p);
    check_extra_context(input.context, action_prefix)?;
    let signed = match keyless_sigv4::parse(&input.request, ServiceRules::FromScope) {
        Ok(s) => s,
        Err(e) => {
            return Ok(AuthorizeOutcome::Unauthenticated {
                error: crate::caller::sigv4_error(&e, &service),
            });
        }
    };
    // Streaming bodies are verified chunk by chunk after the seed signature.
    let streaming = signed.payload().is_streaming();
    // Without the body, the signature is checked against the hash the client declared, as S3
    // does before reading the body; the gateway must then compare the body with that hash, and
    // `payload_verified: false` tells it so.
    let declared = input
        .request
        .header_str("x-amz-content-sha256")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let body = match (input.body, streaming) {
        (_, true) => Body::Streaming,
        (GatewayBody::Bytes(b), false) => Body::Bytes(b),
        (GatewayBody::Sha256Hex(h), false) => Body::Sha256Hex(h),
        (GatewayBody::NotGiven, false) => declared.map_or(Body::Streaming, Body::Sha256Hex),
    };
    let expect = Expect {
        service: Some(&service),
        region: input.region,
    };
    let (caller, auth) = match authenticate_parsed(verifier, &signed, body, expect, now) {
        Ok(v) => v,
        Err(error) => return Ok(AuthorizeOutcome::Unauthenticated { error }),
    };
    let service = &*auth.scope.service;
    let mut payload_verified = matches!(
        input.body,
        GatewayBody::Bytes(_) | GatewayBody::Sha256Hex(_)
    ) && !matches!(auth.payload, keyless_sigv4::PayloadMode::Unsigned);
    if let (Some(seed), GatewayBody::Bytes(bytes)) = (&auth.stream, input.body) {
        let mut decoder = seed.decoder();
        let mut sink = Vec::new();
        let fed = decoder
            .feed(bytes, &mut sink)
            .and_then(|()| decoder.finish().map(|_| ()));
        if let Err(e) = fed {
            return Ok(AuthorizeOutcome::Unauthenticated {
                error: crate::caller::sigv4_error(&e, service),
            });
        }
        payload_verified = true;
    }
    // The client's headers as the gateway forwarded them, with the signed ones.
    let origin = Origin {
        user_agent: input.request.header_str("user-agent"),
        referer: input.request.header_str("referer"),
        ..input.origin
    };
    let mut context = caller.context(now, &origin);
    for (k, v) in input.context {
        match v {
            ExtraValue::Single(s) => context.insert_single(k, s.clone()),
            ExtraValue::Multi(vs) => context.insert_multi(k, vs.clone()),
        }
    }
    let levels = verifier.directory.guardrail_levels(caller.account());
    let identity: Vec<&Policy> = caller.role().identity_policies();
    let policies = caller.identity_policies(&levels, &identity);
    let arn = caller.arn();
    let request = Request {
        principal: arn,
        principal_id: Some(&caller.claims().role_id),
        action: input.action,
        resource: input.resource,
        resource_account: None,
        context: &context,
    };
    let decision = keyless_policy::evaluate(&request, &policies);
    Ok(AuthorizeOutcome::Decided {
        principal: caller.principal_info(),
        decision: decision.kind(),
        explanation: decision.explanation(),
        payload_verified,
    })
}

/// The fuzz target's entry point (`fuzz/fuzz_targets/authorize.rs`). `data` is split at
/// newlines: the action, the resource, the query, then header lines (`name: value`), context
/// lines (`=key=value`) and the body (a line starting `>`). With an empty directory and a ring
/// of its own, nothing the fuzzer writes can authenticate, so the answer must be an error or
/// `Unauthenticated`, never a decision.
#[doc(hidden)]
pub fn fuzz_authorize(data: &[u8]) {
    static RING: std::sync::OnceLock<Option<keyless_token::KeyRing>> = std::sync::OnceLock::new();
    let now =
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let Some(ring) =
        RING.get_or_init(|| keyless_token::KeyRing::generate(now, &mut rand::rng()).ok())
    else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let action = lines.next().unwrap_or_default();
    let resource = lines.next().unwrap_or_default();
    let query = lines.next().unwrap_or_default();
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    let mut context = Vec::new();
    let mut body = GatewayBody::NotGiven;
    for line in lines {
        if let Some(pair) = line.strip_prefix('=') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            context.push((k.to_owned(), ExtraValue::Single(v.to_owned())));
        } else if let Some(b) = line.strip_prefix('>') {
            body = GatewayBody::Bytes(b.as_bytes());
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim(), v.trim().as_bytes()));
        }
    }
    let directory = crate::directory::Directory::default();
    let revocations = crate::revocation::RevocationSet::default();
    let sessions = crate::session_cache::SessionCache::default();
    let verifier = Verifier {
        directory: &directory,
        ring,
        revocations: &revocations,
        sessions: &sessions,
    };
    let input = AuthorizeInput {
        request: HttpRequest {
            method: "GET",
            path: "/bucket/key",
            query,
            headers: &headers,
        },
        body,
        action,
        resource,
        context: &context,
        origin: Origin {
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            secure_transport: false,
            user_agent: None,
            referer: None,
        },
        region: None,
        service: None,
    };
    let outcome = authorize(&verifier, &input, now);
    assert!(
        !matches!(outcome, Ok(AuthorizeOutcome::Decided { .. })),
        "a decision without a session keyless issued"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_entry_point_never_decides_for_a_forged_request() {
        for input in [
            "",
            "s3:GetObject\n*\n\nhost: h\nauthorization: AWS4-HMAC-SHA256 Credential=ASIAAAAAAAAAAAAAAAAA/20270115/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\nx-amz-date: 20270115T080000Z\n=s3:prefix=a\n>body",
            "s3:*\n*\n",
            "s3:GetObject\n*\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F1%2F2%2Fs3%2Faws4_request\n=aws:SourceIp=1.2.3.4",
        ] {
            fuzz_authorize(input.as_bytes());
        }
    }

    #[test]
    fn actions_with_wildcards_or_letters_outside_ascii_are_refused() {
        for ok in [
            "s3:GetObject",
            "execute-api:Invoke",
            "keyless:RevokeOwnSession",
            "x:a_b.c",
        ] {
            assert!(check_action(ok).is_ok(), "{ok}");
        }
        for bad in [
            "s3:*",
            "s3:Get*",
            "s3:GetObjec?",
            "*",
            "GetObject",
            ":GetObject",
            "s3:",
            "s3:DeleteObjec\u{212A}",
            "s\u{017F}3:GetObject",
            "s3:Get Object",
            "s3:a:b",
        ] {
            let e = check_action(bad).unwrap_err();
            assert_eq!((e.code, e.status), ("InvalidParameterValue", 400), "{bad}");
        }
    }

    #[test]
    fn a_reserved_key_spelled_with_a_letter_that_lowercases_to_ascii_is_refused() {
        // U+212A KELVIN SIGN lowercases to `k`, so the context stores this key as
        // `aws:tokenissuetime` and it would replace the session's own issue time (and escape
        // a revocation's `DateLessThan aws:TokenIssueTime` deny).
        let k = "aws:To\u{212A}enIssueTime";
        let mut c = keyless_policy::Context::new();
        c.insert_single(k, "x");
        assert!(
            c.get("aws:TokenIssueTime").is_some(),
            "the context folds the key to ASCII"
        );
        let e = check_extra_context(
            &[(
                k.to_owned(),
                ExtraValue::Single("2099-01-01T00:00:00Z".into()),
            )],
            "s3",
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn principal_keys_cannot_be_injected() {
        for k in [
            "aws:PrincipalArn",
            "AWS:userid",
            "aws:SourceIp",
            "sts:SourceIdentity",
            "aws:PrincipalTag/team",
        ] {
            let e = check_extra_context(&[(k.to_owned(), ExtraValue::Single("x".into()))], "s3")
                .unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{k}");
        }
        assert!(
            check_extra_context(
                &[("s3:prefix".to_owned(), ExtraValue::Single("home/".into()))],
                "s3"
            )
            .is_ok()
        );
        assert!(
            check_extra_context(
                &[("s3:x".to_owned(), ExtraValue::Single("v".repeat(5000)))],
                "s3"
            )
            .is_err()
        );
    }

    #[test]
    fn the_signed_requests_region_and_headers_cannot_be_overridden() {
        // keyless reads these from the request the gateway forwards; a context value would
        // let a gateway's bug (or a client's header copied into it) move a region guardrail.
        for k in ["aws:RequestedRegion", "aws:UserAgent", "AWS:Referer"] {
            let e = check_extra_context(
                &[(k.to_owned(), ExtraValue::Single("eu-west-1".into()))],
                "s3",
            )
            .unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{k}");
        }
    }

    #[test]
    fn a_session_is_never_a_service_acting_for_a_resource() {
        // AWS sets these only when a service principal calls on behalf of a resource (the
        // confused-deputy keys); every request here is a keyless session's own.
        for k in [
            "aws:SourceArn",
            "aws:SourceAccount",
            "aws:SourceOrgID",
            "aws:SourceOrgPaths",
        ] {
            let e = check_extra_context(
                &[(k.to_owned(), ExtraValue::Single("123456789012".into()))],
                "s3",
            )
            .unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{k}");
        }
        // A gateway behind a VPC endpoint may still say so.
        assert!(
            check_extra_context(
                &[(
                    "aws:SourceVpce".to_owned(),
                    ExtraValue::Single("vpce-1a2b".into())
                )],
                "s3"
            )
            .is_ok()
        );
    }

    #[test]
    fn no_aws_service_is_in_the_call_chain() {
        // `aws:ViaAWSService` is false in every context keyless builds; a gateway naming
        // services in `aws:CalledVia*` would contradict it and satisfy an Allow that AWS grants
        // only to a call forwarded by, say, CloudFormation.
        for k in ["aws:CalledVia", "aws:CalledViaFirst", "AWS:calledvialast"] {
            let e = check_extra_context(
                &[(
                    k.to_owned(),
                    ExtraValue::Multi(vec!["cloudformation.amazonaws.com".into()]),
                )],
                "s3",
            )
            .unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{k}");
        }
    }

    #[test]
    fn a_gateway_passes_only_its_services_keys_and_global_ones() {
        let one = |k: &str, prefix: &str| {
            check_extra_context(&[(k.to_owned(), ExtraValue::Single("x".into()))], prefix)
        };
        for (k, prefix) in [
            ("s3:prefix", "s3"),
            ("S3:Prefix", "s3"),
            ("s3:x-amz-acl", "S3"),
            ("aws:ResourceTag/team", "s3"),
            ("aws:RequestTag/team", "execute-api"),
            ("aws:TagKeys", "s3"),
            ("execute-api:Stage", "execute-api"),
        ] {
            assert!(one(k, prefix).is_ok(), "{k} for {prefix}");
        }
        for (k, prefix) in [
            // A token's keys are only in the AssumeRoleWithWebIdentity request.
            ("token.actions.githubusercontent.com:sub", "s3"),
            ("accounts.google.com:aud", "s3"),
            // Other services' keys, including keyless's own STS and IAM ones.
            ("sts:ExternalId", "s3"),
            ("iam:PermissionsBoundary", "s3"),
            ("kms:ViaService", "s3"),
            ("s3:prefix", "execute-api"),
            // No namespace, or nothing after it.
            ("prefix", "s3"),
            ("s3:", "s3"),
            (":x", "s3"),
        ] {
            let e = one(k, prefix).unwrap_err();
            assert_eq!((e.code, e.status), ("InvalidParameterValue", 400), "{k}");
        }
    }
}
