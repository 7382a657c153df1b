//! Typed views of the managed objects in a [`Snapshot`].
//!
//! State keeps each object as JSON under its address. Every reader goes
//! through these views, so that a value that no longer decodes is an error
//! naming its address, never an object silently read as absent (which would
//! make a plan re-create it, or retention skip a policy).

use std::collections::BTreeMap;
use std::fmt;

use lifeboat_schema::Account;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{PolicyState, TargetState};
use super::{Snapshot, StateError, StateResult};
use crate::addr::Address;

/// One object's value as state holds it in memory: its compact JSON text.
///
/// A loaded state holds every target of every policy, and a JSON value
/// kept as a tree costs several times its text (a map node and a string
/// per key): for 10,000 targets, 21 MiB against 4. Readers decode the text
/// when they need it, which is once per object per command.
#[derive(Clone)]
pub struct StoredValue(Box<str>);

impl StoredValue {
    pub fn new(value: &Value) -> StoredValue {
        StoredValue(value.to_string().into_boxed_str())
    }

    /// The text of a stored row, checked to parse as a value, as
    /// [`StoredValue::value`] will parse it.
    pub fn from_text(text: String) -> Result<StoredValue, serde_json::Error> {
        serde_json::from_str::<Value>(&text)?;
        Ok(StoredValue(text.into_boxed_str()))
    }

    /// The value as a tree. The text is JSON by construction (made from a
    /// value, or checked when read), so it always parses.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> &str {
        &self.0
    }
}

impl PartialEq for StoredValue {
    fn eq(&self, other: &StoredValue) -> bool {
        self.0 == other.0 || self.value() == other.value()
    }
}

impl PartialEq<Value> for StoredValue {
    fn eq(&self, other: &Value) -> bool {
        self.value() == *other
    }
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for StoredValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for StoredValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StoredValue, D::Error> {
        Value::deserialize(d).map(|v| StoredValue::new(&v))
    }
}

/// Decodes through the value, as state was always read: a row written by
/// hand with a key twice keeps its last one rather than failing to load.
fn decode<T: DeserializeOwned>(addr: &Address, v: &StoredValue) -> StateResult<T> {
    serde_json::from_value(v.value()).map_err(|e| StateError::Decode {
        address: addr.to_string(),
        message: e.to_string(),
    })
}

/// Checks that `value` decodes as the typed view of `addr`'s kind.
/// `Tx::put_object` calls it before every write, so that nothing (a
/// hand-edited saved plan, one made by another version) can store a value
/// every later load would refuse.
pub fn check_value(addr: &Address, value: &Value) -> StateResult<()> {
    check_stored(addr, &StoredValue::new(value))
}

fn check_stored(addr: &Address, value: &StoredValue) -> StateResult<()> {
    match addr {
        Address::Account { .. } => decode::<Account>(addr, value).map(drop),
        Address::Policy { .. } => decode::<PolicyState>(addr, value).map(drop),
        Address::Target { .. } => decode::<TargetState>(addr, value).map(drop),
        Address::IamRole { .. } => decode::<crate::iam::role::RoleState>(addr, value).map(drop),
        Address::Backup { .. }
        | Address::Snapshot { .. }
        | Address::Image { .. }
        | Address::DbSnapshot { .. }
        | Address::DbClusterSnapshot { .. }
        | Address::VpcClone { .. }
        | Address::DrCopy { .. }
        | Address::ControlTarget { .. } => Ok(()),
    }
}

impl Snapshot {
    /// The object at `addr`, decoded; `None` when state has no such object.
    pub fn object<T: DeserializeOwned>(&self, addr: &Address) -> StateResult<Option<T>> {
        self.objects.get(addr).map(|v| decode(addr, v)).transpose()
    }

    /// Every account in state, by name.
    pub fn accounts(&self) -> StateResult<BTreeMap<String, Account>> {
        let mut out = BTreeMap::new();
        for (addr, v) in &self.objects {
            if let Address::Account { name } = addr {
                out.insert(name.clone(), decode(addr, v)?);
            }
        }
        Ok(out)
    }

    /// Every applied policy, by name.
    pub fn policies(&self) -> StateResult<BTreeMap<String, PolicyState>> {
        let mut out = BTreeMap::new();
        for (addr, v) in &self.objects {
            if let Address::Policy { name } = addr {
                out.insert(name.clone(), decode(addr, v)?);
            }
        }
        Ok(out)
    }

    /// One applied policy.
    pub fn policy(&self, name: &str) -> StateResult<Option<PolicyState>> {
        self.object(&Address::policy(name))
    }

    /// Every target in state, by (policy, target id).
    pub fn targets(&self) -> StateResult<BTreeMap<(String, String), TargetState>> {
        let mut out = BTreeMap::new();
        for (addr, v) in &self.objects {
            if let Address::Target { policy, id } = addr {
                out.insert((policy.clone(), id.clone()), decode(addr, v)?);
            }
        }
        Ok(out)
    }

    /// Decodes every object whose kind has a typed view, so that a damaged
    /// value stops the command that loaded it, before anything is decided.
    pub fn check_objects(&self) -> StateResult<()> {
        for (addr, v) in &self.objects {
            check_stored(addr, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_that_does_not_decode_is_an_error_naming_its_address() {
        let mut snap = Snapshot::default();
        snap.objects.insert(
            Address::policy("web"),
            StoredValue::new(&serde_json::json!({"name": "web", "generations": "many"})),
        );
        let err = snap.policies().unwrap_err().to_string();
        assert!(err.contains("policy.web"), "{err}");
        assert!(snap.policy("web").is_err());
        assert!(snap.check_objects().is_err());
        assert_eq!(snap.policy("other").unwrap(), None);
        let bad = &snap.objects[&Address::policy("web")].value();
        assert!(check_value(&Address::policy("web"), bad).is_err());
        assert!(check_value(&Address::vpc_clone("web"), bad).is_ok());
    }
}
