//! The secured-DR checks: when each secured account was last checked and
//! what that check found. Like the run mode's bookkeeping, these writes do
//! not bump the serial: a plan does not read them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{parse_ts, ts, StateResult, Store};

/// The last check of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecuredCheck {
    pub account: String,
    pub checked_at: DateTime<Utc>,
    /// Principal and prohibited action pairs found allowed.
    pub findings: u64,
    pub principals: u64,
    pub policies: u64,
}

impl Store {
    /// Records a finished check of `c.account`, replacing the one before.
    pub fn record_secured_check(&mut self, c: &SecuredCheck) -> StateResult<()> {
        self.retrying(|s| s.record_secured_check_once(c))
    }

    fn record_secured_check_once(&mut self, c: &SecuredCheck) -> StateResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO secured_checks (account, checked_at, findings, principals, policies)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    c.account,
                    ts(c.checked_at),
                    c.findings as i64,
                    c.principals as i64,
                    c.policies as i64
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The last check of every account checked, by account name.
    pub fn secured_checks(&self) -> StateResult<BTreeMap<String, SecuredCheck>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT account, checked_at, findings, principals, policies FROM secured_checks",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (account, at, findings, principals, policies) = row.map_err(|e| self.err(e))?;
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            out.insert(
                account.clone(),
                SecuredCheck {
                    account,
                    checked_at: parse_ts(&self.path, &at)?,
                    findings: count(findings),
                    principals: count(principals),
                    policies: count(policies),
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_check_of_each_account_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("state.db")).unwrap();
        let t = |h: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, h, 0, 0).unwrap();
        let check = |h, findings| SecuredCheck {
            account: "vault".into(),
            checked_at: t(h),
            findings,
            principals: 3,
            policies: 4,
        };
        s.record_secured_check(&check(1, 2)).unwrap();
        s.record_secured_check(&check(7, 0)).unwrap();
        let all = s.secured_checks().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all["vault"], check(7, 0));
    }
}
