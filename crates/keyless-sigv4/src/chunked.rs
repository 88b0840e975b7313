//! Incremental decoder and verifier for `aws-chunked` bodies.
//!
//! Wire format (one chunk): `hex-size[;chunk-signature=<64 hex>]\r\n<data>\r\n`, ended by a
//! zero-size chunk, then (trailer modes) `name:value\r\n` lines, then `\r\n`. In the signed
//! modes each chunk signature chains from the previous one, starting at the request's seed
//! signature:
//!
//! ```text
//! AWS4-HMAC-SHA256-PAYLOAD \n <X-Amz-Date> \n <scope> \n <previous signature> \n
//! <sha256("")> \n <sha256(chunk data)>
//! ```
//!
//! and the trailer signature (`x-amz-trailer-signature`) is
//! `AWS4-HMAC-SHA256-TRAILER \n <date> \n <scope> \n <last chunk signature> \n sha256(trailers)`
//! with `trailers` = `name:value\n` per trailer.
//!
//! Data of a signed chunk is released only after its signature verified; a bad chunk stops
//! the stream for good.

use crate::SigV4Error;
use crate::crypto::{EMPTY_SHA256_HEX, Signature, SigningKey, sha256_hex};
use crate::request::PayloadMode;

/// What a verified streaming request hands to its [`ChunkDecoder`].
#[derive(Debug, Clone)]
pub struct StreamSeed {
    key: SigningKey,
    seed: Signature,
    amz_date: String,
    scope: String,
    mode: PayloadMode,
    decoded_len: Option<u64>,
    declared_trailers: Vec<String>,
}

impl StreamSeed {
    pub(crate) fn new(
        key: SigningKey,
        seed: Signature,
        amz_date: String,
        scope: String,
        mode: PayloadMode,
        decoded_len: Option<u64>,
        declared_trailers: Vec<String>,
    ) -> Self {
        StreamSeed {
            key,
            seed,
            amz_date,
            scope,
            mode,
            decoded_len,
            declared_trailers,
        }
    }

    pub(crate) fn seed_signature(&self) -> Signature {
        self.seed.clone()
    }

    /// A decoder for the body with default limits.
    pub fn decoder(&self) -> ChunkDecoder {
        ChunkDecoder::new(self.clone(), ChunkLimits::default())
    }
}

/// Size bounds of the chunk decoder.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Largest chunk data size (a signed chunk is buffered whole before it is released).
    pub max_chunk_size: usize,
    /// Longest chunk header line.
    pub max_chunk_header: usize,
    /// Largest trailer section.
    pub max_trailer: usize,
    /// Most trailer lines.
    pub max_trailers: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_chunk_size: 16 * 1024 * 1024,
            max_chunk_header: 4096,
            max_trailer: 16 * 1024,
            max_trailers: 32,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Header,
    /// Unsigned data still to pass through.
    UnsignedData {
        remaining: usize,
    },
    /// Signed data of `size` bytes awaited whole, then `\r\n`.
    SignedData {
        size: usize,
        sig: Signature,
    },
    /// `\r\n` after chunk data.
    DataEnd,
    /// `\r\n` after the final (zero) chunk of the non-trailer mode.
    FinalEnd,
    Trailer,
    Done,
}

/// The result of a complete, verified `aws-chunked` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Decoded payload length.
    pub decoded_len: u64,
    /// Trailers received (lower-case names; the trailer signature excluded). Checksums in them
    /// are for the caller to check against the payload.
    pub trailers: Vec<(String, String)>,
    /// Number of chunks (including the final empty one).
    pub chunks: u64,
}

/// Incremental `aws-chunked` decoder and verifier. Feed it bytes as they arrive.
#[derive(Debug)]
pub struct ChunkDecoder {
    seed: StreamSeed,
    limits: ChunkLimits,
    state: State,
    buf: Vec<u8>,
    prev: Signature,
    chunk_index: u64,
    decoded: u64,
    trailer_bytes: usize,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<Signature>,
    failed: Option<SigV4Error>,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

impl ChunkDecoder {
    /// A decoder for the body of a verified streaming request.
    pub fn new(seed: StreamSeed, limits: ChunkLimits) -> Self {
        let prev = seed.seed.clone();
        ChunkDecoder {
            seed,
            limits,
            state: State::Header,
            buf: Vec::new(),
            prev,
            chunk_index: 0,
            decoded: 0,
            trailer_bytes: 0,
            trailers: Vec::new(),
            trailer_signature: None,
            failed: None,
        }
    }

    fn signed(&self) -> bool {
        matches!(
            self.seed.mode,
            PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer
        )
    }

    fn has_trailer(&self) -> bool {
        matches!(
            self.seed.mode,
            PayloadMode::StreamingSignedTrailer | PayloadMode::StreamingUnsignedTrailer
        )
    }

    /// Feeds `input`; appends verified payload bytes to `out`. After an error every later call
    /// returns that error again.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), SigV4Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.feed_inner(input, out);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn feed_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), SigV4Error> {
        self.buf.extend_from_slice(input);
        let mut pos = 0;
        let r = self.process(&mut pos, out);
        self.buf.drain(..pos);
        r
    }

    fn malformed(&self, what: &str) -> SigV4Error {
        SigV4Error::MalformedChunk(format!("chunk {}: {what}", self.chunk_index))
    }

    fn process(&mut self, pos: &mut usize, out: &mut Vec<u8>) -> Result<(), SigV4Error> {
        loop {
            let avail = &self.buf[*pos..];
            match self.state.clone() {
                State::Header => {
                    let Some(end) = find_crlf(avail) else {
                        if avail.len() > self.limits.max_chunk_header {
                            return Err(SigV4Error::TooLarge {
                                what: "chunk header",
                                limit: self.limits.max_chunk_header,
                            });
                        }
                        return Ok(());
                    };
                    if end > self.limits.max_chunk_header {
                        return Err(SigV4Error::TooLarge {
                            what: "chunk header",
                            limit: self.limits.max_chunk_header,
                        });
                    }
                    let line = avail[..end].to_vec();
                    *pos += end + 2;
                    self.on_header(&line)?;
                }
                State::UnsignedData { remaining } => {
                    if avail.is_empty() {
                        return Ok(());
                    }
                    let n = remaining.min(avail.len());
                    out.extend_from_slice(&avail[..n]);
                    *pos += n;
                    self.decoded += n as u64;
                    self.state = if n == remaining {
                        State::DataEnd
                    } else {
                        State::UnsignedData {
                            remaining: remaining - n,
                        }
                    };
                }
                State::SignedData { size, sig } => {
                    if avail.len() < size {
                        return Ok(());
                    }
                    let data = &avail[..size];
                    let expected = self.chunk_signature(data);
                    if !expected.ct_eq(&sig) {
                        return Err(SigV4Error::ChunkSignatureDoesNotMatch(self.chunk_index));
                    }
                    out.extend_from_slice(data);
                    *pos += size;
                    self.decoded += size as u64;
                    self.prev = sig;
                    self.state = State::DataEnd;
                }
                State::DataEnd | State::FinalEnd => {
                    if avail.len() < 2 {
                        return Ok(());
                    }
                    if &avail[..2] != b"\r\n" {
                        return Err(self.malformed("chunk data is not followed by CRLF"));
                    }
                    *pos += 2;
                    self.state = if matches!(self.state, State::FinalEnd) {
                        State::Done
                    } else {
                        self.chunk_index += 1;
                        State::Header
                    };
                }
                State::Trailer => {
                    let Some(end) = find_crlf(avail) else {
                        if self.trailer_bytes + avail.len() > self.limits.max_trailer {
                            return Err(SigV4Error::TooLarge {
                                what: "trailer",
                                limit: self.limits.max_trailer,
                            });
                        }
                        return Ok(());
                    };
                    self.trailer_bytes += end + 2;
                    if self.trailer_bytes > self.limits.max_trailer {
                        return Err(SigV4Error::TooLarge {
                            what: "trailer",
                            limit: self.limits.max_trailer,
                        });
                    }
                    let line = avail[..end].to_vec();
                    *pos += end + 2;
                    if line.is_empty() {
                        self.end_trailers()?;
                        self.state = State::Done;
                    } else {
                        self.on_trailer_line(&line)?;
                    }
                }
                State::Done => {
                    if avail.is_empty() {
                        return Ok(());
                    }
                    return Err(SigV4Error::MalformedChunk(
                        "data after the end of the aws-chunked body".to_owned(),
                    ));
                }
            }
        }
    }

    fn on_header(&mut self, line: &[u8]) -> Result<(), SigV4Error> {
        let line = std::str::from_utf8(line).map_err(|_| self.malformed("header is not ASCII"))?;
        let mut parts = line.split(';');
        let size_hex = parts.next().unwrap_or_default().trim();
        if size_hex.is_empty()
            || size_hex.len() > 16
            || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(self.malformed("size is not a hex number"));
        }
        let size = u64::from_str_radix(size_hex, 16).map_err(|_| self.malformed("bad size"))?;
        if size > self.limits.max_chunk_size as u64 {
            return Err(SigV4Error::TooLarge {
                what: "chunk",
                limit: self.limits.max_chunk_size,
            });
        }
        let size = usize::try_from(size).map_err(|_| self.malformed("bad size"))?;
        let mut sig = None;
        for ext in parts {
            match ext.trim().split_once('=') {
                Some(("chunk-signature", v)) if self.signed() => {
                    if sig.is_some() {
                        return Err(self.malformed("repeated chunk-signature"));
                    }
                    sig =
                        Some(Signature::from_hex(v.trim()).map_err(|_| {
                            self.malformed("chunk-signature is not 64 hex characters")
                        })?);
                }
                _ if self.signed() => return Err(self.malformed("unknown chunk extension")),
                _ => {}
            }
        }
        if self.signed() {
            let Some(sig) = sig else {
                return Err(self.malformed("missing chunk-signature"));
            };
            if size == 0 {
                let expected = self.chunk_signature(&[]);
                if !expected.ct_eq(&sig) {
                    return Err(SigV4Error::ChunkSignatureDoesNotMatch(self.chunk_index));
                }
                self.prev = sig;
                self.state = if self.has_trailer() {
                    State::Trailer
                } else {
                    State::FinalEnd
                };
            } else {
                self.state = State::SignedData { size, sig };
            }
        } else if size == 0 {
            self.state = if self.has_trailer() {
                State::Trailer
            } else {
                State::FinalEnd
            };
        } else {
            self.state = State::UnsignedData { remaining: size };
        }
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), SigV4Error> {
        let line = std::str::from_utf8(line)
            .map_err(|_| SigV4Error::MalformedChunk("trailer is not UTF-8".to_owned()))?;
        let (name, value) = line.split_once(':').ok_or_else(|| {
            SigV4Error::MalformedChunk("trailer line is not name:value".to_owned())
        })?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if self.trailer_signature.is_some() {
            return Err(SigV4Error::MalformedChunk(
                "trailer after x-amz-trailer-signature".to_owned(),
            ));
        }
        if name == "x-amz-trailer-signature" {
            if !self.signed() {
                return Err(SigV4Error::MalformedChunk(
                    "x-amz-trailer-signature in an unsigned stream".to_owned(),
                ));
            }
            self.trailer_signature = Some(Signature::from_hex(&value).map_err(|_| {
                SigV4Error::MalformedChunk("x-amz-trailer-signature is not 64 hex".to_owned())
            })?);
            return Ok(());
        }
        if self.trailers.len() >= self.limits.max_trailers {
            return Err(SigV4Error::TooLarge {
                what: "trailer count",
                limit: self.limits.max_trailers,
            });
        }
        if !self.seed.declared_trailers.is_empty() && !self.seed.declared_trailers.contains(&name) {
            return Err(SigV4Error::MalformedChunk(format!(
                "trailer '{name}' was not declared in x-amz-trailer"
            )));
        }
        self.trailers.push((name, value));
        Ok(())
    }

    fn end_trailers(&mut self) -> Result<(), SigV4Error> {
        for d in &self.seed.declared_trailers {
            if !self.trailers.iter().any(|(n, _)| n == d) {
                return Err(SigV4Error::MalformedChunk(format!(
                    "declared trailer '{d}' is missing"
                )));
            }
        }
        if self.signed() {
            let Some(sig) = self.trailer_signature.take() else {
                return Err(SigV4Error::MalformedChunk(
                    "missing x-amz-trailer-signature".to_owned(),
                ));
            };
            let expected = trailer_signature(
                &self.seed.key,
                &self.seed.amz_date,
                &self.seed.scope,
                &self.prev,
                &self.trailers,
            );
            if !expected.ct_eq(&sig) {
                return Err(SigV4Error::ChunkSignatureDoesNotMatch(self.chunk_index));
            }
        }
        Ok(())
    }

    fn chunk_signature(&self, data: &[u8]) -> Signature {
        chunk_signature(
            &self.seed.key,
            &self.seed.amz_date,
            &self.seed.scope,
            &self.prev,
            data,
        )
    }

    /// Call at end of body: checks the stream ended properly and the decoded length.
    pub fn finish(self) -> Result<StreamSummary, SigV4Error> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !matches!(self.state, State::Done) {
            return Err(SigV4Error::MalformedChunk(
                "the body ended before the final chunk".to_owned(),
            ));
        }
        if let Some(declared) = self.seed.decoded_len
            && declared != self.decoded
        {
            return Err(SigV4Error::DecodedLengthMismatch {
                got: self.decoded,
                declared,
            });
        }
        Ok(StreamSummary {
            decoded_len: self.decoded,
            trailers: self.trailers,
            chunks: self.chunk_index + 1,
        })
    }
}

/// A seed for fuzzing and tests: a fixed key and seed signature.
pub(crate) fn test_seed(
    secret: &keyless_types::SecretString,
    now: time::OffsetDateTime,
    mode: PayloadMode,
) -> Option<StreamSeed> {
    let amz_date = crate::format_amz_date(now);
    let date = amz_date.get(..8)?.to_owned();
    let key = SigningKey::derive(secret, &date, "us-east-1", "s3");
    let seed = key.sign(b"seed");
    Some(StreamSeed::new(
        key,
        seed,
        amz_date,
        format!("{date}/us-east-1/s3/aws4_request"),
        mode,
        None,
        Vec::new(),
    ))
}

/// The signature of one chunk (`previous` is the seed signature for the first chunk).
pub fn chunk_signature(
    key: &SigningKey,
    amz_date: &str,
    scope: &str,
    previous: &Signature,
    data: &[u8],
) -> Signature {
    let sts = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{}\n{EMPTY_SHA256_HEX}\n{}",
        previous.to_hex(),
        sha256_hex(data)
    );
    key.sign(sts.as_bytes())
}

/// The trailer signature over `trailers` (lower-case names, trimmed values).
pub fn trailer_signature(
    key: &SigningKey,
    amz_date: &str,
    scope: &str,
    previous: &Signature,
    trailers: &[(String, String)],
) -> Signature {
    let mut canon = String::new();
    for (n, v) in trailers {
        canon.push_str(n);
        canon.push(':');
        canon.push_str(v);
        canon.push('\n');
    }
    let sts = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{}\n{}",
        previous.to_hex(),
        sha256_hex(canon.as_bytes())
    );
    key.sign(sts.as_bytes())
}
