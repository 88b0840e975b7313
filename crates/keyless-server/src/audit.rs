//! The audit trail at the edge: the `[audit]` settings, the [`Audit`] handle in [`AppState`]
//! and the builders that turn an STS call or an authorize decision into a
//! [`keyless_audit::AuditEvent`].
//!
//! STS calls are recorded durably before the answer leaves (issuing calls fail closed with
//! `ServiceUnavailable` 503 if the record cannot be written). Repeated refusals of anonymous
//! calls from one source are counted into summary records instead ([`crate::audit_fold`]). `/v1/authorize` decisions are
//! queued without waiting for the disk (they carry no credential; a gateway should not wait for
//! an fsync), allows sampled at `authorize_allow_sample_rate`, denies always; if the log is down
//! the authorize API answers 503 as well.
//!
//! Other handlers (revocation, IAM) record their own events with [`Audit::record_durable`] and
//! [`keyless_event`].
//!
//! [`AppState`]: crate::state::AppState

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keyless_audit::chain::DigestSigner;
use keyless_audit::event::{SOURCE_KEYLESS, SOURCE_STS, UserIdentity};
use keyless_audit::record::{
    AssumedRoleUserRef, Bounded, Claims, CredentialsRef, EventRef, Ip, IssuedRef, Joined,
    KeyRingVersion, Prefix, Principal, Record, Seconds, SessionAttributesRef, SessionContextRef,
    SessionIssuerRef, UserIdentityRef, WebIdRef,
};
use keyless_audit::writer::OpenReport;
use keyless_audit::writer::{Load, MIN_RETENTION, ParkedWorkers};
use keyless_audit::{AuditEvent, AuditLog, WriterConfig};
use keyless_core::caller::Caller;
use keyless_core::error::ApiError;
use keyless_core::sts::Issued;
use keyless_token::{FederatedFacts, KeyRing};
use keyless_types::{Clock, OffsetDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::error;

/// The `[audit]` table of the config file (every key optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Also write every record to stdout as a JSON line, after it is durable in the file.
    #[serde(default)]
    pub stdout: bool,
    /// Rotate the file at this size (bytes, at least 1024).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotate the file after this many seconds.
    #[serde(default = "default_max_file_age")]
    pub max_file_age_seconds: u64,
    /// Write a signed digest after this many records...
    #[serde(default = "default_digest_every")]
    pub digest_every_records: u64,
    /// ...or this many seconds after the first unsigned record.
    #[serde(default = "default_digest_interval")]
    pub digest_interval_seconds: u64,
    /// How long the writer gathers records before one fsync (microseconds).
    #[serde(default = "default_batch_wait")]
    pub max_batch_wait_micros: u64,
    /// While the request workers are saturated, how old the oldest waiting record of a batch
    /// gets before its fsync (microseconds; default 2000; 0: sync as soon as the previous sync
    /// returns, which is also what an unsaturated server does). A batch is committed sooner
    /// when a request worker runs out of work (`keyless serve` attaches the runtime's park
    /// hooks), so a long wait never idles the core.
    #[serde(default = "default_busy_batch_wait")]
    pub busy_batch_wait_micros: u64,
    /// At most one fsync starts per this interval (microseconds; default 1000; 0: no pacing).
    /// Between idle and saturated, records come one or two per fsync and the fsyncs' own CPU
    /// would outweigh the records'; pacing caps their rate and adds at most this much to a
    /// request. An fsync due longer than this after the previous one's start is not held back.
    #[serde(default = "default_min_sync_interval")]
    pub min_sync_interval_micros: u64,
    /// Share of allowed `/v1/authorize` decisions recorded (0.0-1.0); denies are always recorded.
    #[serde(default = "default_sample_rate")]
    pub authorize_allow_sample_rate: f64,
    /// Remove log files closed (by their signed digest) more than this many days ago (at
    /// least 1; absent: keep every file). A signed retention record accounts for them, so `keyless audit verify`
    /// still passes; with Postgres, files the audit table has not copied yet are kept.
    #[serde(default)]
    pub retention_days: Option<u64>,
}

fn default_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_max_file_age() -> u64 {
    86_400
}
fn default_digest_every() -> u64 {
    1000
}
fn default_digest_interval() -> u64 {
    60
}
fn default_batch_wait() -> u64 {
    // Measured: 1 ms halved issuance throughput on a busy 2-core machine (the writer thread
    // oversleeps under CPU contention); 200 µs did as well as none.
    200
}
fn default_busy_batch_wait() -> u64 {
    // Measured (256 connections, one core): every sync cycle costs this VM far more CPU than
    // its records; 2 ms took batches from ~5 to ~20-27 records and issuance from 5.8k to
    // 8.4-10.7k/s. 5 ms did better still (~80 records, 14k/s) but puts 5 ms on every loaded
    // request; 2 ms keeps the added latency small.
    2000
}
fn default_min_sync_interval() -> u64 {
    // Measured (load run, one core, ext4 on virtio, AssumeRoleWithWebIdentity at half of
    // peak): unpaced, 6.4k syncs a second of 2.2 records, 53 µs of CPU per request and p99
    // 16-19 ms; 500 µs: 41.5 µs, p99 5.9 ms; 1000 µs: 38.3 µs, p50 0.83 ms, p99 5.0-5.9 ms;
    // 2000 µs: 36.7 µs but p50 1.4 ms. Peak throughput was the same for all four.
    1000
}
fn default_sample_rate() -> f64 {
    1.0
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            stdout: false,
            max_file_bytes: default_max_file_bytes(),
            max_file_age_seconds: default_max_file_age(),
            digest_every_records: default_digest_every(),
            digest_interval_seconds: default_digest_interval(),
            max_batch_wait_micros: default_batch_wait(),
            busy_batch_wait_micros: default_busy_batch_wait(),
            min_sync_interval_micros: default_min_sync_interval(),
            authorize_allow_sample_rate: default_sample_rate(),
            retention_days: None,
        }
    }
}

impl AuditSettings {
    /// Checks the bounds; the message names the key and the allowed range.
    pub fn check(&self) -> Result<(), String> {
        if self.max_file_bytes < 1024 {
            return Err("[audit] max_file_bytes must be at least 1024".into());
        }
        if self.max_file_age_seconds == 0 {
            return Err("[audit] max_file_age_seconds must be at least 1".into());
        }
        if !(1..=1_000_000).contains(&self.digest_every_records) {
            return Err("[audit] digest_every_records must be 1-1000000".into());
        }
        if !(1..=86_400).contains(&self.digest_interval_seconds) {
            return Err("[audit] digest_interval_seconds must be 1-86400".into());
        }
        if self.max_batch_wait_micros > 100_000 {
            return Err("[audit] max_batch_wait_micros must be at most 100000 (0.1 s)".into());
        }
        if self.busy_batch_wait_micros > 100_000 {
            return Err("[audit] busy_batch_wait_micros must be at most 100000 (0.1 s)".into());
        }
        if self.min_sync_interval_micros > 100_000 {
            return Err("[audit] min_sync_interval_micros must be at most 100000 (0.1 s)".into());
        }
        if !(0.0..=1.0).contains(&self.authorize_allow_sample_rate) {
            return Err("[audit] authorize_allow_sample_rate must be between 0.0 and 1.0".into());
        }
        if self
            .retention_days
            .is_some_and(|d| !(1..=36_500).contains(&d))
        {
            return Err(
                "[audit] retention_days must be 1-36500 (a live session must stay in the log); leave it out to keep every file"
                    .into(),
            );
        }
        Ok(())
    }

    /// The writer settings for `dir`.
    pub fn writer_config(&self, dir: std::path::PathBuf) -> WriterConfig {
        WriterConfig {
            max_file_bytes: self.max_file_bytes,
            max_file_age: Duration::from_secs(self.max_file_age_seconds),
            digest_every_records: self.digest_every_records,
            digest_interval: Duration::from_secs(self.digest_interval_seconds),
            max_batch_wait: Duration::from_micros(self.max_batch_wait_micros),
            busy_batch_wait: Duration::from_micros(self.busy_batch_wait_micros),
            min_sync_interval: Duration::from_micros(self.min_sync_interval_micros),
            stdout: self.stdout,
            retention: self
                .retention_days
                .map(|d| Duration::from_secs(d.saturating_mul(86_400)).max(MIN_RETENTION)),
            ..WriterConfig::new(dir)
        }
    }
}

/// The name of the serve flag that turns auditing off (benchmarks only).
pub const DISABLE_FLAG: &str = "--unsafe-disable-audit-for-benchmark";

/// The audit handle of the server.
#[derive(Debug)]
pub struct Audit {
    log: Option<AuditLog>,
    allow_sample_rate: f64,
    /// The log's directory (for its file system's free space).
    dir: Option<std::path::PathBuf>,
}

/// Below this much free space on the audit volume `/readyz` says so (readiness itself does not
/// fail: writes still succeed, and an answer an attacker can drive should not take a healthy
/// replica out of rotation; alert on `keyless_audit_volume_free_bytes` instead).
pub const LOW_FREE_BYTES: u64 = 1 << 30;

/// `ServiceUnavailable` (503), what issuance answers when its record cannot be written.
pub fn unavailable() -> ApiError {
    ApiError::new(
        "ServiceUnavailable",
        503,
        "The service is unavailable. Please try again later.",
    )
}

/// The busy time of the Tokio runtime's workers (wall time spent polling tasks), which tells
/// the audit writer whether the request side is saturated.
#[derive(Debug)]
struct RuntimeLoad(tokio::runtime::Handle);

impl Load for RuntimeLoad {
    fn busy(&self) -> (Duration, usize) {
        let metrics = self.0.metrics();
        let workers = metrics.num_workers();
        let busy = (0..workers)
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum();
        (busy, workers)
    }
}

/// Debug builds only: the environment variable naming a file that holds a number of seconds
/// by which the audit writer's clock (the time of digests and retention records, and the "now"
/// retention judges age by) runs ahead, re-read every 100 ms, so that end-to-end tests can age
/// a log without waiting days. Release builds ignore it.
pub const DEBUG_WRITER_CLOCK_OFFSET_FILE_ENV: &str = "KEYLESS_DEBUG_AUDIT_CLOCK_OFFSET_FILE";

/// The clock the audit writer runs on: `clock`, or in a debug build with
/// [`DEBUG_WRITER_CLOCK_OFFSET_FILE_ENV`] set, `clock` moved by the file's offset.
pub fn writer_clock(clock: Arc<dyn Clock>) -> Arc<dyn Clock> {
    #[cfg(debug_assertions)]
    if let Some(file) = std::env::var_os(DEBUG_WRITER_CLOCK_OFFSET_FILE_ENV) {
        tracing::warn!(
            file = %std::path::Path::new(&file).display(),
            "{DEBUG_WRITER_CLOCK_OFFSET_FILE_ENV} moves the audit writer's clock (debug build, tests only)"
        );
        return Arc::new(OffsetClock {
            inner: clock,
            file: file.into(),
            offset: std::sync::Mutex::new(None),
        });
    }
    clock
}

#[cfg(debug_assertions)]
struct OffsetClock {
    inner: Arc<dyn Clock>,
    file: std::path::PathBuf,
    /// When the file was last read, and the offset it held.
    offset: std::sync::Mutex<Option<(std::time::Instant, time::Duration)>>,
}

#[cfg(debug_assertions)]
impl Clock for OffsetClock {
    fn now(&self) -> time::OffsetDateTime {
        let mut cached = self
            .offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset = match *cached {
            Some((read, offset)) if read.elapsed() < Duration::from_millis(100) => offset,
            _ => {
                let offset = std::fs::read_to_string(&self.file)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .map_or(time::Duration::ZERO, time::Duration::seconds);
                *cached = Some((std::time::Instant::now(), offset));
                offset
            }
        };
        self.inner.now().saturating_add(offset)
    }
}

/// The audit public key of every key-ring version: the keys a digest may be signed under
/// (pins for `keyless audit verify`, and what dates files for retention).
pub fn audit_public_keys(ring: &KeyRing) -> Result<BTreeMap<u32, [u8; 32]>, String> {
    let mut keys = BTreeMap::new();
    for (version, _) in ring.versions() {
        if let Some(key) = ring
            .audit_public_key(version)
            .map_err(|e| format!("audit key of key-ring version {version}: {e}"))?
        {
            keys.insert(version, key);
        }
    }
    Ok(keys)
}

/// The digest signer of the ring's newest version.
pub fn signer_of(ring: &KeyRing) -> Result<DigestSigner, String> {
    let (version, pair) = ring
        .audit_signing_key()
        .map_err(|e| format!("audit signing key: {e}"))?;
    Ok(DigestSigner::new(version, pair))
}

impl Audit {
    /// Opens the log in `dir`.
    pub fn open(
        settings: &AuditSettings,
        dir: std::path::PathBuf,
        clock: Arc<dyn Clock>,
        ring: &KeyRing,
        parked: Option<Arc<ParkedWorkers>>,
        retention_floor: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) -> Result<(Audit, OpenReport), String> {
        let mut config = settings.writer_config(dir.clone());
        config.retention_floor = retention_floor;
        config.retention_keys = audit_public_keys(ring)?;
        // Loaded batches are gathered only while the request workers are saturated, and no
        // longer than until one of them runs out of work.
        config.load = tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| Arc::new(RuntimeLoad(h)) as Arc<dyn Load>);
        config.parked = parked;
        let (log, report) =
            AuditLog::open(config, clock, signer_of(ring)?).map_err(|e| e.to_string())?;
        Ok((
            Audit {
                log: Some(log),
                allow_sample_rate: settings.authorize_allow_sample_rate,
                dir: Some(dir),
            },
            report,
        ))
    }

    /// No audit at all: only for throughput benchmarks ([`DISABLE_FLAG`]); `/readyz` then
    /// answers 503 so no load balancer sends real traffic here.
    pub fn disabled_for_benchmark() -> Audit {
        Audit {
            log: None,
            allow_sample_rate: 0.0,
            dir: None,
        }
    }

    /// The writer's counters (commits and records so far); zero when the log is disabled.
    pub fn writer_stats(&self) -> keyless_audit::writer::WriterStats {
        self.log.as_ref().map(AuditLog::stats).unwrap_or_default()
    }

    /// Whether records are written.
    pub fn enabled(&self) -> bool {
        self.log.is_some()
    }

    /// Bytes an unprivileged writer may still use on the log's file system (`statvfs`), `None`
    /// when unknown or auditing is off.
    pub fn free_bytes(&self) -> Option<u64> {
        let dir = self.dir.as_ref()?;
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// The `/readyz` line about the audit volume's free space (informational), if known.
    pub fn volume_line(&self) -> Option<String> {
        let free = self.free_bytes()?;
        let mib = free / (1024 * 1024);
        Some(if free < LOW_FREE_BYTES {
            format!(
                "audit volume: LOW, {mib} MiB free (audit writes fail closed, and issuance with them, when it is full)"
            )
        } else {
            format!("audit volume: {mib} MiB free")
        })
    }

    /// The `/readyz` line, and whether the log is fine.
    pub fn readiness(&self) -> (bool, String) {
        match &self.log {
            None => (
                false,
                format!(
                    "audit log: DISABLED by {DISABLE_FLAG}; never serve real traffic like this"
                ),
            ),
            Some(log) => match log.failure() {
                None => match log.file_missing() {
                    None => (true, "audit log: ok".into()),
                    Some(reason) => (false, format!("audit log: {reason}")),
                },
                Some(reason) => (
                    false,
                    format!("audit log: failed, issuance refused until restart: {reason}"),
                ),
            },
        }
    }

    /// Writes `event` and waits until it is durable; `ServiceUnavailable` if it cannot be. The
    /// entry point for every handler that must not answer before its record is on disk
    /// (revocations, IAM changes, custom events). Returns the record's `seq`, `None` when
    /// auditing is disabled (nothing was written).
    pub async fn record_durable<T: Record + ?Sized>(
        &self,
        event: &T,
    ) -> Result<Option<u64>, ApiError> {
        let Some(log) = &self.log else {
            return Ok(None);
        };
        log.record_durable(event).await.map(Some).map_err(|e| {
            error!(event = event.event_name(), "audit record not written: {e}");
            unavailable()
        })
    }

    /// Queues `event` without waiting for the disk; `ServiceUnavailable` if the log is down.
    pub async fn record<T: Record + ?Sized>(&self, event: &T) -> Result<(), ApiError> {
        let Some(log) = &self.log else { return Ok(()) };
        log.record(event).await.map_err(|e| {
            error!(event = event.event_name(), "audit record not queued: {e}");
            unavailable()
        })
    }

    /// Whether to record an allowed authorize decision (denies are always recorded).
    pub fn sample_allow(&self) -> bool {
        self.allow_sample_rate >= 1.0
            || (self.allow_sample_rate > 0.0 && rand::random::<f64>() < self.allow_sample_rate)
    }

    /// The share of allowed authorize decisions recorded.
    pub fn allow_sample_rate(&self) -> f64 {
        self.allow_sample_rate
    }

    /// Uses the ring's newest version for digests from now on.
    pub fn rotate_signer(&self, ring: &KeyRing) {
        if let Some(log) = &self.log {
            match signer_of(ring) {
                Ok(s) => log.set_signer(s),
                Err(e) => error!("audit digests keep the previous key: {e}"),
            }
        }
    }

    /// Commits what is queued, signs the tail and stops the writer.
    pub async fn shutdown(&self) {
        if let Some(log) = &self.log {
            log.shutdown().await;
        }
    }
}

/// A fresh random event id (UUID v4 text).
pub fn event_id() -> String {
    crate::xml::request_id()
}

/// A pre-filled event of keyless's own (`eventSource` `keyless`, `eventType` `KeylessEvent`),
/// e.g. `keyless_event(now, "RevokeSessions", request_id)`; set `user_identity`,
/// `request_parameters`, `response_elements` (and `fail` on error), then
/// [`Audit::record_durable`].
pub fn keyless_event(now: OffsetDateTime, event_name: &str, request_id: &str) -> AuditEvent {
    let mut e = AuditEvent::new(now, SOURCE_KEYLESS, event_name, request_id, event_id());
    e.event_type = "KeylessEvent".into();
    e
}

/// The record of a revocation written from its store row: one an operator wrote to the store
/// (`keyless revoke --data-dir`), recorded by the server that loads it (`source`
/// `keyless-store`) or, when no server holds the log, by the CLI itself (`source`
/// `keyless-cli`). `recovered` marks a row whose own writer did not record it (killed between
/// the store write and its record, or another replica's): `additionalEventData.recovered`.
/// `responseElements` is the revocation with its store id, which is how a record is matched to
/// its revocation.
pub fn operator_revocation_event(
    now: OffsetDateTime,
    revocation: &keyless_core::revocation::Revocation,
    source: &str,
    recovered: bool,
) -> AuditEvent {
    let mut event = keyless_event(now, "RevokeSessions", &crate::xml::request_id());
    event.source_ip_address = source.into();
    event.user_identity.kind = "Operator".into();
    event.user_identity.principal_id = Some(revocation.spec.created_by.clone());
    event.response_elements = Some(revocation.to_json());
    if recovered {
        event.additional_event_data = Some(json!({ "recovered": true }));
    }
    event
}

/// Whether `event` records the revocation with store id `id` (see
/// [`operator_revocation_event`]; API revocations carry the same `responseElements`).
pub fn records_revocation(event: &AuditEvent, id: i64) -> bool {
    event.event_source == SOURCE_KEYLESS
        && event.event_name == "RevokeSessions"
        && event
            .response_elements
            .as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            == Some(id)
}

/// A pre-filled event for a call made by an authenticated caller (IAM actions, revocations
/// through the API): `eventSource` is e.g. [`keyless_audit::event::SOURCE_IAM`] or
/// [`SOURCE_KEYLESS`], `userIdentity` is the caller's session. Set `request_parameters`
/// (allow-listed: never a secret), `response_elements` and `fail` on error, then
/// [`Audit::record_durable`] before answering.
pub fn caller_event(
    now: OffsetDateTime,
    event_source: &str,
    event_name: &str,
    request_id: &str,
    caller: &Caller,
    source_ip: IpAddr,
) -> AuditEvent {
    let mut e = AuditEvent::new(now, event_source, event_name, request_id, event_id());
    let facts = CallerFacts::of(caller);
    e.user_identity = facts.identity();
    e.recipient_account_id = Some(facts.account);
    e.source_ip_address = source_ip.to_string();
    if event_source == SOURCE_KEYLESS {
        e.event_type = "KeylessEvent".into();
    }
    e
}

/// What the query handler learned while serving a call, for its record.
#[derive(Debug, Default)]
pub struct CallFacts {
    /// The authenticated caller of a signed call.
    pub caller: Option<CallerFacts>,
    /// The access key id a refused signed call claimed (from its credential scope).
    pub claimed_access_key_id: Option<String>,
    /// The token's unverified `iss` (web identity).
    pub token_issuer: Option<String>,
    /// What was issued.
    pub issued: Option<IssuedFacts>,
    /// Trust-policy findings accepted with `keyless:acknowledge-risk` (IAM role writes).
    pub acknowledged_risks: Vec<Value>,
    /// The role the call named is configured (web identity: looked up and found).
    pub role_found: bool,
    /// The session token a refused signed call presented opened under the key ring: a genuine
    /// session (live, revoked, expired or not yet valid), not a forgery.
    pub genuine_session: bool,
}

impl CallFacts {
    /// Whether the call reached no real principal: no verified caller, nothing issued, no
    /// configured role found, no genuine session token presented. Only such calls' refusals
    /// may be folded ([`crate::audit_fold`]) and have their parameters capped.
    pub fn is_anonymous(&self) -> bool {
        self.caller.is_none() && self.issued.is_none() && !self.role_found && !self.genuine_session
    }
}

/// The caller of a signed call.
#[derive(Debug, Clone)]
pub struct CallerFacts {
    access_key_id: String,
    arn: String,
    user_id: String,
    account: String,
    role_arn: String,
    role_id: String,
    role_name: String,
    issued_at: OffsetDateTime,
    source_identity: Option<String>,
    federated: Option<FederatedFacts>,
    mfa: bool,
}

impl CallerFacts {
    /// Copies what the record needs from a verified caller.
    pub fn of(caller: &Caller) -> CallerFacts {
        let c = caller.claims();
        CallerFacts {
            access_key_id: caller.access_key_id().to_owned(),
            arn: caller.arn().to_owned(),
            user_id: caller.user_id(),
            account: caller.account().to_string(),
            role_arn: c.role_arn.clone(),
            role_id: c.role_id.clone(),
            role_name: caller.role().role.name.clone(),
            issued_at: c.issued_at,
            source_identity: c.source_identity.clone(),
            federated: c.federated.clone(),
            mfa: c.mfa.as_ref().is_some_and(|m| m.present),
        }
    }

    /// The caller as a typed `userIdentity`, borrowing these facts.
    fn identity_ref(&self) -> UserIdentityRef<'_> {
        UserIdentityRef {
            kind: "AssumedRole",
            principal_id: Some(Principal::Plain(&self.user_id)),
            arn: Some(&self.arn),
            account_id: Some(&self.account),
            access_key_id: Some(&self.access_key_id),
            user_name: None,
            identity_provider: None,
            session_context: Some(SessionContextRef {
                source_identity: self.source_identity.as_deref(),
                web_id_federation_data: self.federated.as_ref().map(|f| WebIdRef {
                    federated_provider: &f.provider_arn,
                    attributes: Claims::SubAud(&f.subject, &f.audience),
                }),
                session_issuer: Some(SessionIssuerRef {
                    kind: "Role",
                    principal_id: &self.role_id,
                    arn: &self.role_arn,
                    account_id: &self.account,
                    user_name: &self.role_name,
                }),
                attributes: Some(SessionAttributesRef::new(self.issued_at, self.mfa)),
            }),
        }
    }

    /// The caller as an owned `userIdentity` (for events built as [`AuditEvent`]).
    fn identity(&self) -> UserIdentity {
        keyless_audit::record::to_json(&self.identity_ref())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| UserIdentity {
                kind: "AssumedRole".into(),
                ..UserIdentity::default()
            })
    }
}

/// What an issuing call returned, secrets left out.
#[derive(Debug, Clone)]
pub struct IssuedFacts {
    access_key_id: String,
    expiration: OffsetDateTime,
    key_version: u32,
    assumed_role_arn: String,
    assumed_role_id: String,
    account: String,
    role_arn: String,
    role_id: String,
    role_name: String,
    issued_at: OffsetDateTime,
    source_identity: Option<String>,
    packed_policy_size: Option<u32>,
    web: Option<(String, String, String)>,
    provider_arn: Option<String>,
    token_attributes: Vec<(String, String)>,
    mfa: bool,
}

impl IssuedFacts {
    /// The issued role's unique id and the session's issue time (a use of the role).
    pub fn role_use(&self) -> (String, OffsetDateTime) {
        (self.role_id.clone(), self.issued_at)
    }

    /// Keeps what the record needs, moved out of the answer once its XML is written; the
    /// secret and the session token are dropped (and zeroized) here.
    pub fn from_issued(i: Issued) -> IssuedFacts {
        let Issued {
            credentials,
            assumed_role_arn,
            assumed_role_id,
            packed_policy_size,
            source_identity,
            web_identity,
            claims,
            token_attributes,
        } = i;
        IssuedFacts {
            access_key_id: credentials.access_key_id,
            expiration: credentials.expiration,
            key_version: credentials.key_version,
            assumed_role_arn,
            assumed_role_id,
            account: claims.account.to_string(),
            role_name: keyless_core::sts::role_name_of(&claims.role_arn).to_owned(),
            role_arn: claims.role_arn,
            role_id: claims.role_id,
            issued_at: claims.issued_at,
            source_identity,
            packed_policy_size,
            web: web_identity.map(|w| (w.subject, w.audience, w.provider)),
            provider_arn: claims.federated.map(|f| f.provider_arn),
            token_attributes,
            mfa: claims.mfa.is_some_and(|m| m.present),
        }
    }

    fn response_ref(&self) -> IssuedRef<'_> {
        let web = self.web.as_ref();
        IssuedRef {
            credentials: CredentialsRef {
                access_key_id: &self.access_key_id,
                expiration: Seconds(self.expiration),
            },
            assumed_role_user: AssumedRoleUserRef {
                assumed_role_id: &self.assumed_role_id,
                arn: &self.assumed_role_arn,
            },
            subject_from_web_identity_token: web.map(|w| w.0.as_str()),
            audience: web.map(|w| w.1.as_str()),
            provider: web.map(|w| w.2.as_str()),
            packed_policy_size: self.packed_policy_size,
            source_identity: self.source_identity.as_deref(),
        }
    }

    fn session_context_ref(&self) -> SessionContextRef<'_> {
        SessionContextRef {
            source_identity: self.source_identity.as_deref(),
            web_id_federation_data: self.provider_arn.as_deref().map(|p| WebIdRef {
                federated_provider: p,
                attributes: Claims::Pairs(&self.token_attributes),
            }),
            session_issuer: Some(SessionIssuerRef {
                kind: "Role",
                principal_id: &self.role_id,
                arn: &self.role_arn,
                account_id: &self.account,
                user_name: &self.role_name,
            }),
            attributes: Some(SessionAttributesRef::new(self.issued_at, self.mfa)),
        }
    }
}

/// The request as the query handler saw it.
#[derive(Debug)]
pub struct StsCall<'a> {
    /// `sts.amazonaws.com` or `iam.amazonaws.com` (the query APIs share this record shape).
    pub event_source: &'static str,
    /// The `Action` (or empty).
    pub action: &'a str,
    /// The request id returned.
    pub request_id: &'a str,
    /// The client's address.
    pub source_ip: IpAddr,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// `requestParameters` (already allow-listed).
    pub request_parameters: Option<Value>,
    /// What the handler learned.
    pub facts: CallFacts,
    /// Now.
    pub now: OffsetDateTime,
}

const READ_ONLY: &[&str] = &[
    "GetCallerIdentity",
    "GetAccessKeyInfo",
    "DecodeAuthorizationMessage",
];

/// The record of one STS (or IAM) call: it owns the call's facts and serialises them as a
/// typed record ([`keyless_audit::record::EventRef`], the JSON of an [`AuditEvent`]) straight
/// into the log's buffer, with no `serde_json::Value` tree and no copies of the strings.
#[derive(Debug)]
pub struct StsEvent<'a> {
    call: StsCall<'a>,
    error: Option<&'a ApiError>,
    name: Cow<'a, str>,
    event_id: String,
}

/// `additionalEventData` of an STS call.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum StsExtra<'a> {
    Key(KeyRingVersion),
    Risks {
        #[serde(rename = "acknowledgedRisks")]
        acknowledged_risks: &'a [Value],
    },
}

/// The record of one STS call, success (`error` = `None`) or failure.
pub fn sts_event<'a>(call: StsCall<'a>, error: Option<&'a ApiError>) -> StsEvent<'a> {
    let name = if call.action.is_empty() {
        Cow::Borrowed("Unknown")
    } else if call.action.chars().nth(64).is_none() {
        Cow::Borrowed(call.action)
    } else {
        Cow::Owned(call.action.chars().take(64).collect())
    };
    StsEvent {
        call,
        error,
        name,
        event_id: event_id(),
    }
}

impl StsEvent<'_> {
    fn record(&self) -> EventRef<'_, &Value, IssuedRef<'_>, StsExtra<'_>> {
        let call = &self.call;
        let facts = &call.facts;
        let name: &str = &self.name;
        let mut e = EventRef::new(
            call.now,
            call.event_source,
            name,
            call.request_id,
            &self.event_id,
            call.source_ip,
        );
        e.user_agent = Prefix(call.user_agent, 1024);
        e.read_only = READ_ONLY.contains(&name)
            || (call.event_source != SOURCE_STS
                && ["Get", "List", "Simulate"]
                    .iter()
                    .any(|p| name.starts_with(p)));
        e.request_parameters = call.request_parameters.as_ref();
        if let Some(c) = &facts.caller {
            e.user_identity = c.identity_ref();
            e.recipient_account_id = Some(&c.account);
        } else if name == "AssumeRoleWithWebIdentity" {
            e.user_identity = match &facts.issued {
                Some(i) => {
                    let (sub, aud) = i
                        .web
                        .as_ref()
                        .map_or(("", ""), |(s, a, _)| (s.as_str(), a.as_str()));
                    let provider = i.provider_arn.as_deref().unwrap_or("");
                    UserIdentityRef {
                        principal_id: Some(Principal::Web(Joined(provider, aud, sub))),
                        user_name: Some(sub),
                        identity_provider: Some(Bounded(provider, usize::MAX)),
                        session_context: Some(i.session_context_ref()),
                        ..UserIdentityRef::of_kind("WebIdentityUser")
                    }
                }
                None => UserIdentityRef {
                    // Unverified: the token was refused; the issuer is what it claimed.
                    identity_provider: facts.token_issuer.as_deref().map(Bounded::value),
                    ..UserIdentityRef::of_kind("WebIdentityUser")
                },
            };
        } else if let Some(k) = &facts.claimed_access_key_id {
            e.user_identity.access_key_id = Some(k);
        }
        if let Some(i) = &facts.issued {
            e.response_elements = Some(i.response_ref());
            e.recipient_account_id = Some(&i.account);
            e.additional_event_data = Some(StsExtra::Key(KeyRingVersion {
                key_ring_version: i.key_version,
            }));
        }
        if !facts.acknowledged_risks.is_empty() && self.error.is_none() {
            e.additional_event_data = Some(StsExtra::Risks {
                acknowledged_risks: &facts.acknowledged_risks,
            });
        }
        if let Some(err) = self.error {
            e.fail(err.code, &err.message, err.status);
            e.response_elements = None;
        }
        e
    }

    /// The record as an owned [`AuditEvent`] (what a reader of the log gets back).
    pub fn to_event(&self) -> Result<AuditEvent, serde_json::Error> {
        serde_json::from_slice(&keyless_audit::record::to_json(self)?)
    }
}

impl Serialize for StsEvent<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.record().serialize(s)
    }
}

impl Record for StsEvent<'_> {
    fn event_name(&self) -> &str {
        &self.name
    }
}

/// `requestParameters` of an authorize request (strings cut at 2048 characters; never the
/// headers, the body or the signature).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeParameters<'a> {
    /// The action asked about.
    pub action: Bounded<'a>,
    /// The resource asked about.
    pub resource: Bounded<'a>,
    /// The HTTP method the gateway received.
    pub method: Bounded<'a>,
    /// The raw path the gateway received.
    pub path: Bounded<'a>,
    /// The region the gateway serves (`null` when not given).
    pub region: Option<Bounded<'a>>,
    /// The client address the gateway saw (`null` when not given).
    pub source_ip: Option<Ip>,
}

/// [`AuthorizeParameters`] of one request.
pub fn authorize_parameters<'a>(
    action: &'a str,
    resource: &'a str,
    method: &'a str,
    path: &'a str,
    region: Option<&'a str>,
    source_ip: Option<IpAddr>,
) -> AuthorizeParameters<'a> {
    AuthorizeParameters {
        action: Bounded::value(action),
        resource: Bounded::value(resource),
        method: Bounded::value(method),
        path: Bounded::value(path),
        region: region.map(Bounded::value),
        source_ip: source_ip.map(Ip),
    }
}

/// `additionalEventData` of an authorize decision.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionData<'a> {
    /// The configured client that asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'a str>,
    /// `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Bounded<'a>>,
    /// The engine's explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Bounded<'a>>,
    /// Whether the payload itself was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_verified: Option<bool>,
    /// The share of allows recorded.
    pub allow_sample_rate: f64,
}

/// The typed record of one `/v1/authorize` answer, borrowing the outcome.
pub type AuthorizeRecord<'a> = EventRef<'a, AuthorizeParameters<'a>, (), DecisionData<'a>>;

/// What an authorize request's record is made of.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeFacts<'a> {
    /// When it was answered.
    pub now: OffsetDateTime,
    /// `requestID` and `eventID` (see [`event_id`]).
    pub ids: (&'a str, &'a str),
    /// The configured client (unknown when its token was refused).
    pub client: Option<&'a str>,
    /// The request's parameters (unknown when it did not parse).
    pub parameters: Option<AuthorizeParameters<'a>>,
    /// The gateway's own address.
    pub peer: IpAddr,
    /// The share of allows recorded.
    pub sample_rate: f64,
}

/// How an authorize request ended.
#[derive(Debug, Clone, Copy)]
pub enum AuthorizeAnswer<'a> {
    /// Authenticated or not, the engine answered.
    Answered(&'a keyless_core::authorize::AuthorizeOutcome),
    /// Refused before any decision (bad client token, malformed request, …).
    Refused {
        /// The error code the gateway got.
        code: &'a str,
        /// Its message.
        message: &'a str,
        /// Its HTTP status.
        status: u16,
    },
}

/// The record of one `/v1/authorize` request, borrowing what it describes.
pub fn authorize_record<'a>(
    facts: AuthorizeFacts<'a>,
    answer: AuthorizeAnswer<'a>,
) -> AuthorizeRecord<'a> {
    use keyless_core::authorize::AuthorizeOutcome;
    let source = facts
        .parameters
        .and_then(|p| p.source_ip)
        .map_or(facts.peer, |ip| ip.0);
    let mut e: AuthorizeRecord<'a> = EventRef::new(
        facts.now,
        SOURCE_KEYLESS,
        "Authorize",
        facts.ids.0,
        facts.ids.1,
        source,
    );
    e.event_type = "KeylessDecision";
    e.read_only = true;
    e.request_parameters = facts.parameters;
    let mut data = DecisionData {
        client: facts.client,
        decision: None,
        explanation: None,
        payload_verified: None,
        allow_sample_rate: facts.sample_rate,
    };
    match answer {
        AuthorizeAnswer::Refused {
            code,
            message,
            status,
        } => e.fail(code, message, status),
        AuthorizeAnswer::Answered(AuthorizeOutcome::Unauthenticated { error }) => {
            e.fail(error.code, &error.message, error.status.min(499));
        }
        AuthorizeAnswer::Answered(AuthorizeOutcome::Decided {
            principal: p,
            decision,
            explanation,
            payload_verified,
        }) => {
            e.recipient_account_id = Some(&p.account);
            e.user_identity = UserIdentityRef {
                principal_id: Some(Principal::Plain(&p.user_id)),
                arn: Some(&p.arn),
                account_id: Some(&p.account),
                access_key_id: Some(&p.access_key_id),
                session_context: Some(SessionContextRef {
                    source_identity: p.source_identity.as_deref(),
                    web_id_federation_data: p.subject.as_deref().map(|sub| WebIdRef {
                        federated_provider: p.provider_arn.as_deref().unwrap_or(""),
                        attributes: Claims::Sub(sub),
                    }),
                    session_issuer: Some(SessionIssuerRef {
                        kind: "Role",
                        principal_id: &p.role_id,
                        arn: &p.role_arn,
                        account_id: &p.account,
                        user_name: keyless_core::sts::role_name_of(&p.role_arn),
                    }),
                    attributes: None,
                }),
                ..UserIdentityRef::of_kind("AssumedRole")
            };
            data.decision = Some(Bounded::value(decision.as_str()));
            data.explanation = Some(Bounded::value(explanation));
            data.payload_verified = Some(*payload_verified);
            if *decision != keyless_policy::DecisionKind::Allowed {
                e.fail("AccessDenied", "not authorized", 403);
            }
        }
    }
    e.additional_event_data = Some(data);
    e
}

/// The access key id a signed request claims (`Credential=AKID/…` in the `Authorization`
/// header, or `X-Amz-Credential`), for the record of a refused call. Bounded; not verified.
pub fn claimed_access_key_id(authorization: Option<&str>, query: Option<&str>) -> Option<String> {
    let from_header = authorization.and_then(|h| {
        let at = h.find("Credential=")? + "Credential=".len();
        h[at..].split('/').next().map(str::to_owned)
    });
    let from_query = || {
        query.and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                k.eq_ignore_ascii_case("X-Amz-Credential")
                    .then(|| v.split("%2F").next().unwrap_or(v).to_owned())
            })
        })
    };
    from_header
        .or_else(from_query)
        .filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_key_ids_come_from_the_header_or_the_presigned_query() {
        let h = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY123456/20261201/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(
            claimed_access_key_id(Some(h), None).as_deref(),
            Some("ASIAEXAMPLEKEY123456")
        );
        let q = "Action=GetCallerIdentity&X-Amz-Credential=ASIAQUERYKEY%2F20261201%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=00";
        assert_eq!(
            claimed_access_key_id(None, Some(q)).as_deref(),
            Some("ASIAQUERYKEY")
        );
        // Hostile values are dropped, not recorded.
        assert_eq!(
            claimed_access_key_id(Some("Credential=<script>/x"), None),
            None
        );
        let long = format!("Credential={}/x", "A".repeat(200));
        assert_eq!(claimed_access_key_id(Some(&long), None), None);
    }

    #[test]
    fn a_refused_web_identity_call_records_the_claimed_issuer_and_no_response() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let call = StsCall {
            event_source: SOURCE_STS,
            action: "AssumeRoleWithWebIdentity",
            request_id: "r-1",
            source_ip: IpAddr::from([127, 0, 0, 1]),
            user_agent: &"x".repeat(5000),
            request_parameters: Some(json!({"roleArn": "arn:aws:iam::123456789012:role/gha"})),
            facts: CallFacts {
                token_issuer: Some("https://issuer.example".into()),
                ..CallFacts::default()
            },
            now,
        };
        let err = ApiError::access_denied("no");
        let e = sts_event(call, Some(&err)).to_event().unwrap();
        assert_eq!(e.user_identity.kind, "WebIdentityUser");
        assert_eq!(
            e.user_identity.identity_provider.as_deref(),
            Some("https://issuer.example")
        );
        assert_eq!(e.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(e.decision, keyless_audit::Decision::Deny);
        assert!(e.response_elements.is_none());
        assert_eq!(e.user_agent.len(), 1024);
        assert_eq!(e.request_id, "r-1");
    }

    #[test]
    fn an_issued_web_identity_call_has_the_cloudtrail_shape_and_no_secret() {
        let t = |s| OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let provider =
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";
        let sub = "repo:octo-org/demo:ref:refs/heads/main";
        let issued = IssuedFacts {
            access_key_id: "ASIAQWERTYUIOPASDFGH".into(),
            expiration: t(1_800_003_600),
            key_version: 3,
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/gha/run-1".into(),
            assumed_role_id: "AROAEXAMPLE:run-1".into(),
            account: "123456789012".into(),
            role_arn: "arn:aws:iam::123456789012:role/gha".into(),
            role_id: "AROAEXAMPLE".into(),
            role_name: "gha".into(),
            issued_at: t(1_800_000_000),
            source_identity: None,
            packed_policy_size: None,
            web: Some((
                sub.into(),
                "sts.amazonaws.com".into(),
                "https://token.actions.githubusercontent.com".into(),
            )),
            provider_arn: Some(provider.into()),
            token_attributes: vec![
                ("sub".into(), sub.into()),
                ("repository".into(), "x".repeat(3000)),
            ],
            mfa: false,
        };
        let call = StsCall {
            event_source: SOURCE_STS,
            action: "AssumeRoleWithWebIdentity",
            request_id: "r-2",
            source_ip: IpAddr::from([10, 0, 0, 7]),
            user_agent: "aws-cli/2",
            request_parameters: Some(json!({"roleArn": "arn:aws:iam::123456789012:role/gha"})),
            facts: CallFacts {
                issued: Some(issued),
                ..CallFacts::default()
            },
            now: OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        let record = sts_event(call, None);
        let text = String::from_utf8(keyless_audit::record::to_json(&record).unwrap()).unwrap();
        let e = record.to_event().unwrap();
        assert_eq!(e.event_time, "2027-01-15T08:00:00.123456Z");
        assert_eq!(e.source_ip_address, "10.0.0.7");
        assert_eq!(e.user_identity.kind, "WebIdentityUser");
        assert_eq!(
            e.user_identity.principal_id.as_deref(),
            Some(format!("{provider}:sts.amazonaws.com:{sub}").as_str())
        );
        assert_eq!(e.subject(), Some(sub));
        let attrs = &e
            .user_identity
            .session_context
            .as_ref()
            .unwrap()
            .web_id_federation_data
            .as_ref()
            .unwrap()
            .attributes;
        assert!(
            attrs["repository"]
                .as_str()
                .unwrap()
                .ends_with("…[truncated]")
        );
        let resp = e.response_elements.as_ref().unwrap();
        assert_eq!(resp["credentials"]["accessKeyId"], "ASIAQWERTYUIOPASDFGH");
        assert_eq!(resp["credentials"]["expiration"], "2027-01-15T09:00:00Z");
        assert_eq!(
            e.additional_event_data.as_ref().unwrap()["keyRingVersion"],
            3
        );
        assert_eq!(e.recipient_account_id.as_deref(), Some("123456789012"));
        assert_eq!(e.decision, keyless_audit::Decision::Allow);
        // The typed record writes exactly what the owned event writes back.
        assert_eq!(text.as_bytes(), e.to_body().unwrap().as_slice());
        assert!(!text.contains("SecretAccessKey") && !text.contains("sessionToken"));
    }

    #[test]
    fn settings_are_bounded() {
        let ok = AuditSettings::default();
        assert_eq!(ok.check(), Ok(()));
        for bad in [
            AuditSettings {
                max_file_bytes: 10,
                ..ok.clone()
            },
            AuditSettings {
                digest_every_records: 0,
                ..ok.clone()
            },
            AuditSettings {
                digest_interval_seconds: 0,
                ..ok.clone()
            },
            AuditSettings {
                max_batch_wait_micros: 1_000_000,
                ..ok.clone()
            },
            AuditSettings {
                busy_batch_wait_micros: 100_001,
                ..ok.clone()
            },
            AuditSettings {
                min_sync_interval_micros: 100_001,
                ..ok.clone()
            },
            AuditSettings {
                authorize_allow_sample_rate: 1.5,
                ..ok.clone()
            },
            AuditSettings {
                authorize_allow_sample_rate: f64::NAN,
                ..ok.clone()
            },
            AuditSettings {
                retention_days: Some(0),
                ..ok.clone()
            },
            AuditSettings {
                retention_days: Some(36_501),
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
