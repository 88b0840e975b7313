//! The shared state every handler reads: snapshots swapped whole on change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use keyless_core::authz_message::MessageSealer;
use keyless_core::caller::Verifier;
use keyless_core::directory::Directory;
use keyless_core::ports::SharedStore;
use keyless_core::revocation::{Revocation, RevocationSet};
use keyless_core::session_cache::SessionCache;
use keyless_token::KeyRing;
use keyless_types::Clock;

use crate::dev::DevIssuer;
use crate::keys::KeySources;
use crate::metrics::Metrics;
use crate::throttle::Throttle;

/// The key ring with the authorization-message sealer derived from it.
#[derive(Debug)]
pub struct Keys {
    /// The ring.
    pub ring: KeyRing,
    /// Seals authorization messages.
    pub sealer: Arc<MessageSealer>,
    /// Sessions opened under `ring` (a new ring starts with an empty cache).
    pub sessions: SessionCache,
}

impl Keys {
    /// The ring with its sealer and an empty session cache.
    pub fn new(ring: KeyRing, sealer: Arc<MessageSealer>) -> Self {
        Self {
            ring,
            sealer,
            sessions: SessionCache::default(),
        }
    }

    /// What a verification reads, with these keys.
    pub fn verifier<'a>(
        &'a self,
        directory: &'a Directory,
        revocations: &'a RevocationSet,
    ) -> Verifier<'a> {
        Verifier {
            directory,
            ring: &self.ring,
            revocations,
            sessions: &self.sessions,
        }
    }
}

/// [`AppState::revocations_generation`] before anything was read (the store's starts at 0).
pub const GENERATION_UNKNOWN: i64 = -1;

/// The revocations in force here: as last read from the store, plus those this process stored.
#[derive(Debug, Default)]
pub struct LiveRevocations {
    /// Indexed for the request path.
    pub set: RevocationSet,
    /// As stored, for listing and for merging what the store adds (shared, so that a merge
    /// copies pointers rather than rows).
    pub list: Vec<Arc<Revocation>>,
    /// The list's own change stamp ([`keyless_core::revocation_sync::stamp_of`]): equal to the
    /// store's when the list holds what the table does.
    pub stamp: keyless_core::ports::RevocationStamp,
    /// Every stored row with an id up to this one has been read (the next poll reads after
    /// it, less [`keyless_core::revocation_sync::LOOKBACK`]).
    pub read_through: i64,
}

/// The audit outbox of revocations in this process; its mutex is held by whoever writes a
/// revocation's audit record until the row is marked (the API across store write, record and
/// mark; the poller across its pass), so the two never record the same fresh row.
#[derive(Debug, Default)]
pub struct RevocationAudit {
    /// Whether a pass over the unaudited rows has run (the first one, at startup, records what
    /// was left unaudited while no server ran: every record it writes is marked recovered).
    pub swept: bool,
    /// The last pass left unaudited rows (not due yet, or their record failed): try again.
    pub pending: bool,
}

/// Application state.
pub struct AppState {
    /// The compiled directory.
    pub directory: ArcSwap<Directory>,
    /// The store's directory generation the directory was built from (read before the load,
    /// so a write between the two only causes one more reload).
    pub directory_generation: std::sync::atomic::AtomicI64,
    /// Serializes rebuilding the directory, so that a rebuild that read the store before a
    /// write cannot swap its older directory in after the write's.
    pub directory_reload: tokio::sync::Mutex<()>,
    /// The key ring.
    pub keys: ArcSwap<Keys>,
    /// The live revocations, checked on every verification.
    pub revocations: ArcSwap<LiveRevocations>,
    /// Serializes replacing `revocations`, so that a load that read the store before a
    /// revocation was added cannot swap in after it.
    pub revocations_swap: tokio::sync::Mutex<()>,
    /// The store's revocations generation, read before the last read of the store that
    /// `revocations` holds ([`GENERATION_UNKNOWN`] before the first). Written under
    /// `revocations_swap` once that read is in force; the API's own writes leave it behind, so
    /// the next poll still compares the stamp.
    pub revocations_generation: std::sync::atomic::AtomicI64,
    /// Serializes recording revocations in the audit log and marking them in the store.
    pub revocation_audit: tokio::sync::Mutex<RevocationAudit>,
    /// The last reload of the revocations failed: revocations made since are not in force
    /// here, and `/readyz` says so.
    pub revocations_stale: std::sync::atomic::AtomicBool,
    /// Where the key ring file is.
    pub keyring_path: PathBuf,
    /// Issuer keys.
    pub key_sources: KeySources,
    /// Durable state.
    pub store: SharedStore,
    /// Throttling of issuance.
    pub throttle: Throttle,
    /// Metrics.
    pub metrics: Metrics,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Token clock leeway by issuer URL.
    pub leeway: HashMap<String, time::Duration>,
    /// The development issuer, in `--dev` mode only.
    pub dev: Option<DevIssuer>,
    /// Who may call `/v1/authorize`.
    pub authorize_clients: Vec<crate::authorize_api::AuthorizeClient>,
    /// IAM API settings.
    pub iam: crate::iam_api::IamSettings,
    /// The audit trail (every STS call, every authorize decision, custom events).
    pub audit: crate::audit::Audit,
    /// Refused anonymous calls being folded into summary records.
    pub audit_fold: std::sync::Mutex<crate::audit_fold::Folder>,
    /// Held while summaries taken from `audit_fold` are written, so that the shutdown's final
    /// drain waits for a write in progress instead of closing the log under it.
    pub audit_fold_writing: tokio::sync::Mutex<()>,
    /// How far the audit table sink is (Postgres only), for `/readyz`.
    pub audit_table: Option<Arc<crate::audit_table_sink::SinkStatus>>,
    /// When each role last had a session issued (`GetRole`'s `RoleLastUsed`), written to the
    /// store by [`crate::flush_role_usage`].
    pub role_usage: keyless_core::role_usage::RoleUsage,
    /// The store's reachability as `/readyz` reports it.
    pub store_ping: StorePing,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Default leeway for `exp`/`nbf`/`iat`.
pub const DEFAULT_LEEWAY: time::Duration =
    time::Duration::seconds(crate::config::DEFAULT_LEEWAY_SECONDS as i64);

impl AppState {
    /// Leeway for an issuer.
    pub fn leeway_for(&self, issuer: &str) -> time::Duration {
        self.leeway.get(issuer).copied().unwrap_or(DEFAULT_LEEWAY)
    }

    /// Offers a refused anonymous call to the fold state: true when it was counted into a
    /// summary (write no record of its own), false when its own record is to be written (the
    /// first of its kind, or the fold state is unusable: a full record is the safe side).
    pub fn fold_refusal(
        &self,
        call: &crate::audit_fold::FoldCall<'_>,
        now: keyless_types::OffsetDateTime,
    ) -> bool {
        let Ok(mut folder) = self.audit_fold.lock() else {
            return false;
        };
        let verdict = folder.offer(call, now);
        let tracked = folder.tracked();
        drop(folder);
        let m = &self.metrics.audit_fold;
        m.keys.set(i64::try_from(tracked).unwrap_or(i64::MAX));
        match verdict {
            crate::audit_fold::Fold::Record => false,
            crate::audit_fold::Fold::Folded { overflow } => {
                m.folded
                    .get_or_create(&crate::metrics::FoldLabels { code: call.code })
                    .inc();
                if overflow {
                    m.overflow.inc();
                }
                true
            }
        }
    }

    /// Writes the fold summaries due at `now`, or all of them (`all`, at shutdown), durably.
    pub async fn flush_fold_summaries(&self, now: keyless_types::OffsetDateTime, all: bool) {
        let _writing = self.audit_fold_writing.lock().await;
        let due = self.fold_summaries(now, all);
        if !due.is_empty() {
            self.write_fold_summaries(due).await;
        }
    }

    /// Takes the fold summaries due at `now`, or all of them (`all`, at shutdown).
    fn fold_summaries(
        &self,
        now: keyless_types::OffsetDateTime,
        all: bool,
    ) -> Vec<crate::audit_fold::Summary> {
        let mut folder = self
            .audit_fold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = if all { folder.drain() } else { folder.due(now) };
        let tracked = folder.tracked();
        drop(folder);
        self.metrics
            .audit_fold
            .keys
            .set(i64::try_from(tracked).unwrap_or(i64::MAX));
        out
    }

    /// Writes fold summaries durably, one record each.
    async fn write_fold_summaries(&self, summaries: Vec<crate::audit_fold::Summary>) {
        for summary in summaries {
            let event = summary.to_event(crate::audit::event_id());
            let m = &self.metrics.audit_fold;
            match self.audit.record_durable(&event).await {
                Ok(_) => {
                    m.summaries.inc();
                }
                Err(_) => {
                    m.summary_failures.inc();
                    tracing::error!(
                        calls = summary.count(),
                        code = event.error_code.as_deref().unwrap_or(""),
                        source = event.source_ip_address,
                        "audit summary of folded calls not written"
                    );
                }
            }
        }
    }
}

/// How long one store ping answers `/readyz`.
const STORE_PING_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// The store's reachability for `/readyz`, pinged at most once per [`STORE_PING_REUSE`]: the
/// endpoint is unauthenticated, and a ping per request let anyone keep the store's small pool
/// busy, delaying the revocation and directory polls and IAM writes that share it. Callers
/// that arrive while a ping is running wait for its answer.
#[derive(Debug, Default)]
pub struct StorePing {
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

impl StorePing {
    /// Whether the store answered: the last ping's answer if it is younger than the reuse
    /// bound at `now`, otherwise `ping`'s.
    pub async fn reachable<F>(&self, now: std::time::Instant, ping: impl FnOnce() -> F) -> bool
    where
        F: std::future::Future<Output = bool>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && now.saturating_duration_since(at) < STORE_PING_REUSE
        {
            return ok;
        }
        let ok = ping().await;
        *last = Some((now, ok));
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_readiness_probes_pings_the_store_once() {
        let probe = Arc::new(StorePing::default());
        let pings = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let burst: Vec<_> = (0..50)
            .map(|_| {
                let (probe, pings) = (Arc::clone(&probe), Arc::clone(&pings));
                tokio::spawn(async move {
                    probe
                        .reachable(now, || async {
                            pings.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            true
                        })
                        .await
                })
            })
            .collect();
        for answer in burst {
            assert!(answer.await.unwrap());
        }
        assert_eq!(pings.load(Ordering::SeqCst), 1);
        // Past the reuse bound the store is asked again, and a failure is reported as such.
        let later = Instant::now() + STORE_PING_REUSE + Duration::from_millis(1);
        let failed = probe
            .reachable(later, || async {
                pings.fetch_add(1, Ordering::SeqCst);
                false
            })
            .await;
        assert!(!failed);
        assert_eq!(pings.load(Ordering::SeqCst), 2);
    }
}
