//! `network = vpc_clone.NAME`: each original subnet and security group
//! mapped to its counterpart in the clone.
//!
//! The clone was deployed from a captured VPC by its own stack (its state
//! says which VPC, where and under which stack name), and every subnet and
//! security group of the clone carries the id of the one it recreates in
//! `lifeboat:original-id`. One look at the clone's region reads them all;
//! a target whose subnet or group has no counterpart is a plan error, never
//! a guess.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::RecoveryError;
use crate::addr::Address;
use crate::cloud::network::RegionInventory;
use crate::cloud::Cloud;
use crate::restore::plan::Accounts;
use crate::state::SharedStore;
use crate::vpc::clone::CloneState;

use crate::vpc::export::TAG_ORIGINAL_ID;
/// On what a CloudFormation stack creates: the stack's name.
const TAG_STACK_NAME: &str = "aws:cloudformation:stack-name";

/// A clone's counterparts of the original VPC's subnets and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkMap {
    pub clone: String,
    /// The clone's VPC.
    pub vpc: String,
    /// Original subnet id -> the clone's.
    pub subnets: BTreeMap<String, String>,
    /// Original security group id -> the clone's.
    pub groups: BTreeMap<String, String>,
}

fn err(clone: &str, m: String) -> RecoveryError {
    RecoveryError::Network {
        clone: clone.to_string(),
        message: m,
    }
}

impl NetworkMap {
    /// The clone's maps, read from its region: the clone's VPC is the one
    /// recreating the captured VPC (under the clone's stack, when AWS tags
    /// it so).
    pub fn from_inventory(
        clone: &str,
        state: &CloneState,
        inv: &RegionInventory,
    ) -> Result<NetworkMap, RecoveryError> {
        let original = |t: &crate::cloud::Tags| t.get(TAG_ORIGINAL_ID).cloned();
        let candidates: Vec<_> = inv
            .vpcs
            .iter()
            .filter(|v| original(&v.tags).as_deref() == Some(state.vpc.as_str()))
            .collect();
        let ours: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|v| v.tags.get(TAG_STACK_NAME) == Some(&state.stack_name))
            .collect();
        let vpc = match (ours.as_slice(), candidates.as_slice()) {
            ([one], _) | ([], [one]) => one.id.clone(),
            ([], []) => {
                return Err(err(
                    clone,
                    format!(
                        "no VPC recreating {} in account {} ({}): is the clone deployed (lifeboat apply)?",
                        state.vpc, state.account, state.region
                    ),
                ))
            }
            _ => {
                return Err(err(
                    clone,
                    format!(
                        "several VPCs recreate {} in account {} ({}) and none is tagged with stack {}",
                        state.vpc, state.account, state.region, state.stack_name
                    ),
                ))
            }
        };
        let subnets = inv
            .subnets
            .iter()
            .filter(|s| s.vpc_id == vpc)
            .filter_map(|s| Some((original(&s.tags)?, s.id.clone())))
            .collect();
        let groups = inv
            .security_groups
            .iter()
            .filter(|g| g.vpc_id == vpc)
            .filter_map(|g| Some((original(&g.tags)?, g.id.clone())))
            .collect();
        Ok(NetworkMap {
            clone: clone.to_string(),
            vpc,
            subnets,
            groups,
        })
    }

    /// Reads clone `name`'s state and looks at its region.
    pub async fn load(
        cloud: &Arc<dyn Cloud>,
        store: &SharedStore,
        accounts: &Accounts,
        name: &str,
    ) -> Result<NetworkMap, RecoveryError> {
        let state: CloneState = {
            let mut st = store.lock().expect("state lock poisoned");
            st.load()?
                .object(&Address::vpc_clone(name))?
                .ok_or_else(|| {
                    err(
                        name,
                        "it is not deployed yet (run lifeboat apply first)".into(),
                    )
                })?
        };
        let account = accounts.get(&state.account).ok_or_else(|| {
            err(
                name,
                format!("account {} is not in the configuration", state.account),
            )
        })?;
        let inv = async {
            cloud
                .network(account, &state.region)
                .await?
                .inventory()
                .await
        }
        .await
        .map_err(|e| err(name, e.to_string()))?;
        NetworkMap::from_inventory(name, &state, &inv)
    }

    /// The clone's subnet for `original`.
    pub fn subnet(&self, original: &str) -> Result<String, String> {
        self.subnets.get(original).cloned().ok_or_else(|| {
            format!(
                "subnet {original} has no counterpart in vpc_clone.{} ({})",
                self.clone, self.vpc
            )
        })
    }

    /// The clone's groups for `originals`.
    pub fn groups(&self, originals: &[String]) -> Result<Vec<String>, String> {
        originals
            .iter()
            .map(|g| {
                self.groups.get(g).cloned().ok_or_else(|| {
                    format!(
                        "security group {g} has no counterpart in vpc_clone.{} ({})",
                        self.clone, self.vpc
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::network::{SecurityGroup, Subnet, Vpc};

    fn tags(pairs: &[(&str, &str)]) -> crate::cloud::Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn state() -> CloneState {
        CloneState {
            stack_name: "lifeboat-vpc-clone-west".into(),
            account: "main".into(),
            region: "us-west-2".into(),
            capture: "prod".into(),
            vpc: "vpc-0a".into(),
            source_region: "us-east-1".into(),
            version_id: 1,
            captured_at: chrono::Utc::now(),
            template_hash: String::new(),
            template: String::new(),
            resource_counts: BTreeMap::new(),
            template_bucket: None,
            timeout_seconds: 60,
        }
    }

    fn vpc(id: &str, t: &[(&str, &str)]) -> Vpc {
        Vpc {
            id: id.into(),
            tags: tags(t),
            ..Vpc::default()
        }
    }

    fn inventory() -> RegionInventory {
        RegionInventory {
            vpcs: vec![
                // An older clone of the same VPC by another stack.
                vpc(
                    "vpc-old",
                    &[
                        (TAG_ORIGINAL_ID, "vpc-0a"),
                        (TAG_STACK_NAME, "lifeboat-vpc-clone-old"),
                    ],
                ),
                vpc(
                    "vpc-c1",
                    &[
                        (TAG_ORIGINAL_ID, "vpc-0a"),
                        (TAG_STACK_NAME, "lifeboat-vpc-clone-west"),
                    ],
                ),
            ],
            subnets: vec![
                Subnet {
                    id: "subnet-c1".into(),
                    vpc_id: "vpc-c1".into(),
                    tags: tags(&[(TAG_ORIGINAL_ID, "subnet-0a")]),
                    ..Subnet::default()
                },
                Subnet {
                    id: "subnet-old".into(),
                    vpc_id: "vpc-old".into(),
                    tags: tags(&[(TAG_ORIGINAL_ID, "subnet-0b")]),
                    ..Subnet::default()
                },
            ],
            security_groups: vec![SecurityGroup {
                id: "sg-c1".into(),
                vpc_id: "vpc-c1".into(),
                tags: tags(&[(TAG_ORIGINAL_ID, "sg-0a")]),
                ..SecurityGroup::default()
            }],
            ..RegionInventory::default()
        }
    }

    #[test]
    fn subnets_and_groups_map_through_the_clone_of_this_stack_only() {
        let m = NetworkMap::from_inventory("west", &state(), &inventory()).unwrap();
        assert_eq!(m.vpc, "vpc-c1");
        assert_eq!(m.subnet("subnet-0a").unwrap(), "subnet-c1");
        // A subnet only the other clone recreates has no counterpart here.
        let e = m.subnet("subnet-0b").unwrap_err();
        assert!(e.contains("no counterpart in vpc_clone.west"), "{e}");
        assert_eq!(m.groups(&["sg-0a".into()]).unwrap(), vec!["sg-c1"]);
        assert!(m.groups(&["sg-0b".into()]).is_err());
    }

    #[test]
    fn a_clone_not_there_is_an_error() {
        let mut inv = inventory();
        inv.vpcs.clear();
        let e = NetworkMap::from_inventory("west", &state(), &inv).unwrap_err();
        assert!(e.to_string().contains("is the clone deployed"), "{e}");
    }
}
