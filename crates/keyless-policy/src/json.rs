//! A small JSON parser that keeps positions and rejects duplicate keys.
//!
//! serde's maps silently keep the last of two equal keys, which is how real trust policies lost
//! their `sub` check; this parser reports the duplicate with its JSON path, line and column.

/// Maximum nesting depth of a policy document.
pub(crate) const MAX_DEPTH: usize = 32;

/// A parsed JSON value with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) v: Val,
    pub(crate) off: usize,
    /// Byte offset just past the value.
    pub(crate) end: usize,
}

/// JSON value kinds. Numbers keep their source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    /// Members in document order: key, offset of the key, value.
    Obj(Vec<(String, usize, Node)>),
}

impl Val {
    /// Name of the JSON type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::Arr(_) => "an array",
            Val::Obj(_) => "an object",
        }
    }
}

/// A JSON syntax error or duplicate key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonError {
    pub(crate) duplicate: bool,
    pub(crate) message: String,
    pub(crate) path: String,
    pub(crate) off: usize,
}

/// Converts a byte offset to a 1-based (line, column); the column counts characters.
pub(crate) fn line_col(src: &str, off: usize) -> (u32, u32) {
    let off = off.min(src.len());
    let mut line = 1u32;
    let mut col = 1u32;
    for (i, c) in src.char_indices() {
        if i >= off {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            col = 1;
        } else {
            col = col.saturating_add(1);
        }
    }
    (line, col)
}

enum Seg {
    Key(String),
    Idx(usize),
}

/// Renders a path stack as `$.Statement[0].Condition`.
fn render(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for p in path {
        match p {
            Seg::Key(k) => {
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    s.push('.');
                    s.push_str(k);
                } else {
                    s.push_str("['");
                    s.push_str(&k.replace('\'', "\\'"));
                    s.push_str("']");
                }
            }
            Seg::Idx(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// Renders a child path (used by the policy builder).
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let mut s = String::from(parent);
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        s.push('.');
        s.push_str(key);
    } else {
        s.push_str("['");
        s.push_str(&key.replace('\'', "\\'"));
        s.push_str("']");
    }
    s
}

/// Renders an index child path.
pub(crate) fn child_idx(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

struct P<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
    path: Vec<Seg>,
    allow_dup: bool,
}

/// Parses one JSON document; trailing non-whitespace is an error; duplicate keys are errors.
pub(crate) fn parse(src: &str) -> Result<Node, JsonError> {
    parse_with(src, false)
}

/// Parses one JSON document; with `allow_dup` duplicate keys are kept (both members), for
/// containers whose parts are re-parsed strictly on their own (case files).
pub(crate) fn parse_with(src: &str, allow_dup: bool) -> Result<Node, JsonError> {
    let mut p = P {
        b: src.as_bytes(),
        s: src,
        i: 0,
        path: Vec::new(),
        allow_dup,
    };
    p.ws();
    let n = p.value(0)?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.err("unexpected text after the end of the JSON document"));
    }
    Ok(n)
}

impl P<'_> {
    fn err(&self, m: &str) -> JsonError {
        JsonError {
            duplicate: false,
            message: m.to_string(),
            path: render(&self.path),
            off: self.i,
        }
    }
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }
    fn value(&mut self, depth: usize) -> Result<Node, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("the document is nested too deeply (at most 32 levels)"));
        }
        let off = self.i;
        let v =
            match self.b.get(self.i) {
                None => return Err(self.err("unexpected end of the document; expected a value")),
                Some(b'{') => self.object(depth)?,
                Some(b'[') => self.array(depth)?,
                Some(b'"') => Val::Str(self.string()?),
                Some(b't') => self.lit("true", Val::Bool(true))?,
                Some(b'f') => self.lit("false", Val::Bool(false))?,
                Some(b'n') => self.lit("null", Val::Null)?,
                Some(c) if *c == b'-' || c.is_ascii_digit() => self.number()?,
                Some(_) => return Err(self.err(
                    "expected a JSON value (object, array, string, number, true, false or null)",
                )),
            };
        Ok(Node {
            v,
            off,
            end: self.i,
        })
    }
    fn lit(&mut self, word: &str, v: Val) -> Result<Val, JsonError> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal; expected true, false or null"))
        }
    }
    fn number(&mut self) -> Result<Val, JsonError> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number: digits expected after '.'"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number: digits expected in the exponent"));
            }
        }
        Ok(Val::Num(self.s[start..self.i].to_string()))
    }
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .b
                .get(self.i)
                .and_then(|c| (*c as char).to_digit(16))
                .ok_or_else(|| self.err("invalid \\u escape: four hex digits expected"))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }
    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(c) = self.b.get(self.i) {
                if *c == b'"' || *c == b'\\' || *c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.s[start..self.i]);
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string; a closing '\"' is missing")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.b.get(self.i).copied();
                    self.i += 1;
                    match c {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(self.i) == Some(&b'\\')
                                    && self.b.get(self.i + 1) == Some(&b'u')
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(
                                            self.err("invalid surrogate pair in \\u escape")
                                        );
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    return Err(self.err("lone surrogate in \\u escape"));
                                }
                            } else {
                                hi
                            };
                            out.push(
                                char::from_u32(cp).ok_or_else(|| self.err("invalid \\u escape"))?,
                            );
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape sequence in string"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string; escape it")),
            }
        }
    }
    fn array(&mut self, depth: usize) -> Result<Val, JsonError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Val::Arr(items));
        }
        loop {
            self.path.push(Seg::Idx(items.len()));
            self.ws();
            let v = self.value(depth + 1)?;
            self.path.pop();
            items.push(v);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Val::Arr(items));
                }
                _ => return Err(self.err("expected ',' or ']' in array")),
            }
        }
    }
    fn object(&mut self, depth: usize) -> Result<Val, JsonError> {
        self.i += 1;
        let mut members: Vec<(String, usize, Node)> = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Val::Obj(members));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string key in object"));
            }
            let koff = self.i;
            let key = self.string()?;
            if !self.allow_dup && members.iter().any(|(k, _, _)| *k == key) {
                return Err(JsonError {
                    duplicate: true,
                    message: format!(
                        "duplicate key \"{key}\"; each key may appear only once in an object, remove or merge the duplicate"
                    ),
                    path: render(&self.path),
                    off: koff,
                });
            }
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.err("expected ':' after object key"));
            }
            self.i += 1;
            self.ws();
            self.path.push(Seg::Key(key.clone()));
            let v = self.value(depth + 1)?;
            self.path.pop();
            members.push((key, koff, v));
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Val::Obj(members));
                }
                _ => return Err(self.err("expected ',' or '}' in object")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_has_path_and_position() {
        let src =
            "{\"Statement\":[{\"Condition\":{\"StringEquals\":{\n \"a\":\"1\",\n \"a\":\"2\"}}}]}";
        let e = parse(src).unwrap_err();
        assert!(e.duplicate);
        assert_eq!(e.path, "$.Statement[0].Condition.StringEquals");
        assert_eq!(line_col(src, e.off), (3, 2));
    }

    #[test]
    fn syntax_errors() {
        assert!(parse("{").is_err());
        assert!(parse("[1,]").is_err());
        assert!(parse("01").is_err());
        assert!(parse("\"\\x\"").is_err());
        assert!(parse("{} x").is_err());
        assert!(parse(&"[".repeat(100)).is_err());
        assert_eq!(
            parse("\"\\u00e9\\ud83d\\ude00\"").unwrap().v,
            Val::Str("é😀".into())
        );
    }
}
