//! The fake's services beside EC2: RDS, SNS, the VPC inventory,
//! CloudFormation stacks and S3 objects, on the same [`World`].

use async_trait::async_trait;

use super::*;

/// The fake's RDS: every source exists; snapshots are available at once.
/// Calls are counted as `CreateDBSnapshot`, `CreateDBClusterSnapshot`,
/// `DescribeDBSnapshots`, ... and fail on demand like EC2's.
#[async_trait]
impl Rds for FakeEc2 {
    /// The world's databases ([`World::add_database`]) of this region,
    /// counted as `DescribeDBInstances` / `DescribeDBClusters`.
    async fn databases_page(
        &self,
        kind: DbSnapshotKind,
        token: Option<String>,
    ) -> CloudResult<Page<Database>> {
        let action = match kind {
            DbSnapshotKind::Instance => "DescribeDBInstances",
            DbSnapshotKind::Cluster => "DescribeDBClusters",
        };
        let w = self.enter(action, None)?;
        let all = w
            .databases
            .iter()
            .filter(|((k, _), d)| *k == kind && d.region == self.region)
            .map(|((_, id), d)| Database {
                id: id.clone(),
                kind,
                region: d.region.clone(),
                status: d.status.clone(),
                tags: d.shape.tags.clone(),
                cluster: None,
            })
            .collect();
        Ok(self.page(action, all, token))
    }

    async fn create_db_snapshot(&self, req: &DbSnapshotRequest) -> CloudResult<DbSnapshot> {
        let action = match req.kind {
            DbSnapshotKind::Instance => "CreateDBSnapshot",
            DbSnapshotKind::Cluster => "CreateDBClusterSnapshot",
        };
        let mut w = self.enter(action, Some(&req.source_id))?;
        let exists = || {
            self.error(
                ErrorKind::Conflict,
                action,
                &req.snapshot_id,
                "DBSnapshotAlreadyExists",
                "a snapshot with this id exists",
            )
        };
        if w.db_snapshots.contains_key(&req.snapshot_id) {
            return Err(exists());
        }
        let snap = DbSnapshot {
            id: req.snapshot_id.clone(),
            source_id: req.source_id.clone(),
            status: "available".into(),
            created: Some(w.now()),
            tags: req.tags.clone(),
            arn: format!(
                "arn:aws:rds:{}:{}:{}:{}",
                self.region,
                FAKE_ACCOUNT_ID,
                match req.kind {
                    DbSnapshotKind::Instance => "snapshot",
                    DbSnapshotKind::Cluster => "cluster-snapshot",
                },
                req.snapshot_id
            ),
            encryption: Encryption::default(),
        };
        w.copies
            .owners
            .insert(snap.id.clone(), self.account.clone());
        w.db_snapshots.insert(
            snap.id.clone(),
            FakeDbSnapshot {
                kind: req.kind,
                region: self.region.clone(),
                snapshot: snap.clone(),
                tags: req.tags.clone(),
            },
        );
        if w.retried_creates.contains(action) {
            return Err(exists());
        }
        self.answered(&w, action, &req.source_id)?;
        Ok(snap)
    }

    async fn db_snapshots_page(
        &self,
        kind: DbSnapshotKind,
        ids: &[String],
        token: Option<String>,
    ) -> CloudResult<Page<DbSnapshot>> {
        let action = match kind {
            DbSnapshotKind::Instance => "DescribeDBSnapshots",
            DbSnapshotKind::Cluster => "DescribeDBClusterSnapshots",
        };
        let w = self.enter(action, None)?;
        self.filter_size(action, ids.len())?;
        let all = w
            .db_snapshots
            .values()
            .filter(|d| {
                d.kind == kind
                    && d.region == self.region
                    && w.copies.owned_by(&d.snapshot.id, &self.account)
                    && (ids.is_empty() || ids.contains(&d.snapshot.id))
            })
            .map(|d| d.snapshot.clone())
            .collect();
        Ok(self.page(action, all, token))
    }

    async fn delete_db_snapshot(&self, kind: DbSnapshotKind, id: &str) -> CloudResult<()> {
        let action = match kind {
            DbSnapshotKind::Instance => "DeleteDBSnapshot",
            DbSnapshotKind::Cluster => "DeleteDBClusterSnapshot",
        };
        let mut w = self.enter(action, Some(id))?;
        w.db_snapshots.remove(id);
        Ok(())
    }

    async fn copy_db_snapshot(&self, req: &DbCopyRequest) -> CloudResult<DbSnapshot> {
        self.fake_copy_db(req)
    }

    async fn share_db_snapshot(
        &self,
        kind: DbSnapshotKind,
        id: &str,
        account_id: &str,
        share: bool,
    ) -> CloudResult<()> {
        let action = match kind {
            DbSnapshotKind::Instance => "ModifyDBSnapshotAttribute",
            DbSnapshotKind::Cluster => "ModifyDBClusterSnapshotAttribute",
        };
        self.fake_share(action, id, account_id, share)
    }

    async fn tag_db_snapshot(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        self.fake_tag_db(arn, tags)
    }
}

#[async_trait]
impl Sns for FakeEc2 {
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> CloudResult<String> {
        let mut w = self.world.lock().expect("world");
        w.calls.push(format!("Publish {}", self.region));
        if let Some(&kind) = w.failing.get("Publish") {
            return Err(CloudError {
                kind,
                account: self.account.clone(),
                region: self.region.clone(),
                action: "sns:Publish".into(),
                resource: Some(topic_arn.to_string()),
                code: None,
                message: "failing on purpose".into(),
            });
        }
        w.published.push((
            topic_arn.to_string(),
            subject.to_string(),
            message.to_string(),
        ));
        Ok(format!("msg-{}", w.published.len()))
    }
}

#[async_trait]
impl Network for FakeEc2 {
    /// Counted and failable as `DescribeVpcs`.
    async fn inventory(&self) -> CloudResult<crate::cloud::network::RegionInventory> {
        let w = self.enter("DescribeVpcs", None)?;
        Ok(w.networks.get(&self.region).cloned().unwrap_or_default())
    }

    async fn availability_zones(&self) -> CloudResult<Vec<String>> {
        let w = self.enter("DescribeAvailabilityZones", None)?;
        Ok(w.zones.get(&self.region).cloned().unwrap_or_else(|| {
            ["a", "b", "c"]
                .iter()
                .map(|l| format!("{}{l}", self.region))
                .collect()
        }))
    }
}

impl FakeEc2 {
    fn stack_key(&self, name: &str) -> (String, String, String) {
        (self.account.clone(), self.region.clone(), name.to_string())
    }

    fn start_operation(w: &mut World, key: &(String, String, String), op: &str) {
        let polls = w.stack_polls;
        let fails = w.failing_stacks.contains(&key.2);
        let Some(st) = w.stacks.get_mut(key) else {
            return;
        };
        st.info.status = format!("{op}_IN_PROGRESS");
        st.settles_to = match (op, fails) {
            ("CREATE", true) => "ROLLBACK_COMPLETE".into(),
            ("UPDATE", true) => "UPDATE_ROLLBACK_COMPLETE".into(),
            (op, _) => format!("{op}_COMPLETE"),
        };
        st.polls_left = polls;
        st.events.insert(
            0,
            StackEvent {
                at: None,
                logical_id: key.2.clone(),
                resource_type: "AWS::CloudFormation::Stack".into(),
                status: st.info.status.clone(),
                reason: None,
            },
        );
        if polls == 0 {
            Self::settle(st);
        }
    }

    fn settle(st: &mut FakeStack) {
        if st.settles_to.contains("ROLLBACK") {
            st.events.insert(
                0,
                StackEvent {
                    at: None,
                    logical_id: "Vpc".into(),
                    resource_type: "AWS::EC2::VPC".into(),
                    status: if st.settles_to.starts_with("UPDATE") {
                        "UPDATE_FAILED".into()
                    } else {
                        "CREATE_FAILED".into()
                    },
                    reason: Some("injected failure: the CIDR block is invalid".into()),
                },
            );
        }
        st.info.status = st.settles_to.clone();
        st.events.insert(
            0,
            StackEvent {
                at: None,
                logical_id: st.info.name.clone(),
                resource_type: "AWS::CloudFormation::Stack".into(),
                status: st.info.status.clone(),
                reason: None,
            },
        );
    }
}

#[async_trait]
impl Stacks for FakeEc2 {
    async fn create_stack(
        &self,
        name: &str,
        template: &TemplateSource,
        tags: &Tags,
    ) -> CloudResult<String> {
        let mut w = self.enter("CreateStack", Some(name))?;
        let key = self.stack_key(name);
        if w.stacks
            .get(&key)
            .is_some_and(|s| s.info.status != "DELETE_COMPLETE")
        {
            return Err(self.error(
                ErrorKind::Conflict,
                "cloudformation:CreateStack",
                name,
                "AlreadyExistsException",
                "the stack already exists",
            ));
        }
        w.next += 1;
        let id = format!(
            "arn:aws:cloudformation:{}:stack/{name}/{}",
            self.region, w.next
        );
        w.stacks.insert(
            key.clone(),
            FakeStack {
                info: StackInfo {
                    name: name.to_string(),
                    id: id.clone(),
                    status: String::new(),
                    reason: None,
                },
                template: template.clone(),
                tags: tags.clone(),
                events: vec![],
                polls_left: 0,
                settles_to: String::new(),
            },
        );
        Self::start_operation(&mut w, &key, "CREATE");
        Ok(id)
    }

    async fn update_stack(&self, name: &str, template: &TemplateSource) -> CloudResult<bool> {
        let mut w = self.enter("UpdateStack", Some(name))?;
        let key = self.stack_key(name);
        let Some(st) = w.stacks.get_mut(&key) else {
            return Err(self.error(
                ErrorKind::Invalid,
                "cloudformation:UpdateStack",
                name,
                "ValidationError",
                "Stack does not exist",
            ));
        };
        if st.template == *template {
            return Ok(false);
        }
        st.template = template.clone();
        Self::start_operation(&mut w, &key, "UPDATE");
        Ok(true)
    }

    async fn delete_stack(&self, name: &str) -> CloudResult<()> {
        let mut w = self.enter("DeleteStack", Some(name))?;
        let key = self.stack_key(name);
        if w.stacks.contains_key(&key) {
            Self::start_operation(&mut w, &key, "DELETE");
        }
        Ok(())
    }

    async fn describe_stack(&self, name: &str) -> CloudResult<Option<StackInfo>> {
        let mut w = self.enter("DescribeStacks", Some(name))?;
        let key = self.stack_key(name);
        let Some(st) = w.stacks.get_mut(&key) else {
            return Ok(None);
        };
        if st.info.status.ends_with("_IN_PROGRESS") && st.polls_left != u32::MAX {
            st.polls_left = st.polls_left.saturating_sub(1);
            if st.polls_left == 0 {
                Self::settle(st);
            }
        }
        if st.info.status == "DELETE_COMPLETE" {
            w.stacks.remove(&key);
            return Ok(None);
        }
        Ok(Some(st.info.clone()))
    }

    async fn stack_events(&self, name: &str) -> CloudResult<Vec<StackEvent>> {
        let w = self.enter("DescribeStackEvents", Some(name))?;
        Ok(w.stacks
            .get(&self.stack_key(name))
            .map(|s| s.events.clone())
            .unwrap_or_default())
    }
}

#[async_trait]
impl Objects for FakeEc2 {
    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> CloudResult<String> {
        let mut w = self.enter("PutObject", Some(key))?;
        w.objects
            .insert((bucket.to_string(), key.to_string()), body);
        Ok(format!("https://{bucket}.s3.amazonaws.com/{key}"))
    }
}
