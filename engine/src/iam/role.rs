//! The managed DR role (`manage_role` in a DR account): its two documents,
//! what AWS has of it (observation, read only), the plan's change at
//! `iam_role.ACCOUNT`, and apply.
//!
//! Trusted is exactly one principal, the one the trusted account's own
//! credentials act as: its `assume_role` role ARN when it has one (path
//! included), otherwise the ARN STS GetCallerIdentity returns for its
//! credentials, an assumed-role session turned into its role's ARN (a
//! session ARN cannot be trusted, and it changes with every session). A
//! federated user cannot be trusted by ARN: the plan says so and plans
//! nothing for that role.
//!
//! Removing `manage_role` makes Lifeboat forget the role, never delete it:
//! a deleted role would lock out whatever still uses it, Lifeboat's own
//! copies included.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_schema::{Account, Config, ManageRole};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::document;
use super::needs::{actions, Feature};
use crate::addr::Address;
use crate::cloud::{Cloud, CloudResult, Tags};
use crate::plan::apply::ApplyError;
use crate::plan::{Action, Change, Effect};
use crate::state;

/// The name of the role's inline policy.
pub const POLICY_NAME: &str = "lifeboat-dr";

/// The tag CreateRole puts on the role: which Lifeboat account keeps it.
pub const TAG_MANAGED_ROLE: &str = "lifeboat:managed-role";

/// The state value of `iam_role.ACCOUNT`: the role as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    /// The DR account (by name) the role is in.
    pub account: String,
    pub role: String,
    /// The account (by name) trusted, and the principal ARN trusted.
    pub trusted_account: String,
    pub trusted_principal: String,
    /// The trust document, canonical.
    pub trust: Value,
    /// The inline policy [`POLICY_NAME`], canonical; null when the role
    /// has none.
    pub permissions: Value,
}

/// What AWS has for one account's `manage_role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleObservation {
    /// The principal to trust, or why the trusted account's cannot be.
    pub trusted_principal: Result<String, String>,
    /// The role, when it exists.
    pub live: Option<LiveRole>,
}

/// A role as read from AWS, its documents canonical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRole {
    pub arn: String,
    pub trust: Value,
    /// Null when the role has no inline policy [`POLICY_NAME`].
    pub permissions: Value,
}

/// The ARN to trust for credentials that act as `caller`, or why it cannot
/// be trusted.
pub fn principal_of(caller: &str) -> Result<String, String> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, _service, _, id, resource] = parts.as_slice() else {
        return Err(format!("{caller:?} is not an ARN"));
    };
    if *resource == "root" {
        // A trust policy naming an account's root trusts every principal
        // of that account whose own policy allows sts:AssumeRole, not the
        // root user alone: far more than the one principal Lifeboat runs as.
        return Err(format!(
            "its credentials are the root user of account {id}, and a role trusting arn:{partition}:iam::{id}:root trusts every principal of that account; give the account a profile of an IAM user or an assume_role"
        ));
    }
    if let Some(user) = resource.strip_prefix("user/") {
        return Ok(format!("arn:{partition}:iam::{id}:user/{user}"));
    }
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let role = rest.split('/').next().unwrap_or_default();
        if !role.is_empty() {
            return Ok(format!("arn:{partition}:iam::{id}:role/{role}"));
        }
    }
    if let Some(role) = resource.strip_prefix("role/") {
        return Ok(format!("arn:{partition}:iam::{id}:role/{role}"));
    }
    Err(format!(
        "its credentials act as {caller}, which a role cannot trust by ARN; give the account a profile of an IAM user or an assume_role"
    ))
}

/// The retention deletes of every kind of copy.
const DELETES: [Feature; 4] = [
    Feature::DeleteSnapshots,
    Feature::DeleteImages,
    Feature::DeleteDbSnapshots,
    Feature::DeleteDbClusterSnapshots,
];

/// The actions of `features`, sorted, each once.
fn union(features: &[Feature]) -> Vec<&'static str> {
    let set: std::collections::BTreeSet<&str> = features
        .iter()
        .flat_map(|f| actions(*f).iter().copied())
        .collect();
    set.into_iter().collect()
}

/// The trust document: `principal` alone may assume the role.
pub fn trust_document(principal: &str) -> Value {
    document::canonical(&json!({
        "Version": document::VERSION,
        "Statement": [{
            "Sid": "LifeboatTrusted",
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
        }],
    }))
}

/// The role's permissions: copy, describe and tag, the KMS use of
/// encrypted copies, the identity check; the deletes of retention only
/// when the account allows deletion.
pub fn permission_document(allow_delete: bool) -> Value {
    // The role serves every policy copying into the account: every kind.
    let copy = union(&[
        Feature::DrCopySnapshots,
        Feature::DrCopyImages,
        Feature::DrCopyDbSnapshots,
        Feature::DrCopyDbClusterSnapshots,
        Feature::DrLock,
        Feature::Identity,
    ]);
    let mut statements = vec![
        json!({
            "Sid": "LifeboatCopy",
            "Effect": "Allow",
            "Action": copy,
            "Resource": "*",
        }),
        json!({
            "Sid": "LifeboatKms",
            "Effect": "Allow",
            "Action": actions(Feature::DrKms)
                .iter()
                .filter(|a| **a != "kms:CreateGrant")
                .collect::<Vec<_>>(),
            "Resource": "*",
        }),
        // Grants only for the AWS services that copy on Lifeboat's behalf
        // (EBS, RDS): never a grant of the vault's keys to anyone else.
        json!({
            "Sid": "LifeboatKmsGrants",
            "Effect": "Allow",
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        }),
    ];
    if allow_delete {
        statements.push(json!({
            "Sid": "LifeboatRetention",
            "Effect": "Allow",
            "Action": union(&DELETES),
            "Resource": "*",
        }));
    }
    document::canonical(&json!({"Version": document::VERSION, "Statement": statements}))
}

/// A document read from AWS, canonical; one that does not read is kept as
/// its text, so that it differs from any wanted document.
fn read_document(text: &str) -> Value {
    document::parse(text).map_or_else(|_| Value::String(text.into()), |v| document::canonical(&v))
}

/// Reads, for every account with `manage_role`, the principal to trust and
/// the role as it is: one GetCallerIdentity of the trusted account (none
/// when it assumes a role), GetRole and GetRolePolicy in the DR account.
pub async fn observe(
    cloud: &Arc<dyn Cloud>,
    config: &Config,
    accounts: &BTreeMap<String, Account>,
) -> CloudResult<BTreeMap<String, RoleObservation>> {
    let mut out = BTreeMap::new();
    for (name, a) in &config.accounts {
        let Some(m) = &a.manage_role else { continue };
        let Some(trusted) = accounts.get(&m.trusted) else {
            continue;
        };
        let trusted_principal = match &trusted.assume_role {
            Some(r) => Ok(r.role_arn.clone()),
            None => principal_of(&cloud.iam(trusted).await?.caller_arn().await?),
        };
        let iam = cloud.iam(a).await?;
        let live = match iam.get_role(&m.name).await? {
            None => None,
            Some(role) => {
                let permissions = iam.get_role_policy(&m.name, POLICY_NAME).await?;
                Some(LiveRole {
                    arn: role.arn,
                    trust: read_document(&role.trust_document),
                    permissions: permissions.as_deref().map_or(Value::Null, read_document),
                })
            }
        };
        out.insert(
            name.clone(),
            RoleObservation {
                trusted_principal,
                live,
            },
        );
    }
    Ok(out)
}

fn to_value(s: &RoleState) -> Value {
    serde_json::to_value(s).expect("role state serialises")
}

/// The plan's changes for managed roles: create a missing role, update
/// documents that differ, forget a role whose `manage_role` went.
pub fn changes(
    config: &Config,
    snapshot: &state::Snapshot,
    observed: &BTreeMap<String, RoleObservation>,
    warnings: &mut Vec<String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, a) in &config.accounts {
        let Some(m) = &a.manage_role else { continue };
        match role_change(name, a, m, snapshot, observed.get(name)) {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    for addr in snapshot.objects.keys() {
        let Address::IamRole { account } = addr else {
            continue;
        };
        let managed = config
            .accounts
            .get(account)
            .is_some_and(|a| a.manage_role.is_some());
        if !managed {
            out.push(
                Change::new(addr.clone(), Action::Delete, Effect::Control)
                    .reason("manage_role removed: Lifeboat forgets the role and leaves it in AWS")
                    .before(snapshot.objects.get(addr).map(state::StoredValue::value)),
            );
        }
    }
    out
}

fn role_change(
    name: &str,
    a: &Account,
    m: &ManageRole,
    snapshot: &state::Snapshot,
    observed: Option<&RoleObservation>,
) -> Result<Option<Change>, String> {
    let addr = Address::iam_role(name);
    let not_planned = |why: String| format!("{addr} is not planned: {why}");
    let prior = snapshot
        .object::<RoleState>(&addr)
        .map_err(|e| not_planned(e.to_string()))?;
    let Some(obs) = observed else {
        return Err(not_planned(format!(
            "account {} is neither configured nor in state",
            m.trusted
        )));
    };
    let principal = obs
        .trusted_principal
        .clone()
        .map_err(|why| not_planned(format!("the trusted account {}: {why}", m.trusted)))?;
    let want = RoleState {
        account: name.to_string(),
        role: m.name.clone(),
        trusted_account: m.trusted.clone(),
        trusted_principal: principal.clone(),
        trust: trust_document(&principal),
        permissions: permission_document(a.allow_delete),
    };
    let deps = vec![Address::account(name), Address::account(&m.trusted)];
    let change = match &obs.live {
        None => {
            let why = match &prior {
                Some(p) if p.role == want.role => "missing from AWS: created again".to_string(),
                _ => format!("trusted by {principal}"),
            };
            Change::new(addr, Action::Create, Effect::Control)
                .reason(format!("role {} in account {name}, {why}", want.role))
                .before(prior.as_ref().map(to_value))
                .after(Some(to_value(&want)))
        }
        Some(live) => {
            let is = RoleState {
                trusted_principal: prior
                    .as_ref()
                    .map_or_else(String::new, |p| p.trusted_principal.clone()),
                trust: live.trust.clone(),
                permissions: live.permissions.clone(),
                ..want.clone()
            };
            let what = match (is.trust != want.trust, is.permissions != want.permissions) {
                (true, true) => Some("trust and permission documents differ"),
                (true, false) => Some("trust document differs"),
                (false, true) => Some("permission document differs"),
                (false, false) if prior.as_ref() == Some(&want) => return Ok(None),
                (false, false) => None,
            };
            let reason = match what {
                Some(what) => format!("{what} from role {} in AWS", want.role),
                None => "AWS has the role as wanted: recorded in state".to_string(),
            };
            Change::new(addr, Action::Update, Effect::Control)
                .reason(reason)
                .before(Some(to_value(&is)))
                .after(Some(to_value(&want)))
        }
    };
    Ok(Some(change.depends_on(deps)))
}

/// Performs a managed role's change; returns the value to record (`None`:
/// forget it). Creating a role that exists updates it instead, so an apply
/// run again after an interruption succeeds.
pub async fn perform(
    cloud: &Arc<dyn Cloud>,
    accounts: &BTreeMap<String, Account>,
    c: &Change,
) -> Result<Option<Value>, ApplyError> {
    if c.action == Action::Delete {
        return Ok(None);
    }
    let after = c.after.clone().ok_or(ApplyError::NoValue)?;
    let want: RoleState =
        serde_json::from_value(after.clone()).map_err(|source| ApplyError::Decode {
            address: c.address.clone(),
            source,
        })?;
    let account = accounts
        .get(&want.account)
        .ok_or_else(|| ApplyError::UnknownAccount(want.account.clone()))?;
    let iam = cloud.iam(account).await?;
    let trust = document::text(&want.trust);
    match iam.get_role(&want.role).await? {
        None => {
            let tags = Tags::from([(TAG_MANAGED_ROLE.to_string(), want.account.clone())]);
            let description = format!(
                "Lifeboat DR copies into account {}, assumed by account {}",
                want.account, want.trusted_account
            );
            iam.create_role(&want.role, &trust, &description, &tags)
                .await?;
        }
        Some(_) => iam.update_trust(&want.role, &trust).await?,
    }
    iam.put_role_policy(&want.role, POLICY_NAME, &document::text(&want.permissions))
        .await?;
    Ok(Some(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_trusted_is_the_one_the_credentials_act_as() {
        let ok = [
            (
                "arn:aws:iam::111122223333:user/ops/lifeboat",
                "arn:aws:iam::111122223333:user/ops/lifeboat",
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/backup/session-1",
                "arn:aws:iam::111122223333:role/backup",
            ),
            (
                "arn:aws-us-gov:sts::111122223333:assumed-role/r/s",
                "arn:aws-us-gov:iam::111122223333:role/r",
            ),
            // The emulator answers static keys as an STS user.
            (
                "arn:aws:sts::123456789012:user/moto",
                "arn:aws:iam::123456789012:user/moto",
            ),
        ];
        for (caller, want) in ok {
            assert_eq!(principal_of(caller).unwrap(), want, "{caller}");
        }
        assert!(principal_of("arn:aws:sts::111122223333:federated-user/bob").is_err());
        assert!(
            principal_of("arn:aws:iam::111122223333:root").is_err(),
            "an account root would trust the whole account"
        );
        assert!(principal_of("nonsense").is_err());
    }

    #[test]
    fn delete_actions_only_where_deletion_is_allowed() {
        let deletes = union(&DELETES);
        let without = super::super::needs::actions_of(&permission_document(false));
        let with = super::super::needs::actions_of(&permission_document(true));
        assert!(deletes.iter().all(|d| !without.contains(*d)));
        assert!(deletes.iter().all(|d| with.contains(*d)));
        assert!(without.contains("ec2:CopySnapshot") && without.contains("sts:GetCallerIdentity"));
    }

    #[test]
    fn documents_are_canonical_and_stable() {
        let a = document::text(&trust_document("arn:aws:iam::111122223333:user/x"));
        assert_eq!(
            a,
            r#"{"Statement":[{"Action":["sts:AssumeRole"],"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/x"]},"Sid":"LifeboatTrusted"}],"Version":"2012-10-17"}"#
        );
        assert_eq!(permission_document(true), permission_document(true));
    }
}
