//! The configuration an apply applied, kept beside the objects it wrote.
//! Objects (accounts, policies) are only part of what a runner works from:
//! schedules, captures, notifications, scenarios and resource-control
//! groups are configuration only. A runner on another host, or one started
//! before the apply, follows what was applied by reading it here
//! (`runmode::daemon::reload`), not the files on its own disk.
//!
//! Recorded with its digest ([`crate::plan::planner::config_digest`]), in a
//! transaction of its own, so the serial moves and a runner looking at the
//! serial notices; recorded again only when the digest differs, so applies
//! of an unchanged configuration leave the serial alone.

use lifeboat_schema::Config;
use rusqlite::{params, OptionalExtension};

use super::{StateError, StateResult, Store};

const CONFIG_KEY: &str = "applied_config";
const DIGEST_KEY: &str = "applied_config_digest";

impl Store {
    /// The digest of the configuration last recorded as applied, if any:
    /// a cheap look for a runner deciding whether to read it.
    pub fn applied_digest(&self) -> StateResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![DIGEST_KEY],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The configuration last recorded as applied, with its digest.
    pub fn applied_config(&mut self) -> StateResult<Option<(Config, String)>> {
        let path = self.path.clone();
        let sq = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        // One read transaction: an apply recording between the two reads
        // cannot pair one configuration with another's digest.
        let tx = self.conn.transaction().map_err(sq)?;
        let read = |key: &str| {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(sq)
        };
        let (Some(text), Some(digest)) = (read(CONFIG_KEY)?, read(DIGEST_KEY)?) else {
            return Ok(None);
        };
        let config = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: format!("the applied configuration cannot be read: {e}"),
        })?;
        Ok(Some((config, digest)))
    }

    /// Records `config` as applied, unless it is what is recorded already.
    /// Returns whether it wrote (and so moved the serial).
    pub fn record_applied(&mut self, config: &Config) -> StateResult<bool> {
        let digest = crate::plan::planner::config_digest(config);
        if self.applied_digest()?.as_deref() == Some(digest.as_str()) {
            return Ok(false);
        }
        // Never an external id in clear: the runner that reads this back
        // takes the ids from its own files (`cloud::external_id`).
        let sealed = crate::cloud::external_id::sealed_config(config);
        let text = serde_json::to_string(&sealed).expect("configuration serialises");
        self.transaction(|tx| {
            tx.tx
                .execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2), (?3, ?4)",
                    params![CONFIG_KEY, text, DIGEST_KEY, digest],
                )
                .map_err(|e| tx.err(e))?;
            Ok(())
        })?;
        Ok(true)
    }
}

/// Seals every external id an older Lifeboat wrote in clear: in account
/// records and in the recorded configuration, whose digest is made again
/// as [`crate::plan::planner::config_digest`] makes it (a runner would
/// otherwise take the sealed copy for another configuration). Part of the
/// migration's transaction.
pub(super) fn seal_external_ids(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    use crate::cloud::external_id::seal_json;
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT address, value FROM objects WHERE kind = 'account'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (address, text) in rows {
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue; // a damaged row is reported by the load that reads it
        };
        if seal_json(&mut value) {
            tx.execute(
                "UPDATE objects SET value = ?1 WHERE address = ?2",
                params![value.to_string(), address],
            )?;
        }
    }
    let applied: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![CONFIG_KEY],
            |r| r.get(0),
        )
        .optional()?;
    let Some(text) = applied else {
        return Ok(());
    };
    let (text, digest) = match serde_json::from_str::<Config>(&text) {
        Ok(config) => {
            let sealed = crate::cloud::external_id::sealed_config(&config);
            let text = serde_json::to_string(&sealed).expect("configuration serialises");
            (text, Some(crate::plan::planner::config_digest(&config)))
        }
        // Not readable as a configuration of this build: sealed as JSON,
        // its digest left (the runner says it cannot read it).
        Err(_) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut v) => {
                seal_json(&mut v);
                (v.to_string(), None)
            }
            Err(_) => return Ok(()),
        },
    };
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = ?2",
        params![text, CONFIG_KEY],
    )?;
    if let Some(digest) = digest {
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = ?2",
            params![digest, DIGEST_KEY],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config
    }

    #[test]
    fn a_configuration_is_recorded_once_and_again_only_when_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        assert!(s.applied_config().unwrap().is_none());
        let one = config("account \"main\" {\n  regions = [\"us-east-1\"]\n}\n");
        assert!(s.record_applied(&one).unwrap());
        let serial = s.serial().unwrap();
        assert!(!s.record_applied(&one).unwrap(), "unchanged: not again");
        assert_eq!(s.serial().unwrap(), serial);
        let (back, digest) = s.applied_config().unwrap().unwrap();
        // Source positions are not kept: the same configuration by its digest.
        assert_eq!(crate::plan::planner::config_digest(&back), digest);
        assert_eq!(digest, crate::plan::planner::config_digest(&one));
        assert_eq!(s.applied_digest().unwrap(), Some(digest));

        let two = config(
            "account \"main\" {\n  regions = [\"us-east-1\"]\n}\nschedule \"hourly\" {\n  start = \"2026-11-22T00:17\"\n  every = \"1h\"\n}\n",
        );
        assert!(s.record_applied(&two).unwrap());
        assert_eq!(s.serial().unwrap(), serial + 1, "a runner sees it moved");
        let (_, digest) = s.applied_config().unwrap().unwrap();
        assert_eq!(digest, crate::plan::planner::config_digest(&two));
    }

    const WITH_ROLE: &str = "account \"prod\" {\n  regions = [\"us-east-1\"]\n  assume_role {\n    role_arn    = \"arn:aws:iam::111122223333:role/lifeboat\"\n    external_id = \"ext-id-7f3a9c\"\n  }\n}\n";

    fn file_has(path: &std::path::Path, needle: &str) -> bool {
        std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    }

    #[test]
    fn the_recorded_configuration_keeps_only_a_digest_of_an_external_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s = Store::open(&path).unwrap();
        let one = config(WITH_ROLE);
        s.record_applied(&one).unwrap();
        let (back, digest) = s.applied_config().unwrap().unwrap();
        let id = back.accounts["prod"].assume_role.as_ref().unwrap();
        assert!(crate::cloud::external_id::is_sealed(
            id.external_id.as_deref().unwrap()
        ));
        // The files' configuration and the recorded one have one digest,
        // so a runner does not take its own files for another apply.
        assert_eq!(digest, crate::plan::planner::config_digest(&one));
        drop(s);
        assert!(!file_has(&path, "ext-id-7f3a9c"));
    }

    #[test]
    fn a_state_of_an_older_lifeboat_has_its_external_ids_sealed_by_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let older = super::super::store::MIGRATIONS.len() as i64 - 1;
        super::super::reading::create_at_version(&path, older).unwrap();
        let one = config(WITH_ROLE);
        {
            // Written as an older Lifeboat wrote them: in clear.
            let c = rusqlite::Connection::open(&path).unwrap();
            let account = serde_json::to_string(&one.accounts["prod"]).unwrap();
            c.execute(
                "INSERT INTO objects (address, kind, value) VALUES ('account.prod', 'account', ?1)",
                params![account],
            )
            .unwrap();
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2), (?3, 'digest-of-the-clear-text')",
                params![CONFIG_KEY, serde_json::to_string(&one).unwrap(), DIGEST_KEY],
            )
            .unwrap();
        }
        assert!(file_has(&path, "ext-id-7f3a9c"));
        let mut s = Store::open(&path).unwrap();
        let accounts = s.load().unwrap().accounts().unwrap();
        let sealed = crate::cloud::external_id::sealed_account(&one.accounts["prod"]);
        // (Source positions are not kept.)
        assert_eq!(accounts["prod"].assume_role, sealed.assume_role);
        let (back, digest) = s.applied_config().unwrap().unwrap();
        assert_eq!(back.accounts["prod"].assume_role, sealed.assume_role);
        assert_eq!(digest, crate::plan::planner::config_digest(&one));
        drop(s);
        // Only the copy kept aside before the migration still has it.
        let state = std::fs::read(&path).unwrap();
        assert!(!state.windows(13).any(|w| w == b"ext-id-7f3a9c"));
    }
}
