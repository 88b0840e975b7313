#![no_main]
//! Detector on arbitrary bytes (twin of the proptest in tests/detect.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyless_scan::detect::scan_text("fuzz", data);
});
