//! The planner: diffs desired (configuration), prior (state and catalog) and
//! actual (the [`Observation`], see [`crate::plan::observe`]) into a
//! [`Plan`], one named step after another: accounts, each policy and its
//! targets, removed policies, retention ([`crate::retention`]), VPC clones,
//! removed accounts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lifeboat_schema::{Account, AutoRemove, Config, Policy, TagSelector};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::addr::Address;
use crate::membership;
use crate::plan::observe::Observation;
use crate::plan::{Action, Change, Effect, Plan};
use crate::retention;
use crate::state::model::{PolicyState, Source, TargetKind, TargetState};
use crate::state::{self, StateResult, StoredValue};

pub use crate::backup::names::{TAG_BACKUP_ID, TAG_POLICY, TAG_TARGET};

/// The accounts the engine can act in: those in state (so a removed account's
/// backups can still be cleaned up) overlaid with the configuration's.
pub fn known_accounts(
    config: &Config,
    state: &state::Snapshot,
) -> StateResult<BTreeMap<String, Account>> {
    let mut out = state.accounts()?;
    for (name, a) in &config.accounts {
        out.insert(name.clone(), a.clone());
    }
    Ok(out)
}

/// SHA-256 of the typed configuration (sources positions excluded), as it
/// is recorded: external ids sealed, so that the digest of a host's files
/// and of the configuration an apply recorded are alike.
pub fn config_digest(config: &Config) -> String {
    let sealed = crate::cloud::external_id::sealed_config(config);
    let bytes = serde_json::to_vec(&sealed).expect("configuration serialises");
    let d = Sha256::digest(&bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("state values serialise")
}

/// "generations 2 -> 1, enabled true -> false"; nested values are named only.
pub fn describe_update(before: &Value, after: &Value) -> String {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return "changed".into();
    };
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut parts = Vec::new();
    for k in keys {
        let (x, y) = (
            b.get(k).unwrap_or(&Value::Null),
            a.get(k).unwrap_or(&Value::Null),
        );
        if x == y {
            continue;
        }
        let scalar = |v: &Value| !v.is_array() && !v.is_object();
        if scalar(x) && scalar(y) {
            let show = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => "(none)".into(),
                other => other.to_string(),
            };
            parts.push(format!("{k} {} -> {}", show(x), show(y)));
        } else {
            parts.push(format!("{k} changed"));
        }
    }
    parts.join(", ")
}

/// Diffs configuration, state and observation into a plan. Pure: the same
/// inputs give the same plan, byte for byte.
pub fn plan(
    config: &Config,
    state: &state::Snapshot,
    obs: &Observation,
    now: DateTime<Utc>,
) -> StateResult<Plan> {
    let digest = config_digest(config);
    // Policies made from templates by tags (and made ones kept for their
    // backups) are planned as configured ones.
    let wanted = membership::templates::wanted(config, state, &state.policies()?, obs);
    let with_made;
    let config = if wanted.made.is_empty() && wanted.kept.is_empty() {
        config
    } else {
        with_made = membership::templates::with_made(config, &wanted);
        &with_made
    };
    let (moves, move_warnings) = moves(config, state)?;
    let renamed;
    let state = if moves.is_empty() {
        state
    } else {
        renamed = moved_state(state, &moves);
        &renamed
    };
    let mut d = Diff {
        config,
        state,
        obs,
        prior_policies: state.policies()?,
        prior_targets: state.targets()?,
        changes: Vec::new(),
        warnings: Vec::new(),
        removed_with_backups: Vec::new(),
        removed_copies: Vec::new(),
        copy_locks: Vec::new(),
        now,
        digest,
        made: wanted.made,
        kept: wanted.kept,
    };
    d.warnings.extend(wanted.warnings);
    d.accounts();
    for (name, p) in &config.policies {
        d.policy(name, p);
    }
    d.backup_tag_warnings();
    d.removed_policies();
    let expiring = d.retention()?;
    d.dr(&expiring)?;
    d.clones();
    if !obs.from_state {
        // A role is planned against the role AWS has.
        d.changes.extend(crate::iam::role::changes(
            config,
            state,
            &obs.iam_roles,
            &mut d.warnings,
        ));
    }
    d.removed_accounts(&expiring);
    d.warnings.extend(move_warnings);
    d.follow_moves(&moves);
    d.warnings.extend(crate::runmode::agenda::future_times(
        &BTreeMap::new(),
        &state.backups,
        now,
    ));
    d.warnings
        .extend(crate::backup::import::hint(config, state, obs));
    Ok(d.finish())
}

/// A policy's old and new name.
type Move = (String, String);

/// The `moved` blocks to perform: those whose old name is in state and whose
/// new one is not (once applied, a block stays as a no-op). A move that
/// would merge two histories, or that finds a backup of the policy in
/// flight, is not planned and says why; the old policy is then planned as
/// removed, which `apply` refuses without `--allow-destroy-backups`.
fn moves(config: &Config, state: &state::Snapshot) -> StateResult<(Vec<Move>, Vec<String>)> {
    let prior = state.policies()?;
    let has_backups = |p: &str| state.backups.iter().any(|b| b.policy == p);
    let (mut out, mut warnings) = (Vec::new(), Vec::new());
    for m in &config.moved {
        if !prior.contains_key(&m.from) {
            continue;
        }
        if prior.contains_key(&m.to) || has_backups(&m.to) {
            warnings.push(format!(
                "policy.{} cannot move to policy.{}: the state already holds policy.{} or backups of it; policy.{} is kept as it is until the moved block is fixed",
                m.from, m.to, m.to, m.from
            ));
        } else if state
            .backups
            .iter()
            .any(|b| b.policy == m.from && b.status == state::BackupStatus::Running)
        {
            warnings.push(format!(
                "policy.{} has a backup in flight; it moves to policy.{} once that backup is closed, and is kept as it is until then",
                m.from, m.to
            ));
        } else {
            out.push((m.from.clone(), m.to.clone()));
        }
    }
    Ok((out, warnings))
}

/// `state` as it is once `moves` are applied: the plan of the rest is made
/// against it, so that a renamed policy keeps its targets and backups.
fn moved_state(state: &state::Snapshot, moves: &[Move]) -> state::Snapshot {
    let to: BTreeMap<&str, &str> = moves
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let mut out = state.clone();
    out.objects = std::mem::take(&mut out.objects)
        .into_iter()
        .map(|(addr, v)| match &addr {
            Address::Policy { name } if to.contains_key(name.as_str()) => {
                let new = to[name.as_str()];
                let mut v = v.value();
                v["name"] = Value::String(new.to_string());
                (Address::policy(new), StoredValue::new(&v))
            }
            Address::Target { policy, id } if to.contains_key(policy.as_str()) => {
                (Address::target(to[policy.as_str()], id), v)
            }
            _ => (addr, v),
        })
        .collect();
    for b in &mut out.backups {
        if let Some(new) = to.get(b.policy.as_str()) {
            b.policy = new.to_string();
        }
    }
    // Departures move with their policy (as `Tx::move_policy` moves them).
    for (from, new) in &to {
        if let Some(d) = out.departed.remove(*from) {
            out.departed.insert(new.to_string(), d);
        }
    }
    out
}

/// One plan in the making: its inputs, and the changes and warnings so far.
struct Diff<'a> {
    config: &'a Config,
    state: &'a state::Snapshot,
    obs: &'a Observation,
    prior_policies: BTreeMap<String, PolicyState>,
    prior_targets: BTreeMap<(String, String), TargetState>,
    changes: Vec<Change>,
    warnings: Vec<String>,
    /// Removed policies whose backups retention deletes with them.
    removed_with_backups: Vec<String>,
    removed_copies: Vec<String>,
    copy_locks: Vec<crate::dr::lock::CopyLockView>,
    now: DateTime<Utc>,
    /// The configuration's digest (of the files: without `made`).
    digest: String,
    /// The policies made from templates by tags, among `config`'s.
    made: BTreeMap<String, membership::templates::Made>,
    /// Made policies no tag names any more, kept for their backups.
    kept: BTreeMap<String, PolicyState>,
}

impl Diff<'_> {
    /// Create, update or nothing, for a control object.
    fn upsert(
        &mut self,
        address: Address,
        after: Value,
        create_reason: Option<String>,
        depends_on: Vec<Address>,
    ) {
        match self.state.objects.get(&address).map(StoredValue::value) {
            None => {
                let mut c = Change::new(address, Action::Create, Effect::Control)
                    .after(Some(after))
                    .depends_on(depends_on);
                c.reason = create_reason;
                self.changes.push(c)
            }
            Some(b) if b != after => {
                let reason = describe_update(&b, &after);
                self.changes.push(
                    Change::new(address, Action::Update, Effect::Control)
                        .reason(reason)
                        .before(Some(b))
                        .after(Some(after))
                        .depends_on(depends_on),
                )
            }
            Some(_) => {}
        }
    }

    /// The configured accounts.
    fn accounts(&mut self) {
        for (name, a) in &self.config.accounts {
            // The state keeps the role's external id only as a digest.
            let a = crate::cloud::external_id::sealed_account(a);
            self.upsert(Address::account(name), to_value(&a), None, vec![]);
        }
    }

    /// One configured policy and its targets.
    fn policy(&mut self, name: &str, p: &Policy) {
        let addr = Address::policy(name);
        let made = self.made.get(name);
        let reason = match made {
            Some(m) => Some(m.reason()),
            None => p.template.then(|| {
                "template: never runs itself; POLICY:TEMPLATE tags make policies from it"
                    .to_string()
            }),
        };
        self.upsert(
            addr.clone(),
            to_value(&PolicyState {
                from_template: made
                    .map(|m| m.template.clone())
                    .or_else(|| self.kept.get(name)?.from_template.clone()),
                ..PolicyState::from(p)
            }),
            reason,
            vec![Address::account(&p.account)],
        );
        let mut sels = p.selectors.clone();
        sels.sort();
        if p.template {
            self.targets_leaving(name, p, &sels, &BTreeMap::new());
            return;
        }
        let mut want = self.listed_targets(name, p);
        if self.obs.from_state {
            self.recorded_targets(name, p, &sels, &mut want);
        } else {
            self.backup_tagged_targets(name, p, &mut want);
            self.tagged_targets(p, &sels, &mut want);
            membership::claims::exclude_tagged_volumes(name, want.values_mut(), self.obs);
        }
        if p.auto_remove_targets == AutoRemove::No {
            self.vanished_targets_kept(name, p, &sels, &mut want);
        }
        for (id, t) in &want {
            let reason = Some(t.source.to_string());
            self.upsert(
                Address::target(name, id),
                to_value(t),
                reason,
                vec![addr.clone()],
            );
        }
        self.targets_leaving(name, p, &sels, &want);
    }

    /// The targets the policy lists by id, but those gone from AWS when
    /// `auto_remove_targets` lets them go (with a warning).
    fn listed_targets(&mut self, name: &str, p: &Policy) -> BTreeMap<String, TargetState> {
        let mut want: BTreeMap<String, TargetState> = BTreeMap::new();
        let listed = |kind, id: &String, region: &String| TargetState {
            kind,
            id: id.clone(),
            account: p.account.clone(),
            region: region.clone(),
            source: Source::Listed,
            volumes: Default::default(),
            exclude_volumes: vec![],
            mode: Default::default(),
            ami_rotation: None,
        };
        for i in &p.instances {
            let t = TargetState {
                volumes: i.volumes,
                exclude_volumes: i.exclude_volumes.clone(),
                mode: i.mode,
                ami_rotation: (i.mode == lifeboat_schema::InstanceMode::InitialAmi)
                    .then_some(i.ami_rotation),
                ..listed(TargetKind::Instance, &i.id, &i.region)
            };
            if let Some(why) = self.opted_out(&t) {
                self.warnings.push(format!(
                    "instance {} listed in policy.{name} is not a target: {why}",
                    i.id
                ));
                continue;
            }
            if let Some(why) = membership::gone_reason(&t, self.obs) {
                if p.auto_remove_targets != AutoRemove::No {
                    self.warnings.push(format!(
                        "instance {} listed in policy.{name} is not a target: {why} (auto_remove_targets = {:?})",
                        i.id,
                        format!("{:?}", p.auto_remove_targets).to_lowercase()
                    ));
                    continue;
                }
            }
            want.insert(i.id.clone(), t);
        }
        for v in &p.volumes {
            let t = listed(TargetKind::Volume, &v.id, &v.region);
            if let Some(why) = self.opted_out(&t) {
                self.warnings.push(format!(
                    "volume {} listed in policy.{name} is not a target: {why}",
                    v.id
                ));
                continue;
            }
            if let Some(why) = membership::gone_reason(&t, self.obs) {
                if p.auto_remove_targets != AutoRemove::No {
                    self.warnings.push(format!(
                        "volume {} listed in policy.{name} is not a target: {why}",
                        v.id
                    ));
                    continue;
                }
            }
            want.insert(v.id.clone(), t);
        }
        // Databases are seen only where a selector lists their kind; there
        // the rules of instances and volumes apply to them too, so that a
        // plan agrees with what the next backup decides.
        for (kind, list) in [(TargetKind::Rds, &p.rds), (TargetKind::Aurora, &p.aurora)] {
            for db in list {
                let t = listed(kind, &db.id, &db.region);
                let out = match (self.opted_out(&t), membership::gone_reason(&t, self.obs)) {
                    (Some(why), _) => Some(why),
                    (None, Some(why)) if p.auto_remove_targets != AutoRemove::No => Some(why),
                    (None, _) => None,
                };
                if let Some(why) = out {
                    self.warnings.push(format!(
                        "{} {} listed in policy.{name} is not a target: {why}",
                        kind.noun(),
                        db.id
                    ));
                    continue;
                }
                want.insert(db.id.clone(), t);
            }
        }
        want
    }

    /// Why a target opted out on the resource itself (`no-backup`), as
    /// observed.
    fn opted_out(&self, t: &TargetState) -> Option<String> {
        membership::opted_out(membership::tags_of(t, self.obs)?)
    }

    /// Instances, volumes and databases in the policy's regions that a
    /// selector taking their kind in matches
    /// ([`membership::tagged`], as a backup decides it).
    fn tagged_targets(
        &self,
        p: &Policy,
        sels: &[TagSelector],
        want: &mut BTreeMap<String, TargetState>,
    ) {
        let regions: BTreeSet<String> = self
            .config
            .accounts
            .get(&p.account)
            .map(|a| a.regions.iter().cloned().collect())
            .unwrap_or_default();
        let found = membership::tagged(&p.account, sels, &p.excludes, &regions, self.obs, |id| {
            want.contains_key(id)
        });
        for t in found {
            want.insert(t.id.clone(), t);
        }
    }

    /// Instances and volumes in the policy's regions whose own backup tag
    /// names it ([`membership::claims::claimed`]); they win over selectors,
    /// a listed target keeps what the configuration says of it.
    fn backup_tagged_targets(
        &self,
        name: &str,
        p: &Policy,
        want: &mut BTreeMap<String, TargetState>,
    ) {
        let regions: BTreeSet<String> = self
            .config
            .accounts
            .get(&p.account)
            .map(|a| a.regions.iter().cloned().collect())
            .unwrap_or_default();
        let found = membership::claims::claimed(name, &p.account, &regions, self.obs, |id| {
            want.contains_key(id)
        });
        for t in found {
            want.insert(t.id.clone(), t);
        }
    }

    /// Backup tag items that name no configured policy or template, or
    /// that are malformed: warnings naming the resource, the tag and the
    /// item, in every configured account's regions.
    fn backup_tag_warnings(&mut self) {
        let regions: BTreeSet<String> = self
            .config
            .accounts
            .values()
            .flat_map(|a| a.regions.iter().cloned())
            .collect();
        let policies = &self.config.policies;
        self.warnings.extend(membership::claims::problems(
            &regions,
            self.obs,
            |n| policies.get(n).is_some_and(|p| !p.template),
            |t| policies.get(t).is_some_and(|p| p.template),
        ));
    }

    /// Without a look at AWS (`--refresh=false`), the policy's targets that
    /// tags brought in stay as the state records them, while the
    /// configuration still has the selector that took each in: tags are
    /// AWS's to say, selectors are the configuration's.
    fn recorded_targets(
        &self,
        name: &str,
        p: &Policy,
        sels: &[TagSelector],
        want: &mut BTreeMap<String, TargetState>,
    ) {
        // Only where the policy still looks: its account, and that
        // account's regions (as a refreshed plan's lists are).
        let looks_at = |t: &TargetState| {
            t.account == p.account
                && self
                    .config
                    .accounts
                    .get(&p.account)
                    .is_some_and(|a| a.regions.contains(&t.region))
        };
        for ((pol, id), t) in &self.prior_targets {
            let declared = match &t.source {
                Source::Listed => false,
                Source::Tag(s) => sels.contains(s),
                Source::BackupTag { .. } => true,
            };
            if pol == name && declared && looks_at(t) && !want.contains_key(id) {
                want.insert(id.clone(), t.clone());
            }
        }
    }

    /// With `auto_remove_targets = "no"`, a vanished target stays until the
    /// operator removes it; its backups report it missing.
    fn vanished_targets_kept(
        &self,
        name: &str,
        p: &Policy,
        sels: &[TagSelector],
        want: &mut BTreeMap<String, TargetState>,
    ) {
        for ((pol, id), t) in &self.prior_targets {
            let listed = p.instances.iter().any(|i| &i.id == id)
                || p.volumes.iter().any(|v| &v.id == id)
                || p.rds.iter().chain(&p.aurora).any(|d| &d.id == id);
            let still_declared = listed
                || matches!(t.source, Source::Tag(ref s) if sels.contains(s))
                || matches!(t.source, Source::BackupTag { .. });
            if pol == name
                && !want.contains_key(id)
                && still_declared
                && membership::gone_reason(t, self.obs).is_some()
            {
                want.insert(id.clone(), t.clone());
            }
        }
    }

    /// The policy's targets in state that it no longer wants, with why (and
    /// an alert when `auto_remove_targets = "alert"` and the target is gone).
    fn targets_leaving(
        &mut self,
        name: &str,
        p: &Policy,
        sels: &[TagSelector],
        want: &BTreeMap<String, TargetState>,
    ) {
        for ((pol, id), t) in &self.prior_targets {
            if pol != name || want.contains_key(id) {
                continue;
            }
            let gone = membership::gone_reason(t, self.obs);
            let reason = match (&gone, self.opted_out(t)) {
                (_, Some(why)) => why,
                (Some(why), None) => why.clone(),
                (None, None) => {
                    let tags = membership::tags_of(t, self.obs);
                    match (
                        &t.source,
                        tags.and_then(|g| membership::excluded(&p.excludes, g)),
                    ) {
                        (Source::BackupTag { key, .. }, _) => {
                            format!("no longer tagged {key} for {name}")
                        }
                        (Source::Tag(_), Some(e)) => format!("excluded by {e}"),
                        (Source::Tag(sel), None) if sels.contains(sel) => {
                            format!("no longer matches {sel}")
                        }
                        _ => "removed from configuration".to_string(),
                    }
                }
            };
            let taddr = Address::target(name, id);
            let mut c = Change::new(taddr.clone(), Action::Delete, Effect::Control)
                .reason(reason.clone())
                .before(self.state.objects.get(&taddr).map(StoredValue::value));
            if gone.is_some() && p.auto_remove_targets == AutoRemove::Alert {
                c.alert = Some(format!(
                    "{} {id} removed from policy {name}: {reason}",
                    t.kind.noun()
                ));
                c.reason = Some(format!("{reason}; alert recorded"));
            }
            self.changes.push(c);
        }
    }

    /// Policies removed from the configuration: targets go, then the policy,
    /// after the backups retention deletes with it.
    fn removed_policies(&mut self) {
        for (name, prior) in &self.prior_policies {
            if self.config.policies.contains_key(name) || self.held(name) {
                continue;
            }
            let addr = Address::policy(name);
            let mut deps = Vec::new();
            for (pol, id) in self.prior_targets.keys() {
                if pol == name {
                    let taddr = Address::target(name, id);
                    self.changes.push(
                        Change::new(taddr.clone(), Action::Delete, Effect::Control)
                            .reason("policy removed from configuration")
                            .before(self.state.objects.get(&taddr).map(StoredValue::value)),
                    );
                    deps.push(taddr);
                }
            }
            for e in retention::orphaned(name, &self.state.backups) {
                deps.push(e.backup.address());
            }
            let reason = match &prior.from_template {
                Some(t) => {
                    format!("made from template {t}; nothing names it any more and no backup of it is left")
                }
                None => "removed from configuration".to_string(),
            };
            self.changes.push(
                Change::new(addr, Action::Delete, Effect::Control)
                    .reason(reason)
                    .before(Some(to_value(prior)))
                    .depends_on(deps),
            );
        }
    }

    /// Retention, previewed before it happens ([`retention::decide`]), and
    /// the catalog drift of the backups that stay. Returns what expires.
    fn retention(&mut self) -> StateResult<BTreeMap<Address, String>> {
        let policies = retention::Policies {
            departed: self.members_after(),
            now: self.now,
            copied_away: self
                .config
                .policies
                .iter()
                .filter_map(|(n, p)| {
                    let x = p.dr.as_ref()?.cross_account.as_ref()?;
                    (!x.keep_original).then(|| (n.clone(), x.to.clone()))
                })
                .collect(),
            // An idle made policy keeps its generations: it makes no new
            // backups, so its last ones stay (its disabled state and the
            // plan's warning say so) until an operator removes them.
            generations: self
                .config
                .policies
                .iter()
                .map(|(name, p)| (name.clone(), p.generations))
                .collect(),
            removed: self
                .prior_policies
                .keys()
                .filter(|n| !self.config.policies.contains_key(*n) && !self.held(n))
                .cloned()
                .collect(),
        };
        let accounts = known_accounts(self.config, self.state)?;
        let decision = retention::decide(self.state, &policies, &accounts, self.obs)?;
        self.removed_with_backups = policies
            .removed
            .iter()
            .filter(|p| {
                self.state
                    .backups
                    .iter()
                    .any(|b| &b.policy == *p && decision.expiring.contains_key(&b.address()))
            })
            .cloned()
            .collect();
        self.changes.extend(decision.changes);
        self.changes.extend(retention::drift(
            &self.state.backups,
            &decision.expiring,
            self.obs,
        ));
        self.warnings.extend(decision.warnings);
        Ok(decision.expiring)
    }

    /// DR: copies that expire or were lost, and the latest valid backup's
    /// missing copies ([`crate::dr::plan::plan_copies`]).
    fn dr(&mut self, expiring: &BTreeMap<Address, String>) -> StateResult<()> {
        let accounts = known_accounts(self.config, self.state)?;
        let dr = crate::dr::plan::plan_copies(
            self.config,
            self.state,
            &self.prior_policies,
            &accounts,
            self.obs,
            expiring,
            |n| self.held(n),
            self.now,
        );
        self.changes.extend(dr.changes);
        self.warnings.extend(dr.notes);
        self.removed_copies = dr.removing;
        self.copy_locks = dr.locks;
        Ok(())
    }

    /// Is `name` the old name in a `moved` block whose move cannot run yet?
    /// (A move that runs renames it in the state this plan is made
    /// against.) Such a policy is left as it is: neither removed nor
    /// retained, so that a postponed move never becomes a deleted history.
    fn held(&self, name: &str) -> bool {
        self.config.moved.iter().any(|m| m.from == name)
    }

    /// The moves themselves, first: every change of a moved policy (its
    /// settings, targets, backups and their artifacts) waits for its move.
    fn follow_moves(&mut self, moves: &[Move]) {
        for (from, to) in moves {
            let n = self
                .state
                .backups
                .iter()
                .filter(|b| &b.policy == to)
                .count();
            let addr = Address::policy(from);
            for c in &mut self.changes {
                let of_policy = match &c.address {
                    Address::Policy { name } => name == to,
                    Address::Target { policy, .. } | Address::Backup { policy, .. } => policy == to,
                    _ => c.before.as_ref().and_then(|b| b.str("policy")) == Some(to.as_str()),
                };
                if of_policy {
                    c.depends_on.push(addr.clone());
                }
            }
            self.changes.push(
                Change::new(addr, Action::Move, Effect::Control)
                    .reason(format!(
                        "moved block: renamed with its {n} backup(s) and their artifacts; nothing in AWS changes"
                    ))
                    .before(Some(serde_json::json!({ "from": from })))
                    .after(Some(serde_json::json!({ "to": to }))),
            );
        }
    }

    /// Each configured policy's targets once this plan is applied (state's,
    /// with the plan's target creates and deletes), for retention to tell
    /// which targets have left ([`retention::Departed`]).
    fn members_after(&self) -> BTreeMap<String, retention::Departed> {
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut since = self.state.departed.clone();
        for (pol, id) in self.prior_targets.keys() {
            members.entry(pol.clone()).or_default().insert(id.clone());
        }
        for c in &self.changes {
            let Address::Target { policy, id } = &c.address else {
                continue;
            };
            let set = members.entry(policy.clone()).or_default();
            if c.action == Action::Delete {
                set.remove(id);
                // Leaving with this plan: counted from now.
                since
                    .entry(policy.clone())
                    .or_default()
                    .entry(id.clone())
                    .or_insert(self.now);
            } else {
                set.insert(id.clone());
            }
        }
        self.config
            .policies
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    retention::Departed {
                        members: members.remove(name).unwrap_or_default(),
                        keep_for: retention::departed_for(p.options.departed_retention()),
                        since: since.remove(name).unwrap_or_default(),
                    },
                )
            })
            .collect()
    }

    /// VPC clones: CloudFormation stacks built from captured versions.
    fn clones(&mut self) {
        if self.obs.from_state {
            // A clone's plan needs its destination's zones, from AWS.
            return;
        }
        self.changes.extend(crate::vpc::clone::clone_changes(
            self.config,
            self.state,
            &self.obs.clones,
            &crate::vpc::export::export,
            &mut self.warnings,
        ));
    }

    /// Accounts removed from the configuration go last, once nothing of
    /// theirs stays in the catalog.
    fn removed_accounts(&mut self, expiring: &BTreeMap<Address, String>) {
        for addr in self.state.objects.keys() {
            let Address::Account { name } = addr else {
                continue;
            };
            if self.config.accounts.contains_key(name) {
                continue;
            }
            // The account's credentials stay in state while the catalog
            // holds backups there that this plan does not delete (frozen,
            // running, or protected): without them those snapshots could
            // be neither observed nor ever cleaned up.
            let kept = self
                .state
                .backups
                .iter()
                .filter(|b| &b.account == name && !expiring.contains_key(&b.address()))
                .count();
            if kept > 0 {
                self.warnings.push(format!(
                    "account {name} is no longer configured but the catalog still holds {kept} backup(s) there; it stays in state until they are gone"
                ));
                continue;
            }
            // Likewise for DR copies there that this plan does not delete:
            // without the account they could be neither looked at, nor
            // expired, nor listed for deletion.
            let deleted: BTreeSet<&Address> = self
                .changes
                .iter()
                .filter(|c| c.action == Action::Delete)
                .map(|c| &c.address)
                .collect();
            let copies: Vec<Address> = self
                .state
                .dr_copies
                .iter()
                .filter(|c| &c.destination.account == name && c.image.is_none())
                .filter_map(|c| {
                    let account = self
                        .prior_policies
                        .get(&c.policy)
                        .map(|p| p.account.clone())?;
                    Some(c.address(&account))
                })
                .collect();
            let kept_copies = copies.iter().filter(|a| !deleted.contains(a)).count();
            if kept_copies > 0 {
                self.warnings.push(format!(
                    "account {name} is no longer configured but the catalog still holds {kept_copies} DR cop(ies) there; it stays in state until they are gone"
                ));
                continue;
            }
            let mut deps: Vec<Address> = self
                .prior_policies
                .values()
                .filter(|p| &p.account == name && !self.config.policies.contains_key(&p.name))
                .map(|p| Address::policy(&p.name))
                .collect();
            deps.extend(
                self.state
                    .backups
                    .iter()
                    .filter(|b| &b.account == name)
                    .map(|b| b.address()),
            );
            deps.extend(copies);
            self.changes.push(
                Change::new(addr.clone(), Action::Delete, Effect::Control)
                    .reason("removed from configuration")
                    .before(self.state.objects.get(addr).map(StoredValue::value))
                    .depends_on(deps),
            );
        }
    }

    /// Keeps only dependencies on changes that are in this plan, and puts
    /// the warnings in order.
    fn finish(mut self) -> Plan {
        let now = self.now;
        let present: BTreeSet<Address> = self.changes.iter().map(|c| c.address.clone()).collect();
        for c in &mut self.changes {
            c.depends_on.retain(|d| present.contains(d));
            c.depends_on.sort();
            c.depends_on.dedup();
        }
        self.warnings.sort();
        self.warnings.dedup();
        let mut plan = Plan::new(
            self.state.lineage.clone(),
            self.state.serial,
            self.digest,
            now,
            self.changes,
            self.warnings,
        );
        plan.removed_with_backups = self.removed_with_backups;
        plan.removed_copies = self.removed_copies;
        plan.from_state = self.obs.from_state;
        plan.copy_locks = self.copy_locks;
        plan
    }
}
