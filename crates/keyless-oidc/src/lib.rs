//! Fetches and caches OIDC discovery documents and JWKS for configured issuers, safely and off
//! the request path. This is the only place in keyless that fetches keys; it never fetches a URL
//! taken from a token, only `<configured issuer>/.well-known/openid-configuration` and the
//! `jwks_uri` it names (https, same host by default).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use keyless_oidc::{Config, IssuerConfig, JwksCache};
//!
//! let cache = JwksCache::new(Config::default())?;
//! cache.add_issuer(IssuerConfig::new("https://token.actions.githubusercontent.com"))?;
//! cache.refresh_all().await; // warm up at start
//! let _refresher = cache.spawn_refresher(); // keeps keys fresh in the background
//! let jwks = cache.keys("https://token.actions.githubusercontent.com", Some("kid-1")).await?;
//! # let _ = jwks; Ok(()) }
//! ```
//!
//! Limits (see [`Config`]): connect 2 s, request 5 s, 1 MiB responses, at most 5 redirects (never
//! off the host and port asked, never to a non-https URL), Cache-Control `max-age` clamped to
//! 60 s .. 24 h (default 1 h), unknown `kid` refetch at most every 30 s per issuer, stale keys
//! served up to 24 h while an issuer is down. `allow_http` is accepted only for loopback issuers
//! (local test issuers). An issuer marked `public_addresses_only` (one an account's IAM
//! administrator named) is never connected to on an inward address, checked on every
//! resolution.

mod cache;
mod error;

pub use cache::{
    Config, DiscoveryRules, IssuerConfig, JwksCache, Metrics, cache_control_max_age,
    is_loopback_host, is_public_address, jwks_url_from_discovery,
};
pub use error::{ConfigError, FetchError};
