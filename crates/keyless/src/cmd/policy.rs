//! `keyless policy` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {}

/// Runs `keyless policy`.
pub fn run(_args: PolicyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless policy is not built yet")
}
