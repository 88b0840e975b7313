//! The `keyless` binary: one executable for the server and every tool.
//!
//! Each subcommand lives in its own module under `cmd/`, owns its clap arguments and returns
//! the process exit code. `anyhow` is used only here, at the very top.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc instead of glibc's malloc: an AssumeRoleWithWebIdentity request makes a few hundred
/// small allocations (form pairs, claims, condition keys, the XML answer), and under load glibc
/// spent about 13% of the server's CPU in `malloc`/`free`/`malloc_consolidate` on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// keyless: short-lived, scoped, audited cloud credentials instead of permanent access keys.
#[derive(Debug, Parser)]
#[command(name = "keyless", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the keyless server (STS, IAM, authorize API).
    Serve(cmd::serve::ServeArgs),
    /// Development helpers (mint a token from the dev issuer).
    Dev(cmd::dev::DevArgs),
    /// Manage the credential key ring.
    Keys(cmd::keys::KeysArgs),
    /// Validate and simulate IAM policies.
    Policy(cmd::policy::PolicyArgs),
    /// Check SigV4 signatures of raw HTTP requests.
    Sigv4(cmd::sigv4::Sigv4Args),
    /// Find long-lived AWS keys in files and git history.
    Scan(cmd::scan::ScanArgs),
    /// Flag risky CI workflows, IAM policies and AWS config files.
    Lint(cmd::lint::LintArgs),
    /// Rewrite CI workflows from static keys to OIDC.
    Migrate(cmd::migrate::MigrateArgs),
    /// Revoke live sessions: by access key id, role, subject, source identity, issuer or key version.
    Revoke(cmd::revoke::RevokeArgs),
    /// Read and verify the audit trail.
    Audit(cmd::audit::AuditArgs),
    /// Live sessions, reconstructed from the audit trail.
    Sessions(cmd::sessions::SessionsArgs),
    /// Reports (the credential report).
    Report(cmd::report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Dev(args) => cmd::dev::run(args),
        Command::Keys(args) => cmd::keys::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Sigv4(args) => cmd::sigv4::run(args),
        Command::Scan(args) => cmd::scan::run(args),
        Command::Lint(args) => cmd::lint::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::Revoke(args) => cmd::revoke::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Sessions(args) => cmd::sessions::run(args),
        Command::Report(args) => cmd::report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keyless: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
