//! AssumeRoleWithWebIdentity: an OIDC token in, short-lived credentials out.
//!
//! Split in two so the pure part stays pure: [`parse`] validates the parameters, the edge finds
//! the provider (via [`Directory::provider`]) and fetches its keys, then [`complete`] verifies the
//! token, evaluates the trust policy with the guardrails and mints.

use keyless_jwt::{Jwks, JwtError, OwnedKeyValue, UnverifiedToken, Validation, VerifiedToken};
use keyless_policy::{Context, ContextValue, Policy, PolicySet, PolicyType, Request};
use keyless_token::{FederatedFacts, SessionClaims, mint_at_least};
use keyless_types::{OffsetDateTime, SecretString};
use rand::CryptoRng;

use super::params::{
    Params, Problems, check_int, check_len, check_policy_chars, check_role_arn, check_session_name,
};
use super::{
    Asker, Authorizer, Issued, Origin, WebIdentityFacts, add_base_context, assumed_role_arn,
    principal_tags,
};
use crate::directory::{CompiledRole, Directory};
use crate::error::ApiError;

/// The validated parameters.
#[derive(Debug)]
pub struct WebIdentityInput {
    /// `RoleArn`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `WebIdentityToken` (sensitive).
    pub token: SecretString,
    /// `DurationSeconds`.
    pub duration: Option<u32>,
    /// `Policy`.
    pub policy: Option<String>,
    /// `PolicyArns`.
    pub policy_arns: Vec<String>,
    /// `MinimumSessionTokenSize`: the token is padded to at least this many bytes.
    pub minimum_token_size: Option<u32>,
}

const NOT_NULL: &str = "Member must not be null";

/// Validates the parameters as AWS does (`ValidationError` lists every problem).
pub fn parse(p: &Params) -> Result<WebIdentityInput, ApiError> {
    let mut problems = Problems::default();
    let role_arn = p.get("RoleArn");
    match role_arn {
        Some(v) => check_role_arn(&mut problems, v),
        None => problems.push("null", "roleArn", NOT_NULL),
    }
    let session = p.get("RoleSessionName");
    match session {
        Some(v) => check_session_name(&mut problems, v),
        None => problems.push("null", "roleSessionName", NOT_NULL),
    }
    let token = p.get("WebIdentityToken");
    match token {
        Some(v) if v.len() < 4 => problems.push_hidden(
            "webIdentityToken",
            "Member must have length greater than or equal to 4",
        ),
        Some(v) if v.len() > 20000 => problems.push_hidden(
            "webIdentityToken",
            "Member must have length less than or equal to 20000",
        ),
        Some(_) => {}
        None => problems.push("null", "webIdentityToken", NOT_NULL),
    }
    let duration = p
        .get("DurationSeconds")
        .and_then(|v| check_int(&mut problems, v, "durationSeconds", 900, 43200));
    let minimum_token_size = super::params::minimum_token_size(&mut problems, p);
    if let Some(v) = p.get("Policy")
        && check_len(&mut problems, v, "policy", 1, 2048)
    {
        check_policy_chars(&mut problems, v, "policy");
    }
    let arns: Vec<String> = p
        .struct_list("PolicyArns", &["arn"])
        .into_iter()
        .map(|r| r.into_iter().flatten().collect())
        .collect();
    if arns.len() > 10 {
        problems.push(
            &arns.len().to_string(),
            "policyArns",
            "Member must have length less than or equal to 10",
        );
    }
    for a in &arns {
        check_len(&mut problems, a, "policyArns.member.arn", 20, 2048);
    }
    if let Some(v) = p.get("ProviderId") {
        check_len(&mut problems, v, "providerId", 4, 2048);
    }
    problems.finish()?;
    if p.get("ProviderId").is_some() {
        // AWS accepts ProviderId only for OAuth 2.0 access tokens of two social providers.
        return Err(ApiError::new(
            "InvalidParameterValue",
            400,
            "ProviderId is only for OAuth 2.0 access tokens from www.amazon.com and graph.facebook.com; omit it for OpenID Connect ID tokens.",
        ));
    }
    let (Some(role_arn), Some(session), Some(token)) = (role_arn, session, token) else {
        return Err(ApiError::internal());
    };
    Ok(WebIdentityInput {
        role_arn: role_arn.to_owned(),
        session_name: session.to_owned(),
        // A token file written with `echo` ends in a newline; the JWT itself never has whitespace.
        token: SecretString::new(
            token
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .to_owned(),
        ),
        duration: duration.and_then(|d| u32::try_from(d).ok()),
        policy: p.get("Policy").map(str::to_owned),
        policy_arns: arns,
        minimum_token_size,
    })
}

/// The denial callers see when the role does not exist or does not trust them (AWS does not say
/// which).
pub fn not_authorized() -> String {
    "Not authorized to perform sts:AssumeRoleWithWebIdentity.".to_owned()
}

/// Maps a token error to its AWS answer.
pub fn token_error(e: &JwtError) -> ApiError {
    ApiError::new(
        e.aws_code().as_str(),
        e.aws_code().http_status(),
        e.to_string(),
    )
}

/// Everything [`complete`] needs besides the input.
pub struct WebIdentityEnv<'a> {
    /// The snapshot.
    pub directory: &'a Directory,
    /// The key ring.
    pub ring: &'a keyless_token::KeyRing,
    /// The live revocations (a token issued before a subject/issuer revocation cannot mint).
    pub revocations: &'a crate::revocation::RevocationSet,
    /// Seals authorization messages.
    pub authorizer: Authorizer<'a>,
    /// Clock leeway for the token's times.
    pub leeway: time::Duration,
    /// Now.
    pub now: OffsetDateTime,
    /// The caller's address and transport.
    pub origin: Origin<'a>,
}

/// Verifies the token, authorizes and mints.
///
/// `token` is `input.token` already parsed (the caller read its issuer and `kid` to pick the
/// provider and its keys), so the token is decoded once per request.
pub fn complete<R: CryptoRng + ?Sized>(
    env: &WebIdentityEnv<'_>,
    input: &WebIdentityInput,
    token: UnverifiedToken<'_>,
    role: &CompiledRole,
    provider: &crate::model::OidcProvider,
    jwks: &Jwks,
    rng: &mut R,
) -> Result<Issued, ApiError> {
    let mut validation = Validation::new(provider.url.clone(), provider.client_ids.clone());
    validation.leeway = env.leeway;
    let token = token
        .verify(jwks, &validation, env.now)
        .map_err(|e| token_error(&e))?;
    if env
        .revocations
        .check_token(
            role.role.account,
            &provider.url,
            token.subject(),
            token.source_identity(),
            token.issued_at(),
        )
        .is_some()
    {
        return Err(crate::revocation::revoked_token_error());
    }

    // Session policy: parse before deciding, so a malformed one is reported as such.
    let session_policy = match &input.policy {
        Some(doc) => Some(
            Policy::parse(doc, PolicyType::Session)
                .map_err(|e| {
                    ApiError::new("MalformedPolicyDocument", 400, e.aws_message().to_owned())
                })?
                .with_label("session policy"),
        ),
        None => None,
    };
    super::session_policies::check_policy_arns(
        env.directory,
        role.role.account,
        &input.policy_arns,
    )?;

    let duration = input.duration.unwrap_or(3600);
    if duration > role.role.max_session_duration {
        return Err(ApiError::validation(&[format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({} seconds).",
            role.role.max_session_duration
        )]));
    }
    let session_tags = token
        .session_tags()
        .map(|t| t.principal_tags.clone())
        .unwrap_or_default();
    let transitive: Vec<String> = token
        .session_tags()
        .map(|t| t.transitive_tag_keys.clone())
        .unwrap_or_default();
    let source_identity = token.source_identity().map(str::to_owned);

    let prefix = provider.key_prefix();
    let provider_arn = provider.arn();
    // What the rest of the request reads of the token; its claims then move into the context.
    let subject = token.subject().to_owned();
    let audience = token.audience().to_owned();
    let token_attributes = audited_claims(&token);
    let account = role.role.account.to_string();
    // Sized for the keys set by name below (the token's go in as one group): the base keys
    // (up to six), `aws:ViaAWSService`, this request's five, the role's organization keys, the
    // role's tags twice and the request's tags.
    let mut context =
        Context::with_capacity(6 + 1 + 5 + 2 + 2 * role.role.tags.len() + session_tags.len() + 2);
    add_base_context(&mut context, env.now, &env.origin);
    // In every request's context at AWS; no AWS service calls through keyless.
    context.insert_single("aws:ViaAWSService", "false");
    // AWS: always present. The call is unsigned, so no credential scope names a region; keyless
    // is one endpoint and names the region AWS's global STS endpoint is in.
    context.insert_single("aws:RequestedRegion", super::REGION);
    context.insert_single("aws:ResourceAccount", account.clone());
    // No aws:PrincipalOrgID: the principal is the token's identity, not an account's.
    if let Some(keys) = &role.org {
        keys.insert_resource(&mut context);
    }
    // The role is the resource, as in AssumeRole: STS's role resource has its tags as
    // `aws:ResourceTag/*` and `iam:ResourceTag/*`. Nothing for an untagged role.
    crate::iam::params::role_resource_tags(&mut context, &role.role.tags);
    add_token_keys(&mut context, token, prefix);
    context.insert_single("sts:RoleSessionName", input.session_name.clone());
    context.insert_single("sts:DurationSeconds", duration.to_string());
    context.insert_single("aws:FederatedProvider", provider_arn.clone());
    if let Some(si) = &source_identity {
        context.insert_single("sts:SourceIdentity", si.clone());
    }
    if !session_tags.is_empty() {
        for (k, v) in &session_tags {
            context.insert_single(&format!("aws:RequestTag/{k}"), v.clone());
        }
        context.insert_multi(
            "aws:TagKeys",
            session_tags.iter().map(|(k, _)| k.clone()).collect(),
        );
    }
    if !transitive.is_empty() {
        context.insert_multi("sts:TransitiveTagKeys", transitive.clone());
    }

    let levels = env.directory.guardrail_levels(role.role.account);
    let policies = PolicySet {
        guardrails: &levels,
        resource_policy: Some(&role.trust),
        ..PolicySet::default()
    };
    let asker = Asker {
        arn: &provider_arn,
        id: &subject,
    };
    let check = |action: &str| -> Result<(), ApiError> {
        let request = Request {
            principal: &provider_arn,
            principal_id: None,
            action,
            resource: &role.arn,
            resource_account: Some(&account),
            context: &context,
        };
        env.authorizer
            .require(asker, &request, &policies, not_authorized)
            .map(|_| ())
    };
    check("sts:AssumeRoleWithWebIdentity")?;
    if !session_tags.is_empty() {
        check("sts:TagSession")?;
    }
    if source_identity.is_some() {
        check("sts:SetSourceIdentity")?;
    }

    let claims = SessionClaims {
        account: role.role.account,
        role_arn: role.arn.clone(),
        role_id: role.role.role_id.clone(),
        session_name: input.session_name.clone(),
        issued_at: env.now,
        expires_at: env.now + time::Duration::seconds(i64::from(duration)),
        source_identity: source_identity.clone(),
        tags: principal_tags(&role.role.tags, &session_tags),
        transitive_tag_keys: transitive,
        session_policy: input.policy.clone(),
        policy_arns: input.policy_arns.clone(),
        mfa: None,
        federated: Some(FederatedFacts {
            issuer: provider.url.clone(),
            subject: subject.clone(),
            audience: audience.clone(),
            provider_arn,
        }),
        chain_depth: 0,
        chained_from: vec![],
    };
    let _ = session_policy;
    let min_size = input.minimum_token_size.map_or(0, |n| n as usize);
    let credentials = mint_at_least(env.ring, &claims, min_size, rng)
        .map_err(|e| ApiError::new(e.aws_code(), e.http_status(), e.to_string()))?;
    let packed = (input.policy.is_some() || !input.policy_arns.is_empty())
        .then_some(credentials.packed_policy_size);
    Ok(Issued {
        assumed_role_arn: assumed_role_arn(role.role.account, &role.role.name, &input.session_name),
        assumed_role_id: format!("{}:{}", role.role.role_id, input.session_name),
        packed_policy_size: packed,
        source_identity,
        web_identity: Some(WebIdentityFacts {
            subject,
            audience,
            provider: provider.url.clone(),
        }),
        credentials,
        claims,
        token_attributes,
    })
}

/// The [`super::AUDITED_TOKEN_CLAIMS`] of a verified token, as strings (`aud` is the effective
/// audience; objects and arrays are skipped).
fn audited_claims(token: &VerifiedToken) -> Vec<(String, String)> {
    super::AUDITED_TOKEN_CLAIMS
        .iter()
        .filter_map(|name| {
            let value = match *name {
                "aud" => token.audience().to_owned(),
                _ => token.claim(name)?.text().into_owned(),
            };
            Some(((*name).to_owned(), value))
        })
        .collect()
}

/// The token-derived condition keys: `<prefix>:sub`, `:aud`, `:oaud`, `:azp`, `:amr` and the other
/// scalar claims, moved into the context as one group (a trust policy reads few of them).
///
/// None for a provider whose prefix is the `aws` or `sts` namespace itself (an issuer at host
/// `aws`): its claims would be `aws:`/`sts:` keys, and those this request does not set by name
/// (`aws:PrincipalOrgID`, `aws:RequestTag/…` without tags, `sts:SourceIdentity` without one) would
/// take the token's word, in guardrails too.
fn add_token_keys(context: &mut Context, token: VerifiedToken, prefix: &str) {
    // Lowercased as the context lowercases key names; a longer prefix cannot lowercase to these.
    if prefix.len() <= 12 && matches!(prefix.to_lowercase().as_str(), "aws" | "sts") {
        return;
    }
    let entries = token
        .into_condition_keys()
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                OwnedKeyValue::One(one) => ContextValue::Single(one),
                OwnedKeyValue::Many(values) => ContextValue::Multi(values),
            };
            (name, value)
        })
        .collect();
    context.insert_prefixed(prefix, entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    const ARN: &str = "arn:aws:iam::123456789012:role/gha";

    #[test]
    fn missing_parameters_are_listed() {
        let e = parse(&params(&[])).unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(
            e.message.starts_with("3 validation errors detected"),
            "{}",
            e.message
        );
        assert!(e.message.contains("'roleArn'"));
    }

    #[test]
    fn the_token_is_never_echoed() {
        let long = "x".repeat(20001);
        let e = parse(&params(&[
            ("RoleArn", ARN),
            ("RoleSessionName", "s1"),
            ("WebIdentityToken", &long),
        ]))
        .unwrap_err();
        assert!(!e.message.contains("xxxx"), "{}", e.message);
    }

    #[test]
    fn bounds() {
        let ok = [
            ("RoleArn", ARN),
            ("RoleSessionName", "s1"),
            ("WebIdentityToken", "abcd"),
        ];
        assert!(parse(&params(&ok)).is_ok());
        for (k, v, code) in [
            ("DurationSeconds", "899", "ValidationError"),
            ("DurationSeconds", "43201", "ValidationError"),
            ("DurationSeconds", "12x", "ValidationError"),
            ("Policy", "", "ValidationError"),
            ("ProviderId", "www.amazon.com", "InvalidParameterValue"),
            ("ProviderId", "ab", "ValidationError"),
        ] {
            let mut pairs = ok.to_vec();
            pairs.push((k, v));
            assert_eq!(parse(&params(&pairs)).unwrap_err().code, code, "{k}={v}");
        }
        let long_policy = format!("{{\"a\":\"{}\"}}", "x".repeat(2048));
        let mut pairs = ok.to_vec();
        pairs.push(("Policy", &long_policy));
        assert_eq!(parse(&params(&pairs)).unwrap_err().code, "ValidationError");
    }
}
