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
        let text = serde_json::to_string(config).expect("configuration serialises");
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
}
