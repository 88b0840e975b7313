//! `keyless scan` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {}

/// Runs `keyless scan`.
pub fn run(_args: ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless scan is not built yet")
}
