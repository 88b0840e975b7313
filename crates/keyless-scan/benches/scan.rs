//! Detector throughput on generated text, with SHA-256 over the same bytes as the floor.
//!
//! Run: `cargo bench -p keyless-scan --bench scan`. Report MB/s and the ratio to the SHA-256
//! floor measured in the same run.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

fn corpus(n: usize) -> Vec<u8> {
    let words = [
        "def", "class", "return", "import", "self", "value", "config", "region", "bucket",
        "client", "session", "aws", "token", "policy", "role",
    ];
    let mut out = Vec::with_capacity(n + 128);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = 0usize;
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(9) { b'\n' } else { b' ' });
        if x.is_multiple_of(9) {
            line += 1;
            if line.is_multiple_of(5000) {
                out.extend_from_slice(b"AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A\nAWS_SECRET_ACCESS_KEY=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\n");
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let data = corpus(8 << 20);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("sha256_floor", |b| {
        b.iter(|| Sha256::digest(black_box(&data)))
    });
    g.bench_function("scan_text", |b| {
        b.iter(|| keyless_scan::detect::scan_text("bench", black_box(&data)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
