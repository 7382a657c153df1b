//! The plan: a deterministic, serialisable value that `apply` executes as
//! written. Diffing (the planner) and rendering (render.rs) both meet here.

pub mod apply;
pub mod check;
pub mod graph;
pub mod interlock;
pub mod observe;
pub mod planner;
pub mod prior;
pub mod render;
pub mod target;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::Address;
pub use prior::Prior;

/// Bumped whenever the JSON shape changes incompatibly.
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace,
    /// Drift: AWS no longer has what the catalog records; apply only updates the catalog.
    Read,
    /// A policy renamed by a `moved` block: state and catalog follow it,
    /// nothing in AWS changes.
    Move,
}

impl Action {
    /// The marker in front of an address in human output.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
            Action::Read => "<=",
            Action::Move => ">",
        }
    }
}

/// What a change does to the backup catalog, so renderers can single out
/// the destruction of backup data (the thing a reviewer must not miss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Control objects in state: accounts, policies, targets.
    Control,
    /// Deletes backup data (snapshots, backups) in AWS.
    DeletesBackups,
    /// Only updates the catalog to match AWS.
    Catalog,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    pub effect: Effect,
    /// Why: "tag team=web", "retention: generation 3 of 2", "target terminated".
    pub reason: Option<String>,
    pub before: Option<Prior>,
    pub after: Option<Value>,
    /// Addresses whose changes must complete before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// An alert that apply records when it performs this change
    /// (`auto_remove_targets = "alert"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

impl Change {
    pub fn new(address: Address, action: Action, effect: Effect) -> Change {
        Change {
            address,
            action,
            effect,
            reason: None,
            before: None,
            after: None,
            depends_on: vec![],
            alert: None,
        }
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Change {
        self.reason = Some(reason.into());
        self
    }
    pub fn before(mut self, v: Option<Value>) -> Change {
        self.before = v.map(Prior::Value);
        self
    }
    pub fn before_prior(mut self, p: Prior) -> Change {
        self.before = Some(p);
        self
    }
    pub fn after(mut self, v: Option<Value>) -> Change {
        self.after = v;
        self
    }
    pub fn depends_on(mut self, deps: Vec<Address>) -> Change {
        self.depends_on = deps;
        self
    }

    /// For a move: the policy's new name.
    pub fn moved_to(&self) -> Option<&str> {
        if self.action != Action::Move {
            return None;
        }
        self.after.as_ref()?.get("to")?.as_str()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Drift records that only update the catalog.
    pub read: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// The state this plan was made against; apply refuses a plan whose
    /// state has moved on.
    pub lineage: String,
    pub serial: u64,
    /// SHA-256 of the typed configuration, for audit trails.
    pub config_digest: String,
    pub created_at: DateTime<Utc>,
    /// Ordered by address.
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// Notes that do not stop the plan (targets listed but absent, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Policies removed from the configuration whose backups this plan
    /// deletes: a whole history, shown in a banner and refused by `apply`
    /// without `--allow-destroy-backups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_with_backups: Vec<String>,
    /// Policies whose `dr` block (or the policy itself) was removed and
    /// whose DR copies this plan deletes: refused like
    /// `removed_with_backups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_copies: Vec<String>,
    /// Resource-control targets whose power state disagrees with their
    /// group's windows: shown, never applied (run mode and `lifeboat rc`
    /// act on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub power: Vec<crate::control::PowerDrift>,
    /// Made without reading AWS (`plan --refresh=false`): AWS taken to be
    /// as the state last recorded it. Said at the top of every view.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_state: bool,
    /// The EBS Snapshot Lock of each DR copy a `lock` block covers (or that
    /// records one): its state and expiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_locks: Vec<crate::dr::lock::CopyLockView>,
}

impl Plan {
    pub fn new(
        lineage: String,
        serial: u64,
        config_digest: String,
        created_at: DateTime<Utc>,
        mut changes: Vec<Change>,
        warnings: Vec<String>,
    ) -> Plan {
        changes.sort_by(|a, b| a.address.cmp(&b.address));
        let summary = summarize(&changes);
        Plan {
            format_version: FORMAT_VERSION.to_string(),
            lineage,
            serial,
            config_digest,
            created_at,
            changes,
            summary,
            warnings,
            removed_with_backups: Vec::new(),
            removed_copies: Vec::new(),
            power: Vec::new(),
            from_state: false,
            copy_locks: Vec::new(),
        }
    }

    /// A plan read from a file, made to say what its changes do: the
    /// summary counted again, and a change to backup data (an artifact, a
    /// backup, a DR copy) marked as such whatever the file says. A file
    /// edited between CI jobs then cannot show a delete of backup data as
    /// something milder, nor a summary of fewer destroys than its rows.
    pub fn reckon(&mut self) {
        for c in &mut self.changes {
            let backup_data = matches!(
                c.address,
                Address::Snapshot { .. }
                    | Address::Image { .. }
                    | Address::DbSnapshot { .. }
                    | Address::DbClusterSnapshot { .. }
                    | Address::Backup { .. }
                    | Address::DrCopy { .. }
            );
            match c.action {
                Action::Delete if backup_data => c.effect = Effect::DeletesBackups,
                Action::Read if backup_data => c.effect = Effect::Catalog,
                _ => {}
            }
        }
        self.summary = summarize(&self.changes);
    }

    /// The banners of `whole` (policies whose backups or DR copies go)
    /// that this plan, a part of it, still carries out.
    pub fn banners_from(&mut self, whole: &Plan) {
        let kept = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter(|p| self.deletes_backups_of(p))
                .cloned()
                .collect()
        };
        let (copies, backups) = (
            kept(&whole.removed_copies),
            kept(&whole.removed_with_backups),
        );
        self.removed_copies = copies;
        self.removed_with_backups = backups;
    }

    /// Does a change of this plan delete backup data of `policy`, or end
    /// one of its DR copies (deleted, or tagged to expire where the vault
    /// allows no deletes)?
    pub fn deletes_backups_of(&self, policy: &str) -> bool {
        self.changes.iter().any(|c| {
            (c.effect == Effect::DeletesBackups
                && c.before.as_ref().and_then(|b| b.str("policy")) == Some(policy))
                || matches!(&c.address, Address::DrCopy { policy: p, .. } if p == policy)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Does the plan destroy anything or make the catalog forget anything
    /// (for `--deny-destroy` gates)?
    pub fn destroys(&self) -> bool {
        self.summary.destroy > 0 || self.summary.read > 0
    }
}

pub fn summarize(changes: &[Change]) -> Summary {
    let mut s = Summary::default();
    for c in changes {
        match c.action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Delete => s.destroy += 1,
            Action::Replace => {
                s.add += 1;
                s.destroy += 1;
            }
            Action::Read => s.read += 1,
            Action::Move => s.change += 1,
        }
    }
    s
}
