//! `keyless policy validate` and `keyless policy simulate`, run as the built binary.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn keyless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A per-test scratch directory (the binary crate has no tempfile dev-dependency).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("keyless-policy-cli-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Scratch, name: &str, text: &str) -> PathBuf {
    let p = dir.0.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GH: &str = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

#[test]
fn validate_clean_policy_exits_zero() {
    let d = Scratch::new("1");
    let f = write(
        &d,
        "p.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    );
    let o = keyless(&["policy", "validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no findings"));
}

#[test]
fn validate_error_exits_one_with_location() {
    let d = Scratch::new("2");
    let f = write(
        &d,
        "t.json",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"111122223333\"},\n\"Action\":\"sts:AssumeRole\",\"Resource\":\"*\"}]}",
    );
    let o = keyless(&["policy", "validate", f.to_str().unwrap(), "--type", "trust"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            ":2:27: ERROR ROLE_TRUST_POLICY_SYNTAX_ERROR_RESOURCE at $.Statement[0].Resource"
        ),
        "{out}"
    );
}

#[test]
fn validate_json_output_and_security_warning_exit_zero() {
    let d = Scratch::new("3");
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{GH}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    let f = write(&d, "t.json", &doc);
    let o = keyless(&[
        "policy",
        "validate",
        f.to_str().unwrap(),
        "--type",
        "trust",
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a SECURITY_WARNING is not an ERROR"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f0 = &v[0];
    assert_eq!(f0["severity"], "SECURITY_WARNING");
    assert_eq!(f0["code"], "MISSING_GITHUB_REPO_CONDITION_KEY");
    assert_eq!(f0["path"], "$.Statement[0].Condition");
    assert_eq!(f0["line"], 1);
    assert!(f0["column"].as_u64().unwrap() > 1);
}

#[test]
fn validate_duplicate_key_is_an_error() {
    let d = Scratch::new("4");
    let f = write(
        &d,
        "p.json",
        "{\"Version\":\"2012-10-17\",\n\"Version\":\"2012-10-17\"}",
    );
    let o = keyless(&["policy", "validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(":2:1: ERROR DUPLICATE_KEY at $: duplicate key \"Version\""),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_usage_and_io_errors_exit_two() {
    let o = keyless(&["policy", "validate", "/nonexistent/policy.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot open /nonexistent/policy.json"));
    let o = keyless(&["policy", "validate", "x.json", "--type", "scp"]);
    assert_eq!(o.status.code(), Some(2));
    let o = keyless(&["policy", "validate"]);
    assert_eq!(o.status.code(), Some(2));
    let d = Scratch::new("5");
    let big = write(&d, "big.json", &" ".repeat(1024 * 1024 + 1));
    let o = keyless(&["policy", "validate", big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("larger than 1048576 bytes"));
}

#[test]
fn simulate_shared_vectors_all_match() {
    let cases = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/policy/cases.json"
    );
    let o = keyless(&["policy", "simulate", "--case", cases, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.len(), 30);
    for c in &v {
        assert_eq!(c["matchesExpect"], true, "{c}");
        assert!(c["id"].is_string() && c["decision"].is_string() && c["explanation"].is_string());
    }
}

#[test]
fn simulate_single_case_text_explains_nearest_statement() {
    let d = Scratch::new("6");
    let case = format!(
        r#"{{"id":"gha","action":"sts:AssumeRoleWithWebIdentity","resource":"arn:aws:iam::123456789012:role/gha","principal":"{GH}",
  "context":{{"token.actions.githubusercontent.com:sub":"repo:octo/app:ref:refs/heads/dev"}},
  "resourcePolicy":{{"Version":"2012-10-17","Statement":[{{"Sid":"GitHubMain","Effect":"Allow","Principal":{{"Federated":"{GH}"}},"Action":"sts:AssumeRoleWithWebIdentity",
  "Condition":{{"StringLike":{{"token.actions.githubusercontent.com:sub":"repo:octo/app:ref:refs/heads/main"}}}}}}]}}}}"#
    );
    let f = write(&d, "c.json", &case);
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).trim(),
        "gha: ImplicitlyDenied: no statement allows sts:AssumeRoleWithWebIdentity; the nearest, statement `GitHubMain` of the trust policy, failed on StringLike token.actions.githubusercontent.com:sub"
    );
}

#[test]
fn simulate_malformed_case_reports_location_only() {
    let d = Scratch::new("7");
    let cases = "[{\"id\":\"ok\",\"action\":\"s3:GetObject\",\"resource\":\"*\",\"identity\":[{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}]},\n{\"id\":\"bad\",\"action\":\"s3:GetObject\",\"resource\":\"*\",\"identity\":[{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\n  \"Action\":\"*\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}]}]";
    let f = write(&d, "c.json", cases);
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("ok: Allowed: allowed by statement #0 of the identity policy"));
    assert_eq!(
        lines[1],
        "bad: error: invalid identity policy: duplicate key \"Action\"; each key may appear only once in an object, remove or merge the duplicate (at $[1].identity[0].Statement[0], line 3, column 16)"
    );
    let o = keyless(&[
        "policy",
        "simulate",
        "--case",
        f.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[1]["id"], "bad");
    assert_eq!(v[1]["line"], 3);
    assert_eq!(v[1]["column"], 16);
    assert!(v[1].get("decision").is_none());
}

#[test]
fn simulate_not_json_and_missing_fields() {
    let d = Scratch::new("8");
    let f = write(&d, "c.json", "{\"id\":\"x\",");
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("error:"), "{}", stdout(&o));
    let f = write(&d, "c2.json", r#"{"id":"x","resource":"*"}"#);
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).trim(),
        "x: error: the case has no `action` (at $, line 1, column 1)"
    );
    let f = write(
        &d,
        "c3.json",
        r#"{"id":"x","action":"s3:GetObject","resource":"*","context":{"k:x":5}}"#,
    );
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert!(stdout(&o).contains("x: error: a context value must be a string or an array of strings, found a number (at $.context['k:x']"), "{}", stdout(&o));
}

#[test]
fn simulate_reports_expectation_mismatch() {
    let d = Scratch::new("9");
    let f = write(
        &d,
        "c.json",
        r#"{"id":"m","action":"s3:GetObject","resource":"*","expect":"Allowed"}"#,
    );
    let o = keyless(&["policy", "simulate", "--case", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains(
            "m: ImplicitlyDenied: no statement allows s3:GetObject (MISMATCH: expected Allowed)"
        ),
        "{}",
        stdout(&o)
    );
}
