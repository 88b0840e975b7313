//! Fuzzes the authorize path (`/v1/authorize`) on what a gateway forwards: the action, the
//! resource, the query, the headers, the context keys and the body. No input may reach a
//! decision without a session keyless issued.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    keyless_core::authorize::fuzz_authorize(data);
});
