//! STS request parameters: decoding `Name.member.N` lists and validating every value against
//! the limits of the STS API model, with AWS's `ValidationError` wording.

use crate::error::ApiError;

/// The parameters of one query-protocol request (form body or query string), by name.
///
/// Kept as the request's own pairs sorted by name: a request has a handful of parameters, so
/// a binary search over them beats a map's node per entry, and the pairs are not copied.
#[derive(Debug, Default, Clone)]
pub struct Params {
    sorted: Vec<(String, String)>,
}

/// At most this many parameters in one request.
pub const MAX_PARAMS: usize = 500;

impl Params {
    /// Sorts the pairs by name; a parameter given twice is an error rather than a silent pick.
    pub fn from_pairs(mut pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        if pairs.len() > MAX_PARAMS {
            return Err(ApiError::validation(&[format!(
                "the request has more than {MAX_PARAMS} parameters"
            )]));
        }
        // Stable, so that of a repeated name the first in the request is the one named below.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ApiError::new(
                "InvalidParameterValue",
                400,
                format!("The parameter {} was given more than once.", w[0].0),
            ));
        }
        Ok(Params { sorted: pairs })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.sorted
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.sorted[i].1.as_str())
    }

    /// Whether some parameter's name starts with `prefix`: the names that do are adjacent in
    /// the sorted pairs, starting where `prefix` itself would go.
    fn has_prefix(&self, prefix: &str) -> bool {
        let at = self.sorted.partition_point(|(k, _)| k.as_str() < prefix);
        self.sorted
            .get(at)
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// A list parameter `Name.member.1`, `Name.member.2`, …; gaps end the list like AWS's parser.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let prefix = format!("{name}.member.");
        if !self.has_prefix(&prefix) {
            return out;
        }
        for i in 1.. {
            match self.get(&format!("{prefix}{i}")) {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
    }

    /// A list of structures: `Name.member.N.Field` for each field.
    pub fn struct_list(&self, name: &str, fields: &[&str]) -> Vec<Vec<Option<&str>>> {
        let mut out = Vec::new();
        let prefix = format!("{name}.member.");
        if !self.has_prefix(&prefix) {
            return out;
        }
        for i in 1.. {
            let row: Vec<Option<&str>> = fields
                .iter()
                .map(|f| self.get(&format!("{prefix}{i}.{f}")))
                .collect();
            if row.iter().all(Option::is_none) {
                break;
            }
            out.push(row);
        }
        out
    }

    /// Names of every parameter (for rejecting unknown ones where AWS does).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sorted.iter().map(|(k, _)| k.as_str())
    }
}

/// Collects validation problems so one `ValidationError` can report them all, like AWS.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// A value failed a constraint.
    pub fn push(&mut self, value: &str, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// A sensitive value failed (the value is not echoed).
    pub fn push_hidden(&mut self, field: &str, constraint: &str) {
        self.0.push(format!(
            "Value at '{field}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Finishes: `Ok` when nothing failed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(&self.0))
        }
    }
}

/// Shortens a value for echoing in an error (AWS echoes it; we bound it).
fn shown(v: &str) -> String {
    let mut s: String = v.chars().take(128).collect();
    if v.chars().count() > 128 {
        s.push('…');
    }
    s
}

/// Checks length in characters.
pub fn check_len(p: &mut Problems, v: &str, field: &str, min: usize, max: usize) -> bool {
    let n = v.chars().count();
    if n < min {
        p.push(
            &shown(v),
            field,
            &format!("Member must have length greater than or equal to {min}"),
        );
        false
    } else if n > max {
        p.push(
            &shown(v),
            field,
            &format!("Member must have length less than or equal to {max}"),
        );
        false
    } else {
        true
    }
}

/// `[\w+=,.@-]*` and friends: every character in the ASCII word set or `extra`.
pub fn check_chars(p: &mut Problems, v: &str, field: &str, extra: &str, pattern: &str) -> bool {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
    {
        true
    } else {
        p.push(
            &shown(v),
            field,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        );
        false
    }
}

/// Policy text characters: TAB, LF, CR and U+0020-U+00FF.
pub fn check_policy_chars(p: &mut Problems, v: &str, field: &str) -> bool {
    if v.chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        true
    } else {
        p.push(&shown(v), field, "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+");
        false
    }
}

/// `MinimumSessionTokenSize` (0 to 4096 bytes), as AssumeRole and AssumeRoleWithWebIdentity
/// take it.
pub fn minimum_token_size(problems: &mut Problems, p: &Params) -> Option<u32> {
    p.get("MinimumSessionTokenSize")
        .and_then(|v| check_int(problems, v, "minimumSessionTokenSize", 0, 4096))
        .and_then(|n| u32::try_from(n).ok())
}

/// Parses an integer parameter within bounds.
pub fn check_int(p: &mut Problems, v: &str, field: &str, min: i64, max: i64) -> Option<i64> {
    match v.parse::<i64>() {
        Ok(n) if n < min => {
            p.push(
                v,
                field,
                &format!("Member must have value greater than or equal to {min}"),
            );
            None
        }
        Ok(n) if n > max => {
            p.push(
                v,
                field,
                &format!("Member must have value less than or equal to {max}"),
            );
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            p.push(&shown(v), field, "Member must be an integer");
            None
        }
    }
}

/// RoleSessionName: 2-64 of `[\w+=,.@-]*`.
pub fn check_session_name(p: &mut Problems, v: &str) {
    if check_len(p, v, "roleSessionName", 2, 64) {
        check_chars(p, v, "roleSessionName", "+=,.@-", "[\\w+=,.@-]*");
    }
}

/// RoleArn: 20-2048 characters, and an IAM role ARN.
pub fn check_role_arn(p: &mut Problems, v: &str) {
    if check_len(p, v, "roleArn", 20, 2048) && !is_role_arn(v) {
        p.0.push("Request ARN is invalid".to_owned());
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path><name>`.
pub fn is_role_arn(v: &str) -> bool {
    let Ok(arn) = keyless_types::Arn::parse(v) else {
        return false;
    };
    arn.service == "iam"
        && arn.region.is_empty()
        && keyless_types::AccountId::parse(&arn.account).is_ok()
        && arn
            .resource
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty() && !r.ends_with('/'))
}

/// SourceIdentity: 2-64 of `[\w+=,.@-]*`, not starting with `aws:`.
pub fn check_source_identity(p: &mut Problems, v: &str) {
    if check_len(p, v, "sourceIdentity", 2, 64)
        && check_chars(p, v, "sourceIdentity", "+=,.@-", "[\\w+=,.@-]*")
        && v.to_ascii_lowercase().starts_with("aws:")
    {
        p.push(v, "sourceIdentity", "Member must not start with 'aws:'");
    }
}

/// A character of AWS's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]`. `\p{Z}` is the separators
/// only: Rust's `is_whitespace` also takes TAB, LF, CR and other controls, which AWS refuses.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

/// A session tag key: 1-128 of `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`.
pub fn check_tag_key(p: &mut Problems, v: &str, field: &str) {
    if check_len(p, v, field, 1, 128) && !v.chars().all(is_tag_char) {
        p.push(
            v,
            field,
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
        );
    }
}

/// A session tag value: 0-256 of `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`.
pub fn check_tag_value(p: &mut Problems, v: &str, field: &str) {
    if check_len(p, v, field, 0, 256) && !v.chars().all(is_tag_char) {
        p.push(
            v,
            field,
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn lists_follow_member_numbering() {
        let p = params(&[
            ("PolicyArns.member.1.arn", "a"),
            ("PolicyArns.member.2.arn", "b"),
            ("PolicyArns.member.4.arn", "d"),
            ("TransitiveTagKeys.member.1", "k"),
        ]);
        let arns = p.struct_list("PolicyArns", &["arn"]);
        assert_eq!(arns, vec![vec![Some("a")], vec![Some("b")]]);
        assert_eq!(p.list("TransitiveTagKeys"), vec!["k"]);
    }

    #[test]
    fn lists_are_found_among_neighbouring_names() {
        // Names that sort right before, between and after a list's members, and one that
        // shares the list's name without its `.member.` part.
        let p = params(&[
            ("Tags", "x"),
            ("Tags.member", "y"),
            ("Tags.member.1.Key", "k1"),
            ("Tags.member.1.Value", "v1"),
            ("Tags.member.2.Key", "k2"),
            ("Tags.memberZ", "z"),
            ("TagsX.member.1.Key", "no"),
        ]);
        assert_eq!(
            p.struct_list("Tags", &["Key", "Value"]),
            vec![vec![Some("k1"), Some("v1")], vec![Some("k2"), None]]
        );
        assert!(p.struct_list("Tag", &["Key"]).is_empty());
        assert!(p.list("Tags").is_empty());
        assert!(p.list("Policy").is_empty());
        assert_eq!(p.get("Tags.member"), Some("y"));
        assert_eq!(p.get("Tags.member.3.Key"), None);
        let names: Vec<&str> = p.names().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    #[test]
    fn duplicate_parameters_are_rejected() {
        let e = Params::from_pairs(vec![("A".into(), "1".into()), ("A".into(), "2".into())])
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(e.status, 400);
        // Not next to each other in the request: found once sorted.
        let e = Params::from_pairs(vec![
            ("RoleArn".into(), "a".into()),
            ("Action".into(), "AssumeRole".into()),
            ("RoleArn".into(), "b".into()),
        ])
        .unwrap_err();
        assert_eq!(e.message, "The parameter RoleArn was given more than once.");
    }

    #[test]
    fn validation_messages_match_aws() {
        let mut p = Problems::default();
        check_int(&mut p, "50000", "durationSeconds", 900, 43200);
        let e = p.finish().unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "1 validation error detected: Value '50000' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
        );
        let mut p = Problems::default();
        check_session_name(&mut p, "a");
        check_session_name(&mut p, "bad name!");
        let e = p.finish().unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected: "),
            "{}",
            e.message
        );
    }

    #[test]
    fn minimum_session_token_size_is_0_to_4096() {
        let params = |v: &str| {
            Params::from_pairs(vec![("MinimumSessionTokenSize".into(), v.into())]).unwrap()
        };
        for (v, want) in [("0", Some(0)), ("4096", Some(4096)), ("1500", Some(1500))] {
            let mut p = Problems::default();
            assert_eq!(minimum_token_size(&mut p, &params(v)), want, "{v}");
            assert!(p.finish().is_ok(), "{v}");
        }
        for (v, shown, why) in [
            (
                "4097",
                "4097",
                "Member must have value less than or equal to 4096",
            ),
            (
                "-1",
                "-1",
                "Member must have value greater than or equal to 0",
            ),
            ("1e3", "1e3", "Member must be an integer"),
            ("", "", "Member must be an integer"),
        ] {
            let mut p = Problems::default();
            assert_eq!(minimum_token_size(&mut p, &params(v)), None, "{v}");
            let e = p.finish().unwrap_err();
            assert_eq!((e.code, e.status), ("ValidationError", 400));
            assert_eq!(
                e.message,
                format!(
                    "1 validation error detected: Value '{shown}' at 'minimumSessionTokenSize' failed to satisfy constraint: {why}"
                )
            );
        }
        let mut p = Problems::default();
        let none = Params::from_pairs(vec![]).unwrap();
        assert_eq!(minimum_token_size(&mut p, &none), None);
        assert!(p.finish().is_ok());
    }

    #[test]
    fn role_arns() {
        for (v, ok) in [
            ("arn:aws:iam::123456789012:role/gha", true),
            ("arn:aws:iam::123456789012:role/path/gha", true),
            ("arn:aws:iam::123456789012:user/gha", false),
            ("arn:aws:iam::12345678901:role/gha", false),
            ("arn:aws:iam:us-east-1:123456789012:role/x", false),
            ("arn:aws:sts::123456789012:role/gha", false),
            ("not-an-arn-at-all-but-long", false),
            ("arn:aws:iam::123456789012:role/", false),
        ] {
            let mut p = Problems::default();
            check_role_arn(&mut p, v);
            let r = p.finish();
            assert_eq!(r.is_ok(), ok, "{v}");
            if let Err(e) = r {
                assert_eq!(e.code, "ValidationError");
            }
        }
    }

    #[test]
    fn source_identity_rules() {
        for (v, ok) in [
            ("alice", true),
            ("aws:alice", false),
            ("AWS:x", false),
            ("a", false),
            ("a b", false),
        ] {
            let mut p = Problems::default();
            check_source_identity(&mut p, v);
            assert_eq!(p.finish().is_ok(), ok, "{v}");
        }
    }

    #[test]
    fn policy_characters() {
        let mut p = Problems::default();
        assert!(check_policy_chars(&mut p, "{\"a\":\"é\"}\t\n", "policy"));
        assert!(!check_policy_chars(
            &mut p,
            "{\"a\":\"\u{2603}\"}",
            "policy"
        ));
        assert!(!check_policy_chars(&mut p, "\u{0}", "policy"));
    }
}
