//! One look at the copies in flight: one describe per kind in the
//! destination, and what each copy's state means.

use std::collections::BTreeMap;

use super::{db_kind, names, InFlight, Plan};
use crate::cloud::{
    collect_chunked, CloudError, ImageQuery, ImageState, SnapshotQuery, SnapshotState,
};
use crate::state::{ArtifactKind, DrCopyRecord, DrStatus};

/// How a copy stands after one look.
pub(super) enum Outcome {
    /// Completed; for an AMI, the records of its copied snapshots.
    Done(Vec<DrCopyRecord>),
    Failed(String),
}

/// One describe per kind in the destination for the copies in flight.
pub(super) async fn poll(
    plan: &Plan<'_>,
    in_flight: &[InFlight],
) -> Result<BTreeMap<String, Outcome>, CloudError> {
    let cloud = &plan.work.cloud;
    let region = &plan.run.destination.region;
    let ids = |k: ArtifactKind| -> Vec<String> {
        in_flight
            .iter()
            .filter(|f| f.record.kind == k)
            .map(|f| f.record.id.clone())
            .collect()
    };
    let mut out = BTreeMap::new();
    let ebs = ids(ArtifactKind::Ebs);
    if !ebs.is_empty() {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let found = collect_chunked(&ebs, |chunk, t| {
            let ec2 = ec2.clone();
            let q = SnapshotQuery {
                ids: chunk.to_vec(),
                ..Default::default()
            };
            async move { ec2.snapshots_page(&q, t).await }
        })
        .await?;
        for s in found {
            match s.state {
                SnapshotState::Completed => {
                    out.insert(s.id, Outcome::Done(Vec::new()));
                }
                SnapshotState::Error => {
                    out.insert(
                        s.id,
                        Outcome::Failed("the copy ended in the error state".into()),
                    );
                }
                SnapshotState::Pending => {}
            }
        }
    }
    let images = ids(ArtifactKind::Image);
    if !images.is_empty() {
        let ec2 = cloud.ec2(&plan.dest, region).await?;
        let found = collect_chunked(&images, |chunk, t| {
            let ec2 = ec2.clone();
            let q = ImageQuery {
                ids: chunk.to_vec(),
                ..Default::default()
            };
            async move { ec2.images_page(&q, t).await }
        })
        .await?;
        for i in found {
            match i.state {
                ImageState::Available => {
                    let Some(f) = in_flight.iter().find(|f| f.record.id == i.id) else {
                        continue;
                    };
                    // The image's tags as the copy call asked for them (a
                    // tag call after it may have failed), on the image and
                    // its snapshots: what adoption and audits find them by.
                    let r = &f.record;
                    let mut tags = i.tags.clone();
                    tags.extend(
                        [
                            (names::TAG_DR_POLICY, r.policy.as_str()),
                            (names::TAG_DR_BACKUP_ID, r.backup_id.as_str()),
                            (names::TAG_DR_TARGET, r.target.as_str()),
                            (names::TAG_DR_SOURCE, r.source_id.as_str()),
                            (names::TAG_DR_SOURCE_REGION, r.source_region.as_str()),
                        ]
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                    );
                    let mut tagged = vec![i.id.clone()];
                    tagged.extend(i.snapshot_ids.iter().cloned());
                    ec2.create_tags(&tagged, &tags).await?;
                    let extra = i
                        .snapshot_ids
                        .iter()
                        .map(|sid| DrCopyRecord {
                            id: sid.clone(),
                            kind: ArtifactKind::Ebs,
                            image: Some(i.id.clone()),
                            arn: None,
                            status: DrStatus::Completed,
                            finished: Some(plan.work.now_at()),
                            ..f.record.clone()
                        })
                        .collect();
                    out.insert(i.id, Outcome::Done(extra));
                }
                ImageState::Failed => {
                    out.insert(i.id, Outcome::Failed("the copied AMI failed".into()));
                }
                ImageState::Pending => {}
            }
        }
    }
    for kind in [ArtifactKind::DbSnapshot, ArtifactKind::DbClusterSnapshot] {
        let db = ids(kind);
        if db.is_empty() {
            continue;
        }
        let rds = cloud.rds(&plan.dest, region).await?;
        let k = db_kind(kind);
        let found = collect_chunked(&db, |chunk, t| {
            let rds = rds.clone();
            let chunk = chunk.to_vec();
            async move { rds.db_snapshots_page(k, &chunk, t).await }
        })
        .await?;
        for d in found {
            match d.status.as_str() {
                "available" => {
                    out.insert(d.id, Outcome::Done(Vec::new()));
                }
                "failed" | "incompatible-restore" | "deleting" | "deleted" => {
                    out.insert(d.id, Outcome::Failed(format!("the copy is {}", d.status)));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}
