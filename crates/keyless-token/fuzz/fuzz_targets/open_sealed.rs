//! Fuzzes the claims decoder behind a valid seal (arbitrary plaintext sealed, then opened).
#![no_main]

use keyless_token::KeyRing;
use keyless_types::SecretBytes;
use time::OffsetDateTime;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(ring) = KeyRing::from_versions(vec![(1, OffsetDateTime::UNIX_EPOCH, SecretBytes::new(vec![3u8; 32]))]) {
        let _ = keyless_token::fuzz_open_sealed(&ring, data, OffsetDateTime::UNIX_EPOCH);
    }
});
