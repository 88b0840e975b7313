//! `keyless policy`: validate policy documents and simulate requests against them.
//!
//! - `keyless policy validate FILE [--type T] [--format text|json]` prints Access-Analyzer-style
//!   findings; exit 1 when any finding is an ERROR, 0 otherwise, 2 on usage or I/O errors.
//! - `keyless policy simulate --case FILE [--format text|json]` evaluates one case or an array
//!   of cases (format: `shared/vectors/policy/README.md`) and prints per case its id, decision
//!   and explanation. A malformed case is reported with its location and nothing else. Exit 1
//!   when a case is malformed or its decision differs from its `expect`, 0 otherwise.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use keyless_policy::case::{MAX_CASE_FILE, parse_cases};
use keyless_policy::{PolicyType, Severity, validate};
use serde_json::json;

/// Largest policy file `validate` reads (bytes); the largest policy type allows 20,480 characters.
const MAX_POLICY_FILE: u64 = 1024 * 1024;

/// Arguments of `keyless policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TypeArg {
    Identity,
    Resource,
    Trust,
    Guardrail,
    Session,
}

impl From<TypeArg> for PolicyType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Identity => PolicyType::Identity,
            TypeArg::Resource => PolicyType::Resource,
            TypeArg::Trust => PolicyType::Trust,
            TypeArg::Guardrail => PolicyType::Guardrail,
            TypeArg::Session => PolicyType::Session,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Validate a policy document and print findings (exit 1 when any is an ERROR).
    Validate {
        /// Policy document (JSON); `-` reads standard input.
        file: PathBuf,
        /// Policy type: decides allowed elements and the size limit.
        #[arg(long = "type", value_enum, default_value = "identity")]
        policy_type: TypeArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Evaluate request cases and print each decision with its explanation.
    Simulate {
        /// Case file: one case object or an array of cases.
        #[arg(long)]
        case: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

fn read_bounded(path: &Path, max: u64) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(max + 1)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
    } else {
        let f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        f.take(max + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if buf.len() as u64 > max {
        anyhow::bail!("{} is larger than {max} bytes", path.display());
    }
    String::from_utf8(buf).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Runs `keyless policy`.
pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Validate {
            file,
            policy_type,
            format,
        } => {
            let text = read_bounded(&file, MAX_POLICY_FILE)?;
            let findings = validate(&text, policy_type.into());
            match format {
                Format::Json => {
                    let v: Vec<_> = findings
                        .iter()
                        .map(|f| {
                            json!({"severity": f.severity.to_string(), "code": f.code, "message": f.message,
                                   "path": f.path, "line": f.line, "column": f.column})
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Format::Text => {
                    if findings.is_empty() {
                        println!("{}: no findings", file.display());
                    }
                    for f in &findings {
                        println!(
                            "{}:{}:{}: {} {} at {}: {}",
                            file.display(),
                            f.line,
                            f.column,
                            f.severity,
                            f.code,
                            f.path,
                            f.message
                        );
                    }
                }
            }
            let error = findings.iter().any(|f| f.severity == Severity::Error);
            Ok(if error {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        PolicyCommand::Simulate { case, format } => {
            let text = read_bounded(&case, MAX_CASE_FILE as u64)?;
            let cases = match parse_cases(&text) {
                Ok(c) => c,
                Err(e) => {
                    match format {
                        Format::Json => println!(
                            "{}",
                            serde_json::to_string_pretty(
                                &json!([{"error": e.message, "path": e.path, "line": e.line, "column": e.column}])
                            )?
                        ),
                        Format::Text => println!("{}: error: {e}", case.display()),
                    }
                    return Ok(ExitCode::from(1));
                }
            };
            let mut failed = false;
            let mut out = Vec::new();
            for c in &cases {
                match c {
                    Err(e) => {
                        failed = true;
                        match format {
                            Format::Json => out.push(json!({"id": e.id, "error": e.message, "path": e.path, "line": e.line, "column": e.column})),
                            Format::Text => println!("{}: error: {} (at {}, line {}, column {})", e.id.as_deref().unwrap_or("?"), e.message, e.path, e.line, e.column),
                        }
                    }
                    Ok(c) => {
                        let d = c.evaluate();
                        let mismatch = c.expect.filter(|e| *e != d.kind());
                        failed |= mismatch.is_some();
                        match format {
                            Format::Json => {
                                let mut o = json!({"id": c.id, "decision": d.kind().as_str(), "explanation": d.explanation()});
                                if let (Some(e), Some(m)) = (c.expect, o.as_object_mut()) {
                                    m.insert("expect".into(), json!(e.as_str()));
                                    m.insert("matchesExpect".into(), json!(e == d.kind()));
                                }
                                out.push(o);
                            }
                            Format::Text => {
                                let note = mismatch
                                    .map(|e| format!(" (MISMATCH: expected {e})"))
                                    .unwrap_or_default();
                                println!("{}: {}: {}{note}", c.id, d.kind(), d.explanation());
                            }
                        }
                    }
                }
            }
            if let Format::Json = format {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
