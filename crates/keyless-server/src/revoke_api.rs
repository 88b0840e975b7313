//! `POST /v1/revocations` (revoke) and `GET /v1/revocations` (list): session revocation as an
//! API, signed with SigV4 for the service `keyless` and authorized like any AWS call
//! (`keyless:RevokeSessions`, `keyless:RevokeOwnSession`, `keyless:ListRevocations`).
//!
//! `keyless revoke … --endpoint URL` is the client. A revocation is stored, then the in-memory
//! set is rebuilt before the answer, so this server refuses the session from the next request;
//! other processes pick it up from the store within a second ([`crate::watch_revocations`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyless_core::caller::Caller;
use keyless_core::error::ApiError;
use keyless_core::revocation::{
    Revocation, RevocationRequest, RevocationSet, RevokeEnv, authorize_list, authorize_revocation,
};
use keyless_core::sts::{Authorizer, Origin};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::audit;
use crate::state::{AppState, LiveRevocations};
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
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let request_id = xml::request_id();
    let origin = Origin {
        source_ip: peer.ip(),
        secure_transport: false,
    };
    let label = if method == Method::GET {
        "ListRevocations"
    } else {
        "RevokeSessions"
    };
    let now = state.clock.now();
    let (caller, result) = match authenticate(&state, &method, &uri, &headers, &body) {
        Ok(caller) => {
            let result = if method == Method::GET {
                list(&state, &caller, origin)
            } else {
                revoke(&state, &caller, &body, origin).await
            };
            (Some(caller), result)
        }
        Err(e) => (None, Err(e)),
    };
    let result = record_call(
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

async fn revoke(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
    origin: Origin,
) -> Result<Value, ApiError> {
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
    let spec = request.validate(
        Some(caller.account()),
        &caller.arn(),
        keys.ring.current_id(),
        now,
    )?;
    let action = with_env(state, origin, |env| {
        authorize_revocation(env, caller, &spec)
    })?;
    if state.revocations.load().set.len() >= keyless_core::revocation::MAX_LIVE_REVOCATIONS {
        return Err(ApiError::new(
            "LimitExceeded",
            409,
            "Too many live revocations; they expire 12 hours after their instant. Revoke by role or issuer instead of session by session.",
        ));
    }
    let stored = state.store.add_revocation(&spec).await.map_err(|e| {
        error!("revocation not stored: {e}");
        ApiError::new(
            "ServiceFailure",
            500,
            "The revocation could not be stored; nothing was revoked. Try again.",
        )
    })?;
    record_revocation(&stored, action, &origin);
    reload_revocations(state).await;
    Ok(json!({ "revocation": stored.to_json() }))
}

fn list(state: &AppState, caller: &Caller, origin: Origin) -> Result<Value, ApiError> {
    with_env(state, origin, |env| authorize_list(env, caller))?;
    let now = state.clock.now();
    let mine: Vec<Value> = state
        .revocations
        .load()
        .list
        .iter()
        .filter(|r| r.spec.expires_at > now)
        .filter(|r| r.spec.account.is_none_or(|a| a == caller.account()))
        .map(Revocation::to_json)
        .collect();
    Ok(json!({ "revocations": mine }))
}

/// Runs `f` with the current snapshot, sealer and time.
fn with_env<T>(
    state: &AppState,
    origin: Origin,
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

/// Writes the audit record of a call to this API, success or failure, before the answer leaves.
/// A revocation that was stored stays in force even if its record cannot be written (the
/// caller then gets `ServiceUnavailable`): failing closed here means keeping sessions revoked.
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
) -> Result<Value, ApiError> {
    if !state.audit.enabled() {
        return result;
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
        Ok(()) => result,
        Err(unavailable) => result.and(Err(unavailable)),
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

/// Records revocations that reached the store from elsewhere (`keyless revoke --data-dir` on
/// this machine, or another replica's API) when this server first loads them.
async fn record_operator_revocations(state: &AppState, revocations: &[&Revocation]) {
    if !state.audit.enabled() {
        return;
    }
    for r in revocations {
        let event = audit::operator_revocation_event(state.clock.now(), r, "keyless-store");
        if let Err(e) = state.audit.record_durable(&event).await {
            error!(
                revocation_id = r.id,
                "revocation not recorded in the audit log: {}", e.message
            );
        }
    }
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

/// Reloads the revocations from the store into the in-memory set. If the store cannot be read
/// the previous set stays in force and the next poll retries.
pub async fn reload_revocations(state: &AppState) {
    match (
        state.store.revocations_stamp().await,
        state.store.revocations().await,
    ) {
        (Ok(stamp), Ok(list)) => {
            // New rows this process did not write (its API records its own): audit them once.
            let previous = state.revocations.load();
            if previous.loaded {
                let fresh: Vec<&Revocation> = list
                    .iter()
                    .filter(|r| r.id > previous.stamp.0 && !r.spec.created_by.starts_with("arn:"))
                    .collect();
                record_operator_revocations(state, &fresh).await;
            }
            let set = RevocationSet::build(&list, state.clock.now());
            state.revocations.store(Arc::new(LiveRevocations {
                set,
                list,
                stamp,
                loaded: true,
            }));
        }
        (Err(e), _) | (_, Err(e)) => error!("revocations not reloaded: {e}"),
    }
}
