//! The aws-chunked decoder: round trips through our encoder at random split points, and
//! every malformed or hostile body stops with its exact error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

use keyless_sigv4::*;
use keyless_types::SecretString;
use proptest::prelude::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn t0() -> time::OffsetDateTime {
    parse_amz_date("20150830T123600Z").unwrap()
}

/// Signs a streaming PUT and returns the verified stream seed and an encoder for the body.
fn setup(payload: SignPayload<'_>, extra: &[(&str, &str)]) -> (StreamSeed, ChunkEncoder) {
    let s = SecretString::new(SECRET.into());
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("host", b"bkt.example"),
        ("content-encoding", b"aws-chunked"),
    ];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes())));
    let out = sign(
        &HttpRequest {
            method: "PUT",
            path: "/bkt/key",
            query: "",
            headers: &headers,
        },
        &Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret: &s,
            session_token: None,
        },
        &SigningParams {
            region: "us-east-1",
            service: "s3",
            time: t0(),
            rules: ServiceRules::FromScope,
            location: SignatureLocation::Headers,
            payload,
            content_sha256_header: true,
        },
    )
    .unwrap();
    let enc = out.chunk_encoder();
    let mut all = headers.clone();
    all.extend(out.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    let req = HttpRequest {
        method: "PUT",
        path: "/bkt/key",
        query: "",
        headers: &all,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    let v = verify(
        &signed,
        Body::Streaming,
        &s,
        t0(),
        &VerifyOptions::default(),
    )
    .unwrap();
    (v.stream.clone().unwrap(), enc)
}

fn encode(
    enc: &mut ChunkEncoder,
    chunks: &[Vec<u8>],
    trailers: Option<&[(String, String)]>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for c in chunks {
        if !c.is_empty() {
            enc.chunk(c, &mut body);
        }
    }
    enc.chunk(&[], &mut body);
    match trailers {
        Some(t) => enc.trailers(t, &mut body),
        None => enc.finish(&mut body),
    }
    body
}

fn decode(
    seed: &StreamSeed,
    body: &[u8],
    split: usize,
) -> Result<(Vec<u8>, StreamSummary), SigV4Error> {
    let mut dec = seed.decoder();
    let mut out = Vec::new();
    for part in body.chunks(split.max(1)) {
        dec.feed(part, &mut out)?;
    }
    dec.finish().map(|s| (out, s))
}

fn mode() -> impl Strategy<Value = u8> {
    0u8..3
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_any_split(m in mode(), chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..5), split in 1usize..400) {
        let payload = [SignPayload::StreamingSigned, SignPayload::StreamingSignedTrailer, SignPayload::StreamingUnsignedTrailer][m as usize];
        let trailers = vec![("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())];
        let (seed, mut enc) = if m == 0 { setup(payload, &[]) } else { setup(payload, &[("x-amz-trailer", "x-amz-checksum-crc32")]) };
        let body = encode(&mut enc, &chunks, if m == 0 { None } else { Some(&trailers) });
        let (out, sum) = decode(&seed, &body, split).unwrap();
        prop_assert_eq!(out, chunks.concat());
        if m != 0 { prop_assert_eq!(sum.trailers, trailers); }
    }

    #[test]
    fn signed_stream_rejects_any_flipped_byte(m in 0u8..2, chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 1..4), pick in any::<usize>(), split in 1usize..200) {
        let payload = [SignPayload::StreamingSigned, SignPayload::StreamingSignedTrailer][m as usize];
        let trailers = vec![("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())];
        let (seed, mut enc) = setup(payload, &[]);
        let mut body = encode(&mut enc, &chunks, if m == 0 { None } else { Some(&trailers) });
        let i = pick % body.len();
        body[i] ^= 0x20;
        // Accepting a tampered body would require the decoded output and trailers to be unchanged
        // (e.g. the case of a hex digit in a signature); anything else must be an error.
        match decode(&seed, &body, split) {
            Err(_) => {}
            Ok((out, sum)) => {
                prop_assert_eq!(out, chunks.concat());
                if m == 1 { prop_assert_eq!(sum.trailers, trailers); }
            }
        }
    }

    #[test]
    fn decoder_never_panics_on_garbage(m in 0u8..3, data in prop::collection::vec(any::<u8>(), 0..600), split in 1usize..100) {
        let payload = [SignPayload::StreamingSigned, SignPayload::StreamingSignedTrailer, SignPayload::StreamingUnsignedTrailer][m as usize];
        let (seed, _) = setup(payload, &[]);
        let _ = decode(&seed, &data, split);
    }
}

fn feed_all(seed: &StreamSeed, body: &[u8]) -> Result<StreamSummary, SigV4Error> {
    decode(seed, body, body.len()).map(|(_, s)| s)
}

#[test]
fn malformed_bodies_have_exact_errors() {
    let (seed, mut enc) = setup(SignPayload::StreamingSigned, &[]);
    let good = encode(&mut enc, &[b"hello".to_vec()], None);
    assert!(feed_all(&seed, &good).is_ok());
    let text = String::from_utf8(good.clone()).unwrap();
    let mc = |s: &str| Err(SigV4Error::MalformedChunk(s.into()));

    assert_eq!(
        feed_all(&seed, b"zz;chunk-signature=00\r\n"),
        mc("chunk 0: size is not a hex number")
    );
    assert_eq!(
        feed_all(&seed, b"5\r\nhello\r\n"),
        mc("chunk 0: missing chunk-signature")
    );
    assert_eq!(
        feed_all(
            &seed,
            text.replace(";chunk-signature=", ";chunk-signature=0")
                .as_bytes()
        ),
        mc("chunk 0: chunk-signature is not 64 hex characters")
    );
    assert_eq!(
        feed_all(&seed, text.replacen(";chunk", ";foo=1;chunk", 1).as_bytes()),
        mc("chunk 0: unknown chunk extension")
    );
    assert_eq!(
        feed_all(&seed, text.replacen("hello\r\n", "helloXY", 1).as_bytes()),
        mc("chunk 0: chunk data is not followed by CRLF")
    );
    assert_eq!(
        feed_all(&seed, text.replacen("hello", "hellO", 1).as_bytes()),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(0))
    );
    assert_eq!(
        feed_all(&seed, &good[..good.len() - 2]),
        mc("the body ended before the final chunk")
    );
    let mut extra = good.clone();
    extra.extend_from_slice(b"junk");
    assert_eq!(
        feed_all(&seed, &extra),
        mc("data after the end of the aws-chunked body")
    );
    // Oversized: header line without CRLF, chunk size above the limit.
    assert_eq!(
        feed_all(&seed, &[b'1'; 5000]),
        Err(SigV4Error::TooLarge {
            what: "chunk header",
            limit: 4096
        })
    );
    assert_eq!(
        feed_all(
            &seed,
            format!("1000001;chunk-signature={}\r\n", "0".repeat(64)).as_bytes()
        ),
        Err(SigV4Error::TooLarge {
            what: "chunk",
            limit: 16 * 1024 * 1024
        })
    );
    assert_eq!(
        feed_all(&seed, b"11111111111111111\r\n"),
        mc("chunk 0: size is not a hex number")
    );
    // Chunks replayed in another order fail (the chain).
    let (seed2, mut enc2) = setup(SignPayload::StreamingSigned, &[("x-amz-meta-other", "1")]);
    let mut a = Vec::new();
    enc2.chunk(b"first", &mut a);
    let mut b = Vec::new();
    enc2.chunk(b"second", &mut b);
    let mut swapped = b.clone();
    swapped.extend_from_slice(&a);
    assert_eq!(
        feed_all(&seed2, &swapped),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(0))
    );
    // A body from another request (other seed) fails.
    assert_eq!(
        feed_all(&seed2, &good),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(0))
    );
}

#[test]
fn trailer_errors() {
    let t = vec![("x-amz-checksum-crc32".to_owned(), "AAAAAA==".to_owned())];
    let (seed, mut enc) = setup(
        SignPayload::StreamingSignedTrailer,
        &[("x-amz-trailer", "x-amz-checksum-crc32")],
    );
    let good = encode(&mut enc, &[b"hello".to_vec()], Some(&t));
    assert!(feed_all(&seed, &good).is_ok());
    let text = String::from_utf8(good.clone()).unwrap();
    let mc = |s: &str| Err(SigV4Error::MalformedChunk(s.into()));
    assert_eq!(
        feed_all(&seed, text.replace("AAAAAA==", "AAAAAB==").as_bytes()),
        Err(SigV4Error::ChunkSignatureDoesNotMatch(1))
    );
    let sig_line_start = text.find("x-amz-trailer-signature").unwrap();
    let mut no_sig = text[..sig_line_start].to_owned();
    no_sig.push_str("\r\n");
    assert_eq!(
        feed_all(&seed, no_sig.as_bytes()),
        mc("missing x-amz-trailer-signature")
    );
    assert_eq!(
        feed_all(
            &seed,
            text.replace("x-amz-checksum-crc32:", "x-amz-checksum-sha1:")
                .as_bytes()
        ),
        mc("trailer 'x-amz-checksum-sha1' was not declared in x-amz-trailer")
    );
    assert_eq!(
        feed_all(
            &seed,
            text.replace("x-amz-checksum-crc32:AAAAAA==", "no colon here")
                .as_bytes()
        ),
        mc("trailer line is not name:value")
    );
    // Unsigned trailer stream: declared trailer missing, oversized trailer.
    let (useed, mut uenc) = setup(
        SignPayload::StreamingUnsignedTrailer,
        &[("x-amz-trailer", "x-amz-checksum-crc32")],
    );
    let ubody = encode(&mut uenc, &[b"hi".to_vec()], Some(&[]));
    assert_eq!(
        feed_all(&useed, &ubody),
        mc("declared trailer 'x-amz-checksum-crc32' is missing")
    );
    let (useed, mut uenc) = setup(SignPayload::StreamingUnsignedTrailer, &[]);
    let mut big = encode(&mut uenc, &[b"hi".to_vec()], Some(&[]));
    big.truncate(big.len() - 2);
    big.extend_from_slice(format!("x-big:{}\r\n\r\n", "a".repeat(20_000)).as_bytes());
    assert_eq!(
        feed_all(&useed, &big),
        Err(SigV4Error::TooLarge {
            what: "trailer",
            limit: 16 * 1024
        })
    );
    let mut sigd = encode(
        &mut setup(SignPayload::StreamingUnsignedTrailer, &[]).1,
        &[b"hi".to_vec()],
        Some(&[]),
    );
    sigd.truncate(sigd.len() - 2);
    sigd.extend_from_slice(
        format!("x-amz-trailer-signature:{}\r\n\r\n", "0".repeat(64)).as_bytes(),
    );
    assert_eq!(
        feed_all(&useed, &sigd),
        mc("x-amz-trailer-signature in an unsigned stream")
    );
}

#[test]
fn decoded_length_is_checked() {
    let (seed, mut enc) = setup(
        SignPayload::StreamingSigned,
        &[("x-amz-decoded-content-length", "6")],
    );
    let body = encode(&mut enc, &[b"hello".to_vec()], None);
    assert_eq!(
        feed_all(&seed, &body),
        Err(SigV4Error::DecodedLengthMismatch {
            got: 5,
            declared: 6
        })
    );
}

#[test]
fn error_is_sticky() {
    let (seed, _) = setup(SignPayload::StreamingSigned, &[]);
    let mut dec = seed.decoder();
    let mut out = Vec::new();
    let e = dec.feed(b"zz\r\n", &mut out).unwrap_err();
    assert_eq!(dec.feed(b"", &mut out), Err(e.clone()));
    assert_eq!(dec.finish().err(), Some(e));
}
