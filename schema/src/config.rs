//! The typed configuration: what the operator declared, after validation.
//!
//! These values are serialised into plans and state, so source positions are
//! kept out of serde: moving a block within a file must not show as a change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diag::Location;

mod recovery;
pub use recovery::*;
mod resource_control;
pub use resource_control::*;

/// One configuration: every `*.lb.hcl` file of a directory, merged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub settings: Settings,
    pub accounts: BTreeMap<String, Account>,
    pub policies: BTreeMap<String, Policy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedules: BTreeMap<String, Schedule>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vpc_captures: BTreeMap<String, VpcCapture>,
    /// Left out of the JSON when empty, so configurations without clones
    /// keep their digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vpc_clones: BTreeMap<String, VpcClone>,
    /// The top-level `notifications` block (SNS), when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    /// `moved { from = policy.OLD  to = policy.NEW }` blocks, in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<Moved>,
    /// `recovery_scenario` blocks, in name order. Left out of the JSON when
    /// empty, so configurations without scenarios keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_scenarios: Vec<RecoveryScenario>,
    /// `resource_control_group` blocks by name. Left out of the JSON when
    /// empty, so configurations without groups keep their digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_control_groups: BTreeMap<String, ResourceControlGroup>,
}

/// A policy renamed: `moved { from = policy.OLD  to = policy.NEW }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub from: String,
    pub to: String,
}

/// The `lifeboat { ... }` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub state: StateSettings,
    /// `report_retention`: how long reports keep showing deleted backups
    /// and snapshots, in seconds; `None` means the default
    /// ([`DEFAULT_REPORT_RETENTION_SECS`]). Left out of the JSON when unset,
    /// so configurations without it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_retention_secs: Option<u64>,
}

/// 90 days: how long deleted records stay in reports unless
/// `report_retention` says otherwise.
pub const DEFAULT_REPORT_RETENTION_SECS: u64 = 90 * 86_400;

impl Settings {
    /// How long reports keep deleted records.
    pub fn report_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.report_retention_secs
                .unwrap_or(DEFAULT_REPORT_RETENTION_SECS),
        )
    }
}

/// `lifeboat { state { backend = "sqlite"  path = "..." } }`, or
/// `state { backend = "dynamodb"  table = ".."  region = ".."  account = account.X
/// workspace = ".." }`. The DynamoDB keys are left out of the JSON when
/// unset, so configurations without them keep their digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSettings {
    pub backend: StateBackend,
    /// SQLite only. Relative paths are relative to the configuration
    /// directory. `None` means the default `.lifeboat/state.db`.
    pub path: Option<String>,
    /// DynamoDB only: the table holding the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// DynamoDB only: the table's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// DynamoDB only: the name of the account whose credentials reach the
    /// table; `None` means the default credential chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// DynamoDB only: the workspace within the table, so that several
    /// configurations can share one table.
    #[serde(
        default = "default_workspace",
        skip_serializing_if = "is_default_workspace"
    )]
    pub workspace: String,
}

/// The workspace of a `state` block that names none.
pub const DEFAULT_WORKSPACE: &str = "default";

fn default_workspace() -> String {
    DEFAULT_WORKSPACE.to_string()
}

fn is_default_workspace(w: &str) -> bool {
    w == DEFAULT_WORKSPACE
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            backend: StateBackend::default(),
            path: None,
            table: None,
            region: None,
            account: None,
            workspace: default_workspace(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackend {
    #[default]
    Sqlite,
    Dynamodb,
}

impl StateBackend {
    /// As the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateBackend::Sqlite => "sqlite",
            StateBackend::Dynamodb => "dynamodb",
        }
    }
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
    /// The AWS account id the credentials must resolve to (`account_id`,
    /// twelve digits); without it, the id they resolved to first is
    /// recorded in the state and held to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `manage_role { .. }` (DR accounts only): the IAM role apply creates
    /// and keeps there for the copies. Left out of the JSON when absent, so
    /// configurations without it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_role: Option<ManageRole>,
    /// `secured { .. }`: the actions no principal of the account may be
    /// allowed, checked by `lifeboat dr check` and in run mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secured: Option<Secured>,
    /// `tag_scan { .. }`: where resources' own tags (`lifeboat:backup`) are
    /// looked for, and how often run mode looks. Left out of the JSON when
    /// absent, so configurations without it keep their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_scan: Option<TagScan>,
    #[serde(skip)]
    pub location: Location,
}

/// `tag_scan { regions = [..]  kinds = [..]  every = "1h" }` in a backup
/// account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagScan {
    /// The account's regions to look in; all of them when not written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// The kinds looked for ([`TagScan::DEFAULT_KINDS`] when not written).
    pub kinds: Vec<ResourceKind>,
    /// How often run mode scans between backups; `None`: a policy's
    /// members are read from the tags at its backups and by `lifeboat scan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u64>,
}

impl TagScan {
    /// Instances carry the tag to join; volumes to leave their instance's
    /// backups (`#exclude`) or to join on their own.
    pub const DEFAULT_KINDS: [ResourceKind; 2] = [ResourceKind::Instance, ResourceKind::Volume];
}

impl Account {
    /// Where resources' own tags are looked for: `tag_scan`'s regions and
    /// kinds, or every region of the account and the default kinds.
    pub fn tag_scope(&self) -> (Vec<String>, Vec<ResourceKind>) {
        match &self.tag_scan {
            Some(t) if !t.regions.is_empty() => (t.regions.clone(), t.kinds.clone()),
            Some(t) => (self.regions.clone(), t.kinds.clone()),
            None => (self.regions.clone(), TagScan::DEFAULT_KINDS.to_vec()),
        }
    }
}

/// `manage_role { name = "lifeboat-dr"  trusted = account.main }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManageRole {
    /// The IAM role's name.
    pub name: String,
    /// The account (by name) whose principal alone may assume the role.
    pub trusted: String,
}

/// `secured { prohibited = ["ec2:DeleteSnapshot", ..]  check_every = "6h" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secured {
    /// `service:Action` patterns (`*` and `?` allowed) no principal of the
    /// account may be allowed.
    pub prohibited: Vec<String>,
    /// How often run mode checks (seconds); `None`: only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_every_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Backup,
    Dr,
}

/// What starts the digest kept in place of an external id; an id given
/// in the configuration may not start with it.
pub const SEALED_EXTERNAL_ID: &str = "hmac-sha256:";

/// `assume_role { role_arn = ...  external_id = ...  session_name = ... }`.
///
/// The external id is not a secret in AWS's model, but Lifeboat writes it
/// nowhere: the state and plans keep a keyed digest of it, which starts
/// with [`SEALED_EXTERNAL_ID`] (`lifeboat_engine::cloud::external_id`).
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
    /// `rds "DB-ID" { region }`: RDS instances (CreateDBSnapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rds: Vec<DbTarget>,
    /// `aurora "CLUSTER-ID" { region }`: Aurora clusters (CreateDBClusterSnapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aurora: Vec<DbTarget>,
    pub selectors: Vec<TagSelector>,
    /// `exclude { tag  value }`: instances a selector would take in that it
    /// leaves out (listed targets are not affected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<TagSelector>,
    pub auto_remove_targets: AutoRemove,
    /// Names of the schedules (`schedules = [schedule.NAME, ...]`), as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<String>,
    /// Retries, timeout, success rule, alert threshold and scripts.
    #[serde(default, skip_serializing_if = "PolicyOptions::is_default")]
    pub options: PolicyOptions,
    /// `dr { ... }`: copies of each backup to other regions and accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr: Option<Dr>,
    /// `template = true`: never run itself; a resource's backup tag item
    /// `POLICY:NAME` makes policy `POLICY` from it (its schedules,
    /// generations, options and DR), members from tags only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
    #[serde(skip)]
    pub location: Location,
}

/// `dr { every  timeout  regions  generations  concurrency  cross_account { .. }
/// encryption_key_detection }`: where a policy's backups are copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dr {
    /// Copy every Nth successful backup (1: every one); the others are
    /// recorded as skipped.
    pub every: u32,
    /// How long one backup's copies may take before they count as timed out.
    pub timeout_secs: u64,
    /// Regions of the policy's own account that receive copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Copies kept per destination; `None`: the policy's `generations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generations: Option<u32>,
    /// `concurrency`: this policy's copies in flight per destination (at
    /// most [`MAX_DR_CONCURRENCY`], AWS's limit); `None`: the runner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_account: Option<CrossAccount>,
    #[serde(default)]
    pub encryption_key_detection: KeyDetection,
    /// `lock { .. }`: every EBS copy (an AMI copy's snapshots) is locked
    /// with EBS Snapshot Lock once it completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<DrLock>,
}

/// `lock { mode = "governance" | "compliance"  duration = "30d"  cool_off = "24h" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrLock {
    pub mode: LockMode,
    /// LockDuration, in whole days ([`MIN_LOCK_DAYS`]..=[`MAX_LOCK_DAYS`]).
    pub days: u32,
    /// CoolOffPeriod in hours (compliance only, 1..=[`MAX_COOL_OFF_HOURS`]);
    /// `None`: locked in compliance at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cool_off_hours: Option<u32>,
}

/// EBS Snapshot Lock's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Someone with `ec2:UnlockSnapshot` may unlock it before it expires.
    Governance,
    /// Nobody can unlock it once the cool-off ended, not even the account's root.
    Compliance,
}

impl LockMode {
    /// The API's value (`LockMode`).
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }

    pub fn parse(s: &str) -> Option<LockMode> {
        match s {
            "governance" => Some(LockMode::Governance),
            "compliance" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

/// EBS's bounds on LockDuration, in days.
pub const MIN_LOCK_DAYS: u32 = 1;
pub const MAX_LOCK_DAYS: u32 = 36_500;
/// EBS's bound on CoolOffPeriod, in hours.
pub const MAX_COOL_OFF_HOURS: u32 = 72;

/// AWS copies at most 20 snapshots at once into one region of one account.
pub const MAX_DR_CONCURRENCY: u32 = 20;
/// Copies in flight per destination when nothing says otherwise.
pub const DEFAULT_DR_CONCURRENCY: u32 = 5;
/// `dr.timeout` when unset: a day.
pub const DEFAULT_DR_TIMEOUT_SECS: u64 = 86_400;

impl Dr {
    /// Copies kept per destination.
    pub fn generations(&self, policy_generations: u32) -> u32 {
        self.generations.unwrap_or(policy_generations)
    }
}

/// `cross_account { to = account.vault  regions = ["original", ..]  keep_original }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossAccount {
    /// The destination account's name.
    pub to: String,
    /// Destination regions in that account; empty: `["original"]`.
    pub regions: Vec<DrRegion>,
    /// False: delete the original once every copy of it completed.
    pub keep_original: bool,
}

/// A destination region of a cross-account copy, written as in the
/// configuration: `"original"` or a region name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DrRegion {
    /// `"original"`: each artifact's own region.
    Original,
    Named(String),
}

impl From<String> for DrRegion {
    fn from(s: String) -> DrRegion {
        if s == "original" {
            DrRegion::Original
        } else {
            DrRegion::Named(s)
        }
    }
}

impl From<DrRegion> for String {
    fn from(r: DrRegion) -> String {
        match r {
            DrRegion::Original => "original".into(),
            DrRegion::Named(n) => n,
        }
    }
}

/// What key an encrypted copy uses when no key with the source key's
/// alias and no `lifeboat:dr-kms-key` tag names one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDetection {
    /// Fail that copy.
    #[default]
    Strict,
    /// Use the destination's default key.
    Default,
    /// Use the destination's default key and open an alert.
    DefaultAlert,
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
    /// With `mode = "initial_ami"`: days after which a new AMI replaces the
    /// instance's current one (default [`DEFAULT_AMI_ROTATION_DAYS`]).
    #[serde(default = "default_ami_rotation")]
    pub ami_rotation: u32,
}

pub const DEFAULT_AMI_ROTATION_DAYS: u32 = 90;

fn default_ami_rotation() -> u32 {
    DEFAULT_AMI_ROTATION_DAYS
}

/// `rds "DB-ID" { region = "..." }` or `aurora "CLUSTER-ID" { region = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbTarget {
    /// The DB instance or cluster identifier.
    pub id: String,
    pub region: String,
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

/// `select { tag = "team"  value = "web*"  kinds = [..] }`: every resource
/// of `kinds` in the account's regions whose tag matches. A trailing `*` in
/// `value` matches a prefix; a missing `value` matches any value of the tag.
/// With `tag_prefix = "backup:"` instead of `tag`, any tag whose key starts
/// with the prefix is looked at (`tag` then holds the prefix and `prefix` is
/// set). `exclude` blocks are selectors too, of every kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TagSelector {
    /// The tag key, or with `prefix` the start of the keys.
    pub tag: String,
    pub value: Option<String>,
    /// `tag_prefix`: `tag` is a prefix of the keys looked at. Absent when
    /// false (and in state written before prefixes existed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prefix: bool,
    /// What the selector takes in, sorted; instances only when absent (as
    /// in state written before kinds existed).
    #[serde(
        default = "ResourceKind::instance_only",
        skip_serializing_if = "ResourceKind::is_instance_only"
    )]
    pub kinds: Vec<ResourceKind>,
}

impl TagSelector {
    /// `tag = KEY`, any value or `value`, instances only.
    pub fn tag(key: &str, value: Option<&str>) -> Self {
        TagSelector {
            tag: key.to_string(),
            value: value.map(str::to_string),
            prefix: false,
            kinds: ResourceKind::instance_only(),
        }
    }

    /// Does the selector take in resources of `kind`?
    pub fn selects(&self, kind: ResourceKind) -> bool {
        self.kinds.contains(&kind)
    }
}

impl std::fmt::Display for TagSelector {
    /// `tag team=web`, `tag backup:*=web` (a prefix), with the kinds when
    /// not instances only: `tag team=web (volume, rds)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.prefix { "*" } else { "" };
        match &self.value {
            Some(v) => write!(f, "tag {}{star}={}", self.tag, v)?,
            None => write!(f, "tag {}{star}", self.tag)?,
        }
        if !ResourceKind::is_instance_only(&self.kinds) {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        Ok(())
    }
}

/// What a `select` block takes in: `kinds = ["instance", "volume", "rds",
/// "aurora"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// EC2 instances (DescribeInstances with the tag filter).
    Instance,
    /// EBS volumes (DescribeVolumes with the tag filter).
    Volume,
    /// RDS DB instances, not members of an Aurora cluster.
    Rds,
    /// Aurora DB clusters.
    Aurora,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Instance,
        ResourceKind::Volume,
        ResourceKind::Rds,
        ResourceKind::Aurora,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance",
            ResourceKind::Volume => "volume",
            ResourceKind::Rds => "rds",
            ResourceKind::Aurora => "aurora",
        }
    }

    /// The default of `kinds`.
    pub fn instance_only() -> Vec<ResourceKind> {
        vec![ResourceKind::Instance]
    }

    pub fn parse(s: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn is_instance_only(kinds: &[ResourceKind]) -> bool {
        kinds == [ResourceKind::Instance]
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

pub use chrono::Weekday;
pub use chrono_tz::Tz;

/// `schedule "NAME" { ... }`: when the policies that name it run.
///
/// Times are wall-clock times in `time_zone`; `engine::schedule` turns them
/// into instants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub time_zone: Tz,
    /// The first run. Fixes the time of day, and for weekly and monthly
    /// schedules the weekday or the day of the month.
    pub start: chrono::NaiveDateTime,
    pub every: Every,
    /// Weekdays on which runs may start; `None` means every day. Only for
    /// minute, hour and day units.
    pub days: Option<Vec<Weekday>>,
    /// No run at or after this local date-time.
    pub expires: Option<chrono::NaiveDateTime>,
    pub disable: Vec<DisableWindow>,
    #[serde(skip)]
    pub location: Location,
}

/// `every = "6h"`: a whole number of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Every {
    pub count: u32,
    pub unit: EveryUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EveryUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
}

impl EveryUnit {
    /// The suffix written in `every`.
    pub fn suffix(self) -> &'static str {
        match self {
            EveryUnit::Minutes => "m",
            EveryUnit::Hours => "h",
            EveryUnit::Days => "d",
            EveryUnit::Weeks => "w",
            EveryUnit::Months => "mo",
        }
    }
}

impl Every {
    /// The interval as a fixed length of time, for what needs one rather
    /// than the calendar: how far back a missed run still counts (catch-up
    /// bounded to one interval), when a `vpc_capture` is due again after
    /// its last capture, the step of a minute or hour schedule.
    ///
    /// Exact for minutes and hours. Days and weeks count 24 hours a day,
    /// although a calendar day across a daylight-saving change is 23 or 25
    /// hours. A month counts 31 days, the longest, so that one interval
    /// back from a monthly run always reaches the previous one.
    pub fn nominal_duration(self) -> chrono::Duration {
        let n = i64::from(self.count);
        match self.unit {
            EveryUnit::Minutes => chrono::Duration::minutes(n),
            EveryUnit::Hours => chrono::Duration::hours(n),
            EveryUnit::Days => chrono::Duration::days(n),
            EveryUnit::Weeks => chrono::Duration::weeks(n),
            EveryUnit::Months => chrono::Duration::days(31 * n),
        }
    }
}

impl std::fmt::Display for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

impl std::str::FromStr for Every {
    type Err = String;

    /// `Nm`, `Nh`, `Nd`, `Nw` or `Nmo`, N a whole number from 1 to 100000.
    fn from_str(s: &str) -> Result<Every, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = s.split_at(digits);
        let unit = match unit {
            "m" => EveryUnit::Minutes,
            "h" => EveryUnit::Hours,
            "d" => EveryUnit::Days,
            "w" => EveryUnit::Weeks,
            "mo" => EveryUnit::Months,
            _ => {
                return Err(format!(
                    "{s:?} is not an interval; write a whole number and a unit: m (minutes), h (hours), d (days), w (weeks) or mo (months), as in \"6h\""
                ))
            }
        };
        match n.parse::<u32>() {
            Ok(count) if (1..=100_000).contains(&count) => Ok(Every { count, unit }),
            _ => Err(format!(
                "{s:?} is not an interval; the number before the unit must be a whole number from 1 to 100000"
            )),
        }
    }
}

/// `disable { day = "tue"  from = "13:00"  to = "15:00" }`: no run starts
/// from `from` (inclusive) to `to` (exclusive). When `from` is not earlier
/// than `to` the window crosses midnight into the next day (equal times:
/// 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisableWindow {
    /// `None` for `day = "all"`.
    pub day: Option<Weekday>,
    pub from: chrono::NaiveTime,
    pub to: chrono::NaiveTime,
}

impl DisableWindow {
    /// Does the window cover this local wall-clock time?
    pub fn covers(&self, t: chrono::NaiveDateTime) -> bool {
        use chrono::Datelike;
        let on = |d: Weekday| self.day.is_none_or(|w| w == d);
        let (day, time) = (t.weekday(), t.time());
        if self.from < self.to {
            on(day) && self.from <= time && time < self.to
        } else {
            (on(day) && time >= self.from) || (on(day.pred()) && time < self.to)
        }
    }

    /// When the window that covers `t` ends (local); `None` if it does not cover `t`.
    pub fn end_after(&self, t: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        if !self.covers(t) {
            return None;
        }
        let date = t.date();
        if self.from >= self.to && t.time() >= self.from {
            Some(date.succ_opt()?.and_time(self.to))
        } else {
            Some(date.and_time(self.to))
        }
    }
}

/// `vpc_capture "NAME" { account = account.X  regions = [..]  every = "4h" }`:
/// which account's VPCs `lifeboat vpc capture` records, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcCapture {
    pub name: String,
    /// Name of the account (the `account.NAME` reference resolved and checked).
    pub account: String,
    /// Regions to capture, each one of the account's; empty means all of
    /// the account's regions.
    pub regions: Vec<String>,
    /// `every = "4h"`: how often run mode captures (minutes to weeks;
    /// months are refused, a capture is due by elapsed time).
    pub every: Option<Every>,
    #[serde(skip)]
    pub location: Location,
}

/// `vpc_clone "NAME" { capture = vpc_capture.X  vpc = "vpc-…"  to_region = … }`:
/// a CloudFormation stack in `to_account`/`to_region` that recreates one
/// captured VPC's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcClone {
    pub name: String,
    /// The `vpc_capture` block's name.
    pub capture: String,
    /// The source VPC's id, as captured.
    pub vpc: String,
    pub to_region: String,
    /// The destination account's name: `to_account`, or the capture's account.
    pub to_account: String,
    /// `at = "2026-11-22T10:00:00Z"`: the capture version current then;
    /// `None` (`"latest"` or unset): the latest version.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The clone VPC's Name tag (default: the original name + " (cloned)").
    pub clone_name: Option<String>,
    /// Where templates above CloudFormation's inline limit are uploaded.
    pub template_bucket: Option<String>,
    /// How long apply waits for the stack, in seconds (`timeout = "30m"`).
    pub timeout_seconds: u64,
    #[serde(skip)]
    pub location: Location,
}

/// How a policy's scheduled backups are run: retries, timeout, what counts
/// as success, when an alert opens, and the scripts around the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyOptions {
    /// `retries { count  wait }`: extra attempts after a failed one.
    #[serde(default)]
    pub retries: Retries,
    /// `timeout`: bounds one attempt, waiting for snapshots included (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// `failures_to_alert`: consecutive failed runs that open an alert.
    #[serde(default = "one")]
    pub failures_to_alert: u32,
    #[serde(default)]
    pub success: SuccessRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scripts: Option<Scripts>,
    /// `departed_retention`: how long the newest whole backup of a target
    /// that left the policy is kept after it was taken, whatever the
    /// generations (seconds; [`DEFAULT_DEPARTED_RETENTION_SECS`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departed_retention_secs: Option<u64>,
}

/// 30 days: a target that leaves a policy (terminated, untagged, removed
/// from the configuration) keeps its last backup this long by default.
pub const DEFAULT_DEPARTED_RETENTION_SECS: u64 = 30 * 86_400;

impl PolicyOptions {
    /// `departed_retention`, or its default.
    pub fn departed_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.departed_retention_secs
                .unwrap_or(DEFAULT_DEPARTED_RETENTION_SECS),
        )
    }
}

fn one() -> u32 {
    1
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            retries: Retries::default(),
            timeout_secs: None,
            failures_to_alert: 1,
            success: SuccessRule::Strict,
            scripts: None,
            departed_retention_secs: None,
        }
    }
}

impl PolicyOptions {
    pub fn is_default(&self) -> bool {
        *self == PolicyOptions::default()
    }
}

/// `retries { count = 3  wait = "10m" }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retries {
    pub count: u32,
    pub wait_secs: u64,
}

/// `success = "strict" | "snapshots_only"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuccessRule {
    /// Snapshots and scripts must all succeed.
    #[default]
    Strict,
    /// Script failures are recorded but do not fail the backup.
    SnapshotsOnly,
}

/// `scripts { before  after  complete  timeout  collect_output  pass_env }`. Paths as
/// written; relative ones are relative to the configuration directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scripts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<String>,
    pub timeout_secs: u64,
    pub collect_output: bool,
    /// `pass_env`: variables of the runner's environment a script also
    /// gets (it gets only the documented ones otherwise); never an AWS
    /// credential. Left out of the JSON when empty, so configurations
    /// without it keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
}

/// AWS variables a script may be passed (`scripts { pass_env }`): which
/// profile, files and region to use, none of them a credential. Any other
/// `AWS_` variable is refused.
pub const PASSABLE_AWS_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// `notifications { sns_topic  account  region  daily_summary }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    /// The topic's ARN.
    pub sns_topic: String,
    /// The account (by name) whose credentials publish.
    pub account: String,
    pub region: String,
    /// `HH:MM`, local time of the runner's clock in UTC unless `time_zone` says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_summary: Option<String>,
    /// `reports { bucket  prefix  every }`: CSV reports written to S3 by
    /// the runner. Left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports: Option<ScheduledReports>,
}

/// `reports { bucket = "..."  prefix = "..."  every = "1d" }` in the
/// notifications block: the runner writes the backups, snapshots and
/// unprotected reports to `s3://BUCKET/PREFIX/KIND-TIMESTAMP.csv` with the
/// notifications block's account and region, every `every`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledReports {
    pub bucket: String,
    /// Without a trailing `/`; empty for the bucket's top.
    pub prefix: String,
    pub every_secs: u64,
}
