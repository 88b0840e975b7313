//! The key ring file: created on first start with mode 0600, refused if anyone but its owner
//! can read it, and reloaded when `keyless keys rotate` changes it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use keyless_token::KeyRing;
use keyless_types::OffsetDateTime;

/// The file name under the data dir.
pub const FILE_NAME: &str = "keyring.json";

/// Why the key ring could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingFileError {
    /// Group or other may read or write it.
    #[error(
        "{path}: the key ring file must be readable only by its owner (mode {mode:o}); run: chmod 600 {path}"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// I/O.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
    /// Not a key ring.
    #[error("{path}: {error}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        error: keyless_token::KeyRingError,
    },
}

/// The key ring path for a data dir.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyRingFileError + '_ {
    move |error| KeyRingFileError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// Loads the ring, checking permissions first.
pub fn load(path: &Path) -> Result<KeyRing, KeyRingFileError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyRingFileError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(io(path))?;
    KeyRing::from_file_str(&text).map_err(|error| KeyRingFileError::Format {
        path: path.display().to_string(),
        error,
    })
}

/// Takes the lock that serializes writers of the ring at `path` (a sidecar file, mode 0600),
/// released when the returned file drops. Without it two `keyless keys rotate` at once shared
/// one temp file: one renamed the other's half-written file into place (a truncated ring),
/// and a rotation read before the other's save was lost with the version it added.
fn lock(path: &Path) -> Result<fs::File, KeyRingFileError> {
    let lock_path = path.with_extension("json.lock");
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    f.lock().map_err(io(&lock_path))?;
    Ok(f)
}

/// Writes the ring atomically (temp file with mode 0600, then rename, then the directory
/// synced so the rename survives a crash). Writers hold [`lock`].
fn save_locked(path: &Path, ring: &KeyRing) -> Result<(), KeyRingFileError> {
    let text = ring
        .to_file_string()
        .map_err(|error| KeyRingFileError::Format {
            path: path.display().to_string(),
            error,
        })?;
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(text.expose().as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

/// Writes the ring atomically, holding the writers' lock.
pub fn save(path: &Path, ring: &KeyRing) -> Result<(), KeyRingFileError> {
    let _lock = lock(path)?;
    save_locked(path, ring)
}

/// Loads the ring, or creates a new one (first start).
pub fn load_or_create(path: &Path, now: OffsetDateTime) -> Result<KeyRing, KeyRingFileError> {
    if path.exists() {
        return load(path);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let _lock = lock(path)?;
    // Another process may have created it meanwhile.
    if path.exists() {
        return load(path);
    }
    let ring =
        KeyRing::generate(now, &mut rand::rng()).map_err(|error| KeyRingFileError::Format {
            path: path.display().to_string(),
            error,
        })?;
    save_locked(path, &ring)?;
    Ok(ring)
}

/// Adds a version to the ring file; returns the new version id.
pub fn rotate(path: &Path, now: OffsetDateTime) -> Result<u32, KeyRingFileError> {
    let _lock = lock(path)?;
    let mut ring = load(path)?;
    let id = ring
        .rotate(now, &mut rand::rng())
        .map_err(|error| KeyRingFileError::Format {
            path: path.display().to_string(),
            error,
        })?;
    save_locked(path, &ring)?;
    Ok(id)
}

/// The file's modification time, to notice rotations.
pub fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn created_owner_only_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let ring = load_or_create(&path, now()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(ring.current_id(), 1);
        assert_eq!(rotate(&path, now()).unwrap(), 2);
        assert_eq!(load(&path).unwrap().versions().len(), 2);
    }

    #[test]
    fn concurrent_rotations_each_add_a_version_and_never_leave_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        load_or_create(&path, now()).unwrap();
        let (threads, each) = (8, 10);
        let failures: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        (0..each)
                            .filter_map(|_| rotate(&path, now()).err().map(|e| e.to_string()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(failures.is_empty(), "{failures:?}");
        let ring = load(&path).unwrap();
        assert_eq!(ring.versions().len(), 1 + threads * each);
        assert_eq!(ring.current_id() as usize, 1 + threads * each);
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        load_or_create(&path, now()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(load_or_create(&path, now()).is_err());
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"format\":\"x\",\"keys\":[{\"secret\":\"c2VjcmV0\"}]}")
            .unwrap();
        let e = load(&path).unwrap_err();
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    }
}
