//! `CreateUser`, `CreateAccessKey`, `CreateLoginProfile`, `UpdateAccessKey`: keyless has no IAM
//! users and issues no long-term keys. The operations exist so that clients get a real answer:
//! the guardrail (`no-long-term-keys`, on by default) denies them with an explained, encoded
//! authorization message; with the guardrail turned off they are still refused.

use super::params::Check;
use super::{Cx, IamOutcome};
use crate::error::ApiError;
use crate::sts::params::Params;

pub(super) fn refuse(cx: &Cx<'_>, action: &str, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let user = match action {
        "CreateUser" | "CreateLoginProfile" => {
            c.required(p, "UserName", "userName").map(str::to_owned)
        }
        _ => p.get("UserName").map(str::to_owned),
    };
    if let Some(u) = &user {
        c.name(u, "userName", 64);
    }
    let path = p.get("Path").unwrap_or("/").to_owned();
    if action == "CreateUser" {
        c.path(&path, "path");
    }
    if action == "CreateLoginProfile" && p.get("Password").is_none() {
        c.required(p, "Password", "password");
    }
    if action == "UpdateAccessKey" {
        if let Some(id) = c.required(p, "AccessKeyId", "accessKeyId") {
            c.len(id, "accessKeyId", 16, 128);
        }
        if let Some(s) = c.required(p, "Status", "status") {
            c.one_of(s, "status", &["Active", "Inactive", "Expired"]);
        }
    }
    c.finish()?;
    let resource = match &user {
        Some(u) => format!("arn:aws:iam::{}:user{path}{u}", cx.account()),
        // Without UserName the request is about the caller itself.
        None => cx.caller.arn().to_owned(),
    };
    cx.authorize(action, &resource, |_| {})?;
    Err(ApiError::access_denied(format!(
        "keyless has no IAM users and issues no long-term access keys or passwords, so iam:{action} cannot succeed; obtain short-lived credentials with AssumeRoleWithWebIdentity instead."
    )))
}
