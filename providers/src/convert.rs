//! Pure conversions between the engine's types and the SDK's: filters,
//! tags, states, timestamps. Kept free of I/O so that they are unit-tested.

use aws_sdk_ec2::primitives::DateTime as SdkDateTime;
use aws_sdk_ec2::types::{Filter, Tag};
use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::{InstanceState, SnapshotState, Tags, ANY_TAG_KEY};

/// One EC2 `Filters` entry: a name and the values that are ORed.
pub(crate) type FilterSpec = (String, Vec<String>);

/// Builds the `Filters` of a Describe* call.
///
/// - `owner`: `owner-id` = that account (snapshots only; real EC2 and the
///   emulator both honour it, unlike `OwnerIds=self` in the emulator);
/// - `ids`, when not empty, through the `id_filter` filter (`instance-id`,
///   `volume-id`, `snapshot-id`) rather than the `*Ids` parameter, so that a
///   missing id is simply absent instead of failing the whole page, and so
///   that `MaxResults` may still be passed;
/// - each tag condition as `tag:KEY` = values (EC2 understands `*`
///   wildcards in values), or, with no values, "has the tag": `tag-key` =
///   [KEY]. `tag-key` with several values ORs them, so a second
///   "has the tag" condition is written `tag:KEY` = [`*`] instead, keeping
///   conditions ANDed without repeating a filter name;
/// - the condition "carries one of these keys" (`ANY_TAG_KEY`, the backup
///   tag and its aliases) as `tag-key` = the keys, placed first so that it
///   has the `tag-key` filter to itself: one list call finds resources
///   tagged under any of the spellings.
pub(crate) fn build_filters(
    owner: Option<&str>,
    id_filter: &str,
    ids: &[String],
    tags: &[(String, Vec<String>)],
) -> Vec<FilterSpec> {
    let mut out = Vec::with_capacity(tags.len() + 2);
    if let Some(owner) = owner {
        out.push(("owner-id".to_owned(), vec![owner.to_owned()]));
    }
    if !ids.is_empty() {
        out.push((id_filter.to_owned(), ids.to_vec()));
    }
    let mut tag_key_used = false;
    for (_, keys) in tags.iter().filter(|(k, _)| k == ANY_TAG_KEY) {
        tag_key_used = true;
        out.push(("tag-key".to_owned(), keys.clone()));
    }
    for (key, values) in tags.iter().filter(|(k, _)| k != ANY_TAG_KEY) {
        if !values.is_empty() {
            out.push((format!("tag:{key}"), values.clone()));
        } else if !tag_key_used {
            tag_key_used = true;
            out.push(("tag-key".to_owned(), vec![key.clone()]));
        } else {
            out.push((format!("tag:{key}"), vec!["*".to_owned()]));
        }
    }
    out
}

pub(crate) fn sdk_filters(specs: Vec<FilterSpec>) -> Vec<Filter> {
    specs
        .into_iter()
        .map(|(name, values)| {
            Filter::builder()
                .name(name)
                .set_values(Some(values))
                .build()
        })
        .collect()
}

/// EC2 tags to the engine's map. A tag without a key cannot exist in EC2;
/// it is skipped rather than invented. A missing value is the empty string,
/// as EC2 itself shows it.
pub(crate) fn tags_from_sdk(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub(crate) fn tags_to_sdk(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Instance state by name, falling back to the numeric code (its low byte
/// is stable across API versions). An unknown state is reported as
/// `Pending`: the instance exists but is not known to be usable, which
/// neither backs it up as running nor drops it as terminated.
pub(crate) fn instance_state(name: Option<&str>, code: Option<i32>) -> InstanceState {
    let by_name = match name {
        Some("pending") => Some(InstanceState::Pending),
        Some("running") => Some(InstanceState::Running),
        Some("stopping") => Some(InstanceState::Stopping),
        Some("stopped") => Some(InstanceState::Stopped),
        Some("shutting-down") => Some(InstanceState::ShuttingDown),
        Some("terminated") => Some(InstanceState::Terminated),
        _ => None,
    };
    by_name.unwrap_or(match code.map(|c| c & 0xff) {
        Some(16) => InstanceState::Running,
        Some(32) => InstanceState::ShuttingDown,
        Some(48) => InstanceState::Terminated,
        Some(64) => InstanceState::Stopping,
        Some(80) => InstanceState::Stopped,
        _ => InstanceState::Pending,
    })
}

/// Snapshot state. `recovering` (being restored from the Recycle Bin) will
/// become `completed` on its own: `Pending`. `recoverable` does not move by
/// itself and cannot be used to restore from: `Error`. Anything unknown is
/// `Pending`, so the engine waits (and times out) rather than acting on a
/// state it does not understand.
pub(crate) fn snapshot_state(name: Option<&str>) -> SnapshotState {
    match name {
        Some("completed") => SnapshotState::Completed,
        Some("error") | Some("recoverable") => SnapshotState::Error,
        _ => SnapshotState::Pending,
    }
}

/// An ISO 8601 time as EC2 writes some of them in text (an AMI's
/// `CreationDate`, `2026-11-22T10:00:00.000Z`); `None` when it does not parse.
pub(crate) fn time_from_text(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub(crate) fn time_from_sdk(t: Option<&SdkDateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn filters_empty_query_has_none() {
        assert!(build_filters(None, "instance-id", &[], &[]).is_empty());
    }

    #[test]
    fn filters_ids_and_tags() {
        let tags = vec![
            ("team".to_owned(), s(&["web*", "api"])),
            ("backup".to_owned(), vec![]),
            ("env".to_owned(), s(&["prod"])),
        ];
        let got = build_filters(None, "instance-id", &s(&["i-1", "i-2"]), &tags);
        assert_eq!(
            got,
            vec![
                ("instance-id".to_owned(), s(&["i-1", "i-2"])),
                ("tag:team".to_owned(), s(&["web*", "api"])),
                ("tag-key".to_owned(), s(&["backup"])),
                ("tag:env".to_owned(), s(&["prod"])),
            ]
        );
    }

    #[test]
    fn any_of_several_tag_keys_is_one_tag_key_filter_first() {
        let q = lifeboat_engine::cloud::Query::any_tag_key(&["lifeboat:backup", "cpm backup"]);
        let mut tags = vec![("team".to_owned(), vec![])];
        tags.extend(q.tags);
        let got = build_filters(None, "volume-id", &[], &tags);
        assert_eq!(
            got,
            vec![
                ("tag-key".to_owned(), s(&["lifeboat:backup", "cpm backup"])),
                ("tag:team".to_owned(), s(&["*"])),
            ]
        );
    }

    #[test]
    fn filters_snapshots_always_have_owner_first() {
        let got = build_filters(
            Some("123456789012"),
            "snapshot-id",
            &[],
            &[("lifeboat:policy".into(), s(&["web"]))],
        );
        assert_eq!(
            got,
            vec![
                ("owner-id".to_owned(), s(&["123456789012"])),
                ("tag:lifeboat:policy".to_owned(), s(&["web"])),
            ]
        );
    }

    #[test]
    fn filters_second_any_value_condition_stays_anded() {
        let tags = vec![("a".to_owned(), vec![]), ("b".to_owned(), vec![])];
        let got = build_filters(None, "volume-id", &[], &tags);
        assert_eq!(
            got,
            vec![
                ("tag-key".to_owned(), s(&["a"])),
                ("tag:b".to_owned(), s(&["*"]))
            ]
        );
    }

    #[test]
    fn sdk_filters_keep_names_and_values() {
        let f = sdk_filters(vec![("tag:team".into(), s(&["web*"]))]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name(), Some("tag:team"));
        assert_eq!(f[0].values(), &["web*".to_owned()]);
    }

    #[test]
    fn tags_round_trip_and_skip_keyless() {
        let mut tags = Tags::new();
        tags.insert("lifeboat:policy".into(), "web".into());
        tags.insert("Name".into(), "".into());
        let sdk = tags_to_sdk(&tags);
        assert_eq!(sdk.len(), 2);
        assert_eq!(tags_from_sdk(&sdk), tags);

        let odd = vec![
            Tag::builder().value("orphan").build(),
            Tag::builder().key("k").build(),
        ];
        let got = tags_from_sdk(&odd);
        assert_eq!(got.len(), 1);
        assert_eq!(got["k"], "");
    }

    #[test]
    fn instance_states() {
        assert_eq!(
            instance_state(Some("running"), Some(16)),
            InstanceState::Running
        );
        assert_eq!(
            instance_state(Some("shutting-down"), None),
            InstanceState::ShuttingDown
        );
        assert_eq!(
            instance_state(Some("hibernating"), Some(0x150)),
            InstanceState::Stopped
        );
        assert_eq!(instance_state(None, None), InstanceState::Pending);
    }

    #[test]
    fn snapshot_states() {
        assert_eq!(snapshot_state(Some("completed")), SnapshotState::Completed);
        assert_eq!(snapshot_state(Some("pending")), SnapshotState::Pending);
        assert_eq!(snapshot_state(Some("error")), SnapshotState::Error);
        assert_eq!(snapshot_state(Some("recoverable")), SnapshotState::Error);
        assert_eq!(snapshot_state(Some("recovering")), SnapshotState::Pending);
        assert_eq!(snapshot_state(None), SnapshotState::Pending);
    }

    #[test]
    fn timestamps() {
        let t = SdkDateTime::from_secs_and_nanos(1_700_000_000, 500);
        let got = time_from_sdk(Some(&t)).unwrap();
        assert_eq!(got.timestamp(), 1_700_000_000);
        assert_eq!(got.timestamp_subsec_nanos(), 500);
        assert_eq!(time_from_sdk(None), None);
    }
}
