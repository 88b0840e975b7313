//! `keyless keys` (being built this session).

use std::process::ExitCode;

/// Arguments of `keyless keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {}

/// Runs `keyless keys`.
pub fn run(_args: KeysArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keyless keys is not built yet")
}
