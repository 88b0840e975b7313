//! The audit event: a CloudTrail-shaped record of one call or decision.
//!
//! Field names and shapes follow CloudTrail's record contents (`eventVersion`, `userIdentity`
//! with `sessionContext`, `requestParameters`, `responseElements`, …) so tools that read
//! CloudTrail read these. keyless adds one top-level field, `decision` (`allow`, `deny` or
//! `error`), so queries need not guess from error codes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// CloudTrail's current record format version.
pub const EVENT_VERSION: &str = "1.09";
/// `eventSource` of STS calls.
pub const SOURCE_STS: &str = "sts.amazonaws.com";
/// `eventSource` of IAM calls.
pub const SOURCE_IAM: &str = "iam.amazonaws.com";
/// `eventSource` of keyless's own events (`/v1/authorize`, revocations, …).
pub const SOURCE_KEYLESS: &str = "keyless";
/// What CloudTrail writes for a parameter it will not show.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";
/// Longest string value kept in a record; longer values are cut (with a `…[truncated]` mark).
pub const MAX_VALUE_CHARS: usize = 2048;
/// Longest `errorMessage` kept (an `AccessDenied` carries an encoded authorization message of a
/// few KiB that the operator may want to decode).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 8192;

/// The outcome of the recorded call, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Succeeded / allowed.
    Allow,
    /// Refused because of the request or the caller (a 4xx answer, an authorization deny).
    Deny,
    /// Failed on our side (a 5xx answer).
    Error,
}

impl Decision {
    /// The decision of a call answered with HTTP `status` (`None` = success).
    pub fn of_status(status: Option<u16>) -> Decision {
        match status {
            None => Decision::Allow,
            Some(s) if s >= 500 => Decision::Error,
            Some(_) => Decision::Deny,
        }
    }

    /// `allow`, `deny` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Error => "error",
        }
    }

    /// Parses `allow`, `deny` or `error`.
    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow" => Some(Decision::Allow),
            "deny" => Some(Decision::Deny),
            "error" => Some(Decision::Error),
            _ => None,
        }
    }
}

/// `userIdentity.sessionContext.sessionIssuer`: the role behind a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// Always `Role`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The role id (`AROA…`).
    pub principal_id: String,
    /// The role ARN.
    pub arn: String,
    /// The role's account.
    pub account_id: String,
    /// The role name.
    pub user_name: String,
}

/// `userIdentity.sessionContext.webIdFederationData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdFederationData {
    /// The OIDC provider ARN.
    pub federated_provider: String,
    /// Claims of the token: `sub`, `aud` and, from GitHub, `repository`, `ref`,
    /// `job_workflow_ref`, `run_id`, … when present.
    pub attributes: Map<String, Value>,
}

/// `userIdentity.sessionContext.attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the session was issued (RFC 3339).
    pub creation_date: String,
    /// `"true"` or `"false"`, as CloudTrail writes it.
    pub mfa_authenticated: String,
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The session's source identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// The web identity the session was federated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<WebIdFederationData>,
    /// The role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuer>,
    /// Creation date and MFA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SessionAttributes>,
}

/// `userIdentity`: who made the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `WebIdentityUser`, `AssumedRole`, `Unknown`, or `Keyless` for operator actions.
    #[serde(rename = "type")]
    pub kind: String,
    /// `AROA…:session` for sessions; `<provider>:<aud>:<sub>` for web identity users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// The caller's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The caller's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The access key id the call was signed with (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// For web identity users: the token's `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// For web identity users: the provider ARN (or the unverified issuer when the token was
    /// refused before a provider was found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<String>,
    /// Session facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// [`EVENT_VERSION`].
    pub event_version: String,
    /// RFC 3339 UTC with microseconds, e.g. `2026-12-01T21:40:41.123456Z`.
    pub event_time: String,
    /// `sts.amazonaws.com`, `iam.amazonaws.com` or `keyless`.
    pub event_source: String,
    /// The action, e.g. `AssumeRoleWithWebIdentity`, `Authorize`, `RevokeSessions`.
    pub event_name: String,
    /// The region the call was made in.
    pub aws_region: String,
    /// The client's address.
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    /// The client's `User-Agent` (cut at 1 KiB).
    pub user_agent: String,
    /// Who.
    pub user_identity: UserIdentity,
    /// The parameters, secrets removed.
    pub request_parameters: Option<Value>,
    /// The answer, secrets removed (access key ids stay; secrets and tokens never appear).
    pub response_elements: Option<Value>,
    /// The AWS error code of a failed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The message the caller saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The request id returned to the caller.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// Unique id of this record.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// Whether the call only reads.
    pub read_only: bool,
    /// `AwsApiCall` for API calls, `KeylessDecision` for `/v1/authorize`, `KeylessEvent` for
    /// operator actions.
    pub event_type: String,
    /// Always true: every keyless event is a management event.
    pub management_event: bool,
    /// The account the call concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    /// `Management`.
    pub event_category: String,
    /// Extra facts (explanations, sampling, the authorize client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    /// keyless extension: `allow`, `deny` or `error`.
    pub decision: Decision,
}

/// The form of `eventTime`: RFC 3339 UTC with microseconds.
pub const EVENT_TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// RFC 3339 UTC with microseconds, as `eventTime` is written.
pub fn event_time(t: OffsetDateTime) -> String {
    match keyless_types::time_text::utc_micros(t) {
        Some(text) => keyless_types::time_text::to_string(text),
        None => t
            .to_offset(time::UtcOffset::UTC)
            .format(EVENT_TIME_FORMAT)
            .unwrap_or_default(),
    }
}

/// Parses an RFC 3339 instant.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Cuts `s` to [`MAX_VALUE_CHARS`] characters.
pub fn bounded(s: &str) -> String {
    bounded_to(s, MAX_VALUE_CHARS)
}

fn bounded_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push_str("…[truncated]");
    out
}

impl AuditEvent {
    /// A new event with CloudTrail's fixed fields filled in; the rest is set by the caller.
    ///
    /// This is the entry point for any event (STS, IAM, authorize, revocation): build it, set
    /// `user_identity`, `request_parameters`, `response_elements` and the error, then hand it to
    /// the writer ([`crate::writer::AuditLog::record_durable`]).
    pub fn new(
        now: OffsetDateTime,
        event_source: &str,
        event_name: &str,
        request_id: impl Into<String>,
        event_id: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent {
            event_version: EVENT_VERSION.to_owned(),
            event_time: event_time(now),
            event_source: event_source.to_owned(),
            event_name: event_name.to_owned(),
            aws_region: "us-east-1".to_owned(),
            source_ip_address: String::new(),
            user_agent: String::new(),
            user_identity: UserIdentity {
                kind: "Unknown".to_owned(),
                ..UserIdentity::default()
            },
            request_parameters: None,
            response_elements: None,
            error_code: None,
            error_message: None,
            request_id: request_id.into(),
            event_id: event_id.into(),
            read_only: false,
            event_type: "AwsApiCall".to_owned(),
            management_event: true,
            recipient_account_id: None,
            event_category: "Management".to_owned(),
            additional_event_data: None,
            decision: Decision::Allow,
        }
    }

    /// Marks the event failed with an AWS error code, its message and the HTTP status.
    pub fn fail(&mut self, code: &str, message: &str, status: u16) {
        self.error_code = Some(code.to_owned());
        self.error_message = Some(bounded_to(message, MAX_ERROR_MESSAGE_CHARS));
        self.decision = Decision::of_status(Some(status));
    }

    /// The body the writer chains: compact JSON of the event, `{…}`.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Records are about 2 KiB; one allocation instead of a series of doublings.
        let mut out = Vec::with_capacity(2560);
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }

    /// The principal ARN (`userIdentity.arn`, else the provider for web identity users).
    pub fn principal(&self) -> Option<&str> {
        self.user_identity
            .arn
            .as_deref()
            .or(self.user_identity.principal_id.as_deref())
    }

    fn session_context(&self) -> Option<&SessionContext> {
        self.user_identity.session_context.as_ref()
    }

    /// The role the event concerns: the role behind the caller's session or the one asked for.
    pub fn roles(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(i) = self
            .session_context()
            .and_then(|c| c.session_issuer.as_ref())
        {
            out.push(i.arn.as_str());
        }
        if let Some(r) = self
            .request_parameters
            .as_ref()
            .and_then(|p| p.get("roleArn"))
            .and_then(Value::as_str)
        {
            out.push(r);
        }
        out
    }

    /// A web identity attribute (`sub`, `repository`, …).
    pub fn federation_attribute(&self, name: &str) -> Option<&str> {
        self.session_context()
            .and_then(|c| c.web_id_federation_data.as_ref())
            .and_then(|w| w.attributes.get(name))
            .and_then(Value::as_str)
    }

    /// The token subject (`sub`) behind the call.
    pub fn subject(&self) -> Option<&str> {
        self.federation_attribute("sub")
            .or(if self.user_identity.kind == "WebIdentityUser" {
                self.user_identity.user_name.as_deref()
            } else {
                None
            })
    }

    /// The access key id issued by the call (`responseElements.credentials.accessKeyId`).
    pub fn issued_access_key_id(&self) -> Option<&str> {
        self.response_elements
            .as_ref()
            .and_then(|r| r.get("credentials"))
            .and_then(|c| c.get("accessKeyId"))
            .and_then(Value::as_str)
    }

    /// The access key ids the event concerns: the caller's and the one issued.
    pub fn access_key_ids(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(k) = self.user_identity.access_key_id.as_deref() {
            out.push(k);
        }
        if let Some(k) = self.issued_access_key_id() {
            out.push(k);
        }
        out
    }

    /// The instant of the event.
    pub fn time(&self) -> Option<OffsetDateTime> {
        parse_time(&self.event_time)
    }
}

/// Longest `requestParameters` (bytes of JSON) kept in the record of a refused anonymous call
/// (no verified caller, no configured role reached): anyone can send 256 KiB of parameters, and
/// such a record should not be the largest thing in the log.
pub const MAX_ANONYMOUS_PARAMETERS_BYTES: usize = 8 * 1024;

/// The name of the entry [`cap_parameters`] adds when it leaves parameters out.
pub const PARAMETERS_TRUNCATED: &str = "keylessTruncated";

/// Keeps the leading members of a `requestParameters` object while their JSON fits in
/// `max_bytes`; if any is left out, a [`PARAMETERS_TRUNCATED`] member says how many (so a cut
/// record is never mistaken for a whole one). Anything but an object is returned as it is.
pub fn cap_parameters(value: Value, max_bytes: usize) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    // `{}` plus, for each member, `"name":` and a comma.
    let mut used = 2;
    let mut dropped = 0usize;
    let mut out = Map::new();
    for (name, v) in map {
        let size = serde_json::to_vec(&v).map_or(usize::MAX, |b| b.len());
        let size = size.saturating_add(name.len() + 4);
        if dropped == 0 && used + size <= max_bytes {
            used += size;
            out.insert(name, v);
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        out.insert(
            PARAMETERS_TRUNCATED.to_owned(),
            Value::String(format!(
                "{dropped} parameter(s) left out: the parameters of a refused anonymous call are kept up to {max_bytes} bytes"
            )),
        );
    }
    Value::Object(out)
}

/// Builds `requestParameters` for an IAM call: every parameter but `Action` and `Version`,
/// camel-cased as CloudTrail writes them (`RoleName` -> `roleName`, list members kept under
/// their wire names), with secrets hidden: passwords, a server certificate's private key, and
/// the STS secrets of a call sent with IAM's version by mistake. SigV4 parameters (`X-Amz-*`,
/// in a body where they authenticate nothing) are left out. IAM parameters carry no credential
/// otherwise: policy documents and tags are what an auditor needs to see. Every call is
/// recorded, also actions keyless does not implement, so the list names the secrets of real
/// IAM actions. Values are cut at [`MAX_VALUE_CHARS`], and at most 200 parameters are kept.
pub fn iam_request_parameters<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    const SECRET: &[&str] = &[
        "Password",
        "NewPassword",
        "OldPassword",
        "PrivateKey",
        "WebIdentityToken",
        "SAMLAssertion",
        "TokenCode",
    ];
    let mut out = Map::new();
    for (name, value) in pairs.into_iter().take(202) {
        let sigv4 = name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("X-Amz-"));
        if name == "Action" || name == "Version" || name.len() > 128 || sigv4 {
            continue;
        }
        let mut camel: String = name.chars().take(1).flat_map(char::to_lowercase).collect();
        camel.push_str(name.get(1..).unwrap_or(""));
        let value = if SECRET.contains(&name) {
            HIDDEN.to_owned()
        } else {
            bounded(value)
        };
        out.insert(camel, Value::String(value));
    }
    Value::Object(out)
}

/// Builds `requestParameters` from query-protocol parameters with an allow-list: only the names
/// below are kept (camel-cased as CloudTrail writes them); `WebIdentityToken`, `SAMLAssertion`,
/// `TokenCode` and anything unknown never reach the record. Values are cut at
/// [`MAX_VALUE_CHARS`].
pub fn request_parameters<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    const SCALARS: &[(&str, &str)] = &[
        ("RoleArn", "roleArn"),
        ("RoleSessionName", "roleSessionName"),
        ("Policy", "policy"),
        ("ProviderId", "providerId"),
        ("ExternalId", "externalId"),
        ("SerialNumber", "serialNumber"),
        ("SourceIdentity", "sourceIdentity"),
        ("AccessKeyId", "accessKeyId"),
        ("EncodedMessage", "encodedMessage"),
        ("Name", "name"),
    ];
    const HIDDEN_NAMES: &[(&str, &str)] = &[("TokenCode", "tokenCode")];
    const INTEGERS: &[(&str, &str)] = &[
        ("DurationSeconds", "durationSeconds"),
        ("MinimumSessionTokenSize", "minimumSessionTokenSize"),
    ];
    let mut out = Map::new();
    let mut tags: Vec<(u32, Option<String>, Option<String>)> = Vec::new();
    let mut transitive: Vec<(u32, String)> = Vec::new();
    let mut arns: Vec<(u32, String)> = Vec::new();
    for (name, value) in pairs {
        if let Some((_, camel)) = SCALARS.iter().find(|(n, _)| *n == name) {
            out.insert((*camel).to_owned(), Value::String(bounded(value)));
        } else if let Some((_, camel)) = HIDDEN_NAMES.iter().find(|(n, _)| *n == name) {
            out.insert((*camel).to_owned(), Value::String(HIDDEN.to_owned()));
        } else if let Some((_, camel)) = INTEGERS.iter().find(|(n, _)| *n == name) {
            let v = value
                .parse::<u64>()
                .map_or_else(|_| Value::String(bounded(value)), Value::from);
            out.insert((*camel).to_owned(), v);
        } else if let Some(rest) = name.strip_prefix("Tags.member.") {
            let mut it = rest.splitn(2, '.');
            if let (Some(Ok(i)), Some(field)) = (it.next().map(str::parse::<u32>), it.next()) {
                let slot = match tags.iter_mut().find(|t| t.0 == i) {
                    Some(s) => s,
                    None => {
                        tags.push((i, None, None));
                        let last = tags.len() - 1;
                        &mut tags[last]
                    }
                };
                match field {
                    "Key" => slot.1 = Some(bounded(value)),
                    "Value" => slot.2 = Some(bounded(value)),
                    _ => {}
                }
            }
        } else if let Some(Ok(i)) = name
            .strip_prefix("TransitiveTagKeys.member.")
            .map(str::parse::<u32>)
        {
            transitive.push((i, bounded(value)));
        } else if let Some(Ok(i)) = name
            .strip_prefix("PolicyArns.member.")
            .and_then(|r| r.strip_suffix(".arn"))
            .map(str::parse::<u32>)
        {
            arns.push((i, bounded(value)));
        }
    }
    if !tags.is_empty() {
        tags.sort_by_key(|t| t.0);
        let list = tags
            .into_iter()
            .take(50)
            .map(|(_, k, v)| {
                let mut m = Map::new();
                m.insert("key".to_owned(), k.map_or(Value::Null, Value::String));
                m.insert("value".to_owned(), v.map_or(Value::Null, Value::String));
                Value::Object(m)
            })
            .collect();
        out.insert("tags".to_owned(), Value::Array(list));
    }
    if !transitive.is_empty() {
        transitive.sort_by_key(|t| t.0);
        out.insert(
            "transitiveTagKeys".to_owned(),
            Value::Array(
                transitive
                    .into_iter()
                    .take(50)
                    .map(|(_, v)| Value::String(v))
                    .collect(),
            ),
        );
    }
    if !arns.is_empty() {
        arns.sort_by_key(|t| t.0);
        out.insert(
            "policyArns".to_owned(),
            Value::Array(
                arns.into_iter()
                    .take(10)
                    .map(|(_, v)| {
                        let mut m = Map::new();
                        m.insert("arn".to_owned(), Value::String(v));
                        Value::Object(m)
                    })
                    .collect(),
            ),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_parameters_keep_what_fits_and_say_what_was_left_out() {
        let pairs: Vec<(String, String)> = (0..200)
            .map(|i| (format!("P{i:03}"), "\u{1}".repeat(2048)))
            .collect();
        let v = iam_request_parameters(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert!(serde_json::to_vec(&v).unwrap().len() > 1_000_000);
        let capped = cap_parameters(v, MAX_ANONYMOUS_PARAMETERS_BYTES);
        let text = serde_json::to_vec(&capped).unwrap();
        assert!(
            text.len() <= MAX_ANONYMOUS_PARAMETERS_BYTES + 200,
            "{}",
            text.len()
        );
        let note = capped[PARAMETERS_TRUNCATED].as_str().unwrap();
        assert!(note.starts_with("200 parameter(s) left out"), "{note}");
        // What fits is kept whole.
        let small = serde_json::json!({"roleArn": "arn:aws:iam::123456789012:role/gha"});
        assert_eq!(
            cap_parameters(small.clone(), MAX_ANONYMOUS_PARAMETERS_BYTES),
            small
        );
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap()
    }

    #[test]
    fn event_time_has_microseconds_and_z() {
        assert_eq!(event_time(t0()), "2027-01-15T08:00:00.123456Z");
        assert_eq!(
            parse_time(&event_time(t0())).unwrap().unix_timestamp(),
            1_800_000_000
        );
    }

    #[test]
    fn secrets_never_reach_request_parameters() {
        let v = request_parameters([
            ("Action", "AssumeRoleWithWebIdentity"),
            ("RoleArn", "arn:aws:iam::123456789012:role/gha"),
            ("WebIdentityToken", "eyJsecret.token.value"),
            ("TokenCode", "975310"),
            ("SAMLAssertion", "PHNhbWw+"),
            ("X-Amz-Security-Token", "FwoGZXIvYXdzE"),
            ("DurationSeconds", "900"),
            ("MinimumSessionTokenSize", "3000"),
            ("Tags.member.2.Key", "b"),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "x"),
            (
                "PolicyArns.member.1.arn",
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
            ),
        ]);
        let text = v.to_string();
        for secret in ["eyJsecret", "975310", "PHNhbWw", "FwoGZXIvYXdzE", "Action"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["roleArn"], "arn:aws:iam::123456789012:role/gha");
        assert_eq!(v["durationSeconds"], 900);
        assert_eq!(v["minimumSessionTokenSize"], 3000);
        assert_eq!(v["tokenCode"], HIDDEN);
        assert_eq!(v["tags"][0]["key"], "a");
        assert_eq!(v["tags"][0]["value"], "x");
        assert_eq!(v["tags"][1]["key"], "b");
        assert_eq!(
            v["policyArns"][0]["arn"],
            "arn:aws:iam::aws:policy/ReadOnlyAccess"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = "a".repeat(10_000);
        let v = request_parameters([("RoleArn", long.as_str())]);
        let s = v["roleArn"].as_str().unwrap();
        assert!(s.chars().count() < MAX_VALUE_CHARS + 20);
        assert!(s.ends_with("[truncated]"));
    }

    #[test]
    fn decisions_follow_status() {
        assert_eq!(Decision::of_status(None), Decision::Allow);
        assert_eq!(Decision::of_status(Some(403)), Decision::Deny);
        assert_eq!(Decision::of_status(Some(400)), Decision::Deny);
        assert_eq!(Decision::of_status(Some(503)), Decision::Error);
        let mut e = AuditEvent::new(t0(), SOURCE_STS, "AssumeRole", "r", "e");
        e.fail("AccessDenied", "no", 403);
        assert_eq!(e.decision, Decision::Deny);
        let back: AuditEvent = serde_json::from_slice(&e.to_body().unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn secrets_never_reach_iam_request_parameters() {
        // Any IAM-versioned call is recorded before it is dispatched, including actions keyless
        // does not implement (UploadServerCertificate carries a private key) and STS actions
        // sent with IAM's version by mistake.
        let v = iam_request_parameters([
            ("Action", "UploadServerCertificate"),
            ("ServerCertificateName", "web"),
            ("PrivateKey", "-----BEGIN PRIVATE KEY-----MIIE"),
            ("WebIdentityToken", "eyJsecret.token.value"),
            ("SAMLAssertion", "PHNhbWw+"),
            ("TokenCode", "975310"),
            ("Password", "hunter2"),
            ("X-Amz-Security-Token", "FwoGZXIvYXdzE"),
            ("x-amz-signature", "abcdef"),
        ]);
        let text = v.to_string();
        for secret in [
            "MIIE",
            "eyJsecret",
            "PHNhbWw",
            "975310",
            "hunter2",
            "FwoGZXIvYXdzE",
            "abcdef",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(
            v,
            serde_json::json!({
                "serverCertificateName": "web",
                "privateKey": HIDDEN,
                "webIdentityToken": HIDDEN,
                "sAMLAssertion": HIDDEN,
                "tokenCode": HIDDEN,
                "password": HIDDEN,
            })
        );
    }
}
