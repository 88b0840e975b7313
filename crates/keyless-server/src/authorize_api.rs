//! `POST /v1/authorize`: gateways and services send the request they received (signed with
//! keyless credentials) plus the action and resource, and get the decision, the principal and
//! an explanation. Callers authenticate with a bearer token whose SHA-256 is in the config
//! (`[[authorize_clients]]`); see `docs/authorize-openapi.yaml`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use keyless_core::authorize::{
    AuthorizeInput, AuthorizeOutcome, ExtraValue, GatewayBody, PrincipalInfo, authorize,
};
use keyless_core::error::ApiError;
use keyless_core::sts::Origin;
use keyless_policy::DecisionKind;
use keyless_sigv4::HttpRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tracing::debug;

use crate::audit;
use crate::state::AppState;

/// Largest authorize request (the body of an upload may ride along, base64).
pub const MAX_REQUEST: usize = 12 * 1024 * 1024;

/// A configured caller of the authorize API.
#[derive(Debug, Clone)]
pub struct AuthorizeClient {
    /// Name, for logs.
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: [u8; 32],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizeRequest {
    method: String,
    path: String,
    #[serde(default)]
    query: String,
    headers: Vec<(String, String)>,
    body_base64: Option<String>,
    body_sha256: Option<String>,
    action: String,
    resource: String,
    #[serde(default)]
    context: BTreeMap<String, Value>,
    source_ip: Option<IpAddr>,
    #[serde(default)]
    secure_transport: bool,
    region: Option<String>,
    service: Option<String>,
}

fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

/// Finds the configured client presenting this bearer token (constant-time over every client).
fn client_for<'a>(
    clients: &'a [AuthorizeClient],
    headers: &HeaderMap,
) -> Option<&'a AuthorizeClient> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    if token.is_empty() || token.len() > 512 {
        return None;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut found = None;
    for c in clients {
        if bool::from(c.token_sha256.ct_eq(digest.as_ref())) {
            found = Some(c);
        }
    }
    found
}

/// The handler.
///
/// It takes the request whole and reads the body only once the caller is known: the body may
/// be [`MAX_REQUEST`] bytes, and anyone could otherwise make the server hold that much per
/// connection before being refused.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let Some(client) = client_for(&state.authorize_clients, &headers) else {
        state
            .metrics
            .request("Authorize", "Unauthorized", started.elapsed().as_secs_f64());
        let message = "Send `Authorization: Bearer <token>` with a token whose SHA-256 is listed in [[authorize_clients]].";
        // No configured client: anonymous, so a flood of these is folded ([`crate::audit_fold`]).
        let request_id = audit::event_id();
        let offered = crate::audit_fold::FoldCall {
            source_ip: peer.ip(),
            event_source: keyless_audit::event::SOURCE_KEYLESS,
            event_name: "Authorize",
            code: "Unauthorized",
            status: 401,
            message,
            request_id: &request_id,
            user_agent: "",
            claimed_access_key_id: None,
        };
        if !(state.audit.enabled() && state.fold_refusal(&offered, state.clock.now())) {
            refused(&state, None, None, peer, ("Unauthorized", message, 401)).await;
        }
        return api_error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
    };
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err((status, code, message)) => {
            refused(
                &state,
                Some(&client.name),
                None,
                peer,
                (code, &message, status.as_u16()),
            )
            .await;
            return api_error(status, code, message);
        }
    };
    let req: AuthorizeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = malformed_message(&e);
            refused(
                &state,
                Some(&client.name),
                None,
                peer,
                ("MalformedRequest", &message, 400),
            )
            .await;
            return api_error(StatusCode::BAD_REQUEST, "MalformedRequest", message);
        }
    };
    let parameters = state.audit.enabled().then(|| {
        audit::authorize_parameters(
            &req.action,
            &req.resource,
            &req.method,
            &req.path,
            req.region.as_deref(),
            req.source_ip,
        )
    });
    let outcome = match decide(&state, &req, peer) {
        Ok(r) => r,
        Err(e) => {
            refused(
                &state,
                Some(&client.name),
                parameters,
                peer,
                (e.code, &e.message, e.status),
            )
            .await;
            return api_error(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                e.code,
                e.message,
            );
        }
    };
    let decision = match &outcome {
        AuthorizeOutcome::Decided { decision, .. } => Some(*decision),
        AuthorizeOutcome::Unauthenticated { .. } => None,
    };
    let allowed = decision == Some(DecisionKind::Allowed);
    if let Some(parameters) = parameters {
        // Denies are always recorded; allows at the configured rate.
        if !allowed || state.audit.sample_allow() {
            let ids = (audit::event_id(), audit::event_id());
            let facts = audit::AuthorizeFacts {
                now: state.clock.now(),
                ids: (&ids.0, &ids.1),
                client: Some(&client.name),
                parameters: Some(parameters),
                peer: peer.ip(),
                sample_rate: state.audit.allow_sample_rate(),
            };
            let answer = audit::AuthorizeAnswer::Answered(&outcome);
            let record = audit::authorize_record(facts, answer);
            if let Err(e) = state.audit.record(&record).await {
                return api_error(StatusCode::SERVICE_UNAVAILABLE, e.code, e.message);
            }
        }
    }
    let code = decision.map_or("Unauthenticated", DecisionKind::as_str);
    state
        .metrics
        .request("Authorize", code, started.elapsed().as_secs_f64());
    debug!(
        client = client.name,
        action = req.action,
        resource = req.resource,
        decision = code,
        "authorize"
    );
    (StatusCode::OK, Json(Answer(&outcome))).into_response()
}

/// The body, at most [`MAX_REQUEST`] bytes; one announced larger is refused unread (so a client
/// sending `Expect: 100-continue` is not invited to send it).
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<Bytes, (StatusCode, &'static str, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("The authorize request is larger than {MAX_REQUEST} bytes."),
        )
    };
    if crate::query_api::announced_over(headers, MAX_REQUEST) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_REQUEST).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            too_large()
        } else {
            (
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "The request body could not be read to its end.".to_owned(),
            )
        }
    })
}

/// The JSON answer (`docs/authorize-openapi.yaml`), serialised from the outcome as it is.
struct Answer<'a>(&'a AuthorizeOutcome);

impl Serialize for Answer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self.0 {
            AuthorizeOutcome::Unauthenticated { error } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("authenticated", &false)?;
                m.serialize_entry("allowed", &false)?;
                m.serialize_entry(
                    "error",
                    &ErrorJson {
                        code: error.code,
                        status: error.status,
                        message: &error.message,
                    },
                )?;
                m.end()
            }
            AuthorizeOutcome::Decided {
                principal,
                decision,
                explanation,
                payload_verified,
            } => {
                let mut m = s.serialize_map(Some(6))?;
                m.serialize_entry("authenticated", &true)?;
                m.serialize_entry("allowed", &(*decision == DecisionKind::Allowed))?;
                m.serialize_entry("decision", decision.as_str())?;
                m.serialize_entry("explanation", explanation)?;
                m.serialize_entry("payload_verified", payload_verified)?;
                m.serialize_entry("principal", &PrincipalJson(principal))?;
                m.end()
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    code: &'a str,
    status: u16,
    message: &'a str,
}

struct PrincipalJson<'a>(&'a PrincipalInfo);

impl Serialize for PrincipalJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let p = self.0;
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("arn", &p.arn)?;
        m.serialize_entry("account", &p.account)?;
        m.serialize_entry("role_arn", &p.role_arn)?;
        m.serialize_entry("session_name", &p.session_name)?;
        m.serialize_entry("source_identity", &p.source_identity)?;
        m.serialize_entry("access_key_id", &p.access_key_id)?;
        m.serialize_entry("subject", &p.subject)?;
        m.serialize_entry("tags", &Tags(&p.tags))?;
        m.end()
    }
}

struct Tags<'a>(&'a [(String, String)]);

impl Serialize for Tags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Records a request refused before any decision (best effort: the answer is a refusal anyway).
async fn refused(
    state: &AppState,
    client: Option<&str>,
    parameters: Option<audit::AuthorizeParameters<'_>>,
    peer: SocketAddr,
    (code, message, status): (&str, &str, u16),
) {
    if !state.audit.enabled() {
        return;
    }
    let ids = (audit::event_id(), audit::event_id());
    let facts = audit::AuthorizeFacts {
        now: state.clock.now(),
        ids: (&ids.0, &ids.1),
        client,
        parameters,
        peer: peer.ip(),
        sample_rate: state.audit.allow_sample_rate(),
    };
    let answer = audit::AuthorizeAnswer::Refused {
        code,
        message,
        status,
    };
    let _ = state
        .audit
        .record(&audit::authorize_record(facts, answer))
        .await;
}

/// The message of a request that did not parse: `serde_json` quotes the offending value
/// (`invalid type: string "…"`), and a gateway's headers hold the client's session token and
/// signature, so only the place is given for a wrong type or value. It is answered and recorded.
fn malformed_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let names_a_field = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|p| text.starts_with(p));
    if e.is_data() && !names_a_field {
        format!(
            "invalid authorize request: a field has the wrong type or value at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        format!("invalid authorize request: {text}")
    }
}

fn decide(
    state: &AppState,
    req: &AuthorizeRequest,
    peer: SocketAddr,
) -> Result<AuthorizeOutcome, ApiError> {
    let bad = |m: String| ApiError::new("InvalidParameterValue", 400, m);
    if req.headers.len() > 200
        || req.method.len() > 16
        || req.path.len() > 16 * 1024
        || req.query.len() > 64 * 1024
    {
        return Err(bad(
            "the request is too large: at most 200 headers, a 16 KiB path and a 64 KiB query"
                .into(),
        ));
    }
    if let Some(service) = &req.service
        && (service.is_empty() || service.len() > 64)
    {
        return Err(bad(
            "service is the signing name of the service authorized (e.g. s3): 1 to 64 characters"
                .into(),
        ));
    }
    if req.action.is_empty()
        || req.action.len() > 256
        || req.resource.is_empty()
        || req.resource.len() > 2048
    {
        return Err(bad(
            "action (1-256 characters) and resource (1-2048 characters) are required".into(),
        ));
    }
    let body_bytes = match &req.body_base64 {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| bad("body_base64 is not base64".into()))?,
        ),
        None => None,
    };
    let body = match (&body_bytes, &req.body_sha256) {
        (Some(_), Some(_)) => return Err(bad("give body_base64 or body_sha256, not both".into())),
        (Some(b), None) => GatewayBody::Bytes(b),
        (None, Some(h)) => GatewayBody::Sha256Hex(h),
        (None, None) => GatewayBody::NotGiven,
    };
    let mut context = Vec::with_capacity(req.context.len());
    for (k, v) in &req.context {
        let value = match v {
            Value::String(s) => ExtraValue::Single(s.clone()),
            Value::Array(items) => ExtraValue::Multi(
                items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("context {k}: values must be strings")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad(format!("context {k}: a string or an array of strings"))),
        };
        context.push((k.clone(), value));
    }
    let header_list: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let input = AuthorizeInput {
        request: HttpRequest {
            method: &req.method,
            path: &req.path,
            query: &req.query,
            headers: &header_list,
        },
        body,
        action: &req.action,
        resource: &req.resource,
        context: &context,
        origin: Origin {
            source_ip: req.source_ip.unwrap_or(peer.ip()),
            secure_transport: req.secure_transport,
            // Read from the forwarded request's headers by `authorize`.
            user_agent: None,
            referer: None,
        },
        region: req.region.as_deref(),
        service: req.service.as_deref(),
    };
    let directory = state.directory.load();
    let keys = state.keys.load();
    let revocations = state.revocations.load();
    let outcome = authorize(
        &keys.verifier(&directory, &revocations.set),
        &input,
        state.clock.now(),
    )?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_audit::AuditEvent;
    use keyless_audit::event::{
        SOURCE_KEYLESS, SessionContext, SessionIssuer, UserIdentity, WebIdFederationData, bounded,
    };
    use keyless_audit::record::to_json;
    use keyless_types::OffsetDateTime;

    #[test]
    fn a_malformed_request_s_values_stay_out_of_the_message() {
        // A gateway that sends a header as one string: the message (answered and recorded)
        // names the place, not the value, which may be the client's session token.
        let body = br#"{"method":"GET","path":"/","headers":["x-amz-security-token: FQoGsecret"],"action":"s3:GetObject","resource":"r"}"#;
        let e = serde_json::from_slice::<AuthorizeRequest>(body).unwrap_err();
        assert!(e.to_string().contains("FQoGsecret"), "{e}");
        assert_eq!(
            malformed_message(&e),
            "invalid authorize request: a field has the wrong type or value at line 1 column 72"
        );
        // Field names are kept (they are the gateway's, and what it needs to fix).
        let e = serde_json::from_slice::<AuthorizeRequest>(br#"{"bogus":1}"#).unwrap_err();
        assert!(
            malformed_message(&e).starts_with("invalid authorize request: unknown field `bogus`"),
            "{e}"
        );
        let e = serde_json::from_slice::<AuthorizeRequest>(b"{").unwrap_err();
        assert_eq!(
            malformed_message(&e),
            "invalid authorize request: EOF while parsing an object at line 1 column 1"
        );
    }

    fn outcomes() -> Vec<AuthorizeOutcome> {
        let principal = |subject: Option<&str>, si: Option<&str>, tags: &[(&str, &str)]| {
            Arc::new(PrincipalInfo {
                arn: "arn:aws:sts::123456789012:assumed-role/gha/run-1".into(),
                account: "123456789012".into(),
                role_arn: "arn:aws:iam::123456789012:role/ci/gha".into(),
                session_name: "run-1".into(),
                source_identity: si.map(str::to_owned),
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                access_key_id: "ASIAEXAMPLEKEY123456".into(),
                provider_arn: subject.map(|_| {
                    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
                        .to_owned()
                }),
                subject: subject.map(str::to_owned),
                role_id: "AROAEXAMPLEROLEID123".into(),
                user_id: "AROAEXAMPLEROLEID123:run-1".into(),
            })
        };
        vec![
            AuthorizeOutcome::Decided {
                principal: principal(
                    Some("repo:org/app:ref:refs/heads/main"),
                    Some("octocat"),
                    &[("team", "build"), ("env", "prod \"quoted\"")],
                ),
                decision: DecisionKind::Allowed,
                explanation: "Allowed by statement Read of inline policy read".into(),
                payload_verified: true,
            },
            AuthorizeOutcome::Decided {
                principal: principal(None, None, &[]),
                decision: DecisionKind::ExplicitlyDenied,
                explanation: "x".repeat(5000),
                payload_verified: false,
            },
            AuthorizeOutcome::Decided {
                principal: principal(Some("s"), None, &[]),
                decision: DecisionKind::ImplicitlyDenied,
                explanation: String::new(),
                payload_verified: false,
            },
            AuthorizeOutcome::Unauthenticated {
                error: ApiError::new(
                    "SignatureDoesNotMatch",
                    403,
                    "The request signature we calculated does not match",
                ),
            },
            AuthorizeOutcome::Unauthenticated {
                error: ApiError::new("InternalFailure", 500, "m".repeat(3000)),
            },
        ]
    }

    /// The answer as the handler built it before, with `json!` (the reference).
    fn reference_answer(outcome: &AuthorizeOutcome) -> Value {
        match outcome {
            AuthorizeOutcome::Unauthenticated { error } => json!({
                "authenticated": false,
                "allowed": false,
                "error": { "code": error.code, "status": error.status, "message": error.message },
            }),
            AuthorizeOutcome::Decided {
                principal,
                decision,
                explanation,
                payload_verified,
            } => json!({
                "authenticated": true,
                "allowed": *decision == DecisionKind::Allowed,
                "decision": decision.as_str(),
                "explanation": explanation,
                "payload_verified": payload_verified,
                "principal": {
                    "arn": principal.arn,
                    "account": principal.account,
                    "role_arn": principal.role_arn,
                    "session_name": principal.session_name,
                    "source_identity": principal.source_identity,
                    "access_key_id": principal.access_key_id,
                    "subject": principal.subject,
                    "tags": principal.tags.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
                },
            }),
        }
    }

    #[test]
    fn the_typed_answer_is_the_json_the_gateway_always_got() {
        for outcome in outcomes() {
            let typed = String::from_utf8(to_json(&Answer(&outcome)).unwrap()).unwrap();
            assert_eq!(typed, reference_answer(&outcome).to_string());
        }
    }

    /// The record as it was built before, from the answer's `Value` (the reference for
    /// `authorize_record`) and the session behind it: `error` is a refusal before any decision.
    fn reference_event(
        now: OffsetDateTime,
        client: Option<&str>,
        request: Option<&Value>,
        peer: IpAddr,
        (response, principal): (&Value, Option<&PrincipalInfo>),
        error: Option<(&str, &str, u16)>,
        sample_rate: f64,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(now, SOURCE_KEYLESS, "Authorize", "req-1", "evt-1");
        e.event_type = "KeylessDecision".into();
        e.read_only = true;
        e.source_ip_address = peer.to_string();
        if let Some(req) = request {
            if let Some(ip) = req.get("sourceIp").and_then(Value::as_str) {
                e.source_ip_address = ip.to_owned();
            }
            e.request_parameters = Some(req.clone());
        }
        if let Some(p) = response.get("principal") {
            let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            let role_arn = s("role_arn").unwrap_or_default();
            e.recipient_account_id = s("account");
            // The ids the gateway's answer does not carry come from the session.
            let ids = principal.map(|p| (&p.user_id, &p.role_id, p.provider_arn.as_deref()));
            e.user_identity = UserIdentity {
                kind: "AssumedRole".into(),
                principal_id: ids.map(|i| i.0.clone()),
                arn: s("arn"),
                account_id: s("account"),
                access_key_id: s("access_key_id"),
                user_name: None,
                identity_provider: None,
                session_context: Some(SessionContext {
                    source_identity: s("source_identity"),
                    web_id_federation_data: s("subject").map(|sub| WebIdFederationData {
                        federated_provider: ids.and_then(|i| i.2).unwrap_or_default().to_owned(),
                        attributes: [("sub".to_owned(), Value::String(bounded(&sub)))]
                            .into_iter()
                            .collect(),
                    }),
                    session_issuer: Some(SessionIssuer {
                        kind: "Role".into(),
                        principal_id: ids.map(|i| i.1.clone()).unwrap_or_default(),
                        user_name: keyless_core::sts::role_name_of(&role_arn).to_owned(),
                        arn: role_arn,
                        account_id: s("account").unwrap_or_default(),
                    }),
                    attributes: None,
                }),
            };
        }
        let mut extra = serde_json::Map::new();
        if let Some(c) = client {
            extra.insert("client".into(), json!(c));
        }
        for (from, to) in [
            ("decision", "decision"),
            ("explanation", "explanation"),
            ("payload_verified", "payloadVerified"),
        ] {
            if let Some(v) = response.get(from) {
                let v = match v {
                    Value::String(s) => Value::String(bounded(s)),
                    other => other.clone(),
                };
                extra.insert(to.into(), v);
            }
        }
        extra.insert("allowSampleRate".into(), json!(sample_rate));
        e.additional_event_data = Some(Value::Object(extra));
        let allowed = response.get("allowed").and_then(Value::as_bool) == Some(true);
        if let Some((code, message, status)) = error {
            e.fail(code, message, status);
        } else if let Some(err) = response.get("error") {
            let code = err
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("Unauthenticated");
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            let status = err
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(403);
            e.fail(code, message, status.min(499));
        } else if !allowed {
            e.fail("AccessDenied", "not authorized", 403);
        }
        e
    }

    #[test]
    fn the_typed_decision_record_is_the_record_the_value_builder_writes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let gateway: IpAddr = [10, 0, 0, 7].into();
        let client_ip: IpAddr = [192, 0, 2, 1].into();
        let long = "r".repeat(3000);
        for outcome in outcomes() {
            for (region, source_ip, resource) in [
                (Some("eu-west-1"), Some(client_ip), "arn:aws:s3:::b/k"),
                (None, None, long.as_str()),
            ] {
                let params = || {
                    audit::authorize_parameters(
                        "s3:GetObject",
                        resource,
                        "GET",
                        "/b/a%20b+c",
                        region,
                        source_ip,
                    )
                };
                let facts = audit::AuthorizeFacts {
                    now,
                    ids: ("req-1", "evt-1"),
                    client: Some("gw"),
                    parameters: Some(params()),
                    peer: gateway,
                    sample_rate: 0.25,
                };
                let answer = audit::AuthorizeAnswer::Answered(&outcome);
                let typed: Value = serde_json::from_slice(
                    &to_json(&audit::authorize_record(facts, answer)).unwrap(),
                )
                .unwrap();
                let reference = serde_json::to_value(reference_event(
                    now,
                    Some("gw"),
                    serde_json::to_value(params()).ok().as_ref(),
                    gateway,
                    (
                        &reference_answer(&outcome),
                        match &outcome {
                            AuthorizeOutcome::Decided { principal, .. } => Some(principal),
                            AuthorizeOutcome::Unauthenticated { .. } => None,
                        },
                    ),
                    None,
                    0.25,
                ))
                .unwrap();
                // Same fields, same order, same values.
                assert_eq!(typed.to_string(), reference.to_string());
            }
        }
    }

    #[test]
    fn the_typed_refusal_record_is_the_record_the_value_builder_writes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let gateway: IpAddr = [10, 0, 0, 7].into();
        let params = audit::authorize_parameters(
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            "GET",
            "/b/k",
            None,
            Some([192, 0, 2, 1].into()),
        );
        let long = "e".repeat(3000);
        for (client, parameters, error) in [
            (None, None, ("Unauthorized", "Send a bearer token.", 401)),
            (Some("gw"), None, ("MalformedRequest", long.as_str(), 400)),
            (
                Some("gw"),
                Some(params),
                ("InvalidParameterValue", "too large", 400),
            ),
            (
                Some("gw"),
                Some(params),
                ("ServiceUnavailable", "down", 503),
            ),
        ] {
            let facts = audit::AuthorizeFacts {
                now,
                ids: ("req-1", "evt-1"),
                client,
                parameters,
                peer: gateway,
                sample_rate: 1.0,
            };
            let answer = audit::AuthorizeAnswer::Refused {
                code: error.0,
                message: error.1,
                status: error.2,
            };
            let typed: Value =
                serde_json::from_slice(&to_json(&audit::authorize_record(facts, answer)).unwrap())
                    .unwrap();
            let reference = serde_json::to_value(reference_event(
                now,
                client,
                parameters
                    .and_then(|p| serde_json::to_value(p).ok())
                    .as_ref(),
                gateway,
                (&Value::Null, None),
                Some(error),
                1.0,
            ))
            .unwrap();
            assert_eq!(typed.to_string(), reference.to_string(), "{error:?}");
        }
    }
}
