//! What a change's object was before it: the `before` of a [`Change`].
//!
//! Most objects are kept as the JSON value state holds. The catalog records
//! retention deletes (one change per snapshot, tens of thousands in a large
//! plan) are kept typed instead, their backup's fields shared: a JSON map
//! each was most of a large plan's memory. Both print and save as the same
//! JSON; a saved plan reads every `before` back as a value, and the two
//! forms of one record are equal.
//!
//! [`Change`]: crate::plan::Change

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::state::{ArtifactKind, BackupRecord, SnapshotRecord};

/// The prior value of a change's object.
#[derive(Debug, Clone)]
pub enum Prior {
    Value(Value),
    Artifact(Box<ArtifactPrior>),
}

/// A catalog record as a change shows it: its backup, and the record's own
/// fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactPrior {
    pub backup: Arc<BackupOf>,
    pub region: String,
    pub volume_id: String,
    pub target: String,
    pub kind: ArtifactKind,
    /// For a snapshot of an AMI: the AMI.
    pub image: Option<String>,
}

/// The fields of a backup its records' changes share.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupOf {
    pub policy: String,
    pub id: String,
    pub account: String,
}

impl BackupOf {
    pub fn of(b: &BackupRecord) -> Arc<BackupOf> {
        Arc::new(BackupOf {
            policy: b.policy.clone(),
            id: b.id.clone(),
            account: b.account.clone(),
        })
    }
}

impl ArtifactPrior {
    pub fn prior(backup: &Arc<BackupOf>, s: &SnapshotRecord) -> Prior {
        Prior::Artifact(Box::new(ArtifactPrior {
            backup: backup.clone(),
            region: s.region.clone(),
            volume_id: s.volume_id.clone(),
            target: s.target.clone(),
            kind: s.kind,
            image: s.image.clone(),
        }))
    }

    /// The record's JSON: `kind` only when it is not an EBS snapshot,
    /// `image` only for an AMI's snapshot.
    fn to_value(&self) -> Value {
        let mut v = json!({
            "policy": self.backup.policy, "backup": self.backup.id,
            "account": self.backup.account, "region": self.region,
            "volume_id": self.volume_id, "target": self.target,
        });
        if !self.kind.is_ebs() {
            v["kind"] = json!(self.kind.as_str());
        }
        if let Some(image) = &self.image {
            v["image"] = json!(image);
        }
        v
    }

    fn str(&self, key: &str) -> Option<&str> {
        Some(match key {
            "policy" => &self.backup.policy,
            "backup" => &self.backup.id,
            "account" => &self.backup.account,
            "region" => &self.region,
            "volume_id" => &self.volume_id,
            "target" => &self.target,
            "kind" if !self.kind.is_ebs() => self.kind.as_str(),
            "image" => self.image.as_deref()?,
            _ => return None,
        })
    }
}

impl Prior {
    /// The whole value, as printed and saved.
    pub fn value(&self) -> Cow<'_, Value> {
        match self {
            Prior::Value(v) => Cow::Borrowed(v),
            Prior::Artifact(a) => Cow::Owned(a.to_value()),
        }
    }

    /// The string field `key` (`account`, `region`, `policy`, ...).
    pub fn str(&self, key: &str) -> Option<&str> {
        match self {
            Prior::Value(v) => v.get(key)?.as_str(),
            Prior::Artifact(a) => a.str(key),
        }
    }
}

impl From<Value> for Prior {
    fn from(v: Value) -> Prior {
        Prior::Value(v)
    }
}

/// Equal when their JSON is: a saved plan's value equals the typed record
/// of a plan made now.
impl PartialEq for Prior {
    fn eq(&self, other: &Prior) -> bool {
        match (self, other) {
            (Prior::Value(a), Prior::Value(b)) => a == b,
            (Prior::Artifact(a), Prior::Artifact(b)) => a == b,
            _ => self.value() == other.value(),
        }
    }
}

impl Serialize for Prior {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Prior {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Prior, D::Error> {
        Value::deserialize(d).map(Prior::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_record_prints_and_reads_back_as_the_value_it_stands_for() {
        let b = Arc::new(BackupOf {
            policy: "web".into(),
            id: "2026-12-01T00:00:00Z".into(),
            account: "main".into(),
        });
        let s = SnapshotRecord {
            id: "snap-1".into(),
            volume_id: "vol-1".into(),
            target: "i-1".into(),
            region: "us-east-1".into(),
            kind: ArtifactKind::Ebs,
            image: Some("ami-1".into()),
        };
        let typed = ArtifactPrior::prior(&b, &s);
        let value = json!({
            "policy": "web", "backup": "2026-12-01T00:00:00Z", "account": "main",
            "region": "us-east-1", "volume_id": "vol-1", "target": "i-1", "image": "ami-1",
        });
        assert_eq!(*typed.value(), value);
        let text = serde_json::to_string(&typed).unwrap();
        assert_eq!(text, serde_json::to_string(&value).unwrap());
        let back: Prior = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Prior::Value(_)));
        assert_eq!(back, typed);
        for key in [
            "policy",
            "backup",
            "account",
            "region",
            "volume_id",
            "target",
            "image",
            "kind",
        ] {
            assert_eq!(typed.str(key), back.str(key), "{key}");
        }
        let db = ArtifactPrior::prior(
            &b,
            &SnapshotRecord {
                kind: ArtifactKind::DbSnapshot,
                image: None,
                ..s
            },
        );
        assert_eq!(db.str("kind"), Some("db_snapshot"));
        assert_eq!(db.value()["kind"], "db_snapshot");
        assert_ne!(db, back);
    }
}
