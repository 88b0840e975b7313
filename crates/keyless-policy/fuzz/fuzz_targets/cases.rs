//! Fuzz the case-file reader (the input of `keyless policy simulate`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        keyless_policy::fuzz_cases(s);
    }
});
