//! Bounds what anonymous refusals cost the audit log: a flood of refused, unauthenticated calls
//! from one source is recorded as its first call in full, then one summary record per window.
//!
//! Every call is still accounted for. What is folded is narrow ([`is_foldable`]): a 4xx answer
//! to a call that reached no real principal (no verified caller, no session token that opened
//! under the key ring, no role found in the directory) with one of [`FOLDABLE_CODES`], the
//! answers anyone who can reach the port can provoke at line rate. Everything else (every
//! success, every authenticated call, every decision about a configured role or a genuine
//! session, every 5xx) keeps its own record.
//!
//! A fold key is (source network, event source, event name, error code); the event name is a
//! known action or `Unknown`, so every part but the source comes from a fixed set. A key's first
//! call is recorded in full on its request's own path, as before; later calls of the key are
//! counted here, and [`Folder::due`] turns the count into one summary record when the first
//! folded call is [`WINDOW`] old or the key has been quiet for [`QUIET`]. [`Folder::drain`]
//! hands over everything pending at shutdown.
//!
//! The state is bounded: at most [`MAX_KEYS`] keys, and at most [`NEW_KEYS_PER_WINDOW`] keys
//! opened (each one full record) per window across all sources. A call that cannot open a key
//! is folded into an overflow summary per (event source, name, code), which names a sample of
//! the sources; so a flood from many sources costs at most a fixed number of records a minute,
//! whatever its rate. This module is pure: time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;

use keyless_audit::AuditEvent;
use keyless_types::OffsetDateTime;
use serde_json::{Map, Value, json};

/// The error codes an anonymous call can be folded under. `SignatureDoesNotMatch` and
/// `ExpiredToken` are not here: they are only answered once a genuine session token opened, so
/// they concern a real session. A refused signed call whose token opens is not anonymous
/// whatever its code (`query_api` checks).
pub const FOLDABLE_CODES: &[&str] = &[
    "Throttling",
    "AccessDenied",
    "InvalidIdentityToken",
    "InvalidClientTokenId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidAction",
    "MissingAction",
    "MissingParameter",
    "InvalidParameterValue",
    "ValidationError",
    "RequestEntityTooLarge",
    "MalformedQueryString",
    // `/v1/authorize` without a configured client's token.
    "Unauthorized",
];

/// How long a summary gathers at most: a key's folded calls are summarised at least this often.
pub const WINDOW: time::Duration = time::Duration::seconds(60);
/// A key with no call for this long has its summary written and is forgotten.
pub const QUIET: time::Duration = time::Duration::seconds(5);
/// Keys tracked at most (each holds a few hundred bytes).
pub const MAX_KEYS: usize = 1024;
/// Keys opened per [`WINDOW`] at most, across all sources: the full records anonymous floods
/// can cost a window.
pub const NEW_KEYS_PER_WINDOW: u32 = 120;
/// Distinct claimed access key ids (or, in an overflow summary, sources) a summary names.
const MAX_SAMPLES: usize = 8;
/// Longest user agent and error message kept in a summary (characters; a full record keeps
/// 1024 and 8192).
const MAX_TEXT_CHARS: usize = 256;

/// Whether a call's outcome may be folded: a 4xx answer with a [`FOLDABLE_CODES`] code to a call
/// that reached no real principal (`anonymous`: see [`crate::audit::CallFacts::is_anonymous`]).
pub fn is_foldable(code: &str, status: u16, anonymous: bool) -> bool {
    anonymous && (400..500).contains(&status) && FOLDABLE_CODES.contains(&code)
}

/// One refused call offered to the [`Folder`].
#[derive(Debug, Clone, Copy)]
pub struct FoldCall<'a> {
    /// The client's address (keyed by its network: an IPv6 source is its /64).
    pub source_ip: IpAddr,
    /// `sts.amazonaws.com`, `iam.amazonaws.com`, or `keyless` (`/v1/authorize`).
    pub event_source: &'static str,
    /// A known action name, or `Unknown`.
    pub event_name: &'static str,
    /// One of [`FOLDABLE_CODES`].
    pub code: &'static str,
    /// The HTTP status answered.
    pub status: u16,
    /// The message answered.
    pub message: &'a str,
    /// The request id answered.
    pub request_id: &'a str,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// The access key id a signed call claimed (bounded, unverified).
    pub claimed_access_key_id: Option<&'a str>,
}

/// What to do with an offered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Write the call's own record (the first of its key).
    Record,
    /// Counted into a pending summary: write nothing now.
    Folded {
        /// Into the many-sources summary (the key could not be tracked).
        overflow: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// `None`: the overflow key of many sources.
    network: Option<IpAddr>,
    event_source: &'static str,
    event_name: &'static str,
    code: &'static str,
}

/// Folded calls not yet summarised.
#[derive(Debug, Clone)]
struct Pending {
    count: u64,
    first: OffsetDateTime,
    last: OffsetDateTime,
    first_request_id: String,
    last_request_id: String,
    source_ip: IpAddr,
    status: u16,
    message: String,
    user_agent: String,
    /// Claimed access key ids, or (overflow) source addresses, at most [`MAX_SAMPLES`].
    samples: Vec<String>,
    /// Distinct samples not kept.
    more_samples: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    last_seen: OffsetDateTime,
    pending: Option<Pending>,
}

/// One summary record to write.
#[derive(Debug, Clone)]
pub struct Summary {
    key: Key,
    pending: Pending,
}

impl Summary {
    /// The number of calls it accounts for.
    pub fn count(&self) -> u64 {
        self.pending.count
    }

    /// Whether it sums up calls of many sources.
    pub fn is_overflow(&self) -> bool {
        self.key.network.is_none()
    }

    /// The record: shaped like the folded calls' own (same source, name, error code and
    /// status), `eventTime` the first folded call's, and the count and span in
    /// `additionalEventData` (`aggregatedCalls`, `firstEventTime`, `lastEventTime`, ...).
    pub fn to_event(&self, event_id: String) -> AuditEvent {
        let p = &self.pending;
        let k = &self.key;
        let mut e = AuditEvent::new(
            p.first,
            k.event_source,
            k.event_name,
            p.first_request_id.clone(),
            event_id,
        );
        e.user_agent.clone_from(&p.user_agent);
        if k.event_name == "AssumeRoleWithWebIdentity" {
            e.user_identity.kind = "WebIdentityUser".into();
        }
        if k.event_source == keyless_audit::event::SOURCE_KEYLESS {
            // As the `/v1/authorize` records it sums up.
            e.event_type = "KeylessDecision".into();
            e.read_only = true;
        }
        e.fail(k.code, &p.message, p.status);
        let mut data = Map::new();
        data.insert("aggregatedCalls".into(), json!(p.count));
        data.insert(
            "firstEventTime".into(),
            json!(keyless_audit::event::event_time(p.first)),
        );
        data.insert(
            "lastEventTime".into(),
            json!(keyless_audit::event::event_time(p.last)),
        );
        data.insert("firstRequestID".into(), json!(p.first_request_id));
        data.insert("lastRequestID".into(), json!(p.last_request_id));
        let samples = Value::from(p.samples.clone());
        match k.network {
            Some(network) => {
                e.source_ip_address = p.source_ip.to_string();
                data.insert(
                    "aggregation".into(),
                    json!("calls of one source refused alike, after the first recorded in full"),
                );
                if network.is_ipv6() {
                    data.insert("sourceNetwork".into(), json!(format!("{network}/64")));
                }
                if !p.samples.is_empty() {
                    data.insert("claimedAccessKeyIds".into(), samples);
                }
            }
            None => {
                e.source_ip_address = "multiple".into();
                data.insert(
                    "aggregation".into(),
                    json!("calls of sources past the tracking bound, refused alike"),
                );
                data.insert("sampleSourceIPAddresses".into(), samples);
            }
        }
        if p.more_samples {
            data.insert("samplesTruncated".into(), json!(true));
        }
        e.additional_event_data = Some(Value::Object(data));
        e
    }
}

/// The fold state: see the module documentation.
#[derive(Debug)]
pub struct Folder {
    entries: HashMap<Key, Entry>,
    /// Overflow summaries, by (event source, name, code): a fixed set.
    overflow: HashMap<Key, Pending>,
    window_start: Option<OffsetDateTime>,
    opened_in_window: u32,
    max_keys: usize,
    new_keys_per_window: u32,
}

impl Default for Folder {
    fn default() -> Self {
        Folder::new(MAX_KEYS, NEW_KEYS_PER_WINDOW)
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…[truncated]", &s[..at]),
    }
}

/// At most `max` characters of `s` (request ids are ours, but nothing is assumed).
fn prefix(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(at, _)| &s[..at])
}

impl Folder {
    /// A folder tracking at most `max_keys` keys and opening at most `new_keys_per_window` a
    /// window.
    pub fn new(max_keys: usize, new_keys_per_window: u32) -> Folder {
        Folder {
            entries: HashMap::new(),
            overflow: HashMap::new(),
            window_start: None,
            opened_in_window: 0,
            max_keys,
            new_keys_per_window,
        }
    }

    /// Keys tracked now (the overflow keys included).
    pub fn tracked(&self) -> usize {
        self.entries.len() + self.overflow.len()
    }

    /// Takes one refused call at `now`: [`Fold::Record`] when the caller must write its record.
    pub fn offer(&mut self, call: &FoldCall<'_>, now: OffsetDateTime) -> Fold {
        self.roll_window(now);
        let key = Key {
            network: Some(crate::http_front::source_network(call.source_ip)),
            event_source: call.event_source,
            event_name: call.event_name,
            code: call.code,
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.last_seen = now;
            let sample = call.claimed_access_key_id;
            add(&mut entry.pending, call, now, sample);
            return Fold::Folded { overflow: false };
        }
        if self.entries.len() < self.max_keys && self.opened_in_window < self.new_keys_per_window {
            self.opened_in_window += 1;
            self.entries.insert(
                key,
                Entry {
                    last_seen: now,
                    pending: None,
                },
            );
            return Fold::Record;
        }
        let key = Key {
            network: None,
            ..key
        };
        let mut slot = self.overflow.remove(&key);
        let source = call.source_ip.to_string();
        add(&mut slot, call, now, Some(&source));
        if let Some(p) = slot {
            self.overflow.insert(key, p);
        }
        Fold::Folded { overflow: true }
    }

    fn roll_window(&mut self, now: OffsetDateTime) {
        match self.window_start {
            Some(start) if now - start < WINDOW && now >= start => {}
            _ => {
                self.window_start = Some(now);
                self.opened_in_window = 0;
            }
        }
    }

    /// The summaries due at `now` (first folded call [`WINDOW`] old, or the key [`QUIET`]),
    /// forgetting the keys that went quiet.
    pub fn due(&mut self, now: OffsetDateTime) -> Vec<Summary> {
        self.roll_window(now);
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (key, entry) in &mut self.entries {
            let quiet = now - entry.last_seen >= QUIET;
            let old = entry
                .pending
                .as_ref()
                .is_some_and(|p| now - p.first >= WINDOW);
            if (quiet || old)
                && let Some(pending) = entry.pending.take()
            {
                out.push(Summary { key: *key, pending });
            }
            if quiet {
                gone.push(*key);
            }
        }
        for key in gone {
            self.entries.remove(&key);
        }
        let due: Vec<Key> = self
            .overflow
            .iter()
            .filter(|(_, p)| now - p.last >= QUIET || now - p.first >= WINDOW)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(pending) = self.overflow.remove(&key) {
                out.push(Summary { key, pending });
            }
        }
        out
    }

    /// Every pending summary (at shutdown), leaving nothing tracked.
    pub fn drain(&mut self) -> Vec<Summary> {
        let mut out: Vec<Summary> = self
            .entries
            .drain()
            .filter_map(|(key, e)| e.pending.map(|pending| Summary { key, pending }))
            .collect();
        out.extend(
            self.overflow
                .drain()
                .map(|(key, pending)| Summary { key, pending }),
        );
        out
    }
}

fn add(slot: &mut Option<Pending>, call: &FoldCall<'_>, now: OffsetDateTime, sample: Option<&str>) {
    let p = slot.get_or_insert_with(|| Pending {
        count: 0,
        first: now,
        last: now,
        first_request_id: prefix(call.request_id, 64).to_owned(),
        last_request_id: String::new(),
        source_ip: call.source_ip,
        status: call.status,
        message: cut(call.message, MAX_TEXT_CHARS),
        user_agent: prefix(call.user_agent, MAX_TEXT_CHARS).to_owned(),
        samples: Vec::new(),
        more_samples: false,
    });
    p.count = p.count.saturating_add(1);
    p.last = now.max(p.last);
    p.last_request_id.clear();
    p.last_request_id.push_str(prefix(call.request_id, 64));
    if let Some(s) = sample
        && !p.samples.iter().any(|have| have == s)
    {
        if p.samples.len() < MAX_SAMPLES {
            p.samples.push(cut(s, 128));
        } else {
            p.more_samples = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
            + time::Duration::milliseconds(ms)
    }

    fn call(ip: &str, code: &'static str, request_id: &str) -> FoldCall<'static> {
        FoldCall {
            source_ip: ip.parse().unwrap(),
            event_source: keyless_audit::event::SOURCE_STS,
            event_name: "AssumeRoleWithWebIdentity",
            code,
            status: 400,
            message: "Rate exceeded",
            request_id: Box::leak(request_id.to_owned().into_boxed_str()),
            user_agent: "flood/1.0",
            claimed_access_key_id: None,
        }
    }

    #[test]
    fn only_anonymous_refusals_with_a_listed_code_fold() {
        assert!(is_foldable("Throttling", 400, true));
        assert!(is_foldable("AccessDenied", 403, true));
        // A decision about a real principal, a server failure or an unlisted code is recorded.
        assert!(!is_foldable("AccessDenied", 403, false));
        assert!(!is_foldable("Throttling", 400, false));
        assert!(!is_foldable("ServiceUnavailable", 503, true));
        assert!(!is_foldable("SignatureDoesNotMatch", 403, true));
        assert!(!is_foldable("ExpiredToken", 400, true));
    }

    #[test]
    fn a_flood_from_one_source_is_its_first_call_then_one_summary_per_window() {
        let mut f = Folder::default();
        assert_eq!(
            f.offer(&call("192.0.2.7", "Throttling", "r0"), t(0)),
            Fold::Record
        );
        for i in 1..=10_000 {
            let at = t(i * 5); // 200/s for 50 s
            let verdict = f.offer(&call("192.0.2.7", "Throttling", &format!("r{i}")), at);
            assert_eq!(verdict, Fold::Folded { overflow: false });
            assert!(
                f.due(at).is_empty(),
                "{i}: nothing is due while the flood lasts"
            );
        }
        // 60 s after the first folded call, the summary is due, though the flood goes on.
        assert_eq!(
            f.offer(&call("192.0.2.7", "Throttling", "r10001"), t(60_004)),
            Fold::Folded { overflow: false }
        );
        let due = f.due(t(60_005));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count(), 10_001);
        let e = due[0].to_event("e-1".into());
        assert_eq!(e.error_code.as_deref(), Some("Throttling"));
        assert_eq!(e.error_message.as_deref(), Some("Rate exceeded"));
        assert_eq!(e.event_name, "AssumeRoleWithWebIdentity");
        assert_eq!(e.source_ip_address, "192.0.2.7");
        assert_eq!(e.request_id, "r1");
        assert_eq!(e.decision, keyless_audit::Decision::Deny);
        let data = e.additional_event_data.as_ref().unwrap();
        assert_eq!(data["aggregatedCalls"], 10_001);
        assert_eq!(data["lastRequestID"], "r10001");
        assert_eq!(
            data["firstEventTime"],
            keyless_audit::event::event_time(t(5))
        );
        assert_eq!(
            data["lastEventTime"],
            keyless_audit::event::event_time(t(60_004))
        );
        // The key stays known: the flood goes on folding, with no second full record.
        assert_eq!(
            f.offer(&call("192.0.2.7", "Throttling", "r10002"), t(60_010)),
            Fold::Folded { overflow: false }
        );
        // Quiet for 5 s: the rest is summarised and the key forgotten; the next call is recorded.
        let due = f.due(t(65_010));
        assert_eq!(due.iter().map(Summary::count).collect::<Vec<_>>(), [1]);
        assert_eq!(f.tracked(), 0);
        assert_eq!(
            f.offer(&call("192.0.2.7", "Throttling", "again"), t(70_000)),
            Fold::Record
        );
    }

    #[test]
    fn a_single_refusal_costs_one_record_and_no_summary() {
        let mut f = Folder::default();
        assert_eq!(
            f.offer(&call("192.0.2.7", "InvalidAction", "r0"), t(0)),
            Fold::Record
        );
        assert!(f.due(t(10_000)).is_empty());
        assert_eq!(f.tracked(), 0);
        assert!(f.drain().is_empty());
    }

    #[test]
    fn keys_are_the_source_network_the_action_and_the_code() {
        let mut f = Folder::default();
        assert_eq!(
            f.offer(&call("2001:db8:1:2::1", "Throttling", "a"), t(0)),
            Fold::Record
        );
        // The same /64 shares the key.
        assert_eq!(
            f.offer(&call("2001:db8:1:2::ffff", "Throttling", "b"), t(1)),
            Fold::Folded { overflow: false }
        );
        // Another code, another network: their own first records.
        assert_eq!(
            f.offer(&call("2001:db8:1:2::1", "AccessDenied", "c"), t(2)),
            Fold::Record
        );
        assert_eq!(
            f.offer(&call("2001:db8:1:3::1", "Throttling", "d"), t(3)),
            Fold::Record
        );
        let mut other = call("2001:db8:1:2::1", "Throttling", "e");
        other.event_name = "Unknown";
        assert_eq!(f.offer(&other, t(4)), Fold::Record);
        let all = f.drain();
        assert_eq!(all.len(), 1);
        let e = all[0].to_event("x".into());
        assert_eq!(e.source_ip_address, "2001:db8:1:2::ffff");
        assert_eq!(
            e.additional_event_data.as_ref().unwrap()["sourceNetwork"],
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn a_flood_from_many_sources_is_bounded_and_still_counted() {
        let mut f = Folder::new(50, 20);
        let mut recorded = 0;
        let mut folded = 0u64;
        let mut overflow = 0u64;
        // 100,000 distinct sources within one window, each calling twice.
        for i in 0..100_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            for n in 0..2 {
                match f.offer(
                    &call(&ip, "AccessDenied", &format!("{i}-{n}")),
                    t(i64::from(i / 100)),
                ) {
                    Fold::Record => recorded += 1,
                    Fold::Folded { overflow: false } => folded += 1,
                    Fold::Folded { overflow: true } => overflow += 1,
                }
            }
            assert!(f.tracked() <= 51, "{} keys", f.tracked());
        }
        // The window's budget of full records, not one per source.
        assert_eq!(recorded, 20);
        assert_eq!(folded, 20);
        assert_eq!(recorded + folded + overflow, 200_000);
        let all = f.drain();
        let counted: u64 = all.iter().map(Summary::count).sum();
        assert_eq!(
            counted,
            folded + overflow,
            "every folded call is in a summary"
        );
        let many = all.iter().find(|s| s.is_overflow()).unwrap();
        let e = many.to_event("x".into());
        assert_eq!(e.source_ip_address, "multiple");
        let data = e.additional_event_data.unwrap();
        assert_eq!(
            data["sampleSourceIPAddresses"].as_array().unwrap().len(),
            MAX_SAMPLES
        );
        assert_eq!(data["samplesTruncated"], true);
    }

    #[test]
    fn the_budget_of_new_keys_renews_each_window() {
        let mut f = Folder::new(1000, 2);
        assert_eq!(
            f.offer(&call("192.0.2.1", "Throttling", "a"), t(0)),
            Fold::Record
        );
        assert_eq!(
            f.offer(&call("192.0.2.2", "Throttling", "b"), t(0)),
            Fold::Record
        );
        assert_eq!(
            f.offer(&call("192.0.2.3", "Throttling", "c"), t(0)),
            Fold::Folded { overflow: true }
        );
        assert_eq!(
            f.offer(&call("192.0.2.3", "Throttling", "d"), t(60_000)),
            Fold::Record
        );
        // A clock stepped back starts a window as well, rather than freezing the budget.
        assert_eq!(
            f.offer(&call("192.0.2.4", "Throttling", "e"), t(1_000)),
            Fold::Record
        );
    }

    #[test]
    fn a_summary_keeps_a_bounded_copy_of_hostile_text() {
        let mut f = Folder::default();
        let ua = "x".repeat(30_000);
        let msg = "m".repeat(10_000);
        let rid = "r".repeat(10_000);
        let mut c = call("192.0.2.7", "InvalidClientTokenId", "first");
        assert_eq!(f.offer(&c, t(0)), Fold::Record);
        c.user_agent = &ua;
        c.message = &msg;
        c.request_id = &rid;
        let keys: Vec<String> = (0..100).map(|i| format!("ASIAKEY{i:04}")).collect();
        for key in &keys {
            c.claimed_access_key_id = Some(key);
            f.offer(&c, t(1));
        }
        let all = f.drain();
        let e = all[0].to_event("x".into());
        let text = String::from_utf8(e.to_body().unwrap()).unwrap();
        assert!(text.len() < 3_000, "{} bytes", text.len());
        // `userAgent` is cut as a full record cuts it, without a mark.
        assert_eq!(e.user_agent.len(), MAX_TEXT_CHARS);
        assert!(
            e.error_message
                .as_deref()
                .unwrap()
                .ends_with("…[truncated]")
        );
        let data = e.additional_event_data.unwrap();
        assert_eq!(
            data["claimedAccessKeyIds"].as_array().unwrap().len(),
            MAX_SAMPLES
        );
        assert_eq!(data["aggregatedCalls"], 100);
    }
}
