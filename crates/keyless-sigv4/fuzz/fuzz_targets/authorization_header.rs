#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    keyless_sigv4::fuzz::authorization_header(data);
});
