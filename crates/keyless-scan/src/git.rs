//! Git history scanning through the `git` CLI.
//!
//! 1. `git log --all --raw -c --no-renames --no-abbrev` lists, for every commit on every ref,
//!    the blobs it wrote and their paths: that maps each blob to the commits and paths where it
//!    appeared (deleted files included: the commit that added them is still in history). For a
//!    merge, `-c` lists the blobs that differ from every parent, such as a conflict resolution.
//! 2. `git cat-file --batch` streams each distinct blob once; worker threads scan them.
//! 3. Findings in a blob are reported once per path, with every commit that wrote it.
//!
//! The repository is untrusted: the `git` helper below says what its config may not run.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};

use crate::detect::scan_text_limited;
use crate::finding::Finding;
use crate::scan::{
    Counters, MAX_FINDINGS_PER_FILE, Progress, ScanConfig, ScanError, ScanOutput,
    exclude_overrides, is_excluded, skipped_as_binary, sort_findings, text_of,
};

/// `git -C repo` hardened against the repository it reads: a scanned repository is untrusted,
/// and its `.git/config` may name programs git would run. Signature verification
/// (`log.showSignature` + `gpg.program`), lazy fetches of missing objects in a "partial clone"
/// (`core.sshCommand`, remote helpers), external diff and textconv drivers and fsmonitor are
/// all switched off; no transport is allowed at all.
fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    // Replace refs (`git replace`) would show other commits in place of the real ones.
    c.arg("--no-replace-objects").arg("-C").arg(repo);
    for setting in [
        "core.quotepath=false",
        "log.showSignature=false",
        "gpg.program=false",
        "gpg.ssh.program=false",
        "gpg.x509.program=false",
        "protocol.allow=never",
        "core.sshCommand=false",
        "core.fsmonitor=false",
        "diff.external=",
        "core.pager=cat",
    ] {
        c.arg("-c").arg(setting);
    }
    c.env("GIT_NO_LAZY_FETCH", "1")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env_remove("GIT_SSH")
        .env_remove("GIT_SSH_COMMAND")
        .env_remove("GIT_EXTERNAL_DIFF");
    c
}

/// Undoes git's C-style path quoting (`"a\tb\303\251"`): named escapes and octal bytes.
fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_string();
    };
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let Some(&e) = b.get(i + 1) else { break };
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = octal {
            let v = d.iter().fold(0u32, |a, &c| a * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(match e {
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            other => other,
        });
        i += 2;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The result blob's mode and id in a `--raw` line after its leading colons: one colon and
/// `mode mode id id status` for a commit with one parent, N colons and N+1 modes then N+1 ids
/// for a merge's combined diff (`-c`), where the last mode and id are the merge's own.
fn raw_result(colons: usize, meta: &str) -> Option<(&str, &str)> {
    let f: Vec<&str> = meta.split(' ').collect();
    Some((*f.get(colons)?, *f.get(2 * colons + 1)?))
}

/// Bytes of blobs read from git and not yet scanned, at most [`IN_FLIGHT_BYTES`] (or one blob,
/// when a single blob is larger): the reader waits for the scanners instead of queueing blobs
/// without bound in memory.
struct InFlight {
    bytes: Mutex<u64>,
    freed: std::sync::Condvar,
}

/// Memory that blobs waiting to be scanned may take.
pub const IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;

impl InFlight {
    fn acquire(&self, n: u64) {
        let Ok(mut used) = self.bytes.lock() else {
            return;
        };
        while *used > 0 && *used + n > IN_FLIGHT_BYTES {
            match self.freed.wait(used) {
                Ok(u) => used = u,
                Err(_) => return,
            }
        }
        *used += n;
    }
    fn release(&self, n: u64) {
        if let Ok(mut used) = self.bytes.lock() {
            *used = used.saturating_sub(n);
        }
        self.freed.notify_all();
    }
}

/// (path, line, column, rule, fingerprint) of a finding in history.
type GroupKey = (String, usize, usize, String, String);

/// Blob id → list of (commit index, path).
type BlobMap = HashMap<String, Vec<(u32, String)>>;

fn list_blobs(repo: &Path) -> Result<(Vec<String>, BlobMap), ScanError> {
    let repo_s = repo.display().to_string();
    let mut child = git(repo)
        .args([
            "log",
            "--all",
            "--no-show-signature",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--raw",
            "--no-abbrev",
            "--format=%x01%H",
            // Merges too: a blob that differs from every parent (a conflict resolution, an
            // "evil merge") is written by the merge alone.
            "-c",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ScanError::Git(e.to_string(), repo_s.clone()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ScanError::GitProtocol("no stdout".into()))?;
    let mut commits: Vec<String> = Vec::new();
    let mut blobs: BlobMap = HashMap::new();
    let mut reader = BufReader::new(stdout);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| ScanError::GitProtocol(e.to_string()))?;
        if n == 0 {
            break;
        }
        // Paths are bytes (core.quotepath=false leaves non-ASCII unquoted) and need not be
        // UTF-8: shown lossily rather than failing the whole scan.
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches('\n');
        if let Some(h) = line.strip_prefix('\u{1}') {
            commits.push(h.to_string());
        } else if line.starts_with(':') {
            let rest = line.trim_start_matches(':');
            let colons = line.len() - rest.len();
            let Some((meta, path)) = rest.split_once('\t') else {
                continue;
            };
            let Some((mode, sha)) = raw_result(colons, meta) else {
                continue;
            };
            if mode.starts_with("160") || sha.bytes().all(|c| c == b'0') || commits.is_empty() {
                continue;
            }
            let idx = u32::try_from(commits.len() - 1).unwrap_or(u32::MAX);
            blobs
                .entry((*sha).to_string())
                .or_default()
                .push((idx, unquote(path)));
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| ScanError::Git(e.to_string(), repo_s.clone()))?;
    if !status.success() {
        // An empty repository has no HEAD to log: that is a clean scan, not an error.
        if err.contains("does not have any commits") {
            return Ok((commits, blobs));
        }
        return Err(ScanError::Git(err.trim().to_string(), repo_s));
    }
    Ok((commits, blobs))
}

/// Where the directory `dir` is inside its repository (`sub/dir/`, or empty at the top level),
/// so that working-tree paths can be written as history paths are: from the top level.
///
/// # Errors
/// [`ScanError::Git`] when `git` cannot run or `dir` is not in a work tree.
pub fn path_in_repo(dir: &Path) -> Result<String, ScanError> {
    let dir_s = dir.display().to_string();
    let out = git(dir)
        .args(["rev-parse", "--show-prefix"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ScanError::Git(e.to_string(), dir_s.clone()))?;
    if !out.status.success() {
        return Err(ScanError::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
            dir_s,
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches('\n')
        .to_string())
}

/// Refuses a history the scan could not see whole: a shallow clone, or a grafts file.
fn check_history_complete(repo: &Path) -> Result<(), ScanError> {
    let repo_s = repo.display().to_string();
    let out = git(repo)
        .args([
            "rev-parse",
            "--is-shallow-repository",
            "--git-path",
            "info/grafts",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ScanError::Git(e.to_string(), repo_s.clone()))?;
    if !out.status.success() {
        return Err(ScanError::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
            repo_s,
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    if lines.next() == Some("true") {
        return Err(ScanError::Shallow { repo: repo_s });
    }
    if let Some(grafts) = lines.next() {
        // `--git-path` is relative to the directory git ran in unless absolute.
        let p = Path::new(grafts);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            repo.join(p)
        };
        if p.exists() {
            return Err(ScanError::Grafts {
                repo: repo_s,
                grafts: p.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Scans every blob of every commit on every ref of the repository at `repo`.
///
/// # Errors
/// [`ScanError::Git`] when `git` cannot run or `repo` is not a repository;
/// [`ScanError::Shallow`], [`ScanError::Grafts`] and [`ScanError::MissingObjects`] when part
/// of the history is not in the repository.
pub fn scan_git(
    repo: &Path,
    cfg: &ScanConfig,
    progress: Option<&dyn Progress>,
) -> Result<ScanOutput, ScanError> {
    let repo_s = repo.display().to_string();
    check_history_complete(repo)?;
    let (commits, mut blobs) = list_blobs(repo)?;
    // The working tree's skip rules (vendored directories, --exclude globs) apply to history
    // paths too.
    let globs = if cfg.exclude_globs.is_empty() {
        None
    } else {
        Some(exclude_overrides(repo, cfg)?)
    };
    blobs.retain(|_, places| {
        places.retain(|(_, path)| !is_excluded(path, cfg, globs.as_ref()));
        !places.is_empty()
    });
    let mut child = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ScanError::Git(e.to_string(), repo_s.clone()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| ScanError::GitProtocol("no stdin".into()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ScanError::GitProtocol("no stdout".into()))?;
    let ids: Vec<String> = blobs.keys().cloned().collect();
    let counters = Counters::new();
    let results: Mutex<Vec<(String, Vec<Finding>)>> = Mutex::new(Vec::new());
    let (tx, rx) = sync_channel::<(String, Vec<u8>)>(64);
    let in_flight = InFlight {
        bytes: Mutex::new(0),
        freed: std::sync::Condvar::new(),
    };
    let rx = Arc::new(Mutex::new(rx));
    let workers = cfg.threads().max(1);
    let read_result: Result<u64, ScanError> = std::thread::scope(|s| {
        let ids_ref = &ids;
        s.spawn(move || {
            let mut w = std::io::BufWriter::new(&mut stdin);
            for id in ids_ref {
                if writeln!(w, "{id}").is_err() {
                    break;
                }
            }
            let _ = w.flush();
            drop(w);
            drop(stdin);
        });
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            let results = &results;
            let counters = &counters;
            let in_flight = &in_flight;
            s.spawn(move || {
                loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    let Some((id, data)) = next else { break };
                    let len = data.len() as u64;
                    counters.add(len, progress);
                    let found = text_of(&data).map(|t| {
                        let (f, not_listed) = scan_text_limited("", &t, MAX_FINDINGS_PER_FILE);
                        counters
                            .not_listed
                            .fetch_add(not_listed as u64, std::sync::atomic::Ordering::Relaxed);
                        f
                    });
                    drop(data);
                    in_flight.release(len);
                    if let Some(found) = found.filter(|f| !f.is_empty())
                        && let Ok(mut r) = results.lock()
                    {
                        r.push((id, found));
                    }
                }
            });
        }
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut header = String::new();
        let mut missing = 0u64;
        let res = loop {
            header.clear();
            match reader.read_line(&mut header) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(ScanError::GitProtocol(e.to_string())),
            }
            let parts: Vec<&str> = header.trim_end().split(' ').collect();
            if parts.get(1) == Some(&"missing") {
                missing += 1;
                continue;
            }
            let (Some(id), Some(size)) = (
                parts.first(),
                parts.get(2).and_then(|s| s.parse::<u64>().ok()),
            ) else {
                break Err(ScanError::GitProtocol(format!(
                    "bad cat-file header {:?}",
                    header.trim_end()
                )));
            };
            let id = (*id).to_string();
            if size > cfg.max_file_size {
                counters
                    .large
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) =
                    std::io::copy(&mut (&mut reader).take(size + 1), &mut std::io::sink())
                {
                    break Err(ScanError::GitProtocol(e.to_string()));
                }
                continue;
            }
            let Ok(len) = usize::try_from(size) else {
                break Err(ScanError::GitProtocol("blob too large".into()));
            };
            in_flight.acquire(size);
            let mut buf = vec![0u8; len + 1];
            if let Err(e) = reader.read_exact(&mut buf) {
                break Err(ScanError::GitProtocol(e.to_string()));
            }
            buf.truncate(len);
            if skipped_as_binary(&buf) {
                counters
                    .binary
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                in_flight.release(size);
                continue;
            }
            if tx.send((id, buf)).is_err() {
                break Ok(());
            }
        };
        drop(tx);
        res.map(|()| missing)
    });
    let _ = child.wait();
    let missing = read_result?;
    if missing > 0 {
        return Err(ScanError::MissingObjects {
            repo: repo_s,
            count: missing,
        });
    }

    // Expand blob findings to (path) findings with the commits that wrote them.
    let mut grouped: BTreeMap<GroupKey, (Finding, Vec<u32>)> = BTreeMap::new();
    for (id, found) in results.into_inner().unwrap_or_default() {
        let Some(places) = blobs.get(&id) else {
            continue;
        };
        for f in found {
            for (cidx, path) in places {
                let key = (
                    path.clone(),
                    f.line,
                    f.column,
                    f.rule.clone(),
                    f.fingerprint.clone(),
                );
                let e = grouped.entry(key).or_insert_with(|| {
                    let mut g = f.clone();
                    g.path.clone_from(path);
                    (g, Vec::new())
                });
                e.1.push(*cidx);
            }
        }
    }
    let mut findings = Vec::with_capacity(grouped.len());
    for (_, (mut f, mut idx)) in grouped {
        idx.sort_unstable_by(|a, b| b.cmp(a));
        idx.dedup();
        f.commits = idx
            .iter()
            .filter_map(|&i| commits.get(i as usize).cloned())
            .collect();
        f.commit = f.commits.first().cloned();
        findings.push(f);
    }
    sort_findings(&mut findings);
    let mut stats = counters.stats();
    stats.commits = commits.len() as u64;
    Ok(ScanOutput { findings, stats })
}

#[cfg(test)]
mod tests {
    use super::{raw_result, unquote};

    #[test]
    fn unquotes_git_paths() {
        assert_eq!(unquote("plain/path"), "plain/path");
        assert_eq!(unquote("\"a\\tb\\\"c\""), "a\tb\"c");
        assert_eq!(unquote("\"caf\\303\\251\\001\""), "caf\u{e9}\u{1}");
    }

    #[test]
    fn raw_lines_of_commits_and_merges() {
        assert_eq!(
            raw_result(1, "100644 100755 aaaa bbbb M"),
            Some(("100755", "bbbb"))
        );
        assert_eq!(
            raw_result(2, "100644 100644 100644 aaaa bbbb cccc MM"),
            Some(("100644", "cccc"))
        );
        assert_eq!(raw_result(2, "100644 aaaa"), None);
    }
}
