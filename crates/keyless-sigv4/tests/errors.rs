//! Malformed, oversized, wrong-type and hostile inputs, each with its exact error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

use keyless_sigv4::*;
use keyless_types::SecretString;
use time::{Duration, OffsetDateTime};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn t0() -> OffsetDateTime {
    parse_amz_date("20150830T123600Z").unwrap()
}

fn secret() -> SecretString {
    SecretString::new(SECRET.into())
}

fn parse_with(headers: &[(&str, &str)], query: &str) -> Result<(), SigV4Error> {
    let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    parse(
        &HttpRequest {
            method: "GET",
            path: "/",
            query,
            headers: &h,
        },
        ServiceRules::FromScope,
    )
    .map(|_| ())
}

const GOOD_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn with_auth(auth: &str) -> Result<(), SigV4Error> {
    parse_with(
        &[
            ("host", "h"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", auth),
        ],
        "",
    )
}

#[test]
fn authorization_header_errors() {
    assert_eq!(with_auth(GOOD_AUTH), Ok(()));
    assert_eq!(
        with_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request"),
        Err(SigV4Error::Incomplete(
            "Authorization header requires 'SignedHeaders', 'Signature' parameters".into()
        ))
    );
    assert_eq!(
        with_auth("AWS4-HMAC-SHA256"),
        Err(SigV4Error::Incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters".into()
        ))
    );
    assert_eq!(
        with_auth(&format!("{GOOD_AUTH}, Foo=bar")),
        Err(SigV4Error::Malformed(
            "unknown Authorization component 'Foo'".into()
        ))
    );
    assert_eq!(
        with_auth(&format!("{GOOD_AUTH}, Signature=00")),
        Err(SigV4Error::Malformed(
            "Authorization component 'Signature' is repeated".into()
        ))
    );
    assert_eq!(
        with_auth(&format!("{GOOD_AUTH}, garbage")),
        Err(SigV4Error::Malformed(
            "Authorization component 'garbage' is not key=value".into()
        ))
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
        Err(SigV4Error::UnsupportedAlgorithm("AWS4-HMAC-SHA512".into()))
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("AWS4-HMAC-SHA256", "AWS")),
        Err(SigV4Error::UnsupportedAlgorithm("AWS".into()))
    );
    let long = format!("{GOOD_AUTH}{}", " ".repeat(9000));
    assert_eq!(
        with_auth(&long),
        Err(SigV4Error::TooLarge {
            what: "Authorization header",
            limit: 8192
        })
    );
    // No spaces after commas is accepted (some clients).
    assert_eq!(with_auth(&GOOD_AUTH.replace(", ", ",")), Ok(()));
}

#[test]
fn credential_signed_headers_and_signature_errors() {
    let cred_err = |c: &str| {
        SigV4Error::Malformed(format!(
            "the Credential '{c}' must be <access key id>/<yyyyMMdd>/<region>/<service>/aws4_request"
        ))
    };
    for bad in [
        "AKIDEXAMPLE/20150830/us-east-1/sts",
        "AKIDEXAMPLE/20150830/us-east-1/sts/aws5_request",
        "/20150830/us-east-1/sts/aws4_request",
        "AKID EX/20150830/us-east-1/sts/aws4_request",
        "AKIDEXAMPLE/2015083/us-east-1/sts/aws4_request",
        "AKIDEXAMPLE/2015083x/us-east-1/sts/aws4_request",
        "AKIDEXAMPLE/20150830//sts/aws4_request",
        "AKIDEXAMPLE/20150830/us-east-1//aws4_request",
    ] {
        let auth = GOOD_AUTH.replace("AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request", bad);
        assert_eq!(with_auth(&auth), Err(cred_err(bad)), "{bad}");
    }
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("host;x-amz-date", "Host;x-amz-date")),
        Err(SigV4Error::Malformed(
            "SignedHeaders 'Host;x-amz-date' must be lower-case header names separated by ';'"
                .into()
        ))
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("host;x-amz-date", "host;;x-amz-date")),
        Err(SigV4Error::Malformed(
            "SignedHeaders 'host;;x-amz-date' must be lower-case header names separated by ';'"
                .into()
        ))
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("host;x-amz-date", "x-amz-date")),
        Err(SigV4Error::Malformed(
            "SignedHeaders 'x-amz-date' must include 'host'".into()
        ))
    );
    let many: Vec<String> = (0..65).map(|i| format!("h{i}")).collect();
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("host;x-amz-date", &many.join(";"))),
        Err(SigV4Error::TooLarge {
            what: "SignedHeaders",
            limit: 64
        })
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("5fa00fa3", "")),
        Err(SigV4Error::Malformed(
            "the signature must be 64 hex characters, got 56".into()
        ))
    );
    assert_eq!(
        with_auth(&GOOD_AUTH.replace("5fa00fa3", "zzzzzzzz")),
        Err(SigV4Error::Malformed("the signature is not hex".into()))
    );
}

#[test]
fn request_level_errors() {
    assert_eq!(
        parse_with(&[("host", "h")], ""),
        Err(SigV4Error::MissingAuthentication)
    );
    assert_eq!(
        parse_with(&[("host", "h"), ("authorization", GOOD_AUTH)], ""),
        Err(SigV4Error::Incomplete(
            "Authorization requires an X-Amz-Date or Date header".into()
        ))
    );
    assert_eq!(
        parse_with(
            &[
                ("x-amz-date", "2015-08-30T12:36:00Z"),
                ("authorization", GOOD_AUTH)
            ],
            ""
        ),
        Err(SigV4Error::Malformed(
            "invalid X-Amz-Date '2015-08-30T12:36:00Z': expected yyyyMMddTHHmmssZ".into()
        ))
    );
    assert_eq!(
        parse_with(
            &[
                ("x-amz-date", "20151330T123600Z"),
                ("authorization", GOOD_AUTH)
            ],
            ""
        ),
        Err(SigV4Error::Malformed(
            "invalid X-Amz-Date '20151330T123600Z': expected yyyyMMddTHHmmssZ".into()
        ))
    );
    assert_eq!(
        parse_with(
            &[
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", GOOD_AUTH),
                ("Authorization", GOOD_AUTH)
            ],
            ""
        ),
        Err(SigV4Error::Malformed(
            "more than one Authorization header".into()
        ))
    );
    assert!(matches!(
        parse_with(&[("x-amz-date", "20150830T123600Z"), ("authorization", GOOD_AUTH)], "X-Amz-Signature=00"),
        Err(SigV4Error::Malformed(m)) if m.starts_with("only one auth mechanism allowed")
    ));
    assert_eq!(
        parse_with(
            &[("x-amz-date", "20150830T123600Z"), ("authorization", GOOD_AUTH), ("x-amz-content-sha256", "SHA256-OF-NOTHING")],
            ""
        ),
        Err(SigV4Error::Malformed(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… value or a hex SHA-256, got 'SHA256-OF-NOTHING'".into()
        ))
    );
    let big_token = "a".repeat(8193);
    assert_eq!(
        parse_with(
            &[
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", GOOD_AUTH),
                ("x-amz-security-token", &big_token)
            ],
            ""
        ),
        Err(SigV4Error::TooLarge {
            what: "X-Amz-Security-Token",
            limit: 8192
        })
    );
    let many: Vec<(&str, &str)> = (0..201).map(|_| ("x-a", "b")).collect();
    assert_eq!(
        parse_with(&many, ""),
        Err(SigV4Error::TooLarge {
            what: "header count",
            limit: 200
        })
    );
    let q = "a".repeat(64 * 1024 + 1);
    assert_eq!(
        parse_with(&[], &q),
        Err(SigV4Error::TooLarge {
            what: "query string",
            limit: 65536
        })
    );
    let path = "/".repeat(16 * 1024 + 1);
    assert_eq!(
        parse(
            &HttpRequest {
                method: "GET",
                path: &path,
                query: "",
                headers: &[]
            },
            ServiceRules::S3
        )
        .err(),
        Some(SigV4Error::TooLarge {
            what: "path",
            limit: 16384
        })
    );
    // Non-UTF-8 Authorization.
    let h: Vec<(&str, &[u8])> = vec![("authorization", b"AWS4-HMAC-SHA256 \xff")];
    assert_eq!(
        parse(
            &HttpRequest {
                method: "GET",
                path: "/",
                query: "",
                headers: &h
            },
            ServiceRules::S3
        )
        .err(),
        Some(SigV4Error::Malformed(
            "the Authorization header is not valid UTF-8".into()
        ))
    );
}

const PRESIGN: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

#[test]
fn presign_errors() {
    let h = [("host", "h")];
    assert_eq!(parse_with(&h, PRESIGN), Ok(()));
    assert_eq!(
        parse_with(&h, &PRESIGN.replace("&X-Amz-Expires=3600", "").replace("&X-Amz-SignedHeaders=host", "")),
        Err(SigV4Error::QueryMalformed(
            "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; missing: X-Amz-SignedHeaders, X-Amz-Expires".into()
        ))
    );
    for (exp, msg) in [
        (
            "0",
            "X-Amz-Expires must be between 1 and 604800 seconds (one week), got 0",
        ),
        (
            "604801",
            "X-Amz-Expires must be between 1 and 604800 seconds (one week), got 604801",
        ),
        (
            "99999999999",
            "X-Amz-Expires should be a number, got '99999999999'",
        ),
        ("-5", "X-Amz-Expires should be a number, got '-5'"),
        ("", "X-Amz-Expires should be a number, got ''"),
    ] {
        assert_eq!(
            parse_with(
                &h,
                &PRESIGN.replace("X-Amz-Expires=3600", &format!("X-Amz-Expires={exp}"))
            ),
            Err(SigV4Error::QueryMalformed(msg.into())),
            "{exp}"
        );
    }
    assert_eq!(
        parse_with(
            &h,
            &PRESIGN.replace("X-Amz-Expires=3600", "X-Amz-Expires=604800")
        ),
        Ok(())
    );
    assert_eq!(
        parse_with(&h, &format!("{PRESIGN}&X-Amz-Date=20150830T123600Z")),
        Err(SigV4Error::QueryMalformed(
            "query parameter X-Amz-Date is repeated".into()
        ))
    );
    assert_eq!(
        parse_with(&h, &format!("{PRESIGN}&X-Amz-Security-Token=%FF")),
        Err(SigV4Error::QueryMalformed(
            "query parameter X-Amz-Security-Token is not valid UTF-8".into()
        ))
    );
    let e = parse_with(&h, &PRESIGN.replace("%2Fs3%2F", "%2F")).unwrap_err();
    assert_eq!(e.code("s3"), "AuthorizationQueryParametersError");
    assert_eq!(e.http_status("s3"), 400);
}

/// A valid header-signed STS request and its owned parts.
fn signed_sts(time: OffsetDateTime, body: &[u8]) -> (Vec<(String, Vec<u8>)>, String) {
    let s = secret();
    let headers: Vec<(&str, &[u8])> = vec![
        ("host", b"sts.example"),
        ("content-type", b"application/x-www-form-urlencoded"),
    ];
    let out = sign(
        &HttpRequest {
            method: "POST",
            path: "/",
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
            service: "sts",
            time,
            rules: ServiceRules::FromScope,
            location: SignatureLocation::Headers,
            payload: SignPayload::Bytes(body),
            content_sha256_header: false,
        },
    )
    .unwrap();
    let mut all: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    all.extend(out.headers.into_iter().map(|(k, v)| (k, v.into_bytes())));
    (all, out.signature)
}

fn verify_owned(
    headers: &[(String, Vec<u8>)],
    query: &str,
    body: Body<'_>,
    now: OffsetDateTime,
    opts: &VerifyOptions,
) -> Result<Verified<SigV4Auth<'static>>, SigV4Error> {
    let h: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query,
        headers: &h,
    };
    let signed = parse(&req, ServiceRules::FromScope)?;
    verify(&signed, body, &secret(), now, opts).map(Verified::into_owned)
}

#[test]
fn clock_skew_boundaries() {
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let (h, _) = signed_sts(t0(), body);
    let o = VerifyOptions::default();
    for d in [
        Duration::ZERO,
        Duration::minutes(15),
        -Duration::minutes(15),
    ] {
        assert!(
            verify_owned(&h, "", Body::Bytes(body), t0() + d, &o).is_ok(),
            "{d}"
        );
    }
    for d in [
        Duration::minutes(15) + Duration::seconds(1),
        -Duration::minutes(15) - Duration::seconds(1),
    ] {
        let e = verify_owned(&h, "", Body::Bytes(body), t0() + d, &o).unwrap_err();
        assert!(
            matches!(
                e,
                SigV4Error::RequestTimeTooSkewed {
                    max_skew_secs: 900,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_time_error());
        assert_eq!(
            (e.code("sts"), e.http_status("sts")),
            ("SignatureDoesNotMatch", 403)
        );
        assert_eq!(
            (e.code("s3"), e.http_status("s3")),
            ("RequestTimeTooSkewed", 403)
        );
        assert!(
            e.to_string()
                .starts_with("Signature expired: the request time 20150830T123600Z"),
            "{e}"
        );
    }
}

#[test]
fn presign_expiry_boundaries() {
    let s = secret();
    let headers: Vec<(&str, &[u8])> = vec![("host", b"bkt.example")];
    let out = sign(
        &HttpRequest {
            method: "GET",
            path: "/bkt/a%20b/c%2Bd.txt",
            query: "",
            headers: &headers,
        },
        &Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret: &s,
            session_token: Some("tok"),
        },
        &SigningParams {
            region: "us-east-1",
            service: "s3",
            time: t0(),
            rules: ServiceRules::FromScope,
            location: SignatureLocation::Query { expires_secs: 60 },
            payload: SignPayload::Unsigned,
            content_sha256_header: false,
        },
    )
    .unwrap();
    let req = HttpRequest {
        method: "GET",
        path: "/bkt/a%20b/c%2Bd.txt",
        query: &out.query,
        headers: &headers,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    let o = VerifyOptions::default();
    let v = verify(
        &signed,
        Body::Streaming,
        &s,
        t0() + Duration::seconds(60),
        &o,
    )
    .unwrap();
    assert_eq!(v.presign_expires_at, Some(t0() + Duration::seconds(60)));
    assert!(v.security_token_signed);
    let e = verify(
        &signed,
        Body::Streaming,
        &s,
        t0() + Duration::seconds(61),
        &o,
    )
    .unwrap_err();
    assert_eq!(
        e,
        SigV4Error::PresignExpired {
            expires_at: "20150830T123700Z".into(),
            server_time: "20150830T123701Z".into()
        }
    );
    assert_eq!((e.code("s3"), e.http_status("s3")), ("AccessDenied", 403));
    // Dated in the future beyond the skew window.
    let e = verify(
        &signed,
        Body::Streaming,
        &s,
        t0() - Duration::minutes(16),
        &o,
    )
    .unwrap_err();
    assert!(matches!(e, SigV4Error::RequestTimeTooSkewed { .. }));
    // A presigned URL used for another key is rejected.
    let req2 = HttpRequest {
        path: "/bkt/a%20b/c%2Bd.txT",
        ..req
    };
    let signed2 = parse(&req2, ServiceRules::FromScope).unwrap();
    assert_eq!(
        verify(&signed2, Body::Streaming, &s, t0(), &o).err(),
        Some(SigV4Error::SignatureDoesNotMatch)
    );
    // Dropping the token from the URL breaks the signature.
    let q = out.query.replace("&X-Amz-Security-Token=tok", "");
    let req3 = HttpRequest { query: &q, ..req };
    let signed3 = parse(&req3, ServiceRules::FromScope).unwrap();
    assert_eq!(signed3.security_token(), None);
    assert_eq!(
        verify(&signed3, Body::Streaming, &s, t0(), &o).err(),
        Some(SigV4Error::SignatureDoesNotMatch)
    );
}

#[test]
fn scope_checks() {
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let (h, _) = signed_sts(t0(), body);
    let o = VerifyOptions {
        expected_region: Some("eu-west-1".into()),
        ..VerifyOptions::default()
    };
    let e = verify_owned(&h, "", Body::Bytes(body), t0(), &o).unwrap_err();
    assert_eq!(
        e,
        SigV4Error::WrongRegion {
            got: "us-east-1".into(),
            expected: "eu-west-1".into()
        }
    );
    assert_eq!(
        (e.code("sts"), e.code("s3")),
        ("SignatureDoesNotMatch", "AuthorizationHeaderMalformed")
    );
    let o = VerifyOptions {
        expected_service: Some("iam".into()),
        ..VerifyOptions::default()
    };
    let e = verify_owned(&h, "", Body::Bytes(body), t0(), &o).unwrap_err();
    assert_eq!(
        e,
        SigV4Error::WrongService {
            got: "sts".into(),
            expected: "iam".into()
        }
    );
    // Scope date not the request date.
    let mut h2 = h.clone();
    for (k, v) in &mut h2 {
        if k == "authorization" {
            *v = String::from_utf8(v.clone())
                .unwrap()
                .replace("/20150830/", "/20150831/")
                .into_bytes();
        }
    }
    let e = verify_owned(&h2, "", Body::Bytes(body), t0(), &VerifyOptions::default()).unwrap_err();
    assert_eq!(
        e,
        SigV4Error::CredentialDateMismatch {
            scope_date: "20150831".into(),
            request_date: "20150830".into()
        }
    );
    // A cached key for another scope is refused, not mis-used.
    let hh: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &hh,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    let key = SigningKey::derive(&secret(), "20150830", "us-east-1", "iam");
    assert_eq!(
        verify_with_key(
            &signed,
            Body::Bytes(body),
            &key,
            t0(),
            &VerifyOptions::default()
        )
        .err(),
        Some(SigV4Error::KeyScopeMismatch {
            key_scope: "20150830/us-east-1/iam/aws4_request".into(),
            request_scope: "20150830/us-east-1/sts/aws4_request".into()
        })
    );
    let key = SigningKey::derive(&secret(), "20150830", "us-east-1", "sts");
    assert!(
        verify_with_key(
            &signed,
            Body::Bytes(body),
            &key,
            t0(),
            &VerifyOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn body_binding() {
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let (h, _) = signed_sts(t0(), body);
    let o = VerifyOptions::default();
    // Computed mode: the body must be given (bytes or hash).
    assert!(matches!(
        verify_owned(&h, "", Body::Streaming, t0(), &o),
        Err(SigV4Error::PayloadModeMismatch(_))
    ));
    let hash = sha256_hex(body);
    assert!(verify_owned(&h, "", Body::Sha256Hex(&hash), t0(), &o).is_ok());
    assert_eq!(
        verify_owned(
            &h,
            "",
            Body::Bytes(b"Action=GetCallerIdentity&Version=2011-06-16"),
            t0(),
            &o
        )
        .err(),
        Some(SigV4Error::SignatureDoesNotMatch)
    );
    // Declared hash: body must match it (a distinct error).
    let s = secret();
    let headers: Vec<(&str, &[u8])> = vec![("host", b"bkt.example")];
    let out = sign(
        &HttpRequest {
            method: "PUT",
            path: "/bkt/k",
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
            payload: SignPayload::Bytes(b"hello"),
            content_sha256_header: true,
        },
    )
    .unwrap();
    let mut all: Vec<(&str, &[u8])> = headers.clone();
    all.extend(out.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    let req = HttpRequest {
        method: "PUT",
        path: "/bkt/k",
        query: "",
        headers: &all,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert!(verify(&signed, Body::Bytes(b"hello"), &s, t0(), &o).is_ok());
    let e = verify(&signed, Body::Bytes(b"hellO"), &s, t0(), &o).unwrap_err();
    assert_eq!(e, SigV4Error::ContentSha256Mismatch);
    assert_eq!(
        (e.code("s3"), e.http_status("s3")),
        ("XAmzContentSHA256Mismatch", 400)
    );
    // A signed header that is missing.
    let fewer: Vec<(&str, &[u8])> = all
        .iter()
        .filter(|(k, _)| *k != "x-amz-content-sha256")
        .cloned()
        .collect();
    let req = HttpRequest {
        headers: &fewer,
        ..req
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert_eq!(
        verify(&signed, Body::Bytes(b"hello"), &s, t0(), &o).err(),
        Some(SigV4Error::SignedHeaderMissing(
            "x-amz-content-sha256".into()
        ))
    );
}

#[test]
fn secrets_never_leak() {
    let s = secret();
    assert_eq!(format!("{s:?}"), "SecretString([redacted])");
    let key = SigningKey::derive(&s, "20150830", "us-east-1", "sts");
    let dbg = format!("{key:?}");
    assert!(!dbg.contains(&hex::encode(key.expose())), "{dbg}");
    assert!(dbg.contains("[redacted]"));
    let body = b"x";
    let (h, _) = signed_sts(t0(), body);
    let hh: Vec<(&str, &[u8])> = h.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &hh,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    // The expected signature for a tampered body never shows up in the error or Debug output.
    let canon = signed.canonical(&Body::Bytes(b"y")).unwrap();
    let expected = key.sign(canon.string_to_sign.as_bytes()).to_hex();
    let e = verify(
        &signed,
        Body::Bytes(b"y"),
        &s,
        t0(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    for text in [e.to_string(), format!("{e:?}"), format!("{signed:?}")] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(&expected), "{text}");
    }
    let v = verify(
        &signed,
        Body::Bytes(body),
        &s,
        t0(),
        &VerifyOptions::default(),
    )
    .unwrap();
    let dbg = format!("{v:?}");
    assert!(
        !dbg.contains(SECRET) && !dbg.contains(&hex::encode(key.expose())),
        "{dbg}"
    );
}

#[test]
fn wire_codes() {
    type Wire = (&'static str, u16);
    let cases: Vec<(SigV4Error, Wire, Wire)> = vec![
        (
            SigV4Error::MissingAuthentication,
            ("MissingAuthenticationToken", 403),
            ("AccessDenied", 403),
        ),
        (
            SigV4Error::Incomplete("x".into()),
            ("IncompleteSignature", 400),
            ("AuthorizationHeaderMalformed", 400),
        ),
        (
            SigV4Error::Malformed("x".into()),
            ("IncompleteSignature", 400),
            ("AuthorizationHeaderMalformed", 400),
        ),
        (
            SigV4Error::SignatureDoesNotMatch,
            ("SignatureDoesNotMatch", 403),
            ("SignatureDoesNotMatch", 403),
        ),
        (
            SigV4Error::SigV4aUnsupported,
            ("IncompleteSignature", 400),
            ("NotImplemented", 501),
        ),
        (
            SigV4Error::ChunkSignatureDoesNotMatch(3),
            ("SignatureDoesNotMatch", 403),
            ("SignatureDoesNotMatch", 403),
        ),
        (
            SigV4Error::MalformedChunk("x".into()),
            ("IncompleteBody", 400),
            ("IncompleteBody", 400),
        ),
    ];
    for (e, sts, s3) in cases {
        assert_eq!((e.code("sts"), e.http_status("sts")), sts, "{e:?}");
        assert_eq!((e.code("iam"), e.http_status("iam")), sts, "{e:?}");
        assert_eq!((e.code("s3"), e.http_status("s3")), s3, "{e:?}");
    }
}

#[test]
fn credentials_with_the_wrong_number_of_parts_are_malformed() {
    let parse_with = |alg: &str, cred: &str| {
        let auth = format!(
            "{alg} Credential={cred}, SignedHeaders=host;x-amz-date, Signature={}",
            "ab".repeat(32)
        );
        let h: Vec<(&str, &[u8])> = vec![
            ("host", b"h"),
            ("x-amz-date", b"20150830T123600Z"),
            ("authorization", auth.as_bytes()),
        ];
        let req = HttpRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
        };
        parse(&req, ServiceRules::FromScope).map(|s| s.access_key_id().to_owned())
    };
    let malformed = |cred: &str, shape: &str| {
        Err(SigV4Error::Malformed(format!(
            "the Credential '{cred}' must be {shape}"
        )))
    };
    let v4 = "<access key id>/<yyyyMMdd>/<region>/<service>/aws4_request";
    // SigV4: a '/' in the access key id, or no region, is refused.
    for bad in [
        "AK/IDEXAMPLE/20150830/us-east-1/sts/aws4_request",
        "AKIDEXAMPLE/20150830/sts/aws4_request",
    ] {
        assert_eq!(
            parse_with("AWS4-HMAC-SHA256", bad),
            malformed(bad, v4),
            "{bad}"
        );
    }
    // SigV4a has no region in its scope: four parts exactly.
    assert_eq!(
        parse_with(
            "AWS4-ECDSA-P256-SHA256",
            "AKIDEXAMPLE/20150830/sts/aws4_request"
        ),
        Ok("AKIDEXAMPLE".to_owned())
    );
    for bad in [
        "AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request",
        "AK/ID/20150830/sts/aws4_request",
        "20150830/sts/aws4_request",
        "AKIDEXAMPLE/20150830/sts/aws5_request",
    ] {
        assert_eq!(
            parse_with("AWS4-ECDSA-P256-SHA256", bad),
            malformed(bad, v4),
            "{bad}"
        );
    }
}

#[test]
fn sigv4a_is_refused_by_the_secret_path() {
    let auth = "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3045022100fddaaf816a31e30d04973875b13bc27b98da10907a3a1872fd5819a221334abc022000de2ee81d83b54f31efc82834de07e6cd4d5c6f25bfa08e0f29a15bb0977c34";
    let h: Vec<(&str, &[u8])> = vec![
        ("host", b"h"),
        ("x-amz-date", b"20150830T123600Z"),
        ("x-amz-region-set", b"*"),
        ("authorization", auth.as_bytes()),
    ];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert_eq!(signed.algorithm(), Algorithm::EcdsaP256Sha256);
    let e = verify(
        &signed,
        Body::Bytes(b""),
        &secret(),
        t0(),
        &VerifyOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e, SigV4Error::SigV4aUnsupported);
    assert_eq!(e.code("sts"), "IncompleteSignature");
}

#[test]
fn raw_http_errors() {
    let p = |b: &[u8]| parse_raw_http(b, 1024).err();
    let m = |s: &str| Some(SigV4Error::MalformedHttp(s.into()));
    assert_eq!(
        p(b"GET"),
        m("the request line must be 'METHOD target HTTP/1.1'")
    );
    assert_eq!(
        p(b"get / HTTP/1.1"),
        m("the method must be upper-case letters")
    );
    assert_eq!(
        p(b"GET / FTP/1"),
        m("the request line must end with the HTTP version")
    );
    assert_eq!(
        p(b"GET http://x/ HTTP/1.1"),
        m("the request target must be a path starting with '/'")
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\n  folded"),
        m("a continuation line before any header")
    );
    assert_eq!(p(b"GET / HTTP/1.1\nNoColon"), m("a header line has no ':'"));
    assert_eq!(
        p(b"GET / HTTP/1.1\nA B: c"),
        m("a header name is empty or contains spaces")
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\nContent-Length: 9\n\nabc"),
        m("the body is shorter than Content-Length")
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\nContent-Length: x\n\nabc"),
        m("Content-Length is not a number")
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\nTransfer-Encoding: chunked\n\n5\r\nab"),
        m("truncated HTTP chunk")
    );
    assert_eq!(
        p(&[b'a'; 1025]),
        Some(SigV4Error::TooLarge {
            what: "HTTP request",
            limit: 1024
        })
    );
    assert_eq!(
        p(b"GET / HTTP/1.1\nH: \xff\xfe"),
        m("the header section is not UTF-8")
    );
    let ok = parse_raw_http(b"PUT /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1024).unwrap();
    assert_eq!(
        (ok.path.as_str(), ok.query.as_str(), ok.body.as_slice()),
        ("/a%20b", "x=1", &b"abc"[..])
    );
    assert_eq!(ok.headers[1], ("X".to_owned(), b"a b".to_vec()));
}

/// A presigned URL signed without a session token, sent with the token in an
/// `X-Amz-Security-Token` header the signature does not cover: the token is still found (it is
/// bound to the key id by the caller), but it must not be reported as signed.
#[test]
fn a_header_token_beside_a_presigned_url_is_not_reported_signed() {
    let s = secret();
    let headers: Vec<(&str, &[u8])> = vec![("host", b"bkt.example")];
    let out = sign(
        &HttpRequest {
            method: "GET",
            path: "/bkt/k",
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
            location: SignatureLocation::Query { expires_secs: 60 },
            payload: SignPayload::Unsigned,
            content_sha256_header: false,
        },
    )
    .unwrap();
    let with_token: Vec<(&str, &[u8])> =
        vec![("host", b"bkt.example"), ("x-amz-security-token", b"tok")];
    let req = HttpRequest {
        method: "GET",
        path: "/bkt/k",
        query: &out.query,
        headers: &with_token,
    };
    let signed = parse(&req, ServiceRules::FromScope).unwrap();
    assert_eq!(signed.security_token(), Some("tok"));
    let v = verify(
        &signed,
        Body::Streaming,
        &s,
        t0(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(
        !v.security_token_signed,
        "the header token is not covered by the presigned signature"
    );
}
