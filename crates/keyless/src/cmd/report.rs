//! `keyless report credentials`: the credential report, CSV in the spirit of IAM's.

use std::process::ExitCode;

use keyless_audit::query::credential_report;

use super::audit::{FilterArgs, Where, reader_verdict};

/// Arguments of `keyless report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReportCommand {
    /// CSV of every credential that works now: long-term credentials (keyless issues none, so
    /// there are no such rows) and the live sessions from the audit trail, verified as it is
    /// read (exit 1, with a warning on stderr, when it does not verify).
    Credentials {
        #[command(flatten)]
        place: Where,
    },
}

/// Runs `keyless report`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let ReportCommand::Credentials { place } = args.command;
    let (sessions, report) = super::sessions::live_sessions(&place, &FilterArgs::default())?;
    let refs: Vec<_> = sessions.iter().collect();
    print!("{}", credential_report(&refs));
    eprintln!(
        "0 long-term credentials (keyless issues none); {} live session(s)",
        sessions.len()
    );
    Ok(reader_verdict(&report, &place))
}
