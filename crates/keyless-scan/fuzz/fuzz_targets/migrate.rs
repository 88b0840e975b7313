#![no_main]
//! `migrate github-actions` on arbitrary YAML (twin of tests/fuzz_twins.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = keyless_scan::migrate::migrate_fuzz(s);
    }
});
