//! The engine's shared-state port ([`Remote`]) on DynamoDB: one table, any
//! number of workspaces in it.
//!
//! # Table layout
//!
//! One table, string partition key `pk` and string sort key `sk`:
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | head | `ws#<W>` | `head` | `rev` (N), `schema` (N), `updated` (S, RFC 3339), `snapshot` (N) |
//! | hold | `ws#<W>` | `hold#lock`, `hold#lease` | `id`, `holder`, `operation`, `acquired`, `expires`, `holder_id` (S), `epoch` (N) |
//! | log | `ws#<W>#log` | `<rev, 20 digits>#<chunk, 4 digits>` | `changes` (S), `chunks` (N); or `staged` (S) and `chunks` (N) |
//! | staged chunk | `ws#<W>#stage` | `<commit id>#<chunk, 4 digits>` | `changes` (S), `expires_at` (N, epoch seconds, the table's TTL) |
//! | snapshot | `ws#<W>#snap` | `<rev, 20 digits>#<chunk, 4 digits>` | `changes` (S: the live rows), `chunks` (N) |
//!
//! A commit's rows are one JSON array (`[RowChange, ...]`) cut into pieces
//! of at most [`log::CHUNK_BYTES`] bytes at character boundaries; the
//! `changes` of its chunks, concatenated in chunk order, are that array. It
//! is cut as text rather than by rows so that a single large row (a
//! network capture) fits too.
//!
//! A commit is one `TransactWriteItems`: the head update conditioned on
//! `rev = base`, one `ConditionCheck` per hold in the fence (`id = :id`),
//! and the log chunks. A commit too large for one transaction (100 items,
//! 4 MB) first writes its chunks as staged items, invisible because no log
//! item names them, then publishes them with a transaction whose single log
//! item points at the staged commit id; afterwards the staged chunks lose
//! their expiry. Stopping after any step leaves either nothing visible
//! (the TTL removes the orphans within a day or two) or the whole commit.
//!
//! Compaction (`DynamoRemote::compact`, see the `compact` module) folds
//! the log into a snapshot named by the head's `snapshot` and deletes the
//! log before it; a reader whose revision the log no longer reaches finds
//! a hole at the start of its query and reads the snapshot instead.
//!
//! A hold item outlives its release: releasing removes the holder's
//! attributes and keeps `epoch`, so the next take counts on from it.
//!
//! Every read is strongly consistent: the log is the truth of the state and
//! a runner must never act on a stale head.
//!
//! # Calls
//!
//! The port is synchronous and is called from inside the engine's tokio
//! runtime, under a mutex; the SDK is async. So each [`DynamoRemote`] owns
//! a thread with a runtime of its own and sends it one request at a time
//! (blocking on the caller's runtime would panic). The thread ends when the
//! remote is dropped.

mod compact;
mod holds;
mod log;
mod pull;
mod table;
mod worker;

use std::future::Future;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_types::region::Region;
use lifeboat_engine::state::remote::{
    Fence, HoldKind, HoldRecord, Pull, Remote, RemoteError, RowChange,
};
use lifeboat_schema::Account;

use crate::cloud::{account_config, credentials_source, RetrySettings};
use crate::error::ErrorContext;

pub use table::TableReport;

/// Where the remote lives, for every message and every key.
#[derive(Debug, Clone)]
struct Place {
    table: String,
    region: String,
    workspace: String,
    /// How a failed call names the account and its credentials.
    ctx: ErrorContext,
}

impl Place {
    fn describe(&self) -> String {
        format!(
            "dynamodb table {} ({}), workspace {}",
            self.table, self.region, self.workspace
        )
    }

    /// The advice for a table that is not there, whichever call found out.
    fn missing_table(&self) -> RemoteError {
        RemoteError::Failed(format!(
            "table {} does not exist in {}: run `lifeboat state init`",
            self.table, self.region
        ))
    }

    /// A failed SDK call as the engine reports it: table, region,
    /// workspace, account and action, then AWS's code and message (never
    /// credentials: [`ErrorContext`] names their source only).
    fn fail<E>(&self, action: &str, err: &SdkError<E, HttpResponse>) -> RemoteError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let e = self.ctx.sdk(&format!("dynamodb:{action}"), None, err);
        // moto says TableNotFoundException where AWS says
        // ResourceNotFoundException (TransactWriteItems of a missing table).
        if matches!(
            e.code.as_deref(),
            Some("ResourceNotFoundException" | "TableNotFoundException")
        ) {
            return self.missing_table();
        }
        let reason = match &e.code {
            Some(code) => format!("{code}: {}", e.message),
            None => e.message.clone(),
        };
        RemoteError::Failed(format!(
            "{} failed on {} (account {}): {reason}",
            e.action,
            self.describe(),
            self.ctx.account
        ))
    }

    /// A failure of ours (bad data in the table), said the same way.
    fn broken(&self, what: impl std::fmt::Display) -> RemoteError {
        RemoteError::Failed(format!("{}: {what}", self.describe()))
    }

    fn ws_pk(&self) -> AttributeValue {
        AttributeValue::S(format!("ws#{}", self.workspace))
    }

    fn log_pk(&self) -> AttributeValue {
        AttributeValue::S(format!("ws#{}#log", self.workspace))
    }

    fn stage_pk(&self) -> AttributeValue {
        AttributeValue::S(format!("ws#{}#stage", self.workspace))
    }

    fn snap_pk(&self) -> AttributeValue {
        AttributeValue::S(format!("ws#{}#snap", self.workspace))
    }
}

/// What the worker thread's requests share: the client and the place.
struct Inner {
    client: Client,
    place: Place,
}

/// A workspace in a DynamoDB table, as the engine's [`Remote`].
pub struct DynamoRemote {
    inner: Arc<Inner>,
    worker: worker::Worker,
}

impl DynamoRemote {
    /// A remote on `table` for `workspace`, reached with `config` (its
    /// region is the table's). Makes no call: a missing table or bad
    /// credentials show on the first one (see [`DynamoRemote::check`]).
    pub fn new(config: SdkConfig, table: &str, workspace: &str) -> Result<Self, RemoteError> {
        let worker = worker::Worker::start()?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let ctx = ErrorContext {
            account: "(default credentials)".to_owned(),
            region: region.clone(),
            assumes_role: false,
            credentials: credentials_source(None),
        };
        Ok(Self::with_worker(worker, config, table, workspace, ctx))
    }

    /// A remote on `table` in `region` for `workspace`, with the
    /// credentials of a configured `account` (profile, assumed role) or of
    /// the default chain when `None`. `AWS_ENDPOINT_URL` points it at the
    /// emulator as it does every other client.
    pub fn open(
        account: Option<&Account>,
        region: &str,
        table: &str,
        workspace: &str,
    ) -> Result<Self, RemoteError> {
        let worker = worker::Worker::start()?;
        let (account_owned, region_owned) = (account.cloned(), region.to_owned());
        let config = worker
            .run(async move { sdk_config(account_owned.as_ref(), &region_owned).await })
            .ok_or_else(|| RemoteError::Failed("the DynamoDB worker thread stopped".to_owned()))?;
        let ctx = ErrorContext {
            account: account.map_or_else(|| "(default credentials)".to_owned(), |a| a.name.clone()),
            region: region.to_owned(),
            assumes_role: account.is_some_and(|a| a.assume_role.is_some()),
            credentials: credentials_source(account),
        };
        Ok(Self::with_worker(worker, config, table, workspace, ctx))
    }

    fn with_worker(
        worker: worker::Worker,
        config: SdkConfig,
        table: &str,
        workspace: &str,
        ctx: ErrorContext,
    ) -> Self {
        let place = Place {
            table: table.to_owned(),
            region: ctx.region.clone(),
            workspace: workspace.to_owned(),
            ctx,
        };
        let inner = Arc::new(Inner {
            client: Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config)
                    .timeout_config(state_timeouts())
                    .build(),
            ),
            place,
        });
        DynamoRemote { inner, worker }
    }

    /// Runs `f` on the worker thread and waits for its answer.
    fn call<T, F, Fut>(&self, f: F) -> Result<T, RemoteError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RemoteError>> + Send + 'static,
    {
        self.worker.run(f(self.inner.clone())).unwrap_or_else(|| {
            Err(self
                .inner
                .place
                .broken("the DynamoDB worker thread stopped (it panicked; see above)"))
        })
    }

    /// Creates the table when it is missing (on-demand billing, deletion
    /// protection, point-in-time recovery, TTL on `expires_at`) and waits
    /// until it is active; checks an existing one and reports what is off,
    /// changing it only when `repair` is set. A table with another key
    /// schema is an error.
    pub fn init_table(&self, repair: bool) -> Result<TableReport, RemoteError> {
        self.call(move |inner| async move { table::init(&inner, repair).await })
    }
}

/// Bounds on every state call: a call that hangs (a dropped connection, a
/// stalled endpoint) must fail well inside a lease's life, or the runner
/// would hold the store, and miss its renewals, for as long as it hangs.
fn state_timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(8))
        .operation_timeout(std::time::Duration::from_secs(20))
        .build()
}

/// The SDK configuration for the state table: `account`'s credentials (the
/// default chain when `None`) in `region`, with the retries the
/// environment asks for (see [`RetrySettings::resolve`]).
pub async fn sdk_config(account: Option<&Account>, region: &str) -> SdkConfig {
    let retry = RetrySettings::from_env();
    account_config(account, Some(Region::new(region.to_owned())), retry).await
}

impl Remote for DynamoRemote {
    fn incarnation(&self) -> Result<String, RemoteError> {
        self.call(|inner| async move { table::incarnation(&inner).await })
    }

    fn compact(&self) -> Result<Option<u64>, RemoteError> {
        self.call(|inner| async move { compact::compact(&inner).await })
    }

    fn describe(&self) -> String {
        self.inner.place.describe()
    }

    fn schema(&self) -> Result<i64, RemoteError> {
        self.call(|inner| async move { Ok(log::read_head(&inner).await?.schema) })
    }

    fn head(&self) -> Result<u64, RemoteError> {
        self.call(|inner| async move { Ok(log::read_head(&inner).await?.rev) })
    }

    fn pull(&self, since: u64) -> Result<Pull, RemoteError> {
        self.call(move |inner| async move { pull::pull(&inner, since).await })
    }

    fn commit(
        &self,
        base: u64,
        schema: i64,
        fence: &Fence,
        changes: &[RowChange],
    ) -> Result<u64, RemoteError> {
        // Encoded here, on the caller's thread, so that only text crosses.
        let chunks = log::encode(changes).map_err(|e| self.inner.place.broken(e))?;
        let fence = fence.clone();
        self.call(
            move |inner| async move { log::commit(&inner, base, schema, &fence, chunks).await },
        )
    }

    fn hold(&self, kind: HoldKind) -> Result<Option<HoldRecord>, RemoteError> {
        self.call(move |inner| async move { holds::read(&inner, kind).await.map(|h| h.record) })
    }

    fn take_hold(
        &self,
        kind: HoldKind,
        new: &HoldRecord,
        replacing: Option<&HoldRecord>,
    ) -> Result<HoldRecord, RemoteError> {
        let new = new.clone();
        let replacing = replacing.cloned();
        self.call(
            move |inner| async move { holds::take(&inner, kind, new, replacing.as_ref()).await },
        )
    }

    fn renew_hold(&self, kind: HoldKind, id: &str, expires: &str) -> Result<bool, RemoteError> {
        let (id, expires) = (id.to_owned(), expires.to_owned());
        self.call(move |inner| async move { holds::renew(&inner, kind, &id, &expires).await })
    }

    fn release_hold(&self, kind: HoldKind, id: &str) -> Result<(), RemoteError> {
        let id = id.to_owned();
        self.call(move |inner| async move { holds::release(&inner, kind, &id).await })
    }
}
