//! The result of an IAM call as a tree of AWS member names, which the edge writes as XML
//! (lists as `<Name><member>…</member></Name>`).

use std::collections::BTreeMap;

use keyless_types::OffsetDateTime;

use crate::sts::iso8601;

/// One element of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Text.
    Leaf(&'static str, String),
    /// A policy document: written URL-encoded, as AWS returns documents.
    Document(&'static str, String),
    /// Nested members (a structure, or a list of `member` elements).
    Group(&'static str, Vec<Node>),
}

impl Node {
    /// A text element.
    pub fn leaf(name: &'static str, text: impl Into<String>) -> Node {
        Node::Leaf(name, text.into())
    }

    /// An ISO 8601 date element.
    pub fn date(name: &'static str, t: OffsetDateTime) -> Node {
        Node::Leaf(name, iso8601(t))
    }

    /// `true` / `false`.
    pub fn flag(name: &'static str, v: bool) -> Node {
        Node::Leaf(name, if v { "true" } else { "false" }.to_owned())
    }

    /// A list: each item becomes a `member` element.
    pub fn list(name: &'static str, items: Vec<Vec<Node>>) -> Node {
        Node::Group(
            name,
            items
                .into_iter()
                .map(|i| Node::Group("member", i))
                .collect(),
        )
    }

    /// A list of strings.
    pub fn strings<'a>(name: &'static str, items: impl IntoIterator<Item = &'a String>) -> Node {
        Node::Group(
            name,
            items
                .into_iter()
                .map(|s| Node::Leaf("member", s.clone()))
                .collect(),
        )
    }

    /// `Tags` as `member{Key,Value}`.
    pub fn tags(tags: &BTreeMap<String, String>) -> Node {
        Node::list(
            "Tags",
            tags.iter()
                .map(|(k, v)| vec![Node::leaf("Key", k.clone()), Node::leaf("Value", v.clone())])
                .collect(),
        )
    }
}
