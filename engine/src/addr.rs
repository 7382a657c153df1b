//! Addresses: the one canonical name of every object Lifeboat manages, used
//! in plan output, state, logs and command-line arguments.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable address with exactly one printed form.
///
/// The derived order (by kind, then name) is the order of plans and state
/// listings, so output is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    /// `account.NAME`
    Account { name: String },
    /// `policy.NAME`
    Policy { name: String },
    /// `policy.NAME.target["ID"]`
    Target { policy: String, id: String },
    /// `backup.POLICY["ID"]`
    Backup { policy: String, id: String },
    /// `snapshot["ID"]`
    Snapshot { id: String },
    /// `image["ami-…"]`: an AMI a backup made.
    Image { id: String },
    /// `db_snapshot["ID"]`: an RDS DB snapshot a backup made.
    DbSnapshot { id: String },
    /// `db_cluster_snapshot["ID"]`: an Aurora cluster snapshot a backup made.
    DbClusterSnapshot { id: String },
    /// `vpc_clone.NAME`: the CloudFormation stack of a VPC clone.
    VpcClone { name: String },
    /// `dr_copy.POLICY["SOURCE"]["REGION"]`, or `["REGION:ACCOUNT"]` in
    /// another account than the policy's: the DR copy of one artifact.
    DrCopy {
        policy: String,
        source: String,
        to: String,
    },
    /// `iam_role.ACCOUNT`: the DR role `manage_role` keeps in an account.
    IamRole { account: String },
    /// `resource_control_group.GROUP.target["ID"]`: an instance or database
    /// a resource-control group stops and starts (ID an instance id, or
    /// `rds:NAME`, `aurora:NAME`).
    ControlTarget { group: String, id: String },
}

impl Address {
    pub fn account(name: &str) -> Self {
        Address::Account {
            name: name.to_string(),
        }
    }
    pub fn policy(name: &str) -> Self {
        Address::Policy {
            name: name.to_string(),
        }
    }
    pub fn target(policy: &str, id: &str) -> Self {
        Address::Target {
            policy: policy.to_string(),
            id: id.to_string(),
        }
    }
    pub fn backup(policy: &str, id: &str) -> Self {
        Address::Backup {
            policy: policy.to_string(),
            id: id.to_string(),
        }
    }
    pub fn snapshot(id: &str) -> Self {
        Address::Snapshot { id: id.to_string() }
    }
    pub fn vpc_clone(name: &str) -> Self {
        Address::VpcClone {
            name: name.to_string(),
        }
    }
    pub fn iam_role(account: &str) -> Self {
        Address::IamRole {
            account: account.to_string(),
        }
    }

    /// The address of the copy of `source` at `to`; the account is
    /// written only when it is not the policy's own.
    pub fn dr_copy(
        policy: &str,
        source: &str,
        to: &crate::state::Destination,
        policy_account: &str,
    ) -> Self {
        let to = if to.account == policy_account {
            to.region.clone()
        } else {
            to.to_string()
        };
        Address::DrCopy {
            policy: policy.to_string(),
            source: source.to_string(),
            to,
        }
    }

    /// The kind as stored in state: `account`, `policy`, `target`, `backup`,
    /// `snapshot`, `vpc_clone`.
    pub fn kind(&self) -> &'static str {
        match self {
            Address::Account { .. } => "account",
            Address::Policy { .. } => "policy",
            Address::Target { .. } => "target",
            Address::Backup { .. } => "backup",
            Address::Snapshot { .. } => "snapshot",
            Address::Image { .. } => "image",
            Address::DbSnapshot { .. } => "db_snapshot",
            Address::DbClusterSnapshot { .. } => "db_cluster_snapshot",
            Address::VpcClone { .. } => "vpc_clone",
            Address::DrCopy { .. } => "dr_copy",
            Address::IamRole { .. } => "iam_role",
            Address::ControlTarget { .. } => "control_target",
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Account { name } => write!(f, "account.{name}"),
            Address::Policy { name } => write!(f, "policy.{name}"),
            Address::Target { policy, id } => write!(f, "policy.{policy}.target[{id:?}]"),
            Address::Backup { policy, id } => write!(f, "backup.{policy}[{id:?}]"),
            Address::Snapshot { id } => write!(f, "snapshot[{id:?}]"),
            Address::Image { id } => write!(f, "image[{id:?}]"),
            Address::DbSnapshot { id } => write!(f, "db_snapshot[{id:?}]"),
            Address::DbClusterSnapshot { id } => write!(f, "db_cluster_snapshot[{id:?}]"),
            Address::VpcClone { name } => write!(f, "vpc_clone.{name}"),
            Address::DrCopy { policy, source, to } => {
                write!(f, "dr_copy.{policy}[{source:?}][{to:?}]")
            }
            Address::IamRole { account } => write!(f, "iam_role.{account}"),
            Address::ControlTarget { group, id } => {
                write!(f, "resource_control_group.{group}.target[{id:?}]")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAddressError(pub String);

impl fmt::Display for ParseAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an address; expected account.NAME, policy.NAME, policy.NAME.target[\"ID\"], backup.POLICY[\"ID\"], snapshot[\"ID\"], image[\"ID\"], db_snapshot[\"ID\"], db_cluster_snapshot[\"ID\"], vpc_clone.NAME, dr_copy.POLICY[\"SOURCE\"][\"REGION\"], iam_role.ACCOUNT or resource_control_group.GROUP.target[\"ID\"]",
            self.0
        )
    }
}

impl std::error::Error for ParseAddressError {}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// Splits `NAME["KEY"]` into its parts.
fn keyed(s: &str) -> Option<(&str, String)> {
    let open = s.find("[\"")?;
    let rest = s[open + 2..].strip_suffix("\"]")?;
    if rest.is_empty() || rest.contains('"') {
        return None;
    }
    Some((&s[..open], rest.to_string()))
}

/// Splits `HEAD["KEY"]` at its last key, for addresses with two keys.
fn keyed_last(s: &str) -> Option<(&str, String)> {
    let open = s.rfind("[\"")?;
    keyed(&s[open..]).map(|(_, k)| (&s[..open], k))
}

impl FromStr for Address {
    type Err = ParseAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseAddressError(s.to_string());
        if let Some(rest) = s.strip_prefix("account.") {
            return if is_name(rest) {
                Ok(Address::account(rest))
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("policy.") {
            if let Some((head, id)) = keyed(rest) {
                let policy = head.strip_suffix(".target").ok_or_else(err)?;
                return if is_name(policy) {
                    Ok(Address::Target {
                        policy: policy.into(),
                        id,
                    })
                } else {
                    Err(err())
                };
            }
            return if is_name(rest) {
                Ok(Address::policy(rest))
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("vpc_clone.") {
            return if is_name(rest) {
                Ok(Address::vpc_clone(rest))
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("iam_role.") {
            return if is_name(rest) {
                Ok(Address::iam_role(rest))
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("resource_control_group.") {
            let (head, id) = keyed(rest).ok_or_else(err)?;
            let group = head.strip_suffix(".target").ok_or_else(err)?;
            return if is_name(group) {
                Ok(Address::ControlTarget {
                    group: group.into(),
                    id,
                })
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("dr_copy.") {
            let (head, to) = keyed_last(rest).ok_or_else(err)?;
            let (policy, source) = keyed(head).ok_or_else(err)?;
            return if is_name(policy) {
                Ok(Address::DrCopy {
                    policy: policy.into(),
                    source,
                    to,
                })
            } else {
                Err(err())
            };
        }
        if let Some(rest) = s.strip_prefix("backup.") {
            let (policy, id) = keyed(rest).ok_or_else(err)?;
            return if is_name(policy) {
                Ok(Address::Backup {
                    policy: policy.into(),
                    id,
                })
            } else {
                Err(err())
            };
        }
        if let Some((head, id)) = keyed(s) {
            match head {
                "snapshot" => return Ok(Address::Snapshot { id }),
                "image" => return Ok(Address::Image { id }),
                "db_snapshot" => return Ok(Address::DbSnapshot { id }),
                "db_cluster_snapshot" => return Ok(Address::DbClusterSnapshot { id }),
                _ => {}
            }
        }
        Err(err())
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_form_round_trips() {
        for text in [
            "account.main",
            "policy.web",
            "policy.web.target[\"i-0123456789abcdef0\"]",
            "backup.web[\"2026-11-21T10:00:00Z\"]",
            "snapshot[\"snap-0123\"]",
            "image[\"ami-0123\"]",
            "db_snapshot[\"lifeboat-web-1\"]",
            "db_cluster_snapshot[\"lifeboat-web-1\"]",
            "vpc_clone.prod-west",
            "dr_copy.web[\"snap-0123\"][\"us-west-2\"]",
            "dr_copy.web[\"ami-0123\"][\"us-east-1:vault\"]",
            "iam_role.vault",
            "resource_control_group.nightly.target[\"i-0123\"]",
            "resource_control_group.nightly.target[\"rds:reporting\"]",
        ] {
            let a: Address = text.parse().unwrap();
            assert_eq!(a.to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for text in [
            "",
            "policy.",
            "policy.web.target[i-1]",
            "snapshot[\"\"]",
            "vault.x",
            "policy.we b",
            "vpc_clone.",
            "vpc_clone.a.b",
            "iam_role.",
            "iam_role.a.b",
        ] {
            assert!(text.parse::<Address>().is_err(), "{text} parsed");
        }
    }
}
