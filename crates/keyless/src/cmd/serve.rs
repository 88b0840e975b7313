//! `keyless serve` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs `keyless serve`.
pub fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless serve is not built yet")
}
