//! `policy "NAME" { account  generations  schedules  … }` with its targets:
//! `instance` and `volume` blocks (here), `rds` and `aurora` blocks
//! (`db_targets`), `select` blocks, and the run options (`options`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hcl_edit::structure::{Block, Body};

use super::select::{tag_block, Use};
use super::{
    account_reference, db_targets, dr, options, schedule, start, DeclaredAccount, Decoder, Scope,
};
use crate::config::{
    AutoRemove, DbTarget, InstanceMode, InstanceTarget, Policy, TagSelector, VolumeChoice,
    VolumeTarget,
};
use crate::source::Source;
use crate::validate;

const MAX_GENERATIONS: f64 = 10_000.0;

const POLICY_ATTRS: &[&str] = &[
    "account",
    "generations",
    "enabled",
    "description",
    "auto_remove_targets",
    "schedules",
    "timeout",
    "failures_to_alert",
    "success",
    "departed_retention",
    "template",
];
const POLICY_BLOCKS: &[&str] = &[
    "instance", "volume", "rds", "aurora", "select", "exclude", "retries", "scripts", "dr",
];

/// The `policy` blocks by name; a name declared twice keeps the first.
pub(super) fn decode_policies(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    accounts: &BTreeMap<String, DeclaredAccount>,
    schedule_names: &BTreeSet<String>,
) -> BTreeMap<String, Policy> {
    let mut policies = BTreeMap::new();
    let mut policy_at: HashMap<String, (usize, usize)> = HashMap::new();
    let mut keys: HashMap<String, (String, usize, usize)> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let (name, policy) = decode_policy(d, src, b, accounts, schedule_names);
        let Some(name) = name else { continue };
        let label = start(b.labels.first().expect("named"));
        if let Some(&(fi, at)) = policy_at.get(&name) {
            d.error(
                src,
                label,
                "Duplicate policy",
                format!(
                    "policy {name:?} is already declared at {}",
                    files[fi].0.short_location(at)
                ),
            );
            continue;
        }
        let key = validate::policy_name_key(&name);
        if let Some((other, fi, at)) = keys.get(&key) {
            d.error(
                src,
                label,
                "Invalid name",
                format!(
                    "policy {name:?} and policy {other:?} (at {}) would give their DB snapshots the same identifiers, which hold only lowercase letters, digits and single hyphens; rename one",
                    files[*fi].0.short_location(*at)
                ),
            );
            continue;
        }
        keys.insert(key, (name.clone(), i, start(&b.ident)));
        policy_at.insert(name, (i, start(&b.ident)));
        if let Some(policy) = policy {
            policies.insert(policy.name.clone(), policy);
        }
    }
    policies
}

/// What a policy backs up, in the order its blocks are written.
#[derive(Default)]
struct Targets {
    instances: Vec<InstanceTarget>,
    volumes: Vec<VolumeTarget>,
    rds: Vec<DbTarget>,
    aurora: Vec<DbTarget>,
    selectors: Vec<TagSelector>,
    excludes: Vec<TagSelector>,
}

fn decode_policy(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    accounts: &BTreeMap<String, DeclaredAccount>,
    schedule_names: &BTreeSet<String>,
) -> (Option<String>, Option<Policy>) {
    let mut name = d.name_label(src, block, "web");
    if let Some((n, at)) = name
        .as_ref()
        .filter(|(n, _)| n.len() > validate::MAX_POLICY_NAME)
    {
        d.error(
            src,
            *at,
            "Invalid name",
            format!(
                "policy name {n:?} has {} characters; a policy name has at most {}, as it is part of the AMI names and DB snapshot identifiers of its backups",
                n.len(),
                validate::MAX_POLICY_NAME
            ),
        );
        name = None;
    }
    let what = match &name {
        Some((n, _)) => format!("policy {n:?}"),
        None => "this policy".into(),
    };
    let scope = d.scope(
        src,
        &block.body,
        what,
        start(&block.ident),
        POLICY_ATTRS,
        POLICY_BLOCKS,
    );

    let account = account_reference(d, &scope, accounts);
    let generations = generations(d, &scope);
    let enabled = d.bool(&scope, "enabled").unwrap_or(true);
    let schedules = schedule::policy_schedules(d, &scope, schedule_names);
    let options = options::decode_policy_options(d, &scope);
    let description = d.string(&scope, "description", false).map(|(s, _)| s);
    let auto_remove_targets = match d.choice(&scope, "auto_remove_targets", &["no", "yes", "alert"])
    {
        Some(1) => AutoRemove::Yes,
        Some(2) => AutoRemove::Alert,
        _ => AutoRemove::No,
    };
    let targets = policy_targets(d, &scope, account.and_then(|a| accounts.get(a)));
    let dr = dr::decode_dr(d, &scope, account, accounts);

    let template = d.bool(&scope, "template").unwrap_or(false);
    if template {
        template_has_no_targets(d, &scope);
    }

    let Some((name, _)) = name else {
        return (None, None);
    };
    if scope.blocks.is_empty() && !template {
        d.warning(
            src,
            start(&block.ident),
            "Policy backs up nothing",
            format!("policy {name:?} has no instance, volume, rds, aurora or select block, so it backs up only what a lifeboat:backup tag names it on"),
        );
    }
    let Targets {
        instances,
        volumes,
        rds,
        aurora,
        selectors,
        excludes,
    } = targets;
    let policy = account
        .zip(generations)
        .map(|(account, generations)| Policy {
            name: name.clone(),
            account: account.to_string(),
            generations,
            enabled,
            description,
            instances,
            volumes,
            rds,
            aurora,
            selectors,
            excludes,
            auto_remove_targets,
            schedules,
            options,
            dr,
            template,
            location: src.location(start(&block.ident)),
        });
    (Some(name), policy)
}

/// A template's policies take their members from the tags that name them:
/// a target or selector written in the template would be shared by every
/// policy made from it, so each is an error at its block.
fn template_has_no_targets(d: &mut Decoder, scope: &Scope<'_>) {
    for b in &scope.blocks {
        let kind = b.ident.value().as_str();
        if matches!(
            kind,
            "instance" | "volume" | "rds" | "aurora" | "select" | "exclude"
        ) {
            d.error(
                scope.src,
                start(&b.ident),
                "Target in a template",
                format!(
                    "{} is a template (template = true): its policies take their members from the lifeboat:backup tags that name them, so it has no {kind} block",
                    scope.what
                ),
            );
        }
    }
}

/// `generations`: a whole number from 1 to [`MAX_GENERATIONS`].
fn generations(d: &mut Decoder, scope: &Scope<'_>) -> Option<u32> {
    let (n, at) = d.whole_number(scope, "generations", true)?;
    if n < 1.0 {
        d.error(
            scope.src,
            at,
            "Value out of range",
            format!(
                "\"generations\" in {} must be at least 1, not {n}",
                scope.what
            ),
        );
        None
    } else if n > MAX_GENERATIONS {
        d.error(
            scope.src,
            at,
            "Value out of range",
            format!(
                "\"generations\" in {} must be at most {MAX_GENERATIONS}, not {n}",
                scope.what
            ),
        );
        None
    } else {
        Some(n as u32)
    }
}

/// The target and `select` blocks of the policy `scope`. A target id named
/// twice in one policy is reported at its second appearance.
fn policy_targets(
    d: &mut Decoder,
    scope: &Scope<'_>,
    account: Option<&DeclaredAccount>,
) -> Targets {
    let src = scope.src;
    let mut targets = Targets::default();
    let mut targets_at: HashMap<String, usize> = HashMap::new();
    for b in &scope.blocks {
        match b.ident.value().as_str() {
            kind @ ("rds" | "aurora") => {
                let t =
                    db_targets::decode_db_target(d, src, b, &scope.what, account, &mut targets_at);
                match t {
                    Some(t) if kind == "rds" => targets.rds.push(t),
                    Some(t) => targets.aurora.push(t),
                    None => {}
                }
            }
            "select" => tag_block(d, scope, b, Use::PolicySelect, &mut targets.selectors),
            "exclude" => tag_block(d, scope, b, Use::PolicyExclude, &mut targets.excludes),
            kind if options::POLICY_OPTION_BLOCKS.contains(&kind) => {}
            "dr" => {}
            _ => ec2_target(d, scope, b, account, &mut targets_at, &mut targets),
        }
    }
    targets
}

/// An `instance "i-…"` or `volume "vol-…"` block of the policy `scope`.
fn ec2_target(
    d: &mut Decoder,
    scope: &Scope<'_>,
    b: &Block,
    account: Option<&DeclaredAccount>,
    targets_at: &mut HashMap<String, usize>,
    targets: &mut Targets,
) {
    let src = scope.src;
    let kind = b.ident.value().as_str();
    let id = ec2_target_id(d, scope, b, targets_at);
    let what = match &id {
        Some(id) => format!("{kind} {id:?} of {}", scope.what),
        None => format!("this {kind} of {}", scope.what),
    };
    let attrs: &[&str] = if kind == "instance" {
        &[
            "region",
            "volumes",
            "exclude_volumes",
            "mode",
            "ami_rotation",
        ]
    } else {
        &["region"]
    };
    let t = d.scope(src, &b.body, what, start(&b.ident), attrs, &[]);
    let region = target_region(d, &t, account);
    if kind == "volume" {
        if let (Some(id), Some(region)) = (id, region) {
            targets.volumes.push(VolumeTarget { id, region });
        }
        return;
    }
    if let Some(instance) = instance_target(d, &t, id, region) {
        targets.instances.push(instance);
    }
}

/// The id label of an instance or volume block, when it is a valid id not
/// already targeted by the policy.
fn ec2_target_id(
    d: &mut Decoder,
    scope: &Scope<'_>,
    b: &Block,
    targets_at: &mut HashMap<String, usize>,
) -> Option<String> {
    let src = scope.src;
    let kind = b.ident.value().as_str();
    let (meaning, example, valid, shape): (_, _, fn(&str) -> bool, _) = if kind == "instance" {
        (
            "instance id",
            "i-0123456789abcdef0",
            validate::is_instance_id,
            "\"i-\"",
        )
    } else {
        (
            "volume id",
            "vol-0123456789abcdef0",
            validate::is_volume_id,
            "\"vol-\"",
        )
    };
    let label = d.one_label(src, b, meaning, example)?;
    let id = label.as_str();
    if !valid(id) {
        let summary = if kind == "instance" {
            "Invalid instance id"
        } else {
            "Invalid volume id"
        };
        d.error(
            src,
            start(label),
            summary,
            format!("{id:?} is not an EC2 {meaning}; expected {shape} followed by 8 or 17 lowercase hexadecimal digits"),
        );
        return None;
    }
    if let Some(&first) = targets_at.get(id) {
        d.error(
            src,
            start(label),
            "Duplicate target",
            format!(
                "{kind} {id:?} already appears in {} at {}",
                scope.what,
                src.short_location(first)
            ),
        );
        return None;
    }
    targets_at.insert(id.to_string(), start(label));
    Some(id.to_string())
}

/// The settings of the instance block `t`; the target when its id and
/// region are valid too.
fn instance_target(
    d: &mut Decoder,
    t: &Scope<'_>,
    id: Option<String>,
    region: Option<String>,
) -> Option<InstanceTarget> {
    let choice = match d.choice(t, "volumes", &["all", "root", "data"]) {
        Some(1) => VolumeChoice::Root,
        Some(2) => VolumeChoice::Data,
        _ => VolumeChoice::All,
    };
    let mut exclude = Vec::new();
    if let Some(list) = d.string_list(t, "exclude_volumes", false) {
        for (v, at) in &list {
            if !validate::is_volume_id(v) {
                d.error(
                    t.src,
                    *at,
                    "Invalid volume id",
                    format!("{v:?} is not an EC2 volume id; expected \"vol-\" followed by 8 or 17 lowercase hexadecimal digits"),
                );
            }
        }
        d.duplicates_in_list(t, "exclude_volumes", &list);
        exclude = list.into_iter().map(|(v, _)| v).collect();
    }
    let mode = match d.choice(
        t,
        "mode",
        &["snapshots", "initial_ami", "ami", "ami_reboot"],
    ) {
        Some(1) => InstanceMode::InitialAmi,
        Some(2) => InstanceMode::Ami,
        Some(3) => InstanceMode::AmiReboot,
        _ => InstanceMode::Snapshots,
    };
    let ami_rotation = db_targets::ami_rotation(d, t);
    Some(InstanceTarget {
        id: id?,
        region: region?,
        volumes: choice,
        exclude_volumes: exclude,
        mode,
        ami_rotation,
    })
}

/// A target's region: as written, or the account's only region.
pub(super) fn target_region(
    d: &mut Decoder,
    t: &Scope<'_>,
    account: Option<&DeclaredAccount>,
) -> Option<String> {
    let usable = account.filter(|a| a.regions_ok);
    let Some((region, at)) = d.string(t, "region", false) else {
        if t.attrs.contains_key("region") {
            return None; // wrong type, already reported
        }
        let a = usable?;
        return match a.account.regions.as_slice() {
            [only] => Some(only.clone()),
            many => {
                d.error(
                    t.src,
                    t.at,
                    "Missing required attribute",
                    format!(
                        "{} must set \"region\": account {:?} has more than one region ({})",
                        t.what,
                        a.account.name,
                        many.join(", ")
                    ),
                );
                None
            }
        };
    };
    if !validate::is_region(&region) {
        d.error(
            t.src,
            at,
            "Invalid region",
            format!(
                "{region:?} in {} is not an AWS region name; expected a name like \"us-east-1\"",
                t.what
            ),
        );
        return None;
    }
    if let Some(a) = usable {
        if !a.account.regions.contains(&region) {
            d.error(
                t.src,
                at,
                "Region not in account",
                format!(
                    "{} is in {region:?}, which is not a region of account {:?} ({})",
                    t.what,
                    a.account.name,
                    a.account.regions.join(", ")
                ),
            );
            return None;
        }
    }
    Some(region)
}
