//! AssumeRole: a signed caller (a keyless session) assumes another role (role chaining).

use keyless_policy::{Policy, PolicySet, PolicyType, Request};
use keyless_token::{SessionClaims, mint_at_least};
use keyless_types::OffsetDateTime;
use rand::CryptoRng;

use super::params::{
    Params, Problems, check_chars, check_int, check_len, check_policy_chars, check_role_arn,
    check_session_name, check_source_identity, check_tag_key, check_tag_value,
};
use super::{Asker, Authorizer, Issued, Origin, assumed_role_arn, principal_tags, same_tag_key};
use crate::caller::Caller;
use crate::directory::Directory;
use crate::error::ApiError;

/// The validated parameters.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleInput {
    /// `RoleArn`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// `DurationSeconds`.
    pub duration: Option<u32>,
    /// `Policy`.
    pub policy: Option<String>,
    /// `PolicyArns`.
    pub policy_arns: Vec<String>,
    /// `Tags` (key, value).
    pub tags: Vec<(String, String)>,
    /// `TransitiveTagKeys`.
    pub transitive_tag_keys: Vec<String>,
    /// `ExternalId`.
    pub external_id: Option<String>,
    /// `SourceIdentity`.
    pub source_identity: Option<String>,
    /// `SerialNumber` and `TokenCode` were given.
    pub mfa_given: bool,
    /// `MinimumSessionTokenSize`: the token is padded to at least this many bytes.
    pub minimum_token_size: Option<u32>,
}

const NOT_NULL: &str = "Member must not be null";

/// Validates the parameters as AWS does.
pub fn parse(p: &Params) -> Result<AssumeRoleInput, ApiError> {
    let mut problems = Problems::default();
    let mut input = AssumeRoleInput::default();
    match p.get("RoleArn") {
        Some(v) => {
            check_role_arn(&mut problems, v);
            input.role_arn = v.to_owned();
        }
        None => problems.push("null", "roleArn", NOT_NULL),
    }
    match p.get("RoleSessionName") {
        Some(v) => {
            check_session_name(&mut problems, v);
            input.session_name = v.to_owned();
        }
        None => problems.push("null", "roleSessionName", NOT_NULL),
    }
    input.duration = p
        .get("DurationSeconds")
        .and_then(|v| check_int(&mut problems, v, "durationSeconds", 900, 43200))
        .and_then(|d| u32::try_from(d).ok());
    input.minimum_token_size = super::params::minimum_token_size(&mut problems, p);
    if let Some(v) = p.get("Policy") {
        if check_len(&mut problems, v, "policy", 1, 100_000) {
            check_policy_chars(&mut problems, v, "policy");
        }
        input.policy = Some(v.to_owned());
    }
    input.policy_arns = p
        .struct_list("PolicyArns", &["arn"])
        .into_iter()
        .map(|r| r.into_iter().flatten().collect())
        .collect();
    if input.policy_arns.len() > 10 {
        problems.push(
            &input.policy_arns.len().to_string(),
            "policyArns",
            "Member must have length less than or equal to 10",
        );
    }
    for a in &input.policy_arns {
        check_len(&mut problems, a, "policyArns.member.arn", 20, 2048);
    }
    let tags = p.struct_list("Tags", &["Key", "Value"]);
    if tags.len() > 50 {
        problems.push(
            &tags.len().to_string(),
            "tags",
            "Member must have length less than or equal to 50",
        );
    }
    for row in &tags {
        match row.as_slice() {
            [Some(k), Some(v)] => {
                check_tag_key(&mut problems, k, "tags.member.key");
                check_tag_value(&mut problems, v, "tags.member.value");
                input.tags.push(((*k).to_owned(), (*v).to_owned()));
            }
            [None, _] => problems.push("null", "tags.member.key", NOT_NULL),
            _ => problems.push("null", "tags.member.value", NOT_NULL),
        }
    }
    for (i, (k, _)) in input.tags.iter().enumerate() {
        if input.tags[..i]
            .iter()
            .any(|(other, _)| same_tag_key(other, k))
        {
            problems.push(
                k,
                "tags",
                "Duplicate tag keys found. Tag keys are case insensitive.",
            );
        }
    }
    input.transitive_tag_keys = p
        .list("TransitiveTagKeys")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if input.transitive_tag_keys.len() > 50 {
        problems.push(
            &input.transitive_tag_keys.len().to_string(),
            "transitiveTagKeys",
            "Member must have length less than or equal to 50",
        );
    }
    for k in &input.transitive_tag_keys {
        check_tag_key(&mut problems, k, "transitiveTagKeys.member");
    }
    if let Some(v) = p.get("ExternalId") {
        if check_len(&mut problems, v, "externalId", 2, 1224) {
            check_chars(
                &mut problems,
                v,
                "externalId",
                "+=,.@:/-",
                "[\\w+=,.@:\\/-]*",
            );
        }
        input.external_id = Some(v.to_owned());
    }
    if let Some(v) = p.get("SourceIdentity") {
        check_source_identity(&mut problems, v);
        input.source_identity = Some(v.to_owned());
    }
    if let Some(v) = p.get("SerialNumber")
        && check_len(&mut problems, v, "serialNumber", 9, 256)
    {
        check_chars(
            &mut problems,
            v,
            "serialNumber",
            "+=/:,.@-",
            "[\\w+=/:,.@-]*",
        );
    }
    if let Some(v) = p.get("TokenCode")
        && (v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()))
    {
        problems.push(
            v,
            "tokenCode",
            "Member must satisfy regular expression pattern: [\\d]*",
        );
    }
    input.mfa_given = p.get("SerialNumber").is_some() || p.get("TokenCode").is_some();
    problems.finish()?;
    // A trusted context assertion (Identity Center's trusted identity propagation) is signed by
    // AWS STS for AWS; keyless cannot check one, and dropping it silently would give the caller
    // a session without the identity context it asked for.
    if p.names().any(|n| n.starts_with("ProvidedContexts.")) {
        return Err(ApiError::new(
            "InvalidParameterValue",
            400,
            "ProvidedContexts are not supported: keyless accepts no trusted context assertions. Call AssumeRole without them.",
        ));
    }
    for k in &input.transitive_tag_keys {
        if !input.tags.iter().any(|(t, _)| same_tag_key(t, k)) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!("The transitive tag key {k} is not among the session tags passed in Tags."),
            ));
        }
    }
    Ok(input)
}

/// Everything AssumeRole needs besides the input.
pub struct AssumeRoleEnv<'a> {
    /// The snapshot.
    pub directory: &'a Directory,
    /// The key ring.
    pub ring: &'a keyless_token::KeyRing,
    /// Seals authorization messages.
    pub authorizer: Authorizer<'a>,
    /// Now.
    pub now: OffsetDateTime,
    /// Caller's address and transport.
    pub origin: Origin<'a>,
}

/// The longest a chained session may last (AWS: one hour).
pub const CHAINED_MAX: u32 = 3600;

/// Authorizes and mints.
pub fn assume_role<R: CryptoRng + ?Sized>(
    env: &AssumeRoleEnv<'_>,
    caller: &Caller,
    input: &AssumeRoleInput,
    rng: &mut R,
) -> Result<Issued, ApiError> {
    let caller_arn = caller.arn();
    let caller_id = caller.user_id();
    let asker = Asker {
        arn: caller_arn,
        id: &caller_id,
    };
    let denial = || {
        format!(
            "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
            input.role_arn
        )
    };

    if input.mfa_given {
        return Err(ApiError::access_denied(
            "MultiFactorAuthentication failed: keyless has no MFA devices; sign in with an identity provider that enforces MFA instead.",
        ));
    }
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

    // Tags and source identity carried from the calling session.
    let inherited: Vec<(String, String)> = caller
        .claims()
        .tags
        .iter()
        .filter(|(k, _)| {
            caller
                .claims()
                .transitive_tag_keys
                .iter()
                .any(|t| same_tag_key(t, k))
        })
        .cloned()
        .collect();
    for (k, _) in &input.tags {
        if inherited.iter().any(|(ik, _)| same_tag_key(ik, k)) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!(
                    "The session tag {k} conflicts with a transitive tag of the calling session; transitive tags cannot be changed."
                ),
            ));
        }
    }
    let source_identity = match (&caller.claims().source_identity, &input.source_identity) {
        (Some(old), Some(new)) if old != new => {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                "SourceIdentity cannot be changed once set: the calling session already has a source identity.",
            ));
        }
        (Some(old), _) => Some(old.clone()),
        (None, new) => new.clone(),
    };

    // The context of the caller, plus the request's own keys.
    let mut context = caller.context(env.now, &env.origin);
    context.insert_single("sts:RoleSessionName", input.session_name.clone());
    if let Some(e) = &input.external_id {
        context.insert_single("sts:ExternalId", e.clone());
    }
    if let Some(si) = &input.source_identity {
        context.insert_single("sts:SourceIdentity", si.clone());
    }
    if !input.tags.is_empty() {
        for (k, v) in &input.tags {
            context.insert_single(&format!("aws:RequestTag/{k}"), v.clone());
        }
        context.insert_multi(
            "aws:TagKeys",
            input.tags.iter().map(|(k, _)| k.clone()).collect(),
        );
    }
    if !input.transitive_tag_keys.is_empty() {
        context.insert_multi("sts:TransitiveTagKeys", input.transitive_tag_keys.clone());
    }
    let chained_default = CHAINED_MAX;
    let duration = input.duration.unwrap_or(chained_default);
    context.insert_single("sts:DurationSeconds", duration.to_string());

    // Authorize before revealing anything about the target role.
    let Some(target) = env.directory.role_by_arn(&input.role_arn) else {
        let levels = env.directory.guardrail_levels(caller.account());
        let identity: Vec<&Policy> = caller.role().identity_policies();
        let policies = caller.identity_policies(&levels, &identity);
        let request = Request {
            principal: caller_arn,
            principal_id: Some(&caller.claims().role_id),
            action: "sts:AssumeRole",
            resource: &input.role_arn,
            resource_account: None,
            context: &context,
        };
        let decision = keyless_policy::evaluate(&request, &policies);
        return Err(env.authorizer.deny(asker, &request, &decision, denial()));
    };
    // The role is the resource of sts:AssumeRole: its tags are `aws:ResourceTag/<key>` and
    // `iam:ResourceTag/<key>` (CDK's bootstrap policies and tag-keyed guardrails read them).
    crate::iam::params::role_resource_tags(&mut context, &target.role.tags);
    let target_account = target.role.account.to_string();
    // AWS: the account that owns the resource, here the role (left out above for a role that
    // does not exist, which is denied whatever the key would say).
    context.insert_single("aws:ResourceAccount", target_account.clone());
    if let Some(keys) = &target.org {
        keys.insert_resource(&mut context);
    }
    let levels = env.directory.guardrail_levels(caller.account());
    let identity: Vec<&Policy> = caller.role().identity_policies();
    let policies = PolicySet {
        resource_policy: Some(&target.trust),
        ..caller.identity_policies(&levels, &identity)
    };
    let check = |action: &str| -> Result<(), ApiError> {
        let request = Request {
            principal: caller_arn,
            principal_id: Some(&caller.claims().role_id),
            action,
            resource: &target.arn,
            resource_account: Some(&target_account),
            context: &context,
        };
        env.authorizer
            .require(asker, &request, &policies, denial)
            .map(|_| ())
    };
    check("sts:AssumeRole")?;
    if !input.tags.is_empty() {
        check("sts:TagSession")?;
    }
    // A source identity set now, or carried from the calling session: in role chaining AWS
    // requires sts:SetSourceIdentity of the caller's policies and the target's trust policy
    // either way (IAM User Guide, "Permissions required to set source identity"), so a role's
    // owner decides whether sessions bearing one may enter it.
    if source_identity.is_some() {
        check("sts:SetSourceIdentity")?;
    }

    super::session_policies::check_policy_arns(
        env.directory,
        target.role.account,
        &input.policy_arns,
    )?;

    // Duration limits are checked after authorization, as AWS does.
    let parent = caller.claims();
    if parent.chained_from.len() >= keyless_token::MAX_CHAINED_FROM {
        return Err(ApiError::validation(&[format!(
            "This session is the end of a chain of {} role assumptions, the most keyless allows, so that revoking any session in a chain can end the sessions chained from it. Assume the role again from the identity provider's token.",
            keyless_token::MAX_CHAINED_FROM
        )]));
    }
    if duration > CHAINED_MAX {
        return Err(ApiError::validation(&[
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_owned(),
        ]));
    }
    if duration > target.role.max_session_duration {
        return Err(ApiError::validation(&[format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({} seconds).",
            target.role.max_session_duration
        )]));
    }

    let mut session_tags = inherited.clone();
    session_tags.extend(input.tags.iter().cloned());
    let mut transitive: Vec<String> = inherited.iter().map(|(k, _)| k.clone()).collect();
    transitive.extend(input.transitive_tag_keys.iter().cloned());
    let claims = SessionClaims {
        account: target.role.account,
        role_arn: target.arn.clone(),
        role_id: target.role.role_id.clone(),
        session_name: input.session_name.clone(),
        issued_at: env.now,
        expires_at: env.now + time::Duration::seconds(i64::from(duration)),
        source_identity: source_identity.clone(),
        tags: principal_tags(&target.role.tags, &session_tags),
        transitive_tag_keys: transitive,
        session_policy: input.policy.clone(),
        policy_arns: input.policy_arns.clone(),
        mfa: caller.claims().mfa.clone(),
        federated: caller.claims().federated.clone(),
        chain_depth: parent.chain_depth.saturating_add(1),
        chained_from: parent
            .chained_from
            .iter()
            .cloned()
            .chain([caller.access_key_id().to_owned()])
            .collect(),
    };
    let _ = session_policy;
    let min_size = input.minimum_token_size.map_or(0, |n| n as usize);
    let credentials = mint_at_least(env.ring, &claims, min_size, rng)
        .map_err(|e| ApiError::new(e.aws_code(), e.http_status(), e.to_string()))?;
    let packed =
        (input.policy.is_some() || !input.policy_arns.is_empty() || !input.tags.is_empty())
            .then_some(credentials.packed_policy_size);
    Ok(Issued {
        assumed_role_arn: assumed_role_arn(
            target.role.account,
            &target.role.name,
            &input.session_name,
        ),
        assumed_role_id: format!("{}:{}", target.role.role_id, input.session_name),
        packed_policy_size: packed,
        source_identity,
        web_identity: None,
        credentials,
        claims,
        token_attributes: Vec::new(),
    })
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

    const OK: [(&str, &str); 2] = [
        ("RoleArn", "arn:aws:iam::123456789012:role/x"),
        ("RoleSessionName", "s1"),
    ];

    #[test]
    fn parses_lists_and_tags() {
        let mut pairs = OK.to_vec();
        pairs.extend([
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "blue"),
            ("TransitiveTagKeys.member.1", "team"),
            ("ExternalId", "ext-1"),
            ("SourceIdentity", "alice"),
        ]);
        let i = parse(&params(&pairs)).unwrap();
        assert_eq!(i.tags, vec![("team".to_owned(), "blue".to_owned())]);
        assert_eq!(i.transitive_tag_keys, vec!["team"]);
        assert_eq!(i.external_id.as_deref(), Some("ext-1"));
    }

    #[test]
    fn bad_values() {
        for (extra, code) in [
            (vec![("ExternalId", "x")], "ValidationError"),
            (vec![("ExternalId", "has space")], "ValidationError"),
            (vec![("TokenCode", "12345")], "ValidationError"),
            (vec![("SourceIdentity", "aws:me")], "ValidationError"),
            (
                vec![
                    ("Tags.member.1.Key", "a"),
                    ("Tags.member.1.Value", "1"),
                    ("Tags.member.2.Key", "A"),
                    ("Tags.member.2.Value", "2"),
                ],
                "ValidationError",
            ),
            (
                vec![("TransitiveTagKeys.member.1", "nope")],
                "InvalidParameterValue",
            ),
            (vec![("Tags.member.1.Key", "a")], "ValidationError"),
        ] {
            let mut pairs = OK.to_vec();
            pairs.extend(extra.clone());
            assert_eq!(parse(&params(&pairs)).unwrap_err().code, code, "{extra:?}");
        }
    }
}
