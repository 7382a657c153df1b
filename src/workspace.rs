//! What every command stands on: the configuration of `--dir`, the time
//! (`--now`, or the clock), the state store and its lock, and the AWS
//! providers wired in as the engine's cloud.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use lifeboat_engine::cloud::calls::CallCounts;
use lifeboat_engine::cloud::identity::CheckedCloud;
use lifeboat_engine::cloud::Cloud;
use lifeboat_engine::state::{Reading, SharedStore, Store};
use lifeboat_providers::DynamoRemote;
use lifeboat_schema::{Config, StateBackend};

use crate::output::{print_diagnostics, Exit};

/// A loaded configuration directory, at the time the command acts.
pub struct Workspace {
    pub dir: PathBuf,
    pub config: Config,
    pub now: DateTime<Utc>,
    /// `--lock-timeout`: how long a command waits for a state lock another
    /// holder has (zero: it fails at once).
    pub lock_timeout: std::time::Duration,
    /// The command only reads the state: it is opened so that nothing is
    /// written, created or migrated there.
    pub reading: bool,
}

/// Loads the configuration of `dir`, printing its warnings. A configuration
/// with errors is reported whole (every problem at once) and exits 1.
pub fn load(dir: &Path, now: Option<DateTime<Utc>>) -> Result<Workspace> {
    match lifeboat_schema::load_dir(dir) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            Ok(Workspace {
                dir: dir.to_path_buf(),
                config: loaded.config,
                now: now.unwrap_or_else(Utc::now),
                lock_timeout: std::time::Duration::ZERO,
                reading: false,
            })
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let n = diags.errors().count();
            eprintln!("{n} error(s) in the configuration.");
            Err(Exit(1).into())
        }
    }
}

impl Workspace {
    /// The state file: `state { path }` (relative to the configuration
    /// directory), or `.lifeboat/state.db` there.
    pub fn state_path(&self) -> PathBuf {
        match &self.config.settings.state.path {
            Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
            Some(p) => self.dir.join(p),
            None => self.dir.join(".lifeboat").join("state.db"),
        }
    }

    /// The workspace's state, where the `state` block puts it.
    pub fn store(&self) -> Result<Store> {
        self.store_on(self.config.settings.state.backend)
    }

    /// The workspace's state on `backend`, where the `state` block would
    /// put it for that backend (`state migrate` opens both).
    /// Its writes prune the reports' deleted records by `report_retention`.
    pub fn store_on(&self, backend: StateBackend) -> Result<Store> {
        let mut store = match (backend, self.reading) {
            (StateBackend::Sqlite, false) => {
                Store::open(&crate::files::state_path(&self.state_path())?)?
            }
            (StateBackend::Sqlite, true) => {
                let path = crate::files::state_path(&self.state_path())?;
                let store = Store::open_read_only(&path)?;
                if let Some(Reading::Older { found }) = store.reading() {
                    eprintln!(
                        "Note: the state {} has schema version {found}, older than this Lifeboat's; \
                         it is read through a migrated copy and left as it is. The next command \
                         that writes the state migrates it, keeping a copy at {}.bak-{found}.",
                        path.display(),
                        path.display()
                    );
                }
                store
            }
            (StateBackend::Dynamodb, reading) => {
                let remote = self.remote()?;
                let cache = crate::files::state_path(&self.cache_path()?)?;
                let store = Store::open_shared(&cache, Arc::new(remote))?;
                // The cache on this host is written as it pulls; the
                // shared state itself is not, by a reading command.
                if reading {
                    store.for_reading()
                } else {
                    store
                }
            }
        };
        let keep = self.config.settings.report_retention();
        store.set_report_retention(chrono::Duration::from_std(keep)?);
        Ok(store)
    }

    /// The DynamoDB workspace of the `state` block.
    pub fn remote(&self) -> Result<DynamoRemote> {
        let st = &self.config.settings.state;
        let (Some(table), Some(region)) = (&st.table, &st.region) else {
            anyhow::bail!(
                "the state block names no DynamoDB table and region (`table`, `region`): \
                 there is no shared state to reach"
            );
        };
        let account = match &st.account {
            Some(name) => Some(self.config.accounts.get(name).ok_or_else(|| {
                anyhow::anyhow!("the state block's account {name} is not declared")
            })?),
            None => None,
        };
        Ok(DynamoRemote::open(account, region, table, &st.workspace)?)
    }

    /// Where this host caches the shared workspace: beside the default
    /// state file, one file per table, region and workspace.
    fn cache_path(&self) -> Result<PathBuf> {
        let st = &self.config.settings.state;
        let name = format!(
            "dynamodb-{}-{}-{}.db",
            st.table.as_deref().unwrap_or_default(),
            st.region.as_deref().unwrap_or_default(),
            st.workspace
        );
        Ok(self.dir.join(".lifeboat").join("cache").join(name))
    }
}

/// The engine's cloud, backed by the AWS SDK. Each account's clients are
/// handed out only once its credentials were found to reach the AWS account
/// it is pinned or recorded to in this workspace's state
/// (`lifeboat_engine::cloud::identity`).
pub async fn cloud(ws: &Workspace) -> Result<Arc<dyn Cloud>> {
    Ok(counted_cloud(ws).await?.0)
}

/// [`cloud`], with the count of the requests its clients send (run mode's
/// metrics).
pub async fn counted_cloud(ws: &Workspace) -> Result<(Arc<dyn Cloud>, Arc<CallCounts>)> {
    let aws = lifeboat_providers::AwsCloud::new();
    let calls = aws.calls();
    let aws: Arc<dyn Cloud> = Arc::new(aws);
    let store = Arc::new(std::sync::Mutex::new(ws.store()?));
    let dir = ws.dir.clone();
    let checked =
        CheckedCloud::new(aws, store, &ws.config).with_id_source(Arc::new(move || more_ids(&dir)));
    Ok((Arc::new(checked), calls))
}

/// External ids beyond the ones the command loaded, asked for when an
/// account from the state matches none of them: the configuration files as
/// they are now (a runner follows applies made after it started), and the
/// `LIFEBOAT_EXTERNAL_ID_*` variables (an account gone from the files
/// whose backups are still in the catalog). Only ever compared with a
/// digest, never printed.
fn more_ids(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = match lifeboat_schema::load_dir(dir) {
        Ok(loaded) => loaded
            .config
            .accounts
            .into_iter()
            .filter_map(|(name, a)| Some((name, a.assume_role?.external_id?)))
            .collect(),
        Err(_) => Vec::new(),
    };
    // `vars_os`: a variable that is not Unicode (anyone's) is skipped, not
    // a panic in the middle of a backup.
    out.extend(std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok()?;
        let id = v.into_string().ok()?;
        k.starts_with(lifeboat_engine::cloud::external_id::ENV_PREFIX)
            .then_some((String::new(), id))
    }));
    out
}

/// Holds the state lock for the duration of `f` (renewed by the engine
/// while `f` works), and releases it whatever `f` returns. A lock another
/// holder has is waited for up to `wait` (`--lock-timeout`), saying so on
/// stderr.
pub async fn locked<T>(
    store: SharedStore,
    operation: &str,
    wait: std::time::Duration,
    f: impl AsyncFnOnce(String) -> Result<T>,
) -> Result<T> {
    lifeboat_engine::state::with_lock_waiting(
        store,
        operation,
        wait,
        |w| eprintln!("{w}"),
        crate::colour::error,
        f,
    )
    .await
}

/// Refuses `what` while a live runner has a backup of `policy` (of any
/// policy: `None`) in flight: the runner lets go of the state lock while
/// its backups wait for AWS, and one must not run beside them.
pub fn refuse_in_flight(store: &SharedStore, policy: Option<&str>, what: &str) -> Result<()> {
    let flights = store.lock().expect("store").in_flight(policy)?;
    match flights.first() {
        Some(f) => Err(f.refuse(what).into()),
        None => Ok(()),
    }
}

/// A flag raised by SIGINT or SIGTERM. Apply then starts nothing new,
/// finishes and records what is in flight, and releases the state lock, so
/// an interrupted apply leaves state true to AWS and can simply be re-planned.
/// A second signal during that drain ends the process at once: every
/// record is its own transaction, so this is the `kill -9` that restart
/// reconciliation is built for (what was in flight is adopted or closed by
/// the next run), only asked for.
pub fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Watched on a thread and runtime of its own: a second signal must end
    // the process even when every worker of the main runtime is stuck (a
    // hung call is what makes an operator interrupt twice).
    let watcher = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(watcher) = watcher else {
        return stop;
    };
    let (armed, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        watcher.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            // Both registered before the command goes on, so that neither
            // signal can take its default action (ending the process
            // without a drain).
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                let _ = armed.send(());
                return;
            };
            let _ = armed.send(());
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("Interrupted: finishing the changes in flight, starting no new ones (interrupt again to stop at once).");
            flag.store(true, Ordering::SeqCst);
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("Interrupted again: stopping now. What was in flight is recorded as far as it got; the next run or backup reconciles the rest.");
            std::process::exit(130);
        })
    });
    // The handlers are in place before the command starts its work.
    let _ = ready.recv();
    stop
}
