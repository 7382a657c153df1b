//! Who is in a policy. Applied configuration says what a policy is and
//! which targets it lists; AWS tags say which instances, volumes, RDS
//! instances and Aurora clusters its selectors take in (`kinds`). `plan` previews membership; each backup decides it again when it
//! starts ([`refresh`]), so that an instance tagged after the last apply is
//! backed up at the next run and a terminated one leaves as
//! `auto_remove_targets` says, without an apply in between.
//!
//! The rules live here once: [`gone_reason`] (a target AWS no longer has),
//! [`tagged`] (instances a selector matches), [`claims`] (what a resource's
//! own `lifeboat:backup` tag says: `no-backup` > the tag > selectors) and
//! [`resolve`] (a policy's members now, with each change and its reason).
//! The planner uses the first three; a backup uses them all.
//! [`templates`] says which policies tags make from configured templates.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{AutoRemove, TagSelector};
use serde::{Deserialize, Serialize};

use crate::addr::Address;
use crate::cloud::Cloud;
use crate::plan::observe::{observe_members, Observation, ObserveError};
use crate::state::model::{selector_matches, PolicyState, Source, TargetKind, TargetState};
use crate::state::{SharedStore, StateError};

pub mod claims;
pub mod scan;
pub mod tag;
pub mod templates;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kinds;

/// Why a target AWS no longer has is not backed up; `None` while it exists.
/// Databases are looked at only where they were listed (a selector takes
/// their kind in, or a tag-selected one is a target); elsewhere a missing
/// one fails its create call. A plan made from the state alone
/// (`--refresh=false`) finds every recorded target still there.
pub fn gone_reason(t: &TargetState, obs: &Observation) -> Option<String> {
    if obs.from_state {
        return None;
    }
    match t.kind {
        TargetKind::Instance => match obs.instances.get(&t.id) {
            None => Some("target no longer exists".into()),
            Some(i) if i.state.is_gone() => Some("target terminated".into()),
            Some(_) => None,
        },
        TargetKind::Volume => match obs.volumes.get(&t.id) {
            None => Some("target volume no longer exists".into()),
            Some(v) if v.state == "deleting" || v.state == "deleted" => {
                Some("target volume deleted".into())
            }
            Some(_) => None,
        },
        TargetKind::Rds | TargetKind::Aurora => {
            match obs.database(&t.account, t.kind, &t.region, &t.id) {
                Some(d) if db_deleted(&d.status) => Some("target database deleted".into()),
                Some(_) => None,
                None if obs.databases_listed(&t.account, t.kind, &t.region) => {
                    Some("target database no longer exists".into())
                }
                None => None,
            }
        }
    }
}

/// A database status on its way out: it cannot be backed up again.
fn db_deleted(status: &str) -> bool {
    matches!(status, "deleting" | "deleted")
}

/// The tags of target `t` as observed; `None` when it was not seen.
pub fn tags_of<'a>(t: &TargetState, obs: &'a Observation) -> Option<&'a crate::cloud::Tags> {
    match t.kind {
        TargetKind::Instance => obs.instances.get(&t.id).map(|i| &i.tags),
        TargetKind::Volume => obs.volumes.get(&t.id).map(|v| &v.tags),
        TargetKind::Rds | TargetKind::Aurora => obs
            .database(&t.account, t.kind, &t.region, &t.id)
            .map(|d| &d.tags),
    }
}

/// Why a target is gone for certain: AWS reports it terminated (or on its
/// way there) or deleted. A target merely absent from an answer is not:
/// an empty answer (a wrong endpoint, a proxy, a glitch) must not take an
/// instance out of its backups. A backup decides on this; a plan, which an
/// operator reviews, on [`gone_reason`].
pub fn gone_for_sure(t: &TargetState, obs: &Observation) -> Option<String> {
    let seen = match t.kind {
        TargetKind::Instance => obs.instances.contains_key(&t.id),
        TargetKind::Volume => obs.volumes.contains_key(&t.id),
        // Absent from a whole listing is not enough: only RDS saying
        // `deleting` or `deleted` is.
        TargetKind::Rds | TargetKind::Aurora => {
            obs.database(&t.account, t.kind, &t.region, &t.id).is_some()
        }
    };
    gone_reason(t, obs).filter(|_| seen)
}

pub use tag::{NO_BACKUP, TAG_BACKUP, TAG_BACKUP_ALIASES};

/// Why a resource with these tags is in no policy: its backup tag, or any
/// of the aliases, holds `no-backup` among its items. Every key is read, not
/// only the one [`tag::backup_tag`] prefers: an opt-out anywhere wins.
pub fn opted_out(tags: &crate::cloud::Tags) -> Option<String> {
    std::iter::once(TAG_BACKUP)
        .chain(TAG_BACKUP_ALIASES)
        .find_map(|key| {
            let v = tags.get(key)?;
            tag::parse(tag::Grammar::Backup, v)
                .opt_out
                .then(|| format!("tag {key}={v}"))
        })
}

/// The first of `excludes` that `tags` match.
pub fn excluded<'a>(
    excludes: &'a [TagSelector],
    tags: &crate::cloud::Tags,
) -> Option<&'a TagSelector> {
    excludes.iter().find(|e| selector_matches(e, tags))
}

/// A backup takes no more than this share of a policy's targets out at once
/// (when more than one would go): more looks like a tagging tool gone wrong
/// than like a change anyone meant, and is left to a reviewed apply.
pub const MOST_LEAVING_AT_ONCE: f64 = 0.5;

/// The resources in `regions` that one of `sels` matches (the first that
/// does and takes their kind in is their source), leaving out those `taken`
/// already holds, those terminated or deleted, those an exclude matches and
/// those opted out ([`opted_out`]). Ordered by id.
pub fn tagged(
    account: &str,
    sels: &[TagSelector],
    excludes: &[TagSelector],
    regions: &BTreeSet<String>,
    obs: &Observation,
    taken: impl Fn(&str) -> bool,
) -> Vec<TargetState> {
    let mut out: Vec<TargetState> = Vec::new();
    if sels.is_empty() {
        return out;
    }
    let mut found = BTreeSet::new();
    for c in candidates(obs) {
        if c.gone || !regions.contains(c.region) || taken(c.id) || found.contains(c.id) {
            continue;
        }
        if !obs.in_account(&c.key, account) {
            continue;
        }
        if opted_out(c.tags).is_some() || excluded(excludes, c.tags).is_some() {
            continue;
        }
        let kind = c.kind.resource();
        if let Some(sel) = sels
            .iter()
            .find(|s| s.selects(kind) && selector_matches(s, c.tags))
        {
            found.insert(c.id.to_string());
            out.push(TargetState {
                kind: c.kind,
                id: c.id.to_string(),
                account: account.to_string(),
                region: c.region.to_string(),
                source: Source::Tag(sel.clone()),
                volumes: Default::default(),
                exclude_volumes: vec![],
                mode: Default::default(),
                ami_rotation: None,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A resource a selector or a tag may take in, of any kind, as observed.
pub(crate) struct Candidate<'a> {
    pub(crate) kind: TargetKind,
    /// Its key in the observation ([`Observation::owners`]).
    pub(crate) key: String,
    pub(crate) id: &'a str,
    pub(crate) region: &'a str,
    pub(crate) tags: &'a crate::cloud::Tags,
    /// Terminated, or deleted (or on its way): never joins.
    pub(crate) gone: bool,
}

/// Every observed instance, volume and database: the one walk over an
/// observation's resources that membership, tag problems, scans and
/// templates share.
pub(crate) fn candidates(obs: &Observation) -> impl Iterator<Item = Candidate<'_>> {
    let instances = obs.instances.values().map(|i| Candidate {
        kind: TargetKind::Instance,
        key: i.id.clone(),
        id: &i.id,
        region: &i.region,
        tags: &i.tags,
        gone: i.state.is_gone(),
    });
    let volumes = obs.volumes.values().map(|v| Candidate {
        kind: TargetKind::Volume,
        key: v.id.clone(),
        id: &v.id,
        region: &v.region,
        tags: &v.tags,
        gone: v.state == "deleting" || v.state == "deleted",
    });
    let databases = obs.databases.iter().map(|(key, d)| Candidate {
        kind: crate::plan::observe::db_target_kind(d.kind),
        key: key.clone(),
        id: &d.id,
        region: &d.region,
        tags: &d.tags,
        gone: db_deleted(&d.status),
    });
    instances.chain(volumes).chain(databases)
}

/// Joined or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    Joined,
    Left,
}

impl Move {
    pub fn as_str(self) -> &'static str {
        match self {
            Move::Joined => "joined",
            Move::Left => "left",
        }
    }
}

/// One change of a policy's membership, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    pub policy: String,
    pub target: String,
    pub kind: TargetKind,
    #[serde(rename = "change")]
    pub moved: Move,
    /// `tag team=web`, `target terminated`, `no longer matches tag team=web`.
    pub reason: String,
    /// `auto_remove_targets = "alert"`: the departure opens an alert.
    #[serde(default)]
    pub alert: bool,
    pub at: DateTime<Utc>,
    /// The backup that found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
}

impl std::fmt::Display for MemberChange {
    /// `joined: i-0abc (tag team=web)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} {} ({})",
            self.moved.as_str(),
            self.kind.noun(),
            self.target,
            self.reason
        )
    }
}

/// A policy's members now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    pub members: Vec<TargetState>,
    pub changes: Vec<MemberChange>,
    /// Departures not made: too many at once ([`MOST_LEAVING_AT_ONCE`]).
    pub held_back: Vec<MemberChange>,
}

/// Tag-selected member `t` as its tags select it now (the first selector
/// that matches is its source), or why it leaves: an exclude matches, or
/// no selector does any more (`was` took it in).
fn still_selected(
    policy: &PolicyState,
    t: &TargetState,
    was: &TagSelector,
    tags: &crate::cloud::Tags,
) -> Result<TargetState, String> {
    if let Some(e) = excluded(&policy.excludes, tags) {
        return Err(format!("excluded by {e}"));
    }
    let kind = t.kind.resource();
    match policy
        .selectors
        .iter()
        .find(|s| s.selects(kind) && selector_matches(s, tags))
    {
        Some(now) => Ok(TargetState {
            source: Source::Tag(now.clone()),
            ..t.clone()
        }),
        None => Err(format!("no longer matches {was}")),
    }
}

/// The members of `policy` now: its targets in state (`current`), less
/// those gone from AWS that `auto_remove_targets` lets go, those whose
/// backup tag no longer names the policy and the selected ones no selector
/// matches any more, plus the resources in `regions` whose backup tag names
/// it or a selector matches now; instance members leave out the volumes
/// tagged `#exclude`. Pure; `obs` must hold every current instance and
/// volume target by id, every instance the selectors match and every
/// resource carrying a backup tag.
pub fn resolve(
    policy: &PolicyState,
    current: &[TargetState],
    regions: &BTreeSet<String>,
    obs: &Observation,
    at: DateTime<Utc>,
) -> Resolved {
    let mut out = Resolved::default();
    let alerts = policy.auto_remove_targets == AutoRemove::Alert;
    let change = |t: &TargetState, moved, reason: String, alert| MemberChange {
        policy: policy.name.clone(),
        target: t.id.clone(),
        kind: t.kind,
        moved,
        reason,
        alert,
        at,
        backup_id: None,
    };
    for t in current {
        if let Some(why) = gone_for_sure(t, obs) {
            match policy.auto_remove_targets {
                // Kept: its backups are partial until the operator acts.
                AutoRemove::No => out.members.push(t.clone()),
                AutoRemove::Yes | AutoRemove::Alert => {
                    out.changes.push(change(t, Move::Left, why, alerts))
                }
            }
            continue;
        }
        // Not seen at all: kept (its backup says it is missing), never
        // removed on an answer that may be wrong.
        if gone_reason(t, obs).is_some() {
            out.members.push(t.clone());
            continue;
        }
        let tags = tags_of(t, obs);
        // Opted out on the resource itself: it wins over listing too.
        if let Some(why) = tags.and_then(opted_out) {
            // A listed target leaving by a tag anyone could write always
            // alerts: the configuration says it is protected.
            let alert = alerts || t.source == Source::Listed;
            out.changes.push(change(t, Move::Left, why, alert));
            continue;
        }
        // The resource's own tag wins over selectors: its source and mode.
        // (A listed target keeps what the configuration says of it.)
        let claimed = (t.source != Source::Listed)
            .then(|| claims::still_claimed(&policy.name, t, obs))
            .flatten();
        if let Some(now) = claimed {
            out.members.push(now);
            continue;
        }
        let sel = match &t.source {
            Source::Listed => {
                out.members.push(t.clone());
                continue;
            }
            Source::Tag(sel) => sel,
            Source::BackupTag { key, .. } => {
                // Untagged: a selector may still take it in (its source
                // switches), or it leaves.
                match tags.and_then(|g| selected(policy, g)) {
                    Some(now) => out.members.push(TargetState {
                        source: Source::Tag(now.clone()),
                        mode: Default::default(),
                        ami_rotation: None,
                        ..t.clone()
                    }),
                    None => out.changes.push(change(
                        t,
                        Move::Left,
                        format!("no longer tagged {key} for {}", policy.name),
                        alerts,
                    )),
                }
                continue;
            }
        };
        // A tag-selected database not listed (no selector takes its kind
        // in any more): kept, as nothing was seen to decide on.
        let Some(tags) = tags else {
            out.members.push(t.clone());
            continue;
        };
        match still_selected(policy, t, sel, tags) {
            Ok(now) => out.members.push(now),
            Err(why) => out.changes.push(change(t, Move::Left, why, alerts)),
        }
    }
    let leaving = out.changes.len();
    if leaving > 1 && leaving as f64 > current.len() as f64 * MOST_LEAVING_AT_ONCE {
        // Kept, all of them: the note says why, and `plan` shows them.
        out.held_back = std::mem::take(&mut out.changes);
        out.members = current.to_vec();
    }
    let held: BTreeSet<String> = current.iter().map(|t| t.id.clone()).collect();
    for t in joining(policy, regions, obs, held) {
        let reason = t.source.to_string();
        out.changes.push(change(&t, Move::Joined, reason, false));
        out.members.push(t);
    }
    // Listed targets keep their exclusions as applied (see
    // `exclude_tagged_volumes`).
    let unlisted = out
        .members
        .iter_mut()
        .filter(|t| t.source != Source::Listed);
    claims::exclude_tagged_volumes(&policy.name, unlisted, obs);
    out.members.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Who joins `policy` now, but those `held` already: the resources whose
/// backup tag names it, then those a selector matches (a resource both
/// tagged and selected joins once, by its tag).
fn joining(
    policy: &PolicyState,
    regions: &BTreeSet<String>,
    obs: &Observation,
    mut held: BTreeSet<String>,
) -> Vec<TargetState> {
    let claimed = claims::claimed(&policy.name, &policy.account, regions, obs, |id| {
        held.contains(id)
    });
    held.extend(claimed.iter().map(|t| t.id.clone()));
    let found = tagged(
        &policy.account,
        &policy.selectors,
        &policy.excludes,
        regions,
        obs,
        |id| held.contains(id),
    );
    claimed.into_iter().chain(found).collect()
}

/// The first of `policy`'s selectors that `tags` match, unless an exclude
/// or an opt-out keeps the resource out.
fn selected<'a>(policy: &'a PolicyState, tags: &crate::cloud::Tags) -> Option<&'a TagSelector> {
    if opted_out(tags).is_some() || excluded(&policy.excludes, tags).is_some() {
        return None;
    }
    policy.selectors.iter().find(|s| selector_matches(s, tags))
}

/// What [`refresh`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refreshed {
    /// The changes made and logged.
    pub changes: Vec<MemberChange>,
    /// Departures not made: too many at once ([`MOST_LEAVING_AT_ONCE`]).
    pub held_back: Vec<MemberChange>,
    /// The policy's targets before.
    pub targets: usize,
    /// Backup tags in the policy's regions with items not used
    /// ([`claims::problems`]).
    pub tag_problems: Vec<String>,
    /// Members were rewritten in place ([`Decision::updated`]): what the
    /// backup takes changed even without a join or a departure.
    pub rewritten: bool,
}

/// The members of `now` that `before` holds with another value: kept, but
/// to be written again.
fn updated_members(before: &[TargetState], now: &[TargetState]) -> Vec<TargetState> {
    now.iter()
        .filter(|t| before.iter().any(|b| b.id == t.id && b != *t))
        .cloned()
        .collect()
}

impl Refreshed {
    /// The backup's notes of tag items not used: problem lines of its
    /// run log that leave its status as its snapshots earned it.
    pub fn tag_notes(&self) -> Vec<String> {
        self.tag_problems
            .iter()
            .map(|p| format!("{}: {p}", crate::state::MEMBERSHIP_NOTE))
            .collect()
    }

    /// The note of a backup whose departures were held back, if any.
    pub fn note(&self) -> Option<String> {
        (!self.held_back.is_empty()).then(|| {
            let who: Vec<String> = self.held_back.iter().map(|c| c.to_string()).collect();
            format!(
                "{}: {} of {} targets would have left at once (counting the last day's departures), so none did ({}); `lifeboat plan` shows them, `apply` removes them",
                crate::state::MEMBERSHIP_NOTE,
                self.held_back.len(),
                self.targets,
                who.join("; ")
            )
        })
    }
}

/// Why membership could not be decided now.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A policy's members as AWS says they are now, not yet recorded.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The policy's targets in state before.
    pub current: Vec<TargetState>,
    pub resolved: Resolved,
    /// Backup-tag items in the policy's regions that name nothing usable.
    pub tag_problems: Vec<String>,
    /// Members whose tag now says otherwise (an option, a volume's
    /// `#exclude`, a source switched between tag and selector).
    pub updated: Vec<TargetState>,
    /// Volumes an `#exclude` tag left out of (or let back into) their
    /// instance's backups, as changes of the volumes ([`exclusion_changes`]).
    pub exclusions: Vec<MemberChange>,
}

/// Decides `policy`'s members now, without recording anything: `None`
/// when the policy (or its account) is not in state, or when nothing can
/// join or leave it without a look at AWS. AWS is asked once per region
/// for the selectors and once per region for the current targets by id.
pub async fn decide(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    at: DateTime<Utc>,
) -> Result<Option<Decision>, MembershipError> {
    let state = store.lock().expect("store").load()?;
    let Some(pol) = state.policy(policy)? else {
        return Ok(None);
    };
    let Some(account) = state.accounts()?.remove(&pol.account) else {
        return Ok(None);
    };
    let current: Vec<TargetState> = state
        .targets()?
        .into_iter()
        .filter(|((p, _), _)| p == policy)
        .map(|(_, t)| t)
        .collect();
    // A template never runs; the policies made from it are decided on
    // their own.
    if pol.template {
        return Ok(None);
    }
    // Every policy is looked at: a resource may name it in its backup tag
    // (one list per region and kind finds those), whatever its selectors.
    let regions: BTreeSet<String> = account.regions.iter().cloned().collect();
    // Every instance and volume target is looked at, listed ones too: a
    // `no-backup` tag on the resource takes it out whatever lists it.
    let obs = observe_members(cloud.clone(), &account, &pol.selectors, &current).await?;
    let resolved = resolve(&pol, &current, &regions, &obs, at);
    let policies = state.policies()?;
    let tag_problems = claims::problems(
        &regions,
        &obs,
        |p| policies.get(p).is_some_and(|p| !p.template),
        |t| policies.get(t).is_some_and(|p| p.template),
    );
    let updated = updated_members(&current, &resolved.members);
    let exclusions = exclusion_changes(policy, &current, &resolved.members, at);
    let mut d = Decision {
        current,
        resolved,
        tag_problems,
        updated,
        exclusions,
    };
    let since = at - chrono::Duration::hours(LEAVING_WINDOW_HOURS);
    let recent = store
        .lock()
        .expect("store")
        .member_changes(Some(policy), since)?;
    hold_back_over_window(&mut d, &recent);
    Ok(Some(d))
}

/// How the reason of a volume left out by its `#exclude` tag begins: such
/// a change is not a departure of a target.
pub const EXCLUDED_BY_TAG: &str = "left out by its #exclude tag";

/// How the reason of a volume let back into its instance's backups begins.
pub const BACK_IN: &str = "back in instance";

/// A departure AWS reported ([`gone_reason`]), not one a tag decided.
fn is_fact(reason: &str) -> bool {
    matches!(
        reason,
        "target terminated" | "target volume deleted" | "target database deleted"
    )
}

/// How far back departures count against [`MOST_LEAVING_AT_ONCE`]: one
/// departure at a time, scan after scan, must not drain a policy.
pub const LEAVING_WINDOW_HOURS: i64 = 24;

/// Holds back every departure of `d` when, counted with those of the last
/// [`LEAVING_WINDOW_HOURS`] (`recent`, as logged), more than
/// [`MOST_LEAVING_AT_ONCE`] of the policy's targets of a day ago would be
/// gone (and at least two). Members that joined within the window do not
/// count towards that base: joining junk first must not make room for
/// real members to leave.
pub fn hold_back_over_window(d: &mut Decision, recent: &[MemberChange]) {
    // Only departures on a tag's word count: AWS reporting a target
    // terminated or deleted is a fact, not a tagging tool gone wrong (and
    // Auto Scaling replaces instances every day).
    let departure = |c: &MemberChange| {
        c.moved == Move::Left && !c.reason.starts_with(EXCLUDED_BY_TAG) && !is_fact(&c.reason)
    };
    let leaving = d.resolved.changes.iter().filter(|c| departure(c)).count();
    if leaving == 0 {
        return;
    }
    // Counted per target: those that joined within the window and are
    // still members are not in the base; those that left within it
    // without having joined in it were.
    let joined: BTreeSet<&str> = recent
        .iter()
        .filter(|c| c.moved == Move::Joined && !c.reason.starts_with(BACK_IN))
        .map(|c| c.target.as_str())
        .collect();
    let left: BTreeSet<&str> = recent
        .iter()
        .filter(|c| departure(c) && !joined.contains(c.target.as_str()))
        .map(|c| c.target.as_str())
        .collect();
    let new = d
        .current
        .iter()
        .filter(|t| joined.contains(t.id.as_str()))
        .count();
    let base = d.current.len() - new + left.len();
    let gone = leaving + left.len();
    if gone <= 1 || gone as f64 <= base as f64 * MOST_LEAVING_AT_ONCE {
        return;
    }
    let (held, kept): (Vec<MemberChange>, Vec<MemberChange>) =
        std::mem::take(&mut d.resolved.changes)
            .into_iter()
            .partition(|c| c.moved == Move::Left);
    d.resolved.changes = kept;
    for c in &held {
        if let Some(t) = d.current.iter().find(|t| t.id == c.target) {
            d.resolved.members.push(t.clone());
        }
    }
    d.resolved.members.sort_by(|a, b| a.id.cmp(&b.id));
    d.resolved.held_back.extend(held);
    let still: BTreeSet<String> = d.resolved.members.iter().map(|t| t.id.clone()).collect();
    d.updated.retain(|t| still.contains(&t.id));
}

/// The volumes whose `#exclude` tag took them out of (or whose removed tag
/// let them back into) an instance member's backups since `current`, as
/// changes of the volumes: a tag that takes data out of backups is never
/// acted on unseen (it shows in the run log, `status` and the summary).
/// Listed instances are not changed by tags at backup time.
fn exclusion_changes(
    policy: &str,
    current: &[TargetState],
    members: &[TargetState],
    at: DateTime<Utc>,
) -> Vec<MemberChange> {
    let mut out = Vec::new();
    let change = |volume: &str, moved, reason: String| MemberChange {
        policy: policy.to_string(),
        target: volume.to_string(),
        kind: TargetKind::Volume,
        moved,
        reason,
        alert: false,
        at,
        backup_id: None,
    };
    for m in members
        .iter()
        .filter(|m| m.kind == TargetKind::Instance && m.source != Source::Listed)
    {
        let before: BTreeSet<&String> = current
            .iter()
            .find(|t| t.id == m.id)
            .map(|t| t.exclude_volumes.iter().collect())
            .unwrap_or_default();
        let now: BTreeSet<&String> = m.exclude_volumes.iter().collect();
        for v in now.difference(&before) {
            let why = format!("{EXCLUDED_BY_TAG} of instance {}'s backups", m.id);
            out.push(change(v, Move::Left, why));
        }
        for v in before.difference(&now) {
            let why = format!("{BACK_IN} {}'s backups: its #exclude tag is gone", m.id);
            out.push(change(v, Move::Joined, why));
        }
    }
    out
}

/// Decides `policy`'s members as its backup (or a tag scan) `backup_id`
/// starts and records the changes in one transaction: joined targets
/// become state targets, departed ones leave (their departure recorded for
/// `departed_retention`, an alert opened under `auto_remove_targets =
/// "alert"`), and each change is logged with its reason.
pub async fn refresh(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    policy: &str,
    backup_id: &str,
    at: DateTime<Utc>,
) -> Result<Refreshed, MembershipError> {
    match decide(cloud, store, policy, at).await? {
        None => Ok(Refreshed::default()),
        Some(d) => record(store, policy, d, backup_id, at),
    }
}

/// Records a [`Decision`] made by `backup_id` (see [`refresh`]).
pub fn record(
    store: &SharedStore,
    policy: &str,
    decision: Decision,
    backup_id: &str,
    at: DateTime<Utc>,
) -> Result<Refreshed, MembershipError> {
    let Decision {
        current,
        resolved,
        tag_problems,
        updated,
        mut exclusions,
    } = decision;
    for c in &mut exclusions {
        c.backup_id = Some(backup_id.to_string());
    }
    let mut changes = resolved.changes;
    for c in &mut changes {
        c.backup_id = Some(backup_id.to_string());
    }
    let out = |changes| Refreshed {
        changes,
        held_back: resolved.held_back.clone(),
        targets: current.len(),
        tag_problems,
        rewritten: !updated.is_empty(),
    };
    if changes.is_empty() && updated.is_empty() {
        return Ok(out(changes));
    }
    let mut st = store.lock().expect("store");
    st.transaction(|tx| {
        // Members whose tag now says otherwise (its option, a volume's
        // `#exclude`, a source switched between tag and selector).
        for t in &updated {
            tx.put_object(
                &Address::target(policy, &t.id),
                &serde_json::to_value(t).expect("a target serializes"),
            )?;
        }
        for c in &changes {
            let addr = Address::target(policy, &c.target);
            match c.moved {
                Move::Joined => {
                    let t = resolved
                        .members
                        .iter()
                        .find(|t| t.id == c.target)
                        .expect("a joined target is a member");
                    tx.put_object(
                        &addr,
                        &serde_json::to_value(t).expect("a target serializes"),
                    )?;
                    tx.target_returned(policy, &c.target)?;
                }
                Move::Left => {
                    tx.delete_object(&addr)?;
                    tx.target_departed(policy, &c.target, at)?;
                    // Owned by the policy's address, not its name: it is not
                    // a failure alert, so it neither stands in for one
                    // (one open failure alert per policy) nor is closed by
                    // the success that follows in this run.
                    if c.alert {
                        tx.open_alert(
                            &Address::policy(policy).to_string(),
                            at,
                            &format!(
                                "{} {} removed from policy {policy}: {}",
                                c.kind.noun(),
                                c.target,
                                c.reason
                            ),
                        )?;
                    }
                }
            }
            tx.log_member_change(c)?;
        }
        for c in &exclusions {
            tx.log_member_change(c)?;
        }
        Ok(())
    })?;
    changes.extend(exclusions);
    Ok(out(changes))
}
