//! Strict JSON object parsing: duplicate keys are rejected at every level and depth is bounded.
//!
//! `serde_json` keeps the last of two duplicate keys silently; for a token that decides who may
//! assume a role, `{"sub":"a","sub":"b"}` must be an error, not a guess.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Maximum nesting depth of a token header or payload.
pub const MAX_DEPTH: usize = 16;

struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deeply"));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            depth: self.depth + 1,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deeply"));
        }
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Strict {
                depth: self.depth + 1,
            })?;
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// The members of a top-level JSON object, in document order.
pub type Members = Vec<(String, Value)>;

/// The top level: an object becomes its members (no map, so no hashing of every claim name);
/// anything else is still parsed strictly, then refused by [`parse_members`].
struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Option<Members>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Strict { depth: 0 }.visit_f64(v).map(|_| None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Strict { depth: 0 }.visit_seq(seq).map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Strict { depth: 1 })?;
            out.push((k, v));
        }
        Ok(Some(out))
    }
}

/// Two top-level members whose names are the same, exactly or ignoring case.
#[derive(Debug, PartialEq, Eq)]
enum Clash {
    Exact,
    Case,
}

/// Names as [`clash`] compares them. Sorting borrowed names keeps a hostile token with
/// thousands of members at O(n log n). Each name is sorted under a packed integer of its
/// length and outer bytes first: a GitHub token's thirty-odd claims share long prefixes
/// (`repository_…`, `job_workflow_…`), and the integer settles nearly every comparison that a
/// string compare would settle only after a call to `memcmp`.
fn packed(name: &str) -> u64 {
    let b = name.as_bytes();
    let at = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    let last = |i: usize| {
        u64::from(
            b.len()
                .checked_sub(i)
                .and_then(|j| b.get(j))
                .copied()
                .unwrap_or(0),
        )
    };
    let len = u64::try_from(b.len()).unwrap_or(u64::MAX).min(0xffff);
    len << 48 | at(0) << 40 | at(1) << 32 | last(3) << 24 | last(2) << 16 | last(1) << 8 | at(2)
}

/// `name` as compared when case is ignored: lowercased, without allocating for the usual
/// all-lowercase ASCII name.
fn folded(name: &str) -> Cow<'_, str> {
    if name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Whether two members share a name (exactly, or with `ignore_case` also ignoring case; an
/// exact repeat is reported as such even among names that differ only in case).
fn clash(members: &[(String, Value)], ignore_case: bool) -> Option<Clash> {
    let mut names: Vec<(u64, Cow<'_, str>, &str)> = members
        .iter()
        .map(|(k, _)| {
            let key = if ignore_case {
                folded(k)
            } else {
                Cow::Borrowed(k.as_str())
            };
            (packed(&key), key, k.as_str())
        })
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0].2 == w[1].2) {
        return Some(Clash::Exact);
    }
    names
        .windows(2)
        .any(|w| w[0].1 == w[1].1)
        .then_some(Clash::Case)
}

/// Parses `bytes` as a JSON object into its members in document order, rejecting duplicate
/// keys (at any depth), nesting deeper than [`MAX_DEPTH`], trailing data and non-object top
/// levels.
pub fn parse_members(bytes: &[u8]) -> Result<Members, &'static str> {
    parse_top(bytes, false)
}

/// [`parse_members`] for a token's claims, which also refuses two top-level names that differ
/// only in case. Condition keys ignore case, so `repository` and `Repository` would name one
/// key, and which claim it held would be a guess.
pub fn parse_claims(bytes: &[u8]) -> Result<Members, &'static str> {
    parse_top(bytes, true)
}

fn parse_top(bytes: &[u8], ignore_case: bool) -> Result<Members, &'static str> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let members = de.deserialize_any(TopLevel).map_err(|e| {
        if e.to_string().contains("duplicate key") {
            "duplicate JSON key"
        } else {
            "invalid JSON"
        }
    })?;
    match members.as_deref().and_then(|m| clash(m, ignore_case)) {
        Some(Clash::Exact) => return Err("duplicate JSON key"),
        Some(Clash::Case) => return Err("two claim names differ only in case"),
        None => {}
    }
    de.end().map_err(|_| "trailing data after JSON")?;
    members.ok_or("JSON is not an object")
}

/// [`parse_members`] collected into a map, for documents read by name (JWKS).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, &'static str> {
    parse_members(bytes).map(|members| members.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_rejected_at_every_level() {
        assert_eq!(
            parse_object(br#"{"sub":"a","sub":"b"}"#),
            Err("duplicate JSON key")
        );
        assert_eq!(
            parse_object(br#"{"x":{"k":1,"k":2}}"#),
            Err("duplicate JSON key")
        );
        assert!(parse_object(br#"{"x":{"k":1},"y":[{"k":1}]}"#).is_ok());
        // Far apart, and among many members.
        let mut doc = String::from("{\"dup\":0");
        for i in 0..2000 {
            doc.push_str(&format!(",\"k{i}\":{i}"));
        }
        doc.push_str(",\"dup\":1}");
        assert_eq!(parse_members(doc.as_bytes()), Err("duplicate JSON key"));
        // Names alike in length and outer bytes are told apart by their middle, and a
        // duplicate among them is still found.
        let alike = br#"{"job_workflow_ref":1,"job_xorkflow_ref":2,"jobworkflow__ref":3,"":4}"#;
        assert_eq!(parse_members(alike).map(|m| m.len()), Ok(4));
        let twice = br#"{"job_workflow_ref":1,"job_xorkflow_ref":2,"job_workflow_ref":3}"#;
        assert_eq!(parse_members(twice), Err("duplicate JSON key"));
    }

    #[test]
    fn claims_refuse_names_that_differ_only_in_case() {
        let case = Err("two claim names differ only in case");
        assert_eq!(
            parse_claims(br#"{"repository":"a","Repository":"b"}"#),
            case
        );
        assert_eq!(parse_claims(br#"{"sub":"a","SUB":"b"}"#), case);
        // Unicode lowercasing: the Kelvin sign lowercases to `k`.
        assert_eq!(
            parse_claims("{\"kid\":1,\"\u{212a}id\":2}".as_bytes()),
            case
        );
        // An exact repeat is named as one even among case variants.
        assert_eq!(
            parse_claims(br#"{"a":1,"A":2,"a":3}"#),
            Err("duplicate JSON key")
        );
        // Only the top level, and only for claims: a header or JWKS keeps exact names.
        assert!(parse_claims(br#"{"x":{"k":1,"K":2},"y":1}"#).is_ok());
        assert!(parse_members(br#"{"kid":"a","KID":"b"}"#).is_ok());
    }

    #[test]
    fn members_keep_document_order() {
        let m = parse_members(br#"{"z":1,"a":"x","m":[true]}"#).unwrap();
        let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["z", "a", "m"]);
        assert_eq!(m[1].1, Value::String("x".into()));
    }

    #[test]
    fn depth_trailing_and_type_are_bounded() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let doc = format!("{{\"a\":{deep}}}");
        assert_eq!(parse_object(doc.as_bytes()), Err("invalid JSON"));
        assert_eq!(parse_object(b"{} {}"), Err("trailing data after JSON"));
        assert_eq!(parse_object(b"[1]"), Err("JSON is not an object"));
        assert_eq!(parse_object(b"\"s\""), Err("JSON is not an object"));
        assert_eq!(parse_object(b"[1"), Err("invalid JSON"));
        assert_eq!(
            parse_object(b"{\"a\":1} x"),
            Err("trailing data after JSON")
        );
        assert_eq!(parse_object(b"{\"a\":1e999}"), Err("invalid JSON"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "[a-z\\\\\"é ]{0,6}".prop_map(Value::String),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Members come back in document order, equal to what serde_json reads, and a
            /// repeated top-level name (a small alphabet makes them common) is always refused.
            #[test]
            fn members_match_serde_json_and_duplicates_are_refused(
                members in proptest::collection::vec(("[a-c]{1,2}", value()), 0..8)
            ) {
                let text = format!(
                    "{{{}}}",
                    members
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let mut names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                let got = parse_members(text.as_bytes());
                if names.len() < members.len() {
                    prop_assert_eq!(got, Err("duplicate JSON key"));
                } else {
                    prop_assert_eq!(got, Ok(members));
                }
            }

            /// As claims, names that are the same ignoring case are refused too: exact repeats
            /// as duplicates, the others as differing only in case.
            #[test]
            fn claims_refuse_case_variants(
                members in proptest::collection::vec(("[a-bA-B]{1,2}", leaf()), 0..6)
            ) {
                let text = format!(
                    "{{{}}}",
                    members
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let distinct = |fold: fn(&str) -> String| {
                    let mut names: Vec<String> = members.iter().map(|(k, _)| fold(k)).collect();
                    names.sort_unstable();
                    names.dedup();
                    names.len() == members.len()
                };
                let got = parse_claims(text.as_bytes());
                if !distinct(str::to_owned) {
                    prop_assert_eq!(got, Err("duplicate JSON key"));
                } else if !distinct(str::to_lowercase) {
                    prop_assert_eq!(got, Err("two claim names differ only in case"));
                } else {
                    prop_assert_eq!(got, Ok(members));
                }
            }
        }
    }
}
