//! The key ring file: created on first start with mode 0600, refused if anyone but its owner
//! can read it, if someone else owns it or if others may replace it, and reloaded when
//! `keyless keys rotate` changes it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    /// Someone other than this process's user (or root) owns it or its directory: they chose
    /// the root secrets, or can swap them.
    #[error(
        "{path}: owned by uid {owner}, but keyless runs as uid {user}; the key ring and its directory must belong to the user keyless runs as (or root); run: chown {user} {path}"
    )]
    Owner {
        /// The file or directory.
        path: String,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        user: u32,
    },
    /// Group or other may write the directory (without the sticky bit), so they can delete the
    /// ring (a new one is made at the next start, ending every session) or rename it away.
    #[error(
        "{path}: the directory holding the key ring is writable by group or others (mode {mode:o}), who could replace or remove the ring; run: chmod go-w {path}"
    )]
    DirectoryWritable {
        /// The directory.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// There is no ring at the path (only `keyless serve` creates one).
    #[error(
        "{path}: no key ring here; keyless serve creates it at its first start: is this the server's data dir (or its config)?"
    )]
    Missing {
        /// The file.
        path: String,
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

/// Who may own the ring and its directory: the user this process runs as, or root (who can
/// read and replace anything anyway, and who owns the directory when an operator made it).
/// Root itself (a root server, or an operator's `sudo keyless audit verify`) also trusts the
/// directory's owner as the service's user, for the ring and the directory both: whoever owns
/// the data dir holds its store and log already.
fn may_own(owner: u32, user: u32, dir_owner: Option<u32>) -> bool {
    owner == user || owner == 0 || (user == 0 && dir_owner == Some(owner))
}

/// What is wrong with the ring's ownership and modes, if anything (pure: the metadata is read
/// by [`check_permissions`]). `dir` is the directory's (owner, mode).
fn permission_problem(
    path: &Path,
    file: (u32, u32),
    dir: Option<(&Path, u32, u32)>,
    user: u32,
) -> Option<KeyRingFileError> {
    let (owner, mode) = file;
    if mode & 0o077 != 0 {
        return Some(KeyRingFileError::Permissions {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    if !may_own(owner, user, dir.map(|(_, o, _)| o)) {
        return Some(KeyRingFileError::Owner {
            path: path.display().to_string(),
            owner,
            user,
        });
    }
    let (dir, dir_owner, dir_mode) = dir?;
    if !may_own(dir_owner, user, Some(dir_owner)) {
        return Some(KeyRingFileError::Owner {
            path: dir.display().to_string(),
            owner: dir_owner,
            user,
        });
    }
    // The sticky bit (as on /tmp) stops others from removing or renaming what they don't own.
    if dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0 {
        return Some(KeyRingFileError::DirectoryWritable {
            path: dir.display().to_string(),
            mode: dir_mode & 0o7777,
        });
    }
    None
}

/// Refuses a ring that others can read, that someone else owns, or whose directory others can
/// write. For a symbolic link, the directory of the file it leads to is checked too: whoever may
/// write there can replace the ring behind the link.
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), KeyRingFileError> {
    check_in_dir(path, meta)?;
    let is_link = fs::symlink_metadata(path)
        .map_err(io(path))?
        .file_type()
        .is_symlink();
    if is_link {
        let real = fs::canonicalize(path).map_err(io(path))?;
        check_in_dir(&real, meta)?;
    }
    Ok(())
}

/// [`check_permissions`] for the file `meta` describes and the directory holding `path`.
fn check_in_dir(path: &Path, meta: &fs::Metadata) -> Result<(), KeyRingFileError> {
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    };
    let dir_meta = match dir {
        Some(d) => Some((d, fs::metadata(d).map_err(io(d))?)),
        None => None,
    };
    let user = rustix::process::geteuid().as_raw();
    match permission_problem(
        path,
        (meta.uid(), meta.permissions().mode()),
        dir_meta
            .as_ref()
            .map(|(d, m)| (*d, m.uid(), m.permissions().mode())),
        user,
    ) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn missing(path: &Path) -> KeyRingFileError {
    KeyRingFileError::Missing {
        path: path.display().to_string(),
    }
}

/// Loads the ring, checking ownership and permissions first.
pub fn load(path: &Path) -> Result<KeyRing, KeyRingFileError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(path),
        _ => io(path)(e),
    })?;
    check_permissions(path, &meta)?;
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
    keep_service_owner(&f, path, &lock_path)?;
    f.lock().map_err(io(&lock_path))?;
    Ok(f)
}

/// Run as root (`sudo keyless keys rotate`), gives `file` the owner of the ring at `ring` (or,
/// before there is one, of its directory): a root-owned 0600 ring is one the server's user
/// cannot read, so the running server kept sealing with the old version (and a revocation of
/// that version then ended every new session), and the next start failed.
fn keep_service_owner(file: &fs::File, ring: &Path, named: &Path) -> Result<(), KeyRingFileError> {
    if rustix::process::geteuid().as_raw() != 0 {
        return Ok(());
    }
    let owner = match fs::metadata(ring) {
        Ok(m) => (m.uid(), m.gid()),
        Err(_) => match ring.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => {
                let m = fs::metadata(dir).map_err(io(dir))?;
                (m.uid(), m.gid())
            }
            None => return Ok(()),
        },
    };
    let meta = file.metadata().map_err(io(named))?;
    if (meta.uid(), meta.gid()) != owner {
        std::os::unix::fs::fchown(file, Some(owner.0), Some(owner.1)).map_err(io(named))?;
    }
    Ok(())
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
    keep_service_owner(&f, path, &tmp)?;
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

/// The file a ring path names: the one a symbolic link leads to (a ring kept on a secrets
/// volume, linked into the data dir), so that writing it updates that file rather than
/// replacing the link with a copy the volume never sees.
fn written_path(path: &Path) -> Result<PathBuf, KeyRingFileError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(io(path)),
        _ => Ok(path.to_owned()),
    }
}

/// Writes the ring atomically, holding the writers' lock.
pub fn save(path: &Path, ring: &KeyRing) -> Result<(), KeyRingFileError> {
    let path = &written_path(path)?;
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
    // Before the lock, which would leave its file in a directory that is not a data dir.
    if !path.exists() {
        return Err(missing(path));
    }
    let path = &written_path(path)?;
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
    fn a_directory_others_can_write_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        load_or_create(&path, now()).unwrap();
        for (mode, refused) in [(0o700, false), (0o755, false), (0o775, true), (0o777, true)] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let r = load(&path);
            assert_eq!(r.is_err(), refused, "{mode:o}: {:?}", r.err());
            if refused {
                let e = load_or_create(&path, now()).unwrap_err().to_string();
                assert!(e.contains("chmod go-w"), "{e}");
            }
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(load(&path).is_ok());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_link_to_a_ring_in_a_directory_others_can_write_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let shared = tempfile::tempdir().unwrap();
        let real = shared.path().join("ring.json");
        load_or_create(&real, now()).unwrap();
        let path = path_in(data.path());
        std::os::unix::fs::symlink(&real, &path).unwrap();
        assert!(
            load(&path).is_ok(),
            "a link into a private directory is fine"
        );
        // A rotation writes the file the link leads to and keeps the link.
        assert_eq!(rotate(&path, now()).unwrap(), 2);
        assert!(
            fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(load(&real).unwrap().versions().len(), 2);
        assert!(!data.path().join("keyring.json.lock").exists());
        // Anyone may swap the file the link leads to, and choose the root secrets.
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        let real_dir = fs::canonicalize(shared.path()).unwrap();
        assert!(
            e.contains(&format!(
                "{}: the directory holding the key ring is writable",
                real_dir.display()
            )),
            "{e}"
        );
        assert!(rotate(&path, now()).is_err());
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_rotation_run_as_root_keeps_the_rings_owner() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("not root: nothing to check (the ownership fix only acts for root)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        load_or_create(&path, now()).unwrap();
        // The service user's data dir and ring, rotated by an operator with sudo.
        let (uid, gid) = (4242, 4243);
        for p in [
            dir.path(),
            path.as_path(),
            path.with_extension("json.lock").as_path(),
        ] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
        assert_eq!(rotate(&path, now()).unwrap(), 2);
        for p in [path.clone(), path.with_extension("json.lock")] {
            let m = fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", p.display());
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
        // A first ring made by root in the service user's directory is the service user's too.
        let fresh = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(fresh.path(), Some(uid), Some(gid)).unwrap();
        let ring = path_in(fresh.path());
        load_or_create(&ring, now()).unwrap();
        let m = fs::metadata(&ring).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
    }

    #[test]
    fn owned_by_another_user_is_refused() {
        let path = Path::new("/data/keyring.json");
        let dir = Some((Path::new("/data"), 1000, 0o700));
        let problem = |file, dir, user| permission_problem(path, file, dir, user);
        assert!(problem((1000, 0o600), dir, 1000).is_none());
        // Root may own either: an operator's directory, or a ring a root server made.
        assert!(problem((0, 0o600), Some((Path::new("/data"), 0, 0o755)), 1000).is_none());
        // Another user chose the secrets (a root server would read them happily).
        let e = problem((1001, 0o600), dir, 0).unwrap().to_string();
        assert!(
            e.contains("owned by uid 1001") && e.contains("chown 0"),
            "{e}"
        );
        assert!(problem((1001, 0o600), dir, 1000).is_some());
        // Root reading the service user's data dir (`sudo keyless audit verify`).
        assert!(problem((1000, 0o600), dir, 0).is_none());
        // Another user owns the directory: they can chmod it and swap the ring.
        let e = problem((1000, 0o600), Some((Path::new("/data"), 1001, 0o700)), 1000)
            .unwrap()
            .to_string();
        assert!(e.starts_with("/data: owned by uid 1001"), "{e}");
        // The mode is still checked first, and a missing parent (a bare name) is fine.
        assert!(matches!(
            problem((1000, 0o640), dir, 1000),
            Some(KeyRingFileError::Permissions { mode: 0o640, .. })
        ));
        assert!(problem((1000, 0o600), None, 1000).is_none());
    }

    #[test]
    fn rotating_where_there_is_no_ring_says_so_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        for e in [rotate(&path, now()).unwrap_err(), load(&path).unwrap_err()] {
            let message = e.to_string();
            assert!(
                message.contains("no key ring here")
                    && message.contains("is this the server's data dir"),
                "{message}"
            );
        }
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "a stray lock file: {left:?}");
    }

    #[test]
    fn an_empty_ring_is_not_sent_back_to_keys_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let empty = r#"{"format":"keyless-keyring-v1","keys":[]}"#;
        fs::write(&path, empty).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        // `keys rotate` reads the ring first, so advising it would send the operator in a loop.
        let e = rotate(&path, now()).unwrap_err().to_string();
        assert!(!e.contains("keys rotate"), "{e}");
        assert!(e.contains("restore keyring.json from a backup"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), empty, "unchanged");
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
