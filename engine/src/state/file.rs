//! The state file on disk, before SQLite opens it: made private (the file
//! 0600, directories Lifeboat makes for it 0700) whatever the umask, and
//! never opened through a symbolic link.
//!
//! The state names every account, role and backup; a state file readable
//! by other users of a runner host says what there is to attack, and one
//! writable through a link planted at its name would let them aim
//! Lifeboat's writes at another file.
//!
//! What is made here and what SQLite makes:
//!
//! - The file itself is created here, new (`create_new`: nothing planted at
//!   the name is opened) with mode 0600 set on the open file, so no umask
//!   widens it. A file already there keeps its mode: an operator who
//!   shares it with a group on purpose keeps that.
//! - Its `-wal`, `-shm` and `-journal` companions are SQLite's: it creates
//!   each with exactly the database file's mode, umask ignored, and opens
//!   them with `O_NOFOLLOW` (a link planted at such a name makes the open
//!   fail, it is not followed).
//! - A link at the state file's own path is refused here; between that
//!   look and SQLite's open someone could still swap one in, so SQLite
//!   opens with `SQLITE_OPEN_NOFOLLOW`, which refuses any link in the path
//!   it is given: it is given the directory resolved here (links in the
//!   directories above are the user's own setup, and allowed) and the
//!   file's name. Following a link on purpose is the caller's to do
//!   (`--follow-symlinks` in the binary), by passing the link's target.

use std::path::{Path, PathBuf};

use super::store::{StateError, StateResult};

/// Prepares the state file at `path` as above and returns the path to hand
/// SQLite: the resolved directory joined with the file's name.
pub(super) fn prepare(path: &Path) -> StateResult<PathBuf> {
    let failed = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    make_dirs(dir)
        .map_err(|e| failed(format!("cannot create directory {}: {e}", dir.display())))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let target = std::fs::read_link(path).unwrap_or_default();
            return Err(StateError::Symlink {
                path: path.to_path_buf(),
                target,
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match create_private(path) {
            // Another process made it first: it is opened as found.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(format!("cannot create the file: {e}"))),
            Ok(()) => {}
        },
        Err(e) => return Err(failed(format!("cannot read the file's metadata: {e}"))),
    }
    let name = path
        .file_name()
        .ok_or_else(|| failed("the path names no file".to_string()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| failed(format!("cannot resolve directory {}: {e}", dir.display())))?;
    Ok(dir.join(name))
}

/// Creates `dir` and the missing directories above it, each 0700 whatever
/// the umask; directories already there are left as they are.
fn make_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(up) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dirs(up)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)),
    }
}

/// A new, empty file at `path`, mode exactly 0600.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_state_file_its_companions_and_its_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.db");
        let mut store = Store::open(&path).unwrap();
        store.transaction(|_| Ok(())).unwrap();
        assert_eq!(mode(&path), 0o600);
        for companion in ["state.db-wal", "state.db-shm"] {
            let p = dir.path().join("a/b").join(companion);
            assert!(p.exists(), "{companion} (WAL mode) while the store is open");
            assert_eq!(mode(&p), 0o600, "{companion}");
        }
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        // The directory the user made is left as it was.
        assert_ne!(mode(dir.path()) & 0o700, 0);
    }

    #[test]
    fn a_state_file_already_there_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn a_symlink_at_the_state_path_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("state.db");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = Store::open(&path).err().expect("a symlink is refused");
        assert!(
            matches!(err, StateError::Symlink { .. }),
            "{err}: expected a refusal of the link"
        );
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        // A link to where no file is yet is refused too, and nothing is
        // made at its target.
        let dangling = dir.path().join("other.db");
        std::os::unix::fs::symlink(dir.path().join("made.db"), &dangling).unwrap();
        assert!(Store::open(&dangling).is_err());
        assert!(!dir.path().join("made.db").exists());
    }

    #[test]
    fn a_symlink_planted_at_a_companion_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("state.db");
        let wal = dir.path().join("state.db-wal");
        let is_link = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_symlink());

        // Beside a new, empty state SQLite removes a WAL found there (the
        // link, not its target) and makes its own.
        std::os::unix::fs::symlink(&victim, &wal).unwrap();
        let mut store = Store::open(&path).unwrap();
        store.transaction(|_| Ok(())).unwrap();
        assert!(!is_link(&wal));
        drop(store);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        // Beside a state with content, the link makes the open fail
        // (`O_NOFOLLOW`).
        std::os::unix::fs::symlink(&victim, &wal).unwrap();
        let opened = Store::open(&path).and_then(|mut s| s.transaction(|_| Ok(())));
        assert!(opened.is_err(), "the WAL link is refused");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn links_in_the_directories_above_are_the_users_own_and_allowed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("via")).unwrap();
        let mut store = Store::open(&dir.path().join("via/state.db")).unwrap();
        store.transaction(|_| Ok(())).unwrap();
        assert!(dir.path().join("real/state.db").is_file());
    }
}
