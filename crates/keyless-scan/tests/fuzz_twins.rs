//! Property tests that mirror the cargo-fuzz targets, so `cargo test` runs them.

use keyless_scan::lint::lint_fuzz;
use keyless_scan::migrate::migrate_fuzz;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "on: push\njobs:\n  d:\n    runs-on: x\n    env:\n      AWS_ACCESS_KEY_ID: a\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: x\n          aws-region: y\n",
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}",
    "resource \"aws_iam_role\" \"r\" {\n  assume_role_policy = jsonencode({ Statement = [{ Effect = \"Allow\" }] })\n}\n",
    "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      MaxSessionDuration: 7200\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lint_never_panics(kind in any::<u8>(), s in "\\PC{0,400}") {
        let _ = lint_fuzz(kind, &s);
    }

    #[test]
    fn lint_mutated_seeds(kind in any::<u8>(), seed in 0usize..4, cut in 0usize..400, ins in "[\\[\\]{}:\"'\\- \n=a-z(]{0,8}") {
        let s = SEEDS[seed];
        let cut = cut.min(s.len());
        let cut = (0..=cut).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        let m = format!("{}{}{}", &s[..cut], ins, &s[cut..]);
        let _ = lint_fuzz(kind, &m);
        prop_assert!(migrate_fuzz(&m), "migrate not idempotent on {m:?}");
    }

    #[test]
    fn migrate_arbitrary(s in "\\PC{0,300}") {
        prop_assert!(migrate_fuzz(&s));
    }
}
