//! `keyless sessions list`: the sessions alive now, reconstructed from the audit trail.

use std::process::ExitCode;

use keyless_audit::event::event_time;
use keyless_audit::files::for_each_event;
use keyless_audit::query::{Session, SessionInventory, terminal_safe};
use keyless_audit::verify::Report;
use keyless_core::revocation::{Revocation, RevocationSet, SessionFacts};
use keyless_types::AccountId;
use serde_json::json;

use super::audit::{FilterArgs, Format, Where, reader_verdict, reader_verifier};

/// Arguments of `keyless sessions`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SessionsCommand {
    /// List live sessions: who, which role, issued, expires, last used (when a signed call or
    /// an authorize decision with the key was recorded), and whether a revocation in the
    /// server's store ends it (STATUS: active, revoked(#id kind value), or unknown when the
    /// data dir has no store). --since/--until bound the issue time. The whole log is verified
    /// as it is read: when it does not verify, the sessions are listed anyway, a warning on
    /// stderr names the first problem, and the exit code is 1.
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

/// The live sessions of the log at `place`, filtered, and the verification of the log they
/// come from (for [`reader_verdict`]).
pub fn live_sessions(place: &Where, filter: &FilterArgs) -> anyhow::Result<(Vec<Session>, Report)> {
    // These select records, not sessions: ignored, they would list every live session as if
    // it matched.
    for (flag, given) in [
        ("--event-name", filter.event_name.is_some()),
        ("--decision", filter.decision.is_some()),
        ("--error-code", filter.error_code.is_some()),
    ] {
        if given {
            anyhow::bail!(
                "{flag} selects audit records, not sessions (every live session was issued by an allowed call); use `keyless audit query {flag} …`"
            );
        }
    }
    let filter = filter.to_filter()?;
    let files = place.files()?;
    let mut v = reader_verifier(place)?;
    let mut inventory = SessionInventory::default();
    for_each_event(&files, &mut v, |e, _| inventory.add(e))?;
    let now = time::OffsetDateTime::now_utc();
    let live = inventory.live(now, &filter).into_iter().cloned().collect();
    Ok((live, v.finish()))
}

/// The revocations in the server's store, indexed, to tell which live sessions they end.
pub struct Revocations {
    list: Vec<Revocation>,
    set: RevocationSet,
}

impl Revocations {
    /// The revocations in force, from the server's store: the Postgres database the config
    /// names, else the SQLite file in the data dir (`None` when there is no store to read, e.g.
    /// a copied log directory). Revocations live in that database, not in the data dir, when
    /// the config has a `database_url`.
    pub fn load(place: &Where) -> anyhow::Result<Option<Revocations>> {
        let (dir, url) = match (&place.config, &place.data_dir) {
            (Some(c), _) => {
                let config = keyless_server::config::load_for_tools(c)?;
                (config.data_dir, config.database_url)
            }
            (None, Some(d)) => (d.clone(), None),
            (None, None) => return Ok(None),
        };
        if url.is_none() && !dir.join(keyless_store::SQLITE_FILE).exists() {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let list = runtime.block_on(async {
            let opened = keyless_store::open(url.as_ref(), &dir).await?;
            opened.store.revocations().await
        })?;
        let set = RevocationSet::build(&list, time::OffsetDateTime::now_utc());
        Ok(Some(Revocations { list, set }))
    }

    /// The revocation that ends `s`, if one does.
    pub fn ending(&self, s: &Session) -> Option<&Revocation> {
        revoked_by(s, &self.set, &self.list)
    }
}

/// The revocation that ends `s`, if one does.
fn revoked_by<'a>(
    s: &Session,
    set: &RevocationSet,
    list: &'a [Revocation],
) -> Option<&'a Revocation> {
    let account = AccountId::parse(s.account.as_deref()?).ok()?;
    let hit = set.check_facts(&SessionFacts {
        access_key_id: &s.access_key_id,
        account,
        role_arn: &s.role_arn,
        issued_at: s.issued_at,
        key_version: s.key_version,
        issuer: s.issuer.as_deref(),
        subject: s.subject.as_deref(),
        source_identity: s.source_identity.as_deref(),
        chained_from: &s.chained_from,
    })?;
    list.iter().find(|r| r.id == hit.id)
}

/// A revocation in one phrase: `#3 role arn:…` (the text form's STATUS column).
fn describe(r: &Revocation) -> String {
    format!(
        "revoked(#{} {} {})",
        r.id,
        r.spec.target.kind(),
        r.spec.target.value()
    )
}

/// Runs `keyless sessions`.
pub fn run(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let SessionsCommand::List {
        place,
        filter,
        format,
    } = args.command;
    let (sessions, report) = live_sessions(&place, &filter)?;
    let revocations = Revocations::load(&place)?;
    let status =
        |s: &Session| -> Option<Option<&Revocation>> { Some(revocations.as_ref()?.ending(s)) };
    match format {
        Format::Json => {
            for s in &sessions {
                let revoked = status(s);
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
                        // active, revoked, or unknown (no store to check against).
                        "status": match revoked {
                            None => "unknown",
                            Some(None) => "active",
                            Some(Some(_)) => "revoked",
                        },
                        "revocation": revoked.flatten().map(Revocation::to_json),
                    })
                );
            }
        }
        Format::Text => {
            println!(
                "ACCESS KEY ID        ISSUED                      EXPIRES                     LAST USED                   STATUS  PRINCIPAL  SUBJECT"
            );
            for s in &sessions {
                let status = match status(s) {
                    None => "unknown".to_owned(),
                    Some(None) => "active".to_owned(),
                    Some(Some(r)) => describe(r),
                };
                println!(
                    "{:<20} {:<27} {:<27} {:<27} {}  {}  {}",
                    s.access_key_id,
                    event_time(s.issued),
                    event_time(s.expires),
                    s.last_used.map_or_else(|| "-".to_owned(), event_time),
                    terminal_safe(&status),
                    terminal_safe(&s.principal),
                    terminal_safe(s.subject.as_deref().unwrap_or("-")),
                );
            }
            let revoked = sessions
                .iter()
                .filter(|s| matches!(status(s), Some(Some(_))))
                .count();
            eprintln!(
                "{} live session(s), {revoked} of them revoked",
                sessions.len()
            );
            if revocations.is_none() {
                eprintln!("no store in the data dir: revocations not checked (status unknown)");
            }
        }
    }
    Ok(reader_verdict(&report, &place))
}
