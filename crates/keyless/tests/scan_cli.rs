//! `keyless scan` end to end: exit codes, formats, baseline, git, no progress when piped.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed step is a test failure"
)]

use std::process::Command;

/// A fresh temporary directory (the binary crate has no tempfile dev-dependency).
struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "keyless-cli-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let p =
            std::path::PathBuf::from(p.to_string_lossy().replace([' ', ':', '{', '}', ','], "_"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SECRET: &str = "Zk3Rq9vB8sT2pL5wX1yN7mC4hJ6gF0dA/E+uKiOo";

fn keyless(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn exit_codes_and_json() {
    let dir = TempDir::new("scan1");
    let d = dir.path();
    std::fs::write(d.join("clean.txt"), "nothing here\n").unwrap();
    let (code, out, err) = keyless(&["scan", "clean.txt"], d);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.is_empty(),
        "no progress output when stderr is not a terminal: {err:?}"
    );

    std::fs::write(
        d.join(".env"),
        format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n"),
    )
    .unwrap();
    let (code, out, err) = keyless(&["scan", "--format", "json", "."], d);
    assert_eq!(code, 1);
    assert!(err.is_empty(), "{err}");
    assert!(!out.contains(SECRET));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["rule"], "aws-access-key");
    assert_eq!(f["path"], ".env");
    assert_eq!(f["line"], 1);
    assert_eq!(f["access_key_id"], "AKIAY34FZKBOKMUTVV7A");
    assert_eq!(f["account_id"], "609629065308");
    assert_eq!(f["redacted"], "Zk3R…(40 chars)");

    // Baseline: accepting the report makes the next scan clean.
    std::fs::write(d.join("baseline.json"), &out).unwrap();
    let (code, _, _) = keyless(
        &[
            "scan",
            "--baseline",
            "baseline.json",
            "--exclude",
            "baseline.json",
            ".",
        ],
        d,
    );
    assert_eq!(code, 0);

    let (code, out, _) = keyless(&["scan", "--format", "sarif", ".env"], d);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = TempDir::new("scan2");
    let (code, _, err) = keyless(&["scan", "does-not-exist"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("cannot read does-not-exist"), "{err}");
    let (code, _, err) = keyless(&["scan", "--format", "xml", "."], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("unknown format \"xml\""), "{err}");
    std::fs::write(dir.path().join("b.json"), "{}").unwrap();
    let (code, _, err) = keyless(&["scan", "--baseline", "b.json", "."], dir.path());
    assert_eq!(code, 2);
    assert!(
        err.contains("baseline b.json: no \"findings\" array"),
        "{err}"
    );
    let (code, _, err) = keyless(&["scan", "--git", "."], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("git failed"), "{err}");
}

#[test]
fn git_history_reports_commit() {
    let dir = TempDir::new("scan3");
    let d = dir.path();
    let git = |args: &[&str]| {
        let s = Command::new("git")
            .current_dir(d)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(s.status.success());
        String::from_utf8(s.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q"]);
    std::fs::write(
        d.join("k.txt"),
        format!("aws_access_key_id=AKIAY34FZKBOKMUTVV7A aws_secret_access_key={SECRET}\n"),
    )
    .unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "oops"]);
    let c = git(&["rev-parse", "HEAD"]);
    git(&["rm", "-q", "k.txt"]);
    git(&["commit", "-q", "-m", "fix"]);
    let (code, out, _) = keyless(&["scan", "--git", "--format", "json", "."], d);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"][0]["commit"], c.as_str());
    assert_eq!(v["findings"][0]["path"], "k.txt");
}

#[test]
fn git_scan_of_a_subdirectory_reports_each_key_once_with_its_repository_path() {
    // History paths are relative to the repository's top level; working-tree paths were
    // relative to the directory given, so from a subdirectory the same committed key was
    // reported twice (`.env` and `sub/.env`).
    let dir = TempDir::new("scan-subdir");
    let d = dir.path();
    let git = |args: &[&str]| {
        let s = Command::new("git")
            .current_dir(d)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(s.status.success());
    };
    git(&["init", "-q"]);
    std::fs::create_dir_all(d.join("sub")).unwrap();
    let env = format!("AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY={SECRET}\n");
    std::fs::write(d.join("sub/.env"), &env).unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "key"]);
    // Not committed: found in the working tree only, under its repository path too.
    std::fs::write(d.join("sub/local.env"), env.replace("7A", "7B")).unwrap();
    for (cwd, arg) in [(d.to_path_buf(), "sub"), (d.join("sub"), ".")] {
        let (code, out, err) = keyless(&["scan", "--git", "--format", "json", arg], &cwd);
        assert_eq!(code, 1, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let paths: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec!["sub/.env", "sub/local.env"], "{arg}");
        assert!(v["findings"][0]["commit"].is_string());
    }
}

#[test]
fn git_scan_of_a_file_with_many_keys_is_not_quadratic() {
    // Working-tree findings were matched against history findings pair by pair: 30,000 key
    // ids committed took 4.5 s, 50,000 about 12 s (in one file), and it grew with the square.
    let dir = TempDir::new("scan-dense");
    let d = dir.path();
    let run = |args: &[&str]| {
        let s = Command::new("git")
            .current_dir(d)
            .args(["-c", "user.name=t", "-c", "user.email=t@e.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(s.status.success());
    };
    run(&["init", "-q"]);
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    // Five files of 10,000 ids (the most listed for one file).
    for file in 0..5 {
        let mut text = String::new();
        for _ in 0..10_000 {
            text.push_str("id AKIA");
            for _ in 0..16 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push(char::from(ALPHA[(x % 32) as usize]));
            }
            text.push('\n');
        }
        std::fs::write(d.join(format!("ids{file}.txt")), text).unwrap();
    }
    run(&["add", "."]);
    run(&["commit", "-q", "-m", "ids"]);
    let t = std::time::Instant::now();
    let (code, out, err) = keyless(&["scan", "--git", "--format", "json", "."], d);
    let elapsed = t.elapsed();
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = v["findings"].as_array().unwrap().len();
    assert!(n > 49_900, "{n}");
    assert!(elapsed < std::time::Duration::from_secs(6), "{elapsed:?}");
}

#[test]
fn findings_past_the_per_file_limit_are_counted_and_announced() {
    let dir = TempDir::new("scan-cap");
    let d = dir.path();
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut text = String::new();
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    for _ in 0..10_007 {
        text.push_str("id AKIA");
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push(char::from(ALPHA[(x % 32) as usize]));
        }
        text.push('\n');
    }
    std::fs::write(d.join("ids.txt"), text).unwrap();
    let (code, out, err) = keyless(&["scan", "--format", "json", "."], d);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 10_000);
    assert_eq!(v["stats"]["findings_not_listed"], 7);
    assert_eq!(
        err,
        "keyless scan: 7 more finding(s) not listed: a file or blob lists its first 10000 (stats.findings_not_listed counts the rest); treat such a file as a whole\n"
    );
}
