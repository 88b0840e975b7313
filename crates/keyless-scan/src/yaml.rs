//! A YAML tree with source positions, built on yaml-rust2's event parser. Used by `lint` to
//! report exact lines and by `migrate` to make targeted text edits.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Largest YAML document accepted.
pub const MAX_YAML_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// A node with its 1-based line and 0-based column.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar.
    Scalar {
        /// Text.
        value: String,
        /// Its tag as written (`!Ref`), if any: CloudFormation's short-form intrinsics.
        tag: Option<String>,
        /// Line (1-based).
        line: usize,
        /// Column (0-based).
        col: usize,
    },
    /// A sequence.
    Seq {
        /// Items.
        items: Vec<Node>,
        /// Its tag as written (`!GetAtt`), if any.
        tag: Option<String>,
        /// Line.
        line: usize,
        /// Column.
        col: usize,
    },
    /// A mapping, in source order.
    Map {
        /// Key/value pairs.
        entries: Vec<(Node, Node)>,
        /// Line.
        line: usize,
        /// Column.
        col: usize,
    },
    /// An alias (`*name`), not resolved.
    Alias {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
    },
}

/// YAML errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum YamlError {
    /// Input larger than [`MAX_YAML_BYTES`].
    #[error("YAML document larger than {MAX_YAML_BYTES} bytes")]
    TooLarge,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("YAML nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Syntax error.
    #[error("YAML syntax error: {0}")]
    Syntax(String),
}

impl Node {
    /// 1-based line.
    #[must_use]
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. }
            | Node::Seq { line, .. }
            | Node::Map { line, .. }
            | Node::Alias { line, .. } => *line,
        }
    }
    /// 0-based column.
    #[must_use]
    pub fn col(&self) -> usize {
        match self {
            Node::Scalar { col, .. }
            | Node::Seq { col, .. }
            | Node::Map { col, .. }
            | Node::Alias { col, .. } => *col,
        }
    }
    /// The scalar text, if a scalar.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
    /// Entries if a mapping.
    #[must_use]
    pub fn entries(&self) -> &[(Node, Node)] {
        match self {
            Node::Map { entries, .. } => entries,
            _ => &[],
        }
    }
    /// Items if a sequence.
    #[must_use]
    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq { items, .. } => items,
            _ => &[],
        }
    }
    /// Value of `key` in a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }
    /// Key node and value of `key` in a mapping.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries()
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }
    /// True for a null scalar (`~`, `null`, empty).
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.as_str(), Some("" | "~" | "null" | "Null" | "NULL"))
    }
}

fn tag_text(tag: Option<yaml_rust2::parser::Tag>) -> Option<String> {
    tag.map(|t| format!("{}{}", t.handle, t.suffix))
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Node>)>,
    docs: Vec<Node>,
    too_deep: bool,
    skip_depth: usize,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((Node::Seq { items, .. }, _)) => items.push(node),
            Some((Node::Map { entries, .. }, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(k) => entries.push((k, node)),
            },
            Some(_) => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let (line, col) = (mark.line(), mark.col());
        if self.skip_depth > 0 {
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skip_depth += 1,
                Event::SequenceEnd | Event::MappingEnd => self.skip_depth -= 1,
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(value, _, _, tag) => self.push_value(Node::Scalar {
                value,
                tag: tag_text(tag),
                line,
                col,
            }),
            Event::Alias(_) => self.push_value(Node::Alias { line, col }),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.too_deep = true;
                    self.skip_depth = 1;
                    return;
                }
                let node = if let Event::SequenceStart(_, tag) = ev {
                    Node::Seq {
                        items: Vec::new(),
                        tag: tag_text(tag),
                        line,
                        col,
                    }
                } else {
                    Node::Map {
                        entries: Vec::new(),
                        line,
                        col,
                    }
                };
                self.stack.push((node, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            _ => {}
        }
    }
}

/// Parses every document of a YAML stream.
///
/// # Errors
/// [`YamlError`] for oversized, too deep or malformed input.
pub fn parse(src: &str) -> Result<Vec<Node>, YamlError> {
    if src.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge);
    }
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(src);
    p.load(&mut b, true)
        .map_err(|e| YamlError::Syntax(e.to_string()))?;
    if b.too_deep {
        return Err(YamlError::TooDeep);
    }
    Ok(b.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_recorded() {
        let docs = parse("a: 1\nb:\n  c: [x, y]\n").unwrap();
        let root = &docs[0];
        let (k, v) = root.entry("b").unwrap();
        assert_eq!((k.line(), k.col()), (2, 0));
        let (ck, _) = v.entry("c").unwrap();
        assert_eq!((ck.line(), ck.col()), (3, 2));
        assert_eq!(v.get("c").unwrap().items().len(), 2);
    }

    #[test]
    fn hostile_inputs_rejected() {
        assert_eq!(
            parse(&format!("{}{}", "[".repeat(200), "]".repeat(200))).unwrap_err(),
            YamlError::TooDeep
        );
        match parse(&format!("{}{}", "[".repeat(1000), "]".repeat(1000))) {
            Err(YamlError::Syntax(m)) => assert!(m.starts_with("recursion limit exceeded"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("a: [1, 2").unwrap_err(),
            YamlError::Syntax(_)
        ));
        assert_eq!(
            parse(&"a".repeat(MAX_YAML_BYTES + 1)).unwrap_err(),
            YamlError::TooLarge
        );
    }
}
