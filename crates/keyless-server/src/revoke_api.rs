//! `POST /v1/revocations` (revoke) and `GET /v1/revocations` (list): session revocation as an
//! API, signed with SigV4 for the service `keyless` and authorized like any AWS call
//! (`keyless:RevokeSessions`, `keyless:RevokeOwnSession`, `keyless:ListRevocations`).
//!
//! `keyless revoke … --endpoint URL` is the client. A revocation is stored, recorded in the
//! audit log, then added to the in-memory set before the answer, so this server refuses the
//! session from the next request; other processes pick it up from the store within a second
//! ([`crate::watch_revocations`], which reads only the rows it has not seen:
//! [`sync_revocations`]).
//!
//! Every stored revocation ends up with at least one audit record, even if a process is killed
//! between the store write and the record: the row is the outbox. Whoever durably records a
//! revocation then marks its row with the record's `seq`
//! ([`keyless_core::ports::Store::mark_revocation_audited`]); [`audit_unaudited`] records the
//! rows still unmarked (at startup too) and marks them. The trade-off: a crash after the record
//! but before the mark yields a second record at recovery (better than none). With several
//! Postgres replicas, each with its own log, the first to mark wins and the others may also
//! have recorded the row; [`due_for_recovery`] keeps that window short for API rows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyless_core::caller::Caller;
use keyless_core::error::ApiError;
use keyless_core::ports::StoreError;
use keyless_core::revocation::{
    Revocation, RevocationRequest, RevocationSet, RevokeEnv, authorize_list, authorize_revocation,
};
use keyless_core::revocation_sync::{self, Merged};
use keyless_core::sts::{Authorizer, Origin};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, error, info};

use crate::audit;
use crate::http_front::Transport;
use crate::state::{AppState, GENERATION_UNKNOWN, LiveRevocations, RevocationAudit};
use crate::xml;
use keyless_audit::event::SOURCE_KEYLESS;

/// The SigV4 service name requests to this API are signed for.
pub const SERVICE: &str = "keyless";

/// Largest request body.
pub const MAX_BODY: usize = 16 * 1024;

/// The JSON body of `POST /v1/revocations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RevokeBody {
    /// `session`, `role`, `subject`, `source-identity`, `issuer`, `key-version`.
    #[serde(rename = "type")]
    kind: String,
    /// The value to revoke (access key id, role ARN, subject, …).
    value: String,
    /// The issuer, for `subject`.
    issuer: Option<String>,
    /// `now` or an RFC 3339 instant.
    issued_before: Option<String>,
    /// Why.
    reason: Option<String>,
}

fn error_response(e: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::HeaderName::from_static("x-amzn-requestid"),
            request_id.to_owned(),
        )],
        Json(json!({ "error": { "code": e.code, "message": e.message }, "requestId": request_id })),
    )
        .into_response()
}

/// The handler for both methods.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = Instant::now();
    let request_id = xml::request_id();
    // A body announced too large is refused before a byte of it is read, as on `/`: hyper
    // says `100 Continue` once the body is read, so anyone asking was invited to send it.
    let too_large = || {
        ApiError::new(
            "RequestEntityTooLarge",
            413,
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    };
    if crate::query_api::announced_over(&headers, MAX_BODY) {
        return error_response(&too_large(), &request_id);
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let error = if over {
                too_large()
            } else {
                ApiError::new(
                    "IncompleteBody",
                    400,
                    "The request body could not be read to its end.",
                )
            };
            return error_response(&error, &request_id);
        }
    };
    let origin = Origin {
        source_ip: peer.ip(),
        secure_transport: transport.is_some_and(|Extension(t)| t.secure),
        user_agent: crate::query_api::header_text(&headers, header::USER_AGENT),
        referer: crate::query_api::header_text(&headers, header::REFERER),
    };
    let label = if method == Method::GET {
        "ListRevocations"
    } else {
        "RevokeSessions"
    };
    let now = state.clock.now();
    let (caller, result, stored) = match authenticate(&state, &method, &uri, &headers, &body) {
        Ok(caller) if method == Method::GET => {
            let result = list(&state, &caller, origin);
            (Some(caller), result, None)
        }
        Ok(caller) => match revoke(&state, &caller, &body, origin).await {
            Ok((revocation, outbox)) => {
                let answer = json!({ "revocation": revocation.to_json() });
                (Some(caller), Ok(answer), Some((revocation, outbox)))
            }
            Err(e) => (Some(caller), Err(e), None),
        },
        Err(e) => (None, Err(e), None),
    };
    let (result, seq) = record_call(
        &state,
        label,
        &request_id,
        peer,
        &headers,
        caller.as_ref(),
        &body,
        now,
        result,
    )
    .await;
    if let Some((revocation, outbox)) = stored {
        if let Some(seq) = seq {
            mark_audited(&state, revocation.id, seq).await;
        }
        drop(outbox);
        // In force from the next request here, whether or not its record could be written.
        add_to_live(&state, &revocation).await;
        audit_unaudited(&state).await;
    }
    let code = result.as_ref().err().map_or("OK", |e| e.code);
    state
        .metrics
        .request(label, code, started.elapsed().as_secs_f64());
    match result {
        Ok(v) => (
            [(
                header::HeaderName::from_static("x-amzn-requestid"),
                request_id,
            )],
            Json(v),
        )
            .into_response(),
        Err(e) => {
            info!(request_id, action = label, source = %peer.ip(), code = e.code, "denied");
            error_response(&e, &request_id)
        }
    }
}

fn authenticate(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, ApiError> {
    if !headers.contains_key(header::AUTHORIZATION)
        && !uri.query().is_some_and(|q| q.contains("X-Amz-Signature="))
    {
        return Err(ApiError::new(
            "MissingAuthenticationToken",
            403,
            "Request is missing Authentication Token: sign it with SigV4 for the service keyless (keyless revoke --endpoint does).",
        ));
    }
    crate::query_api::authenticate_signed(
        state,
        &state.directory.load(),
        method,
        uri,
        headers,
        body,
        SERVICE,
    )
}

/// Validates, authorizes and stores a revocation. Returns it with the outbox lock, taken before
/// the store write: the caller records it and marks it before letting go.
async fn revoke<'a>(
    state: &'a AppState,
    caller: &Caller,
    body: &[u8],
    origin: Origin<'_>,
) -> Result<(Revocation, tokio::sync::MutexGuard<'a, RevocationAudit>), ApiError> {
    let parsed: RevokeBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            "ValidationError",
            400,
            format!(
                "The request body must be JSON {{\"type\":…,\"value\":…}} with optional issuer, issuedBefore and reason: {e}"
            ),
        )
    })?;
    let request = RevocationRequest {
        kind: parsed.kind,
        value: parsed.value,
        issuer: parsed.issuer,
        issued_before: parsed.issued_before,
        reason: parsed.reason,
    };
    let now = state.clock.now();
    let keys = state.keys.load();
    let mut spec = request.validate(
        Some(caller.account()),
        caller.arn(),
        keys.ring.current_id(),
        now,
    )?;
    // Authorized on the stored name when there is one, and before saying there is none.
    let resolved = spec.resolve(&state.directory.load());
    let action = with_env(state, origin, |env| {
        authorize_revocation(env, caller, &spec)
    })?;
    resolved?;
    if !state.revocations.load().set.has_room_for(action) {
        let message = if action == keyless_core::revocation::ACTION_REVOKE_OWN {
            "Too many live session revocations for a session to revoke itself now; it still expires on its own. An operator can revoke it with keyless:RevokeSessions."
        } else {
            "Too many live revocations; they expire 12 hours after their instant. Revoke by role or issuer instead of session by session."
        };
        return Err(ApiError::new("LimitExceeded", 409, message));
    }
    let outbox = state.revocation_audit.lock().await;
    let stored = state.store.add_revocation(&spec).await.map_err(|e| {
        error!("revocation not stored: {e}");
        ApiError::new(
            "ServiceFailure",
            500,
            "The revocation could not be stored; nothing was revoked. Try again.",
        )
    })?;
    record_revocation(&stored, action, &origin);
    Ok((stored, outbox))
}

fn list(state: &AppState, caller: &Caller, origin: Origin<'_>) -> Result<Value, ApiError> {
    with_env(state, origin, |env| authorize_list(env, caller))?;
    let now = state.clock.now();
    let mine: Vec<Value> = state
        .revocations
        .load()
        .list
        .iter()
        .filter(|r| r.spec.expires_at > now)
        .filter(|r| r.spec.concerns(caller.account()))
        .map(|r| r.to_json())
        .collect();
    Ok(json!({ "revocations": mine }))
}

/// Runs `f` with the current snapshot, sealer and time.
fn with_env<T>(
    state: &AppState,
    origin: Origin<'_>,
    f: impl FnOnce(&RevokeEnv<'_>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let keys = state.keys.load();
    let directory = state.directory.load();
    f(&RevokeEnv {
        directory: &directory,
        authorizer: Authorizer {
            sealer: &keys.sealer,
        },
        now: state.clock.now(),
        origin,
    })
}

/// Writes the audit record of a call to this API, success or failure, before the answer leaves;
/// returns the answer with the record's `seq` (`None` when nothing was written).
/// A revocation that was stored stays in force even if its record cannot be written (the
/// caller then gets `ServiceUnavailable`, and its row stays unmarked for
/// [`audit_unaudited`]): failing closed here means keeping sessions revoked.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one call that its record describes"
)]
async fn record_call(
    state: &AppState,
    label: &str,
    request_id: &str,
    peer: SocketAddr,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    body: &[u8],
    now: keyless_types::OffsetDateTime,
    result: Result<Value, ApiError>,
) -> (Result<Value, ApiError>, Option<u64>) {
    if !state.audit.enabled() {
        return (result, None);
    }
    let mut event = match caller {
        Some(c) => audit::caller_event(now, SOURCE_KEYLESS, label, request_id, c, peer.ip()),
        None => {
            let mut e = audit::keyless_event(now, label, request_id);
            e.source_ip_address = peer.ip().to_string();
            e
        }
    };
    event.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(1024)
        .collect();
    event.read_only = label == "ListRevocations";
    event.request_parameters = request_parameters(body);
    match &result {
        Ok(v) => event.response_elements = v.get("revocation").cloned(),
        Err(e) => event.fail(e.code, &e.message, e.status),
    }
    match state.audit.record_durable(&event).await {
        Ok(seq) => (result, seq),
        Err(unavailable) => (result.and(Err(unavailable)), None),
    }
}

/// The revocation request's fields for the record (none is a secret), or nothing when the body
/// is not a JSON object.
fn request_parameters(body: &[u8]) -> Option<Value> {
    const FIELDS: &[&str] = &["type", "value", "issuer", "issuedBefore", "reason"];
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let kept: serde_json::Map<String, Value> = map
        .into_iter()
        .filter(|(k, _)| FIELDS.contains(&k.as_str()))
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(keyless_audit::event::bounded(&s)),
                other => Value::String(keyless_audit::event::bounded(&other.to_string())),
            };
            (k, v)
        })
        .collect();
    Some(Value::Object(kept))
}

/// How long a revocation made through an API may stay unmarked before a process other than
/// the one that stored it records it: that process normally marks it within milliseconds, and
/// recording it elsewhere meanwhile (another replica) would only duplicate its record.
pub const API_AUDIT_GRACE: time::Duration = time::Duration::seconds(10);

/// Whether an unaudited row that this process did not just store should be recorded now: rows
/// of the operator CLI always (a CLI that finds the log held by a server leaves its row to that
/// server), API rows once [`API_AUDIT_GRACE`] has passed since they were made.
pub fn due_for_recovery(revocation: &Revocation, now: keyless_types::OffsetDateTime) -> bool {
    !revocation.spec.created_by.starts_with("arn:")
        || now - revocation.spec.created_at >= API_AUDIT_GRACE
}

/// Marks `id` as recorded at `seq`. If the mark is lost, the row is recorded again later
/// (a duplicate record, never a missing one).
async fn mark_audited(state: &AppState, id: i64, seq: u64) {
    if let Err(e) = state.store.mark_revocation_audited(id, seq).await {
        error!(
            revocation_id = id,
            seq,
            "revocation recorded but not marked audited in the store (it will be recorded again): {e}"
        );
    }
}

/// Records in the audit log every stored revocation that has no durable record yet and is
/// [`due_for_recovery`], and marks it: revocations the CLI wrote while this server held the
/// log, another replica's, and any whose writer was killed between the store write and its
/// record. The first pass of the process (at startup) marks its records `recovered`; later
/// ones mark API rows so (their API did not record them). With auditing disabled rows stay
/// unmarked, for a server that audits.
pub async fn audit_unaudited(state: &AppState) {
    if !state.audit.enabled() {
        return;
    }
    let mut outbox = state.revocation_audit.lock().await;
    // Read under the lock: a row the API path is still recording is marked before we see it.
    let rows = match state.store.unaudited_revocations().await {
        Ok(rows) => rows,
        Err(e) => {
            error!("unaudited revocations not read, retrying: {e}");
            outbox.pending = true;
            return;
        }
    };
    let now = state.clock.now();
    let mut pending = false;
    for r in &rows {
        if !due_for_recovery(r, now) {
            pending = true;
            continue;
        }
        let recovered = !outbox.swept || r.spec.created_by.starts_with("arn:");
        let event = audit::operator_revocation_event(now, r, "keyless-store", recovered);
        match state.audit.record_durable(&event).await {
            Ok(Some(seq)) => mark_audited(state, r.id, seq).await,
            Ok(None) => {}
            Err(e) => {
                // The log is down; the next pass retries every row left.
                error!(
                    revocation_id = r.id,
                    "revocation not recorded in the audit log: {}", e.message
                );
                pending = true;
                break;
            }
        }
    }
    outbox.swept = true;
    outbox.pending = pending;
}

/// The one place a revocation is recorded for the operator's log.
pub fn record_revocation(revocation: &Revocation, action: &str, origin: &Origin) {
    info!(
        revocation_id = revocation.id,
        action,
        kind = revocation.spec.target.kind(),
        value = %revocation.spec.target.value(),
        created_by = %revocation.spec.created_by,
        source = %origin.source_ip,
        "sessions revoked"
    );
}

/// Puts a revocation this process just stored in force here without reading every row back
/// (with sessions revoking themselves at the end of each CI job, a reload per call read up to
/// 200,000 rows each time). The row is added to a copy of the set in memory, and the stamp
/// becomes the list's own: if another process wrote meanwhile, it differs from the
/// store's and the next poll reads what is missing. The remembered generation is left as it
/// was: the write moved the store's, so the next poll compares the stamp, as it must to see
/// another process's write that committed meanwhile.
async fn add_to_live(state: &AppState, stored: &Revocation) {
    let _serialized = state.revocations_swap.lock().await;
    let live = state.revocations.load_full();
    // A poll may have read the row from the store first (the newest rows are at the end).
    if live.list.iter().rev().any(|r| r.id == stored.id) {
        return;
    }
    let set = live.set.with([stored], state.clock.now());
    let mut list = live.list.clone();
    list.push(Arc::new(stored.clone()));
    put_in_force(state, set, list, live.read_through);
}

/// The set of `list`, built from every row (which also drops the expired ones).
fn set_of(state: &AppState, list: &[Arc<Revocation>]) -> RevocationSet {
    RevocationSet::build(list.iter().map(Arc::as_ref), state.clock.now())
}

/// Replaces the live revocations with `list` (indexed as `set`), read from the store through
/// `read_through`.
fn put_in_force(
    state: &AppState,
    set: RevocationSet,
    list: Vec<Arc<Revocation>>,
    read_through: i64,
) {
    let stamp = revocation_sync::stamp_of(list.iter().map(Arc::as_ref));
    state.revocations.store(Arc::new(LiveRevocations {
        set,
        list,
        stamp,
        read_through,
    }));
}

/// What one [`poll_revocations`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// The store's revocations generation had not moved: the stamp was not read.
    Quiet,
    /// The stamp was read and matched the revocations in force.
    Unchanged,
    /// The stamp differed, and the revocations were brought in step ([`reload_revocations`]).
    Reloaded,
}

/// One tick of the revocation poll. Reads the store's revocations generation, one row; only if
/// it moved since the last read put in force here (or when `check_anyway`, the safety net for
/// writes that bypassed the store's triggers) compares the stamp, an aggregate over every row,
/// and reloads when that differs. The generation is read before the stamp, so a write that
/// commits between them moves it past what is remembered, and the next tick looks again.
pub async fn poll_revocations(state: &AppState, check_anyway: bool) -> Result<Polled, StoreError> {
    let generation = state.store.revocations_generation().await?;
    let moved = generation != remembered_generation(state);
    if !moved && !check_anyway {
        return Ok(Polled::Quiet);
    }
    state
        .metrics
        .revocation_stamp_check(if moved { "generation" } else { "safety_net" });
    let stamp = state.store.revocations_stamp().await?;
    if stamp == state.revocations.load().stamp {
        remember_generation(state, generation).await;
        return Ok(Polled::Unchanged);
    }
    if !moved {
        info!(
            "revocations changed without their generation moving (a write that bypassed the store's triggers?)"
        );
    }
    reload_revocations(state, Rebuild::IfChanged).await;
    Ok(Polled::Reloaded)
}

fn remembered_generation(state: &AppState) -> i64 {
    state
        .revocations_generation
        .load(std::sync::atomic::Ordering::Acquire)
}

/// Remembers `generation` as read before a stamp that matched the revocations in force.
async fn remember_generation(state: &AppState, generation: i64) {
    let _serialized = state.revocations_swap.lock().await;
    store_generation(state, generation);
}

/// [`remember_generation`], for a caller holding `revocations_swap` whose read is in force.
fn store_generation(state: &AppState, generation: i64) {
    state
        .revocations_generation
        .store(generation, std::sync::atomic::Ordering::Release);
}

/// Whether a reload that finds nothing new still rebuilds the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Only when something changed.
    IfChanged,
    /// Always, so that revocations that expired leave the set (after a purge).
    Always,
}

/// Brings the in-memory set in step with the store ([`sync_revocations`]), then records the
/// ones not audited yet ([`audit_unaudited`]). If the store cannot be read the previous set
/// stays in force and the next poll retries.
pub async fn reload_revocations(state: &AppState, rebuild: Rebuild) {
    if let Err(e) = sync_revocations(state, rebuild).await {
        error!("revocations not reloaded, keeping the previous ones: {e}");
        // Whatever moved the generation is not in force: the next poll must look again, not
        // wait for the safety net.
        store_generation(state, GENERATION_UNKNOWN);
    }
    audit_unaudited(state).await;
}

/// Reads the revocations the store added or purged since the last read, reading only the rows
/// after the last id seen when their stamp shows that is all that changed, and every row
/// otherwise ([`revocation_sync::merge`]). On an error the set is left as it was and marked
/// stale.
pub async fn sync_revocations(state: &AppState, rebuild: Rebuild) -> Result<(), StoreError> {
    let _serialized = state.revocations_swap.lock().await;
    let live = state.revocations.load_full();
    let after = revocation_sync::read_after(live.read_through);
    let read = async {
        // The generation first, then the stamp: a write committed after the generation was
        // read moves it past what this read will remember.
        let generation = state.store.revocations_generation().await?;
        // The stamp before the rows: a row committed after it is either above its largest id
        // (left for the next poll) or changes the stamp the next poll sees.
        let stamp = state.store.revocations_stamp().await?;
        let rows = state
            .store
            .revocations_after(after, revocation_sync::PAGE)
            .await?;
        Ok::<_, StoreError>((generation, stamp, rows))
    };
    let (generation, stamp, rows) = read.await.inspect_err(|_| mark_stale(state, true))?;
    let poll = revocation_sync::Poll {
        stamp,
        rows,
        after,
        limit: revocation_sync::PAGE,
    };
    match revocation_sync::merge(&live.list, live.stamp, poll) {
        Merged::Unchanged => {
            mark_stale(state, false);
            if rebuild == Rebuild::Always {
                let set = set_of(state, &live.list);
                put_in_force(state, set, live.list.clone(), live.read_through);
            }
            store_generation(state, generation);
        }
        Merged::Incremental {
            list,
            read_through,
            added,
            purged,
        } => {
            mark_stale(state, false);
            let set = if purged == 0 && rebuild == Rebuild::IfChanged {
                // The merge appended the new rows to the list: only they are indexed anew.
                let new_rows = &list[list.len().saturating_sub(added)..];
                live.set
                    .with(new_rows.iter().map(Arc::as_ref), state.clock.now())
            } else {
                set_of(state, &list)
            };
            put_in_force(state, set, list, read_through);
            store_generation(state, generation);
            state.metrics.revocation_reload("incremental");
            debug!(added, purged, "revocations reloaded incrementally");
        }
        Merged::NeedFullReload(why) => {
            info!("revocations reloaded in full: {why}");
            load_every_row(state, generation).await?;
        }
    }
    Ok(())
}

/// Loads every revocation from the store into the in-memory set; on an error the set is left
/// as it was. Start-up stops on that error: serving with no revocations would accept every
/// revoked session.
pub async fn load_revocations(state: &AppState) -> Result<(), StoreError> {
    let _serialized = state.revocations_swap.lock().await;
    // Read before the rows, like the poll's (see [`sync_revocations`]).
    let generation = state
        .store
        .revocations_generation()
        .await
        .inspect_err(|_| mark_stale(state, true))?;
    load_every_row(state, generation).await
}

/// [`load_revocations`], for a caller holding `revocations_swap` who read the store's
/// revocations `generation` before calling.
async fn load_every_row(state: &AppState, generation: i64) -> Result<(), StoreError> {
    // One statement reads one snapshot of the table, so the rows' own stamp is the table's at
    // that moment; any later commit changes the stamp the next poll sees.
    let rows = state
        .store
        .revocations()
        .await
        .inspect_err(|_| mark_stale(state, true))?;
    mark_stale(state, false);
    let list: Vec<Arc<Revocation>> = rows.into_iter().map(Arc::new).collect();
    let read_through = revocation_sync::stamp_of(list.iter().map(Arc::as_ref)).0;
    put_in_force(state, set_of(state, &list), list, read_through);
    store_generation(state, generation);
    state.metrics.revocation_reload("full");
    Ok(())
}

/// Records whether the last read of the revocations failed (`/readyz` reports it).
fn mark_stale(state: &AppState, stale: bool) {
    state
        .revocations_stale
        .store(stale, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_core::revocation::RevocationRequest;

    fn made_by(created_by: &str, at: keyless_types::OffsetDateTime) -> Revocation {
        let mut spec = RevocationRequest {
            kind: "role".into(),
            value: "arn:aws:iam::123456789012:role/deploy".into(),
            ..RevocationRequest::default()
        }
        .validate(None, created_by, 1, at)
        .unwrap();
        spec.created_at = at;
        Revocation {
            id: 1,
            spec,
            audited_seq: None,
        }
    }

    #[test]
    fn operator_rows_are_recovered_at_once_api_rows_after_the_grace() {
        let t0 = keyless_types::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let operator = made_by("operator", t0);
        assert!(due_for_recovery(&operator, t0));
        let api = made_by("arn:aws:sts::123456789012:assumed-role/ops/alice", t0);
        assert!(!due_for_recovery(&api, t0));
        assert!(!due_for_recovery(
            &api,
            t0 + API_AUDIT_GRACE - time::Duration::milliseconds(1)
        ));
        assert!(due_for_recovery(&api, t0 + API_AUDIT_GRACE));
    }
}
