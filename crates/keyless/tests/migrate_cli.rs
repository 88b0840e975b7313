//! `keyless migrate github-actions` end to end: rewrite in place, outputs, idempotence, lint clean.

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

const WF: &str = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    environment: prod\n    steps:\n      # creds\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.A }}\n          aws-secret-access-key: ${{ secrets.B }}\n          aws-region: us-east-1\n";

#[test]
fn migrates_in_place_and_twice_is_a_no_op() {
    let dir = TempDir::new("migrate1");
    let d = dir.path();
    std::fs::create_dir_all(d.join(".github/workflows")).unwrap();
    let wf = d.join(".github/workflows/deploy.yml");
    std::fs::write(&wf, WF).unwrap();
    let args = [
        "migrate",
        "github-actions",
        ".github/workflows/deploy.yml",
        "--role-arn",
        "arn:aws:iam::123456789012:role/deploy",
        "--repository",
        "acme/app",
        "--environment",
        "prod",
    ];
    let (code, _, err) = keyless(&args, d);
    assert_eq!(code, 0, "{err}");
    let once = std::fs::read_to_string(&wf).unwrap();
    assert!(once.contains("role-to-assume: arn:aws:iam::123456789012:role/deploy"));
    assert!(once.contains("      # creds\n"));
    let policy = std::fs::read_to_string(d.join("deploy.trust-policy.json")).unwrap();
    assert!(policy.contains("repo:acme/app:environment:prod"));
    assert!(
        std::fs::read_to_string(d.join("deploy.keyless.toml"))
            .unwrap()
            .contains("[[roles]]")
    );
    let (code, out, _) = keyless(&["lint", "."], d);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = keyless(&args, d);
    assert_eq!(code, 0);
    assert!(err.contains("unchanged"), "{err}");
    assert_eq!(std::fs::read_to_string(&wf).unwrap(), once);
    let (code, _, err) = keyless(
        &[
            "migrate",
            "github-actions",
            ".github/workflows/deploy.yml",
            "--role-arn",
            "nope",
            "--repository",
            "a/b",
        ],
        d,
    );
    assert_eq!(code, 2);
    assert!(err.contains("invalid --role-arn \"nope\""), "{err}");
}
