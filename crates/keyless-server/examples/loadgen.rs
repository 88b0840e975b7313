//! A small HTTP/1.1 load generator for load runs against the real `keyless` binary, plus the
//! crypto floors of the same run (`scripts/load-run` drives it).
//!
//! ```text
//! loadgen floor [--seconds 2]
//! loadgen http --url http://127.0.0.1:7707/ --method POST --body-file req.form \
//!     --header 'content-type: application/x-www-form-urlencoded' \
//!     --connections 32 --seconds 10 [--rate 5000] [--client spin|tokio]
//! loadgen http --url https://127.0.0.1:7707/ --ca ca.pem --client tokio ...
//! ```
//!
//! `--client spin` (the default) polls non-blocking sockets from one thread that never sleeps;
//! `--client tokio [--threads N]` waits in `epoll_wait` instead (see `run_tokio` for why the
//! default spins). An `https://` URL needs `--ca FILE` (the PEM that verifies the server's
//! certificate, for the name `localhost`) and the Tokio client; connections are opened, and
//! handshaken, before the clock starts.
//!
//! `http` keeps `--connections` keep-alive connections busy for `--seconds` (closed loop), or,
//! with `--rate`, sends that many requests per second spread evenly over the connections (open
//! loop, latency measured from the scheduled send time so queueing counts). It prints one JSON
//! line: requests, per-status counts, requests per second and latency percentiles.
//! It writes pre-built request bytes and parses only the status line and `Content-Length`, so
//! its own cost per request stays small next to the server's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool: a failure should abort loudly"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn args_all(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("floor") => floor(arg(&args, "--seconds").map_or(2.0, |v| v.parse().unwrap())),
        Some("http") => http(&args),
        _ => {
            eprintln!("usage: loadgen floor | loadgen http --url URL [options] (see the source)");
            std::process::exit(2);
        }
    }
}

/// Times `f` for about `secs` seconds and returns nanoseconds per call.
fn time_per_call(secs: f64, mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The crypto floors on this core: RSA-2048 PKCS#1 verify (aws-lc-rs, what RS256 costs) and
/// the SigV4 HMAC chain (key derivation + string-to-sign HMAC + SHA-256 of a canonical request).
fn floor(seconds: f64) {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let msg = vec![7u8; 700];
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &msg,
        &mut sig,
    )
    .unwrap();
    // Parsed once, as the server's JWKS cache keeps its keys: the floor is the signature
    // check alone, not the DER parsing and Montgomery set-up around it (about 2.4 us more).
    let public = signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key().as_ref().to_vec(),
    )
    .parse()
    .unwrap();
    let rsa = time_per_call(seconds, || {
        public.verify_sig(black_box(&msg), black_box(&sig)).unwrap();
    });
    let secret =
        keyless_types::SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
    let canonical = "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:127.0.0.1:7707\nx-amz-date:20270115T080000Z\nx-amz-security-token:token\n\ncontent-type;host;x-amz-date;x-amz-security-token\n3ba8907e7a252327488df390ed517c45b96dead033600219bdca7107d1d3f88a";
    let hmac = time_per_call(seconds, || {
        let key =
            keyless_sigv4::SigningKey::derive(black_box(&secret), "20270115", "us-east-1", "sts");
        let hash = keyless_sigv4::sha256_hex(canonical.as_bytes());
        black_box(key.sign(
            format!("AWS4-HMAC-SHA256\n20270115T080000Z\n20270115/us-east-1/sts/aws4_request\n{hash}")
                .as_bytes(),
        ));
    });
    println!(
        "{}",
        serde_json::json!({ "rsa2048_verify_ns": rsa, "hmac_chain_ns": hmac })
    );
}

struct Target {
    addr: String,
    request: Vec<u8>,
    /// For an `https://` URL.
    tls: Option<tokio_rustls::TlsConnector>,
}

/// A client connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Target {
    async fn connect(&self) -> Box<dyn Io> {
        let stream = TcpStream::connect(&self.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        match &self.tls {
            None => Box::new(stream),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                Box::new(tls.connect(name, stream).await.unwrap())
            }
        }
    }
}

fn tls_connector(ca: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("--ca") {
        roots.add(cert.expect("--ca: a PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn build(args: &[String]) -> Target {
    let url = arg(args, "--url").expect("--url");
    let (rest, tls) = match url.strip_prefix("https://") {
        Some(rest) => (
            rest,
            Some(tls_connector(
                &arg(args, "--ca").expect("https needs --ca FILE"),
            )),
        ),
        None => (
            url.strip_prefix("http://")
                .expect("--url must be http:// or https://"),
            None,
        ),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let method = arg(args, "--method").unwrap_or_else(|| "GET".into());
    let body = arg(args, "--body-file")
        .map(|f| std::fs::read(f).expect("--body-file"))
        .unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {hostport}\r\n");
    for h in args_all(args, "--header") {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    Target {
        addr: hostport.to_owned(),
        request,
        tls,
    }
}

/// The status and total length (head + body) of the response at the start of `buf`, once its
/// head is complete.
fn response_head(buf: &[u8]) -> Option<(u16, usize)> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    Some((status, end + 4 + len))
}

/// Reads one response; returns its status.
async fn read_response(
    stream: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((status, total)) = response_head(buf) {
            while buf.len() < total {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Stats {
    slow_at_ms: Vec<u32>,
    latencies_us: Vec<u32>,
    status: BTreeMap<u16, u64>,
    io_errors: u64,
}

impl Stats {
    /// Records one answered request that was due at `sent_at`.
    fn answered(&mut self, status: u16, sent_at: Instant, start: Instant) {
        *self.status.entry(status).or_default() += 1;
        let us = sent_at.elapsed().as_micros().min(u128::from(u32::MAX));
        self.latencies_us.push(us as u32);
        if us > 20_000 {
            // When the slow ones were due: a stall shows as one cluster.
            self.slow_at_ms
                .push((sent_at.saturating_duration_since(start)).as_millis() as u32);
        }
    }

    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.slow_at_ms.extend(other.slow_at_ms);
        for (k, v) in other.status {
            *self.status.entry(k).or_default() += v;
        }
        self.io_errors += other.io_errors;
    }
}

/// What one run is: where, how many connections, for how long, closed or open loop.
struct Plan {
    target: Arc<Target>,
    connections: usize,
    seconds: f64,
    rate: Option<f64>,
}

impl Plan {
    /// Open loop: connection `c` sends every `interval`, offset so that sends interleave.
    fn schedule(&self, c: usize) -> Option<(Duration, Duration)> {
        let interval = Duration::from_secs_f64(self.connections as f64 / self.rate?);
        Some((
            interval,
            interval.mul_f64(c as f64 / self.connections as f64),
        ))
    }
}

fn http(args: &[String]) {
    let plan = Plan {
        target: Arc::new(build(args)),
        connections: arg(args, "--connections").map_or(16, |v| v.parse().unwrap()),
        seconds: arg(args, "--seconds").map_or(10.0, |v| v.parse().unwrap()),
        rate: arg(args, "--rate").map(|v| v.parse().unwrap()),
    };
    let client = arg(args, "--client").unwrap_or_else(|| "spin".into());
    let (stats, elapsed) = match client.as_str() {
        "spin" if plan.target.tls.is_some() => panic!("https needs --client tokio"),
        "spin" => run_spinning(&plan),
        "tokio" => run_tokio(
            &plan,
            arg(args, "--threads").map_or(1, |v| v.parse().unwrap()),
        ),
        other => panic!("--client {other}: expected spin or tokio"),
    };
    let mut lat = stats.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    let n = lat.len();
    println!(
        "{}",
        serde_json::json!({
            "requests": n,
            "seconds": elapsed.as_secs_f64(),
            "rps": n as f64 / elapsed.as_secs_f64(),
            "status": stats.status,
            "io_errors": stats.io_errors,
            "p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99), "p999_us": pct(0.999),
            "connections": plan.connections, "rate": plan.rate, "client": client,
            "slow_over_20ms_due_at_ms": slow_buckets(stats.slow_at_ms),
        })
    );
}

/// The Tokio client: one task per connection, sleeping in `epoll_wait` while it waits.
///
/// On a shared loopback host every response then has to wake this process, and when its vCPU
/// is idle that wake (an IPI, a VM exit on a virtual machine) is charged to the server's
/// `writev`. Kept to compare with; `run_spinning` is the default.
fn run_tokio(plan: &Plan, threads: usize) -> (Stats, Duration) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Connected (and handshaken) before the clock starts: the phases measure requests.
        let mut streams = Vec::with_capacity(plan.connections);
        for _ in 0..plan.connections {
            streams.push(plan.target.connect().await);
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(plan.seconds);
        let mut tasks = Vec::new();
        for (c, mut stream) in streams.into_iter().enumerate() {
            let target = Arc::clone(&plan.target);
            let schedule = plan.schedule(c);
            tasks.push(tokio::spawn(async move {
                let mut stats = Stats::default();
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut next = start + schedule.map(|(_, offset)| offset).unwrap_or_default();
                loop {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    let sent_at = if let Some((interval, _)) = schedule {
                        if next > now {
                            tokio::time::sleep_until(next.into()).await;
                        }
                        let at = next;
                        next += interval;
                        at
                    } else {
                        now
                    };
                    let ok = async {
                        stream.write_all(&target.request).await?;
                        read_response(&mut stream, &mut buf).await
                    }
                    .await;
                    match ok {
                        Ok(status) => stats.answered(status, sent_at, start),
                        Err(_) => {
                            stats.io_errors += 1;
                            stream = target.connect().await;
                        }
                    }
                }
                stats
            }));
        }
        let mut all = Stats::default();
        for t in tasks {
            all.merge(t.await.unwrap());
        }
        (all, start.elapsed())
    })
}

/// One connection of the spinning client.
struct SpinConnection {
    stream: std::net::TcpStream,
    /// Bytes of the request still to write, counted from the end.
    unsent: usize,
    /// When the request in flight was due; `None` while idle.
    sent_at: Option<Instant>,
    next: Instant,
    buf: Vec<u8>,
}

fn spin_connect(addr: &str) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_nonblocking(true).unwrap();
    stream
}

/// The spinning client: one thread polls every non-blocking socket in turn and never sleeps.
///
/// No thread of this process ever waits on a socket, so the kernel has nobody to wake when a
/// response arrives and the server's send costs what it would with the client on another
/// machine. It burns its own core (CPU 1) to do that, which the server's core does not see.
fn run_spinning(plan: &Plan) -> (Stats, Duration) {
    use std::io::{ErrorKind, Read, Write};
    let request = &plan.target.request;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(plan.seconds);
    let mut conns: Vec<SpinConnection> = (0..plan.connections)
        .map(|c| SpinConnection {
            stream: spin_connect(&plan.target.addr),
            unsent: 0,
            sent_at: None,
            next: start
                + plan
                    .schedule(c)
                    .map(|(_, offset)| offset)
                    .unwrap_or_default(),
            buf: Vec::with_capacity(16 * 1024),
        })
        .collect();
    let interval = plan.schedule(0).map(|(interval, _)| interval);
    let mut stats = Stats::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        for conn in &mut conns {
            if conn.sent_at.is_none() {
                let due = match interval {
                    Some(_) if conn.next > now => continue,
                    Some(i) => {
                        let at = conn.next;
                        conn.next += i;
                        at
                    }
                    None => now,
                };
                conn.sent_at = Some(due);
                conn.unsent = request.len();
                conn.buf.clear();
            }
            let failed = loop {
                if conn.unsent > 0 {
                    match conn.stream.write(&request[request.len() - conn.unsent..]) {
                        Ok(n) => conn.unsent -= n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                        Err(_) => break true,
                    }
                    continue;
                }
                match conn.stream.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
                if let Some((status, total)) = response_head(&conn.buf)
                    && conn.buf.len() >= total
                {
                    if let Some(at) = conn.sent_at.take() {
                        stats.answered(status, at, start);
                    }
                    break false;
                }
            };
            if failed {
                stats.io_errors += 1;
                conn.stream = spin_connect(&plan.target.addr);
                conn.sent_at = None;
            }
        }
    }
    (stats, start.elapsed())
}

/// The due times of requests slower than 20 ms, as `[first, last, count]` per cluster (due
/// times less than 50 ms apart are one cluster).
fn slow_buckets(mut at: Vec<u32>) -> Vec<[u32; 3]> {
    at.sort_unstable();
    let mut out: Vec<[u32; 3]> = Vec::new();
    for t in at {
        match out.last_mut() {
            Some(c) if t - c[1] < 50 => {
                c[1] = t;
                c[2] += 1;
            }
            _ => out.push([t, t, 1]),
        }
    }
    out
}
