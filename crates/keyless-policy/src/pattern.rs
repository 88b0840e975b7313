//! Compiled string patterns: globs (`*`, `?`), policy variables and ARN segments.

use crate::context::{Context, ContextValue, KeyName};

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// Literal text (a substituted `${*}` etc. is literal too).
    Lit(Box<str>),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`; key is lowercased.
    Var {
        key: KeyName,
        default: Option<Box<str>>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pat {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) has_var: bool,
    /// The shape, found once when compiling rather than on every match.
    shape: Shape,
}

/// The shape of a variable-free pattern, for the common cases that need no glob engine.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// `*`
    Any,
    /// A literal (the first piece, or none).
    Exact,
    /// A literal (the first piece) followed by one `*`.
    Prefix,
    /// Anything else, and every pattern with a variable.
    General,
}

/// Problems found while reading `${...}` (reported by the validator).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarIssue {
    MissingBrace,
    Space,
    Empty,
}

fn push_lit(pieces: &mut Vec<Piece>, s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(Piece::Lit(prev)) = pieces.last_mut() {
        let mut n = String::from(&**prev);
        n.push_str(s);
        *prev = n.into_boxed_str();
    } else {
        pieces.push(Piece::Lit(s.into()));
    }
}

/// Compiles `src`. `wild`: `*`/`?` are wildcards; `vars`: `${...}` are variables.
pub(crate) fn compile(src: &str, wild: bool, vars: bool) -> (Pat, Vec<VarIssue>) {
    let mut pieces = Vec::new();
    let mut issues = Vec::new();
    let mut has_var = false;
    let mut lit_start = 0;
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if wild && (c == b'*' || c == b'?') {
            push_lit(&mut pieces, &src[lit_start..i]);
            pieces.push(if c == b'*' { Piece::Star } else { Piece::One });
            i += 1;
            lit_start = i;
        } else if vars && c == b'$' && b.get(i + 1) == Some(&b'{') {
            let Some(end_rel) = src[i + 2..].find('}') else {
                issues.push(VarIssue::MissingBrace);
                i += 1;
                continue;
            };
            let inner = &src[i + 2..i + 2 + end_rel];
            push_lit(&mut pieces, &src[lit_start..i]);
            i = i + 2 + end_rel + 1;
            lit_start = i;
            match inner {
                "*" => push_lit(&mut pieces, "*"),
                "?" => push_lit(&mut pieces, "?"),
                "$" => push_lit(&mut pieces, "$"),
                "" => {
                    issues.push(VarIssue::Empty);
                    has_var = true;
                    pieces.push(Piece::Var {
                        key: KeyName::new(""),
                        default: None,
                    });
                }
                _ => {
                    let (key, default) = match inner.split_once(',') {
                        Some((k, d)) => {
                            let d = d.trim_start();
                            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\''));
                            (k, d)
                        }
                        None => (inner, None),
                    };
                    if key.contains(' ') || (inner.contains(',') && default.is_none()) {
                        issues.push(VarIssue::Space);
                    }
                    has_var = true;
                    // Folded as the context folds key names (Unicode, not ASCII only), or
                    // `${aws:PrincipalTag/ÉQUIPE}` would miss the tag and take the default.
                    pieces.push(Piece::Var {
                        key: KeyName::new(&key.trim().to_lowercase()),
                        default: default.map(Into::into),
                    });
                }
            }
        } else {
            i += 1;
        }
    }
    push_lit(&mut pieces, &src[lit_start..]);
    (Pat::new(pieces, has_var), issues)
}

/// The text a piece stands for, or `None` for an unresolvable variable.
fn piece_text<'a>(p: &'a Piece, ctx: &'a Context) -> Option<&'a str> {
    match p {
        Piece::Lit(s) => Some(s),
        Piece::Var { key, default } => match ctx.get_key(key) {
            Some(ContextValue::Single(v)) => Some(v),
            _ => default.as_deref(),
        },
        Piece::Star | Piece::One => Some(""),
    }
}

fn char_len(s: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() && (s[j] & 0xC0) == 0x80 {
        j += 1;
    }
    j - i
}

#[inline]
fn prefix_eq(s: &[u8], lit: &[u8], ci: bool) -> bool {
    let Some(head) = s.get(..lit.len()) else {
        return false;
    };
    if ci {
        head.eq_ignore_ascii_case(lit)
    } else {
        bytes_eq(head, lit)
    }
}

/// `a == b`, with the first bytes compared inline: most tests against a pattern fail there,
/// before a call to `memcmp` is worth it. Short values (ARN fields, most literals) that match
/// are compared inline too.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.first() == b.first()
        && if a.len() <= 16 {
            short_eq(a, b)
        } else {
            a == b
        }
}

/// `a == b` for two slices of the same length, at most 16: two overlapping word compares.
#[inline]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if let (Some(a0), Some(b0), Some(a1), Some(b1)) = (
        a.first_chunk::<8>(),
        b.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.last_chunk::<8>(),
    ) {
        return a0 == b0 && a1 == b1;
    }
    if let (Some(a0), Some(b0), Some(a1), Some(b1)) = (
        a.first_chunk::<4>(),
        b.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return a0 == b0 && a1 == b1;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

impl Pat {
    pub(crate) fn new(pieces: Vec<Piece>, has_var: bool) -> Pat {
        let shape = match pieces.as_slice() {
            _ if has_var => Shape::General,
            [] | [Piece::Lit(_)] => Shape::Exact,
            [Piece::Star] => Shape::Any,
            [Piece::Lit(_), Piece::Star] => Shape::Prefix,
            _ => Shape::General,
        };
        Pat {
            pieces,
            has_var,
            shape,
        }
    }

    /// The leading literal of an `Exact` or `Prefix` pattern.
    fn head(&self) -> &[u8] {
        match self.pieces.first() {
            Some(Piece::Lit(l)) => l.as_bytes(),
            _ => b"",
        }
    }

    /// Glob-matches the whole of `s` (`ci`: ASCII case-insensitive). Unresolvable variables never
    /// match. Without `*`/`?` pieces this is an exact comparison.
    #[inline]
    pub(crate) fn matches(&self, s: &str, ci: bool, ctx: &Context) -> bool {
        self.matches_bytes(s.as_bytes(), ci, ctx)
    }

    /// [`Pat::matches`] on the bytes of a `str` (or of a `str` with ASCII letters lowercased,
    /// which is UTF-8 still).
    #[inline]
    pub(crate) fn matches_bytes(&self, s: &[u8], ci: bool, ctx: &Context) -> bool {
        match self.shape {
            Shape::Any => true,
            Shape::Exact if ci => self.head().eq_ignore_ascii_case(s),
            Shape::Exact => bytes_eq(self.head(), s),
            Shape::Prefix => prefix_eq(s, self.head(), ci),
            Shape::General => self.glob(s, ci, ctx),
        }
    }

    /// The general walk: on a mismatch, go back to the last `*` and let it take one more
    /// character.
    fn glob(&self, s: &[u8], ci: bool, ctx: &Context) -> bool {
        // With variables, an unresolvable one fails the match when the walk below reaches it:
        // the walk only succeeds after visiting every piece, so that is the same as checking
        // them all first, without looking each variable up twice.
        let p = &self.pieces;
        let (mut pi, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if pi < p.len() {
                match &p[pi] {
                    // A last `*` takes whatever is left.
                    Piece::Star if pi + 1 == p.len() => return true,
                    Piece::Star => {
                        star = Some((pi + 1, si));
                        pi += 1;
                        continue;
                    }
                    Piece::One => {
                        if si < s.len() {
                            si += char_len(s, si);
                            pi += 1;
                            continue;
                        }
                    }
                    other => {
                        let Some(lit) = piece_text(other, ctx) else {
                            return false;
                        };
                        let lit = lit.as_bytes();
                        if prefix_eq(&s[si..], lit, ci) {
                            si += lit.len();
                            pi += 1;
                            continue;
                        }
                    }
                }
            } else if si == s.len() {
                return true;
            }
            match star {
                Some((sp, ss)) if ss < s.len() => {
                    let ns = ss + char_len(s, ss);
                    star = Some((sp, ns));
                    pi = sp;
                    si = ns;
                }
                _ => return false,
            }
        }
    }

    /// The literal text before the first wildcard or variable, and whether anything follows it
    /// there (a wildcard, or a variable the request fills in). Escapes such as `${*}` are
    /// literal text.
    pub(crate) fn fixed_head(&self) -> (&str, bool) {
        match self.pieces.as_slice() {
            [] => ("", false),
            [Piece::Lit(l)] => (l, false),
            // Literals are merged when compiling, so a second piece is never one.
            [Piece::Lit(l), ..] => (l, true),
            [..] => ("", true),
        }
    }

    /// The pattern as written, for messages: wildcards as `*`/`?`, variables as `${key}`.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Star => out.push('*'),
                Piece::One => out.push('?'),
                Piece::Var { key, .. } => {
                    out.push_str("${");
                    out.push_str(key);
                    out.push('}');
                }
            }
        }
        out
    }

    /// Resolves to a plain string (variables substituted), if resolvable. Wildcards render as-is.
    pub(crate) fn resolve(&self, ctx: &Context) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Star => out.push('*'),
                Piece::One => out.push('?'),
                other => out.push_str(piece_text(other, ctx)?),
            }
        }
        Some(out)
    }
}

/// A compiled ARN pattern: six colon-separated segments matched separately, or a whole-string
/// glob when the pattern is not a six-part ARN (e.g. `*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArnPat {
    pub(crate) whole: Pat,
    pub(crate) segs: Option<[Pat; 6]>,
    /// Set when a `*` ends one of the first five segments: as a `Resource`, the pattern may
    /// then also match across colons ([`ArnPat::matches_resource`]).
    spans: Option<Spans>,
}

/// Which wildcards of a resource pattern may take colons, by piece of the whole pattern.
#[derive(Debug, Clone, PartialEq)]
struct Spans {
    /// For each piece: whether it may take a colon (a `*` ending its segment; any wildcard of
    /// the resource segment, which holds colons of its own).
    takes_colons: Box<[bool]>,
    /// Colons written in the pattern's literals; a value needs more to be matched across one.
    literal_colons: usize,
}

impl Spans {
    /// `None` unless a `*` ends one of the first five segments of `pat`.
    fn of(pat: &Pat) -> Option<Spans> {
        let mut colons = 0usize;
        let mut takes_colons = Vec::with_capacity(pat.pieces.len());
        let mut any_crossing = false;
        for (i, p) in pat.pieces.iter().enumerate() {
            let in_resource = colons >= 5;
            let takes = match p {
                Piece::Star => {
                    let ends_segment = match pat.pieces.get(i + 1) {
                        None => true,
                        Some(Piece::Lit(next)) => next.starts_with(':'),
                        Some(_) => false,
                    };
                    any_crossing |= ends_segment && !in_resource;
                    ends_segment || in_resource
                }
                Piece::One => in_resource,
                Piece::Lit(l) => {
                    colons += l.bytes().filter(|&c| c == b':').count();
                    false
                }
                Piece::Var { .. } => false,
            };
            takes_colons.push(takes);
        }
        any_crossing.then(|| Spans {
            takes_colons: takes_colons.into_boxed_slice(),
            literal_colons: colons,
        })
    }
}

/// Whether byte `i` of `s` starts a character (or is its end).
fn at_char_start(s: &[u8], i: usize) -> bool {
    s.get(i).is_none_or(|&c| (c & 0xC0) != 0x80)
}

/// Whole-string match of `pieces` against `s`, where only the wildcards `takes_colons` marks
/// may take a `:`. Tracks every position the pieces so far can end at (pattern × value steps,
/// no backtracking); false when a variable is unresolvable.
fn matches_with_spans(pieces: &[Piece], spans: &Spans, s: &[u8], ctx: &Context) -> bool {
    let n = s.len();
    let mut cur = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    if let Some(first) = cur.first_mut() {
        *first = true;
    }
    for (p, &takes) in pieces.iter().zip(spans.takes_colons.iter()) {
        next.fill(false);
        match p {
            Piece::Star => {
                let mut open = false;
                for (i, slot) in next.iter_mut().enumerate() {
                    open |= cur.get(i).copied().unwrap_or(false);
                    if open && at_char_start(s, i) {
                        *slot = true;
                    }
                    if !takes && s.get(i) == Some(&b':') {
                        open = false;
                    }
                }
            }
            Piece::One => {
                for (i, _) in cur.iter().enumerate().filter(|(_, on)| **on) {
                    match s.get(i) {
                        Some(&c) if takes || c != b':' => {
                            if let Some(slot) = next.get_mut(i + char_len(s, i)) {
                                *slot = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            other => {
                let Some(text) = piece_text(other, ctx) else {
                    return false;
                };
                let text = text.as_bytes();
                for (i, _) in cur.iter().enumerate().filter(|(_, on)| **on) {
                    if s.get(i..).is_some_and(|rest| rest.starts_with(text))
                        && let Some(slot) = next.get_mut(i + text.len())
                    {
                        *slot = true;
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        if !cur.contains(&true) {
            return false;
        }
    }
    cur.last().copied().unwrap_or(false)
}

/// Splits a pattern's pieces into ARN segments at the first five literal colons. Returns the
/// segments (fewer than six when the pattern has fewer colons).
fn split_segments(pat: &Pat) -> Vec<Pat> {
    let mut segs: Vec<Pat> = vec![Pat::new(Vec::new(), false)];
    for p in &pat.pieces {
        match p {
            Piece::Lit(s) => {
                let mut rest: &str = s;
                while segs.len() < 6 {
                    match rest.split_once(':') {
                        Some((a, b)) => {
                            if let Some(cur) = segs.last_mut() {
                                push_lit(&mut cur.pieces, a);
                            }
                            segs.push(Pat::new(Vec::new(), false));
                            rest = b;
                        }
                        None => break,
                    }
                }
                if let Some(cur) = segs.last_mut() {
                    push_lit(&mut cur.pieces, rest);
                }
            }
            other => {
                if let Some(cur) = segs.last_mut() {
                    cur.has_var |= matches!(other, Piece::Var { .. });
                    cur.pieces.push(other.clone());
                }
            }
        }
    }
    // The shapes were found on the empty segments; find them on the finished ones.
    segs.into_iter()
        .map(|p| Pat::new(p.pieces, p.has_var))
        .collect()
}

/// A value split once into its six ARN fields (at the first five colons, as `splitn(6, ':')`),
/// so that every ARN pattern it is matched against reuses the split.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArnView<'a> {
    whole: &'a str,
    /// `None` when the value has fewer than six fields (it is not an ARN).
    fields: Option<[&'a str; 6]>,
}

/// `s.split_once(b)` for an ASCII byte, by a plain byte scan: the generic `char` searcher
/// costs more than the whole scan on strings as short as ARN fields.
pub(crate) fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Byte offsets of the first five colons of `b`, eight bytes at a time: the word trick marks
/// each byte equal to `:` exactly (no carries between bytes), so ARNs, whose fifth colon is
/// within their first few dozen bytes, are split in a handful of steps.
fn five_colons(b: &[u8]) -> Option<[usize; 5]> {
    const COLONS: u64 = u64::from_ne_bytes([b':'; 8]);
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    let mut cuts = [0usize; 5];
    let mut n = 0;
    let mut base = 0;
    let mut words = b.chunks_exact(8);
    for c in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ COLONS;
        // High bit set in each byte of x that is zero.
        let mut m = !(((x & LOW7) + LOW7) | x | LOW7);
        while m != 0 {
            *cuts.get_mut(n)? = base + (m.trailing_zeros() / 8) as usize;
            n += 1;
            if n == 5 {
                return Some(cuts);
            }
            m &= m - 1;
        }
        base += 8;
    }
    for (i, &c) in words.remainder().iter().enumerate() {
        if c == b':' {
            *cuts.get_mut(n)? = base + i;
            n += 1;
            if n == 5 {
                return Some(cuts);
            }
        }
    }
    None
}

impl<'a> ArnView<'a> {
    pub(crate) fn new(whole: &'a str) -> ArnView<'a> {
        // Colons are ASCII, so every cut is at a char boundary.
        let fields = five_colons(whole.as_bytes()).and_then(|[c0, c1, c2, c3, c4]| {
            Some([
                whole.get(..c0)?,
                whole.get(c0 + 1..c1)?,
                whole.get(c1 + 1..c2)?,
                whole.get(c2 + 1..c3)?,
                whole.get(c3 + 1..c4)?,
                whole.get(c4 + 1..)?,
            ])
        });
        ArnView { whole, fields }
    }

    /// The six fields, when the value has them.
    pub(crate) fn fields(&self) -> Option<&[&'a str; 6]> {
        self.fields.as_ref()
    }
}

impl ArnPat {
    /// Compiles an ARN pattern. `pad`: a pattern with fewer than six segments whose last
    /// segment is a wildcard is padded with `*` segments.
    pub(crate) fn compile(src: &str, vars: bool, pad: bool) -> (ArnPat, Vec<VarIssue>) {
        let (whole, issues) = compile(src, true, vars);
        let mut segs = split_segments(&whole);
        if segs.len() < 6 && segs.len() > 1 && pad {
            while segs.len() < 6 {
                segs.push(Pat::new(vec![Piece::Star], false));
            }
        }
        let segs: Option<[Pat; 6]> = segs.try_into().ok();
        let spans = Spans::of(&whole);
        (ArnPat { whole, segs, spans }, issues)
    }

    /// Matches a `Resource`/`NotResource` value: field by field, or across colons where a `*`
    /// ends one of the first five segments, since such a `*` "can expand to match beyond the
    /// colon boundaries" (IAM UG, Resource element). `arn:aws:s3:*:b/*`, one colon short,
    /// matches `arn:aws:s3:::b/k` as AWS matches it.
    pub(crate) fn matches_resource(&self, value: &ArnView<'_>, ctx: &Context) -> bool {
        if self.matches_view(value, ctx, false) {
            return true;
        }
        let Some(spans) = &self.spans else {
            return false;
        };
        // Spanning a colon takes one more than the pattern writes, and the value must start
        // with the pattern's leading text: most values fail one of these without the walk
        // (and its allocation).
        let colons = value.whole.bytes().filter(|&c| c == b':').count();
        colons > spans.literal_colons
            && value.whole.starts_with(self.whole.fixed_head().0)
            && matches_with_spans(&self.whole.pieces, spans, value.whole.as_bytes(), ctx)
    }

    /// Matches `value` segment by segment. A pattern that is not a six-part ARN (e.g. `*`) is a
    /// whole-string glob unless `arn_only` (ARN condition operators).
    #[cfg(test)]
    pub(crate) fn matches(&self, value: &str, ctx: &Context, arn_only: bool) -> bool {
        self.matches_view(&ArnView::new(value), ctx, arn_only)
    }

    /// [`ArnPat::matches`] on a value split beforehand.
    pub(crate) fn matches_view(&self, value: &ArnView<'_>, ctx: &Context, arn_only: bool) -> bool {
        match &self.segs {
            // A value with fewer than six fields is not an ARN and matches no ARN pattern.
            Some(segs) => value.fields.is_some_and(|fields| {
                segs.iter()
                    .zip(fields)
                    .all(|(seg, v)| seg.matches(v, false, ctx))
            }),
            None => !arn_only && self.whole.matches(value.whole, false, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile(p, true, true).0.matches(s, false, &Context::new())
    }

    #[test]
    fn short_and_long_values_compare_byte_for_byte() {
        // Every length up to past the inline limit, equal and with one byte changed anywhere.
        for len in 0..=40usize {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(bytes_eq(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!bytes_eq(&a, &b), "{len} {at}");
            }
            assert!(!bytes_eq(&a, &a[..len.saturating_sub(1)]) || len == 0);
        }
    }

    #[test]
    fn glob_basics() {
        assert!(m("*", ""));
        assert!(m("a*b?c", "aXXbYc"));
        assert!(!m("a*b?c", "abc"));
        assert!(m("*log*", "carlossalazar-logs/f"));
        assert!(m("é?", "éü"));
        assert!(m("${*}x", "*x"));
        assert!(!m("${*}x", "ax"));
    }

    #[test]
    fn variables() {
        let mut c = Context::new();
        c.insert_single("aws:username", "a*");
        let p = compile("u/${AWS:username}", true, true).0;
        assert!(p.matches("u/a*", false, &c));
        assert!(!p.matches("u/ab", false, &c), "substituted * is literal");
        let p = compile("x-${aws:PrincipalTag/team, 'dflt'}", true, true).0;
        assert!(p.matches("x-dflt", false, &c));
        let p = compile("${aws:nothing}", true, true).0;
        assert!(!p.matches("", false, &c));
    }

    proptest::proptest! {
        #[test]
        fn arn_view_splits_as_splitn(s in "[a:é/*-]{0,40}") {
            let want: Vec<&str> = s.splitn(6, ':').collect();
            let got = ArnView::new(&s).fields().map(|f| f.to_vec());
            proptest::prop_assert_eq!(got, (want.len() == 6).then_some(want));
            let want_once = s.split_once('/');
            proptest::prop_assert_eq!(split_byte(&s, b'/'), want_once);
        }

        #[test]
        fn glob_agrees_with_regex(p in "[ab*?é]{0,6}", v in "[abé]{0,6}") {
            let mut re = String::from("^(?s)");
            for c in p.chars() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            let want = regex::Regex::new(&re).unwrap().is_match(&v);
            proptest::prop_assert_eq!(compile(&p, true, false).0.matches(&v, false, &Context::new()), want);
        }

        #[test]
        fn shape_fast_paths_agree_with_the_walk(p in "[ab*?]{0,4}", v in "[abAB]{0,4}", ci: bool) {
            let pat = compile(&p, true, false).0;
            let ctx = Context::new();
            let s = if ci { v.clone() } else { v.to_ascii_lowercase() };
            proptest::prop_assert_eq!(pat.matches(&s, ci, &ctx), pat.glob(s.as_bytes(), ci, &ctx));
        }
    }

    proptest::proptest! {
        /// The colon-spanning walk agrees with a regex where only the marked wildcards may
        /// take a colon.
        #[test]
        fn spanning_walk_agrees_with_regex(p in "[a:*?é]{0,9}", v in "[a:é]{0,9}") {
            let pat = compile(&p, true, false).0;
            let Some(spans) = Spans::of(&pat) else { return Ok(()) };
            let mut re = String::from("^(?s)");
            for (piece, takes) in pat.pieces.iter().zip(spans.takes_colons.iter()) {
                re.push_str(&match (piece, takes) {
                    (Piece::Lit(l), _) => regex::escape(l),
                    (Piece::Star, true) => ".*".into(),
                    (Piece::Star, false) => "[^:]*".into(),
                    (Piece::One, true) => ".".into(),
                    (Piece::One, false) => "[^:]".into(),
                    (Piece::Var { .. }, _) => unreachable!("no variables compiled"),
                });
            }
            re.push('$');
            let want = regex::Regex::new(&re).unwrap().is_match(&v);
            let got = matches_with_spans(&pat.pieces, &spans, v.as_bytes(), &Context::new());
            proptest::prop_assert_eq!(got, want, "{} {}", p, v);
        }
    }

    #[test]
    fn resource_stars_ending_a_segment_span_colons() {
        let c = Context::new();
        let view = |s| ArnView::new(s);
        let p = ArnPat::compile("arn:aws:s3:*:b/*", true, true).0;
        assert!(p.matches_resource(&view("arn:aws:s3:::b/k"), &c));
        assert!(!p.matches_resource(&view("arn:aws:s3:::c/k"), &c));
        // Field by field as before when no colon needs spanning.
        let p = ArnPat::compile("arn:aws:iam::*:role/x", true, false).0;
        assert!(p.matches_resource(&view("arn:aws:iam::123456789012:role/x"), &c));
        assert!(!p.matches_resource(&view("arn:aws:iam::123456789012:role/y"), &c));
        // Nothing to span: no `*` ends a segment before the resource.
        assert!(
            ArnPat::compile("arn:aws:s3:::b/*", true, false)
                .0
                .spans
                .is_none()
        );
        assert!(
            ArnPat::compile("arn:aws:ec2:us-*1:1:i", true, false)
                .0
                .spans
                .is_none()
        );
    }

    #[test]
    fn arn_segments() {
        let c = Context::new();
        let p = ArnPat::compile("arn:aws:svc:*:111122223333:finance/*", true, false).0;
        assert!(p.matches("arn:aws:svc:us-east-1:111122223333:finance/x:y", &c, true));
        assert!(!p.matches(
            "arn:aws:svc:us-east-1:extra:111122223333:finance/x",
            &c,
            true
        ));
        let p = ArnPat::compile("arn:aws:iam::*:user/${aws:username}", true, false).0;
        assert!(p.segs.is_some());
    }
}
