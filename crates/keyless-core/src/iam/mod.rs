//! The IAM management API (2010-05-08): OIDC providers, roles, inline and managed policies,
//! policy simulation, and the long-term-credential operations that guardrails forbid.
//!
//! Every call is made by an authenticated [`Caller`] and is authorized like an AWS call
//! (`iam:<Action>` on the resource ARN, against the caller's role's current policies, its
//! boundary, its session policy and the guardrails of its account). The caller acts in its own
//! account. A use case reads the [`Directory`] snapshot and returns an [`IamOutcome`]: the
//! result to render and, for a write, the one [`Change`] the edge applies to the store before
//! rebuilding the snapshot. Pure: `now` and the id generator come from the edge.

mod guarded;
pub mod out;
pub mod params;
mod policies;
mod providers;
mod roles;
mod simulate;

use keyless_policy::{Context, Decision, DecisionKind, Policy, Request, evaluate};
use rand::Rng;

use crate::caller::Caller;
use crate::directory::Directory;
use crate::error::ApiError;
use crate::model::Guardrail;
use crate::ports::Change;
use crate::sts::params::Params;
use crate::sts::{Asker, Authorizer, Origin};
pub use out::Node;

/// Name of the built-in guardrail that forbids long-term credentials.
pub const NO_LONG_TERM_KEYS: &str = "no-long-term-keys";

/// The actions the built-in guardrail denies.
pub const LONG_TERM_KEY_ACTIONS: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:CreateUser",
    "iam:CreateLoginProfile",
    "iam:UpdateAccessKey",
];

/// The built-in `no-long-term-keys` guardrail, attached at the root.
pub fn no_long_term_keys_guardrail() -> Guardrail {
    let actions: Vec<serde_json::Value> = LONG_TERM_KEY_ACTIONS
        .iter()
        .map(|a| serde_json::Value::from(*a))
        .collect();
    let document = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "NoLongTermKeys",
            "Effect": "Deny",
            "Action": actions,
            "Resource": "*",
        }],
    })
    .to_string();
    Guardrail {
        target: "/".into(),
        name: NO_LONG_TERM_KEYS.into(),
        document,
        origin: crate::model::Origin::Config,
    }
}

/// The tag that acknowledges a trust-policy SECURITY_WARNING: its value is the finding code
/// (several codes separated by spaces).
pub const ACKNOWLEDGE_RISK_TAG: &str = "keyless:acknowledge-risk";

/// Everything an IAM use case needs besides the caller and the parameters.
pub struct IamEnv<'a> {
    /// The snapshot.
    pub directory: &'a Directory,
    /// Seals the authorization message of every `AccessDenied`.
    pub authorizer: Authorizer<'a>,
    /// Now.
    pub now: keyless_types::OffsetDateTime,
    /// The caller's address and transport.
    pub origin: Origin<'a>,
    /// Accept `http://` provider URLs on loopback hosts (local test issuers only).
    pub allow_loopback_http_providers: bool,
    /// When each role last had a session issued (`GetRole`'s `RoleLastUsed`).
    pub role_usage: &'a crate::role_usage::RoleUsage,
}

/// A trust-policy SECURITY_WARNING the request acknowledged with [`ACKNOWLEDGE_RISK_TAG`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgedRisk {
    /// The role.
    pub role_arn: String,
    /// The finding code.
    pub code: String,
    /// The finding message.
    pub message: String,
}

/// What a use case produced.
#[derive(Debug, Default)]
pub struct IamOutcome {
    /// The `<Action>Result` members; `None` for operations without output.
    pub result: Option<Vec<Node>>,
    /// The write to apply, if any.
    pub change: Option<Change>,
    /// Risks acknowledged by this request (for the audit record).
    pub acknowledged: Vec<AcknowledgedRisk>,
}

impl IamOutcome {
    fn result(nodes: Vec<Node>) -> Self {
        IamOutcome {
            result: Some(nodes),
            ..IamOutcome::default()
        }
    }

    fn write(change: Change) -> Self {
        IamOutcome {
            change: Some(change),
            ..IamOutcome::default()
        }
    }

    fn write_with(change: Change, nodes: Vec<Node>) -> Self {
        IamOutcome {
            result: Some(nodes),
            change: Some(change),
            acknowledged: Vec::new(),
        }
    }
}

/// Every action the IAM endpoint answers.
pub const ACTIONS: &[&str] = &[
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "TagOpenIDConnectProvider",
    "UntagOpenIDConnectProvider",
    "ListOpenIDConnectProviderTags",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "UpdateRole",
    "UpdateRoleDescription",
    "DeleteRole",
    "UpdateAssumeRolePolicy",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "ListAttachedRolePolicies",
    "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    "TagRole",
    "UntagRole",
    "ListRoleTags",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "TagPolicy",
    "UntagPolicy",
    "ListPolicyTags",
    "SimulatePrincipalPolicy",
    "SimulateCustomPolicy",
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateAccessKey",
];

/// Runs one IAM action for `caller`. `rng` makes the ids of new entities.
pub fn execute<R: Rng + ?Sized>(
    env: &IamEnv<'_>,
    caller: &Caller,
    action: &str,
    params: &Params,
    rng: &mut R,
) -> Result<IamOutcome, ApiError> {
    let cx = Cx { env, caller };
    match action {
        "CreateOpenIDConnectProvider" => providers::create(&cx, params),
        "GetOpenIDConnectProvider" => providers::get(&cx, params),
        "ListOpenIDConnectProviders" => providers::list(&cx),
        "DeleteOpenIDConnectProvider" => providers::delete(&cx, params),
        "AddClientIDToOpenIDConnectProvider" => providers::add_client_id(&cx, params),
        "RemoveClientIDFromOpenIDConnectProvider" => providers::remove_client_id(&cx, params),
        "UpdateOpenIDConnectProviderThumbprint" => providers::update_thumbprint(&cx, params),
        "TagOpenIDConnectProvider" => providers::tag(&cx, params),
        "UntagOpenIDConnectProvider" => providers::untag(&cx, params),
        "ListOpenIDConnectProviderTags" => providers::list_tags(&cx, params),
        "CreateRole" => roles::create(&cx, params, rng),
        "GetRole" => roles::get(&cx, params),
        "ListRoles" => roles::list(&cx, params),
        "UpdateRole" => roles::update(&cx, params, false),
        "UpdateRoleDescription" => roles::update(&cx, params, true),
        "DeleteRole" => roles::delete(&cx, params),
        "UpdateAssumeRolePolicy" => roles::update_trust(&cx, params),
        "PutRolePolicy" => roles::put_inline(&cx, params),
        "GetRolePolicy" => roles::get_inline(&cx, params),
        "DeleteRolePolicy" => roles::delete_inline(&cx, params),
        "ListRolePolicies" => roles::list_inline(&cx, params),
        "AttachRolePolicy" => roles::attach(&cx, params),
        "DetachRolePolicy" => roles::detach(&cx, params),
        "ListAttachedRolePolicies" => roles::list_attached(&cx, params),
        "PutRolePermissionsBoundary" => roles::put_boundary(&cx, params),
        "DeleteRolePermissionsBoundary" => roles::delete_boundary(&cx, params),
        "TagRole" => roles::tag(&cx, params),
        "UntagRole" => roles::untag(&cx, params),
        "ListRoleTags" => roles::list_tags(&cx, params),
        "CreatePolicy" => policies::create(&cx, params, rng),
        "GetPolicy" => policies::get(&cx, params),
        "ListPolicies" => policies::list(&cx, params),
        "DeletePolicy" => policies::delete(&cx, params),
        "CreatePolicyVersion" => policies::create_version(&cx, params),
        "GetPolicyVersion" => policies::get_version(&cx, params),
        "ListPolicyVersions" => policies::list_versions(&cx, params),
        "DeletePolicyVersion" => policies::delete_version(&cx, params),
        "SetDefaultPolicyVersion" => policies::set_default(&cx, params),
        "TagPolicy" => policies::tag(&cx, params),
        "UntagPolicy" => policies::untag(&cx, params),
        "ListPolicyTags" => policies::list_tags(&cx, params),
        "SimulatePrincipalPolicy" => simulate::principal(&cx, params),
        "SimulateCustomPolicy" => simulate::custom(&cx, params),
        "CreateUser" | "CreateAccessKey" | "CreateLoginProfile" | "UpdateAccessKey" => {
            guarded::refuse(&cx, action, params)
        }
        other => Err(ApiError::new(
            "InvalidAction",
            400,
            format!(
                "Could not find operation {} for version 2010-05-08",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// The request being served.
struct Cx<'a> {
    env: &'a IamEnv<'a>,
    caller: &'a Caller,
}

impl Cx<'_> {
    fn account(&self) -> keyless_types::AccountId {
        self.caller.account()
    }

    fn directory(&self) -> &Directory {
        self.env.directory
    }

    fn now(&self) -> keyless_types::OffsetDateTime {
        self.env.now
    }

    /// Tags given to a create call are authorized as their tagging action as well
    /// (`iam:TagRole` for CreateRole with Tags), as AWS does: a principal allowed to create but
    /// not to tag could otherwise set the tags that tag-based trust and guardrails read.
    fn authorize_tags_on_create(
        &self,
        tag_action: &str,
        resource: &str,
        tags: &[(String, String)],
    ) -> Result<(), ApiError> {
        if tags.is_empty() {
            return Ok(());
        }
        self.authorize(tag_action, resource, |ctx| params::request_tags(ctx, tags))
            .map(|_| ())
    }

    /// Authorizes `iam:<action>` on `resource`; `extra` adds request-specific context keys.
    fn authorize(
        &self,
        action: &str,
        resource: &str,
        extra: impl FnOnce(&mut Context),
    ) -> Result<Decision, ApiError> {
        let mut context = self.caller.context(self.env.now, &self.env.origin);
        // IAM is global, with its one endpoint in us-east-1: AWS's region guardrails see that.
        context.insert_single("aws:RequestedRegion", crate::sts::REGION);
        // The caller acts in its own account, so IAM's resources are that account's.
        context.insert_single("aws:ResourceAccount", self.caller.account().to_string());
        if let Some(keys) = &self.caller.role().org {
            keys.insert_resource(&mut context);
        }
        extra(&mut context);
        let full = format!("iam:{action}");
        let levels = self.env.directory.guardrail_levels(self.caller.account());
        let identity: Vec<&Policy> = self.caller.role().identity_policies();
        let policies = self.caller.identity_policies(&levels, &identity);
        let arn = self.caller.arn();
        let request = Request {
            principal: arn,
            principal_id: Some(&self.caller.claims().role_id),
            action: &full,
            resource,
            resource_account: None,
            context: &context,
        };
        let decision = evaluate(&request, &policies);
        if decision.kind() == DecisionKind::Allowed {
            return Ok(decision);
        }
        let id = self.caller.user_id();
        let reason = denial_reason(&decision, &full);
        Err(self.env.authorizer.deny(
            Asker { arn, id: &id },
            &request,
            &decision,
            format!(
                "User: {arn} is not authorized to perform: {full} on resource: {resource} {reason}."
            ),
        ))
    }
}

/// AWS's "because …" / "with an explicit deny in …" tail of a denial.
fn denial_reason(decision: &Decision, action: &str) -> String {
    let policy = decision.statement().map(|s| s.policy.to_string());
    match (decision.kind(), policy) {
        (DecisionKind::ExplicitlyDenied, Some(p)) if p.starts_with("guardrail ") => {
            format!("with an explicit deny in a service control policy ({p})")
        }
        (DecisionKind::ExplicitlyDenied, Some(p)) if p.contains("permissions boundary") => {
            format!("with an explicit deny in a permissions boundary ({p})")
        }
        (DecisionKind::ExplicitlyDenied, Some(p)) if p.contains("session policy") => {
            "with an explicit deny in a session policy".to_owned()
        }
        (DecisionKind::ExplicitlyDenied, p) => format!(
            "with an explicit deny in an identity-based policy{}",
            p.map(|p| format!(" ({p})")).unwrap_or_default()
        ),
        _ => format!("because no identity-based policy allows the {action} action"),
    }
}

/// A fresh 21-character unique id with AWS's prefix (`AROA` roles, `ANPA` policies).
pub fn unique_id<R: Rng + ?Sized>(prefix: &str, rng: &mut R) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..21usize.saturating_sub(prefix.len()))
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{tail}")
}

fn no_such_entity(message: impl Into<String>) -> ApiError {
    ApiError::new("NoSuchEntity", 404, message)
}

fn already_exists(message: impl Into<String>) -> ApiError {
    ApiError::new("EntityAlreadyExists", 409, message)
}

fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new("LimitExceeded", 409, message)
}

fn delete_conflict(message: impl Into<String>) -> ApiError {
    ApiError::new("DeleteConflict", 409, message)
}

fn invalid_input(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidInput", 400, message)
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new("MalformedPolicyDocument", 400, message)
}

fn unmodifiable(kind: &str, name: &str) -> ApiError {
    ApiError::new(
        "UnmodifiableEntity",
        400,
        format!(
            "Cannot perform the operation on the {kind} {name}: it is declared in the keyless config file, which is its source of truth; change it there."
        ),
    )
}

#[cfg(test)]
mod tests;
