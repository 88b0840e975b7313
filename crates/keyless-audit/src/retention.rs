//! Which closed log files retention may remove, judged by what the log itself says (I/O: reads
//! the files; `now` comes in).
//!
//! A file's age is the `digestTime` of the signed digest that closes it, never its mtime: the
//! writer chains and signs a `retention` record before removing files, so `keyless audit
//! verify` accepts the gap they leave. Were age read from the file system, anyone who can
//! `touch -d` a file (but not read the key ring) could have the server remove recent records and
//! vouch for the gap. A file goes only when its records chain, hash by hash, into that final
//! digest, the digest's signature verifies under a key-ring key, and the next file's first
//! record chains from it; anything else keeps the file and says why.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::chain::{CheckedLine, MAX_LINE_BYTES, check_line};
use crate::files::BoundedLines;
use crate::writer::first_seq_in_name;

/// Most files one pass removes: the retention record names them all, and a record must stay
/// far below [`MAX_LINE_BYTES`]. A backlog (retention just turned on) goes over the next passes.
pub const MAX_REMOVED_PER_PASS: usize = 1000;

/// What a pass may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The oldest files, in order.
    pub files: Vec<PathBuf>,
    /// The file the log then starts with.
    pub kept: PathBuf,
    /// Its first record's `seq`, which chains from the last removed record...
    pub from_seq: u64,
    /// ...whose hash is that record's `prevHash`.
    pub from_prev_hash: [u8; 32],
}

/// The outcome of a look at the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What may go now, if anything.
    pub removal: Option<Removal>,
    /// Why the run of removable files stopped short of an old-enough file, when it did for a
    /// reason the operator should see (a file that does not verify, or not under a key-ring
    /// key). Files that are simply too young say nothing.
    pub held_back: Option<String>,
}

/// The longest run of the oldest `files` (oldest first, as [`crate::writer::list_files`] gives
/// them), at most [`MAX_REMOVED_PER_PASS`], each before `current`, closed by a digest signed
/// under one of `keys` (key-ring version → Ed25519 public key) at least `max_age` before `now`,
/// and holding no record after `floor` (a file's last `seq` is one before the next file's
/// first).
pub fn plan(
    files: &[PathBuf],
    current: &Path,
    max_age: Duration,
    floor: u64,
    now: OffsetDateTime,
    keys: &BTreeMap<u32, [u8; 32]>,
) -> Plan {
    plan_at_most(
        files,
        current,
        max_age,
        floor,
        now,
        keys,
        MAX_REMOVED_PER_PASS,
    )
}

/// [`plan`], removing at most `limit` files.
pub fn plan_at_most(
    files: &[PathBuf],
    current: &Path,
    max_age: Duration,
    floor: u64,
    now: OffsetDateTime,
    keys: &BTreeMap<u32, [u8; 32]>,
    limit: usize,
) -> Plan {
    let cutoff = now - max_age;
    let mut remove = Vec::new();
    let mut last: Option<(u64, [u8; 32])> = None;
    let mut kept = None;
    let mut held_back = None;
    for pair in files.windows(2).take(limit) {
        let [file, next] = pair else { break };
        if file.as_path() == current {
            break;
        }
        let Some(next_first) = first_seq_in_name(next) else {
            break;
        };
        if next_first.saturating_sub(1) > floor {
            break;
        }
        match removable(file, last, cutoff, keys) {
            Ok(Some(end)) => {
                last = Some(end);
                remove.push(file.clone());
                kept = Some(next.clone());
            }
            Ok(None) => break,
            Err(why) => {
                held_back = Some(format!("{} is kept: {why}", file.display()));
                break;
            }
        }
    }
    let (Some(kept), Some((last_seq, last_hash))) = (kept, last) else {
        return Plan {
            removal: None,
            held_back,
        };
    };
    // The log will start with this record, so it must chain from the last one removed.
    let start = match first_line(&kept).map(|line| check_line(&line)) {
        Ok(Ok(start)) if start.seq == last_seq + 1 && start.prev_hash == last_hash => start,
        Ok(Ok(_)) => {
            return Plan {
                removal: None,
                held_back: Some(format!(
                    "nothing removed: the first record of {} does not chain from the end of the \
                     file before it",
                    kept.display()
                )),
            };
        }
        Ok(Err(e)) => {
            return Plan {
                removal: None,
                held_back: Some(format!(
                    "nothing removed: the first record of {}, which the log would start with, \
                     does not verify: {e}",
                    kept.display()
                )),
            };
        }
        Err(e) => {
            return Plan {
                removal: None,
                held_back: Some(format!(
                    "nothing removed: cannot read the first record of {}: {e}",
                    kept.display()
                )),
            };
        }
    };
    Plan {
        removal: Some(Removal {
            files: remove,
            kept,
            from_seq: start.seq,
            from_prev_hash: start.prev_hash,
        }),
        held_back,
    }
}

/// The `(seq, hash)` of `file`'s last record when the file may go: it ends with a digest signed
/// under `keys` no later than `cutoff`, and every record chains into it (and from `before`, the
/// end of the file removed just before it). `Ok(None)`: too young. `Err`: it cannot be vouched
/// for.
fn removable(
    file: &Path,
    before: Option<(u64, [u8; 32])>,
    cutoff: OffsetDateTime,
    keys: &BTreeMap<u32, [u8; 32]>,
) -> Result<Option<(u64, [u8; 32])>, String> {
    // The final digest first: a file too young to go is not read further.
    let closing = last_line(file).map_err(|e| format!("cannot read its last line: {e}"))?;
    let closing =
        check_line(&closing).map_err(|e| format!("its last line does not verify: {e}"))?;
    let digest = closing
        .digest
        .as_ref()
        .ok_or("it does not end with a signed digest, so its age cannot be vouched for")?;
    if !digest.signature_valid {
        return Err("the signature of its closing digest does not verify".into());
    }
    let pinned = keys
        .get(&digest.key_version)
        .is_some_and(|k| k[..] == digest.public_key[..]);
    if !pinned {
        return Err(format!(
            "its closing digest is not signed by key-ring version {}'s audit key",
            digest.key_version
        ));
    }
    let signed_at = OffsetDateTime::parse(&digest.digest_time, &Rfc3339)
        .map_err(|e| format!("its closing digest's time does not parse: {e}"))?;
    if signed_at > cutoff {
        return Ok(None);
    }
    let end = chain_end(file, before)?;
    if end != (closing.seq, closing.hash) {
        return Err("its records do not chain into its closing digest".into());
    }
    Ok(Some(end))
}

/// Checks that every line of `file` is a record chained to the one before (the first to
/// `before`, when given) and returns the last one's `(seq, hash)`.
fn chain_end(file: &Path, before: Option<(u64, [u8; 32])>) -> Result<(u64, [u8; 32]), String> {
    let f = File::open(file).map_err(|e| format!("cannot open it: {e}"))?;
    let mut lines = BoundedLines::new(BufReader::with_capacity(64 * 1024, f));
    let mut prev = before;
    let mut line_no = 0usize;
    while let Some((line, complete)) = lines
        .next_line()
        .map_err(|e| format!("cannot read it: {e}"))?
    {
        line_no += 1;
        if !complete || line.len != line.bytes.len() as u64 {
            return Err(format!("line {line_no} is torn or too long"));
        }
        let checked: CheckedLine =
            check_line(line.bytes).map_err(|e| format!("line {line_no} does not verify: {e}"))?;
        if let Some((seq, hash)) = prev
            && (checked.seq != seq + 1 || checked.prev_hash != hash)
        {
            return Err(format!(
                "line {line_no} (seq {}) does not chain from the record before it",
                checked.seq
            ));
        }
        prev = Some((checked.seq, checked.hash));
    }
    prev.ok_or_else(|| "it holds no record".into())
}

/// The first line of a file (without its `\n`), at most [`MAX_LINE_BYTES`] long.
pub(crate) fn first_line(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    match memchr::memchr(b'\n', &bytes) {
        Some(end) => {
            bytes.truncate(end);
            Ok(bytes)
        }
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no complete first line",
        )),
    }
}

/// The last line of a closed file (without its `\n`), reading at most a record's length from
/// its end.
fn last_line(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let window = len.min(MAX_LINE_BYTES as u64 + 2);
    f.seek(SeekFrom::Start(len - window))?;
    let mut bytes = Vec::with_capacity(window as usize);
    f.take(window).read_to_end(&mut bytes)?;
    let body = bytes.strip_suffix(b"\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it does not end with a newline",
        )
    })?;
    match memchr::memrchr(b'\n', body) {
        Some(i) => Ok(body[i + 1..].to_vec()),
        // The whole window is one line: all of the file, or a line longer than any record.
        None if window == len => Ok(body.to_vec()),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "its last line is longer than any record",
        )),
    }
}
