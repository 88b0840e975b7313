//! `keyless sigv4 check`: explains why a raw HTTP request's SigV4 signature is (not) valid.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use keyless_sigv4::{
    Body, MAX_RAW_REQUEST, PayloadMode, ServiceRules, SigV4Error, VerifyOptions, first_difference,
    format_amz_date, parse, parse_raw_http, verify,
};
use keyless_types::SecretString;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Arguments of `keyless sigv4`.
#[derive(Debug, clap::Args)]
pub struct Sigv4Args {
    #[command(subcommand)]
    command: Sigv4Command,
}

#[derive(Debug, clap::Subcommand)]
enum Sigv4Command {
    /// Check the signature of one raw HTTP/1.1 request read from stdin.
    ///
    /// Exit status: 0 valid, 1 invalid (bad signature, clock skew, expired), 2 usage or I/O error.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// File holding the secret access key (a trailing newline is ignored).
    #[arg(long)]
    secret_file: PathBuf,
    /// File holding the session token the request must carry.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Service the endpoint serves (e.g. sts, s3); the credential scope must match.
    #[arg(long)]
    service: Option<String>,
    /// Region the endpoint serves; the credential scope must match.
    #[arg(long)]
    region: Option<String>,
    /// Judge time as of this instant (RFC 3339) instead of the request's own date.
    #[arg(long)]
    now: Option<String>,
    /// The client's canonical request (from S3's error or the SDK's debug log), to locate
    /// the first difference.
    #[arg(long)]
    canonical_request_file: Option<PathBuf>,
}

/// Runs `keyless sigv4`.
pub fn run(args: Sigv4Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sigv4Command::Check(c) => check(c),
    }
}

fn read_trimmed(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        bail!("{what} {} is larger than 64 KiB", path.display());
    }
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let secret = SecretString::new(read_trimmed(&args.secret_file, "secret file")?);
    let token = args
        .token_file
        .as_ref()
        .map(|p| read_trimmed(p, "token file"))
        .transpose()?;
    let client_creq = args
        .canonical_request_file
        .as_ref()
        .map(|p| read_trimmed(p, "canonical request file"))
        .transpose()?;
    let now_arg = args
        .now
        .as_deref()
        .map(|n| {
            OffsetDateTime::parse(n, &Rfc3339)
                .with_context(|| format!("--now '{n}' is not RFC 3339"))
        })
        .transpose()?;

    let mut raw = Vec::new();
    std::io::stdin()
        .take(MAX_RAW_REQUEST as u64 + 1)
        .read_to_end(&mut raw)
        .context("reading the request from stdin")?;
    if raw.len() > MAX_RAW_REQUEST {
        bail!("the request on stdin is larger than {MAX_RAW_REQUEST} bytes");
    }
    let r = parse_raw_http(&raw, MAX_RAW_REQUEST).context("parsing the HTTP request on stdin")?;
    let headers = r.header_refs();
    let req = r.as_http(&headers);

    let signed = match parse(&req, ServiceRules::FromScope) {
        Ok(s) => s,
        Err(e) => {
            println!("INVALID: {e}");
            println!(
                "wire error: {} ({})",
                e.code(args.service.as_deref().unwrap_or("sts")),
                e.http_status(args.service.as_deref().unwrap_or("sts"))
            );
            return Ok(ExitCode::from(1));
        }
    };
    let service = signed.scope().service.clone();
    println!("algorithm:        {}", signed.algorithm().as_str());
    println!("access key id:    {}", signed.access_key_id());
    println!("credential scope: {}", signed.scope().to_scope_string());
    println!(
        "form:             {}",
        if signed.is_presigned() {
            "presigned query"
        } else {
            "Authorization header"
        }
    );
    println!("signed headers:   {}", signed.signed_headers().join(";"));
    println!("payload:          {:?}", signed.payload());
    println!(
        "session token:    {}",
        if signed.security_token().is_some() {
            "present"
        } else {
            "absent"
        }
    );

    let mut ok = true;
    if let Some(t) = &token {
        match signed.security_token() {
            Some(got) if SecretString::new(t.clone()).ct_eq(got) => {
                println!("token check:      matches --token-file");
            }
            Some(_) => {
                println!(
                    "token check:      MISMATCH: the request's X-Amz-Security-Token differs from --token-file"
                );
                ok = false;
            }
            None => {
                println!("token check:      MISSING: the request carries no X-Amz-Security-Token");
                ok = false;
            }
        }
    }

    let body = if signed.payload().is_streaming() {
        Body::Streaming
    } else {
        Body::Bytes(&r.body)
    };
    match signed.canonical(&body) {
        Ok(c) => {
            println!(
                "\n--- canonical request (ours) ---\n{}\n--- string to sign (ours) ---\n{}\n---",
                c.canonical_request, c.string_to_sign
            );
            if let Some(theirs) = &client_creq {
                match first_difference(&c.canonical_request, theirs) {
                    None => println!("client canonical request: identical to ours"),
                    Some(d) => println!(
                        "client canonical request differs first at line {} ({}):\n  ours:   {}\n  theirs: {}",
                        d.line,
                        d.meaning,
                        d.ours.as_deref().unwrap_or("<missing>"),
                        d.theirs.as_deref().unwrap_or("<missing>")
                    ),
                }
            }
        }
        Err(e) => println!("canonical request: cannot be built: {e}"),
    }

    let opts = VerifyOptions {
        expected_region: args.region.as_deref().map(Into::into),
        expected_service: args.service.as_deref().map(Into::into),
        ..VerifyOptions::default()
    };
    let wire = |e: &SigV4Error| {
        let s = args.service.as_deref().unwrap_or(&service);
        format!("{} ({})", e.code(s), e.http_status(s))
    };
    // 1. The signature itself, judged at the request's own time.
    let at_request_time = signed.request_time();
    let sig_result = verify(&signed, body, &secret, at_request_time, &opts);
    match &sig_result {
        Ok(_) => println!("signature:        valid"),
        Err(e) => {
            ok = false;
            println!(
                "signature:        INVALID: {e}\nwire error:       {}",
                wire(e)
            );
            if matches!(e, SigV4Error::SignatureDoesNotMatch) {
                explain_mismatch(&r, &secret, at_request_time, &opts);
            }
        }
    }
    // 2. Time, judged at --now (or the request's date).
    let now = now_arg.unwrap_or(at_request_time);
    let skew = signed.request_time() - now;
    println!(
        "request time:     {} (server time {}, difference {} s)",
        signed.amz_date(),
        format_amz_date(now),
        skew.whole_seconds()
    );
    if sig_result.is_ok() {
        match verify(&signed, body, &secret, now, &opts) {
            Ok(v) => {
                if let Some(exp) = v.presign_expires_at {
                    println!("presign expiry:   {} (valid)", format_amz_date(exp));
                }
                println!("clock:            within the 15 minute window");
                if let Some(seed) = &v.stream {
                    let mut dec = seed.decoder();
                    let mut out = Vec::new();
                    match dec.feed(&r.body, &mut out).and_then(|()| dec.finish()) {
                        Ok(sum) => println!(
                            "aws-chunked body: {} chunks, {} bytes decoded{}",
                            sum.chunks,
                            sum.decoded_len,
                            if matches!(signed.payload(), PayloadMode::StreamingUnsignedTrailer) {
                                " (chunks unsigned)"
                            } else {
                                ", every chunk signature valid"
                            }
                        ),
                        Err(e) => {
                            ok = false;
                            println!("aws-chunked body: INVALID: {e}");
                        }
                    }
                }
            }
            Err(e) if e.is_time_error() => {
                ok = false;
                let label = if matches!(e, SigV4Error::PresignExpired { .. }) {
                    "presign expiry:  "
                } else {
                    "clock skew:      "
                };
                println!("{label} INVALID: {e}\nwire error:       {}", wire(&e));
            }
            Err(e) => {
                ok = false;
                println!("INVALID: {e}");
            }
        }
    } else {
        println!("clock:            not judged (the signature is invalid)");
    }
    println!(
        "{}",
        if ok {
            "RESULT: valid"
        } else {
            "RESULT: INVALID"
        }
    );
    Ok(ExitCode::from(if ok { 0 } else { 1 }))
}

/// Tries the usual client mistakes and says which one reproduces the signature.
fn explain_mismatch(
    r: &keyless_sigv4::RawRequest,
    secret: &SecretString,
    at: OffsetDateTime,
    opts: &VerifyOptions,
) {
    let headers = r.header_refs();
    let req = r.as_http(&headers);
    for (rules, what) in [
        (
            ServiceRules::S3,
            "S3's path rule (single encoding, no normalization)",
        ),
        (
            ServiceRules::Standard,
            "the non-S3 path rule (double encoding, normalization)",
        ),
    ] {
        if let Ok(s) = parse(&req, rules)
            && verify(&s, Body::Bytes(&r.body), secret, at, opts).is_ok()
        {
            println!("first difference: the path: the client signed with {what}");
            return;
        }
    }
    println!(
        "first difference: not identifiable from the request alone; pass the client's canonical request \
         with --canonical-request-file (S3 returns it as <CanonicalRequest> in the error, boto3 logs it at DEBUG) \
         and compare it with ours above. Common causes: wrong secret key, a header changed by a proxy \
         after signing, or a different host/port."
    );
}
