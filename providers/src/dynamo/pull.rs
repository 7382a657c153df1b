//! Reading the log: pulls as consistent, paginated queries.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use lifeboat_engine::state::remote::{Commit, Pull, RemoteError, RowChange};

use super::log::{get_n, get_s, read_head, s, settle};
use super::Inner;

/// What changed after `since`: the commits, oldest first, from one
/// consistent, paginated query of the log partition; or, when compaction
/// removed part of what that needs, every live row as of the last commit
/// (the snapshot with the log after it folded in), so that either answer
/// brings the reader as far as the log went.
pub(super) async fn pull(inner: &Inner, since: u64) -> Result<Pull, RemoteError> {
    if let Some(commits) = read_log(inner, since).await? {
        return Ok(Pull::Log(commits));
    }
    // A hole in the log: compaction removed it (or is removing it) up to
    // its snapshot. Read the head for the snapshot; a newer compaction may
    // replace it while we read, hence the few tries.
    let place = &inner.place;
    for _ in 0..3 {
        let head = read_head(inner).await?;
        if head.snapshot <= since {
            break;
        }
        let Some(rows) = read_snapshot(inner, head.snapshot).await? else {
            continue;
        };
        let Some(commits) = read_log(inner, head.snapshot).await? else {
            continue;
        };
        let rev = commits.last().map_or(head.snapshot, |c| c.rev);
        return Ok(Pull::Full {
            rev,
            rows: fold(rows, commits),
        });
    }
    Err(place.broken(format!(
        "the log after revision {since} has a hole no snapshot covers"
    )))
}

/// The live rows after `commits` are applied to `rows`, ordered by table
/// and primary key.
pub(super) fn fold(rows: Vec<RowChange>, commits: Vec<Commit>) -> Vec<RowChange> {
    let key = |c: &RowChange| (c.table.clone(), c.key.to_string());
    let mut live: BTreeMap<(String, String), RowChange> =
        rows.into_iter().map(|r| (key(&r), r)).collect();
    for change in commits.into_iter().flat_map(|c| c.changes) {
        let k = key(&change);
        match change.row {
            Some(_) => live.insert(k, change),
            None => live.remove(&k),
        };
    }
    live.into_values().collect()
}

/// The commits after `since`, or `None` when the log has a hole there.
async fn read_log(inner: &Inner, since: u64) -> Result<Option<Vec<Commit>>, RemoteError> {
    let place = &inner.place;
    let from = format!("{:020}", since + 1);
    let items = query(inner, place.log_pk(), "#sk >= :sk", from).await?;
    let mut commits: Vec<Commit> = Vec::new();
    let mut pending: Vec<Chunk> = Vec::new();
    for item in items {
        let sk = get_s(&item, "sk").unwrap_or_default();
        let parsed = sk
            .split_once('#')
            .and_then(|(r, c)| Some((r.parse::<u64>().ok()?, c.parse::<usize>().ok()?)));
        let Some((rev, chunk)) = parsed else {
            return Err(place.broken(format!("log item {sk:?} has a malformed key")));
        };
        if pending.first().is_some_and(|(r, _, _)| *r != rev) {
            let Some(c) = assemble(inner, std::mem::take(&mut pending)).await? else {
                return Ok(None);
            };
            commits.push(c);
        }
        pending.push((rev, chunk, item));
    }
    if !pending.is_empty() {
        let Some(c) = assemble(inner, pending).await? else {
            return Ok(None);
        };
        commits.push(c);
    }
    // A commit's items land together and later pages only hold later
    // revisions, so a missing revision is compaction's doing (or damage,
    // which the snapshot check in `pull` tells apart).
    let contiguous = commits
        .iter()
        .enumerate()
        .all(|(i, c)| c.rev == since + 1 + i as u64);
    Ok(contiguous.then_some(commits))
}

/// A log item with its revision and chunk number.
type Chunk = (u64, usize, HashMap<String, AttributeValue>);

/// One revision's log items (in chunk order, as the query returns them)
/// back into its commit.
/// `None` when chunks are missing (compaction is deleting them).
async fn assemble(inner: &Inner, items: Vec<Chunk>) -> Result<Option<Commit>, RemoteError> {
    let place = &inner.place;
    let rev = items[0].0;
    let count: usize = get_n(&items[0].2, "chunks").unwrap_or(0);
    let text = if let Some(id) = get_s(&items[0].2, "staged") {
        let Some(text) = read_staged(inner, id, count).await? else {
            return Ok(None);
        };
        text
    } else {
        let in_order = items.iter().enumerate().all(|(i, (_, c, _))| *c == i);
        if items.len() != count || !in_order {
            return Ok(None);
        }
        let texts: Option<Vec<&str>> = items
            .iter()
            .map(|(_, _, it)| get_s(it, "changes"))
            .collect();
        texts
            .ok_or_else(|| place.broken(format!("revision {rev} has a chunk without changes")))?
            .concat()
    };
    let changes = serde_json::from_str(&text)
        .map_err(|e| place.broken(format!("revision {rev} does not decode: {e}")))?;
    Ok(Some(Commit { rev, changes }))
}

/// A published staged commit's text, settling it if its publisher stopped
/// before doing so.
async fn read_staged(inner: &Inner, id: &str, count: usize) -> Result<Option<String>, RemoteError> {
    let place = &inner.place;
    let prefix = format!("{id}#");
    let items = query(inner, place.stage_pk(), "begins_with(#sk, :sk)", prefix).await?;
    if items.len() != count {
        return Ok(None);
    }
    let unsettled = items.iter().any(|it| it.contains_key("expires_at"));
    let texts: Option<Vec<&str>> = items.iter().map(|it| get_s(it, "changes")).collect();
    let text = texts
        .ok_or_else(|| place.broken(format!("staged commit {id} has a chunk without changes")))?
        .concat();
    if unsettled {
        settle(inner, id, count).await?;
    }
    Ok(Some(text))
}

/// The live rows of snapshot `rev`; `None` when it is incomplete (a newer
/// snapshot replaced it while we read).
async fn read_snapshot(inner: &Inner, rev: u64) -> Result<Option<Vec<RowChange>>, RemoteError> {
    let place = &inner.place;
    let prefix = format!("{rev:020}#");
    let items = query(inner, place.snap_pk(), "begins_with(#sk, :sk)", prefix).await?;
    let count: Option<usize> = items.first().and_then(|it| get_n(it, "chunks"));
    if count != Some(items.len()) {
        return Ok(None);
    }
    let texts: Option<Vec<&str>> = items.iter().map(|it| get_s(it, "changes")).collect();
    let text = texts
        .ok_or_else(|| place.broken(format!("snapshot {rev} has a chunk without rows")))?
        .concat();
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| place.broken(format!("snapshot {rev} does not decode: {e}")))
}

/// Every item of partition `pk` whose sort key meets `condition` (on
/// `#sk` and `:sk`), read consistently, page after page.
pub(super) async fn query(
    inner: &Inner,
    pk: AttributeValue,
    condition: &str,
    sk: String,
) -> Result<Vec<HashMap<String, AttributeValue>>, RemoteError> {
    let place = &inner.place;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = inner
            .client
            .query()
            .table_name(&place.table)
            .key_condition_expression(format!("#pk = :pk AND {condition}"))
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", pk.clone())
            .expression_attribute_values(":sk", s(sk.as_str()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| place.fail("Query", &e))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return Ok(items),
        }
    }
}
