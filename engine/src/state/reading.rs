//! The state as a command that only reads it sees it (`plan`, `status`,
//! `backups`, `show`, `report`...): such a command never writes, creates
//! or migrates the state. Its connection is `query_only`, so a write that
//! slipped into a reading path fails instead of landing.
//!
//! A state of an older schema is read through a migrated copy in memory,
//! the file left as it was; the next writing command migrates the file,
//! after keeping a copy of it aside (`state.db.bak-<version>`). No state
//! file reads as an empty state, created nowhere.

use std::path::{Path, PathBuf};

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use super::{StateError, StateResult, Store, SCHEMA_VERSION};

/// How a reading store came to be, for the command to say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// The file, as it is.
    File,
    /// No state file yet: an empty state, with no lineage until the first
    /// writing command gives it one.
    Empty,
    /// A file of an older schema (`found`), read through a migrated copy
    /// in memory.
    Older { found: i64 },
}

impl Store {
    /// Opens the state at `path` for reading only; see the module.
    pub fn open_read_only(path: &Path) -> StateResult<Store> {
        let sq = |source| super::replica::sqlite_err(path, source);
        let found = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StateError::Symlink {
                    path: path.to_path_buf(),
                    target: std::fs::read_link(path).unwrap_or_default(),
                });
            }
            // An empty file is a state nothing was ever written to (SQLite
            // writes the header with the first table).
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(StateError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!("cannot read the file's metadata: {e}"),
                })
            }
        };
        if !found {
            let mut store = Store::in_memory(path, Reading::Empty)?;
            store.migrate()?;
            // A saved plan carries its state's lineage; a state not made yet
            // has none, and a plan made on it applies only to a state
            // nothing was written to (`plan::check::same_origin`).
            store
                .conn
                .execute("UPDATE meta SET value = '' WHERE key = 'lineage'", [])
                .map_err(sq)?;
            return store.only_reading();
        }
        // Read-write without create: SQLite may need to make the WAL's
        // shared-memory file beside a database closed cleanly; the file
        // itself is never written (`query_only`). Never through a link
        // (`state/file.rs`): one at the name is refused above, one swapped
        // in since fails the open.
        // Links in the directories above are the user's own setup (as for
        // a writing open, `state/file.rs`); SQLite's no-follow flag refuses
        // any in the path it is given, so it is given the resolved one.
        let resolved = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => dir
                .canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        };
        let conn = Connection::open_with_flags(
            &resolved,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq)?;
        conn.pragma_update(None, "query_only", true).map_err(sq)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sq)?;
        if found > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path: path.to_path_buf(),
                found,
            });
        }
        if found == SCHEMA_VERSION {
            let store = Store::wrap(conn, path.to_path_buf(), Reading::File);
            return store.only_reading();
        }
        let mut store = Store::in_memory(path, Reading::Older { found })?;
        Backup::new(&conn, &mut store.conn)
            .and_then(|b| b.run_to_completion(256, std::time::Duration::ZERO, None))
            .map_err(sq)?;
        store.migrate()?;
        store.only_reading()
    }

    /// A shared state's store for a command that only reads: it records
    /// nothing of its own (an account's id) in the shared state.
    pub fn for_reading(mut self) -> Store {
        self.reading = Some(Reading::File);
        self
    }

    /// How this store reads the state, if it was opened only to read it.
    pub fn reading(&self) -> Option<&Reading> {
        self.reading.as_ref()
    }

    fn in_memory(path: &Path, how: Reading) -> StateResult<Store> {
        let conn = Connection::open_in_memory().map_err(|e| super::replica::sqlite_err(path, e))?;
        Ok(Store::wrap(conn, path.to_path_buf(), how))
    }

    fn wrap(conn: Connection, path: PathBuf, how: Reading) -> Store {
        Store {
            conn,
            path,
            replica: None,
            local_fence: Default::default(),
            reading: Some(how),
            report_retention: chrono::Duration::days(super::history::DEFAULT_REPORT_RETENTION_DAYS),
        }
    }

    fn only_reading(self) -> StateResult<Store> {
        self.conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| self.err(e))?;
        Ok(self)
    }

    /// Before a writing command migrates a state file of an older schema:
    /// a consistent copy of it at `<file>.bak-<version>`, made new and
    /// private, so that a newer Lifeboat's migration can be undone by
    /// going back to the copy and to the older binary. An existing copy of
    /// that version is never overwritten: this one gets a name of its own.
    /// The copy is checked to be of the version it is named for.
    pub(super) fn keep_aside_before_migrating(&self) -> StateResult<()> {
        let version = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
        };
        let found = version(&self.conn).map_err(|e| self.err(e))?;
        if found <= 0 || found >= SCHEMA_VERSION {
            return Ok(());
        }
        let aside = self.made_aside(found)?;
        let failed = |message: String| StateError::Corrupt {
            path: self.path.clone(),
            message,
        };
        let copied = self.vacuum_into(&aside).and_then(|()| {
            Connection::open_with_flags(&aside, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| version(&c))
                .map_err(|e| super::replica::sqlite_err(&aside, e))
        });
        match copied {
            Ok(v) if v == found => Ok(()),
            other => {
                let _ = std::fs::remove_file(&aside);
                // Another process migrated the file between the look and
                // the copy: it kept its own copy first.
                let now = version(&self.conn).map_err(|e| self.err(e))?;
                if now >= SCHEMA_VERSION {
                    return Ok(());
                }
                Err(match other {
                    Err(e) => e,
                    Ok(v) => failed(format!(
                        "the copy kept at {} before migrating is of schema version {v}, not {found}; nothing was migrated",
                        aside.display()
                    )),
                })
            }
        }
    }

    /// The new, private, empty file the old state is copied into:
    /// `<file>.bak-<version>`, or, when a copy of that version is there
    /// already (an earlier upgrade, rolled back), a name of its own beside
    /// it, so that no copy is ever overwritten or taken for this one.
    fn made_aside(&self, found: i64) -> StateResult<PathBuf> {
        let base = {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".bak-{found}"));
            name
        };
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        for candidate in [base.clone(), {
            let mut n = base.clone();
            n.push(format!("-{stamp}"));
            n
        }] {
            let aside = PathBuf::from(candidate);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&aside) {
                Ok(_) => return Ok(aside),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(StateError::Corrupt {
                        path: self.path.clone(),
                        message: format!(
                            "cannot keep a copy at {} before migrating schema version {found}: {e}",
                            aside.display()
                        ),
                    })
                }
            }
        }
        Err(StateError::Corrupt {
            path: self.path.clone(),
            message: format!(
                "cannot keep a copy before migrating schema version {found}: {} and a stamped name beside it exist",
                PathBuf::from(base).display()
            ),
        })
    }
}

/// Makes a state file at `path` as a Lifeboat of schema `version` would
/// have left it, empty: for tests of what a newer binary does with it.
#[cfg(any(test, feature = "testing"))]
pub fn create_at_version(path: &Path, version: i64) -> StateResult<()> {
    let sq = |source| super::replica::sqlite_err(path, source);
    let conn = Connection::open(path).map_err(sq)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sq)?;
    let upto = usize::try_from(version).unwrap_or(0);
    for (i, sql) in super::store::MIGRATIONS.iter().enumerate().take(upto) {
        conn.execute_batch(sql).map_err(sq)?;
        conn.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sq)?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('lineage', ?1), ('serial', '0')",
        [super::new_id()],
    )
    .map_err(sq)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }

    #[test]
    fn a_missing_state_reads_as_empty_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.db");
        let mut store = Store::open_read_only(&path).unwrap();
        assert_eq!(store.reading(), Some(&Reading::Empty));
        let snap = store.load().unwrap();
        assert_eq!((snap.lineage.as_str(), snap.serial), ("", 0));
        assert!(!dir.path().join("sub").exists(), "nothing created");
    }

    #[test]
    fn an_older_state_is_read_migrated_in_memory_and_left_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        create_at_version(&path, SCHEMA_VERSION - 1).unwrap();
        let before = bytes(&path);
        let mut store = Store::open_read_only(&path).unwrap();
        assert_eq!(
            store.reading(),
            Some(&Reading::Older {
                found: SCHEMA_VERSION - 1
            })
        );
        store.load().unwrap();
        assert!(store.backups(None).unwrap().is_empty());
        drop(store);
        assert!(bytes(&path) == before, "a reading open leaves the file");
        let aside = dir
            .path()
            .join(format!("state.db.bak-{}", SCHEMA_VERSION - 1));
        assert!(!aside.exists(), "only a writing open keeps a copy aside");

        // A writing open migrates, after keeping the old file aside.
        drop(Store::open(&path).unwrap());
        let copy = Store::open_read_only(&aside).unwrap();
        assert_eq!(
            copy.reading(),
            Some(&Reading::Older {
                found: SCHEMA_VERSION - 1
            }),
            "the copy is the old schema"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&aside).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let store = Store::open_read_only(&path).unwrap();
        assert_eq!(store.reading(), Some(&Reading::File));
    }

    #[test]
    fn a_reading_store_writes_nothing_even_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let mut store = Store::open_read_only(&path).unwrap();
        let now = chrono::Utc::now();
        // An account id is checked, not recorded.
        assert_eq!(
            store
                .hold_account_id("main", None, "111111111111", now)
                .unwrap(),
            Ok(())
        );
        assert_eq!(store.recorded_account_id("main").unwrap(), None);
        // Any write that slipped into a reading path fails.
        assert!(store.conn.execute("DELETE FROM meta", []).is_err());
    }

    #[test]
    fn a_newer_state_is_refused_by_readers_and_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            Store::open_read_only(&path),
            Err(StateError::TooNew { .. })
        ));
        assert!(matches!(Store::open(&path), Err(StateError::TooNew { .. })));
    }
}
