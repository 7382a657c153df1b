//! What a resource's own backup tag claims (`lifeboat:backup`, or N2WS's
//! `cpm backup` / `cpm_backup`): the policies it is a member of, how an
//! instance is backed up (`#only-snaps`, `#initial-ami`, `#only-amis`,
//! `#only-amis-reboot`), the volumes left out of their instance's backups
//! (`#exclude`), and the items that name nothing Lifeboat knows.
//!
//! Precedence (docs/configuration.md): `no-backup` wins over everything,
//! then the tag, then selectors. A listed target keeps what the
//! configuration says of it; only a tag's `#exclude` on one of its volumes
//! reaches it.

use std::collections::BTreeSet;

use lifeboat_schema::{InstanceMode, DEFAULT_AMI_ROTATION_DAYS};

use super::opted_out;
use super::tag::{backup_tag, parse, Grammar, TagItem};
use crate::cloud::Tags;
use crate::plan::observe::{db_target_kind as db_kind, Observation};
use crate::state::model::{Source, TargetKind, TargetState};

/// The item of `tags`' backup tag that names `policy` (`None` for a
/// resource that opted out): `(key, item)`. Lone `#exclude` items name no
/// policy, and `POLICY#exclude` does not make a member of its resource.
pub fn item_for(policy: &str, tags: &Tags) -> Option<(&'static str, TagItem)> {
    if opted_out(tags).is_some() {
        return None;
    }
    let (key, value) = backup_tag(tags)?;
    let item = parse(Grammar::Backup, value)
        .items
        .into_iter()
        .find(|i| i.name == policy && !i.excludes())?;
    Some((key, item))
}

/// The member a tag item makes of a resource: an instance's mode from the
/// item's option (the defaults without one: snapshots, and the default AMI
/// rotation for `#initial-ami`); a volume's none.
fn member(
    kind: TargetKind,
    id: &str,
    account: &str,
    region: &str,
    key: &str,
    item: &TagItem,
) -> TargetState {
    let mode = match kind {
        TargetKind::Instance => item.mode().unwrap_or_default(),
        _ => InstanceMode::default(),
    };
    TargetState {
        kind,
        id: id.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        source: Source::BackupTag {
            key: key.to_string(),
            value: item.to_string(),
        },
        volumes: Default::default(),
        exclude_volumes: vec![],
        mode,
        ami_rotation: (mode == InstanceMode::InitialAmi).then_some(DEFAULT_AMI_ROTATION_DAYS),
    }
}

/// The instances, volumes and databases (those listed, where `tag_scan`
/// asks for their kinds) in `regions` whose backup tag names `policy`,
/// leaving out those `taken` already holds, terminated instances, deleted
/// volumes and those opted out. Ordered by id.
pub fn claimed(
    policy: &str,
    account: &str,
    regions: &BTreeSet<String>,
    obs: &Observation,
    taken: impl Fn(&str) -> bool,
) -> Vec<TargetState> {
    let mut out = Vec::new();
    for i in obs.instances.values() {
        let theirs = !obs.in_account(&i.id, account);
        if theirs || i.state.is_gone() || !regions.contains(&i.region) || taken(&i.id) {
            continue;
        }
        if let Some((key, item)) = item_for(policy, &i.tags) {
            out.push(member(
                TargetKind::Instance,
                &i.id,
                account,
                &i.region,
                key,
                &item,
            ));
        }
    }
    for (db, d) in &obs.databases {
        let kind = db_kind(d.kind);
        let theirs = !obs.in_account(db, account);
        if theirs || db_gone(&d.status) || !regions.contains(&d.region) || taken(&d.id) {
            continue;
        }
        if let Some((key, item)) = item_for(policy, &d.tags) {
            out.push(member(kind, &d.id, account, &d.region, key, &item));
        }
    }
    for v in obs.volumes.values() {
        let deleted = v.state == "deleting" || v.state == "deleted";
        let theirs = !obs.in_account(&v.id, account);
        if theirs || deleted || !regions.contains(&v.region) || taken(&v.id) {
            continue;
        }
        if let Some((key, item)) = item_for(policy, &v.tags) {
            out.push(member(
                TargetKind::Volume,
                &v.id,
                account,
                &v.region,
                key,
                &item,
            ));
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// `t` as its backup tag claims it for `policy` now (source and mode from
/// the item, what it was made of kept), or `None` when the tag no longer
/// names the policy (or the resource is not observed).
pub fn still_claimed(policy: &str, t: &TargetState, obs: &Observation) -> Option<TargetState> {
    let tags = match t.kind {
        TargetKind::Instance => &obs.instances.get(&t.id)?.tags,
        TargetKind::Volume => &obs.volumes.get(&t.id)?.tags,
        TargetKind::Rds | TargetKind::Aurora => {
            &obs.database(&t.account, t.kind, &t.region, &t.id)?.tags
        }
    };
    let (key, item) = item_for(policy, tags)?;
    let fresh = member(t.kind, &t.id, &t.account, &t.region, key, &item);
    Some(TargetState {
        exclude_volumes: t.exclude_volumes.clone(),
        ..fresh
    })
}

/// The volumes whose backup tag leaves them out of `policy`'s backups of
/// their instance: a lone `#exclude` (every policy) or `POLICY#exclude`.
pub fn excluded_volumes(policy: &str, obs: &Observation) -> BTreeSet<String> {
    obs.volumes
        .values()
        .filter(|v| {
            let Some((_, value)) = backup_tag(&v.tags) else {
                return false;
            };
            parse(Grammar::Backup, value)
                .items
                .iter()
                .any(|i| i.excludes() && (i.name.is_empty() || i.name == policy))
        })
        .map(|v| v.id.clone())
        .collect()
}

/// Adds to each instance member of `policy` the attached volumes its
/// backup tag excludes ([`excluded_volumes`]), as the instance's
/// `exclude_volumes`. A member that is not listed has no other exclusions,
/// so its list is exactly the tagged ones (an `#exclude` removed lets the
/// volume back in at once); a listed one keeps the configuration's and
/// gains the tagged ones, at plan time only: a backup leaves a listed
/// target as applied, so that a tag never changes what a listed instance's
/// backups hold without a reviewed plan. A root volume is never left out
/// (CreateSnapshots refuses it; [`problems`] names the tag).
pub fn exclude_tagged_volumes<'a>(
    policy: &str,
    members: impl IntoIterator<Item = &'a mut TargetState>,
    obs: &Observation,
) {
    let excluded = excluded_volumes(policy, obs);
    for t in members {
        if t.kind != TargetKind::Instance {
            continue;
        }
        let Some(i) = obs.instances.get(&t.id) else {
            continue;
        };
        let tagged = i
            .volumes
            .iter()
            .filter(|v| !v.is_root && excluded.contains(&v.volume_id))
            .map(|v| v.volume_id.clone());
        let mut list: Vec<String> = match t.source {
            Source::Listed => t.exclude_volumes.iter().cloned().chain(tagged).collect(),
            Source::Tag(_) | Source::BackupTag { .. } => tagged.collect(),
        };
        list.sort();
        list.dedup();
        t.exclude_volumes = list;
    }
}

/// What is wrong with the backup tags observed in `regions`: an item
/// naming a policy `known` does not know (and no template `template_known`
/// knows), an item asking for what its resource cannot do, and malformed
/// items. Each line names the resource, the tag and the item.
pub fn problems(
    regions: &BTreeSet<String>,
    obs: &Observation,
    known: impl Fn(&str) -> bool,
    template_known: impl Fn(&str) -> bool,
) -> Vec<String> {
    let roots: BTreeSet<&str> = obs
        .instances
        .values()
        .flat_map(|i| i.volumes.iter().filter(|v| v.is_root))
        .map(|v| v.volume_id.as_str())
        .collect();
    let mut out = Vec::new();
    for c in super::candidates(obs).filter(|c| !c.gone) {
        let (kind, id, region, tags) = (c.kind, c.id, c.region, c.tags);
        if !regions.contains(region) {
            continue;
        }
        let Some((key, value)) = backup_tag(tags) else {
            continue;
        };
        let read = parse(Grammar::Backup, value);
        let on = format!("tag {key}={value} on {} {id}", kind.noun());
        // Only one key is read: items under the others are not used (an
        // opt-out under any of them still counts).
        for other in std::iter::once(super::TAG_BACKUP)
            .chain(super::TAG_BACKUP_ALIASES)
            .filter(|k| *k != key && tags.contains_key(*k))
        {
            out.push(format!(
                "{on}: tag {other} is not read: {key} is, and only one backup tag counts"
            ));
        }
        for p in &read.problems {
            out.push(format!("{on}: {p}"));
        }
        for item in &read.items {
            if item.excludes() && roots.contains(id) {
                out.push(format!(
                    "{on}: item {:?} is not used: a root volume is always backed up with its instance",
                    item.to_string()
                ));
                continue;
            }
            if let Some(why) = item_problem(kind, item, &known, &template_known) {
                out.push(format!("{on}: item {:?} {why}", item.to_string()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A database on its way out joins nothing.
fn db_gone(status: &str) -> bool {
    status == "deleting" || status == "deleted"
}

/// Why one well-formed item is not used, if it is not.
fn item_problem(
    kind: TargetKind,
    item: &TagItem,
    known: &impl Fn(&str) -> bool,
    template_known: &impl Fn(&str) -> bool,
) -> Option<String> {
    if item.excludes() && kind != TargetKind::Volume {
        return Some("is not used: #exclude leaves a volume out, and this is not one".into());
    }
    if item.name.is_empty() || known(&item.name) {
        return None;
    }
    if template_known(&item.name) {
        return Some(format!(
            "is not used: {} is a template, which never runs itself (POLICY:{} makes a policy from it)",
            item.name, item.name
        ));
    }
    match &item.template {
        Some(t) if template_known(t) => None,
        Some(t) => Some(format!(
            "is not used: no policy {} is configured, and {t} is not a configured template",
            item.name
        )),
        None => Some(format!(
            "is not used: no policy {} is configured",
            item.name
        )),
    }
}
