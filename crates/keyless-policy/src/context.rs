//! Request context: condition keys with single or multiple values.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A multiply-rotate hash over 8-byte words: context keys are short and few (bounded by the
/// request size), so a fast non-keyed hash is enough, and reading words rather than bytes keeps
/// the lookups of the evaluation hot path cheap.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordHash(u64);

impl WordHash {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;

    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }
}

impl Hasher for WordHash {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits; fold the well-mixed high bits down.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for c in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length tells "ab" from "ab\0".
        self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
    }
    fn write_u8(&mut self, b: u8) {
        self.mix(u64::from(b));
    }
}

/// A context key's value: single-valued, or multivalued (a list, possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single-valued key.
    Single(String),
    /// A multivalued key; an empty list is present but empty (unlike an absent key).
    Multi(Vec<String>),
}

/// A lowercased context key name with its hash, computed once when a policy is compiled so
/// that evaluating a condition or a policy variable looks the key up without hashing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyName {
    text: Box<str>,
    hash: u64,
}

impl KeyName {
    /// `lower` must already be lowercase (as context keys are stored).
    pub(crate) fn new(lower: &str) -> KeyName {
        KeyName {
            text: lower.into(),
            hash: key_hash(lower),
        }
    }
}

impl std::ops::Deref for KeyName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

fn key_hash(lower: &str) -> u64 {
    let mut h = WordHash::default();
    h.write(lower.as_bytes());
    h.finish()
}

/// Passes a key hash (already a [`WordHash`]) through as the table's hash.
#[derive(Debug, Clone, Copy, Default)]
struct Precomputed(u64);

impl Hasher for Precomputed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; hash anything else properly all the same.
        let mut h = WordHash(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The keys whose names share one hash: nearly always exactly one.
#[derive(Debug, Clone)]
enum Slot {
    One(String, ContextValue),
    Many(Vec<(String, ContextValue)>),
}

impl Slot {
    fn get(&self, key: &str) -> Option<&ContextValue> {
        match self {
            Slot::One(k, v) => (k == key).then_some(v),
            Slot::Many(es) => es.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        let (one, many) = match self {
            Slot::One(k, v) => (Some((k.as_str(), v)), &[][..]),
            Slot::Many(es) => (None, es.as_slice()),
        };
        one.into_iter()
            .chain(many.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

/// Keys that share one prefix, kept as a list and searched when looked up instead of hashed
/// when set. A web-identity token brings thirty-odd claims under its provider's prefix, and a
/// trust policy reads two or three of them: building a table key (prefix, lowercasing,
/// allocation, hash) for every claim was most of what a claim cost a request.
#[derive(Debug, Clone)]
struct Prefixed {
    /// Lowercase, ending in `:`.
    prefix: String,
    /// Names as given, in any case; of two names equal ignoring case, the later one counts.
    entries: Vec<(String, ContextValue)>,
}

impl Prefixed {
    /// The value of the lowercase key `lower`, when it is under the prefix.
    fn get(&self, lower: &str) -> Option<&ContextValue> {
        let name = lower.strip_prefix(self.prefix.as_str())?;
        self.entries
            .iter()
            .rev()
            .find(|(given, _)| lowercases_to(given, name))
            .map(|(_, v)| v)
    }

    /// Each visible entry as (full lowercase key, value), the later of two same names only.
    fn iter(&self) -> impl Iterator<Item = (String, &ContextValue)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, (name, v))| {
                let lower = name.to_lowercase();
                let superseded = self.entries[i + 1..]
                    .iter()
                    .any(|(later, _)| lowercases_to(later, &lower));
                (!superseded).then(|| (format!("{}{lower}", self.prefix), v))
            })
    }
}

/// Whether `name` lowercased is `lower` (itself lowercase), without building it unless `name`
/// has non-ASCII letters: a byte-for-byte match after ASCII lowercasing settles it, and an
/// ASCII name of another length or other letters cannot match.
fn lowercases_to(name: &str, lower: &str) -> bool {
    if name.len() == lower.len()
        && name
            .bytes()
            .zip(lower.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
    {
        return true;
    }
    !name.is_ascii() && name.to_lowercase() == lower
}

/// The request context. Key names are case-insensitive; values keep their case.
///
/// A context can sit on a shared `base` ([`Context::over`]): the keys that describe a session's
/// principal do not change between its requests, so they are built once and shared, and each
/// request adds only its own keys on top. A key set on top hides the base's value of that key.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Keyed by the hash of the lowercased name.
    map: HashMap<u64, Slot, BuildHasherDefault<Precomputed>>,
    /// Keys set with [`Context::insert_prefixed`]; a key set by name hides one here.
    prefixed: Option<Prefixed>,
    /// Keys set by name that are visible: this context's and the base's it does not hide. The
    /// prefixed entries are counted when asked ([`Context::len`]), which only tests and the
    /// authorize API's bound do, so that the request path never pays for it.
    len: usize,
    base: Option<Arc<Context>>,
}

impl PartialEq for Context {
    fn eq(&self, other: &Context) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get_lower(&k) == Some(v))
    }
}

impl Eq for Context {}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty context with room for `keys` keys, so that building one of a known size
    /// (a web-identity request's token claims) does not rehash as it grows.
    pub fn with_capacity(keys: usize) -> Self {
        Context {
            map: HashMap::with_capacity_and_hasher(keys, BuildHasherDefault::default()),
            ..Context::default()
        }
    }

    /// An empty context on top of `base`: every key of `base` is visible until it is set here.
    pub fn over(base: Arc<Context>) -> Self {
        // One level only: a base that has a base of its own is flattened first.
        let base = if base.base.is_some() {
            let mut flat = Context::clone(&base);
            flat.flatten();
            Arc::new(flat)
        } else {
            base
        };
        Context {
            // Room for the keys a request adds (two times, address, transport, user agent, region,
            // MFA age) without growing.
            // Seven is the most that eight buckets hold; sixteen would make the table a large
            // allocation (over 1 KiB), which glibc serves only after consolidating its free lists.
            map: HashMap::with_capacity_and_hasher(7, BuildHasherDefault::default()),
            prefixed: None,
            len: base.len(),
            base: Some(base),
        }
    }

    /// Whether the base (if any) has `lower`, which a new key on top then hides.
    fn base_has(&self, hash: u64, lower: &str) -> bool {
        self.base
            .as_ref()
            .is_some_and(|b| b.get_hashed(hash, lower).is_some())
    }

    fn insert(&mut self, lower: String, v: ContextValue) {
        use std::collections::hash_map::Entry;
        let hash = key_hash(&lower);
        let new_key = !self.base_has(hash, &lower);
        match self.map.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(Slot::One(lower, v));
                if new_key {
                    self.len += 1;
                }
            }
            Entry::Occupied(mut e) => {
                let slot = e.get_mut();
                if let Slot::One(k, old) = slot {
                    if *k == lower {
                        *old = v;
                        return;
                    }
                    let first = std::mem::replace(slot, Slot::Many(Vec::with_capacity(2)));
                    if let (Slot::One(k, old), Slot::Many(es)) = (first, &mut *slot) {
                        es.push((k, old));
                    }
                }
                if let Slot::Many(es) = slot {
                    match es.iter_mut().find(|(k, _)| *k == lower) {
                        Some((_, old)) => *old = v,
                        None => {
                            es.push((lower, v));
                            if new_key {
                                self.len += 1;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sets a single-valued key (replacing any value of the same key in any case).
    pub fn insert_single(&mut self, key: &str, v: impl Into<String>) {
        self.insert(key.to_lowercase(), ContextValue::Single(v.into()));
    }

    /// Sets a multivalued key (replacing any value of the same key in any case).
    pub fn insert_multi(&mut self, key: &str, vs: Vec<String>) {
        self.insert(key.to_lowercase(), ContextValue::Multi(vs));
    }

    /// Sets `<prefix>:<name>` for every entry at once, without building a table key for each;
    /// lookups search the entries (see [`Prefixed`]). Of two names equal ignoring case the
    /// later counts, as if each had been set in turn. A key set by name with
    /// [`Context::insert_single`] or [`Context::insert_multi`], before or after, hides the
    /// entry of the same key: a token's claims can never stand in for `aws:` keys, even under
    /// a provider whose prefix is `aws`.
    pub fn insert_prefixed(&mut self, prefix: &str, entries: Vec<(String, ContextValue)>) {
        // One group per context: an earlier one goes into the table first.
        self.materialize_prefixed();
        self.prefixed = Some(Prefixed {
            prefix: format!("{}:", prefix.to_lowercase()),
            entries,
        });
    }

    /// Moves the prefixed entries (if any) into the table, where `remove` and flattening work
    /// on them as on any other key.
    fn materialize_prefixed(&mut self) {
        let Some(group) = self.prefixed.take() else {
            return;
        };
        let visible: Vec<(String, ContextValue)> = group
            .iter()
            .filter(|(k, _)| self.get_by_name(key_hash(k), k).is_none())
            .map(|(k, v)| (k, v.clone()))
            .collect();
        for (k, v) in visible {
            self.insert(k, v);
        }
    }

    /// Copies the base's keys that are not hidden into this context and drops the base.
    fn flatten(&mut self) {
        self.materialize_prefixed();
        let Some(base) = self.base.take() else { return };
        let visible: Vec<(String, ContextValue)> = base
            .own_iter()
            .filter(|(k, _)| self.map.get(&key_hash(k)).and_then(|s| s.get(k)).is_none())
            .map(|(k, v)| (k.into_owned(), v.clone()))
            .collect();
        self.len -= visible.len();
        for (k, v) in visible {
            self.insert(k, v);
        }
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        use std::collections::hash_map::Entry;
        // A base is shared and cannot lose keys; removing through it copies what is visible.
        self.flatten();
        let lower = key.to_lowercase();
        let Entry::Occupied(mut e) = self.map.entry(key_hash(&lower)) else {
            return None;
        };
        let out = match e.get_mut() {
            Slot::One(k, _) if *k == lower => match e.remove() {
                Slot::One(_, v) => Some(v),
                Slot::Many(_) => None,
            },
            Slot::One(..) => None,
            Slot::Many(es) => {
                let i = es.iter().position(|(k, _)| *k == lower)?;
                let (_, v) = es.swap_remove(i);
                if es.is_empty() {
                    e.remove();
                }
                Some(v)
            }
        };
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    /// Looks a key up, case-insensitively.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.get_lower(&key.to_lowercase())
    }

    /// Looks up a key that is already lowercase (no allocation).
    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        self.get_hashed(key_hash(key), key)
    }

    /// Looks up a compiled key name (no allocation, no hashing).
    pub(crate) fn get_key(&self, key: &KeyName) -> Option<&ContextValue> {
        self.get_hashed(key.hash, &key.text)
    }

    fn get_hashed(&self, hash: u64, lower: &str) -> Option<&ContextValue> {
        self.get_by_name(hash, lower)
            .or_else(|| self.prefixed.as_ref()?.get(lower))
    }

    /// A key set by name, on this context or its base (not the prefixed entries).
    fn get_by_name(&self, hash: u64, lower: &str) -> Option<&ContextValue> {
        self.get_own_by_name(hash, lower)
            .or_else(|| self.base.as_ref()?.get_hashed(hash, lower))
    }

    /// A key set by name on this context itself.
    fn get_own_by_name(&self, hash: u64, lower: &str) -> Option<&ContextValue> {
        if self.map.is_empty() {
            None
        } else {
            self.map.get(&hash).and_then(|s| s.get(lower))
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len + self.prefixed_visible()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prefixed entries no key set by name hides, two names equal ignoring case once.
    fn prefixed_visible(&self) -> usize {
        self.prefixed.as_ref().map_or(0, |p| {
            p.iter()
                .filter(|(k, _)| self.get_by_name(key_hash(k), k).is_none())
                .count()
        })
    }

    /// The keys set by name on this context itself.
    fn own_map_iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.map.values().flat_map(Slot::iter)
    }

    /// The keys set on this context itself, without the base's: by name, then the prefixed
    /// entries that no key set by name (here or on the base) hides.
    fn own_iter(&self) -> impl Iterator<Item = (Cow<'_, str>, &ContextValue)> {
        let by_name = self.own_map_iter().map(|(k, v)| (Cow::Borrowed(k), v));
        let prefixed = self.prefixed.iter().flat_map(|p| {
            p.iter()
                .filter(|(k, _)| self.get_by_name(key_hash(k), k).is_none())
                .map(|(k, v)| (Cow::Owned(k), v))
        });
        by_name.chain(prefixed)
    }

    /// Iterates over (lowercased key, value), the keys set on top first, then the base's.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, &ContextValue)> {
        let own = self.own_iter();
        let base = self.base.iter().flat_map(|b| {
            b.own_iter()
                .filter(|(k, _)| self.get_own_by_name(key_hash(k), k).is_none())
        });
        own.chain(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// What the context should hold, kept the plain way: keys set by name in a map, the
    /// prefixed group as a list searched from its end.
    #[derive(Default)]
    struct Model {
        by_name: BTreeMap<String, ContextValue>,
        group: Option<(String, Vec<(String, ContextValue)>)>,
    }

    impl Model {
        fn get(&self, key: &str) -> Option<&ContextValue> {
            let lower = key.to_lowercase();
            self.by_name.get(&lower).or_else(|| {
                let (prefix, entries) = self.group.as_ref()?;
                let name = lower.strip_prefix(prefix.as_str())?;
                entries
                    .iter()
                    .rev()
                    .find(|(n, _)| n.to_lowercase() == name)
                    .map(|(_, v)| v)
            })
        }
        fn materialize(&mut self) {
            if let Some((prefix, entries)) = self.group.take() {
                let mut visible = BTreeMap::new();
                for (n, v) in entries {
                    let key = format!("{prefix}{}", n.to_lowercase());
                    if !self.by_name.contains_key(&key) {
                        visible.insert(key, v);
                    }
                }
                self.by_name.extend(visible);
            }
        }
        fn all(&self) -> BTreeMap<String, ContextValue> {
            let mut out = BTreeMap::new();
            if let Some((prefix, entries)) = &self.group {
                for (n, v) in entries {
                    out.insert(format!("{prefix}{}", n.to_lowercase()), v.clone());
                }
            }
            out.extend(self.by_name.clone());
            out
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Single(String, String),
        Group(String, Vec<(String, String)>),
        Remove(String),
    }

    /// Names from a few letters in either case, so that keys collide across the two kinds.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[aAbB]{1,2}",
            Just("sub".to_owned()),
            Just("SUB".to_owned()),
            Just("\u{212a}".to_owned()),
            Just("k".to_owned())
        ]
    }
    fn prefix() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("tok".to_owned()),
            Just("TOK".to_owned()),
            Just("aws".to_owned())
        ]
    }
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (prefix(), name(), "[xyz]").prop_map(|(p, n, v)| Op::Single(format!("{p}:{n}"), v)),
            (prefix(), prop::collection::vec((name(), "[xyz]"), 0..6))
                .prop_map(|(p, es)| Op::Group(p, es)),
            (prefix(), name()).prop_map(|(p, n)| Op::Remove(format!("{p}:{n}"))),
        ]
    }

    /// Applies `ops` to both the context and the model, checking what `remove` returns.
    fn apply(c: &mut Context, m: &mut Model, ops: &[Op]) -> Result<(), TestCaseError> {
        for op in ops {
            match op {
                Op::Single(k, v) => {
                    c.insert_single(k, v.clone());
                    m.by_name
                        .insert(k.to_lowercase(), ContextValue::Single(v.clone()));
                }
                Op::Group(p, es) => {
                    let es: Vec<(String, ContextValue)> = es
                        .iter()
                        .map(|(n, v)| (n.clone(), ContextValue::Single(v.clone())))
                        .collect();
                    c.insert_prefixed(p, es.clone());
                    m.materialize();
                    m.group = Some((format!("{}:", p.to_lowercase()), es));
                }
                Op::Remove(k) => {
                    let want = m.get(k).cloned();
                    m.materialize();
                    m.by_name.remove(&k.to_lowercase());
                    prop_assert_eq!(c.remove(k), want);
                }
            }
        }
        Ok(())
    }

    proptest! {
        /// A context given keys by name and by prefixed group, in any order, answers every
        /// lookup, its length and its iteration as the plain model does; so does one over a
        /// base built the same way, whose keys hide the top's prefixed ones as keys set by
        /// name would.
        #[test]
        fn prefixed_keys_behave_like_the_model(base_ops in prop::option::of(prop::collection::vec(op(), 0..6)),
                                               ops in prop::collection::vec(op(), 0..8),
                                               probes in prop::collection::vec((prefix(), name()), 0..12)) {
            let mut m = Model::default();
            let mut c = match &base_ops {
                Some(base_ops) => {
                    let mut base = Context::new();
                    let mut base_model = Model::default();
                    apply(&mut base, &mut base_model, base_ops)?;
                    prop_assert_eq!(base.len(), base_model.all().len());
                    m.by_name = base_model.all();
                    Context::over(Arc::new(base))
                }
                None => Context::new(),
            };
            apply(&mut c, &mut m, &ops)?;
            for (p, n) in &probes {
                let key = format!("{p}:{n}");
                prop_assert_eq!(c.get(&key), m.get(&key), "{}", key);
            }
            let all = m.all();
            prop_assert_eq!(c.len(), all.len());
            let mut seen: Vec<(String, ContextValue)> =
                c.iter().map(|(k, v)| (k.into_owned(), v.clone())).collect();
            seen.sort_by(|a, b| a.0.cmp(&b.0));
            let want: Vec<(String, ContextValue)> = all.into_iter().collect();
            prop_assert_eq!(seen, want);
            // The same keys set one by one compare equal.
            let mut flat = Context::new();
            for (k, v) in c.iter() {
                if let ContextValue::Single(s) = v {
                    flat.insert_single(&k, s.clone());
                }
            }
            prop_assert_eq!(&flat, &c);
        }
    }

    #[test]
    fn keys_set_by_name_hide_prefixed_ones_before_and_after() {
        let mut c = Context::new();
        c.insert_single("aws:SourceIp", "10.0.0.1");
        c.insert_prefixed(
            "aws",
            vec![
                ("SourceIp".into(), ContextValue::Single("6.6.6.6".into())),
                ("sub".into(), ContextValue::Single("a".into())),
                ("Sub".into(), ContextValue::Single("b".into())),
            ],
        );
        c.insert_single("AWS:sub", "named");
        assert_eq!(
            c.get("aws:sourceip"),
            Some(&ContextValue::Single("10.0.0.1".into()))
        );
        assert_eq!(
            c.get("aws:SUB"),
            Some(&ContextValue::Single("named".into()))
        );
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.remove("aws:sub"),
            Some(ContextValue::Single("named".into()))
        );
        assert_eq!(
            c.get("aws:sub"),
            None,
            "the hidden entry does not come back"
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn keys_sharing_a_hash_stay_apart() {
        // Force a shared slot by inserting under one hash directly.
        let mut c = Context::new();
        c.insert_single("a", "1");
        let h = key_hash("a");
        if let Some(slot) = c.map.get_mut(&h) {
            let first = std::mem::replace(slot, Slot::Many(Vec::new()));
            if let (Slot::One(k, v), Slot::Many(es)) = (first, &mut *slot) {
                es.push((k, v));
                es.push(("b-colliding".into(), ContextValue::Single("2".into())));
            }
        }
        c.len = 2;
        assert_eq!(c.get_lower("a"), Some(&ContextValue::Single("1".into())));
        assert_eq!(c.iter().count(), 2);
        assert_eq!(c.remove("a"), Some(ContextValue::Single("1".into())));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get_lower("a"), None);
    }

    #[test]
    fn a_context_over_a_base_sees_it_and_hides_what_it_sets() {
        let mut base = Context::new();
        base.insert_single("aws:PrincipalArn", "arn:aws:iam::1:role/r");
        base.insert_single("aws:PrincipalTag/team", "blue");
        let base = Arc::new(base);
        let mut c = Context::over(Arc::clone(&base));
        assert_eq!(c.len(), 2);
        c.insert_single("aws:SourceIp", "10.0.0.1");
        c.insert_single("AWS:PrincipalTag/Team", "red");
        assert_eq!(c.len(), 3, "the tag set on top hides the base's");
        assert_eq!(
            c.get("aws:principaltag/team"),
            Some(&ContextValue::Single("red".into()))
        );
        assert_eq!(
            c.get_key(&KeyName::new("aws:principalarn")),
            Some(&ContextValue::Single("arn:aws:iam::1:role/r".into()))
        );
        assert_eq!(c.iter().count(), 3);
        let mut flat = Context::new();
        flat.insert_single("aws:principalarn", "arn:aws:iam::1:role/r");
        flat.insert_single("aws:principaltag/team", "red");
        flat.insert_single("aws:sourceip", "10.0.0.1");
        assert_eq!(c, flat);
        assert_eq!(flat, c);
        // The shared base is never changed through a context on top of it.
        assert_eq!(
            c.remove("aws:PrincipalArn"),
            Some(ContextValue::Single("arn:aws:iam::1:role/r".into()))
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("aws:principalarn"), None);
        assert_eq!(base.len(), 2);
        assert!(base.get("aws:principalarn").is_some());
        // A base that has a base of its own is seen whole.
        let mut mid = Context::over(Arc::clone(&base));
        mid.insert_single("aws:userid", "AROA:s");
        let top = Context::over(Arc::new(mid));
        assert_eq!(top.len(), 3);
        assert_eq!(top.iter().count(), 3);
        assert!(top.get("aws:principaltag/team").is_some());
    }

    #[test]
    fn insert_replace_remove() {
        let mut c = Context::new();
        c.insert_single("Aws:UserName", "x");
        c.insert_multi("aws:username", vec!["y".into()]);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c.get("AWS:USERNAME"),
            Some(&ContextValue::Multi(vec!["y".into()]))
        );
        let k = KeyName::new("aws:username");
        assert!(c.get_key(&k).is_some());
        let mut d = Context::new();
        d.insert_multi("aws:username", vec!["y".into()]);
        assert_eq!(c, d);
        assert_eq!(
            c.remove("aws:UserName"),
            Some(ContextValue::Multi(vec!["y".into()]))
        );
        assert_eq!(c.remove("aws:UserName"), None);
        assert!(c.is_empty());
        assert_ne!(c, d);
    }
}
