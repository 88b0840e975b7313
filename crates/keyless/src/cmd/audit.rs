//! `keyless audit`: verify, tail and query the audit trail in `data_dir/audit/`.

use std::collections::VecDeque;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use keyless_audit::chain::MAX_LINE_BYTES;
use keyless_audit::files::{
    feed_lines, for_each_event, list_files, parse_event_line, read_files, resolve, verify_files,
};
use keyless_audit::query::{Filter, terminal_safe, text_line};
use keyless_audit::verify::{Anchor, KeyPins, Report, Verifier};
use keyless_audit::{AuditEvent, Decision};

/// The exit code of a failed `audit verify`, and of a reader (`audit query`, `audit tail`,
/// `sessions list`, `report credentials`) that printed what it read from a log that does not
/// verify. Errors (bad arguments, unreadable files) exit 2.
pub const EXIT_NOT_VERIFIED: u8 = 1;

/// Arguments of `keyless audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the digest signatures of the whole log (all rotated files).
    /// Exits 1 at the first broken, missing or reordered record, naming file, line and record
    /// (2 on errors).
    Verify {
        /// A log file, the log directory or the data directory (default: from --config or
        /// --data-dir).
        path: Option<PathBuf>,
        #[command(flatten)]
        place: Where,
    },
    /// Print the last records, and with --follow keep printing new ones. The whole log is read
    /// and verified from its start as `audit verify` does; with --follow every new record is
    /// checked against the chain as it arrives. A log that does not verify is printed anyway,
    /// with a warning on stderr naming the first problem, and the exit code is 1.
    Tail {
        /// How many records to print first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep running and print records as they are written.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        place: Where,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output: `text` (one line per record) or `json` (the records as written).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the records that match every filter given, verifying the whole log as it is read
    /// (as `audit verify` does). A log that does not verify is printed anyway, with a warning on
    /// stderr naming the first problem, and the exit code is 1.
    Query {
        #[command(flatten)]
        place: Where,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output: `text` (one line per record) or `json` (the records as written).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print at most this many records (the oldest first).
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per record for humans.
    Text,
    /// JSON lines, one record per line.
    Json,
}

/// Where the server's data is.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    /// The server's config file (its data_dir holds the audit log).
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    pub config: Option<PathBuf>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Where {
    /// The data directory, if one was given.
    pub fn data_dir(&self) -> anyhow::Result<Option<PathBuf>> {
        Ok(match (&self.config, &self.data_dir) {
            (Some(c), _) => Some(keyless_server::config::load_for_tools(c)?.data_dir),
            (None, Some(d)) => Some(d.clone()),
            (None, None) => None,
        })
    }

    /// The log files.
    pub fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let Some(dir) = self.data_dir()? else {
            bail!("give --config FILE or --data-dir DIR");
        };
        let audit = dir.join("audit");
        resolve(&audit).with_context(|| format!("cannot read the audit log in {}", audit.display()))
    }
}

/// The filters shared by `audit query`, `audit tail` and `sessions list`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only records at or after this instant (RFC 3339, e.g. 2026-12-01T21:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this instant (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// eventName, e.g. AssumeRoleWithWebIdentity.
    #[arg(long, value_name = "NAME")]
    pub event_name: Option<String>,
    /// Principal ARN (arn:aws:sts::…:assumed-role/ROLE/SESSION) or principal id.
    #[arg(long, value_name = "ARN")]
    pub principal: Option<String>,
    /// Role ARN, or a role name.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Token subject (sub).
    #[arg(long, value_name = "SUB")]
    pub subject: Option<String>,
    /// GitHub repository (owner/name).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,
    /// Access key id, used or issued.
    #[arg(long, value_name = "ASIA…")]
    pub access_key_id: Option<String>,
    /// allow, deny or error.
    #[arg(long, value_name = "DECISION")]
    pub decision: Option<String>,
    /// errorCode, e.g. AccessDenied.
    #[arg(long, value_name = "CODE")]
    pub error_code: Option<String>,
}

fn parse_instant(flag: &str, s: &str) -> anyhow::Result<time::OffsetDateTime> {
    keyless_audit::event::parse_time(s).with_context(|| {
        format!("{flag} {s:?} is not an RFC 3339 instant like 2026-12-01T21:00:00Z")
    })
}

impl FilterArgs {
    /// The filter.
    pub fn to_filter(&self) -> anyhow::Result<Filter> {
        let decision = match &self.decision {
            Some(d) => Some(
                Decision::parse(d)
                    .with_context(|| format!("--decision {d:?}: use allow, deny or error"))?,
            ),
            None => None,
        };
        let since = self
            .since
            .as_deref()
            .map(|s| parse_instant("--since", s))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|s| parse_instant("--until", s))
            .transpose()?;
        // An empty window matches nothing, which would read as "no such records": most often
        // the two were swapped, or given in different time zones.
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            bail!(
                "--since {} is not before --until {}: no record can match (--since is inclusive, --until exclusive)",
                keyless_audit::event::event_time(s),
                keyless_audit::event::event_time(u)
            );
        }
        Ok(Filter {
            since,
            until,
            event_name: self.event_name.clone(),
            principal: self.principal.clone(),
            role: self.role.clone(),
            subject: self.subject.clone(),
            repository: self.repository.clone(),
            access_key_id: self.access_key_id.clone(),
            decision,
            error_code: self.error_code.clone(),
        })
    }
}

fn print_event(
    out: &mut impl std::io::Write,
    e: &AuditEvent,
    raw: &[u8],
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Text => writeln!(out, "{}", text_line(e)),
        Format::Json => {
            out.write_all(raw)?;
            out.write_all(b"\n")
        }
    }
}

/// Runs `keyless audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify { path, place } => verify(path.as_deref(), &place),
        AuditCommand::Query {
            place,
            filter,
            format,
            limit,
        } => {
            let filter = filter.to_filter()?;
            let files = place.files()?;
            let mut v = reader_verifier(&place)?;
            let mut out = std::io::stdout().lock();
            let mut printed = 0usize;
            let mut result = Ok(());
            for_each_event(&files, &mut v, |e, raw| {
                if result.is_err() || limit.is_some_and(|l| printed >= l) || !filter.matches(e) {
                    return;
                }
                printed += 1;
                result = print_event(&mut out, e, raw, format);
            })?;
            ignore_broken_pipe(result)?;
            ignore_broken_pipe(out.flush())?;
            Ok(reader_verdict(&v.finish(), &place))
        }
        AuditCommand::Tail {
            lines,
            follow,
            place,
            filter,
            format,
        } => tail(lines, follow, &place, &filter.to_filter()?, format),
    }
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// With Postgres, the newest record the audit table copied for this data dir's log: records cut
/// from the end of the files since then are found against it. Any trouble reaching it is a
/// warning (the files are still verified on their own).
fn table_anchor(config: &Path, data_dir: &Path) -> Option<Anchor> {
    let url = keyless_server::config::load_for_tools(config)
        .ok()?
        .database_url?;
    let id_file = data_dir.join(keyless_server::audit_table_sink::LOG_ID_FILE);
    let log_id = std::fs::read_to_string(&id_file).ok()?.trim().to_owned();
    let head = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let opened = keyless_store::open(Some(&url), data_dir).await?;
                let table = opened
                    .audit_table
                    .context("a Postgres store without the audit table")?;
                table.head(&log_id).await.map_err(anyhow::Error::msg)
            })
        });
    match head {
        Ok(Some((seq, hex_hash))) => {
            let mut hash = [0u8; 32];
            match hex::decode_to_slice(&hex_hash, &mut hash) {
                Ok(()) => Some(Anchor::new(seq, hash, "the Postgres audit table")),
                Err(_) => {
                    eprintln!(
                        "warning: the audit table's newest row has a malformed hash; not compared"
                    );
                    None
                }
            }
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!(
                "warning: could not read the Postgres audit table, so records cut from the end of the files would go unnoticed: {e:#}"
            );
            None
        }
    }
}

/// The key ring next to the log, for pinning digest keys.
fn pins_for(data_dir: Option<&Path>) -> anyhow::Result<KeyPins> {
    let Some(dir) = data_dir else {
        return Ok(KeyPins::default());
    };
    let ring_path = keyless_server::keyring_file::path_in(dir);
    if !ring_path.exists() {
        return Ok(KeyPins::default());
    }
    let ring = keyless_server::keyring_file::load(&ring_path)?;
    let keys = keyless_server::audit::audit_public_keys(&ring).map_err(anyhow::Error::msg)?;
    Ok(KeyPins { ring: Some(keys) })
}

/// The verifier of a reader of the log at `place`, set up as `audit verify` sets up its own:
/// digest keys pinned to the data dir's key ring (a warning when there is none) and, for the
/// log of a config with Postgres, anchored to the newest row of the audit table.
pub fn reader_verifier(place: &Where) -> anyhow::Result<Verifier> {
    let dir = place.data_dir()?;
    let pins = pins_for(dir.as_deref())?;
    if pins.ring.is_none() {
        eprintln!(
            "warning: no key ring in the data dir: digest signatures are checked against the keys \
             the digests name, not pinned to the ring"
        );
    }
    let mut v = Verifier::new(pins);
    if let (Some(config), Some(dir)) = (&place.config, &dir)
        && let Some(anchor) = table_anchor(config, dir)
    {
        v.anchor(anchor);
    }
    Ok(v)
}

/// Says on stderr, after a reader printed what it read, whether the log verifies, and returns
/// the exit code: 0, or [`EXIT_NOT_VERIFIED`] with the first problem named.
pub fn reader_verdict(report: &Report, place: &Where) -> ExitCode {
    match &report.problem {
        // As `verify` says: a server writes the first file when it starts, so a log directory
        // with none lost its whole log (and "no records" would read as "nothing happened").
        None if report.files == 0 => {
            warn_not_verified(
                "no audit files (audit-<seq>.jsonl) in the log directory: a server creates the \
                 first one when it starts, so if one ran on this data dir, its log was removed",
                place,
            );
            ExitCode::from(EXIT_NOT_VERIFIED)
        }
        None => ExitCode::SUCCESS,
        Some(p) => {
            warn_not_verified(&p.to_string(), place);
            ExitCode::from(EXIT_NOT_VERIFIED)
        }
    }
}

/// The warning of a reader whose log does not verify: `problem` and where to look further.
fn warn_not_verified(problem: &str, place: &Where) {
    let flag = match (&place.config, &place.data_dir) {
        (Some(c), _) => format!(" --config {}", c.display()),
        (None, Some(d)) => format!(" --data-dir {}", d.display()),
        (None, None) => String::new(),
    };
    eprintln!(
        "warning: the audit log does not verify: {}",
        terminal_safe(problem)
    );
    eprintln!(
        "warning: the records shown are what the files hold, and may have been altered, removed \
         or forged; run `keyless audit verify{flag}` for the full report"
    );
}

fn verify(path: Option<&Path>, place: &Where) -> anyhow::Result<ExitCode> {
    let given_dir = place.data_dir()?;
    let (files, data_dir) = match path {
        Some(p) => {
            let files = resolve(p).with_context(|| format!("cannot read {}", p.display()))?;
            // The data directory is the one given, or the one holding this log.
            let guess = given_dir.clone().or_else(|| {
                [
                    Some(p.to_owned()),
                    p.parent().map(Path::to_owned),
                    p.parent().and_then(Path::parent).map(Path::to_owned),
                ]
                .into_iter()
                .flatten()
                .find(|d| keyless_server::keyring_file::path_in(d).exists())
            });
            (files, guess)
        }
        None => (place.files()?, given_dir),
    };
    if files.is_empty() {
        println!("no audit files found (audit-<seq>.jsonl); nothing to verify");
        return Ok(ExitCode::from(1));
    }
    let pins = pins_for(data_dir.as_deref())?;
    // Only for the config's own log: files given by path may be a copy or another log.
    let anchor = match (path, &place.config, &data_dir) {
        (None, Some(config), Some(dir)) => table_anchor(config, dir),
        _ => None,
    };
    let anchored = anchor.as_ref().map(|a| a.seq);
    let mut v = Verifier::new(pins);
    if let Some(a) = anchor {
        v.anchor(a);
    }
    let report = verify_files(&files, v)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    match &report.problem {
        None => {
            println!(
                "audit log OK: {} records ({} signed digests) in {} file(s), seq {}..{}",
                report.records, report.digests, report.files, report.first_seq, report.last_seq
            );
            if let Some(seq) = anchored {
                println!("it holds seq {seq}, the newest record the Postgres audit table copied");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(p) => {
            println!(
                "audit log verification FAILED after {} good records: {}",
                report.records,
                terminal_safe(&p.to_string())
            );
            Ok(ExitCode::from(EXIT_NOT_VERIFIED))
        }
    }
}

fn tail(
    lines: usize,
    follow: bool,
    place: &Where,
    filter: &Filter,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let files = place.files()?;
    let mut v = reader_verifier(place)?;
    let mut last: VecDeque<(AuditEvent, Vec<u8>)> = VecDeque::new();
    // The newest file stays open in the verifier, to be followed.
    let newest = read_files(&files, &mut v, false, |raw| {
        if let Some(e) = parse_event_line(raw).filter(|e| filter.matches(e)) {
            last.push_back((e, raw.to_vec()));
            if last.len() > lines {
                last.pop_front();
            }
        }
    })?;
    {
        let mut out = std::io::stdout().lock();
        for (e, raw) in &last {
            ignore_broken_pipe(print_event(&mut out, e, raw, format))?;
        }
        ignore_broken_pipe(out.flush())?;
    }
    // The verdict on the log as read, its newest file ended here (a torn final line is a write
    // still in progress).
    let mut so_far = v.clone();
    if let Some((_, end)) = &newest {
        so_far.end_file(end.partial_line(), true);
    }
    let report = so_far.finish();
    let code = reader_verdict(&report, place);
    if !follow {
        return Ok(code);
    }
    let Some(dir) = place.data_dir()?.map(|d| d.join("audit")) else {
        bail!("give --config FILE or --data-dir DIR");
    };
    let mut follower = Follower {
        v,
        warned: code != ExitCode::SUCCESS,
        current: newest.as_ref().map(|(f, _)| f.clone()),
        offset: newest.as_ref().map_or(0, |(_, end)| end.complete_bytes),
    };
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if !follower.poll(&dir, filter, format, place)? {
            break;
        }
    }
    Ok(ExitCode::from(if follower.warned {
        EXIT_NOT_VERIFIED
    } else {
        0
    }))
}

/// `audit tail --follow` after the first pass: reads what is written from where it stopped,
/// prints the matching events and keeps verifying, warning once, at the first problem.
struct Follower {
    /// Inside the newest file read, which it has not ended.
    v: Verifier,
    warned: bool,
    current: Option<PathBuf>,
    /// Bytes of `current` read up to its last complete line.
    offset: u64,
}

impl Follower {
    /// One pass over what was written since the last; false when stdout is closed.
    fn poll(
        &mut self,
        dir: &Path,
        filter: &Filter,
        format: Format,
        place: &Where,
    ) -> anyhow::Result<bool> {
        let now_files = list_files(dir).unwrap_or_default();
        // The rest of the current file, then the newer ones in order.
        let queue: Vec<PathBuf> = match &self.current {
            Some(c) => now_files.iter().filter(|f| *f >= c).cloned().collect(),
            None => now_files,
        };
        let mut out = std::io::stdout().lock();
        for (i, f) in queue.iter().enumerate() {
            if self.current.as_ref() != Some(f) {
                self.v.begin_file(&f.display().to_string());
                self.current = Some(f.clone());
                self.offset = 0;
            }
            let mut file = match std::fs::File::open(f) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let len = file.metadata()?.len();
            if len < self.offset {
                // Crash recovery cuts only a torn line, which was never read as a record.
                let problem = format!(
                    "{} is now {len} bytes long, shorter than the {} bytes already read: records \
                     were cut from it",
                    f.display(),
                    self.offset
                );
                warn_not_verified(&problem, place);
                self.warned = true;
                self.offset = len;
            }
            file.seek(SeekFrom::Start(self.offset))?;
            let mut result = Ok(());
            let end = feed_lines(file, &mut self.v, &mut |raw| {
                if result.is_err() {
                    return;
                }
                if let Some(e) = parse_event_line(raw).filter(|e| filter.matches(e)) {
                    result = print_event(&mut out, &e, raw, format);
                }
            })?;
            match result.and_then(|()| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(false),
                other => other?,
            }
            self.offset += end.complete_bytes;
            if i + 1 < queue.len() {
                // A newer file exists, so this one is complete: the writer creates the next
                // file only after its last write to this one.
                self.v.end_file(end.partial_line(), false);
            } else if let Some((_, partial_len)) = &end.partial
                && *partial_len > MAX_LINE_BYTES as u64
            {
                // Longer than any record: it will not become one.
                self.v.end_file(end.partial_line(), true);
                self.offset += partial_len;
            }
            if !self.warned
                && self.v.broken()
                && let Some(p) = self.v.report_so_far().problem
            {
                warn_not_verified(&p.to_string(), place);
                self.warned = true;
            }
        }
        Ok(true)
    }
}
