//! `keyless sigv4` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless sigv4`.
#[derive(Debug, clap::Args)]
pub struct Sigv4Args {}

/// Runs `keyless sigv4`.
pub fn run(_args: Sigv4Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless sigv4 is not built yet")
}
