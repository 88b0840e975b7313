//! Request context: condition keys with single or multiple values.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: context keys are short and few (bounded by the request size), so a fast
/// non-keyed hash is enough and keeps lookups cheap on the evaluation hot path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
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

/// The request context. Key names are case-insensitive; values keep their case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    map: HashMap<String, ContextValue, BuildHasherDefault<Fnv>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key (replacing any value of the same key in any case).
    pub fn insert_single(&mut self, key: &str, v: impl Into<String>) {
        self.map
            .insert(key.to_lowercase(), ContextValue::Single(v.into()));
    }

    /// Sets a multivalued key (replacing any value of the same key in any case).
    pub fn insert_multi(&mut self, key: &str, vs: Vec<String>) {
        self.map.insert(key.to_lowercase(), ContextValue::Multi(vs));
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        self.map.remove(&key.to_lowercase())
    }

    /// Looks a key up, case-insensitively.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.map.get(&key.to_lowercase())
    }

    /// Looks up a key that is already lowercase (no allocation).
    pub(crate) fn get_lower(&self, key: &str) -> Option<&ContextValue> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterates over (lowercased key, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }
}
