//! Scanning files on disk and git history (I/O lives here and in [`crate::git`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ignore::{WalkBuilder, WalkState};
use serde::Serialize;

use crate::detect::scan_text_limited;
use crate::finding::Finding;

/// Errors of `scan`.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A path given on the command line does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `git` failed or is not installed.
    #[error("git failed: {0}; is {1} a git repository and is `git` on PATH?")]
    Git(String, String),
    /// Blobs of the history are not in the repository (a partial clone): the scan would be
    /// incomplete, and keyless does not fetch them.
    #[error(
        "{repo}: {count} blob(s) of its history are not in the object store (a partial clone, made with --filter?); keyless scans offline and does not fetch them: scan a full clone (git clone without --filter)"
    )]
    MissingObjects {
        /// The repository.
        repo: String,
        /// How many blobs are missing.
        count: u64,
    },
    /// A shallow clone: commits before its cut-off are not in the repository.
    #[error(
        "{repo}: the repository is a shallow clone, so older commits are not in it; fetch the whole history (git fetch --unshallow, or fetch-depth: 0 with actions/checkout) and scan again"
    )]
    Shallow {
        /// The repository.
        repo: String,
    },
    /// A grafts file rewrites which commits are parents of which, and can hide history.
    #[error(
        "{repo}: {grafts} rewrites the parents of commits and can hide history from the scan; remove it (git replace --convert-graft-file turns it into replace refs, which the scan ignores) and scan again"
    )]
    Grafts {
        /// The repository.
        repo: String,
        /// The grafts file.
        grafts: String,
    },
    /// Output of git could not be understood.
    #[error("unexpected output from git: {0}")]
    GitProtocol(String),
    /// Baseline file is not a keyless JSON report.
    #[error("baseline {path}: {reason}; create one with `keyless scan --format json > {path}`")]
    Baseline {
        /// The baseline path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A configured glob is invalid.
    #[error("invalid exclude pattern {0:?}: {1}")]
    Pattern(String, String),
}

/// What to scan and what to skip.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Directory names never entered (vendored code, build output, VCS metadata).
    pub exclude_dirs: Vec<String>,
    /// Extra gitignore-style globs to skip.
    pub exclude_globs: Vec<String>,
    /// Files (and git blobs) larger than this are skipped.
    pub max_file_size: u64,
    /// Worker threads (0 = number of CPUs).
    pub threads: usize,
}

/// Directory names skipped by default.
pub const DEFAULT_EXCLUDE_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "vendor",
    "third_party",
    "third-party",
    ".venv",
    "venv",
    "__pycache__",
    "target",
    ".terraform",
    "bower_components",
    ".tox",
    ".mypy_cache",
    ".cache",
];

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            exclude_dirs: DEFAULT_EXCLUDE_DIRS
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            exclude_globs: Vec::new(),
            max_file_size: 32 * 1024 * 1024,
            threads: 0,
        }
    }
}

impl ScanConfig {
    pub(crate) fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }
    }
}

/// Counters of a scan.
#[derive(Debug, Default, Serialize, Clone)]
pub struct ScanStats {
    /// Files or blobs scanned.
    pub files: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Binary files skipped.
    pub skipped_binary: u64,
    /// Files skipped for size.
    pub skipped_large: u64,
    /// Commits walked (git mode).
    pub commits: u64,
    /// Findings past [`MAX_FINDINGS_PER_FILE`] in one file or blob, counted but not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub findings_not_listed: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Findings listed for one file or blob; more are counted in
/// [`ScanStats::findings_not_listed`]. Each costs kilobytes in memory and in the report, and a
/// file holding more keys than this is a dump to treat as a whole.
pub const MAX_FINDINGS_PER_FILE: usize = 10_000;

/// Receives progress updates; called from worker threads.
pub trait Progress: Sync {
    /// `files` and `bytes` processed so far.
    fn update(&self, files: u64, bytes: u64);
}

/// Result of a scan.
#[derive(Debug, Default)]
pub struct ScanOutput {
    /// Findings, sorted by path, line, column.
    pub findings: Vec<Finding>,
    /// Counters.
    pub stats: ScanStats,
}

/// True when the buffer looks binary (a NUL byte in its first 8000 bytes, as git decides).
#[must_use]
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8000)]).is_some()
}

/// Byte order of a UTF-16 text: from its BOM, or, without one, from NULs in every other byte
/// of the first 8000 (ASCII text in UTF-16 is half NULs; binary data is not so regular).
fn utf16_order(data: &[u8]) -> Option<bool> {
    match data {
        [0xFF, 0xFE, ..] => return Some(true),
        [0xFE, 0xFF, ..] => return Some(false),
        _ => {}
    }
    let head = &data[..data.len().min(8000) & !1];
    if head.len() < 16 {
        return None;
    }
    let pairs = head.len() / 2;
    let (mut low_nul, mut high_nul) = (0usize, 0usize);
    for p in head.chunks_exact(2) {
        low_nul += usize::from(p[0] == 0);
        high_nul += usize::from(p[1] == 0);
    }
    // Little-endian: every second byte NUL, the first bytes (almost) never.
    if high_nul * 10 >= pairs * 9 && low_nul * 50 <= pairs {
        Some(true)
    } else if low_nul * 10 >= pairs * 9 && high_nul * 50 <= pairs {
        Some(false)
    } else {
        None
    }
}

/// True when `data` is skipped as binary: a NUL in its first 8000 bytes and not UTF-16 text.
#[must_use]
pub fn skipped_as_binary(data: &[u8]) -> bool {
    is_binary(data) && utf16_order(data).is_none()
}

/// The text to scan in a file or blob: UTF-16 (PowerShell's default encoding) converted to
/// UTF-8, other text as is, `None` for binary. Line numbers and character columns are the
/// same in the converted text.
#[must_use]
pub fn text_of(data: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if let Some(little) = utf16_order(data) {
        let body = if matches!(data, [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..]) {
            &data[2..]
        } else {
            data
        };
        let units = body.chunks_exact(2).map(|p| {
            if little {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        });
        let text: String = char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        return Some(std::borrow::Cow::Owned(text.into_bytes()));
    }
    if is_binary(data) {
        None
    } else {
        Some(std::borrow::Cow::Borrowed(data))
    }
}

pub(crate) struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub binary: AtomicU64,
    pub large: AtomicU64,
    pub not_listed: AtomicU64,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            binary: AtomicU64::new(0),
            large: AtomicU64::new(0),
            not_listed: AtomicU64::new(0),
        }
    }
    pub(crate) fn add(&self, n: u64, progress: Option<&dyn Progress>) {
        let f = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        let b = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(p) = progress {
            p.update(f, b);
        }
    }
    pub(crate) fn stats(&self) -> ScanStats {
        ScanStats {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            skipped_binary: self.binary.load(Ordering::Relaxed),
            skipped_large: self.large.load(Ordering::Relaxed),
            commits: 0,
            findings_not_listed: self.not_listed.load(Ordering::Relaxed),
        }
    }
}

fn display_path(root: &Path, p: &Path, root_is_dir: bool) -> String {
    let rel = if root_is_dir {
        p.strip_prefix(root).unwrap_or(p)
    } else {
        p
    };
    let s = rel.to_string_lossy().replace('\\', "/");
    if s.is_empty() {
        p.to_string_lossy().into_owned()
    } else {
        s
    }
}

/// The `--exclude` globs as ignore overrides rooted at `root`.
pub(crate) fn exclude_overrides(
    root: &Path,
    cfg: &ScanConfig,
) -> Result<ignore::overrides::Override, ScanError> {
    let mut ob = ignore::overrides::OverrideBuilder::new(root);
    for g in &cfg.exclude_globs {
        ob.add(&format!("!{g}"))
            .map_err(|e| ScanError::Pattern(g.clone(), e.to_string()))?;
    }
    ob.build()
        .map_err(|e| ScanError::Pattern(String::new(), e.to_string()))
}

/// Whether a path relative to the scanned root is skipped by the configured rules: a
/// directory on it is an excluded name, or it or one of its directories matches an
/// `--exclude` glob. The walker applies the same rules while it walks; git history paths are
/// checked with this.
pub(crate) fn is_excluded(
    rel: &str,
    cfg: &ScanConfig,
    globs: Option<&ignore::overrides::Override>,
) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let (dirs, _) = parts.split_at(parts.len().saturating_sub(1));
    if dirs.iter().any(|d| cfg.exclude_dirs.iter().any(|x| x == d)) {
        return true;
    }
    let Some(ov) = globs else { return false };
    let mut prefix = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            prefix.push('/');
        }
        prefix.push_str(part);
        let is_dir = i + 1 < parts.len();
        if ov.matched(Path::new(&prefix), is_dir).is_ignore() {
            return true;
        }
    }
    false
}

/// Builds the walker for `root` with the configured skip rules. `.gitignore` is *not* honoured:
/// ignored files such as `.env` are exactly where keys hide.
pub(crate) fn walker(root: &Path, cfg: &ScanConfig) -> Result<WalkBuilder, ScanError> {
    let mut b = WalkBuilder::new(root);
    b.hidden(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .ignore(false)
        .parents(false);
    b.threads(cfg.threads());
    // No `max_filesize` here: the walker would skip big files silently; `read_bounded` skips
    // them and they are counted.
    if !cfg.exclude_globs.is_empty() {
        b.overrides(exclude_overrides(root, cfg)?);
    }
    let dirs = cfg.exclude_dirs.clone();
    b.filter_entry(move |e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        !(is_dir && e.depth() > 0 && dirs.iter().any(|d| e.file_name() == d.as_str()))
    });
    Ok(b)
}

/// Scans files and directories. Paths in findings are relative to the directory given.
///
/// # Errors
/// [`ScanError::Io`] when a given path does not exist; unreadable files inside a tree are skipped.
pub fn scan_paths(
    paths: &[PathBuf],
    cfg: &ScanConfig,
    progress: Option<&dyn Progress>,
) -> Result<ScanOutput, ScanError> {
    let findings = Mutex::new(Vec::new());
    let counters = Counters::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|e| ScanError::Io {
            path: root.display().to_string(),
            source: e,
        })?;
        let root_is_dir = meta.is_dir();
        let walk = walker(root, cfg)?.build_parallel();
        walk.run(|| {
            Box::new(|entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return WalkState::Continue;
                }
                let data = match read_bounded(entry.path(), cfg.max_file_size) {
                    Ok(Some(d)) => d,
                    Ok(None) => {
                        counters.large.fetch_add(1, Ordering::Relaxed);
                        return WalkState::Continue;
                    }
                    Err(_) => return WalkState::Continue,
                };
                let Some(text) = text_of(&data) else {
                    counters.binary.fetch_add(1, Ordering::Relaxed);
                    return WalkState::Continue;
                };
                counters.add(data.len() as u64, progress);
                let name = display_path(root, entry.path(), root_is_dir);
                let (found, not_listed) = scan_text_limited(&name, &text, MAX_FINDINGS_PER_FILE);
                counters
                    .not_listed
                    .fetch_add(not_listed as u64, Ordering::Relaxed);
                if !found.is_empty()
                    && let Ok(mut f) = findings.lock()
                {
                    f.extend(found);
                }
                WalkState::Continue
            })
        });
    }
    let mut findings = findings.into_inner().unwrap_or_default();
    sort_findings(&mut findings);
    Ok(ScanOutput {
        findings,
        stats: counters.stats(),
    })
}

/// Reads a file of at most `max` bytes; `Ok(None)` when it is larger. Never reads more than
/// `max + 1` bytes, whatever the size says (a file named on the command line, or one growing
/// while it is read, was read whole into memory before the size check).
///
/// # Errors
/// The I/O error of opening or reading the file.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Ok(None);
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(max.saturating_add(1)).read_to_end(&mut data)?;
    Ok((data.len() as u64 <= max).then_some(data))
}

/// Sorts findings by path, line, column, rule.
pub fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule))
    });
}
