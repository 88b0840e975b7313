//! Reading a log directory (I/O): verification and event iteration over rotated files, one
//! line at a time with a bounded buffer, each line fed to a [`Verifier`] as it is read.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::chain::MAX_LINE_BYTES;
use crate::event::AuditEvent;
use crate::verify::{RawLine, Report, Verifier};
pub use crate::writer::list_files;

/// The files to read for `path`: a single log file, a log directory, or a data directory with
/// an `audit/` folder.
pub fn resolve(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let nested = path.join("audit");
    let dir = if nested.is_dir() && !path.join("audit-00000000000000000001.jsonl").exists() {
        nested
    } else {
        path.to_owned()
    };
    list_files(&dir)
}

/// Splits a reader into lines, holding at most [`MAX_LINE_BYTES`] of any line: a longer one
/// is read to its end but only its start is kept (no record is that long, so the verifier
/// reports it without needing the rest).
#[derive(Debug)]
pub struct BoundedLines<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: BufRead> BoundedLines<R> {
    /// Lines of `inner`.
    pub fn new(inner: R) -> BoundedLines<R> {
        BoundedLines {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next line and whether a `\n` ended it (`false`: the bytes after the last `\n`);
    /// `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<(RawLine<'_>, bool)>> {
        self.buf.clear();
        let mut len = 0u64;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                let line = RawLine {
                    bytes: &self.buf,
                    len,
                };
                return Ok((len > 0).then_some((line, false)));
            }
            let (chunk, newline) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            len += chunk.len() as u64;
            let used = chunk.len() + usize::from(newline);
            self.inner.consume(used);
            if newline {
                let line = RawLine {
                    bytes: &self.buf,
                    len,
                };
                return Ok(Some((line, true)));
            }
        }
    }
}

/// Where a file read by [`feed_lines`] ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEnd {
    /// Bytes read up to and including the last `\n`.
    pub complete_bytes: u64,
    /// The bytes after the last `\n` (at most [`MAX_LINE_BYTES`] of them) and how many there
    /// were.
    pub partial: Option<(Vec<u8>, u64)>,
}

impl FileEnd {
    /// The partial line, as the verifier takes it.
    pub fn partial_line(&self) -> Option<RawLine<'_>> {
        self.partial
            .as_ref()
            .map(|(bytes, len)| RawLine { bytes, len: *len })
    }
}

/// Feeds every complete line of `reader` to `v` (in the file [`Verifier::begin_file`] started)
/// and hands it to `each` when it is not longer than a record can be; the bytes after the last
/// `\n` are returned, not fed, so the caller decides whether they end the file.
pub fn feed_lines(
    reader: impl Read,
    v: &mut Verifier,
    each: &mut impl FnMut(&[u8]),
) -> std::io::Result<FileEnd> {
    let mut lines = BoundedLines::new(BufReader::with_capacity(64 * 1024, reader));
    let mut end = FileEnd::default();
    while let Some((line, complete)) = lines.next_line()? {
        if !complete {
            end.partial = Some((line.bytes.to_vec(), line.len));
            break;
        }
        v.line(line);
        end.complete_bytes += line.len + 1;
        if line.len == line.bytes.len() as u64 {
            each(line.bytes);
        }
    }
    Ok(end)
}

/// Reads `files` in order into `v`, handing every complete line to `each`. A file that is gone
/// by the time it is read (removed by retention since it was listed) is skipped. With
/// `end_last`, the newest file is ended too (its torn final line judged); without it, the
/// newest file stays open in `v` and its end is returned, for a reader that follows the log.
pub fn read_files(
    files: &[PathBuf],
    v: &mut Verifier,
    end_last: bool,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<Option<(PathBuf, FileEnd)>> {
    let mut newest = None;
    for (i, f) in files.iter().enumerate() {
        let file = match File::open(f) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        v.begin_file(&f.display().to_string());
        let end = feed_lines(file, v, &mut each)?;
        let last = i + 1 == files.len();
        if last && !end_last {
            newest = Some((f.clone(), end));
        } else {
            v.end_file(end.partial_line(), last);
        }
    }
    Ok(newest)
}

/// Verifies `files` in order with `v` (see [`crate::verify`]).
pub fn verify_files(files: &[PathBuf], mut v: Verifier) -> std::io::Result<Report> {
    read_files(files, &mut v, true, |_| {})?;
    Ok(v.finish())
}

/// Calls `each` with every event of `files`, in log order, while `v` verifies every line (the
/// caller takes the outcome from `v`). Digests and lines that are not events are not handed
/// out; events are, whether they verify or not (what the log holds, for the caller to show
/// beside the verdict).
pub fn for_each_event(
    files: &[PathBuf],
    v: &mut Verifier,
    mut each: impl FnMut(&AuditEvent, &[u8]),
) -> std::io::Result<()> {
    read_files(files, v, true, |line| {
        if let Some(e) = parse_event_line(line) {
            each(&e, line);
        }
    })?;
    Ok(())
}

/// Parses an event line (`None` for digests and lines that are not events).
pub fn parse_event_line(line: &[u8]) -> Option<AuditEvent> {
    memchr::memmem::find(line.get(..120).unwrap_or(line), b"\"recordType\":\"event\"")?;
    serde_json::from_slice(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(bytes: &[u8]) -> Vec<(Vec<u8>, u64, bool)> {
        let mut lines = BoundedLines::new(std::io::BufReader::with_capacity(7, bytes));
        let mut out = Vec::new();
        while let Some((l, complete)) = lines.next_line().unwrap() {
            out.push((l.bytes.to_vec(), l.len, complete));
        }
        out
    }

    #[test]
    fn lines_are_split_across_buffer_refills_and_the_tail_is_partial() {
        assert_eq!(
            lines_of(b"abcdefghij\n\nxy\nrest"),
            vec![
                (b"abcdefghij".to_vec(), 10, true),
                (Vec::new(), 0, true),
                (b"xy".to_vec(), 2, true),
                (b"rest".to_vec(), 4, false),
            ]
        );
        assert!(lines_of(b"").is_empty());
    }

    /// A reader of `n` bytes of `x` (nothing held), then `rest`.
    fn huge(n: u64, rest: &'static [u8]) -> impl Read {
        std::io::repeat(b'x').take(n).chain(rest)
    }

    #[test]
    fn a_huge_line_is_reported_without_being_loaded() {
        let pins = crate::verify::KeyPins::default();
        for (rest, message) in [
            (&b"\n"[..], "the line is 67108864 bytes long"),
            (
                &b""[..],
                "67108864 bytes without a newline end the newest file",
            ),
        ] {
            let mut v = Verifier::new(pins.clone());
            v.begin_file("audit-1.jsonl");
            let mut handed = 0;
            let end = feed_lines(huge(64 << 20, rest), &mut v, &mut |_| handed += 1).unwrap();
            assert_eq!(handed, 0, "a line longer than a record is not handed out");
            if let Some((held, len)) = &end.partial {
                assert_eq!((held.len(), *len), (MAX_LINE_BYTES, 64 << 20));
            }
            v.end_file(end.partial_line(), true);
            let p = v.finish().problem.unwrap();
            assert_eq!((p.line, p.kind), (1, crate::verify::ProblemKind::Broken));
            assert!(p.message.starts_with(message), "{}", p.message);
        }
        // The buffer never holds more than a record's worth.
        let mut lines = BoundedLines::new(BufReader::new(huge(64 << 20, b"\n")));
        let (line, complete) = lines.next_line().unwrap().unwrap();
        assert_eq!((line.len, complete), (64 << 20, true));
        assert!(lines.buf.capacity() <= 2 * MAX_LINE_BYTES);
    }

    #[test]
    fn a_line_longer_than_any_record_keeps_only_its_start() {
        let mut bytes = vec![b'x'; MAX_LINE_BYTES + 10];
        bytes.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&bytes);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0.len(), MAX_LINE_BYTES);
        assert_eq!((lines[0].1, lines[0].2), (MAX_LINE_BYTES as u64 + 10, true));
        assert_eq!(lines[1], (b"next".to_vec(), 4, true));
    }
}
