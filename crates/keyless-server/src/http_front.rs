//! Accepting and serving HTTP connections, within limits a slow or hostile client cannot exhaust.
//!
//! `axum::serve` has none: a client that sends half a request head, or announces a body it never
//! sends, holds its connection and a file descriptor for ever, and a thousand such connections
//! stop the server from accepting anyone (measured: 1100 of them under the common 1024 open-files
//! limit left `/healthz` unanswered for as long as they stayed). Here:
//!
//! - at most `max_connections` are open at once. Past that, new connections wait in the kernel's
//!   listen backlog instead of being accepted, so they cost no descriptor;
//! - at most `max_connections_per_source` come from one IP address (one /64 for IPv6). Further
//!   ones are closed as soon as they are accepted;
//! - each request head must arrive complete within `header_read_timeout_seconds`, or the
//!   connection is closed. hyper's header timer also starts when a kept-alive connection goes
//!   idle, so this doubles as the idle timeout;
//! - each request (its body and its answer) must complete within `request_timeout_seconds`.
//!   Otherwise it is answered `408 RequestTimeout` and the connection is closed. A client that
//!   does not take its answer within the same time (a write stalls that long) is cut off;
//! - a request head may be at most [`MAX_HEADER_BYTES`].
//!
//! Only HTTP/1.1 is served: the AWS SDKs and CLIs speak HTTP/1.1 to STS and IAM.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use ipnet::IpNet;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::Service as _;
use tracing::{debug, warn};

use crate::metrics::HttpMetrics;

/// The largest request head accepted (request line and headers). A SigV4 request with a
/// session token needs under 8 KiB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The longest a shutdown waits for connections still open (a half-sent head, a slow body);
/// the requests in flight of a healthy server finish in milliseconds. At most the request
/// timeout, when that is shorter.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Descriptors kept free for everything that is not a client connection: the store, the audit
/// files, the key ring, JWKS fetches.
const RESERVED_FDS: u64 = 256;

/// The `[http]` table of the config file (every key optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Connections open at once; more wait in the listen backlog (default 10000, 1-1000000).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections open at once from one IP address, or IPv6 /64; more are closed (default 1000). Behind a
    /// proxy that is not transparent every connection comes from the proxy's address.
    #[serde(default = "default_max_connections_per_source")]
    pub max_connections_per_source: u32,
    /// Seconds a client has to send a complete request head, and a kept-alive connection may
    /// stay idle (default 20, 1-3600).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: u64,
    /// Seconds a request may take from its head to its answer, body included (default 30,
    /// 1-3600).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` and `X-Forwarded-Proto`
    /// headers are believed, and to which `max_connections_per_source` does not apply (default:
    /// none; every request's source is its TCP peer).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

fn default_max_connections() -> u32 {
    10_000
}
fn default_max_connections_per_source() -> u32 {
    1_000
}
fn default_header_read_timeout() -> u64 {
    20
}
fn default_request_timeout() -> u64 {
    30
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_connections: default_max_connections(),
            max_connections_per_source: default_max_connections_per_source(),
            header_read_timeout_seconds: default_header_read_timeout(),
            request_timeout_seconds: default_request_timeout(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Most `trusted_proxies` entries accepted.
const MAX_TRUSTED_PROXIES: usize = 1000;

/// Hops of `X-Forwarded-For` looked at, from the right; past them the last one looked at is
/// taken (a longer chain of trusted proxies is a misconfiguration, or an attack).
const MAX_FORWARDED_HOPS: usize = 32;

/// Parses a `trusted_proxies` entry: a CIDR block, or one address.
fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            format!("[http] trusted_proxies: {entry:?} is neither an IP address nor a CIDR block like \"10.0.0.0/8\"")
        })
}

/// Who sent a request: the client's address, and whether it reached the first proxy over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's address.
    pub client: IpAddr,
    /// `X-Forwarded-Proto: https` from a trusted proxy.
    pub https: bool,
}

/// The client of a request that came from `peer`. When `peer` is one of `trusted`, the client is
/// the rightmost `X-Forwarded-For` address that is not itself trusted: each proxy appends the
/// address it received from, so everything left of the last untrusted hop is whatever the client
/// wrote. A value that is not an address ends the walk at the hop to its right. From any other
/// peer the headers are ignored.
pub fn forwarded(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> Forwarded {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Forwarded {
            client: peer,
            https: false,
        };
    }
    let mut client = peer;
    // Split as bytes: a value is the client's line with the proxy's hop appended, and a
    // non-ASCII byte the client wrote must not make the proxy's hop unreadable too.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','))
        .take(MAX_FORWARDED_HOPS);
    for hop in hops {
        let Some(ip) = std::str::from_utf8(hop).ok().and_then(hop_address) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    let https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Forwarded { client, https }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, or either with a port.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
        .map(|ip: IpAddr| ip.to_canonical())
}

/// The network a limit per source counts `ip` in: an IPv4 address (IPv4-mapped IPv6 included)
/// is itself, an IPv6 address is its /64. A /64 is the smallest block a network is given, so
/// whoever holds one address can send from 2^64 of them.
pub fn source_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !(u128::from(u64::MAX)),
        )),
        v4 => v4,
    }
}

impl HttpSettings {
    /// Checks the bounds; the message names the key and the allowed range.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err("[http] max_connections must be 1-1000000".into());
        }
        if !(1..=1_000_000).contains(&self.max_connections_per_source) {
            return Err("[http] max_connections_per_source must be 1-1000000".into());
        }
        if !(1..=3600).contains(&self.header_read_timeout_seconds) {
            return Err("[http] header_read_timeout_seconds must be 1-3600".into());
        }
        if !(1..=3600).contains(&self.request_timeout_seconds) {
            return Err("[http] request_timeout_seconds must be 1-3600".into());
        }
        if self.trusted_proxies.len() > MAX_TRUSTED_PROXIES {
            return Err(format!(
                "[http] trusted_proxies has more than {MAX_TRUSTED_PROXIES} entries"
            ));
        }
        self.proxies().map(|_| ())
    }

    /// The parsed `trusted_proxies`.
    pub fn proxies(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|e| parse_proxy(e))
            .collect()
    }
}

/// Raises the soft open-files limit to the hard one, as systemd expects a service that needs
/// many descriptors to do, and returns how many connections fit under it with
/// [`RESERVED_FDS`] kept free, at most `wanted`. The message, if any, says what was cut and how
/// to lift the limit.
pub fn fit_to_fd_limit(wanted: u32) -> (u32, Option<String>) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    let Some(soft) = limit.current else {
        return (wanted, None);
    };
    let fit = soft.saturating_sub(RESERVED_FDS).max(1);
    if u64::from(wanted) <= fit {
        return (wanted, None);
    }
    let cut = u32::try_from(fit).unwrap_or(wanted);
    (
        cut,
        Some(format!(
            "[http] max_connections is {wanted}, but the open-files limit is {soft}: serving at most {cut} connections at once; raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) to serve more"
        )),
    )
}

/// Counts open connections per source address.
struct Sources {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection's place in [`Sources`]; gives it back when dropped.
struct SourceSlot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = source_network(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self
            .sources
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The answer to a request that ran out of time: the AWS query protocol's error XML on `/`
/// (SDKs retry `RequestTimeout`), the JSON error of the `/v1` APIs elsewhere. The connection is
/// closed after it, since the rest of the request body may still be on its way.
fn timed_out(query_api: bool, limit: Duration) -> Response {
    let message = format!(
        "The request did not complete within {} seconds; send the whole request promptly.",
        limit.as_secs()
    );
    let request_id = crate::xml::request_id();
    let mut response = if query_api {
        let err = keyless_core::error::ApiError::new("RequestTimeout", 408, message);
        (
            StatusCode::REQUEST_TIMEOUT,
            [
                (header::CONTENT_TYPE, "text/xml"),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    request_id.as_str(),
                ),
            ],
            crate::xml::error(&err, crate::xml::STS_NS, &request_id),
        )
            .into_response()
    } else {
        (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({
                "error": { "code": "RequestTimeout", "message": message },
                "requestId": request_id,
            })),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether a request arrived over TLS (`aws:SecureTransport`), as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// True for HTTPS.
    pub secure: bool,
}

/// A connection whose writes must drain within a limit. A client that sends a request and
/// never reads the answer (or pipelines requests and reads none) stalls the server's write
/// once the socket buffers fill; no other timer runs then, so the connection would hold its
/// slot for ever. The limit runs from the first write that cannot proceed until a flush
/// completes, so reading a byte now and then does not reset it.
struct WriteDeadline<I> {
    io: I,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteDeadline<I> {
    fn new(io: I, limit: Duration) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    /// Called when a write or flush is pending: starts the clock, or fails once it ran out.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take the answer in time",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.check(cx).map(Err),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.check(cx).map(Err),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.check(cx).map(Err),
            Poll::Ready(Ok(())) => {
                self.stalled = None;
                Poll::Ready(Ok(()))
            }
            failed => failed,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.check(cx).map(Err),
            done => done,
        }
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    /// The trusted proxies, when `peer` is one (its requests' forwarding headers are read).
    proxies: Option<Arc<[IpNet]>>,
    app: Router,
    http: http1::Builder,
    watcher: Watcher,
    request_timeout: Duration,
    metrics: HttpMetrics,
    in_flight: Arc<InFlight>,
}

/// A request body that ends in an error once the request is answered without its handler (a
/// timeout) or its client is gone: the handler, which runs on, must not wait for the rest of a
/// body that will never come, nor keep the connection open for it.
struct CancellableBody {
    inner: Incoming,
    /// Resolves (its sender dropped) when the body is no longer wanted; `None` once it has.
    cancelled: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl hyper::body::Body for CancellableBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if let Some(cancelled) = self.cancelled.as_mut()
            && Pin::new(cancelled).poll(cx).is_ready()
        {
            self.cancelled = None;
            return Poll::Ready(Some(Err(
                "the request was answered before its body arrived".into(),
            )));
        }
        if self.cancelled.is_none() && !self.inner.is_end_stream() {
            return Poll::Ready(Some(Err(
                "the request was answered before its body arrived".into(),
            )));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Request handlers still running, which a shutdown waits for: a handler outlives its
/// connection when the client hangs up or the request times out.
#[derive(Debug, Default)]
struct InFlight {
    running: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

/// One running handler; its end is counted when this drops.
struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightGuard(Arc::clone(self))
    }

    /// Returns once no handler runs.
    async fn idle(&self) {
        loop {
            let done = self.done.notified();
            if self.running.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self
            .0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.done.notify_waiters();
        }
    }
}

impl Connection {
    /// Serves HTTP/1.1 on `io` until the client or a timeout ends it, or a shutdown does.
    async fn serve<I>(self, io: I, secure: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (peer, app, request_timeout) = (self.peer, self.app.clone(), self.request_timeout);
        let in_flight = Arc::clone(&self.in_flight);
        let proxies = self.proxies.clone();
        let request_timeouts = self.metrics.request_timeouts.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
            let mut request = request.map(|inner| CancellableBody {
                inner,
                cancelled: Some(cancelled),
            });
            let (source, secure) = match &proxies {
                None => (peer, secure),
                Some(proxies) => {
                    let f = forwarded(peer.ip(), request.headers(), proxies);
                    // The client's port is not forwarded; 0 says so.
                    let port = if f.client == peer.ip() {
                        peer.port()
                    } else {
                        0
                    };
                    (SocketAddr::new(f.client, port), secure || f.https)
                }
            };
            request.extensions_mut().insert(ConnectInfo(source));
            request.extensions_mut().insert(Transport { secure });
            let query_api = request.uri().path() == "/";
            // The handler runs in its own task, to its end: hyper drops a request's future
            // when the client closes mid-request, or this one when it times out, and a
            // handler dropped between a store write and its audit record left the change
            // unaudited. The shutdown waits for these tasks ([`InFlight`]).
            let answer = app.clone().call(request);
            let guard = in_flight.enter();
            let handler = tokio::spawn(async move {
                let _in_flight = guard;
                answer.await
            });
            let request_timeouts = request_timeouts.clone();
            async move {
                // Dropped with this future (the answer given, or the client gone): a handler
                // still reading the body stops there, before it has done anything.
                let _cancel = cancel;
                match tokio::time::timeout(request_timeout, handler).await {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(e)) => {
                        warn!(error = %e, "a request handler failed");
                        Ok::<_, Infallible>(StatusCode::INTERNAL_SERVER_ERROR.into_response())
                    }
                    Err(_) => {
                        request_timeouts.inc();
                        Ok(timed_out(query_api, request_timeout))
                    }
                }
            }
        });
        let connection = self
            .watcher
            .watch(self.http.serve_connection(TokioIo::new(io), service));
        if let Err(e) = connection.await {
            if e.is_timeout() {
                self.metrics.header_timeouts.inc();
            } else if std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                self.metrics.write_timeouts.inc();
            }
            debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Serves `app` on `listener` within `settings` until `shutdown` completes, then stops
/// accepting, closes idle connections, lets the requests in flight finish, and returns: at once
/// when they have, otherwise after [`SHUTDOWN_GRACE`] (connections still open then are left to
/// end with the process).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    tls: Option<Arc<crate::tls::Certificates>>,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let (max_connections, cut) = fit_to_fd_limit(settings.max_connections);
    if let Some(message) = cut {
        warn!("{message}");
    }
    let slots = Arc::new(Semaphore::new(max_connections as usize));
    let sources = Arc::new(Sources {
        max: settings.max_connections_per_source,
        open: Mutex::new(HashMap::new()),
    });
    let proxies: Arc<[IpNet]> = match settings.proxies() {
        Ok(proxies) => proxies.into(),
        Err(e) => {
            // Checked when the config was loaded; trusting nobody is the safe way to fail.
            warn!("{e}; trusting no proxy");
            Arc::from([])
        }
    };
    let request_timeout = Duration::from_secs(settings.request_timeout_seconds);
    let handshake_timeout = Duration::from_secs(settings.header_read_timeout_seconds);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_seconds))
        .max_header_size(MAX_HEADER_BYTES);
    let graceful = GracefulShutdown::new();
    let in_flight = Arc::new(InFlight::default());
    let mut last_accept_error: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then accept: while every slot is taken the next connection stays
        // in the kernel's backlog.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait a
                    // little rather than spin, and say so at most once a second.
                    if last_accept_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        warn!(error = %e, "cannot accept a connection");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A dual-stack listener (`[::]`) shows an IPv4 client as `::ffff:a.b.c.d`; everything
        // downstream (policies' aws:SourceIp, trusted_proxies, the audit) means `a.b.c.d`.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        // A trusted proxy carries many clients' connections: the per-source cap is not for it.
        let trusted = proxies.iter().any(|net| net.contains(&peer.ip()));
        let source = if trusted {
            None
        } else {
            match sources.enter(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    metrics.refused_per_source.inc();
                    debug!(%peer, "closing a connection over max_connections_per_source");
                    continue;
                }
            }
        };
        // Answers go out as soon as they are written: an SDK waiting on a delayed ACK behind
        // Nagle's algorithm would add tens of milliseconds to a call.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        let connection = Connection {
            peer,
            proxies: trusted.then(|| Arc::clone(&proxies)),
            app: app.clone(),
            http: http.clone(),
            watcher: graceful.watcher(),
            request_timeout,
            metrics: metrics.clone(),
            in_flight: Arc::clone(&in_flight),
        };
        let tls = tls.as_ref().map(|certs| TlsAcceptor::from(certs.current()));
        let metrics = metrics.clone();
        metrics.connections.inc();
        let stream = WriteDeadline::new(stream, request_timeout);
        tokio::spawn(async move {
            match tls {
                None => connection.serve(stream, false).await,
                Some(acceptor) => {
                    // The handshake is bounded like a request head: a client that opens a
                    // connection and says nothing holds it no longer than that.
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection.serve(stream, true).await,
                        Ok(Err(e)) => {
                            metrics.tls_handshake_failures.inc();
                            debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics.tls_handshake_failures.inc();
                            debug!(%peer, "TLS handshake did not complete in time");
                        }
                    }
                }
            }
            metrics.connections.dec();
            drop(source);
            drop(permit);
        });
    }
    drop(listener);
    let grace = SHUTDOWN_GRACE.min(request_timeout);
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            open = metrics.connections.get(),
            "connections still open {} s after the shutdown began (slow or stalled clients); stopping without them",
            grace.as_secs()
        );
    }
    // Handlers whose client left still finish (and write their audit records) first.
    if tokio::time::timeout_at(deadline, in_flight.idle())
        .await
        .is_err()
    {
        warn!(
            running = in_flight.running.load(std::sync::atomic::Ordering::SeqCst),
            "request handlers still running {} s after the shutdown began; stopping without them",
            grace.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    struct Running {
        addr: SocketAddr,
        metrics: HttpMetrics,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            tokio::time::timeout(Duration::from_secs(20), self.task)
                .await
                .expect("the server stops")
                .expect("the server task does not panic");
        }
    }

    /// Handlers of `/slow` that ran to their end.
    static SLOW_DONE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn app() -> Router {
        Router::new()
            .route(
                "/",
                post(
                    |ConnectInfo(peer): ConnectInfo<SocketAddr>, body: bytes::Bytes| async move {
                        format!("{} {}", peer.ip(), body.len())
                    },
                ),
            )
            .route("/v1/echo", post(|body: bytes::Bytes| async move { body }))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/big", get(|| async { vec![b'x'; 64 << 20] }))
            .route(
                "/slow",
                post(|| async {
                    // A store write, then its audit record: both or neither.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    SLOW_DONE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    "done"
                }),
            )
            .route(
                "/source",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route(
                "/transport",
                get(|t: Option<axum::Extension<Transport>>| async move {
                    format!("secure={}", t.is_some_and(|t| t.secure))
                }),
            )
    }

    async fn start(settings: HttpSettings) -> Running {
        start_with(settings, None).await
    }

    async fn start_with(
        settings: HttpSettings,
        tls: Option<Arc<crate::tls::Certificates>>,
    ) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = HttpMetrics::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            app(),
            settings,
            tls,
            metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        Running {
            addr,
            metrics,
            stop: Some(stop),
            task,
        }
    }

    fn small(max: u32, per_source: u32, header: u64, request: u64) -> HttpSettings {
        HttpSettings {
            max_connections: max,
            max_connections_per_source: per_source,
            header_read_timeout_seconds: header,
            request_timeout_seconds: request,
            trusted_proxies: Vec::new(),
        }
    }

    /// Everything the server sends until it closes the connection (blocking, on a thread).
    async fn read_to_close(mut s: TcpStream, wait: Duration) -> (String, Duration) {
        tokio::task::spawn_blocking(move || {
            s.set_read_timeout(Some(wait)).unwrap();
            let started = Instant::now();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            (
                String::from_utf8_lossy(&out).into_owned(),
                started.elapsed(),
            )
        })
        .await
        .unwrap()
    }

    /// Waits up to 10 s for `done`: a connection's counters move as its task ends, which may be
    /// just after the client saw the close.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).unwrap()
    }

    fn get_healthz(addr: SocketAddr) -> String {
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_half_sent_request_head_is_cut_off_after_the_header_timeout() {
        let server = start(small(100, 100, 1, 30)).await;
        let mut s = connect(server.addr);
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
        let (answer, waited) = read_to_close(s, Duration::from_secs(15)).await;
        assert!(answer.is_empty(), "no answer to half a head: {answer:?}");
        assert!(
            waited >= Duration::from_millis(700) && waited < Duration::from_secs(10),
            "closed after {waited:?}"
        );
        eventually("the header timeout is counted", || {
            server.metrics.header_timeouts.get() == 1
        })
        .await;
        assert!(get_healthz(server.addr).starts_with("HTTP/1.1 200"));
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
        let server = start(small(100, 100, 1, 30)).await;
        let mut s = connect(server.addr);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (answer, waited) = read_to_close(s, Duration::from_secs(15)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(
            answer.ends_with("ok\n"),
            "one answer, then the close: {answer:?}"
        );
        assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_never_comes_is_answered_408_in_the_api_s_own_format() {
        let server = start(small(100, 100, 20, 1)).await;
        for (path, want) in [
            ("/", "<Code>RequestTimeout</Code>"),
            ("/v1/echo", "\"code\":\"RequestTimeout\""),
        ] {
            let mut s = connect(server.addr);
            s.write_all(
                format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
                    .as_bytes(),
            )
            .unwrap();
            let (answer, waited) = read_to_close(s, Duration::from_secs(15)).await;
            assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
            assert!(answer.contains(want), "{path}: {answer:?}");
            assert!(answer.to_ascii_lowercase().contains("connection: close"));
            assert!(waited < Duration::from_secs(10), "{path}: after {waited:?}");
        }
        assert_eq!(server.metrics.request_timeouts.get(), 2);
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_its_answer_is_cut_off_after_the_request_timeout() {
        // The answer fills the socket buffers and the write stalls. Neither the header timer
        // (no head is being read) nor the handler's timeout (the handler is done) ran then, so
        // the connection held its slot for ever. Pipelined small answers stall the same way.
        let server = start(small(100, 100, 1, 1)).await;
        let mut s = connect(server.addr);
        s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        eventually("the connection is accepted", || {
            server.metrics.connections.get() == 1
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.metrics.connections.get() != 0 {
            assert!(
                Instant::now() < deadline,
                "a client that reads nothing still holds its connection"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(server.metrics.write_timeouts.get(), 1);
        drop(s);
        // A client that reads its answer, slowly but steadily, gets all of it.
        let mut s = connect(server.addr);
        s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (answer, _) = read_to_close(s, Duration::from_secs(20)).await;
        assert!(answer.len() > 64 << 20, "{}", answer.len());
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_runs_to_its_end_when_its_client_goes_away_or_the_server_stops() {
        // hyper drops a request's handler when the client closes its side mid-request. A
        // handler that had written an IAM change was then dropped before its audit record:
        // a caller could make changes the audit trail never saw by hanging up.
        use std::sync::atomic::Ordering;
        let server = start(small(100, 100, 30, 30)).await;
        let before = SLOW_DONE.load(Ordering::SeqCst);
        let mut s = connect(server.addr);
        s.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        drop(s);
        eventually("the handler ran to its end", || {
            SLOW_DONE.load(Ordering::SeqCst) == before + 1
        })
        .await;
        // A shutdown waits for such a handler too (within its grace).
        let mut s = connect(server.addr);
        s.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.stop().await;
        assert_eq!(
            SLOW_DONE.load(Ordering::SeqCst),
            before + 2,
            "the server stopped before the handler ended"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_connections_a_new_one_waits_until_a_slot_frees() {
        let server = start(small(2, 100, 30, 30)).await;
        let held: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
        // Both slots are taken once both connections are accepted.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.metrics.connections.get() < 2 {
            assert!(
                Instant::now() < deadline,
                "the two connections are accepted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut third = connect(server.addr);
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut probe = third.try_clone().unwrap();
        let waiting = tokio::task::spawn_blocking(move || {
            probe
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut byte = [0u8; 1];
            probe.read(&mut byte)
        })
        .await
        .unwrap();
        assert!(waiting.is_err(), "not served while both slots are taken");
        drop(held);
        let (answer, _) = read_to_close(third, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_max_connections_per_source_a_new_one_is_closed() {
        let server = start(small(100, 2, 30, 30)).await;
        let held: Vec<TcpStream> = (0..2).map(|_| connect(server.addr)).collect();
        let mut third = connect(server.addr);
        let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let (answer, waited) = read_to_close(third, Duration::from_secs(10)).await;
        assert!(answer.is_empty(), "closed unanswered: {answer:?}");
        assert!(waited < Duration::from_secs(5));
        assert_eq!(server.metrics.refused_per_source.get(), 1);
        drop(held);
        eventually("the slots come back when the connections close", || {
            server.metrics.connections.get() == 0
        })
        .await;
        assert!(get_healthz(server.addr).starts_with("HTTP/1.1 200"));
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handlers_see_the_peer_address_and_oversized_heads_are_refused() {
        let server = start(small(100, 100, 30, 30)).await;
        let mut s = connect(server.addr);
        s.write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
        )
        .unwrap();
        let (answer, _) = read_to_close(s, Duration::from_secs(10)).await;
        assert!(answer.ends_with("127.0.0.1 3"), "{answer:?}");

        let mut s = connect(server.addr);
        let big = "a".repeat(MAX_HEADER_BYTES);
        let _ = s.write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        );
        let (answer, _) = read_to_close(s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_waits_for_a_stalled_client_only_for_the_grace() {
        let server = start(small(100, 100, 30, 2)).await;
        let mut s = connect(server.addr);
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
        eventually("the connection is accepted", || {
            server.metrics.connections.get() == 1
        })
        .await;
        let started = Instant::now();
        server.stop().await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
            "stopped after {took:?}"
        );
        // An idle keep-alive connection does not hold a shutdown up at all.
        let server = start(small(100, 100, 30, 2)).await;
        let mut idle = connect(server.addr);
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).unwrap();
        let started = Instant::now();
        server.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    /// A TLS client trusting `ca_pem` only.
    fn tls_client(ca_pem: &str) -> tokio_rustls::TlsConnector {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_is_served_and_says_secure_and_plain_http_to_it_is_refused() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::tls::tests::test_pki();
        let certs = crate::tls::Certificates::open(
            crate::tls::tests::write_pki(dir.path(), &pki),
            crate::tls::TlsMetrics::default(),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let server = start_with(small(100, 100, 1, 30), Some(certs)).await;

        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tls_client(&pki.ca_pem).connect(name, tcp).await.unwrap();
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            None,
            "the client asked no ALPN"
        );
        tls.write_all(b"GET /transport HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(answer.ends_with("secure=true"), "{answer:?}");

        // A client that does not trust the CA gets no connection.
        let other = crate::tls::tests::test_pki();
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        assert!(tls_client(&other.ca_pem).connect(name, tcp).await.is_err());

        // Plain HTTP to the TLS port is a failed handshake, not a request.
        let mut plain = connect(server.addr);
        plain
            .write_all(b"GET /transport HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (answer, _) = read_to_close(plain, Duration::from_secs(10)).await;
        assert!(!answer.contains("secure="), "{answer:?}");
        // Saying nothing at all ends with the handshake timeout.
        let silent = connect(server.addr);
        let (_, waited) = read_to_close(silent, Duration::from_secs(15)).await;
        assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
        eventually("three failed handshakes are counted", || {
            server.metrics.tls_handshake_failures.get() >= 3
        })
        .await;
        server.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_http_says_not_secure() {
        let server = start(small(100, 100, 30, 30)).await;
        let mut s = connect(server.addr);
        s.write_all(b"GET /transport HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (answer, _) = read_to_close(s, Duration::from_secs(10)).await;
        assert!(answer.ends_with("secure=false"), "{answer:?}");
        server.stop().await;
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_forwarded_address() {
        let trusted: Vec<IpNet> = ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]
            .iter()
            .map(|e| parse_proxy(e).unwrap())
            .collect();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let at = |h: &[(&'static str, &'static str)]| forwarded(proxy, &headers(h), &trusted);
        // Whatever the client wrote left of the last untrusted hop is not believed.
        let f = at(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.9.9.9")]);
        assert_eq!(f.client, ip("203.0.113.7"));
        assert!(!f.https);
        // Several header lines are one list, in order.
        let f = at(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(f.client, ip("198.51.100.1"));
        // Ports and brackets; IPv4-mapped IPv6 is the IPv4 address.
        for (value, want) in [
            ("198.51.100.1:4711", "198.51.100.1"),
            ("[2001:db9::1]:443", "2001:db9::1"),
            ("[2001:db9::2]", "2001:db9::2"),
            ("::ffff:198.51.100.9", "198.51.100.9"),
        ] {
            let h = [("x-forwarded-for", value)];
            assert_eq!(
                forwarded(proxy, &headers(&h), &trusted).client,
                ip(want),
                "{value}"
            );
        }
        // Every hop trusted: the leftmost one. No header: the proxy itself.
        assert_eq!(
            at(&[("x-forwarded-for", "10.0.0.1, 127.0.0.1")]).client,
            ip("10.0.0.1")
        );
        assert_eq!(at(&[]).client, proxy);
        // A value that is no address stops the walk at the hop to its right.
        assert_eq!(
            at(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.2")]).client,
            ip("10.0.0.2")
        );
        assert_eq!(at(&[("x-forwarded-for", "")]).client, proxy);
        // The scheme the first proxy saw.
        assert!(at(&[("x-forwarded-proto", "https")]).https);
        assert!(at(&[("x-forwarded-proto", "http, HTTPS")]).https);
        assert!(!at(&[("x-forwarded-proto", "http")]).https);
        // From a peer that is not trusted, the headers mean nothing.
        let stranger: IpAddr = "203.0.113.50".parse().unwrap();
        let spoof = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            forwarded(stranger, &spoof, &trusted),
            Forwarded {
                client: stranger,
                https: false
            }
        );
        assert_eq!(forwarded(proxy, &spoof, &[]).client, proxy);
    }

    #[test]
    fn a_byte_the_client_wrote_that_is_not_ascii_does_not_make_it_the_proxy() {
        // A proxy appends its hop to the line the client sent ("<client's>, <peer>"). A
        // non-ASCII byte on that line made the whole value unreadable as text, so the walk
        // stopped at once and the client became the proxy, taking its (internal) address for
        // aws:SourceIp and sharing its throttle bucket.
        let trusted: Vec<IpNet> = vec![parse_proxy("10.0.0.0/8").unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"10.0.0.9\xff, 203.0.113.7").unwrap(),
        );
        assert_eq!(
            forwarded(proxy, &h, &trusted).client,
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // An unreadable hop itself still ends the walk at the hop to its right.
        let mut h = axum::http::HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.7, 10.0.0.9\xff, 10.0.0.2").unwrap(),
        );
        assert_eq!(
            forwarded(proxy, &h, &trusted).client,
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        assert_eq!(parse_proxy("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(parse_proxy("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "proxy.internal", "", "10.0.0.1/-1"] {
            let e = parse_proxy(bad).unwrap_err();
            assert!(
                e.contains("trusted_proxies") && e.contains("CIDR"),
                "{bad}: {e}"
            );
        }
        let with = |trusted_proxies: Vec<String>| HttpSettings {
            trusted_proxies,
            ..HttpSettings::default()
        };
        let e = with(vec!["10.0.0.0/8".into(), "nope".into()]).check();
        assert!(e.unwrap_err().contains("\"nope\""));
        let e = with(vec!["10.0.0.1".into(); MAX_TRUSTED_PROXIES + 1]).check();
        assert!(e.unwrap_err().contains("more than"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn behind_a_trusted_proxy_handlers_see_the_forwarded_client() {
        let server = start(HttpSettings {
            trusted_proxies: vec!["127.0.0.1".into()],
            ..small(100, 1, 30, 30)
        })
        .await;
        let ask = |extra: &str, path: &str| {
            let mut s = connect(server.addr);
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
                    .as_bytes(),
            )
            .unwrap();
            s
        };
        let forwarded_for = "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\nX-Forwarded-Proto: https\r\n";
        let (answer, _) =
            read_to_close(ask(forwarded_for, "/source"), Duration::from_secs(10)).await;
        assert!(answer.ends_with("203.0.113.7:0"), "{answer:?}");
        let (answer, _) =
            read_to_close(ask(forwarded_for, "/transport"), Duration::from_secs(10)).await;
        assert!(answer.ends_with("secure=true"), "{answer:?}");
        // The per-source cap (1 here) does not apply to the trusted proxy's connections.
        let held = connect(server.addr);
        let (answer, _) = read_to_close(ask("", "/source"), Duration::from_secs(10)).await;
        assert!(answer.contains("127.0.0.1:"), "{answer:?}");
        drop(held);
        server.stop().await;

        // Without trusted proxies the same headers change nothing.
        let server = start(small(100, 100, 30, 30)).await;
        let mut s = connect(server.addr);
        s.write_all(
            format!("GET /source HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{forwarded_for}\r\n")
                .as_bytes(),
        )
        .unwrap();
        let (answer, _) = read_to_close(s, Duration::from_secs(10)).await;
        assert!(
            answer.contains("127.0.0.1:") && !answer.contains("203.0.113.7"),
            "{answer:?}"
        );
        server.stop().await;
    }

    #[test]
    fn the_per_source_cap_counts_an_ipv6_slash_64_as_one_source() {
        let sources = Arc::new(Sources {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = sources.enter(ip("2001:db8:1:2::1"));
        let b = sources.enter(ip("2001:db8:1:2::2"));
        assert!(a.is_some() && b.is_some());
        assert!(
            sources.enter(ip("2001:db8:1:2:ffff::9")).is_none(),
            "a third address of the /64 got a slot"
        );
        assert!(
            sources.enter(ip("2001:db8:1:3::1")).is_some(),
            "another /64"
        );
        drop(a);
        assert!(sources.enter(ip("2001:db8:1:2::3")).is_some());
        // An IPv4 client is one source whether or not the socket shows it IPv4-mapped.
        let v4 = sources.enter(ip("192.0.2.1"));
        let mapped = sources.enter(ip("::ffff:192.0.2.1"));
        assert!(v4.is_some() && mapped.is_some());
        assert!(sources.enter(ip("192.0.2.1")).is_none());
        drop((v4, mapped, b));
        assert!(
            sources
                .open
                .lock()
                .unwrap()
                .keys()
                .all(|k| *k != ip("192.0.2.1")),
            "slots given back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_dual_stack_listener_an_ipv4_client_is_its_ipv4_address() {
        // `[::]` also accepts IPv4 clients, as `::ffff:a.b.c.d`: the source a policy, the
        // audit and `trusted_proxies` see must be `a.b.c.d`.
        let Ok(listener) = TcpListener::bind("[::]:0").await else {
            eprintln!("no IPv6 here; skipped");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let settings = HttpSettings {
            trusted_proxies: vec!["127.0.0.1".into()],
            ..small(100, 100, 30, 30)
        };
        let metrics = HttpMetrics::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            app(),
            settings,
            None,
            metrics.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let server = Running {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            metrics,
            stop: Some(stop),
            task,
        };
        for (extra, want) in [
            ("", "127.0.0.1:"),
            ("X-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7:0"),
        ] {
            let mut s = connect(server.addr);
            s.write_all(
                format!("GET /source HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
                    .as_bytes(),
            )
            .unwrap();
            let (answer, _) = read_to_close(s, Duration::from_secs(10)).await;
            let body = answer.rsplit("\r\n\r\n").next().unwrap_or("");
            assert!(body.starts_with(want), "{extra:?}: {answer:?}");
        }
        server.stop().await;
    }

    #[test]
    fn settings_bounds_are_checked() {
        assert_eq!(HttpSettings::default().check(), Ok(()));
        for (bad, key) in [
            (small(0, 1, 1, 1), "max_connections"),
            (small(1, 0, 1, 1), "max_connections_per_source"),
            (small(1, 1, 0, 1), "header_read_timeout_seconds"),
            (small(1, 1, 3601, 1), "header_read_timeout_seconds"),
            (small(1, 1, 1, 0), "request_timeout_seconds"),
            (small(1_000_001, 1, 1, 1), "max_connections"),
        ] {
            let err = bad.check().unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn the_connection_cap_fits_under_the_open_files_limit() {
        let (fit, message) = fit_to_fd_limit(u32::MAX);
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        match soft {
            Some(soft) => {
                assert_eq!(u64::from(fit), soft.saturating_sub(RESERVED_FDS).max(1));
                assert!(message.unwrap().contains("LimitNOFILE"));
            }
            None => assert_eq!(fit, u32::MAX),
        }
        assert_eq!(fit_to_fd_limit(1), (1, None));
    }
}
