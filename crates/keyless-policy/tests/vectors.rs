//! Every case of shared/vectors/policy/cases.json, read in place, and our own cases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use keyless_policy::case::parse_cases;

fn run(path: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let cases = parse_cases(&text).unwrap();
    let mut failures = Vec::new();
    for c in &cases {
        let c = c.as_ref().unwrap_or_else(|e| panic!("{e}"));
        let d = c.evaluate();
        let want = c
            .expect
            .unwrap_or_else(|| panic!("case {} has no expect", c.id));
        if d.kind() != want {
            failures.push(format!(
                "{}: got {} want {}: {}",
                c.id,
                d.kind(),
                want,
                d.explanation()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn shared_vectors_pass() {
    let n = run(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/policy/cases.json"
    ));
    assert_eq!(n, 30);
}

#[test]
fn own_cases_pass() {
    let n = run(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases.json"));
    assert!(n >= 60, "only {n} own cases");
}
