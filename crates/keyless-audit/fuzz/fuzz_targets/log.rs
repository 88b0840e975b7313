//! Fuzzes everything that reads an audit log file, which an attacker may have edited: the
//! verifier over one or two files (a rotation), and per line the chain check, the event parse,
//! the text form, the filters and the session inventory.
#![no_main]

use keyless_audit::chain::{MAX_LINE_BYTES, check_line, peek_seq};
use keyless_audit::files::{feed_lines, parse_event_line};
use keyless_audit::query::{Filter, SessionInventory, text_line};
use keyless_audit::verify::{KeyPins, Verifier};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks where the log is split into an older and a newer file.
    let (split, log) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s) * rest.len() / 255, rest),
        None => (0, data),
    };
    let mut verifier = Verifier::new(KeyPins::default());
    verifier.feed_file("audit-1.jsonl", &log[..split], false);
    verifier.feed_file("audit-2.jsonl", &log[split..], true);
    let _ = verifier.finish().is_ok();

    // Read as the readers read a file, the complete lines are exactly those between newlines,
    // and the bytes after the last one come back as the partial line.
    let mut verifier = Verifier::new(KeyPins::default());
    verifier.begin_file("audit-1.jsonl");
    let mut lines: Vec<Vec<u8>> = Vec::new();
    if let Ok(end) = feed_lines(log, &mut verifier, &mut |l| lines.push(l.to_vec())) {
        let mut expected: Vec<&[u8]> = log.split(|b| *b == b'\n').collect();
        let tail = expected.pop().unwrap_or_default();
        expected.retain(|l| l.len() <= MAX_LINE_BYTES);
        assert_eq!(lines, expected);
        assert_eq!(end.complete_bytes as usize, log.len() - tail.len());
        let kept = &tail[..tail.len().min(MAX_LINE_BYTES)];
        assert_eq!(end.partial.map(|(b, _)| b).unwrap_or_default(), kept);
    }

    let mut inventory = SessionInventory::default();
    let filter = Filter {
        event_name: Some("AssumeRoleWithWebIdentity".into()),
        ..Filter::default()
    };
    for line in log.split(|b| *b == b'\n') {
        let _ = check_line(line);
        let _ = peek_seq(line);
        if let Some(event) = parse_event_line(line) {
            let _ = text_line(&event);
            let _ = (event.principal(), event.roles(), event.access_key_ids());
            let _ = (event.subject(), event.issued_access_key_id(), event.time());
            let _ = Filter::default().matches(&event) && filter.matches(&event);
            inventory.add(&event);
        }
    }
    let _ = inventory.live(time::OffsetDateTime::UNIX_EPOCH, &Filter::default());
});
