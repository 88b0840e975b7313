//! AWS access key id facts: prefixes, the offline account-id decoding and AWS's documented example keys.

/// Kind of credential an access key id prefix denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `AKIA…`: a long-term IAM user access key.
    LongTerm,
    /// `ASIA…`: a temporary (STS) access key, useless without its session token.
    Temporary,
}

/// Access key ids and secrets that AWS publishes in its documentation as examples.
pub const EXAMPLE_KEYS: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "AKIAI44QH8DHBEXAMPLE",
    "ASIAI44QH8DHBEXAMPLE",
    "AKIAIOSFODNN7EXAMPLEKEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
];

/// True when `s` is one of AWS's documented example keys or follows their `…EXAMPLE`/`…EXAMPLEKEY`
/// naming (AWS documentation marks every example credential that way).
#[must_use]
pub fn is_example(s: &str) -> bool {
    EXAMPLE_KEYS.contains(&s) || s.ends_with("EXAMPLE") || s.ends_with("EXAMPLEKEY")
}

/// The kind of key a 20-character access key id denotes, from its 4-character prefix.
#[must_use]
pub fn key_kind(key_id: &str) -> Option<KeyKind> {
    match key_id.get(..4) {
        Some("AKIA") => Some(KeyKind::LongTerm),
        Some("ASIA") => Some(KeyKind::Temporary),
        _ => None,
    }
}

fn base32_value(c: u8) -> Option<u64> {
    match c {
        b'A'..=b'Z' => Some(u64::from(c - b'A')),
        b'2'..=b'7' => Some(u64::from(c - b'2') + 26),
        _ => None,
    }
}

/// True when every byte is in the RFC 4648 base32 alphabet AWS key ids use (`A-Z`, `2-7`).
#[must_use]
pub fn is_base32(s: &[u8]) -> bool {
    s.iter().all(|&c| base32_value(c).is_some())
}

/// Decodes the 12-digit account id that AWS encodes in an access key id.
///
/// The scheme is public reverse engineering, not AWS documentation: base32-decode the 16
/// characters after the 4-character prefix, read the first 6 bytes as a big-endian integer,
/// mask with `0x7fff_ffff_ff80` and shift right by 7. Key ids issued before about 2019 (fifth
/// character `A`-`P`, so the top bit of the first decoded byte is clear) do not encode the account;
/// for those, and for anything that is not a 20-character base32 key id, this returns `None`.
///
/// ```
/// assert_eq!(keyless_scan::aws::account_id_from_key_id("ASIAY34FZKBOKMUTVV7A").as_deref(), Some("609629065308"));
/// assert_eq!(keyless_scan::aws::account_id_from_key_id("AKIAIOSFODNN7EXAMPLE"), None);
/// ```
#[must_use]
pub fn account_id_from_key_id(key_id: &str) -> Option<String> {
    let bytes = key_id.as_bytes();
    if bytes.len() != 20 || !key_id.starts_with('A') {
        return None;
    }
    let body = bytes.get(4..20)?;
    // 6 bytes = 48 bits = the first 9.6 base32 characters; take 10 characters (50 bits) and drop 2.
    let mut acc: u64 = 0;
    for &c in body.get(..10)? {
        acc = (acc << 5) | base32_value(c)?;
    }
    if !is_base32(body) {
        return None;
    }
    let first48 = acc >> 2;
    if first48 & 0x8000_0000_0000 == 0 {
        return None;
    }
    let account = (first48 & 0x7fff_ffff_ff80) >> 7;
    if account > 999_999_999_999 {
        return None;
    }
    Some(format!("{account:012}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_published_examples() {
        // From the public write-up of the scheme (ASIA key observed for account 609629065308).
        assert_eq!(
            account_id_from_key_id("ASIAY34FZKBOKMUTVV7A").as_deref(),
            Some("609629065308")
        );
        // Legacy-format and example keys carry no account.
        assert_eq!(account_id_from_key_id("AKIAIOSFODNN7EXAMPLE"), None);
        assert_eq!(account_id_from_key_id("AKIAJ"), None);
        assert_eq!(account_id_from_key_id("AKIAY34FZKBOKMUTVV7!"), None);
        assert_eq!(account_id_from_key_id("AKIAY34FZKBOKMUTVV8A"), None);
    }

    /// Independent encoder (the inverse of the scheme, as moto generates key ids from accounts).
    fn encode(account: u64, tail: &str) -> String {
        const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let v: u64 = ((account << 7) | 0x8000_0000_0000) << 2; // 50 bits
        let mut s = String::from("AKIA");
        for i in (0..10).rev() {
            s.push(ALPHA[((v >> (i * 5)) & 31) as usize] as char);
        }
        s.push_str(tail);
        s
    }

    #[test]
    fn roundtrips_generated_accounts() {
        for acct in [0u64, 1, 123_456_789_012, 999_999_999_999, 609_629_065_308] {
            let k = encode(acct, "QRSTUV");
            assert_eq!(k.len(), 20);
            assert_eq!(
                account_id_from_key_id(&k),
                Some(format!("{acct:012}")),
                "{k}"
            );
        }
    }

    #[test]
    fn examples_recognised() {
        assert!(is_example("AKIAIOSFODNN7EXAMPLE"));
        assert!(is_example("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(!is_example("AKIAY34FZKBOKMUTVV7A"));
        assert_eq!(key_kind("ASIAY34FZKBOKMUTVV7A"), Some(KeyKind::Temporary));
        assert_eq!(key_kind("AROAY34FZKBOKMUTVV7A"), None);
    }
}
