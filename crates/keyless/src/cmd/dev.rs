//! `keyless dev` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {}

/// Runs `keyless dev`.
pub fn run(_args: DevArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless dev is not built yet")
}
