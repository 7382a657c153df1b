//! `network = vpc_clone.NAME`: each original subnet and security group
//! mapped to its counterpart in the clone.
//!
//! The clone was deployed from a captured VPC by its own stack (its state
//! says which VPC, where and under which stack name), and every subnet and
//! security group of the clone carries the id of the one it recreates in
//! `lifeboat:original-id`. One look at the clone's region reads them all;
//! only what carries the clone's stack tag counts. A target whose subnet or
//! group has no counterpart, or has two, is a plan error, never a guess.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::RecoveryError;
use crate::addr::Address;
use crate::cloud::network::RegionInventory;
use crate::cloud::{Cloud, Tags};
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

/// Original id -> the clone's, from `(id, tags)` of one kind of resource
/// in the clone's VPC; two claiming the same original is an error naming
/// both (which one the stack made cannot be told apart).
fn counterparts<'a>(
    clone: &str,
    noun: &str,
    items: impl Iterator<Item = (&'a str, &'a Tags)>,
) -> Result<BTreeMap<String, String>, RecoveryError> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (id, tags) in items {
        let Some(original) = tags.get(TAG_ORIGINAL_ID) else {
            continue;
        };
        if let Some(first) = out.get(original) {
            return Err(err(
                clone,
                format!(
                    "{noun}s {first} and {id} both recreate {original} ({TAG_ORIGINAL_ID}): remove the one that is not the clone's"
                ),
            ));
        }
        out.insert(original.clone(), id.to_string());
    }
    Ok(out)
}

impl NetworkMap {
    /// The clone's maps, read from its region. Only what carries the
    /// clone's stack tag is a candidate: anyone may tag a VPC, subnet or
    /// group with `lifeboat:original-id` (an older clone, a copy by hand),
    /// but the stack tag is AWS's, on what the clone's stack made.
    pub fn from_inventory(
        clone: &str,
        state: &CloneState,
        inv: &RegionInventory,
    ) -> Result<NetworkMap, RecoveryError> {
        let ours = |t: &Tags| t.get(TAG_STACK_NAME) == Some(&state.stack_name);
        let vpcs: Vec<&str> = inv
            .vpcs
            .iter()
            .filter(|v| ours(&v.tags))
            .filter(|v| v.tags.get(TAG_ORIGINAL_ID) == Some(&state.vpc))
            .map(|v| v.id.as_str())
            .collect();
        let vpc = match vpcs.as_slice() {
            [one] => one.to_string(),
            [] => {
                return Err(err(
                    clone,
                    format!(
                        "no VPC of stack {} recreates {} in account {} ({}): is the clone deployed (lifeboat apply)?",
                        state.stack_name, state.vpc, state.account, state.region
                    ),
                ))
            }
            several => {
                return Err(err(
                    clone,
                    format!(
                        "VPCs {} of stack {} all recreate {}: remove the ones that are not the clone's",
                        several.join(", "),
                        state.stack_name,
                        state.vpc
                    ),
                ))
            }
        };
        let subnets = counterparts(
            clone,
            "subnet",
            inv.subnets
                .iter()
                .filter(|s| s.vpc_id == vpc && ours(&s.tags))
                .map(|s| (s.id.as_str(), &s.tags)),
        )?;
        let groups = counterparts(
            clone,
            "security group",
            inv.security_groups
                .iter()
                .filter(|g| g.vpc_id == vpc && ours(&g.tags))
                .map(|g| (g.id.as_str(), &g.tags)),
        )?;
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

    const WEST: &str = "lifeboat-vpc-clone-west";
    const OLD: &str = "lifeboat-vpc-clone-old";

    fn subnet(id: &str, vpc: &str, original: &str, stack: &str) -> Subnet {
        Subnet {
            id: id.into(),
            vpc_id: vpc.into(),
            tags: tags(&[(TAG_ORIGINAL_ID, original), (TAG_STACK_NAME, stack)]),
            ..Subnet::default()
        }
    }

    fn inventory() -> RegionInventory {
        RegionInventory {
            vpcs: vec![
                // An older clone of the same VPC by another stack.
                vpc(
                    "vpc-old",
                    &[(TAG_ORIGINAL_ID, "vpc-0a"), (TAG_STACK_NAME, OLD)],
                ),
                vpc(
                    "vpc-c1",
                    &[(TAG_ORIGINAL_ID, "vpc-0a"), (TAG_STACK_NAME, WEST)],
                ),
            ],
            subnets: vec![
                subnet("subnet-c1", "vpc-c1", "subnet-0a", WEST),
                subnet("subnet-old", "vpc-old", "subnet-0b", OLD),
            ],
            security_groups: vec![SecurityGroup {
                id: "sg-c1".into(),
                vpc_id: "vpc-c1".into(),
                tags: tags(&[(TAG_ORIGINAL_ID, "sg-0a"), (TAG_STACK_NAME, WEST)]),
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

    #[test]
    fn what_lacks_the_clones_stack_tag_is_never_a_candidate() {
        // The only VPC recreating the original was not made by the stack.
        let mut inv = inventory();
        inv.vpcs.retain(|v| v.id == "vpc-c1");
        inv.vpcs[0].tags.remove(TAG_STACK_NAME);
        let e = NetworkMap::from_inventory("west", &state(), &inv).unwrap_err();
        assert!(
            e.to_string()
                .contains("no VPC of stack lifeboat-vpc-clone-west"),
            "{e}"
        );
        // A subnet in the clone's VPC, tagged by hand and not by the stack.
        let mut inv = inventory();
        let mut hand = subnet("subnet-hand", "vpc-c1", "subnet-0z", WEST);
        hand.tags.remove(TAG_STACK_NAME);
        inv.subnets.push(hand);
        let m = NetworkMap::from_inventory("west", &state(), &inv).unwrap();
        assert!(m.subnet("subnet-0z").is_err());
        assert_eq!(m.subnet("subnet-0a").unwrap(), "subnet-c1");
    }

    #[test]
    fn two_resources_recreating_one_original_is_an_error_naming_both() {
        let mut inv = inventory();
        inv.subnets
            .push(subnet("subnet-c2", "vpc-c1", "subnet-0a", WEST));
        let e = NetworkMap::from_inventory("west", &state(), &inv)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("subnet-c1 and subnet-c2 both recreate subnet-0a"),
            "{e}"
        );
        let mut inv = inventory();
        let mut twin = inv.vpcs[1].clone();
        twin.id = "vpc-c2".into();
        inv.vpcs.push(twin);
        let e = NetworkMap::from_inventory("west", &state(), &inv)
            .unwrap_err()
            .to_string();
        assert!(e.contains("VPCs vpc-c1, vpc-c2 of stack"), "{e}");
    }
}
