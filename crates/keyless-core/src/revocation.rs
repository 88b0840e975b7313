//! Revocation: ending live sessions before their expiry.
//!
//! AWS can only deny sessions of a role issued before an instant (`aws:TokenIssueTime`). keyless
//! revokes by any of the facts a session token carries:
//!
//! | target | ends |
//! |---|---|
//! | [`Target::Session`] | the one session with this access key id |
//! | [`Target::Role`] | every session of the role issued before the instant |
//! | [`Target::Subject`] | every session federated from this issuer + `sub`, issued before the instant |
//! | [`Target::SourceIdentity`] | every session carrying this source identity (chained ones too) |
//! | [`Target::Issuer`] | every session federated from this issuer |
//! | [`Target::KeyVersion`] | every session sealed with this key-ring version |
//!
//! "Issued before" compares the session's issue time, which tokens carry in whole seconds, with
//! the exact instant: a session issued in the same second as the instant is revoked too, so a
//! session issued before the instant never survives. For the web-identity targets (subject,
//! issuer, source identity) an OIDC token issued before the instant can no longer mint new
//! sessions either; otherwise a leaked token would outlive the revocation of what it minted.
//!
//! Revocations made through the API are scoped to the caller's account; the operator CLI on
//! the server's store may revoke across accounts. A revocation is kept until every session it
//! can match has expired ([`MAX_SESSION_LIFETIME`] past its instant), then garbage-collected.
//! Subject, issuer and source-identity revocations also refuse tokens, so they are kept until
//! every token issued before the instant is too old to be accepted
//! ([`TOKEN_REVOCATION_LIFETIME`]). A key-version revocation is kept for good
//! ([`KEPT_FOR_GOOD`]), since the holder of a stolen root secret seals sessions of any lifetime.
//!
//! Checking is a few hash lookups against a [`RevocationSet`] snapshot the edge keeps in
//! memory and rebuilds on change; the request path never reads the store.

use std::sync::Arc;

use keyless_token::SessionClaims;
use keyless_types::{AccountId, OffsetDateTime};
use serde_json::{Value, json};

use crate::FastMap;
use crate::caller::Caller;
use crate::directory::Directory;
use crate::error::ApiError;
use crate::sts::{Authorizer, Origin, iso8601};

/// The longest a session can live (`MaxSessionDuration` tops out at 12 hours), plus the clock
/// skew tokens are accepted with. A revocation older than this past its instant matches nothing.
pub const MAX_SESSION_LIFETIME: time::Duration = time::Duration::seconds(43_200 + 300);

/// How long a revocation that refuses tokens (subject, issuer, source identity) is kept past its
/// instant: the oldest token accepted ([`keyless_jwt::MAX_TOKEN_AGE`]) plus the largest clock
/// leeway a provider may be given (one hour). Longer than [`MAX_SESSION_LIFETIME`], so it covers
/// the sessions those tokens minted too.
pub const TOKEN_REVOCATION_LIFETIME: time::Duration =
    keyless_jwt::MAX_TOKEN_AGE.saturating_add(time::Duration::hours(1));

/// The expiry of revocations that are never garbage-collected (key versions): the last second
/// of year 9999.
pub const KEPT_FOR_GOOD: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59 UTC);

/// Most live revocations a `keyless:RevokeSessions` caller may add to; more are refused with
/// `LimitExceeded`. Counted over every revocation, so they leave room for this many beyond what
/// sessions revoking themselves can take ([`MAX_LIVE_OWN_REVOCATIONS`]).
pub const MAX_LIVE_REVOCATIONS: usize = 100_000 + MAX_LIVE_OWN_REVOCATIONS;

/// Most live session revocations at which a session may still revoke itself. Any job that can
/// get a session can revoke it, so without a budget of their own, many short jobs revoking
/// themselves would fill the shared one and refuse the revocations of an incident.
pub const MAX_LIVE_OWN_REVOCATIONS: usize = 100_000;

/// The action that revokes sessions.
pub const ACTION_REVOKE: &str = "keyless:RevokeSessions";
/// The action a session uses to revoke itself (always allowed).
pub const ACTION_REVOKE_OWN: &str = "keyless:RevokeOwnSession";
/// The action that lists revocations.
pub const ACTION_LIST: &str = "keyless:ListRevocations";

/// What a revocation matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session, by access key id.
    Session {
        /// `ASIA…`.
        access_key_id: String,
    },
    /// Sessions of a role, by role ARN.
    Role {
        /// `arn:aws:iam::<acct>:role/<path><name>`.
        role_arn: String,
    },
    /// Sessions federated from one token subject of one issuer.
    Subject {
        /// The issuer URL as tokens carry it in `iss`.
        issuer: String,
        /// The token's `sub`.
        subject: String,
    },
    /// Sessions carrying a source identity.
    SourceIdentity {
        /// The source identity.
        source_identity: String,
    },
    /// Sessions federated from an issuer.
    Issuer {
        /// The issuer URL as tokens carry it in `iss`.
        issuer: String,
    },
    /// Sessions sealed with a key-ring version.
    KeyVersion {
        /// The version number.
        version: u32,
    },
}

impl Target {
    /// The kind, as stored and as the API names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Session { .. } => "session",
            Target::Role { .. } => "role",
            Target::Subject { .. } => "subject",
            Target::SourceIdentity { .. } => "source-identity",
            Target::Issuer { .. } => "issuer",
            Target::KeyVersion { .. } => "key-version",
        }
    }

    /// The main value, as stored (`issuer` is stored separately for subjects).
    pub fn value(&self) -> String {
        match self {
            Target::Session { access_key_id } => access_key_id.clone(),
            Target::Role { role_arn } => role_arn.clone(),
            Target::Subject { subject, .. } => subject.clone(),
            Target::SourceIdentity { source_identity } => source_identity.clone(),
            Target::Issuer { issuer } => issuer.clone(),
            Target::KeyVersion { version } => version.to_string(),
        }
    }

    /// The issuer, for subject targets.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Target::Subject { issuer, .. } => Some(issuer),
            _ => None,
        }
    }

    /// Rebuilds a target from its stored columns.
    pub fn from_parts(kind: &str, value: &str, issuer: Option<&str>) -> Option<Target> {
        Some(match kind {
            "session" => Target::Session {
                access_key_id: value.to_owned(),
            },
            "role" => Target::Role {
                role_arn: value.to_owned(),
            },
            "subject" => Target::Subject {
                issuer: issuer?.to_owned(),
                subject: value.to_owned(),
            },
            "source-identity" => Target::SourceIdentity {
                source_identity: value.to_owned(),
            },
            "issuer" => Target::Issuer {
                issuer: value.to_owned(),
            },
            "key-version" => Target::KeyVersion {
                version: value.parse().ok()?,
            },
            _ => return None,
        })
    }

    /// The resource the revocation is authorized on, in `account`.
    pub fn resource_arn(&self, account: AccountId) -> String {
        match self {
            Target::Session { access_key_id } => {
                format!("arn:aws:keyless::{account}:session/{access_key_id}")
            }
            Target::Role { role_arn } => role_arn.clone(),
            Target::Subject { issuer, subject } => format!(
                "arn:aws:keyless::{account}:subject/{}/{subject}",
                crate::model::issuer_key_prefix(issuer)
            ),
            Target::SourceIdentity { source_identity } => {
                format!("arn:aws:keyless::{account}:source-identity/{source_identity}")
            }
            Target::Issuer { issuer } => format!(
                "arn:aws:iam::{account}:oidc-provider/{}",
                crate::model::issuer_key_prefix(issuer)
            ),
            Target::KeyVersion { version } => {
                format!("arn:aws:keyless::{account}:key-version/{version}")
            }
        }
    }

    /// The account the target itself names, if any (session key ids and role ARNs do).
    fn own_account(&self) -> Option<AccountId> {
        match self {
            Target::Session { access_key_id } => {
                keyless_token::account_from_access_key_id(access_key_id).ok()
            }
            Target::Role { role_arn } => role_arn
                .strip_prefix("arn:aws:iam::")
                .and_then(|r| r.get(..12))
                .and_then(|a| AccountId::parse(a).ok()),
            _ => None,
        }
    }
}

/// A revocation as requested, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    /// What it matches.
    pub target: Target,
    /// The account it is limited to; `None` for every account (operator CLI only).
    pub account: Option<AccountId>,
    /// Sessions issued before this instant are revoked (ignored for [`Target::Session`]).
    pub issued_before: OffsetDateTime,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it can be forgotten.
    pub expires_at: OffsetDateTime,
    /// Why, free text for the audit trail.
    pub reason: String,
    /// Who made it (a principal ARN, or `operator` for the CLI on the store).
    pub created_by: String,
}

/// A stored revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Store id, increasing.
    pub id: i64,
    /// The revocation.
    pub spec: NewRevocation,
    /// The audit `seq` of the record that made it durable in the audit log, once one was
    /// written and the row marked (`None` until then: its record may still have to be written).
    pub audited_seq: Option<u64>,
}

impl Revocation {
    /// The JSON form the API and CLI print.
    pub fn to_json(&self) -> Value {
        let s = &self.spec;
        let mut target = json!({ "type": s.target.kind() });
        match &s.target {
            Target::Session { access_key_id } => target["accessKeyId"] = json!(access_key_id),
            Target::Role { role_arn } => target["roleArn"] = json!(role_arn),
            Target::Subject { issuer, subject } => {
                target["issuer"] = json!(issuer);
                target["subject"] = json!(subject);
            }
            Target::SourceIdentity { source_identity } => {
                target["sourceIdentity"] = json!(source_identity);
            }
            Target::Issuer { issuer } => target["issuer"] = json!(issuer),
            Target::KeyVersion { version } => target["keyVersion"] = json!(version),
        }
        json!({
            "id": self.id,
            "target": target,
            "account": s.account.map(|a| a.to_string()),
            "issuedBefore": iso8601_millis(s.issued_before),
            "createdAt": iso8601_millis(s.created_at),
            "expiresAt": iso8601(s.expires_at),
            "reason": s.reason,
            "createdBy": s.created_by,
        })
    }
}

fn iso8601_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}.{:03}Z",
        iso8601(t).trim_end_matches('Z'),
        t.millisecond()
    )
}

/// `t` rounded up to a whole millisecond, as the store keeps instants.
fn ceil_millisecond(t: OffsetDateTime) -> OffsetDateTime {
    let below = i64::from(t.nanosecond() % 1_000_000);
    if below == 0 {
        t
    } else {
        t + time::Duration::nanoseconds(1_000_000 - below)
    }
}

/// Limits of the request fields.
const MAX_SUBJECT_LEN: usize = 1024;
const MAX_ISSUER_LEN: usize = 255;
const MAX_REASON_LEN: usize = 1024;

/// A revocation request as the API and CLI take it; [`RevocationRequest::validate`] turns it
/// into a [`NewRevocation`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationRequest {
    /// `session`, `role`, `subject`, `source-identity`, `issuer` or `key-version`.
    pub kind: String,
    /// The access key id, role ARN, subject, source identity, issuer URL or key version.
    pub value: String,
    /// The issuer URL, for `subject`.
    pub issuer: Option<String>,
    /// `now` (the default) or an RFC 3339 instant not in the future.
    pub issued_before: Option<String>,
    /// Free text.
    pub reason: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", 400, message)
}

fn check_access_key_id(v: &str) -> Result<(), ApiError> {
    let ok = v.len() == 20
        && v.starts_with("ASIA")
        && v.bytes()
            .skip(4)
            .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'));
    if ok && keyless_token::account_from_access_key_id(v).is_ok() {
        Ok(())
    } else {
        Err(invalid(
            "The access key id is not one keyless issued: ASIA followed by 16 characters of A-Z and 2-7.",
        ))
    }
}

fn check_issuer(v: &str) -> Result<(), ApiError> {
    let scheme_ok = v.starts_with("https://") || v.starts_with("http://");
    if !scheme_ok || v.len() > MAX_ISSUER_LEN || v.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(format!(
            "The issuer must be the provider URL exactly as tokens carry it in iss (https://…, at most {MAX_ISSUER_LEN} characters)."
        )));
    }
    Ok(())
}

fn check_role_arn(v: &str) -> Result<(), ApiError> {
    let rest = v.strip_prefix("arn:aws:iam::").unwrap_or("");
    let account_ok = rest.get(..12).is_some_and(|a| AccountId::parse(a).is_ok());
    let resource = rest.get(12..).unwrap_or("");
    let name_ok = resource.strip_prefix(":role/").is_some_and(|p| {
        let name = p.rsplit('/').next().unwrap_or("");
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    });
    if v.len() <= 2048 && account_ok && name_ok {
        Ok(())
    } else {
        Err(invalid(
            "The role must be a role ARN: arn:aws:iam::<12-digit account>:role/<path><name>.",
        ))
    }
}

fn check_source_identity(v: &str) -> Result<(), ApiError> {
    let ok = (2..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "The source identity must be 2-64 characters of [A-Za-z0-9_+=,.@-].",
        ))
    }
}

/// Parses `now` or an RFC 3339 instant.
pub fn parse_instant(v: Option<&str>, now: OffsetDateTime) -> Result<OffsetDateTime, ApiError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty() && *v != "now") else {
        return Ok(now);
    };
    if v.len() > 64 {
        return Err(invalid(
            "issuedBefore is too long: give now or an RFC 3339 instant.",
        ));
    }
    let t =
        OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).map_err(|_| {
            invalid(format!(
                "issuedBefore {v:?} is not an RFC 3339 instant (e.g. 2026-12-01T21:00:00Z) or now."
            ))
        })?;
    if t > now {
        return Err(invalid(
            "issuedBefore is in the future: a revocation ends sessions already issued; to stop new ones, change the trust policy.",
        ));
    }
    Ok(t)
}

impl RevocationRequest {
    /// Validates into a revocation made at `now` by `created_by` for `account` (`None`: every
    /// account). `current_key_version` is the version new sessions are sealed with, which cannot
    /// be revoked (rotate first), and the newest: a later one does not exist yet.
    pub fn validate(
        &self,
        account: Option<AccountId>,
        created_by: &str,
        current_key_version: u32,
        now: OffsetDateTime,
    ) -> Result<NewRevocation, ApiError> {
        let value = self.value.trim();
        if value.is_empty() {
            return Err(invalid(format!(
                "A {} revocation needs the value to revoke.",
                self.kind
            )));
        }
        let target = match self.kind.as_str() {
            "session" => {
                check_access_key_id(value)?;
                Target::Session {
                    access_key_id: value.to_owned(),
                }
            }
            "role" => {
                check_role_arn(value)?;
                Target::Role {
                    role_arn: value.to_owned(),
                }
            }
            "subject" => {
                let issuer = self.issuer.as_deref().map(str::trim).unwrap_or("");
                if issuer.is_empty() {
                    return Err(invalid(
                        "A subject revocation needs the issuer (provider URL) the subject belongs to.",
                    ));
                }
                check_issuer(issuer)?;
                if value.len() > MAX_SUBJECT_LEN || value.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "The subject must be at most {MAX_SUBJECT_LEN} characters with no control characters."
                    )));
                }
                Target::Subject {
                    issuer: issuer.to_owned(),
                    subject: value.to_owned(),
                }
            }
            "source-identity" => {
                check_source_identity(value)?;
                Target::SourceIdentity {
                    source_identity: value.to_owned(),
                }
            }
            "issuer" => {
                check_issuer(value)?;
                Target::Issuer {
                    issuer: value.to_owned(),
                }
            }
            "key-version" => {
                let version: u32 = value.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
                    invalid("The key version must be a positive integer (see keyless keys list).")
                })?;
                if version == current_key_version {
                    return Err(invalid(format!(
                        "Key version {version} is the one new sessions are sealed with; run keyless keys rotate first, then revoke it."
                    )));
                }
                // It would end every session sealed after the next rotation.
                if version > current_key_version {
                    return Err(invalid(format!(
                        "Key version {version} does not exist: the newest is {current_key_version} (see keyless keys list)."
                    )));
                }
                Target::KeyVersion { version }
            }
            other => {
                return Err(invalid(format!(
                    "Unknown revocation type {:?}: use session, role, subject, source-identity, issuer or key-version.",
                    other.chars().take(32).collect::<String>()
                )));
            }
        };
        if self.kind != "subject" && self.issuer.is_some() {
            return Err(invalid("issuer is only used with a subject revocation."));
        }
        let issued_before = match target {
            // One session, or one key version, is revoked whenever it was issued.
            Target::Session { .. } | Target::KeyVersion { .. } => {
                if self.issued_before.is_some() {
                    return Err(invalid(format!(
                        "issuedBefore does not apply to a {} revocation: it ends every matching session whenever it was issued.",
                        target.kind()
                    )));
                }
                now
            }
            _ => parse_instant(self.issued_before.as_deref(), now)?,
        };
        // The store keeps whole milliseconds: rounded down, a session issued in the instant's
        // millisecond but before it would survive, since tokens carry whole seconds.
        let issued_before = ceil_millisecond(issued_before);
        if let (Some(scope), Some(own)) = (account, target.own_account())
            && scope != own
        {
            return Err(ApiError::access_denied(format!(
                "The {} belongs to another account; revocations are limited to your own account ({scope}).",
                target.kind()
            )));
        }
        let reason = self.reason.clone().unwrap_or_default();
        if reason.len() > MAX_REASON_LEN || reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid(format!(
                "The reason must be at most {MAX_REASON_LEN} characters of text."
            )));
        }
        let expires_at = match target {
            // A version is revoked when its root secret may be out: its holder seals sessions
            // with any issue time and expiry, for as long as the version is in the ring (and
            // nothing retires versions), so no session lifetime bounds what it can match.
            Target::KeyVersion { .. } => KEPT_FOR_GOOD,
            _ => {
                let lifetime = match target {
                    Target::Subject { .. }
                    | Target::Issuer { .. }
                    | Target::SourceIdentity { .. } => TOKEN_REVOCATION_LIFETIME,
                    _ => MAX_SESSION_LIFETIME,
                };
                // Whole seconds, rounded up, as the store keeps expiry.
                let at = issued_before.max(now) + lifetime;
                at.replace_nanosecond(0).unwrap_or(at) + time::Duration::SECOND
            }
        };
        Ok(NewRevocation {
            target,
            account,
            issued_before,
            created_at: now,
            expires_at,
            reason,
            created_by: created_by.to_owned(),
        })
    }
}

impl NewRevocation {
    /// Whether the revocation concerns `account`, for listing: one scoped to it, or one for
    /// every account whose target does not name another account (a session key id or role
    /// ARN of another account is that account's business).
    pub fn concerns(&self, account: AccountId) -> bool {
        match self.account {
            Some(scope) => scope == account,
            None => self.target.own_account().is_none_or(|own| own == account),
        }
    }

    /// Names the target as sessions carry it, from `directory`: a role by its stored ARN (role
    /// names ignore case, so `role/Deploy` and `role/deploy` are one role, but sessions carry
    /// the stored spelling and are matched exactly), and an issuer by the URL of the provider it
    /// names (host case and a trailing `/` aside), in the revocation's account or, without one,
    /// in any. Without this a revocation spelled differently from the stored name was accepted
    /// and ended nothing. An unknown role is `NoSuchEntity` (its sessions are already refused);
    /// an issuer no provider has is kept as given (sessions of a deleted provider live on).
    /// Call it before authorizing, so the caller is authorized on the stored name.
    pub fn resolve(&mut self, directory: &Directory) -> Result<(), ApiError> {
        match &mut self.target {
            Target::Role { role_arn } => {
                let role = directory.role_by_arn(role_arn).ok_or_else(|| {
                    let name = role_arn.rsplit('/').next().unwrap_or("");
                    ApiError::new(
                        "NoSuchEntity",
                        404,
                        format!("The role with name {name} cannot be found."),
                    )
                })?;
                role.arn.clone_into(role_arn);
            }
            Target::Subject { issuer, .. } | Target::Issuer { issuer } => {
                let account = self.account;
                let mut urls: Vec<&str> = directory
                    .providers()
                    .filter(|p| account.is_none_or(|a| a == p.account))
                    .map(|p| p.url.as_str())
                    .filter(|url| same_issuer(url, issuer))
                    .collect();
                urls.sort_unstable();
                urls.dedup();
                match urls.as_slice() {
                    [] => {}
                    [one] => (*one).clone_into(issuer),
                    several if several.contains(&issuer.as_str()) => {}
                    several => {
                        return Err(invalid(format!(
                            "Several providers match {issuer}: {}; give the URL exactly as tokens carry it in iss.",
                            several.join(", ")
                        )));
                    }
                }
            }
            Target::Session { .. } | Target::SourceIdentity { .. } | Target::KeyVersion { .. } => {}
        }
        Ok(())
    }
}

/// Whether two issuer URLs name the same provider: the same host ignoring ASCII case, and the
/// same path ignoring one trailing `/` (the scheme aside, as provider ARNs and keys drop it).
fn same_issuer(a: &str, b: &str) -> bool {
    fn host_and_path(url: &str) -> (&str, &str) {
        let rest = crate::model::issuer_key_prefix(url);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        rest.split_at(rest.find('/').unwrap_or(rest.len()))
    }
    let ((host_a, path_a), (host_b, path_b)) = (host_and_path(a), host_and_path(b));
    host_a.eq_ignore_ascii_case(host_b) && path_a == path_b
}

/// The live revocations, indexed for the request path: every lookup borrows the session's
/// own strings, so checking allocates nothing.
///
/// Keys are shared strings and scopes shared lists, so that [`RevocationSet::with`] copies the
/// index without copying a string: taking a few new revocations costs a table copy, not a
/// rebuild from every row (2.4 to 3.3 ms against 22 to 28 ms for [`RevocationSet::build`] at
/// 99,000 session revocations, in a debug build).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RevocationSet {
    sessions: FastMap<Arc<str>, i64>,
    roles: FastMap<Arc<str>, Scopes>,
    // Issuer, then subject.
    subjects: FastMap<Arc<str>, FastMap<Arc<str>, Scopes>>,
    source_identities: FastMap<Arc<str>, Scopes>,
    issuers: FastMap<Arc<str>, Scopes>,
    key_versions: FastMap<u32, Scopes>,
    len: usize,
}

/// The latest instant (and its revocation id) per account scope (`None`: every account).
#[derive(Debug, Default, Clone, PartialEq)]
struct Scopes(Arc<Vec<(Option<AccountId>, OffsetDateTime, i64)>>);

impl Scopes {
    fn add(&mut self, r: &Revocation) {
        let (account, before) = (r.spec.account, r.spec.issued_before);
        let scopes = Arc::make_mut(&mut self.0);
        match scopes.iter_mut().find(|(a, _, _)| *a == account) {
            Some(e) if e.1 < before => *e = (account, before, r.id),
            Some(_) => {}
            None => scopes.push((account, before, r.id)),
        }
    }
    /// A revocation in scope for `account` whose instant is after `issued_at` (any instant
    /// when `issued_at` is `None`).
    fn matching(&self, account: AccountId, issued_at: Option<OffsetDateTime>) -> Option<Revoked> {
        self.0.iter().find_map(|(scope, before, id)| {
            let in_scope = scope.is_none_or(|a| a == account);
            let in_time = issued_at.is_none_or(|at| at < *before);
            (in_scope && in_time).then_some(Revoked { id: *id })
        })
    }
}

/// What [`RevocationSet::check_facts`] knows of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// The session's account.
    pub account: AccountId,
    /// The role ARN.
    pub role_arn: &'a str,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// The key-ring version that sealed it, when known.
    pub key_version: Option<u32>,
    /// The token issuer (`iss`) of a federated session, when known.
    pub issuer: Option<&'a str>,
    /// The token subject of a federated session, when known.
    pub subject: Option<&'a str>,
    /// The source identity.
    pub source_identity: Option<&'a str>,
    /// The sessions it was chained from, as far as known.
    pub chained_from: &'a [String],
}

/// Why a session or token is refused: the revocation that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revoked {
    /// The revocation's store id.
    pub id: i64,
}

impl RevocationSet {
    /// Indexes `revocations`, dropping those that can no longer match anything at `now`.
    pub fn build<'a>(
        revocations: impl IntoIterator<Item = &'a Revocation>,
        now: OffsetDateTime,
    ) -> RevocationSet {
        let mut set = RevocationSet::default();
        set.add_live(revocations, now);
        set
    }

    /// This set with `revocations` added (those still live at `now`): the same set as
    /// [`RevocationSet::build`] of this set's revocations followed by these. None of them may
    /// be in this set already (each would count twice towards [`RevocationSet::len`]). Those
    /// of this set that expired since it was built stay until the next build; they can match
    /// no live session, and only make the limits a little stricter meanwhile.
    pub fn with<'a>(
        &self,
        revocations: impl IntoIterator<Item = &'a Revocation>,
        now: OffsetDateTime,
    ) -> RevocationSet {
        let mut set = self.clone();
        set.add_live(revocations, now);
        set
    }

    fn add_live<'a>(
        &mut self,
        revocations: impl IntoIterator<Item = &'a Revocation>,
        now: OffsetDateTime,
    ) {
        for r in revocations.into_iter().filter(|r| r.spec.expires_at > now) {
            self.add(r);
        }
    }

    fn add(&mut self, r: &Revocation) {
        self.len += 1;
        match &r.spec.target {
            Target::Session { access_key_id } => {
                self.sessions.insert(access_key_id.as_str().into(), r.id);
            }
            Target::Role { role_arn } => self
                .roles
                .entry(role_arn.as_str().into())
                .or_default()
                .add(r),
            Target::Subject { issuer, subject } => self
                .subjects
                .entry(issuer.as_str().into())
                .or_default()
                .entry(subject.as_str().into())
                .or_default()
                .add(r),
            Target::SourceIdentity { source_identity } => self
                .source_identities
                .entry(source_identity.as_str().into())
                .or_default()
                .add(r),
            Target::Issuer { issuer } => self
                .issuers
                .entry(issuer.as_str().into())
                .or_default()
                .add(r),
            Target::KeyVersion { version } => {
                self.key_versions.entry(*version).or_default().add(r);
            }
        }
    }

    /// How many revocations are live.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether a revocation authorized as `action` ([`ACTION_REVOKE`] or [`ACTION_REVOKE_OWN`])
    /// fits in its budget.
    pub fn has_room_for(&self, action: &str) -> bool {
        if action == ACTION_REVOKE_OWN {
            self.sessions.len() < MAX_LIVE_OWN_REVOCATIONS
        } else {
            self.len < MAX_LIVE_REVOCATIONS
        }
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The subject, issuer or source-identity revocation matching a federated identity.
    fn federated(
        &self,
        account: AccountId,
        issuer: &str,
        subject: &str,
        source_identity: Option<&str>,
        issued_at: OffsetDateTime,
    ) -> Option<Revoked> {
        let at = Some(issued_at);
        self.subjects
            .get(issuer)
            .and_then(|subjects| subjects.get(subject))
            .and_then(|s| s.matching(account, at))
            .or_else(|| self.issuers.get(issuer)?.matching(account, at))
            .or_else(|| {
                self.source_identities
                    .get(source_identity?)?
                    .matching(account, at)
            })
    }

    /// A session revocation of this session or of one it was chained from: a chain's sessions
    /// were all issued before the revocation (a revoked session cannot chain), and chained
    /// sessions last at most an hour, so the revocation outlives them all.
    fn session_or_ancestor(&self, access_key_id: &str, chained_from: &[String]) -> Option<Revoked> {
        if self.sessions.is_empty() {
            return None;
        }
        std::iter::once(access_key_id)
            .chain(chained_from.iter().map(String::as_str))
            .find_map(|k| self.sessions.get(k))
            .map(|id| Revoked { id: *id })
    }

    /// Whether the session with this key id, claims and key version is revoked.
    pub fn check_session(
        &self,
        access_key_id: &str,
        claims: &SessionClaims,
        key_version: u32,
    ) -> Option<Revoked> {
        if self.is_empty() {
            return None;
        }
        if let Some(r) = self.session_or_ancestor(access_key_id, &claims.chained_from) {
            return Some(r);
        }
        let (account, at) = (claims.account, claims.issued_at);
        let si = claims.source_identity.as_deref();
        self.roles
            .get(claims.role_arn.as_str())
            .and_then(|s| s.matching(account, Some(at)))
            // Every session sealed with a revoked version, whenever it was issued.
            .or_else(|| self.key_versions.get(&key_version)?.matching(account, None))
            .or_else(|| match &claims.federated {
                Some(f) => self.federated(account, &f.issuer, &f.subject, si, at),
                None => self.source_identities.get(si?)?.matching(account, Some(at)),
            })
    }

    /// Whether a session known only from its facts (e.g. rebuilt from the audit trail by
    /// `keyless sessions list`) is revoked: the same rules as [`RevocationSet::check_session`],
    /// with the facts that are unknown (`None`) matching nothing.
    pub fn check_facts(&self, f: &SessionFacts<'_>) -> Option<Revoked> {
        if self.is_empty() {
            return None;
        }
        if let Some(r) = self.session_or_ancestor(f.access_key_id, f.chained_from) {
            return Some(r);
        }
        let (account, at) = (f.account, f.issued_at);
        self.roles
            .get(f.role_arn)
            .and_then(|s| s.matching(account, Some(at)))
            .or_else(|| {
                self.key_versions
                    .get(&f.key_version?)?
                    .matching(account, None)
            })
            .or_else(|| match (f.issuer, f.subject) {
                (Some(issuer), Some(subject)) => {
                    self.federated(account, issuer, subject, f.source_identity, at)
                }
                _ => self
                    .source_identities
                    .get(f.source_identity?)?
                    .matching(account, Some(at)),
            })
    }

    /// Whether a verified OIDC token (issuer, subject, source identity claim, `iat`) may still
    /// mint sessions in `account`: a token issued before a subject, issuer or source-identity
    /// revocation cannot.
    pub fn check_token(
        &self,
        account: AccountId,
        issuer: &str,
        subject: &str,
        source_identity: Option<&str>,
        issued_at: OffsetDateTime,
    ) -> Option<Revoked> {
        self.federated(account, issuer, subject, source_identity, issued_at)
    }
}

/// The error a revoked session's request gets. Like AWS, the caller learns only that the token
/// is no longer valid; the revocation id goes to the operator's log and audit trail.
pub fn revoked_session_error(service: &str) -> ApiError {
    if service == "s3" {
        ApiError::new(
            "InvalidToken",
            400,
            "The provided token is malformed or otherwise invalid.",
        )
    } else {
        ApiError::new(
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid.",
        )
    }
}

/// The error a web-identity token issued before a revocation gets.
pub fn revoked_token_error() -> ApiError {
    ApiError::new(
        "IDPRejectedClaim",
        403,
        "The ID Token provided has been revoked: sessions from this identity issued before a revocation are refused; get a new token from the identity provider.",
    )
}

/// Everything authorizing a revocation needs.
pub struct RevokeEnv<'a> {
    /// The snapshot (guardrails of the caller's account).
    pub directory: &'a Directory,
    /// Seals the explanation of a denial.
    pub authorizer: Authorizer<'a>,
    /// Now.
    pub now: OffsetDateTime,
    /// The caller's address and transport.
    pub origin: Origin<'a>,
}

/// Authorizes `caller` to make `revocation`: its own session is always allowed
/// (`keyless:RevokeOwnSession`); anything else needs `keyless:RevokeSessions` on the target's
/// resource ARN from the caller's policies and guardrails.
pub fn authorize_revocation(
    env: &RevokeEnv<'_>,
    caller: &Caller,
    revocation: &NewRevocation,
) -> Result<&'static str, ApiError> {
    if let Target::Session { access_key_id } = &revocation.target
        && access_key_id == caller.access_key_id()
    {
        return Ok(ACTION_REVOKE_OWN);
    }
    let resource = revocation.target.resource_arn(caller.account());
    require(env, caller, ACTION_REVOKE, &resource)?;
    Ok(ACTION_REVOKE)
}

/// Authorizes `caller` to list its account's revocations (`keyless:ListRevocations` on `*`).
pub fn authorize_list(env: &RevokeEnv<'_>, caller: &Caller) -> Result<(), ApiError> {
    require(env, caller, ACTION_LIST, "*")
}

fn require(
    env: &RevokeEnv<'_>,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> Result<(), ApiError> {
    let account = caller.account().to_string();
    caller.require_allowed(
        env.directory,
        &env.authorizer,
        action,
        resource,
        Some(&account),
        env.now,
        &env.origin,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyless_token::FederatedFacts;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn acct() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn claims(issued: i64) -> SessionClaims {
        SessionClaims {
            account: acct(),
            role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
            role_id: "AROAEXAMPLEEXAMPLE123".into(),
            session_name: "s".into(),
            issued_at: t(issued),
            expires_at: t(issued + 900),
            source_identity: Some("alice".into()),
            tags: vec![],
            transitive_tag_keys: vec![],
            session_policy: None,
            policy_arns: vec![],
            mfa: None,
            federated: Some(FederatedFacts {
                issuer: "https://issuer.example".into(),
                subject: "repo:o/r:ref:refs/heads/main".into(),
                audience: "sts.amazonaws.com".into(),
                provider_arn: "arn:aws:iam::123456789012:oidc-provider/issuer.example".into(),
            }),
            chain_depth: 0,
            chained_from: vec![],
        }
    }

    fn akid() -> String {
        let mut rng = rand::rng();
        keyless_token::new_access_key_id(acct(), &mut rng)
    }

    fn req(kind: &str, value: &str) -> RevocationRequest {
        RevocationRequest {
            kind: kind.into(),
            value: value.into(),
            ..RevocationRequest::default()
        }
    }

    fn make(r: &RevocationRequest, account: Option<AccountId>, now: OffsetDateTime) -> Revocation {
        Revocation {
            id: 1,
            spec: r.validate(account, "test", 9, now).unwrap(),
            audited_seq: None,
        }
    }

    #[test]
    fn sessions_revoking_themselves_cannot_use_up_the_operators_budget() {
        let template = make(&req("session", &akid()), None, t(100));
        let own: Vec<Revocation> = (0..MAX_LIVE_OWN_REVOCATIONS)
            .map(|i| {
                let mut r = template.clone();
                r.id = i as i64;
                r.spec.target = Target::Session {
                    access_key_id: format!("ASIA{i:016}"),
                };
                r
            })
            .collect();
        let set = RevocationSet::build(&own, t(100));
        assert!(!set.has_room_for(ACTION_REVOKE_OWN));
        assert!(set.has_room_for(ACTION_REVOKE));
        // The operator's budget holds as many again, session revocations included.
        let mut all = own;
        all.extend(all.clone().into_iter().map(|mut r| {
            r.spec.target = Target::Role {
                role_arn: format!("arn:aws:iam::123456789012:role/r{}", r.id),
            };
            r
        }));
        assert!(
            !RevocationSet::build(&all[..MAX_LIVE_REVOCATIONS], t(100)).has_room_for(ACTION_REVOKE)
        );
        assert!(
            RevocationSet::build(&all[..MAX_LIVE_REVOCATIONS - 1], t(100))
                .has_room_for(ACTION_REVOKE)
        );
    }

    #[test]
    fn session_revocation_matches_only_that_key() {
        let id = akid();
        let r = make(&req("session", &id), None, t(100));
        let set = RevocationSet::build(&[r], t(100));
        assert!(set.check_session(&id, &claims(0), 1).is_some());
        assert!(set.check_session(&akid(), &claims(0), 1).is_none());
    }

    #[test]
    fn role_revocation_ends_sessions_issued_before_the_instant_only() {
        let mut r = req("role", "arn:aws:iam::123456789012:role/deploy");
        r.issued_before = Some(iso8601(t(50)));
        let set = RevocationSet::build(&[make(&r, None, t(100))], t(100));
        assert!(set.check_session(&akid(), &claims(49), 1).is_some());
        assert!(set.check_session(&akid(), &claims(50), 1).is_none());
        let mut other = claims(0);
        other.role_arn = "arn:aws:iam::123456789012:role/other".into();
        assert!(set.check_session(&akid(), &other, 1).is_none());
    }

    #[test]
    fn same_second_as_the_instant_is_revoked() {
        // Tokens carry whole seconds: t(50) may have been t(50.9) in reality, before t(50.95).
        let now = t(50) + time::Duration::milliseconds(950);
        let set = RevocationSet::build(
            &[make(
                &req("role", "arn:aws:iam::123456789012:role/deploy"),
                None,
                now,
            )],
            now,
        );
        assert!(set.check_session(&akid(), &claims(50), 1).is_some());
        assert!(set.check_session(&akid(), &claims(51), 1).is_none());
    }

    #[test]
    fn an_instant_within_a_second_survives_the_stores_milliseconds() {
        // The store keeps instants in whole milliseconds. `now` 50.0004 stored as 50.000 spared
        // a session issued at 50.0001 (its token says 50, and 50 < 50.000 is false).
        let now = t(50) + time::Duration::microseconds(400);
        for r in [
            req("role", "arn:aws:iam::123456789012:role/deploy"),
            RevocationRequest {
                issued_before: Some("2027-01-15T08:00:00.0000004Z".into()),
                ..req("source-identity", "alice")
            },
        ] {
            let spec = r.validate(None, "t", 9, now).unwrap();
            assert_eq!(
                spec.issued_before.nanosecond() % 1_000_000,
                0,
                "{r:?}: {}",
                spec.issued_before
            );
        }
        let spec = req("role", "arn:aws:iam::123456789012:role/deploy")
            .validate(None, "t", 9, now)
            .unwrap();
        assert_eq!(spec.issued_before, t(50) + time::Duration::milliseconds(1));
        let rev = Revocation {
            id: 1,
            spec,
            audited_seq: None,
        };
        let set = RevocationSet::build(&[rev], now);
        assert!(set.check_session(&akid(), &claims(50), 1).is_some());
        assert!(set.check_session(&akid(), &claims(51), 1).is_none());
    }

    #[test]
    fn subject_issuer_and_source_identity_match_sessions_and_tokens() {
        let mut subject = req("subject", "repo:o/r:ref:refs/heads/main");
        subject.issuer = Some("https://issuer.example".into());
        for r in [
            subject,
            req("issuer", "https://issuer.example"),
            req("source-identity", "alice"),
        ] {
            let set = RevocationSet::build(&[make(&r, Some(acct()), t(100))], t(100));
            assert!(
                set.check_session(&akid(), &claims(10), 1).is_some(),
                "{r:?}"
            );
            assert!(
                set.check_session(&akid(), &claims(101), 1).is_none(),
                "{r:?}"
            );
            let token = |iat| {
                set.check_token(
                    acct(),
                    "https://issuer.example",
                    "repo:o/r:ref:refs/heads/main",
                    Some("alice"),
                    t(iat),
                )
            };
            assert!(token(99).is_some(), "{r:?}");
            assert!(token(101).is_none(), "{r:?}");
            // Another account is out of an account-scoped revocation's reach.
            let other = AccountId::parse("210987654321").unwrap();
            let mut c = claims(10);
            c.account = other;
            assert!(set.check_session(&akid(), &c, 1).is_none(), "{r:?}");
        }
    }

    #[test]
    fn a_session_revocation_ends_the_sessions_chained_from_it() {
        let (root, middle, other) = (
            "ASIAROOTROOTROOTROOT".to_owned(),
            "ASIAMIDDLEMIDDLEMIDD".to_owned(),
            "ASIAOTHEROTHEROTHERO".to_owned(),
        );
        let mut child = claims(10);
        child.chained_from = vec![root.clone(), middle.clone()];
        let mut sibling = claims(10);
        sibling.chained_from = vec![other.clone()];
        for revoked in [&root, &middle] {
            let set = RevocationSet::build(&[make(&req("session", revoked), None, t(100))], t(100));
            assert!(set.check_session(&akid(), &child, 1).is_some(), "{revoked}");
            assert!(
                set.check_session(&akid(), &sibling, 1).is_none(),
                "{revoked}"
            );
            let facts = SessionFacts {
                access_key_id: &akid(),
                account: child.account,
                role_arn: &child.role_arn,
                issued_at: child.issued_at,
                key_version: None,
                issuer: None,
                subject: None,
                source_identity: None,
                chained_from: &child.chained_from,
            };
            assert!(set.check_facts(&facts).is_some(), "{revoked}");
        }
        // A session's revocation does not reach the session it was chained from.
        let set = RevocationSet::build(&[make(&req("session", &akid()), None, t(100))], t(100));
        assert!(set.check_session(&root, &claims(10), 1).is_none());
    }

    #[test]
    fn key_version_revocation_ends_every_session_of_that_version() {
        let set = RevocationSet::build(&[make(&req("key-version", "3"), None, t(100))], t(100));
        assert!(set.check_session(&akid(), &claims(200), 3).is_some());
        assert!(set.check_session(&akid(), &claims(10), 4).is_none());
    }

    #[test]
    fn facts_from_the_audit_trail_match_like_the_session() {
        let id = akid();
        let c = claims(10);
        let f = c.federated.as_ref().unwrap();
        let facts = SessionFacts {
            access_key_id: &id,
            account: c.account,
            role_arn: &c.role_arn,
            issued_at: c.issued_at,
            key_version: Some(3),
            issuer: Some(&f.issuer),
            subject: Some(&f.subject),
            source_identity: c.source_identity.as_deref(),
            chained_from: &[],
        };
        let mut subject = req("subject", "repo:o/r:ref:refs/heads/main");
        subject.issuer = Some("https://issuer.example".into());
        for r in [
            req("session", &id),
            req("role", "arn:aws:iam::123456789012:role/deploy"),
            req("key-version", "3"),
            subject,
            req("issuer", "https://issuer.example"),
            req("source-identity", "alice"),
        ] {
            let mut rev = make(&r, None, t(100));
            rev.id = 7;
            let set = RevocationSet::build(&[rev], t(100));
            assert_eq!(set.check_facts(&facts), Some(Revoked { id: 7 }), "{r:?}");
            assert_eq!(
                set.check_facts(&facts).is_some(),
                set.check_session(&id, &c, 3).is_some()
            );
        }
        // Unknown facts match nothing; later sessions are not caught by an instant.
        let set = RevocationSet::build(&[make(&req("key-version", "3"), None, t(100))], t(100));
        let unknown = SessionFacts {
            key_version: None,
            ..facts
        };
        assert!(set.check_facts(&unknown).is_none());
        let set = RevocationSet::build(
            &[make(&req("issuer", "https://issuer.example"), None, t(100))],
            t(100),
        );
        let later = SessionFacts {
            issued_at: t(101),
            ..facts
        };
        assert!(set.check_facts(&later).is_none());
        let no_issuer = SessionFacts {
            issuer: None,
            ..facts
        };
        assert!(set.check_facts(&no_issuer).is_none());
    }

    #[test]
    fn a_key_version_newer_than_the_current_one_cannot_be_revoked() {
        // Revoking version 10 while 9 mints would end every session of the next rotation.
        for v in ["10", "11", "4294967295"] {
            let e = req("key-version", v)
                .validate(Some(acct()), "t", 9, t(100))
                .unwrap_err();
            assert_eq!((e.code, e.status), ("ValidationError", 400), "{v}");
            assert!(e.message.contains("newest"), "{}", e.message);
        }
        assert!(
            req("key-version", "8")
                .validate(None, "t", 9, t(100))
                .is_ok()
        );
    }

    #[test]
    fn a_key_version_revocation_outlives_any_session_a_stolen_key_can_seal() {
        // Whoever holds a revoked version's root secret seals tokens with any issue time and
        // expiry, at any time: the version stays in the ring, so the revocation must too.
        let r = make(&req("key-version", "3"), None, t(100));
        let years_later = t(100) + time::Duration::days(3650);
        assert!(r.spec.expires_at > years_later, "{}", r.spec.expires_at);
        let set = RevocationSet::build(&[r], years_later);
        let mut forged = claims(0);
        forged.issued_at = years_later;
        forged.expires_at = years_later + time::Duration::hours(1);
        assert!(set.check_session(&akid(), &forged, 3).is_some());
        assert!(set.check_session(&akid(), &forged, 4).is_none());
    }

    #[test]
    fn a_revocation_that_refuses_tokens_is_kept_until_they_are_too_old() {
        // A token issued just before the instant is accepted until MAX_TOKEN_AGE (plus leeway)
        // after its iat, whatever its exp: the revocation must still be there a day later.
        let mut subject = req("subject", "repo:o/r:ref:refs/heads/main");
        subject.issuer = Some("https://issuer.example".into());
        let a_day_later = t(100) + keyless_jwt::MAX_TOKEN_AGE + time::Duration::minutes(30);
        for r in [
            subject,
            req("issuer", "https://issuer.example"),
            req("source-identity", "alice"),
        ] {
            let rev = make(&r, Some(acct()), t(100));
            assert!(rev.spec.expires_at > a_day_later, "{r:?}");
            let set = RevocationSet::build(&[rev], a_day_later);
            let token = set.check_token(
                acct(),
                "https://issuer.example",
                "repo:o/r:ref:refs/heads/main",
                Some("alice"),
                t(99),
            );
            assert!(token.is_some(), "{r:?}");
        }
        // Sessions revoked by key id or role end with the longest session.
        for r in [
            req("session", &akid()),
            req("role", "arn:aws:iam::123456789012:role/deploy"),
        ] {
            let rev = make(&r, None, t(100));
            assert!(rev.spec.expires_at <= t(100) + MAX_SESSION_LIFETIME + time::Duration::SECOND);
        }
    }

    /// Revocations of every kind: several per target, in several account scopes, at several
    /// instants (ties included), one expired, with increasing ids.
    fn varied_revocations() -> Vec<Revocation> {
        let other = AccountId::parse("210987654321").unwrap();
        let mut subject = req("subject", "repo:o/r:ref:refs/heads/main");
        subject.issuer = Some("https://issuer.example".into());
        let role = req("role", "arn:aws:iam::123456789012:role/deploy");
        let key = akid();
        let made = [
            (req("session", &key), None, t(100)),
            (req("session", &key), None, t(101)),
            (req("session", &akid()), Some(acct()), t(100)),
            (role.clone(), Some(acct()), t(100)),
            (role.clone(), None, t(90)),
            (role.clone(), Some(acct()), t(110)),
            (role.clone(), Some(acct()), t(110)),
            (role, Some(other), t(95)),
            (subject.clone(), Some(acct()), t(100)),
            (subject, None, t(120)),
            (
                req("issuer", "https://issuer.example"),
                Some(acct()),
                t(100),
            ),
            (req("source-identity", "alice"), None, t(100)),
            (req("source-identity", "alice"), Some(acct()), t(130)),
            (req("key-version", "1"), None, t(100)),
            (req("key-version", "1"), Some(acct()), t(100)),
        ];
        let mut rows: Vec<Revocation> = made
            .iter()
            .enumerate()
            .map(|(i, (r, account, now))| {
                let mut made = make(r, None, *now);
                (made.id, made.spec.account) = (i as i64 + 1, *account);
                made
            })
            .collect();
        let mut expired = make(&req("session", &akid()), None, t(0));
        expired.id = rows.len() as i64 + 1;
        expired.spec.expires_at = t(99);
        rows.push(expired);
        rows
    }

    #[test]
    fn a_set_with_revocations_added_is_the_set_built_from_all_of_them() {
        let rows = varied_revocations();
        let now = t(200);
        let whole = RevocationSet::build(&rows, now);
        assert_eq!(whole.len(), rows.len() - 1);
        for split in 0..=rows.len() {
            let (first, then) = rows.split_at(split);
            let base = RevocationSet::build(first, now);
            assert_eq!(base.with(then, now), whole, "split at {split}");
            // The set added to is left as it was (its scopes are shared, not changed in place).
            assert_eq!(base, RevocationSet::build(first, now), "split at {split}");
        }
        let one_by_one = rows
            .iter()
            .fold(RevocationSet::default(), |set, r| set.with([r], now));
        assert_eq!(one_by_one, whole);
    }

    #[test]
    fn expired_revocations_are_dropped() {
        let r = make(&req("session", &akid()), None, t(0));
        let later = t(0) + MAX_SESSION_LIFETIME + time::Duration::seconds(1);
        assert_eq!(RevocationSet::build(&[r], later).len(), 0);
    }

    #[test]
    fn bad_requests_are_refused_with_validation_errors() {
        let now = t(100);
        let cases = [
            req("session", "AKIAIOSFODNN7EXAMPLE"),
            req("session", "ASIA0000000000000000"),
            req("session", ""),
            req("role", "arn:aws:iam::123:role/x"),
            req("role", "arn:aws:iam::123456789012:user/x"),
            req("subject", "repo:o/r"),
            req("source-identity", "a"),
            req("source-identity", "has space"),
            req("issuer", "ftp://x"),
            req("key-version", "0"),
            req("key-version", "9"),
            req("key-version", "-1"),
            req("everything", "x"),
            RevocationRequest {
                issued_before: Some("2099-01-01T00:00:00Z".into()),
                ..req("role", "arn:aws:iam::123456789012:role/deploy")
            },
            RevocationRequest {
                issued_before: Some("yesterday".into()),
                ..req("role", "arn:aws:iam::123456789012:role/deploy")
            },
            RevocationRequest {
                issued_before: Some("2026-01-01T00:00:00Z".into()),
                ..req("session", &akid())
            },
            RevocationRequest {
                issuer: Some("https://issuer.example".into()),
                ..req("role", "arn:aws:iam::123456789012:role/deploy")
            },
            RevocationRequest {
                reason: Some("x".repeat(2000)),
                ..req("source-identity", "alice")
            },
        ];
        for r in cases {
            let e = r.validate(Some(acct()), "t", 9, now).unwrap_err();
            assert_eq!((e.code, e.status), ("ValidationError", 400), "{r:?}: {e:?}");
        }
    }

    #[test]
    fn api_revocations_stay_in_the_callers_account() {
        let other = AccountId::parse("210987654321").unwrap();
        let e = req("role", "arn:aws:iam::123456789012:role/deploy")
            .validate(Some(other), "t", 9, t(0))
            .unwrap_err();
        assert_eq!(e.code, "AccessDenied");
        let e = req("session", &akid())
            .validate(Some(other), "t", 9, t(0))
            .unwrap_err();
        assert_eq!(e.code, "AccessDenied");
    }

    fn directory() -> Directory {
        use crate::model::{Account, Entities, OidcProvider, Origin, Role};
        let other = AccountId::parse("210987654321").unwrap();
        let provider = |account, url: &str| OidcProvider {
            account,
            url: url.into(),
            client_ids: vec!["sts.amazonaws.com".into()],
            thumbprints: vec![],
            allow_http: false,
            tags: Default::default(),
            origin: Origin::Config,
            created: t(0),
        };
        let account = |id| Account {
            id,
            name: "a".into(),
            ou_path: "/".into(),
            origin: Origin::Config,
        };
        let d = Directory::build(&Entities {
            accounts: vec![account(acct()), account(other)],
            providers: vec![
                provider(acct(), "https://Issuer.Example/tenant/"),
                provider(other, "https://issuer.example/tenant"),
                provider(other, "https://solo.example"),
            ],
            roles: vec![Role {
                account: acct(),
                name: "Deploy".into(),
                path: "/ci/".into(),
                role_id: "AROAEXAMPLEEXAMPLE123".into(),
                trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#.into(),
                trust_principal_ids: Default::default(),
                inline_policies: vec![],
                permissions_boundary: None,
                permissions_boundary_arn: None,
                attached_policies: vec![],
                max_session_duration: 3600,
                description: String::new(),
                tags: Default::default(),
                origin: Origin::Config,
                created: t(0),
            }],
            ..Entities::default()
        });
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        d
    }

    fn resolved(r: &RevocationRequest, account: Option<AccountId>) -> Result<Target, ApiError> {
        let mut spec = r.validate(account, "t", 9, t(100)).unwrap();
        spec.resolve(&directory())?;
        Ok(spec.target)
    }

    #[test]
    fn a_role_is_revoked_under_its_stored_arn_however_it_is_cased() {
        let stored = "arn:aws:iam::123456789012:role/ci/Deploy";
        for spelled in [
            stored,
            "arn:aws:iam::123456789012:role/ci/deploy",
            "arn:aws:iam::123456789012:role/ci/DEPLOY",
        ] {
            let target = resolved(&req("role", spelled), Some(acct())).unwrap();
            assert_eq!(
                target,
                Target::Role {
                    role_arn: stored.into()
                },
                "{spelled}"
            );
        }
        // Another path, or no such role: nothing to revoke.
        for missing in [
            "arn:aws:iam::123456789012:role/Deploy",
            "arn:aws:iam::123456789012:role/ci/nosuch",
        ] {
            let e = resolved(&req("role", missing), None).unwrap_err();
            assert_eq!((e.code, e.status), ("NoSuchEntity", 404), "{missing}");
        }
    }

    #[test]
    fn an_issuer_is_revoked_under_its_providers_url() {
        let issuer = |v: &str| req("issuer", v);
        let url = |t: Target| match t {
            Target::Issuer { issuer } | Target::Subject { issuer, .. } => issuer,
            other => panic!("{other:?}"),
        };
        for spelled in [
            "https://issuer.example/tenant",
            "https://ISSUER.example/tenant/",
            "http://issuer.example/tenant",
        ] {
            let got = url(resolved(&issuer(spelled), Some(acct())).unwrap());
            assert_eq!(got, "https://Issuer.Example/tenant/", "{spelled}");
            let mut subject = req("subject", "repo:o/r");
            subject.issuer = Some(spelled.into());
            let got = url(resolved(&subject, Some(acct())).unwrap());
            assert_eq!(got, "https://Issuer.Example/tenant/", "{spelled}");
        }
        // The path is compared exactly; an issuer no provider has is kept as given.
        let got = url(resolved(&issuer("https://issuer.example/Tenant"), Some(acct())).unwrap());
        assert_eq!(got, "https://issuer.example/Tenant");
        // Another account's provider is not looked at.
        let got = url(resolved(&issuer("https://SOLO.example"), Some(acct())).unwrap());
        assert_eq!(got, "https://SOLO.example");
        let got = url(resolved(&issuer("https://SOLO.example/"), None).unwrap());
        assert_eq!(got, "https://solo.example");
        // Across accounts, two spellings of one issuer: only an exact one is taken.
        let e = resolved(&issuer("https://issuer.example/tenant/"), None).unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(
            e.message
                .contains("https://Issuer.Example/tenant/, https://issuer.example/tenant"),
            "{}",
            e.message
        );
        let got = url(resolved(&issuer("https://issuer.example/tenant"), None).unwrap());
        assert_eq!(got, "https://issuer.example/tenant");
    }

    #[test]
    fn a_revocation_concerns_its_account_or_every_account_its_target_allows() {
        let other = AccountId::parse("210987654321").unwrap();
        let mut foreign_key = req("session", "x");
        foreign_key.value = keyless_token::new_access_key_id(other, &mut rand::rng());
        let spec = |r: &RevocationRequest, account| r.validate(account, "t", 9, t(0)).unwrap();
        assert!(!spec(&foreign_key, None).concerns(acct()));
        assert!(spec(&foreign_key, None).concerns(other));
        let role = req("role", "arn:aws:iam::210987654321:role/x");
        assert!(!spec(&role, None).concerns(acct()));
        for everywhere in [req("source-identity", "alice"), req("key-version", "2")] {
            assert!(spec(&everywhere, None).concerns(acct()));
            assert!(spec(&everywhere, None).concerns(other));
            assert!(!spec(&everywhere, Some(other)).concerns(acct()));
        }
    }

    #[test]
    fn stored_parts_round_trip() {
        let mut subject = req("subject", "repo:o/r:ref:refs/heads/main");
        subject.issuer = Some("https://issuer.example".into());
        for r in [
            req("session", &akid()),
            req("role", "arn:aws:iam::123456789012:role/path/deploy"),
            subject,
            req("source-identity", "alice"),
            req("issuer", "https://issuer.example"),
            req("key-version", "2"),
        ] {
            let spec = r.validate(None, "t", 9, t(0)).unwrap();
            let back = Target::from_parts(
                spec.target.kind(),
                &spec.target.value(),
                spec.target.issuer(),
            );
            assert_eq!(back.as_ref(), Some(&spec.target));
        }
    }
}
