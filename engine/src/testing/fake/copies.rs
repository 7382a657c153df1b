//! The fake's DR side: copies across regions and accounts, shares, KMS
//! aliases. It fills the emulator's holes: a copy stays pending for a
//! chosen number of looks (the emulator completes at once), a snapshot
//! shared from another account can be copied (the emulator refuses), and
//! the copies in flight per destination are counted so that a test can
//! check the cap was never passed.

use super::*;

/// The DR part of the fake's world.
#[derive(Debug, Default)]
pub struct CopyWorld {
    /// Which account (by name) owns a resource the fake made; a resource
    /// without an owner (added by a test) is every account's.
    pub owners: BTreeMap<String, String>,
    /// `(resource id, AWS account id)` shares.
    pub shares: std::collections::BTreeSet<(String, String)>,
    /// Encryption of EBS snapshots by id (unlisted: unencrypted).
    pub encryption: BTreeMap<String, Encryption>,
    /// KMS aliases by (account name, region): alias name -> key id.
    pub aliases: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Keys (ids) whose use is granted to other AWS accounts, as a key
    /// policy would: `(key id, account id)`.
    pub key_grants: std::collections::BTreeSet<(String, String)>,
    /// How many DescribeSnapshots calls in its region a copied snapshot
    /// stays pending for; `u32::MAX`: never completes.
    pub copy_polls: u32,
    /// Copied snapshots still pending, by id, with their looks left.
    pub pending: BTreeMap<String, u32>,
    /// Copies pending now per (account name, region), and the most ever.
    pub in_flight: BTreeMap<(String, String), usize>,
    pub max_in_flight: BTreeMap<(String, String), usize>,
    /// Sources (snapshot ids) whose copy calls fail.
    pub failing_sources: std::collections::BTreeSet<String>,
    /// Every copy call, as (account name, region, source id, key asked).
    pub copy_requests: Vec<(String, String, String, Option<String>)>,
    /// EBS Snapshot Lock ([`super::locks`]).
    pub locks: super::locks::LockWorld,
}

impl CopyWorld {
    /// Is `id` visible to `account` (owned by it, owned by nobody, or
    /// shared with its AWS account id)?
    pub(super) fn visible(&self, id: &str, account: &str, account_id: &str) -> bool {
        match self.owners.get(id) {
            None => true,
            Some(o) if o == account => true,
            Some(_) => self
                .shares
                .contains(&(id.to_string(), account_id.to_string())),
        }
    }

    /// Is `id` owned by `account` (or by nobody)?
    pub fn owned_by(&self, id: &str, account: &str) -> bool {
        self.owners.get(id).is_none_or(|o| o == account)
    }

    /// The key (id) an alias names in an account and region.
    fn alias_key(&self, account: &str, region: &str, alias: &str) -> Option<String> {
        if alias.starts_with("alias/aws/") {
            return Some(format!("aws-managed:{account}:{region}:{alias}"));
        }
        self.aliases
            .get(&(account.to_string(), region.to_string()))?
            .get(alias)
            .cloned()
    }

    /// Adds an alias for a new key; returns the key id.
    pub fn add_key(&mut self, account: &str, region: &str, alias: &str) -> String {
        let key = format!(
            "key-{account}-{region}-{}",
            alias.trim_start_matches("alias/")
        );
        self.aliases
            .entry((account.to_string(), region.to_string()))
            .or_default()
            .insert(alias.to_string(), key.clone());
        key
    }

    /// One look at `region` of `account`: the copies pending there move on.
    pub(super) fn look(
        &mut self,
        snapshots: &mut BTreeMap<String, Snapshot>,
        account: &str,
        region: &str,
    ) {
        let mut done = Vec::new();
        for (id, left) in self.pending.iter_mut() {
            let Some(s) = snapshots.get(id) else { continue };
            if s.region != region || self.owners.get(id).is_none_or(|o| o != account) {
                continue;
            }
            if *left != u32::MAX {
                *left = left.saturating_sub(1);
            }
            if *left == 0 {
                done.push(id.clone());
            }
        }
        for id in done {
            self.pending.remove(&id);
            if let Some(s) = snapshots.get_mut(&id) {
                s.state = SnapshotState::Completed;
            }
            if let Some(n) = self
                .in_flight
                .get_mut(&(account.to_string(), region.to_string()))
            {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn started(&mut self, account: &str, region: &str) {
        let k = (account.to_string(), region.to_string());
        let n = self.in_flight.entry(k.clone()).or_default();
        *n += 1;
        let now = *n;
        let max = self.max_in_flight.entry(k).or_default();
        *max = (*max).max(now);
    }
}

impl FakeEc2 {
    pub(super) fn own_account_id(&self, w: &World) -> String {
        w.account_ids
            .get(&self.account)
            .cloned()
            .unwrap_or_else(|| FAKE_ACCOUNT_ID.to_string())
    }

    /// The key a copy into this client's account and region is encrypted
    /// with, checked as AWS would: an alias must exist here, and a source
    /// key of another account must be granted to this one.
    fn copy_key(
        &self,
        w: &World,
        action: &str,
        source: &str,
        source_enc: &Encryption,
        asked: Option<&str>,
        encrypt: bool,
    ) -> CloudResult<Encryption> {
        if !source_enc.encrypted && !encrypt {
            return Ok(Encryption::default());
        }
        let me = self.own_account_id(w);
        if let Some(src_key) = &source_enc.kms_key_id {
            let foreign = !src_key.contains(&format!("-{}-", self.account))
                && !src_key.starts_with(&format!("aws-managed:{}:", self.account));
            if foreign
                && w.copies
                    .owners
                    .get(source)
                    .is_some_and(|o| o != &self.account)
                && !w.copies.key_grants.contains(&(src_key.clone(), me))
            {
                return Err(self.error(
                    ErrorKind::AccessDenied,
                    action,
                    source,
                    "InvalidRequest",
                    "the source snapshot's KMS key is not shared with this account",
                ));
            }
        }
        let key = match asked {
            Some(k) if k.starts_with("alias/") => w
                .copies
                .alias_key(&self.account, &self.region, k)
                .ok_or_else(|| {
                    self.error(
                        ErrorKind::NotFound,
                        action,
                        k,
                        "NotFoundException",
                        "no such KMS alias in the destination",
                    )
                })?,
            Some(k) => k.to_string(),
            None => format!("aws-managed:{}:{}:alias/aws/ebs", self.account, self.region),
        };
        Ok(Encryption {
            encrypted: true,
            kms_key_id: Some(key),
        })
    }

    fn no_source(&self, action: &str, id: &str, code: &str) -> CloudError {
        self.error(
            ErrorKind::NotFound,
            action,
            id,
            code,
            "the source does not exist or is not shared with this account",
        )
    }

    pub(super) fn fake_copy_snapshot(&self, req: &SnapshotCopyRequest) -> CloudResult<String> {
        let mut w = self.enter("CopySnapshot", Some(&req.source_id))?;
        if w.copies.failing_sources.contains(&req.source_id) {
            return Err(self.error(
                ErrorKind::Other,
                "ec2:CopySnapshot",
                &req.source_id,
                "Injected",
                "injected copy failure",
            ));
        }
        let me = self.own_account_id(&w);
        let src = w
            .snapshots
            .get(&req.source_id)
            .filter(|s| s.region == req.source_region)
            .filter(|_| w.copies.visible(&req.source_id, &self.account, &me))
            .cloned()
            .ok_or_else(|| {
                self.no_source(
                    "ec2:CopySnapshot",
                    &req.source_id,
                    "InvalidSnapshot.NotFound",
                )
            })?;
        let enc = w
            .copies
            .encryption
            .get(&src.id)
            .cloned()
            .unwrap_or_default();
        let key = self.copy_key(
            &w,
            "ec2:CopySnapshot",
            &src.id,
            &enc,
            req.kms_key_id.as_deref(),
            req.encrypt,
        )?;
        w.copies.copy_requests.push((
            self.account.clone(),
            self.region.clone(),
            req.source_id.clone(),
            req.kms_key_id.clone(),
        ));
        let copy = self.new_snapshot(&mut w, &src.volume_id, &req.tags, &req.description);
        let w = &mut *w;
        w.pending_left.remove(&copy.id);
        w.copies
            .owners
            .insert(copy.id.clone(), self.account.clone());
        w.copies.encryption.insert(copy.id.clone(), key);
        w.copies.started(&self.account, &self.region);
        if w.copies.copy_polls > 0 {
            w.copies
                .pending
                .insert(copy.id.clone(), w.copies.copy_polls);
            if let Some(s) = w.snapshots.get_mut(&copy.id) {
                s.state = SnapshotState::Pending;
            }
        } else {
            w.copies.look(&mut w.snapshots, &self.account, &self.region);
            if let Some(n) = w
                .copies
                .in_flight
                .get_mut(&(self.account.clone(), self.region.clone()))
            {
                *n = n.saturating_sub(1);
            }
        }
        self.answered(w, "CopySnapshot", &req.source_id)?;
        Ok(copy.id)
    }

    pub(super) fn fake_copy_image(&self, req: &ImageCopyRequest) -> CloudResult<String> {
        let mut w = self.enter("CopyImage", Some(&req.source_id))?;
        let me = self.own_account_id(&w);
        let src = w
            .images
            .get(&req.source_id)
            .filter(|i| i.region == req.source_region)
            .filter(|_| w.copies.visible(&req.source_id, &self.account, &me))
            .cloned()
            .ok_or_else(|| {
                self.no_source("ec2:CopyImage", &req.source_id, "InvalidAMIID.NotFound")
            })?;
        if w.images.values().any(|m| {
            m.name == req.name && m.region == self.region && w.copies.owned_by(&m.id, &self.account)
        }) {
            return Err(self.error(
                ErrorKind::Invalid,
                "ec2:CopyImage",
                &req.name,
                "InvalidAMIName.Duplicate",
                "AMI name is already in use",
            ));
        }
        let enc = src
            .snapshot_ids
            .first()
            .and_then(|s| w.copies.encryption.get(s).cloned())
            .unwrap_or_default();
        let key = self.copy_key(
            &w,
            "ec2:CopyImage",
            &src.id,
            &enc,
            req.kms_key_id.as_deref(),
            req.encrypt,
        )?;
        w.copies.copy_requests.push((
            self.account.clone(),
            self.region.clone(),
            req.source_id.clone(),
            req.kms_key_id.clone(),
        ));
        w.next += 1;
        let id = format!("ami-{:017x}", w.next);
        let made_by = format!("Copied for {id} from {}", src.id);
        let mut snapshot_ids = Vec::new();
        for s in &src.snapshot_ids {
            let volume = w
                .snapshots
                .get(s)
                .map(|s| s.volume_id.clone())
                .unwrap_or_default();
            let copy = self.new_snapshot(&mut w, &volume, &Tags::new(), &made_by);
            w.pending_left.remove(&copy.id);
            w.copies
                .owners
                .insert(copy.id.clone(), self.account.clone());
            w.copies.encryption.insert(copy.id.clone(), key.clone());
            snapshot_ids.push(copy.id);
        }
        let created = Some(w.now());
        w.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: self.region.clone(),
                state: ImageState::Available,
                snapshot_ids,
                tags: req.tags.clone(),
                name: req.name.clone(),
                description: req.description.clone(),
                created,
            },
        );
        w.copies.owners.insert(id.clone(), self.account.clone());
        self.answered(&w, "CopyImage", &req.source_id)?;
        Ok(id)
    }

    pub(super) fn fake_share(
        &self,
        action: &str,
        id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()> {
        let mut w = self.enter(action, Some(id))?;
        let exists = w.snapshots.contains_key(id)
            || w.images.contains_key(id)
            || w.db_snapshots.contains_key(id);
        if !exists || !w.copies.owned_by(id, &self.account) {
            return Err(self.no_source(&format!("ec2:{action}"), id, "NotFound"));
        }
        let k = (id.to_string(), account_id.to_string());
        if share {
            w.copies.shares.insert(k);
        } else {
            w.copies.shares.remove(&k);
        }
        Ok(())
    }

    pub(super) fn fake_copy_db(&self, req: &DbCopyRequest) -> CloudResult<DbSnapshot> {
        let action = match req.kind {
            DbSnapshotKind::Instance => "CopyDBSnapshot",
            DbSnapshotKind::Cluster => "CopyDBClusterSnapshot",
        };
        let mut w = self.enter(action, Some(&req.source_arn))?;
        let me = self.own_account_id(&w);
        let source_id = req
            .source_arn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let src = w
            .db_snapshots
            .get(&source_id)
            .filter(|d| d.region == req.source_region && d.kind == req.kind)
            .filter(|_| w.copies.visible(&source_id, &self.account, &me))
            .cloned()
            .ok_or_else(|| self.no_source(action, &req.source_arn, "DBSnapshotNotFound"))?;
        let key = self.copy_key(
            &w,
            action,
            &source_id,
            &src.snapshot.encryption,
            req.kms_key_id.as_deref(),
            false,
        )?;
        if w.db_snapshots.contains_key(&req.target_id) {
            return Err(self.error(
                ErrorKind::Conflict,
                action,
                &req.target_id,
                "DBSnapshotAlreadyExists",
                "a snapshot with this id exists",
            ));
        }
        w.copies.copy_requests.push((
            self.account.clone(),
            self.region.clone(),
            source_id.clone(),
            req.kms_key_id.clone(),
        ));
        let snap = DbSnapshot {
            id: req.target_id.clone(),
            source_id: src.snapshot.source_id.clone(),
            status: "available".into(),
            created: Some(w.now()),
            tags: req.tags.clone(),
            arn: format!(
                "arn:aws:rds:{}:{me}:snapshot:{}",
                self.region, req.target_id
            ),
            encryption: key,
        };
        w.db_snapshots.insert(
            snap.id.clone(),
            FakeDbSnapshot {
                kind: req.kind,
                region: self.region.clone(),
                snapshot: snap.clone(),
                tags: req.tags.clone(),
            },
        );
        w.copies
            .owners
            .insert(snap.id.clone(), self.account.clone());
        self.answered(&w, action, &source_id)?;
        Ok(snap)
    }

    pub(super) fn fake_tag_db(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        let mut w = self.enter("AddTagsToResource", Some(arn))?;
        let id = arn.rsplit(':').next().unwrap_or_default().to_string();
        let Some(d) = w.db_snapshots.get_mut(&id) else {
            return Err(self.no_source("rds:AddTagsToResource", arn, "DBSnapshotNotFound"));
        };
        d.tags.extend(tags.clone());
        d.snapshot.tags.extend(tags.clone());
        Ok(())
    }
}

#[async_trait]
impl Kms for FakeEc2 {
    async fn aliases_page(
        &self,
        key_id: Option<&str>,
        token: Option<String>,
    ) -> CloudResult<Page<KeyAlias>> {
        let w = self.enter("ListAliases", key_id)?;
        let all: Vec<KeyAlias> = w
            .copies
            .aliases
            .get(&(self.account.clone(), self.region.clone()))
            .into_iter()
            .flatten()
            .filter(|(_, k)| {
                key_id.is_none_or(|want| want == k.as_str() || want.ends_with(&format!("/{k}")))
            })
            .map(|(name, k)| KeyAlias {
                name: name.clone(),
                target_key_id: Some(k.clone()),
            })
            .collect();
        Ok(self.page("ListAliases", all, token))
    }
}
