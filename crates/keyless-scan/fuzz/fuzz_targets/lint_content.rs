#![no_main]
//! Every lint parser (YAML workflows, GitLab CI, INI, policy JSON, CloudFormation, Terraform)
//! on arbitrary text; the first byte picks the file kind (twin of tests/fuzz_twins.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((&k, rest)) = data.split_first() {
        if let Ok(s) = std::str::from_utf8(rest) {
            let _ = keyless_scan::lint::lint_fuzz(k, s);
        }
    }
});
