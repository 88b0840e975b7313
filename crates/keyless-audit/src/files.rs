//! Reading a log directory (I/O): verification and event iteration over rotated files.

use std::path::{Path, PathBuf};

use crate::event::AuditEvent;
use crate::verify::{Anchor, KeyPins, Report, Verifier};
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

/// Verifies `files` in order (see [`crate::verify`]).
pub fn verify_files(files: &[PathBuf], pins: KeyPins) -> std::io::Result<Report> {
    verify_files_anchored(files, pins, None)
}

/// [`verify_files`], also checking that the log holds `anchor` (see [`Verifier::anchor`]).
pub fn verify_files_anchored(
    files: &[PathBuf],
    pins: KeyPins,
    anchor: Option<Anchor>,
) -> std::io::Result<Report> {
    let mut v = Verifier::new(pins);
    if let Some(a) = anchor {
        v.anchor(a);
    }
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f)?;
        v.feed_file(&f.display().to_string(), &bytes, i + 1 == files.len());
    }
    Ok(v.finish())
}

/// Calls `each` with every event of `files`, in log order (digests, torn and unreadable lines
/// are skipped: `keyless audit verify` is the place that reports them). A file that is gone by
/// the time it is read (removed by retention since it was listed) is skipped.
pub fn for_each_event(
    files: &[PathBuf],
    mut each: impl FnMut(&AuditEvent, &[u8]),
) -> std::io::Result<()> {
    for f in files {
        let bytes = match std::fs::read(f) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let Some(line) = line.strip_suffix(b"\n") else {
                continue;
            };
            if let Some(e) = parse_event_line(line) {
                each(&e, line);
            }
        }
    }
    Ok(())
}

/// Parses an event line (`None` for digests and lines that are not events).
pub fn parse_event_line(line: &[u8]) -> Option<AuditEvent> {
    memchr::memmem::find(line.get(..120).unwrap_or(line), b"\"recordType\":\"event\"")?;
    serde_json::from_slice(line).ok()
}
