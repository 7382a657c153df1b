//! The typed configuration: what the operator declared, after validation.
//!
//! These values are serialised into plans and state, so source positions are
//! kept out of serde: moving a block within a file must not show as a change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diag::Location;

/// One configuration: every `*.lb.hcl` file of a directory, merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub settings: Settings,
    pub accounts: BTreeMap<String, Account>,
    pub policies: BTreeMap<String, Policy>,
}

/// The `lifeboat { ... }` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub state: StateSettings,
}

/// `lifeboat { state { backend = "sqlite"  path = "..." } }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateSettings {
    pub backend: StateBackend,
    /// Relative paths are relative to the configuration directory.
    /// `None` means the default `.lifeboat/state.db`.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackend {
    #[default]
    Sqlite,
}

/// `account "NAME" { ... }`: where backups are taken (or copied to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub kind: AccountKind,
    pub regions: Vec<String>,
    /// A named profile of the shared AWS config files.
    pub profile: Option<String>,
    pub assume_role: Option<AssumeRole>,
    /// DR accounts only: may Lifeboat delete copies there (retention)?
    pub allow_delete: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Backup,
    Dr,
}

/// `assume_role { role_arn = ...  external_id = ...  session_name = ... }`.
///
/// The external id is not a secret in AWS's model, but it is kept out of
/// plan output all the same (renderers show it as "(set)").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

/// `policy "NAME" { ... }`: what to back up, and how many generations to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// Name of the account (the `account.NAME` reference resolved and checked).
    pub account: String,
    pub generations: u32,
    pub enabled: bool,
    pub description: Option<String>,
    pub instances: Vec<InstanceTarget>,
    pub volumes: Vec<VolumeTarget>,
    pub selectors: Vec<TagSelector>,
    pub auto_remove_targets: AutoRemove,
    #[serde(skip)]
    pub location: Location,
}

/// `instance "i-..." { region = "..."  volumes = "all"  exclude_volumes = [..]  mode = "snapshots" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceTarget {
    pub id: String,
    pub region: String,
    pub volumes: VolumeChoice,
    /// Volume ids left out of the instance's snapshots.
    pub exclude_volumes: Vec<String>,
    pub mode: InstanceMode,
}

/// Which of an instance's volumes a backup takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeChoice {
    /// Every attached EBS volume.
    #[default]
    All,
    /// Only the root (boot) volume.
    Root,
    /// Every volume but the root volume.
    Data,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceMode {
    #[default]
    Snapshots,
    InitialAmi,
    Ami,
    AmiReboot,
}

/// `volume "vol-..." { region = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeTarget {
    pub id: String,
    pub region: String,
}

/// `select { tag = "team"  value = "web*" }`: every instance in the account's
/// regions whose tag matches. A trailing `*` in `value` matches a prefix; a
/// missing `value` matches any value of the tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagSelector {
    pub tag: String,
    pub value: Option<String>,
}

impl std::fmt::Display for TagSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "tag {}={}", self.tag, v),
            None => write!(f, "tag {}", self.tag),
        }
    }
}

/// What happens to a target that no longer exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoRemove {
    /// Keep it; the next backup reports it missing.
    #[default]
    No,
    /// Remove it from the policy.
    Yes,
    /// Remove it and record an alert.
    Alert,
}
