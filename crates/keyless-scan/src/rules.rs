//! Rule ids, names, explanations and fixes for every `scan` and `lint` rule.

use crate::finding::Severity;

/// Metadata of one rule.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    /// Stable id used in output, baselines and SARIF.
    pub id: &'static str,
    /// Short human name.
    pub name: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it.
    pub fix: &'static str,
}

/// `AKIA` key id with its secret nearby.
pub const ACCESS_KEY: &str = "aws-access-key";
/// `AKIA` key id alone.
pub const ACCESS_KEY_ID: &str = "aws-access-key-id";
/// `AKIA` key in an AWS credentials/config file profile.
pub const CREDENTIALS_FILE: &str = "aws-credentials-file";
/// `ASIA` temporary key id (with its token when found).
pub const TEMPORARY: &str = "aws-temporary-credentials";
/// A secret access key named as such, with no key id near it.
pub const SECRET_KEY: &str = "aws-secret-access-key";
/// A session token with no key id near it.
pub const SESSION_TOKEN: &str = "aws-session-token";
/// AWS's documented example keys.
pub const EXAMPLE_KEY: &str = "aws-example-key";
/// GitHub Actions: static key env vars.
pub const GHA_STATIC_ENV: &str = "gha-static-aws-keys";
/// GitHub Actions: configure-aws-credentials with access keys.
pub const GHA_ACTION_KEYS: &str = "gha-configure-aws-credentials-keys";
/// GitHub Actions: OIDC without `id-token: write`.
pub const GHA_NO_ID_TOKEN: &str = "gha-missing-id-token-permission";
/// GitHub Actions: role-duration-seconds above 3600.
pub const GHA_LONG_DURATION: &str = "gha-long-role-duration";
/// GitHub Actions: AWS credentials in a workflow triggered by pull_request_target.
pub const GHA_PR_TARGET: &str = "gha-pull-request-target-aws";
/// GitLab CI: static key variables.
pub const GITLAB_STATIC: &str = "gitlab-static-aws-keys";
/// GitLab CI: `id_tokens` without `aud`.
pub const GITLAB_NO_AUD: &str = "gitlab-id-token-without-audience";
/// AWS config: static keys in a profile.
pub const AWS_CONFIG_STATIC: &str = "aws-config-static-keys";
/// IAM role: MaxSessionDuration above one hour.
pub const IAM_LONG_SESSION: &str = "iam-long-max-session-duration";
/// IAM: Allow of `"Action": "*"` on `"Resource": "*"`.
pub const IAM_ADMIN_WILDCARD: &str = "iam-allow-all-actions-all-resources";
/// Terraform/CloudFormation resource that creates an IAM user access key.
pub const IAC_ACCESS_KEY: &str = "iac-iam-access-key";
/// Malformed file that lint could not read.
pub const PARSE_ERROR: &str = "lint-parse-error";

const ROTATE: &str = "Deactivate and delete this access key in IAM now (it is in the file or the git history, so treat it as leaked), check CloudTrail for its use, and replace it with short-lived credentials from keyless or AWS STS (OIDC federation for CI, `aws sso login` for people).";

/// Every rule `scan` and `lint` can report (policy validator codes are added at run time).
pub const ALL: &[RuleInfo] = &[
    RuleInfo {
        id: ACCESS_KEY,
        name: "AWS access key with secret",
        severity: Severity::High,
        why: "A permanent access key id and its secret access key: anyone who reads this can act as the IAM user until the key is deleted.",
        fix: ROTATE,
    },
    RuleInfo {
        id: ACCESS_KEY_ID,
        name: "AWS access key id",
        severity: Severity::Medium,
        why: "A permanent access key id. The secret is not next to it, but it usually lives close by, and the id names the account.",
        fix: ROTATE,
    },
    RuleInfo {
        id: CREDENTIALS_FILE,
        name: "AWS credentials file with a static key",
        severity: Severity::High,
        why: "A credentials-file profile holding a permanent key and secret.",
        fix: "Delete the key in IAM, remove the profile's aws_access_key_id/aws_secret_access_key, and use an `sso_session` profile (`aws configure sso`) or `credential_process = keyless …`.",
    },
    RuleInfo {
        id: TEMPORARY,
        name: "AWS temporary credentials",
        severity: Severity::Medium,
        why: "STS credentials (ASIA key id, secret and session token) are usable until they expire, up to 36 hours.",
        fix: "Revoke the role's active sessions (AWSRevokeOlderSessions or `keyless` revocation) and stop writing credentials to files.",
    },
    RuleInfo {
        id: SECRET_KEY,
        name: "AWS secret access key",
        severity: Severity::High,
        why: "A secret access key assigned to a credential variable; with its key id (often elsewhere) it is a permanent credential.",
        fix: ROTATE,
    },
    RuleInfo {
        id: SESSION_TOKEN,
        name: "AWS session token",
        severity: Severity::Low,
        why: "An STS session token; it expires, but until then it is half of a usable credential.",
        fix: "Remove it from the file; revoke the session if it may still be valid.",
    },
    RuleInfo {
        id: EXAMPLE_KEY,
        name: "AWS documented example key",
        severity: Severity::Low,
        why: "AWS's published example credentials; not usable, but scanners and reviewers will keep flagging them.",
        fix: "No action needed; consider a baseline entry.",
    },
    RuleInfo {
        id: GHA_STATIC_ENV,
        name: "Static AWS keys in a GitHub Actions workflow",
        severity: Severity::High,
        why: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in `env` means a permanent key stored as a repository secret, usable by every workflow and leakable from any step.",
        fix: "Use OIDC: `permissions: id-token: write` and aws-actions/configure-aws-credentials with `role-to-assume` (run `keyless migrate github-actions`), then delete the IAM user's key.",
    },
    RuleInfo {
        id: GHA_ACTION_KEYS,
        name: "configure-aws-credentials with access keys",
        severity: Severity::High,
        why: "The action is given a permanent access key instead of assuming a role with the job's OIDC token.",
        fix: "Replace aws-access-key-id/aws-secret-access-key with `role-to-assume: <role ARN>` and grant `id-token: write` (`keyless migrate github-actions` does both).",
    },
    RuleInfo {
        id: GHA_NO_ID_TOKEN,
        name: "OIDC without id-token: write",
        severity: Severity::High,
        why: "configure-aws-credentials uses role-to-assume, but the job cannot request an OIDC token without `permissions: id-token: write`; the step fails or falls back to other credentials.",
        fix: "Add `permissions:` with `id-token: write` (and `contents: read`) to the job or the workflow.",
    },
    RuleInfo {
        id: GHA_LONG_DURATION,
        name: "Long role session",
        severity: Severity::Medium,
        why: "Sessions longer than one hour outlive most jobs and widen the window for a stolen token.",
        fix: "Set `role-duration-seconds: 900` (or the job's real length, at most 3600).",
    },
    RuleInfo {
        id: GHA_PR_TARGET,
        name: "AWS credentials under pull_request_target",
        severity: Severity::High,
        why: "pull_request_target runs for pull requests from forks in the base repository's context: with its secrets and, given id-token: write, an OIDC token of the base repository. A job that checks out or builds the pull request's code hands these AWS credentials to anyone who opens a pull request.",
        fix: "Get AWS credentials only in workflows triggered by push, workflow_dispatch or a trusted event; keep pull_request_target jobs free of credentials, or of the pull request's code.",
    },
    RuleInfo {
        id: GITLAB_STATIC,
        name: "Static AWS keys in GitLab CI",
        severity: Severity::High,
        why: "AWS key variables in .gitlab-ci.yml mean a permanent key is handed to jobs.",
        fix: "Use `id_tokens:` with `aud: sts.amazonaws.com` and `aws sts assume-role-with-web-identity`, then delete the IAM user's key.",
    },
    RuleInfo {
        id: GITLAB_NO_AUD,
        name: "GitLab id_tokens without audience",
        severity: Severity::Medium,
        why: "An ID token without `aud` cannot be bound to the role's expected audience.",
        fix: "Add `aud: sts.amazonaws.com` (or your keyless audience) to the id_tokens entry.",
    },
    RuleInfo {
        id: AWS_CONFIG_STATIC,
        name: "Static keys in an AWS config profile",
        severity: Severity::High,
        why: "A credentials/config profile with aws_access_key_id/aws_secret_access_key holds a permanent key on disk.",
        fix: "Use an `sso_session` profile (`aws configure sso`) or `credential_process`, and delete the IAM user's key.",
    },
    RuleInfo {
        id: IAM_LONG_SESSION,
        name: "Long MaxSessionDuration",
        severity: Severity::Medium,
        why: "Roles that allow sessions longer than one hour let stolen session credentials live longer.",
        fix: "Set MaxSessionDuration to 3600 unless a workload really needs longer.",
    },
    RuleInfo {
        id: IAM_ADMIN_WILDCARD,
        name: "Allow * on *",
        severity: Severity::High,
        why: "A statement allowing every action on every resource makes the principal a full administrator; a leaked credential for it is a full account compromise.",
        fix: "List the actions and resources the workload needs (start from CloudTrail or `keyless policy` simulation).",
    },
    RuleInfo {
        id: IAC_ACCESS_KEY,
        name: "Access key created by infrastructure code",
        severity: Severity::High,
        why: "An aws_iam_access_key / AWS::IAM::AccessKey resource mints a permanent access key on every apply; its secret lands in the Terraform state or a stack output, where everyone who can read those can use it.",
        fix: "Remove the resource and delete the key in IAM; give the workload a role to assume instead (OIDC federation for CI, an instance or task role, or keyless).",
    },
    RuleInfo {
        id: PARSE_ERROR,
        name: "File could not be parsed",
        severity: Severity::Low,
        why: "lint could not read this file, so it was not checked.",
        fix: "Fix the syntax error reported in the message.",
    },
];

/// Looks up a rule by id.
#[must_use]
pub fn info(id: &str) -> Option<&'static RuleInfo> {
    ALL.iter().find(|r| r.id == id)
}
