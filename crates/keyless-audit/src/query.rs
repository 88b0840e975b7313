//! Query filters over events, the text form of an event, and the live-session inventory
//! reconstructed from the log. Pure: `now` is an argument.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use time::OffsetDateTime;

use crate::event::{AuditEvent, Decision, event_time, parse_time};

/// Filters; every one given must match (an empty filter matches everything).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Events at or after.
    pub since: Option<OffsetDateTime>,
    /// Events before.
    pub until: Option<OffsetDateTime>,
    /// `eventName`, exact.
    pub event_name: Option<String>,
    /// Principal ARN (or principal id), exact.
    pub principal: Option<String>,
    /// Role ARN (the caller's role or the role asked for), exact; a bare name matches the
    /// role name.
    pub role: Option<String>,
    /// Token subject, exact.
    pub subject: Option<String>,
    /// GitHub repository (`owner/name`), exact.
    pub repository: Option<String>,
    /// Access key id (used or issued), exact.
    pub access_key_id: Option<String>,
    /// Decision.
    pub decision: Option<Decision>,
    /// `errorCode`, exact.
    pub error_code: Option<String>,
}

/// Role names ignore case in IAM (one account cannot hold `Deploy` and `deploy`), and records
/// carry the stored spelling, so `--role deploy` must find `role/Deploy`.
fn role_matches(want: &str, arn: &str) -> bool {
    if want.starts_with("arn:") {
        arn.eq_ignore_ascii_case(want)
    } else {
        arn.rsplit('/')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case(want))
    }
}

impl Filter {
    /// Whether the event passes.
    pub fn matches(&self, e: &AuditEvent) -> bool {
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = e.time() else { return false };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        if self.event_name.as_ref().is_some_and(|n| *n != e.event_name) {
            return false;
        }
        if let Some(p) = &self.principal {
            let by_arn = e.user_identity.arn.as_deref() == Some(p.as_str());
            let by_id = e.user_identity.principal_id.as_deref() == Some(p.as_str());
            let assumed = assumed_role_arn(e) == Some(p.as_str());
            if !(by_arn || by_id || assumed) {
                return false;
            }
        }
        if let Some(r) = &self.role
            && !e.roles().into_iter().any(|arn| role_matches(r, arn))
        {
            return false;
        }
        if self
            .subject
            .as_ref()
            .is_some_and(|s| e.subject() != Some(s))
        {
            return false;
        }
        if self
            .repository
            .as_ref()
            .is_some_and(|r| e.federation_attribute("repository") != Some(r))
        {
            return false;
        }
        if let Some(k) = &self.access_key_id
            && !e.access_key_ids().contains(&k.as_str())
        {
            return false;
        }
        if self.decision.is_some_and(|d| d != e.decision) {
            return false;
        }
        if self
            .error_code
            .as_ref()
            .is_some_and(|c| e.error_code.as_deref() != Some(c))
        {
            return false;
        }
        true
    }
}

fn assumed_role_arn(e: &AuditEvent) -> Option<&str> {
    e.response_elements
        .as_ref()?
        .get("assumedRoleUser")?
        .get("arn")?
        .as_str()
}

/// `s` with control characters (C0, DEL, C1) and bidirectional formatting characters written
/// as `\u{..}` escapes, for printing to a terminal: records hold strings that callers chose
/// (an action name, a refused token's issuer, claims), and an escape sequence among them would
/// otherwise reach the operator's terminal.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            )
    }
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line for humans: time, decision, source/name, principal, subject, key, error (control
/// characters escaped, see [`terminal_safe`]).
pub fn text_line(e: &AuditEvent) -> String {
    let mut out = format!(
        "{} {:<5} {}:{}",
        e.event_time,
        e.decision.as_str(),
        e.event_source,
        e.event_name
    );
    let who = assumed_role_arn(e)
        .or(e.principal())
        .or(e.user_identity.identity_provider.as_deref());
    if let Some(w) = who {
        out.push_str(&format!(" principal={w}"));
    }
    if let Some(s) = e.subject() {
        out.push_str(&format!(" sub={s}"));
    }
    if let Some(r) = e.federation_attribute("repository") {
        out.push_str(&format!(" repo={r}"));
    }
    if let Some(k) = e.user_identity.access_key_id.as_deref() {
        out.push_str(&format!(" key={k}"));
    }
    if let Some(k) = e.issued_access_key_id() {
        out.push_str(&format!(" issued={k}"));
    }
    if let Some(c) = &e.error_code {
        out.push_str(&format!(" error={c}"));
    }
    out.push_str(&format!(" ip={} id={}", e.source_ip_address, e.event_id));
    terminal_safe(&out).into_owned()
}

/// A session reconstructed from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The access key id.
    pub access_key_id: String,
    /// `arn:aws:sts::…:assumed-role/<role>/<session>`.
    pub principal: String,
    /// The principal id, `AROA…:<session>` (`assumedRoleUser.assumedRoleId`).
    pub principal_id: Option<String>,
    /// The role ARN.
    pub role_arn: String,
    /// The token subject, for web identity sessions (and sessions chained from them).
    pub subject: Option<String>,
    /// The GitHub repository, when the token had one.
    pub repository: Option<String>,
    /// The source identity.
    pub source_identity: Option<String>,
    /// Issued at (the issuing event's time).
    pub issued: OffsetDateTime,
    /// Expires at.
    pub expires: OffsetDateTime,
    /// The last recorded use (a signed call or an authorize decision), when known.
    pub last_used: Option<OffsetDateTime>,
    /// The service of that last use (`eventSource`).
    pub last_used_service: Option<String>,
    /// `AssumeRoleWithWebIdentity` or `AssumeRole`.
    pub issued_by: String,
    /// The session's account (`recipientAccountId`).
    pub account: Option<String>,
    /// The key-ring version that sealed it (`additionalEventData.keyRingVersion`).
    pub key_version: Option<u32>,
    /// The token issuer (`iss`) of a federated session: the issuing call's `provider`, or for a
    /// session chained from one, its parent's.
    pub issuer: Option<String>,
    /// The issue instant to the second, as the session token carries it
    /// (`sessionContext.attributes.creationDate`, else the event time cut to the second): what
    /// revocation instants are compared with.
    pub issued_at: OffsetDateTime,
    /// The access key ids of the sessions it was chained from, the first first, as far as the
    /// log shows them (a parent issued before the log's oldest record is the last one known).
    pub chained_from: Vec<String>,
}

/// The longest ancestry [`Session::chained_from`] keeps.
const MAX_CHAIN: usize = 32;

/// Builds the sessions from events in log order.
#[derive(Debug, Default)]
pub struct SessionInventory {
    sessions: BTreeMap<String, Session>,
}

impl SessionInventory {
    /// Takes one event into account.
    pub fn add(&mut self, e: &AuditEvent) {
        let t = e.time();
        // Only a verified caller uses its key: a refused signed call's record keeps the key id
        // it claimed (`userIdentity.type` `Unknown`), which anyone can write.
        let verified = e.user_identity.kind == "AssumedRole";
        if let (true, Some(k), Some(t)) = (verified, e.user_identity.access_key_id.as_deref(), t)
            && let Some(s) = self.sessions.get_mut(k)
            && s.last_used.is_none_or(|l| l < t)
        {
            s.last_used = Some(t);
            s.last_used_service = Some(e.event_source.clone());
        }
        if e.decision != Decision::Allow {
            return;
        }
        let Some(resp) = &e.response_elements else {
            return;
        };
        let creds = resp.get("credentials");
        let (Some(key), Some(expires), Some(principal), Some(issued)) = (
            creds
                .and_then(|c| c.get("accessKeyId"))
                .and_then(Value::as_str),
            creds
                .and_then(|c| c.get("expiration"))
                .and_then(Value::as_str)
                .and_then(parse_time),
            assumed_role_arn(e),
            t,
        ) else {
            return;
        };
        let issuer = resp
            .get("provider")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                // Chained: the parent session (the caller's key) carries the issuer.
                let parent = self
                    .sessions
                    .get(e.user_identity.access_key_id.as_deref()?)?;
                parent.issuer.clone()
            });
        // A chained session's caller is its parent, whose own ancestry the log gave earlier.
        let chained_from = e
            .user_identity
            .access_key_id
            .as_deref()
            .map(|parent| {
                let mut chain = self
                    .sessions
                    .get(parent)
                    .map(|p| p.chained_from.clone())
                    .unwrap_or_default();
                chain.push(parent.to_owned());
                // A real chain is at most 32 long (keyless-token's MAX_CHAINED_FROM); an edited
                // log's could be any length, and the nearest ancestors matter most.
                let excess = chain.len().saturating_sub(MAX_CHAIN);
                chain.drain(..excess);
                chain
            })
            .unwrap_or_default();
        let issued_at = e
            .user_identity
            .session_context
            .as_ref()
            .and_then(|c| c.attributes.as_ref())
            .and_then(|a| parse_time(&a.creation_date))
            .or_else(|| issued.replace_nanosecond(0).ok())
            .unwrap_or(issued);
        let key_version = e
            .additional_event_data
            .as_ref()
            .and_then(|d| d.get("keyRingVersion"))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        let role_arn = e
            .request_parameters
            .as_ref()
            .and_then(|p| p.get("roleArn"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.sessions.insert(
            key.to_owned(),
            Session {
                access_key_id: key.to_owned(),
                principal: principal.to_owned(),
                principal_id: resp
                    .get("assumedRoleUser")
                    .and_then(|u| u.get("assumedRoleId"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                role_arn,
                subject: e.subject().map(str::to_owned),
                repository: e.federation_attribute("repository").map(str::to_owned),
                source_identity: resp
                    .get("sourceIdentity")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                issued,
                expires,
                last_used: None,
                last_used_service: None,
                issued_by: e.event_name.clone(),
                account: e.recipient_account_id.clone(),
                key_version,
                issuer,
                issued_at,
                chained_from,
            },
        );
    }

    /// The sessions alive at `now` that pass `filter` (its time bounds apply to the issue
    /// instant; event name, decision and error code do not apply to sessions), oldest first.
    pub fn live(&self, now: OffsetDateTime, filter: &Filter) -> Vec<&Session> {
        let mut out: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.expires > now)
            .filter(|s| filter.since.is_none_or(|t| s.issued >= t))
            .filter(|s| filter.until.is_none_or(|t| s.issued < t))
            .filter(|s| {
                filter
                    .principal
                    .as_ref()
                    .is_none_or(|p| *p == s.principal || s.principal_id.as_ref() == Some(p))
            })
            .filter(|s| {
                filter
                    .role
                    .as_ref()
                    .is_none_or(|r| role_matches(r, &s.role_arn))
            })
            .filter(|s| {
                filter
                    .subject
                    .as_ref()
                    .is_none_or(|x| s.subject.as_ref() == Some(x))
            })
            .filter(|s| {
                filter
                    .repository
                    .as_ref()
                    .is_none_or(|x| s.repository.as_ref() == Some(x))
            })
            .filter(|s| {
                filter
                    .access_key_id
                    .as_ref()
                    .is_none_or(|x| *x == s.access_key_id)
            })
            .collect();
        out.sort_by_key(|s| (s.issued, s.access_key_id.clone()));
        out
    }
}

fn csv_field(s: &str) -> String {
    // Neutralise spreadsheet formulas (a tab or carriage return before one counts too) and
    // quote as RFC 4180 says.
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Header of the credential report.
pub const CREDENTIAL_REPORT_HEADER: &str = "user,arn,credential_type,access_key_id,access_key_active,created,expires,last_used_date,last_used_service,role_arn,subject,repository,source_identity";

/// Whether a live session's credentials still work: `No` once a revocation ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    /// Not revoked.
    Yes,
    /// Revoked before its expiry.
    No,
    /// The revocations could not be checked (no store beside the log).
    Unknown,
}

impl From<bool> for Active {
    fn from(active: bool) -> Active {
        if active { Active::Yes } else { Active::No }
    }
}

impl Active {
    /// The `access_key_active` cell.
    fn cell(self) -> &'static str {
        match self {
            Active::Yes => "true",
            Active::No => "false",
            Active::Unknown => "no_information",
        }
    }
}

/// The credential report, CSV in the spirit of IAM's: one row per long-term credential (keyless
/// issues none, so there are none) and one per session alive at `now`, with whether it still
/// works (`access_key_active`: false once revoked). IAM writes `N/A` for facts that do not
/// apply and `no_information` for unknown ones; so does this.
pub fn credential_report(sessions: &[(&Session, Active)]) -> String {
    let mut out = String::from(CREDENTIAL_REPORT_HEADER);
    out.push('\n');
    for (s, active) in sessions {
        let user = s.principal.rsplit('/').next().unwrap_or(&s.principal);
        let row = [
            user.to_owned(),
            s.principal.clone(),
            "session".to_owned(),
            s.access_key_id.clone(),
            active.cell().to_owned(),
            event_time(s.issued),
            event_time(s.expires),
            s.last_used
                .map_or_else(|| "no_information".to_owned(), event_time),
            s.last_used_service
                .clone()
                .unwrap_or_else(|| "N/A".to_owned()),
            s.role_arn.clone(),
            s.subject.clone().unwrap_or_else(|| "N/A".to_owned()),
            s.repository.clone().unwrap_or_else(|| "N/A".to_owned()),
            s.source_identity
                .clone()
                .unwrap_or_else(|| "N/A".to_owned()),
        ];
        let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        SOURCE_KEYLESS, SOURCE_STS, SessionContext, SessionIssuer, UserIdentity,
        WebIdFederationData,
    };
    use serde_json::json;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn issue(t: i64, key: &str, repo: &str, sub: &str, ttl: i64) -> AuditEvent {
        let mut e = AuditEvent::new(at(t), SOURCE_STS, "AssumeRoleWithWebIdentity", "r", key);
        let mut attrs = serde_json::Map::new();
        attrs.insert("sub".into(), json!(sub));
        attrs.insert("repository".into(), json!(repo));
        e.user_identity = UserIdentity {
            kind: "WebIdentityUser".into(),
            user_name: Some(sub.into()),
            session_context: Some(SessionContext {
                source_identity: None,
                web_id_federation_data: Some(WebIdFederationData {
                    federated_provider: "arn:aws:iam::123456789012:oidc-provider/x".into(),
                    attributes: attrs,
                }),
                session_issuer: None,
                attributes: None,
            }),
            ..UserIdentity::default()
        };
        e.request_parameters = Some(json!({"roleArn": "arn:aws:iam::123456789012:role/gha"}));
        e.response_elements = Some(json!({
            "credentials": {"accessKeyId": key, "expiration": event_time(at(t + ttl))},
            "assumedRoleUser": {
                "arn": format!("arn:aws:sts::123456789012:assumed-role/gha/{key}"),
                "assumedRoleId": format!("AROAEXAMPLEROLEID:{key}"),
            },
        }));
        e
    }

    fn use_key(t: i64, key: &str) -> AuditEvent {
        let mut e = AuditEvent::new(at(t), SOURCE_KEYLESS, "Authorize", "r", "u");
        e.user_identity = UserIdentity {
            kind: "AssumedRole".into(),
            access_key_id: Some(key.into()),
            arn: Some(format!("arn:aws:sts::123456789012:assumed-role/gha/{key}")),
            session_context: Some(SessionContext {
                source_identity: None,
                web_id_federation_data: None,
                session_issuer: Some(SessionIssuer {
                    kind: "Role".into(),
                    principal_id: "AROA".into(),
                    arn: "arn:aws:iam::123456789012:role/gha".into(),
                    account_id: "123456789012".into(),
                    user_name: "gha".into(),
                }),
                attributes: None,
            }),
            ..UserIdentity::default()
        };
        e
    }

    #[test]
    fn filters_each_field() {
        let e = issue(
            0,
            "ASIAONE",
            "octo/a",
            "repo:octo/a:ref:refs/heads/main",
            3600,
        );
        let all = Filter::default();
        assert!(all.matches(&e));
        let cases: Vec<(Filter, bool)> = vec![
            (
                Filter {
                    repository: Some("octo/a".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    repository: Some("octo/b".into()),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    access_key_id: Some("ASIAONE".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    access_key_id: Some("ASIATWO".into()),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    subject: Some("repo:octo/a:ref:refs/heads/main".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    subject: Some("repo:octo/a".into()),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    role: Some("gha".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    role: Some("arn:aws:iam::123456789012:role/gha".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    role: Some("deploy".into()),
                    ..all.clone()
                },
                false,
            ),
            // Role names ignore case in IAM (and in `keyless revoke role`).
            (
                Filter {
                    role: Some("GHA".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    role: Some("arn:aws:iam::123456789012:role/Gha".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    principal: Some("arn:aws:sts::123456789012:assumed-role/gha/ASIAONE".into()),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    event_name: Some("AssumeRole".into()),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    decision: Some(Decision::Allow),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    decision: Some(Decision::Deny),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    error_code: Some("AccessDenied".into()),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    since: Some(at(0)),
                    until: Some(at(1)),
                    ..all.clone()
                },
                true,
            ),
            (
                Filter {
                    since: Some(at(1)),
                    ..all.clone()
                },
                false,
            ),
            (
                Filter {
                    until: Some(at(0)),
                    ..all.clone()
                },
                false,
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(f.matches(&e), *want, "case {i}: {f:?}");
        }
        let mut denied = e.clone();
        denied.fail("AccessDenied", "no", 403);
        assert!(
            Filter {
                error_code: Some("AccessDenied".into()),
                ..all.clone()
            }
            .matches(&denied)
        );
        assert!(
            Filter {
                decision: Some(Decision::Deny),
                ..all
            }
            .matches(&denied)
        );
    }

    #[test]
    fn sessions_are_live_until_expiry_and_track_last_use() {
        let mut inv = SessionInventory::default();
        inv.add(&issue(0, "ASIAONE", "octo/a", "s1", 3600));
        inv.add(&issue(10, "ASIATWO", "octo/b", "s2", 900));
        let mut failed = issue(20, "ASIABAD", "octo/b", "s2", 3600);
        failed.fail("AccessDenied", "no", 403);
        inv.add(&failed);
        inv.add(&use_key(30, "ASIAONE"));
        inv.add(&use_key(40, "ASIAONE"));
        let all = Filter::default();
        let live = inv.live(at(100), &all);
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].access_key_id, "ASIAONE");
        assert_eq!(live[0].last_used, Some(at(40)));
        assert_eq!(live[0].last_used_service.as_deref(), Some(SOURCE_KEYLESS));
        assert_eq!(live[1].last_used, None);
        // ASIATWO expires at 910.
        assert_eq!(inv.live(at(910), &all).len(), 1);
        // --principal takes the principal id too, as `audit query` does.
        for (principal, found) in [
            ("arn:aws:sts::123456789012:assumed-role/gha/ASIAONE", true),
            ("AROAEXAMPLEROLEID:ASIAONE", true),
            ("AROAEXAMPLEROLEID:ASIANONE", false),
        ] {
            let by_principal = Filter {
                principal: Some(principal.into()),
                ..Filter::default()
            };
            let keys: Vec<&str> = inv
                .live(at(100), &by_principal)
                .iter()
                .map(|s| s.access_key_id.as_str())
                .collect();
            assert_eq!(keys == ["ASIAONE"], found, "{principal}: {keys:?}");
        }
        let by_repo = Filter {
            repository: Some("octo/b".into()),
            ..Filter::default()
        };
        assert_eq!(inv.live(at(100), &by_repo)[0].access_key_id, "ASIATWO");
        let live = inv.live(at(100), &all);
        let csv = credential_report(&[(live[0], Active::Yes), (live[1], Active::No)]);
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], CREDENTIAL_REPORT_HEADER);
        assert_eq!(rows.len(), 3);
        assert!(rows[1].starts_with(
            "ASIAONE,arn:aws:sts::123456789012:assumed-role/gha/ASIAONE,session,ASIAONE,true,"
        ));
        assert!(
            rows[2].contains(",session,ASIATWO,false,"),
            "a revoked session is not active: {}",
            rows[2]
        );
        assert!(rows[2].contains(",no_information,N/A,"));
        let unchecked = credential_report(&[(live[1], Active::Unknown)]);
        assert!(
            unchecked.contains(",ASIATWO,no_information,"),
            "{unchecked}"
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        // Spreadsheets also start a formula after a leading tab or carriage return.
        assert_eq!(csv_field("\t=cmd()"), "'\t=cmd()");
        assert_eq!(csv_field("\r=cmd()"), "\"'\r=cmd()\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn text_lines_name_the_essentials() {
        let e = issue(0, "ASIAONE", "octo/a", "s1", 3600);
        let line = text_line(&e);
        for part in [
            "allow",
            "sts.amazonaws.com:AssumeRoleWithWebIdentity",
            "repo=octo/a",
            "sub=s1",
            "issued=ASIAONE",
        ] {
            assert!(line.contains(part), "{part} not in {line}");
        }
    }

    #[test]
    fn text_lines_escape_control_characters_from_the_request() {
        // A refused token's issuer is whatever an unauthenticated caller put in it, and the
        // action name is the caller's too.
        let mut e = AuditEvent::new(at(0), SOURCE_STS, "Assume\u{1b}[2J", "r", "ev");
        e.user_identity.kind = "WebIdentityUser".into();
        e.user_identity.identity_provider =
            Some("https://x\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}evil".into());
        e.fail("InvalidIdentityToken", "no", 400);
        let line = text_line(&e);
        assert_eq!(
            line,
            "2027-01-15T08:00:00.000000Z deny  sts.amazonaws.com:Assume\\u{1b}[2J \
             principal=https://x\\u{1b}]0;owned\\u{7}\\u{9b}31m\\u{202e}evil \
             error=InvalidIdentityToken ip= id=ev"
        );
        assert_eq!(terminal_safe("plain text/é"), "plain text/é");
    }

    #[test]
    fn a_refused_call_claiming_a_key_is_not_a_use_of_it() {
        let mut inv = SessionInventory::default();
        inv.add(&issue(0, "ASIAONE", "octo/a", "s1", 3600));
        // Anyone can sign a request with a made-up signature under someone's key id: the
        // record keeps the key id it claimed, unverified.
        let mut claimed = AuditEvent::new(at(50), SOURCE_STS, "GetCallerIdentity", "r", "c");
        claimed.user_identity.access_key_id = Some("ASIAONE".into());
        claimed.fail("SignatureDoesNotMatch", "no", 403);
        inv.add(&claimed);
        assert_eq!(inv.live(at(100), &Filter::default())[0].last_used, None);
        // A verified call, even one that was denied, is a use.
        let mut denied = use_key(60, "ASIAONE");
        denied.fail("AccessDenied", "no", 403);
        inv.add(&denied);
        assert_eq!(
            inv.live(at(100), &Filter::default())[0].last_used,
            Some(at(60))
        );
    }
}
