//! Where each issuer's signing keys come from: the OIDC cache (fetched off the request path) for
//! configured providers, or a fixed set for the built-in development issuer.

use std::collections::HashMap;
use std::sync::Arc;

use keyless_core::error::ApiError;
use keyless_jwt::Jwks;
use keyless_oidc::JwksCache;

/// Keys by issuer URL.
pub struct KeySources {
    cache: Arc<JwksCache>,
    fixed: HashMap<String, Arc<Jwks>>,
}

impl std::fmt::Debug for KeySources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySources")
            .field("fixed", &self.fixed.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeySources {
    /// Key sources backed by `cache`, plus fixed key sets (the dev issuer).
    pub fn new(cache: Arc<JwksCache>, fixed: HashMap<String, Arc<Jwks>>) -> Self {
        KeySources { cache, fixed }
    }

    /// Whether `issuer`'s keys are fixed (the dev issuer), not fetched.
    pub fn is_fixed(&self, issuer: &str) -> bool {
        self.fixed.contains_key(issuer)
    }

    /// The cache, for readiness and metrics.
    pub fn cache(&self) -> &JwksCache {
        &self.cache
    }

    /// The keys to verify a token from `issuer` whose header names `kid`.
    pub async fn jwks(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<Jwks>, ApiError> {
        if let Some(j) = self.fixed.get(issuer) {
            return Ok(Arc::clone(j));
        }
        self.cache
            .keys(issuer, kid)
            .await
            .map_err(|e| ApiError::new(e.aws_code(), e.http_status(), e.to_string()))
    }

    /// True when every configured issuer has keys.
    pub fn is_warm(&self) -> bool {
        self.cache.is_warm()
    }
}
