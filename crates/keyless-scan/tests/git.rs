//! Git history scanning on a repository built by the test: deleted files, other branches.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed step is a test failure"
)]

use std::path::Path;
use std::process::Command;

use keyless_scan::ScanConfig;
use keyless_scan::git::scan_git;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const SECRET: &str = "Zk3Rq9vB8sT2pL5wX1yN7mC4hJ6gF0dA/E+uKiOo";

#[test]
fn finds_deleted_and_branch_only_keys_with_commits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("README.md"), "hello\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    std::fs::write(
        d.join(".env"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "add env"]);
    let added = git(d, &["rev-parse", "HEAD"]);
    git(d, &["rm", "-q", ".env"]);
    git(d, &["commit", "-q", "-m", "remove env"]);
    git(d, &["checkout", "-q", "-b", "feature"]);
    std::fs::create_dir_all(d.join("cfg")).unwrap();
    std::fs::write(d.join("cfg/app.ini"), "key = AKIAY34FZKBOKMUTVV7B\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "feature key"]);
    let feature = git(d, &["rev-parse", "HEAD"]);
    git(d, &["checkout", "-q", "main"]);

    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    assert_eq!(out.stats.commits, 4);
    let env = out
        .findings
        .iter()
        .find(|f| f.path == ".env")
        .expect("deleted .env found");
    assert_eq!(env.rule, "aws-access-key");
    assert_eq!(env.commit.as_deref(), Some(added.as_str()));
    assert_eq!(env.commits, vec![added.clone()]);
    let br = out
        .findings
        .iter()
        .find(|f| f.path == "cfg/app.ini")
        .expect("branch-only key found");
    assert_eq!(br.access_key_id.as_deref(), Some("AKIAY34FZKBOKMUTVV7B"));
    assert_eq!(br.commit.as_deref(), Some(feature.as_str()));
    assert_eq!(out.findings.len(), 2, "{:?}", out.findings);
}

#[test]
fn not_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = scan_git(dir.path(), &ScanConfig::default(), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("git failed: "), "{msg}");
    assert!(msg.contains("is `git` on PATH?"), "{msg}");
}

#[test]
fn empty_repository_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let out = scan_git(dir.path(), &ScanConfig::default(), None).unwrap();
    assert!(out.findings.is_empty());
}

#[test]
fn files_scan_skips_binaries_and_vendored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("node_modules/pkg")).unwrap();
    std::fs::write(d.join("node_modules/pkg/index.js"), "AKIAY34FZKBOKMUTVV7A").unwrap();
    std::fs::write(d.join("blob.bin"), b"\0\0AKIAY34FZKBOKMUTVV7A").unwrap();
    std::fs::write(d.join("ok.txt"), "AKIAY34FZKBOKMUTVV7C").unwrap();
    let out =
        keyless_scan::scan::scan_paths(&[d.to_path_buf()], &ScanConfig::default(), None).unwrap();
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].path, "ok.txt");
    assert_eq!(out.stats.skipped_binary, 1);
    let mut cfg = ScanConfig::default();
    cfg.exclude_dirs.clear();
    cfg.exclude_globs = vec!["*.txt".into()];
    let out = keyless_scan::scan::scan_paths(&[d.to_path_buf()], &cfg, None).unwrap();
    assert_eq!(
        out.findings
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        vec!["node_modules/pkg/index.js"]
    );
    let missing = keyless_scan::scan::scan_paths(&[d.join("nope")], &ScanConfig::default(), None)
        .unwrap_err();
    assert!(missing.to_string().starts_with("cannot read "), "{missing}");
}

/// A marker script: when run, it creates `ran` next to itself. A hostile repository's config
/// names it; the scan must never run it.
#[cfg(unix)]
fn marker_program(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = d.join("evil.sh");
    let ran = d.join("ran");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho ran >> '{}'\nexit 1\n", ran.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, ran)
}

#[cfg(unix)]
#[test]
fn repository_config_cannot_run_gpg_program() {
    let tools = tempfile::tempdir().unwrap();
    let (script, ran) = marker_program(tools.path());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("a.env"), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    // A commit with a signature header, so `git log` with log.showSignature verifies it.
    let tree = git(d, &["rev-parse", "HEAD^{tree}"]);
    let parent = git(d, &["rev-parse", "HEAD"]);
    let body = format!(
        "tree {tree}\nparent {parent}\nauthor a <a@b> 1700000000 +0000\ncommitter a <a@b> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n AAAA\n -----END PGP SIGNATURE-----\n\nsigned\n"
    );
    let body_file = tools.path().join("commit");
    std::fs::write(&body_file, body).unwrap();
    let signed = git(
        d,
        &[
            "hash-object",
            "-t",
            "commit",
            "-w",
            body_file.to_str().unwrap(),
        ],
    );
    git(d, &["update-ref", "refs/heads/signed", &signed]);
    git(d, &["config", "log.showSignature", "true"]);
    git(d, &["config", "gpg.program", script.to_str().unwrap()]);

    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    assert!(!ran.exists(), "the scan ran the repository's gpg.program");
}

#[cfg(unix)]
#[test]
fn repository_config_cannot_trigger_a_lazy_fetch() {
    let tools = tempfile::tempdir().unwrap();
    let (script, ran) = marker_program(tools.path());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("a.env"), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    std::fs::write(
        d.join("gone.txt"),
        "this blob is removed from the object store\n",
    )
    .unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    // Make it look like a partial clone whose promisor remote is reached over ssh: a missing
    // blob then makes git fetch it, which runs core.sshCommand.
    let gone = git(d, &["rev-parse", "HEAD:gone.txt"]);
    std::fs::remove_file(d.join(".git/objects").join(&gone[..2]).join(&gone[2..])).unwrap();
    for (k, v) in [
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "origin"),
        ("remote.origin.url", "ssh://example.invalid/x.git"),
        ("remote.origin.promisor", "true"),
        ("core.sshCommand", script.to_str().unwrap()),
    ] {
        git(d, &["config", k, v]);
    }

    let err = scan_git(d, &ScanConfig::default(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 blob(s) of its history are not in the object store"),
        "{err}"
    );
    assert!(
        !ran.exists(),
        "the scan ran the repository's core.sshCommand"
    );
}

#[test]
fn blobless_partial_clone_is_an_error_not_a_clean_scan() {
    // `git clone --filter=blob:none` (CI checkouts offer it) has no blobs of older commits.
    // keyless does not fetch them, so it must not call the history clean.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    git(&src, &["config", "uploadpack.allowFilter", "true"]);
    std::fs::write(
        src.join(".env"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "key"]);
    git(&src, &["rm", "-q", ".env"]);
    std::fs::write(src.join("README.md"), "hi\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "no key"]);
    let url = format!("file://{}", src.display());
    let dst = dir.path().join("dst");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            &url,
            dst.to_str().unwrap(),
        ],
    );

    let err = scan_git(&dst, &ScanConfig::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: 1 blob(s) of its history are not in the object store (a partial clone, made with --filter?); keyless scans offline and does not fetch them: scan a full clone (git clone without --filter)",
            dst.display()
        )
    );
}

#[test]
fn key_written_in_a_merge_resolution_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("f.txt"), "base\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    git(d, &["checkout", "-q", "-b", "side"]);
    std::fs::write(d.join("f.txt"), "side\n").unwrap();
    git(d, &["commit", "-q", "-am", "side"]);
    git(d, &["checkout", "-q", "main"]);
    std::fs::write(d.join("f.txt"), "main\n").unwrap();
    git(d, &["commit", "-q", "-am", "main"]);
    // Merge without committing, resolve the file with a key neither parent has, commit.
    let _ = Command::new("git")
        .arg("-C")
        .arg(d)
        .args(["merge", "-q", "--no-commit", "side"])
        .output()
        .unwrap();
    std::fs::write(
        d.join("f.txt"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    git(d, &["add", "f.txt"]);
    git(d, &["commit", "-q", "-m", "merge side"]);
    let merge = git(d, &["rev-parse", "HEAD"]);
    std::fs::write(d.join("f.txt"), "clean\n").unwrap();
    git(d, &["commit", "-q", "-am", "remove the key"]);

    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    let f = out
        .findings
        .iter()
        .find(|f| f.path == "f.txt")
        .expect("key from the merge resolution found");
    assert_eq!(f.rule, "aws-access-key");
    assert_eq!(f.commits, vec![merge]);
}

#[cfg(unix)]
#[test]
fn non_utf8_path_in_history_is_scanned() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    // A Latin-1 file name (not UTF-8), as old Windows or macOS tools leave behind.
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.env");
    std::fs::write(d.join(name), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    std::fs::write(
        d.join("plain.env"),
        "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\n",
    )
    .unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);

    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    let paths: Vec<&str> = out.findings.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["caf\u{FFFD}.env", "plain.env"]);
}

fn utf16le(s: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
    out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn utf16_files_and_blobs_are_scanned() {
    // PowerShell 5 writes UTF-16LE with a BOM (`echo … > .env`, `Out-File`): a NUL in every
    // other byte made these files "binary" and they were skipped.
    let text = format!(
        "[default]\r\naws_access_key_id = AKIAY34FZKBOKMUTVV7A\r\naws_secret_access_key = {SECRET}\r\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("creds-bom.txt"), utf16le(&text, true)).unwrap();
    std::fs::write(
        d.join("nobom.env"),
        utf16le("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7B\r\n", false),
    )
    .unwrap();
    let mut be = vec![0xFE, 0xFF];
    be.extend(
        "x = AKIAY34FZKBOKMUTVV7C\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes),
    );
    std::fs::write(d.join("be.txt"), be).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "utf16"]);

    let files =
        keyless_scan::scan::scan_paths(&[d.to_path_buf()], &ScanConfig::default(), None).unwrap();
    let history = scan_git(d, &ScanConfig::default(), None).unwrap();
    for out in [files, history] {
        let got: Vec<(&str, &str, usize, usize)> = out
            .findings
            .iter()
            .map(|f| (f.path.as_str(), f.rule.as_str(), f.line, f.column))
            .collect();
        assert_eq!(
            got,
            vec![
                ("be.txt", "aws-access-key-id", 1, 5),
                ("creds-bom.txt", "aws-credentials-file", 2, 21),
                ("nobom.env", "aws-access-key-id", 1, 19),
            ]
        );
        assert_eq!(out.stats.skipped_binary, 0);
    }
}

#[test]
fn key_only_in_a_stash_is_found() {
    // `git stash` of an unstaged change: the key is only in the stash's WIP commit, a merge
    // of HEAD and the index commit, whose blob differs from both parents.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("f.txt"), "hi\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    std::fs::write(
        d.join("f.txt"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    git(d, &["stash", "-q"]);
    let stash = git(d, &["rev-parse", "refs/stash"]);
    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    let got: Vec<(&str, &str, Vec<String>)> = out
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str(), f.commits.clone()))
        .collect();
    assert_eq!(got, vec![("f.txt", "aws-access-key", vec![stash])]);
}

#[test]
fn replace_refs_cannot_hide_a_commit() {
    // `git replace OLD NEW` makes git show NEW wherever OLD is reachable: the commit that added
    // the key was shown as an empty one and the history scanned clean.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(
        d.join(".env"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "key"]);
    let bad = git(d, &["rev-parse", "HEAD"]);
    git(d, &["rm", "-q", ".env"]);
    std::fs::write(d.join("f"), "ok\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "clean"]);
    let empty_tree = git(d, &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let fake = git(d, &["commit-tree", &empty_tree, "-m", "nothing here"]);
    git(d, &["replace", &bad, &fake]);

    let out = scan_git(d, &ScanConfig::default(), None).unwrap();
    let got: Vec<(&str, Option<&str>)> = out
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.commit.as_deref()))
        .collect();
    assert_eq!(got, vec![(".env", Some(bad.as_str()))]);
}

#[test]
fn shallow_clone_is_an_error_not_a_clean_scan() {
    // actions/checkout fetches one commit by default: the history before it is not there.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join(".env"), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "key"]);
    git(&src, &["rm", "-q", ".env"]);
    std::fs::write(src.join("f"), "ok\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "clean"]);
    let url = format!("file://{}", src.display());
    let dst = dir.path().join("dst");
    git(
        dir.path(),
        &["clone", "-q", "--depth", "1", &url, dst.to_str().unwrap()],
    );

    let err = scan_git(&dst, &ScanConfig::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the repository is a shallow clone, so older commits are not in it; fetch the whole history (git fetch --unshallow, or fetch-depth: 0 with actions/checkout) and scan again",
            dst.display()
        )
    );
}

#[test]
fn grafts_file_is_an_error() {
    // info/grafts can cut a commit off from its parents, hiding everything before it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join(".env"), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "key"]);
    git(d, &["rm", "-q", ".env"]);
    git(d, &["commit", "-q", "-m", "clean"]);
    let head = git(d, &["rev-parse", "HEAD"]);
    std::fs::create_dir_all(d.join(".git/info")).unwrap();
    std::fs::write(d.join(".git/info/grafts"), format!("{head}\n")).unwrap();
    let err = scan_git(d, &ScanConfig::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: {} rewrites the parents of commits and can hide history from the scan; remove it (git replace --convert-graft-file turns it into replace refs, which the scan ignores) and scan again",
            d.display(),
            d.join(".git/info/grafts").display()
        )
    );
}

#[test]
fn history_honours_the_skip_rules() {
    // Vendored directories and --exclude globs are skipped in the working tree; history
    // reported the same files anyway (committed node_modules with test keys, fixtures).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    for p in [
        "node_modules/pkg/test.js",
        "tests/fixtures/keys.txt",
        "app/.env",
    ] {
        std::fs::create_dir_all(d.join(p).parent().unwrap()).unwrap();
        std::fs::write(d.join(p), "AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n").unwrap();
    }
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "all"]);
    let cfg = ScanConfig {
        exclude_globs: vec!["tests/fixtures/**".into()],
        ..ScanConfig::default()
    };
    let paths = |cfg: &ScanConfig| -> Vec<String> {
        scan_git(d, cfg, None)
            .unwrap()
            .findings
            .into_iter()
            .map(|f| f.path)
            .collect()
    };
    assert_eq!(paths(&cfg), vec!["app/.env"]);
    let mut all = ScanConfig::default();
    all.exclude_dirs.clear();
    assert_eq!(
        paths(&all),
        vec![
            "app/.env",
            "node_modules/pkg/test.js",
            "tests/fixtures/keys.txt"
        ]
    );
}

#[test]
fn findings_per_file_are_capped_and_the_rest_counted() {
    // A file of key ids (a dump, or a hostile file) made one finding, about 2.5 KB in memory
    // and more in the report, per id: 2 MB of ids took 240 MB (text) to 800 MB (SARIF).
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut text = String::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let n = keyless_scan::scan::MAX_FINDINGS_PER_FILE + 2_500;
    for _ in 0..n {
        text.push_str("id AKIA");
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push(char::from(ALPHA[(x % 32) as usize]));
        }
        text.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("ids.txt"), &text).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "ids"]);
    let files =
        keyless_scan::scan::scan_paths(&[d.to_path_buf()], &ScanConfig::default(), None).unwrap();
    let history = scan_git(d, &ScanConfig::default(), None).unwrap();
    for out in [files, history] {
        assert_eq!(
            out.findings.len(),
            keyless_scan::scan::MAX_FINDINGS_PER_FILE
        );
        assert_eq!(out.stats.findings_not_listed, 2_500);
        // The first ones, in file order.
        assert_eq!(out.findings[0].line, 1);
    }
}
