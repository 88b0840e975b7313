//! Fuzzes query-protocol form decoding (against `form_urlencoded`), the parameter map and the
//! STS actions' parameter validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyless_core::sts::form::fuzz_query(data);
});
