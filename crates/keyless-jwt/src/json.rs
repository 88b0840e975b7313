//! Strict JSON object parsing: duplicate keys are rejected at every level and depth is bounded.
//!
//! `serde_json` keeps the last of two duplicate keys silently; for a token that decides who may
//! assume a role, `{"sub":"a","sub":"b"}` must be an error, not a guess.

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

/// Parses `bytes` as a JSON object, rejecting duplicate keys (at any depth), nesting deeper than
/// [`MAX_DEPTH`], trailing data and non-object top levels.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict { depth: 0 }.deserialize(&mut de).map_err(|e| {
        if e.to_string().contains("duplicate key") {
            "duplicate JSON key"
        } else {
            "invalid JSON"
        }
    })?;
    de.end().map_err(|_| "trailing data after JSON")?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err("JSON is not an object"),
    }
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
    }

    #[test]
    fn depth_trailing_and_type_are_bounded() {
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let doc = format!("{{\"a\":{deep}}}");
        assert_eq!(parse_object(doc.as_bytes()), Err("invalid JSON"));
        assert_eq!(parse_object(b"{} {}"), Err("trailing data after JSON"));
        assert_eq!(parse_object(b"[1]"), Err("JSON is not an object"));
        assert_eq!(parse_object(b"{\"a\":1e999}"), Err("invalid JSON"));
    }
}
