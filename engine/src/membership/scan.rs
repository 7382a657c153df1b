//! Tag scans: one look, for one account, at the resources that carry the
//! backup tag and at what each policy's membership would be now.
//!
//! `lifeboat scan` previews (nothing is written); run mode records, on the
//! account's `tag_scan { every }`, so that a resource tagged between two
//! backups shows up as a member (in `status`, in the daily summary) before
//! its first backup, and one untagged leaves. A policy with a backup in
//! flight is left to that backup: it decides its own members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, Config, ResourceKind};
use serde::Serialize;

use super::tag::{self, TagItem};
use super::{claims, decide, record, MemberChange, MembershipError};
use crate::cloud::Cloud;
use crate::plan::observe::{observe_members, Observation};
use crate::state::model::{PolicyState, TargetKind};
use crate::state::SharedStore;

/// A resource that carries the backup tag, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub kind: TargetKind,
    pub id: String,
    pub region: String,
    /// The key it was read under (`lifeboat:backup` or an alias).
    pub key: String,
    pub value: String,
    pub opt_out: bool,
    pub items: Vec<TagItem>,
}

/// One policy's membership, as the scan found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyScan {
    pub policy: String,
    /// The changes made (run mode) or that a backup now would make.
    pub changes: Vec<MemberChange>,
    /// Departures held back: too many at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<MemberChange>,
    /// Why the policy was not looked at (a backup of it in flight) or
    /// could not be (AWS or the state failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a scan of one account found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountScan {
    pub account: String,
    pub at: DateTime<Utc>,
    pub regions: Vec<String>,
    pub kinds: Vec<ResourceKind>,
    pub found: Vec<Found>,
    pub policies: Vec<PolicyScan>,
    /// What the tags ask that is not done, each line naming the resource,
    /// the tag and the item ([`super::claims::problems`]), and the policies
    /// `apply` would make from templates.
    pub problems: Vec<String>,
    /// The look for tagged resources failed (the policies were still
    /// decided on their own looks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AccountScan {
    pub fn changes(&self) -> impl Iterator<Item = &MemberChange> {
        self.policies.iter().flat_map(|p| p.changes.iter())
    }

    /// Lines for the run log and `lifeboat scan`: each problem of a tag,
    /// each policy not decided, and a failed look.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        for p in &self.policies {
            if let Some(e) = &p.error {
                out.push(format!("policy {}: membership not decided: {e}", p.policy));
            }
        }
        out.extend(self.error.iter().map(|e| format!("tag scan: {e}")));
        out
    }
}

/// Preview (`lifeboat scan`) or record (run mode).
#[derive(Debug, Clone, Copy)]
pub enum ScanMode<'a> {
    Preview,
    /// Record the changes as `scan_id`, leaving out the policies in `busy`
    /// (a backup of theirs is in flight and decides for itself).
    Record {
        scan_id: &'a str,
        busy: &'a BTreeSet<String>,
    },
}

/// Scans `account`: reads the backup tags of its resources where its
/// `tag_scan` says, and decides the membership of each of its applied
/// policies now (recording it under [`ScanMode::Record`]). One policy that
/// cannot be decided does not stop the others.
pub async fn scan(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    account: &Account,
    at: DateTime<Utc>,
    mode: ScanMode<'_>,
) -> Result<AccountScan, MembershipError> {
    let (regions, kinds) = account.tag_scope();
    let state = store.lock().expect("store").load()?;
    let policies: BTreeMap<String, PolicyState> = state.policies()?;
    let mut out = AccountScan {
        account: account.name.clone(),
        at,
        regions: regions.clone(),
        kinds: kinds.clone(),
        found: vec![],
        policies: vec![],
        problems: vec![],
        error: None,
    };
    match observe_members(cloud.clone(), account, &[], &[]).await {
        Ok(obs) => {
            out.found = found(&obs);
            let scope: BTreeSet<String> = regions.iter().cloned().collect();
            let configured = |p: &str| config.policies.get(p);
            out.problems = claims::problems(
                &scope,
                &obs,
                |p| policies.get(p).is_some_and(|p| !p.template) || configured(p).is_some(),
                |t| configured(t).is_some_and(|p| p.template),
            );
            // What `apply` would make from templates, and what it would
            // refuse, by the planner's own rule.
            let made = super::templates::wanted(config, &state, &policies, &obs);
            out.problems.extend(
                made.made
                    .iter()
                    .filter(|(name, _)| !policies.contains_key(*name))
                    .map(|(name, m)| {
                        format!("policy {name} ({}): `lifeboat apply` makes it", m.reason())
                    }),
            );
            out.problems.extend(made.warnings);
        }
        Err(e) => out.error = Some(e.to_string()),
    }
    for name in policies
        .iter()
        // A disabled policy is paused: its members wait for its next
        // backup (a departure would start its departed-retention clock).
        .filter(|(_, p)| p.account == account.name && !p.template && p.enabled)
        .map(|(n, _)| n)
    {
        let mut p = PolicyScan {
            policy: name.clone(),
            changes: vec![],
            held_back: vec![],
            skipped: None,
            error: None,
        };
        if let ScanMode::Record { busy, .. } = mode {
            if busy.contains(name) {
                p.skipped = Some("a backup of it is in flight and decides its members".into());
                out.policies.push(p);
                continue;
            }
        }
        let decided = match decide(cloud, store, name, at).await {
            Ok(None) => Ok((vec![], vec![])),
            Ok(Some(d)) => match mode {
                ScanMode::Preview => {
                    let mut changes = d.resolved.changes;
                    changes.extend(d.exclusions);
                    Ok((changes, d.resolved.held_back))
                }
                ScanMode::Record { scan_id, .. } => {
                    record(store, name, d, scan_id, at).map(|r| (r.changes, r.held_back))
                }
            },
            Err(e) => Err(e),
        };
        match decided {
            Ok((changes, held_back)) => {
                p.changes = changes;
                p.held_back = held_back;
            }
            Err(e) => p.error = Some(e.to_string()),
        }
        out.policies.push(p);
    }
    Ok(out)
}

/// The resources of `obs` that carry the backup tag, as read.
fn found(obs: &Observation) -> Vec<Found> {
    let mut out: Vec<Found> = super::candidates(obs)
        .filter(|c| !c.gone)
        .filter_map(|c| {
            let tags = c.tags;
            let (key, value) = tag::backup_tag(tags)?;
            Some(Found {
                kind: c.kind,
                id: c.id.to_string(),
                region: c.region.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                // An opt-out under any key wins (see `opted_out`).
                opt_out: super::opted_out(tags).is_some(),
                items: tag::parse(tag::Grammar::Backup, value).items,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
    out
}
