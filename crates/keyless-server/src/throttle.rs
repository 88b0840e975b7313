//! Token buckets per (role, source address): a burst of issuance from one place gets AWS's
//! `Throttling` answer, which every SDK backs off from and retries. An IPv6 source is its /64
//! ([`crate::http_front::source_network`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;

use keyless_types::OffsetDateTime;

use crate::config::ThrottleConfig;

/// Buckets kept at most. When they are all in use, the full (idle) ones go first, then the
/// fullest and least recently used, down to [`KEPT_AFTER_EVICTION`].
const MAX_BUCKETS: usize = 100_000;
/// Buckets left after an eviction that had to drop partly drained ones: a tenth is left free so
/// that the next insertions do not scan the map again.
const KEPT_AFTER_EVICTION: usize = MAX_BUCKETS / 10 * 9;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// The limiter.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    /// Keyed by a keyed hash of the role ARN (lowercased), not the ARN itself: the parameter is
    /// checked before the role is looked up, so anyone can name up to 2 KiB of ARN per request,
    /// and a map of such strings would hold 200 MiB at capacity. A collision, which a caller
    /// cannot aim for without the random key, only shares a bucket.
    buckets: Mutex<HashMap<(u64, IpAddr), Bucket>>,
    role_hasher: RandomState,
}

impl Throttle {
    /// A limiter with the given rate and burst.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            config,
            buckets: Mutex::new(HashMap::new()),
            role_hasher: RandomState::new(),
        }
    }

    /// Role names are unique ignoring case and looked up so: `role/GHA` and `role/gha` are one
    /// role and draw from one bucket, or cycling the case of a name escapes the limit. Folded
    /// as the directory folds them (Unicode lowercase, so the Kelvin sign is a `k`).
    fn role_key(&self, role: &str) -> u64 {
        let mut h = self.role_hasher.build_hasher();
        if role.is_ascii() {
            for b in role.bytes() {
                h.write_u8(b.to_ascii_lowercase());
            }
        } else {
            h.write(role.to_lowercase().as_bytes());
        }
        h.finish()
    }

    /// Takes one token for `(role, source)`; false means "answer Throttling".
    pub fn allow(&self, role: &str, source: IpAddr, now: OffsetDateTime) -> bool {
        let key = (
            self.role_key(role),
            crate::http_front::source_network(source),
        );
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let burst = f64::from(self.config.burst);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            self.evict(&mut buckets, now);
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = (now - b.at).as_seconds_f64().max(0.0);
        b.tokens = (b.tokens + elapsed * self.config.rate_per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Makes room. Full buckets carry no state, so they go first. If a flood of distinct
    /// (role, source) pairs at a low rate left none full, the fullest (then least recently used)
    /// go next: forgetting a bucket hands its pair the tokens it lacked, so the emptiest ones,
    /// those being throttled, are forgotten last, and a flood buys at most one early burst per
    /// tenth of the bound. The map never grows past its bound.
    fn evict(&self, buckets: &mut HashMap<(u64, IpAddr), Bucket>, now: OffsetDateTime) {
        let rate = self.config.rate_per_second;
        let burst = f64::from(self.config.burst);
        let level =
            |b: &Bucket| (b.tokens + (now - b.at).as_seconds_f64().max(0.0) * rate).min(burst);
        buckets.retain(|_, b| level(b) < burst);
        if buckets.len() < MAX_BUCKETS {
            return;
        }
        let mut order: Vec<(f64, OffsetDateTime, (u64, IpAddr))> =
            buckets.iter().map(|(k, b)| (level(b), b.at, *k)).collect();
        // Emptiest and most recent first: those are kept.
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        for (_, _, k) in order.drain(KEPT_AFTER_EVICTION..) {
            buckets.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t = Throttle::new(ThrottleConfig {
            rate_per_second: 2.0,
            burst: 3,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(t.allow("r", ip, t0));
        assert!(t.allow("r", ip, t0));
        assert!(t.allow("r", ip, t0));
        assert!(!t.allow("r", ip, t0));
        // Another role or source has its own bucket.
        assert!(t.allow("other", ip, t0));
        assert!(t.allow("r", "127.0.0.2".parse().unwrap(), t0));
        // Half a second refills one token at 2/s.
        assert!(t.allow("r", ip, t0 + time::Duration::milliseconds(500)));
        assert!(!t.allow("r", ip, t0 + time::Duration::milliseconds(500)));
    }

    #[test]
    fn a_flood_of_distinct_pairs_at_a_low_rate_stays_bounded_and_keeps_the_drained_bucket() {
        // At 1 token a minute no drained bucket is full again for a minute, so "drop the full
        // ones" frees nothing; before, every request past the bound scanned the whole map and
        // the map grew without limit.
        let t = Throttle::new(ThrottleConfig {
            rate_per_second: 1.0 / 60.0,
            burst: 2,
        });
        let victim: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let role = "arn:aws:iam::123456789012:role/gha";
        // The victim pair is drained; each flooding pair uses one of its two tokens, so none
        // is full and all are fuller than the victim's.
        assert!(t.allow(role, victim, t0));
        assert!(t.allow(role, victim, t0));
        for i in 0..MAX_BUCKETS + 5_000 {
            let source = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128));
            assert!(t.allow(&format!("{role}-{i}"), source, t0));
            // The victim's client keeps trying, and stays throttled.
            if i % 10_000 == 0 {
                assert!(
                    !t.allow(role, victim, t0),
                    "{i}: the drained bucket was forgotten"
                );
            }
        }
        let held = t.buckets.lock().unwrap().len();
        assert!(held <= MAX_BUCKETS, "{held} buckets");
        assert!(
            !t.allow(role, victim, t0),
            "the drained bucket was forgotten"
        );
    }

    #[test]
    fn addresses_of_one_ipv6_slash_64_share_a_bucket() {
        // Whoever has one IPv6 address has its whole /64 (2^64 addresses): a bucket per
        // address would never throttle them.
        let t = Throttle::new(ThrottleConfig {
            rate_per_second: 1.0,
            burst: 2,
        });
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let role = "arn:aws:iam::123456789012:role/gha";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(t.allow(role, ip("2001:db8:1:2::1"), t0));
        assert!(t.allow(role, ip("2001:db8:1:2::2"), t0));
        for other in ["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:1234::"] {
            assert!(!t.allow(role, ip(other), t0), "{other} got a fresh bucket");
        }
        // The next /64 is another network.
        assert!(t.allow(role, ip("2001:db8:1:3::1"), t0));
        // An IPv4 address is one source, however it is written.
        assert!(t.allow(role, ip("192.0.2.7"), t0));
        assert!(t.allow(role, ip("::ffff:192.0.2.7"), t0));
        assert!(!t.allow(role, ip("192.0.2.7"), t0));
        assert!(t.allow(role, ip("192.0.2.8"), t0));
    }

    #[test]
    fn a_role_spelled_with_a_kelvin_sign_draws_from_the_same_bucket() {
        // The directory finds a role by its name lowercased as Unicode, which turns the Kelvin
        // sign (U+212A) into `k`: both spellings name one role and must share its bucket.
        let role = "arn:aws:iam::123456789012:role/deploy-k8s";
        let kelvin = "arn:aws:iam::123456789012:role/deploy-\u{212A}8s";
        assert_eq!(
            keyless_core::trust_binding::RoleKey::parse(kelvin),
            keyless_core::trust_binding::RoleKey::parse(role)
        );
        let t = Throttle::new(ThrottleConfig {
            rate_per_second: 1.0,
            burst: 1,
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(t.allow(role, ip, t0));
        assert!(
            !t.allow(kelvin, ip, t0),
            "the Kelvin sign got a fresh bucket"
        );
    }

    #[test]
    fn a_role_named_in_another_case_draws_from_the_same_bucket() {
        let t = Throttle::new(ThrottleConfig {
            rate_per_second: 1.0,
            burst: 2,
        });
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(t.allow("arn:aws:iam::123456789012:role/gha", ip, t0));
        assert!(t.allow("arn:aws:iam::123456789012:role/GHA", ip, t0));
        for spelling in ["gHa", "Gha", "ghA", "GhA"] {
            assert!(
                !t.allow(
                    &format!("arn:aws:iam::123456789012:role/{spelling}"),
                    ip,
                    t0
                ),
                "{spelling} got a fresh bucket"
            );
        }
    }
}
