//! The audit table sink (with Postgres only): copies every audit event of the JSON-lines log into
//! the `audit_events` table, off the request path.
//!
//! The file stays the durable source. The sink does not take records from the writer: it
//! follows the committed files ([`keyless_audit::tail::Tail`]) from the last `seq` the table
//! holds for this log, and inserts in batches. So issuance never waits for the table, a table
//! outage costs the writer nothing (the sink keeps its place, counts the failure in
//! `keyless_audit_table_failures_total`, logs it, and retries with backoff), and catching up
//! after an outage or a restart is the same loop as keeping up. `/readyz` shows how far the
//! table is, without failing on it.
//!
//! Each data dir's log has an id (`data_dir/audit-log-id`, made on first start) so replicas
//! sharing a database keep their chains apart.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyless_audit::AuditEvent;
use keyless_audit::tail::{Tail, TailRecord};
use keyless_store::AuditTable;
use keyless_store::audit_table::{AuditRow, InsertError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize as _;
use tokio::sync::Notify;
use tracing::{error, info, warn};

/// Most records per insert.
const BATCH: usize = 500;
/// How often the files are checked when the table has caught up.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait between retries while the table is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long shutdown waits for the table to catch up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The name of the log id file in the data dir.
pub const LOG_ID_FILE: &str = "audit-log-id";

/// The metrics the sink updates (clones of the registered ones).
#[derive(Debug, Clone, Default)]
pub struct SinkMetrics {
    /// Rows inserted.
    pub rows: Counter,
    /// Failed inserts (table unreachable or refusing).
    pub failures: Counter,
    /// Records skipped because the table refused them or their line did not verify.
    pub skipped: Counter,
    /// The highest `seq` the table is known to hold for this log.
    pub seq: Gauge,
}

/// What `/readyz` shows about the sink.
#[derive(Debug, Default)]
pub struct SinkStatus {
    /// The highest `seq` copied; shared with the writer, whose retention keeps later files.
    through: Arc<AtomicU64>,
    behind: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl SinkStatus {
    /// The `/readyz` line.
    pub fn line(&self) -> String {
        let through = self.through.load(Ordering::Relaxed);
        if self.behind.load(Ordering::Relaxed) {
            let why = self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_default();
            format!(
                "audit table: behind (through seq {through}; the file has every record, the table catches up when it can): {why}"
            )
        } else {
            format!("audit table: ok (through seq {through})")
        }
    }

    fn failed(&self, why: &str) {
        self.behind.store(true, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
    }

    fn recovered(&self) {
        self.behind.store(false, Ordering::Relaxed);
    }
}

/// The running sink.
#[derive(Debug)]
pub struct AuditTableSink {
    status: Arc<SinkStatus>,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Reads the log id of `data_dir`, creating it on first use.
pub fn log_id(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(LOG_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let id = hex::encode(rand::random::<[u8; 16]>());
    std::fs::write(&path, format!("{id}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}

/// The table row of an event record; `None` for digests.
pub fn row_of(record: &TailRecord) -> Option<AuditRow> {
    let value = &record.checked.value;
    if value.get("recordType").and_then(serde_json::Value::as_str) != Some("event") {
        return None;
    }
    let event = AuditEvent::deserialize(value).ok()?;
    Some(AuditRow {
        seq: record.checked.seq,
        hash: hex::encode(record.checked.hash),
        principal: event.principal().map(str::to_owned),
        role_arn: event.roles().first().map(|r| (*r).to_owned()),
        subject: event.subject().map(str::to_owned),
        repository: event.federation_attribute("repository").map(str::to_owned),
        access_key_id: event.user_identity.access_key_id.clone(),
        issued_access_key_id: event.issued_access_key_id().map(str::to_owned),
        error_code: event.error_code.clone(),
        decision: event.decision.as_str().to_owned(),
        record: String::from_utf8_lossy(&record.line).into_owned(),
        event_time: event.event_time,
        event_source: event.event_source,
        event_name: event.event_name,
    })
}

struct Worker {
    table: AuditTable,
    log_id: String,
    dir: PathBuf,
    metrics: SinkMetrics,
    status: Arc<SinkStatus>,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    backoff: Duration,
    last_logged: Option<std::time::Instant>,
}

impl AuditTableSink {
    /// Starts following the log in `dir` (`data_dir/audit`) into `table`.
    pub fn spawn(
        table: AuditTable,
        log_id: String,
        dir: PathBuf,
        metrics: SinkMetrics,
        through: Arc<AtomicU64>,
    ) -> AuditTableSink {
        let status = Arc::new(SinkStatus {
            through,
            ..SinkStatus::default()
        });
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            table,
            log_id,
            dir,
            metrics,
            status: Arc::clone(&status),
            stop: Arc::clone(&stop),
            stopping: Arc::clone(&stopping),
            backoff: Duration::from_millis(500),
            last_logged: None,
        };
        let task = tokio::spawn(worker.run());
        AuditTableSink {
            status,
            stop,
            stopping,
            task: Mutex::new(Some(task)),
        }
    }

    /// What `/readyz` shows.
    pub fn status(&self) -> Arc<SinkStatus> {
        Arc::clone(&self.status)
    }

    /// Lets the sink copy what the log holds now (at most [`SHUTDOWN_GRACE`]), then stops it.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
            warn!(
                through = self.status.through.load(Ordering::Relaxed),
                "audit table sink stopped before catching up; it continues from there at the next start"
            );
        }
    }
}

impl Worker {
    async fn run(mut self) {
        let mut tail = loop {
            match self.table.last_seq(&self.log_id).await {
                Ok(seq) => {
                    self.set_through(seq);
                    info!(log_id = %self.log_id, after_seq = seq, "audit table sink started");
                    break Tail::new(self.dir.clone(), seq);
                }
                Err(e) => {
                    if !self.failed(&e.to_string()).await {
                        return;
                    }
                }
            }
        };
        loop {
            let (records, notes, back) = match tokio::task::spawn_blocking(move || {
                let polled = tail.poll(BATCH);
                (polled, tail)
            })
            .await
            {
                Ok((Ok((records, notes)), back)) => (records, notes, back),
                Ok((Err(e), back)) => {
                    tail = back;
                    error!("audit table sink cannot read the log: {e}");
                    if !self.pause(MAX_BACKOFF).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    error!("audit table sink stopped: {e}");
                    return;
                }
            };
            tail = back;
            if notes.damaged > 0 {
                self.metrics.skipped.inc_by(notes.damaged);
                warn!(
                    lines = notes.damaged,
                    "audit table sink skipped log lines that do not verify; run `keyless audit verify`"
                );
            }
            if let Some((expected, found)) = notes.gap {
                warn!(
                    expected,
                    found,
                    "audit table sink: the log on disk starts later than the table ends; the records between are not copied"
                );
            }
            if records.is_empty() {
                if self.stopping.load(Ordering::Relaxed) {
                    return;
                }
                // Woken early by a stop request: one more pass copies what was written meanwhile.
                let _ = self.pause(POLL).await;
                continue;
            }
            let rows: Vec<AuditRow> = records.iter().filter_map(row_of).collect();
            let position = tail.position();
            if !self.insert(&rows).await {
                return;
            }
            self.set_through(position);
        }
    }

    fn set_through(&self, seq: u64) {
        self.status.through.store(seq, Ordering::Relaxed);
        self.metrics.seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// Inserts `rows`, retrying while the table is unavailable; false when stopped meanwhile.
    async fn insert(&mut self, rows: &[AuditRow]) -> bool {
        loop {
            match self.table.insert(&self.log_id, rows).await {
                Ok(n) => {
                    self.metrics.rows.inc_by(n);
                    self.succeeded();
                    return true;
                }
                Err(InsertError::Unavailable(m)) => {
                    if !self.failed(&m).await {
                        return false;
                    }
                }
                Err(InsertError::Rejected(m)) => {
                    self.metrics.failures.inc();
                    // One bad row must not hold the rest back: insert them one by one and skip
                    // what the table refuses (the file still has it).
                    warn!("audit table refused a batch ({m}); inserting its rows one by one");
                    for row in rows {
                        loop {
                            match self
                                .table
                                .insert(&self.log_id, std::slice::from_ref(row))
                                .await
                            {
                                Ok(n) => {
                                    self.metrics.rows.inc_by(n);
                                    break;
                                }
                                Err(InsertError::Rejected(m)) => {
                                    self.metrics.skipped.inc();
                                    error!(
                                        seq = row.seq,
                                        "audit table refused a record, skipped: {m}"
                                    );
                                    break;
                                }
                                Err(InsertError::Unavailable(m)) => {
                                    if !self.failed(&m).await {
                                        return false;
                                    }
                                }
                            }
                        }
                    }
                    self.succeeded();
                    return true;
                }
            }
        }
    }

    fn succeeded(&mut self) {
        if self.status.behind.load(Ordering::Relaxed) {
            info!("audit table reachable again; catching up from the log");
        }
        self.status.recovered();
        self.backoff = Duration::from_millis(500);
        self.last_logged = None;
    }

    /// Counts and logs a failure (at most once a minute), then waits out the backoff; false
    /// when a stop was requested (the file keeps everything, the next start catches up).
    async fn failed(&mut self, why: &str) -> bool {
        self.metrics.failures.inc();
        self.status.failed(why);
        if self
            .last_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
        {
            self.last_logged = Some(std::time::Instant::now());
            warn!(
                through = self.status.through.load(Ordering::Relaxed),
                "audit table sink: {why}; issuance goes on (the file is the durable record), retrying"
            );
        }
        if self.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.pause(wait).await
    }

    /// Sleeps `d`; false when woken by a stop request.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.stop.notified() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_audit::chain::{ChainHead, check_line, seal_digest, seal_event};
    use keyless_audit::event::SOURCE_STS;

    #[test]
    fn event_rows_carry_the_filterable_fields_and_digests_none() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut e = AuditEvent::new(now, SOURCE_STS, "AssumeRoleWithWebIdentity", "r-1", "ev-1");
        e.user_identity.kind = "WebIdentityUser".into();
        e.user_identity.user_name = Some("repo:octo-org/demo:ref:refs/heads/main".into());
        e.request_parameters =
            Some(serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/gha"}));
        e.response_elements =
            Some(serde_json::json!({"credentials": {"accessKeyId": "ASIAISSUED"}}));
        e.fail("AccessDenied", "no", 403);
        let mut head = ChainHead::genesis();
        let mut line = Vec::new();
        seal_event(&mut head, &e.to_body().unwrap(), &mut line).unwrap();
        let body = line.strip_suffix(b"\n").unwrap().to_vec();
        let record = TailRecord {
            checked: check_line(&body).unwrap(),
            line: body,
        };
        let row = row_of(&record).unwrap();
        assert_eq!(row.seq, 1);
        assert_eq!(row.hash, hex::encode(head.prev_hash));
        assert_eq!(row.event_name, "AssumeRoleWithWebIdentity");
        assert_eq!(
            row.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/gha")
        );
        assert_eq!(
            row.subject.as_deref(),
            Some("repo:octo-org/demo:ref:refs/heads/main")
        );
        assert_eq!(row.issued_access_key_id.as_deref(), Some("ASIAISSUED"));
        assert_eq!(row.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(row.decision, "deny");
        assert_eq!(row.event_time, "2027-01-15T08:00:00.000000Z");

        let ring = keyless_token::KeyRing::generate(now, &mut rand::rng()).unwrap();
        let signer = crate::audit::signer_of(&ring).unwrap();
        let mut digest = Vec::new();
        seal_digest(&mut head, &signer, now, 1, &mut digest);
        let body = digest.strip_suffix(b"\n").unwrap().to_vec();
        let record = TailRecord {
            checked: check_line(&body).unwrap(),
            line: body,
        };
        assert!(row_of(&record).is_none());
    }

    #[test]
    fn the_log_id_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = log_id(dir.path()).unwrap();
        assert_eq!(a.len(), 32);
        assert_eq!(log_id(dir.path()).unwrap(), a);
    }
}
