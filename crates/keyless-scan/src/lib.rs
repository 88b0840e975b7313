//! keyless-scan: finds the permanent AWS keys a team still has, and the risky setups that keep
//! creating them. It works offline, on any repository, with no keyless server.
//!
//! - [`scan::scan_paths`] and [`git::scan_git`] find AWS access key ids (`AKIA…`), their
//!   secrets, temporary credentials (`ASIA…` + session token) and credentials-file profiles in
//!   files and in every blob of every commit; [`detect::scan_text`] is the pure core.
//!   Account ids are decoded offline ([`aws::account_id_from_key_id`]); AWS's documented
//!   example keys are reported at low severity. Findings never hold a full secret: a redacted
//!   form and a fingerprint ([`finding::Finding`]).
//! - [`lint::lint_paths`] flags static keys in GitHub Actions and GitLab CI, missing
//!   `id-token: write`, long sessions, static keys in AWS config files, and IAM policies (from
//!   JSON, CloudFormation and Terraform) checked with the `keyless-policy` validator.
//! - [`migrate::migrate_github_actions`] rewrites a workflow to OIDC and writes the trust policy.
//! - [`report::render`] prints text, JSON or SARIF 2.1.0; [`baseline::Baseline`] suppresses
//!   accepted findings.
//!
//! ```
//! let found = keyless_scan::detect::scan_text(".env", b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n");
//! assert_eq!(found[0].rule, "aws-example-key");
//! assert_eq!(found[0].access_key_id.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
//! ```

pub mod aws;
pub mod baseline;
pub mod detect;
pub mod finding;
pub mod git;
pub mod lint;
pub mod migrate;
pub mod policy;
pub mod report;
pub mod rules;
pub mod scan;
pub mod yaml;

pub use finding::{Confidence, Finding, Severity};
pub use scan::{ScanConfig, ScanError, ScanOutput, ScanStats};
