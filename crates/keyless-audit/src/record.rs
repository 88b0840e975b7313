//! Borrowed, typed records: the request path's form of [`crate::AuditEvent`].
//!
//! [`EventRef`] and its parts serialise to exactly the JSON of an [`crate::AuditEvent`] with
//! the same content (same fields, order and optional fields left out the same way), but borrow
//! every string from the facts the handler already holds and format times and bounded strings
//! while serialising: building a record allocates nothing, and [`crate::AuditLog`] serialises it
//! straight into its pending buffer. Readers (`verify`, `query`, the CLI) parse lines back into
//! the owned [`crate::AuditEvent`].

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeMap as _, Serializer};
use time::OffsetDateTime;

use crate::event::{Decision, EVENT_VERSION, MAX_ERROR_MESSAGE_CHARS, MAX_VALUE_CHARS};

/// A string cut at `max` characters when serialised (with the `…[truncated]` mark), as
/// [`crate::event::bounded`] cuts it, without copying it first.
#[derive(Debug, Clone, Copy)]
pub struct Bounded<'a>(pub &'a str, pub usize);

impl<'a> Bounded<'a> {
    /// Cut at [`MAX_VALUE_CHARS`].
    pub fn value(s: &'a str) -> Bounded<'a> {
        Bounded(s, MAX_VALUE_CHARS)
    }
}

impl Serialize for Bounded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Bounded(text, max) = *self;
        if text.len() <= max {
            return s.serialize_str(text);
        }
        let cut = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
        s.collect_str(&format_args!("{}…[truncated]", &text[..cut]))
    }
}

/// A string cut at `max` characters, without a mark (the `userAgent` form).
#[derive(Debug, Clone, Copy)]
pub struct Prefix<'a>(pub &'a str, pub usize);

impl Serialize for Prefix<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Prefix(text, max) = *self;
        let cut = if text.len() <= max {
            text.len()
        } else {
            text.char_indices().nth(max).map_or(text.len(), |(i, _)| i)
        };
        s.serialize_str(&text[..cut])
    }
}

fn serialize_formatted<S: Serializer>(
    s: S,
    t: OffsetDateTime,
    format: &(impl time::formatting::Formattable + ?Sized),
) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 48];
    let mut rest = &mut buf[..];
    let len = t
        .to_offset(time::UtcOffset::UTC)
        .format_into(&mut rest, format)
        .map_err(serde::ser::Error::custom)?;
    let text = std::str::from_utf8(&buf[..len]).map_err(serde::ser::Error::custom)?;
    s.serialize_str(text)
}

/// Text this module wrote from digits and punctuation (ASCII, so always UTF-8).
fn serialize_ascii<S: Serializer>(s: S, text: &[u8]) -> Result<S::Ok, S::Error> {
    s.serialize_str(std::str::from_utf8(text).map_err(serde::ser::Error::custom)?)
}

/// `eventTime`: RFC 3339 UTC with microseconds ([`crate::event::event_time`]).
#[derive(Debug, Clone, Copy)]
pub struct EventTime(pub OffsetDateTime);

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match keyless_types::time_text::utc_micros(self.0) {
            Some(text) => serialize_ascii(s, &text),
            None => serialize_formatted(s, self.0, crate::event::EVENT_TIME_FORMAT),
        }
    }
}

/// RFC 3339 UTC to the second, as STS writes `Expiration` and CloudTrail `creationDate`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub OffsetDateTime);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match keyless_types::time_text::utc_seconds(self.0) {
            Some(text) => serialize_ascii(s, &text),
            None => {
                let t = self.0.replace_nanosecond(0).unwrap_or(self.0);
                serialize_formatted(s, t, &time::format_description::well_known::Rfc3339)
            }
        }
    }
}

/// An IP address as text.
#[derive(Debug, Clone, Copy)]
pub struct Ip(pub IpAddr);

impl Serialize for Ip {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            // Every request has one; `Display` goes through the formatting machinery per octet.
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[len] = b'.';
                        len += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(octet).as_bytes();
                    text[len..len + digits.len()].copy_from_slice(digits);
                    len += digits.len();
                }
                serialize_ascii(s, &text[..len])
            }
            IpAddr::V6(_) => s.collect_str(&self.0),
        }
    }
}

/// `<provider>:<aud>:<sub>`, the `principalId` of a web identity user.
#[derive(Debug, Clone, Copy)]
pub struct Joined<'a>(pub &'a str, pub &'a str, pub &'a str);

impl Serialize for Joined<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}:{}:{}", self.0, self.1, self.2))
    }
}

/// Token claims as a JSON object, values cut at [`MAX_VALUE_CHARS`].
#[derive(Debug, Clone, Copy)]
pub enum Claims<'a> {
    /// Every claim kept at issuance, in order.
    Pairs(&'a [(String, String)]),
    /// `sub` and `aud` only (what a session carries).
    SubAud(&'a str, &'a str),
    /// `sub` only (what the authorize API reports of a federated session).
    Sub(&'a str),
}

impl Serialize for Claims<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Claims::Pairs(pairs) => {
                let mut m = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    m.serialize_entry(k, &Bounded::value(v))?;
                }
                m.end()
            }
            Claims::Sub(sub) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("sub", &Bounded::value(sub))?;
                m.end()
            }
            Claims::SubAud(sub, aud) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("sub", &Bounded::value(sub))?;
                m.serialize_entry("aud", &Bounded::value(aud))?;
                m.end()
            }
        }
    }
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuerRef<'a> {
    /// Always `Role`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The role id.
    pub principal_id: &'a str,
    /// The role ARN.
    pub arn: &'a str,
    /// The role's account.
    pub account_id: &'a str,
    /// The role name.
    pub user_name: &'a str,
}

/// `userIdentity.sessionContext.webIdFederationData`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdRef<'a> {
    /// The OIDC provider ARN.
    pub federated_provider: &'a str,
    /// The token's claims.
    pub attributes: Claims<'a>,
}

/// `userIdentity.sessionContext.attributes`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributesRef {
    /// When the session was issued.
    pub creation_date: Seconds,
    /// `"true"` or `"false"`.
    pub mfa_authenticated: &'static str,
}

impl SessionAttributesRef {
    /// The attributes of a session issued at `issued_at`, with or without MFA.
    pub fn new(issued_at: OffsetDateTime, mfa: bool) -> SessionAttributesRef {
        SessionAttributesRef {
            creation_date: Seconds(issued_at),
            mfa_authenticated: if mfa { "true" } else { "false" },
        }
    }
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContextRef<'a> {
    /// The source identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<&'a str>,
    /// The web identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<WebIdRef<'a>>,
    /// The role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuerRef<'a>>,
    /// Creation date and MFA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SessionAttributesRef>,
}

/// `userIdentity`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentityRef<'a> {
    /// `WebIdentityUser`, `AssumedRole`, `Unknown`, …
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// `AROA…:session`, or `<provider>:<aud>:<sub>` for web identity users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<Principal<'a>>,
    /// The caller's ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<&'a str>,
    /// The caller's account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    /// The access key id the call was signed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<&'a str>,
    /// The token's `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    /// The provider ARN (or the claimed issuer, bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_provider: Option<Bounded<'a>>,
    /// Session facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContextRef<'a>>,
}

impl<'a> UserIdentityRef<'a> {
    /// An identity of type `kind` with nothing else known.
    pub fn of_kind(kind: &'a str) -> UserIdentityRef<'a> {
        UserIdentityRef {
            kind,
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            identity_provider: None,
            session_context: None,
        }
    }
}

/// A `principalId`: a plain string or the web identity user's joined form.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Principal<'a> {
    /// As is.
    Plain(&'a str),
    /// `<provider>:<aud>:<sub>`.
    Web(Joined<'a>),
}

/// `responseElements.credentials` of an issuing call: the key id, never the secret.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// Expiry, to the second.
    pub expiration: Seconds,
}

/// `responseElements.assumedRoleUser`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumedRoleUserRef<'a> {
    /// `AROA…:session`.
    pub assumed_role_id: &'a str,
    /// The session ARN.
    pub arn: &'a str,
}

/// `responseElements` of an issuing STS call.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedRef<'a> {
    /// The credentials, secret left out.
    pub credentials: CredentialsRef<'a>,
    /// The session.
    pub assumed_role_user: AssumedRoleUserRef<'a>,
    /// The token's `sub` (web identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_from_web_identity_token: Option<&'a str>,
    /// The token's `aud` (web identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<&'a str>,
    /// The issuer (web identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    /// Share of the packed-policy limit used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packed_policy_size: Option<u32>,
    /// The session's source identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<&'a str>,
}

/// `additionalEventData` of an issuing call.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRingVersion {
    /// The key-ring version that sealed the session.
    pub key_ring_version: u32,
}

/// A typed, borrowing event: the same JSON as [`crate::AuditEvent`]. `Q`, `R` and `X` are the
/// types of `requestParameters`, `responseElements` and `additionalEventData` (typed structs,
/// or a `serde_json::Value` where the shape is open).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef<'a, Q: Serialize, R: Serialize, X: Serialize> {
    /// [`EVENT_VERSION`].
    pub event_version: &'static str,
    /// When.
    pub event_time: EventTime,
    /// `sts.amazonaws.com`, `iam.amazonaws.com` or `keyless`.
    pub event_source: &'a str,
    /// The action.
    pub event_name: &'a str,
    /// The region.
    pub aws_region: &'a str,
    /// The client's address.
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Ip,
    /// `User-Agent`, cut at 1024 characters.
    pub user_agent: Prefix<'a>,
    /// Who.
    pub user_identity: UserIdentityRef<'a>,
    /// The parameters, secrets removed (`null` when none).
    pub request_parameters: Option<Q>,
    /// The answer, secrets removed (`null` when none).
    pub response_elements: Option<R>,
    /// The AWS error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    /// The message the caller saw, cut at [`MAX_ERROR_MESSAGE_CHARS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<Bounded<'a>>,
    /// The request id.
    #[serde(rename = "requestID")]
    pub request_id: &'a str,
    /// This record's id.
    #[serde(rename = "eventID")]
    pub event_id: &'a str,
    /// Whether the call only reads.
    pub read_only: bool,
    /// `AwsApiCall`, `KeylessDecision` or `KeylessEvent`.
    pub event_type: &'a str,
    /// Always true.
    pub management_event: bool,
    /// The account the call concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<&'a str>,
    /// `Management`.
    pub event_category: &'static str,
    /// Extra facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<X>,
    /// `allow`, `deny` or `error`.
    pub decision: Decision,
}

impl<'a, Q: Serialize, R: Serialize, X: Serialize> EventRef<'a, Q, R, X> {
    /// A new event with CloudTrail's fixed fields filled in (as [`crate::AuditEvent::new`]).
    pub fn new(
        now: OffsetDateTime,
        event_source: &'a str,
        event_name: &'a str,
        request_id: &'a str,
        event_id: &'a str,
        source_ip: IpAddr,
    ) -> EventRef<'a, Q, R, X> {
        EventRef {
            event_version: EVENT_VERSION,
            event_time: EventTime(now),
            event_source,
            event_name,
            aws_region: "us-east-1",
            source_ip_address: Ip(source_ip),
            user_agent: Prefix("", 1024),
            user_identity: UserIdentityRef::of_kind("Unknown"),
            request_parameters: None,
            response_elements: None,
            error_code: None,
            error_message: None,
            request_id,
            event_id,
            read_only: false,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: None,
            event_category: "Management",
            additional_event_data: None,
            decision: Decision::Allow,
        }
    }

    /// Marks the event failed (as [`crate::AuditEvent::fail`]).
    pub fn fail(&mut self, code: &'a str, message: &'a str, status: u16) {
        self.error_code = Some(code);
        self.error_message = Some(Bounded(message, MAX_ERROR_MESSAGE_CHARS));
        self.decision = Decision::of_status(Some(status));
    }
}

/// What [`crate::AuditLog`]'s callers hand over: a value that serialises to one JSON object in
/// the record shape, and names its event (for the operator's log when it cannot be written).
pub trait Record: Serialize {
    /// `eventName`.
    fn event_name(&self) -> &str;
}

impl Record for crate::AuditEvent {
    fn event_name(&self) -> &str {
        &self.event_name
    }
}

impl<Q: Serialize, R: Serialize, X: Serialize> Record for EventRef<'_, Q, R, X> {
    fn event_name(&self) -> &str {
        self.event_name
    }
}

/// Serialises `value` with a compact JSON serializer into `out` (for tests and tools).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(2560);
    value.serialize(&mut serde_json::Serializer::new(&mut out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text<T: Serialize>(v: &T) -> String {
        String::from_utf8(to_json(v).unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn times_are_written_as_the_time_crate_writes_them(
            secs in -62_167_219_200i64..253_402_300_800,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -1439i32..1440,
        ) {
            let utc = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .replace_nanosecond(nanos).unwrap();
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let t = utc.to_offset(offset);
            let event_time = utc.format(crate::event::EVENT_TIME_FORMAT).unwrap();
            prop_assert_eq!(text(&EventTime(t)), format!("\"{event_time}\""));
            prop_assert_eq!(crate::event::event_time(t), event_time);
            let seconds = utc.replace_nanosecond(0).unwrap()
                .format(&time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(text(&Seconds(t)), format!("\"{seconds}\""));
        }
    }

    #[test]
    fn times_outside_four_digit_years_take_the_time_crate_path() {
        let early = OffsetDateTime::from_unix_timestamp(-62_167_219_201).unwrap();
        assert!(keyless_types::time_text::utc_seconds(early).is_none());
        assert_eq!(
            crate::event::event_time(early),
            early.format(crate::event::EVENT_TIME_FORMAT).unwrap()
        );
        assert!(to_json(&Seconds(early)).is_err());
        let edge = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
        assert_eq!(text(&Seconds(edge)), "\"9999-12-31T23:59:59Z\"");
    }

    #[test]
    fn addresses_are_written_as_their_display_form() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.3.4",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            let want = format!("\"{addr}\"");
            assert_eq!(text(&Ip(addr)), want);
        }
    }
}
