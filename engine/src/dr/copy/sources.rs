//! What a run reads before copying: the sources' encryption and ARNs, the
//! source volumes' and instances' tags (for the key tag), and the copies a
//! killed process made but did not record.

use std::collections::BTreeMap;

use super::{db_kind, names, record, state_error, Copies, Plan};
use crate::cloud::{collect_chunked, CloudError, ImageQuery, SnapshotQuery};
use crate::state::{ArtifactKind, SnapshotRecord};

/// Encryption (and DB ARNs) of the artifacts, one describe per region and
/// kind; the source volumes' and instances' tags only when one is encrypted.
pub(super) async fn describe_sources(plan: &mut Plan<'_>) -> Result<(), CloudError> {
    let cloud = plan.work.cloud.clone();
    let mut by_region: BTreeMap<(String, ArtifactKind), Vec<String>> = BTreeMap::new();
    for s in &plan.artifacts {
        match s.kind {
            ArtifactKind::Image => {
                // An AMI is encrypted as its snapshots are: describe the first.
                if let Some(first) = plan
                    .backup
                    .snapshots
                    .iter()
                    .find(|x| x.image.as_deref() == Some(&s.id))
                {
                    by_region
                        .entry((s.region.clone(), ArtifactKind::Ebs))
                        .or_default()
                        .push(first.id.clone());
                }
            }
            k => by_region
                .entry((s.region.clone(), k))
                .or_default()
                .push(s.id.clone()),
        }
    }
    for ((region, kind), ids) in by_region {
        match kind {
            ArtifactKind::Ebs | ArtifactKind::Image => {
                let ec2 = cloud.ec2(&plan.source, &region).await?;
                let found = collect_chunked(&ids, |chunk, t| {
                    let ec2 = ec2.clone();
                    let q = SnapshotQuery {
                        ids: chunk.to_vec(),
                        ..Default::default()
                    };
                    async move { ec2.described_snapshots_page(&q, t).await }
                })
                .await?;
                for d in found {
                    plan.described
                        .insert(d.snapshot.id.clone(), (d.encryption, String::new()));
                }
            }
            ArtifactKind::DbSnapshot | ArtifactKind::DbClusterSnapshot => {
                let db_kind = db_kind(kind);
                let rds = cloud.rds(&plan.source, &region).await?;
                let found = collect_chunked(&ids, |chunk, t| {
                    let rds = rds.clone();
                    let chunk = chunk.to_vec();
                    async move { rds.db_snapshots_page(db_kind, &chunk, t).await }
                })
                .await?;
                for d in found {
                    plan.described.insert(d.id.clone(), (d.encryption, d.arn));
                }
            }
        }
    }
    // Images take their first snapshot's encryption.
    for s in plan
        .artifacts
        .iter()
        .filter(|s| s.kind == ArtifactKind::Image)
    {
        if let Some(first) = plan
            .backup
            .snapshots
            .iter()
            .find(|x| x.image.as_deref() == Some(&s.id))
        {
            if let Some(e) = plan.described.get(&first.id).cloned() {
                plan.described.insert(s.id.clone(), e);
            }
        }
    }
    if plan.described.values().any(|(e, _)| e.encrypted) {
        source_tags(plan).await?;
    }
    Ok(())
}

/// The tags of the source volumes and instances, by id.
async fn source_tags(plan: &mut Plan<'_>) -> Result<(), CloudError> {
    let cloud = plan.work.cloud.clone();
    let mut regions: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for s in plan.backup.snapshots.iter() {
        let e = regions.entry(s.region.clone()).or_default();
        if s.volume_id.starts_with("vol-") && !e.0.contains(&s.volume_id) {
            e.0.push(s.volume_id.clone());
        }
        if s.target.starts_with("i-") && !e.1.contains(&s.target) {
            e.1.push(s.target.clone());
        }
    }
    for (region, (vols, insts)) in regions {
        let ec2 = cloud.ec2(&plan.source, &region).await?;
        let v = collect_chunked(&vols, |chunk, t| {
            let ec2 = ec2.clone();
            let q = crate::cloud::Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            async move { ec2.volumes_page(&q, t).await }
        })
        .await?;
        plan.source_tags
            .extend(v.into_iter().map(|v| (v.id, v.tags)));
        let i = collect_chunked(&insts, |chunk, t| {
            let ec2 = ec2.clone();
            let q = crate::cloud::Query {
                ids: chunk.to_vec(),
                tags: vec![],
            };
            async move { ec2.instances_page(&q, t).await }
        })
        .await?;
        plan.source_tags
            .extend(i.into_iter().map(|i| (i.id, i.tags)));
    }
    Ok(())
}

/// Copies a killed process made but did not record: found in the
/// destination by their tags (EBS, AMIs) or their derived ids (DB), and
/// recorded now. Returns what is left to copy.
pub(super) async fn adopt(
    plan: &Plan<'_>,
    todo: Vec<SnapshotRecord>,
    copies: &mut Copies,
) -> Result<Vec<SnapshotRecord>, CloudError> {
    if todo.is_empty() {
        return Ok(todo);
    }
    let cloud = &plan.work.cloud;
    let region = &plan.run.destination.region;
    let tags = vec![
        (
            names::TAG_DR_POLICY.to_string(),
            vec![plan.run.policy.clone()],
        ),
        (
            names::TAG_DR_BACKUP_ID.to_string(),
            vec![plan.run.backup_id.clone()],
        ),
    ];
    let mut found: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    if todo.iter().any(|s| s.kind == ArtifactKind::Ebs) {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let q = SnapshotQuery {
            tags: tags.clone(),
            ..Default::default()
        };
        for s in crate::cloud::collect_pages(|t| {
            let (ec2, q) = (ec2.clone(), q.clone());
            async move { ec2.snapshots_page(&q, t).await }
        })
        .await?
        {
            // A copy that ended in error is not adopted: it is made again.
            if s.state == crate::cloud::SnapshotState::Error {
                continue;
            }
            if let Some(src) = s.tags.get(names::TAG_DR_SOURCE) {
                found.insert(src.clone(), (s.id, None));
            }
        }
    }
    if todo.iter().any(|s| s.kind == ArtifactKind::Image) {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let q = ImageQuery {
            tags: tags.clone(),
            ..Default::default()
        };
        for i in crate::cloud::collect_pages(|t| {
            let (ec2, q) = (ec2.clone(), q.clone());
            async move { ec2.images_page(&q, t).await }
        })
        .await?
        {
            if i.state == crate::cloud::ImageState::Failed {
                continue;
            }
            if let Some(src) = i.tags.get(names::TAG_DR_SOURCE) {
                found.insert(src.clone(), (i.id, None));
            }
        }
    }
    for kind in [ArtifactKind::DbSnapshot, ArtifactKind::DbClusterSnapshot] {
        let ids: Vec<String> = todo
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let rds = cloud.rds(&plan.dest, region).await?;
        let db = db_kind(kind);
        for d in collect_chunked(&ids, |chunk, t| {
            let rds = rds.clone();
            let chunk = chunk.to_vec();
            async move { rds.db_snapshots_page(db, &chunk, t).await }
        })
        .await?
        {
            // Only a copy carrying this backup's tags is ours to adopt.
            if d.tags.get(names::TAG_DR_BACKUP_ID) == Some(&plan.run.backup_id)
                && d.status != "failed"
            {
                found.insert(d.id.clone(), (d.id.clone(), Some(d.arn.clone())));
            }
        }
    }
    let mut left = Vec::new();
    for s in todo {
        match found.remove(&s.id) {
            Some((id, arn)) => {
                let rec = plan.copy_record(&s, id, arn);
                record(&plan.work.store, |tx| tx.put_dr_copy(&rec))
                    .map_err(|e| state_error(plan, e))?;
                copies.add_recorded(rec);
            }
            None => left.push(s),
        }
    }
    Ok(left)
}
