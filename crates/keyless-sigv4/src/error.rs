//! The one error type of this crate, with its AWS wire mapping.

use thiserror::Error;

/// Why a request's signature was not accepted.
///
/// Every variant maps to the AWS wire code a client expects through [`SigV4Error::code`] and
/// [`SigV4Error::http_status`], which take the service name because S3 and the query APIs
/// (STS, IAM) answer the same fault with different codes. Messages never contain the secret,
/// the signing key or the signature we expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters were present.
    #[error("Request is missing Authentication Token")]
    MissingAuthentication,
    /// An `Authorization` header or presigned parameter is structurally wrong.
    #[error("Authorization is malformed: {0}")]
    Malformed(String),
    /// A required part of the signature (Credential, SignedHeaders, Signature, date) is missing.
    #[error("{0}")]
    Incomplete(String),
    /// Presigned query parameters are malformed (S3: AuthorizationQueryParametersError).
    #[error("{0}")]
    QueryMalformed(String),
    /// The algorithm is not one we verify.
    #[error("Unsupported signing algorithm '{0}'; use AWS4-HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    /// SigV4a (`AWS4-ECDSA-P256-SHA256`) was used where only a secret key is available.
    #[error(
        "SigV4a (AWS4-ECDSA-P256-SHA256) requests cannot be verified with a secret key here; \
         sign with SigV4 (AWS4-HMAC-SHA256), e.g. unset AWS_AUTH_SCHEME_PREFERENCE=sigv4a"
    )]
    SigV4aUnsupported,
    /// The credential scope's region is not the one this endpoint serves.
    #[error(
        "Credential should be scoped to a valid region; the region '{got}' is wrong, expecting '{expected}'"
    )]
    WrongRegion {
        /// Region in the request's credential scope.
        got: String,
        /// Region this endpoint serves.
        expected: String,
    },
    /// The credential scope's service is not the one this endpoint serves.
    #[error("Credential should be scoped to correct service: '{expected}' (got '{got}')")]
    WrongService {
        /// Service in the request's credential scope.
        got: String,
        /// Service this endpoint serves.
        expected: String,
    },
    /// The credential scope date differs from the request date.
    #[error(
        "Invalid credential date '{scope_date}': it is not the same as the request date '{request_date}'"
    )]
    CredentialDateMismatch {
        /// `yyyymmdd` from the credential scope.
        scope_date: String,
        /// `yyyymmdd` of `X-Amz-Date`.
        request_date: String,
    },
    /// The request time is outside the allowed clock-skew window (15 minutes by default).
    #[error(
        "Signature expired: the request time {request_time} is more than {max_skew_secs} seconds away \
         from the server time {server_time}; check the client's clock"
    )]
    RequestTimeTooSkewed {
        /// Request time (`X-Amz-Date`, ISO 8601 basic).
        request_time: String,
        /// Server time (ISO 8601 basic).
        server_time: String,
        /// Allowed skew in seconds.
        max_skew_secs: i64,
    },
    /// A presigned URL is past `X-Amz-Date + X-Amz-Expires`.
    #[error(
        "Request has expired: the presigned URL expired at {expires_at}, server time is {server_time}"
    )]
    PresignExpired {
        /// Expiry instant (ISO 8601 basic).
        expires_at: String,
        /// Server time (ISO 8601 basic).
        server_time: String,
    },
    /// The signature did not match the one computed over the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method (`keyless sigv4 check` shows our canonical request)."
    )]
    SignatureDoesNotMatch,
    /// A header named in `SignedHeaders` is absent from the request.
    #[error("The header '{0}' is listed in SignedHeaders but is not present in the request")]
    SignedHeaderMissing(String),
    /// The body does not hash to the declared `x-amz-content-sha256`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// A streaming payload mode was declared but the caller gave a non-streaming body, or vice versa.
    #[error("{0}")]
    PayloadModeMismatch(String),
    /// A chunk of an `aws-chunked` body is malformed.
    #[error("Malformed aws-chunked body: {0}")]
    MalformedChunk(String),
    /// A chunk signature (or the trailer signature) did not match.
    #[error(
        "The chunk signature we calculated does not match the signature you provided (chunk {0})."
    )]
    ChunkSignatureDoesNotMatch(u64),
    /// The decoded body length differs from `x-amz-decoded-content-length`.
    #[error("The decoded body is {got} bytes but x-amz-decoded-content-length declared {declared}")]
    DecodedLengthMismatch {
        /// Bytes decoded.
        got: u64,
        /// Declared length.
        declared: u64,
    },
    /// An input exceeded a size bound.
    #[error("{what} is too large (limit {limit} bytes)")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// A SigV4a public key could not be parsed.
    #[error("Invalid SigV4a public key: {0}")]
    InvalidPublicKey(String),
    /// The cached signing key was derived for another date/region/service than the request's scope.
    #[error(
        "The signing key was derived for scope '{key_scope}' but the request is scoped to '{request_scope}'"
    )]
    KeyScopeMismatch {
        /// Scope of the key.
        key_scope: String,
        /// Scope of the request.
        request_scope: String,
    },
    /// A raw HTTP request could not be parsed (CLI and tests).
    #[error("Malformed HTTP request: {0}")]
    MalformedHttp(String),
}

/// True for services that follow S3's error vocabulary.
fn is_s3(service: &str) -> bool {
    matches!(service, "s3" | "s3-object-lambda" | "s3express")
}

impl SigV4Error {
    /// The AWS wire error code for this error as `service` (e.g. `"sts"`, `"iam"`, `"s3"`) answers it.
    pub fn code(&self, service: &str) -> &'static str {
        let s3 = is_s3(service);
        match self {
            SigV4Error::MissingAuthentication => {
                if s3 {
                    "AccessDenied"
                } else {
                    "MissingAuthenticationToken"
                }
            }
            SigV4Error::Malformed(_) | SigV4Error::UnsupportedAlgorithm(_) => {
                if s3 {
                    "AuthorizationHeaderMalformed"
                } else {
                    "IncompleteSignature"
                }
            }
            SigV4Error::Incomplete(_) => {
                if s3 {
                    "AuthorizationHeaderMalformed"
                } else {
                    "IncompleteSignature"
                }
            }
            SigV4Error::QueryMalformed(_) => {
                if s3 {
                    "AuthorizationQueryParametersError"
                } else {
                    "IncompleteSignature"
                }
            }
            SigV4Error::SigV4aUnsupported => {
                if s3 {
                    "NotImplemented"
                } else {
                    "IncompleteSignature"
                }
            }
            SigV4Error::WrongRegion { .. }
            | SigV4Error::WrongService { .. }
            | SigV4Error::CredentialDateMismatch { .. } => {
                if s3 {
                    "AuthorizationHeaderMalformed"
                } else {
                    "SignatureDoesNotMatch"
                }
            }
            SigV4Error::RequestTimeTooSkewed { .. } => {
                if s3 {
                    "RequestTimeTooSkewed"
                } else {
                    "SignatureDoesNotMatch"
                }
            }
            SigV4Error::PresignExpired { .. } => "AccessDenied",
            SigV4Error::SignatureDoesNotMatch
            | SigV4Error::SignedHeaderMissing(_)
            | SigV4Error::ChunkSignatureDoesNotMatch(_)
            | SigV4Error::KeyScopeMismatch { .. } => "SignatureDoesNotMatch",
            SigV4Error::ContentSha256Mismatch => {
                if s3 {
                    "XAmzContentSHA256Mismatch"
                } else {
                    "SignatureDoesNotMatch"
                }
            }
            SigV4Error::PayloadModeMismatch(_) => "InvalidRequest",
            SigV4Error::MalformedChunk(_) | SigV4Error::DecodedLengthMismatch { .. } => {
                "IncompleteBody"
            }
            SigV4Error::TooLarge { .. } => {
                if s3 {
                    "RequestHeaderSectionTooLarge"
                } else {
                    "RequestEntityTooLarge"
                }
            }
            SigV4Error::InvalidPublicKey(_) => "InternalFailure",
            SigV4Error::MalformedHttp(_) => {
                if s3 {
                    "InvalidRequest"
                } else {
                    "MalformedQueryString"
                }
            }
        }
    }

    /// The HTTP status AWS uses for [`SigV4Error::code`] of `service`.
    pub fn http_status(&self, service: &str) -> u16 {
        match self.code(service) {
            "MissingAuthenticationToken"
            | "AccessDenied"
            | "SignatureDoesNotMatch"
            | "RequestTimeTooSkewed" => 403,
            "NotImplemented" => 501,
            "InternalFailure" => 500,
            "RequestEntityTooLarge" => 413,
            _ => 400,
        }
    }

    /// True for the clock errors (skew and presign expiry) as opposed to a bad signature.
    pub fn is_time_error(&self) -> bool {
        matches!(
            self,
            SigV4Error::RequestTimeTooSkewed { .. } | SigV4Error::PresignExpired { .. }
        )
    }
}
