//! What Lifeboat's own principal must be allowed, per account, for what the
//! configuration asks of it: the one table of the AWS actions each feature
//! calls ([`ACTIONS`]), and [`policy_for`], which picks the features an
//! account uses and writes them as one IAM policy document.
//!
//! A test reads the providers' sources and fails on any `"service:Action"`
//! they name that the table lacks, so a new call cannot be forgotten here.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_schema::{Account, Config, InstanceMode, Policy, ResourceKind};
use serde_json::{json, Value};

use super::document;

/// A feature Lifeboat uses in an account, as the policy document names its
/// statement (`Sid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// Every account: whose credentials these are (the account id check).
    Identity,
    /// A policy's targets and backups, listed by plan and every backup.
    ObserveTargets,
    /// Instances in `mode = "snapshots"`: CreateSnapshots with tags.
    InstanceSnapshots,
    /// `volume` targets: CreateSnapshot with tags.
    VolumeSnapshots,
    /// Instances in an AMI mode: CreateImage, then its snapshots tagged.
    Images,
    /// `rds` targets.
    DbSnapshots,
    /// `aurora` targets.
    DbClusterSnapshots,
    /// Retention deletes EBS snapshots (`allow_delete`).
    DeleteSnapshots,
    /// Retention deregisters AMIs and deletes their snapshots.
    DeleteImages,
    DeleteDbSnapshots,
    DeleteDbClusterSnapshots,
    /// `vpc_capture`: one paged describe per resource type.
    VpcCapture,
    /// `vpc_clone` destinations: the stack and the zones it is built for.
    VpcClone,
    /// `vpc_clone` with `template_bucket`: the template uploaded there.
    VpcCloneUpload,
    /// The `notifications` account: alerts and the daily summary.
    Notifications,
    /// The `notifications` account with a `reports` block: the reports
    /// written to its bucket.
    Reports,
    /// Backup accounts with a `reports` block: every instance, volume and
    /// database listed for the protected and unprotected reports.
    Inventory,
    /// Cross-account DR sources: EBS snapshots shared with the DR account.
    DrShareSnapshots,
    /// AMIs shared with the DR account, with the snapshots behind them.
    DrShareImages,
    DrShareDbSnapshots,
    DrShareDbClusterSnapshots,
    /// DR destinations (regions of the same account, or the DR account):
    /// copies of each kind, described and tagged.
    DrCopySnapshots,
    DrCopyImages,
    DrCopyDbSnapshots,
    DrCopyDbClusterSnapshots,
    /// `dr { lock { .. } }`: EBS copies (an AMI copy's snapshots) locked,
    /// and their locks looked at by plan.
    DrLock,
    /// Encrypted copies: the destination key found by alias and used.
    DrKms,
    /// `manage_role`: apply keeps the DR role in this account.
    ManageRole,
    /// `secured`: the account's principals and policies read.
    SecuredCheck,
    /// `assume_role`: the base credentials assume the configured role.
    AssumeRole,
    /// Restoring instances and volumes (and a drill taking them down): run
    /// by an operator, so no account is granted it by default.
    Restore,
    /// Restoring RDS instances and Aurora clusters from their snapshots.
    RestoreDatabases,
    /// `resource_control_group` instances: stopped, hibernated, started.
    ControlInstances,
    /// `resource_control_group` RDS instances.
    ControlDatabases,
    /// `resource_control_group` Aurora clusters.
    ControlClusters,
}

/// Every action the providers call, by the feature that calls it.
pub const ACTIONS: &[(Feature, &[&str])] = &[
    (Feature::Identity, &["sts:GetCallerIdentity"]),
    (
        Feature::ObserveTargets,
        &[
            "ec2:DescribeInstances",
            "ec2:DescribeVolumes",
            "ec2:DescribeSnapshots",
            "ec2:DescribeImages",
        ],
    ),
    (
        Feature::InstanceSnapshots,
        &["ec2:CreateSnapshots", "ec2:CreateTags"],
    ),
    (
        Feature::VolumeSnapshots,
        &["ec2:CreateSnapshot", "ec2:CreateTags"],
    ),
    (Feature::Images, &["ec2:CreateImage", "ec2:CreateTags"]),
    (
        Feature::DbSnapshots,
        &[
            "rds:CreateDBSnapshot",
            "rds:DescribeDBSnapshots",
            "rds:AddTagsToResource",
            // The restore point each backup records; selectors with
            // `kinds = ["rds"]` list them all.
            "rds:DescribeDBInstances",
        ],
    ),
    (
        Feature::DbClusterSnapshots,
        &[
            "rds:CreateDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
            "rds:AddTagsToResource",
            // The restore point: the cluster and its members' classes.
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
        ],
    ),
    (Feature::DeleteSnapshots, &["ec2:DeleteSnapshot"]),
    (
        Feature::DeleteImages,
        &["ec2:DeregisterImage", "ec2:DeleteSnapshot"],
    ),
    (Feature::DeleteDbSnapshots, &["rds:DeleteDBSnapshot"]),
    (
        Feature::DeleteDbClusterSnapshots,
        &["rds:DeleteDBClusterSnapshot"],
    ),
    (
        Feature::VpcCapture,
        &[
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeRouteTables",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeEgressOnlyInternetGateways",
            "ec2:DescribeNatGateways",
            "ec2:DescribeVpnGateways",
            "ec2:DescribeCustomerGateways",
            "ec2:DescribeVpnConnections",
            "ec2:DescribeDhcpOptions",
            "ec2:DescribeManagedPrefixLists",
            "ec2:GetManagedPrefixListEntries",
            "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeTransitGateways",
            "ec2:DescribeTransitGatewayVpcAttachments",
            "ec2:DescribeTransitGatewayRouteTables",
        ],
    ),
    (
        Feature::VpcClone,
        &[
            "cloudformation:CreateStack",
            "cloudformation:UpdateStack",
            "cloudformation:DeleteStack",
            "cloudformation:DescribeStacks",
            "cloudformation:DescribeStackEvents",
            "ec2:DescribeAvailabilityZones",
        ],
    ),
    (Feature::VpcCloneUpload, &["s3:PutObject"]),
    (Feature::Notifications, &["sns:Publish"]),
    (Feature::Reports, &["s3:PutObject"]),
    (
        Feature::Inventory,
        &[
            "ec2:DescribeInstances",
            "ec2:DescribeVolumes",
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
        ],
    ),
    (Feature::DrShareSnapshots, &["ec2:ModifySnapshotAttribute"]),
    (
        Feature::DrShareImages,
        &["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"],
    ),
    (
        Feature::DrShareDbSnapshots,
        &["rds:ModifyDBSnapshotAttribute"],
    ),
    (
        Feature::DrShareDbClusterSnapshots,
        &["rds:ModifyDBClusterSnapshotAttribute"],
    ),
    (
        Feature::DrCopySnapshots,
        &[
            "ec2:CopySnapshot",
            "ec2:CreateTags",
            "ec2:DescribeSnapshots",
        ],
    ),
    (
        Feature::DrCopyImages,
        &[
            "ec2:CopyImage",
            "ec2:CreateTags",
            "ec2:DescribeImages",
            "ec2:DescribeSnapshots",
        ],
    ),
    (
        Feature::DrCopyDbSnapshots,
        &[
            "rds:CopyDBSnapshot",
            "rds:DescribeDBSnapshots",
            "rds:AddTagsToResource",
        ],
    ),
    (
        Feature::DrCopyDbClusterSnapshots,
        &[
            "rds:CopyDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
            "rds:AddTagsToResource",
        ],
    ),
    (
        Feature::DrLock,
        &["ec2:LockSnapshot", "ec2:DescribeLockedSnapshots"],
    ),
    (
        Feature::DrKms,
        &[
            "kms:ListAliases",
            "kms:DescribeKey",
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKeyWithoutPlaintext",
        ],
    ),
    (
        Feature::ManageRole,
        &[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:TagRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
        ],
    ),
    (
        Feature::SecuredCheck,
        &["iam:GetAccountAuthorizationDetails"],
    ),
    (Feature::AssumeRole, &["sts:AssumeRole"]),
    (
        Feature::Restore,
        &[
            "ec2:DescribeInstances",
            "ec2:DescribeVolumes",
            "ec2:DescribeSubnets",
            // A drill's instances pass their status checks before its check.
            "ec2:DescribeInstanceStatus",
            "ec2:RegisterImage",
            "ec2:RunInstances",
            "ec2:CreateVolume",
            "ec2:AttachVolume",
            "ec2:DetachVolume",
            "ec2:TerminateInstances",
            "ec2:DeleteVolume",
            "ec2:CreateTags",
            // The image registered for a launch: found again, deregistered.
            "ec2:DescribeImages",
            "ec2:DeregisterImage",
            // Into another account: the artifacts shared for the restore.
            "ec2:ModifySnapshotAttribute",
            "ec2:ModifyImageAttribute",
            // RunInstances with an instance profile passes its role.
            "iam:PassRole",
            // Volumes made from encrypted snapshots use their key.
            "kms:DescribeKey",
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKeyWithoutPlaintext",
        ],
    ),
    (
        Feature::RestoreDatabases,
        &[
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:RestoreDBInstanceFromDBSnapshot",
            "rds:RestoreDBClusterFromSnapshot",
            "rds:CreateDBInstance",
            "rds:DeleteDBInstance",
            "rds:DeleteDBCluster",
            "rds:AddTagsToResource",
            "rds:ModifyDBSnapshotAttribute",
            "rds:ModifyDBClusterSnapshotAttribute",
        ],
    ),
    (
        Feature::ControlInstances,
        &[
            "ec2:DescribeInstances",
            "ec2:StopInstances",
            "ec2:StartInstances",
        ],
    ),
    (
        Feature::ControlDatabases,
        &[
            "rds:DescribeDBInstances",
            "rds:StopDBInstance",
            "rds:StartDBInstance",
        ],
    ),
    (
        Feature::ControlClusters,
        &[
            "rds:DescribeDBClusters",
            "rds:StopDBCluster",
            "rds:StartDBCluster",
        ],
    ),
];

/// The actions of one feature.
pub fn actions(f: Feature) -> &'static [&'static str] {
    ACTIONS
        .iter()
        .find(|(g, _)| *g == f)
        .map_or(&[], |(_, a)| *a)
}

/// Features used in one account, each with the resources its statement
/// names (`*` unless the configuration names them: a topic, a bucket, a
/// role).
pub type Uses = BTreeMap<Feature, BTreeSet<String>>;

fn all(uses: &mut Uses, f: Feature) {
    uses.entry(f).or_default().insert("*".into());
}

/// The ARN partition `region` belongs to: the one rule for every ARN
/// Lifeboat writes (IAM policies, shared DB snapshots).
pub fn region_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN partition of an account's regions.
fn partition(a: &Account) -> &'static str {
    a.regions.first().map_or("aws", |r| region_partition(r))
}

/// What each configured account is used for.
pub fn uses(config: &Config) -> BTreeMap<String, Uses> {
    let mut out: BTreeMap<String, Uses> = BTreeMap::new();
    for (name, a) in &config.accounts {
        let u = out.entry(name.clone()).or_default();
        all(u, Feature::Identity);
        if let Some(r) = &a.assume_role {
            u.entry(Feature::AssumeRole)
                .or_default()
                .insert(r.role_arn.clone());
        }
        if let Some(m) = &a.manage_role {
            // Only the managed role itself: its name is known, its account
            // id when pinned.
            let id = a.account_id.as_deref().unwrap_or("*");
            let arn = format!("arn:{}:iam::{id}:role/{}", partition(a), m.name);
            u.entry(Feature::ManageRole).or_default().insert(arn);
        }
        if a.secured.is_some() {
            all(u, Feature::SecuredCheck);
        }
    }
    for p in config.policies.values() {
        let Some(acct) = config.accounts.get(&p.account) else {
            continue;
        };
        let u = out.entry(p.account.clone()).or_default();
        policy_uses(u, p, acct);
        dr_uses(&mut out, config, p, acct);
    }
    for c in config.vpc_captures.values() {
        all(
            out.entry(c.account.clone()).or_default(),
            Feature::VpcCapture,
        );
    }
    for c in config.vpc_clones.values() {
        let u = out.entry(c.to_account.clone()).or_default();
        all(u, Feature::VpcClone);
        if let Some(b) = &c.template_bucket {
            let part = config.accounts.get(&c.to_account).map_or("aws", partition);
            u.entry(Feature::VpcCloneUpload)
                .or_default()
                .insert(format!("arn:{part}:s3:::{b}/*"));
        }
    }
    for g in config.resource_control_groups.values() {
        let u = out.entry(g.account.clone()).or_default();
        // Every group (a template too, for the groups made from it) may
        // take instances by their lifeboat:resource-control tag.
        all(u, Feature::ControlInstances);
        if !g.rds.is_empty() {
            all(u, Feature::ControlDatabases);
        }
        if !g.aurora.is_empty() {
            all(u, Feature::ControlClusters);
        }
    }
    if let Some(n) = &config.notifications {
        out.entry(n.account.clone())
            .or_default()
            .entry(Feature::Notifications)
            .or_default()
            .insert(n.sns_topic.clone());
        if let Some(r) = &n.reports {
            let part = config.accounts.get(&n.account).map_or("aws", partition);
            let under = match r.prefix.is_empty() {
                true => String::new(),
                false => format!("{}/", r.prefix),
            };
            out.entry(n.account.clone())
                .or_default()
                .entry(Feature::Reports)
                .or_default()
                .insert(format!("arn:{part}:s3:::{}/{under}*", r.bucket));
        }
        // The reports and the daily summary both count what no policy
        // covers: every instance, volume and database listed.
        if n.reports.is_some() || n.daily_summary.is_some() {
            for (name, a) in &config.accounts {
                if a.kind == lifeboat_schema::AccountKind::Backup {
                    all(out.entry(name.clone()).or_default(), Feature::Inventory);
                }
            }
        }
    }
    out
}

/// What a policy's backups make, by kind: the feature that takes them, the
/// one that deletes them, and the DR features that share and copy them.
#[derive(PartialEq)]
struct Kind {
    take: Feature,
    delete: Feature,
    share: Feature,
    copy: Feature,
}

const SNAPSHOTS: Kind = Kind {
    take: Feature::InstanceSnapshots,
    delete: Feature::DeleteSnapshots,
    share: Feature::DrShareSnapshots,
    copy: Feature::DrCopySnapshots,
};

const IMAGES: Kind = Kind {
    take: Feature::Images,
    delete: Feature::DeleteImages,
    share: Feature::DrShareImages,
    copy: Feature::DrCopyImages,
};

/// What a resource of `kind` taken in by its tags makes: the one rule for
/// selectors and the backup tag. Instances are backed up in the default
/// mode, snapshots; databases are listed whole (DescribeDBInstances,
/// DescribeDBClusters), which their features grant.
fn kind_of(kind: ResourceKind) -> Kind {
    match kind {
        ResourceKind::Instance => SNAPSHOTS,
        ResourceKind::Volume => Kind {
            take: Feature::VolumeSnapshots,
            ..SNAPSHOTS
        },
        ResourceKind::Rds => Kind {
            take: Feature::DbSnapshots,
            delete: Feature::DeleteDbSnapshots,
            share: Feature::DrShareDbSnapshots,
            copy: Feature::DrCopyDbSnapshots,
        },
        ResourceKind::Aurora => Kind {
            take: Feature::DbClusterSnapshots,
            delete: Feature::DeleteDbClusterSnapshots,
            share: Feature::DrShareDbClusterSnapshots,
            copy: Feature::DrCopyDbClusterSnapshots,
        },
    }
}

/// The kinds a policy's backups make, in `acct` (its account): its listed
/// targets', its selectors', and those of every kind the account's
/// `tag_scan` reads, since a `lifeboat:backup` tag may bring a resource of
/// any of them into any policy (a template too, for the policies made from
/// it) at every backup.
fn kinds(p: &Policy, acct: &Account) -> Vec<Kind> {
    use InstanceMode::*;
    let mut out = Vec::new();
    let mut add = |k: Kind| {
        if !out.contains(&k) {
            out.push(k);
        }
    };
    // `initial_ami` takes snapshots between its AMIs.
    if p.instances
        .iter()
        .any(|i| matches!(i.mode, Snapshots | InitialAmi))
    {
        add(SNAPSHOTS);
    }
    if !p.volumes.is_empty() {
        add(kind_of(ResourceKind::Volume));
    }
    if p.instances.iter().any(|i| i.mode != Snapshots) {
        add(IMAGES);
    }
    if !p.rds.is_empty() {
        add(kind_of(ResourceKind::Rds));
    }
    if !p.aurora.is_empty() {
        add(kind_of(ResourceKind::Aurora));
    }
    let (_, scanned) = acct.tag_scope();
    for k in ResourceKind::ALL {
        if scanned.contains(&k) || p.selectors.iter().any(|s| s.selects(k)) {
            add(kind_of(k));
        }
    }
    // The tag's `#initial-ami`, `#only-amis` and `#only-amis-reboot` back
    // an instance up with AMIs.
    if scanned.contains(&ResourceKind::Instance) {
        add(IMAGES);
    }
    out
}

/// A policy's backups and retention in its own account.
fn policy_uses(u: &mut Uses, p: &Policy, acct: &Account) {
    all(u, Feature::ObserveTargets);
    for k in kinds(p, acct) {
        all(u, k.take);
        if acct.allow_delete {
            all(u, k.delete);
        }
    }
}

/// A policy's DR: copies in its own account's regions, or shared with and
/// copied in the DR account; copies deleted by retention where the
/// destination allows deletion; originals deleted once copied with
/// `keep_original = false`.
fn dr_uses(out: &mut BTreeMap<String, Uses>, config: &Config, p: &Policy, acct: &Account) {
    let Some(dr) = &p.dr else {
        return;
    };
    let deletes = |account: &str| config.accounts.get(account).is_some_and(|a| a.allow_delete);
    let mut destinations = Vec::new();
    if !dr.regions.is_empty() {
        destinations.push(p.account.clone());
    }
    if let Some(x) = &dr.cross_account {
        destinations.push(x.to.clone());
    }
    for k in kinds(p, acct) {
        for dest in &destinations {
            let u = out.entry(dest.clone()).or_default();
            all(u, k.copy);
            all(u, Feature::DrKms);
            let ebs = matches!(k.copy, Feature::DrCopySnapshots | Feature::DrCopyImages);
            if dr.lock.is_some() && ebs {
                all(u, Feature::DrLock);
            }
            if deletes(dest) {
                all(u, k.delete);
            }
        }
        if let Some(x) = &dr.cross_account {
            let source = out.entry(p.account.clone()).or_default();
            all(source, k.share);
            if !x.keep_original {
                all(source, k.delete);
            }
        }
    }
}

/// `Feature::DeleteDbSnapshots` -> `DeleteDbSnapshots`: a statement id.
fn sid(f: Feature) -> String {
    format!("{f:?}")
}

/// The policy document for one account's uses: one statement per feature,
/// in the table's order, each with its sorted actions and resources.
pub fn document(uses: &Uses) -> Value {
    let statements: Vec<Value> = uses
        .iter()
        .map(|(f, resources)| {
            json!({
                "Sid": sid(*f),
                "Effect": "Allow",
                "Action": actions(*f),
                "Resource": resources.iter().collect::<Vec<_>>(),
            })
        })
        .collect();
    document::canonical(&json!({"Version": document::VERSION, "Statement": statements}))
}

/// What Lifeboat needs in one account: the policy of the principal it acts
/// as there, and for an account with `assume_role`, the one statement its
/// base credentials (profile or default chain) need to assume the role.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountPolicy {
    pub principal: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_credentials: Option<Value>,
}

/// The policies Lifeboat needs in `account`; `None` for an account not
/// configured.
pub fn policy_for(config: &Config, account: &str) -> Option<AccountPolicy> {
    let mut uses = uses(config).remove(account)?;
    let base = uses
        .remove(&Feature::AssumeRole)
        .map(|roles| document(&Uses::from([(Feature::AssumeRole, roles)])));
    Some(AccountPolicy {
        principal: document(&uses),
        base_credentials: base,
    })
}

/// Every action of a document's statements.
pub fn actions_of(doc: &Value) -> BTreeSet<String> {
    doc.get("Statement")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| document::strings(s.get("Action").unwrap_or(&Value::Null)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `"service:Action"` literal in the providers' sources: each is
    /// an AWS call (an SDK error names its action).
    fn provider_actions() -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers/src");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("providers/src") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            for piece in text.split('"').skip(1).step_by(2) {
                let Some((service, action)) = piece.split_once(':') else {
                    continue;
                };
                let known = [
                    "ec2",
                    "rds",
                    "sts",
                    "iam",
                    "kms",
                    "s3",
                    "sns",
                    "cloudformation",
                ];
                if known.contains(&service)
                    && !action.is_empty()
                    && action
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '*')
                    && action.starts_with(|c: char| c.is_ascii_uppercase())
                {
                    out.insert(piece.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn every_action_the_providers_call_is_in_the_table() {
        let table: BTreeSet<&str> = ACTIONS
            .iter()
            .flat_map(|(_, a)| a.iter().copied())
            .collect();
        let found = provider_actions();
        assert!(
            found.len() > 30,
            "the providers' actions were not found: {found:?}"
        );
        let missing: Vec<&String> = found
            .iter()
            .filter(|a| !table.contains(a.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "actions the providers call but engine/src/iam/needs.rs does not list: {missing:?}"
        );
    }

    fn config(text: &str) -> Config {
        lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config
    }

    /// The two accounts, `main` deleting or not and reading the backup tag
    /// of the kinds `scan` (quoted, comma-separated).
    fn accounts(deletes: bool, scan: &str) -> String {
        ACCOUNTS
            .replace("MAIN_DELETES", &deletes.to_string())
            .replace("MAIN_SCAN", scan)
    }

    fn actions_in(c: &Config, account: &str) -> BTreeSet<String> {
        actions_of(&policy_for(c, account).unwrap().principal)
    }

    const ACCOUNTS: &str = r#"
account "main" {
  regions      = ["us-east-1"]
  allow_delete = MAIN_DELETES
  tag_scan {
    kinds = [MAIN_SCAN]
  }
}
account "vault" {
  type    = "dr"
  regions = ["us-east-1"]
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/lifeboat"
  }
}
"#;

    #[test]
    fn only_what_the_configuration_uses_is_asked_for() {
        let c = config(&format!(
            "{}{}",
            accounts(false, r#""volume""#),
            r#"
policy "web" {
  account     = account.main
  generations = 3
  volume "vol-0123456789abcdef0" {
    region = "us-east-1"
  }
  dr {
    cross_account {
      to            = account.vault
      keep_original = true
    }
  }
}
"#
        ));
        let main = actions_in(&c, "main");
        for a in [
            "ec2:CreateSnapshot",
            "ec2:ModifySnapshotAttribute",
            "sts:GetCallerIdentity",
        ] {
            assert!(main.contains(a), "{a} in {main:?}");
        }
        for a in [
            "ec2:CreateImage",
            "rds:CreateDBSnapshot",
            "ec2:DeleteSnapshot",
            "ec2:CopySnapshot",
            "sns:Publish",
        ] {
            assert!(!main.contains(a), "no {a} in {main:?}");
        }
        let vault = policy_for(&c, "vault").unwrap();
        let copies = actions_of(&vault.principal);
        assert!(copies.contains("ec2:CopySnapshot") && copies.contains("kms:ListAliases"));
        assert!(
            !copies
                .iter()
                .any(|a| a.contains("Delete") || a.contains("Image")),
            "{copies:?}"
        );
        let base = vault
            .base_credentials
            .expect("assume_role needs the base credentials' statement");
        assert_eq!(
            actions_of(&base),
            BTreeSet::from(["sts:AssumeRole".to_string()])
        );
        assert!(base
            .to_string()
            .contains("arn:aws:iam::222222222222:role/lifeboat"));
    }

    #[test]
    fn a_selector_asks_for_the_calls_of_the_kinds_it_takes_in() {
        // The backup tag read for a kind the selector does not take in and
        // the assertions do not look at, so what is asked comes from the
        // selector.
        let with = |kinds: &str, scan: &str| {
            let c = config(&format!(
                "{}\npolicy \"web\" {{\n  account = account.main\n  generations = 2\n  select {{\n    tag = \"team\"\n    {kinds}\n  }}\n}}\n",
                accounts(false, scan),
            ));
            actions_in(&c, "main")
        };
        let dbs = with(r#"kinds = ["rds", "aurora"]"#, r#""volume""#);
        for a in [
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusters",
            "rds:CreateDBSnapshot",
            "rds:CreateDBClusterSnapshot",
        ] {
            assert!(dbs.contains(a), "{a} in {dbs:?}");
        }
        assert!(!dbs.contains("ec2:CreateSnapshots"), "{dbs:?}");
        let volumes = with(r#"kinds = ["volume"]"#, r#""instance""#);
        assert!(volumes.contains("ec2:CreateSnapshot"), "{volumes:?}");
        assert!(!volumes.contains("rds:DescribeDBInstances"), "{volumes:?}");
        let instances = with("", r#""rds""#);
        assert!(instances.contains("ec2:CreateSnapshots"), "{instances:?}");
        assert!(!instances.contains("ec2:CreateSnapshot"), "{instances:?}");
    }

    #[test]
    fn the_tag_scan_asks_for_the_calls_of_the_kinds_it_reads() {
        // An instance-only policy: a tagged RDS instance may join it at
        // any backup, and every backup lists the DB instances.
        let c = config(&format!(
            "{}{}",
            accounts(true, r#""instance", "rds""#),
            r#"
policy "web" {
  account     = account.main
  generations = 3
  instance "i-0123456789abcdef0" {
    region = "us-east-1"
  }
}
"#
        ));
        let main = actions_in(&c, "main");
        for a in [
            "rds:DescribeDBInstances",
            "rds:CreateDBSnapshot",
            "rds:DeleteDBSnapshot",
            // A tag's `#only-amis` backs an instance up with AMIs.
            "ec2:CreateImage",
        ] {
            assert!(main.contains(a), "{a} in {main:?}");
        }
        for a in ["ec2:CreateSnapshot", "rds:CreateDBClusterSnapshot"] {
            assert!(!main.contains(a), "no {a} in {main:?}");
        }
    }

    #[test]
    fn a_template_asks_for_what_its_accounts_tags_may_bring_in() {
        let c = config(&format!(
            "{}{}",
            // No `tag_scan`: instances and volumes in every region.
            ACCOUNTS
                .replace("MAIN_DELETES", "false")
                .replace("  tag_scan {\n    kinds = [MAIN_SCAN]\n  }\n", ""),
            r#"
policy "web_tpl" {
  template    = true
  account     = account.main
  generations = 3
  dr {
    regions = ["us-west-2"]
    cross_account {
      to            = account.vault
      keep_original = true
    }
  }
}
"#
        ));
        let main = actions_in(&c, "main");
        for a in [
            "ec2:DescribeInstances",
            "ec2:DescribeVolumes",
            "ec2:CreateSnapshots",
            "ec2:CreateSnapshot",
            "ec2:CreateImage",
            "ec2:CopySnapshot",
            "ec2:CopyImage",
            "ec2:ModifySnapshotAttribute",
            "ec2:ModifyImageAttribute",
        ] {
            assert!(main.contains(a), "{a} in {main:?}");
        }
        assert!(!main.iter().any(|a| a.starts_with("rds:")), "{main:?}");
        let vault = actions_in(&c, "vault");
        for a in ["ec2:CopySnapshot", "ec2:CopyImage", "kms:ListAliases"] {
            assert!(vault.contains(a), "{a} in {vault:?}");
        }
    }

    #[test]
    fn deletes_follow_allow_delete_and_keep_original() {
        let policy = r#"
policy "web" {
  account     = account.main
  generations = 3
  instance "i-0123456789abcdef0" {
    region = "us-east-1"
    mode   = "ami"
  }
  dr {
    cross_account {
      to            = account.vault
      keep_original = KEEP
    }
  }
}
"#;
        let c = |deletes: bool, keep: &str| {
            config(&format!(
                "{}{}",
                accounts(deletes, r#""instance""#),
                policy.replace("KEEP", keep)
            ))
        };
        let kept = actions_in(&c(false, "true"), "main");
        assert!(!kept.contains("ec2:DeregisterImage") && !kept.contains("ec2:DeleteSnapshot"));
        let retained = actions_in(&c(true, "true"), "main");
        assert!(
            retained.contains("ec2:DeregisterImage") && retained.contains("ec2:DeleteSnapshot")
        );
        let moved = actions_in(&c(false, "false"), "main");
        assert!(
            moved.contains("ec2:DeregisterImage"),
            "keep_original = false deletes originals"
        );
        assert!(moved.contains("ec2:ModifyImageAttribute"));
        let vault = actions_in(&c(true, "false"), "vault");
        assert!(vault.contains("ec2:CopyImage"));
        assert!(
            !vault.contains("ec2:DeregisterImage"),
            "the vault keeps allow_delete = false"
        );
    }

    #[test]
    fn every_feature_has_actions() {
        for (f, a) in ACTIONS {
            assert!(!a.is_empty(), "{f:?}");
            assert_eq!(actions(*f), *a);
        }
    }

    #[test]
    fn every_arn_takes_its_partition_from_the_region() {
        assert_eq!(region_partition("cn-north-1"), "aws-cn");
        assert_eq!(region_partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(region_partition("eu-west-1"), "aws");
    }
}
