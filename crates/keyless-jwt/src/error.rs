//! Errors of token parsing and verification, each carrying its AWS wire code.

/// The AWS wire code of an error, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsCode {
    /// `InvalidIdentityToken` (400).
    InvalidIdentityToken,
    /// `ExpiredTokenException` (400).
    ExpiredTokenException,
    /// `IDPRejectedClaim` (403).
    IdpRejectedClaim,
}

impl AwsCode {
    /// The `<Code>` element of the AWS error XML.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsCode::InvalidIdentityToken => "InvalidIdentityToken",
            AwsCode::ExpiredTokenException => "ExpiredTokenException",
            AwsCode::IdpRejectedClaim => "IDPRejectedClaim",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn http_status(self) -> u16 {
        match self {
            AwsCode::IdpRejectedClaim => 403,
            AwsCode::InvalidIdentityToken | AwsCode::ExpiredTokenException => 400,
        }
    }
}

/// Why a web identity token was refused.
///
/// Messages are safe to return to the caller: they never contain the token or any value taken
/// from it (only our own configuration and timestamps).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The token is longer than 20000 bytes (or shorter than 4), the AWS parameter bounds.
    #[error("The ID Token provided is not a valid JWT: it must be 4 to 20000 characters long.")]
    Size,
    /// Not a compact JWS (`header.payload.signature` in base64url, JSON objects inside).
    #[error(
        "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token): {0}"
    )]
    Malformed(&'static str),
    /// The header names an algorithm outside the allow-list (`none`, HS*, unknown).
    #[error(
        "The ID Token provided is signed with an algorithm that is not allowed; use RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA."
    )]
    AlgorithmNotAllowed,
    /// The header carries `crit` extensions, which we do not understand.
    #[error(
        "The ID Token provided uses critical header extensions (crit), which are not supported."
    )]
    CriticalHeader,
    /// No key of the provider's JWKS matches the token's `kid` (or no `kid` and no single candidate).
    #[error(
        "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    UnknownKey,
    /// The key found for the `kid` does not fit the token's algorithm (type, curve or JWK `alg`).
    #[error(
        "The ID Token provided is not valid: the identity provider's key for this kid cannot verify the token's algorithm."
    )]
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    #[error(
        "The ID Token provided is not valid: its signature does not verify against the identity provider's keys."
    )]
    BadSignature,
    /// `iss` differs from the provider's issuer URL.
    #[error("Issuer in the ID Token does not match the identity provider {expected}.")]
    WrongIssuer {
        /// The configured issuer (ours, safe to show).
        expected: String,
    },
    /// A required claim is absent.
    #[error("Missing a required claim: {0}.")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an invalid value.
    #[error("The ID Token provided has an invalid {0} claim.")]
    InvalidClaim(&'static str),
    /// `exp` (plus leeway) is in the past.
    #[error("Token expired: current date/time {now} must be before the expiration date/time {exp}")]
    Expired {
        /// `now`, Unix seconds.
        now: i64,
        /// The token's `exp`, Unix seconds.
        exp: i64,
    },
    /// `iat` is further in the past than [`crate::MAX_TOKEN_AGE`] (plus leeway) allows.
    #[error(
        "Token too old: issued {age} seconds ago, and identity tokens are accepted for {max} seconds after their iat. Get a new identity token from the identity provider and retry."
    )]
    TooOld {
        /// Seconds since `iat`.
        age: i64,
        /// The most accepted, leeway included.
        max: i64,
    },
    /// `nbf` (minus leeway) is in the future.
    #[error(
        "The ID Token provided is not yet valid (nbf is in the future); check the clocks of the identity provider and keyless."
    )]
    NotYetValid,
    /// `iat` (minus leeway) is in the future.
    #[error(
        "The ID Token provided was issued in the future (iat); check the clocks of the identity provider and keyless."
    )]
    IssuedInFuture,
    /// The effective audience (`azp`, else `aud`) is not one of the provider's client ids.
    #[error("Incorrect token audience")]
    AudienceNotAllowed,
    /// `aud` holds several values and there is no `azp` to pick the effective one.
    #[error(
        "The ID Token provided has multiple audiences and no azp claim; AWS requires a single audience."
    )]
    MultipleAudiences,
    /// The `https://aws.amazon.com/tags` claim is malformed or exceeds the session tag limits.
    #[error("The https://aws.amazon.com/tags claim is invalid: {0}")]
    InvalidTagsClaim(&'static str),
    /// The `https://aws.amazon.com/source_identity` claim is invalid.
    #[error(
        "The https://aws.amazon.com/source_identity claim is invalid: it must be 2-64 characters of [A-Za-z0-9_+=,.@-] and not start with aws:"
    )]
    InvalidSourceIdentity,
}

impl JwtError {
    /// The AWS error code this maps to (see the tests for the reasoning per case).
    pub fn aws_code(&self) -> AwsCode {
        match self {
            JwtError::Expired { .. } | JwtError::TooOld { .. } => AwsCode::ExpiredTokenException,
            // AWS answers IDPRejectedClaim (403) when the claims are well-formed but the token
            // is not (yet) acceptable in time; a wrong audience is InvalidIdentityToken
            // "Incorrect token audience", as seen from configure-aws-credentials users.
            JwtError::NotYetValid | JwtError::IssuedInFuture => AwsCode::IdpRejectedClaim,
            _ => AwsCode::InvalidIdentityToken,
        }
    }
}

/// Why a JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than [`crate::MAX_JWKS_BYTES`].
    #[error("the JWKS document is larger than 1 MiB")]
    TooLarge,
    /// Not a JSON object with a `keys` array.
    #[error("the JWKS document is not valid JSON with a \"keys\" array: {0}")]
    Malformed(String),
    /// More RSA keys (or EC/OKP keys) than the limit of 100 each.
    #[error("the JWKS has more than 100 {0} keys")]
    TooManyKeys(&'static str),
    /// A key is malformed (bad base64, wrong size, modulus outside 2048..=8192 bits, ...).
    #[error("JWKS key #{index} is invalid: {reason}")]
    InvalidKey {
        /// Position in the `keys` array.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A signing key is published with its private half (`d`, `p`, `q`, ...): anyone who read
    /// the set can sign tokens with it, so the set is refused and the key must never be
    /// trusted again, not even from a later set that drops the private half.
    #[error("JWKS key #{index} publishes its private key material, so anyone can sign with it")]
    PrivateKeyPublished {
        /// Position in the `keys` array.
        index: usize,
        /// The key's `kid`, if any.
        kid: Option<String>,
        /// The key's [`crate::jwks::KeyFingerprint`].
        fingerprint: [u8; 32],
    },
}

/// Why signing failed (development issuer and tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Key generation or parsing failed in the crypto library.
    #[error("signing key error: {0}")]
    Key(&'static str),
    /// The claims could not be serialised as a JSON object.
    #[error("claims must be a JSON object")]
    Claims,
}
