//! Errors of issuer configuration and JWKS fetching.

/// Why an issuer cannot be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not an absolute URL.
    #[error("issuer URL {url:?} is not a valid absolute URL")]
    InvalidUrl {
        /// The configured URL.
        url: String,
    },
    /// Not https (and not an allowed loopback http issuer).
    #[error(
        "issuer URL {url:?} must use https (allow_http = true is accepted only for a loopback address)"
    )]
    NotHttps {
        /// The configured URL.
        url: String,
    },
    /// `allow_http = true` for a host that is not 127.0.0.0/8, ::1 or localhost.
    #[error(
        "issuer URL {url:?}: allow_http = true is accepted only for 127.0.0.0/8, [::1] or localhost"
    )]
    HttpNotLoopback {
        /// The configured URL.
        url: String,
    },
    /// Query, fragment or credentials in the URL.
    #[error("issuer URL {url:?} must not contain a query, a fragment or user credentials")]
    ExtraParts {
        /// The configured URL.
        url: String,
    },
    /// The HTTP client could not be built (TLS roots unavailable, ...).
    #[error("the HTTP client for JWKS fetching could not be built: {0}")]
    Client(String),
}

/// Why the keys of an issuer are unavailable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The issuer is not configured (nothing is fetched for unknown issuers).
    #[error("No OpenIDConnect provider found in your account for this issuer")]
    UnknownIssuer,
    /// The connection failed, timed out, or the server answered 5xx/429: transient.
    #[error("The identity provider could not be reached ({0}); retry the request")]
    Unreachable(&'static str),
    /// The server answered a 4xx status.
    #[error(
        "Couldn't retrieve verification key from your identity provider (HTTP status {0}), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    Status(u16),
    /// A response exceeded the size cap.
    #[error(
        "Couldn't retrieve verification key from your identity provider (response larger than the 1 MiB limit), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    TooLarge,
    /// A redirect was refused (too many, or to a non-https/other-scheme URL).
    #[error(
        "Couldn't retrieve verification key from your identity provider (refused redirect), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    Redirect,
    /// The discovery document is invalid (not JSON, issuer mismatch, bad or foreign `jwks_uri`).
    #[error(
        "Couldn't retrieve verification key from your identity provider (invalid discovery document: {0}), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    Discovery(&'static str),
    /// The JWKS document is invalid.
    #[error(
        "Couldn't retrieve verification key from your identity provider (invalid JWKS: {0}), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    Jwks(keyless_jwt::JwksError),
    /// The issuer's host has no public address, and the issuer may reach only public ones (a
    /// provider an account's IAM administrator created, not the operator's config).
    #[error(
        "Couldn't retrieve verification key from your identity provider (its host has no public address; a provider created through the IAM API can reach only public addresses), please reference AssumeRoleWithWebIdentity documentation for requirements"
    )]
    NotPublic,
}

impl FetchError {
    /// The AWS wire code: `IDPCommunicationError` (400, SDKs retry) for transient transport
    /// failures, `InvalidIdentityToken` (400) otherwise.
    pub fn aws_code(&self) -> &'static str {
        match self {
            FetchError::Unreachable(_) => "IDPCommunicationError",
            _ => "InvalidIdentityToken",
        }
    }

    /// HTTP status of the AWS error (400 in every case).
    pub fn http_status(&self) -> u16 {
        400
    }
}
