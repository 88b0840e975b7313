//! A test peer, not part of keyless: drives a running keyless with the AWS SDK for Rust
//! (`aws-config` and `aws-sdk-sts`), the way a Rust workload would, and prints one JSON line for
//! `tests/e2e/test_rust_sdk.py` to check.
//!
//! The endpoint, region and web-identity settings come from the standard environment
//! (`AWS_ENDPOINT_URL_STS`, `AWS_REGION`, `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`,
//! `AWS_ROLE_SESSION_NAME`), so what is tested is the SDK's own configuration chain.
//!
//! ```text
//! rust-sdk-client caller-identity
//! rust-sdk-client assume-role-with-web-identity ROLE_ARN TOKEN_FILE SESSION [DURATION [MIN_TOKEN_SIZE]]
//! rust-sdk-client assume-role ROLE_ARN SESSION [POLICY]
//! rust-sdk-client decode-authorization-message MESSAGE
//! ```
//!
//! A failed call prints `{"error":{"code","message","status","modeled"}}`, where `modeled` names
//! the SDK's modeled exception when the SDK recognised the code (it is `null` otherwise), and
//! exits 0: the caller judges the outcome.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::Client;
use aws_sdk_sts::config::{Credentials, ProvideCredentials};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use aws_sdk_sts::operation::decode_authorization_message::DecodeAuthorizationMessageError;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match run(&args).await {
        Ok(v) => v,
        Err(usage) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    println!("{out}");
}

async fn run(args: &[String]) -> Result<Value, String> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2), arg(3)) {
        (Some("caller-identity"), ..) => Ok(caller_identity().await),
        (Some("assume-role-with-web-identity"), Some(role), Some(token_file), Some(session)) => {
            let int = |i: usize| {
                arg(i)
                    .filter(|v| !v.is_empty())
                    .map(str::parse::<i32>)
                    .transpose()
                    .map_err(|e| e.to_string())
            };
            Ok(web_identity(role, token_file, session, int(4)?, int(5)?).await)
        }
        (Some("assume-role"), Some(role), Some(session), policy) => {
            Ok(assume_role(role, session, policy).await)
        }
        (Some("decode-authorization-message"), Some(message), ..) => Ok(decode(message).await),
        _ => Err("usage: rust-sdk-client caller-identity | assume-role-with-web-identity ROLE TOKEN_FILE SESSION [DURATION] | assume-role ROLE SESSION [POLICY] | decode-authorization-message MESSAGE".to_owned()),
    }
}

/// The SDK's configuration from the environment, its credential chain included.
async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// GetCallerIdentity with the credentials of the default chain (here: the web-identity
/// provider), and the access key id that chain produced.
async fn caller_identity() -> Value {
    let config = sdk_config().await;
    let Some(provider) = config.credentials_provider() else {
        return json!({"error": {"code": "NoCredentialsProvider"}});
    };
    let creds = match provider.provide_credentials().await {
        Ok(c) => c,
        Err(e) => {
            return json!({"error": {"code": "CredentialsProvider", "message": format!("{e:?}")}});
        }
    };
    match Client::new(&config).get_caller_identity().send().await {
        Ok(id) => json!({
            "Arn": id.arn(),
            "Account": id.account(),
            "UserId": id.user_id(),
            "AccessKeyId": creds.access_key_id(),
            "HasSessionToken": creds.session_token().is_some(),
        }),
        Err(e) => error_json(&e, None),
    }
}

/// An explicit AssumeRoleWithWebIdentity call (the SDK sends it unsigned).
async fn web_identity(
    role: &str,
    token_file: &str,
    session: &str,
    duration: Option<i32>,
    min_token_size: Option<i32>,
) -> Value {
    let token = match std::fs::read_to_string(token_file) {
        Ok(t) => t,
        Err(e) => return json!({"error": {"code": "TokenFile", "message": e.to_string()}}),
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .no_credentials()
        .load()
        .await;
    let call = Client::new(&config)
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name(session)
        .web_identity_token(token.trim())
        .set_duration_seconds(duration)
        .set_minimum_session_token_size(min_token_size)
        .send()
        .await;
    match call {
        Ok(out) => {
            let creds = out.credentials();
            json!({
                "AccessKeyId": creds.map(|c| c.access_key_id()),
                "HasSecret": creds.is_some_and(|c| !c.secret_access_key().is_empty()),
                "HasSessionToken": creds.is_some_and(|c| !c.session_token().is_empty()),
                "Expiration": creds.map(|c| c.expiration().to_string()),
                "Arn": out.assumed_role_user().map(|u| u.arn()),
                "AssumedRoleId": out.assumed_role_user().map(|u| u.assumed_role_id()),
                "SubjectFromWebIdentityToken": out.subject_from_web_identity_token(),
                "Audience": out.audience(),
                "Provider": out.provider(),
                "SessionTokenLength": creds.map(|c| c.session_token().len()),
                "SessionTokenSize": out.session_token_size(),
                "SessionTokenUtilization": out.session_token_utilization(),
            })
        }
        Err(e) => {
            let modeled = e.as_service_error().and_then(|s| match s {
                AssumeRoleWithWebIdentityError::InvalidIdentityTokenException(_) => {
                    Some("InvalidIdentityTokenException")
                }
                AssumeRoleWithWebIdentityError::ExpiredTokenException(_) => {
                    Some("ExpiredTokenException")
                }
                AssumeRoleWithWebIdentityError::IdpRejectedClaimException(_) => {
                    Some("IDPRejectedClaimException")
                }
                AssumeRoleWithWebIdentityError::IdpCommunicationErrorException(_) => {
                    Some("IDPCommunicationErrorException")
                }
                AssumeRoleWithWebIdentityError::MalformedPolicyDocumentException(_) => {
                    Some("MalformedPolicyDocumentException")
                }
                AssumeRoleWithWebIdentityError::PackedPolicyTooLargeException(_) => {
                    Some("PackedPolicyTooLargeException")
                }
                _ => None,
            });
            error_json(&e, modeled)
        }
    }
}

/// Role chaining: AssumeRole signed with the default chain's (web-identity) credentials,
/// optionally narrowed by a session policy, then GetCallerIdentity with the new credentials.
async fn assume_role(role: &str, session: &str, policy: Option<&str>) -> Value {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let out = match client
        .assume_role()
        .role_arn(role)
        .role_session_name(session)
        .set_policy(policy.map(str::to_owned))
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let modeled = e.as_service_error().and_then(|s| match s {
                AssumeRoleError::MalformedPolicyDocumentException(_) => {
                    Some("MalformedPolicyDocumentException")
                }
                AssumeRoleError::PackedPolicyTooLargeException(_) => {
                    Some("PackedPolicyTooLargeException")
                }
                AssumeRoleError::ExpiredTokenException(_) => Some("ExpiredTokenException"),
                _ => None,
            });
            return error_json(&e, modeled);
        }
    };
    let Some(c) = out.credentials() else {
        return json!({"error": {"code": "NoCredentialsInResponse"}});
    };
    let chained = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "keyless-assume-role",
    );
    let sts = aws_sdk_sts::config::Builder::from(&config)
        .credentials_provider(chained)
        .build();
    match Client::from_conf(sts).get_caller_identity().send().await {
        Ok(id) => json!({
            "AccessKeyId": c.access_key_id(),
            "AssumedRoleArn": out.assumed_role_user().map(|u| u.arn()),
            "PackedPolicySize": packed_policy_size(&out),
            "SessionTokenSize": out.session_token_size(),
            "SessionTokenUtilization": out.session_token_utilization(),
            "Arn": id.arn(),
            "UserId": id.user_id(),
        }),
        Err(e) => error_json(&e, None),
    }
}

/// `PackedPolicySize`, deprecated in the model since 2026 but still what older clients read.
#[allow(
    deprecated,
    reason = "the deprecated field is what older clients still read"
)]
fn packed_policy_size(out: &aws_sdk_sts::operation::assume_role::AssumeRoleOutput) -> Option<i32> {
    out.packed_policy_size()
}

/// DecodeAuthorizationMessage signed with the default chain's credentials.
async fn decode(message: &str) -> Value {
    let config = sdk_config().await;
    let call = Client::new(&config)
        .decode_authorization_message()
        .encoded_message(message)
        .send()
        .await;
    match call {
        Ok(out) => json!({"DecodedMessage": out.decoded_message()}),
        Err(e) => {
            let modeled = e.as_service_error().and_then(|s| match s {
                DecodeAuthorizationMessageError::InvalidAuthorizationMessageException(_) => {
                    Some("InvalidAuthorizationMessageException")
                }
                _ => None,
            });
            error_json(&e, modeled)
        }
    }
}

/// A failed call as the SDK saw it: the wire code and message it parsed, the HTTP status, and
/// the modeled exception it mapped the code to.
fn error_json<E, R>(e: &SdkError<E, R>, modeled: Option<&str>) -> Value
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug + HasStatus,
{
    let (code, message) = match e.as_service_error() {
        Some(s) => (s.code(), s.message()),
        None => (None, None),
    };
    json!({"error": {
        "code": code,
        "message": message,
        "status": e.raw_response().map(HasStatus::status_code),
        "modeled": modeled,
        "kind": if e.as_service_error().is_some() { "service" } else { "other" },
        "debug": if e.as_service_error().is_some() { None } else { Some(format!("{e:?}")) },
    }})
}

/// The HTTP status of the SDK's raw response type.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_sts::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
