//! AWS query-protocol XML: the `<Op>Response/<Op>Result` envelope, and `<ErrorResponse>`.
//!
//! Small and explicit on purpose: every element name here is one an SDK parses, and values are
//! always escaped.

use keyless_core::error::{ApiError, Fault};
use quick_xml::escape::escape;

/// The XML namespace of STS responses.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The XML namespace of IAM responses.
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Appends `text` escaped as quick-xml's `escape` does (`<>&'"` and CR). Most values (keys,
/// ARNs, the session token) have none of those, and two `memchr` scans find that faster than
/// the escaper's byte-by-byte loop, so they are copied as they are.
fn push_escaped(out: &mut String, text: &str) {
    let b = text.as_bytes();
    if memchr::memchr3(b'<', b'>', b'&', b).is_none()
        && memchr::memchr3(b'\'', b'"', b'\r', b).is_none()
    {
        out.push_str(text);
    } else {
        out.push_str(&escape(text));
    }
}

/// Builds one XML document.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    /// Starts a `<Op>Response xmlns=…><Op>Result>` document.
    pub fn response(action: &str, ns: &str) -> Self {
        let mut x = Xml {
            out: String::with_capacity(2048),
        };
        for part in [
            "<",
            action,
            "Response xmlns=\"",
            ns,
            "\">\n  <",
            action,
            "Result>\n",
        ] {
            x.out.push_str(part);
        }
        x
    }

    /// Opens an element.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// Closes an element.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// An element with escaped text.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        push_escaped(&mut self.out, text);
        self.close(tag)
    }

    /// An element only when there is a value.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// Closes the result and adds `ResponseMetadata`.
    pub fn finish(mut self, action: &str, request_id: &str) -> String {
        self.out.push_str(&format!(
            "\n  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
            escape(request_id)
        ));
        self.out
    }
}

/// `<ErrorResponse>` as SDKs parse it.
pub fn error(err: &ApiError, ns: &str, request_id: &str) -> String {
    let fault = match err.fault() {
        Fault::Sender => "Sender",
        Fault::Receiver => "Receiver",
    };
    format!(
        "<ErrorResponse xmlns=\"{ns}\">\n  <Error>\n    <Type>{fault}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        escape(err.code),
        text(&err.message),
        escape(request_id)
    )
}

/// Escaped text with the characters XML 1.0 cannot carry at all (controls other than TAB, LF,
/// CR, and the noncharacters U+FFFE and U+FFFF) replaced by U+FFFD, so an echoed hostile value
/// cannot break the document. (C1 controls are legal XML but are replaced too.)
pub fn text(s: &str) -> String {
    let unsafe_char = |c: char| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
    };
    let clean: std::borrow::Cow<'_, str> = if s.chars().any(unsafe_char) {
        s.chars()
            .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
            .collect::<String>()
            .into()
    } else {
        s.into()
    };
    escape(clean.as_ref()).into_owned()
}

/// A fresh request id (UUID v4 form, as AWS's).
pub fn request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::random();
    // RFC 4122 version 4 (random) and variant 10xx.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    // Written digit by digit into one allocation: this runs twice per audited STS call
    // (request id and event id), and `hex::encode` plus `format!` took two allocations and
    // the formatting machinery.
    let mut id = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_escapes_exactly_what_quick_xml_escapes() {
        let mut texts = vec![
            String::new(),
            "plain ASCII 0123 /:+=-_.".into(),
            "é ünïcödé".into(),
        ];
        for special in ['<', '>', '&', '\'', '"', '\r', '\n', '\t'] {
            texts.push(format!("ab{special}cd"));
            texts.push(special.to_string());
        }
        for text in texts {
            let mut out = String::new();
            push_escaped(&mut out, &text);
            assert_eq!(out, escape(text.as_str()), "{text:?}");
        }
    }

    #[test]
    fn values_are_escaped() {
        let mut x = Xml::response("GetCallerIdentity", STS_NS);
        x.leaf("Arn", "a<b>&\"c'");
        let doc = x.finish("GetCallerIdentity", "rid");
        assert!(
            doc.contains("<Arn>a&lt;b&gt;&amp;&quot;c&apos;</Arn>"),
            "{doc}"
        );
        assert!(doc.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(doc.contains("<RequestId>rid</RequestId>"));
    }

    #[test]
    fn error_shape() {
        let doc = error(
            &ApiError::new("InvalidIdentityToken", 400, "bad <token>"),
            STS_NS,
            "r1",
        );
        assert!(doc.contains("<Type>Sender</Type>"));
        assert!(doc.contains("<Code>InvalidIdentityToken</Code>"));
        assert!(doc.contains("<Message>bad &lt;token&gt;</Message>"));
        let doc = error(&ApiError::internal(), STS_NS, "r1");
        assert!(doc.contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn control_characters_cannot_break_the_document() {
        let doc = error(
            &ApiError::new("ValidationError", 400, "bad\u{1}value"),
            STS_NS,
            "r1",
        );
        assert!(doc.contains("<Message>bad\u{fffd}value</Message>"), "{doc}");
    }

    #[test]
    fn noncharacters_xml_cannot_carry_are_replaced_too() {
        // XML 1.0's Char production leaves out U+FFFE and U+FFFF as well as the controls. An
        // echoed role name holding one made the IAM error unparseable by every SDK, and a
        // managed policy description holding one would break ListPolicies for the account.
        let doc = error(
            &ApiError::new("ValidationError", 400, "bad\u{fffe}and\u{ffff}value"),
            IAM_NS,
            "r1",
        );
        assert!(
            doc.contains("<Message>bad\u{fffd}and\u{fffd}value</Message>"),
            "{doc}"
        );
        assert_eq!(text("ok \u{fffd} \u{10000}"), "ok \u{fffd} \u{10000}");
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let mut variants = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let id = request_id();
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(
                id.bytes()
                    .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
                "{id}"
            );
            assert_eq!(id.as_bytes()[14], b'4', "version 4: {id}");
            let variant = id.as_bytes()[19];
            assert!(b"89ab".contains(&variant), "variant 10xx: {id}");
            variants.insert(variant);
        }
        assert_eq!(variants.len(), 4, "all four variant digits occur");
        assert_ne!(request_id(), request_id());
    }
}
