//! The canonical line form, the hash chain and signed digests.
//!
//! Every record is one line of compact JSON:
//!
//! ```text
//! {"seq":7,"prevHash":"<64 hex>","recordType":"event",<event fields>,"hash":"<64 hex>"}\n
//! {"seq":8,"prevHash":"<64 hex>","recordType":"digest","digestTime":"…","firstSeq":1,
//!  "lastSeq":7,"keyVersion":1,"publicKey":"<base64>","publicKeyFingerprint":"SHA256:<hex>",
//!  "signature":"<base64>","hash":"<64 hex>"}\n
//! {"seq":9,"prevHash":"<64 hex>","recordType":"retention","retentionTime":"…",
//!  "retainedFromSeq":5,"retainedFromPrevHash":"<64 hex>","removedFiles":["audit-….jsonl"],
//!  "hash":"<64 hex>"}\n
//! ```
//!
//! A `retention` record says that the files named were removed on purpose (`[audit]
//! retention_days`) and that the log now starts at `retainedFromSeq`, whose record's `prevHash`
//! is `retainedFromPrevHash`. The writer signs it with a digest before it removes anything, so
//! only the signing key can account for a log that no longer starts at `seq` 1.
//!
//! The canonical bytes of a record are the bytes of its line before `,"hash":"`, exactly as
//! written (the writer emits compact JSON in a fixed field order, so there is one form).
//! `hash = SHA-256("keyless-audit-v1\n" || canonical bytes)`; `prevHash` is the previous record's
//! hash (64 zeros for the first record of the log) and `seq` counts from 1 without gaps across
//! file rotations. A digest signs, with Ed25519, `"keyless-audit-digest-v1\n" ||` its own bytes
//! before `,"signature":"`; those bytes include `prevHash`, the hash of the last record it
//! covers, so one signature vouches for the whole chain up to it. Reformatting a line (even
//! whitespace) breaks its hash on purpose: the bytes are the record.

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use time::OffsetDateTime;

use crate::event::event_time;

/// `prevHash` of the first record.
pub const GENESIS: [u8; 32] = [0u8; 32];
/// Domain separation of record hashes.
pub const HASH_DOMAIN: &[u8] = b"keyless-audit-v1\n";
/// Domain separation of digest signatures.
pub const SIGNATURE_DOMAIN: &[u8] = b"keyless-audit-digest-v1\n";
/// Longest line (without its `\n`) written or accepted when reading: a record is a few KiB,
/// the writer refuses to seal a longer one, and readers hold no more of a line than this.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

const HASH_KEY: &[u8] = b",\"hash\":\"";
const SIGNATURE_KEY: &[u8] = b",\"signature\":\"";

/// Where the chain stands: the next sequence number and the last record's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The `seq` the next record gets.
    pub next_seq: u64,
    /// The `hash` of the last record ([`GENESIS`] for an empty log).
    pub prev_hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty log.
    pub fn genesis() -> ChainHead {
        ChainHead {
            next_seq: 1,
            prev_hash: GENESIS,
        }
    }
}

/// Why a body or line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The event body is not a JSON object text.
    #[error("the event body is not a JSON object")]
    NotAnObject,
    /// No `,"hash":"<64 hex>"}` at the end of the line.
    #[error("the line does not end with a \"hash\" field")]
    NoHash,
    /// The bytes do not hash to the recorded hash.
    #[error("the record does not match its hash (it was altered)")]
    HashMismatch,
    /// Not valid JSON, or a chain field is missing or malformed.
    #[error("the record is not valid: {0}")]
    Malformed(String),
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("the line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
}

fn hash_of(canonical: &[u8]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(HASH_DOMAIN);
    ctx.update(canonical);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail; no temporary String.
    let _ = write!(out, "{n}");
}

fn open_record(out: &mut Vec<u8>, head: &ChainHead, kind: &str) {
    out.extend_from_slice(b"{\"seq\":");
    push_u64(out, head.next_seq);
    out.extend_from_slice(b",\"prevHash\":\"");
    push_hex(out, &head.prev_hash);
    out.extend_from_slice(b"\",\"recordType\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
}

fn close_record(out: &mut Vec<u8>, start: usize, head: &mut ChainHead) -> u64 {
    let hash = hash_of(&out[start..]);
    out.extend_from_slice(HASH_KEY);
    push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    let seq = head.next_seq;
    head.next_seq += 1;
    head.prev_hash = hash;
    seq
}

/// Appends the line of an event to `out` and advances `head`; returns the event's `seq`.
///
/// `body` is the event's compact JSON object (`{…}`, from [`crate::AuditEvent::to_body`]).
pub fn seal_event(head: &mut ChainHead, body: &[u8], out: &mut Vec<u8>) -> Result<u64, LineError> {
    seal_with(head, out, "event", |out| {
        out.extend_from_slice(body);
        Ok(())
    })
}

/// Serialises `event` (compact JSON, which must be an object) straight into `out` as the body
/// of the next line, and seals it: no intermediate body buffer. On error `out` and `head` are
/// left as they were.
pub fn seal_serialize<T: serde::Serialize + ?Sized>(
    head: &mut ChainHead,
    event: &T,
    out: &mut Vec<u8>,
) -> Result<u64, LineError> {
    seal_with(head, out, "event", |out| {
        serde_json::to_writer(&mut *out, event).map_err(|e| LineError::Malformed(e.to_string()))
    })
}

/// What a `retention` record says: the log is kept from `from_seq` on, and the record there has
/// `prevHash` `from_prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionFacts {
    /// The first `seq` kept.
    pub from_seq: u64,
    /// The `prevHash` of that record: the hash of the last record removed.
    pub from_prev_hash: [u8; 32],
    /// The files removed.
    pub removed_files: Vec<String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RetentionBody<'a> {
    retention_time: String,
    retained_from_seq: u64,
    retained_from_prev_hash: String,
    removed_files: &'a [String],
}

/// Appends a `retention` record for `facts` and advances `head`; returns its `seq`.
pub fn seal_retention(
    head: &mut ChainHead,
    now: OffsetDateTime,
    facts: &RetentionFacts,
    out: &mut Vec<u8>,
) -> Result<u64, LineError> {
    let body = RetentionBody {
        retention_time: event_time(now),
        retained_from_seq: facts.from_seq,
        retained_from_prev_hash: hex::encode(facts.from_prev_hash),
        removed_files: &facts.removed_files,
    };
    seal_with(head, out, "retention", |out| {
        serde_json::to_writer(&mut *out, &body).map_err(|e| LineError::Malformed(e.to_string()))
    })
}

/// Writes the record prefix, lets `body` append the event's JSON object after it, turns that
/// object into the line's remaining fields (its `{` becomes `,`, its `}` goes) and closes the
/// line with the hash. The line is byte-identical to sealing the same object text.
fn seal_with(
    head: &mut ChainHead,
    out: &mut Vec<u8>,
    kind: &str,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), LineError>,
) -> Result<u64, LineError> {
    let start = out.len();
    open_record(out, head, kind);
    let at = out.len();
    let result = body(out).and_then(|()| {
        let written = &out[at..];
        let object = written.len() >= 2 && written[0] == b'{' && written[written.len() - 1] == b'}';
        if !object || memchr::memchr(b'\n', written).is_some() {
            return Err(LineError::NotAnObject);
        }
        Ok(())
    });
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    out.pop();
    if out.len() == at + 1 {
        // `{}`: no fields to add.
        out.pop();
    } else {
        out[at] = b',';
    }
    // Readers refuse longer lines (and hold no more of one), so none is written.
    if out.len() - start + HASH_KEY.len() + 64 + 2 > MAX_LINE_BYTES {
        out.truncate(start);
        return Err(LineError::TooLong);
    }
    Ok(close_record(out, start, head))
}

/// The Ed25519 key that signs digests, with the key-ring version it was derived from.
pub struct DigestSigner {
    key_version: u32,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for DigestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSigner")
            .field("key_version", &self.key_version)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// `SHA256:<hex>` of a raw Ed25519 public key.
pub fn fingerprint(public_key: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&SHA256, public_key);
    format!("SHA256:{}", hex::encode(d.as_ref()))
}

impl DigestSigner {
    /// A signer from a key pair (`keyless_token::KeyRing::audit_signing_key`).
    pub fn new(key_version: u32, pair: Ed25519KeyPair) -> DigestSigner {
        DigestSigner { key_version, pair }
    }

    /// The key-ring version.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The raw public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// `SHA256:<hex>` of the public key.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.public_key())
    }
}

/// Appends a digest covering records `first_seq..head.next_seq` and advances `head`; returns
/// the digest's `seq`.
pub fn seal_digest(
    head: &mut ChainHead,
    signer: &DigestSigner,
    now: OffsetDateTime,
    first_seq: u64,
    out: &mut Vec<u8>,
) -> u64 {
    let start = out.len();
    open_record(out, head, "digest");
    out.extend_from_slice(b",\"digestTime\":\"");
    out.extend_from_slice(event_time(now).as_bytes());
    out.extend_from_slice(b"\",\"firstSeq\":");
    push_u64(out, first_seq);
    out.extend_from_slice(b",\"lastSeq\":");
    push_u64(out, head.next_seq.saturating_sub(1));
    out.extend_from_slice(b",\"keyVersion\":");
    push_u64(out, u64::from(signer.key_version));
    out.extend_from_slice(b",\"publicKey\":\"");
    out.extend_from_slice(STANDARD.encode(signer.public_key()).as_bytes());
    out.extend_from_slice(b"\",\"publicKeyFingerprint\":\"");
    out.extend_from_slice(signer.fingerprint().as_bytes());
    out.push(b'"');
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + out.len() - start);
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(&out[start..]);
    let signature = signer.pair.sign(&message);
    out.extend_from_slice(SIGNATURE_KEY);
    out.extend_from_slice(STANDARD.encode(signature.as_ref()).as_bytes());
    out.push(b'"');
    close_record(out, start, head)
}

/// What a digest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestFacts {
    /// First record covered.
    pub first_seq: u64,
    /// Last record covered.
    pub last_seq: u64,
    /// Key-ring version of the signing key.
    pub key_version: u32,
    /// The raw public key the digest names.
    pub public_key: Vec<u8>,
    /// Whether the signature verifies under that public key.
    pub signature_valid: bool,
    /// `digestTime`.
    pub digest_time: String,
}

/// A line that matched its hash.
#[derive(Debug, Clone)]
pub struct CheckedLine {
    /// `seq`.
    pub seq: u64,
    /// `prevHash`.
    pub prev_hash: [u8; 32],
    /// `hash`.
    pub hash: [u8; 32],
    /// `eventID` of an event.
    pub event_id: Option<String>,
    /// The digest's facts, for digests.
    pub digest: Option<DigestFacts>,
    /// What a `retention` record says.
    pub retention: Option<RetentionFacts>,
    /// The whole record.
    pub value: Value,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A record's top-level object, refusing a field that appears twice. `serde_json` keeps the
/// last of repeated keys, so without this a field repeated after a digest's signature (outside
/// the signed bytes) would replace the `seq` or `prevHash` the signature covers.
struct Record(Value);

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Record, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "the field {key:?} appears twice"
                        )));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(Record(Value::Object(out)))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Reads only the `seq` of a line, without checking anything (for locating records).
pub fn peek_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Checks one line (without its `\n`): the hash over the canonical bytes, the chain fields and,
/// for a digest, the signature under the public key it names (pinning that key is the
/// verifier's job).
pub fn check_line(line: &[u8]) -> Result<CheckedLine, LineError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong);
    }
    let at = memchr::memmem::rfind(line, HASH_KEY).ok_or(LineError::NoHash)?;
    let (canonical, suffix) = line.split_at(at);
    let hex_part = suffix
        .strip_prefix(HASH_KEY)
        .and_then(|s| s.strip_suffix(b"\"}"))
        .ok_or(LineError::NoHash)?;
    // Lower-case hex only: the hash field is outside the hashed bytes, so exactly one spelling
    // of it may be accepted.
    let claimed = std::str::from_utf8(hex_part)
        .ok()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(hex32)
        .ok_or(LineError::NoHash)?;
    let hash = hash_of(canonical);
    if hash != claimed {
        return Err(LineError::HashMismatch);
    }
    let value = serde_json::from_slice::<Record>(line)
        .map_err(|e| LineError::Malformed(e.to_string()))?
        .0;
    let bad = |m: &str| LineError::Malformed(m.to_owned());
    let num = |k: &str| value.get(k).and_then(Value::as_u64);
    let hash_at = |k: &str| value.get(k).and_then(Value::as_str).and_then(hex32);
    let seq = num("seq").ok_or_else(|| bad("no seq"))?;
    let prev_hash = hash_at("prevHash").ok_or_else(|| bad("no prevHash"))?;
    let kind = value
        .get("recordType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no recordType"))?;
    let mut checked = CheckedLine {
        seq,
        prev_hash,
        hash,
        event_id: None,
        digest: None,
        retention: None,
        value: Value::Null,
    };
    match kind {
        "event" => {
            checked.event_id = value
                .get("eventID")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        "digest" => {
            let sig_at = memchr::memmem::rfind(canonical, SIGNATURE_KEY)
                .ok_or_else(|| bad("digest without signature"))?;
            let signed = &canonical[..sig_at];
            // The facts read below must be the ones the signature covers: nothing may follow
            // the signature (the hash is outside the canonical bytes).
            let last_field = canonical[sig_at + SIGNATURE_KEY.len()..]
                .strip_suffix(b"\"")
                .is_some_and(|b64| !b64.contains(&b'"'));
            if !last_field {
                return Err(bad("a digest's signature must be its last field"));
            }
            let public_key = value
                .get("publicKey")
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| bad("digest without publicKey"))?;
            let signature = value
                .get("signature")
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| bad("digest signature is not base64"))?;
            let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + signed.len());
            message.extend_from_slice(SIGNATURE_DOMAIN);
            message.extend_from_slice(signed);
            let signature_valid = UnparsedPublicKey::new(&ED25519, &public_key)
                .verify(&message, &signature)
                .is_ok();
            checked.digest = Some(DigestFacts {
                first_seq: num("firstSeq").ok_or_else(|| bad("digest without firstSeq"))?,
                last_seq: num("lastSeq").ok_or_else(|| bad("digest without lastSeq"))?,
                key_version: num("keyVersion")
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad("digest without keyVersion"))?,
                public_key,
                signature_valid,
                digest_time: value
                    .get("digestTime")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        "retention" => {
            let from_seq =
                num("retainedFromSeq").ok_or_else(|| bad("retention without retainedFromSeq"))?;
            let from_prev_hash = hash_at("retainedFromPrevHash")
                .ok_or_else(|| bad("retention without retainedFromPrevHash"))?;
            let removed_files = value
                .get("removedFiles")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            checked.retention = Some(RetentionFacts {
                from_seq,
                from_prev_hash,
                removed_files,
            });
        }
        other => return Err(bad(&format!("unknown recordType {other:?}"))),
    }
    checked.value = value;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn signer(seed: u8) -> DigestSigner {
        DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap())
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn no_line_is_sealed_longer_than_readers_accept() {
        let mut head = ChainHead::genesis();
        let mut out = b"kept".to_vec();
        // The longest body that fits: the line is exactly MAX_LINE_BYTES long.
        let fixed = {
            let mut probe = Vec::new();
            seal_event(&mut ChainHead::genesis(), b"{\"x\":\"\"}", &mut probe).unwrap();
            probe.len() - 1
        };
        let fill = "a".repeat(MAX_LINE_BYTES - fixed);
        let body = format!("{{\"x\":\"{fill}\"}}");
        seal_event(&mut head, body.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len() - 4, MAX_LINE_BYTES + 1);
        assert!(check_line(&out[4..out.len() - 1]).is_ok());
        // One byte more is refused, leaving the buffer and the head as they were.
        let before = (out.clone(), head);
        let body = format!("{{\"x\":\"{fill}a\"}}");
        assert_eq!(
            seal_event(&mut head, body.as_bytes(), &mut out),
            Err(LineError::TooLong)
        );
        assert_eq!((out, head), before);
    }

    #[test]
    fn sealed_lines_chain_and_check() {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        assert_eq!(
            seal_event(&mut head, br#"{"eventID":"a","x":1}"#, &mut out).unwrap(),
            1
        );
        assert_eq!(seal_event(&mut head, b"{}", &mut out).unwrap(), 2);
        let d = seal_digest(&mut head, &signer(3), t0(), 1, &mut out);
        assert_eq!(d, 3);
        let text = String::from_utf8(out.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(&format!(
            "{{\"seq\":1,\"prevHash\":\"{}\",\"recordType\":\"event\",\"eventID\":\"a\"",
            "0".repeat(64)
        )));
        let a = check_line(lines[0].as_bytes()).unwrap();
        let b = check_line(lines[1].as_bytes()).unwrap();
        let c = check_line(lines[2].as_bytes()).unwrap();
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(c.prev_hash, b.hash);
        assert_eq!(head.prev_hash, c.hash);
        assert_eq!(a.event_id.as_deref(), Some("a"));
        let facts = c.digest.unwrap();
        assert!(facts.signature_valid);
        assert_eq!((facts.first_seq, facts.last_seq), (1, 2));
        assert_eq!(facts.public_key, signer(3).public_key());
        assert_eq!(peek_seq(lines[2].as_bytes()), Some(3));
    }

    #[test]
    fn canonical_form_is_pinned() {
        // The hash of a known record is fixed: changing the canonical form breaks old logs.
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(&mut head, br#"{"eventID":"e1"}"#, &mut out).unwrap();
        let expected_prefix = format!(
            "{{\"seq\":1,\"prevHash\":\"{}\",\"recordType\":\"event\",\"eventID\":\"e1\"",
            "0".repeat(64)
        );
        let mut ctx = Context::new(&SHA256);
        ctx.update(b"keyless-audit-v1\n");
        ctx.update(expected_prefix.as_bytes());
        let want = hex::encode(ctx.finish().as_ref());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{expected_prefix},\"hash\":\"{want}\"}}\n")
        );
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(
            &mut head,
            br#"{"eventID":"a","eventName":"AssumeRole"}"#,
            &mut out,
        )
        .unwrap();
        let line = &out[..out.len() - 1];
        for i in 0..line.len() {
            let mut bad = line.to_vec();
            bad[i] ^= 0x01;
            assert!(check_line(&bad).is_err(), "byte {i} flipped went unnoticed");
        }
    }

    #[test]
    fn a_forged_digest_signature_fails() {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(&mut head, b"{}", &mut out).unwrap();
        let start = out.len();
        seal_digest(&mut head, &signer(1), t0(), 1, &mut out);
        let line = String::from_utf8(out[start..out.len() - 1].to_vec()).unwrap();
        // Swap in another key's public key and recompute the hash: the hash matches, the
        // signature does not.
        let other = STANDARD.encode(signer(2).public_key());
        let mine = STANDARD.encode(signer(1).public_key());
        let forged = line.replace(&mine, &other);
        let cut = forged.rfind(",\"hash\":\"").unwrap();
        let prefix = &forged[..cut];
        let fixed = format!(
            "{prefix},\"hash\":\"{}\"}}",
            hex::encode(hash_of(prefix.as_bytes()))
        );
        let checked = check_line(fixed.as_bytes()).unwrap();
        assert!(!checked.digest.unwrap().signature_valid);
    }

    #[test]
    fn bodies_must_be_objects_without_newlines() {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        assert_eq!(
            seal_event(&mut head, b"[1]", &mut out),
            Err(LineError::NotAnObject)
        );
        assert_eq!(
            seal_event(&mut head, b"{\"a\":\n1}", &mut out),
            Err(LineError::NotAnObject)
        );
        assert_eq!(head, ChainHead::genesis());
        assert!(out.is_empty());
    }
}
