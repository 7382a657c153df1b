//! The files Lifeboat writes for its user (saved plans, restore plans,
//! reports, exported templates, configuration rewritten by `fmt`) and the
//! rule it keeps for each: whole or not at all, private to the owner
//! whatever the umask, and never through a symbolic link someone planted
//! at the name unless `--follow-symlinks` says so. Also the bounded reads
//! of files handed to it, so that a wrong or hostile file cannot exhaust
//! memory.
//!
//! The state file keeps the same symlink rule in the engine
//! (`state::Store::open`); [`state_path`] resolves its link here when the
//! user asked for that.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

/// `--follow-symlinks`: set once, from the command line, before any file is
/// written.
static FOLLOW_SYMLINKS: AtomicBool = AtomicBool::new(false);

pub fn follow_symlinks(on: bool) {
    FOLLOW_SYMLINKS.store(on, Ordering::SeqCst);
}

fn following() -> bool {
    FOLLOW_SYMLINKS.load(Ordering::SeqCst)
}

/// More links than this in a row is a loop (Linux stops at 40 too).
const MAX_LINKS: usize = 40;

/// The file a chain of symbolic links at `path` ends at (possibly one that
/// does not exist yet), read once; `path` itself when it is no link.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                // A relative target is relative to the link's directory;
                // joining an absolute one gives that one.
                p = match p.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Where a write meant for `path` goes: `path`, or when it is a symbolic
/// link and `--follow-symlinks` was given, the file the link leads to,
/// resolved once here so that the write and its temporary file stay in
/// that file's directory. Without the flag a link is refused: someone
/// who could plant one where a plan or report is written could aim the
/// write at any file its user may change.
fn destination(path: &Path) -> Result<PathBuf> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return Ok(path.to_path_buf());
    }
    let target = resolve(path).with_context(|| format!("cannot follow {}", path.display()))?;
    if !following() {
        anyhow::bail!(
            "{} is a symbolic link (to {}); Lifeboat does not write through a link, which could aim \
             the write at another file: remove it, or pass --follow-symlinks to write to {}",
            path.display(),
            target.display(),
            target.display()
        );
    }
    Ok(target)
}

/// The state file (or cache) to open at `path`: with `--follow-symlinks`,
/// the file a link there leads to, resolved once; otherwise `path`, which
/// the engine refuses to open when it is a link.
pub fn state_path(path: &Path) -> Result<PathBuf> {
    if !following() {
        return Ok(path.to_path_buf());
    }
    resolve(path).with_context(|| format!("cannot follow {}", path.display()))
}

/// Writes a file whole or not at all: an interrupted write leaves the old
/// file (a configuration file, a saved plan) as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |w| w.write_all(bytes))
}

/// [`write_atomically`] of what `write` writes, as it writes it: a large
/// saved plan is not first made into one string.
///
/// The destination is [`destination`]'s (a symbolic link there is refused
/// or, with `--follow-symlinks`, written through). The temporary file
/// beside it is made new (`create_new`, which never follows a symlink or
/// opens a file planted at its name; one found there is removed first),
/// given the mode of the file it replaces, or 0600 for a new one (a saved
/// plan or a report is not for other users), set explicitly so that no
/// umask widens or narrows it, synced before the rename, and removed if
/// anything fails.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let path = &destination(path)?;
    let tmp = temporary(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", tmp.display()));
        }
        _ => {}
    }
    let written = create_private(&tmp, mode_of(path)).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    let done = written
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
        });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// The temporary name beside `path`: its whole name and a suffix, so that
/// `plan.json` and `plan.md` never share one.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp-lifeboat");
    path.with_file_name(name)
}

/// The permission bits a rewrite of `path` keeps: those of the file there
/// (`fmt` on a group-readable configuration keeps it so), or 0600.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0o600, |m| m.permissions().mode() & 0o777)
}

/// A new file at `path` with exactly `mode`: `create_new` refuses anything
/// already there, a symlink included, and the mode is set again on the
/// open file because `open(2)` takes the umask off it.
fn create_private(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Reads a text file of at most `max` bytes, never more than one byte past
/// it (a device or a growing file yields more than its size says); `what`
/// says what it should be, in errors ("plan", "restore plan").
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<String> {
    let shown = path.display();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read the {what} {shown}"))?;
    let too_large = || {
        anyhow::anyhow!(
            "{shown} is larger than {} MiB, more than any {what} Lifeboat writes; is it the right file?",
            max >> 20
        )
    };
    if file.metadata().is_ok_and(|m| m.len() > max) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {shown}"))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{shown} is not a Lifeboat {what}: it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_atomic_write_never_follows_a_planted_temporary_and_keeps_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("saved.plan");
        // A symlink planted at the temporary name, pointing at a victim.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, temporary(&path)).unwrap();
        write_atomically(&path, b"one").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        assert_eq!(mode(&path), 0o600, "a new file is its owner's only");

        // A write that fails half-way leaves the old file and no temporary.
        let failed = write_atomically_with(&path, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        assert!(!temporary(&path).exists());

        // A file rewritten keeps its mode (a configuration under `fmt`),
        // narrower or wider than the umask would make it.
        for kept in [0o640, 0o604, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(kept)).unwrap();
            write_atomically(&path, b"two").unwrap();
            assert_eq!(mode(&path), kept);
        }
    }

    #[test]
    fn temporaries_of_two_files_differ() {
        assert_ne!(
            temporary(Path::new("d/plan.json")),
            temporary(Path::new("d/plan.md"))
        );
        assert_eq!(
            temporary(Path::new("plan.json")),
            PathBuf::from("plan.json.tmp-lifeboat")
        );
    }

    #[test]
    fn a_chain_of_links_is_resolved_relative_to_each_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        // top -> sub/mid (relative), sub/mid -> real (relative to sub/),
        // real does not exist yet: a write would create it.
        std::os::unix::fs::symlink("sub/mid", dir.path().join("top")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("sub/mid")).unwrap();
        assert_eq!(
            resolve(&dir.path().join("top")).unwrap(),
            dir.path().join("sub/real")
        );
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(resolve(&dir.path().join("loop")).is_err());
    }

    #[test]
    fn a_bounded_read_stops_past_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1 << 20, "plan").unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    }
}
