//! [`AwsCloud`]: credentials per account, one EC2 client per (account, region).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;
use lifeboat_engine::cloud::calls::CallCounts;
use lifeboat_engine::cloud::iam::Iam;
use lifeboat_engine::cloud::identity::credentials_key;
use lifeboat_engine::cloud::restore::{Databases, Launch};
use lifeboat_engine::cloud::{
    Cloud, CloudResult, Ec2, ErrorKind, Kms, Network, Objects, Rds, Sns, Stacks,
};
use lifeboat_schema::Account;
use tokio::sync::{Mutex, OnceCell};

use crate::counting::Counting;
use crate::ec2::AwsEc2;
use crate::error::ErrorContext;
use crate::kms::AwsKms;
use crate::sns::AwsSns;
use crate::stacks::{AwsObjects, AwsStacks};
use crate::vpc::AwsNetwork;

/// Attempts per call (the first one included) unless overridden.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Environment variable overriding [`DEFAULT_MAX_ATTEMPTS`]. Tests set it to
/// 1: the emulator answers unimplemented calls with a (retryable) HTTP 500.
pub const MAX_ATTEMPTS_ENV: &str = "LIFEBOAT_AWS_MAX_ATTEMPTS";

/// The AWS SDKs' own variables, honoured when [`MAX_ATTEMPTS_ENV`] is not set.
pub const AWS_MAX_ATTEMPTS_ENV: &str = "AWS_MAX_ATTEMPTS";
pub const AWS_RETRY_MODE_ENV: &str = "AWS_RETRY_MODE";

/// How the SDK retries a call: its mode and attempts (the first included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    pub adaptive: bool,
    pub max_attempts: u32,
}

impl RetrySettings {
    /// The settings the environment asks for, given the values of
    /// [`MAX_ATTEMPTS_ENV`], [`AWS_MAX_ATTEMPTS_ENV`] and
    /// [`AWS_RETRY_MODE_ENV`]: attempts from the first of the two that is a
    /// positive whole number, else [`DEFAULT_MAX_ATTEMPTS`]; `adaptive` mode
    /// (client-side rate limiting on top of standard) when asked for,
    /// standard for anything else, as the SDKs themselves do.
    pub fn resolve(
        lifeboat_attempts: Option<&str>,
        aws_attempts: Option<&str>,
        aws_mode: Option<&str>,
    ) -> RetrySettings {
        let attempts = |v: Option<&str>| v?.trim().parse::<u32>().ok().filter(|n| *n > 0);
        RetrySettings {
            adaptive: aws_mode.is_some_and(|m| m.trim().eq_ignore_ascii_case("adaptive")),
            max_attempts: attempts(lifeboat_attempts)
                .or_else(|| attempts(aws_attempts))
                .unwrap_or(DEFAULT_MAX_ATTEMPTS),
        }
    }

    /// The settings of this process's environment (see [`Self::resolve`]).
    pub fn from_env() -> RetrySettings {
        let var = |name: &str| std::env::var(name).ok();
        RetrySettings::resolve(
            var(MAX_ATTEMPTS_ENV).as_deref(),
            var(AWS_MAX_ATTEMPTS_ENV).as_deref(),
            var(AWS_RETRY_MODE_ENV).as_deref(),
        )
    }

    /// The SDK's retry configuration for these settings: backoff with
    /// jitter, retrying throttling, 5xx and transient transport errors.
    pub fn config(self) -> RetryConfig {
        let base = if self.adaptive {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        base.with_max_attempts(self.max_attempts.max(1))
    }
}

/// Session name used for assumed roles when the configuration names none;
/// it shows in the target account's CloudTrail.
const DEFAULT_SESSION_NAME: &str = "lifeboat";

/// The engine's [`Cloud`] on the AWS SDK.
///
/// Cheap to create: nothing is loaded until an account is first used. Each
/// account's credentials are built once and shared by all its regions (the
/// SDK's identity cache refreshes assumed-role credentials before they
/// expire); each (account, region) gets one client, reused by every caller.
pub struct AwsCloud {
    retry: RetrySettings,
    /// By [`credentials_key`]. The lock is held while an account is loaded so
    /// that concurrent first uses do not build (and assume) twice.
    accounts: Mutex<HashMap<String, Arc<AccountSession>>>,
    /// By ([`credentials_key`], region).
    clients: Mutex<HashMap<(String, String), Arc<AwsEc2>>>,
    /// Every request of every client made here, counted (run mode's metrics).
    calls: Arc<CallCounts>,
}

/// One configured account: its SDK configuration (credentials included) and
/// its id once known.
struct AccountSession {
    config: SdkConfig,
    /// From STS GetCallerIdentity; only cached once it succeeded.
    account_id: OnceCell<String>,
    assumes_role: bool,
    /// Where the credentials come from, for error messages.
    credentials: String,
}

impl Default for AwsCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl AccountSession {
    /// What every client of this account in `region` says when a call fails.
    fn context(&self, account: &Account, region: &str) -> ErrorContext {
        ErrorContext {
            account: account.name.clone(),
            region: region.to_owned(),
            assumes_role: self.assumes_role,
            credentials: self.credentials.clone(),
        }
    }
}

impl AwsCloud {
    /// Reads the retry settings from the environment (see
    /// [`RetrySettings::resolve`]).
    pub fn new() -> Self {
        Self::with_retry(RetrySettings::from_env())
    }

    /// A fixed attempt budget per call (at least 1) in standard mode,
    /// ignoring the environment.
    pub fn with_max_attempts(max_attempts: u32) -> Self {
        Self::with_retry(RetrySettings {
            adaptive: false,
            max_attempts,
        })
    }

    fn with_retry(retry: RetrySettings) -> Self {
        Self {
            retry: RetrySettings {
                max_attempts: retry.max_attempts.max(1),
                ..retry
            },
            accounts: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            calls: Arc::default(),
        }
    }

    /// The requests this cloud's clients sent so far, per service and
    /// action (with throttles), counted as they are made.
    pub fn calls(&self) -> Arc<CallCounts> {
        self.calls.clone()
    }

    /// What every client built here carries: the count of its requests.
    fn counting(&self) -> Counting {
        Counting(self.calls.clone())
    }

    async fn session(&self, account: &Account) -> Arc<AccountSession> {
        let mut accounts = self.accounts.lock().await;
        let key = credentials_key(account);
        if let Some(s) = accounts.get(&key) {
            return s.clone();
        }
        let session = Arc::new(self.load_account(account).await);
        accounts.insert(key, session.clone());
        session
    }

    /// Builds an account's configuration. Loading does not call AWS: bad
    /// credentials surface on the first call (GetCallerIdentity).
    async fn load_account(&self, account: &Account) -> AccountSession {
        // The account's first region decides where STS is called (and so
        // the partition); the environment and profile are the fallback.
        let region =
            RegionProviderChain::first_try(account.regions.first().cloned().map(Region::new))
                .or_default_provider()
                .or_else(Region::from_static("us-east-1"))
                .region()
                .await;
        AccountSession {
            config: account_config(Some(account), region, self.retry).await,
            account_id: OnceCell::new(),
            assumes_role: account.assume_role.is_some(),
            credentials: credentials_source(Some(account)),
        }
    }

    /// The (account, region) EC2 client, made once: backups and restores
    /// share it.
    async fn ec2_client(&self, account: &Account, region: &str) -> CloudResult<Arc<AwsEc2>> {
        let key = (credentials_key(account), region.to_owned());
        if let Some(c) = self.clients.lock().await.get(&key) {
            return Ok(c.clone());
        }
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        // Resolved here rather than on first use: it checks the account's
        // credentials once, up front, and the snapshot filter needs it.
        let account_id = self.resolve_account_id(&session, &ctx).await?;
        let conf = aws_sdk_ec2::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        let ec2 = Arc::new(AwsEc2::new(
            aws_sdk_ec2::Client::from_conf(conf),
            ctx,
            account_id,
        ));
        let mut clients = self.clients.lock().await;
        // A concurrent caller may have won the race; keep the first client.
        let c = clients.entry(key).or_insert(ec2).clone();
        Ok(c)
    }

    async fn resolve_account_id(
        &self,
        session: &AccountSession,
        ctx: &ErrorContext,
    ) -> CloudResult<String> {
        let id = session
            .account_id
            .get_or_try_init(|| async {
                let conf = aws_sdk_sts::config::Builder::from(&session.config)
                    .interceptor(self.counting())
                    .build();
                let sts = aws_sdk_sts::Client::from_conf(conf);
                let out = sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| ctx.sdk("sts:GetCallerIdentity", None, &e))?;
                out.account().map(str::to_owned).ok_or_else(|| {
                    ctx.error(
                        ErrorKind::Other,
                        "sts:GetCallerIdentity",
                        None,
                        None,
                        "the answer carried no account id".to_owned(),
                    )
                })
            })
            .await?;
        Ok(id.clone())
    }
}

#[async_trait]
impl Cloud for AwsCloud {
    async fn account_id(&self, account: &Account) -> CloudResult<String> {
        let session = self.session(account).await;
        let region = account.regions.first().map_or("", String::as_str);
        let ctx = session.context(account, region);
        self.resolve_account_id(&session, &ctx).await
    }

    async fn ec2(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Ec2>> {
        Ok(self.ec2_client(account, region).await?)
    }

    /// The cached EC2 client of the account and region (see `launch.rs`).
    async fn launch(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Launch>> {
        Ok(self.ec2_client(account, region).await?)
    }

    /// Not cached, as [`Cloud::rds`]: a restore opens one per region.
    async fn databases(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Databases>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_rds::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(crate::rds::AwsRds::new(
            aws_sdk_rds::Client::from_conf(conf),
            ctx,
        )))
    }

    /// The cached EC2 client and a new RDS one: an operation opens one per region.
    async fn power(
        &self,
        account: &Account,
        region: &str,
    ) -> CloudResult<Arc<dyn lifeboat_engine::cloud::power::Power>> {
        let ec2 = self.ec2_client(account, region).await?;
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_rds::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        let rds = crate::rds::AwsRds::new(aws_sdk_rds::Client::from_conf(conf), ctx);
        Ok(Arc::new(crate::power::AwsPower { ec2, rds }))
    }

    /// Not cached: a capture reads each region once.
    async fn network(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Network>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let account_id = self.resolve_account_id(&session, &ctx).await?;
        let conf = aws_sdk_ec2::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(AwsNetwork::new(
            aws_sdk_ec2::Client::from_conf(conf),
            ctx,
            account_id,
        )))
    }

    /// Not cached: a clone's apply uses one stack client.
    async fn stacks(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Stacks>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_cloudformation::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(AwsStacks::new(
            aws_sdk_cloudformation::Client::from_conf(conf),
            ctx,
        )))
    }

    /// Not cached: a backup opens one per region.
    async fn rds(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Rds>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_rds::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(crate::rds::AwsRds::new(
            aws_sdk_rds::Client::from_conf(conf),
            ctx,
        )))
    }

    /// Path-style addressing when an endpoint is configured (the emulator
    /// has no per-bucket host names).
    async fn objects(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Objects>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_s3::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .force_path_style(session.config.endpoint_url().is_some())
            .interceptor(self.counting())
            .build();
        // Every put names the owner it expects (the account's own id), so a
        // bucket name taken over by another account gets nothing.
        let owner = self.resolve_account_id(&session, &ctx).await?;
        Ok(Arc::new(AwsObjects::new(
            aws_sdk_s3::Client::from_conf(conf),
            ctx,
            owner,
        )))
    }

    /// Not cached: a plan, an apply or a check opens one per account. IAM
    /// is global: signed for its partition's home region (us-east-1 in the
    /// commercial partition) whatever the account's regions.
    async fn iam(&self, account: &Account) -> CloudResult<Arc<dyn Iam>> {
        let session = self.session(account).await;
        let ctx = session.context(account, "global");
        let home = match account.regions.first().map(String::as_str) {
            Some(r) if r.starts_with("cn-") => "cn-north-1",
            Some(r) if r.starts_with("us-gov-") => "us-gov-west-1",
            _ => "us-east-1",
        };
        let conf = aws_sdk_iam::config::Builder::from(&session.config)
            .region(Region::new(home))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(crate::iam::AwsIam::new(
            aws_sdk_iam::Client::from_conf(conf),
            aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&session.config)
                    .interceptor(self.counting())
                    .build(),
            ),
            ctx,
        )))
    }

    /// Not cached: a copy reads the aliases of a region once.
    async fn kms(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Kms>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_kms::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(AwsKms::new(
            aws_sdk_kms::Client::from_conf(conf),
            ctx,
        )))
    }

    /// Not cached: only alert notifications open one.
    async fn sns(&self, account: &Account, region: &str) -> CloudResult<Arc<dyn Sns>> {
        let session = self.session(account).await;
        let ctx = session.context(account, region);
        let conf = aws_sdk_sns::config::Builder::from(&session.config)
            .region(Region::new(region.to_owned()))
            .interceptor(self.counting())
            .build();
        Ok(Arc::new(AwsSns::new(
            aws_sdk_sns::Client::from_conf(conf),
            ctx,
        )))
    }
}

/// The SDK configuration for `account` (the default credential chain when
/// `None`) in `region` (else the environment's), with the given retries. Loading does not call AWS.
/// Shared by [`AwsCloud`] and the DynamoDB state backend, so that both reach
/// an account the same way.
pub(crate) async fn account_config(
    account: Option<&Account>,
    region: Option<Region>,
    retry: RetrySettings,
) -> SdkConfig {
    // Set explicitly (the SDK would read AWS_MAX_ATTEMPTS itself, but not
    // LIFEBOAT_AWS_MAX_ATTEMPTS, and an explicit config overrides both).
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .retry_config(retry.config());
    if let Some(profile) = account.and_then(|a| a.profile.as_ref()) {
        // The profile's credentials and nothing else: the default chain
        // would prefer AWS_ACCESS_KEY_ID & co. from the environment and
        // silently act in whatever account those belong to.
        let provider_config = ProviderConfig::default().with_region(region);
        let credentials = ProfileFileCredentialsProvider::builder()
            .profile_name(profile)
            .configure(&provider_config)
            .build();
        loader = loader
            .profile_name(profile)
            .credentials_provider(credentials);
    }
    // `defaults` reads AWS_ENDPOINT_URL into the shared configuration, so
    // every client made from it, STS included, uses it.
    let base = loader.load().await;

    match account.and_then(|a| a.assume_role.as_ref()) {
        None => base,
        Some(role) => {
            let mut builder = AssumeRoleProvider::builder(&role.role_arn)
                .session_name(role.session_name.as_deref().unwrap_or(DEFAULT_SESSION_NAME))
                .configure(&base);
            if let Some(external_id) = &role.external_id {
                builder = builder.external_id(external_id);
            }
            let provider = builder.build().await;
            base.into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
    }
}

/// Where `account`'s credentials come from, for messages: names only.
pub(crate) fn credentials_source(account: Option<&Account>) -> String {
    let source = match account.and_then(|a| a.profile.as_ref()) {
        Some(p) => format!("profile {p:?}"),
        None => "the default credential chain".to_owned(),
    };
    match account.and_then(|a| a.assume_role.as_ref()) {
        Some(role) => format!("role {} (base credentials: {source})", role.role_arn),
        None => source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::retry::RetryMode;

    fn resolve(lifeboat: Option<&str>, aws: Option<&str>, mode: Option<&str>) -> (bool, u32) {
        let r = RetrySettings::resolve(lifeboat, aws, mode);
        (r.adaptive, r.max_attempts)
    }

    #[test]
    fn attempts_come_from_lifeboat_then_aws_then_the_default() {
        assert_eq!(resolve(None, None, None), (false, DEFAULT_MAX_ATTEMPTS));
        assert_eq!(resolve(None, Some("7"), None), (false, 7));
        assert_eq!(resolve(Some("1"), Some("7"), None), (false, 1));
        assert_eq!(resolve(Some(" 5 "), None, None), (false, 5));
        // What is not a positive whole number does not count.
        assert_eq!(resolve(Some("0"), Some("7"), None), (false, 7));
        assert_eq!(resolve(Some("many"), Some("-2"), None), (false, 3));
        assert_eq!(resolve(None, Some("99999999999"), None), (false, 3));
    }

    #[test]
    fn the_retry_mode_is_adaptive_only_when_asked() {
        assert_eq!(resolve(None, None, Some("adaptive")), (true, 3));
        assert_eq!(resolve(Some("4"), None, Some(" Adaptive")), (true, 4));
        for mode in ["standard", "legacy", "", "fast"] {
            assert_eq!(resolve(None, None, Some(mode)), (false, 3), "{mode:?}");
        }
        let c = RetrySettings::resolve(None, Some("6"), Some("adaptive")).config();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Adaptive, 6));
        let c = RetrySettings::resolve(None, None, None).config();
        assert_eq!((c.mode(), c.max_attempts()), (RetryMode::Standard, 3));
    }
}
