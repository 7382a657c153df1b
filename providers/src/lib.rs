//! AWS access for Lifeboat: the implementation of the engine's cloud traits
//! ([`lifeboat_engine::cloud::Cloud`], [`lifeboat_engine::cloud::Ec2`]) on
//! the official AWS SDK.
//!
//! This crate owns four things and nothing else:
//! - **Credentials per account.** [`AwsCloud`] builds each configured
//!   account's credentials once (default chain, a named profile, or an
//!   assumed role layered on either) and caches them, together with the
//!   account's own id (STS GetCallerIdentity) and one EC2 client per
//!   (account, region).
//! - **Translation.** Each trait method is exactly one SDK call whose answer
//!   is converted into the engine's own types; nothing here issues follow-up
//!   calls per resource, so the cost of a plan stays proportional to pages.
//!   The exceptions: CopyImage and RegisterImage tag the image with
//!   CreateTags as well (see `ec2.rs`, `launch.rs`); a page of Aurora
//!   clusters' shapes reads their members' classes with DescribeDBInstances
//!   (`databases.rs`); what a restore made is listed to its last page.
//! - **The one place SDK errors are mapped** to [`CloudError`] (see the
//!   `error` module): by AWS error code and HTTP status into an
//!   [`ErrorKind`], with the account name, region, action and resource.
//!
//! - **The DynamoDB state backend** ([`DynamoRemote`]): the engine's
//!   shared-state port (`state::remote::Remote`) on one DynamoDB table, and
//!   the table's creation and checks (`lifeboat state init`). Its layout is
//!   documented in the `dynamo` module.
//!
//! It never decides anything: which targets to back up, when to retry
//! beyond the SDK's own retries, what a failure means for a policy — that is
//! the engine's job, tested there with in-memory fakes. Only the binary
//! depends on this crate; the schema and engine crates must never import
//! it, so that they stay testable without AWS.
//!
//! Environment: the SDK's standard variables apply (credentials,
//! `AWS_PROFILE`, `AWS_ENDPOINT_URL` — which is how tests point everything,
//! STS included, at the emulator). `LIFEBOAT_AWS_MAX_ATTEMPTS`, then
//! `AWS_MAX_ATTEMPTS`, set the number of attempts per call (default 3), and
//! `AWS_RETRY_MODE=adaptive` the adaptive retry mode (standard otherwise:
//! jittered exponential backoff).
//!
//! Credentials are never logged, printed or put into an error message.
//!
//! [`CloudError`]: lifeboat_engine::cloud::CloudError
//! [`ErrorKind`]: lifeboat_engine::cloud::ErrorKind

mod cloud;
mod convert;
mod counting;
mod databases;
mod dynamo;
mod ec2;
mod error;
mod iam;
mod kms;
mod launch;
mod power;
mod rds;
mod sns;
mod stacks;
mod vpc;

pub use cloud::{
    AwsCloud, RetrySettings, AWS_MAX_ATTEMPTS_ENV, AWS_RETRY_MODE_ENV, DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS_ENV,
};
pub use dynamo::{DynamoRemote, TableReport};
