//! Token buckets per (role, source address): a burst of issuance from one place gets AWS's
//! `Throttling` answer, which every SDK backs off from and retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use keyless_types::OffsetDateTime;

use crate::config::ThrottleConfig;

/// Buckets kept at most; beyond it the fullest (idle) buckets are dropped first.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// The limiter.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<(String, IpAddr), Bucket>>,
}

impl Throttle {
    /// A limiter with the given rate and burst.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `(role, source)`; false means "answer Throttling".
    pub fn allow(&self, role: &str, source: IpAddr, now: OffsetDateTime) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let burst = f64::from(self.config.burst);
        if buckets.len() >= MAX_BUCKETS {
            let rate = self.config.rate_per_second;
            buckets.retain(|_, b| b.tokens + (now - b.at).as_seconds_f64() * rate < burst);
        }
        // Role names are unique ignoring case and looked up so: `role/GHA` and `role/gha` are
        // one role and draw from one bucket, or cycling the case of a name escapes the limit.
        let b = buckets
            .entry((role.to_ascii_lowercase(), source))
            .or_insert(Bucket {
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
