//! `keyless report credentials`: the credential report, CSV in the spirit of IAM's.

use std::process::ExitCode;

use keyless_audit::query::{Active, credential_report};

use super::audit::{FilterArgs, Where, reader_verdict};
use super::sessions::Revocations;

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
    // A revoked session is refused everywhere although it has not expired: like a deactivated
    // access key in IAM's report, its row says access_key_active false.
    let revocations = Revocations::load(&place)?;
    let rows: Vec<_> = sessions
        .iter()
        .map(|s| {
            let active = match &revocations {
                Some(r) => Active::from(r.ending(s).is_none()),
                None => Active::Unknown,
            };
            (s, active)
        })
        .collect();
    print!("{}", credential_report(&rows));
    let revoked = rows.iter().filter(|(_, a)| *a == Active::No).count();
    eprintln!(
        "0 long-term credentials (keyless issues none); {} live session(s), {revoked} of them revoked",
        sessions.len()
    );
    if revocations.is_none() {
        eprintln!(
            "no store in the data dir: revocations not checked (access_key_active no_information)"
        );
    }
    Ok(reader_verdict(&report, &place))
}
