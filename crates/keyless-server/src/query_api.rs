//! `POST /` and `GET /?Action=…`: the AWS query protocol, dispatched by `Action`.
//!
//! Parameters come from the form body and the query string (never both for one name). Every
//! answer is AWS's XML; every error goes through [`render_error`], the one place that maps a
//! domain error to HTTP.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyless_core::caller::{Caller, SignedHttp, authenticate};
use keyless_core::error::ApiError;
use keyless_core::sts::params::Params;
use keyless_core::sts::{self, Authorizer, Issued, Origin, iso8601};
use keyless_sigv4::HttpRequest;
// Per-request lines are `debug`: the audit trail records every call, and a line per request
// at `info` cost a write to stderr each (two per issuance) in the default configuration.
use tracing::{debug, warn};

use crate::audit::{self, CallFacts, CallerFacts, IssuedFacts, StsCall};
use crate::http_front::Transport;
use crate::state::AppState;
use crate::xml::{self, STS_NS, Xml};

/// Largest query-protocol body accepted.
pub const MAX_BODY: usize = 256 * 1024;

/// The handler for `/`. It takes the request whole and reads the body itself: the method, URI
/// and header extractors would each copy their part out of it, and an oversized body gets an
/// AWS error document instead of a plain-text rejection.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    transport: Option<Extension<Transport>>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let request_id = xml::request_id();
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    // A body announced too large is refused before a byte of it is read: hyper says
    // `100 Continue` only once the body is read, so a client that asked gets 413 at once.
    let body = if announced_over(&headers, MAX_BODY) {
        Err(None)
    } else {
        axum::body::to_bytes(body, MAX_BODY).await.map_err(Some)
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            let too_large = e.as_ref().is_none_or(|e| {
                std::error::Error::source(e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            });
            let error = if too_large {
                ApiError::new(
                    "RequestEntityTooLarge",
                    413,
                    format!("The request body is larger than {MAX_BODY} bytes."),
                )
            } else {
                ApiError::new(
                    "IncompleteBody",
                    400,
                    "The request body could not be read to its end.",
                )
            };
            state
                .metrics
                .request("unknown", error.code, started.elapsed().as_secs_f64());
            debug!(request_id, source = %peer.ip(), code = error.code, "refused");
            return render_error(&error, &request_id);
        }
    };
    let origin = Origin {
        source_ip: peer.ip(),
        secure_transport: transport.is_some_and(|Extension(t)| t.secure),
        user_agent: header_text(&headers, header::USER_AGENT),
        referer: header_text(&headers, header::REFERER),
    };
    let signed_for_iam = crate::iam_api::is_iam_request(&uri, &headers);
    let params = collect_params(&method, &uri, &headers, &body);
    // IAM is told from STS by the credential scope, or, for an unsigned call, by its version.
    let iam = signed_for_iam
        || params
            .as_ref()
            .is_ok_and(|p| p.get("Version") == Some(crate::iam_api::VERSION));
    let mut facts = CallFacts::default();
    let mut request_parameters = None;
    let (action, result) = match params {
        Ok(params) => {
            if state.audit.enabled() {
                let pairs = params.names().filter_map(|n| params.get(n).map(|v| (n, v)));
                request_parameters = Some(if iam {
                    keyless_audit::event::iam_request_parameters(pairs)
                } else {
                    keyless_audit::event::request_parameters(pairs)
                });
            }
            let action = params.action().unwrap_or("").to_owned();
            let result = if iam {
                crate::iam_api::handle(
                    &state,
                    &params,
                    &action,
                    &method,
                    &uri,
                    &headers,
                    &body,
                    origin,
                    &request_id,
                    &mut facts,
                )
                .await
            } else {
                dispatch(
                    &state,
                    &params,
                    &action,
                    &method,
                    &uri,
                    &headers,
                    &body,
                    origin,
                    &request_id,
                    &mut facts,
                )
                .await
            };
            (action, result)
        }
        Err(e) => (String::new(), Err(e)),
    };
    let source = if iam {
        keyless_audit::event::SOURCE_IAM
    } else {
        keyless_audit::event::SOURCE_STS
    };
    // The metric label is one of the known names (a static string, so counting a request
    // copies nothing), or `unknown`: a client cannot grow the label set.
    let known = |names: &[&'static str]| names.iter().copied().find(|n| *n == action);
    let label = known(KNOWN_ACTIONS)
        .or_else(|| iam.then(|| known(keyless_core::iam::ACTIONS)).flatten())
        .unwrap_or("unknown");
    let call = CallParts {
        event_source: source,
        action: &action,
        known_action: (label != "unknown").then_some(label),
        request_id: &request_id,
        peer,
        method: &method,
        uri: &uri,
        headers: &headers,
    };
    let result = record(&state, call, request_parameters, facts, result).await;
    let code = result.as_ref().err().map_or("OK", |e| e.code);
    state
        .metrics
        .request(label, code, started.elapsed().as_secs_f64());
    match result {
        Ok(body) => {
            debug!(request_id, action = label, source = %peer.ip(), "ok");
            (
                [
                    (header::CONTENT_TYPE, "text/xml"),
                    (
                        header::HeaderName::from_static("x-amzn-requestid"),
                        request_id.as_str(),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => {
            if e.status >= 500 {
                warn!(request_id, action = label, source = %peer.ip(), code = e.code, "failed");
            } else {
                debug!(request_id, action = label, source = %peer.ip(), code = e.code, "denied");
            }
            if iam {
                render_error_in(&e, &request_id, crate::xml::IAM_NS)
            } else {
                render_error(&e, &request_id)
            }
        }
    }
}

/// The parts of a request its record is made of.
#[derive(Debug, Clone, Copy)]
struct CallParts<'a> {
    event_source: &'static str,
    action: &'a str,
    /// The action when it is a known one (the fold key's event name).
    known_action: Option<&'static str>,
    request_id: &'a str,
    peer: SocketAddr,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

/// Writes the call's audit record and waits until it is durable. A success whose record cannot
/// be written becomes `ServiceUnavailable`: nothing leaves without its record.
///
/// A refusal of an anonymous call ([`CallFacts::is_anonymous`]) with a foldable code is offered
/// to the fold state first ([`crate::audit_fold`]): the first of its source and kind is
/// recorded, the rest are counted into a summary record. Its parameters are capped at
/// [`keyless_audit::event::MAX_ANONYMOUS_PARAMETERS_BYTES`].
async fn record(
    state: &AppState,
    call: CallParts<'_>,
    request_parameters: Option<serde_json::Value>,
    mut facts: CallFacts,
    result: Result<String, ApiError>,
) -> Result<String, ApiError> {
    // A role is used once its session is issued, i.e. delivered: after the durable record.
    let role_use = facts.issued.as_ref().map(IssuedFacts::role_use);
    let mark_used = |result: &Result<String, ApiError>| {
        if let (Ok(_), Some((role_id, at))) = (result, &role_use) {
            state.role_usage.used(role_id, *at);
        }
    };
    if !state.audit.enabled() {
        mark_used(&result);
        return result;
    }
    let user_agent = call
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = state.clock.now();
    let mut request_parameters = request_parameters;
    if let Err(error) = &result {
        // Only a forgery or garbage is anonymous: a token that opens is a real session's (a
        // revoked one answers `InvalidClientTokenId`, an expired presigned URL `AccessDenied`).
        if facts.caller.is_none()
            && crate::audit_fold::FOLDABLE_CODES.contains(&error.code)
            && is_signed(call.uri, call.headers)
        {
            facts.genuine_session =
                presents_a_genuine_session(state, call.method, call.uri, call.headers);
        }
        if facts.is_anonymous() {
            request_parameters = request_parameters.map(|p| {
                keyless_audit::event::cap_parameters(
                    p,
                    keyless_audit::event::MAX_ANONYMOUS_PARAMETERS_BYTES,
                )
            });
        }
        if crate::audit_fold::is_foldable(error.code, error.status, facts.is_anonymous()) {
            let offered = crate::audit_fold::FoldCall {
                source_ip: call.peer.ip(),
                event_source: call.event_source,
                event_name: call.known_action.unwrap_or("Unknown"),
                code: error.code,
                status: error.status,
                message: &error.message,
                request_id: call.request_id,
                user_agent,
                claimed_access_key_id: facts.claimed_access_key_id.as_deref(),
            };
            if state.fold_refusal(&offered, now) {
                return result;
            }
        }
    }
    let sts_call = StsCall {
        event_source: call.event_source,
        action: call.action,
        request_id: call.request_id,
        source_ip: call.peer.ip(),
        user_agent,
        request_parameters,
        facts,
        now,
    };
    let event = audit::sts_event(sts_call, result.as_ref().err());
    match state.audit.record_durable(&event).await {
        Ok(_) => {
            mark_used(&result);
            result
        }
        Err(unavailable) => match result {
            Ok(_) => Err(unavailable),
            Err(original) => Err(original),
        },
    }
}

/// Whether a signed request presents a session token that opens under the key ring (live,
/// expired or not yet valid): its refusal concerns a real session and keeps its own record.
fn presents_a_genuine_session(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> bool {
    with_http_request(method, uri, headers, |request| {
        let Ok(signed) = keyless_sigv4::parse(&request, keyless_sigv4::ServiceRules::Standard)
        else {
            return false;
        };
        let Some(token) = signed.security_token() else {
            return false;
        };
        let keys = state.keys.load();
        matches!(
            keyless_token::open(&keys.ring, signed.access_key_id(), token, state.clock.now()),
            Ok(_) | Err(keyless_token::OpenError::Expired | keyless_token::OpenError::NotYetValid)
        )
    })
}

/// `f` applied to the request as `keyless_sigv4` reads it (method, path, query, headers).
fn with_http_request<R>(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    f: impl FnOnce(HttpRequest<'_>) -> R,
) -> R {
    let header_list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    f(HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_list,
    })
}

const KNOWN_ACTIONS: &[&str] = &[
    "AssumeRoleWithWebIdentity",
    "AssumeRole",
    "GetCallerIdentity",
    "GetAccessKeyInfo",
    "DecodeAuthorizationMessage",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoleWithSAML",
    "AssumeRoot",
];

/// The one place an [`ApiError`] becomes an HTTP response (STS namespace).
pub fn render_error(e: &ApiError, request_id: &str) -> Response {
    render_error_in(e, request_id, STS_NS)
}

/// An [`ApiError`] as an HTTP response whose `ErrorResponse` is in namespace `ns`.
pub fn render_error_in(e: &ApiError, request_id: &str, ns: &str) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml"),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                request_id,
            ),
        ],
        xml::error(e, ns, request_id),
    )
        .into_response()
}

/// Whether `Content-Length` announces more than `max` bytes (an unparsable one is hyper's to
/// refuse, and the body read finds the truth either way).
pub(crate) fn announced_over(headers: &HeaderMap, max: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
}

fn is_auth_param(name: &str) -> bool {
    name.len() > 6 && name[..6].eq_ignore_ascii_case("X-Amz-")
}

fn collect_params(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(q) = uri.query() {
        // SigV4 reads a `+` in the query as a plus, not a space, so the signature covers
        // `a+b` and `a%2Bb` alike. A signed request's values are read the same way, so that
        // whoever holds a signed URL cannot turn a plus into a space under the signature.
        let q: Cow<'_, str> = if q.contains('+') && is_signed(uri, headers) {
            Cow::Owned(q.replace('+', "%2B"))
        } else {
            Cow::Borrowed(q)
        };
        pairs.extend(
            keyless_core::sts::form::pairs(q.as_bytes())
                .into_iter()
                .filter(|(k, _)| !is_auth_param(k)),
        );
    }
    if method == Method::POST && !body.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                "The request body must be application/x-www-form-urlencoded (AWS query protocol).",
            ));
        }
        pairs.extend(keyless_core::sts::form::pairs(body));
    } else if method != Method::POST && method != Method::GET {
        return Err(ApiError::new(
            "InvalidAction",
            400,
            "Use POST with a form body or GET with a query string.",
        ));
    }
    Params::from_pairs(pairs)
}

/// True when the request carries a SigV4 signature (header or presigned query).
pub fn is_signed(uri: &Uri, headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.to_ascii_lowercase().starts_with("x-amz-signature="))
        })
}

#[allow(
    clippy::too_many_arguments,
    reason = "one dispatch over the parts of one request"
)]
async fn dispatch(
    state: &AppState,
    params: &Params,
    action: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    origin: Origin<'_>,
    request_id: &str,
    facts: &mut CallFacts,
) -> Result<String, ApiError> {
    match action {
        "" => Err(ApiError::new("MissingAction", 400, "Missing Action")),
        "AssumeRoleWithWebIdentity" => web_identity(state, params, origin, facts).await.map(|i| {
            let xml = issued_xml(action, &i, request_id);
            facts.issued = Some(IssuedFacts::from_issued(i));
            xml
        }),
        "AssumeRole"
        | "GetCallerIdentity"
        | "GetAccessKeyInfo"
        | "DecodeAuthorizationMessage"
        | "GetSessionToken"
        | "GetFederationToken" => {
            if !is_signed(uri, headers) {
                return Err(ApiError::new(
                    "MissingAuthenticationToken",
                    403,
                    "Request is missing Authentication Token",
                ));
            }
            let caller = authenticate_signed(
                state,
                &state.directory.load(),
                method,
                uri,
                headers,
                body,
                "sts",
            )
            .inspect_err(|_| {
                facts.claimed_access_key_id = audit::claimed_access_key_id(
                    headers
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok()),
                    uri.query(),
                );
            })?;
            facts.caller = Some(CallerFacts::of(&caller));
            signed_action(state, &caller, params, action, origin, request_id, facts)
        }
        "AssumeRoleWithSAML" | "AssumeRoot" | "GetDelegatedAccessToken" | "GetWebIdentityToken" => {
            Err(ApiError::new(
                "InvalidAction",
                400,
                format!(
                    "{action} is not supported by keyless; federate with AssumeRoleWithWebIdentity."
                ),
            ))
        }
        other => Err(ApiError::new(
            "InvalidAction",
            400,
            format!(
                "Could not find operation {} for version 2011-06-15",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// A header's value as text (`aws:UserAgent`, `aws:referer`); `None` when absent or not
/// visible ASCII, so no key is made from bytes the client did not mean as text.
pub(crate) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates a request signed for `service` (`sts`, `iam`, `keyless`) against `directory`,
/// the current key ring and revocations.
pub(crate) fn authenticate_signed(
    state: &AppState,
    directory: &keyless_core::directory::Directory,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    service: &str,
) -> Result<Caller, ApiError> {
    let keys = state.keys.load();
    let revocations = state.revocations.load();
    let verifier = keys.verifier(directory, &revocations.set);
    with_http_request(method, uri, headers, |request| {
        authenticate(
            &verifier,
            SignedHttp { request, body },
            service,
            state.clock.now(),
        )
    })
}

async fn web_identity(
    state: &AppState,
    params: &Params,
    origin: Origin<'_>,
    facts: &mut CallFacts,
) -> Result<Issued, ApiError> {
    let input = sts::web_identity::parse(params)?;
    let now = state.clock.now();
    if !state.throttle.allow(&input.role_arn, origin.source_ip, now) {
        state.metrics.decision("Throttling");
        return Err(ApiError::new("Throttling", 400, "Rate exceeded"));
    }
    let result = web_identity_inner(state, &input, origin, facts).await;
    match &result {
        Ok(issued) => {
            state.metrics.decision("issued");
            state.metrics.issued.inc();
            state
                .metrics
                .token_size
                .observe(issued.credentials.session_token_size as f64);
            debug!(
                access_key_id = issued.credentials.access_key_id,
                role = issued.claims.role_arn,
                subject = issued
                    .web_identity
                    .as_ref()
                    .map_or("", |w| w.subject.as_str()),
                "issued web identity session"
            );
        }
        Err(e) => state.metrics.decision(e.code),
    }
    result
}

async fn web_identity_inner(
    state: &AppState,
    input: &sts::web_identity::WebIdentityInput,
    origin: Origin<'_>,
    facts: &mut CallFacts,
) -> Result<Issued, ApiError> {
    let token = keyless_jwt::UnverifiedToken::parse(input.token.expose())
        .map_err(|e| sts::web_identity::token_error(&e))?;
    facts.token_issuer = token.issuer().map(str::to_owned);
    let directory = state.directory.load_full();
    // The role decides the account whose provider must vouch for the token.
    let role = directory.role_by_arn(&input.role_arn);
    facts.role_found = role.is_some();
    let Some(issuer) = token.issuer() else {
        return Err(ApiError::new(
            "InvalidIdentityToken",
            400,
            "Missing a required claim: iss.",
        ));
    };
    let provider = role
        .as_ref()
        .and_then(|r| directory.provider(r.role.account, issuer))
        .cloned();
    let Some(provider) = provider else {
        if role.is_none() {
            return Err(ApiError::access_denied(sts::web_identity::not_authorized()));
        }
        return Err(ApiError::new(
            "InvalidIdentityToken",
            400,
            "No OpenIDConnect provider found in your account for the token's issuer.",
        ));
    };
    let Some(role) = role else {
        return Err(ApiError::access_denied(sts::web_identity::not_authorized()));
    };
    let jwks = state.key_sources.jwks(&provider.url, token.kid()).await?;
    let keys = state.keys.load();
    let revocations = state.revocations.load();
    let env = sts::web_identity::WebIdentityEnv {
        directory: &directory,
        ring: &keys.ring,
        revocations: &revocations.set,
        authorizer: Authorizer {
            sealer: &keys.sealer,
        },
        leeway: state.leeway_for(&provider.url),
        now: state.clock.now(),
        origin,
    };
    sts::web_identity::complete(
        &env,
        input,
        token,
        &role,
        &provider,
        &jwks,
        &mut rand::rng(),
    )
}

fn signed_action(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    action: &str,
    origin: Origin<'_>,
    request_id: &str,
    facts: &mut CallFacts,
) -> Result<String, ApiError> {
    let directory = state.directory.load();
    let keys = state.keys.load();
    let now = state.clock.now();
    let authorizer = Authorizer {
        sealer: &keys.sealer,
    };
    match action {
        "GetCallerIdentity" => {
            let id = sts::introspect::get_caller_identity(caller);
            let mut x = Xml::response(action, STS_NS);
            x.leaf("Arn", &id.arn)
                .leaf("UserId", &id.user_id)
                .leaf("Account", &id.account);
            Ok(x.finish(action, request_id))
        }
        "AssumeRole" => {
            let input = sts::assume_role::parse(params)?;
            if !state.throttle.allow(&input.role_arn, origin.source_ip, now) {
                state.metrics.decision("Throttling");
                return Err(ApiError::new("Throttling", 400, "Rate exceeded"));
            }
            let env = sts::assume_role::AssumeRoleEnv {
                directory: &directory,
                ring: &keys.ring,
                authorizer,
                now,
                origin,
            };
            let result = sts::assume_role::assume_role(&env, caller, &input, &mut rand::rng());
            match &result {
                Ok(issued) => {
                    state.metrics.decision("issued");
                    state.metrics.issued.inc();
                    state
                        .metrics
                        .token_size
                        .observe(issued.credentials.session_token_size as f64);
                    debug!(
                        access_key_id = issued.credentials.access_key_id,
                        role = issued.claims.role_arn,
                        caller = caller.access_key_id(),
                        "issued chained session"
                    );
                }
                Err(e) => state.metrics.decision(e.code),
            }
            result.map(|i| {
                let xml = issued_xml(action, &i, request_id);
                facts.issued = Some(IssuedFacts::from_issued(i));
                xml
            })
        }
        "GetAccessKeyInfo" => {
            let env = sts::introspect::IntrospectEnv {
                directory: &directory,
                authorizer,
                now,
                origin,
            };
            let account = sts::introspect::get_access_key_info(&env, caller, params)?;
            let mut x = Xml::response(action, STS_NS);
            x.leaf("Account", &account);
            Ok(x.finish(action, request_id))
        }
        "DecodeAuthorizationMessage" => {
            let env = sts::introspect::IntrospectEnv {
                directory: &directory,
                authorizer,
                now,
                origin,
            };
            let decoded = sts::introspect::decode_authorization_message(&env, caller, params)?;
            let mut x = Xml::response(action, STS_NS);
            x.leaf("DecodedMessage", &decoded);
            Ok(x.finish(action, request_id))
        }
        "GetSessionToken" => Err(ApiError::access_denied(
            "Cannot call GetSessionToken with session credentials",
        )),
        _ => Err(ApiError::access_denied(
            "Cannot call GetFederationToken with session credentials; keyless issues no long-term keys.",
        )),
    }
}

/// `<Op>Result` for AssumeRole and AssumeRoleWithWebIdentity.
fn issued_xml(action: &str, i: &Issued, request_id: &str) -> String {
    let mut x = Xml::response(action, STS_NS);
    if let Some(w) = &i.web_identity {
        x.leaf("SubjectFromWebIdentityToken", &w.subject)
            .leaf("Audience", &w.audience);
    }
    x.open("AssumedRoleUser")
        .leaf("Arn", &i.assumed_role_arn)
        .leaf("AssumedRoleId", &i.assumed_role_id)
        .close("AssumedRoleUser");
    x.open("Credentials")
        .leaf("AccessKeyId", &i.credentials.access_key_id)
        .leaf("SecretAccessKey", i.credentials.secret_access_key.expose())
        .leaf("SessionToken", i.credentials.session_token.expose())
        .leaf("Expiration", &iso8601(i.credentials.expiration))
        .close("Credentials");
    if let Some(w) = &i.web_identity {
        x.leaf("Provider", &w.provider);
    }
    if let Some(p) = i.packed_policy_size {
        x.leaf("PackedPolicySize", &p.to_string());
    }
    x.opt("SourceIdentity", i.source_identity.as_deref());
    // Since 2026 (the one 4,096-byte token limit): how much of it this token uses, and its size.
    x.leaf(
        "SessionTokenUtilization",
        &i.credentials.packed_policy_size.to_string(),
    )
    .leaf(
        "SessionTokenSize",
        &i.credentials.session_token_size.to_string(),
    );
    x.finish(action, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_name(uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        let params = collect_params(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
        params.get("RoleSessionName").unwrap().to_owned()
    }

    #[test]
    fn a_plus_in_a_signed_query_is_a_plus_as_the_signature_read_it() {
        let signed = "/?Action=AssumeRole&RoleSessionName=a+b&X-Amz-Signature=00";
        assert_eq!(session_name(signed), "a+b");
        assert_eq!(session_name(&signed.replace('+', "%2B")), "a+b");
        assert_eq!(session_name(&signed.replace('+', "%20")), "a b");
        // An unsigned form (AssumeRoleWithWebIdentity by GET) keeps the form rule.
        assert_eq!(session_name("/?Action=X&RoleSessionName=a+b"), "a b");
    }
}
