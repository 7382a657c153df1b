//! The fake's IAM: roles with their inline policies, each account's
//! authorization details, and the ARN each account's credentials act as.
//! GetAccountAuthorizationDetails is paged (`page_size` entries a page),
//! which the emulator never does.

use async_trait::async_trait;

use super::*;
use crate::cloud::iam::{AuthorizationEntry, Iam, Role};

/// IAM in the fake's world, per account name.
#[derive(Debug, Default)]
pub struct IamWorld {
    /// Roles by (account, role name).
    pub roles: BTreeMap<(String, String), FakeRole>,
    /// What GetAccountAuthorizationDetails returns, by account.
    pub details: BTreeMap<String, Vec<AuthorizationEntry>>,
    /// The ARN each account's credentials act as (default: an IAM user
    /// `lifeboat` in the account's id).
    pub callers: BTreeMap<String, String>,
}

/// A role and its inline policies (by name).
#[derive(Debug, Clone, Default)]
pub struct FakeRole {
    pub arn: String,
    pub trust: String,
    pub policies: BTreeMap<String, String>,
    pub tags: Tags,
}

pub(super) struct FakeIam {
    pub(super) world: Arc<Mutex<World>>,
    pub(super) page_size: usize,
    pub(super) account: String,
}

impl FakeIam {
    /// Counts the call, and fails it when the world says so.
    fn enter(&self, action: &str) -> CloudResult<std::sync::MutexGuard<'_, World>> {
        let mut w = self.world.lock().expect("fake world");
        w.calls.push(format!("{action} global"));
        if let Some(kind) = w.failing.get(action) {
            return Err(CloudError {
                kind: *kind,
                account: self.account.clone(),
                region: "global".into(),
                action: format!("iam:{action}"),
                resource: None,
                code: None,
                message: "failing on demand".into(),
            });
        }
        Ok(w)
    }

    fn id(&self, w: &World) -> String {
        w.account_ids
            .get(&self.account)
            .cloned()
            .unwrap_or_else(|| FAKE_ACCOUNT_ID.to_string())
    }

    fn key(&self, name: &str) -> (String, String) {
        (self.account.clone(), name.to_string())
    }
}

#[async_trait]
impl Iam for FakeIam {
    async fn caller_arn(&self) -> CloudResult<String> {
        let w = self.enter("GetCallerIdentity")?;
        Ok(match w.iam.callers.get(&self.account) {
            Some(arn) => arn.clone(),
            None => format!("arn:aws:iam::{}:user/lifeboat", self.id(&w)),
        })
    }

    async fn get_role(&self, name: &str) -> CloudResult<Option<Role>> {
        let w = self.enter("GetRole")?;
        Ok(w.iam.roles.get(&self.key(name)).map(|r| Role {
            name: name.to_string(),
            arn: r.arn.clone(),
            trust_document: r.trust.clone(),
        }))
    }

    async fn create_role(
        &self,
        name: &str,
        trust_document: &str,
        _description: &str,
        tags: &Tags,
    ) -> CloudResult<Role> {
        let mut w = self.enter("CreateRole")?;
        let arn = format!("arn:aws:iam::{}:role/{name}", self.id(&w));
        if w.iam.roles.contains_key(&self.key(name)) {
            return Err(CloudError {
                kind: ErrorKind::Conflict,
                account: self.account.clone(),
                region: "global".into(),
                action: "iam:CreateRole".into(),
                resource: Some(name.into()),
                code: Some("EntityAlreadyExists".into()),
                message: "the role exists".into(),
            });
        }
        w.iam.roles.insert(
            self.key(name),
            FakeRole {
                arn: arn.clone(),
                trust: trust_document.to_string(),
                policies: BTreeMap::new(),
                tags: tags.clone(),
            },
        );
        Ok(Role {
            name: name.to_string(),
            arn,
            trust_document: trust_document.to_string(),
        })
    }

    async fn update_trust(&self, name: &str, trust_document: &str) -> CloudResult<()> {
        let mut w = self.enter("UpdateAssumeRolePolicy")?;
        let key = self.key(name);
        match w.iam.roles.get_mut(&key) {
            Some(r) => {
                r.trust = trust_document.to_string();
                Ok(())
            }
            None => Err(self.missing("iam:UpdateAssumeRolePolicy", name)),
        }
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> CloudResult<Option<String>> {
        let w = self.enter("GetRolePolicy")?;
        Ok(w.iam
            .roles
            .get(&self.key(role))
            .and_then(|r| r.policies.get(policy).cloned()))
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> CloudResult<()> {
        let mut w = self.enter("PutRolePolicy")?;
        let key = self.key(role);
        match w.iam.roles.get_mut(&key) {
            Some(r) => {
                r.policies.insert(policy.to_string(), document.to_string());
                Ok(())
            }
            None => Err(self.missing("iam:PutRolePolicy", role)),
        }
    }

    async fn authorization_details_page(
        &self,
        token: Option<String>,
    ) -> CloudResult<Page<AuthorizationEntry>> {
        let w = self.enter("GetAccountAuthorizationDetails")?;
        let all = w
            .iam
            .details
            .get(&self.account)
            .cloned()
            .unwrap_or_default();
        let start: usize = token.as_deref().map_or(0, |t| t.parse().unwrap_or(0));
        let end = (start + self.page_size).min(all.len());
        Ok(Page {
            items: all[start.min(end)..end].to_vec(),
            next: (end < all.len()).then(|| end.to_string()),
            call: Call {
                account: self.account.clone(),
                region: "global".into(),
                action: "iam:GetAccountAuthorizationDetails".into(),
            },
        })
    }
}

impl FakeIam {
    fn missing(&self, action: &str, role: &str) -> CloudError {
        CloudError {
            kind: ErrorKind::NotFound,
            account: self.account.clone(),
            region: "global".into(),
            action: action.into(),
            resource: Some(role.into()),
            code: Some("NoSuchEntity".into()),
            message: "no such role".into(),
        }
    }
}
