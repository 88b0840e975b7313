//! AWS Signature Version 4 verification in every form real clients send (pure, no I/O).
//!
//! This crate answers "is this request authentic?" for keyless's STS and IAM endpoints, the
//! `/v1/authorize` API and the S3 gateway. It does no I/O and never reads the clock: the
//! caller passes `now`, the secret and the body.
//!
//! # Two steps
//!
//! The caller needs the access key id (and session token) to find the secret, so
//! verification is split:
//!
//! 1. [`parse`] finds the signature (the `Authorization` header, else presigned
//!    `X-Amz-*` query parameters) and returns a [`SignedRequest`];
//! 2. [`verify`] (or [`verify_with_key`] with a cached [`SigningKey`]) recomputes the
//!    canonical request and returns [`Verified<SigV4Auth>`](Verified), which has no public
//!    constructor.
//!
//! ```
//! use keyless_sigv4::*;
//! use keyless_types::SecretString;
//! use time::macros::datetime;
//!
//! let secret = SecretString::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into());
//! let now = datetime!(2015-08-30 12:36:00 UTC);
//! let body = b"Action=GetCallerIdentity&Version=2011-06-15";
//! let headers: Vec<(&str, &[u8])> = vec![
//!     ("Host", b"sts.us-east-1.amazonaws.com"),
//!     ("Content-Type", b"application/x-www-form-urlencoded; charset=utf-8"),
//! ];
//! let req = HttpRequest { method: "POST", path: "/", query: "", headers: &headers };
//!
//! // A client signs (boto3-style: no x-amz-content-sha256 header) ...
//! let out = sign(&req, &Credentials { access_key_id: "AKIDEXAMPLE", secret: &secret, session_token: None },
//!     &SigningParams { region: "us-east-1", service: "sts", time: now, rules: ServiceRules::FromScope,
//!         location: SignatureLocation::Headers, payload: SignPayload::Bytes(body), content_sha256_header: false })?;
//! let mut all = headers.clone();
//! all.extend(out.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
//! let req = HttpRequest { headers: &all, ..req };
//!
//! // ... and the server verifies.
//! let signed = parse(&req, ServiceRules::FromScope)?;
//! assert_eq!(signed.access_key_id(), "AKIDEXAMPLE");      // look up the secret with this
//! let opts = VerifyOptions { expected_service: Some("sts".into()), ..VerifyOptions::default() };
//! let auth = verify(&signed, Body::Bytes(body), &secret, now, &opts)?;
//! assert_eq!(auth.scope.region, "us-east-1");
//!
//! // Tampering is caught, and errors map to AWS wire codes per service.
//! let err = verify(&signed, Body::Bytes(b"Action=DeleteRole"), &secret, now, &opts).unwrap_err();
//! assert_eq!((err.code("sts"), err.http_status("sts")), ("SignatureDoesNotMatch", 403));
//! # Ok::<(), SigV4Error>(())
//! ```
//!
//! # Rules (each has tests)
//!
//! - **Forms**: `Authorization` header with any `SignedHeaders`; presigned query
//!   (`X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature`, optional
//!   `X-Amz-Security-Token`, `X-Amz-Content-Sha256`). A request carrying both forms is refused.
//! - **Payload**: `x-amz-content-sha256` if sent (then the body must hash to it, else
//!   [`SigV4Error::ContentSha256Mismatch`]); computed from the body when absent (boto3 on
//!   STS/IAM); `UNSIGNED-PAYLOAD`; the three `STREAMING-…` modes, whose body is verified
//!   incrementally by a [`ChunkDecoder`] obtained from [`SigV4Auth::stream`]. Presigned S3
//!   requests default to `UNSIGNED-PAYLOAD`, other presigned requests to the body's hash.
//! - **Canonical URI** ([`ServiceRules`]): S3 is single-encoded, not normalized; every other
//!   service encodes the wire path again and removes dot segments and repeated slashes.
//! - **Query**: parameters decoded then re-encoded (RFC 3986 unreserved kept), sorted by name
//!   then value; a parameter without `=` has an empty value; `+` is a literal plus.
//! - **Headers**: names lower-cased; values trimmed, runs of whitespace folded to one space,
//!   repeated headers joined with `,` in arrival order; a signed header that is absent is
//!   [`SigV4Error::SignedHeaderMissing`]. `SignedHeaders` must include `host` (every SDK
//!   signs it; without it a signature could be replayed against another host).
//! - **Time**: header-signed requests must be within 15 minutes of `now`
//!   ([`SigV4Error::RequestTimeTooSkewed`]); presigned ones must not be dated more than 15
//!   minutes ahead and expire at `X-Amz-Date + X-Amz-Expires` (at most 604800 s)
//!   ([`SigV4Error::PresignExpired`]). The credential scope date must equal the request date.
//! - **Session token**: from `X-Amz-Security-Token` (header or query); whether it was signed is
//!   reported in [`SigV4Auth::security_token_signed`] (the suites include tokens added after
//!   signing). Binding the token to the access key is the caller's job.
//! - **SigV4a** (`AWS4-ECDSA-P256-SHA256`): [`verify_sigv4a`] verifies against a given P-256
//!   public key; [`verify`] refuses it with [`SigV4Error::SigV4aUnsupported`]. It is never
//!   verified as SigV4.
//! - **Secrets**: signatures are compared in constant time ([`Signature`] has no `PartialEq`);
//!   errors never contain the secret, the signing key or the expected signature.
//! - **Bounds**: `Authorization` 8 KiB, 200 headers, 64 signed headers, query 64 KiB and 1000
//!   parameters, path 16 KiB, token 8 KiB; chunk decoder limits in [`ChunkLimits`].
//!
//! # Diagnostics
//!
//! [`SignedRequest::canonical`] gives the canonical request and string to sign verification
//! uses; [`first_difference`] compares them with a client's (S3 returns its canonical request
//! in `SignatureDoesNotMatch`). `keyless sigv4 check` is built on these.

mod chunked;
mod crypto;
mod encode;
mod error;
pub mod fuzz;
mod http;
mod request;
mod sign;
mod verify;

pub use chunked::{
    ChunkDecoder, ChunkLimits, StreamSeed, StreamSummary, chunk_signature, trailer_signature,
};
pub use crypto::{EMPTY_SHA256_HEX, Signature, SigningKey, sha256_hex};
pub use encode::{
    QueryParam, ServiceRules, canonical_uri_into, parse_query, percent_decode, uri_encode,
};
pub use error::SigV4Error;
pub use http::{MAX_RAW_REQUEST, RawRequest, parse_raw_http};
pub use request::{
    Algorithm, AuthorizationHeader, CredentialScope, HttpRequest, MAX_PRESIGN_EXPIRES, PayloadMode,
    SignedRequest, format_amz_date, parse, parse_amz_date, parse_authorization_header,
};
pub use sign::{
    ChunkEncoder, Credentials, SignPayload, SignatureLocation, SigningOutput, SigningParams, sign,
};
pub use verify::{
    Body, Canonical, FirstDifference, SigV4Auth, SigV4aPublicKey, Verified, VerifyOptions,
    first_difference, verify, verify_sigv4a, verify_with_key,
};
