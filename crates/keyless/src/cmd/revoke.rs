//! `keyless revoke`: end live sessions before their expiry.
//!
//! Two ways to reach the server:
//! - `--config FILE` or `--data-dir DIR`: write the revocation straight into the server's store
//!   (the operator on the server's machine; may cover every account): its Postgres database when
//!   the config names a `database_url`, else the SQLite file in the data dir. A running server
//!   picks it up within a second, records it in the audit log and marks the row audited; with no
//!   server running the CLI records and marks it itself (see [`audit_operator_revocation`]).
//! - `--endpoint URL`: call `POST /v1/revocations`, signed with SigV4 (service `keyless`) with
//!   credentials from the standard AWS environment: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//!   (/`AWS_SESSION_TOKEN`), else web identity (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`,
//!   exchanged at `AWS_ENDPOINT_URL_STS` or the endpoint itself), else the shared credentials
//!   file profile (`AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`). The caller needs
//!   `keyless:RevokeSessions` on the target, except for its own session.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use keyless_audit::{AuditError, AuditLog};
use keyless_core::ports::Store;
use keyless_core::revocation::{Revocation, RevocationRequest};
use keyless_sigv4::{
    Credentials, HttpRequest, ServiceRules, SignPayload, SignatureLocation, SigningParams,
};
use keyless_types::{AccountId, SecretString};
use serde_json::{Value, json};

/// Arguments of `keyless revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(subcommand)]
    command: RevokeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RevokeCommand {
    /// Revoke one session by its access key id (ASIA…).
    Session {
        /// The access key id.
        access_key_id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke the sessions of a role issued before an instant (AWS's "revoke active sessions").
    Role {
        /// The role ARN.
        role_arn: String,
        /// `now` or an RFC 3339 instant.
        #[arg(long, default_value = "now")]
        issued_before: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every session federated from one token subject (and tokens issued before now).
    Subject {
        /// The token's `sub`.
        subject: String,
        /// The provider URL the subject belongs to, as tokens carry it in `iss`.
        #[arg(long, value_name = "URL")]
        provider: String,
        /// `now` or an RFC 3339 instant.
        #[arg(long, default_value = "now")]
        issued_before: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every session carrying a source identity, chained ones included.
    SourceIdentity {
        /// The source identity.
        source_identity: String,
        /// `now` or an RFC 3339 instant.
        #[arg(long, default_value = "now")]
        issued_before: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every session federated from an issuer.
    Issuer {
        /// The provider URL, as tokens carry it in `iss`.
        issuer: String,
        /// `now` or an RFC 3339 instant.
        #[arg(long, default_value = "now")]
        issued_before: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every session sealed with a key-ring version (rotate first: `keyless keys rotate`).
    KeyVersion {
        /// The version (see `keyless keys list`).
        version: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the live revocations.
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The server's config file (its data_dir holds the store).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["data_dir", "endpoint"])]
    config: Option<PathBuf>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR", conflicts_with = "endpoint")]
    data_dir: Option<PathBuf>,
    /// A keyless server URL: revoke through its API with your AWS credentials.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// With --config/--data-dir: limit the revocation to one account (default: every account).
    #[arg(long, value_name = "ID", conflicts_with = "endpoint")]
    account: Option<String>,
    /// Why (kept with the revocation and in the audit trail).
    #[arg(long)]
    reason: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs `keyless revoke`.
pub fn run(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let (request, common) = match args.command {
        RevokeCommand::Session {
            access_key_id,
            common,
        } => (
            request("session", access_key_id, None, None, &common),
            common,
        ),
        RevokeCommand::Role {
            role_arn,
            issued_before,
            common,
        } => (
            request("role", role_arn, None, Some(issued_before), &common),
            common,
        ),
        RevokeCommand::Subject {
            subject,
            provider,
            issued_before,
            common,
        } => (
            request(
                "subject",
                subject,
                Some(provider),
                Some(issued_before),
                &common,
            ),
            common,
        ),
        RevokeCommand::SourceIdentity {
            source_identity,
            issued_before,
            common,
        } => (
            request(
                "source-identity",
                source_identity,
                None,
                Some(issued_before),
                &common,
            ),
            common,
        ),
        RevokeCommand::Issuer {
            issuer,
            issued_before,
            common,
        } => (
            request("issuer", issuer, None, Some(issued_before), &common),
            common,
        ),
        RevokeCommand::KeyVersion { version, common } => {
            (request("key-version", version, None, None, &common), common)
        }
        RevokeCommand::List { common } => return list(&common),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = match &common.endpoint {
        Some(endpoint) => runtime.block_on(revoke_remote(endpoint, &request)),
        None => runtime.block_on(revoke_local(&common, &request)),
    };
    match result {
        Ok(revocation) => {
            print(&[revocation], common.format);
            Ok(ExitCode::SUCCESS)
        }
        Err(Refused(message)) => {
            eprintln!("keyless: revocation refused: {message}");
            Ok(ExitCode::from(1))
        }
        Err(Failure::Error(e)) => Err(e),
    }
}

fn request(
    kind: &str,
    value: String,
    issuer: Option<String>,
    issued_before: Option<String>,
    common: &Common,
) -> RevocationRequest {
    RevocationRequest {
        kind: kind.to_owned(),
        value,
        issuer,
        issued_before,
        reason: common.reason.clone(),
    }
}

/// Why a revocation did not happen: refused by validation or the server (exit 1), or a usage
/// or I/O error (exit 2).
enum Failure {
    Refused(String),
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Error(e.into())
    }
}

use Failure::Refused;

/// Where the server keeps its state: the data dir (key ring, and SQLite unless the config names
/// a Postgres `database_url`).
struct Place {
    dir: PathBuf,
    database_url: Option<keyless_store::DatabaseUrl>,
}

fn place(common: &Common) -> anyhow::Result<Place> {
    match (&common.config, &common.data_dir) {
        (Some(c), None) => {
            let config = keyless_server::config::load_for_tools(c)?;
            Ok(Place {
                dir: config.data_dir,
                database_url: config.database_url,
            })
        }
        (None, Some(d)) => Ok(Place {
            dir: d.clone(),
            database_url: None,
        }),
        _ => bail!("give --config FILE or --data-dir DIR (the server's store), or --endpoint URL"),
    }
}

async fn open_store(place: &Place) -> anyhow::Result<keyless_core::ports::SharedStore> {
    if place.database_url.is_none() {
        let db = place.dir.join(keyless_store::SQLITE_FILE);
        if !db.exists() {
            bail!(
                "no keyless database at {}; is this the server's data dir?",
                db.display()
            );
        }
    }
    Ok(keyless_store::open(place.database_url.as_ref(), &place.dir)
        .await?
        .store)
}

async fn revoke_local(common: &Common, request: &RevocationRequest) -> Result<Revocation, Failure> {
    let place = place(common)?;
    let ring_path = keyless_server::keyring_file::path_in(&place.dir);
    let ring = keyless_server::keyring_file::load(&ring_path)
        .with_context(|| format!("key ring {}", ring_path.display()))?;
    let account = common
        .account
        .as_deref()
        .map(AccountId::parse)
        .transpose()
        .map_err(|e| Refused(format!("--account: {e}")))?;
    let refused = |e: keyless_core::error::ApiError| Refused(format!("{}: {}", e.code, e.message));
    let mut spec = request
        .validate(
            account,
            "operator",
            ring.current_id(),
            time::OffsetDateTime::now_utc(),
        )
        .map_err(refused)?;
    let store = open_store(&place).await?;
    // The role and issuer as the server's sessions carry them.
    let directory = keyless_core::directory::Directory::build(&store.load().await?);
    spec.resolve(&directory).map_err(refused)?;
    let revocation = store.add_revocation(&spec).await?;
    let settings = match &common.config {
        Some(c) => keyless_server::config::load_for_tools(c)?.audit,
        None => keyless_server::audit::AuditSettings::default(),
    };
    // Stored, so in force; if the audit step fails the revocation stays (failing closed means
    // keeping sessions revoked) and the error says so.
    audit_operator_revocation(&place.dir, &settings, &ring, store.as_ref(), &revocation)
        .await
        .with_context(|| {
            format!(
                "revocation {} is stored and in force, but its audit record",
                revocation.id
            )
        })?;
    Ok(revocation)
}

/// How long the CLI waits for a running server to record a revocation it wrote.
const SERVER_AUDIT_WAIT: Duration = Duration::from_secs(10);

/// Makes sure a revocation written to the store gets its audit record and its row is marked,
/// keeping one writer per log (the lock `audit/writer.lock`): if no server holds the log, the
/// CLI takes the lock, records every unaudited row (its own, and any a killed writer left) and
/// marks each before letting the log go; if a server holds it, that server records and marks
/// revocations it loads from the store (within a second), and the CLI waits for the mark;
/// should the server stop first, the lock frees and the CLI records what is still unmarked.
async fn audit_operator_revocation(
    dir: &Path,
    settings: &keyless_server::audit::AuditSettings,
    ring: &keyless_token::KeyRing,
    store: &dyn Store,
    revocation: &Revocation,
) -> anyhow::Result<()> {
    let audit_dir = dir.join("audit");
    let deadline = Instant::now() + SERVER_AUDIT_WAIT;
    loop {
        let mut config = settings.writer_config(audit_dir.clone());
        config.lock_wait = Duration::ZERO;
        // Retention is the server's: it knows what the Postgres audit table has copied.
        config.retention = None;
        let signer = keyless_server::audit::signer_of(ring).map_err(anyhow::Error::msg)?;
        let clock: Arc<dyn keyless_types::Clock> = Arc::new(keyless_types::SystemClock);
        match AuditLog::open(config, clock, signer) {
            Ok((log, _)) => {
                // Marked before the lock frees, so a server starting next does not record
                // them again.
                let result = record_unaudited(&log, store, revocation).await;
                log.shutdown().await;
                match result? {
                    Some(seq) => eprintln!("audited: record {seq} of {}", audit_dir.display()),
                    // A server that held the log until a moment ago recorded it.
                    None => eprintln!("audited by the server"),
                }
                return Ok(());
            }
            Err(AuditError::Busy { .. }) => {
                if marked(store, revocation.id).await? {
                    eprintln!("audited by the running server");
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    eprintln!(
                        "keyless: warning: the running server has not recorded revocation {} in the audit log yet",
                        revocation.id
                    );
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// With the log held: records every unaudited revocation that is ours or
/// [`keyless_server::revoke_api::due_for_recovery`] (others marked `recovered`) and marks each.
/// Returns the `seq` of our own record, `None` if someone else had marked it already.
async fn record_unaudited(
    log: &AuditLog,
    store: &dyn Store,
    own: &Revocation,
) -> anyhow::Result<Option<u64>> {
    let now = time::OffsetDateTime::now_utc();
    let mut own_seq = None;
    for r in store.unaudited_revocations().await? {
        let mine = r.id == own.id;
        if !mine && !keyless_server::revoke_api::due_for_recovery(&r, now) {
            continue;
        }
        let event = keyless_server::audit::operator_revocation_event(now, &r, "keyless-cli", !mine);
        let seq = log.record_durable(&event).await?;
        // A lost mark means one more record at the next recovery, never a missing one.
        if let Err(e) = store.mark_revocation_audited(r.id, seq).await {
            eprintln!(
                "keyless: warning: revocation {} is recorded (record {seq}) but not marked audited in the store ({e}); the next server or revoke on this store records it again",
                r.id
            );
        }
        if mine {
            own_seq = Some(seq);
        } else {
            eprintln!(
                "recovered: revocation {} had no audit record; recorded as record {seq}",
                r.id
            );
        }
    }
    Ok(own_seq)
}

/// Whether revocation `id` is marked audited (rows are purged only long after they expire, so
/// a fresh one missing from the unaudited list is marked).
async fn marked(store: &dyn Store, id: i64) -> anyhow::Result<bool> {
    Ok(!store
        .unaudited_revocations()
        .await?
        .iter()
        .any(|r| r.id == id))
}

fn list(common: &Common) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = time::OffsetDateTime::now_utc();
    let values: Vec<Value> = match &common.endpoint {
        Some(endpoint) => match runtime.block_on(call(endpoint, reqwest::Method::GET, b"")) {
            Ok(v) => v
                .get("revocations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(Refused(m)) => {
                eprintln!("keyless: listing refused: {m}");
                return Ok(ExitCode::from(1));
            }
            Err(Failure::Error(e)) => return Err(e),
        },
        None => {
            let place = place(common)?;
            let store = runtime.block_on(open_store(&place))?;
            runtime
                .block_on(store.revocations())?
                .iter()
                .filter(|r| r.spec.expires_at > now)
                .map(Revocation::to_json)
                .collect()
        }
    };
    print_json(&values, common.format);
    Ok(ExitCode::SUCCESS)
}

fn print(revocations: &[Revocation], format: Format) {
    let values: Vec<Value> = revocations.iter().map(Revocation::to_json).collect();
    print_json(&values, format);
}

fn print_json(values: &[Value], format: Format) {
    for v in values {
        match format {
            Format::Json => println!("{v}"),
            Format::Text => {
                let target = &v["target"];
                let what = target
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter(|(k, _)| *k != "type")
                            .map(|(k, v)| {
                                format!(
                                    "{k}={}",
                                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                println!(
                    "revocation {} {} {} issued-before {} account {} by {} (kept until {})",
                    v["id"],
                    target["type"].as_str().unwrap_or(""),
                    what,
                    v["issuedBefore"].as_str().unwrap_or(""),
                    v["account"].as_str().unwrap_or("*"),
                    v["createdBy"].as_str().unwrap_or(""),
                    v["expiresAt"].as_str().unwrap_or(""),
                );
            }
        }
    }
}

async fn revoke_remote(endpoint: &str, request: &RevocationRequest) -> Result<Revocation, Failure> {
    let mut body = json!({ "type": request.kind, "value": request.value });
    if let Some(i) = &request.issuer {
        body["issuer"] = json!(i);
    }
    if let Some(t) = &request.issued_before {
        body["issuedBefore"] = json!(t);
    }
    if let Some(r) = &request.reason {
        body["reason"] = json!(r);
    }
    let answer = call(endpoint, reqwest::Method::POST, body.to_string().as_bytes()).await?;
    revocation_of(&answer["revocation"])
        .ok_or_else(|| Refused(format!("unexpected answer from {endpoint}: {answer}")))
}

/// Rebuilds a revocation from the API's JSON, for printing in the same forms as local ones.
fn revocation_of(v: &Value) -> Option<Revocation> {
    let t = &v["target"];
    let kind = t["type"].as_str()?;
    let (value, issuer) = match kind {
        "session" => (t["accessKeyId"].as_str()?.to_owned(), None),
        "role" => (t["roleArn"].as_str()?.to_owned(), None),
        "subject" => (
            t["subject"].as_str()?.to_owned(),
            Some(t["issuer"].as_str()?),
        ),
        "source-identity" => (t["sourceIdentity"].as_str()?.to_owned(), None),
        "issuer" => (t["issuer"].as_str()?.to_owned(), None),
        "key-version" => (t["keyVersion"].as_u64()?.to_string(), None),
        _ => return None,
    };
    let instant = |k: &str| {
        time::OffsetDateTime::parse(
            v[k].as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    };
    Some(Revocation {
        id: v["id"].as_i64()?,
        spec: keyless_core::revocation::NewRevocation {
            target: keyless_core::revocation::Target::from_parts(kind, &value, issuer)?,
            account: v["account"].as_str().and_then(|a| AccountId::parse(a).ok()),
            issued_before: instant("issuedBefore")?,
            created_at: instant("createdAt")?,
            expires_at: instant("expiresAt")?,
            reason: v["reason"].as_str().unwrap_or("").to_owned(),
            created_by: v["createdBy"].as_str().unwrap_or("").to_owned(),
        },
        audited_seq: None,
    })
}

/// The certificates of `AWS_CA_BUNDLE`, trusted beside the system's, as the AWS CLI and SDKs
/// trust them: how an endpoint with a private CA is reached.
fn ca_bundle() -> Result<Vec<reqwest::Certificate>, Failure> {
    let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let path = std::path::PathBuf::from(path);
    let size = std::fs::metadata(&path)
        .with_context(|| format!("AWS_CA_BUNDLE {}: cannot read it", path.display()))?
        .len();
    if size > keyless_server::tls::MAX_PEM_BYTES {
        return Err(anyhow::anyhow!(
            "AWS_CA_BUNDLE {}: larger than {} bytes; is it a PEM bundle?",
            path.display(),
            keyless_server::tls::MAX_PEM_BYTES
        )
        .into());
    }
    let pem = std::fs::read(&path)
        .with_context(|| format!("AWS_CA_BUNDLE {}: cannot read it", path.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
        format!(
            "AWS_CA_BUNDLE {}: not a PEM certificate bundle",
            path.display()
        )
    })?;
    if roots.is_empty() {
        return Err(anyhow::anyhow!(
            "AWS_CA_BUNDLE {}: no CERTIFICATE block in it",
            path.display()
        )
        .into());
    }
    Ok(roots)
}

/// A signed call to `/v1/revocations`.
async fn call(endpoint: &str, method: reqwest::Method, body: &[u8]) -> Result<Value, Failure> {
    let base = endpoint.trim_end_matches('/');
    let url = reqwest::Url::parse(&format!("{base}/v1/revocations"))
        .with_context(|| format!("--endpoint {endpoint}: not a URL"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err(anyhow::anyhow!("--endpoint {endpoint}: no host").into()),
    };
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    for root in ca_bundle()? {
        builder = builder.add_root_certificate(root);
    }
    let client = builder.build().context("HTTP client")?;
    let creds = credentials(&client, base).await?;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".to_owned());
    let headers: Vec<(&str, &[u8])> = vec![
        ("host", host.as_bytes()),
        ("content-type", b"application/json"),
    ];
    let req = HttpRequest {
        method: method.as_str(),
        path: url.path(),
        query: "",
        headers: &headers,
    };
    let signed = keyless_sigv4::sign(
        &req,
        &Credentials {
            access_key_id: &creds.access_key_id,
            secret: &creds.secret_access_key,
            session_token: creds.session_token.as_deref(),
        },
        &SigningParams {
            region: &region,
            service: keyless_server::revoke_api::SERVICE,
            time: time::OffsetDateTime::now_utc(),
            rules: ServiceRules::Standard,
            location: SignatureLocation::Headers,
            payload: SignPayload::Bytes(body),
            content_sha256_header: false,
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot sign the request: {e}"))?;
    let mut http = client
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in &signed.headers {
        http = http.header(k.as_str(), v.as_str());
    }
    let response = http
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("unexpected answer from {endpoint} (HTTP {status}): {text}"))?;
    if !status.is_success() {
        let code = value["error"]["code"].as_str().unwrap_or("Error");
        let message = value["error"]["message"].as_str().unwrap_or(&text);
        return Err(Refused(format!(
            "{code} (HTTP {}): {message}",
            status.as_u16()
        )));
    }
    Ok(value)
}

/// Credentials from the standard AWS environment.
struct Creds {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<String>,
}

async fn credentials(client: &reqwest::Client, endpoint: &str) -> Result<Creds, Failure> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(Creds {
                access_key_id: id,
                secret_access_key: SecretString::new(secret),
                session_token: env("AWS_SESSION_TOKEN"),
            });
        }
        // Half a key pair is a mistake: signing with the next identity in the chain (a
        // profile, perhaps an administrator's) would act as someone the caller did not name.
        // The AWS CLI and SDKs refuse it too (PartialCredentialsError).
        (Some(_), None) => {
            return Err(anyhow::anyhow!(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both (and AWS_SESSION_TOKEN for session credentials), or unset it to use the rest of the credential chain"
            )
            .into());
        }
        (None, Some(_)) => {
            return Err(anyhow::anyhow!(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or unset it to use the rest of the credential chain"
            )
            .into());
        }
        (None, None) => {}
    }
    if let (Some(role), Some(file)) = (env("AWS_ROLE_ARN"), env("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        let sts = env("AWS_ENDPOINT_URL_STS").unwrap_or_else(|| endpoint.to_owned());
        return web_identity(client, &sts, &role, &file, env("AWS_ROLE_SESSION_NAME")).await;
    }
    shared_file_profile()
}

async fn web_identity(
    client: &reqwest::Client,
    sts: &str,
    role: &str,
    token_file: &str,
    session_name: Option<String>,
) -> Result<Creds, Failure> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("AWS_WEB_IDENTITY_TOKEN_FILE {token_file}"))?;
    let session = session_name.unwrap_or_else(|| "keyless-revoke".to_owned());
    let form = serde_urlencoded::to_string([
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role),
        ("RoleSessionName", session.as_str()),
        ("WebIdentityToken", token.trim()),
    ])
    .context("encoding the STS request")?;
    let response = client
        .post(sts)
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form)
        .send()
        .await
        .with_context(|| format!("cannot reach STS at {sts}"))?;
    let status = response.status();
    let xml = response.text().await.context("reading the STS answer")?;
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = xml.find(&open)? + open.len();
        let end = start + xml[start..].find(&close)?;
        Some(xml[start..end].to_owned())
    };
    match (
        status.is_success(),
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) {
        (true, Some(id), Some(secret), Some(token)) => Ok(Creds {
            access_key_id: id,
            secret_access_key: SecretString::new(secret),
            session_token: Some(token),
        }),
        _ => Err(Refused(format!(
            "web identity exchange at {sts} failed (HTTP {}): {}",
            status.as_u16(),
            field("Message").unwrap_or_default()
        ))),
    }
}

fn shared_file_profile() -> Result<Creds, Failure> {
    let path = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
        .map_err(|_| anyhow::anyhow!(no_credentials()))?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let text = std::fs::read_to_string(&path).map_err(|_| anyhow::anyhow!(no_credentials()))?;
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_owned();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Creds {
            access_key_id: id,
            secret_access_key: SecretString::new(secret),
            session_token: token,
        }),
        _ => Err(anyhow::anyhow!(
            "profile {profile} in {} has no aws_access_key_id/aws_secret_access_key; {}",
            path.display(),
            no_credentials()
        )
        .into()),
    }
}

fn no_credentials() -> String {
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, or AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE, or a profile in the shared credentials file".to_owned()
}
