//! Verification of a whole log, across rotated files: hashes, sequence, chain links, digest
//! coverage and signatures. Pure: the caller feeds the files' lines in order
//! ([`Verifier::begin_file`], [`Verifier::line`], [`Verifier::end_file`]), so a reader holds one
//! line at a time. A line longer than [`MAX_LINE_BYTES`] (the writer writes none) is broken; the
//! reader hands over only its start and its length.
//!
//! The first problem stops the chain check and is located (file, line, `seq`, `eventID`). A
//! sequence gap is told apart from a reordering by looking for the expected `seq` further on.
//!
//! A torn final line (bytes after the last `\n` of the last file) is what `kill -9` can leave
//! while a batch is being written. No client was acknowledged for it (acknowledgements follow the
//! `fsync` of complete lines), so it is reported as a warning and ignored; the writer cuts it off
//! when it next opens the log. Bytes without a final `\n` anywhere else are a problem.
//!
//! A log whose first record is not `seq` 1 had its oldest files removed. That is fine only when
//! a `retention` record, covered by a digest whose signature verifies, says the log is kept from
//! that `seq` or a later one (the writer removes files oldest first, after signing the record,
//! so a crash in between can leave more than it says). The record must also name the `prevHash`
//! of the record at that `seq`, which is checked. Anything else is reported as missing records
//! at the first record present.
//!
//! With the key ring (`KeyPins::ring`), a digest under a version the ring does not hold (one
//! retired since, or anyone's key naming such a version) signs nothing on its own: what it
//! covers counts as unsigned until a digest under a key of the ring follows, whose signature
//! covers the chain up to it. Only the fields inside a digest's signed bytes are read, so a
//! line repeating a field (`serde_json` would keep the last) or adding one after the signature
//! is broken.
//!
//! Records cut from the end leave a shorter chain that verifies: nothing inside the log can
//! tell. An *anchor* from outside it can: [`Verifier::anchor`] takes a `seq` and hash known to
//! be in the log (the newest row of the Postgres audit table, which copies records within a
//! second), and a log that ends before it, or holds another record there, fails.

use std::collections::BTreeMap;
use std::fmt;

use crate::chain::{GENESIS, MAX_LINE_BYTES, check_line, peek_seq};

/// The expected digest public key per key-ring version, when the key ring is available.
#[derive(Debug, Clone, Default)]
pub struct KeyPins {
    /// `None`: no key ring was given, so public keys are not pinned (a warning says so).
    pub ring: Option<BTreeMap<u32, [u8; 32]>>,
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A record was altered, or a line is not a record.
    Broken,
    /// One or more records are missing.
    Missing,
    /// Records are out of order (or duplicated).
    Reordered,
    /// A digest's signature or key is wrong.
    BadSignature,
}

impl ProblemKind {
    fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Broken => "broken",
            ProblemKind::Missing => "missing",
            ProblemKind::Reordered => "reordered",
            ProblemKind::BadSignature => "bad signature",
        }
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What.
    pub kind: ProblemKind,
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The `seq` the line claims, if readable.
    pub seq: Option<u64>,
    /// The `eventID`, if readable.
    pub event_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.kind.as_str())?;
        if let Some(s) = self.seq {
            write!(f, " (seq {s}")?;
            if let Some(id) = &self.event_id {
                write!(f, ", eventID {id}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The outcome.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Files read.
    pub files: usize,
    /// Records that verified (events and digests).
    pub records: u64,
    /// Digests that verified, under a key of the ring (when pinned) or vouched for by a later
    /// digest under one.
    pub digests: u64,
    /// The first verified `seq`: 1, or where retention left the log starting (0: no records).
    pub first_seq: u64,
    /// The last verified `seq`.
    pub last_seq: u64,
    /// Verified records after the last digest (not yet covered by a signature).
    pub unsigned_tail: u64,
    /// Things the operator should know that do not fail verification.
    pub warnings: Vec<String>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Report {
    /// True when the whole log verified.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// A forward jump in `seq`, classified once the rest of the log was seen.
#[derive(Debug, Clone)]
struct Jump {
    problem: Problem,
    expected: u64,
    found_later: Option<(String, usize)>,
}

/// Feeds files in order, then [`Verifier::finish`].
#[derive(Debug, Clone)]
pub struct Verifier {
    pins: KeyPins,
    report: Report,
    expected_seq: u64,
    prev_hash: [u8; 32],
    next_digest_first: u64,
    jump: Option<Jump>,
    unpinned_warned: bool,
    /// The log's first record, when it is not `seq` 1: reported as missing records at the end
    /// unless a signed retention record accounts for it.
    start: Option<Problem>,
    /// The first `seq` and `prevHash` of every file read (one entry per file).
    file_starts: Vec<(u64, [u8; 32])>,
    /// The latest start a retention record declared that no digest has signed yet.
    retained_unsigned: Option<u64>,
    /// The latest start a signed retention record declared (0: none).
    retained_from: u64,
    /// Digests since the last one under a key of the ring whose keys the ring does not hold.
    unvouched_digests: u64,
    /// A record known to be in the log, from outside it, and whether it was seen.
    anchor: Option<Anchor>,
    /// Where the last verified record is.
    last_file: String,
    last_line: usize,
    /// The file being read and the number of its last line fed.
    file: String,
    line_no: usize,
}

/// One line of a file, as a reader with a bounded buffer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct RawLine<'a> {
    /// The line without its `\n`: all of it, or only its start when it is longer than
    /// [`MAX_LINE_BYTES`] (a reader need not hold more).
    pub bytes: &'a [u8],
    /// Its whole length in the file, without the `\n`.
    pub len: u64,
}

impl<'a> RawLine<'a> {
    /// A line held whole.
    pub fn whole(bytes: &'a [u8]) -> RawLine<'a> {
        RawLine {
            bytes,
            len: bytes.len() as u64,
        }
    }
}

/// A record known, from outside the log, to be in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Its `seq`.
    pub seq: u64,
    /// Its `hash`.
    pub hash: [u8; 32],
    /// Where the anchor comes from, for messages (e.g. `the audit table`).
    pub source: String,
    seen: bool,
}

impl Anchor {
    /// The record `seq` with `hash`, known from `source`.
    pub fn new(seq: u64, hash: [u8; 32], source: impl Into<String>) -> Anchor {
        Anchor {
            seq,
            hash,
            source: source.into(),
            seen: false,
        }
    }
}

impl Verifier {
    /// A verifier for a log that starts at `seq` 1.
    pub fn new(pins: KeyPins) -> Verifier {
        Verifier {
            pins,
            report: Report::default(),
            expected_seq: 1,
            prev_hash: GENESIS,
            next_digest_first: 1,
            jump: None,
            unpinned_warned: false,
            start: None,
            file_starts: Vec::new(),
            retained_unsigned: None,
            retained_from: 0,
            unvouched_digests: 0,
            anchor: None,
            last_file: String::new(),
            last_line: 0,
            file: String::new(),
            line_no: 0,
        }
    }

    /// Also checks that the log holds `anchor`: a log that ends before its `seq` had records cut
    /// from the end, and another record at that `seq` means the log was rewritten.
    pub fn anchor(&mut self, anchor: Anchor) {
        self.anchor = Some(anchor);
    }

    fn fail(&mut self, kind: ProblemKind, file: &str, line: usize, raw: &[u8], message: String) {
        let event_id = serde_json::from_slice::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v.get("eventID").and_then(|e| e.as_str()).map(str::to_owned));
        self.report.problem = Some(Problem {
            kind,
            file: file.to_owned(),
            line,
            seq: peek_seq(raw),
            event_id,
            message,
        });
    }

    /// Feeds one whole file; `last` marks the newest file (where a torn final line is
    /// tolerated). The same as [`Verifier::begin_file`], [`Verifier::line`] for every complete
    /// line and [`Verifier::end_file`].
    pub fn feed_file(&mut self, name: &str, bytes: &[u8], last: bool) {
        self.begin_file(name);
        let mut rest = bytes;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(i);
            self.line(RawLine::whole(line));
            rest = after.get(1..).unwrap_or_default();
        }
        self.end_file((!rest.is_empty()).then(|| RawLine::whole(rest)), last);
    }

    /// Starts the next file, named `name` in problems.
    pub fn begin_file(&mut self, name: &str) {
        self.report.files += 1;
        self.file = name.to_owned();
        self.line_no = 0;
    }

    /// Feeds the next complete line of the current file (without its `\n`).
    pub fn line(&mut self, line: RawLine<'_>) {
        self.line_no += 1;
        if self.looked_ahead(line.bytes) || self.report.problem.is_some() {
            return;
        }
        let name = std::mem::take(&mut self.file);
        if line.len > MAX_LINE_BYTES as u64 {
            self.fail(
                ProblemKind::Broken,
                &name,
                self.line_no,
                line.bytes,
                format!(
                    "the line is {} bytes long, longer than any record ({MAX_LINE_BYTES} bytes \
                     at most): not read",
                    line.len
                ),
            );
        } else {
            self.check(&name, self.line_no, line.bytes);
        }
        self.file = name;
    }

    /// Ends the current file: `partial` is what follows its last `\n`, if anything; `last`
    /// marks the newest file, where a torn final line is tolerated.
    pub fn end_file(&mut self, partial: Option<RawLine<'_>>, last: bool) {
        let Some(partial) = partial else {
            return;
        };
        self.line_no += 1;
        if self.looked_ahead(partial.bytes) || self.report.problem.is_some() {
            return;
        }
        let name = std::mem::take(&mut self.file);
        if !last {
            self.fail(
                ProblemKind::Broken,
                &name,
                self.line_no,
                partial.bytes,
                "a partial line ends a file that is not the newest".into(),
            );
        } else if partial.len > MAX_LINE_BYTES as u64 {
            self.fail(
                ProblemKind::Broken,
                &name,
                self.line_no,
                partial.bytes,
                format!(
                    "{} bytes without a newline end the newest file, more than any record \
                     ({MAX_LINE_BYTES} bytes at most): not a write cut short",
                    partial.len
                ),
            );
        } else {
            self.report.warnings.push(format!(
                "{name}:{}: torn final line ({} bytes without a newline) ignored: a write cut \
                 short by a crash, never acknowledged to a client; the server removes it when \
                 it next opens the log",
                self.line_no, partial.len
            ));
        }
        self.file = name;
    }

    /// While a forward jump in `seq` waits to be classified, looks for the expected `seq` in
    /// `line`; true when the line was consumed that way.
    fn looked_ahead(&mut self, line: &[u8]) -> bool {
        let Some(j) = &mut self.jump else {
            return false;
        };
        if j.found_later.is_none() && peek_seq(line) == Some(j.expected) {
            j.found_later = Some((self.file.clone(), self.line_no));
        }
        true
    }

    /// True once a problem was seen (the report may still classify it, see
    /// [`Verifier::report_so_far`]).
    pub fn broken(&self) -> bool {
        self.report.problem.is_some() || self.jump.is_some()
    }

    /// The report as if the log ended here, leaving the verifier to go on (a reader following
    /// the log checks each new record as it comes).
    pub fn report_so_far(&self) -> Report {
        self.clone().finish()
    }

    fn check(&mut self, name: &str, line_no: usize, line: &[u8]) {
        let checked = match check_line(line) {
            Ok(c) => c,
            Err(e) => {
                self.fail(ProblemKind::Broken, name, line_no, line, e.to_string());
                return;
            }
        };
        // A problem at this line.
        let here = |kind: ProblemKind, message: String| Problem {
            kind,
            file: name.to_owned(),
            line: line_no,
            seq: Some(checked.seq),
            event_id: checked.event_id.clone(),
            message,
        };
        if checked.seq > 1 && self.expected_seq == 1 && self.report.records == 0 {
            // The log's oldest files are gone: check from here, and account for the start at
            // the end (see the module documentation).
            self.start = Some(here(ProblemKind::Missing, String::new()));
            self.expected_seq = checked.seq;
            self.prev_hash = checked.prev_hash;
            self.next_digest_first = checked.seq;
        }
        if checked.seq != self.expected_seq {
            let problem = here(ProblemKind::Missing, String::new());
            if checked.seq > self.expected_seq {
                self.jump = Some(Jump {
                    problem,
                    expected: self.expected_seq,
                    found_later: None,
                });
            } else if let Some(start) = self
                .start
                .clone()
                .filter(|s| s.seq.is_some_and(|first| checked.seq < first))
            {
                // The log seemed to start later, but an earlier record comes after: the first
                // record present is out of place, not the start of a retained log.
                self.report.problem = Some(Problem {
                    kind: ProblemKind::Reordered,
                    message: format!(
                        "seq {} stands where seq 1 belongs; seq {} is later, at {name}:{line_no}",
                        start.seq.unwrap_or(1),
                        checked.seq
                    ),
                    ..start
                });
            } else {
                self.report.problem = Some(Problem {
                    kind: ProblemKind::Reordered,
                    message: format!(
                        "seq {} comes after seq {}: records are out of order or repeated",
                        checked.seq,
                        self.expected_seq - 1
                    ),
                    ..problem
                });
            }
            return;
        }
        if checked.prev_hash != self.prev_hash {
            self.report.problem = Some(here(
                ProblemKind::Broken,
                "prevHash does not match the previous record's hash: a record was replaced or \
                 the chain was rebuilt"
                    .into(),
            ));
            return;
        }
        if let Some(r) = &checked.retention
            && let Err(message) = self.retention(r, checked.seq)
        {
            self.report.problem = Some(here(ProblemKind::Broken, message));
            return;
        }
        if line_no == 1 {
            self.file_starts.push((checked.seq, checked.prev_hash));
        }
        if let Some(d) = &checked.digest {
            let located = |message: String| here(ProblemKind::BadSignature, message);
            if !d.signature_valid {
                self.report.problem = Some(located(
                    "the digest signature does not verify under the key it names".into(),
                ));
                return;
            }
            let first_present = self.start.as_ref().and_then(|p| p.seq);
            if self.report.digests == 0
                && first_present.is_some_and(|first| d.first_seq < first)
                && d.last_seq + 1 == checked.seq
                && let Some(start) = self.start.take()
            {
                // The first digest covers records before the first one present: they were
                // removed, and not at a file boundary as retention removes them.
                self.report.problem = Some(missing_start(start));
                return;
            }
            if d.first_seq != self.next_digest_first || d.last_seq + 1 != checked.seq {
                self.report.problem = Some(Problem {
                    kind: ProblemKind::Broken,
                    ..located(format!(
                        "the digest covers seq {}..{} but should cover {}..{}",
                        d.first_seq,
                        d.last_seq,
                        self.next_digest_first,
                        checked.seq - 1
                    ))
                });
                return;
            }
            let mut vouches = true;
            match &self.pins.ring {
                Some(ring) => match ring.get(&d.key_version) {
                    Some(pinned) if pinned.as_slice() == d.public_key.as_slice() => {}
                    Some(_) => {
                        self.report.problem = Some(located(format!(
                            "the digest names a public key that is not key-ring version {}'s \
                             audit key: it was signed by someone else",
                            d.key_version
                        )));
                        return;
                    }
                    None => {
                        // A retired version, or a key of anyone's naming a version the ring
                        // lacks: only a later digest under a key of the ring, whose signature
                        // covers the chain up to it, vouches for what this one covers.
                        vouches = false;
                        self.report.warnings.push(format!(
                            "{name}:{line_no}: digest signed by key-ring version {}, which is not \
                             in the key ring (retired, or someone else's key): the records it \
                             covers count as unsigned until a digest under a key of the ring \
                             follows",
                            d.key_version
                        ));
                    }
                },
                None => {
                    if !self.unpinned_warned {
                        self.unpinned_warned = true;
                        self.report.warnings.push(
                            "no key ring given: digest signatures were checked against the \
                             public keys the digests name, not pinned to the ring (pass \
                             --data-dir or --config to pin them)"
                                .into(),
                        );
                    }
                }
            }
            self.next_digest_first = checked.seq + 1;
            if vouches {
                self.report.digests += 1 + std::mem::take(&mut self.unvouched_digests);
                if let Some(from) = self.retained_unsigned.take() {
                    self.retained_from = self.retained_from.max(from);
                }
                self.report.unsigned_tail = 0;
            } else {
                self.unvouched_digests += 1;
                self.report.unsigned_tail += 1;
            }
        } else {
            self.report.unsigned_tail += 1;
        }
        if let Some(a) = self.anchor.as_mut().filter(|a| a.seq == checked.seq) {
            a.seen = true;
            if a.hash != checked.hash {
                let source = a.source.clone();
                self.report.problem = Some(here(
                    ProblemKind::Broken,
                    format!(
                        "this record differs from the copy in {source}: the log was rewritten \
                         after it was copied"
                    ),
                ));
                return;
            }
        }
        if self.report.records == 0 {
            self.report.first_seq = checked.seq;
        }
        self.report.records += 1;
        self.report.last_seq = checked.seq;
        self.last_file = name.to_owned();
        self.last_line = line_no;
        self.prev_hash = checked.hash;
        self.expected_seq += 1;
    }

    /// Checks what a retention record (at `seq`) says against the files read so far.
    fn retention(&mut self, r: &crate::chain::RetentionFacts, seq: u64) -> Result<(), String> {
        let from = r.from_seq;
        if from > seq {
            return Err(format!(
                "the retention record says the log is kept from seq {from}, after the record itself"
            ));
        }
        let start = self.start.as_ref().and_then(|p| p.seq).unwrap_or(1);
        if from < start {
            // An earlier removal's record; a later one accounts for where the log starts now.
            return Ok(());
        }
        match self.file_starts.iter().find(|(s, _)| *s == from) {
            Some((_, prev)) if *prev == r.from_prev_hash => {}
            Some(_) => {
                return Err(format!(
                    "the record at seq {from} does not have the prevHash this retention record \
                     gives: the log kept after the removal was rebuilt"
                ));
            }
            None => {
                return Err(format!(
                    "the retention record says the log is kept from seq {from}, but no file \
                     starts there"
                ));
            }
        }
        self.retained_unsigned = Some(self.retained_unsigned.map_or(from, |u| u.max(from)));
        Ok(())
    }

    /// The report.
    pub fn finish(mut self) -> Report {
        if let Some(j) = self.jump.take() {
            let found = j.problem.seq.unwrap_or(0);
            self.report.problem = Some(match j.found_later {
                Some((file, line)) => Problem {
                    kind: ProblemKind::Reordered,
                    message: format!(
                        "seq {found} stands where seq {} belongs; seq {} is later, at {file}:{line}",
                        j.expected, j.expected
                    ),
                    ..j.problem
                },
                None => {
                    let missing = if found == j.expected + 1 {
                        format!("seq {}", j.expected)
                    } else {
                        format!("seq {}..{}", j.expected, found - 1)
                    };
                    Problem {
                        message: format!(
                            "{missing} missing before this record (deleted, or an earlier file is gone)"
                        ),
                        ..j.problem
                    }
                }
            });
        }
        if let Some(start) = self.start.take().filter(|_| self.report.problem.is_none()) {
            let first = start.seq.unwrap_or(1);
            if first <= self.retained_from {
                self.report.warnings.push(format!(
                    "the log starts at seq {first}: seq 1..{} were removed by retention, as a \
                     signed retention record says",
                    first - 1
                ));
            } else {
                self.report.problem = Some(missing_start(start));
            }
        }
        if let Some(a) = self.anchor.take().filter(|_| self.report.problem.is_none())
            && !a.seen
        {
            if a.seq > self.report.last_seq {
                self.report.problem = Some(Problem {
                    kind: ProblemKind::Missing,
                    file: self.last_file.clone(),
                    line: self.last_line,
                    seq: Some(self.report.last_seq),
                    event_id: None,
                    message: format!(
                        "the log ends at seq {}, but {} holds seq {}: records were cut from the end",
                        self.report.last_seq, a.source, a.seq
                    ),
                });
            } else {
                self.report.warnings.push(format!(
                    "seq {}, the newest record in {}, is older than the log kept here (it starts at \
                     seq {}), so it could not be compared",
                    a.seq, a.source, self.report.first_seq
                ));
            }
        }
        if self.report.problem.is_none() && self.report.unsigned_tail > 0 {
            self.report.warnings.push(format!(
                "{} record(s) after the last digest are chained but not yet signed (a digest is \
                 written every N records, every T seconds and at shutdown)",
                self.report.unsigned_tail
            ));
        }
        self.report
    }
}

/// The problem of a log whose first record present, `start`, is not `seq` 1 and that no signed
/// retention record accounts for.
fn missing_start(start: Problem) -> Problem {
    let first = start.seq.unwrap_or(1);
    let missing = if first == 2 {
        "seq 1".to_owned()
    } else {
        format!("seq 1..{}", first - 1)
    };
    Problem {
        message: format!(
            "{missing} missing before this record (deleted, or an earlier file is gone); no \
             signed retention record accounts for them"
        ),
        ..start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{
        ChainHead, DigestSigner, RetentionFacts, seal_digest, seal_event, seal_retention,
    };
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use time::OffsetDateTime;

    fn signer() -> DigestSigner {
        DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap())
    }

    fn pins() -> KeyPins {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap();
        let mut k = [0u8; 32];
        k.copy_from_slice(pair.public_key().as_ref());
        KeyPins {
            ring: Some(BTreeMap::from([(1, k)])),
        }
    }

    /// Ten events with a digest after the fifth and at the end, as lines.
    fn log() -> Vec<String> {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        let mut first = 1;
        for i in 0..10 {
            seal_event(
                &mut head,
                format!("{{\"eventID\":\"ev{i}\"}}").as_bytes(),
                &mut out,
            )
            .unwrap();
            if i == 4 || i == 9 {
                let d = seal_digest(&mut head, &signer(), now, first, &mut out);
                first = d + 1;
            }
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn run(files: &[Vec<String>], tail: &str) -> Report {
        let mut v = Verifier::new(pins());
        for (i, f) in files.iter().enumerate() {
            let mut text = f.join("\n");
            if !f.is_empty() {
                text.push('\n');
            }
            let last = i + 1 == files.len();
            if last {
                text.push_str(tail);
            }
            v.feed_file(&format!("f{i}"), text.as_bytes(), last);
        }
        v.finish()
    }

    #[test]
    fn an_intact_log_verifies_across_files() {
        let lines = log();
        let r = run(&[lines[..6].to_vec(), lines[6..].to_vec()], "");
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!((r.records, r.digests, r.last_seq, r.files), (12, 2, 12, 2));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn a_flipped_byte_is_located() {
        let mut lines = log();
        lines[3] = lines[3].replace("ev3", "ev8");
        let p = run(&[lines], "").problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Broken);
        assert_eq!((p.file.as_str(), p.line, p.seq), ("f0", 4, Some(4)));
        assert_eq!(p.event_id.as_deref(), Some("ev8"));
    }

    #[test]
    fn a_deleted_record_is_missing() {
        let mut lines = log();
        lines.remove(2);
        let p = run(&[lines], "").problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Missing);
        assert_eq!((p.line, p.seq), (3, Some(4)));
        assert!(p.message.contains("seq 3 missing"), "{}", p.message);
    }

    #[test]
    fn swapped_records_are_reordered() {
        let mut lines = log();
        lines.swap(7, 8);
        let p = run(&[lines], "").problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Reordered);
        assert_eq!((p.line, p.seq), (8, Some(9)));
        assert!(p.message.contains("f0:9"), "{}", p.message);
    }

    /// Three files: f0 = seq 1..6, f1 = seq 7..12 (five events and a digest each), and f2 =
    /// an event, a retention record saying the log is kept from `from` with `prev`, a digest, an
    /// event and a digest (without both digests when `sign` is false). `prev` None: the true
    /// prevHash of seq `from`.
    fn retained_log(from: u64, prev: Option<[u8; 32]>, sign: bool) -> Vec<Vec<String>> {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut head = ChainHead::genesis();
        let mut files = Vec::new();
        let mut starts = Vec::new();
        let mut first = 1;
        for f in 0..2 {
            let mut out = Vec::new();
            starts.push((head.next_seq, head.prev_hash));
            for i in 0..5 {
                let body = format!("{{\"eventID\":\"ev{f}{i}\"}}");
                seal_event(&mut head, body.as_bytes(), &mut out).unwrap();
            }
            first = seal_digest(&mut head, &signer(), now, first, &mut out) + 1;
            files.push(out);
        }
        let mut out = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"ev20\"}", &mut out).unwrap();
        let true_prev = starts.iter().find(|(s, _)| *s == from).map(|(_, p)| *p);
        let facts = RetentionFacts {
            from_seq: from,
            from_prev_hash: prev.or(true_prev).unwrap_or([7; 32]),
            removed_files: vec!["f0".into()],
        };
        seal_retention(&mut head, now, &facts, &mut out).unwrap();
        if sign {
            first = seal_digest(&mut head, &signer(), now, first, &mut out) + 1;
        }
        seal_event(&mut head, b"{\"eventID\":\"ev21\"}", &mut out).unwrap();
        if sign {
            let _ = seal_digest(&mut head, &signer(), now, first, &mut out);
        }
        files.push(out);
        files
            .into_iter()
            .map(|b| {
                String::from_utf8(b)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_start_removed_by_signed_retention_verifies() {
        let files = retained_log(7, None, true);
        // Not removed yet (a crash between the record and the removal): all of it verifies.
        let r = run(&files, "");
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!((r.first_seq, r.last_seq, r.digests), (1, 17, 4));
        // Removed as the record says.
        let r = run(&files[1..], "");
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!((r.first_seq, r.last_seq, r.records), (7, 17, 11));
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("starts at seq 7") && w.contains("removed by retention")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn a_start_that_retention_does_not_account_for_is_missing() {
        // One file more than the record says was removed.
        let files = retained_log(7, None, true);
        let p = run(&files[2..], "").problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Missing);
        assert_eq!((p.file.as_str(), p.line, p.seq), ("f0", 1, Some(13)));
        assert!(
            p.message.contains("seq 1..12") && p.message.contains("no signed retention record"),
            "{}",
            p.message
        );
        // A retention record no digest signed (anyone can chain one) accounts for nothing.
        let files = retained_log(7, None, false);
        let p = run(&files[1..], "").problem.unwrap();
        assert_eq!((p.kind, p.seq), (ProblemKind::Missing, Some(7)));
    }

    #[test]
    fn a_retention_record_that_does_not_fit_the_kept_log_is_broken() {
        let files = retained_log(7, Some([1; 32]), true);
        let p = run(&files[1..], "").problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Broken);
        assert_eq!((p.file.as_str(), p.line, p.seq), ("f1", 2, Some(14)));
        assert!(p.message.contains("prevHash"), "{}", p.message);
        let files = retained_log(8, None, true);
        let p = run(&files[1..], "").problem.unwrap();
        assert!(p.message.contains("no file starts there"), "{}", p.message);
        let files = retained_log(40, None, true);
        let p = run(&files, "").problem.unwrap();
        assert!(
            p.message.contains("after the record itself"),
            "{}",
            p.message
        );
    }

    #[test]
    fn an_anchor_from_outside_finds_records_cut_from_the_end() {
        let lines = log();
        let hash_of = |line: &str| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut h = [0u8; 32];
            hex::decode_to_slice(v["hash"].as_str().unwrap(), &mut h).unwrap();
            h
        };
        let anchored = |lines: &[String], seq: u64, hash: [u8; 32]| {
            let mut v = Verifier::new(pins());
            v.anchor(Anchor::new(seq, hash, "the audit table"));
            let mut text = lines.join("\n");
            text.push('\n');
            v.feed_file("f0", text.as_bytes(), true);
            v.finish()
        };
        // seq 10 is the tenth line: an event.
        let tenth = hash_of(&lines[9]);
        assert!(anchored(&lines, 10, tenth).is_ok());
        // Cut after seq 8: a shorter chain that verifies on its own, but not against the anchor.
        let cut = &lines[..8];
        assert!(
            run(&[cut.to_vec()], "").is_ok(),
            "undetectable without an anchor"
        );
        let p = anchored(cut, 10, tenth).problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Missing);
        assert_eq!((p.file.as_str(), p.line, p.seq), ("f0", 8, Some(8)));
        assert!(
            p.message
                .contains("ends at seq 8, but the audit table holds seq 10"),
            "{}",
            p.message
        );
        // Another record where the anchor is: rewritten.
        let p = anchored(&lines, 10, [3; 32]).problem.unwrap();
        assert_eq!((p.kind, p.line), (ProblemKind::Broken, 10));
        assert!(
            p.message
                .contains("differs from the copy in the audit table")
        );
    }

    #[test]
    fn a_missing_file_is_missing() {
        let lines = log();
        let p = run(&[lines[..3].to_vec(), lines[6..].to_vec()], "")
            .problem
            .unwrap();
        assert_eq!(p.kind, ProblemKind::Missing);
        assert_eq!((p.file.as_str(), p.line), ("f1", 1));
        assert!(p.message.contains("seq 4..6"), "{}", p.message);
    }

    #[test]
    fn a_rebuilt_chain_with_a_foreign_key_is_refused() {
        // An attacker rewrites the whole log with their own key: hashes and signatures are
        // self-consistent, but the key is not the ring's.
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(&mut head, b"{}", &mut out).unwrap();
        let forger = DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap());
        seal_digest(&mut head, &forger, now, 1, &mut out);
        let mut v = Verifier::new(pins());
        v.feed_file("f", &out, true);
        let p = v.finish().problem.unwrap();
        assert_eq!(p.kind, ProblemKind::BadSignature);
        assert_eq!(p.line, 2);
        // Without the ring, the same log verifies with a warning saying keys are not pinned.
        let mut v = Verifier::new(KeyPins::default());
        v.feed_file("f", &out, true);
        let r = v.finish();
        assert!(r.is_ok());
        assert!(r.warnings[0].contains("not pinned"));
    }

    #[test]
    fn a_torn_final_line_is_a_warning_only_at_the_very_end() {
        let lines = log();
        let r = run(std::slice::from_ref(&lines), "{\"seq\":13,\"prevHa");
        assert!(r.is_ok(), "{:?}", r.problem);
        assert!(
            r.warnings[0].contains("torn final line"),
            "{:?}",
            r.warnings
        );
        let mut v = Verifier::new(pins());
        v.feed_file("a", b"{\"seq\":1,\"pre", false);
        v.feed_file("b", lines.join("\n").as_bytes(), true);
        let p = v.finish().problem.unwrap();
        assert_eq!((p.kind, p.file.as_str()), (ProblemKind::Broken, "a"));
    }

    #[test]
    fn bytes_without_a_newline_longer_than_any_record_are_not_a_torn_write() {
        let lines = log();
        let mut text = lines.join("\n");
        text.push('\n');
        let mut bytes = text.into_bytes();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        let mut v = Verifier::new(pins());
        v.feed_file("f0", &bytes, true);
        let p = v.finish().problem.unwrap();
        assert_eq!(
            (p.kind, p.file.as_str(), p.line),
            (ProblemKind::Broken, "f0", 13)
        );
        assert!(
            p.message.contains("more than any record") && p.message.contains("1048577 bytes"),
            "{}",
            p.message
        );
    }

    #[test]
    fn a_line_handed_over_cut_is_broken_by_its_length() {
        // A reader holds only the start of a long line and gives its whole length.
        let lines = log();
        let mut v = Verifier::new(pins());
        v.begin_file("f0");
        v.line(RawLine::whole(lines[0].as_bytes()));
        let start = format!("{{\"seq\":2,\"prevHash\":\"{}", "x".repeat(100));
        v.line(RawLine {
            bytes: start.as_bytes(),
            len: 64 << 20,
        });
        v.end_file(None, true);
        let p = v.finish().problem.unwrap();
        assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Broken, 2, Some(2)));
        assert_eq!(
            p.message,
            "the line is 67108864 bytes long, longer than any record (1048576 bytes at most): not read"
        );
    }

    #[test]
    fn a_verifier_fed_line_by_line_tells_a_break_as_it_comes_and_goes_on() {
        let mut lines = log();
        lines.remove(2);
        let mut v = Verifier::new(pins());
        v.begin_file("f0");
        for (i, l) in lines.iter().enumerate() {
            v.line(RawLine::whole(l.as_bytes()));
            // seq 3 is gone: the break shows at the line after seq 2.
            assert_eq!(v.broken(), i >= 2, "line {}", i + 1);
            if i == 2 {
                let p = v.report_so_far().problem.unwrap();
                assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Missing, 3, Some(4)));
            }
        }
        // The record put back later: the same verifier now calls it a reordering.
        v.line(RawLine::whole(log()[2].as_bytes()));
        let p = v.report_so_far().problem.unwrap();
        assert_eq!((p.kind, p.line), (ProblemKind::Reordered, 3));
        assert!(p.message.contains("f0:12"), "{}", p.message);
        // Read so far and to the end alike, an intact log has nothing to say.
        let mut v = Verifier::new(pins());
        v.begin_file("f0");
        for l in &log()[..7] {
            v.line(RawLine::whole(l.as_bytes()));
            assert!(!v.broken());
        }
        assert!(v.report_so_far().is_ok());
    }

    #[test]
    fn records_after_the_last_digest_are_reported_unsigned() {
        let lines = log();
        let r = run(&[lines[..8].to_vec()], "");
        assert!(r.is_ok());
        assert_eq!(r.unsigned_tail, 2);
        assert!(r.warnings.iter().any(|w| w.contains("not yet signed")));
    }
}

#[cfg(test)]
mod forgery_tests {
    use super::*;
    use crate::chain::{
        ChainHead, DigestSigner, HASH_DOMAIN, RetentionFacts, seal_digest, seal_event,
        seal_retention,
    };
    use aws_lc_rs::signature::Ed25519KeyPair;
    use time::OffsetDateTime;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn ring_signer() -> DigestSigner {
        DigestSigner::new(2, Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap())
    }

    /// The ring holds version 2 only (version 1 was retired).
    fn pins() -> KeyPins {
        let mut k = [0u8; 32];
        k.copy_from_slice(ring_signer().public_key());
        KeyPins {
            ring: Some(BTreeMap::from([(2, k)])),
        }
    }

    fn rehash(prefix: &str) -> String {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(HASH_DOMAIN);
        ctx.update(prefix.as_bytes());
        format!(
            "{prefix},\"hash\":\"{}\"}}\n",
            hex::encode(ctx.finish().as_ref())
        )
    }

    fn hash_hex(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["hash"].as_str().unwrap().to_owned()
    }

    fn verify(bytes: &[u8]) -> Report {
        let mut v = Verifier::new(pins());
        v.feed_file("f", bytes, true);
        v.finish()
    }

    #[test]
    fn a_genuine_digest_cannot_be_moved_onto_a_forged_chain_by_repeating_its_fields() {
        // The genuine log: two events and a digest signed by the ring's key.
        let mut head = ChainHead::genesis();
        let mut genuine = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"real1\"}", &mut genuine).unwrap();
        seal_event(&mut head, b"{\"eventID\":\"real2\"}", &mut genuine).unwrap();
        let start = genuine.len();
        seal_digest(&mut head, &ring_signer(), now(), 1, &mut genuine);
        let digest = String::from_utf8(genuine[start..genuine.len() - 1].to_vec()).unwrap();
        // The forger chains events of their own, then takes the genuine digest and, after its
        // signature (outside the signed bytes), repeats `seq` and `prevHash` with the values
        // their chain needs.
        let mut head = ChainHead::genesis();
        let mut forged = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"fake1\"}", &mut forged).unwrap();
        seal_event(&mut head, b"{\"eventID\":\"fake2\"}", &mut forged).unwrap();
        let last = String::from_utf8(forged.clone()).unwrap();
        let last = last.lines().last().unwrap();
        let cut = digest.rfind(",\"hash\":\"").unwrap();
        let moved = format!(
            "{},\"seq\":3,\"prevHash\":\"{}\"",
            &digest[..cut],
            hash_hex(last)
        );
        forged.extend_from_slice(rehash(&moved).as_bytes());
        assert!(verify(&genuine).is_ok());
        let r = verify(&forged);
        let p = r
            .problem
            .expect("a reused digest must not sign a forged chain");
        assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Broken, 3, Some(3)));
        assert_eq!(
            p.message,
            "the record is not valid: the field \"seq\" appears twice at line 1 column 456"
        );
    }

    #[test]
    fn a_digest_with_fields_after_its_signature_is_broken() {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"a\"}", &mut out).unwrap();
        let start = out.len();
        seal_digest(&mut head, &ring_signer(), now(), 1, &mut out);
        let digest = String::from_utf8(out[start..out.len() - 1].to_vec()).unwrap();
        let cut = digest.rfind(",\"hash\":\"").unwrap();
        out.truncate(start);
        out.extend_from_slice(rehash(&format!("{},\"note\":\"x\"", &digest[..cut])).as_bytes());
        let p = verify(&out).problem.unwrap();
        assert_eq!((p.kind, p.line), (ProblemKind::Broken, 2));
        assert_eq!(
            p.message,
            "the record is not valid: a digest's signature must be its last field"
        );
    }

    /// An insider removes the oldest file (seq 1..3) and appends a retention record accounting
    /// for it, "signed" by a digest under a key of their own that names key-ring version 1.
    fn retention_forged_under(forger_version: u32) -> (Vec<u8>, Vec<u8>) {
        let mut head = ChainHead::genesis();
        let mut old = Vec::new();
        for i in 0..2 {
            seal_event(
                &mut head,
                format!("{{\"eventID\":\"o{i}\"}}").as_bytes(),
                &mut old,
            )
            .unwrap();
        }
        seal_digest(&mut head, &ring_signer(), now(), 1, &mut old);
        let kept_from = (head.next_seq, head.prev_hash);
        let mut kept = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"k0\"}", &mut kept).unwrap();
        seal_digest(&mut head, &ring_signer(), now(), 4, &mut kept);
        let facts = RetentionFacts {
            from_seq: kept_from.0,
            from_prev_hash: kept_from.1,
            removed_files: vec!["audit-00000000000000000001.jsonl".into()],
        };
        let first = head.next_seq;
        seal_retention(&mut head, now(), &facts, &mut kept).unwrap();
        let forger = DigestSigner::new(
            forger_version,
            Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap(),
        );
        seal_digest(&mut head, &forger, now(), first, &mut kept);
        (old, kept)
    }

    #[test]
    fn a_digest_under_a_key_the_ring_does_not_hold_does_not_sign_a_retention_record() {
        let (_old, kept) = retention_forged_under(1);
        let r = verify(&kept);
        let p = r
            .problem
            .expect("a foreign key must not account for removed files");
        assert_eq!((p.kind, p.line, p.seq), (ProblemKind::Missing, 1, Some(4)));
        assert!(
            p.message
                .starts_with("seq 1..3 missing before this record (deleted, or an earlier file is gone); no signed retention record"),
            "{}",
            p.message
        );
    }

    #[test]
    fn records_signed_only_under_a_key_the_ring_does_not_hold_count_as_unsigned() {
        let (old, kept) = retention_forged_under(1);
        let mut v = Verifier::new(pins());
        v.feed_file("f0", &old, false);
        v.feed_file("f1", &kept, true);
        let r = v.finish();
        assert!(r.is_ok(), "{:?}", r.problem);
        // The retention record and the foreign digest after it are not covered by a digest
        // under a key of the ring.
        assert_eq!(r.unsigned_tail, 2);
        assert_eq!(r.digests, 2);
        assert!(
            r.warnings.iter().any(|w| w.contains("key-ring version 1")
                && w.contains("not in the key ring")
                && w.contains("until a digest under a key of the ring")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn a_digest_under_a_retired_version_is_vouched_for_by_a_later_pinned_digest() {
        // A log whose first digest was signed by version 1 (since retired), then version 2.
        let retired = DigestSigner::new(1, Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap());
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        seal_event(&mut head, b"{\"eventID\":\"a\"}", &mut out).unwrap();
        let d = seal_digest(&mut head, &retired, now(), 1, &mut out);
        seal_event(&mut head, b"{\"eventID\":\"b\"}", &mut out).unwrap();
        seal_digest(&mut head, &ring_signer(), now(), d + 1, &mut out);
        let r = verify(&out);
        assert!(r.is_ok(), "{:?}", r.problem);
        assert_eq!((r.digests, r.unsigned_tail), (2, 0));
    }
}
