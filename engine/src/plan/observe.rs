//! Observation: what live AWS has for what the configuration and state name.
//! The planner observes everything a plan diffs; a backup's retention
//! observes only the catalog snapshots of the policies it retains, with the
//! same calls, so that both judge a backup's snapshots on the same evidence.
//!
//! Observation never mutates anything, and its cost grows with the number of
//! (account, region, query) pages, not with the number of resources: ids and
//! tag selectors go into server-side filters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lifeboat_schema::{Account, Config, ResourceKind, TagSelector};

use crate::cloud::{
    collect_chunked, collect_pages, each_page, Cloud, CloudError, Database, DbSnapshot,
    DbSnapshotKind, Ec2, ErrorKind, Image, ImageQuery, Instance, Query, Snapshot, SnapshotQuery,
    Volume,
};
use crate::plan::planner::{known_accounts, TAG_POLICY};
use crate::state::model::{Source, TargetKind, TargetState};
use crate::state::{self, ArtifactKind, BackupRecord, SnapshotRecord, StateError};

/// What live AWS has, for the ids, selectors and policies that matter.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Observation {
    pub instances: BTreeMap<String, Instance>,
    pub volumes: BTreeMap<String, Volume>,
    /// RDS instances and Aurora clusters, listed whole in the regions where
    /// a selector takes that kind in (or a tag-selected one is a target),
    /// keyed by [`db_key`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub databases: BTreeMap<String, Database>,
    /// The (kind, region) lists of databases made, by [`db_list_key`]: a
    /// database absent from one is gone (for a plan; a backup waits for
    /// AWS to say it is deleting).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub databases_listed: BTreeSet<String>,
    /// Snapshots tagged by Lifeboat that the catalog does not record (and,
    /// in fixtures written by hand, any snapshot).
    pub snapshots: BTreeMap<String, Snapshot>,
    /// The catalog's EBS snapshots that AWS has, by id alone: presence is
    /// all a plan reads of them, and a large catalog is most of a plan's
    /// memory when each is kept whole.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub catalog_snapshots: BTreeSet<Box<str>>,
    /// AMIs tagged by Lifeboat, and catalog AMIs found by id.
    pub images: BTreeMap<String, Image>,
    /// The catalog's DB snapshots that AWS has, found by id.
    pub db_snapshots: BTreeMap<String, DbSnapshot>,
    /// The catalog's DB cluster snapshots that AWS has, found by id.
    pub db_cluster_snapshots: BTreeMap<String, DbSnapshot>,
    /// For each `vpc_clone`: the capture version it is built from and the
    /// destination's zones ([`crate::vpc::clone::observe`]).
    pub clones: BTreeMap<String, crate::vpc::clone::CloneInput>,
    /// The recorded DR copies found in their destinations; `None` when the
    /// catalog has none (or they were not looked at): then no copy counts
    /// as lost, and none as missing for the want of a look.
    pub dr_copies: Option<crate::dr::observe::CopiesSeen>,
    /// For each account with `manage_role`: the principal to trust and the
    /// role as AWS has it ([`crate::iam::role::observe`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub iam_roles: BTreeMap<String, crate::iam::role::RoleObservation>,
    /// The account each instance, volume and database was observed in (by
    /// instance or volume id, or [`db_key`]): one plan observes every
    /// account, and two accounts often share a region, so a selector or a
    /// tag of one account's policy must not take in another's resources.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<String, String>,
    /// Nothing was read from AWS (`plan --refresh=false`): AWS is taken to
    /// be as the state last recorded it. Every catalog artifact is held,
    /// every recorded target exists and keeps its membership, and what only
    /// AWS can say (IAM roles, VPC clones' zones, DR copies) is not judged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_state: bool,
}

impl Observation {
    /// Does AWS, as observed, still have the catalog record `s`? Each kind
    /// is looked up in its own list.
    pub fn holds(&self, s: &SnapshotRecord) -> bool {
        if self.from_state {
            return true;
        }
        match s.kind {
            ArtifactKind::Ebs => {
                self.catalog_snapshots.contains(s.id.as_str()) || self.snapshots.contains_key(&s.id)
            }
            ArtifactKind::Image => self.images.contains_key(&s.id),
            ArtifactKind::DbSnapshot => self.db_snapshots.contains_key(&s.id),
            ArtifactKind::DbClusterSnapshot => self.db_cluster_snapshots.contains_key(&s.id),
        }
    }

    /// The database target `kind` `id` in `region` of `account`, as listed.
    pub fn database(
        &self,
        account: &str,
        kind: TargetKind,
        region: &str,
        id: &str,
    ) -> Option<&Database> {
        self.databases.get(&db_key(account, kind, region, id))
    }

    /// Were the databases of `kind` in `region` of `account` listed whole?
    pub fn databases_listed(&self, account: &str, kind: TargetKind, region: &str) -> bool {
        self.databases_listed
            .contains(&db_list_key(account, kind, region))
    }

    /// Was the resource observed under `key` (an instance or volume id, or
    /// a [`db_key`]) in `account`? One observed without an owner (built by
    /// hand, as in tests) counts as everyone's.
    pub fn in_account(&self, key: &str, account: &str) -> bool {
        self.owners.get(key).is_none_or(|a| a == account)
    }

    fn extend(&mut self, part: Observation) {
        self.owners.extend(part.owners);
        self.instances.extend(part.instances);
        self.volumes.extend(part.volumes);
        self.databases.extend(part.databases);
        self.databases_listed.extend(part.databases_listed);
        self.snapshots.extend(part.snapshots);
        self.catalog_snapshots.extend(part.catalog_snapshots);
        self.images.extend(part.images);
        self.db_snapshots.extend(part.db_snapshots);
        self.db_cluster_snapshots.extend(part.db_cluster_snapshots);
    }
}

/// Where a database is in [`Observation::databases`]:
/// `ACCOUNT/rds/REGION/ID`, `ACCOUNT/aurora/REGION/ID` (an id is unique in
/// its account, kind and region only; accounts often share regions).
pub fn db_key(account: &str, kind: TargetKind, region: &str, id: &str) -> String {
    format!("{account}/{}/{region}/{id}", kind.noun())
}

/// Where a list of databases is in [`Observation::databases_listed`].
pub fn db_list_key(account: &str, kind: TargetKind, region: &str) -> String {
    format!("{account}/{}/{region}", kind.noun())
}

/// The target kind of a database kind.
pub(crate) fn db_target_kind(kind: DbSnapshotKind) -> TargetKind {
    match kind {
        DbSnapshotKind::Instance => TargetKind::Rds,
        DbSnapshotKind::Cluster => TargetKind::Aurora,
    }
}

/// Why observation failed: AWS refused a list call, or state holds an object
/// that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What to look at in one (account, region).
#[derive(Debug, Default, Clone)]
struct RegionWork {
    instance_ids: BTreeSet<String>,
    volume_ids: BTreeSet<String>,
    selectors: BTreeSet<TagSelector>,
    /// Database kinds listed whole: those a selector takes in, and those
    /// of tag-selected targets.
    db_kinds: BTreeSet<DbSnapshotKind>,
    policies: BTreeSet<String>,
    /// The kinds of resource carrying a backup tag (`lifeboat:backup` or
    /// an alias) to look for here: one filtered list of instances and of
    /// volumes; databases come with the whole lists of their kind.
    backup_tagged: BTreeSet<ResourceKind>,
    /// Catalog records to find, by kind.
    catalog: BTreeMap<ArtifactKind, BTreeSet<String>>,
}

type Work = BTreeMap<(String, String), RegionWork>;

impl RegionWork {
    /// A target in state: instances and volumes by id; databases are
    /// listed only when tag-selected (a listed one missing shows as a
    /// failed create call in its backups).
    fn add_target(&mut self, t: &TargetState) {
        match (t.kind, &t.source) {
            (TargetKind::Instance, _) => self.instance_ids.insert(t.id.clone()),
            (TargetKind::Volume, _) => self.volume_ids.insert(t.id.clone()),
            (TargetKind::Rds, Source::Tag(_)) => self.db_kinds.insert(DbSnapshotKind::Instance),
            (TargetKind::Aurora, Source::Tag(_)) => self.db_kinds.insert(DbSnapshotKind::Cluster),
            (TargetKind::Rds, Source::BackupTag { .. }) => {
                self.db_kinds.insert(DbSnapshotKind::Instance)
            }
            (TargetKind::Aurora, Source::BackupTag { .. }) => {
                self.db_kinds.insert(DbSnapshotKind::Cluster)
            }
            (TargetKind::Rds | TargetKind::Aurora, Source::Listed) => false,
        };
    }

    /// The database kinds to list: the targets', the selectors' and the
    /// tag scan's.
    fn db_kinds(&self) -> BTreeSet<DbSnapshotKind> {
        let mut kinds = self.db_kinds.clone();
        if self.backup_tagged.contains(&ResourceKind::Rds) {
            kinds.insert(DbSnapshotKind::Instance);
        }
        if self.backup_tagged.contains(&ResourceKind::Aurora) {
            kinds.insert(DbSnapshotKind::Cluster);
        }
        for s in &self.selectors {
            if s.selects(ResourceKind::Rds) {
                kinds.insert(DbSnapshotKind::Instance);
            }
            if s.selects(ResourceKind::Aurora) {
                kinds.insert(DbSnapshotKind::Cluster);
            }
        }
        kinds
    }
}

/// What a plan reads instead of AWS with `--refresh=false`: nothing, and
/// the word that AWS is to be taken as the state recorded it.
pub fn from_state() -> Observation {
    Observation {
        from_state: true,
        ..Observation::default()
    }
}

/// Reads from AWS what the plan needs: one set of filtered, paged list calls
/// per (account, region), all regions concurrently.
pub async fn observe(
    cloud: Arc<dyn Cloud>,
    config: &Config,
    state: &state::Snapshot,
) -> Result<Observation, ObserveError> {
    let accounts = known_accounts(config, state)?;
    let mut work = Work::new();
    for p in config.policies.values() {
        let Some(acct) = accounts.get(&p.account) else {
            continue;
        };
        for i in &p.instances {
            work.entry((p.account.clone(), i.region.clone()))
                .or_default()
                .instance_ids
                .insert(i.id.clone());
        }
        for v in &p.volumes {
            work.entry((p.account.clone(), v.region.clone()))
                .or_default()
                .volume_ids
                .insert(v.id.clone());
        }
        for r in &acct.regions {
            let w = work.entry((p.account.clone(), r.clone())).or_default();
            w.selectors.extend(p.selectors.iter().cloned());
            w.policies.insert(p.name.clone());
        }
        scan_tags(&mut work, acct);
    }
    for t in state.targets()?.values() {
        let w = work
            .entry((t.account.clone(), t.region.clone()))
            .or_default();
        w.add_target(t);
    }
    add_catalog(&mut work, &state.backups);
    let roles = crate::iam::role::observe(&cloud, config, &accounts).await?;
    let mut obs = gather(cloud.clone(), &accounts, work).await?;
    obs.iam_roles = roles;
    if !state.dr_copies.is_empty() {
        let seen = crate::dr::observe::observe_copies(cloud, &state.dr_copies, &accounts).await?;
        obs.dr_copies = Some(seen);
    }
    Ok(obs)
}

/// Reads from AWS the catalog records of `policies`' backups, as [`observe`]
/// does for a plan: in each (account, region) where they have some, for EBS
/// snapshots and AMIs one paged list by `lifeboat:policy` tag, then a
/// look-up by id of those the tags did not return (usually none); for DB and
/// cluster snapshots (RDS lists cannot filter on tags) a look-up by id. Retention after a backup
/// judges the policy's backups on this, exactly as the plan would.
pub async fn observe_catalog(
    cloud: Arc<dyn Cloud>,
    state: &state::Snapshot,
    accounts: &BTreeMap<String, Account>,
    policies: &BTreeSet<String>,
) -> Result<Observation, ObserveError> {
    let mut work = Work::new();
    let backups: Vec<BackupRecord> = state
        .backups
        .iter()
        .filter(|b| policies.contains(&b.policy))
        .cloned()
        .collect();
    add_catalog(&mut work, &backups);
    gather(cloud, accounts, work).await
}

/// Reads from AWS what a policy's membership is decided on
/// ([`crate::membership::resolve`]), with the calls a plan makes for it: in
/// each of the account's regions, one paged list per selector and kind of
/// EC2 resource it takes in, one paged list per database kind a selector
/// (or a tag-selected target) asks for, then a look-up by id of its
/// instance and volume targets the selectors did not return.
pub async fn observe_members(
    cloud: Arc<dyn Cloud>,
    account: &Account,
    selectors: &[TagSelector],
    targets: &[crate::state::model::TargetState],
) -> Result<Observation, ObserveError> {
    let mut work = Work::new();
    for r in &account.regions {
        let w = work.entry((account.name.clone(), r.clone())).or_default();
        w.selectors.extend(selectors.iter().cloned());
    }
    scan_tags(&mut work, account);
    for t in targets {
        let w = work
            .entry((account.name.clone(), t.region.clone()))
            .or_default();
        w.add_target(t);
    }
    let accounts = BTreeMap::from([(account.name.clone(), account.clone())]);
    gather(cloud, &accounts, work).await
}

/// Looks for the resources carrying a backup tag where `account`'s
/// `tag_scan` says (every region and instances and volumes without one).
fn scan_tags(work: &mut Work, account: &Account) {
    let (regions, kinds) = account.tag_scope();
    for r in regions {
        work.entry((account.name.clone(), r))
            .or_default()
            .backup_tagged
            .extend(kinds.iter().copied());
    }
}

/// The catalog records to find, of every kind, where their backups'
/// accounts are: a backup missing any of them is damaged.
fn add_catalog(work: &mut Work, backups: &[BackupRecord]) {
    for b in backups {
        for s in &b.snapshots {
            let w = work
                .entry((b.account.clone(), s.region.clone()))
                .or_default();
            w.policies.insert(b.policy.clone());
            w.catalog.entry(s.kind).or_default().insert(s.id.clone());
        }
    }
}

/// Runs the work of every (account, region) concurrently. One failed region
/// fails the whole observation: a partial one would read as "deleted".
async fn gather(
    cloud: Arc<dyn Cloud>,
    accounts: &BTreeMap<String, Account>,
    work: Work,
) -> Result<Observation, ObserveError> {
    let mut jobs = tokio::task::JoinSet::new();
    for ((account, region), w) in work {
        let Some(acct) = accounts.get(&account).cloned() else {
            // Not seeing a catalog snapshot would read as "deleted outside
            // Lifeboat" and the catalog would forget it: refuse instead.
            let records: usize = w.catalog.values().map(BTreeSet::len).sum();
            if records > 0 {
                return Err(ObserveError::Cloud(CloudError {
                    kind: ErrorKind::Invalid,
                    account: account.clone(),
                    region: region.clone(),
                    action: "lifeboat:observe".into(),
                    resource: None,
                    code: None,
                    message: format!(
                        "the catalog holds {records} artifact(s) in account {account}, which is neither configured nor in state; add the account back to the configuration"
                    ),
                }));
            }
            continue;
        };
        let cloud = cloud.clone();
        jobs.spawn(async move { observe_region(cloud, acct, region, w).await });
    }
    let mut obs = Observation::default();
    let mut first_err = None;
    while let Some(res) = jobs.join_next().await {
        match res {
            Ok(Ok(part)) => obs.extend(part),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(join) => panic!("observation task failed: {join}"),
        }
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(obs),
    }
}

async fn observe_region(
    cloud: Arc<dyn Cloud>,
    account: Account,
    region: String,
    w: RegionWork,
) -> Result<Observation, CloudError> {
    let ec2 = cloud.ec2(&account, &region).await?;
    let mut obs = Observation::default();
    observe_targets(ec2.as_ref(), &w, &mut obs).await?;
    observe_databases(&*cloud, &account, &region, &w, &mut obs).await?;
    let owned: Vec<String> = (obs.instances.keys())
        .chain(obs.volumes.keys())
        .chain(obs.databases.keys())
        .cloned()
        .collect();
    obs.owners = owned
        .into_iter()
        .map(|k| (k, account.name.clone()))
        .collect();
    observe_records(&*cloud, ec2.as_ref(), &account, &region, w, &mut obs).await?;
    Ok(obs)
}

/// The one server-side filter of a tag selector: the tag key with its value
/// (a trailing `*` passes through as EC2's wildcard), or any value of the
/// key. A `tag_prefix` selector asks for any key starting with the prefix
/// (`tag-key` = `backup:*`, EC2's wildcard in keys); its value is matched
/// client-side ([`crate::state::model::selector_matches`]), as every
/// answer is. Plan and resource control list members with it.
pub(crate) fn selector_query(sel: &TagSelector) -> Query {
    let tags = match sel.prefix {
        true => vec![(format!("{}*", sel.tag), vec![])],
        false => vec![(sel.tag.clone(), sel.value.iter().cloned().collect())],
    };
    Query { ids: vec![], tags }
}

/// The instances and volumes the configuration and state name: selectors
/// first, then by id those the selectors did not return.
async fn observe_targets(
    ec2: &dyn Ec2,
    w: &RegionWork,
    obs: &mut Observation,
) -> Result<(), CloudError> {
    for sel in &w.selectors {
        let q = selector_query(sel);
        if sel.selects(ResourceKind::Instance) {
            for i in collect_pages(|t| ec2.instances_page(&q, t)).await? {
                obs.instances.insert(i.id.clone(), i);
            }
        }
        if sel.selects(ResourceKind::Volume) {
            for v in collect_pages(|t| ec2.volumes_page(&q, t)).await? {
                obs.volumes.insert(v.id.clone(), v);
            }
        }
    }
    if !w.backup_tagged.is_empty() {
        observe_backup_tagged(ec2, &w.backup_tagged, obs).await?;
    }
    // Ids the selectors already returned need no second look.
    let ids: Vec<String> = w
        .instance_ids
        .iter()
        .filter(|id| !obs.instances.contains_key(*id))
        .cloned()
        .collect();
    let by_id = |ids: &[String]| Query {
        ids: ids.to_vec(),
        tags: vec![],
    };
    for i in collect_chunked(&ids, |c, t| {
        let q = by_id(c);
        async move { ec2.instances_page(&q, t).await }
    })
    .await?
    {
        obs.instances.insert(i.id.clone(), i);
    }
    let vids: Vec<String> = w
        .volume_ids
        .iter()
        .filter(|id| !obs.volumes.contains_key(*id))
        .cloned()
        .collect();
    for v in collect_chunked(&vids, |c, t| {
        let q = by_id(c);
        async move { ec2.volumes_page(&q, t).await }
    })
    .await?
    {
        obs.volumes.insert(v.id.clone(), v);
    }
    Ok(())
}

/// The region's RDS instances and Aurora clusters, of the kinds a selector
/// or a tag-selected target asks for: one paged describe per kind (RDS
/// cannot filter on tags), none when no selector takes databases in. DB
/// instances of an Aurora cluster are left out: the cluster is the target.
async fn observe_databases(
    cloud: &dyn Cloud,
    account: &Account,
    region: &str,
    w: &RegionWork,
    obs: &mut Observation,
) -> Result<(), CloudError> {
    let kinds = w.db_kinds();
    if kinds.is_empty() {
        return Ok(());
    }
    let rds = cloud.rds(account, region).await?;
    for kind in kinds {
        let target = db_target_kind(kind);
        for mut d in collect_pages(|t| rds.databases_page(kind, t)).await? {
            if d.cluster.is_none() {
                d.region = region.to_string();
                let key = db_key(&account.name, target, region, &d.id);
                obs.databases.insert(key, d);
            }
        }
        obs.databases_listed
            .insert(db_list_key(&account.name, target, region));
    }
    Ok(())
}

/// The instances and volumes carrying the backup tag under any of its keys
/// ([`crate::membership::claims`]): one filtered, paged list of each.
async fn observe_backup_tagged(
    ec2: &dyn Ec2,
    kinds: &BTreeSet<ResourceKind>,
    obs: &mut Observation,
) -> Result<(), CloudError> {
    let keys: Vec<&str> = std::iter::once(crate::membership::TAG_BACKUP)
        .chain(crate::membership::TAG_BACKUP_ALIASES)
        .collect();
    let q = Query::any_tag_key(&keys);
    if kinds.contains(&ResourceKind::Instance) {
        for i in collect_pages(|t| ec2.instances_page(&q, t)).await? {
            obs.instances.insert(i.id.clone(), i);
        }
    }
    if !kinds.contains(&ResourceKind::Volume) {
        return Ok(());
    }
    for v in collect_pages(|t| ec2.volumes_page(&q, t)).await? {
        obs.volumes.insert(v.id.clone(), v);
    }
    Ok(())
}

/// The catalog's records that AWS still has, of every kind: EBS snapshots
/// and AMIs by the `lifeboat:policy` tag, then by id those the tags did not
/// return (tags edited away); DB and cluster snapshots by id.
async fn observe_records(
    cloud: &dyn Cloud,
    ec2: &dyn Ec2,
    account: &Account,
    region: &str,
    w: RegionWork,
    obs: &mut Observation,
) -> Result<(), CloudError> {
    let mut catalog = w.catalog;
    let mut wanted = |kind| -> BTreeSet<String> { catalog.remove(&kind).unwrap_or_default() };
    let (ebs, images, dbs, clusters) = (
        wanted(ArtifactKind::Ebs),
        wanted(ArtifactKind::Image),
        wanted(ArtifactKind::DbSnapshot),
        wanted(ArtifactKind::DbClusterSnapshot),
    );
    let tagged = vec![(
        TAG_POLICY.to_string(),
        w.policies.into_iter().collect::<Vec<_>>(),
    )];
    if !tagged[0].1.is_empty() {
        let q = SnapshotQuery {
            ids: vec![],
            tags: tagged.clone(),
            unfinished_only: false,
        };
        let (held, others) = (&mut obs.catalog_snapshots, &mut obs.snapshots);
        each_page(
            |t| ec2.snapshots_page(&q, t),
            |page| {
                for s in page {
                    // A catalog snapshot is judged by its presence alone.
                    // The tags of the others are what the import hint
                    // counts.
                    if ebs.contains(&s.id) {
                        held.insert(s.id.into_boxed_str());
                    } else {
                        others.insert(s.id.clone(), s);
                    }
                }
            },
        )
        .await?;
    }
    let missing: Vec<String> = ebs
        .into_iter()
        .filter(|id| !obs.catalog_snapshots.contains(id.as_str()))
        .collect();
    for s in collect_chunked(&missing, |c, t| {
        let q = SnapshotQuery {
            ids: c.to_vec(),
            tags: vec![],
            unfinished_only: false,
        };
        async move { ec2.snapshots_page(&q, t).await }
    })
    .await?
    {
        // Found by their catalog ids: presence is all that is read.
        obs.catalog_snapshots.insert(s.id.into_boxed_str());
    }
    // AMIs the same way: only when the catalog holds some here, so that a
    // plan of a policy without AMIs makes no extra call.
    if !images.is_empty() {
        let q = ImageQuery {
            ids: vec![],
            tags: tagged,
        };
        for i in collect_pages(|t| ec2.images_page(&q, t)).await? {
            obs.images.insert(i.id.clone(), i);
        }
        let missing: Vec<String> = images
            .into_iter()
            .filter(|id| !obs.images.contains_key(id))
            .collect();
        for i in collect_chunked(&missing, |c, t| {
            let q = ImageQuery {
                ids: c.to_vec(),
                tags: vec![],
            };
            async move { ec2.images_page(&q, t).await }
        })
        .await?
        {
            obs.images.insert(i.id.clone(), i);
        }
    }
    if !dbs.is_empty() || !clusters.is_empty() {
        let rds = cloud.rds(account, region).await?;
        let (dbs, clusters): (Vec<String>, Vec<String>) =
            (dbs.into_iter().collect(), clusters.into_iter().collect());
        for (kind, ids, into) in [
            (DbSnapshotKind::Instance, dbs, &mut obs.db_snapshots),
            (
                DbSnapshotKind::Cluster,
                clusters,
                &mut obs.db_cluster_snapshots,
            ),
        ] {
            for d in collect_chunked(&ids, |c, t| rds.db_snapshots_page(kind, c, t)).await? {
                into.insert(d.id.clone(), d);
            }
        }
    }
    Ok(())
}
