//! What run mode's metrics read from the state: per policy, counted and
//! aggregated by SQLite in a few grouped queries (no catalog is loaded),
//! so that a scrape costs one pass over indexes, not a decode of every
//! record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{parse_ts, StateResult, Store};

/// One policy's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFigures {
    /// When its last successful backup finished.
    pub last_success: Option<DateTime<Utc>>,
    /// The status of its last backup taken (`running`, `success`,
    /// `partial`, `failed`).
    pub last_status: Option<String>,
    /// Failed runs in a row since the last success.
    pub consecutive_failures: u64,
    /// Backups in the catalog.
    pub backups: u64,
    /// Artifacts in the catalog (EBS snapshots, AMIs, DB and cluster
    /// snapshots).
    pub artifacts: u64,
    /// Open alerts owned by the policy (its own, and its targets').
    pub open_alerts: u64,
    /// DR copies not yet settled (pending or in progress).
    pub dr_in_flight: u64,
    /// DR copies that failed or timed out and are not expired.
    pub dr_failed: u64,
}

/// The state's figures for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// By policy name: every policy in the state, and any the catalog
    /// still names.
    pub policies: BTreeMap<String, PolicyFigures>,
    /// Every open alert, whoever owns it.
    pub open_alerts: u64,
}

/// Where one grouped count goes in a policy's figures.
type SetCount = fn(&mut PolicyFigures, u64);

impl Store {
    /// The figures metrics report. Each query reads a consistent view;
    /// figures of one scrape may straddle a commit, which a gauge allows.
    pub fn figures(&self) -> StateResult<Figures> {
        let mut f = Figures::default();
        // A policy's alerts are owned by its name or its address.
        let owner = |p: String| p.strip_prefix("policy.").map(str::to_owned).unwrap_or(p);
        for (address, _) in self.grouped("SELECT address, 0 FROM objects WHERE kind = 'policy'")? {
            f.policies.entry(owner(address)).or_default();
        }
        let counts: [(&str, SetCount); 5] = [
            (
                "SELECT policy, COUNT(*) FROM backups GROUP BY policy",
                |p, n| p.backups = n,
            ),
            (
                "SELECT policy, COUNT(*) FROM snapshots GROUP BY policy",
                |p, n| p.artifacts = n,
            ),
            ("SELECT policy, failures FROM policy_health", |p, n| {
                p.consecutive_failures = n
            }),
            (
                "SELECT policy, COUNT(*) FROM dr_copies WHERE expired IS NULL
                 AND status IN ('pending', 'in_progress') GROUP BY policy",
                |p, n| p.dr_in_flight = n,
            ),
            (
                "SELECT policy, COUNT(*) FROM dr_copies WHERE expired IS NULL
                 AND status IN ('failed', 'timed_out') GROUP BY policy",
                |p, n| p.dr_failed = n,
            ),
        ];
        for (sql, set) in counts {
            for (policy, n) in self.grouped(sql)? {
                set(f.policies.entry(policy).or_default(), n);
            }
        }
        for (who, n) in self
            .grouped("SELECT policy, COUNT(*) FROM alerts WHERE closed IS NULL GROUP BY policy")?
        {
            f.open_alerts += n;
            if let Some(p) = f.policies.get_mut(&owner(who)) {
                p.open_alerts += n;
            }
        }
        // SQLite takes a bare column from the row MAX picked.
        for (policy, status) in
            self.texts("SELECT policy, status, MAX(seq) FROM backups GROUP BY policy")?
        {
            f.policies.entry(policy).or_default().last_status = Some(status);
        }
        for (policy, at) in self.texts(
            "SELECT policy, MAX(finished) FROM backups
             WHERE status = 'success' AND finished IS NOT NULL GROUP BY policy",
        )? {
            let at = parse_ts(&self.path, &at)?;
            f.policies.entry(policy).or_default().last_success = Some(at);
        }
        Ok(f)
    }

    /// Rows of (text, count).
    fn grouped(&self, sql: &str) -> StateResult<Vec<(String, u64)>> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.map(|r| {
            r.map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
                .map_err(|e| self.err(e))
        })
        .collect()
    }

    /// Rows of (text, text).
    fn texts(&self, sql: &str) -> StateResult<Vec<(String, String)>> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_has_no_policies_and_no_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(store.figures().unwrap(), Figures::default());
    }
}
