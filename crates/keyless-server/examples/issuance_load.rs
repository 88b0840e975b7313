//! Load generator for the issuance path: `concurrency` clients send AssumeRoleWithWebIdentity
//! with one token for `seconds` and report requests per second. Used by
//! `scripts/bench-audit-issuance.py` to compare durable audit with audit disabled.
//!
//! `cargo run --release -p keyless-server --example issuance_load -- URL ROLE_ARN TOKEN_FILE CONCURRENCY SECONDS`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark tool: fail loudly"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, role, token_file, concurrency, seconds] = args.as_slice() else {
        eprintln!("usage: issuance_load URL ROLE_ARN TOKEN_FILE CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let token = std::fs::read_to_string(token_file).expect("token file");
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let seconds: f64 = seconds.parse().expect("seconds");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..concurrency {
        let (client, url, ok, failed) = (client.clone(), url.clone(), ok.clone(), failed.clone());
        let form = format!(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=load-{n}&WebIdentityToken={}",
            role,
            token.trim()
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "{{\"ok\":{ok},\"failed\":{},\"seconds\":{elapsed:.3},\"per_second\":{:.1}}}",
        failed.load(Ordering::Relaxed),
        ok as f64 / elapsed
    );
}
