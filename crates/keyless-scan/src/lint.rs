//! `lint`: risky CI workflows, AWS config files and IAM policies.

use std::path::{Path, PathBuf};

use crate::finding::{Finding, fingerprint};
use crate::policy;
use crate::rules::{self, RuleInfo};
use crate::scan::{ScanConfig, ScanError, sort_findings, walker};
use crate::yaml::{self, Node};

/// Largest file lint reads.
pub const MAX_LINT_BYTES: u64 = 4 * 1024 * 1024;

/// The action that configures AWS credentials in GitHub Actions.
pub const CONFIGURE_AWS_ACTION: &str = "aws-actions/configure-aws-credentials";

const KEY_VARS: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// Kind of file, decided from its path and content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `.github/workflows/*.yml`.
    GithubWorkflow,
    /// `.gitlab-ci.yml`.
    GitlabCi,
    /// `~/.aws/credentials` or `config`-style INI.
    AwsConfig,
    /// Standalone IAM policy JSON.
    PolicyJson,
    /// CloudFormation template (JSON or YAML).
    CloudFormation,
    /// Terraform.
    Terraform,
}

/// Decides what kind of file this is, or `None` when lint has no rules for it.
#[must_use]
pub fn classify(path: &str, content: &str) -> Option<FileKind> {
    let p = path.replace('\\', "/");
    let name = p.rsplit('/').next().unwrap_or(&p);
    let yamlish = name.ends_with(".yml") || name.ends_with(".yaml");
    if yamlish && (p.contains(".github/workflows/") || p.starts_with("workflows/")) {
        return Some(FileKind::GithubWorkflow);
    }
    if name == ".gitlab-ci.yml"
        || name.ends_with(".gitlab-ci.yml")
        || (yamlish && p.contains(".gitlab/ci/"))
    {
        return Some(FileKind::GitlabCi);
    }
    if name.ends_with(".tf") {
        return Some(FileKind::Terraform);
    }
    let head = &content[..content.len().min(20_000)];
    if (name == "action.yml" || name == "action.yaml") && head.contains("runs:") {
        return Some(FileKind::GithubWorkflow);
    }
    if yamlish || name.ends_with(".template") || name.ends_with(".json") {
        if head.contains("AWSTemplateFormatVersion")
            || (head.contains("Resources") && head.contains("AWS::"))
        {
            return Some(FileKind::CloudFormation);
        }
        if name.ends_with(".json") && head.contains("\"Statement\"") {
            return Some(FileKind::PolicyJson);
        }
        if yamlish && head.contains("jobs:") && (head.contains("runs-on") || head.contains("uses:"))
        {
            return Some(FileKind::GithubWorkflow);
        }
        return None;
    }
    let lower = head.to_ascii_lowercase();
    if (p.contains(".aws/")
        || name == "credentials"
        || name == "config"
        || lower.contains("[default]")
        || lower.contains("[profile "))
        && lower.contains("aws_access_key_id")
    {
        return Some(FileKind::AwsConfig);
    }
    None
}

pub(crate) fn make(
    rule: &RuleInfo,
    path: &str,
    line: usize,
    col: usize,
    message: String,
) -> Finding {
    let fp = fingerprint(format!("{}\0{}\0{}", rule.id, path, message).as_bytes());
    Finding {
        rule: rule.id.to_string(),
        severity: rule.severity,
        confidence: None,
        path: path.to_string(),
        line: line.max(1),
        column: col.max(1),
        message,
        why: Some(rule.why.to_string()),
        fix: Some(rule.fix.to_string()),
        commit: None,
        commits: Vec::new(),
        redacted: None,
        fingerprint: fp,
        access_key_id: None,
        account_id: None,
        example: false,
    }
}

fn rule(id: &str) -> &'static RuleInfo {
    // Every id used below is in rules::ALL (checked by a test).
    rules::info(id).unwrap_or(&rules::ALL[rules::ALL.len() - 1])
}

fn parse_error(path: &str, msg: &str) -> Finding {
    make(
        rule(rules::PARSE_ERROR),
        path,
        1,
        1,
        format!("not checked: {msg}"),
    )
}

/// Lints one file's content; `path` is used for classification and locations.
#[must_use]
pub fn lint_content(path: &str, content: &str) -> Vec<Finding> {
    let mut f = lint_unsorted(path, content);
    sort_findings(&mut f);
    f
}

fn lint_unsorted(path: &str, content: &str) -> Vec<Finding> {
    match classify(path, content) {
        Some(FileKind::GithubWorkflow) => lint_github_workflow(path, content),
        Some(FileKind::GitlabCi) => lint_gitlab_ci(path, content),
        Some(FileKind::AwsConfig) => lint_aws_config(path, content),
        Some(FileKind::PolicyJson | FileKind::CloudFormation | FileKind::Terraform) => {
            policy::lint_policies(path, content)
        }
        None => Vec::new(),
    }
}

fn is_static_key_var(k: &str) -> bool {
    KEY_VARS.contains(&k)
}

fn check_env(path: &str, env: Option<&Node>, out: &mut Vec<Finding>) {
    let Some(env) = env else { return };
    for (k, v) in env.entries() {
        if let Some(name) = k.as_str().filter(|k| is_static_key_var(k)) {
            // Dummy values (LocalStack's `test`) and keys an earlier step output (temporary
            // ones) are not permanent keys.
            let Some(src) = v.as_str().and_then(static_source) else {
                continue;
            };
            out.push(make(
                rule(rules::GHA_STATIC_ENV),
                path,
                k.line(),
                k.col() + 1,
                format!("{name} is set from {src} in `env`"),
            ));
        }
    }
}

/// Where a static key given to a step comes from, judged from the start of its value; `None`
/// for anything else (a previous step's output, a command substitution: temporary keys).
pub(crate) fn static_source(value: &str) -> Option<&'static str> {
    let v = value.trim_start_matches(['"', '\'', ' ']);
    let expr = v
        .strip_prefix("${{")
        .map(|e| e.trim_start().to_ascii_lowercase());
    match expr {
        Some(e) if e.starts_with("secrets.") => Some("a repository secret"),
        Some(e) if e.starts_with("vars.") => Some("a repository variable"),
        Some(_) => None,
        None if v.starts_with("AKIA") => Some("a literal key"),
        None if v.len() >= 40 && crate::detect::looks_like_secret(&v.as_bytes()[..40]) => {
            Some("a literal secret")
        }
        None => None,
    }
}

/// Static key inputs of actions other than configure-aws-credentials (deploy actions that take
/// `aws_access_key_id`/`aws-secret-access-key` inputs), and keys a job passes to the reusable
/// workflow it calls.
fn check_other_action(
    path: &str,
    job_name: &str,
    uses: &str,
    with: Option<&Node>,
    out: &mut Vec<Finding>,
) {
    for (k, v) in with.map(Node::entries).unwrap_or_default() {
        let Some(name) = k.as_str() else { continue };
        let norm = name.to_ascii_lowercase().replace('-', "_");
        if norm != "aws_access_key_id" && norm != "aws_secret_access_key" {
            continue;
        }
        if let Some(src) = v.as_str().and_then(static_source) {
            out.push(make(
                rule(rules::GHA_STATIC_ENV),
                path,
                k.line(),
                k.col() + 1,
                format!("job `{job_name}`: {uses} is given `{name}` from {src}"),
            ));
        }
    }
}

/// `run` scripts that set a static key: `AWS_ACCESS_KEY_ID=…` (export or prefix) or
/// `aws configure set aws_secret_access_key …`.
fn check_run(path: &str, job_name: &str, run: Option<&Node>, out: &mut Vec<Finding>) {
    let Some(script) = run.and_then(Node::as_str) else {
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, sep) in [
        ("AWS_ACCESS_KEY_ID", "="),
        ("AWS_SECRET_ACCESS_KEY", "="),
        ("aws_access_key_id", " "),
        ("aws_secret_access_key", " "),
    ] {
        let needle = format!("{name}{sep}");
        for (at, _) in script.match_indices(&needle) {
            if sep == " " && !script[..at].trim_end().ends_with("aws configure set") {
                continue;
            }
            let Some(src) = static_source(&script[at + needle.len()..]) else {
                continue;
            };
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let node = run.map_or((1, 0), |r| (r.line(), r.col()));
            out.push(make(
                rule(rules::GHA_STATIC_ENV),
                path,
                node.0,
                node.1 + 1,
                format!("job `{job_name}`: a `run` script sets {name} from {src}"),
            ));
        }
    }
}

/// Whether a workflow's `on` (a name, a list of names or a map) includes `event`.
fn triggered_by(on: Option<&Node>, event: &str) -> bool {
    match on {
        Some(n @ Node::Scalar { .. }) => n.as_str() == Some(event),
        Some(n @ Node::Seq { .. }) => n.items().iter().any(|i| i.as_str() == Some(event)),
        Some(n) => n.entry(event).is_some(),
        None => false,
    }
}

/// The first node through which a job gets AWS credentials: a static key in the workflow's,
/// the job's or a step's `env`, or a configure-aws-credentials step.
fn aws_credentials_enter<'a>(root: &'a Node, job: &'a Node) -> Option<&'a Node> {
    let static_key = |env: Option<&'a Node>| {
        env.map(Node::entries)
            .unwrap_or_default()
            .iter()
            .find(|(k, v)| {
                k.as_str().is_some_and(is_static_key_var)
                    && v.as_str().and_then(static_source).is_some()
            })
            .map(|(k, _)| k)
    };
    static_key(root.get("env"))
        .or_else(|| static_key(job.get("env")))
        .or_else(|| {
            job.get("steps")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .find_map(|step| {
                    static_key(step.get("env")).or_else(|| {
                        step.entry("uses")
                            .filter(|(_, u)| {
                                u.as_str()
                                    .is_some_and(|u| u.starts_with(CONFIGURE_AWS_ACTION))
                            })
                            .map(|(k, _)| k)
                    })
                })
        })
}

fn grants_id_token(perms: Option<&Node>) -> Option<bool> {
    let p = perms?;
    if let Some(s) = p.as_str() {
        return Some(s == "write-all");
    }
    Some(p.get("id-token").and_then(Node::as_str) == Some("write"))
}

/// The rules for a job's (or a composite action's) steps. `id_token` is whether the job grants
/// `id-token: write`; `None` for a composite action, whose caller grants it.
fn lint_steps(
    path: &str,
    job_name: &str,
    steps: &[Node],
    id_token: Option<Option<bool>>,
    out: &mut Vec<Finding>,
) {
    for step in steps {
        check_env(path, step.get("env"), out);
        check_run(path, job_name, step.get("run"), out);
        let Some((uses_k, uses)) = step.entry("uses") else {
            continue;
        };
        let Some(uses) = uses.as_str() else { continue };
        if !uses.starts_with(CONFIGURE_AWS_ACTION) {
            check_other_action(path, job_name, uses, step.get("with"), out);
            continue;
        }
        let with = step.get("with");
        let mut static_keys = false;
        if let Some(with) = with {
            for (k, v) in with.entries() {
                match k.as_str() {
                    Some(n @ ("aws-access-key-id" | "aws-secret-access-key")) => {
                        static_keys = true;
                        out.push(make(
                            rule(rules::GHA_ACTION_KEYS),
                            path,
                            k.line(),
                            k.col() + 1,
                            format!("job `{job_name}`: {CONFIGURE_AWS_ACTION} is given `{n}`"),
                        ));
                    }
                    Some("role-duration-seconds") => {
                        let secs = v.as_str().and_then(|s| s.trim().parse::<u64>().ok());
                        if secs.is_some_and(|s| s > 3600) {
                            out.push(make(rule(rules::GHA_LONG_DURATION), path, k.line(), k.col() + 1, format!("job `{job_name}`: role-duration-seconds is {} (more than 3600)", v.as_str().unwrap_or(""))));
                        }
                    }
                    _ => {}
                }
            }
        }
        let oidc = with.and_then(|w| w.get("role-to-assume")).is_some() && !static_keys;
        if oidc && id_token.is_some_and(|granted| granted != Some(true)) {
            out.push(make(
                rule(rules::GHA_NO_ID_TOKEN),
                path,
                uses_k.line(),
                uses_k.col() + 1,
                format!(
                    "job `{job_name}` assumes a role with OIDC but does not grant `id-token: write`"
                ),
            ));
        }
    }
}

/// GitHub Actions workflow rules.
#[must_use]
pub fn lint_github_workflow(path: &str, content: &str) -> Vec<Finding> {
    let docs = match yaml::parse(content) {
        Ok(d) => d,
        Err(e) => return vec![parse_error(path, &e.to_string())],
    };
    let mut out = Vec::new();
    for root in &docs {
        check_env(path, root.get("env"), &mut out);
        let pr_target = triggered_by(root.get("on"), "pull_request_target");
        let top_perms = root.get("permissions");
        // A composite action (action.yml): its steps run inside the calling job.
        if let Some(steps) = root.get("runs").and_then(|r| r.get("steps")) {
            lint_steps(path, "(composite action)", steps.items(), None, &mut out);
        }
        let Some(jobs) = root.get("jobs") else {
            continue;
        };
        for (job_key, job) in jobs.entries() {
            let job_name = job_key.as_str().unwrap_or("?");
            if pr_target && let Some(at) = aws_credentials_enter(root, job) {
                out.push(make(
                    rule(rules::GHA_PR_TARGET),
                    path,
                    at.line(),
                    at.col() + 1,
                    format!("job `{job_name}` gets AWS credentials in a workflow triggered by pull_request_target"),
                ));
            }
            check_env(path, job.get("env"), &mut out);
            // The job's container and service containers get their own env.
            check_env(
                path,
                job.get("container").and_then(|c| c.get("env")),
                &mut out,
            );
            for (_, service) in job.get("services").map(Node::entries).unwrap_or_default() {
                check_env(path, service.get("env"), &mut out);
            }
            // A job calling a reusable workflow passes keys in `secrets:` or `with:`.
            if let Some(called) = job.get("uses").and_then(Node::as_str) {
                check_other_action(path, job_name, called, job.get("secrets"), &mut out);
                check_other_action(path, job_name, called, job.get("with"), &mut out);
            }
            let job_perms = job.get("permissions");
            let effective = if job_perms.is_some() {
                grants_id_token(job_perms)
            } else {
                grants_id_token(top_perms)
            };
            let steps = job.get("steps").map(Node::items).unwrap_or_default();
            lint_steps(path, job_name, steps, Some(effective), &mut out);
        }
    }
    out
}

/// GitLab CI rules.
#[must_use]
pub fn lint_gitlab_ci(path: &str, content: &str) -> Vec<Finding> {
    let docs = match yaml::parse(content) {
        Ok(d) => d,
        Err(e) => return vec![parse_error(path, &e.to_string())],
    };
    let mut out = Vec::new();
    for root in &docs {
        let check_vars = |vars: Option<&Node>, scope: &str, out: &mut Vec<Finding>| {
            for (k, _) in vars.map(Node::entries).unwrap_or_default() {
                if let Some(n) = k.as_str().filter(|k| is_static_key_var(k)) {
                    out.push(make(
                        rule(rules::GITLAB_STATIC),
                        path,
                        k.line(),
                        k.col() + 1,
                        format!("{scope}: `{n}` in variables"),
                    ));
                }
            }
        };
        check_vars(root.get("variables"), "global", &mut out);
        for (jk, job) in root.entries() {
            let name = jk.as_str().unwrap_or("?");
            if !matches!(job, Node::Map { .. }) {
                continue;
            }
            check_vars(job.get("variables"), &format!("job `{name}`"), &mut out);
            for (tk, tv) in job.get("id_tokens").map(Node::entries).unwrap_or_default() {
                let aud = tv.get("aud");
                let empty = match aud {
                    None => true,
                    Some(a) => {
                        a.is_null() || (matches!(a, Node::Seq { .. }) && a.items().is_empty())
                    }
                };
                if empty {
                    out.push(make(
                        rule(rules::GITLAB_NO_AUD),
                        path,
                        tk.line(),
                        tk.col() + 1,
                        format!(
                            "job `{name}`: id_tokens `{}` has no `aud`",
                            tk.as_str().unwrap_or("?")
                        ),
                    ));
                }
            }
            for key in ["script", "before_script", "after_script"] {
                // A list of commands, or one string.
                let lines: Vec<&Node> = match job.get(key) {
                    Some(n @ Node::Scalar { .. }) => vec![n],
                    Some(n) => n.items().iter().collect(),
                    None => Vec::new(),
                };
                for item in lines {
                    if let Some(s) = item.as_str()
                        && KEY_VARS.iter().any(|v| s.contains(&format!("{v}=")))
                    {
                        out.push(make(
                            rule(rules::GITLAB_STATIC),
                            path,
                            item.line(),
                            item.col() + 1,
                            format!("job `{name}`: {key} exports a static AWS key variable"),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// AWS credentials/config file rules.
#[must_use]
pub fn lint_aws_config(path: &str, content: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut section = String::new();
    for (i, line) in content.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            section = t[1..t.len() - 1].trim().to_string();
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        if (k == "aws_access_key_id" || k == "aws_secret_access_key") && !v.trim().is_empty() {
            let col = line.len() - line.trim_start().len() + 1;
            out.push(make(
                rule(rules::AWS_CONFIG_STATIC),
                path,
                i + 1,
                col,
                format!("profile [{section}] stores a static `{k}`; use an sso_session profile"),
            ));
        }
    }
    out
}

/// Lints files and directories (recursively, with the scan skip rules).
///
/// # Errors
/// [`ScanError::Io`] when a given path does not exist.
pub fn lint_paths(paths: &[PathBuf], cfg: &ScanConfig) -> Result<Vec<Finding>, ScanError> {
    let mut out = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|e| ScanError::Io {
            path: root.display().to_string(),
            source: e,
        })?;
        let files: Vec<PathBuf> = if meta.is_dir() {
            walker(root, cfg)?
                .build()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
                .map(ignore::DirEntry::into_path)
                .collect()
        } else {
            vec![root.clone()]
        };
        for f in files {
            let Ok(Some(bytes)) = crate::scan::read_bounded(&f, MAX_LINT_BYTES) else {
                continue;
            };
            let Ok(content) = String::from_utf8(bytes) else {
                continue;
            };
            let rel = if meta.is_dir() {
                f.strip_prefix(root).unwrap_or(&f)
            } else {
                f.as_path()
            };
            out.extend(lint_content(&display(rel), &content));
        }
    }
    sort_findings(&mut out);
    Ok(out)
}

fn display(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// Fuzzing entry point: lints `content` as the file kind chosen by `kind` (modulo 7: workflow,
/// GitLab CI, AWS credentials, policy JSON, CloudFormation YAML, Terraform, other).
#[must_use]
pub fn lint_fuzz(kind: u8, content: &str) -> Vec<Finding> {
    let path = match kind % 7 {
        0 => ".github/workflows/f.yml",
        1 => ".gitlab-ci.yml",
        2 => ".aws/credentials",
        3 => "policy.json",
        4 => "template.yaml",
        5 => "main.tf",
        _ => "other.txt",
    };
    lint_content(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_used_exists() {
        for id in [
            rules::GHA_STATIC_ENV,
            rules::GHA_ACTION_KEYS,
            rules::GHA_NO_ID_TOKEN,
            rules::GHA_LONG_DURATION,
            rules::GHA_PR_TARGET,
            rules::GITLAB_STATIC,
            rules::GITLAB_NO_AUD,
            rules::AWS_CONFIG_STATIC,
            rules::IAM_LONG_SESSION,
            rules::IAC_ACCESS_KEY,
            rules::PARSE_ERROR,
        ] {
            assert_eq!(rule(id).id, id);
        }
    }
}
