//! IAM for the managed DR role and the secured-DR check, and STS
//! GetCallerIdentity for the principal a role trusts. IAM is global: the
//! client signs for us-east-1 whatever the account's regions.

use async_trait::async_trait;
use aws_sdk_iam::types::{AttachedPolicy, PolicyDetail, Tag};
use aws_sdk_iam::Client;
use lifeboat_engine::cloud::iam::{
    AuthorizationEntry, Iam, ManagedPolicy, PolicyText, PrincipalDetail, Role,
};
use lifeboat_engine::cloud::{CloudResult, ErrorKind, Page, Tags};

use crate::error::ErrorContext;

pub(crate) struct AwsIam {
    client: Client,
    sts: aws_sdk_sts::Client,
    ctx: ErrorContext,
}

impl AwsIam {
    pub(crate) fn new(client: Client, sts: aws_sdk_sts::Client, ctx: ErrorContext) -> Self {
        Self { client, sts, ctx }
    }
}

fn texts(list: &[PolicyDetail]) -> Vec<PolicyText> {
    list.iter()
        .map(|p| PolicyText {
            name: p.policy_name().unwrap_or_default().to_owned(),
            document: p.policy_document().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn arns(list: &[AttachedPolicy]) -> Vec<String> {
    list.iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect()
}

#[async_trait]
impl Iam for AwsIam {
    async fn caller_arn(&self) -> CloudResult<String> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.ctx.sdk("sts:GetCallerIdentity", None, &e))?;
        out.arn().map(str::to_owned).ok_or_else(|| {
            self.ctx.error(
                ErrorKind::Other,
                "sts:GetCallerIdentity",
                None,
                None,
                "the answer carried no ARN".to_owned(),
            )
        })
    }

    async fn get_role(&self, name: &str) -> CloudResult<Option<Role>> {
        let out = match self.client.get_role().role_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = self.ctx.sdk("iam:GetRole", Some(name), &e);
                return match err.kind {
                    ErrorKind::NotFound => Ok(None),
                    _ => Err(err),
                };
            }
        };
        Ok(out.role().map(|r| Role {
            name: r.role_name().to_owned(),
            arn: r.arn().to_owned(),
            trust_document: r
                .assume_role_policy_document()
                .unwrap_or_default()
                .to_owned(),
        }))
    }

    async fn create_role(
        &self,
        name: &str,
        trust_document: &str,
        description: &str,
        tags: &Tags,
    ) -> CloudResult<Role> {
        let mut req = self
            .client
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_document)
            .description(description);
        for (k, v) in tags {
            let tag = Tag::builder().key(k).value(v).build().map_err(|e| {
                self.ctx.error(
                    ErrorKind::Invalid,
                    "iam:CreateRole",
                    Some(name),
                    None,
                    e.to_string(),
                )
            })?;
            req = req.tags(tag);
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.ctx.sdk("iam:CreateRole", Some(name), &e))?;
        let r = out.role();
        Ok(Role {
            name: r.map_or(name, |r| r.role_name()).to_owned(),
            arn: r.map(|r| r.arn().to_owned()).unwrap_or_default(),
            trust_document: trust_document.to_owned(),
        })
    }

    async fn update_trust(&self, name: &str, trust_document: &str) -> CloudResult<()> {
        self.client
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_document)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("iam:UpdateAssumeRolePolicy", Some(name), &e))?;
        Ok(())
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> CloudResult<Option<String>> {
        match self
            .client
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.policy_document().to_owned())),
            Err(e) => {
                let err = self.ctx.sdk("iam:GetRolePolicy", Some(role), &e);
                match err.kind {
                    ErrorKind::NotFound => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> CloudResult<()> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| self.ctx.sdk("iam:PutRolePolicy", Some(role), &e))?;
        Ok(())
    }

    async fn authorization_details_page(
        &self,
        token: Option<String>,
    ) -> CloudResult<Page<AuthorizationEntry>> {
        let action = "iam:GetAccountAuthorizationDetails";
        let out = self
            .client
            .get_account_authorization_details()
            .set_marker(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, None, &e))?;
        let mut items = Vec::new();
        for u in out.user_detail_list() {
            items.push(AuthorizationEntry::User(PrincipalDetail {
                name: u.user_name().unwrap_or_default().to_owned(),
                arn: u.arn().unwrap_or_default().to_owned(),
                inline: texts(u.user_policy_list()),
                attached: arns(u.attached_managed_policies()),
                groups: u.group_list().to_vec(),
            }));
        }
        for g in out.group_detail_list() {
            items.push(AuthorizationEntry::Group(PrincipalDetail {
                name: g.group_name().unwrap_or_default().to_owned(),
                arn: g.arn().unwrap_or_default().to_owned(),
                inline: texts(g.group_policy_list()),
                attached: arns(g.attached_managed_policies()),
                groups: Vec::new(),
            }));
        }
        for r in out.role_detail_list() {
            items.push(AuthorizationEntry::Role(PrincipalDetail {
                name: r.role_name().unwrap_or_default().to_owned(),
                arn: r.arn().unwrap_or_default().to_owned(),
                inline: texts(r.role_policy_list()),
                attached: arns(r.attached_managed_policies()),
                groups: Vec::new(),
            }));
        }
        for p in out.policies() {
            let default = p.default_version_id();
            let document = p
                .policy_version_list()
                .iter()
                .find(|v| {
                    v.is_default_version() || (default.is_some() && v.version_id() == default)
                })
                .and_then(|v| v.document().map(str::to_owned));
            items.push(AuthorizationEntry::Policy(ManagedPolicy {
                name: p.policy_name().unwrap_or_default().to_owned(),
                arn: p.arn().unwrap_or_default().to_owned(),
                document,
            }));
        }
        // A list that says it goes on without saying where would read as
        // complete: an account could look clean for want of its last pages.
        let next = match (out.is_truncated(), out.marker()) {
            (false, _) => None,
            (true, Some(m)) if !m.is_empty() => Some(m.to_owned()),
            (true, _) => {
                return Err(self.ctx.error(
                    ErrorKind::Other,
                    action,
                    None,
                    None,
                    "the answer says more entries follow but gives no marker to ask for them"
                        .to_owned(),
                ))
            }
        };
        Ok(Page {
            items,
            next,
            call: self.ctx.call(action),
        })
    }
}
