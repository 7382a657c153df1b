//! What carries a restore's [`TAG_RESTORE_ID`]: what a killed restore made
//! (adopted by the next run, never made twice) and what a drill's teardown
//! removes. One paged describe each, the tag a server-side filter, through
//! the same [`Ec2`] port every other describe uses; the tag is checked
//! again on what comes back.

use super::TAG_RESTORE_ID;
use crate::cloud::{collect_pages, CloudResult, Ec2, Instance, Query, Volume};

fn by_tag(restore_id: &str) -> Query {
    Query {
        ids: vec![],
        tags: vec![(TAG_RESTORE_ID.into(), vec![restore_id.to_string()])],
    }
}

/// The instances restore `restore_id` launched. Terminated ones and those
/// on their way there are left out: a restore run again must launch anew
/// rather than adopt them.
pub async fn instances(ec2: &dyn Ec2, restore_id: &str) -> CloudResult<Vec<Instance>> {
    let q = by_tag(restore_id);
    let found = collect_pages(|t| ec2.instances_page(&q, t)).await?;
    Ok(found
        .into_iter()
        .filter(|i| !i.state.is_gone())
        .filter(|i| i.tags.get(TAG_RESTORE_ID).map(String::as_str) == Some(restore_id))
        .collect())
}

/// The volumes restore `restore_id` created (or its instances were
/// launched with).
pub async fn volumes(ec2: &dyn Ec2, restore_id: &str) -> CloudResult<Vec<Volume>> {
    let q = by_tag(restore_id);
    let found = collect_pages(|t| ec2.volumes_page(&q, t)).await?;
    Ok(found
        .into_iter()
        .filter(|v| v.tags.get(TAG_RESTORE_ID).map(String::as_str) == Some(restore_id))
        .collect())
}
