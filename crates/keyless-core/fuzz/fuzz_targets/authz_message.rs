//! Fuzzes the opening of an `EncodedMessage` a caller hands to DecodeAuthorizationMessage: any
//! text is refused with `InvalidAuthorizationMessageException` or opens only if a sealer of the
//! same keys made it; it never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    keyless_core::authz_message::fuzz_open(data);
});
