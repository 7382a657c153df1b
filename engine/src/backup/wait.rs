//! Waiting for what a backup created to finish: EBS snapshots to complete,
//! AMIs and DB snapshots to become available. One poll loop serves all of
//! them; each kind only says how to look.
//!
//! Calls per look: one filtered describe per kind per region for every 200
//! open ids (the most one filter takes), never one per resource.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use crate::cloud::{
    collect_pages, CloudResult, DbSnapshotKind, Ec2, ErrorKind, ImageQuery, ImageState, Rds,
    SnapshotQuery, SnapshotState, FILTER_CHUNK,
};

use super::Wait;

/// What one look says about one resource.
pub(crate) enum Look<T> {
    Pending,
    Done(T),
    Failed(String),
}

/// How a wait ended: what finished, with what the look found, and what did
/// not, with why.
pub(crate) struct Waited<T> {
    pub done: BTreeMap<String, T>,
    pub failed: BTreeMap<String, String>,
}

/// Polls `ids` until none is pending or `wait` runs out, handing `look` the
/// open ids, `per_call` at a time, once per look. The first look is
/// immediate (small snapshots are often done already), then one every
/// `wait.interval`. An id the answer leaves out stays open.
///
/// A throttled or dropped call fails nothing: its ids are looked at again
/// next time. Any other error will not heal by waiting, so everything still
/// open fails with it.
pub(crate) async fn poll<T, F, Fut>(
    ids: Vec<String>,
    per_call: usize,
    wait: Wait,
    mut look: F,
) -> Waited<T>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = CloudResult<Vec<(String, Look<T>)>>>,
{
    let started = Instant::now();
    let mut open: BTreeSet<String> = ids.into_iter().collect();
    let mut done = BTreeMap::new();
    let mut failed = BTreeMap::new();
    let mut pause = Duration::ZERO;
    while !open.is_empty() {
        if started.elapsed() >= wait.timeout {
            let why = format!("still pending after {}s", wait.timeout.as_secs());
            failed.extend(
                std::mem::take(&mut open)
                    .into_iter()
                    .map(|id| (id, why.clone())),
            );
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        pause = wait.interval;
        let asked: Vec<String> = open.iter().cloned().collect();
        for chunk in asked.chunks(per_call) {
            match look(chunk.to_vec()).await {
                Ok(found) => {
                    for (id, l) in found {
                        if !open.contains(&id) {
                            continue;
                        }
                        match l {
                            Look::Pending => {}
                            Look::Done(t) => {
                                open.remove(&id);
                                done.insert(id, t);
                            }
                            Look::Failed(why) => {
                                open.remove(&id);
                                failed.insert(id, why);
                            }
                        }
                    }
                }
                Err(e) if matches!(e.kind, ErrorKind::Throttled | ErrorKind::Transport) => {}
                Err(e) => {
                    let why = format!("could not be checked: {e}");
                    failed.extend(
                        std::mem::take(&mut open)
                            .into_iter()
                            .map(|id| (id, why.clone())),
                    );
                    break;
                }
            }
        }
    }
    Waited { done, failed }
}

/// Waits for the EBS snapshots `ids` of one region to leave `pending`.
/// Returns those that did not complete, with why.
///
/// Each look asks only for the snapshots not completed, so a snapshot of the
/// call the answer leaves out has completed: the emulator answers 1,000
/// completed snapshots in 1.4 s, and an empty answer in 0.06 s. The ids are
/// named in the call, so a snapshot AWS does not show yet (just created) or
/// any more (deleted meanwhile) fails the call with `NotFound` and is looked
/// at again next time, never counted as completed: a backup is a generation
/// only once AWS has shown every snapshot of it completed.
pub(super) async fn snapshots(
    ec2: &dyn Ec2,
    ids: Vec<String>,
    wait: Wait,
) -> BTreeMap<String, String> {
    let waited = poll(ids, FILTER_CHUNK, wait, |ids| async move {
        let q = SnapshotQuery {
            ids,
            tags: vec![],
            unfinished_only: true,
        };
        let found = match collect_pages(|tok| ec2.snapshots_page(&q, tok)).await {
            Ok(found) => found,
            // Not listed (yet, or any more) is not completed: ask again.
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Ok(q.ids.into_iter().map(|id| (id, Look::Pending)).collect())
            }
            Err(e) => return Err(e),
        };
        let mut unfinished: BTreeMap<String, Look<()>> = BTreeMap::new();
        for snap in found {
            match snap.state {
                SnapshotState::Pending => {
                    unfinished.insert(snap.id, Look::Pending);
                }
                SnapshotState::Completed => {}
                SnapshotState::Error => {
                    unfinished.insert(snap.id, Look::Failed("ended in the error state".into()));
                }
            }
        }
        Ok(q.ids
            .into_iter()
            .map(|id| {
                let l = unfinished.remove(&id).unwrap_or(Look::Done(()));
                (id, l)
            })
            .collect())
    })
    .await;
    waited.failed
}

/// Waits for the AMIs `ids` of one region to become available. What
/// finished comes with the ids of its snapshots.
pub(super) async fn images(ec2: &dyn Ec2, ids: Vec<String>, wait: Wait) -> Waited<Vec<String>> {
    poll(ids, FILTER_CHUNK, wait, |ids| async move {
        let q = ImageQuery { ids, tags: vec![] };
        let found = collect_pages(|tok| ec2.images_page(&q, tok)).await?;
        Ok(found
            .into_iter()
            .map(|i| {
                let l = match i.state {
                    ImageState::Pending => Look::Pending,
                    ImageState::Available => Look::Done(i.snapshot_ids),
                    ImageState::Failed => Look::Failed("ended in a failed state".into()),
                };
                (i.id, l)
            })
            .collect())
    })
    .await
}

/// Waits for the DB (cluster) snapshots `ids` of one region to become
/// available. Returns those that did not, with why.
pub(super) async fn db_snapshots(
    rds: &dyn Rds,
    kind: DbSnapshotKind,
    ids: Vec<String>,
    wait: Wait,
) -> BTreeMap<String, String> {
    let waited = poll(ids, FILTER_CHUNK, wait, |ids| async move {
        let found = collect_pages(|tok| rds.db_snapshots_page(kind, &ids, tok)).await?;
        Ok(found
            .into_iter()
            .map(|s| {
                let l = match s.status.as_str() {
                    "available" => Look::Done(()),
                    "failed" | "error" | "deleted" | "deleting" | "incompatible-restore" => {
                        Look::Failed(format!("ended in the {} state", s.status))
                    }
                    _ => Look::Pending,
                };
                (s.id, l)
            })
            .collect())
    })
    .await;
    waited.failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudError;

    const NOW: Wait = Wait {
        timeout: Duration::from_secs(60),
        interval: Duration::ZERO,
    };

    fn ids(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn error(kind: ErrorKind) -> CloudError {
        CloudError {
            kind,
            account: "prod".into(),
            region: "us-east-1".into(),
            action: "ec2:DescribeSnapshots".into(),
            resource: None,
            code: None,
            message: "no".into(),
        }
    }

    #[tokio::test]
    async fn each_look_asks_for_the_open_ids_per_call_at_a_time() {
        let mut calls: Vec<Vec<String>> = Vec::new();
        let waited = poll(ids(&["a", "b", "c", "d", "e"]), 2, NOW, |asked| {
            calls.push(asked.clone());
            let first_look = calls.len() <= 3;
            async move {
                Ok(asked
                    .into_iter()
                    .map(|id| {
                        let l = if id == "c" && first_look {
                            Look::Pending
                        } else {
                            Look::Done(id.to_uppercase())
                        };
                        (id, l)
                    })
                    .collect())
            }
        })
        .await;
        assert_eq!(
            calls,
            vec![ids(&["a", "b"]), ids(&["c", "d"]), ids(&["e"]), ids(&["c"])]
        );
        assert_eq!(waited.done.len(), 5);
        assert_eq!(waited.done["c"], "C");
        assert!(waited.failed.is_empty());
    }

    #[tokio::test]
    async fn a_throttled_look_is_asked_again_and_a_refused_one_fails_all_that_is_open() {
        let mut calls = 0;
        let waited: Waited<()> = poll(ids(&["a", "b", "c"]), 1, NOW, |asked| {
            calls += 1;
            let n = calls;
            async move {
                match n {
                    1 => Err(error(ErrorKind::Throttled)),
                    2 => Ok(vec![(asked[0].clone(), Look::Failed("broke".into()))]),
                    _ => Err(error(ErrorKind::AccessDenied)),
                }
            }
        })
        .await;
        assert_eq!(calls, 3, "nothing is asked after a refused look");
        assert!(waited.done.is_empty());
        assert_eq!(waited.failed["b"], "broke");
        assert!(waited.failed["a"].starts_with("could not be checked: "));
        assert!(waited.failed["c"].starts_with("could not be checked: "));
    }

    #[tokio::test]
    async fn what_is_open_when_the_wait_runs_out_is_still_pending() {
        let mut calls = 0;
        let out = Wait {
            timeout: Duration::ZERO,
            interval: Duration::ZERO,
        };
        let waited: Waited<()> = poll(ids(&["a"]), 1, out, |_| {
            calls += 1;
            async { Ok(vec![]) }
        })
        .await;
        assert_eq!(calls, 0);
        assert_eq!(waited.failed["a"], "still pending after 0s");
    }
}
