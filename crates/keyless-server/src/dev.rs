//! The development OIDC issuer of `keyless serve --dev`: discovery and JWKS under `/dev/oidc`,
//! and a token endpoint that `keyless dev token` calls. Loopback only, never in normal mode.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
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
    body: axum::body::Bytes,
) -> Response {
    let d = match dev_only(&state, peer) {
        Ok(d) => d,
        Err(r) => return r.into_response(),
    };
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
