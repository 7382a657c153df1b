//! The AWS account id each configured account's credentials resolved to,
//! recorded on first use and held to afterwards (see `cloud::identity`).
//! It is not part of what a plan reads, so recording it does not bump the
//! serial: a plan saved before the first record still applies.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{ts, StateResult, Store};

/// What an account's credentials must resolve to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The configuration pins it (`account_id`).
    Pinned(String),
    /// The state recorded it when the account was first used.
    Recorded(String),
}

impl Expected {
    pub fn id(&self) -> &str {
        match self {
            Expected::Pinned(id) | Expected::Recorded(id) => id,
        }
    }
}

impl Store {
    /// The account id recorded for `account`, if any.
    pub fn recorded_account_id(&self, account: &str) -> StateResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT account_id FROM account_ids WHERE account = ?1",
                params![account],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Holds `account` to the id its credentials resolved to (`actual`), in
    /// one write transaction. With a `pin`, the pin is what counts; without
    /// one, the recorded id does. Only the first id seen is recorded, never
    /// over an earlier record: a pin in a proposed configuration (a pull
    /// request's `plan`) must not move the account for everyone else. To
    /// move an account on purpose, pin it. Returns what was expected when
    /// `actual` differs; nothing is written then.
    pub fn hold_account_id(
        &mut self,
        account: &str,
        pin: Option<&str>,
        actual: &str,
        now: DateTime<Utc>,
    ) -> StateResult<Result<(), Expected>> {
        self.retrying(|s| s.hold_account_id_once(account, pin, actual, now))
    }

    fn hold_account_id_once(
        &mut self,
        account: &str,
        pin: Option<&str>,
        actual: &str,
        now: DateTime<Utc>,
    ) -> StateResult<Result<(), Expected>> {
        let path = self.path.clone();
        let sq = |source| super::replica::sqlite_err(&path, source);
        // A reading command checks against what is recorded and records
        // nothing: the next writing command records a first id.
        let reading = self.reading.is_some();
        let behavior = if reading {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        };
        let tx = self.conn.transaction_with_behavior(behavior).map_err(sq)?;
        let recorded: Option<String> = tx
            .query_row(
                "SELECT account_id FROM account_ids WHERE account = ?1",
                params![account],
                |r| r.get(0),
            )
            .optional()
            .map_err(sq)?;
        let expected = match (pin, &recorded) {
            (Some(p), _) => Some(Expected::Pinned(p.to_string())),
            (None, Some(r)) => Some(Expected::Recorded(r.clone())),
            (None, None) => None,
        };
        if let Some(e) = expected.filter(|e| e.id() != actual) {
            return Ok(Err(e));
        }
        if recorded.is_none() && !reading {
            tx.execute(
                "INSERT INTO account_ids (account, account_id, recorded) VALUES (?1, ?2, ?3)",
                params![account, actual, ts(now)],
            )
            .map_err(sq)?;
        }
        tx.commit().map_err(sq)?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_is_recorded_then_held_to_and_a_pin_overrides_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let now = Utc::now();
        assert_eq!(
            s.hold_account_id("main", None, "111111111111", now)
                .unwrap(),
            Ok(())
        );
        assert_eq!(s.serial().unwrap(), 0, "recording does not bump the serial");
        assert_eq!(
            s.hold_account_id("main", None, "222222222222", now)
                .unwrap(),
            Err(Expected::Recorded("111111111111".into()))
        );
        assert_eq!(
            s.hold_account_id("main", Some("333333333333"), "222222222222", now)
                .unwrap(),
            Err(Expected::Pinned("333333333333".into()))
        );
        assert_eq!(
            s.recorded_account_id("main").unwrap().as_deref(),
            Some("111111111111")
        );
        // The operator moved the account on purpose: the pin wins, and the
        // record stays (a pin proposed in a pull request moves nothing).
        assert_eq!(
            s.hold_account_id("main", Some("222222222222"), "222222222222", now)
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            s.recorded_account_id("main").unwrap().as_deref(),
            Some("111111111111")
        );
    }
}
