//! IAM parameter validation with the constraints and wording of the IAM API model, pagination
//! (`Marker`/`MaxItems`/`IsTruncated`) and tags.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_policy::{Context, Policy, PolicyType};

use super::{invalid_input, malformed, out::Node};
use crate::error::ApiError;
use crate::sts::params::{
    Params, Problems, check_chars, check_int, check_len, check_policy_chars, check_tag_key,
    check_tag_value,
};
use crate::sts::same_tag_key;

/// Largest policy document parameter (IAM model: 131,072 characters).
pub const MAX_DOCUMENT: usize = 131_072;
/// Most tags an entity may carry.
pub const MAX_TAGS: usize = 50;

const NOT_NULL: &str = "Member must not be null";

/// Collects the problems of one request, then fails with one `ValidationError`.
#[derive(Debug, Default)]
pub struct Check {
    problems: Problems,
}

impl Check {
    /// A required parameter.
    pub fn required<'p>(&mut self, p: &'p Params, name: &str, field: &str) -> Option<&'p str> {
        let v = p.get(name);
        if v.is_none() {
            self.problems.push("null", field, NOT_NULL);
        }
        v
    }

    /// A required parameter, checked with `check` when present (when missing, AWS's "Member
    /// must not be null"); returns the value, empty when missing.
    pub fn required_with(
        &mut self,
        p: &Params,
        name: &str,
        field: &str,
        check: impl FnOnce(&mut Self, &str),
    ) -> String {
        match self.required(p, name, field) {
            Some(v) => {
                check(self, v);
                v.to_owned()
            }
            None => String::new(),
        }
    }

    /// An entity name: `min..=max` of `[\w+=,.@-]+`.
    pub fn name(&mut self, v: &str, field: &str, max: usize) -> bool {
        check_len(&mut self.problems, v, field, 1, max)
            && check_chars(&mut self.problems, v, field, "+=,.@-", "[\\w+=,.@-]+")
    }

    /// A path: `/` or `/…/` of printable ASCII, at most 512.
    pub fn path(&mut self, v: &str, field: &str) -> bool {
        if !check_len(&mut self.problems, v, field, 1, 512) {
            return false;
        }
        let ok = v == "/"
            || (v.len() >= 3
                && v.starts_with('/')
                && v.ends_with('/')
                && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        if !ok {
            self.problems.push(
                v,
                field,
                "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
            );
        }
        ok
    }

    /// A path prefix: `/` followed by printable ASCII.
    pub fn path_prefix(&mut self, v: &str, field: &str) -> bool {
        if !check_len(&mut self.problems, v, field, 1, 512) {
            return false;
        }
        let ok = v.starts_with('/') && v.bytes().all(|b| (0x21..=0x7f).contains(&b));
        if !ok {
            self.problems.push(
                v,
                field,
                "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*",
            );
        }
        ok
    }

    /// A managed policy's path or path prefix: `((/[A-Za-z0-9\.,\+@=_-]+)*)/`, at most 512. Stricter
    /// than a role's: no `*`, `:` or empty segment can reach a policy ARN.
    pub fn policy_path(&mut self, v: &str, field: &str) -> bool {
        if !check_len(&mut self.problems, v, field, 1, 512) {
            return false;
        }
        let segment_char = |b: u8| b.is_ascii_alphanumeric() || b".,+@=_-".contains(&b);
        let ok = v.strip_suffix('/').is_some_and(|body| {
            body.is_empty()
                || body.strip_prefix('/').is_some_and(|rest| {
                    rest.split('/')
                        .all(|seg| !seg.is_empty() && seg.bytes().all(segment_char))
                })
        });
        if !ok {
            self.problems.push(
                v,
                field,
                "Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/",
            );
        }
        ok
    }

    /// A description: at most 1000 of `[\t\n\r\u0020-\u007E\u00A1-\u00FF]`.
    pub fn description(&mut self, v: &str, field: &str) -> bool {
        if !check_len(&mut self.problems, v, field, 0, 1000) {
            return false;
        }
        let ok = v
            .chars()
            .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}'));
        if !ok {
            self.problems.push(
                v,
                field,
                "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
            );
        }
        ok
    }

    /// A policy document's size and character set.
    pub fn document(&mut self, v: &str, field: &str) -> bool {
        check_len(&mut self.problems, v, field, 1, MAX_DOCUMENT)
            && check_policy_chars(&mut self.problems, v, field)
    }

    /// An ARN parameter's length.
    pub fn arn(&mut self, v: &str, field: &str) -> bool {
        check_len(&mut self.problems, v, field, 20, 2048)
    }

    /// An integer within bounds.
    pub fn int(&mut self, v: &str, field: &str, min: i64, max: i64) -> Option<i64> {
        check_int(&mut self.problems, v, field, min, max)
    }

    /// A length check.
    pub fn len(&mut self, v: &str, field: &str, min: usize, max: usize) -> bool {
        check_len(&mut self.problems, v, field, min, max)
    }

    /// A value outside an enumeration.
    pub fn one_of(&mut self, v: &str, field: &str, allowed: &[&str]) -> bool {
        let ok = allowed.contains(&v);
        if !ok {
            self.problems.push(
                v,
                field,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
        ok
    }

    /// A custom problem.
    pub fn push(&mut self, v: &str, field: &str, constraint: &str) {
        self.problems.push(v, field, constraint);
    }

    /// `Tags.member.N.Key/Value`: at most 50, AWS's characters, keys unique ignoring case.
    pub fn tags(&mut self, p: &Params) -> Vec<(String, String)> {
        let rows = p.struct_list("Tags", &["Key", "Value"]);
        if rows.len() > MAX_TAGS {
            self.problems.push(
                &rows.len().to_string(),
                "tags",
                "Member must have length less than or equal to 50",
            );
        }
        let mut out = Vec::new();
        for row in rows.iter().take(MAX_TAGS + 1) {
            match row.as_slice() {
                [Some(k), Some(v)] => {
                    check_tag_key(&mut self.problems, k, "tags.member.key");
                    check_tag_value(&mut self.problems, v, "tags.member.value");
                    out.push(((*k).to_owned(), (*v).to_owned()));
                }
                [None, _] => self.problems.push("null", "tags.member.key", NOT_NULL),
                _ => self.problems.push("null", "tags.member.value", NOT_NULL),
            }
        }
        out
    }

    /// `TagKeys.member.N`: at most 50 keys.
    pub fn tag_keys(&mut self, p: &Params) -> Vec<String> {
        let keys = p.list("TagKeys");
        if keys.is_empty() {
            self.problems.push("null", "tagKeys", NOT_NULL);
        }
        if keys.len() > MAX_TAGS {
            self.problems.push(
                &keys.len().to_string(),
                "tagKeys",
                "Member must have length less than or equal to 50",
            );
        }
        for k in keys.iter().take(MAX_TAGS + 1) {
            check_tag_key(&mut self.problems, k, "tagKeys.member");
        }
        keys.into_iter().map(str::to_owned).collect()
    }

    /// `MaxItems` (1-1000, default 100) and `Marker`.
    pub fn page(&mut self, p: &Params) -> Page {
        let max_items = p
            .get("MaxItems")
            .and_then(|v| self.int(v, "maxItems", 1, 1000))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(100);
        let marker = p.get("Marker").map(str::to_owned);
        if let Some(m) = &marker {
            check_len(&mut self.problems, m, "marker", 1, 320);
        }
        Page { max_items, marker }
    }

    /// Ends validation.
    pub fn finish(self) -> Result<(), ApiError> {
        self.problems.finish()
    }
}

/// Checks tags beyond their characters: no `aws:` prefix, keys unique ignoring case.
pub fn check_tag_rules(tags: &[(String, String)]) -> Result<(), ApiError> {
    for (i, (k, _)) in tags.iter().enumerate() {
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_input(format!(
                "Tag key {k} is reserved: keys beginning with aws: are for AWS use."
            )));
        }
        if tags[..i].iter().any(|(o, _)| same_tag_key(o, k)) {
            return Err(invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

/// Sets `aws:RequestTag/<key>` for each tag a request passes and `aws:TagKeys` to their keys.
pub fn request_tags(c: &mut Context, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    for (k, v) in tags {
        c.insert_single(&format!("aws:RequestTag/{k}"), v.clone());
    }
    c.insert_multi("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
}

/// Sets `aws:ResourceTag/<key>` for each tag of the entity a request acts on.
pub fn resource_tags(c: &mut Context, tags: &BTreeMap<String, String>) {
    for (k, v) in tags {
        c.insert_single(&format!("aws:ResourceTag/{k}"), v.clone());
    }
}

/// [`resource_tags`] for a role, which IAM also exposes as `iam:ResourceTag/<key>` (IAM's key
/// for users and roles): a Deny written with it must bind here as it does on AWS.
pub fn role_resource_tags(c: &mut Context, tags: &BTreeMap<String, String>) {
    resource_tags(c, tags);
    for (k, v) in tags {
        c.insert_single(&format!("iam:ResourceTag/{k}"), v.clone());
    }
}

/// Adds tags to an entity's tags (a key given again in another case replaces it); more than
/// 50 in all is `LimitExceeded`.
pub fn merge_tags(
    current: &BTreeMap<String, String>,
    add: &[(String, String)],
) -> Result<BTreeMap<String, String>, ApiError> {
    check_tag_rules(add)?;
    let mut out: BTreeMap<String, String> = current
        .iter()
        .filter(|(k, _)| !add.iter().any(|(a, _)| same_tag_key(a, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(add.iter().cloned());
    if out.len() > MAX_TAGS {
        return Err(super::limit_exceeded(
            "The number of tags has reached the maximum limit of 50 tags per resource.",
        ));
    }
    Ok(out)
}

/// Removes tags (keys compared ignoring case, as IAM does); absent keys are ignored.
pub fn remove_tags(
    current: &BTreeMap<String, String>,
    keys: &[String],
) -> BTreeMap<String, String> {
    current
        .iter()
        .filter(|(k, _)| !keys.iter().any(|r| same_tag_key(r, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Parses a policy document as `ty`, mapping errors to `MalformedPolicyDocument` (or
/// `LimitExceeded` for size) with AWS's text.
pub fn parse_policy(doc: &str, ty: PolicyType) -> Result<Policy, ApiError> {
    Policy::parse(doc, ty).map_err(|e| {
        if e.aws_code() == "LimitExceeded" {
            let quota = if ty == PolicyType::Trust {
                "ACLSizePerRole"
            } else {
                "PolicySize"
            };
            super::limit_exceeded(format!(
                "Cannot exceed quota for {quota}: {}",
                ty.max_size()
            ))
        } else {
            malformed(e.aws_message().to_owned())
        }
    })
}

/// `MaxItems` and `Marker` of a list call.
#[derive(Debug, Clone)]
pub struct Page {
    /// Items per page.
    pub max_items: usize,
    /// Where to continue.
    pub marker: Option<String>,
}

impl Page {
    /// Pages `items` (sorted by `key`, unique): the items from the marker on, at most
    /// `max_items`, and the `IsTruncated`/`Marker` members.
    pub fn apply<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<(Vec<T>, Vec<Node>), ApiError> {
        items.sort_by_key(|i| key(i));
        let start = match &self.marker {
            None => 0,
            Some(m) => {
                let from = decode_marker(m)?;
                items.partition_point(|i| key(i) < from)
            }
        };
        let mut page: Vec<T> = items.into_iter().skip(start).collect();
        let mut tail = Vec::new();
        if page.len() > self.max_items {
            let rest = page.split_off(self.max_items);
            tail.push(Node::flag("IsTruncated", true));
            if let Some(next) = rest.first() {
                tail.push(Node::leaf("Marker", encode_marker(&key(next))));
            }
        } else {
            tail.push(Node::flag("IsTruncated", false));
        }
        Ok((page, tail))
    }
}

fn encode_marker(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1:{key}"))
}

fn decode_marker(m: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(m)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("k1:").map(str::to_owned))
        .ok_or_else(|| {
            invalid_input("Invalid Marker: pass the Marker value returned by the previous call.")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_keys_ignore_case_in_every_script() {
        // Two role tags that the policy context folds to one `aws:PrincipalTag/équipe` key
        // would leave which value a policy sees to chance.
        assert!(check_tag_rules(&tags(&[("équipe", "1"), ("ÉQUIPE", "2")])).is_err());
        assert!(check_tag_rules(&tags(&[("équipe", "1"), ("equipe", "2")])).is_ok());
        let current: BTreeMap<String, String> = [("équipe".to_string(), "old".to_string())].into();
        let merged = merge_tags(&current, &tags(&[("ÉQUIPE", "new")])).unwrap();
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            tags(&[("ÉQUIPE", "new")])
        );
    }
}
