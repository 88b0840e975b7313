//! The JWKS cache against a real HTTP server on 127.0.0.1 (axum), with short timings.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failure must panic"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keyless_jwt::{Alg, Signer};
use keyless_oidc::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    Status(u16),
    HugeWithLength,
    HugeStreamed,
    Slow,
}

struct Srv {
    base: String,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    jwks: Mutex<String>,
    cache_control: Mutex<Option<String>>,
    mode: Mutex<Mode>,
    jwks_uri: Mutex<Option<String>>,
    issuer_override: Mutex<Option<String>>,
    /// Where `/r/away` redirects.
    away: Mutex<Option<String>>,
}

struct Running {
    srv: Arc<Srv>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn set_jwks(&self, s: &Signer) {
        *self.srv.jwks.lock().unwrap() = s.jwks_json();
    }
    fn hits(&self) -> (usize, usize) {
        (
            self.srv.discovery_hits.load(Ordering::SeqCst),
            self.srv.jwks_hits.load(Ordering::SeqCst),
        )
    }
}

async fn discovery(State(s): State<Arc<Srv>>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = s
        .issuer_override
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| s.base.clone());
    let jwks_uri = s
        .jwks_uri
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| format!("{}/jwks", s.base));
    axum::Json(serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri})).into_response()
}

async fn jwks(State(s): State<Arc<Srv>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Normal => {
            let mut h = HeaderMap::new();
            if let Some(cc) = s.cache_control.lock().unwrap().clone() {
                h.insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            (h, s.jwks.lock().unwrap().clone()).into_response()
        }
        Mode::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Mode::HugeWithLength => vec![b' '; 1024 * 1024 + 1].into_response(),
        Mode::HugeStreamed => {
            let chunks = (0..17).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]));
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}".into_response()
        }
    }
}

async fn redirect(State(s): State<Arc<Srv>>, Path(n): Path<String>) -> Response {
    let target = match n.as_str() {
        "ftp" => "ftp://127.0.0.1/jwks".to_owned(),
        "external" => "http://example.com/jwks".to_owned(),
        "away" => match s.away.lock().unwrap().clone() {
            Some(to) => to,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        n => match n.parse::<u32>() {
            Ok(0) => format!("{}/jwks", s.base),
            Ok(k) => format!("{}/r/{}", s.base, k - 1),
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn start(signer: &Signer) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let srv = Arc::new(Srv {
        base,
        discovery_hits: AtomicUsize::new(0),
        jwks_hits: AtomicUsize::new(0),
        jwks: Mutex::new(signer.jwks_json()),
        cache_control: Mutex::new(None),
        mode: Mutex::new(Mode::Normal),
        jwks_uri: Mutex::new(None),
        issuer_override: Mutex::new(None),
        away: Mutex::new(None),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/r/{n}", get(redirect))
        .with_state(srv.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Running { srv, task }
}

fn fast() -> Config {
    Config {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        min_ttl: Duration::from_millis(300),
        max_ttl: Duration::from_secs(5),
        default_ttl: Duration::from_secs(60),
        stale_for: Duration::from_secs(60),
        retry_interval: Duration::from_millis(300),
        wait_bound: Duration::from_secs(3),
        refresher_tick: Duration::from_millis(50),
        ..Config::default()
    }
}

fn cache_for(r: &Running, config: Config) -> JwksCache {
    let c = JwksCache::new(config).unwrap();
    c.add_issuer(IssuerConfig {
        url: r.srv.base.clone(),
        allow_http: true,
        allow_foreign_jwks_host: false,
        public_addresses_only: false,
    })
    .unwrap();
    c
}

fn signer(kid: &str) -> Signer {
    Signer::generate(Alg::ES256, kid).unwrap()
}

#[tokio::test]
async fn fetches_once_then_serves_from_cache() {
    let s = signer("k1");
    let r = start(&s).await;
    let c = cache_for(&r, fast());
    assert!(!c.is_warm());
    let j = c.keys(&r.srv.base, Some("k1")).await.unwrap();
    assert!(j.contains_kid("k1"));
    assert!(c.is_warm());
    for _ in 0..5 {
        c.keys(&r.srv.base, Some("k1")).await.unwrap();
        c.keys(&r.srv.base, None).await.unwrap();
    }
    assert_eq!(r.hits(), (1, 1));
    assert_eq!(
        c.metrics(),
        Metrics {
            fetches: 1,
            failures: 0,
            unknown_kid_refetches: 0,
            stale_served: 0
        }
    );
}

#[tokio::test]
async fn unknown_issuer_is_never_fetched() {
    let s = signer("k1");
    let r = start(&s).await;
    let c = cache_for(&r, fast());
    let other = format!("{}/other", r.srv.base);
    let e = c.keys(&other, None).await.unwrap_err();
    assert_eq!(e, FetchError::UnknownIssuer);
    assert_eq!(r.hits(), (0, 0));
}

#[tokio::test]
async fn a_removed_issuer_is_fetched_no_more() {
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.cache_control.lock().unwrap() = Some("max-age=0".into());
    let c = cache_for(&r, fast());
    let _refresher = c.spawn_refresher();
    c.keys(&r.srv.base, None).await.unwrap();
    assert!(c.remove_issuer(&r.srv.base));
    assert!(!c.remove_issuer(&r.srv.base));
    assert!(c.issuers().is_empty());
    assert_eq!(
        c.keys(&r.srv.base, None).await.unwrap_err(),
        FetchError::UnknownIssuer
    );
    // The refresher would refetch every 0.27 s (0.9 of the 0.3 s minimum TTL).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = r.hits();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(r.hits(), seen);
}

#[tokio::test]
async fn cache_control_max_age_is_honoured_and_refresh_happens_off_the_request_path() {
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.cache_control.lock().unwrap() = Some("public, max-age=1".into());
    let c = cache_for(&r, fast());
    c.keys(&r.srv.base, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.keys(&r.srv.base, None).await.unwrap();
    assert_eq!(r.hits(), (1, 1), "still fresh at 0.6 s of a 1 s max-age");
    // Past 90% of the TTL, a request triggers a background refresh and returns at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.keys(&r.srv.base, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.hits(), (2, 2));
}

#[tokio::test]
async fn max_age_is_clamped() {
    let s = signer("k1");
    let r = start(&s).await;
    // max-age=0 and no-store clamp up to min_ttl (300 ms here), so no refetch within 150 ms.
    for cc in ["max-age=0", "no-store", "no-cache, max-age=100"] {
        *r.srv.cache_control.lock().unwrap() = Some(cc.into());
        let before = r.hits();
        let c = cache_for(&r, fast());
        c.keys(&r.srv.base, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.keys(&r.srv.base, None).await.unwrap();
        assert_eq!(r.hits().1 - before.1, 1, "{cc}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.keys(&r.srv.base, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(r.hits().1 - before.1, 2, "{cc}");
    }
    assert_eq!(cache_control_max_age("public, max-age=600"), Some(600));
    assert_eq!(cache_control_max_age("MAX-AGE=\"60\""), Some(60));
    assert_eq!(cache_control_max_age("no-store"), Some(0));
    assert_eq!(cache_control_max_age("private"), None);
    assert_eq!(cache_control_max_age("max-age=-1"), None);
    assert_eq!(
        cache_control_max_age("max-age=99999999999999999999999"),
        None
    );
    let d = Config::default();
    assert_eq!(
        (
            d.min_ttl.as_secs(),
            d.max_ttl.as_secs(),
            d.default_ttl.as_secs()
        ),
        (60, 86_400, 3600)
    );
    assert_eq!(
        (d.stale_for.as_secs(), d.unknown_kid_interval.as_secs()),
        (86_400, 30)
    );
    assert_eq!(
        (
            d.connect_timeout.as_secs(),
            d.request_timeout.as_secs(),
            d.max_response_bytes,
            d.max_redirects
        ),
        (2, 5, 1 << 20, 5)
    );
}

#[tokio::test]
async fn a_key_published_with_its_private_half_is_dropped_and_never_trusted_again() {
    let (k1, k2) = (signer("k1"), signer("k2"));
    let r = start(&k1).await;
    let c = cache_for(
        &r,
        Config {
            unknown_kid_interval: Duration::from_millis(200),
            ..fast()
        },
    );
    assert!(
        c.keys(&r.srv.base, Some("k1"))
            .await
            .unwrap()
            .contains_kid("k1")
    );
    // The issuer now publishes k1's private half (here a stand-in `d`; which bytes does not
    // matter, only that the set claims to carry it) under another kid, beside a new key.
    let mut leaked = k1.public_jwk();
    leaked["kid"] = serde_json::json!("renamed");
    leaked["d"] = serde_json::json!("AAAA");
    let set = serde_json::json!({"keys":[k2.public_jwk(), leaked]}).to_string();
    *r.srv.jwks.lock().unwrap() = set;
    // A token naming an unknown kid makes the cache refetch; the set is refused and k1 leaves
    // the cache at once, although its stale copy would otherwise serve for a day.
    let e = c.keys(&r.srv.base, Some("k3")).await.unwrap();
    assert!(!e.contains_kid("k1"), "{e:?}");
    assert!(
        !c.keys(&r.srv.base, Some("k1"))
            .await
            .unwrap()
            .contains_kid("k1")
    );
    // The issuer fixes its set but keeps publishing k1's public half: still not trusted.
    let set = serde_json::json!({"keys":[k2.public_jwk(), k1.public_jwk()]}).to_string();
    *r.srv.jwks.lock().unwrap() = set;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let j = c.keys(&r.srv.base, Some("k2")).await.unwrap();
    assert!(j.contains_kid("k2") && !j.contains_kid("k1"), "{j:?}");
    assert_eq!(j.len(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let s1 = signer("k1");
    let r = start(&s1).await;
    let c = cache_for(
        &r,
        Config {
            unknown_kid_interval: Duration::from_millis(700),
            ..fast()
        },
    );
    c.keys(&r.srv.base, Some("k1")).await.unwrap();
    // The issuer rotates to k2; a token with kid k2 triggers a refetch and gets the new keys.
    let s2 = signer("k2");
    r.set_jwks(&s2);
    let j = c.keys(&r.srv.base, Some("k2")).await.unwrap();
    assert!(j.contains_kid("k2"));
    assert_eq!(r.hits(), (2, 2));
    // A burst of unknown kids within the interval: no more fetches, cached keys returned.
    for i in 0..10 {
        let j = c
            .keys(&r.srv.base, Some(&format!("bogus-{i}")))
            .await
            .unwrap();
        assert!(j.contains_kid("k2"));
    }
    assert_eq!(r.hits(), (2, 2));
    assert_eq!(c.metrics().unknown_kid_refetches, 1);
    // After the interval, one more refetch is allowed.
    tokio::time::sleep(Duration::from_millis(750)).await;
    c.keys(&r.srv.base, Some("bogus")).await.unwrap();
    assert_eq!(r.hits(), (3, 3));
    assert_eq!(c.metrics().unknown_kid_refetches, 2);
}

#[tokio::test]
async fn stale_keys_serve_for_a_bounded_time_while_the_issuer_is_down() {
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.cache_control.lock().unwrap() = Some("max-age=0".into()); // TTL = min_ttl = 300 ms
    let c = cache_for(
        &r,
        Config {
            stale_for: Duration::from_millis(900),
            ..fast()
        },
    );
    c.keys(&r.srv.base, Some("k1")).await.unwrap();
    r.task.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired, issuer down: the stale copy serves (a background refresh fails meanwhile).
    let j = c.keys(&r.srv.base, Some("k1")).await.unwrap();
    assert!(j.contains_kid("k1"));
    assert!(c.metrics().stale_served >= 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.keys(&r.srv.base, Some("k1")).await.is_ok());
    assert!(c.metrics().failures >= 1);
    assert!(c.is_warm());
    // Past the stale bound: an error, IDPCommunicationError (SDKs retry).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let e = c.keys(&r.srv.base, Some("k1")).await.unwrap_err();
    assert!(matches!(e, FetchError::Unreachable(_)), "{e:?}");
    assert_eq!(e.aws_code(), "IDPCommunicationError");
    assert!(!c.is_warm());
}

#[tokio::test]
async fn cold_failure_backs_off_instead_of_hammering() {
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.mode.lock().unwrap() = Mode::Status(503);
    let c = cache_for(
        &r,
        Config {
            retry_interval: Duration::from_secs(30),
            ..fast()
        },
    );
    let e = c.keys(&r.srv.base, None).await.unwrap_err();
    assert_eq!(e, FetchError::Unreachable("server error"));
    for _ in 0..5 {
        assert_eq!(
            c.keys(&r.srv.base, None).await.unwrap_err(),
            FetchError::Unreachable("server error")
        );
    }
    assert_eq!(r.hits(), (1, 1));
    assert_eq!(c.metrics().failures, 1);
}

#[tokio::test]
async fn background_refresher_keeps_keys_fresh() {
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.cache_control.lock().unwrap() = Some("max-age=0".into()); // 300 ms
    let c = cache_for(&r, fast());
    let h = c.spawn_refresher();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, jwks_hits) = r.hits();
    assert!(jwks_hits >= 3, "{jwks_hits}");
    assert!(c.is_warm());
    // Requests never fetched: the refresher did.
    assert_eq!(c.metrics().stale_served, 0);
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        h.is_finished(),
        "the refresher stops when the cache is dropped"
    );
}

#[tokio::test]
async fn http_statuses_map_to_aws_codes() {
    let s = signer("k1");
    let r = start(&s).await;
    for (code, want, aws) in [
        (404, FetchError::Status(404), "InvalidIdentityToken"),
        (403, FetchError::Status(403), "InvalidIdentityToken"),
        (
            500,
            FetchError::Unreachable("server error"),
            "IDPCommunicationError",
        ),
        (
            429,
            FetchError::Unreachable("server error"),
            "IDPCommunicationError",
        ),
    ] {
        *r.srv.mode.lock().unwrap() = Mode::Status(code);
        let c = cache_for(&r, fast());
        let e = c.keys(&r.srv.base, None).await.unwrap_err();
        assert_eq!(e, want);
        assert_eq!(e.aws_code(), aws);
        assert_eq!(e.http_status(), 400);
    }
    *r.srv.mode.lock().unwrap() = Mode::Normal;
    *r.srv.jwks.lock().unwrap() = "not json".into();
    let c = cache_for(&r, fast());
    let e = c.keys(&r.srv.base, None).await.unwrap_err();
    assert_eq!(
        e,
        FetchError::Jwks(keyless_jwt::JwksError::Malformed("invalid JSON".into()))
    );
    assert!(
        e.to_string()
            .starts_with("Couldn't retrieve verification key from your identity provider")
    );
}

#[tokio::test]
async fn responses_are_capped_at_1_mib() {
    let s = signer("k1");
    let r = start(&s).await;
    for mode in [Mode::HugeWithLength, Mode::HugeStreamed] {
        *r.srv.mode.lock().unwrap() = mode;
        let c = cache_for(&r, fast());
        let e = c.keys(&r.srv.base, None).await.unwrap_err();
        assert_eq!(e, FetchError::TooLarge, "{mode:?}");
        assert_eq!(e.aws_code(), "InvalidIdentityToken");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections and never writes a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let c = JwksCache::new(fast()).unwrap();
    c.add_issuer(IssuerConfig {
        url: base.clone(),
        allow_http: true,
        allow_foreign_jwks_host: false,
        public_addresses_only: false,
    })
    .unwrap();
    let t = std::time::Instant::now();
    let e = c.keys(&base, None).await.unwrap_err();
    assert_eq!(e, FetchError::Unreachable("timed out"));
    assert_eq!(e.aws_code(), "IDPCommunicationError");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // A slow JWKS body also times out.
    let s = signer("k1");
    let r = start(&s).await;
    *r.srv.mode.lock().unwrap() = Mode::Slow;
    let c = cache_for(&r, fast());
    assert_eq!(
        c.keys(&r.srv.base, None).await.unwrap_err(),
        FetchError::Unreachable("timed out")
    );
    hold.abort();
}

#[tokio::test]
async fn redirect_rules() {
    let s = signer("k1");
    let r = start(&s).await;
    let cases = [
        ("r/4", None),                       // exactly 5 redirects
        ("r/5", Some(FetchError::Redirect)), // 6 redirects
        ("r/ftp", Some(FetchError::Redirect)),
        ("r/external", Some(FetchError::Redirect)),
    ];
    for (path, want) in cases {
        *r.srv.jwks_uri.lock().unwrap() = Some(format!("{}/{path}", r.srv.base));
        let c = cache_for(&r, fast());
        match (c.keys(&r.srv.base, None).await, want) {
            (Ok(j), None) => assert!(j.contains_kid("k1")),
            (Err(e), Some(w)) => assert_eq!(e, w, "{path}"),
            (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn redirects_never_leave_the_host_asked() {
    // `jwks_uri` must be on the issuer's host; a redirect from there to another host (an open
    // redirect on the issuer's site, say) must not bring keys from elsewhere.
    let s = signer("k1");
    let r = start(&s).await;
    let attacker = signer("evil");
    let other = start(&attacker).await;
    let port = |base: &str| base.rsplit(':').next().unwrap().to_owned();
    for target in [
        format!("{}/jwks", other.srv.base),
        // Same port, another name for the host: still another host.
        format!("http://localhost:{}/jwks", port(&r.srv.base)),
    ] {
        *r.srv.away.lock().unwrap() = Some(target.clone());
        *r.srv.jwks_uri.lock().unwrap() = Some(format!("{}/r/away", r.srv.base));
        let c = cache_for(&r, fast());
        assert_eq!(
            c.keys(&r.srv.base, None).await.unwrap_err(),
            FetchError::Redirect,
            "{target}"
        );
    }
    assert_eq!(other.hits(), (0, 0), "the other host was never asked");
    // The discovery document is not fetched from elsewhere either.
    *other.srv.issuer_override.lock().unwrap() = Some(r.srv.base.clone());
    let c = JwksCache::new(fast()).unwrap();
    let issuer = format!("{}/r/away", r.srv.base);
    *r.srv.away.lock().unwrap() = Some(format!(
        "{}/.well-known/openid-configuration",
        other.srv.base
    ));
    c.add_issuer(IssuerConfig {
        url: issuer.clone(),
        allow_http: true,
        allow_foreign_jwks_host: false,
        public_addresses_only: false,
    })
    .unwrap();
    assert!(c.keys(&issuer, None).await.is_err());
    assert_eq!(other.hits(), (0, 0));
    // A redirect on the same host is still followed.
    *r.srv.away.lock().unwrap() = Some(format!("{}/jwks", r.srv.base));
    *r.srv.jwks_uri.lock().unwrap() = Some(format!("{}/r/away", r.srv.base));
    let c = cache_for(&r, fast());
    assert!(c.keys(&r.srv.base, None).await.unwrap().contains_kid("k1"));
}

#[tokio::test]
async fn discovery_document_rules() {
    let s = signer("k1");
    let r = start(&s).await;
    let check = |jwks_uri: Option<String>, issuer: Option<String>, want: FetchError| {
        *r.srv.jwks_uri.lock().unwrap() = jwks_uri;
        *r.srv.issuer_override.lock().unwrap() = issuer;
        let c = cache_for(&r, fast());
        let base = r.srv.base.clone();
        async move {
            assert_eq!(c.keys(&base, None).await.unwrap_err(), want);
        }
    };
    let port = r.srv.base.rsplit(':').next().unwrap().to_owned();
    check(
        None,
        Some("https://evil.example".into()),
        FetchError::Discovery("its issuer differs from the configured issuer"),
    )
    .await;
    // localhost is another host than 127.0.0.1: refused unless allow_foreign_jwks_host.
    check(
        Some(format!("http://localhost:{port}/jwks")),
        None,
        FetchError::Discovery("jwks_uri must be on the issuer's host"),
    )
    .await;
    check(
        Some("ftp://127.0.0.1/jwks".into()),
        None,
        FetchError::Discovery("jwks_uri must be https"),
    )
    .await;
    check(
        Some("http://example.com/jwks".into()),
        None,
        FetchError::Discovery("jwks_uri must be https"),
    )
    .await;
    check(
        Some("not a url".into()),
        None,
        FetchError::Discovery("jwks_uri is not a URL"),
    )
    .await;
    // With allow_foreign_jwks_host, localhost (loopback) is accepted.
    *r.srv.jwks_uri.lock().unwrap() = Some(format!("http://localhost:{port}/jwks"));
    *r.srv.issuer_override.lock().unwrap() = None;
    let c = JwksCache::new(fast()).unwrap();
    c.add_issuer(IssuerConfig {
        url: r.srv.base.clone(),
        allow_http: true,
        allow_foreign_jwks_host: true,
        public_addresses_only: false,
    })
    .unwrap();
    assert!(c.keys(&r.srv.base, None).await.unwrap().contains_kid("k1"));
}

#[tokio::test]
async fn issuer_configuration_rules() {
    let c = JwksCache::new(Config::default()).unwrap();
    let add = |url: &str, allow_http: bool| {
        c.add_issuer(IssuerConfig {
            url: url.into(),
            allow_http,
            allow_foreign_jwks_host: false,
            public_addresses_only: false,
        })
    };
    add("https://token.actions.githubusercontent.com", false).unwrap();
    add("https://gitlab.example.com/oidc", false).unwrap();
    add("http://127.0.0.1:8080", true).unwrap();
    add("http://127.9.9.9/dev/oidc", true).unwrap();
    add("http://[::1]:9000", true).unwrap();
    add("http://localhost:9000", true).unwrap();
    let url = |u: &str| u.to_owned();
    assert_eq!(
        add("http://127.0.0.1:8080", false),
        Err(ConfigError::NotHttps {
            url: url("http://127.0.0.1:8080")
        })
    );
    assert_eq!(
        add("http://example.com", true),
        Err(ConfigError::HttpNotLoopback {
            url: url("http://example.com")
        })
    );
    assert_eq!(
        add("http://10.0.0.1", true),
        Err(ConfigError::HttpNotLoopback {
            url: url("http://10.0.0.1")
        })
    );
    assert_eq!(
        add("http://127.0.0.1.nip.io", true),
        Err(ConfigError::HttpNotLoopback {
            url: url("http://127.0.0.1.nip.io")
        })
    );
    assert_eq!(
        add("http://localhost.example.com", true),
        Err(ConfigError::HttpNotLoopback {
            url: url("http://localhost.example.com")
        })
    );
    assert_eq!(
        add("ftp://127.0.0.1", true),
        Err(ConfigError::NotHttps {
            url: url("ftp://127.0.0.1")
        })
    );
    assert_eq!(
        add("file:///etc/passwd", true),
        Err(ConfigError::InvalidUrl {
            url: url("file:///etc/passwd")
        })
    );
    assert_eq!(
        add("not a url", false),
        Err(ConfigError::InvalidUrl {
            url: url("not a url")
        })
    );
    assert_eq!(
        add("https://a.example/?x=1", false),
        Err(ConfigError::ExtraParts {
            url: url("https://a.example/?x=1")
        })
    );
    assert_eq!(
        add("https://a.example/#f", false),
        Err(ConfigError::ExtraParts {
            url: url("https://a.example/#f")
        })
    );
    assert_eq!(
        add("https://user:pw@a.example", false),
        Err(ConfigError::ExtraParts {
            url: url("https://user:pw@a.example")
        })
    );
    assert_eq!(c.issuers().len(), 6);
    assert!(
        is_loopback_host("127.0.0.1") && is_loopback_host("[::1]") && is_loopback_host("LOCALHOST")
    );
    assert!(
        !is_loopback_host("0.0.0.0")
            && !is_loopback_host("[::]")
            && !is_loopback_host("169.254.169.254")
    );
}

#[tokio::test]
async fn concurrent_cold_requests_share_one_fetch() {
    let s = signer("k1");
    let r = start(&s).await;
    let c = cache_for(&r, fast());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        let base = r.srv.base.clone();
        tasks.push(tokio::spawn(async move {
            c.keys(&base, Some("k1")).await.map(|j| j.len())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    assert_eq!(r.hits(), (1, 1));
}

#[tokio::test]
async fn localhost_issuer_resolving_to_loopback_is_fetched() {
    let s = signer("k1");
    let r = start(&s).await;
    let port = r.srv.base.rsplit(':').next().unwrap().to_owned();
    let issuer = format!("http://localhost:{port}");
    *r.srv.issuer_override.lock().unwrap() = Some(issuer.clone());
    *r.srv.jwks_uri.lock().unwrap() = Some(format!("{issuer}/jwks"));
    let c = JwksCache::new(fast()).unwrap();
    c.add_issuer(IssuerConfig {
        url: issuer.clone(),
        allow_http: true,
        allow_foreign_jwks_host: false,
        public_addresses_only: false,
    })
    .unwrap();
    assert!(
        c.keys(&issuer, Some("k1"))
            .await
            .unwrap()
            .contains_kid("k1")
    );
    assert_eq!(r.hits(), (1, 1));
}

/// An issuer an account's IAM administrator named may reach only public addresses: an inward
/// address literal or a name resolving inward is refused before any connection is made.
#[tokio::test]
async fn a_public_only_issuer_never_connects_inward() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = JwksCache::new(fast()).unwrap();
    for url in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}/oidc"),
        format!("https://[::ffff:127.0.0.1]:{port}"),
    ] {
        c.add_issuer(IssuerConfig {
            public_addresses_only: true,
            ..IssuerConfig::new(url.clone())
        })
        .unwrap();
        let e = c.keys(&url, None).await.unwrap_err();
        assert_eq!(e, FetchError::NotPublic, "{url}");
        assert_eq!(e.aws_code(), "InvalidIdentityToken");
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was made: {other:?}"),
    }
    // The operator's own issuer at the same address is tried (and fails its TLS handshake).
    let url = format!("https://127.0.0.1:{port}");
    c.add_issuer(IssuerConfig::new(url.clone())).unwrap();
    assert!(c.keys(&url, None).await.is_err());
    assert!(
        listener.accept().is_ok(),
        "the operator's issuer was not tried"
    );
}

#[test]
fn public_addresses_are_the_routable_ones() {
    use keyless_oidc::is_public_address;
    for ip in [
        "1.1.1.1",
        "140.82.112.3",
        "198.20.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        assert!(is_public_address(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.0.8",
        "198.18.0.1",
        "198.19.255.255",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a00:1",
        "2001:db8::1",
    ] {
        assert!(!is_public_address(ip.parse().unwrap()), "{ip}");
    }
}
