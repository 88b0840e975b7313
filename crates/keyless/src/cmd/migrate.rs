//! `keyless migrate` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {}

/// Runs `keyless migrate`.
pub fn run(_args: MigrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless migrate is not built yet")
}
