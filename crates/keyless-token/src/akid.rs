//! `ASIA` access key ids that encode the account id.
//!
//! Layout: `ASIA` + 16 characters of the RFC 4648 base32 alphabet (`A-Z2-7`, as AWS key ids),
//! i.e. 80 bits: the top 40 bits are the account id (< 10^12 < 2^40), the low 40 bits random.
//! So [`account_from_access_key_id`] answers offline, as `GetAccessKeyInfo` does.
//!
//! The key ring version is *not* in the key id: it travels in the (authenticated) session token
//! envelope, which every request carries with the key id. That keeps 40 random bits in the id.
//! Two live credentials of one account colliding on a key id would share a derived secret (not a
//! token): with 2^40 values the chance stays below 10^-6 up to ~1500 live sessions per account
//! per key version.

use keyless_types::AccountId;
use rand::CryptoRng;

use crate::error::AccessKeyIdError;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The prefix of temporary (STS) access key ids.
pub const PREFIX: &str = "ASIA";
/// Length of an access key id.
pub const ACCESS_KEY_ID_LEN: usize = 20;

fn encode80(v: u128) -> String {
    let mut s = String::with_capacity(ACCESS_KEY_ID_LEN);
    s.push_str(PREFIX);
    for i in (0..16).rev() {
        let idx = ((v >> (i * 5)) & 31) as usize;
        s.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
    }
    s
}

fn decode80(id: &str) -> Result<u128, AccessKeyIdError> {
    let rest = id.strip_prefix(PREFIX).ok_or(AccessKeyIdError::Malformed)?;
    if id.len() != ACCESS_KEY_ID_LEN {
        return Err(AccessKeyIdError::Malformed);
    }
    let mut v: u128 = 0;
    for b in rest.bytes() {
        let d = match b {
            b'A'..=b'Z' => b - b'A',
            b'2'..=b'7' => b - b'2' + 26,
            _ => return Err(AccessKeyIdError::Malformed),
        };
        v = (v << 5) | u128::from(d);
    }
    Ok(v)
}

/// A fresh access key id for `account`, with 40 random bits from `rng`.
pub fn new_access_key_id<R: CryptoRng + ?Sized>(account: AccountId, rng: &mut R) -> String {
    let mut r = [0u8; 5];
    rng.fill_bytes(&mut r);
    let random = r.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    encode80((u128::from(account.as_u64()) << 40) | random)
}

/// The account an `ASIA` access key id belongs to (offline, like `GetAccessKeyInfo`).
pub fn account_from_access_key_id(id: &str) -> Result<AccountId, AccessKeyIdError> {
    let v = decode80(id)?;
    let account = u64::try_from(v >> 40).map_err(|_| AccessKeyIdError::Malformed)?;
    AccountId::from_u64(account).map_err(|_| AccessKeyIdError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn round_trips_the_account_and_looks_like_aws() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in [0u64, 1, 42, 123_456_789_012, 999_999_999_999] {
            let acct = AccountId::from_u64(n).unwrap();
            let id = new_access_key_id(acct, &mut rng);
            assert_eq!(id.len(), 20);
            assert!(id.starts_with("ASIA"));
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
            );
            assert_eq!(account_from_access_key_id(&id).unwrap(), acct);
        }
    }

    #[test]
    fn random_part_differs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let acct = AccountId::from_u64(123_456_789_012).unwrap();
        let a = new_access_key_id(acct, &mut rng);
        let b = new_access_key_id(acct, &mut rng);
        assert_ne!(a, b);
        assert_eq!(a[..12], b[..12]); // the account part is shared
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "ASIA",
            "AKIAAAAAAAAAAAAAAAAA",
            "ASIAAAAAAAAAAAAAAAA",
            "ASIAAAAAAAAAAAAAAAAAA",
            "ASIAAAAAAAAAAAAAAAA1",
            "ASIAaaaaaaaaaaaaaaaa",
            "ASIAAAAAAAAAAAAAAAA=",
            "ASIAÄAAAAAAAAAAAAAA",
            "ASIA7777777777777777", // account > 999999999999
        ] {
            assert_eq!(
                account_from_access_key_id(bad),
                Err(AccessKeyIdError::Malformed),
                "{bad}"
            );
        }
    }
}
