//! `keyless keys`: manage the credential key ring.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

/// Arguments of `keyless keys`.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Add a key-ring version: new credentials use it, live ones keep working.
    Rotate(Where),
    /// List the key-ring versions.
    List(Where),
}

#[derive(Debug, clap::Args)]
struct Where {
    /// The server's config file (its data_dir holds the ring).
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// The data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl Where {
    fn ring_path(&self) -> anyhow::Result<PathBuf> {
        let dir = match (&self.config, &self.data_dir) {
            (Some(c), None) => keyless_server::config::load_for_tools(c)?.data_dir,
            (None, Some(d)) => d.clone(),
            _ => bail!("give --config FILE or --data-dir DIR"),
        };
        Ok(keyless_server::keyring_file::path_in(&dir))
    }
}

/// Runs `keyless keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let now = time::OffsetDateTime::now_utc();
    match args.command {
        KeysCommand::Rotate(w) => {
            let path = w.ring_path()?;
            let id = keyless_server::keyring_file::rotate(&path, now)?;
            println!(
                "key ring {}: version {id} added; new credentials use it, older versions still verify",
                path.display()
            );
        }
        KeysCommand::List(w) => {
            let ring = keyless_server::keyring_file::load(&w.ring_path()?)?;
            for (id, created) in ring.versions() {
                let marker = if id == ring.current_id() {
                    " (current)"
                } else {
                    ""
                };
                println!("{id}\t{}{marker}", keyless_core::sts::iso8601(created));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
