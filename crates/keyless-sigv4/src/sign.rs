//! A SigV4 signer (header and presigned forms), for tests and keyless's own clients.

use std::borrow::Cow;

use keyless_types::SecretString;
use time::OffsetDateTime;

use crate::SigV4Error;
use crate::chunked::{StreamSeed, chunk_signature, trailer_signature};
use crate::crypto::{Signature, SigningKey, sha256_hex};
use crate::encode::{ServiceRules, parse_query, uri_encode};
use crate::request::{
    Algorithm, CredentialScope, HttpRequest, PayloadMode, SigBytes, SignedRequest, format_amz_date,
};
use crate::verify::{Body, Canonical};

/// The credentials to sign with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'c> {
    /// Access key id.
    pub access_key_id: &'c str,
    /// Secret access key.
    pub secret: &'c SecretString,
    /// Session token, if any (sent as `X-Amz-Security-Token` and signed).
    pub session_token: Option<&'c str>,
}

/// Where the signature goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// `Authorization` header.
    Headers,
    /// Presigned query parameters valid for `expires_secs` (1..=604800).
    Query {
        /// `X-Amz-Expires`.
        expires_secs: u32,
    },
}

/// How the body is bound.
#[derive(Debug, Clone, Copy)]
pub enum SignPayload<'b> {
    /// Hash these bytes.
    Bytes(&'b [u8]),
    /// A precomputed hex SHA-256.
    Precomputed(&'b str),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (use [`SigningOutput::chunk_encoder`] for the body).
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    StreamingUnsignedTrailer,
}

/// Signing parameters.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'p> {
    /// Region of the scope.
    pub region: &'p str,
    /// Service of the scope.
    pub service: &'p str,
    /// Signing time.
    pub time: OffsetDateTime,
    /// URI rules ([`ServiceRules::FromScope`] picks S3's rule for `s3`).
    pub rules: ServiceRules,
    /// Header or presigned.
    pub location: SignatureLocation,
    /// Body binding.
    pub payload: SignPayload<'p>,
    /// Send `x-amz-content-sha256` (always sent for unsigned and streaming payloads).
    pub content_sha256_header: bool,
}

/// What to add to the request.
#[derive(Debug, Clone)]
pub struct SigningOutput {
    /// Headers to add (including `Authorization` in the header form), in order.
    pub headers: Vec<(String, String)>,
    /// Query string to send: the original parameters plus the presign parameters, encoded.
    pub query: String,
    /// The signature (hex).
    pub signature: String,
    /// The canonical request and string to sign.
    pub canonical: Canonical,
    seed: Option<StreamSeed>,
    key: SigningKey,
    amz_date: String,
    scope: String,
}

impl SigningOutput {
    /// For streaming payloads: an encoder producing the signed `aws-chunked` body.
    pub fn chunk_encoder(&self) -> ChunkEncoder {
        ChunkEncoder {
            key: self.key.clone(),
            amz_date: self.amz_date.clone(),
            scope: self.scope.clone(),
            prev: self.seed.as_ref().map(StreamSeed::seed_signature),
        }
    }
}

/// Encodes an `aws-chunked` body (signed when the request was signed for a signed stream).
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    key: SigningKey,
    amz_date: String,
    scope: String,
    prev: Option<Signature>,
}

impl ChunkEncoder {
    /// Appends one chunk (an empty `data` is the final chunk).
    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{:x}", data.len()).as_bytes());
        if let Some(prev) = &self.prev {
            let sig = chunk_signature(&self.key, &self.amz_date, &self.scope, prev, data);
            out.extend_from_slice(b";chunk-signature=");
            out.extend_from_slice(sig.to_hex().as_bytes());
            self.prev = Some(sig);
        }
        out.extend_from_slice(b"\r\n");
        if !data.is_empty() {
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends the trailers (after the final chunk) and, when signed, the trailer signature,
    /// then the closing CRLF. With no trailers in the non-trailer mode call [`Self::finish`].
    pub fn trailers(&mut self, trailers: &[(String, String)], out: &mut Vec<u8>) {
        for (n, v) in trailers {
            out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        }
        if let Some(prev) = &self.prev {
            let sig = trailer_signature(&self.key, &self.amz_date, &self.scope, prev, trailers);
            out.extend_from_slice(
                format!("x-amz-trailer-signature:{}\r\n", sig.to_hex()).as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Closes a body without trailers (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
    }
}

/// Signs `req` (whose headers must include `host`). Every header of `req` is signed.
pub fn sign(
    req: &HttpRequest<'_>,
    creds: &Credentials<'_>,
    params: &SigningParams<'_>,
) -> Result<SigningOutput, SigV4Error> {
    let amz_date = format_amz_date(params.time);
    let scope = CredentialScope {
        date: Cow::Owned(amz_date[..8].to_owned()),
        region: Cow::Borrowed(params.region),
        service: Cow::Borrowed(params.service),
    };
    let scope_string = scope.to_scope_string();
    let (mode, body_hash) = match params.payload {
        SignPayload::Bytes(b) => {
            let h = sha256_hex(b);
            (PayloadMode::Sha256(h.clone()), Some(h))
        }
        SignPayload::Precomputed(h) => (PayloadMode::Sha256(h.to_owned()), Some(h.to_owned())),
        SignPayload::Unsigned => (PayloadMode::Unsigned, None),
        SignPayload::StreamingSigned => (PayloadMode::StreamingSigned, None),
        SignPayload::StreamingSignedTrailer => (PayloadMode::StreamingSignedTrailer, None),
        SignPayload::StreamingUnsignedTrailer => (PayloadMode::StreamingUnsignedTrailer, None),
    };
    let payload_value = match &mode {
        PayloadMode::Sha256(h) => h.clone(),
        PayloadMode::Unsigned => "UNSIGNED-PAYLOAD".to_owned(),
        PayloadMode::StreamingSigned => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned(),
        PayloadMode::StreamingSignedTrailer => {
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER".to_owned()
        }
        _ => "STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned(),
    };
    let mut added: Vec<(String, String)> = Vec::new();
    let mut query = req.query.to_owned();
    let presign_expires = match params.location {
        SignatureLocation::Headers => {
            added.push(("x-amz-date".to_owned(), amz_date.clone()));
            if let Some(t) = creds.session_token {
                added.push(("x-amz-security-token".to_owned(), t.to_owned()));
            }
            if params.content_sha256_header || body_hash.is_none() {
                added.push(("x-amz-content-sha256".to_owned(), payload_value.clone()));
            }
            None
        }
        SignatureLocation::Query { expires_secs } => {
            let mut names: Vec<String> = req
                .headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .collect();
            names.sort();
            names.dedup();
            let mut qp = vec![
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
                (
                    "X-Amz-Credential",
                    format!("{}/{}", creds.access_key_id, scope_string),
                ),
                ("X-Amz-Date", amz_date.clone()),
                ("X-Amz-Expires", expires_secs.to_string()),
                ("X-Amz-SignedHeaders", names.join(";")),
            ];
            if let Some(t) = creds.session_token {
                qp.push(("X-Amz-Security-Token", t.to_owned()));
            }
            if params.content_sha256_header {
                qp.push(("X-Amz-Content-Sha256", payload_value.clone()));
            }
            for (k, v) in qp {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(k);
                query.push('=');
                query.push_str(&uri_encode(v.as_bytes(), false));
            }
            Some(expires_secs)
        }
    };
    let mut headers: Vec<(&str, &[u8])> = req.headers.to_vec();
    for (n, v) in &added {
        headers.push((n.as_str(), v.as_bytes()));
    }
    let mut signed_headers: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let (double_encode, normalize) = params.rules.resolve(params.service);
    let sreq = HttpRequest {
        method: req.method,
        path: req.path,
        query: &query,
        headers: &headers,
    };
    let signed = SignedRequest {
        req: sreq,
        algorithm: Algorithm::HmacSha256,
        access_key_id: Cow::Borrowed(creds.access_key_id),
        scope,
        amz_date: Cow::Borrowed(&amz_date),
        time: params.time,
        signed_headers: signed_headers
            .iter()
            .map(|h| Cow::Borrowed(h.as_str()))
            .collect(),
        signature: SigBytes::Ecdsa(Vec::new()),
        security_token: creds.session_token.map(Cow::Borrowed),
        token_in_signed_headers: true,
        presign_expires,
        payload: mode.clone(),
        double_encode,
        normalize,
        query: parse_query(&query)?,
        region_set: None,
    };
    let canonical = signed.canonical(&match &body_hash {
        Some(h) => Body::Sha256Hex(h),
        None => Body::Streaming,
    })?;
    let key = SigningKey::derive(creds.secret, &amz_date[..8], params.region, params.service);
    let sig = key.sign(canonical.string_to_sign.as_bytes());
    let signature = sig.to_hex();
    match params.location {
        SignatureLocation::Headers => added.push((
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
                creds.access_key_id,
                scope_string,
                signed_headers.join(";"),
                signature
            ),
        )),
        SignatureLocation::Query { .. } => {
            query.push_str("&X-Amz-Signature=");
            query.push_str(&signature);
        }
    }
    let seed = if mode.is_streaming() {
        Some(StreamSeed::new(
            key.clone(),
            sig,
            amz_date.clone(),
            scope_string.clone(),
            mode.clone(),
            None,
            Vec::new(),
        ))
    } else {
        None
    };
    Ok(SigningOutput {
        headers: added,
        query,
        signature,
        canonical,
        seed: if matches!(mode, PayloadMode::StreamingUnsignedTrailer) {
            None
        } else {
            seed
        },
        key,
        amz_date,
        scope: scope_string,
    })
}
