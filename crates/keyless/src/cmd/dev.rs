//! `keyless dev`: helpers for `keyless serve --dev`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

/// Arguments of `keyless dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DevCommand {
    /// Mint an OIDC token from the dev issuer of a running `keyless serve --dev`.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The dev server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:7707")]
    endpoint: String,
    /// The token subject.
    #[arg(long, default_value = "repo:octo-org/demo:ref:refs/heads/main")]
    sub: String,
    /// The audience.
    #[arg(long, default_value = "sts.amazonaws.com")]
    aud: String,
    /// Extra claims, `key=value` (repeatable); values that parse as JSON are used as JSON.
    #[arg(long = "claim", value_name = "K=V")]
    claims: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    expires_in: u32,
}

/// Runs `keyless dev`.
pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DevCommand::Token(t) => token(t),
    }
}

fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let mut claims = Map::new();
    for c in &args.claims {
        let Some((k, v)) = c.split_once('=') else {
            bail!("--claim {c:?}: expected key=value");
        };
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::from(v));
        claims.insert(k.to_owned(), value);
    }
    let body = json!({ "sub": args.sub, "aud": args.aud, "claims": claims, "expires_in": args.expires_in }).to_string();
    let reply = post_loopback(&args.endpoint, "/dev/oidc/token", &body)?;
    let v: Value = serde_json::from_str(&reply)
        .with_context(|| format!("unexpected answer from {}: {reply}", args.endpoint))?;
    let Some(token) = v.get("token").and_then(Value::as_str) else {
        bail!("the dev issuer refused: {reply}");
    };
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// A minimal HTTP/1.1 POST to a loopback `http://` endpoint: the dev issuer is never remote.
fn post_loopback(endpoint: &str, path: &str, body: &str) -> anyhow::Result<String> {
    let Some(hostport) = endpoint.strip_prefix("http://") else {
        bail!("--endpoint must be http://127.0.0.1:PORT (the dev server is loopback only)");
    };
    let hostport = hostport.trim_end_matches('/');
    let addr: std::net::SocketAddr = hostport
        .parse()
        .or_else(|_| hostport.replace("localhost", "127.0.0.1").parse())
        .with_context(|| format!("--endpoint {endpoint}: expected http://127.0.0.1:PORT"))?;
    if !addr.ip().is_loopback() {
        bail!("--endpoint must be a loopback address; the dev issuer never listens elsewhere");
    }
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot reach {endpoint}; is `keyless serve --dev` running?"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.take(1 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "the dev issuer answered {}: {payload}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(payload.to_owned())
}
