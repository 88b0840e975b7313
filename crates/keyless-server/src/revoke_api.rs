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
use keyless_core::caller::{Caller, Expect, authenticate_any};
use keyless_core::error::ApiError;
use keyless_core::revocation::{
    Revocation, RevocationRequest, RevocationSet, RevokeEnv, authorize_list, authorize_revocation,
};
use keyless_core::sts::{Authorizer, Origin};
use keyless_sigv4::{Body, HttpRequest, ServiceRules};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::state::{AppState, LiveRevocations};
use crate::xml;

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
    let result = match authenticate(&state, &method, &uri, &headers, &body) {
        Ok(caller) => {
            if method == Method::GET {
                list(&state, &caller, origin)
            } else {
                revoke(&state, &caller, &body, origin).await
            }
        }
        Err(e) => Err(e),
    };
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
    let header_pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let request = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_pairs,
    };
    let directory = state.directory.load();
    let keys = state.keys.load();
    let revocations = state.revocations.load();
    authenticate_any(
        &directory,
        &keys.ring,
        &revocations.set,
        request,
        Body::Bytes(body),
        ServiceRules::Standard,
        Expect {
            service: Some(SERVICE),
            region: None,
        },
        state.clock.now(),
    )
    .map(|(caller, _)| caller)
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

/// The one place a revocation is recorded for the operator.
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
            let set = RevocationSet::build(&list, state.clock.now());
            state
                .revocations
                .store(Arc::new(LiveRevocations { set, list, stamp }));
        }
        (Err(e), _) | (_, Err(e)) => error!("revocations not reloaded: {e}"),
    }
}
