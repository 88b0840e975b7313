//! The tamper-evident audit trail of keyless.
//!
//! - [`event`]: the CloudTrail-shaped record ([`AuditEvent`]) and the allow-list that builds
//!   `requestParameters` without secrets. [`AuditEvent::new`] is the one entry point for any
//!   event (STS, IAM, `/v1/authorize`, revocations, operator actions).
//! - [`record`]: the borrowed, typed form of the same record for the request path (no
//!   `serde_json::Value` tree, no copies; serialised straight into the writer's buffer).
//! - [`chain`]: the canonical line form, the SHA-256 hash chain and Ed25519-signed digests.
//! - [`verify`]: checks a whole log across rotated files and locates the first broken, missing
//!   or reordered record.
//! - [`query`]: filters, the text form, the live-session inventory and the credential report.
//! - [`writer`]: the I/O adapter. Callers chain their record into a shared buffer; one thread
//!   writes it with group commit (many records per `fdatasync`, one wake-up per batch),
//!   rotation, crash recovery, one process per log (a lock file), fail-closed on write errors.
//! - [`files`]: reading a log directory.
//! - [`retention`]: which closed files retention may remove, dated by their signed closing
//!   digests and checked against their hash chain.
//! - [`tail`]: following a log directory across rotations, for secondary sinks (the Postgres
//!   table) that read the durable files instead of taking records from the writer.
//!
//! Everything except [`writer`], [`files`], [`retention`] and [`tail`] is pure: no I/O, and time comes in as `now`.
//!
//! ```
//! use keyless_audit::chain::{ChainHead, check_line, seal_event};
//! use keyless_audit::{AuditEvent, event::SOURCE_KEYLESS};
//! use time::OffsetDateTime;
//!
//! let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
//! let mut event = AuditEvent::new(now, SOURCE_KEYLESS, "RevokeSessions", "req-1", "ev-1");
//! event.request_parameters = Some(serde_json::json!({"accessKeyId": "ASIAEXAMPLE"}));
//! let mut head = ChainHead::genesis();
//! let mut line = Vec::new();
//! let seq = seal_event(&mut head, &event.to_body().unwrap(), &mut line).unwrap();
//! assert_eq!(seq, 1);
//! let checked = check_line(line.strip_suffix(b"\n").unwrap()).unwrap();
//! assert_eq!(checked.hash, head.prev_hash);
//! ```

pub mod chain;
pub mod event;
pub mod files;
pub mod query;
pub mod record;
pub mod retention;
pub mod tail;
pub mod verify;
pub mod writer;

pub use event::{AuditEvent, Decision};
pub use writer::{AuditError, AuditLog, WriterConfig};
