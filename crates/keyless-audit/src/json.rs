//! Compact JSON output for records, byte for byte what `serde_json::to_writer` writes.
//!
//! A record is about 2 KB, nearly all of it strings (ARNs, claims, ids) and field names that need
//! no escaping. `serde_json` looks up every byte of every string and key in its escape table;
//! that walk was a quarter of a record's CPU, as much as its SHA-256. This serializer finds the
//! first byte that needs escaping with a check the compiler vectorises, copies everything before
//! it whole, and escapes the rest as `serde_json` does: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
//! other control characters as `\u00xx` (lowercase hex), everything else (`/`, DEL, non-ASCII)
//! as is. Numbers go through `serde_json`'s own formatter, so floats print the same. The
//! property tests check the whole output against `serde_json` for arbitrary values.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter as _};

/// Why a value could not be written (a map key that is not a string, a custom error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

/// Appends `value` to `out` as compact JSON. On error `out` may hold part of the value; the
/// caller truncates it.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

/// Whether the JSON string form of `b` differs from `b` itself.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of a fixed-size window needs escaping: no early exit, so this compiles to
/// a few vector compares on the string's own memory.
#[inline(always)]
fn any_escape<const N: usize>(window: &[u8; N]) -> bool {
    window.iter().fold(false, |any, &b| any | needs_escape(b))
}

/// A window of `N` bytes of `bytes` at `at` (the caller keeps `at + N` in bounds).
#[inline(always)]
fn window<const N: usize>(bytes: &[u8], at: usize) -> &[u8; N] {
    bytes[at..at + N].try_into().unwrap_or(&[b' '; N])
}

/// The index of the first byte of `bytes` that needs escaping. Whole 16-byte windows are
/// checked at once, the tail by a last window that overlaps the one before it (strings of 8 to
/// 15 bytes by two overlapping 8-byte windows), so no string is walked byte by byte unless it
/// does need escaping.
#[inline]
fn first_escape(bytes: &[u8]) -> Option<usize> {
    let n = bytes.len();
    let from = |at: usize| {
        bytes[at..]
            .iter()
            .position(|&b| needs_escape(b))
            .map(|i| at + i)
    };
    if n >= 16 {
        let mut at = 0;
        while at + 16 <= n {
            if any_escape::<16>(window(bytes, at)) {
                return from(at);
            }
            at += 16;
        }
        (at < n && any_escape::<16>(window(bytes, n - 16))).then(|| from(at))?
    } else if n >= 8 {
        (any_escape::<8>(window(bytes, 0)) || any_escape::<8>(window(bytes, n - 8)))
            .then(|| from(0))?
    } else {
        bytes
            .iter()
            .fold(false, |any, &b| any | needs_escape(b))
            .then(|| from(0))?
    }
}

/// Appends the contents of a JSON string (without quotes) for `text`.
fn push_contents(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    while let Some(i) = first_escape(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        let escape = match b {
            b'"' => CharEscape::Quote,
            b'\\' => CharEscape::ReverseSolidus,
            0x08 => CharEscape::Backspace,
            0x0C => CharEscape::FormFeed,
            b'\n' => CharEscape::LineFeed,
            b'\r' => CharEscape::CarriageReturn,
            b'\t' => CharEscape::Tab,
            _ => CharEscape::AsciiControl(b),
        };
        // Writing to a Vec cannot fail.
        let _ = CompactFormatter.write_char_escape(out, escape);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

#[inline]
fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    push_contents(out, text);
    out.push(b'"');
}

/// `Display` output escaped straight into the buffer (for `collect_str`).
struct Escaping<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_contents(self.0, s);
        Ok(())
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn float(&mut self, finite: bool, write: impl FnOnce(&mut Vec<u8>)) {
        if finite {
            write(self.out);
        } else {
            self.out.extend_from_slice(b"null");
        }
    }
}

/// An array or object being written: whether the next element is the first.
struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    /// Closing bytes: `]`, `}`, or `]}` / `}}` for a variant.
    close: &'static [u8],
}

impl Compound<'_, '_> {
    #[inline]
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.w.out.push(b',');
        }
    }

    fn finish(self) {
        self.w.out.extend_from_slice(self.close);
    }
}

macro_rules! integer {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, v: $ty) -> Result<(), Error> {
            self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        })*
    };
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }

    integer!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v.is_finite(), |out| {
            let _ = CompactFormatter.write_f32(out, v);
        });
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v.is_finite(), |out| {
            let _ = CompactFormatter.write_f64(out, v);
        });
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        push_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        push_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq as _;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        self.out.push(b'[');
        Ok(Compound {
            w: self,
            first: true,
            close: b"]",
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            w: self,
            first: true,
            close: b"]}",
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'w, 'a>, Error> {
        self.out.push(b'{');
        Ok(Compound {
            w: self,
            first: true,
            close: b"}",
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'w, 'a>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'w, 'a>, Error> {
        self.out.push(b'{');
        push_str(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            w: self,
            first: true,
            close: b"}}",
        })
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.out.push(b'"');
        write!(Escaping(self.out), "{value}").map_err(|_| Error("formatting failed".into()))?;
        self.out.push(b'"');
        Ok(())
    }
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.comma();
                value.serialize(&mut *self.w)
            }
            fn end(self) -> Result<(), Error> {
                self.finish();
                Ok(())
            }
        })*
    };
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(KeyWriter(&mut *self.w.out))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

macro_rules! fields {
    ($($trait:ident),*) => {
        $(impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.comma();
                push_str(self.w.out, key);
                self.w.out.push(b':');
                value.serialize(&mut *self.w)
            }
            fn end(self) -> Result<(), Error> {
                self.finish();
                Ok(())
            }
        })*
    };
}

fields!(SerializeStruct, SerializeStructVariant);

/// A map key: JSON has only string keys, so numbers and booleans are quoted (as `serde_json`
/// does) and anything else is refused.
struct KeyWriter<'a>(&'a mut Vec<u8>);

impl KeyWriter<'_> {
    fn quoted(self, text: &[u8]) -> Result<(), Error> {
        self.0.push(b'"');
        self.0.extend_from_slice(text);
        self.0.push(b'"');
        Ok(())
    }
}

macro_rules! integer_key {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name(self, v: $ty) -> Result<(), Error> {
            self.quoted(itoa::Buffer::new().format(v).as_bytes())
        })*
    };
}

macro_rules! refused_key {
    ($($name:ident($($arg:ty),*) -> $ret:ty),*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(key_must_be_a_string())
        })*
    };
}

impl<'a> ser::Serializer for KeyWriter<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        push_str(self.0, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        push_str(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(if v { b"true" } else { b"false" })
    }

    integer_key!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(Error("float key must be finite (got NaN or +/-inf)".into()));
        }
        let mut text = Vec::new();
        let _ = CompactFormatter.write_f32(&mut text, v);
        self.quoted(&text)
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(Error("float key must be finite (got NaN or +/-inf)".into()));
        }
        let mut text = Vec::new();
        let _ = CompactFormatter.write_f64(&mut text, v);
        self.quoted(&text)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.0.push(b'"');
        write!(Escaping(self.0), "{value}").map_err(|_| Error("formatting failed".into()))?;
        self.0.push(b'"');
        Ok(())
    }

    refused_key!(serialize_bytes(&[u8]) -> (), serialize_none() -> (), serialize_unit() -> (),
        serialize_unit_struct(&'static str) -> ());

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    refused_key!(
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant,
        serialize_map(Option<usize>) -> Self::SerializeMap,
        serialize_struct(&'static str, usize) -> Self::SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn ours<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        write(&mut out, v).map(|()| out)
    }

    fn same<T: Serialize + ?Sized>(v: &T) {
        let theirs = serde_json::to_vec(v).unwrap();
        let mine = ours(v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn every_escaped_byte_and_its_neighbours_match_serde_json() {
        for b in 0u8..=0x7f {
            let c = char::from(b);
            for text in [
                c.to_string(),
                format!("abc{c}def"),
                format!("{}{c}", "x".repeat(15)),
                format!("{}{c}{}", "y".repeat(16), "z".repeat(20)),
                format!("{c}{c}{}", "é".repeat(9)),
            ] {
                same(&text);
                same(&json!({ text.clone(): text }));
            }
        }
        same("/\u{7f}\u{2028}\u{10ffff} ünïcödé");
    }

    #[test]
    fn shapes_match_serde_json() {
        #[derive(Serialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(i32, String),
            Struct { a: Option<f64>, b: () },
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct S<'a> {
            a_field: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            list: Vec<E>,
            bytes: &'a [u8],
            tuple: (u8, char, bool),
            #[serde(flatten)]
            more: BTreeMap<String, Value>,
            empty: Vec<u8>,
            nothing: (),
        }
        let mut more = BTreeMap::new();
        more.insert(
            "flat\"key".to_owned(),
            json!([1, -2, 3.5, null, {"x": "\n"}]),
        );
        same(&S {
            a_field: "v\t",
            skipped: None,
            list: vec![
                E::Unit,
                E::New(7),
                E::Tuple(-1, "t".into()),
                E::Struct {
                    a: Some(f64::NAN),
                    b: (),
                },
                E::Struct {
                    a: Some(1e300),
                    b: (),
                },
            ],
            bytes: &[0, 255],
            tuple: (1, '"', true),
            more,
            empty: vec![],
            nothing: (),
        });
        for f in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-7,
            123456789.0,
            f64::MAX,
            f64::INFINITY,
        ] {
            same(&f);
            same(&(f as f32));
        }
        same(&(i128::MIN, u128::MAX, i64::MIN, u64::MAX));
    }

    #[test]
    fn map_keys_are_quoted_or_refused_as_serde_json_does() {
        let mut ints = BTreeMap::new();
        ints.insert(-3i64, "a");
        ints.insert(9, "b");
        same(&ints);
        let mut bools = BTreeMap::new();
        bools.insert(true, 1);
        same(&bools);
        let mut chars = BTreeMap::new();
        chars.insert('\u{1}', 1);
        same(&chars);
        let mut floats = std::collections::HashMap::new();
        floats.insert(F(1.5), 1);
        same(&floats);
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1);
        assert_eq!(ours(&bad).unwrap_err(), key_must_be_a_string());
        assert!(serde_json::to_vec(&bad).is_err());
        let mut nan = std::collections::HashMap::new();
        nan.insert(F(f64::NAN), 1);
        assert!(ours(&nan).is_err());
        assert!(serde_json::to_vec(&nan).is_err());
    }

    /// An f64 map key (Serialize only).
    #[derive(PartialEq)]
    struct F(f64);
    impl Eq for F {}
    impl std::hash::Hash for F {
        fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
            self.0.to_bits().hash(h);
        }
    }
    impl Serialize for F {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_f64(self.0)
        }
    }

    #[test]
    fn display_values_are_escaped_piece_by_piece() {
        struct D;
        impl fmt::Display for D {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let nul = '\u{0}';
                write!(f, "a\"{}\\b{nul}", 1)
            }
        }
        struct C;
        impl Serialize for C {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&D)
            }
        }
        same(&C);
        let mut keyed = BTreeMap::new();
        keyed.insert(std::net::IpAddr::from([127, 0, 0, 1]), 1);
        same(&keyed);
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec(("[\\x00-\\x7f]{0,12}|\\PC{0,6}", inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_values_match_serde_json(v in value()) {
            prop_assert_eq!(ours(&v).unwrap(), serde_json::to_vec(&v).unwrap());
        }

        #[test]
        fn arbitrary_strings_match_serde_json(s in any::<String>(), t in "[\\x00-\\x7f]{0,80}") {
            prop_assert_eq!(ours(&s).unwrap(), serde_json::to_vec(&s).unwrap());
            prop_assert_eq!(ours(&t).unwrap(), serde_json::to_vec(&t).unwrap());
        }
    }
}
