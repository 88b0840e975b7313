//! The STS use cases: AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity,
//! GetAccessKeyInfo and DecodeAuthorizationMessage.
//!
//! Pure: the edge hands in the directory snapshot, the key ring, the JWKS it fetched, the
//! caller's address and `now`; nothing here does I/O.

pub mod assume_role;
pub mod form;
pub mod introspect;
pub mod params;
pub mod session_policies;
pub mod web_identity;

use std::net::IpAddr;

use keyless_policy::{Context, Decision, DecisionKind, PolicySet, Request, evaluate};
use keyless_token::{Credentials, SessionClaims};
use keyless_types::{AccountId, OffsetDateTime};
use time::format_description::well_known::Rfc3339;

use crate::authz_message::{MessageSealer, describe};
use crate::error::ApiError;

/// The region keyless names wherever AWS names one (`RoleLastUsed`, audit records): it is one
/// service, as IAM is global on AWS.
pub const REGION: &str = "us-east-1";

/// What an issuing call returns, ready for the XML writer.
#[derive(Debug)]
pub struct Issued {
    /// The new credentials.
    pub credentials: Credentials,
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: String,
    /// `AROA…:<session>`.
    pub assumed_role_id: String,
    /// `PackedPolicySize`, reported when a session policy or policy ARNs were passed.
    pub packed_policy_size: Option<u32>,
    /// Source identity, when set.
    pub source_identity: Option<String>,
    /// For web identity: `SubjectFromWebIdentityToken`, `Audience`, `Provider`.
    pub web_identity: Option<WebIdentityFacts>,
    /// The claims sealed into the token (for the audit record).
    pub claims: SessionClaims,
    /// For web identity: the token claims the audit record keeps ([`AUDITED_TOKEN_CLAIMS`]
    /// that are present, as strings); empty for chained sessions.
    pub token_attributes: Vec<(String, String)>,
}

/// Token claims copied into the audit record's `webIdFederationData.attributes` when present:
/// the subject and audience, and the GitHub Actions claims that say which repository, branch,
/// workflow and run asked.
pub const AUDITED_TOKEN_CLAIMS: &[&str] = &[
    "sub",
    "aud",
    "repository",
    "repository_owner",
    "ref",
    "job_workflow_ref",
    "workflow",
    "run_id",
    "run_attempt",
    "environment",
    "actor",
    "sha",
    "event_name",
];

/// Web-identity facts echoed in the response.
#[derive(Debug, Clone)]
pub struct WebIdentityFacts {
    /// `sub`.
    pub subject: String,
    /// The effective audience.
    pub audience: String,
    /// The issuer URL as registered.
    pub provider: String,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The client's address (`aws:SourceIp`).
    pub source_ip: IpAddr,
    /// Whether it arrived over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// The `User-Agent` header as sent (`aws:UserAgent`), when there was one.
    pub user_agent: Option<&'a str>,
    /// The `Referer` header as sent (`aws:referer`), when there was one.
    pub referer: Option<&'a str>,
}

/// ISO 8601 UTC with a `Z`, to the second, as AWS writes times (`2026-11-22T02:37:03Z`), digit
/// by digit ([`keyless_types::time_text`]).
pub fn iso8601(t: OffsetDateTime) -> String {
    match keyless_types::time_text::utc_seconds(t) {
        Some(text) => keyless_types::time_text::to_string(text),
        None => t
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default(),
    }
}

/// Adds the keys every request has (time, source address, transport, and the client's
/// `User-Agent` and `Referer` when it sent them) to `c`.
pub fn add_base_context(c: &mut Context, now: OffsetDateTime, origin: &Origin<'_>) {
    c.insert_single("aws:CurrentTime", iso8601(now));
    c.insert_single("aws:EpochTime", now.unix_timestamp().to_string());
    c.insert_single("aws:SourceIp", ip_text(origin.source_ip));
    c.insert_single(
        "aws:SecureTransport",
        if origin.secure_transport {
            "true"
        } else {
            "false"
        },
    );
    // AWS: `aws:UserAgent` is in every request's context; a client that sends no header has
    // nothing to compare, so the key is absent (a positive condition on it then fails).
    if let Some(ua) = origin.user_agent {
        c.insert_single("aws:UserAgent", ua);
    }
    if let Some(referer) = origin.referer {
        c.insert_single("aws:referer", referer);
    }
}

/// An address as `aws:SourceIp` holds it. IPv4 is written octet by octet: `Display` took
/// longer than building the rest of a request's context.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + o / 10 % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
            s
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// `arn:aws:sts::<acct>:assumed-role/<role name>/<session>` (the role name without its path).
pub fn assumed_role_arn(account: AccountId, role_name: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}")
}

/// Role name from a role ARN (`…:role/path/name` → `name`).
pub fn role_name_of(role_arn: &str) -> &str {
    role_arn.rsplit('/').next().unwrap_or(role_arn)
}

/// Evaluates and turns a denial into AWS's `AccessDenied` with an encoded authorization message.
pub struct Authorizer<'a> {
    /// Seals the explanation.
    pub sealer: &'a MessageSealer,
}

/// Who is asking, for the denial message.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// Principal ARN as AWS prints it in denials.
    pub arn: &'a str,
    /// Unique id (`AROA…:session`), or the ARN when there is none.
    pub id: &'a str,
}

impl Authorizer<'_> {
    /// Evaluates; `Ok(decision)` only when allowed.
    pub fn require(
        &self,
        asker: Asker<'_>,
        request: &Request<'_>,
        policies: &PolicySet<'_>,
        denial: impl FnOnce() -> String,
    ) -> Result<Decision, ApiError> {
        let decision = evaluate(request, policies);
        if decision.kind() == DecisionKind::Allowed {
            return Ok(decision);
        }
        Err(self.deny(asker, request, &decision, denial()))
    }

    /// The `AccessDenied` error for a decision.
    pub fn deny(
        &self,
        asker: Asker<'_>,
        request: &Request<'_>,
        decision: &Decision,
        message: String,
    ) -> ApiError {
        let doc = describe(
            decision,
            asker.id,
            asker.arn,
            request.action,
            request.resource,
            request.context,
        );
        // The denied principal's account (the fifth field of its ARN) may decode it.
        let account = asker.arn.split(':').nth(4).unwrap_or_default();
        match self.sealer.seal(&doc, account) {
            Ok(encoded) => ApiError::access_denied(format!(
                "{message} Encoded authorization failure message: {encoded}"
            )),
            Err(e) => e,
        }
    }
}

/// Whether two tag keys are the same key: tag keys ignore case in every script, and the policy
/// context lowercases `aws:PrincipalTag/…` names as Unicode does, so an ASCII-only comparison
/// would let `ÉQUIPE` stand beside `équipe` and replace it in the context.
pub fn same_tag_key(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase() == b.to_lowercase())
}

/// Tags of a new session: role tags, then session tags overriding them ignoring key case.
pub fn principal_tags(
    role_tags: &std::collections::BTreeMap<String, String>,
    session: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = role_tags
        .iter()
        .filter(|(k, _)| !session.iter().any(|(sk, _)| same_tag_key(sk, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(session.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_whole_seconds_with_z() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap();
        assert_eq!(iso8601(t), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for o in 0..=255u8 {
            for ip in [
                IpAddr::from([o, 0, 255 - o, o / 3]),
                IpAddr::from([10, o, 9, 100]),
            ] {
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    #[test]
    fn times_match_the_rfc3339_formatter_across_the_range() {
        let formatted = |t: OffsetDateTime| {
            t.to_offset(time::UtcOffset::UTC)
                .replace_nanosecond(0)
                .unwrap()
                .format(&Rfc3339)
                .unwrap()
        };
        // From year 0 to 9999, with a step that visits every field value.
        let mut secs: i64 = -62_167_219_200;
        while secs < 253_402_300_799 {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            assert_eq!(iso8601(t), formatted(t), "{secs}");
            secs += 86_400 * 37 + 3_661 * 7 + 13;
        }
        let east = OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
        assert_eq!(
            iso8601(east),
            "2027-01-15T08:00:00Z",
            "always written in UTC"
        );
    }

    #[test]
    fn the_clients_headers_are_keys_only_when_sent() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let origin = Origin {
            source_ip: IpAddr::from([10, 0, 0, 1]),
            secure_transport: true,
            user_agent: Some("aws-cli/2.22.0"),
            referer: Some("https://intranet.example/build/7"),
        };
        let mut c = Context::new();
        add_base_context(&mut c, now, &origin);
        let single = |c: &Context, k: &str| match c.get(k) {
            Some(keyless_policy::ContextValue::Single(v)) => Some(v.clone()),
            _ => None,
        };
        assert_eq!(
            single(&c, "aws:UserAgent").as_deref(),
            Some("aws-cli/2.22.0")
        );
        assert_eq!(
            single(&c, "aws:Referer").as_deref(),
            Some("https://intranet.example/build/7")
        );
        let mut bare = Context::new();
        add_base_context(
            &mut bare,
            now,
            &Origin {
                user_agent: None,
                referer: None,
                ..origin
            },
        );
        assert!(bare.get("aws:UserAgent").is_none() && bare.get("aws:referer").is_none());
    }

    #[test]
    fn tag_keys_ignore_case_beyond_ascii() {
        assert!(same_tag_key("Team", "tEAM"));
        assert!(same_tag_key("équipe", "ÉQUIPE"));
        // The Kelvin sign lowercases to `k`, as the policy context lowercases it.
        assert!(same_tag_key("\u{212a}ey", "key"));
        assert!(!same_tag_key("équipe", "equipe"));
        let role = std::collections::BTreeMap::from([("Équipe".to_owned(), "a".to_owned())]);
        let tags = principal_tags(&role, &[("équipe".to_owned(), "b".to_owned())]);
        assert_eq!(tags, vec![("équipe".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn session_tags_override_role_tags_ignoring_case() {
        let role = std::collections::BTreeMap::from([
            ("Team".to_owned(), "a".to_owned()),
            ("env".to_owned(), "x".to_owned()),
        ]);
        let tags = principal_tags(&role, &[("team".to_owned(), "b".to_owned())]);
        assert_eq!(
            tags,
            vec![
                ("env".to_owned(), "x".to_owned()),
                ("team".to_owned(), "b".to_owned())
            ]
        );
    }
}
