//! The IAM query API (2010-05-08) on the STS route: a request whose SigV4 credential scope
//! names the service `iam` comes here (`AWS_ENDPOINT_URL_IAM` pointing at keyless).
//!
//! Authenticates the caller, runs the use case from `keyless_core::iam`, applies its one change
//! to the store, rebuilds the directory and swaps it in so the next request sees the change,
//! and writes AWS's XML (policy documents URL-encoded).

use std::sync::Arc;

use axum::http::{HeaderMap, Method, Uri, header};
use keyless_core::caller::Caller;
use keyless_core::directory::Directory;
use keyless_core::error::ApiError;
use keyless_core::iam::{self, AcknowledgedRisk, IamEnv, Node};
use keyless_core::ports::Change;
use keyless_core::sts::params::Params;
use keyless_core::sts::{Authorizer, Origin};
use quick_xml::escape::escape;
use tracing::{error, info};

use crate::state::AppState;
use crate::xml::IAM_NS;

/// Settings of the IAM API (config `[iam]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IamSettings {
    /// Accept `http://` provider URLs on loopback hosts (local test issuers only).
    pub allow_loopback_http_providers: bool,
    /// Let providers created through the API reach non-public addresses.
    pub allow_private_provider_addresses: bool,
}

/// How the key cache fetches `p`'s issuer. One that only the IAM API named (no config provider
/// has its URL) may reach public addresses only: an account's IAM administrator must not make
/// the server connect into its own network (an internal service, a metadata endpoint), while
/// the operator's config may name an internal issuer.
pub(crate) fn issuer_config(
    directory: &Directory,
    p: &keyless_core::model::OidcProvider,
    settings: IamSettings,
) -> keyless_oidc::IssuerConfig {
    let operators = directory
        .providers()
        .any(|q| q.url == p.url && q.origin == keyless_core::model::Origin::Config);
    keyless_oidc::IssuerConfig {
        allow_http: p.allow_http,
        public_addresses_only: !operators && !settings.allow_private_provider_addresses,
        ..keyless_oidc::IssuerConfig::new(p.url.clone())
    }
}

/// The IAM API version.
pub const VERSION: &str = "2010-05-08";

/// Serializes IAM writes: check, write and rebuild happen under it, so two concurrent
/// `CreateRole`s of one name cannot both succeed.
static WRITE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// True when the request is signed for the `iam` service (header or presigned form).
pub fn is_iam_request(uri: &Uri, headers: &HeaderMap) -> bool {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("Credential="))
        .map(|(_, rest)| rest.split([',', ' ']).next().unwrap_or("").to_owned());
    let credential = from_header.or_else(|| {
        let q = uri.query()?;
        keyless_core::sts::form::pairs(q.as_bytes())
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential"))
            .map(|(_, v)| v)
    });
    credential.is_some_and(|c| c.split('/').nth(3) == Some("iam"))
}

/// True for actions that only read.
fn is_read(action: &str) -> bool {
    action.starts_with("Get") || action.starts_with("List") || action.starts_with("Simulate")
}

/// Serves one IAM request.
#[allow(
    clippy::too_many_arguments,
    reason = "one dispatch over the parts of one request"
)]
pub async fn handle(
    state: &AppState,
    params: &Params,
    action: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    origin: Origin<'_>,
    request_id: &str,
    facts: &mut crate::audit::CallFacts,
) -> Result<String, ApiError> {
    if action.is_empty() {
        return Err(ApiError::new("MissingAction", 400, "Missing Action"));
    }
    if let Some(v) = params.get("Version")
        && v != VERSION
    {
        return Err(ApiError::new(
            "InvalidAction",
            400,
            format!(
                "Could not find operation {} for version {}",
                action.chars().take(64).collect::<String>(),
                v.chars().take(16).collect::<String>()
            ),
        ));
    }
    if !crate::query_api::is_signed(uri, headers) {
        return Err(ApiError::new(
            "MissingAuthenticationToken",
            403,
            "Request is missing Authentication Token",
        ));
    }
    let _guard = if is_read(action) {
        None
    } else {
        Some(WRITE_LOCK.lock().await)
    };
    // A write decides on a snapshot and writes the entity whole, so the store takes it only
    // while the snapshot is current: a replica whose directory lags by a poll would otherwise
    // write back what another replica just removed. Holding `directory_reload` keeps the
    // snapshot and its generation together; on a conflict the call is decided again on the
    // reloaded directory.
    let _reload = if is_read(action) {
        None
    } else {
        Some(state.directory_reload.lock().await)
    };
    let mut attempts = 0;
    let (caller, outcome) = loop {
        let generation = state
            .directory_generation
            .load(std::sync::atomic::Ordering::Relaxed);
        let directory = state.directory.load_full();
        let caller = crate::query_api::authenticate_signed(
            state, &directory, method, uri, headers, body, "iam",
        )?;
        facts.caller = Some(crate::audit::CallerFacts::of(&caller));
        let keys = state.keys.load();
        let env = IamEnv {
            directory: &directory,
            authorizer: Authorizer {
                sealer: &keys.sealer,
            },
            now: state.clock.now(),
            origin,
            allow_loopback_http_providers: state.iam.allow_loopback_http_providers,
            role_usage: &state.role_usage,
        };
        let outcome = iam::execute(&env, &caller, action, params, &mut rand::rng())?;
        let Some(change) = &outcome.change else {
            break (caller, outcome);
        };
        if apply(state, change, generation).await? {
            info!(
                request_id,
                action,
                caller = caller.arn(),
                "iam change applied"
            );
            break (caller, outcome);
        }
        attempts += 1;
        if attempts >= WRITE_ATTEMPTS {
            return Err(ApiError::new(
                "ConcurrentModification",
                409,
                "The entity changed through another keyless server while this request was being decided, several times in a row. Retry the request.",
            ));
        }
        info!(
            request_id,
            action, "iam change decided on a stale directory: deciding again"
        );
    };
    for risk in &outcome.acknowledged {
        record_acknowledged_risk(&caller, risk, request_id, facts);
    }
    Ok(render(action, outcome.result.as_deref(), request_id))
}

/// A trust-policy risk accepted with `keyless:acknowledge-risk`: logged, and carried into the
/// call's audit record (`additionalEventData.acknowledgedRisks`), written before the answer.
pub fn record_acknowledged_risk(
    caller: &Caller,
    risk: &AcknowledgedRisk,
    request_id: &str,
    facts: &mut crate::audit::CallFacts,
) {
    facts.acknowledged_risks.push(serde_json::json!({
        "roleArn": risk.role_arn,
        "findingCode": risk.code,
        "findingMessage": keyless_audit::event::bounded(&risk.message),
    }));
    info!(
        request_id,
        caller = caller.arn(),
        role = risk.role_arn,
        finding = risk.code,
        message = risk.message,
        "trust policy risk acknowledged"
    );
}

/// How many times a write decided on a snapshot another replica made stale is decided again.
const WRITE_ATTEMPTS: u32 = 3;

/// Writes the change if the store is still at `generation` (the snapshot's), then rebuilds the
/// directory from the store and swaps it in; a new provider's issuer is registered with the
/// key cache. `false` when the store had moved on: nothing was written, and the directory is
/// reloaded for the next attempt. Callers hold `state.directory_reload`.
async fn apply(state: &AppState, change: &Change, generation: i64) -> Result<bool, ApiError> {
    let written = state
        .store
        .write_if_current(change, generation)
        .await
        .map_err(|e| {
            error!("iam write failed: {e}");
            ApiError::internal()
        })?;
    reload_directory(state).await.map_err(|e| {
        error!("reloading the store after an iam write failed: {e}");
        ApiError::internal()
    })?;
    Ok(written)
}

/// Rebuilds the directory from the store and swaps it in. Issuers a provider names now are
/// added to the key cache, and those no provider names any more are removed: otherwise
/// creating and deleting providers grew the cache without bound, each URL polled for ever.
/// Callers hold `state.directory_reload`.
pub(crate) async fn reload_directory(
    state: &AppState,
) -> Result<(), keyless_core::ports::StoreError> {
    let generation = state.store.directory_generation().await?;
    let entities = state.store.load().await?;
    let directory = Directory::build_reusing(&entities, Some(&state.directory.load()));
    for p in &directory.problems {
        error!("{p}");
    }
    let cache = state.key_sources.cache();
    let cached = cache.issuers();
    for p in directory.providers() {
        if !cached.contains(&p.url)
            && !state.key_sources.is_fixed(&p.url)
            && let Err(e) = cache.add_issuer(issuer_config(&directory, p, state.iam))
        {
            error!("provider {}: cannot fetch its keys: {e}", p.url);
        }
    }
    for url in cached {
        if !directory.providers().any(|p| p.url == url) {
            cache.remove_issuer(&url);
        }
    }
    state.directory.store(Arc::new(directory));
    state
        .directory_generation
        .store(generation, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// `<Action>Response xmlns=IAM><Action>Result>…` (no Result element for operations without
/// output), then `ResponseMetadata`.
pub fn render(action: &str, result: Option<&[Node]>, request_id: &str) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str(&format!("<{action}Response xmlns=\"{IAM_NS}\">\n"));
    if let Some(nodes) = result {
        out.push_str(&format!("  <{action}Result>\n"));
        for n in nodes {
            write_node(&mut out, n);
        }
        out.push_str(&format!("\n  </{action}Result>\n"));
    }
    out.push_str(&format!(
        "  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        escape(request_id)
    ));
    out
}

fn write_node(out: &mut String, n: &Node) {
    match n {
        Node::Leaf(name, text) => {
            out.push_str(&format!("<{name}>{}</{name}>", crate::xml::text(text)));
        }
        Node::Document(name, text) => {
            out.push_str(&format!("<{name}>{}</{name}>", url_encode(text)));
        }
        Node::Group(name, children) => {
            out.push_str(&format!("<{name}>"));
            for c in children {
                write_node(out, c);
            }
            out.push_str(&format!("</{name}>"));
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (AWS returns policy
/// documents this way; SDKs decode them).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_encoded_and_text_escaped() {
        let doc = render(
            "GetRolePolicy",
            Some(&[
                Node::leaf("RoleName", "a<b"),
                Node::Document("PolicyDocument", "{\"a\": \"b c\"}".into()),
            ]),
            "rid",
        );
        assert!(doc.contains("<RoleName>a&lt;b</RoleName>"), "{doc}");
        assert!(
            doc.contains("<PolicyDocument>%7B%22a%22%3A%20%22b%20c%22%7D</PolicyDocument>"),
            "{doc}"
        );
        assert!(doc.starts_with(
            "<GetRolePolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
        ));
        let empty = render("DeleteRole", None, "rid");
        assert!(!empty.contains("DeleteRoleResult"), "{empty}");
    }

    #[test]
    fn iam_is_told_from_sts_by_the_credential_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=ASIAX/20261201/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        let uri: Uri = "/".parse().unwrap();
        assert!(is_iam_request(&uri, &h));
        h.insert(
            header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=ASIAX/20261201/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        assert!(!is_iam_request(&uri, &h));
        let presigned: Uri = "/?X-Amz-Credential=ASIAX%2F20261201%2Fus-east-1%2Fiam%2Faws4_request"
            .parse()
            .unwrap();
        assert!(is_iam_request(&presigned, &HeaderMap::new()));
    }
}
