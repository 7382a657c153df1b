//! A database restore planned: the identifier, class, groups and, for
//! an Aurora cluster, its instances, with defaults from the restore point.

use std::sync::Arc;

use super::plan::{account, invalid, tags, Accounts, Request, RestorePlan};
use super::source::Chosen;
use super::RestoreError;
use crate::cloud::restore::{DbRestoreRequest, DbShape, Shape};
use crate::cloud::{Cloud, DbSnapshotKind};

/// An identifier RDS accepts as it is (RDS folds case, and a lookup by the
/// unfolded name would then miss the database it made).
pub(super) fn check_db_identifier(id: &str) -> Result<(), RestoreError> {
    let ok = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "--identifier {id:?}: 1 to 63 lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen"
        )))
    }
}

/// Each cluster instance's identifier is free: a taken one would fail only
/// once the cluster is made.
async fn members_free(
    dbs: &dyn crate::cloud::restore::Databases,
    p: &RestorePlan,
) -> Result<(), RestoreError> {
    for (m, _) in &p.members {
        if dbs.status(DbSnapshotKind::Instance, m).await?.is_some() {
            return Err(invalid(format!(
                "a DB instance named {m} already exists in account {} ({}): choose another --identifier",
                p.account, p.region
            )));
        }
    }
    Ok(())
}

/// A DB identifier RDS accepts, from the original's: letters, digits and
/// single hyphens, at most 63 characters, no hyphen at the end.
fn db_identifier(base: &str, suffix: &str) -> String {
    let mut s: String = format!("{base}-{suffix}");
    s.truncate(63);
    while s.ends_with('-') {
        s.pop();
    }
    s
}

pub(super) async fn plan_database(
    cloud: &Arc<dyn Cloud>,
    accounts: &Accounts,
    req: &Request,
    chosen: &Chosen,
    p: &mut RestorePlan,
) -> Result<(), RestoreError> {
    let o = &req.options;
    let kind = req.kind.db_kind().expect("a database kind");
    let shape = match &chosen.shape {
        Some(Shape::Db(s)) => s.clone(),
        _ => DbShape::default(),
    };
    let (snap_id, arn) = chosen
        .artifacts
        .db
        .clone()
        .expect("a DB backup has its snapshot");
    let identifier = o
        .identifier
        .clone()
        .unwrap_or_else(|| db_identifier(&req.target, "restored"));
    let dest = account(accounts, &p.account)?;
    let dbs = cloud.databases(dest, &p.region).await?;
    if dbs.status(kind, &identifier).await?.is_some() {
        return Err(invalid(format!(
            "a DB {} named {identifier} already exists in account {} ({}): choose another --identifier",
            if kind == DbSnapshotKind::Cluster { "cluster" } else { "instance" },
            p.account,
            p.region
        )));
    }
    let snapshot = if p.share_with.is_some() {
        match arn {
            Some(a) => a,
            None => {
                let owner = account(accounts, &p.artifacts_account)?;
                let id = cloud.account_id(owner).await?;
                let what = if kind == DbSnapshotKind::Cluster {
                    "cluster-snapshot"
                } else {
                    "snapshot"
                };
                format!(
                    "arn:{}:rds:{}:{id}:{what}:{snap_id}",
                    crate::iam::needs::region_partition(&p.region),
                    p.artifacts_region
                )
            }
        }
    } else {
        snap_id.clone()
    };
    let same_place = p.account == chosen.backup.account && p.source == "local";
    if !same_place && o.subnet_group.is_none() && shape.subnet_group.is_some() {
        p.notes.push("the original's DB subnet group is not used outside its account and region: the default applies (pass --subnet-group)".into());
    }
    let class = o
        .class
        .clone()
        .or(Some(shape.class.clone()).filter(|c| !c.is_empty()));
    if kind == DbSnapshotKind::Instance && class.is_none() {
        return Err(invalid(format!(
            "backup {} recorded no DB class for {}: pass --class",
            chosen.backup.id, req.target
        )));
    }
    let engine = Some(shape.engine.clone()).filter(|e| !e.is_empty());
    if kind == DbSnapshotKind::Cluster {
        let Some(engine) = &engine else {
            return Err(invalid(format!("backup {} recorded no engine for cluster {}: it cannot be restored without its restore point", chosen.backup.id, req.target)));
        };
        let member_class = o.instance_class.clone();
        p.members = if shape.members.is_empty() {
            let c = member_class
                .or(class.clone())
                .ok_or_else(|| invalid("pass --instance-class for the cluster's instance"))?;
            vec![(db_identifier(&identifier, "1"), c)]
        } else {
            shape
                .members
                .iter()
                .enumerate()
                .map(|(i, (_, c))| {
                    (
                        db_identifier(&identifier, &(i + 1).to_string()),
                        member_class.clone().unwrap_or_else(|| c.clone()),
                    )
                })
                .collect()
        };
        let _ = engine;
        members_free(dbs.as_ref(), p).await?;
    }
    p.database = Some(DbRestoreRequest {
        kind,
        identifier,
        snapshot,
        class,
        engine,
        subnet_group: o
            .subnet_group
            .clone()
            .or(shape.subnet_group.clone().filter(|_| same_place)),
        parameter_group: shape.parameter_group.clone().filter(|_| same_place),
        port: shape.port,
        multi_az: shape.multi_az,
        security_groups: if same_place {
            shape.security_groups.clone()
        } else {
            vec![]
        },
        tags: tags(&shape.tags, &o.tags, &snap_id, &p.id),
    });
    Ok(())
}
