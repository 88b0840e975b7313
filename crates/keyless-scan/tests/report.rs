//! Reports and baselines.

use keyless_scan::ScanError;
use keyless_scan::baseline::Baseline;
use keyless_scan::detect::scan_text;
use keyless_scan::report::{Format, render, sarif};

const TEXT: &[u8] = b"AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY=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\nAKIAIOSFODNN7EXAMPLE\n";

#[test]
fn json_has_required_fields() {
    let f = scan_text("dir/.env", TEXT);
    let v: serde_json::Value =
        serde_json::from_str(&render(Format::Json, "scan", &f, None)).unwrap();
    let first = &v["findings"][0];
    for k in [
        "rule",
        "severity",
        "path",
        "line",
        "redacted",
        "fingerprint",
        "access_key_id",
        "account_id",
    ] {
        assert!(first.get(k).is_some(), "missing {k}");
    }
    assert_eq!(first["account_id"], "609629065308");
}

#[test]
fn sarif_structure() {
    let f = scan_text("dir/a b.env", TEXT);
    let s = sarif("scan", &f);
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(run["results"].as_array().unwrap().len(), 2);
    for r in run["results"].as_array().unwrap() {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "dir/a%20b.env"
        );
        assert!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }
}

#[test]
fn baseline_suppresses_and_rejects_bad_files() {
    let f = scan_text(".env", TEXT);
    let report = render(Format::Json, "scan", &f, None);
    let b = Baseline::parse("b.json", &report).unwrap();
    let mut again = scan_text(".env", TEXT);
    b.filter(&mut again);
    assert!(again.is_empty());
    let mut moved = scan_text("other/.env", TEXT);
    b.filter(&mut moved);
    assert_eq!(moved.len(), 2, "a baseline entry is per path");

    for (bad, why) in [
        ("not json", "not JSON"),
        ("{}", "no \"findings\" array"),
        ("42", "expected an object"),
        ("[{\"fingerprint\": 1, \"path\": \"x\"}]", "finding 0 lacks"),
    ] {
        match Baseline::parse("b.json", bad) {
            Err(ScanError::Baseline { path, reason }) => {
                assert_eq!(path, "b.json");
                assert!(reason.starts_with(why), "{reason}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let huge = " ".repeat(keyless_scan::baseline::MAX_BASELINE_BYTES + 1);
    assert!(matches!(
        Baseline::parse("b", &huge),
        Err(ScanError::Baseline { .. })
    ));
}

#[test]
fn text_output_neutralises_terminal_control_characters() {
    // File names and YAML keys come from the repository: an ESC sequence in one could move
    // the cursor and erase findings printed before it, or hide the rest of the line.
    let hostile = "x\u{1b}[1A\u{1b}[2K\r.env";
    let mut f = scan_text(hostile, b"AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\n");
    f.extend(keyless_scan::lint::lint_content(
        ".github/workflows/a.yml",
        "on: push\njobs:\n  \"d\\e[8m\":\n    runs-on: x\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.A }}\n",
    ));
    let out = render(Format::Text, "scan", &f, None);
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    assert!(
        out.contains("x\\u{1b}[1A\\u{1b}[2K\\r.env:1:19: medium"),
        "{out}"
    );
    assert!(out.contains("job `d\\u{1b}[8m`"), "{out}");
}
