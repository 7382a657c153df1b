//! The IAM port: the managed DR role and the account's authorization
//! details for the secured-DR check. IAM is global: one client per account,
//! whatever its regions.
//!
//! Policy documents are returned as AWS sent them (IAM answers them
//! URL-encoded); [`crate::iam::document::parse`] reads either form.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CloudResult, Page, Tags};

/// A role as GetRole reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub arn: String,
    /// The trust (assume-role) policy document, as AWS sent it.
    pub trust_document: String,
}

/// A policy document with its name: an inline policy, or a managed
/// policy's default version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyText {
    pub name: String,
    pub document: String,
}

/// A user, group or role of GetAccountAuthorizationDetails.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalDetail {
    pub name: String,
    pub arn: String,
    pub inline: Vec<PolicyText>,
    /// ARNs of the attached managed policies.
    pub attached: Vec<String>,
    /// Users only: the names of the groups the user is in.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A managed policy of GetAccountAuthorizationDetails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub arn: String,
    /// The default version's document; `None` when AWS sent none.
    pub document: Option<String>,
}

/// One entry of a GetAccountAuthorizationDetails page: AWS pages the four
/// lists together, so a page holds some of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum AuthorizationEntry {
    User(PrincipalDetail),
    Group(PrincipalDetail),
    Role(PrincipalDetail),
    Policy(ManagedPolicy),
}

/// IAM (and the caller's identity) with one account's credentials.
#[async_trait]
pub trait Iam: Send + Sync {
    /// STS GetCallerIdentity with these credentials: the ARN they act as
    /// (a user, a role session, the root).
    async fn caller_arn(&self) -> CloudResult<String>;
    /// GetRole; `None` when the role does not exist.
    async fn get_role(&self, name: &str) -> CloudResult<Option<Role>>;
    /// CreateRole with its trust document, description and tags.
    async fn create_role(
        &self,
        name: &str,
        trust_document: &str,
        description: &str,
        tags: &Tags,
    ) -> CloudResult<Role>;
    /// UpdateAssumeRolePolicy.
    async fn update_trust(&self, name: &str, trust_document: &str) -> CloudResult<()>;
    /// GetRolePolicy; `None` when the role has no inline policy of that name.
    async fn get_role_policy(&self, role: &str, policy: &str) -> CloudResult<Option<String>>;
    /// PutRolePolicy: creates or replaces the inline policy.
    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> CloudResult<()>;
    /// One page of GetAccountAuthorizationDetails (users, groups, roles and
    /// managed policies); follow it with [`super::collect_pages`].
    async fn authorization_details_page(
        &self,
        token: Option<String>,
    ) -> CloudResult<Page<AuthorizationEntry>>;
}
