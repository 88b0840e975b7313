//! Property tests: any log the chain functions write verifies, and deleting or swapping any
//! record, or flipping any byte, is detected at the right line.
#![allow(clippy::unwrap_used, reason = "tests")]

use aws_lc_rs::signature::Ed25519KeyPair;
use keyless_audit::chain::{ChainHead, DigestSigner, seal_digest, seal_event};
use keyless_audit::verify::{KeyPins, ProblemKind, Verifier};
use proptest::prelude::*;
use time::OffsetDateTime;

fn build(values: &[String], digest_every: usize) -> Vec<Vec<u8>> {
    let signer = DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap());
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let mut head = ChainHead::genesis();
    let mut out = Vec::new();
    let mut first = 1;
    for (i, v) in values.iter().enumerate() {
        let body =
            serde_json::to_vec(&serde_json::json!({ "eventID": format!("e{i}"), "v": v })).unwrap();
        seal_event(&mut head, &body, &mut out).unwrap();
        if (i + 1) % digest_every == 0 {
            first = seal_digest(&mut head, &signer, now, first, &mut out) + 1;
        }
    }
    out.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn verify(lines: &[Vec<u8>]) -> keyless_audit::verify::Report {
    let mut v = Verifier::new(KeyPins::default());
    v.feed_file("f", &lines.concat(), true);
    v.finish()
}

proptest! {
    #[test]
    fn written_logs_verify(values in prop::collection::vec(".{0,40}", 0..30), every in 1usize..8) {
        let lines = build(&values, every);
        let r = verify(&lines);
        prop_assert!(r.is_ok(), "{:?}", r.problem);
        prop_assert_eq!(r.records as usize, lines.len());
    }

    #[test]
    fn a_deleted_record_is_found(values in prop::collection::vec("[a-z]{0,10}", 2..20), pick in any::<prop::sample::Index>()) {
        let mut lines = build(&values, 5);
        // Deleting the very last record leaves a shorter valid chain: only an anchor outside
        // the log could tell, so delete any other one.
        let i = pick.index(lines.len() - 1);
        lines.remove(i);
        let p = verify(&lines).problem.unwrap();
        prop_assert_eq!(p.kind, ProblemKind::Missing);
        prop_assert_eq!(p.line, i + 1);
    }

    #[test]
    fn swapped_records_are_found(values in prop::collection::vec("[a-z]{0,10}", 2..20), pick in any::<prop::sample::Index>()) {
        let mut lines = build(&values, 5);
        let i = pick.index(lines.len() - 1);
        lines.swap(i, i + 1);
        let p = verify(&lines).problem.unwrap();
        prop_assert_eq!(p.kind, ProblemKind::Reordered);
        prop_assert_eq!(p.line, i + 1);
    }

    #[test]
    fn a_flipped_byte_is_found(values in prop::collection::vec("[a-z]{0,10}", 1..10), pick in any::<prop::sample::Index>(), bit in 0u8..7) {
        let lines = build(&values, 3);
        let all = lines.concat();
        let at = pick.index(all.len());
        let mut bad = all.clone();
        bad[at] ^= 1 << bit;
        let mut v = Verifier::new(KeyPins::default());
        v.feed_file("f", &bad, true);
        let r = v.finish();
        // Either a problem, or the flip hit the final newline and left a torn line warning.
        prop_assert!(r.problem.is_some() || r.warnings.iter().any(|w| w.contains("torn")), "flip at {} unnoticed", at);
    }
}
