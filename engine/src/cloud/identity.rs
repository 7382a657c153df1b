//! Which AWS account an account's credentials reach. A profile edited, a
//! role ARN pointed elsewhere or an environment with other keys would
//! otherwise make Lifeboat look at an account that holds none of its
//! snapshots: a plan would then forget the catalog and remove targets as
//! gone. So before the first client of an account is handed out, the id
//! its credentials resolve to is held to its `account_id` pin, or to the id
//! recorded when the account was first used (recorded then): on a
//! mismatch, every client request for that account fails with
//! [`ErrorKind::WrongAccount`], naming the account and both ids, before
//! any list, create or delete call.
//!
//! [`CheckedCloud`] wraps the cloud the binary hands to the engine, so every
//! command that reaches AWS goes through [`hold_to`]. Cost: one STS call
//! per account per process (the providers cache the id) and one state read.
//! It also puts the configuration's external id back into an account read
//! from the state, which keeps only its digest (`external_id`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use lifeboat_schema::{Account, Config};
use tokio::sync::OnceCell;

use super::external_id::{ExternalIds, IdSource};
use super::{
    Cloud, CloudError, CloudResult, Ec2, ErrorKind, Kms, Network, Objects, Rds, Sns, Stacks,
};
use crate::state::{Expected, SharedStore};

/// Holds `account` to the id its credentials reach (`actual`): `pin`, or
/// the id recorded in the state, which is recorded on first use.
pub fn hold_to(
    store: &SharedStore,
    account: &Account,
    pin: Option<&str>,
    actual: &str,
) -> CloudResult<()> {
    let region = account.regions.first().cloned().unwrap_or_default();
    let failed = |kind, message: String| CloudError {
        kind,
        account: account.name.clone(),
        region: region.clone(),
        action: "sts:GetCallerIdentity".into(),
        resource: None,
        code: None,
        message,
    };
    let held = store
        .lock()
        .expect("store")
        .hold_account_id(&account.name, pin, actual, Utc::now());
    match held {
        Ok(Ok(())) => Ok(()),
        Ok(Err(expected)) => {
            let why = match &expected {
                Expected::Pinned(id) => format!("is pinned to AWS account {id} (account_id)"),
                Expected::Recorded(id) => {
                    format!("was recorded in the state as AWS account {id} when first used")
                }
            };
            Err(failed(
                ErrorKind::WrongAccount,
                format!(
                    "the credentials of account {:?} reach AWS account {actual}, but it {why}; refusing to act in it (check its profile, role and environment; to move it on purpose, set account_id = \"{actual}\")",
                    account.name
                ),
            ))
        }
        Err(e) => Err(failed(
            ErrorKind::Other,
            format!("cannot check the account's id against the state: {e}"),
        )),
    }
}

/// What an account's credentials, and the check of the AWS account they
/// reach, are kept by: its name and how they are made (profile, role, the
/// external id's digest). A runner that takes up an applied change of role
/// or id then makes new credentials and checks them again, rather than
/// keep the old ones or trust the new ones unchecked.
pub fn credentials_key(account: &Account) -> String {
    let sealed = super::external_id::sealed_account(account);
    format!(
        "{}\n{:?}\n{:?}",
        account.name, account.profile, sealed.assume_role
    )
}

/// A [`Cloud`] that hands out an account's clients only once [`hold_to`]
/// accepted the id its credentials reach; checked once per account per
/// process.
pub struct CheckedCloud {
    inner: Arc<dyn Cloud>,
    store: SharedStore,
    /// The pins of the configured accounts, by name. The configuration is
    /// what counts, also for an account whose applied copy in the state
    /// (which backups and runs use) does not have the pin yet.
    pins: BTreeMap<String, Option<String>>,
    /// By [`credentials_key`]: the accepted id. A failed check is not kept, so a
    /// transient STS failure is retried (the providers cache the id itself).
    checked: std::sync::Mutex<BTreeMap<String, Arc<OnceCell<String>>>>,
    /// The configuration's external ids: an account read from the state
    /// has its role's id only as a digest (`external_id`).
    ids: ExternalIds,
}

impl CheckedCloud {
    pub fn new(inner: Arc<dyn Cloud>, store: SharedStore, config: &Config) -> CheckedCloud {
        CheckedCloud {
            inner,
            store,
            pins: config
                .accounts
                .iter()
                .map(|(name, a)| (name.clone(), a.account_id.clone()))
                .collect(),
            checked: Default::default(),
            ids: ExternalIds::new(config),
        }
    }

    /// Also looks for external ids in `source` when an account from the
    /// state matches none of the configuration's (`external_id`).
    pub fn with_id_source(mut self, source: IdSource) -> CheckedCloud {
        self.ids = std::mem::take(&mut self.ids).with_source(source);
        self
    }

    /// The pin of `account`: the configuration's, or for an account no
    /// longer configured, its own.
    fn pin<'a>(&'a self, account: &'a Account) -> Option<&'a str> {
        match self.pins.get(&account.name) {
            Some(pin) => pin.as_deref(),
            None => account.account_id.as_deref(),
        }
    }

    /// `account` with its external id in clear, once its credentials were
    /// found to reach the AWS account it is held to.
    async fn verified<'a>(&self, account: &'a Account) -> CloudResult<Cow<'a, Account>> {
        let account = self.ids.resolve(account)?;
        self.check(&account).await?;
        Ok(account)
    }

    async fn check(&self, account: &Account) -> CloudResult<String> {
        let cell = self
            .checked
            .lock()
            .expect("checked accounts")
            .entry(credentials_key(account))
            .or_default()
            .clone();
        let id = cell
            .get_or_try_init(|| async {
                let actual = self.inner.account_id(account).await?;
                hold_to(&self.store, account, self.pin(account), &actual)?;
                Ok::<_, CloudError>(actual)
            })
            .await?;
        Ok(id.clone())
    }
}

#[async_trait]
impl Cloud for CheckedCloud {
    async fn account_id(&self, account: &Account) -> CloudResult<String> {
        let account = self.ids.resolve(account)?;
        self.check(&account).await
    }

    async fn ec2(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Ec2>> {
        let account = self.verified(account).await?;
        self.inner.ec2(&account, region).await
    }

    async fn rds(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Rds>> {
        let account = self.verified(account).await?;
        self.inner.rds(&account, region).await
    }

    async fn network(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Network>> {
        let account = self.verified(account).await?;
        self.inner.network(&account, region).await
    }

    async fn stacks(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Stacks>> {
        let account = self.verified(account).await?;
        self.inner.stacks(&account, region).await
    }

    async fn objects(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Objects>> {
        let account = self.verified(account).await?;
        self.inner.objects(&account, region).await
    }

    async fn sns(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Sns>> {
        let account = self.verified(account).await?;
        self.inner.sns(&account, region).await
    }

    async fn kms(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Kms>> {
        let account = self.verified(account).await?;
        self.inner.kms(&account, region).await
    }

    async fn iam(&self, account: &Account) -> CloudResult<Arc<dyn super::iam::Iam>> {
        let account = self.verified(account).await?;
        self.inner.iam(&account).await
    }

    async fn launch(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn super::restore::Launch>> {
        let account = self.verified(account).await?;
        self.inner.launch(&account, region).await
    }

    async fn databases(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn super::restore::Databases>> {
        let account = self.verified(account).await?;
        self.inner.databases(&account, region).await
    }

    async fn power(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn super::power::Power>> {
        let account = self.verified(account).await?;
        self.inner.power(&account, region).await
    }
}
