//! Session policies: the inline `Policy` and the managed policies named by `PolicyArns` of
//! `AssumeRole*`. They bound the session together (any of them may allow, and the role's
//! policies must allow too). The ARNs are sealed in the token and resolved against the current
//! directory at each request, so editing a managed policy changes live sessions; a policy that
//! has since been deleted leaves the session with no permissions (fail closed).

use std::sync::Arc;

use keyless_policy::{Policy, PolicyType};
use keyless_types::AccountId;

use crate::directory::Directory;
use crate::error::ApiError;
use crate::session_cache::OpenSession;

/// Checks `PolicyArns` at issuance: each must name a managed policy of the role's account.
pub fn check_policy_arns(
    directory: &Directory,
    account: AccountId,
    arns: &[String],
) -> Result<(), ApiError> {
    for arn in arns {
        let usable = directory
            .managed_policy_by_arn(arn)
            .is_some_and(|m| m.policy.account == account && m.compiled.is_some());
        if !usable {
            return Err(ApiError::new(
                "MalformedPolicyDocument",
                400,
                format!("The policy {arn} does not exist or is not attachable."),
            ));
        }
    }
    Ok(())
}

/// The compiled session policy of an opened session, if it has any.
pub fn resolve_opened(
    directory: &Directory,
    session: &OpenSession,
) -> Result<Option<Arc<Policy>>, ApiError> {
    let inline = match session.inline_policy() {
        Some(Ok(p)) => Some(p),
        Some(Err(())) => return Err(ApiError::internal()),
        None => None,
    };
    let claims = session.claims();
    if claims.policy_arns.is_empty() {
        return Ok(inline.cloned());
    }
    let managed: Vec<Arc<crate::directory::CompiledManagedPolicy>> = claims
        .policy_arns
        .iter()
        .filter_map(|arn| directory.managed_policy_by_arn(arn))
        .filter(|m| m.policy.account == claims.account)
        .collect();
    let mut parts: Vec<&Policy> = Vec::new();
    if managed.len() == claims.policy_arns.len() {
        parts.extend(inline.map(|p| &**p));
        for m in &managed {
            match &m.compiled {
                Some(p) => parts.push(p),
                None => {
                    parts.clear();
                    break;
                }
            }
        }
    }
    // With a named policy missing, `parts` is empty: a session policy without statements,
    // which allows nothing.
    let label = if parts.is_empty() {
        "session policies (a policy named by PolicyArns no longer exists)".to_owned()
    } else {
        format!(
            "session policies (inline and {})",
            claims.policy_arns.join(", ")
        )
    };
    Ok(Some(Arc::new(Policy::merged(
        PolicyType::Session,
        label,
        &parts,
    ))))
}
