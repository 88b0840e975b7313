//! IAM policy language: parse, validate, evaluate and explain every policy type, as AWS does.
//!
//! Pure: no I/O, no clock. Follows `shared/reference/iam-policy.md`.
//!
//! - [`Policy::parse`] reads a document of a [`PolicyType`] with its own JSON parser that
//!   rejects duplicate keys, enforces the character set and size limit of the type and IAM's
//!   grammar, and compiles it (lowercased action globs, pre-split ARN segments, the shape of
//!   every pattern (`*`, exact, prefix or general glob), pre-parsed CIDRs, dates and numbers,
//!   condition and variable keys with their hash). Errors ([`ParseError`]) carry a JSON path, line and column, and
//!   the AWS `MalformedPolicyDocument` text.
//! - [`validate`] returns Access-Analyzer-style [`Finding`]s (ERROR, SECURITY_WARNING, WARNING,
//!   SUGGESTION) with a code, a message saying how to fix it and a location.
//! - [`evaluate`] decides one [`Request`] against a [`PolicySet`] (guardrail levels with SCP
//!   semantics, resource or trust policy, identity policies, permissions boundary, session
//!   policy) and returns a [`Decision`] that names the policy, statement and condition that
//!   decided, or for an implicit deny the nearest statement and what it failed on. What
//!   depends only on the request is derived once per evaluation, not per statement: the
//!   resource and principal split into ARN fields, the action lowercased. An Allow or an
//!   explicit Deny allocates nothing; an implicit deny allocates for its nearest statement.
//!
//! Policies are labelled for explanations with [`Policy::with_label`]; the default label is
//! `"the <type> policy"`.
//!
//! ```
//! use keyless_policy::{evaluate, Context, DecisionKind, Policy, PolicySet, PolicyType, Request};
//!
//! let trust = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Sid":"GitHubMain",
//!   "Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity",
//!   "Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
//!   "Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo/app:ref:refs/heads/main"}}}]}"#,
//!   PolicyType::Trust)?
//!   .with_label("the trust policy of role gha");
//! let mut ctx = Context::new();
//! ctx.insert_single("token.actions.githubusercontent.com:sub", "repo:octo/app:ref:refs/heads/dev");
//! let req = Request {
//!     principal: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
//!     principal_id: None,
//!     action: "sts:AssumeRoleWithWebIdentity",
//!     resource: "arn:aws:iam::123456789012:role/gha",
//!     resource_account: None,
//!     context: &ctx,
//! };
//! let d = evaluate(&req, &PolicySet { resource_policy: Some(&trust), ..PolicySet::default() });
//! assert_eq!(d.kind(), DecisionKind::ImplicitlyDenied);
//! assert_eq!(d.explanation(), "no statement allows sts:AssumeRoleWithWebIdentity; the nearest, \
//!   statement `GitHubMain` of the trust policy of role gha, failed on StringLike \
//!   token.actions.githubusercontent.com:sub");
//! # Ok::<(), keyless_policy::ParseError>(())
//! ```
//!
//! Choices where AWS is silent (each has a test): a plain operator against a multivalued
//! (array) context key never matches; an unresolvable policy variable matches nothing (so a
//! negated operator is true); a substituted variable's `*`/`?` are literal; a guardrail level
//! without an Allow gives `ImplicitlyDenied`; a `Principal: "*"` grant in the same account does
//! not need an identity policy but is still limited by boundary and session policy; a
//! `NotPrincipal` Deny always applies to a principal that has a permissions boundary, and
//! spares only a principal it names exactly (naming the account spares neither its users nor
//! its sessions, naming a role spares none of its sessions, as AWS checks each separately); a
//! federated-user (`GetFederationToken`) session without a session policy has no permissions;
//! a multivalued key present with an empty list counts as present for `Null`; `NotIpAddress`
//! with an address of the other IP family is true (the address is outside every range); an
//! `Allow` with `NotPrincipal`, which AWS does not support, grants no one; a multivalued key
//! used as a variable takes the variable's default; an ARN operator's value that is not a
//! six-field ARN (`*` included) matches nothing.
//!
//! Not modelled here (callers decide): resource control policies, the management-account and
//! service-linked-role exemptions from guardrails, and `sts:GetCallerIdentity` needing no
//! permission.
//!
//! The differential test (`tests/differential.rs`) compares this engine with
//! `@cloud-copilot/iam-simulate` 0.1.173 run as a separate `node` process; every disagreement
//! is in a documented divergence class where AWS's documentation says otherwise.

pub mod case;
mod context;
mod eval;
mod json;
mod pattern;
mod policy;
mod values;

pub use context::{Context, ContextValue};
pub use eval::{
    Decision, DecisionKind, Failure, Missing, Nearest, PolicySet, Request, StatementRef, evaluate,
};
pub use policy::{
    Finding, ParseError, ParseErrorKind, Policy, PolicyType, ROLE_INLINE_POLICIES_MAX_SIZE,
    Severity, UnknownPolicyType, policy_size, validate, validate_within,
};

/// Parses any input as a policy of every type and validates it; never panics. The fuzz
/// targets call this, and the property tests exercise it.
pub fn fuzz_parse(data: &str) {
    for ty in [
        PolicyType::Identity,
        PolicyType::Resource,
        PolicyType::Trust,
        PolicyType::Guardrail,
        PolicyType::Session,
    ] {
        if let Ok(p) = Policy::parse(data, ty) {
            let ctx = Context::new();
            let req = Request {
                principal: "arn:aws:iam::123456789012:user/a",
                principal_id: None,
                action: "s3:GetObject",
                resource: "arn:aws:s3:::b/k",
                resource_account: None,
                context: &ctx,
            };
            let ids = [&p];
            let _ = evaluate(
                &req,
                &PolicySet {
                    identity: &ids,
                    resource_policy: Some(&p),
                    ..PolicySet::default()
                },
            )
            .explanation();
        }
        let _ = validate(data, ty);
    }
}

/// Reads any input as a case file and evaluates every well-formed case; never panics. A fuzz
/// target calls this, and the property tests exercise it.
pub fn fuzz_cases(data: &str) {
    if let Ok(cases) = case::parse_cases(data) {
        for c in cases.into_iter().flatten() {
            let _ = c.evaluate().explanation();
        }
    }
}
