//! `keyless scan`: find AWS keys in files and git history.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use keyless_scan::baseline::Baseline;
use keyless_scan::report::{Format, render};
use keyless_scan::scan::{Progress, ScanConfig, ScanStats, sort_findings};
use keyless_scan::{Finding, Severity};

/// Arguments of `keyless scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or directories to scan (default: the current directory). With --git, repositories.
    pub paths: Vec<PathBuf>,
    /// Also scan every blob of every commit on every ref (needs `git`).
    #[arg(long)]
    pub git: bool,
    /// Output format: text, json or sarif.
    #[arg(long, default_value = "text")]
    pub format: Format,
    /// Suppress findings listed in this earlier `--format json` report.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Report only findings at or above this severity: low, medium or high.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub min_severity: Severity,
    /// Extra directory names to skip (added to the defaults: node_modules, vendor, .git, …).
    #[arg(long = "exclude-dir", value_name = "NAME")]
    pub exclude_dirs: Vec<String>,
    /// Gitignore-style globs of files to skip.
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Do not skip the default vendored/build directories.
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Skip files and blobs larger than this many bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub(crate) fn parse_severity(s: &str) -> Result<Severity, String> {
    match s {
        "low" => Ok(Severity::Low),
        "medium" => Ok(Severity::Medium),
        "high" => Ok(Severity::High),
        other => Err(format!(
            "unknown severity {other:?}; use low, medium or high"
        )),
    }
}

/// Progress line on stderr, at most every 200 ms, only on a terminal.
struct TtyProgress {
    last: Mutex<Instant>,
    label: &'static str,
}

impl Progress for TtyProgress {
    fn update(&self, files: u64, bytes: u64) {
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() < Duration::from_millis(200) {
            return;
        }
        *last = Instant::now();
        #[allow(clippy::cast_precision_loss, reason = "display only")]
        let mb = bytes as f64 / 1e6;
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2Kkeyless scan: {files} {} scanned, {mb:.1} MB",
            self.label
        );
        let _ = e.flush();
    }
}

/// A start instant far enough in the past that the first update is shown at once.
fn started() -> Instant {
    Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now)
}

fn clear_progress(shown: bool) {
    if shown {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K");
        let _ = e.flush();
    }
}

pub(crate) fn load_baseline(path: Option<&PathBuf>) -> anyhow::Result<Option<Baseline>> {
    let Some(p) = path else { return Ok(None) };
    let meta =
        std::fs::metadata(p).with_context(|| format!("cannot read baseline {}", p.display()))?;
    if meta.len() > keyless_scan::baseline::MAX_BASELINE_BYTES as u64 {
        anyhow::bail!(
            "baseline {} is larger than {} bytes",
            p.display(),
            keyless_scan::baseline::MAX_BASELINE_BYTES
        );
    }
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read baseline {}", p.display()))?;
    Ok(Some(Baseline::parse(&p.display().to_string(), &text)?))
}

/// Runs `keyless scan`.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let baseline = load_baseline(args.baseline.as_ref())?;
    let mut cfg = ScanConfig {
        max_file_size: args.max_file_size,
        threads: args.threads,
        ..ScanConfig::default()
    };
    if args.no_default_excludes {
        cfg.exclude_dirs.clear();
    }
    cfg.exclude_dirs.extend(args.exclude_dirs.iter().cloned());
    cfg.exclude_globs.clone_from(&args.excludes);
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };

    let tty = std::io::stderr().is_terminal();
    let progress = TtyProgress {
        last: Mutex::new(started()),
        label: "files",
    };
    let p: Option<&dyn Progress> = if tty { Some(&progress) } else { None };
    let mut findings = Vec::new();
    let mut stats = ScanStats::default();
    if !args.git {
        // One root at a time, so that SARIF can name each finding from the working directory.
        for root in &paths {
            let mut out = keyless_scan::scan::scan_paths(std::slice::from_ref(root), &cfg, p)?;
            stats = merge(&stats, &out.stats);
            // Baselines hold the paths as JSON writes them: filter before SARIF renames.
            if let Some(b) = &baseline {
                b.filter(&mut out.findings);
            }
            let root_is_dir = root.is_dir();
            findings.extend(out.findings.into_iter().map(|mut f| {
                if args.format == Format::Sarif {
                    f.path = keyless_scan::report::path_from_cwd(root, root_is_dir, &f.path);
                }
                f
            }));
        }
    } else {
        let gp = TtyProgress {
            last: Mutex::new(started()),
            label: "blobs",
        };
        let gp_ref: Option<&dyn Progress> = if tty { Some(&gp) } else { None };
        for repo in &paths {
            // History paths start at the repository's top level: so do the working tree's,
            // or a key both committed and still on disk is reported twice.
            let prefix = keyless_scan::git::path_in_repo(repo)?;
            let w = keyless_scan::scan::scan_paths(std::slice::from_ref(repo), &cfg, p)?;
            stats = merge(&stats, &w.stats);
            findings.extend(w.findings.into_iter().map(|mut f| {
                f.path = format!("{prefix}{}", f.path);
                f
            }));
            let g = keyless_scan::git::scan_git(repo, &cfg, gp_ref)?;
            // A secret still in the working tree and in history is reported once, with its commits.
            let in_history: std::collections::HashSet<(&str, &str, usize)> = g
                .findings
                .iter()
                .map(|h| (h.fingerprint.as_str(), h.path.as_str(), h.line))
                .collect();
            findings.retain(|f| {
                !in_history.contains(&(f.fingerprint.as_str(), f.path.as_str(), f.line))
            });
            findings.extend(g.findings);
            stats = merge(&stats, &g.stats);
        }
    }
    clear_progress(tty);
    if stats.findings_not_listed > 0 {
        eprintln!(
            "keyless scan: {} more finding(s) not listed: a file or blob lists its first {} (stats.findings_not_listed counts the rest); treat such a file as a whole",
            stats.findings_not_listed,
            keyless_scan::scan::MAX_FINDINGS_PER_FILE
        );
    }
    findings.retain(|f| f.severity >= args.min_severity);
    if let Some(b) = &baseline {
        b.filter(&mut findings);
    }
    sort_findings(&mut findings);
    emit(args.format, "scan", &findings, Some(&stats))
}

fn merge(a: &ScanStats, b: &ScanStats) -> ScanStats {
    ScanStats {
        files: a.files + b.files,
        bytes: a.bytes + b.bytes,
        skipped_binary: a.skipped_binary + b.skipped_binary,
        skipped_large: a.skipped_large + b.skipped_large,
        commits: a.commits + b.commits,
        findings_not_listed: a.findings_not_listed + b.findings_not_listed,
    }
}

pub(crate) fn emit(
    format: Format,
    command: &str,
    findings: &[Finding],
    stats: Option<&ScanStats>,
) -> anyhow::Result<ExitCode> {
    let text = render(format, command, findings, stats);
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .context("cannot write the report")?;
    o.flush().context("cannot write the report")?;
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
