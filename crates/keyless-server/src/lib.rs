//! The keyless HTTP edge.
//!
//! [`serve`] loads the config (or builds the `--dev` world), opens the store (SQLite in the data
//! dir, or Postgres at `database_url`, then with the audit table sink [`audit_table_sink`]),
//! applies the config entities, loads the key ring, and serves HTTP, or HTTPS with a `[tls]`
//! table, through [`http_front`] (connection limits and timeouts) and [`tls`]:
//!
//! - `POST /` and `GET /?Action=…`: STS over the AWS query protocol ([`query_api`]);
//! - `POST`/`GET /v1/revocations`: revoke sessions, list revocations ([`revoke_api`]);
//! - `/healthz` (liveness), `/readyz` (the config's issuers' keys warm, store reachable, audit
//!   log writable;
//!   with Postgres also how far the audit table is), `/metrics`;
//! - in `--dev` mode only, the development OIDC issuer under `/dev/oidc` ([`dev`]).
//!
//! Every STS call and authorize decision is recorded in the audit trail ([`audit`]); STS answers
//! leave only once their record is durable. Domain errors become HTTP in exactly one place,
//! [`query_api::render_error`].

pub mod audit;
pub mod audit_fold;
pub mod audit_table_sink;
pub mod authorize_api;
pub mod config;
pub mod dev;
pub mod http_front;
pub mod iam_api;
pub mod keyring_file;
pub mod keys;
pub mod metrics;
pub mod query_api;
pub mod revoke_api;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod xml;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use keyless_core::authz_message::MessageSealer;
use keyless_core::directory::Directory;
use keyless_core::model::Entities;
use keyless_core::ports::{SharedStore, Store};
use keyless_token::KeyRing;
use keyless_types::{Clock, SecretBytes, SystemClock};
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError, ThrottleConfig};
use crate::dev::DevIssuer;
use crate::keys::KeySources;
use crate::metrics::Metrics;
use crate::state::{AppState, Keys};
use crate::throttle::Throttle;

/// How `keyless serve` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--dev`.
    pub dev: bool,
    /// `--listen ADDR`, overriding the config.
    pub listen: Option<SocketAddr>,
    /// `--data-dir DIR`, overriding the config.
    pub data_dir: Option<PathBuf>,
    /// `--unsafe-disable-audit-for-benchmark`: no audit records at all, for measuring what
    /// auditing costs. Loopback only, and `/readyz` stays 503.
    pub unsafe_disable_audit_for_benchmark: bool,
    /// The runtime's park hooks, if the caller attached them
    /// ([`keyless_audit::writer::ParkedWorkers`]): the audit writer stops gathering a batch as
    /// soon as a request worker runs out of work.
    pub parked_workers: Option<Arc<keyless_audit::writer::ParkedWorkers>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config file is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Bad combination of options.
    #[error("{0}")]
    Usage(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] keyless_core::ports::StoreError),
    /// The key ring failed.
    #[error("{0}")]
    KeyRing(#[from] keyring_file::KeyRingFileError),
    /// Could not bind or serve.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something else at start-up.
    #[error("{0}")]
    Startup(String),
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (mut config, dev_mode) = match (&opts.config, opts.dev) {
        (Some(_), true) => {
            return Err(ServeError::Usage(
                "use either --config or --dev, not both".into(),
            ));
        }
        (Some(path), false) => (config::load(path)?, false),
        (None, true) => (dev_config(), true),
        (None, false) => {
            return Err(ServeError::Usage(
                "keyless serve needs --config FILE (see the README), or --dev for a local playground".into(),
            ));
        }
    };
    if let Some(l) = opts.listen {
        config.listen = l;
    }
    if let Some(d) = &opts.data_dir {
        config.data_dir = d.clone();
    }
    if dev_mode && !config.listen.ip().is_loopback() {
        return Err(ServeError::Usage(format!(
            "--dev serves an unauthenticated token issuer and must listen on a loopback address, not {}",
            config.listen
        )));
    }
    if dev_mode {
        refuse_a_configured_data_dir(&config.data_dir)?;
    }
    for w in &config.warnings {
        warn!("{w}");
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            ServeError::Startup(format!(
                "cannot listen on {}: {e}; another process (a keyless server?) may hold it: stop it, or give another --listen ADDR",
                config.listen
            ))
        })?;
    let addr = listener.local_addr()?;

    let dev = if dev_mode {
        Some(DevIssuer::new(addr).map_err(|e| ServeError::Startup(e.to_string()))?)
    } else {
        None
    };
    let mut entities = config.entities.clone();
    if let Some(d) = &dev {
        entities = d
            .entities()
            .map_err(|e| ServeError::Startup(e.to_string()))?;
    }
    if config.builtin_guardrails.no_long_term_keys {
        entities
            .guardrails
            .push(keyless_core::iam::no_long_term_keys_guardrail());
    }

    // Owner-only when we make it: the key ring refuses a directory others can write.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(|e| {
            ServeError::Startup(format!(
                "cannot create data dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
    let marker = config.data_dir.join(DEV_MARKER);
    if dev_mode {
        std::fs::write(&marker, DEV_MARKER_TEXT).map_err(|e| {
            ServeError::Startup(format!(
                "cannot mark {} as a --dev data dir: {e}",
                config.data_dir.display()
            ))
        })?;
    } else if let Err(e) = std::fs::remove_file(&marker)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        // A configured server owns the data dir from now on: --dev must not take it back.
        return Err(ServeError::Startup(format!(
            "cannot remove {} (a configured server's data dir must not stay open to --dev): {e}",
            marker.display()
        )));
    }
    // The audit log's lock is this data dir's "one server" lock: taken before the store is
    // touched, so a second server refused here has not re-applied its config under the running
    // one (deleting the roles its file no longer lists, whose sessions then end).
    let now = clock.now();
    let keyring_path = keyring_file::path_in(&config.data_dir);
    let ring = keyring_file::load_or_create(&keyring_path, now)?;
    // With an audit table (Postgres), retention keeps every file the table has not copied yet:
    // the sink moves this mark as it copies.
    let table_through = config
        .database_url
        .as_ref()
        .map(|_| Arc::new(std::sync::atomic::AtomicU64::new(0)));
    let audit = open_audit(&opts, &config, &clock, &ring, table_through.clone())?;
    let opened = keyless_store::open(config.database_url.as_ref(), &config.data_dir).await?;
    info!(store = %opened.description, "store open");
    let store: SharedStore = opened.store;
    for role in &mut entities.roles {
        if role.role_id.is_empty() {
            role.role_id = keyless_store::new_role_id();
        }
    }
    for p in &mut entities.providers {
        p.created = now;
    }
    for r in &mut entities.roles {
        r.created = now;
    }
    bind_config_trust(&mut entities, store.as_ref(), opts.config.as_deref()).await?;
    refuse_orphaned_accounts(&entities, store.as_ref(), opts.config.as_deref()).await?;
    store.apply_config(&entities).await?;
    let directory_generation = store.directory_generation().await?;
    let directory = load_directory(store.as_ref(), config.organization.clone()).await?;

    let keys = keys_of(ring)?;
    let metrics = Metrics::new();
    let audit_table = match (&opened.audit_table, audit.enabled()) {
        (Some(table), true) => {
            let log_id = audit_table_sink::log_id(&config.data_dir).map_err(ServeError::Startup)?;
            Some(audit_table_sink::AuditTableSink::spawn(
                table.clone(),
                log_id,
                config.data_dir.join("audit"),
                metrics.audit_table.clone(),
                table_through.unwrap_or_default(),
            ))
        }
        _ => None,
    };

    let cache = Arc::new(
        keyless_oidc::JwksCache::new(keyless_oidc::Config::default())
            .map_err(|e| ServeError::Startup(format!("JWKS cache: {e}")))?,
    );
    let iam_settings = crate::iam_api::IamSettings {
        allow_loopback_http_providers: config.iam.allow_loopback_http_providers,
        allow_private_provider_addresses: config.iam.allow_private_provider_addresses,
    };
    let mut fixed = HashMap::new();
    if let Some(d) = &dev {
        fixed.insert(
            d.issuer.clone(),
            d.jwks().map_err(|e| ServeError::Startup(e.to_string()))?,
        );
    }
    for p in directory.providers() {
        if !fixed.contains_key(&p.url) {
            cache
                .add_issuer(iam_api::issuer_config(&directory, p, iam_settings))
                .map_err(|e| ServeError::Startup(format!("provider {}: {e}", p.url)))?;
        }
    }
    let _refresher = cache.spawn_refresher();

    let mut authorize_clients = config.authorize_clients.clone();
    let dev_authorize_token = if dev_mode {
        let token = hex::encode(rand::random::<[u8; 24]>());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut sha = [0u8; 32];
        sha.copy_from_slice(digest.as_ref());
        authorize_clients.push(authorize_api::AuthorizeClient {
            name: "dev".into(),
            token_sha256: sha,
        });
        Some(token)
    } else {
        None
    };
    let leeway = config
        .provider_leeway
        .iter()
        .map(|(url, secs)| (url.clone(), time::Duration::seconds(i64::from(*secs))))
        .collect();
    let state = Arc::new(AppState {
        directory: ArcSwap::from_pointee(directory),
        directory_generation: std::sync::atomic::AtomicI64::new(directory_generation),
        directory_reload: tokio::sync::Mutex::new(()),
        keys: ArcSwap::from_pointee(keys),
        revocations: ArcSwap::from_pointee(crate::state::LiveRevocations::default()),
        revocations_swap: tokio::sync::Mutex::new(()),
        revocations_generation: std::sync::atomic::AtomicI64::new(crate::state::GENERATION_UNKNOWN),
        revocation_audit: tokio::sync::Mutex::default(),
        revocations_stale: std::sync::atomic::AtomicBool::new(false),
        keyring_path: keyring_path.clone(),
        key_sources: KeySources::new(cache, fixed),
        store,
        throttle: Throttle::new(config.throttle),
        metrics,
        clock,
        leeway,
        dev,
        authorize_clients,
        iam: iam_settings,
        audit,
        audit_fold: Default::default(),
        audit_fold_writing: Default::default(),
        audit_table: audit_table
            .as_ref()
            .map(audit_table_sink::AuditTableSink::status),
        role_usage: Default::default(),
        store_ping: Default::default(),
    });
    match state.store.role_last_used().await {
        Ok(uses) => state.role_usage.merge_saved(uses),
        Err(e) => warn!("roles' last use not read (GetRole shows it from the next flush): {e}"),
    }
    // In force before the first request; their audit records are the watcher's first job, so a
    // large outbox (rows stored before the audit marker existed) does not delay startup.
    revoke_api::load_revocations(&state).await.map_err(|e| {
        ServeError::Startup(format!(
            "revocations not loaded, so revoked sessions would be accepted; not serving: {e}"
        ))
    })?;
    tokio::spawn(watch_keyring(Arc::clone(&state)));
    tokio::spawn(watch_revocations(Arc::clone(&state)));
    tokio::spawn(watch_directory(Arc::clone(&state)));
    tokio::spawn(watch_role_usage(Arc::clone(&state)));
    tokio::spawn(watch_audit_folds(Arc::clone(&state)));

    let certificates = match &config.tls {
        Some(settings) => {
            if let Some(w) = tls::key_permissions_warning(&settings.key_file) {
                warn!("{w}");
            }
            let certs = tls::Certificates::open(
                settings.clone(),
                state.metrics.http.tls.clone(),
                state.clock.now(),
            )
            .map_err(ServeError::Startup)?;
            tokio::spawn(Arc::clone(&certs).watch());
            Some(certs)
        }
        None => {
            if !addr.ip().is_loopback() {
                warn!(
                    "serving plain HTTP on {addr}: secret keys and session tokens cross the network in clear text; configure [tls], or terminate TLS in front of keyless"
                );
            }
            None
        }
    };

    let app = router(Arc::clone(&state));
    print_banner(
        addr,
        certificates.is_some(),
        &state,
        &config.data_dir,
        dev_authorize_token.as_deref(),
    );
    http_front::serve(
        listener,
        app,
        config.http.clone(),
        certificates,
        state.metrics.http.clone(),
        shutdown_signal(),
    )
    .await;
    // Every request has been answered: write what is folded, then sign the tail of the log
    // and sync it.
    state.flush_fold_summaries(state.clock.now(), true).await;
    state.audit.shutdown().await;
    flush_role_usage(&state).await;
    if let Some(sink) = &audit_table {
        sink.shutdown().await;
    }
    info!("keyless stopped");
    Ok(())
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(query_api::handle).post(query_api::handle))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route(
            "/dev/oidc/.well-known/openid-configuration",
            get(dev::discovery),
        )
        .route("/dev/oidc/jwks", get(dev::jwks))
        .route("/dev/oidc/token", post(dev::token))
        .layer(DefaultBodyLimit::max(query_api::MAX_BODY))
        .route(
            "/v1/revocations",
            get(revoke_api::handle)
                .post(revoke_api::handle)
                .layer(DefaultBodyLimit::max(revoke_api::MAX_BODY)),
        )
        .route(
            "/v1/authorize",
            post(authorize_api::handle).layer(DefaultBodyLimit::max(authorize_api::MAX_REQUEST)),
        )
        .with_state(state)
}

/// The file `--dev` leaves in its data dir, so that it serves that data dir again.
const DEV_MARKER: &str = "dev-mode";
const DEV_MARKER_TEXT: &str =
    "Made by keyless serve --dev: its store holds only the demo entities.\n";

/// Refuses `--dev` on a data dir that a server with a config made. Dev mode applies its demo
/// entities as the config, which deletes the config's roles and providers (they come back
/// with new ids, so their live sessions end), and it would mint with that data dir's key ring.
fn refuse_a_configured_data_dir(data_dir: &Path) -> Result<(), ServeError> {
    let made_by_dev = data_dir.join(DEV_MARKER).exists();
    let used = data_dir.join(keyless_store::SQLITE_FILE).exists()
        || keyring_file::path_in(data_dir).exists();
    if used && !made_by_dev {
        return Err(ServeError::Usage(format!(
            "--dev would replace the roles and providers stored in {} with its demo ones and sign with its key ring, \
             but a server with a config made that data dir; give --dev an empty --data-dir, or leave --data-dir out",
            data_dir.display()
        )));
    }
    Ok(())
}

fn dev_config() -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 7707)),
        data_dir: std::env::temp_dir().join(format!("keyless-dev-{}", std::process::id())),
        database_url: None,
        entities: Entities::default(),
        throttle: ThrottleConfig::default(),
        provider_leeway: Default::default(),
        authorize_clients: vec![],
        builtin_guardrails: config::BuiltinGuardrails::default(),
        iam: config::IamConfig::default(),
        warnings: vec![],
        audit: Default::default(),
        http: Default::default(),
        tls: None,
        organization: None,
    }
}

/// Opens the audit log in `data_dir/audit` (or honours the benchmark switch).
fn open_audit(
    opts: &ServeOptions,
    config: &Config,
    clock: &Arc<dyn Clock>,
    ring: &KeyRing,
    retention_floor: Option<Arc<std::sync::atomic::AtomicU64>>,
) -> Result<audit::Audit, ServeError> {
    if opts.unsafe_disable_audit_for_benchmark {
        if !config.listen.ip().is_loopback() {
            return Err(ServeError::Usage(format!(
                "{} is for local benchmarks only and needs a loopback listen address, not {}",
                audit::DISABLE_FLAG,
                config.listen
            )));
        }
        warn!(
            "AUDIT DISABLED by {}: nothing is recorded and /readyz answers 503; never serve real traffic like this",
            audit::DISABLE_FLAG
        );
        return Ok(audit::Audit::disabled_for_benchmark());
    }
    let dir = config.data_dir.join("audit");
    let (log, report) = audit::Audit::open(
        &config.audit,
        dir,
        audit::writer_clock(Arc::clone(clock)),
        ring,
        opts.parked_workers.clone(),
        retention_floor,
    )
    .map_err(ServeError::Startup)?;
    if report.truncated_bytes > 0 {
        warn!(
            bytes = report.truncated_bytes,
            file = %report.current_file.display(),
            "audit log: cut a torn final line left by a crash (it was never acknowledged)"
        );
    }
    Ok(log)
}

/// Binds the config roles' trust principals to the unique ids of the roles they name once the
/// config is applied, at every start (the config is the source of truth). A principal naming no
/// role stops start-up, as IAM refuses to save such a policy.
async fn bind_config_trust(
    entities: &mut Entities,
    store: &dyn Store,
    config_file: Option<&Path>,
) -> Result<(), ServeError> {
    let stored = store.load().await?;
    keyless_core::trust_binding::bind_config_roles(&mut entities.roles, &stored).map_err(|e| {
        ServeError::Config(ConfigError {
            file: config_file.map_or_else(|| "the --dev config".into(), Into::into),
            line: 0,
            column: 0,
            message: format!("role {}: {}", e.role, e.message),
        })
    })
}

/// Refuses a config that no longer declares an account whose API-created roles, providers or
/// policies are still in the store. Applied, it removed the account but not them: the roles kept
/// issuing credentials, outside their OU, so the OU's guardrails stopped applying to them.
async fn refuse_orphaned_accounts(
    entities: &Entities,
    store: &dyn Store,
    config_file: Option<&Path>,
) -> Result<(), ServeError> {
    let stored = store.load().await?;
    let declared = |a: keyless_types::AccountId| entities.accounts.iter().any(|x| x.id == a);
    let mut orphans: std::collections::BTreeMap<keyless_types::AccountId, Vec<String>> =
        Default::default();
    let api = keyless_core::model::Origin::Api;
    for r in stored.roles.iter().filter(|r| r.origin == api) {
        orphans.entry(r.account).or_default().push(r.arn());
    }
    for p in stored.providers.iter().filter(|p| p.origin == api) {
        orphans.entry(p.account).or_default().push(p.arn());
    }
    for m in stored.policies.iter().filter(|m| m.origin == api) {
        orphans.entry(m.account).or_default().push(m.arn());
    }
    orphans.retain(|a, _| !declared(*a));
    let Some((account, arns)) = orphans.into_iter().next() else {
        return Ok(());
    };
    let shown: Vec<&str> = arns.iter().take(5).map(String::as_str).collect();
    let more = arns.len().saturating_sub(shown.len());
    Err(ServeError::Config(ConfigError {
        file: config_file.map_or_else(|| "the --dev config".into(), Into::into),
        line: 0,
        column: 0,
        message: format!(
            "account {account} is not declared any more, but the store holds what the IAM API created in it: {}{}; \
             without the account its roles would keep issuing credentials outside its OU and its guardrails; \
             keep the [[accounts]] entry, or delete those through the IAM API first",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    }))
}

async fn load_directory(
    store: &dyn Store,
    organization: Option<Arc<keyless_core::organization::Organization>>,
) -> Result<Directory, ServeError> {
    let entities = store.load().await?;
    let directory = Directory::build_in_organization(&entities, organization);
    for p in &directory.problems {
        error!("{p}");
    }
    for label in directory.policies_naming_absent_org_keys() {
        warn!(
            "the {label} names an aws:PrincipalOrg…/aws:ResourceOrg… key, but no [organization] is declared, so the key is absent and that condition never matches; declare your AWS Organizations ids in [organization]"
        );
    }
    Ok(directory)
}

/// The ring plus what is derived from it.
fn keys_of(ring: KeyRing) -> Result<Keys, ServeError> {
    let sealer = message_sealer(&ring).map_err(ServeError::Startup)?;
    Ok(Keys::new(ring, Arc::new(sealer)))
}

/// The sealer of encoded authorization messages, from the ring: messages decode after a
/// restart, on every replica holding the ring, and across rotations.
fn message_sealer(ring: &KeyRing) -> Result<MessageSealer, String> {
    let keys = ring
        .authorization_message_keys()
        .map_err(|e| format!("key ring: {e}"))?;
    let borrowed: Vec<(u32, &SecretBytes)> = keys.iter().map(|(id, k)| (*id, k)).collect();
    MessageSealer::versioned(&borrowed).map_err(|e| e.to_string())
}

/// Reloads the key ring when `keyless keys rotate` rewrites it.
async fn watch_keyring(state: Arc<AppState>) {
    let mut last = keyring_file::modified(&state.keyring_path);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = keyring_file::modified(&state.keyring_path);
        if now == last {
            continue;
        }
        last = now;
        match keyring_file::load(&state.keyring_path) {
            Ok(ring) => match message_sealer(&ring) {
                Ok(sealer) => {
                    state.audit.rotate_signer(&ring);
                    let versions = ring.versions().len();
                    state
                        .keys
                        .store(Arc::new(Keys::new(ring, Arc::new(sealer))));
                    info!(versions, "key ring reloaded");
                }
                Err(e) => error!("key ring not reloaded, keeping the previous one: {e}"),
            },
            Err(e) => error!("key ring not reloaded, keeping the previous one: {e}"),
        }
    }
}

/// How often the store is asked whether the directory changed: IAM changes made through another
/// replica (roles, trust and permission policies, providers, guardrails) are in force here
/// within this.
const DIRECTORY_POLL: Duration = Duration::from_secs(1);

/// Rebuilds the directory when another replica's IAM write advanced the store's generation.
async fn watch_directory(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(DIRECTORY_POLL).await;
        match state.store.directory_generation().await {
            Ok(g)
                if g != state
                    .directory_generation
                    .load(std::sync::atomic::Ordering::Relaxed) =>
            {
                let _serialized = state.directory_reload.lock().await;
                match iam_api::reload_directory(&state).await {
                    Ok(()) => info!(generation = g, "directory reloaded: changed in the store"),
                    Err(e) => warn!("directory not reloaded, keeping the previous one: {e}"),
                }
            }
            Ok(_) => {}
            Err(e) => warn!("directory changes not polled: {e}"),
        }
    }
}

/// How often this server writes the roles it issued sessions for and reads back every
/// server's: `GetRole` on another replica shows a use within this. IAM itself takes hours.
const ROLE_USAGE_FLUSH: Duration = Duration::from_secs(30);

async fn watch_role_usage(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(ROLE_USAGE_FLUSH).await;
        flush_role_usage(&state).await;
    }
}

/// Writes the role uses noted since the last flush and takes in every server's.
pub async fn flush_role_usage(state: &AppState) {
    let uses = state.role_usage.take_unsaved();
    if !uses.is_empty()
        && let Err(e) = state.store.record_role_use(&uses).await
    {
        warn!("roles' last use not written, retried at the next flush: {e}");
        state.role_usage.unsaved_again(uses);
        return;
    }
    match state.store.role_last_used().await {
        Ok(stored) => state.role_usage.merge_saved(stored),
        Err(e) => warn!("roles' last use not read: {e}"),
    }
}

/// How often the store is asked whether revocations changed. Revocations written by another
/// process (`keyless revoke --data-dir`, another replica) take effect within this.
const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// How often the poll compares the store's stamp even though the revocations generation stood
/// still: the store's triggers move it for every writer, so this only catches writes that
/// bypassed them (Postgres with `session_replication_role = replica`, a restore with triggers
/// disabled), which take up to this long to be in force.
const REVOCATION_STAMP_SAFETY_NET: Duration = Duration::from_secs(10);

/// How often expired revocations are purged from the store.
const REVOCATION_PURGE: Duration = Duration::from_secs(60);

/// How often a pass over unaudited revocations is retried when the last one left some.
const REVOCATION_AUDIT_RETRY: Duration = Duration::from_secs(2);

/// Keeps the in-memory revocations in step with the store, purges expired ones, and records
/// the revocations that have no durable audit record yet ([`revoke_api::audit_unaudited`]).
async fn watch_revocations(state: Arc<AppState>) {
    revoke_api::audit_unaudited(&state).await;
    let mut last_purge = std::time::Instant::now();
    let mut last_audit = std::time::Instant::now();
    let mut last_stamp_check = std::time::Instant::now();
    loop {
        tokio::time::sleep(REVOCATION_POLL).await;
        if last_purge.elapsed() >= REVOCATION_PURGE {
            last_purge = std::time::Instant::now();
            match state.store.purge_revocations(state.clock.now()).await {
                Ok(0) => {}
                Ok(n) => info!(purged = n, "expired revocations purged"),
                Err(e) => warn!("expired revocations not purged: {e}"),
            }
            // Rebuild even if nothing was purged, so expired entries leave the set. This reads
            // the stamp too, so it stands for the safety net's check.
            revoke_api::reload_revocations(&state, revoke_api::Rebuild::Always).await;
            last_stamp_check = std::time::Instant::now();
            continue;
        }
        let safety_net = last_stamp_check.elapsed() >= REVOCATION_STAMP_SAFETY_NET;
        match revoke_api::poll_revocations(&state, safety_net).await {
            Ok(polled) => {
                if polled != revoke_api::Polled::Quiet {
                    last_stamp_check = std::time::Instant::now();
                }
                if polled != revoke_api::Polled::Reloaded
                    && last_audit.elapsed() >= REVOCATION_AUDIT_RETRY
                {
                    last_audit = std::time::Instant::now();
                    retry_pending_audit(&state).await;
                }
            }
            Err(e) => warn!("revocations not polled: {e}"),
        }
    }
}

/// Records the revocations a previous pass left unaudited, if it left any.
async fn retry_pending_audit(state: &AppState) {
    // The guard is dropped at the end of this statement: the pass takes the lock.
    let pending = state.revocation_audit.lock().await.pending;
    if pending {
        revoke_api::audit_unaudited(state).await;
    }
}

/// Most cold issuers `/readyz` names.
const READYZ_ISSUERS_NAMED: usize = 5;

/// Whether the issuers' keys let this server serve, and the `issuer keys:` line. Only the
/// issuers a config-file provider names (the operator's own) gate readiness, and only they are
/// named: any account's IAM admin can create a provider, and one whose issuer never answers
/// would otherwise take every replica out of service for every account. The answer is
/// unauthenticated, so IAM-created ones are only counted; their own tokens are refused
/// (`IDPCommunicationError`) until their keys come.
fn issuer_readiness(state: &AppState) -> (bool, String) {
    let cold = state.key_sources.cache().cold_issuers();
    if cold.is_empty() {
        return (true, "warm".into());
    }
    let directory = state.directory.load();
    let from_config = |url: &str| {
        directory
            .providers()
            .any(|p| p.url == url && p.origin == keyless_core::model::Origin::Config)
    };
    let (gating, api): (Vec<&String>, Vec<&String>) = cold.iter().partition(|u| from_config(u));
    let mut line = String::new();
    if gating.is_empty() {
        line.push_str("warm for the config's providers");
    } else {
        let named: Vec<&str> = gating
            .iter()
            .take(READYZ_ISSUERS_NAMED)
            .map(|u| u.as_str())
            .collect();
        line.push_str("not fetched for ");
        line.push_str(&named.join(", "));
        if gating.len() > named.len() {
            line.push_str(&format!(" and {} more", gating.len() - named.len()));
        }
        line.push_str(" (see the log)");
    }
    if !api.is_empty() {
        let n = api.len();
        line.push_str(&format!(
            "; not fetched for {n} provider{} created through the IAM API (their tokens are refused until they are)",
            if n == 1 { "" } else { "s" }
        ));
    }
    (gating.is_empty(), line)
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let store_ok = state
        .store_ping
        .reachable(std::time::Instant::now(), || async {
            state.store.ping().await.is_ok()
        })
        .await;
    let (keys_ok, keys_line) = issuer_readiness(&state);
    let (audit_ok, audit_line) = state.audit.readiness();
    let revocations_ok = !state
        .revocations_stale
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut body = format!(
        "store: {}\nissuer keys: {keys_line}\n{audit_line}\nrevocations: {}\n",
        if store_ok { "ok" } else { "unreachable" },
        if revocations_ok {
            "in force"
        } else {
            "not reloaded (see the log): revocations made since are not in force here"
        }
    );
    // Informational (see `audit::LOW_FREE_BYTES`).
    if let Some(line) = state.audit.volume_line() {
        body.push_str(&line);
        body.push('\n');
    }
    // Informational: the file is the durable record, so a lagging table never fails readiness.
    if let Some(table) = &state.audit_table {
        body.push_str(&table.line());
        body.push('\n');
    }
    let status = if store_ok && keys_ok && audit_ok && revocations_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let stats = state.key_sources.cache().metrics();
    state
        .metrics
        .jwks_fetches
        .inner()
        .store(stats.fetches, std::sync::atomic::Ordering::Relaxed);
    state
        .metrics
        .jwks_failures
        .inner()
        .store(stats.failures, std::sync::atomic::Ordering::Relaxed);
    let audit = state.audit.writer_stats();
    let m = &state.metrics;
    m.audit_records
        .inner()
        .store(audit.records, std::sync::atomic::Ordering::Relaxed);
    m.audit_commits
        .inner()
        .store(audit.commits, std::sync::atomic::Ordering::Relaxed);
    m.audit_gathered_commits
        .inner()
        .store(audit.gathered, std::sync::atomic::Ordering::Relaxed);
    m.audit_paced_commits
        .inner()
        .store(audit.paced, std::sync::atomic::Ordering::Relaxed);
    m.audit_removed_files
        .inner()
        .store(audit.removed_files, std::sync::atomic::Ordering::Relaxed);
    m.audit_volume_free_bytes.set(
        state
            .audit
            .free_bytes()
            .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Writes the fold summaries as they fall due ([`audit_fold`]): checked every second, so a
/// summary is written at most a second after its window closes or its source goes quiet.
async fn watch_audit_folds(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.flush_fold_summaries(state.clock.now(), false).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `word` as one shell word that zsh, bash and sh read back as it is: single-quoted unless it
/// holds only characters no shell treats specially. An IPv6 listen address's brackets are a glob
/// pattern, which zsh refuses when no file matches it.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn print_banner(
    addr: SocketAddr,
    https: bool,
    state: &AppState,
    data_dir: &Path,
    authorize_token: Option<&str>,
) {
    let mut out = std::io::stdout().lock();
    let scheme = if https { "https" } else { "http" };
    let _ = writeln!(out, "keyless listening on {scheme}://{addr}");
    if let Some(d) = &state.dev {
        let role = format!("arn:aws:iam::{}:role/{}", dev::DEMO_ACCOUNT, dev::DEMO_ROLE);
        // The program as it was started, so the commands paste as they are (cargo run included).
        // Both region variables: the SDKs read AWS_REGION, the AWS CLI v1 and boto3 only
        // AWS_DEFAULT_REGION (without it the credential-chain line fails for want of a region).
        let program = std::env::current_exe()
            .map_or_else(|_| "keyless".to_owned(), |p| p.display().to_string());
        let _ = writeln!(
            out,
            r#"
Development mode: an OIDC issuer at {issuer}, account {acct}, role {role}
(trusts tokens whose sub matches {pattern}). Data: {data}. Try, in another shell:

  export AWS_ENDPOINT_URL_STS={url} AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  TOKEN=$({program} dev token --endpoint {url} --sub {sub})
  aws sts assume-role-with-web-identity --role-arn {role} \
      --role-session-name demo --web-identity-token "$TOKEN"

  # or let the SDK credential chain do it:
  echo "$TOKEN" > {token_file}
  AWS_ROLE_ARN={role} AWS_WEB_IDENTITY_TOKEN_FILE={token_file} aws sts get-caller-identity

Authorize API (POST http://{addr}/v1/authorize): Authorization: Bearer {authz}
"#,
            authz = authorize_token.unwrap_or("-"),
            issuer = d.issuer,
            acct = dev::DEMO_ACCOUNT,
            pattern = dev::DEMO_SUB_PATTERN,
            data = data_dir.display(),
            token_file = shell_word(&data_dir.join("web-identity-token").display().to_string()),
            url = shell_word(&format!("http://{addr}")),
            program = shell_word(&program),
            sub = dev::DEMO_SUB,
        );
    }
    let _ = out.flush();
}
