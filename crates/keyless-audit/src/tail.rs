//! Following a log directory from outside the writer (I/O): [`Tail`] hands out, in `seq` order,
//! every complete record written after a given `seq`, across rotations.
//!
//! Secondary sinks (the Postgres table) read the files this way instead of taking records from
//! the writer: the file is the durable source, a sink that falls behind or is down costs the
//! writer nothing, and catching up after an outage or a restart is the same code path as
//! keeping up. Only complete lines (ending in `\n`) are returned, so a line being written is
//! picked up on the next poll; each returned line has been checked against its hash.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;

use crate::chain::{CheckedLine, MAX_LINE_BYTES, check_line, peek_seq};
use crate::writer::list_files;

/// One record read from the log.
#[derive(Debug, Clone)]
pub struct TailRecord {
    /// The checked record (seq, hash, parsed JSON).
    pub checked: CheckedLine,
    /// The line, without its `\n`.
    pub line: Vec<u8>,
}

/// What a poll found besides records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailNotes {
    /// Lines that did not verify (skipped; `keyless audit verify` reports them).
    pub damaged: u64,
    /// The `seq` the tail expected next when the oldest file on disk starts later (records
    /// moved away or deleted): `(expected, found)`.
    pub gap: Option<(u64, u64)>,
}

/// A reader that follows the log files of one directory.
#[derive(Debug)]
pub struct Tail {
    dir: PathBuf,
    after: u64,
    file: Option<PathBuf>,
    offset: u64,
}

/// Most bytes read per poll (a few thousand records).
const CHUNK: u64 = 8 * 1024 * 1024;

impl Tail {
    /// A tail of `dir` that returns records with `seq > after`.
    pub fn new(dir: impl Into<PathBuf>, after: u64) -> Tail {
        Tail {
            dir: dir.into(),
            after,
            file: None,
            offset: 0,
        }
    }

    /// The highest `seq` returned so far (or the starting point).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// Reads up to `max` records past the position (events and digests alike); an empty
    /// result means nothing new has been written yet.
    pub fn poll(&mut self, max: usize) -> std::io::Result<(Vec<TailRecord>, TailNotes)> {
        let mut out = Vec::new();
        let mut notes = TailNotes::default();
        if self.file.is_none() && !self.pick_file(&mut notes)? {
            return Ok((out, notes));
        }
        loop {
            let read_all = match self.read_current(max, &mut out, &mut notes) {
                Ok(read_all) => read_all,
                // Removed by retention (or by hand) under us: go on from the file that now
                // holds the next record.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.file = None;
                    if !self.pick_file(&mut notes)? {
                        return Ok((out, notes));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if out.len() >= max || !read_all {
                return Ok((out, notes));
            }
            // The current file is read to its end. The writer creates the next file only after
            // its last write to this one, so once a newer file exists, one more read of this
            // file gets everything it will ever hold.
            let Some(next) = self.next_file()? else {
                return Ok((out, notes));
            };
            let read_all = self.read_current(max, &mut out, &mut notes)?;
            if out.len() >= max || !read_all {
                return Ok((out, notes));
            }
            self.file = Some(next);
            self.offset = 0;
        }
    }

    /// Chooses the file that holds `after + 1`; false when there is no log file yet.
    fn pick_file(&mut self, notes: &mut TailNotes) -> std::io::Result<bool> {
        let files = match list_files(&self.dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let want = self.after + 1;
        let chosen = files
            .iter()
            .rev()
            .find(|p| crate::writer::first_seq_in_name(p).is_some_and(|s| s <= want))
            .or_else(|| files.first());
        let Some(chosen) = chosen else {
            return Ok(false);
        };
        if let Some(first) = crate::writer::first_seq_in_name(chosen)
            && first > want
        {
            notes.gap = Some((want, first));
        }
        self.file = Some(chosen.clone());
        self.offset = 0;
        Ok(true)
    }

    fn next_file(&self) -> std::io::Result<Option<PathBuf>> {
        let Some(current) = &self.file else {
            return Ok(None);
        };
        Ok(list_files(&self.dir)?
            .into_iter()
            .find(|p| p.file_name() > current.file_name()))
    }

    /// Reads complete lines of the current file from the offset; true when it reached the end
    /// of what is written.
    fn read_current(
        &mut self,
        max: usize,
        out: &mut Vec<TailRecord>,
        notes: &mut TailNotes,
    ) -> std::io::Result<bool> {
        let Some(path) = &self.file else {
            return Ok(true);
        };
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < self.offset {
            // Cut by the writer's crash recovery (a torn line): re-read from the start.
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.take(CHUNK).read_to_end(&mut bytes)?;
        let at_end = self.offset + bytes.len() as u64 >= len;
        let mut consumed = 0usize;
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let Some(body) = line.strip_suffix(b"\n") else {
                // Still being written, or longer than the chunk: take it next time.
                if line.len() > MAX_LINE_BYTES {
                    consumed += line.len();
                    notes.damaged += 1;
                }
                break;
            };
            if out.len() >= max {
                self.offset += consumed as u64;
                return Ok(false);
            }
            consumed += line.len();
            let Some(seq) = peek_seq(body) else {
                notes.damaged += 1;
                continue;
            };
            if seq <= self.after {
                continue;
            }
            match check_line(body) {
                Ok(checked) => {
                    self.after = checked.seq;
                    out.push(TailRecord {
                        checked,
                        line: body.to_vec(),
                    });
                }
                Err(_) => notes.damaged += 1,
            }
        }
        self.offset += consumed as u64;
        Ok(at_end && self.offset >= len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainHead, seal_event};
    use crate::event::{AuditEvent, SOURCE_KEYLESS};
    use std::io::Write as _;
    use std::path::Path;
    use time::OffsetDateTime;

    fn line(head: &mut ChainHead, name: &str) -> Vec<u8> {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let e = AuditEvent::new(now, SOURCE_KEYLESS, name, "r", "e");
        let mut out = Vec::new();
        seal_event(head, &e.to_body().unwrap(), &mut out).unwrap();
        out
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn seqs(records: &[TailRecord]) -> Vec<u64> {
        records.iter().map(|r| r.checked.seq).collect()
    }

    #[test]
    fn follows_appends_partial_lines_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("audit-00000000000000000001.jsonl");
        let mut head = ChainHead::genesis();
        let mut tail = Tail::new(dir.path(), 0);
        assert!(tail.poll(10).unwrap().0.is_empty());

        append(&first, &line(&mut head, "A"));
        let second = line(&mut head, "B");
        // Half a line: not returned until it is complete.
        append(&first, &second[..10]);
        let (got, notes) = tail.poll(10).unwrap();
        assert_eq!(seqs(&got), vec![1]);
        assert_eq!(notes, TailNotes::default());
        append(&first, &second[10..]);
        append(&first, &line(&mut head, "C"));
        // `max` bounds a poll; the rest comes next time.
        assert_eq!(seqs(&tail.poll(1).unwrap().0), vec![2]);
        assert_eq!(seqs(&tail.poll(10).unwrap().0), vec![3]);

        // Rotation: the last line of the old file is written just before the new file appears.
        append(&first, &line(&mut head, "D"));
        let rotated = dir.path().join("audit-00000000000000000005.jsonl");
        append(&rotated, &line(&mut head, "E"));
        assert_eq!(seqs(&tail.poll(10).unwrap().0), vec![4, 5]);
        assert_eq!(tail.position(), 5);

        // A new tail resumes after a given seq, in the right file.
        let mut resumed = Tail::new(dir.path(), 4);
        assert_eq!(seqs(&resumed.poll(10).unwrap().0), vec![5]);
        let mut from_start = Tail::new(dir.path(), 0);
        assert_eq!(seqs(&from_start.poll(10).unwrap().0), vec![1, 2, 3, 4, 5]);

        // The file a tail is in is removed (retention): it goes on in the next one, saying
        // what it could not read.
        let mut behind = Tail::new(dir.path(), 2);
        assert_eq!(seqs(&behind.poll(1).unwrap().0), vec![3]);
        std::fs::remove_file(&first).unwrap();
        let (got, notes) = behind.poll(10).unwrap();
        assert_eq!(seqs(&got), vec![5]);
        assert_eq!(notes.gap, Some((4, 5)));
    }

    #[test]
    fn damaged_lines_are_counted_and_skipped_and_gaps_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut head = ChainHead {
            next_seq: 7,
            prev_hash: [1; 32],
        };
        let path = dir.path().join("audit-00000000000000000007.jsonl");
        let mut good = line(&mut head, "A");
        append(&path, &good);
        let mut altered = line(&mut head, "B");
        let at = altered.len() - 80;
        altered[at] ^= 1;
        append(&path, &altered);
        good.clear();
        append(&path, &line(&mut head, "C"));
        let mut tail = Tail::new(dir.path(), 0);
        let (got, notes) = tail.poll(10).unwrap();
        assert_eq!(seqs(&got), vec![7, 9]);
        assert_eq!(notes.damaged, 1);
        assert_eq!(notes.gap, Some((1, 7)));
    }
}
