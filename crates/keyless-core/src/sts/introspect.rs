//! GetCallerIdentity, GetAccessKeyInfo and DecodeAuthorizationMessage.

use keyless_types::OffsetDateTime;

use super::params::{Params, Problems, check_chars, check_len};
use super::{Authorizer, Origin};
use crate::caller::Caller;
use crate::directory::Directory;
use crate::error::ApiError;

/// `GetCallerIdentity`: always allowed for a verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `AROA…:session`.
    pub user_id: String,
    /// The account.
    pub account: String,
    /// The assumed-role ARN.
    pub arn: String,
}

/// Answers `GetCallerIdentity`.
pub fn get_caller_identity(caller: &Caller) -> CallerIdentity {
    CallerIdentity {
        user_id: caller.user_id(),
        account: caller.account().to_string(),
        arn: caller.arn().to_owned(),
    }
}

/// Everything the authorized introspection calls need.
pub struct IntrospectEnv<'a> {
    /// The snapshot.
    pub directory: &'a Directory,
    /// Seals and opens authorization messages.
    pub authorizer: Authorizer<'a>,
    /// Now.
    pub now: OffsetDateTime,
    /// Caller's address and transport.
    pub origin: Origin<'a>,
}

/// Requires the caller's own policies (guardrails, role policies, boundary, session policy) to
/// allow `action` on `*`.
fn require_own(env: &IntrospectEnv<'_>, caller: &Caller, action: &str) -> Result<(), ApiError> {
    caller.require_allowed(
        env.directory,
        &env.authorizer,
        action,
        "*",
        None,
        env.now,
        &env.origin,
    )
}

/// Answers `GetAccessKeyInfo` with the account an access key id belongs to.
pub fn get_access_key_info(
    env: &IntrospectEnv<'_>,
    caller: &Caller,
    p: &Params,
) -> Result<String, ApiError> {
    let mut problems = Problems::default();
    let id = p.get("AccessKeyId");
    match id {
        Some(v) => {
            if check_len(&mut problems, v, "accessKeyId", 16, 128) {
                check_chars(&mut problems, v, "accessKeyId", "", "[\\w]*");
            }
        }
        None => problems.push("null", "accessKeyId", "Member must not be null"),
    }
    problems.finish()?;
    require_own(env, caller, "sts:GetAccessKeyInfo")?;
    let id = id.unwrap_or_default();
    keyless_token::account_from_access_key_id(id).map(|a| a.to_string()).map_err(|_| {
        ApiError::new(
            "InvalidParameterValue",
            400,
            "The access key id is not one keyless issued (ASIA followed by 16 characters of A-Z and 2-7).",
        )
    })
}

/// Answers `DecodeAuthorizationMessage` with the decoded JSON.
pub fn decode_authorization_message(
    env: &IntrospectEnv<'_>,
    caller: &Caller,
    p: &Params,
) -> Result<String, ApiError> {
    let mut problems = Problems::default();
    let msg = p.get("EncodedMessage");
    match msg {
        Some(v) => {
            check_len(
                &mut problems,
                v,
                "encodedMessage",
                1,
                crate::authz_message::MAX_ENCODED_LEN,
            );
        }
        None => problems.push("null", "encodedMessage", "Member must not be null"),
    }
    problems.finish()?;
    require_own(env, caller, "sts:DecodeAuthorizationMessage")?;
    env.authorizer
        .sealer
        .open(msg.unwrap_or_default(), &caller.account().to_string())
}
