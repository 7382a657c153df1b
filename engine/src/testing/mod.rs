//! Test doubles of the engine's ports, built only for tests and benchmarks
//! (the `testing` feature): the binary never links them.

pub mod fake;
pub mod remote;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::Config;

use crate::cloud::Cloud;
use crate::plan::apply::{self, Executor, Report};
use crate::plan::{observe, planner, Plan};
use crate::state::SharedStore;

/// Plans `config` against the state in `store` and what `cloud` has, at
/// `now`.
pub async fn plan_config(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Plan {
    let state = store.lock().expect("store").load().expect("load state");
    let obs = observe::observe(cloud, config, &state)
        .await
        .expect("observe");
    planner::plan(config, &state, &obs, now).expect("plan")
}

/// Applies the whole of `plan` without a lock, with the accounts of
/// `config` and of the state.
pub async fn apply_plan(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Report {
    let state = store.lock().expect("store").load().expect("load state");
    let exec = Arc::new(Executor {
        cloud,
        accounts: planner::known_accounts(config, &state).expect("accounts"),
        store: store.clone(),
        now,
        lock_id: None,
        stop: Default::default(),
    });
    apply::apply(plan, exec, 4, |_, _| {}).await
}

/// Plans `config` and applies the whole plan, as most engine tests begin:
/// the policies, their targets and accounts are then in the state.
pub async fn apply_config(
    cloud: Arc<dyn Cloud>,
    store: &SharedStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Report {
    let plan = plan_config(cloud.clone(), store, config, now).await;
    apply_plan(cloud, store, config, &plan, now).await
}
