//! The JWKS cache: discovery + JWKS fetching for configured issuers, Cache-Control, background
//! refresh, rate-limited refetch on unknown `kid`, bounded stale serving.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use keyless_jwt::{Jwks, JwksError, KeyFingerprint};
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{Client, StatusCode, Url, redirect};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{ConfigError, FetchError};

/// Limits and timings of the cache. `Default` gives the production values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// TCP/TLS connect timeout (default 2 s).
    pub connect_timeout: Duration,
    /// Total time for one HTTP request including the body (default 5 s).
    pub request_timeout: Duration,
    /// Largest discovery or JWKS response (default 1 MiB).
    pub max_response_bytes: usize,
    /// Most redirects followed per request (default 5); never to a non-https URL, nor off the
    /// host and port first asked.
    pub max_redirects: usize,
    /// Cache-Control `max-age` is clamped to at least this (default 60 s).
    pub min_ttl: Duration,
    /// ... and at most this (default 24 h).
    pub max_ttl: Duration,
    /// TTL when the JWKS response has no usable `max-age` (default 1 h).
    pub default_ttl: Duration,
    /// How long expired keys keep serving while the issuer cannot be reached (default 24 h).
    pub stale_for: Duration,
    /// At most one refetch per issuer per this interval for an unknown `kid` (default 30 s).
    pub unknown_kid_interval: Duration,
    /// After a failed fetch, the next background attempt waits this long (default 15 s).
    pub retry_interval: Duration,
    /// How long a request waits for a fetch it needs (cold cache or unknown kid; default 6 s).
    pub wait_bound: Duration,
    /// How often the background refresher looks for due issuers (default 1 s).
    pub refresher_tick: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
            max_redirects: 5,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(3600),
            stale_for: Duration::from_secs(24 * 3600),
            unknown_kid_interval: Duration::from_secs(30),
            retry_interval: Duration::from_secs(15),
            wait_bound: Duration::from_secs(6),
            refresher_tick: Duration::from_secs(1),
        }
    }
}

/// One configured issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The issuer URL exactly as tokens carry it in `iss`.
    pub url: String,
    /// Accept `http://` — only for a loopback host (127.0.0.0/8, ::1, localhost resolving to
    /// loopback), for local test issuers.
    pub allow_http: bool,
    /// Accept a `jwks_uri` on another host than the issuer's (e.g. Google's
    /// `www.googleapis.com`). Off by default.
    pub allow_foreign_jwks_host: bool,
    /// Connect only to public addresses (not loopback, private, link-local, shared or
    /// unique-local ones), checked on every resolution, so a name that later resolves inward
    /// is refused too. For issuers an account's IAM administrator named: the operator's config
    /// may name internal issuers, they may not make the server reach into its network.
    pub public_addresses_only: bool,
}

impl IssuerConfig {
    /// An https issuer with default options.
    pub fn new(url: impl Into<String>) -> Self {
        IssuerConfig {
            url: url.into(),
            allow_http: false,
            allow_foreign_jwks_host: false,
            public_addresses_only: false,
        }
    }
}

/// Counters, readable as plain numbers (for Prometheus).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Fetch attempts (discovery + JWKS pairs).
    pub fetches: u64,
    /// Failed fetch attempts.
    pub failures: u64,
    /// Forced refetches triggered by an unknown `kid`.
    pub unknown_kid_refetches: u64,
    /// Requests answered with expired (stale) keys.
    pub stale_served: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    failures: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    stale_served: AtomicU64,
}

#[derive(Clone)]
struct Entry {
    jwks: Arc<Jwks>,
    fetched_at: Instant,
    refresh_at: Instant,
    fresh_until: Instant,
    stale_until: Instant,
}

struct IssuerState {
    key: String,
    url: Url,
    allow_http: bool,
    allow_foreign_jwks_host: bool,
    public_addresses_only: bool,
    entry: RwLock<Option<Entry>>,
    last_error: Mutex<Option<FetchError>>,
    next_try: Mutex<Option<Instant>>,
    last_forced: Mutex<Option<Instant>>,
    in_flight: AtomicBool,
    done: watch::Sender<u64>,
    /// Keys this issuer once published with their private half: never trusted again, even
    /// from a later set that lists only the public half (at most [`MAX_COMPROMISED_KEYS`]).
    compromised: Mutex<Vec<KeyFingerprint>>,
}

/// How many compromised keys an issuer's state remembers; past that the oldest is forgotten.
/// Each refused fetch adds at most one, and a set holds at most 200 keys.
const MAX_COMPROMISED_KEYS: usize = 1024;

fn read<T: Clone>(l: &RwLock<T>) -> T {
    match l.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn write<T>(l: &RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(p) => *p.into_inner() = v,
    }
}

fn lock<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

struct Inner {
    config: Config,
    strict: Client,
    loopback: Client,
    /// `strict` resolving names to public addresses only.
    public: Client,
    issuers: RwLock<HashMap<String, Arc<IssuerState>>>,
    counters: Counters,
}

/// Caches each configured issuer's JWKS. Cheap to clone (shared state).
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("issuers", &self.issuers())
            .finish_non_exhaustive()
    }
}

/// Whether `host` (as in a URL, IPv6 in brackets) is a loopback literal or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

fn url_is_allowed(url: &Url, allow_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => allow_http && url.host_str().is_some_and(is_loopback_host),
        _ => false,
    }
}

/// Whether an address is one the public internet routes: not loopback, private (RFC 1918),
/// shared (100.64/10), link-local (where cloud metadata services answer), benchmarking
/// (198.18/15), unique-local, unspecified, broadcast, multicast or reserved; an IPv4-mapped address counts as its IPv4 one.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b & 0xfe) == 18)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                // IPv4-compatible and NAT64 forms reach IPv4 addresses not checked here.
                || v6.segments()[..6] == [0; 6]
                || (first == 0x0064 && v6.segments()[1] == 0xff9b))
        }
    }
}

/// Resolves a name to its public addresses only; none is an error, so the connection is never
/// made. Used on every connection, so a name that passed a check and then resolves inward
/// (DNS rebinding) is refused as well.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public = public_addresses(&host).await?;
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// `host`'s public addresses (port 0), or an error when it resolves to none.
async fn public_addresses(
    host: &str,
) -> Result<Vec<std::net::SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let public: Vec<_> = tokio::net::lookup_host((host, 0))
        .await?
        .filter(|a| is_public_address(a.ip()))
        .collect();
    if public.is_empty() {
        return Err(format!("{host} has no public address").into());
    }
    Ok(public)
}

fn client(
    config: &Config,
    allow_loopback_http: bool,
    resolver: Option<Arc<PublicOnly>>,
) -> Result<Client, ConfigError> {
    let max = config.max_redirects;
    let policy = redirect::Policy::custom(move |attempt| {
        // A redirect stays on the host (and port) first asked: `jwks_uri` must be on the
        // issuer's host, and a redirect elsewhere (an open redirect on the issuer's site) would
        // bring keys, or a discovery document, from a host nobody configured.
        let same_host = attempt.previous().first().is_some_and(|first| {
            first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > max {
            attempt.error("too many redirects")
        } else if same_host && url_is_allowed(attempt.url(), allow_loopback_http) {
            attempt.follow()
        } else {
            attempt.error("redirect to a refused URL")
        }
    });
    let builder = match resolver {
        Some(r) => Client::builder().dns_resolver(r),
        None => Client::builder(),
    };
    builder
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(policy)
        // Only configured issuers are fetched, directly: no proxy from the environment.
        .no_proxy()
        // Fetches are rare (hourly per issuer): a fresh connection each time, no idle pool.
        .pool_max_idle_per_host(0)
        .user_agent(concat!(
            "keyless/",
            env!("CARGO_PKG_VERSION"),
            " (JWKS fetcher)"
        ))
        .build()
        .map_err(|e| ConfigError::Client(e.to_string()))
}

/// Parses `max-age` from a Cache-Control value (`no-store`/`no-cache` -> 0).
pub fn cache_control_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

/// What an issuer's discovery document is checked against.
#[derive(Debug, Clone, Copy)]
pub struct DiscoveryRules<'a> {
    /// The issuer as configured (a trailing `/` is ignored on both sides).
    pub issuer: &'a str,
    /// The same, parsed: its host and port are where `jwks_uri` must point.
    pub issuer_url: &'a Url,
    /// `jwks_uri` may be `http` (loopback test issuers only).
    pub allow_http: bool,
    /// `jwks_uri` may be on another host than the issuer's.
    pub allow_foreign_jwks_host: bool,
}

/// Checks a fetched discovery document (untrusted bytes) and returns the `jwks_uri` to fetch:
/// the document's `issuer` must be the configured one, and `jwks_uri` an https URL (http only
/// when allowed) without credentials, on the issuer's host unless a foreign host is allowed.
pub fn jwks_url_from_discovery(doc: &[u8], rules: &DiscoveryRules<'_>) -> Result<Url, FetchError> {
    let doc: Value = serde_json::from_slice(doc).map_err(|_| FetchError::Discovery("not JSON"))?;
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or(FetchError::Discovery("no issuer"))?;
    if issuer.trim_end_matches('/') != rules.issuer.trim_end_matches('/') {
        return Err(FetchError::Discovery(
            "its issuer differs from the configured issuer",
        ));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(FetchError::Discovery("no jwks_uri"))?;
    let jwks_url =
        Url::parse(jwks_uri).map_err(|_| FetchError::Discovery("jwks_uri is not a URL"))?;
    if !url_is_allowed(&jwks_url, rules.allow_http)
        || !jwks_url.username().is_empty()
        || jwks_url.password().is_some()
    {
        return Err(FetchError::Discovery("jwks_uri must be https"));
    }
    if !rules.allow_foreign_jwks_host
        && (jwks_url.host_str() != rules.issuer_url.host_str()
            || jwks_url.port_or_known_default() != rules.issuer_url.port_or_known_default())
    {
        return Err(FetchError::Discovery(
            "jwks_uri must be on the issuer's host",
        ));
    }
    Ok(jwks_url)
}

impl JwksCache {
    /// A cache with no issuers yet.
    pub fn new(config: Config) -> Result<JwksCache, ConfigError> {
        let strict = client(&config, false, None)?;
        let loopback = client(&config, true, None)?;
        let public = client(&config, false, Some(Arc::new(PublicOnly)))?;
        Ok(JwksCache {
            inner: Arc::new(Inner {
                config,
                strict,
                loopback,
                public,
                issuers: RwLock::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// Registers an issuer (replacing one with the same URL). Nothing is fetched yet.
    pub fn add_issuer(&self, issuer: IssuerConfig) -> Result<(), ConfigError> {
        let bad = |f: fn(String) -> ConfigError| f(issuer.url.clone());
        let url =
            Url::parse(&issuer.url).map_err(|_| bad(|url| ConfigError::InvalidUrl { url }))?;
        if url.cannot_be_a_base() || url.host_str().is_none() {
            return Err(bad(|url| ConfigError::InvalidUrl { url }));
        }
        if url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(bad(|url| ConfigError::ExtraParts { url }));
        }
        match url.scheme() {
            "https" => {}
            "http" if !issuer.allow_http => return Err(bad(|url| ConfigError::NotHttps { url })),
            "http" => {
                if !url.host_str().is_some_and(is_loopback_host) {
                    return Err(bad(|url| ConfigError::HttpNotLoopback { url }));
                }
            }
            _ => return Err(bad(|url| ConfigError::NotHttps { url })),
        }
        let (done, _) = watch::channel(0u64);
        let state = Arc::new(IssuerState {
            key: issuer.url.clone(),
            url,
            allow_http: issuer.allow_http,
            allow_foreign_jwks_host: issuer.allow_foreign_jwks_host,
            public_addresses_only: issuer.public_addresses_only,
            entry: RwLock::new(None),
            last_error: Mutex::new(None),
            next_try: Mutex::new(None),
            last_forced: Mutex::new(None),
            in_flight: AtomicBool::new(false),
            done,
            compromised: Mutex::new(Vec::new()),
        });
        match self.inner.issuers.write() {
            Ok(mut m) => m.insert(issuer.url, state),
            Err(p) => p.into_inner().insert(issuer.url, state),
        };
        Ok(())
    }

    /// Forgets an issuer: its keys are dropped and it is fetched no more (a fetch already
    /// running finishes into the forgotten state). Returns whether it was configured.
    pub fn remove_issuer(&self, url: &str) -> bool {
        match self.inner.issuers.write() {
            Ok(mut m) => m.remove(url),
            Err(p) => p.into_inner().remove(url),
        }
        .is_some()
    }

    /// The configured issuer URLs.
    pub fn issuers(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.inner.issuers).keys().cloned().collect();
        v.sort();
        v
    }

    fn state(&self, issuer: &str) -> Option<Arc<IssuerState>> {
        match self.inner.issuers.read() {
            Ok(m) => m.get(issuer).cloned(),
            Err(p) => p.into_inner().get(issuer).cloned(),
        }
    }

    /// The keys of a configured issuer.
    ///
    /// Returns the cached JWKS when it is fresh (or expired but within the stale bound, while a
    /// background refresh runs). When `kid` is not in the cached set, triggers a refetch at most
    /// once per [`Config::unknown_kid_interval`] and waits for it at most
    /// [`Config::wait_bound`]. On a cold cache it fetches and waits (bounded). Never fetches an
    /// issuer that was not added with [`JwksCache::add_issuer`].
    pub async fn keys(&self, issuer_url: &str, kid: Option<&str>) -> Result<Arc<Jwks>, FetchError> {
        let st = self.state(issuer_url).ok_or(FetchError::UnknownIssuer)?;
        let now = Instant::now();
        let c = &self.inner.counters;
        match read(&st.entry) {
            Some(e) if now < e.stale_until => {
                let missing = kid.is_some_and(|k| !e.jwks.contains_kid(k));
                if missing && self.may_force(&st, now) {
                    c.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
                    if let Some(newer) = self.refresh_and_wait(&st, true).await {
                        return Ok(newer);
                    }
                    // The refetch failed, and may have dropped keys found compromised: answer
                    // from the cache as it is now, not as it was before.
                    if let Some(current) = read(&st.entry) {
                        return Ok(current.jwks);
                    }
                } else if now >= e.refresh_at {
                    Inner::trigger(&self.inner, &st, false);
                }
                if now >= e.fresh_until {
                    c.stale_served.fetch_add(1, Ordering::Relaxed);
                }
                Ok(e.jwks)
            }
            _ => match self.refresh_and_wait(&st, false).await {
                Some(j) => Ok(j),
                None => Err(lock(&st.last_error, |e| e.clone())
                    .unwrap_or(FetchError::Unreachable("no keys fetched yet"))),
            },
        }
    }

    fn may_force(&self, st: &IssuerState, now: Instant) -> bool {
        let interval = self.inner.config.unknown_kid_interval;
        lock(&st.last_forced, |last| {
            if last.is_some_and(|t| now.duration_since(t) < interval) {
                false
            } else {
                *last = Some(now);
                true
            }
        })
    }

    /// Triggers a fetch (unless one runs) and waits for its outcome, bounded. Returns the keys
    /// if a fetch that started after this call succeeded.
    async fn refresh_and_wait(&self, st: &Arc<IssuerState>, force: bool) -> Option<Arc<Jwks>> {
        let started = Instant::now();
        let mut rx = st.done.subscribe();
        if !Inner::trigger(&self.inner, st, force) && !st.in_flight.load(Ordering::Acquire) {
            return None; // backing off after a failure
        }
        let wait = async {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                // A fetch that began before us may finish first; wait for ours.
                if read(&st.entry).is_some_and(|e| e.fetched_at >= started)
                    || !st.in_flight.load(Ordering::Acquire)
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(self.inner.config.wait_bound, wait).await;
        read(&st.entry)
            .filter(|e| e.fetched_at >= started)
            .map(|e| e.jwks)
    }

    /// Fetches every issuer now and waits (bounded); for start-up warm-up.
    pub async fn refresh_all(&self) {
        let states: Vec<Arc<IssuerState>> = read(&self.inner.issuers).values().cloned().collect();
        for st in states {
            let _ = self.refresh_and_wait(&st, true).await;
        }
    }

    /// Starts the background refresher: it refetches each issuer's keys before they expire and
    /// retries failed issuers every [`Config::retry_interval`]. It stops when the cache is
    /// dropped.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let tick = self.inner.config.refresher_tick;
        tokio::spawn(async move {
            loop {
                {
                    let Some(inner) = weak.upgrade() else { return };
                    let now = Instant::now();
                    let states: Vec<Arc<IssuerState>> =
                        read(&inner.issuers).values().cloned().collect();
                    for st in states {
                        let due = read(&st.entry).is_none_or(|e| now >= e.refresh_at);
                        if due {
                            Inner::trigger(&inner, &st, false);
                        }
                    }
                }
                tokio::time::sleep(tick).await;
            }
        })
    }

    /// True when every configured issuer has usable (fresh or boundedly stale) keys.
    pub fn is_warm(&self) -> bool {
        let now = Instant::now();
        read(&self.inner.issuers)
            .values()
            .all(|st| read(&st.entry).is_some_and(|e| now < e.stale_until))
    }

    /// The issuers [`JwksCache::is_warm`] waits for: no keys fetched yet, or none left within
    /// their stale bound. Sorted.
    pub fn cold_issuers(&self) -> Vec<String> {
        let now = Instant::now();
        let mut cold: Vec<String> = read(&self.inner.issuers)
            .iter()
            .filter(|(_, st)| read(&st.entry).is_none_or(|e| now >= e.stale_until))
            .map(|(url, _)| url.clone())
            .collect();
        cold.sort();
        cold
    }

    /// The counters.
    pub fn metrics(&self) -> Metrics {
        let c = &self.inner.counters;
        Metrics {
            fetches: c.fetches.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            unknown_kid_refetches: c.unknown_kid_refetches.load(Ordering::Relaxed),
            stale_served: c.stale_served.load(Ordering::Relaxed),
        }
    }
}

/// Stops trusting a key the issuer published with its private half: it leaves the cached set
/// at once (stale serving must not keep a key anyone can sign with) and is dropped from every
/// later set. A cached key with the same `kid` goes too: which key that `kid` names is now
/// the issuer's guess, not ours.
fn distrust(st: &IssuerState, kid: Option<&str>, fingerprint: &KeyFingerprint) {
    lock(&st.compromised, |bad| {
        if !bad.contains(fingerprint) {
            if bad.len() >= MAX_COMPROMISED_KEYS {
                bad.remove(0);
            }
            bad.push(*fingerprint);
        }
    });
    let Some(entry) = read(&st.entry) else {
        return;
    };
    let (kept, removed) = entry
        .jwks
        .without(|k| k.fingerprint() == fingerprint || (kid.is_some() && k.kid() == kid));
    if removed {
        tracing::error!(
            issuer = %st.key,
            kid = kid.unwrap_or("(none)"),
            "the identity provider published the private half of a signing key: that key is no longer trusted"
        );
        write(
            &st.entry,
            Some(Entry {
                jwks: Arc::new(kept),
                ..entry
            }),
        );
    }
}

impl Inner {
    /// Spawns a fetch for `st` unless one is running or (when not forced) the issuer is backing
    /// off after a failure. Returns whether a fetch was started.
    fn trigger(inner: &Arc<Inner>, st: &Arc<IssuerState>, force: bool) -> bool {
        let now = Instant::now();
        if !force && lock(&st.next_try, |t| t.is_some_and(|t| now < t)) {
            return false;
        }
        if st.in_flight.swap(true, Ordering::AcqRel) {
            return false;
        }
        let inner = Arc::clone(inner);
        let st = Arc::clone(st);
        tokio::spawn(async move {
            inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
            let bound = inner.config.request_timeout * 2 + inner.config.connect_timeout;
            let result = match tokio::time::timeout(bound, inner.fetch(&st)).await {
                Ok(r) => r,
                Err(_) => Err(FetchError::Unreachable("timed out")),
            };
            let now = Instant::now();
            match result {
                Ok((jwks, ttl)) => {
                    let refresh_after = ttl.mul_f64(0.9);
                    let (jwks, _) = lock(&st.compromised, |bad| {
                        jwks.without(|k| bad.contains(k.fingerprint()))
                    });
                    write(
                        &st.entry,
                        Some(Entry {
                            jwks: Arc::new(jwks),
                            fetched_at: now,
                            refresh_at: now + refresh_after,
                            fresh_until: now + ttl,
                            stale_until: now + ttl + inner.config.stale_for,
                        }),
                    );
                    lock(&st.last_error, |e| *e = None);
                    lock(&st.next_try, |t| *t = None);
                }
                Err(e) => {
                    inner.counters.failures.fetch_add(1, Ordering::Relaxed);
                    if let FetchError::Jwks(JwksError::PrivateKeyPublished {
                        kid,
                        fingerprint,
                        ..
                    }) = &e
                    {
                        distrust(&st, kid.as_deref(), fingerprint);
                    }
                    tracing::warn!(issuer = %st.key, error = %e, "JWKS fetch failed");
                    lock(&st.last_error, |le| *le = Some(e));
                    lock(&st.next_try, |t| {
                        *t = Some(now + inner.config.retry_interval)
                    });
                }
            }
            st.in_flight.store(false, Ordering::Release);
            st.done.send_modify(|g| *g = g.wrapping_add(1));
        });
        true
    }

    async fn fetch(&self, st: &IssuerState) -> Result<(Jwks, Duration), FetchError> {
        let base = st.key.trim_end_matches('/');
        let discovery_url = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|_| FetchError::Discovery("issuer URL cannot take the discovery path"))?;
        let (doc, _) = self.get(st, discovery_url).await?;
        let jwks_url = jwks_url_from_discovery(
            &doc,
            &DiscoveryRules {
                issuer: &st.key,
                issuer_url: &st.url,
                allow_http: st.allow_http,
                allow_foreign_jwks_host: st.allow_foreign_jwks_host,
            },
        )?;
        let (body, cache_control) = self.get(st, jwks_url).await?;
        let jwks = Jwks::from_json(&body).map_err(FetchError::Jwks)?;
        let c = &self.config;
        let ttl = match cache_control.as_deref().and_then(cache_control_max_age) {
            Some(secs) => Duration::from_secs(secs).clamp(c.min_ttl, c.max_ttl),
            None => c.default_ttl,
        };
        Ok((jwks, ttl))
    }

    async fn get(
        &self,
        st: &IssuerState,
        url: Url,
    ) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let client = if url.scheme() == "http" {
            // Only loopback issuers marked allow_http get here; `localhost` must resolve to
            // loopback addresses only.
            let host = url.host_str().unwrap_or_default().to_owned();
            if !st.allow_http || !is_loopback_host(&host) {
                return Err(FetchError::Discovery(
                    "http is allowed only for loopback issuers",
                ));
            }
            if host.parse::<IpAddr>().is_err() && !host.starts_with('[') {
                let port = url.port_or_known_default().unwrap_or(80);
                let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|_| FetchError::Unreachable("localhost does not resolve"))?
                    .collect();
                if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
                    return Err(FetchError::Discovery(
                        "localhost resolves to a non-loopback address",
                    ));
                }
            }
            &self.loopback
        } else if st.public_addresses_only {
            // An address literal is never resolved, so the resolver cannot refuse it; a name
            // is checked here for a clear error, and again by the resolver as it connects.
            let host = url.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let public = match bare.parse::<IpAddr>() {
                Ok(ip) => is_public_address(ip),
                Err(_) => tokio::net::lookup_host((bare, 0))
                    .await
                    .map_err(|_| FetchError::Unreachable("the issuer's host does not resolve"))?
                    .any(|a| is_public_address(a.ip())),
            };
            if !public {
                return Err(FetchError::NotPublic);
            }
            &self.public
        } else {
            &self.strict
        };
        let mut resp = client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(FetchError::Unreachable("server error"));
        }
        if status.is_redirection() {
            return Err(FetchError::Redirect);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max = self.config.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge);
        }
        let cache_control = resp
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, cache_control))
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_redirect() {
        FetchError::Redirect
    } else if e.is_timeout() {
        FetchError::Unreachable("timed out")
    } else if e.is_connect() {
        FetchError::Unreachable("connection failed")
    } else {
        FetchError::Unreachable("transport error")
    }
}
