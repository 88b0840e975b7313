//! The AWS-specific claims: session tags and source identity.

use serde_json::Value;

use crate::error::JwtError;

/// The session tags claim.
pub const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// The source identity claim.
pub const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";
/// At most this many session tags (and transitive tag keys).
pub const MAX_SESSION_TAGS: usize = 50;

/// The validated `https://aws.amazon.com/tags` claim:
/// `{"principal_tags":{"K":["v"]},"transitive_tag_keys":["K"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionTagsClaim {
    /// Session tags (key, value), in claim order. Keys are unique case-insensitively.
    pub principal_tags: Vec<(String, String)>,
    /// Keys of `principal_tags` that pass on to chained sessions.
    pub transitive_tag_keys: Vec<String>,
}

fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

/// Whether `key` is a valid AWS tag key (1-128 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`).
pub fn valid_tag_key(key: &str) -> bool {
    let n = key.chars().count();
    (1..=128).contains(&n) && key.chars().all(tag_char)
}

/// Whether `value` is a valid AWS tag value (0-256 characters of the same set).
pub fn valid_tag_value(value: &str) -> bool {
    value.chars().count() <= 256 && value.chars().all(tag_char)
}

/// Parses and validates the tags claim (absent -> `None`).
pub fn parse_tags_claim(v: Option<&Value>) -> Result<Option<SessionTagsClaim>, JwtError> {
    let Some(v) = v else { return Ok(None) };
    let bad = JwtError::InvalidTagsClaim;
    let Value::Object(obj) = v else {
        return Err(bad("it must be a JSON object"));
    };
    if obj
        .keys()
        .any(|k| k != "principal_tags" && k != "transitive_tag_keys")
    {
        return Err(bad(
            "only principal_tags and transitive_tag_keys are allowed",
        ));
    }
    let mut out = SessionTagsClaim::default();
    match obj.get("principal_tags") {
        None => {}
        Some(Value::Object(tags)) => {
            if tags.len() > MAX_SESSION_TAGS {
                return Err(bad("more than 50 principal_tags"));
            }
            for (k, v) in tags {
                if !valid_tag_key(k) {
                    return Err(bad(
                        "a tag key must be 1-128 characters of letters, digits, spaces and _.:/=+-@",
                    ));
                }
                let value = match v {
                    Value::Array(items) => match items.as_slice() {
                        [Value::String(s)] => s,
                        _ => {
                            return Err(bad(
                                "each principal_tags value must be an array of exactly one string",
                            ));
                        }
                    },
                    _ => {
                        return Err(bad(
                            "each principal_tags value must be an array of exactly one string",
                        ));
                    }
                };
                if !valid_tag_value(value) {
                    return Err(bad(
                        "a tag value must be 0-256 characters of letters, digits, spaces and _.:/=+-@",
                    ));
                }
                if out
                    .principal_tags
                    .iter()
                    .any(|(e, _)| e.to_lowercase() == k.to_lowercase())
                {
                    return Err(bad("tag keys must be unique ignoring case"));
                }
                out.principal_tags.push((k.clone(), value.clone()));
            }
        }
        Some(_) => return Err(bad("principal_tags must be an object")),
    }
    match obj.get("transitive_tag_keys") {
        None => {}
        Some(Value::Array(keys)) => {
            if keys.len() > MAX_SESSION_TAGS {
                return Err(bad("more than 50 transitive_tag_keys"));
            }
            for k in keys {
                let Value::String(k) = k else {
                    return Err(bad("transitive_tag_keys must be strings"));
                };
                if !out
                    .principal_tags
                    .iter()
                    .any(|(t, _)| t.to_lowercase() == k.to_lowercase())
                {
                    return Err(bad(
                        "every transitive tag key must be one of principal_tags",
                    ));
                }
                if !out
                    .transitive_tag_keys
                    .iter()
                    .any(|t| t.to_lowercase() == k.to_lowercase())
                {
                    out.transitive_tag_keys.push(k.clone());
                }
            }
        }
        Some(_) => return Err(bad("transitive_tag_keys must be an array")),
    }
    Ok(Some(out))
}

/// Whether `s` is a valid `SourceIdentity`: 2-64 characters of `[\w+=,.@-]`, not starting with
/// `aws:` (any case).
pub fn valid_source_identity(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-')
        })
        && !s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// Parses and validates the source identity claim (absent -> `None`).
pub fn parse_source_identity(v: Option<&Value>) -> Result<Option<String>, JwtError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) if valid_source_identity(s) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::InvalidSourceIdentity),
    }
}
