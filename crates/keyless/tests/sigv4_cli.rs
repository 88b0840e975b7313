//! `keyless sigv4 check` run as a built binary against the shared SigV4 vectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and bench helpers outside #[test] fns: a failure should abort loudly"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn suite(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/sigv4/aws-signing-test-suite/v4")
        .join(case)
        .join(file)
}

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyless-sigv4-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";

fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .arg("sigv4")
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn valid_header_request_exits_0_and_prints_canonical_request() {
    let secret = tmp("secret-ok", SECRET);
    let req = std::fs::read(suite(
        "get-vanilla-query-order-key-case",
        "header-signed-request.txt",
    ))
    .unwrap();
    let (code, out, err) = run(&["--secret-file", secret.to_str().unwrap()], &req);
    assert_eq!(code, 0, "{out}{err}");
    let creq = std::fs::read_to_string(suite(
        "get-vanilla-query-order-key-case",
        "header-canonical-request.txt",
    ))
    .unwrap();
    let sts = std::fs::read_to_string(suite(
        "get-vanilla-query-order-key-case",
        "header-string-to-sign.txt",
    ))
    .unwrap();
    assert!(out.contains(creq.trim_end()), "{out}");
    assert!(out.contains(sts.trim_end()), "{out}");
    assert!(out.contains("signature:        valid"));
    assert!(out.contains("RESULT: valid"));
    assert!(
        !out.contains("wJalrXUtnFEMI"),
        "the secret must never be printed"
    );
}

#[test]
fn wrong_secret_exits_1_with_wire_code_and_no_secret() {
    let secret = tmp("secret-bad", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ\n");
    let req = std::fs::read(suite("get-vanilla", "header-signed-request.txt")).unwrap();
    let (code, out, _) = run(&["--secret-file", secret.to_str().unwrap()], &req);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature:        INVALID"), "{out}");
    assert!(out.contains("SignatureDoesNotMatch (403)"), "{out}");
    assert!(out.contains("first difference:"), "{out}");
    assert!(!out.contains("EXAMPLEKEZ"));
}

#[test]
fn skew_is_reported_separately_from_the_signature() {
    let secret = tmp("secret-skew", SECRET);
    let req = std::fs::read(suite("get-vanilla", "header-signed-request.txt")).unwrap();
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--now",
            "2015-08-30T13:00:01Z",
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature:        valid"), "{out}");
    assert!(out.contains("clock skew:       INVALID"), "{out}");
    assert!(out.contains("difference -1441 s"), "{out}");
    // 14 minutes is inside the window.
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--now",
            "2015-08-30T12:50:00Z",
        ],
        &req,
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn expired_presign_is_reported_as_expiry() {
    let secret = tmp("secret-presign", SECRET);
    let req = std::fs::read(suite("get-vanilla", "query-signed-request.txt")).unwrap();
    let (code, out, _) = run(&["--secret-file", secret.to_str().unwrap()], &req);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("form:             presigned query"));
    assert!(
        out.contains("presign expiry:   20150830T133600Z (valid)"),
        "{out}"
    );
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--now",
            "2015-08-30T13:36:01Z",
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("presign expiry:   INVALID: Request has expired"),
        "{out}"
    );
    assert!(out.contains("AccessDenied (403)"), "{out}");
}

#[test]
fn client_canonical_request_first_difference() {
    let secret = tmp("secret-diff", "not-the-secret\n");
    let creq = std::fs::read_to_string(suite(
        "get-vanilla-query-order-key-case",
        "header-canonical-request.txt",
    ))
    .unwrap();
    let theirs = creq.replace("Param1=value1", "Param1=value9");
    let theirs = tmp("creq", &theirs);
    let req = std::fs::read(suite(
        "get-vanilla-query-order-key-case",
        "header-signed-request.txt",
    ))
    .unwrap();
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--canonical-request-file",
            theirs.to_str().unwrap(),
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("differs first at line 3 (canonical query string)"),
        "{out}"
    );
    assert!(out.contains("theirs: Param1=value9&Param2=value2"), "{out}");
}

#[test]
fn wrong_service_and_region() {
    let secret = tmp("secret-scope", SECRET);
    let req = std::fs::read(suite("get-vanilla", "header-signed-request.txt")).unwrap();
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--service",
            "sts",
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Credential should be scoped to correct service: 'sts'"),
        "{out}"
    );
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--region",
            "eu-west-1",
            "--service",
            "s3",
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("AuthorizationHeaderMalformed (400)"), "{out}");
}

#[test]
fn session_token_check() {
    let secret = tmp("secret-token", SECRET);
    let good = tmp(
        "token-good",
        "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n",
    );
    let bad = tmp("token-bad", "other\n");
    let req = std::fs::read(suite(
        "get-vanilla-with-session-token",
        "header-signed-request.txt",
    ))
    .unwrap();
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--token-file",
            good.to_str().unwrap(),
        ],
        &req,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("token check:      matches --token-file"));
    let (code, out, _) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--token-file",
            bad.to_str().unwrap(),
        ],
        &req,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("token check:      MISMATCH"));
}

#[test]
fn unsigned_and_malformed_requests_exit_1() {
    let secret = tmp("secret-unsigned", SECRET);
    let (code, out, _) = run(
        &["--secret-file", secret.to_str().unwrap()],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("INVALID: Request is missing Authentication Token"),
        "{out}"
    );
    assert!(out.contains("MissingAuthenticationToken (403)"), "{out}");
    let (code, out, _) = run(
        &["--secret-file", secret.to_str().unwrap()],
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request\r\n\r\n",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("requires 'SignedHeaders', 'Signature' parameters"),
        "{out}"
    );
    assert!(out.contains("IncompleteSignature (400)"), "{out}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let (code, _, err) = run(&["--secret-file", "/nonexistent/keyless-secret"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("reading secret file"), "{err}");
    let secret = tmp("secret-io", SECRET);
    let (code, _, err) = run(
        &["--secret-file", secret.to_str().unwrap()],
        b"not http at all",
    );
    assert_eq!(code, 2);
    assert!(err.contains("Malformed HTTP request"), "{err}");
    let (code, _, err) = run(
        &[
            "--secret-file",
            secret.to_str().unwrap(),
            "--now",
            "yesterday",
        ],
        b"",
    );
    assert_eq!(code, 2);
    assert!(err.contains("--now 'yesterday' is not RFC 3339"), "{err}");
    let big = vec![b'a'; 16 * 1024 * 1024 + 10];
    let (code, _, err) = run(&["--secret-file", secret.to_str().unwrap()], &big);
    assert_eq!(code, 2);
    assert!(err.contains("larger than"), "{err}");
    let (code, _, _) = run(&[], b"");
    assert_eq!(code, 2);
}

#[test]
fn aws_chunked_body_is_verified() {
    // The S3 docs streaming example as a raw request.
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/vectors/sigv4/s3-docs-streaming-example.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut raw = format!(
        "PUT {} HTTP/1.1\r\n",
        d["request"]["path"].as_str().unwrap()
    )
    .into_bytes();
    for (k, v) in d["request"]["headers"].as_object().unwrap() {
        raw.extend_from_slice(format!("{k}: {}\r\n", v.as_str().unwrap()).as_bytes());
    }
    raw.extend_from_slice(
        format!(
            "Authorization: {}\r\n\r\n",
            d["authorization"].as_str().unwrap()
        )
        .as_bytes(),
    );
    let mut body = Vec::new();
    for c in d["chunks"].as_array().unwrap() {
        let size = c["size"].as_u64().unwrap() as usize;
        body.extend_from_slice(
            format!(
                "{size:x};chunk-signature={}\r\n",
                c["signature"].as_str().unwrap()
            )
            .as_bytes(),
        );
        body.extend_from_slice(&vec![b'a'; size]);
        body.extend_from_slice(b"\r\n");
    }
    let mut good = raw.clone();
    good.extend_from_slice(&body);
    let secret = tmp("secret-s3", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
    let (code, out, err) = run(&["--secret-file", secret.to_str().unwrap()], &good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "aws-chunked body: 3 chunks, 66560 bytes decoded, every chunk signature valid"
        ),
        "{out}"
    );
    let mut bad = raw;
    let idx = body.len() - 100;
    body[idx] ^= 1;
    bad.extend_from_slice(&body);
    let (code, out, _) = run(&["--secret-file", secret.to_str().unwrap()], &bad);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("aws-chunked body: INVALID"), "{out}");
}
