//! `X-Forwarded-For` / `X-Forwarded-Proto` as a client behind a trusted proxy may write them:
//! the client found is the peer or an address one of the headers names, and never a trusted
//! proxy unless every hop was one.
#![no_main]

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use keyless_server::http_front::forwarded;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let trusted: Vec<IpNet> = ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let peer: IpAddr = if data.first().is_some_and(|b| b & 1 == 1) {
        "10.0.0.1".parse().unwrap()
    } else {
        "203.0.113.9".parse().unwrap()
    };
    // Newlines split the input into header lines; the first byte of a line picks the header.
    let mut headers = HeaderMap::new();
    for line in data.get(1..).unwrap_or_default().split(|b| *b == b'\n') {
        let Some((kind, value)) = line.split_first() else {
            continue;
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = if kind & 1 == 0 { "x-forwarded-for" } else { "x-forwarded-proto" };
        headers.append(name, value);
    }
    let found = forwarded(peer, &headers, &trusted);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        assert_eq!(found.client, peer, "headers from an untrusted peer are ignored");
        assert!(!found.https);
        return;
    }
    if found.client != peer {
        let text: String = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        let named = text.split(',').any(|hop| {
            let hop = hop.trim().trim_start_matches('[');
            hop.starts_with(&found.client.to_string())
                || hop.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical() == found.client)
                || hop
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| a.ip().to_canonical() == found.client)
                || hop.trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical() == found.client)
                || hop.split("]:").next().and_then(|h| h.parse::<IpAddr>().ok()).is_some_and(|ip| ip.to_canonical() == found.client)
        });
        assert!(named, "the client {} is named in {text:?}", found.client);
    }
    if found.https {
        assert!(headers.contains_key("x-forwarded-proto"));
    }
});
