//! The file writer (the I/O adapter): one thread owns the log file and commits records in
//! groups, many records per `fdatasync`.
//!
//! A caller serialises its event straight into the shared pending buffer and chains it there
//! (under a short lock: the chain is sequential by nature, and this keeps the hash on the
//! caller's task instead of adding a hand-over), which gives it its `seq`. Durable callers then
//! await the completion of the *batch* the record is in: one `SetOnce` per batch, set once the
//! batch is on disk, so a commit costs one allocation and one wake-up pass, not a channel message
//! and a oneshot per record. The writer thread is woken only when it is idle (an empty queue);
//! under load it finds the next batch waiting when its `fdatasync` returns and never parks on
//! the queue. After the first record of an idle period it waits at most `max_batch_wait` for
//! more (bounded, so a lone request is not held up). Under load (records arrived while the last
//! batch was syncing) it can gather a batch until its oldest record has waited
//! `busy_batch_wait`: an `fdatasync` costs tens of microseconds of CPU whatever it carries, so
//! fewer, larger batches free the core for issuing. That gathering only pays when the CPU is
//! the bottleneck; with a [`Load`] gauge (the server passes its runtime's busy time) the writer
//! gathers only while the issuing side is saturated, and otherwise commits as soon as the
//! previous sync returns (within the pace below), so a server with spare capacity adds no wait.
//! With a gauge it also gathers a saturated batch after an idle period: on a fast device every
//! sync returns before the next record arrives, and per-commit wake-ups would otherwise
//! dominate. With the runtime's park hooks ([`ParkedWorkers`]) a gathering wait also ends as
//! soon as a request worker runs out of work: then every request it had is waiting, most
//! likely on this batch, and waiting on would idle the core.
//!
//! Syncs are paced: one starts at most every `min_sync_interval` (one due longer than that
//! after the previous start goes at once). Between idle and saturated, records arrive one or
//! two per sync, and each sync's fixed CPU cost (the journal commit that `fdatasync` does, on
//! a core the issuers need) would take more of it than the records themselves; the pace bounds
//! that share and adds at most the interval to a request.
//!
//! Records nobody awaits (sampled authorize decisions) are gathered for up to
//! [`UNAWAITED_LINGER`] first, so they cost one wake-up per linger rather than one per record.
//!
//! If a write or sync fails the log is marked failed for good (after a failed `fsync` the state of
//! the file is unknown): every pending and later record is refused, so issuance fails closed, and
//! [`AuditLog::failure`] says why (for `/readyz`). A restart re-opens the log.
//!
//! One process at a time: the writer holds an exclusive lock on `writer.lock` in the log
//! directory for as long as it runs (released by the OS on any exit, `kill -9` included), so a
//! second server or `keyless revoke` on the same data dir cannot fork the chain.
//!
//! Files are `audit-<first seq, 20 digits>.jsonl` in the log directory, rotated by size or age;
//! a digest closes every file, so each rotated file ends signed. On open, a final line without
//! `\n` (a write cut short by `kill -9`; never acknowledged) is cut off and the chain continues
//! from the last complete record, whose hash is checked first.
//!
//! Retention (`retention`, `[audit] retention_days`): after a rotation (and at most hourly
//! otherwise) a thread of its own looks for the oldest closed files whose closing digest was
//! signed longer ago than that, reading each such file to check that its records chain into
//! that digest ([`crate::retention`]: never the mtime, which anyone who can write the directory
//! can set). Before the writer removes any, it chains a `retention` record naming them and the `seq` and
//! `prevHash` the log will start with, signs it with a digest at once and syncs both; only then
//! are the files removed, oldest first, and the directory synced. So `keyless audit verify`
//! tells a start removed on purpose from files someone deleted. Never the current file, and
//! never a file with records a follower (`retention_floor`: the Postgres audit table sink) has
//! not copied yet.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyless_types::Clock;
use tokio::sync::SetOnce;
use tracing::{error, info, warn};

use crate::chain::{
    ChainHead, DigestSigner, MAX_LINE_BYTES, RetentionFacts, check_line, peek_seq, seal_digest,
    seal_retention, seal_serialize,
};
use crate::files::BoundedLines;
use crate::retention::{self, Plan};

/// A write and sync slower than this is logged.
const SLOW_COMMIT: Duration = Duration::from_millis(20);

/// How often the writer looks for files past retention when no rotation prompts it.
const RETENTION_CHECK: Duration = Duration::from_secs(3600);

pub use crate::retention::MAX_REMOVED_PER_PASS;

/// The shortest retention accepted: every session that can still be live (12 hours at most)
/// must stay in the log, for `keyless sessions list` and the credential report.
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

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
    /// How long the writer waits for more records after the first one of an idle period.
    pub max_batch_wait: Duration,
    /// Under load (records arrived while the previous batch was being synced), a batch is
    /// committed once its oldest awaited record is this old: fewer, larger syncs when each
    /// `fdatasync` costs far more than a record. Zero commits as soon as the previous sync ends.
    pub busy_batch_wait: Duration,
    /// At most one sync starts per this interval: records that come sooner after the previous
    /// sync's start join the next one. Zero: a sync starts whenever the previous one returns. A
    /// full buffer or the shutdown ends the wait; a parked worker does not (see
    /// [`ParkedWorkers`]: the interval is short, and between idle and saturated a worker parks
    /// all the time).
    pub min_sync_interval: Duration,
    /// Pending bytes beyond which callers wait for the writer (backpressure).
    pub max_pending_bytes: usize,
    /// Also copy each committed line to stdout (after it is durable).
    pub stdout: bool,
    /// How long opening waits for another process to release the log's lock.
    pub lock_wait: Duration,
    /// How busy the issuing side is. With a gauge, `busy_batch_wait` applies while it is
    /// saturated (whether or not the writer was idle); without one, whenever records arrive
    /// during a sync.
    pub load: Option<Arc<dyn Load>>,
    /// The issuing side's park hooks. With them, a gathering wait ends as soon as a request
    /// worker has nothing left to run: waiting longer would idle the CPU, not free it.
    pub parked: Option<Arc<ParkedWorkers>>,
    /// Remove closed files whose closing digest was signed longer ago than this (at least
    /// [`MIN_RETENTION`]); `None` keeps every file. See [`crate::retention`].
    pub retention: Option<Duration>,
    /// The audit public key of each key-ring version. Retention removes only files closed by a
    /// digest under one of these (the writer's own signing key always counts).
    pub retention_keys: BTreeMap<u32, [u8; 32]>,
    /// The highest `seq` a follower of the files has copied (the Postgres audit table sink):
    /// a file holding a later record is kept whatever its age. `None`: no follower.
    pub retention_floor: Option<Arc<AtomicU64>>,
}

/// How busy the side that appends records is (the server's request workers), so the writer can
/// tell a saturated CPU, where fewer and larger syncs raise throughput, from spare capacity,
/// where gathering would only add latency.
pub trait Load: Send + Sync + std::fmt::Debug {
    /// The time spent busy so far, summed over all workers, and the number of workers.
    fn busy(&self) -> (Duration, usize);
}

/// Request workers with nothing to run, as the runtime's park hooks report them
/// (`on_thread_park` / `on_thread_unpark`). Gathering a loaded batch trades a little latency for
/// fewer syncs only while the CPU has other requests to serve; once a worker parks, every
/// request it had is waiting (most likely on this very batch), so the writer commits at once
/// instead of letting the core idle until `busy_batch_wait` runs out. Tokio calls the park hook
/// when a worker's queue is empty, before it polls for new I/O, so a park can also end a wait
/// while requests are still arriving; the commit then overlaps their processing, which costs
/// a smaller batch, never an idle core.
#[derive(Debug, Default)]
pub struct ParkedWorkers {
    count: AtomicUsize,
    /// Set while the writer waits for a loaded batch to fill; only then does a park take a lock.
    gathering: AtomicBool,
    writer: Mutex<Weak<Shared>>,
}

impl ParkedWorkers {
    /// A worker is about to park (call from the runtime's `on_thread_park`).
    pub fn park(&self) {
        // SeqCst here and where the writer sets `gathering` before it reads the count
        // (`WriterState::take`): either the writer sees this worker parked before it waits, or
        // this sees the writer gathering and wakes it; its wait re-checks the count.
        self.count.fetch_add(1, Ordering::SeqCst);
        if !self.gathering.load(Ordering::SeqCst) {
            return;
        }
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade();
        if let Some(shared) = writer {
            // Taking the queue lock orders this after the writer's check: it is either waiting
            // (and gets the notification) or has not yet looked at the count.
            let gathering = shared.lock().writer_gathering;
            if gathering {
                shared.wake.notify_one();
            }
        }
    }

    /// A worker has unparked (call from the runtime's `on_thread_unpark`).
    pub fn unpark(&self) {
        // Balanced with `park` by the runtime; saturating in case hooks were attached late.
        let _ = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// How many workers are parked now.
    pub fn parked(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// The busy share of the workers (percent) at or above which the writer gathers loaded batches.
///
/// At peak on this project's test machine the audited server was only 83–91% busy, idle while
/// a disk stall held every connection's record, so 90% missed many saturated windows; 80% still
/// leaves a server at half of its peak well below the line.
pub const SATURATED_BUSY_PERCENT: u32 = 80;

/// The shortest window a busy share is measured over. Runtimes publish busy time in steps of a
/// few milliseconds (Tokio at its maintenance ticks), so a shorter window would mostly measure
/// those steps.
const LOAD_WINDOW: Duration = Duration::from_millis(50);

impl WriterConfig {
    /// The defaults for a directory: 100 MiB / 1 day files, a digest every 1000 records or 60 s,
    /// batches gathered for at most 200 µs, at most 64 MiB pending, 5 s to get the lock.
    pub fn new(dir: PathBuf) -> WriterConfig {
        WriterConfig {
            dir,
            max_file_bytes: 100 * 1024 * 1024,
            max_file_age: Duration::from_secs(24 * 3600),
            digest_every_records: 1000,
            digest_interval: Duration::from_secs(60),
            max_batch_wait: Duration::from_micros(200),
            busy_batch_wait: Duration::ZERO,
            min_sync_interval: Duration::ZERO,
            max_pending_bytes: 64 * 1024 * 1024,
            stdout: false,
            lock_wait: Duration::from_secs(5),
            load: None,
            parked: None,
            retention: None,
            retention_keys: BTreeMap::new(),
            retention_floor: None,
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
    /// Another process holds the log (see [`AuditLog::open`]).
    #[error("the audit log in {dir} is held by another process (a running keyless server?)")]
    Busy {
        /// The directory.
        dir: String,
    },
}

/// The completion of one batch: set once, after its `fdatasync` (or its failure).
type Batch = SetOnce<Result<(), AuditError>>;

/// What callers and the writer share, under one lock.
struct Queue {
    /// Files past retention whose retention record is sealed, with its digest's `seq`: the
    /// writer removes them once that is durable.
    planned_removal: Option<(Vec<PathBuf>, u64)>,
    /// Sealed lines not yet taken by the writer.
    buf: Vec<u8>,
    /// The writer's previous buffer, handed back to keep its capacity.
    spare: Vec<u8>,
    head: ChainHead,
    /// First `seq` not yet covered by a digest.
    digest_first: u64,
    pending_since_digest: u64,
    first_pending_at: Option<Instant>,
    /// Some record in `buf` is awaited: the writer must `fdatasync` it.
    awaited: bool,
    /// The completion of the records in `buf`.
    batch: Arc<Batch>,
    /// The writer is parked on the condvar and must be notified.
    writer_idle: bool,
    /// The writer is gathering records nobody awaits ([`UNAWAITED_LINGER`]); a durable record
    /// or a full buffer clears this and notifies it.
    writer_lingering: bool,
    /// The writer is gathering a loaded batch (`busy_batch_wait`) or waiting out the pace
    /// (`min_sync_interval`); a full buffer clears this and notifies it.
    writer_gathering: bool,
    /// When the oldest awaited record in `buf` was appended.
    first_awaited_at: Option<Instant>,
    shutdown: bool,
    closed: bool,
    failure: Option<String>,
    signer: Option<DigestSigner>,
    /// Bytes of the current file, written or pending.
    file_bytes: u64,
    /// When the current file was started.
    file_opened: Instant,
    /// Where in `buf` a new file starts, and its first `seq` (a rotation is decided when a
    /// record is sealed, so the digest closing a file comes before the record that did not fit).
    rotations: Vec<(usize, u64)>,
}

impl Queue {
    /// Closes the current file with a digest and marks the start of the next one, if the file
    /// is due by size or age (and holds anything).
    fn rotate_if_due(&mut self, limits: &Limits, now: time::OffsetDateTime) {
        let due = self.file_bytes >= limits.max_file_bytes
            || self.file_opened.elapsed() >= limits.max_file_age;
        if !due || self.file_bytes == 0 {
            return;
        }
        if self.pending_since_digest > 0 {
            self.seal_digest(now);
        }
        self.rotations.push((self.buf.len(), self.head.next_seq));
        self.awaited = true;
        self.file_bytes = 0;
        self.file_opened = Instant::now();
    }

    fn seal_digest(&mut self, now: time::OffsetDateTime) -> bool {
        let Some(signer) = self.signer.as_ref() else {
            return false;
        };
        let seq = seal_digest(
            &mut self.head,
            signer,
            now,
            self.digest_first,
            &mut self.buf,
        );
        self.digest_first = seq + 1;
        self.pending_since_digest = 0;
        self.first_pending_at = None;
        true
    }
}

/// The bounds callers apply when they seal.
struct Limits {
    digest_every: u64,
    max_pending: usize,
    max_file_bytes: u64,
    max_file_age: Duration,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    clock: Arc<dyn Clock>,
    limits: Limits,
    commits: AtomicU64,
    records: AtomicU64,
    gathered: AtomicU64,
    paced: AtomicU64,
    removed_files: AtomicU64,
    /// The file being written, and what it was when opened, for [`AuditLog::file_missing`].
    current_file: Mutex<Option<(PathBuf, FileId)>>,
}

/// Which file a path named when it was opened (device and inode on Unix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt as _;
        FileId(meta.dev(), meta.ino())
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> FileId {
        FileId(0, 0)
    }
}

impl Shared {
    /// Notes the file the writer writes now.
    fn writing(&self, file: &File, path: &Path) {
        let id = file.metadata().ok().map(|m| FileId::of(&m));
        *self
            .current_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = id.map(|id| (path.to_path_buf(), id));
    }

    /// The pending buffer is full: appenders wait for the writer to take it. One that filled
    /// it before the writer began a wait could not wake it, so each wait checks this itself.
    fn buffer_full(&self, q: &Queue) -> bool {
        q.buf.len() >= self.limits.max_pending
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the log failed for good and refuses everything pending.
    fn fail(&self, reason: String) {
        error!("audit log failed, refusing further records: {reason}");
        let mut q = self.lock();
        q.failure = Some(reason.clone());
        q.buf.clear();
        q.rotations.clear();
        q.awaited = false;
        let batch = std::mem::replace(&mut q.batch, Arc::new(Batch::new()));
        drop(q);
        let _ = batch.set(Err(AuditError::Unavailable(reason)));
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
    /// Commits whose batch was gathered for `busy_batch_wait` because the issuing side was
    /// saturated (or, without a [`Load`] gauge, because records arrived during a sync).
    pub gathered: u64,
    /// Commits held back by `min_sync_interval` (the previous sync had started too recently).
    pub paced: u64,
    /// Files removed by retention.
    pub removed_files: u64,
}

/// The audit log handle (cheap to share behind an `Arc`).
pub struct AuditLog {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

/// The name of the lock file in the log directory.
pub const LOCK_FILE: &str = "writer.lock";

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

/// The first `seq` of a log file, from its name.
pub fn first_seq_in_name(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("audit-")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
}

/// What a look for old files found: if files may go, chains and signs the retention record
/// that names them and hands them to the writer, which removes them once it is durable.
fn seal_retention_plan(shared: &Shared, plan: Plan) {
    if let Some(why) = &plan.held_back {
        warn!("audit retention: {why}");
    }
    let Some(removal) = plan.removal else {
        return;
    };
    let facts = RetentionFacts {
        from_seq: removal.from_seq,
        from_prev_hash: removal.from_prev_hash,
        removed_files: removal
            .files
            .iter()
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect(),
    };
    let wake = {
        let mut guard = shared.lock();
        let q = &mut *guard;
        if q.failure.is_some() || q.shutdown || q.signer.is_none() {
            return;
        }
        let now = shared.clock.now();
        let before = q.buf.len();
        if let Err(e) = seal_retention(&mut q.head, now, &facts, &mut q.buf) {
            warn!("audit retention: cannot write the retention record: {e}");
            return;
        }
        // Signed at once: an unsigned retention record accounts for nothing.
        q.seal_digest(now);
        q.file_bytes += (q.buf.len() - before) as u64;
        q.awaited = true;
        q.planned_removal = Some((removal.files, q.head.next_seq - 1));
        std::mem::take(&mut q.writer_idle)
    };
    if wake {
        shared.wake.notify_one();
    }
    info!(
        files = facts.removed_files.len(),
        kept_from_seq = facts.from_seq,
        "audit retention: files past retention will be removed once their retention record is durable"
    );
}

struct Tail {
    head: ChainHead,
    digest_first: u64,
    truncated: u64,
}

/// Finds the chain head in the newest non-empty file, cutting a torn final line. The file is
/// read a line at a time, holding at most a record's worth of any line.
fn recover(path: &Path) -> Result<Option<Tail>, String> {
    let io_err = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err)?;
    let mut lines = BoundedLines::new(std::io::BufReader::with_capacity(64 * 1024, &file));
    let mut complete = 0u64;
    let mut truncated = 0u64;
    let mut last: Vec<u8> = Vec::new();
    let mut last_len = 0u64;
    let mut first_seq = None;
    let mut last_digest = None;
    while let Some((line, ended)) = lines.next_line().map_err(io_err)? {
        if !ended {
            truncated = line.len;
            break;
        }
        complete += line.len + 1;
        if line.len == 0 {
            continue;
        }
        let seq = peek_seq(line.bytes);
        if first_seq.is_none() {
            first_seq = seq;
        }
        if memchr::memmem::find(
            line.bytes.get(..120).unwrap_or(line.bytes),
            b"\"recordType\":\"digest\"",
        )
        .is_some()
        {
            last_digest = seq;
        }
        last.clear();
        last.extend_from_slice(line.bytes);
        last_len = line.len;
    }
    drop(lines);
    if truncated > MAX_LINE_BYTES as u64 {
        return Err(format!(
            "{} ends with {truncated} bytes without a newline, more than any record: not a write \
             cut short; run `keyless audit verify` and move the damaged file aside",
            path.display()
        ));
    }
    if truncated > 0 {
        warn!(
            file = %path.display(),
            bytes = truncated,
            "cutting a torn final audit line (a write interrupted by a crash; never acknowledged)"
        );
        file.set_len(complete)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot cut the torn line of {}: {e}", path.display()))?;
    }
    if last_len == 0 {
        return Ok(None);
    }
    let checked = if last_len > MAX_LINE_BYTES as u64 {
        Err(crate::chain::LineError::TooLong)
    } else {
        check_line(&last)
    };
    let checked = checked.map_err(|e| {
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

/// Whether `file` is still the file at `path`: a record synced to a file that was removed,
/// renamed or replaced since it was opened is durable nowhere a reader of the log looks, so it
/// must not be acknowledged. One `fstat` and one `stat` per sync.
#[cfg(unix)]
fn in_place(file: &File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let open = file.metadata()?;
    if open.nlink() == 0 {
        return Ok(false);
    }
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn in_place(_file: &File, path: &Path) -> std::io::Result<bool> {
    Ok(path.exists())
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.seek(SeekFrom::End(0))?;
    Ok(f)
}

/// Takes the directory's writer lock, waiting up to `wait` for another process to let go.
fn take_lock(dir: &Path, wait: Duration) -> Result<File, AuditError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AuditError::Open {
            dir: dir.display().to_string(),
            message: format!("{}: {e}", path.display()),
        })?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Busy {
                    dir: dir.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(AuditError::Open {
                    dir: dir.display().to_string(),
                    message: format!("cannot lock {}: {e}", path.display()),
                });
            }
        }
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `config.dir` and starts the writer thread. Fails with
    /// [`AuditError::Busy`] if another process still holds the log after `config.lock_wait`.
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
        let lock = take_lock(&config.dir, config.lock_wait)?;
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                planned_removal: None,
                buf: Vec::with_capacity(1 << 20),
                spare: Vec::with_capacity(1 << 20),
                head,
                digest_first,
                pending_since_digest: head.next_seq - digest_first,
                first_pending_at: (head.next_seq > digest_first).then(Instant::now),
                awaited: false,
                batch: Arc::new(Batch::new()),
                writer_idle: false,
                writer_lingering: false,
                writer_gathering: false,
                first_awaited_at: None,
                shutdown: false,
                closed: false,
                failure: None,
                signer: Some(signer),
                file_bytes,
                file_opened: Instant::now(),
                rotations: Vec::new(),
            }),
            wake: Condvar::new(),
            clock,
            limits: Limits {
                digest_every: config.digest_every_records,
                max_pending: config.max_pending_bytes,
                max_file_bytes: config.max_file_bytes,
                max_file_age: config.max_file_age,
            },
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            gathered: AtomicU64::new(0),
            paced: AtomicU64::new(0),
            removed_files: AtomicU64::new(0),
            current_file: Mutex::new(None),
        });
        shared.writing(&file, &path);
        if let Some(parked) = &config.parked {
            *parked.writer.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&shared);
        }
        let state = WriterState {
            config,
            shared: Arc::clone(&shared),
            file,
            path,
            unsynced_since: None,
            last_sync_started: None,
            saturation: Saturation::new(Instant::now()),
            next_retention_check: Instant::now(),
            removal: None,
            planning: None,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("keyless-audit-writer".into())
            .spawn(move || run(state))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        info!(next_seq = report.next_seq, file = %report.current_file.display(), "audit log open");
        Ok((
            AuditLog {
                shared,
                thread: Mutex::new(Some(thread)),
            },
            report,
        ))
    }

    /// Serialises and chains `event` into the pending buffer; returns its `seq` and the batch
    /// it will be committed with. Waits (asynchronously) while the buffer is over its bound.
    async fn append<T: serde::Serialize + ?Sized>(
        &self,
        event: &T,
        durable: bool,
    ) -> Result<(u64, Arc<Batch>), AuditError> {
        loop {
            let (appended, wake) = {
                let mut q = self.shared.lock();
                if let Some(reason) = &q.failure {
                    return Err(AuditError::Unavailable(reason.clone()));
                }
                if q.closed {
                    return Err(AuditError::Closed);
                }
                let limits = &self.shared.limits;
                if q.buf.len() < limits.max_pending {
                    let q = &mut *q;
                    q.rotate_if_due(limits, self.shared.clock.now());
                    let before = q.buf.len();
                    let seq = seal_serialize(&mut q.head, event, &mut q.buf)
                        .map_err(|e| AuditError::Encode(e.to_string()))?;
                    q.pending_since_digest += 1;
                    if q.first_pending_at.is_none() {
                        q.first_pending_at = Some(Instant::now());
                    }
                    if q.pending_since_digest >= limits.digest_every {
                        q.seal_digest(self.shared.clock.now());
                    }
                    q.file_bytes += (q.buf.len() - before) as u64;
                    q.awaited |= durable;
                    if durable && q.first_awaited_at.is_none() {
                        q.first_awaited_at = Some(Instant::now());
                    }
                    // Only an idle writer needs a wake-up (a busy one finds the buffer when its
                    // current commit returns), or a lingering one when this record is awaited.
                    let wake = q.writer_idle || (durable && q.writer_lingering);
                    if wake {
                        q.writer_idle = false;
                        q.writer_lingering = false;
                    }
                    (Ok((seq, Arc::clone(&q.batch))), wake)
                } else {
                    // The buffer is full: an idle, lingering or gathering writer must take it
                    // now, and this caller waits for that batch before trying again.
                    let wake = q.writer_idle || q.writer_lingering || q.writer_gathering;
                    q.writer_idle = false;
                    q.writer_lingering = false;
                    q.writer_gathering = false;
                    (Err(Arc::clone(&q.batch)), wake)
                }
            };
            // Woken only once the queue's lock is released: woken while it is still held, the
            // writer (on the same core, often) would run only to block on the lock, and switch
            // back, twice per wake-up.
            if wake {
                self.shared.wake.notify_one();
            }
            match appended {
                Ok(done) => return Ok(done),
                Err(full) => {
                    full.wait().await;
                }
            }
        }
    }

    /// Records `event` (any serialisable JSON object: an [`crate::AuditEvent`] or a typed,
    /// borrowing record of the same shape) and returns its `seq` once it is durably on disk.
    /// This is the entry point for every event that must be on disk before the caller answers
    /// (anything that issues or revokes credentials, IAM changes).
    pub async fn record_durable<T: serde::Serialize + ?Sized>(
        &self,
        event: &T,
    ) -> Result<u64, AuditError> {
        let (seq, batch) = self.append(event, true).await?;
        batch.wait().await.clone().map(|()| seq)
    }

    /// Records `event` without waiting for the disk (it is chained now and written with the
    /// next batch). Fails only when the log is already known to be unavailable.
    pub async fn record<T: serde::Serialize + ?Sized>(&self, event: &T) -> Result<(), AuditError> {
        self.append(event, false).await.map(|_| ())
    }

    /// Why the log cannot be written, if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.shared.lock().failure.clone()
    }

    /// Whether the file being written was removed or replaced since it was opened (the next
    /// commit would fail the log), for a readiness check that needs no write to notice. One
    /// `stat`; `None` while it is in place.
    pub fn file_missing(&self) -> Option<String> {
        let current = self
            .shared
            .current_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (path, opened) = current?;
        let in_place = std::fs::metadata(&path).is_ok_and(|m| FileId::of(&m) == opened);
        (!in_place).then(|| {
            format!(
                "{} was removed or replaced since it was opened: the next record cannot be written",
                path.display()
            )
        })
    }

    /// Replaces the digest signing key (after a key-ring rotation).
    pub fn set_signer(&self, signer: DigestSigner) {
        self.shared.lock().signer = Some(signer);
    }

    /// Commits and fsync counters.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            records: self.shared.records.load(Ordering::Relaxed),
            gathered: self.shared.gathered.load(Ordering::Relaxed),
            paced: self.shared.paced.load(Ordering::Relaxed),
            removed_files: self.shared.removed_files.load(Ordering::Relaxed),
        }
    }

    /// Commits everything queued, writes a closing digest, syncs and stops the writer (and
    /// releases the lock). Later records get [`AuditError::Closed`].
    pub async fn shutdown(&self) {
        {
            let mut q = self.shared.lock();
            q.closed = true;
            q.shutdown = true;
            q.writer_idle = false;
            self.shared.wake.notify_one();
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
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    /// Set while records that nobody awaits are written but not yet synced.
    unsynced_since: Option<Instant>,
    /// When the last sync started (for `min_sync_interval`).
    last_sync_started: Option<Instant>,
    saturation: Saturation,
    /// When to look for files past retention next.
    next_retention_check: Instant,
    /// Files to remove once the records up to this `seq` (their retention record and the
    /// digest signing it) are durable.
    removal: Option<(Vec<PathBuf>, u64)>,
    /// The thread of the last look for files past retention.
    planning: Option<JoinHandle<()>>,
    /// Held (never read) for the writer's life: one process per log.
    _lock: File,
}

/// The longest records nobody awaits (sampled authorize decisions) stay written but unsynced.
/// A process crash cannot lose them (they are in the page cache); only a machine crash within
/// this window can. Any durable record syncs them earlier.
const MAX_UNSYNCED: Duration = Duration::from_millis(500);

/// How long the writer gathers records nobody awaits (sampled `/v1/authorize` decisions) before
/// writing them, when no durable record comes first: at most one wake-up of the writer per
/// linger instead of one per few records. `kill -9` within it loses those records (they never
/// held up an answer); a clean shutdown writes them.
const UNAWAITED_LINGER: Duration = Duration::from_millis(2);

/// The verdict of the last [`LOAD_WINDOW`]: was the issuing side saturated?
#[derive(Debug)]
struct Saturation {
    since: Instant,
    busy_then: Option<Duration>,
    saturated: bool,
}

impl Saturation {
    /// Not saturated until a window has been measured.
    fn new(now: Instant) -> Saturation {
        Saturation {
            since: now,
            busy_then: None,
            saturated: false,
        }
    }

    /// The verdict at `now`: measured anew once the window is [`LOAD_WINDOW`] long, the
    /// previous one until then.
    fn check(&mut self, load: &dyn Load, now: Instant) -> bool {
        let window = now.saturating_duration_since(self.since);
        if window < LOAD_WINDOW && self.busy_then.is_some() {
            return self.saturated;
        }
        let (busy, workers) = load.busy();
        if let Some(then) = self.busy_then {
            let capacity = window.as_nanos() * workers.max(1) as u128;
            self.saturated = busy.saturating_sub(then).as_nanos() * 100
                >= capacity * u128::from(SATURATED_BUSY_PERCENT);
        }
        self.since = now;
        self.busy_then = Some(busy);
        self.saturated
    }
}

/// One unit of work taken from the queue.
struct Take {
    bytes: Vec<u8>,
    sync: bool,
    batch: Arc<Batch>,
    /// Offsets in `bytes` where a new file starts, with its first `seq`.
    rotations: Vec<(usize, u64)>,
    /// The last `seq` in `bytes` (or before).
    through: u64,
    shutdown: bool,
    /// Files a retention look chained a record for, and that record's digest `seq`.
    planned_removal: Option<(Vec<PathBuf>, u64)>,
}

/// Waits on the queue's condvar while `waiting` holds, the log is not shutting down and the
/// pending buffer is not full, until `until` at the latest.
fn wait_until<'q>(
    shared: &'q Shared,
    mut q: MutexGuard<'q, Queue>,
    until: Instant,
    waiting: impl Fn(&Queue) -> bool,
) -> MutexGuard<'q, Queue> {
    while waiting(&q) && !q.shutdown && !shared.buffer_full(&q) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        q = shared
            .wake
            .wait_timeout(q, until - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    q
}

fn run(mut st: WriterState) {
    let shared = Arc::clone(&st.shared);
    loop {
        if st.config.retention.is_some()
            && st.removal.is_none()
            && st.planning.as_ref().is_none_or(JoinHandle::is_finished)
            && Instant::now() >= st.next_retention_check
            // A look's removal waiting in the queue is one look too many to start another.
            && shared.lock().planned_removal.is_none()
        {
            st.next_retention_check = Instant::now() + RETENTION_CHECK;
            st.start_planning(&shared);
        }
        let take = st.take(&shared);
        let Take {
            bytes,
            sync,
            batch,
            rotations,
            through,
            shutdown,
            planned_removal,
        } = take;
        if planned_removal.is_some() {
            st.removal = planned_removal;
        }
        let ok = st.commit(&bytes, &rotations, sync);
        if ok && !rotations.is_empty() {
            // A file was just closed: it may be the one past retention.
            st.next_retention_check = Instant::now();
        }
        if ok
            && sync
            && st.removal.as_ref().is_some_and(|(_, seq)| through >= *seq)
            && let Some((files, _)) = st.removal.take()
        {
            st.remove(&files);
        }
        {
            // Hand the buffer back for reuse.
            let mut q = shared.lock();
            if q.spare.capacity() < bytes.capacity() {
                let mut b = bytes;
                b.clear();
                q.spare = b;
            }
        }
        if ok {
            let _ = batch.set(Ok(()));
        } else {
            let reason = shared.lock().failure.clone().unwrap_or_default();
            let _ = batch.set(Err(AuditError::Unavailable(reason)));
        }
        if shutdown {
            info!(next_seq = shared.lock().head.next_seq, "audit log closed");
            return;
        }
    }
}

impl WriterState {
    /// Waits for work and takes it: the pending lines, whether they need a sync, and the
    /// digest a timer, a rotation or the shutdown calls for.
    fn take(&mut self, shared: &Shared) -> Take {
        let mut q = shared.lock();
        let mut was_idle = false;
        let mut overdue_sync = false;
        loop {
            if q.shutdown || !q.buf.is_empty() {
                break;
            }
            let now = Instant::now();
            if self.digest_due(&q, now) {
                break;
            }
            if self.unsynced_since.is_some_and(|t| t + MAX_UNSYNCED <= now) {
                overdue_sync = true;
                break;
            }
            let digest_at = q
                .first_pending_at
                .filter(|_| q.pending_since_digest > 0 && q.failure.is_none())
                .map(|t| t + self.config.digest_interval);
            let sync_at = self.unsynced_since.map(|t| t + MAX_UNSYNCED);
            let deadline = match (digest_at, sync_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            q.writer_idle = true;
            was_idle = true;
            q = match deadline {
                Some(at) => {
                    shared
                        .wake
                        .wait_timeout(q, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner),
            };
            q.writer_idle = false;
        }
        if was_idle && !q.shutdown && !q.buf.is_empty() && !q.awaited {
            // Only records nobody waits for: gather them for a while (one write and one
            // wake-up per linger, not per record), unless a durable record or a full buffer
            // ends it.
            q.writer_lingering = true;
            q = wait_until(shared, q, Instant::now() + UNAWAITED_LINGER, |q| {
                q.writer_lingering && !q.awaited
            });
            q.writer_lingering = false;
        }
        // Gather a loaded batch: the CPU is the bottleneck and each commit costs wake-ups and a
        // sync whatever it carries. Without a gauge, records that arrived during the last sync
        // stand for load. With one, its verdict decides, also after an idle period: a fast
        // device (NVMe, tmpfs) returns each sync before the next record comes, so a writer
        // that only gathered after busy syncs would commit a handful of records each time.
        let gather = q.awaited
            && !q.shutdown
            && !self.config.busy_batch_wait.is_zero()
            && if self.config.load.is_some() {
                self.saturated()
            } else {
                !was_idle
            };
        if was_idle && !gather && !q.shutdown && q.awaited && !self.config.max_batch_wait.is_zero()
        {
            // The bounded wait after an idle period: sleep rather than wake per arriving
            // record, then take what came.
            drop(q);
            std::thread::sleep(self.config.max_batch_wait);
            q = shared.lock();
        } else if gather {
            // Gather until the oldest waiting record has waited `busy_batch_wait` (or the
            // buffer fills, or a request worker parks: see [`ParkedWorkers`]).
            let parked = self.config.parked.as_deref();
            if let Some(p) = parked {
                p.gathering.store(true, Ordering::SeqCst);
            }
            let idle_worker = || parked.is_some_and(|p| p.parked() > 0);
            if let Some(first) = q.first_awaited_at.filter(|_| !idle_worker()) {
                shared.gathered.fetch_add(1, Ordering::Relaxed);
                q.writer_gathering = true;
                q = wait_until(shared, q, first + self.config.busy_batch_wait, |q| {
                    q.writer_gathering && !idle_worker()
                });
                q.writer_gathering = false;
            }
            if let Some(p) = parked {
                p.gathering.store(false, Ordering::SeqCst);
            }
        }
        if let Some(at) = self
            .last_sync_started
            .map(|t| t + self.config.min_sync_interval)
            .filter(|at| q.awaited && !q.shutdown && Instant::now() < *at)
        {
            // Paced: the previous sync started less than `min_sync_interval` ago. What comes
            // meanwhile joins this batch; a full buffer ends it.
            shared.paced.fetch_add(1, Ordering::Relaxed);
            q.writer_gathering = true;
            q = wait_until(shared, q, at, |q| q.writer_gathering);
            q.writer_gathering = false;
        }
        if self.digest_due(&q, Instant::now()) {
            q.seal_digest(shared.clock.now());
            q.awaited = true;
        }
        let shutdown = q.shutdown;
        if shutdown && q.failure.is_none() && q.pending_since_digest > 0 {
            q.seal_digest(shared.clock.now());
            q.awaited = true;
        }
        let spare = std::mem::take(&mut q.spare);
        let bytes = std::mem::replace(&mut q.buf, spare);
        let sync = std::mem::take(&mut q.awaited) || overdue_sync;
        q.first_awaited_at = None;
        let batch = std::mem::replace(&mut q.batch, Arc::new(Batch::new()));
        let rotations = std::mem::take(&mut q.rotations);
        Take {
            bytes,
            sync,
            batch,
            rotations,
            through: q.head.next_seq - 1,
            shutdown,
            planned_removal: q.planned_removal.take(),
        }
    }

    /// Starts a look for the oldest closed files past retention, on a thread of its own (it
    /// reads each file it would remove, which must not hold up commits).
    fn start_planning(&mut self, shared: &Arc<Shared>) {
        let Some(max_age) = self.config.retention else {
            return;
        };
        let files = match list_files(&self.config.dir) {
            Ok(files) => files,
            Err(e) => {
                warn!(
                    "audit retention: cannot list {}: {e}",
                    self.config.dir.display()
                );
                return;
            }
        };
        let floor = self
            .config
            .retention_floor
            .as_ref()
            .map_or(u64::MAX, |f| f.load(Ordering::Acquire));
        let mut keys = self.config.retention_keys.clone();
        if let Some(signer) = shared.lock().signer.as_ref()
            && let Ok(own) = <[u8; 32]>::try_from(signer.public_key())
        {
            keys.insert(signer.key_version(), own);
        }
        let current = self.path.clone();
        let now = shared.clock.now();
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("keyless-audit-retention".into())
            .spawn(move || {
                let plan = retention::plan(&files, &current, max_age, floor, now, &keys);
                seal_retention_plan(&shared, plan);
            });
        match spawned {
            Ok(handle) => self.planning = Some(handle),
            Err(e) => warn!("audit retention: cannot start the look for old files: {e}"),
        }
    }

    /// Removes `files`, oldest first, and syncs the directory. A file that cannot be removed
    /// stops the pass (the ones after it stay, so the log stays contiguous) and is retried at
    /// the next check.
    fn remove(&mut self, files: &[PathBuf]) {
        let mut removed = 0;
        for f in files {
            if let Err(e) = std::fs::remove_file(f) {
                warn!(file = %f.display(), "audit retention: cannot remove: {e}");
                break;
            }
            removed += 1;
            self.shared.removed_files.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = File::open(&self.config.dir).and_then(|d| d.sync_all()) {
            warn!(
                "audit retention: cannot sync {}: {e}",
                self.config.dir.display()
            );
        }
        info!(
            files = removed,
            "audit retention: removed files past retention"
        );
    }

    /// Whether the issuing side is saturated (always, without a gauge).
    fn saturated(&mut self) -> bool {
        match &self.config.load {
            Some(load) => self.saturation.check(load.as_ref(), Instant::now()),
            None => true,
        }
    }

    /// A timed digest is due: records are unsigned for longer than `digest_interval`.
    fn digest_due(&self, q: &Queue, now: Instant) -> bool {
        q.failure.is_none()
            && q.pending_since_digest > 0
            && q.first_pending_at
                .is_some_and(|t| t + self.config.digest_interval <= now)
    }

    /// Writes a batch: each part before a rotation mark to its file, synced, then the new file
    /// is created; the rest to the current file, synced if `sync`.
    fn commit(&mut self, bytes: &[u8], rotations: &[(usize, u64)], sync: bool) -> bool {
        let mut from = 0;
        for &(at, first_seq) in rotations {
            if !(self.write(&bytes[from..at], true) && self.rotate(first_seq)) {
                return false;
            }
            from = at;
        }
        self.write(&bytes[from..], sync)
    }

    /// Writes `bytes`, and syncs the file when `sync` (or when unsynced records are overdue);
    /// on failure marks the log failed.
    fn write(&mut self, bytes: &[u8], sync: bool) -> bool {
        let overdue = self
            .unsynced_since
            .is_some_and(|t| t.elapsed() >= MAX_UNSYNCED);
        let sync = sync || overdue;
        if bytes.is_empty() && !(sync && self.unsynced_since.is_some()) {
            return true;
        }
        let started = Instant::now();
        if sync {
            self.last_sync_started = Some(started);
        }
        let result = self
            .file
            .write_all(bytes)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        let took = started.elapsed();
        if took >= SLOW_COMMIT {
            // Every awaiting issuer waited this long: worth an operator's look (disk latency).
            warn!(
                millis = took.as_millis() as u64,
                bytes = bytes.len(),
                sync,
                "slow audit commit"
            );
        }
        match result {
            Ok(()) => {
                if sync {
                    match in_place(&self.file, &self.path) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.shared.fail(format!(
                                "{} was removed or replaced while it was being written: records \
                                 written since are not in the log",
                                self.path.display()
                            ));
                            return false;
                        }
                        Err(e) => {
                            self.shared
                                .fail(format!("checking {} failed: {e}", self.path.display()));
                            return false;
                        }
                    }
                    self.unsynced_since = None;
                    self.shared.commits.fetch_add(1, Ordering::Relaxed);
                } else if !bytes.is_empty() {
                    self.unsynced_since.get_or_insert_with(Instant::now);
                }
                let lines = memchr::memchr_iter(b'\n', bytes).count() as u64;
                self.shared.records.fetch_add(lines, Ordering::Relaxed);
                if self.config.stdout {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(bytes).and_then(|()| out.flush());
                }
                true
            }
            Err(e) => {
                self.shared
                    .fail(format!("writing {} failed: {e}", self.path.display()));
                false
            }
        }
    }

    fn rotate(&mut self, first_seq: u64) -> bool {
        match create_file(&self.config.dir, first_seq) {
            Ok((file, path)) => {
                info!(file = %path.display(), "audit log rotated");
                self.shared.writing(&file, &path);
                self.file = file;
                self.path = path;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AuditEvent, SOURCE_STS};
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
    async fn unawaited_records_are_written_soon_and_synced_within_the_bound() {
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
        // ...not synced before the bound...
        tokio::time::sleep(MAX_UNSYNCED / 2).await;
        assert_eq!(log.stats().commits, before);
        // ...and synced once it passes, even though nothing else arrives. The sync starts at
        // the bound; how long it takes is the disk's (this project's test disks stall for up
        // to a second), so the wait for it is generous.
        let deadline = Instant::now() + MAX_UNSYNCED + Duration::from_secs(10);
        while log.stats().commits == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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

    /// Busy time growing at a fixed share of the wall clock (a fake [`Load`]).
    #[derive(Debug)]
    struct FixedShare {
        since: Instant,
        share: f64,
        workers: usize,
    }

    impl Load for FixedShare {
        fn busy(&self) -> (Duration, usize) {
            let all = self
                .since
                .elapsed()
                .mul_f64(self.share * self.workers as f64);
            (all, self.workers)
        }
    }

    fn share(share: f64, workers: usize) -> Arc<dyn Load> {
        Arc::new(FixedShare {
            since: Instant::now(),
            share,
            workers,
        })
    }

    /// A steady stream of issuers, each waiting for its record, arriving denser than a
    /// sync takes (as under load); returns the writer's counters after the last one.
    async fn stream_of_issuers(
        issuers: usize,
        busy: Duration,
        load: Option<Arc<dyn Load>>,
    ) -> WriterStats {
        issuers_every(Duration::from_micros(200), issuers, busy, load).await
    }

    /// Issuers arriving every `gap`, each waiting for its record.
    async fn issuers_every(
        gap: Duration,
        issuers: usize,
        busy: Duration,
        load: Option<Arc<dyn Load>>,
    ) -> WriterStats {
        issuers_with(gap, issuers, |cfg| {
            cfg.busy_batch_wait = busy;
            cfg.load = load;
        })
        .await
        .0
    }

    /// Issuers arriving every `gap`, each waiting for its record, on a [`writer_with`]
    /// `configure`'s settings; returns the writer's counters after the last one and
    /// how long the stream took. The log verifies and holds every record.
    async fn issuers_with(
        gap: Duration,
        issuers: usize,
        configure: impl FnOnce(&mut WriterConfig),
    ) -> (WriterStats, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let (log, cfg) = writer_with(dir.path(), configure);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..issuers {
            let log = Arc::clone(&log);
            tasks.push(tokio::spawn(
                async move { log.record_durable(&event(i)).await },
            ));
            // A blocking pause, spun: tokio's timer cannot wait less than a millisecond, and a
            // thread's sleep overshoots short gaps by tens of microseconds.
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let elapsed = started.elapsed();
        let stats = log.stats();
        shutdown_and_verify(&log, &cfg, issuers).await;
        (stats, elapsed)
    }

    /// A writer in `dir` with no wait after an idle period, then `configure`'s settings.
    fn writer_with(
        dir: &Path,
        configure: impl FnOnce(&mut WriterConfig),
    ) -> (Arc<AuditLog>, WriterConfig) {
        let mut cfg = WriterConfig::new(dir.join("audit"));
        cfg.max_batch_wait = Duration::ZERO;
        configure(&mut cfg);
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        (Arc::new(log), cfg)
    }

    /// Shuts `log` down and checks that its directory verifies and holds `events` records
    /// besides its digests.
    async fn shutdown_and_verify(log: &AuditLog, cfg: &WriterConfig, events: usize) {
        log.shutdown().await;
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!(r.records - r.digests, events as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_load_a_batch_gathers_until_its_oldest_record_has_waited() {
        // With `busy_batch_wait`, records that arrive while a batch syncs are committed
        // together once the oldest has waited 40 ms, so the stream takes a few large syncs
        // instead of one per sync time. Without a gauge, "arrived while a batch syncs" is what
        // stands for load, so the records come 20 µs apart: denser than any disk syncs (an
        // idle ext4 on virtio took 50-80 µs; a stream 200 µs apart found the writer idle at
        // every record there, and nothing was gathered).
        let gap = Duration::from_micros(20);
        // 1000 records over about 20 ms: longer than a slow sync (a busy test machine's took
        // over 6 ms), so without the wait the stream still takes many syncs.
        let gathered = issuers_every(gap, 1000, Duration::from_millis(40), None).await;
        // The first record's own sync, the rest in one or two gathered batches, and the
        // shutdown digest's.
        assert!(
            gathered.commits <= 12,
            "{} syncs with a 40 ms gathering wait",
            gathered.commits
        );
        assert!(gathered.gathered > 0);
        // Without the wait, more syncs. On a machine busy with other work the stream's records
        // can reach the writer in bursts (its thread descheduled while they queue), which a
        // prompt writer commits together too; so up to three streams get the chance to show it.
        let mut prompt_commits = Vec::new();
        for _ in 0..3 {
            let prompt = issuers_every(gap, 1000, Duration::ZERO, None).await;
            assert_eq!(prompt.gathered, 0);
            prompt_commits.push(prompt.commits);
            if prompt.commits > gathered.commits {
                break;
            }
        }
        assert!(
            prompt_commits.iter().any(|&c| c > gathered.commits),
            "{prompt_commits:?} syncs without the wait, {} with it",
            gathered.commits
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_gauge_keeps_gathering_to_a_saturated_issuing_side() {
        // Workers busy 95% of the time: the CPU is the bottleneck, so loaded batches are
        // gathered as without a gauge, once the first window (50 ms) has been measured. The
        // stream lasts at least 200 ms.
        let wait = Duration::from_millis(40);
        let saturated = stream_of_issuers(1000, wait, Some(share(0.95, 2))).await;
        assert!(saturated.gathered >= 1, "{saturated:?}");
        // Busy half the time: there is spare capacity, and waiting would only add latency,
        // so no batch is held back.
        let spare = stream_of_issuers(1000, wait, Some(share(0.5, 2))).await;
        // (How many syncs each stream takes depends on the disk's latency, which on this
        // project's test machines varies by two orders of magnitude, so the counts of syncs
        // are not compared; the gathered commits are the writer's decision.)
        assert_eq!(spare.gathered, 0, "{spare:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_saturated_issuing_side_is_gathered_for_even_when_each_sync_returns_first() {
        // Records 15 ms apart: most syncs return before the next record, so the writer is idle
        // when each arrives, as on a fast device under load. A saturated gauge still gathers
        // them; spare capacity, or no gauge, commits each as it comes (after the short
        // `max_batch_wait`, zero here).
        let gap = Duration::from_millis(15);
        let wait = Duration::from_millis(40);
        let saturated = issuers_every(gap, 24, wait, Some(share(0.95, 2))).await;
        // Every commit after the gauge's first 50 ms window gathers, except the shutdown's.
        assert!(saturated.gathered * 2 > saturated.commits, "{saturated:?}");
        let spare = issuers_every(gap, 24, wait, Some(share(0.5, 2))).await;
        assert_eq!(spare.gathered, 0, "{spare:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parked_worker_ends_the_gathering_wait_at_once() {
        // A saturated gauge and a 5 s gathering wait: only a park ends it early.
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.max_batch_wait = Duration::ZERO;
        cfg.busy_batch_wait = Duration::from_secs(5);
        cfg.load = Some(share(0.95, 2));
        let parked = Arc::new(ParkedWorkers::default());
        cfg.parked = Some(Arc::clone(&parked));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        let log = Arc::new(log);
        // The gauge's first window is measured by the first commit; the next one is saturated.
        log.record_durable(&event(0)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;

        let started = Instant::now();
        let waiting = tokio::spawn({
            let log = Arc::clone(&log);
            async move { log.record_durable(&event(1)).await }
        });
        // The writer is gathering for this record; a worker running out of work ends that.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "the record was committed without gathering"
        );
        assert_eq!(log.stats().gathered, 1);
        parked.park();
        waiting.await.unwrap().unwrap();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "the park did not end the wait: {took:?}"
        );

        // While a worker is parked, a saturated batch is committed without gathering at all.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let started = Instant::now();
        log.record_durable(&event(2)).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(log.stats().gathered, 1);
        // Unparked, the count is back to zero; the runtime balances the hooks, and an extra
        // unpark cannot wrap the count.
        parked.unpark();
        assert_eq!(parked.parked(), 0);
        parked.unpark();
        assert_eq!(parked.parked(), 0, "an unbalanced unpark saturates at zero");
        log.shutdown().await;
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_soon_after_the_last_one_waits_out_the_interval_and_a_later_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cfg) = writer_with(dir.path(), |cfg| {
            cfg.min_sync_interval = Duration::from_millis(300);
        });
        let started = Instant::now();
        // The first sync has nothing before it.
        log.record_durable(&event(0)).await.unwrap();
        assert_eq!(log.stats().paced, 0);
        // Right after it: held until 300 ms after the first sync started, which was after
        // `started` (whatever the disk's latency, this bound holds).
        log.record_durable(&event(1)).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(log.stats().paced, 1);
        // More than the interval after the last sync started: at once.
        tokio::time::sleep(Duration::from_millis(400)).await;
        log.record_durable(&event(2)).await.unwrap();
        assert_eq!(log.stats().paced, 1);
        shutdown_and_verify(&log, &cfg, 3).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paced_stream_takes_one_sync_per_interval() {
        // 400 issuers 250 µs apart (at least 100 ms) with a 25 ms pace: each sync carries the
        // records of about an interval, so a handful of syncs, not one per sync time.
        let (stats, elapsed) = issuers_with(Duration::from_micros(250), 400, |cfg| {
            cfg.min_sync_interval = Duration::from_millis(25);
        })
        .await;
        // One sync may start per 25 ms of the run, plus the first.
        let allowed = (elapsed.as_millis() / 25) as u64 + 1;
        assert!(
            stats.commits <= allowed,
            "{stats:?} in {elapsed:?}: more than one sync per interval"
        );
        assert!(stats.paced > 0, "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_buffer_or_the_shutdown_ends_a_paced_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (log, cfg) = writer_with(dir.path(), |cfg| {
            cfg.min_sync_interval = Duration::from_secs(30);
            cfg.max_pending_bytes = 4096;
        });
        log.record_durable(&event(0)).await.unwrap();
        // More than 4 KiB of records within the 30 s pace: the first full buffer is committed
        // without waiting it out.
        let one = serde_json::to_vec(&event(1)).unwrap().len();
        let n = 4096 * 3 / 2 / one + 2;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 1..=n {
            let log = Arc::clone(&log);
            tasks.spawn(async move { log.record_durable(&event(i)).await });
        }
        tasks.join_next().await.unwrap().unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a full buffer did not end the paced wait: {:?}",
            started.elapsed()
        );
        // The last, partly filled batch is waiting out the pace (the records that found the
        // buffer full append once the full batch is on disk); the shutdown commits it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown_and_verify(&log, &cfg, n + 1).await;
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_saturation_verdict_is_measured_per_window() {
        #[derive(Debug)]
        struct Set(Mutex<(Duration, usize)>);
        impl Load for Set {
            fn busy(&self) -> (Duration, usize) {
                *self.0.lock().unwrap()
            }
        }
        let load = Set(Mutex::new((Duration::ZERO, 2)));
        let set = |busy_ms: u64| load.0.lock().unwrap().0 = Duration::from_millis(busy_ms);
        let t0 = Instant::now();
        let mut s = Saturation::new(t0);
        // The first look only takes the baseline.
        assert!(!s.check(&load, t0));
        // 100 ms of two workers is 200 ms of capacity: 190 ms busy is 95%.
        set(190);
        assert!(s.check(&load, t0 + Duration::from_millis(100)));
        // Within the window the verdict stands, whatever the counter says.
        set(190);
        assert!(s.check(&load, t0 + Duration::from_millis(120)));
        // 100 ms more (from 100 ms) with 100 ms busy: 50%.
        set(290);
        assert!(!s.check(&load, t0 + Duration::from_millis(200)));
        // Exactly the threshold counts as saturated; a counter that goes back counts as idle.
        set(290 + 160);
        assert!(s.check(&load, t0 + Duration::from_millis(300)));
        set(0);
        assert!(!s.check(&load, t0 + Duration::from_millis(400)));
        // No workers reported: treated as one.
        *load.0.lock().unwrap() = (Duration::from_millis(100), 0);
        assert!(s.check(&load, t0 + Duration::from_millis(500)));
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

    const DAY: i64 = 24 * 3600;

    fn clock_at(days: i64) -> Arc<dyn Clock> {
        Arc::new(FixedClock::new(
            OffsetDateTime::from_unix_timestamp(1_800_000_000 + days * DAY).unwrap(),
        ))
    }

    /// Writes 30 records with the writer's clock `days` after the epoch of `clock()`, in
    /// several small files; returns every file of the log.
    async fn write_at(cfg: &WriterConfig, days: i64, first: usize) -> Vec<PathBuf> {
        let (log, _) = AuditLog::open(cfg.clone(), clock_at(days), signer()).unwrap();
        for i in first..first + 30 {
            log.record_durable(&event(i)).await.unwrap();
        }
        log.shutdown().await;
        let files = list_files(&cfg.dir).unwrap();
        assert!(files.len() >= 3, "{files:?}");
        files
    }

    fn retention_config(dir: &Path) -> WriterConfig {
        let mut cfg = WriterConfig::new(dir.join("audit"));
        cfg.max_file_bytes = 2000;
        cfg.max_batch_wait = Duration::ZERO;
        cfg
    }

    /// Opens the log at `days` with `cfg`'s retention and writes until `done` holds for the
    /// files left (the look runs on its own thread) or two seconds pass; returns the stats.
    async fn run_retention(
        cfg: &WriterConfig,
        days: i64,
        signer: DigestSigner,
        done: impl Fn(&[PathBuf]) -> bool,
    ) -> WriterStats {
        let (log, _) = AuditLog::open(cfg.clone(), clock_at(days), signer).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut i = 1000;
        loop {
            log.record_durable(&event(i)).await.unwrap();
            i += 1;
            if done(&list_files(&cfg.dir).unwrap()) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        log.shutdown().await;
        log.stats()
    }

    fn retention_records(dir: &Path) -> Vec<String> {
        list_files(dir)
            .unwrap()
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .filter(|l| l.contains("\"recordType\":\"retention\""))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn files_past_retention_are_removed_after_a_signed_retention_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = retention_config(dir.path());
        let old = write_at(&cfg, 0, 0).await;
        let files = write_at(&cfg, 2, 100).await;
        // Closed three days ago: every file written at day 0 but the one still open then.
        let aged = old.len() - 1;
        cfg.retention = Some(Duration::from_secs(3 * 24 * 3600));
        run_retention(&cfg, 3, signer(), |left| left[0] == files[aged]).await;

        let left = list_files(&cfg.dir).unwrap();
        assert_eq!(left[..files.len() - aged], files[aged..], "{left:?}");
        let retention = retention_records(&cfg.dir);
        assert_eq!(retention.len(), 1, "{retention:?}");
        let first_kept = first_seq_in_name(&files[aged]).unwrap();
        assert!(
            retention[0].contains(&format!("\"retainedFromSeq\":{first_kept},")),
            "{retention:?}"
        );
        for f in &files[..aged] {
            let name = f.file_name().unwrap().to_str().unwrap();
            assert!(retention[0].contains(name), "{name} in {retention:?}");
        }
        // The kept log verifies, saying where it starts and why.
        let r = verify_dir(&cfg.dir);
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!(r.first_seq, first_kept);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("removed by retention")),
            "{:?}",
            r.warnings
        );
        // One file more removed by hand is found.
        std::fs::remove_file(&left[0]).unwrap();
        let p = verify_dir(&cfg.dir).problem.unwrap();
        assert_eq!(p.kind, crate::verify::ProblemKind::Missing);
        assert!(
            p.message.contains("no signed retention record"),
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn a_backdated_mtime_removes_nothing() {
        // Someone who may write the log's directory but not read the key ring sets every
        // file's mtime to a year ago, hoping the server removes (and vouches for removing)
        // records written an hour ago.
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = retention_config(dir.path());
        let files = write_at(&cfg, 0, 0).await;
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(365 * 24 * 3600);
        for f in &files {
            File::options()
                .append(true)
                .open(f)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        cfg.retention = Some(Duration::from_secs(2 * 24 * 3600));
        let stats = run_retention(&cfg, 1, signer(), |_| false).await;
        assert_eq!(stats.removed_files, 0);
        assert_eq!(list_files(&cfg.dir).unwrap()[..files.len()], files[..]);
        assert!(retention_records(&cfg.dir).is_empty());
        assert!(verify_dir(&cfg.dir).is_ok());
    }

    /// The files of a day-0 log that a pass at day 3 would remove, after `tamper` edits the
    /// text of file `index`: returns the files left and the stats.
    async fn retention_after(
        tamper: impl Fn(&str) -> String,
        index: usize,
    ) -> (Vec<PathBuf>, Vec<PathBuf>, WriterStats) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = retention_config(dir.path());
        write_at(&cfg, 0, 0).await;
        let files = write_at(&cfg, 2, 100).await;
        let text = std::fs::read_to_string(&files[index]).unwrap();
        let edited = tamper(&text);
        assert_ne!(edited, text, "the edit must change something");
        std::fs::write(&files[index], edited).unwrap();
        cfg.retention = Some(Duration::from_secs(3 * 24 * 3600));
        let stats = run_retention(&cfg, 3, signer(), |_| false).await;
        let left = list_files(&cfg.dir).unwrap();
        (files, left, stats)
    }

    #[tokio::test]
    async fn a_file_that_does_not_verify_and_the_files_after_it_are_kept() {
        // An edited record in the second file (not its first, which the log would start
        // with): the first file goes, the rest stay.
        let (files, left, stats) = retention_after(
            |t| {
                let second = t.find('\n').unwrap() + 1;
                format!("{}{}", &t[..second], t[second..].replacen("ev-", "ex-", 1))
            },
            1,
        )
        .await;
        assert_eq!(stats.removed_files, 1);
        assert_eq!(left[..files.len() - 1], files[1..]);
        // A forged closing digest time (to make a file look older) breaks its signature.
        let (files, left, stats) = retention_after(
            |t| {
                let i = t.rfind("\"digestTime\":\"2027-").unwrap();
                format!("{}\"digestTime\":\"2026-{}", &t[..i], &t[i + 19..])
            },
            0,
        )
        .await;
        assert_eq!(stats.removed_files, 0);
        assert_eq!(left[..files.len()], files[..]);
        // A file that does not end with a digest cannot be dated.
        let (files, left, stats) = retention_after(
            |t| {
                let body = t.trim_end_matches('\n');
                format!("{}\n", &body[..body.rfind('\n').unwrap()])
            },
            0,
        )
        .await;
        assert_eq!(stats.removed_files, 0);
        assert_eq!(left[..files.len()], files[..]);
    }

    #[tokio::test]
    async fn only_digests_under_a_key_ring_key_date_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = retention_config(dir.path());
        let old = write_at(&cfg, 0, 0).await;
        let files = write_at(&cfg, 2, 100).await;
        cfg.retention = Some(Duration::from_secs(3 * 24 * 3600));
        // The server now signs with version 2; version 1's key is not among those it trusts.
        let v2 = || DigestSigner::new(2, Ed25519KeyPair::from_seed_unchecked(&[6; 32]).unwrap());
        let stats = run_retention(&cfg, 3, v2(), |_| false).await;
        assert_eq!(stats.removed_files, 0);
        assert_eq!(list_files(&cfg.dir).unwrap()[..files.len()], files[..]);
        // Given the key ring's version 1 key, they go.
        let mut v1 = [0u8; 32];
        v1.copy_from_slice(signer().public_key());
        cfg.retention_keys = BTreeMap::from([(1, v1)]);
        let aged = old.len() - 1;
        run_retention(&cfg, 3, v2(), |left| left[0] == files[aged]).await;
        assert_eq!(list_files(&cfg.dir).unwrap()[0], files[aged]);
        assert!(verify_dir(&cfg.dir).is_ok());
    }

    #[tokio::test]
    async fn one_retention_pass_removes_a_bounded_run_of_the_oldest_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = retention_config(dir.path());
        let files = write_at(&cfg, 0, 0).await;
        let mut keys = BTreeMap::new();
        let mut k = [0u8; 32];
        k.copy_from_slice(signer().public_key());
        keys.insert(1, k);
        let current = files.last().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000 + 2 * DAY).unwrap();
        let plan = |files: &[PathBuf], current: &Path, age, floor, limit| {
            retention::plan_at_most(files, current, age, floor, now, &keys, limit).removal
        };
        let r = plan(&files, current, day, u64::MAX, 2).unwrap();
        assert_eq!((r.files.as_slice(), &r.kept), (&files[..2], &files[2]));
        assert_eq!(r.from_seq, first_seq_in_name(&files[2]).unwrap());
        // Nothing past the floor.
        let first_end = first_seq_in_name(&files[1]).unwrap() - 1;
        let r = plan(&files, current, day, first_end, 100).unwrap();
        assert_eq!((r.files.len(), &r.kept), (1, &files[1]));
        assert_eq!(plan(&files, current, day, first_end - 1, 100), None);
        // Nothing younger than the retention, and never the current file.
        assert_eq!(plan(&files, current, 3 * day, u64::MAX, 100), None);
        assert_eq!(plan(&files[..1], &files[0], day, u64::MAX, 100), None);
    }

    #[tokio::test]
    async fn retention_keeps_young_files_and_what_a_follower_has_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = retention_config(dir.path());
        write_at(&cfg, 0, 0).await;
        let files = write_at(&cfg, 2, 100).await;
        // Retention longer than the files' age: nothing goes.
        cfg.retention = Some(Duration::from_secs(4 * 24 * 3600));
        let stats = run_retention(&cfg, 3, signer(), |_| false).await;
        assert_eq!(stats.removed_files, 0);
        assert_eq!(list_files(&cfg.dir).unwrap()[..files.len()], files[..]);

        // A follower that has copied only the first file's records holds back the rest.
        cfg.retention = Some(Duration::from_secs(2 * 24 * 3600));
        let copied = first_seq_in_name(&files[1]).unwrap() - 1;
        cfg.retention_floor = Some(Arc::new(AtomicU64::new(copied)));
        run_retention(&cfg, 3, signer(), |left| left[0] == files[1]).await;
        let left = list_files(&cfg.dir).unwrap();
        assert_eq!(left[0], files[1], "only the copied file went: {left:?}");
        assert!(verify_dir(&cfg.dir).is_ok());
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

    /// A log of one record and its closing digest: the directory (kept alive), the config and
    /// the file.
    async fn one_record_log() -> (tempfile::TempDir, WriterConfig, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(dir.path().join("audit"));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        log.shutdown().await;
        let file = list_files(&cfg.dir).unwrap().pop().unwrap();
        (dir, cfg, file)
    }

    #[tokio::test]
    async fn bytes_without_a_newline_longer_than_any_record_stop_the_open_uncut() {
        let (_dir, cfg, file) = one_record_log().await;
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        std::fs::write(&file, &bytes).unwrap();
        let err = AuditLog::open(cfg, clock(), signer()).unwrap_err();
        assert!(
            err.to_string().contains("more than any record")
                && err.to_string().contains("keyless audit verify"),
            "{err}"
        );
        // Left for the operator to look at, not cut as a torn write.
        assert_eq!(std::fs::metadata(&file).unwrap().len(), bytes.len() as u64);
    }

    #[tokio::test]
    async fn a_damaged_last_record_stops_the_open() {
        let (_dir, cfg, file) = one_record_log().await;
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
        // The next commit must rotate; make the next file impossible to create (a directory
        // in its place works even as root). The file being written stays where it is.
        for seq in 2..=20 {
            let _ = std::fs::create_dir(cfg.dir.join(file_name_for(seq)));
        }
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
    async fn a_file_removed_or_moved_while_in_use_fails_closed() {
        for moved in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = WriterConfig::new(dir.path().join("audit"));
            let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
            log.record_durable(&event(1)).await.unwrap();
            // An insider removes the file being written (or moves it out of the log): records
            // written to it after that are not in the log, so none may be acknowledged.
            let current = list_files(&cfg.dir).unwrap().pop().unwrap();
            if moved {
                std::fs::rename(&current, dir.path().join("elsewhere")).unwrap();
            } else {
                std::fs::remove_file(&current).unwrap();
            }
            let err = log.record_durable(&event(2)).await.unwrap_err();
            assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
            let reason = log.failure().unwrap();
            assert_eq!(
                reason,
                format!(
                    "{} was removed or replaced while it was being written: records written \
                     since are not in the log",
                    current.display()
                )
            );
            log.shutdown().await;
        }
    }

    #[tokio::test]
    async fn a_second_writer_on_the_same_directory_is_refused_until_the_first_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(dir.path().join("audit"));
        cfg.lock_wait = Duration::from_millis(100);
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        log.record_durable(&event(1)).await.unwrap();
        let err = AuditLog::open(cfg.clone(), clock(), signer()).unwrap_err();
        assert!(matches!(err, AuditError::Busy { .. }), "{err:?}");
        log.shutdown().await;
        let (log, report) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        // Record 1 and the shutdown digest.
        assert_eq!(report.next_seq, 3);
        log.shutdown().await;
        assert!(verify_dir(&cfg.dir).is_ok());
    }

    #[tokio::test]
    async fn a_typed_record_serialises_into_the_same_line_as_its_body() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed<'a> {
            event_id: &'a str,
            event_name: &'a str,
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig::new(dir.path().join("audit"));
        let (log, _) = AuditLog::open(cfg.clone(), clock(), signer()).unwrap();
        let typed = Typed {
            event_id: "ev-1",
            event_name: "AssumeRole",
        };
        assert_eq!(log.record_durable(&typed).await, Ok(1));
        // Not an object: refused, nothing written, the chain does not move.
        assert!(matches!(
            log.record_durable(&[1, 2]).await,
            Err(AuditError::Encode(_))
        ));
        assert_eq!(log.record_durable(&typed).await, Ok(2));
        log.shutdown().await;
        let text = std::fs::read_to_string(list_files(&cfg.dir).unwrap().pop().unwrap()).unwrap();
        let first = text.lines().next().unwrap();
        let mut head = ChainHead::genesis();
        let mut want = Vec::new();
        crate::chain::seal_event(
            &mut head,
            br#"{"eventId":"ev-1","eventName":"AssumeRole"}"#,
            &mut want,
        )
        .unwrap();
        assert_eq!(format!("{first}\n").as_bytes(), want.as_slice());
        assert!(verify_dir(&cfg.dir).is_ok());
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
