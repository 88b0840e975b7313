use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An account id must be exactly twelve ASCII digits.
    #[error("account id {0:?} must be exactly 12 digits")]
    AccountId(String),
}

/// A 12-digit AWS-style account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(u64);

impl AccountId {
    /// Parses a 12-digit account id (leading zeros are significant and preserved).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::AccountId(s.to_owned()));
        }
        s.parse::<u64>()
            .map(AccountId)
            .map_err(|_| IdError::AccountId(s.to_owned()))
    }

    /// Builds an account id from its numeric value; values above 999 999 999 999 are rejected.
    pub fn from_u64(n: u64) -> Result<Self, IdError> {
        if n > 999_999_999_999 {
            return Err(IdError::AccountId(n.to_string()));
        }
        Ok(AccountId(n))
    }

    /// The numeric value.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

impl std::str::FromStr for AccountId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AccountId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_keep_leading_zeros() {
        let id = AccountId::parse("000000000042").unwrap();
        assert_eq!(id.to_string(), "000000000042");
        assert_eq!(id.as_u64(), 42);
    }

    #[test]
    fn bad_account_ids_are_rejected() {
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "+12345678901",
            " 23456789012",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AccountId::from_u64(1_000_000_000_000).is_err());
    }
}
