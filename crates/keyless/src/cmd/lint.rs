//! `keyless lint` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {}

/// Runs `keyless lint`.
pub fn run(_args: LintArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless lint is not built yet")
}
