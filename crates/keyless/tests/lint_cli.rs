//! `keyless lint` end to end.

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
fn flags_workflow_and_credentials_file() {
    let dir = TempDir::new("lint1");
    let d = dir.path();
    std::fs::create_dir_all(d.join(".github/workflows")).unwrap();
    std::fs::create_dir_all(d.join(".aws")).unwrap();
    std::fs::write(d.join(".github/workflows/ci.yml"), "on: push\njobs:\n  a:\n    runs-on: x\n    env:\n      AWS_SECRET_ACCESS_KEY: ${{ secrets.S }}\n    steps:\n      - run: true\n").unwrap();
    std::fs::write(
        d.join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAY34FZKBOKMUTVV7A\n",
    )
    .unwrap();
    let (code, out, _) = keyless(&["lint", "--format", "json", "."], d);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<(String, String, u64)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "aws-config-static-keys".to_string(),
                ".aws/credentials".to_string(),
                2
            ),
            (
                "gha-static-aws-keys".to_string(),
                ".github/workflows/ci.yml".to_string(),
                6
            ),
        ]
    );
    for f in v["findings"].as_array().unwrap() {
        assert!(f["why"].is_string() && f["fix"].is_string());
    }
    let (code, out, _) = keyless(
        &["lint", "--min-severity", "high", "--format", "sarif", "."],
        d,
    );
    assert_eq!(code, 1);
    assert!(out.contains("\"2.1.0\""));
    let (code, _, err) = keyless(&["lint", "missing.yml"], d);
    assert_eq!(code, 2, "{err}");
}
