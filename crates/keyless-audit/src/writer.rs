//! The file writer (the I/O adapter): one thread owns the log, chains records in arrival order
//! and commits them in groups, many records per `fdatasync`.
//!
//! Callers serialise their event (in parallel, on their own task), hand the bytes over and await
//! an acknowledgement that is sent only after the batch holding their record is on disk. The
//! writer takes whatever is queued, waits at most `max_batch_wait` for more (bounded, so a lone
//! request is not held up), seals the lines, writes them with one `write` and one `fdatasync`,
//! then acknowledges the whole batch. While one batch syncs (3-4 ms here) the next one queues,
//! so under load each sync carries many records.
//!
//! If a write or sync fails the log is marked failed for good (after a failed `fsync` the state of
//! the file is unknown): every pending and later record is refused, so issuance fails closed, and
//! [`AuditLog::failure`] says why (for `/readyz`). A restart re-opens the log.
//!
//! Files are `audit-<first seq, 20 digits>.jsonl` in the log directory, rotated by size or age;
//! a digest closes every file, so each rotated file ends signed. On open, a final line without
//! `\n` (a write cut short by `kill -9`; never acknowledged) is cut off and the chain continues
//! from the last complete record, whose hash is checked first.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyless_types::Clock;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::{error, info, warn};

use crate::chain::{ChainHead, DigestSigner, check_line, peek_seq, seal_digest, seal_event};
use crate::event::AuditEvent;

/// Settings of the writer (the `[audit]` config table).
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// The log directory (`data_dir/audit`).
    pub dir: PathBuf,
    /// Rotate when the current file reaches this size.
    pub max_file_bytes: u64,
    /// Rotate when the current file has been open this long.
    pub max_file_age: Duration,
    /// Write a digest after this many records...
    pub digest_every_records: u64,
    /// ...or this long after the first record not yet covered by one.
    pub digest_interval: Duration,
    /// How long the writer waits for more records before committing a batch.
    pub max_batch_wait: Duration,
    /// Most records per commit.
    pub max_batch_records: usize,
    /// Also copy each committed line to stdout (after it is durable).
    pub stdout: bool,
}

impl WriterConfig {
    /// The defaults for a directory: 100 MiB / 1 day files, a digest every 1000 records or 60 s,
    /// batches of up to 4096 records gathered for at most 200 µs.
    pub fn new(dir: PathBuf) -> WriterConfig {
        WriterConfig {
            dir,
            max_file_bytes: 100 * 1024 * 1024,
            max_file_age: Duration::from_secs(24 * 3600),
            digest_every_records: 1000,
            digest_interval: Duration::from_secs(60),
            max_batch_wait: Duration::from_micros(200),
            max_batch_records: 4096,
            stdout: false,
        }
    }
}

/// Why a record was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The log cannot be written; the reason is for the operator.
    #[error("the audit log is unavailable: {0}")]
    Unavailable(String),
    /// The log was shut down.
    #[error("the audit log is closed")]
    Closed,
    /// The event could not be serialised.
    #[error("the audit event could not be encoded: {0}")]
    Encode(String),
    /// Opening the log failed.
    #[error("cannot open the audit log in {dir}: {message}")]
    Open {
        /// The directory.
        dir: String,
        /// What went wrong and what to do.
        message: String,
    },
}

type Ack = oneshot::Sender<Result<u64, AuditError>>;

enum Job {
    Event {
        body: Vec<u8>,
        ack: Option<Ack>,
        _permit: OwnedSemaphorePermit,
    },
    Shutdown(oneshot::Sender<()>),
}

#[derive(Default)]
struct Shared {
    failure: Mutex<Option<String>>,
    signer: Mutex<Option<DigestSigner>>,
    commits: AtomicU64,
    records: AtomicU64,
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fail(&self, reason: String) {
        error!("audit log failed, refusing further records: {reason}");
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The `seq` the next record gets.
    pub next_seq: u64,
    /// Bytes of a torn final line that were cut off.
    pub truncated_bytes: u64,
    /// The file being appended to.
    pub current_file: PathBuf,
}

/// Counters of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Commits (one `fdatasync` each).
    pub commits: u64,
    /// Records committed (digests included).
    pub records: u64,
}

/// The audit log handle (cheap to share behind an `Arc`).
pub struct AuditLog {
    tx: Mutex<Option<Sender<Job>>>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("failure", &self.shared.failure())
            .finish_non_exhaustive()
    }
}

/// Most records queued or in flight at once; callers beyond it wait.
const MAX_IN_FLIGHT: usize = 65_536;

/// The log files of a directory, oldest first (`audit-<20 digits>.jsonl`).
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let digits = name
            .strip_prefix("audit-")
            .and_then(|n| n.strip_suffix(".jsonl"));
        if digits.is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit())) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn file_name_for(first_seq: u64) -> String {
    format!("audit-{first_seq:020}.jsonl")
}

struct Tail {
    head: ChainHead,
    digest_first: u64,
    truncated: u64,
}

/// Finds the chain head in the newest non-empty file, cutting a torn final line.
fn recover(path: &Path) -> Result<Option<Tail>, String> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let truncated = (bytes.len() - complete) as u64;
    if truncated > 0 {
        warn!(
            file = %path.display(),
            bytes = truncated,
            "cutting a torn final audit line (a write interrupted by a crash; never acknowledged)"
        );
        file.set_len(complete as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot cut the torn line of {}: {e}", path.display()))?;
        bytes.truncate(complete);
    }
    let mut last: Option<&[u8]> = None;
    let mut first_seq = None;
    let mut last_digest = None;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let seq = peek_seq(line);
        if first_seq.is_none() {
            first_seq = seq;
        }
        if memchr::memmem::find(
            line.get(..120).unwrap_or(line),
            b"\"recordType\":\"digest\"",
        )
        .is_some()
        {
            last_digest = seq;
        }
        last = Some(line);
    }
    let Some(last) = last else { return Ok(None) };
    let checked = check_line(last).map_err(|e| {
        format!(
            "the last record of {} does not verify ({e}); run `keyless audit verify` and move the damaged file aside",
            path.display()
        )
    })?;
    let digest_first = match last_digest {
        Some(d) => d + 1,
        None => first_seq.unwrap_or(checked.seq),
    };
    Ok(Some(Tail {
        head: ChainHead {
            next_seq: checked.seq + 1,
            prev_hash: checked.hash,
        },
        digest_first,
        truncated,
    }))
}

fn create_file(dir: &Path, first_seq: u64) -> std::io::Result<(File, PathBuf)> {
    let path = dir.join(file_name_for(first_seq));
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    file.sync_all()?;
    // Make the new directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok((file, path))
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}

impl AuditLog {
    /// Opens (or creates) the log in `config.dir` and starts the writer thread.
    pub fn open(
        config: WriterConfig,
        clock: Arc<dyn Clock>,
        signer: DigestSigner,
    ) -> Result<(AuditLog, OpenReport), AuditError> {
        let dir_text = config.dir.display().to_string();
        let open_err = |message: String| AuditError::Open {
            dir: dir_text.clone(),
            message,
        };
        std::fs::create_dir_all(&config.dir).map_err(|e| open_err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&config.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| open_err(e.to_string()))?;
        }
        let files = list_files(&config.dir).map_err(|e| open_err(e.to_string()))?;
        let mut tail = None;
        let mut current = None;
        for path in files.iter().rev() {
            if current.is_none() {
                current = Some(path.clone());
            }
            if let Some(t) = recover(path).map_err(&open_err)? {
                tail = Some(t);
                break;
            }
        }
        let (head, digest_first, truncated) = match tail {
            Some(t) => (t.head, t.digest_first, t.truncated),
            None => (ChainHead::genesis(), 1, 0),
        };
        let (file, path) = match current {
            Some(p) => (open_append(&p).map_err(|e| open_err(e.to_string()))?, p),
            None => create_file(&config.dir, head.next_seq).map_err(|e| open_err(e.to_string()))?,
        };
        let file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let report = OpenReport {
            next_seq: head.next_seq,
            truncated_bytes: truncated,
            current_file: path.clone(),
        };
        let shared = Arc::new(Shared::default());
        *shared.signer.lock().unwrap_or_else(PoisonError::into_inner) = Some(signer);
        let (tx, rx) = std::sync::mpsc::channel();
        let state = WriterState {
            config,
            clock,
            shared: Arc::clone(&shared),
            file,
            path,
            file_bytes,
            opened: Instant::now(),
            head,
            digest_first,
            pending_since_digest: head.next_seq - digest_first,
            first_pending_at: (head.next_seq > digest_first).then(Instant::now),
            unsynced_since: None,
            buf: Vec::with_capacity(1 << 20),
        };
        let thread = std::thread::Builder::new()
            .name("keyless-audit-writer".into())
            .spawn(move || run(state, rx))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        info!(next_seq = report.next_seq, file = %report.current_file.display(), "audit log open");
        Ok((
            AuditLog {
                tx: Mutex::new(Some(tx)),
                permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                shared,
                thread: Mutex::new(Some(thread)),
            },
            report,
        ))
    }

    async fn enqueue(&self, event: &AuditEvent, ack: Option<Ack>) -> Result<(), AuditError> {
        if let Some(reason) = self.shared.failure() {
            return Err(AuditError::Unavailable(reason));
        }
        let body = event
            .to_body()
            .map_err(|e| AuditError::Encode(e.to_string()))?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AuditError::Closed)?;
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = tx.as_ref().ok_or(AuditError::Closed)?;
        tx.send(Job::Event {
            body,
            ack,
            _permit: permit,
        })
        .map_err(|_| AuditError::Closed)
    }

    /// Records `event` and returns its `seq` once it is durably on disk. This is the entry
    /// point for every event that must be on disk before the caller answers (anything that
    /// issues or revokes credentials, IAM changes).
    pub async fn record_durable(&self, event: &AuditEvent) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(event, Some(tx)).await?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// Records `event` without waiting for the disk (it is chained and committed with the next
    /// batch). Fails only when the log is already known to be unavailable.
    pub async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.enqueue(event, None).await
    }

    /// Why the log cannot be written, if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Replaces the digest signing key (after a key-ring rotation).
    pub fn set_signer(&self, signer: DigestSigner) {
        *self
            .shared
            .signer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(signer);
    }

    /// Commits and fsync counters.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
        }
    }

    /// Commits everything queued, writes a closing digest, syncs and stops the writer. Later
    /// records get [`AuditError::Closed`].
    pub async fn shutdown(&self) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(tx) = tx {
            let (done, wait) = oneshot::channel();
            if tx.send(Job::Shutdown(done)).is_ok() {
                let _ = wait.await;
            }
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

struct WriterState {
    config: WriterConfig,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    file_bytes: u64,
    opened: Instant,
    head: ChainHead,
    digest_first: u64,
    pending_since_digest: u64,
    first_pending_at: Option<Instant>,
    /// Set while records that nobody awaits are written but not yet synced.
    unsynced_since: Option<Instant>,
    buf: Vec<u8>,
}

/// The longest records nobody awaits (sampled authorize decisions) stay written but unsynced.
/// A process crash cannot lose them (they are in the page cache); only a machine crash within
/// this window can. Any durable record syncs them earlier.
const MAX_UNSYNCED: Duration = Duration::from_millis(500);

/// Takes everything queued, up to `max`; reports a shutdown request separately.
fn drain(rx: &Receiver<Job>, batch: &mut Vec<Job>, max: usize) -> Option<oneshot::Sender<()>> {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(Job::Shutdown(done)) => return Some(done),
            Ok(ev) => batch.push(ev),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    None
}

fn run(mut st: WriterState, rx: Receiver<Job>) {
    let max = st.config.max_batch_records;
    loop {
        // Under load, records pile up while the previous batch syncs: take them at once, without
        // parking. Only an empty queue blocks (until a record or the digest deadline).
        let mut batch = Vec::new();
        let mut shutdown = drain(&rx, &mut batch, max);
        if batch.is_empty() && shutdown.is_none() {
            let first = match st.digest_deadline() {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(j) => j,
                    Err(RecvTimeoutError::Timeout) => {
                        st.on_deadline();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        st.close();
                        return;
                    }
                },
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => {
                        st.close();
                        return;
                    }
                },
            };
            match first {
                Job::Shutdown(done) => shutdown = Some(done),
                ev => batch.push(ev),
            }
            if shutdown.is_none() && !st.config.max_batch_wait.is_zero() {
                // The bounded wait: sleep rather than wake once per arriving record, so senders
                // find no parked receiver and pay no wake-up; then take what came.
                std::thread::sleep(st.config.max_batch_wait);
                shutdown = drain(&rx, &mut batch, max);
            }
        }
        st.commit(batch);
        if let Some(done) = shutdown {
            st.close();
            let _ = done.send(());
            return;
        }
    }
}

impl WriterState {
    /// When the writer must wake with nothing queued: a timed digest or an overdue sync.
    fn digest_deadline(&self) -> Option<Instant> {
        let digest = self
            .first_pending_at
            .map(|t| t + self.config.digest_interval);
        let sync = self.unsynced_since.map(|t| t + MAX_UNSYNCED);
        match (digest, sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        if self
            .first_pending_at
            .is_some_and(|t| t + self.config.digest_interval <= now)
        {
            self.timed_digest();
        }
        if self.unsynced_since.is_some_and(|t| t + MAX_UNSYNCED <= now) {
            self.flush_synced(true);
        }
    }

    fn signer_digest(&mut self) -> bool {
        let signer = self
            .shared
            .signer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(signer) = signer.as_ref() else {
            return false;
        };
        let seq = seal_digest(
            &mut self.head,
            signer,
            self.clock.now(),
            self.digest_first,
            &mut self.buf,
        );
        self.digest_first = seq + 1;
        self.pending_since_digest = 0;
        self.first_pending_at = None;
        true
    }

    /// Writes and syncs `buf`; on failure marks the log failed.
    fn flush(&mut self) -> bool {
        self.flush_synced(true)
    }

    /// Writes `buf`, and syncs the file when `sync` (or when unsynced records are overdue);
    /// on failure marks the log failed.
    fn flush_synced(&mut self, sync: bool) -> bool {
        let overdue = self
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= MAX_UNSYNCED);
        let sync = sync || overdue;
        if self.buf.is_empty() && !(sync && self.unsynced_since.is_some()) {
            return true;
        }
        let result = self
            .file
            .write_all(&self.buf)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        if result.is_ok() {
            if sync {
                self.unsynced_since = None;
            } else if !self.buf.is_empty() {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        }
        match result {
            Ok(()) => {
                self.file_bytes += self.buf.len() as u64;
                let lines = memchr::memchr_iter(b'\n', &self.buf).count() as u64;
                if sync {
                    self.shared.commits.fetch_add(1, Ordering::Relaxed);
                }
                self.shared.records.fetch_add(lines, Ordering::Relaxed);
                if self.config.stdout {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&self.buf).and_then(|()| out.flush());
                }
                self.buf.clear();
                true
            }
            Err(e) => {
                self.shared
                    .fail(format!("writing {} failed: {e}", self.path.display()));
                self.buf.clear();
                false
            }
        }
    }

    fn rotate_if_due(&mut self) -> bool {
        let has_records = self.file_bytes > 0;
        let due = self.file_bytes >= self.config.max_file_bytes
            || self.opened.elapsed() >= self.config.max_file_age;
        if !(has_records && due) {
            return true;
        }
        if self.pending_since_digest > 0 && !(self.signer_digest() && self.flush()) {
            return false;
        }
        match create_file(&self.config.dir, self.head.next_seq) {
            Ok((file, path)) => {
                info!(file = %path.display(), "audit log rotated");
                self.file = file;
                self.path = path;
                self.file_bytes = 0;
                self.opened = Instant::now();
                true
            }
            Err(e) => {
                self.shared.fail(format!(
                    "cannot create a new audit file in {}: {e}",
                    self.config.dir.display()
                ));
                false
            }
        }
    }

    fn refuse(batch: Vec<Job>, err: &AuditError) {
        for job in batch {
            if let Job::Event { ack: Some(ack), .. } = job {
                let _ = ack.send(Err(err.clone()));
            }
        }
    }

    fn commit(&mut self, batch: Vec<Job>) {
        if batch.is_empty() {
            return;
        }
        if let Some(reason) = self.shared.failure() {
            return Self::refuse(batch, &AuditError::Unavailable(reason));
        }
        if !self.rotate_if_due() {
            let reason = self.shared.failure().unwrap_or_default();
            return Self::refuse(batch, &AuditError::Unavailable(reason));
        }
        let mut acks = Vec::with_capacity(batch.len());
        for job in batch {
            let Job::Event { body, ack, .. } = job else {
                continue;
            };
            match seal_event(&mut self.head, &body, &mut self.buf) {
                Ok(seq) => {
                    acks.push((ack, seq));
                    self.pending_since_digest += 1;
                    if self.first_pending_at.is_none() {
                        self.first_pending_at = Some(Instant::now());
                    }
                    if self.pending_since_digest >= self.config.digest_every_records {
                        self.signer_digest();
                    }
                }
                Err(e) => {
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(AuditError::Encode(e.to_string())));
                    }
                }
            }
        }
        // One fdatasync per batch that someone awaits; batches of records nobody awaits are
        // written at once and synced with the next awaited batch or within MAX_UNSYNCED.
        let awaited = acks.iter().any(|(ack, _)| ack.is_some());
        if self.flush_synced(awaited) {
            for (ack, seq) in acks {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(seq));
                }
            }
        } else {
            let err = AuditError::Unavailable(self.shared.failure().unwrap_or_default());
            for (ack, _) in acks {
                if let Some(ack) = ack {
                    let _ = ack.send(Err(err.clone()));
                }
            }
        }
    }

    fn timed_digest(&mut self) {
        if self.shared.failure().is_some() {
            self.first_pending_at = None;
            return;
        }
        if self.pending_since_digest > 0 && self.signer_digest() {
            self.flush();
        } else {
            self.first_pending_at = None;
        }
    }

    fn close(&mut self) {
        if self.shared.failure().is_none() && self.pending_since_digest > 0 && self.signer_digest()
        {
            self.flush();
        }
        info!(next_seq = self.head.next_seq, "audit log closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SOURCE_STS;
    use crate::verify::{KeyPins, Verifier};
    use aws_lc_rs::signature::Ed25519KeyPair;
    use keyless_types::FixedClock;
    use time::OffsetDateTime;

    fn signer() -> DigestSigner {
        DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap())
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        ))
    }

    fn event(i: usize) -> AuditEvent {
        AuditEvent::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            SOURCE_STS,
            "AssumeRoleWithWebIdentity",
            format!("req-{i}"),
            format!("ev-{i}"),
        )
    }

    fn verify_dir(dir: &Path) -> crate::verify::Report {
        let files = list_files(dir).unwrap();
        let mut v = Verifier::new(KeyPins::default());
        for (i, f) in files.iter().enumerate() {
            let bytes = std::fs::read(f).unwrap();
            v.feed_file(&f.display().to_string(), &bytes, i + 1 == files.len());
        }
        v.finish()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unawaited_records_are_written_at_once_and_synced_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.max_batch_wait = Duration::ZERO;
        cfg.digest_every_records = 1_000_000;
        cfg.digest_interval = Duration::from_secs(3600);
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        let before = log.stats().commits;
        for i in 0..20 {
            log.record(&event(i)).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while log.stats().records < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Written (readable by the verifier) without an fdatasync of their own...
        assert_eq!(log.stats().records, 20);
        assert_eq!(log.stats().commits, before);
        assert!(verify_dir(&cfg.dir).is_ok());
        // ...and synced within the bound even though nothing else arrives.
        tokio::time::sleep(MAX_UNSYNCED + Duration::from_millis(200)).await;
        assert_eq!(log.stats().commits, before + 1);
        // An awaited record syncs at once.
        log.record(&event(20)).await.unwrap();
        log.record_durable(&event(21)).await.unwrap();
        assert_eq!(log.stats().commits, before + 2);
        log.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_are_group_committed_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.max_batch_wait = Duration::from_millis(5);
        cfg.digest_every_records = 50;
        let (log, report) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        assert_eq!(report.next_seq, 1);
        let log = Arc::new(log);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(
                async move { log.record_durable(&event(i)).await },
            ));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap().unwrap());
        }
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 200);
        let stats = log.stats();
        assert!(
            stats.commits < 100,
            "200 concurrent records took {} fsyncs",
            stats.commits
        );
        log.shutdown().await;
        assert_eq!(log.record_durable(&event(0)).await, Err(AuditError::Closed));
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
        // 200 events, 4 digests after every 50, none pending at shutdown.
        assert_eq!((r.records, r.digests, r.unsigned_tail), (204, 4, 0));
    }

    #[tokio::test]
    async fn shutdown_signs_the_tail_and_reopen_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(dir.path().join("audit"));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        for i in 0..3 {
            log.record_durable(&event(i)).await.unwrap();
        }
        log.shutdown().await;
        let (log, report) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        assert_eq!(report.next_seq, 5);
        assert_eq!(log.record_durable(&event(9)).await, Ok(5));
        log.shutdown().await;
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!((r.records, r.digests), (6, 2));
    }

    #[tokio::test]
    async fn files_rotate_by_size_and_verify_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.max_file_bytes = 2000;
        cfg.max_batch_wait = Duration::ZERO;
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        for i in 0..20 {
            log.record_durable(&event(i)).await.unwrap();
        }
        log.shutdown().await;
        let files = list_files(&cfg.dir).unwrap();
        assert!(files.len() >= 3, "{files:?}");
        // Every rotated file ends with a digest.
        for f in &files[..files.len() - 1] {
            let text = std::fs::read_to_string(f).unwrap();
            let last = text.lines().last().unwrap();
            assert!(last.contains("\"recordType\":\"digest\""), "{f:?}");
        }
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!(r.files, files.len());
    }

    #[tokio::test]
    async fn a_torn_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(dir.path().join("audit"));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        log.record_durable(&event(2)).await.unwrap();
        log.shutdown().await;
        // Make it look like kill -9 in the middle of a write: no closing digest, half a line.
        let file = list_files(&cfg.dir).unwrap().pop().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().take(2).collect();
        let torn = "{\"seq\":3,\"prevHash\":\"00";
        std::fs::write(&file, format!("{}\n{torn}", lines.join("\n"))).unwrap();
        assert!(verify_dir(&cfg.dir).warnings[0].contains("torn final line"));
        let (log, report) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        assert_eq!(report.truncated_bytes, torn.len() as u64);
        assert_eq!(report.next_seq, 3);
        assert_eq!(log.record_durable(&event(3)).await, Ok(3));
        log.shutdown().await;
        let r = verify_dir(&cfg.dir);
        assert!(
            r.is_ok() && !r.warnings.iter().any(|w| w.contains("torn")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_damaged_last_record_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(dir.path().join("audit"));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        log.shutdown().await;
        let file = list_files(&cfg.dir).unwrap().pop().unwrap();
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("digest", "digesT");
        std::fs::write(&file, text).unwrap();
        let err = AuditLog::open(cfg, clock(), signer()).unwrap_err();
        assert!(err.to_string().contains("keyless audit verify"), "{err}");
    }

    #[tokio::test]
    async fn a_write_failure_fails_closed_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.max_file_bytes = 1;
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        // The next commit must rotate; make the directory impossible to create files in (a
        // plain file in its place works even as root).
        std::fs::remove_dir_all(&cfg.dir).unwrap();
        std::fs::write(&cfg.dir, b"not a directory").unwrap();
        let err = log.record_durable(&event(2)).await.unwrap_err();
        assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
        assert!(
            log.failure()
                .unwrap()
                .contains("cannot create a new audit file")
        );
        // Sticky: later records are refused at once.
        assert!(matches!(
            log.record(&event(3)).await,
            Err(AuditError::Unavailable(_))
        ));
        log.shutdown().await;
    }

    #[tokio::test]
    async fn a_digest_is_written_after_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.digest_interval = Duration::from_millis(50);
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = verify_dir(&cfg.dir);
        assert_eq!((r.records, r.digests, r.unsigned_tail), (2, 1, 0));
        log.shutdown().await;
        // Nothing pending at shutdown: no empty digest.
        assert_eq!(verify_dir(&cfg.dir).records, 2);
    }
}
