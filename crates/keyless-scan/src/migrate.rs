//! `migrate github-actions`: rewrites a workflow from static AWS keys to OIDC with targeted
//! line edits guided by the parsed YAML (comments and formatting elsewhere are kept), then
//! re-parses the result to check it. Running it again changes nothing.

use serde_json::json;

use crate::lint::CONFIGURE_AWS_ACTION;
use crate::yaml::{self, Node};

/// Options of the migration.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// ARN of the role to assume (`arn:aws:iam::<account>:role/<name>`).
    pub role_arn: String,
    /// OIDC audience (`sts.amazonaws.com` by default).
    pub audience: String,
    /// `owner/repo` the trust policy is scoped to.
    pub repository: String,
    /// Branch the trust policy allows (ignored when `environment` is set).
    pub branch: String,
    /// GitHub environment the trust policy allows instead of a branch.
    pub environment: Option<String>,
    /// Region used when a configure-aws-credentials step has to be added.
    pub region: String,
    /// Session length set on the steps.
    pub duration_seconds: u32,
}

/// Result of a migration.
#[derive(Debug, Clone)]
pub struct MigrateResult {
    /// The rewritten workflow.
    pub workflow: String,
    /// Whether anything changed.
    pub changed: bool,
    /// The matching trust policy (JSON).
    pub trust_policy: String,
    /// keyless config snippet (TOML) declaring the provider and role.
    pub keyless_config: String,
}

/// Migration errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MigrateError {
    /// Workflow YAML could not be parsed.
    #[error("the workflow is not valid YAML: {0}")]
    Yaml(String),
    /// Not a GitHub Actions workflow.
    #[error("not a GitHub Actions workflow: no `jobs` mapping")]
    NotAWorkflow,
    /// The role ARN is not `arn:<partition>:iam::<12 digits>:role/<name>`.
    #[error("invalid --role-arn {0:?}: expected arn:aws:iam::123456789012:role/NAME")]
    RoleArn(String),
    /// Repository is not `owner/name`.
    #[error("invalid repository {0:?}: expected OWNER/NAME")]
    Repository(String),
    /// Branch, environment or audience contain characters that cannot be used.
    #[error("invalid {0} {1:?}: use letters, digits and -_./")]
    Name(&'static str, String),
    /// A construct the text editor will not rewrite safely.
    #[error("line {0}: {1}; rewrite it in block style and run migrate again")]
    Unsupported(usize, String),
    /// A migrated job's OIDC subject would not match the trust policy being written.
    #[error("job `{0}`: {1}")]
    Subject(String, String),
    /// The result did not parse again (a bug; the file is left unchanged).
    #[error("the rewritten workflow does not parse ({0}); the file was left unchanged")]
    Reparse(String),
}

fn check_name(what: &'static str, v: &str) -> Result<(), MigrateError> {
    if v.is_empty()
        || v.len() > 255
        || !v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./:".contains(&c))
    {
        return Err(MigrateError::Name(what, v.to_string()));
    }
    Ok(())
}

/// Parses `arn:<partition>:iam::<account>:role/<path/name>` into (partition, account, name,
/// path), the path in IAM's form (`/` or `/ci/`).
fn parse_role_arn(arn: &str) -> Result<(String, String, String, String), MigrateError> {
    let bad = || MigrateError::RoleArn(arn.to_string());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[3].is_empty() {
        return Err(bad());
    }
    let (partition, account, res) = (parts[1], parts[4], parts[5]);
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        || account.len() != 12
        || !account.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let name = res.strip_prefix("role/").ok_or_else(bad)?;
    let (dirs, short) = name.rsplit_once('/').unwrap_or(("", name));
    if short.is_empty()
        || short.len() > 64
        || !short
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
    {
        return Err(bad());
    }
    // The path goes into the config snippet: IAM's path characters without quotes.
    let path = if dirs.is_empty() {
        "/".to_string()
    } else {
        format!("/{dirs}/")
    };
    if path.len() > 512
        || path.contains("//")
        || !path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/+=,.@_-".contains(&c))
    {
        return Err(bad());
    }
    Ok((
        partition.to_string(),
        account.to_string(),
        short.to_string(),
        path,
    ))
}

#[derive(Debug)]
enum Edit {
    /// Delete lines [from, to) (0-based).
    Delete(usize, usize),
    /// Insert lines before line index.
    Insert(usize, Vec<String>),
    /// Replace one line.
    Replace(usize, String),
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// End (exclusive, 0-based) of the block that starts at 0-based `start` with key column `col`:
/// following lines that are blank, comments more indented, or indented deeper than `col`.
fn block_end(lines: &[&str], start: usize, col: usize) -> usize {
    let mut e = start + 1;
    while e < lines.len() {
        let l = lines[e];
        let t = l.trim_start();
        if t.is_empty() || indent_of(l) > col {
            e += 1;
        } else {
            break;
        }
    }
    // Do not swallow trailing blank lines.
    while e > start + 1 && lines[e - 1].trim().is_empty() {
        e -= 1;
    }
    e
}

const STATIC_INPUTS: &[&str] = &[
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws-session-token",
];
const STATIC_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

fn is_block_map(n: &Node, key: &Node) -> bool {
    matches!(n, Node::Map { .. }) && n.line() > key.line()
}

/// Removes static key entries from an `env` map; deletes the `env:` key when nothing is left.
fn strip_env(
    lines: &[&str],
    env_key: &Node,
    env: &Node,
    edits: &mut Vec<Edit>,
) -> Result<bool, MigrateError> {
    let hits: Vec<&(Node, Node)> = env
        .entries()
        .iter()
        .filter(|(k, v)| {
            k.as_str().is_some_and(|k| STATIC_ENV.contains(&k))
                && v.as_str().and_then(crate::lint::static_source).is_some()
        })
        .collect();
    if hits.is_empty() {
        return Ok(false);
    }
    if !is_block_map(env, env_key) {
        return Err(MigrateError::Unsupported(
            env_key.line(),
            "flow-style `env` holding AWS keys".into(),
        ));
    }
    if hits.len() == env.entries().len() {
        let l = env_key.line() - 1;
        edits.push(Edit::Delete(l, block_end(lines, l, env_key.col())));
    } else {
        for (k, _) in hits {
            let l = k.line() - 1;
            edits.push(Edit::Delete(l, block_end(lines, l, k.col())));
        }
    }
    Ok(true)
}

/// Column of the first key of a block mapping (its indentation).
fn key_col(map: &Node) -> usize {
    map.entries().first().map_or(map.col(), |(k, _)| k.col())
}

fn grants(perms: Option<&Node>) -> bool {
    match perms {
        Some(p) => {
            p.as_str() == Some("write-all")
                || p.get("id-token").and_then(Node::as_str) == Some("write")
        }
        None => false,
    }
}

/// Makes `permissions` (a block map) grant `id-token: write`.
fn ensure_id_token(
    lines: &[&str],
    key: &Node,
    perms: &Node,
    edits: &mut Vec<Edit>,
) -> Result<(), MigrateError> {
    if !is_block_map(perms, key) {
        return Err(MigrateError::Unsupported(
            key.line(),
            "flow-style `permissions`".into(),
        ));
    }
    if let Some((k, _)) = perms.entry("id-token") {
        let l = k.line() - 1;
        edits.push(Edit::Replace(
            l,
            format!("{}id-token: write", " ".repeat(k.col())),
        ));
    } else {
        let last = &perms.entries()[perms.entries().len() - 1].0;
        let at = block_end(lines, last.line() - 1, last.col());
        edits.push(Edit::Insert(
            at,
            vec![format!("{}id-token: write", " ".repeat(last.col()))],
        ));
    }
    Ok(())
}

/// Checks that the `sub` of the OIDC token a migrated job gets is the one the trust policy
/// allows. GitHub makes it `repo:OWNER/REPO:environment:NAME` for a job with an `environment`
/// and `repo:OWNER/REPO:ref:REF` otherwise; a mismatch would refuse every run.
fn check_subject(job_name: &str, job: &Node, opts: &MigrateOptions) -> Result<(), MigrateError> {
    let env = job
        .get("environment")
        .and_then(|e| e.as_str().or_else(|| e.get("name").and_then(Node::as_str)))
        .filter(|e| !e.is_empty());
    let bad = |why: String| Err(MigrateError::Subject(job_name.to_string(), why));
    let repo = &opts.repository;
    match (env, opts.environment.as_deref()) {
        (Some(e), _) if e.contains("${{") => bad(format!(
            "its environment is the expression `{e}`, so the OIDC token's sub is only known at run time; write the trust policy by hand"
        )),
        (Some(e), want) if want != Some(e) => bad(format!(
            "it runs in environment `{e}`, so its OIDC token's sub is repo:{repo}:environment:{e}; pass --environment {e}"
        )),
        (None, Some(want)) => bad(format!(
            "it runs in no environment, so its OIDC token's sub is repo:{repo}:ref:refs/heads/<branch>, not environment `{want}`; add `environment: {want}` to the job or leave out --environment"
        )),
        _ => Ok(()),
    }
}

/// Rewrites `src` (a workflow) to assume `opts.role_arn` with OIDC.
///
/// # Errors
/// [`MigrateError`] for invalid options, YAML that is not a workflow, flow-style constructs
/// holding the keys, or (never expected) output that does not re-parse.
pub fn migrate_github_actions(
    src: &str,
    opts: &MigrateOptions,
) -> Result<MigrateResult, MigrateError> {
    let (partition, account, role_name, role_path) = parse_role_arn(&opts.role_arn)?;
    let repo_ok = opts
        .repository
        .split_once('/')
        .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'));
    if !repo_ok {
        return Err(MigrateError::Repository(opts.repository.clone()));
    }
    check_name("repository", &opts.repository)?;
    check_name("branch", &opts.branch)?;
    check_name("audience", &opts.audience)?;
    check_name("region", &opts.region)?;
    if let Some(e) = &opts.environment {
        check_name("environment", e)?;
    }
    let docs = yaml::parse(src).map_err(|e| MigrateError::Yaml(e.to_string()))?;
    let root = docs.first().ok_or(MigrateError::NotAWorkflow)?;
    let (jobs_key, jobs) = root.entry("jobs").ok_or(MigrateError::NotAWorkflow)?;
    if !matches!(jobs, Node::Map { .. }) {
        return Err(MigrateError::NotAWorkflow);
    }
    let lines: Vec<&str> = src.lines().collect();
    let mut edits = Vec::new();
    let top_env_keys = match root.entry("env") {
        Some((k, v)) => strip_env(&lines, k, v, &mut edits)?,
        None => false,
    };
    let top_perms = root.entry("permissions");
    let mut need_top_perm = false;

    for (job_key, job) in jobs.entries() {
        let mut uses_aws = top_env_keys;
        if let Some((k, v)) = job.entry("env") {
            uses_aws |= strip_env(&lines, k, v, &mut edits)?;
        }
        let steps = job.get("steps");
        let mut has_action = false;
        for step in steps.map(Node::items).unwrap_or_default() {
            if let Some((k, v)) = step.entry("env") {
                uses_aws |= strip_env(&lines, k, v, &mut edits)?;
            }
            let Some(uses) = step.get("uses").and_then(Node::as_str) else {
                continue;
            };
            if !uses.starts_with(CONFIGURE_AWS_ACTION) {
                continue;
            }
            has_action = true;
            uses_aws = true;
            let Some((with_key, with)) = step.entry("with") else {
                return Err(MigrateError::Unsupported(
                    step.line(),
                    "configure-aws-credentials step without `with`".into(),
                ));
            };
            if !is_block_map(with, with_key) {
                return Err(MigrateError::Unsupported(
                    with_key.line(),
                    "flow-style `with`".into(),
                ));
            }
            let ind = " ".repeat(key_col(with));
            let mut removed_first: Option<usize> = None;
            for (k, _) in with.entries() {
                if k.as_str().is_some_and(|k| STATIC_INPUTS.contains(&k)) {
                    let l = k.line() - 1;
                    removed_first = Some(removed_first.map_or(l, |f: usize| f.min(l)));
                    edits.push(Edit::Delete(l, block_end(&lines, l, k.col())));
                }
            }
            let migrated = removed_first.is_some();
            let mut add = Vec::new();
            match with.entry("role-to-assume") {
                None => add.push(format!("{ind}role-to-assume: {}", opts.role_arn)),
                Some((k, _)) if migrated => edits.push(Edit::Replace(
                    k.line() - 1,
                    format!("{ind}role-to-assume: {}", opts.role_arn),
                )),
                Some(_) => {}
            }
            match with.entry("role-duration-seconds") {
                None => add.push(format!(
                    "{ind}role-duration-seconds: {}",
                    opts.duration_seconds
                )),
                Some((k, v)) => {
                    let long = v
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_none_or(|s| s > 3600);
                    if migrated || long {
                        edits.push(Edit::Replace(
                            k.line() - 1,
                            format!("{ind}role-duration-seconds: {}", opts.duration_seconds),
                        ));
                    }
                }
            }
            if opts.audience != "sts.amazonaws.com" && with.get("audience").is_none() {
                add.push(format!("{ind}audience: {}", opts.audience));
            }
            if !add.is_empty() {
                let at = removed_first.unwrap_or_else(|| {
                    let last = &with.entries()[with.entries().len() - 1].0;
                    block_end(&lines, last.line() - 1, last.col())
                });
                edits.push(Edit::Insert(at, add));
            }
        }
        if uses_aws && !has_action {
            // Keys came from env only: add a step that assumes the role first.
            let Some(first) = steps.and_then(|s| s.items().first()) else {
                return Err(MigrateError::Unsupported(
                    job_key.line(),
                    "job with AWS keys in env but no steps".into(),
                ));
            };
            let dash = " ".repeat(key_col(first).saturating_sub(2));
            let inner = " ".repeat(key_col(first));
            let mut step = vec![
                format!("{dash}- name: Configure AWS credentials (OIDC)"),
                format!("{inner}uses: {CONFIGURE_AWS_ACTION}@v4"),
                format!("{inner}with:"),
                format!("{inner}  role-to-assume: {}", opts.role_arn),
                format!("{inner}  role-duration-seconds: {}", opts.duration_seconds),
                format!("{inner}  aws-region: {}", opts.region),
            ];
            if opts.audience != "sts.amazonaws.com" {
                step.push(format!("{inner}  audience: {}", opts.audience));
            }
            edits.push(Edit::Insert(
                first
                    .entries()
                    .first()
                    .map_or(first.line(), |(k, _)| k.line())
                    - 1,
                step,
            ));
        }
        if !uses_aws {
            continue;
        }
        check_subject(job_key.as_str().unwrap_or("?"), job, opts)?;
        match job.entry("permissions") {
            Some((k, p)) => {
                if !grants(Some(p)) {
                    if p.as_str().is_some() {
                        let ind = " ".repeat(k.col());
                        edits.push(Edit::Replace(k.line() - 1, format!("{ind}permissions:")));
                        edits.push(Edit::Insert(
                            k.line(),
                            vec![
                                format!("{ind}  contents: read"),
                                format!("{ind}  id-token: write"),
                            ],
                        ));
                    } else {
                        ensure_id_token(&lines, k, p, &mut edits)?;
                    }
                }
            }
            None => match top_perms {
                Some((_, p)) if grants(Some(p)) => {}
                Some((k, p)) if matches!(p, Node::Map { .. }) => {
                    if !need_top_perm {
                        ensure_id_token(&lines, k, p, &mut edits)?;
                    }
                    need_top_perm = true;
                }
                _ => {
                    // No usable workflow-level map: give this job its own permissions block.
                    let Some((first_k, _)) = job.entries().first() else {
                        continue;
                    };
                    let ind = " ".repeat(first_k.col());
                    edits.push(Edit::Insert(
                        first_k.line() - 1,
                        vec![
                            format!("{ind}permissions:"),
                            format!("{ind}  contents: read"),
                            format!("{ind}  id-token: write"),
                        ],
                    ));
                }
            },
        }
    }
    let _ = jobs_key;

    let changed = !edits.is_empty();
    let workflow = if changed {
        apply(src, &lines, edits)
    } else {
        src.to_string()
    };
    let reparsed = yaml::parse(&workflow).map_err(|e| MigrateError::Reparse(e.to_string()))?;
    if reparsed.first().and_then(|r| r.get("jobs")).is_none() {
        return Err(MigrateError::Reparse("no jobs".into()));
    }

    let host = "token.actions.githubusercontent.com";
    let sub = match &opts.environment {
        Some(e) => format!("repo:{}:environment:{e}", opts.repository),
        None => format!("repo:{}:ref:refs/heads/{}", opts.repository, opts.branch),
    };
    let provider_arn = format!("arn:{partition}:iam::{account}:oidc-provider/{host}");
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                format!("{host}:aud"): opts.audience,
                format!("{host}:sub"): sub,
            }}
        }]
    });
    let trust_policy = serde_json::to_string_pretty(&trust).unwrap_or_default();
    let compact = serde_json::to_string(&trust).unwrap_or_default();
    let keyless_config = format!(
        "# keyless config for {repo} ({scope}); generated by `keyless migrate github-actions`\n\
         [[providers]]\naccount = \"{account}\"\nurl = \"https://{host}\"\nclient_ids = [\"{aud}\"]\n\n\
         [[roles]]\naccount = \"{account}\"\nname = \"{role_name}\"\n{path_line}max_session_duration = 3600\n\
         trust_policy = '''{compact}'''\n",
        repo = opts.repository,
        scope = opts.environment.as_ref().map_or_else(
            || format!("branch {}", opts.branch),
            |e| format!("environment {e}")
        ),
        aud = opts.audience,
        path_line = if role_path == "/" {
            String::new()
        } else {
            format!("path = \"{role_path}\"\n")
        },
    );
    Ok(MigrateResult {
        workflow,
        changed,
        trust_policy: trust_policy + "\n",
        keyless_config,
    })
}

fn apply(src: &str, lines: &[&str], edits: Vec<Edit>) -> String {
    let n = lines.len();
    let mut deleted = vec![false; n];
    let mut replaced: Vec<Option<String>> = vec![None; n];
    let mut inserts: Vec<Vec<String>> = vec![Vec::new(); n + 1];
    for e in edits {
        match e {
            Edit::Delete(a, b) => {
                for d in deleted.iter_mut().take(b.min(n)).skip(a) {
                    *d = true;
                }
            }
            Edit::Replace(l, s) => {
                if l < n {
                    replaced[l] = Some(s);
                }
            }
            Edit::Insert(l, mut v) => inserts[l.min(n)].append(&mut v),
        }
    }
    let mut out = String::with_capacity(src.len() + 256);
    for i in 0..=n {
        for s in &inserts[i] {
            out.push_str(s);
            out.push('\n');
        }
        if i == n {
            break;
        }
        if deleted[i] {
            continue;
        }
        match &replaced[i] {
            Some(r) => {
                // Keep a trailing comment of a replaced line.
                out.push_str(r);
                if let Some(c) = lines[i].find(" #") {
                    out.push_str(&lines[i][c..]);
                }
            }
            None => out.push_str(lines[i]),
        }
        out.push('\n');
    }
    if !src.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Fuzzing entry point: migrates `src` with fixed options. When it succeeds, the result must
/// parse, and migrating it again must change nothing (idempotence); returns whether it succeeded.
#[must_use]
pub fn migrate_fuzz(src: &str) -> bool {
    let opts = MigrateOptions {
        role_arn: "arn:aws:iam::123456789012:role/fuzz".into(),
        audience: "sts.amazonaws.com".into(),
        repository: "acme/app".into(),
        branch: "main".into(),
        environment: None,
        region: "us-east-1".into(),
        duration_seconds: 900,
    };
    match migrate_github_actions(src, &opts) {
        Ok(r) => match migrate_github_actions(&r.workflow, &opts) {
            Ok(again) => !again.changed || again.workflow == r.workflow,
            Err(_) => false,
        },
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_validation() {
        assert!(parse_role_arn("arn:aws:iam::123456789012:role/deploy").is_ok());
        let (_, _, name, path) =
            parse_role_arn("arn:aws:iam::123456789012:role/ci/deploy").unwrap();
        assert_eq!((name.as_str(), path.as_str()), ("deploy", "/ci/"));
        for bad in [
            "",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:s3:::b",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:evil:iam::123456789012:role/x",
        ] {
            assert_eq!(
                parse_role_arn(bad).unwrap_err(),
                MigrateError::RoleArn(bad.into()),
                "{bad}"
            );
        }
    }
}
