//! The development OIDC issuer of `keyless serve --dev`: discovery and JWKS under `/dev/oidc`,
//! and a token endpoint that `keyless dev token` calls. Loopback only, never in normal mode.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyless_core::model::{Account, Entities, InlinePolicy, OidcProvider, Origin, Role};
use keyless_jwt::{Alg, Jwks, Signer};
use keyless_types::{AccountId, OffsetDateTime};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::state::AppState;

/// The demo account.
pub const DEMO_ACCOUNT: &str = "123456789012";
/// The demo role.
pub const DEMO_ROLE: &str = "keyless-demo";
/// The subject pattern the demo role trusts.
pub const DEMO_SUB_PATTERN: &str = "repo:octo-org/demo:*";
/// The subject `keyless dev token` uses by default.
pub const DEMO_SUB: &str = "repo:octo-org/demo:ref:refs/heads/main";

/// The dev issuer: its URL and signing key.
pub struct DevIssuer {
    /// `http://127.0.0.1:PORT/dev/oidc`.
    pub issuer: String,
    signer: Signer,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Why the dev issuer could not start.
#[derive(Debug, thiserror::Error)]
#[error("dev issuer: {0}")]
pub struct DevError(String);

impl DevIssuer {
    /// A dev issuer for a server bound at `addr`, with a fresh ES256 key.
    pub fn new(addr: SocketAddr) -> Result<Self, DevError> {
        let signer =
            Signer::generate(Alg::ES256, "keyless-dev-1").map_err(|e| DevError(e.to_string()))?;
        Ok(DevIssuer {
            issuer: format!("http://{addr}/dev/oidc"),
            signer,
        })
    }

    /// Its public keys.
    pub fn jwks(&self) -> Result<Arc<Jwks>, DevError> {
        Jwks::from_json(self.signer.jwks_json().as_bytes())
            .map(Arc::new)
            .map_err(|e| DevError(e.to_string()))
    }

    /// The demo account, provider and role that trust this issuer.
    pub fn entities(&self) -> Result<Entities, DevError> {
        let account = AccountId::parse(DEMO_ACCOUNT).map_err(|e| DevError(e.to_string()))?;
        let provider = OidcProvider {
            account,
            url: self.issuer.clone(),
            client_ids: vec!["sts.amazonaws.com".into()],
            thumbprints: vec![],
            allow_http: true,
            tags: Default::default(),
            origin: Origin::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        };
        let prefix = provider.key_prefix().to_owned();
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DemoRepository",
                "Effect": "Allow",
                "Principal": { "Federated": provider.arn() },
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {
                    "StringEquals": { format!("{prefix}:aud"): "sts.amazonaws.com" },
                    "StringLike": { format!("{prefix}:sub"): DEMO_SUB_PATTERN }
                }
            }]
        });
        let permissions = json!({
            "Version": "2012-10-17",
            "Statement": [
                { "Sid": "Introspect", "Effect": "Allow", "Action": ["sts:DecodeAuthorizationMessage", "sts:GetAccessKeyInfo"], "Resource": "*" },
                { "Sid": "ReadDemoBucket", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::demo-bucket", "arn:aws:s3:::demo-bucket/*"] }
            ]
        });
        Ok(Entities {
            accounts: vec![Account {
                id: account,
                name: "demo".into(),
                ou_path: "/".into(),
                origin: Origin::Config,
            }],
            providers: vec![provider],
            roles: vec![Role {
                account,
                name: DEMO_ROLE.into(),
                path: "/".into(),
                role_id: String::new(),
                trust_policy: trust.to_string(),
                trust_principal_ids: Default::default(),
                inline_policies: vec![InlinePolicy {
                    name: "demo".into(),
                    document: permissions.to_string(),
                }],
                permissions_boundary: None,
                permissions_boundary_arn: None,
                attached_policies: Vec::new(),
                max_session_duration: 3600,
                description: "Demo role of keyless serve --dev".into(),
                tags: Default::default(),
                origin: Origin::Config,
                created: OffsetDateTime::UNIX_EPOCH,
            }],
            guardrails: vec![],
            policies: vec![],
        })
    }

    /// Signs a token for `sub` with extra claims.
    pub fn mint(&self, req: &TokenRequest, now: OffsetDateTime) -> Result<String, DevError> {
        let lifetime = req.expires_in.unwrap_or(3600).clamp(60, 86_400);
        let mut claims = Map::new();
        if let Some(extra) = &req.claims {
            for (k, v) in extra {
                claims.insert(k.clone(), v.clone());
            }
        }
        let iat = now.unix_timestamp();
        claims.insert("iss".into(), Value::from(self.issuer.clone()));
        claims.insert(
            "sub".into(),
            Value::from(req.sub.clone().unwrap_or_else(|| DEMO_SUB.to_owned())),
        );
        claims.insert(
            "aud".into(),
            Value::from(
                req.aud
                    .clone()
                    .unwrap_or_else(|| "sts.amazonaws.com".to_owned()),
            ),
        );
        claims.insert("iat".into(), Value::from(iat));
        claims.insert("nbf".into(), Value::from(iat));
        claims.insert("exp".into(), Value::from(iat + i64::from(lifetime)));
        claims.insert(
            "jti".into(),
            Value::from(hex::encode(rand::random::<[u8; 16]>())),
        );
        self.signer
            .sign(&Value::Object(claims))
            .map_err(|e| DevError(e.to_string()))
    }
}

/// Body of `POST /dev/oidc/token`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Subject; default `repo:octo-org/demo:ref:refs/heads/main`.
    pub sub: Option<String>,
    /// Audience; default `sts.amazonaws.com`.
    pub aud: Option<String>,
    /// Extra claims.
    pub claims: Option<Map<String, Value>>,
    /// Lifetime in seconds (60-86400, default 3600).
    pub expires_in: Option<u32>,
}

/// The dev issuer, when in `--dev` mode and asked from loopback; otherwise the routes 404.
fn dev_only(state: &AppState, peer: SocketAddr) -> Result<&DevIssuer, StatusCode> {
    match &state.dev {
        Some(d) if peer.ip().is_loopback() => Ok(d),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

/// Whether a token request comes from a tool on this machine rather than a web page open in
/// the developer's browser, which can post to a loopback port too. A JSON body is sent cross-
/// origin only after a CORS preflight, which this server never grants; a loopback `Host` keeps
/// out a page whose own name was rebound to 127.0.0.1 (DNS rebinding), which could read the
/// answer.
fn from_a_local_tool(headers: &HeaderMap) -> Result<(), &'static str> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err("send the token request as Content-Type: application/json");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, "")) => name,
            Some((name, after)) if after.strip_prefix(':').is_some_and(port_ok) => name,
            _ => "",
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if port_ok(port) => name,
            Some(_) => "",
            None => host,
        },
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(
            "the dev issuer answers only requests addressed to a loopback name (Host: 127.0.0.1:PORT or localhost:PORT)",
        )
    }
}

/// `GET /dev/oidc/.well-known/openid-configuration`.
pub async fn discovery(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match dev_only(&state, peer) {
        Ok(d) => Json(json!({
            "issuer": d.issuer,
            "jwks_uri": format!("{}/jwks", d.issuer),
            "token_endpoint": format!("{}/token", d.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }))
        .into_response(),
        Err(r) => r.into_response(),
    }
}

/// `GET /dev/oidc/jwks`.
pub async fn jwks(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    match dev_only(&state, peer) {
        Ok(d) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            d.signer.jwks_json(),
        )
            .into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /dev/oidc/token`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let d = match dev_only(&state, peer) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
    if let Err(why) = from_a_local_tool(&headers) {
        return (StatusCode::FORBIDDEN, Json(json!({ "error": why }))).into_response();
    }
    let req: TokenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("bad token request: {e}") })),
            )
                .into_response();
        }
    };
    match d.mint(&req, state.clock.now()) {
        Ok(t) => Json(json!({ "token": t })).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_json_addressed_to_a_loopback_name_gets_a_token() {
        for host in [
            "127.0.0.1:7000",
            "localhost:7000",
            "LOCALHOST",
            "[::1]:7000",
            "127.1.2.3",
        ] {
            let h = headers(&[("host", host), ("content-type", "application/json")]);
            assert!(from_a_local_tool(&h).is_ok(), "{host}");
        }
        let h = headers(&[
            ("host", "127.0.0.1:7000"),
            ("content-type", "Application/JSON; charset=utf-8"),
        ]);
        assert!(from_a_local_tool(&h).is_ok());
        // A cross-origin form post (no preflight) from a web page, and a rebound name.
        for (host, ty) in [
            ("127.0.0.1:7000", "text/plain"),
            ("127.0.0.1:7000", "application/x-www-form-urlencoded"),
            ("evil.example:7000", "application/json"),
            ("127.0.0.1.evil.example", "application/json"),
            ("[::1].evil.example", "application/json"),
            ("[::1]:7000x", "application/json"),
            ("localhost:", "application/json"),
            ("", "application/json"),
        ] {
            let h = headers(&[("host", host), ("content-type", ty)]);
            assert!(from_a_local_tool(&h).is_err(), "{host} {ty}");
        }
        assert!(from_a_local_tool(&headers(&[("host", "127.0.0.1:7000")])).is_err());
    }
}
