//! Fuzzes token parsing (parse + peek) and JWKS parsing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyless_jwt::fuzz_parse(data);
});
