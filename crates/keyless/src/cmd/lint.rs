//! `keyless lint`: risky CI workflows, IAM policies and AWS config files.

use std::path::PathBuf;
use std::process::ExitCode;

use keyless_scan::Severity;
use keyless_scan::report::Format;
use keyless_scan::scan::ScanConfig;

use super::scan::{emit, load_baseline, parse_severity};

/// Arguments of `keyless lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Files or directories to check (default: the current directory).
    pub paths: Vec<PathBuf>,
    /// Output format: text, json or sarif.
    #[arg(long, default_value = "text")]
    pub format: Format,
    /// Suppress findings listed in this earlier `--format json` report.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Report only findings at or above this severity: low, medium or high.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub min_severity: Severity,
}

/// Runs `keyless lint`.
pub fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let baseline = load_baseline(args.baseline.as_ref())?;
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut findings = Vec::new();
    // One root at a time, so that SARIF can name each finding from the working directory.
    for root in &paths {
        let mut found =
            keyless_scan::lint::lint_paths(std::slice::from_ref(root), &ScanConfig::default())?;
        // Baselines hold the paths as JSON writes them: filter before SARIF renames.
        if let Some(b) = &baseline {
            b.filter(&mut found);
        }
        let root_is_dir = root.is_dir();
        findings.extend(found.into_iter().map(|mut f| {
            if args.format == Format::Sarif {
                f.path = keyless_scan::report::path_from_cwd(root, root_is_dir, &f.path);
            }
            f
        }));
    }
    keyless_scan::scan::sort_findings(&mut findings);
    findings.retain(|f| f.severity >= args.min_severity);
    if let Some(b) = &baseline {
        b.filter(&mut findings);
    }
    emit(args.format, "lint", &findings, None)
}
