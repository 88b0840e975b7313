//! Fuzz the policy parser, validator and evaluator with arbitrary text (all policy types).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        keyless_policy::fuzz_parse(s);
    }
});
