//! `keyless sessions list`: the sessions alive now, reconstructed from the audit trail.

use std::process::ExitCode;

use keyless_audit::event::event_time;
use keyless_audit::files::for_each_event;
use keyless_audit::query::{Session, SessionInventory};
use serde_json::json;

use super::audit::{FilterArgs, Format, Where};

/// Arguments of `keyless sessions`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SessionsCommand {
    /// List live sessions: who, which role, issued, expires, last used (when a signed call or
    /// an authorize decision with the key was recorded). --since/--until bound the issue time.
    List {
        #[command(flatten)]
        place: Where,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output: `text` (a table) or `json` (one session per line).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// The live sessions of the log at `place`, filtered.
pub fn live_sessions(place: &Where, filter: &FilterArgs) -> anyhow::Result<Vec<Session>> {
    let filter = filter.to_filter()?;
    let files = place.files()?;
    let mut inventory = SessionInventory::default();
    for_each_event(&files, |e, _| inventory.add(e))?;
    let now = time::OffsetDateTime::now_utc();
    Ok(inventory.live(now, &filter).into_iter().cloned().collect())
}

/// Runs `keyless sessions`.
pub fn run(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let SessionsCommand::List {
        place,
        filter,
        format,
    } = args.command;
    let sessions = live_sessions(&place, &filter)?;
    match format {
        Format::Json => {
            for s in &sessions {
                println!(
                    "{}",
                    json!({
                        "accessKeyId": s.access_key_id,
                        "principal": s.principal,
                        "roleArn": s.role_arn,
                        "subject": s.subject,
                        "repository": s.repository,
                        "sourceIdentity": s.source_identity,
                        "issued": event_time(s.issued),
                        "expires": event_time(s.expires),
                        "lastUsed": s.last_used.map(event_time),
                        "lastUsedService": s.last_used_service,
                        "issuedBy": s.issued_by,
                    })
                );
            }
        }
        Format::Text => {
            println!(
                "ACCESS KEY ID        ISSUED                      EXPIRES                     LAST USED                   PRINCIPAL  SUBJECT"
            );
            for s in &sessions {
                println!(
                    "{:<20} {:<27} {:<27} {:<27} {}  {}",
                    s.access_key_id,
                    event_time(s.issued),
                    event_time(s.expires),
                    s.last_used.map_or_else(|| "-".to_owned(), event_time),
                    s.principal,
                    s.subject.as_deref().unwrap_or("-"),
                );
            }
            eprintln!("{} live session(s)", sessions.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
