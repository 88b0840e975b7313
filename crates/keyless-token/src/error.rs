//! Errors of minting, opening and key ring handling.

/// Why credentials could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The sealed session token would exceed 4096 bytes (AWS `PackedPolicyTooLarge`, 400).
    #[error(
        "Packed policy consumes {percent}% of allotted space, please use smaller policy. (The session token would be {size} bytes; the limit is 4096: shorten the session policy, tags or policy ARNs.)"
    )]
    PackedPolicyTooLarge {
        /// The token size in bytes it would have had.
        size: usize,
        /// The percentage of the limit it would use.
        percent: u32,
    },
    /// The claims are inconsistent (a bug in the caller, not a user error).
    #[error("invalid session claims: {0}")]
    InvalidClaims(&'static str),
    /// The crypto library failed.
    #[error("sealing the session token failed")]
    Crypto,
}

impl MintError {
    /// AWS wire code (`PackedPolicyTooLarge`, or `InternalFailure` for caller bugs).
    pub fn aws_code(&self) -> &'static str {
        match self {
            MintError::PackedPolicyTooLarge { .. } => "PackedPolicyTooLarge",
            MintError::InvalidClaims(_) | MintError::Crypto => "InternalFailure",
        }
    }

    /// HTTP status AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            MintError::PackedPolicyTooLarge { .. } => 400,
            MintError::InvalidClaims(_) | MintError::Crypto => 500,
        }
    }
}

/// Why a presented access key id + session token was refused.
///
/// Every variant but [`OpenError::Expired`] is `InvalidClientTokenId` (403) on the wire; the
/// variants exist for the audit log and metrics. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The access key id is not an `ASIA` key id of ours.
    #[error("The security token included in the request is invalid. (malformed access key id)")]
    MalformedAccessKeyId,
    /// The token is not a well-formed envelope (base64, size, version).
    #[error("The security token included in the request is invalid. (malformed session token)")]
    Malformed,
    /// The key version that sealed it is not (or no longer) in the key ring.
    #[error("The security token included in the request is invalid. (unknown key version)")]
    UnknownKeyVersion,
    /// Authentication failed: tampered, or presented with another access key id.
    #[error("The security token included in the request is invalid.")]
    Tampered,
    /// The token was issued in the future beyond the allowed clock skew.
    #[error(
        "The security token included in the request is invalid. (issued in the future; check clocks)"
    )]
    NotYetValid,
    /// The credentials expired (`ExpiredToken`, 400).
    #[error("The security token included in the request is expired")]
    Expired,
}

impl OpenError {
    /// AWS wire code for the query protocol (STS/IAM).
    pub fn aws_code(&self) -> &'static str {
        match self {
            OpenError::Expired => "ExpiredToken",
            _ => "InvalidClientTokenId",
        }
    }

    /// HTTP status AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            OpenError::Expired => 400,
            _ => 403,
        }
    }
}

/// Why an access key id does not decode to an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessKeyIdError {
    /// Not `ASIA` followed by 16 characters of `A-Z2-7`, or an account above 999999999999.
    #[error(
        "the access key id is not a keyless temporary access key id (ASIA + 16 characters of A-Z, 2-7)"
    )]
    Malformed,
}

/// Why a key ring file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// Not the JSON key ring format.
    #[error("the key ring file is not valid: {0}")]
    Format(String),
    /// A root secret is not 32 bytes of standard base64.
    #[error("key version {0} has an invalid secret: it must be 32 bytes in standard base64")]
    BadSecret(u32),
    /// Two versions share an id.
    #[error("key version {0} appears twice in the key ring")]
    DuplicateVersion(u32),
    /// The ring has no version.
    // Not `keys rotate`: it reads the ring first and fails the same way, and a fresh version 1
    // would not be the version 1 that sealed the live sessions and signed the digests.
    #[error(
        "the key ring has no key version: restore keyring.json from a backup; without one, move it aside and keyless serve creates a new ring at its next start (live sessions end, and digests signed with the old ring no longer match it)"
    )]
    Empty,
    /// The crypto library refused to derive a key.
    #[error("deriving purpose keys failed")]
    Crypto,
}
