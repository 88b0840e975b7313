//! `keyless migrate`: rewrite CI workflows from static keys to OIDC.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use keyless_scan::migrate::{MigrateOptions, migrate_github_actions};

/// Arguments of `keyless migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Rewrite a GitHub Actions workflow to assume a role with OIDC.
    GithubActions(GhaArgs),
}

#[derive(Debug, clap::Args)]
struct GhaArgs {
    /// The workflow file (rewritten in place unless --dry-run).
    workflow: PathBuf,
    /// Role to assume: arn:aws:iam::ACCOUNT:role/NAME.
    #[arg(long)]
    role_arn: String,
    /// OIDC audience.
    #[arg(long, default_value = "sts.amazonaws.com")]
    audience: String,
    /// OWNER/REPO for the trust policy (default: from the `origin` remote).
    #[arg(long)]
    repository: Option<String>,
    /// Branch the trust policy allows.
    #[arg(long, default_value = "main")]
    branch: String,
    /// GitHub environment the trust policy allows (instead of a branch); it must be the
    /// `environment` of every migrated job, since that is what their OIDC tokens name.
    #[arg(long)]
    environment: Option<String>,
    /// Region for a configure-aws-credentials step that has to be added.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Where to write the trust policy JSON (default: <workflow-stem>.trust-policy.json in the current directory).
    #[arg(long)]
    policy_out: Option<PathBuf>,
    /// Where to write the keyless config snippet (default: <workflow-stem>.keyless.toml in the current directory).
    #[arg(long)]
    config_out: Option<PathBuf>,
    /// Print the rewritten workflow instead of writing it; write no files.
    #[arg(long)]
    dry_run: bool,
}

/// `owner/repo` from a GitHub remote URL (https or ssh).
fn repo_from_remote(url: &str) -> Option<String> {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let rest = u
        .split_once("github.com")
        .map(|(_, r)| r.trim_start_matches([':', '/']))?;
    let mut parts = rest.split('/');
    let (o, r) = (parts.next()?, parts.next()?);
    (!o.is_empty() && !r.is_empty()).then(|| format!("{o}/{r}"))
}

fn infer_repository(workflow: &Path) -> Option<String> {
    let dir = workflow
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    repo_from_remote(&String::from_utf8_lossy(&out.stdout))
}

/// Runs `keyless migrate`.
pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let Target::GithubActions(a) = args.target;
    let meta = std::fs::metadata(&a.workflow)
        .with_context(|| format!("cannot read {}", a.workflow.display()))?;
    if meta.len() > keyless_scan::yaml::MAX_YAML_BYTES as u64 {
        anyhow::bail!(
            "{} is larger than {} bytes",
            a.workflow.display(),
            keyless_scan::yaml::MAX_YAML_BYTES
        );
    }
    let src = std::fs::read_to_string(&a.workflow)
        .with_context(|| format!("cannot read {}", a.workflow.display()))?;
    let repository = match a
        .repository
        .clone()
        .or_else(|| infer_repository(&a.workflow))
    {
        Some(r) => r,
        None => anyhow::bail!("cannot tell the repository: pass --repository OWNER/REPO"),
    };
    let opts = MigrateOptions {
        role_arn: a.role_arn.clone(),
        audience: a.audience.clone(),
        repository,
        branch: a.branch.clone(),
        environment: a.environment.clone(),
        region: a.region.clone(),
        duration_seconds: 900,
    };
    let res = migrate_github_actions(&src, &opts)
        .with_context(|| format!("cannot migrate {}", a.workflow.display()))?;
    if a.dry_run {
        print!("{}", res.workflow);
        return Ok(ExitCode::SUCCESS);
    }
    let stem = a.workflow.file_stem().map_or_else(
        || "workflow".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let policy_out = a
        .policy_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{stem}.trust-policy.json")));
    let config_out = a
        .config_out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{stem}.keyless.toml")));
    if res.changed {
        std::fs::write(&a.workflow, &res.workflow)
            .with_context(|| format!("cannot write {}", a.workflow.display()))?;
    }
    std::fs::write(&policy_out, &res.trust_policy)
        .with_context(|| format!("cannot write {}", policy_out.display()))?;
    std::fs::write(&config_out, &res.keyless_config)
        .with_context(|| format!("cannot write {}", config_out.display()))?;
    eprintln!(
        "keyless migrate: {} {}; trust policy in {}, keyless config in {}",
        a.workflow.display(),
        if res.changed {
            "rewritten to OIDC"
        } else {
            "already uses OIDC (unchanged)"
        },
        policy_out.display(),
        config_out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::repo_from_remote;

    #[test]
    fn remotes_parse() {
        assert_eq!(
            repo_from_remote("git@github.com:acme/app.git").as_deref(),
            Some("acme/app")
        );
        assert_eq!(
            repo_from_remote("https://github.com/acme/app\n").as_deref(),
            Some("acme/app")
        );
        assert_eq!(repo_from_remote("https://gitlab.com/acme/app"), None);
    }
}
