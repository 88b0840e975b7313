//! The one error type use cases return to the edge: an AWS wire code, its HTTP status and the
//! message the caller sees. The edge renders it as XML in exactly one place.

use std::fmt;

/// Who is at fault, as AWS's `<Type>` element says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong (4xx).
    Sender,
    /// We failed (5xx).
    Receiver,
}

/// An error with its AWS wire code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The wire `Code`, e.g. `InvalidIdentityToken`.
    pub code: &'static str,
    /// HTTP status.
    pub status: u16,
    /// The message shown to the caller (never a secret, never internals).
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
        }
    }

    /// `ValidationError` (400) with AWS's "1 validation error detected: …" text.
    pub fn validation(problems: &[String]) -> Self {
        let n = problems.len();
        let noun = if n == 1 { "error" } else { "errors" };
        ApiError::new(
            "ValidationError",
            400,
            format!("{n} validation {noun} detected: {}", problems.join("; ")),
        )
    }

    /// `AccessDenied` (403).
    pub fn access_denied(message: impl Into<String>) -> Self {
        ApiError::new("AccessDenied", 403, message)
    }

    /// `InternalFailure` (500); the detail goes to the log, not the caller.
    pub fn internal() -> Self {
        ApiError::new(
            "InternalFailure",
            500,
            "An internal error occurred. Try again.",
        )
    }

    /// `MissingParameter` (400).
    pub fn missing(name: &str) -> Self {
        ApiError::new(
            "MissingParameter",
            400,
            format!("The request must contain the parameter {name}"),
        )
    }

    /// Sender or receiver fault.
    pub fn fault(&self) -> Fault {
        if self.status >= 500 {
            Fault::Receiver
        } else {
            Fault::Sender
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
