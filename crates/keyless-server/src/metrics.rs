//! Prometheus metrics: requests, latency, decisions by reason, JWKS fetches and failures,
//! session token sizes and the audit table sink, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The AWS action, or the route.
    pub action: &'static str,
    /// `OK` or the AWS error code.
    pub code: &'static str,
}

/// Labels of a latency sample.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The AWS action, or the route.
    pub action: &'static str,
}

/// Labels of an issuance decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `issued`, or the error code that stopped issuance.
    pub outcome: &'static str,
}

/// Labels of refused calls folded into audit summaries.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FoldLabels {
    /// The error code (one of [`crate::audit_fold::FOLDABLE_CODES`]).
    pub code: &'static str,
}

/// The bound on anonymous refusals in the audit log ([`crate::audit_fold`]).
#[derive(Debug, Clone, Default)]
pub struct FoldMetrics {
    /// Refused anonymous calls counted into a summary instead of a record of their own.
    pub folded: Family<FoldLabels, Counter>,
    /// Of those, calls folded into a many-sources summary (the tracking bound was reached).
    pub overflow: Counter,
    /// Summary records written.
    pub summaries: Counter,
    /// Summary records that could not be written (the log was down; their calls are lost).
    pub summary_failures: Counter,
    /// Keys (source, action, code) tracked now.
    pub keys: Gauge,
}

/// Labels of a revocation reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `full` (every row read) or `incremental` (only the rows not seen yet).
    pub kind: &'static str,
}

/// Labels of a comparison of the store's revocation stamp by the poll.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StampCheckLabels {
    /// `generation` (the store's revocations generation moved) or `safety_net` (it did not,
    /// but the stamp is compared every few seconds anyway).
    pub cause: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// The HTTP front's connection limits at work ([`crate::http_front`]).
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    /// Client connections open now.
    pub connections: Gauge,
    /// Connections closed at once for exceeding `max_connections_per_source`.
    pub refused_per_source: Counter,
    /// Connections closed because a request head did not arrive in time (or they sat idle).
    pub header_timeouts: Counter,
    /// Requests answered 408 because they did not complete in time.
    pub request_timeouts: Counter,
    /// Connections closed because their client did not take an answer in time.
    pub write_timeouts: Counter,
    /// TLS handshakes that failed or did not complete within the header timeout.
    pub tls_handshake_failures: Counter,
    /// The served certificate's expiry and failed reloads.
    pub tls: crate::tls::TlsMetrics,
}

/// Every metric keyless exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by action and outcome code.
    pub requests: Family<RequestLabels, Counter>,
    /// Latency by action.
    pub latency: Family<ActionLabels, Histogram, fn() -> Histogram>,
    /// Issuance decisions by outcome.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Credentials issued.
    pub issued: Counter,
    /// Session token sizes in bytes.
    pub token_size: Histogram,
    /// JWKS fetches (mirrored from the key cache at scrape time).
    pub jwks_fetches: Counter,
    /// JWKS fetch failures (mirrored from the key cache at scrape time).
    pub jwks_failures: Counter,
    /// Audit records committed to the log (mirrored from the writer at scrape time).
    pub audit_records: Counter,
    /// Audit log commits, one `fdatasync` each (mirrored from the writer at scrape time);
    /// records / commits is the group-commit batch size.
    pub audit_commits: Counter,
    /// Audit commits whose batch was gathered because the request workers were saturated
    /// (mirrored from the writer at scrape time).
    pub audit_gathered_commits: Counter,
    /// Audit commits held back by `min_sync_interval_micros` (mirrored at scrape time).
    pub audit_paced_commits: Counter,
    /// Audit files removed by `retention_days` (mirrored at scrape time).
    pub audit_removed_files: Counter,
    /// The audit table sink (Postgres only; zero otherwise).
    pub audit_table: crate::audit_table_sink::SinkMetrics,
    /// Client connections and their limits.
    pub http: HttpMetrics,
    /// Times the in-memory revocations were brought in step with the store, by kind.
    pub revocation_reloads: Family<ReloadLabels, Counter>,
    /// Times the revocation poll read the store's stamp (an aggregate over every row), by cause.
    pub revocation_stamp_checks: Family<StampCheckLabels, Counter>,
    /// Anonymous refusals folded into audit summaries.
    pub audit_fold: FoldMetrics,
    /// Bytes free for an unprivileged writer on the audit log's file system (set at scrape
    /// time; 0 when unknown).
    pub audit_volume_free_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keyless");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by action and outcome (OK or AWS error code)",
            requests.clone(),
        );
        let latency = Family::<ActionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by action",
            latency.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "issuance_decisions",
            "Credential issuance decisions by outcome",
            decisions.clone(),
        );
        let issued = Counter::default();
        registry.register(
            "credentials_issued",
            "Temporary credentials issued",
            issued.clone(),
        );
        let token_size = Histogram::new(linear_buckets(256.0, 256.0, 16));
        registry.register(
            "session_token_bytes",
            "Size of issued session tokens in bytes",
            token_size.clone(),
        );
        let jwks_fetches = Counter::default();
        registry.register(
            "jwks_fetches",
            "JWKS and discovery fetches",
            jwks_fetches.clone(),
        );
        let jwks_failures = Counter::default();
        registry.register(
            "jwks_fetch_failures",
            "Failed JWKS and discovery fetches",
            jwks_failures.clone(),
        );
        let audit_records = Counter::default();
        registry.register(
            "audit_records",
            "Audit records committed to the log file (digests included)",
            audit_records.clone(),
        );
        let audit_commits = Counter::default();
        registry.register(
            "audit_commits",
            "Audit log commits, one fdatasync each (records / commits = group-commit batch size)",
            audit_commits.clone(),
        );
        let audit_gathered_commits = Counter::default();
        registry.register(
            "audit_gathered_commits",
            "Audit commits whose batch was gathered for busy_batch_wait because the request workers were saturated",
            audit_gathered_commits.clone(),
        );
        let audit_paced_commits = Counter::default();
        registry.register(
            "audit_paced_commits",
            "Audit commits held back by min_sync_interval_micros because the previous fdatasync had started too recently",
            audit_paced_commits.clone(),
        );
        let audit_removed_files = Counter::default();
        registry.register(
            "audit_retention_removed_files",
            "Audit log files removed by retention_days, after a signed retention record named them",
            audit_removed_files.clone(),
        );
        let audit_table = crate::audit_table_sink::SinkMetrics::default();
        registry.register(
            "audit_table_rows",
            "Audit records copied into the Postgres audit_events table",
            audit_table.rows.clone(),
        );
        registry.register(
            "audit_table_failures",
            "Failed inserts into the audit_events table (issuance goes on; the sink retries)",
            audit_table.failures.clone(),
        );
        registry.register(
            "audit_table_skipped",
            "Audit records not copied into the table (refused by it, or not verifying in the file)",
            audit_table.skipped.clone(),
        );
        registry.register(
            "audit_table_seq",
            "Highest audit log seq the audit_events table holds for this log",
            audit_table.seq.clone(),
        );
        let http = HttpMetrics::default();
        registry.register(
            "http_connections",
            "Client connections open now",
            http.connections.clone(),
        );
        registry.register(
            "http_connections_refused_per_source",
            "Connections closed at once because their address had max_connections_per_source open",
            http.refused_per_source.clone(),
        );
        registry.register(
            "http_header_timeouts",
            "Connections closed because a request head did not arrive within header_read_timeout_seconds (or they sat idle that long)",
            http.header_timeouts.clone(),
        );
        registry.register(
            "http_request_timeouts",
            "Requests answered 408 RequestTimeout after request_timeout_seconds",
            http.request_timeouts.clone(),
        );
        registry.register(
            "http_write_timeouts",
            "Connections closed because the client did not take an answer within request_timeout_seconds (it stopped reading)",
            http.write_timeouts.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, or did not complete within header_read_timeout_seconds",
            http.tls_handshake_failures.clone(),
        );
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "notAfter of the TLS certificate being served, in Unix seconds (0 without [tls])",
            http.tls.expiry.clone(),
        );
        registry.register(
            "tls_certificate_reload_failures",
            "Changed certificate or key files not taken: unreadable, not matching, expired or not yet valid",
            http.tls.reload_failures.clone(),
        );
        let revocation_reloads = Family::<ReloadLabels, Counter>::default();
        for kind in ["full", "incremental"] {
            // Both shown from the start, at 0.
            drop(revocation_reloads.get_or_create(&ReloadLabels { kind }));
        }
        registry.register(
            "revocation_reloads",
            "Revocation changes made by another process taken into this one: full (every row reread) or incremental (only rows not seen yet)",
            revocation_reloads.clone(),
        );
        let revocation_stamp_checks = Family::<StampCheckLabels, Counter>::default();
        for cause in ["generation", "safety_net"] {
            drop(revocation_stamp_checks.get_or_create(&StampCheckLabels { cause }));
        }
        registry.register(
            "revocation_stamp_checks",
            "Times the revocation poll compared the store's stamp, an aggregate over every row: generation (the store's revocations generation moved) or safety_net (the periodic check for writes that did not move it)",
            revocation_stamp_checks.clone(),
        );
        let audit_fold = FoldMetrics::default();
        for code in crate::audit_fold::FOLDABLE_CODES {
            drop(audit_fold.folded.get_or_create(&FoldLabels { code }));
        }
        registry.register(
            "audit_folded_calls",
            "Refused anonymous calls (no verified caller, no configured role) counted into an audit summary record instead of a record of their own, by error code",
            audit_fold.folded.clone(),
        );
        registry.register(
            "audit_folded_overflow_calls",
            "Of the folded calls, those counted into a many-sources summary because the tracked sources were at their bound",
            audit_fold.overflow.clone(),
        );
        registry.register(
            "audit_fold_summaries",
            "Audit summary records written for folded calls",
            audit_fold.summaries.clone(),
        );
        registry.register(
            "audit_fold_summary_failures",
            "Audit summary records that could not be written (the audit log was failing)",
            audit_fold.summary_failures.clone(),
        );
        registry.register(
            "audit_fold_keys",
            "Sources (by source, action and error code) whose refused calls are being folded now",
            audit_fold.keys.clone(),
        );
        let audit_volume_free_bytes = Gauge::default();
        registry.register(
            "audit_volume_free_bytes",
            "Bytes available to keyless on the file system of the audit log (read at scrape time; 0 if unknown)",
            audit_volume_free_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            decisions,
            issued,
            token_size,
            jwks_fetches,
            jwks_failures,
            audit_records,
            audit_commits,
            audit_gathered_commits,
            audit_paced_commits,
            audit_removed_files,
            audit_table,
            http,
            revocation_reloads,
            revocation_stamp_checks,
            audit_fold,
            audit_volume_free_bytes,
        }
    }

    /// Counts one comparison of the store's revocation stamp (`generation` or `safety_net`).
    pub fn revocation_stamp_check(&self, cause: &'static str) {
        self.revocation_stamp_checks
            .get_or_create(&StampCheckLabels { cause })
            .inc();
    }

    /// Counts one revocation reload (`full` or `incremental`).
    pub fn revocation_reload(&self, kind: &'static str) {
        self.revocation_reloads
            .get_or_create(&ReloadLabels { kind })
            .inc();
    }

    /// Counts one request.
    pub fn request(&self, action: &'static str, code: &'static str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { action, code })
            .inc();
        self.latency
            .get_or_create(&ActionLabels { action })
            .observe(seconds);
    }

    /// Counts one issuance decision.
    pub fn decision(&self, outcome: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { outcome })
            .inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_the_metrics() {
        let m = Metrics::new();
        m.request("GetCallerIdentity", "OK", 0.001);
        m.decision("issued");
        m.issued.inc();
        m.token_size.observe(900.0);
        let text = m.encode();
        for want in [
            "keyless_requests_total{action=\"GetCallerIdentity\",code=\"OK\"} 1",
            "keyless_request_duration_seconds_bucket",
            "keyless_issuance_decisions_total{outcome=\"issued\"} 1",
            "keyless_credentials_issued_total 1",
            "keyless_session_token_bytes_bucket",
            "keyless_jwks_fetches_total 0",
            "keyless_audit_records_total 0",
            "keyless_audit_commits_total 0",
            "keyless_audit_gathered_commits_total 0",
            "keyless_audit_paced_commits_total 0",
            "keyless_audit_retention_removed_files_total 0",
            "keyless_revocation_reloads_total{kind=\"full\"} 0",
            "keyless_revocation_reloads_total{kind=\"incremental\"} 0",
            "keyless_revocation_stamp_checks_total{cause=\"generation\"} 0",
            "keyless_revocation_stamp_checks_total{cause=\"safety_net\"} 0",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
