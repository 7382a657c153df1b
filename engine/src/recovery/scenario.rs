//! A recovery scenario planned: for each wave of steps (`after` order), for
//! each step, one [`RestorePlan`] per target, each planned exactly as
//! `lifeboat restore` plans one, with the subnets and originals of all its
//! instances looked at once per account and region beforehand. Nothing is
//! created here; a target that cannot be restored stops the whole plan
//! with an error naming its step.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lifeboat_schema::{RecoverFrom, RecoveryScenario, Step, StepKind};
use serde::{Deserialize, Serialize};

use super::network::NetworkMap;
use super::RecoveryError;
use crate::cloud::restore::Shape;
use crate::cloud::Cloud;
use crate::restore::look_ahead::look_ahead;
use crate::restore::plan::{self, Accounts};
use crate::restore::source;
use crate::restore::{Kind, Options, Request, RestoreError, RestorePlan, Which};
use crate::state::SharedStore;

/// One step's restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepPlan {
    pub step: String,
    /// `instances`, `volumes`, `rds` or `aurora`.
    pub kind: String,
    pub restores: Vec<RestorePlan>,
}

/// A whole scenario, planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioPlan {
    pub scenario: String,
    /// The drill these restores belong to (`None`: a recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<String>,
    /// Steps of one wave may run together; a wave starts once the one
    /// before it is done.
    pub waves: Vec<Vec<StepPlan>>,
}

impl ScenarioPlan {
    /// Every restore, in wave order.
    pub fn restores(&self) -> impl Iterator<Item = (&StepPlan, &RestorePlan)> {
        self.waves
            .iter()
            .flatten()
            .flat_map(|s| s.restores.iter().map(move |r| (s, r)))
    }
}

/// The targets of a step, with what they restore as.
fn targets(kind: &StepKind) -> Vec<(Kind, String)> {
    match kind {
        StepKind::Instances(ids) => ids.iter().map(|i| (Kind::Instance, i.clone())).collect(),
        StepKind::Volumes(ids) => ids.iter().map(|v| (Kind::Volume, v.clone())).collect(),
        StepKind::Rds(id) => vec![(Kind::Rds, id.clone())],
        StepKind::Aurora(id) => vec![(Kind::Aurora, id.clone())],
    }
}

/// A DB identifier for a drill's copy of `target`: the drill's id in it,
/// so that a drill never meets an earlier recovery's or drill's database.
fn drill_identifier(target: &str, drill: &str) -> String {
    let tail: String = drill.rsplit('-').next().unwrap_or(drill).to_string();
    let mut s = format!("{target}-drill-{tail}");
    s.truncate(63);
    while s.ends_with('-') {
        s.pop();
    }
    s
}

/// The region a `from = "dr"` scenario without `region` reads copies in:
/// the target's own backup region (copies to another account).
fn backup_region(store: &SharedStore, target: &str) -> Result<Option<String>, RestoreError> {
    let st = store.lock().expect("state lock poisoned");
    Ok(source::newest_place(&st, target)?.map(|(_, region)| region))
}

/// An instance's subnet and groups in the clone `net`: the step's own when
/// it sets them, else the counterparts of those its backup recorded.
fn mapped(
    net: &NetworkMap,
    step: &Step,
    target: &str,
    which: &Which,
    store: &SharedStore,
) -> Result<(Option<String>, Option<Vec<String>>), RecoveryError> {
    let shape = {
        let st = store.lock().expect("state lock poisoned");
        // The restore plan says why there is no backup.
        source::shape(&st, Kind::Instance, target, which).unwrap_or(None)
    };
    let Some(Shape::Instance(shape)) = shape else {
        return Ok((step.subnet.clone(), None));
    };
    let fail = |message: String| RecoveryError::Step {
        step: step.name.clone(),
        message: format!("instance {target}: {message}"),
    };
    let subnet = match (&step.subnet, &shape.subnet_id) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(s)) => Some(net.subnet(s).map_err(fail)?),
        (None, None) => None,
    };
    let groups = if step.security_groups.is_empty() {
        net.groups(&shape.security_groups).map_err(fail)?
    } else {
        step.security_groups.clone()
    };
    Ok((subnet, Some(groups).filter(|g| !g.is_empty())))
}

/// The restore request for one target of step `step` (`net`: the
/// scenario's network clone, mapped).
#[allow(clippy::too_many_arguments)]
pub fn request(
    sc: &RecoveryScenario,
    step: &Step,
    kind: Kind,
    target: &str,
    which: &Which,
    drill: Option<&str>,
    store: &SharedStore,
    net: Option<&NetworkMap>,
) -> Result<Request, RecoveryError> {
    let mut o = Options::default();
    match kind {
        Kind::Instance => {
            o.instance_type = step.instance_type.clone();
            o.subnet = step.subnet.clone();
            o.security_groups =
                Some(step.security_groups.clone()).filter(|g: &Vec<String>| !g.is_empty());
            if let Some(net) = net {
                (o.subnet, o.security_groups) = mapped(net, step, target, which, store)?;
            }
        }
        Kind::Volume => {}
        Kind::Rds => o.class = step.class.clone(),
        Kind::Aurora => o.instance_class = step.class.clone(),
    }
    if let (Some(d), Kind::Rds | Kind::Aurora) = (drill, kind) {
        o.identifier = Some(drill_identifier(target, d));
    }
    let from = match sc.from {
        RecoverFrom::Local => None,
        RecoverFrom::Dr => {
            let region = match &sc.region {
                Some(r) => r.clone(),
                None => backup_region(store, target)
                    .map_err(|source| RecoveryError::Plan {
                        step: step.name.clone(),
                        target: target.to_string(),
                        source,
                    })?
                    .ok_or_else(|| RecoveryError::Step {
                        step: step.name.clone(),
                        message: format!("no backup of {target} is in the catalog"),
                    })?,
            };
            Some((region, sc.account.clone()))
        }
    };
    Ok(Request {
        kind,
        target: target.to_string(),
        which: which.clone(),
        from,
        to_account: sc.account.clone(),
        to_region: sc.region.clone(),
        options: o,
        drill: drill.map(str::to_string),
    })
}

/// Plans every restore of `sc` (from the backup `which` names for each
/// target), in wave order.
pub async fn plan(
    cloud: &Arc<dyn Cloud>,
    store: &SharedStore,
    accounts: &Accounts,
    sc: &RecoveryScenario,
    which: &Which,
    drill: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ScenarioPlan, RecoveryError> {
    let net = match &sc.network {
        Some(name) => Some(NetworkMap::load(cloud, store, accounts, name).await?),
        None => None,
    };
    // Every instance's subnet and original looked at once per account and
    // region, not once each; up to a request that cannot be made (the
    // loop below reports it where it stands).
    let mut reqs = Vec::new();
    'ahead: for wave in sc.waves() {
        for step in wave {
            for (kind, target) in targets(&step.kind) {
                match request(sc, step, kind, &target, which, drill, store, net.as_ref()) {
                    Ok(r) => reqs.push(r),
                    Err(_) => break 'ahead,
                }
            }
        }
    }
    let looked = look_ahead(cloud, store, accounts, &reqs).await;
    let mut waves = Vec::new();
    for wave in sc.waves() {
        let mut steps = Vec::new();
        for step in wave {
            let mut restores = Vec::new();
            for (kind, target) in targets(&step.kind) {
                let req = request(sc, step, kind, &target, which, drill, store, net.as_ref())?;
                let p = plan::plan_looked(cloud, store, accounts, &req, now, &looked)
                    .await
                    .map_err(|source| RecoveryError::Plan {
                        step: step.name.clone(),
                        target: format!("{} {target}", kind.noun()),
                        source,
                    })?;
                restores.push(p);
            }
            steps.push(StepPlan {
                step: step.name.clone(),
                kind: step.kind.keyword().to_string(),
                restores,
            });
        }
        waves.push(steps);
    }
    Ok(ScenarioPlan {
        scenario: sc.name.clone(),
        drill: drill.map(str::to_string),
        waves,
    })
}

/// The plan for people: each wave, each step, each restore as
/// `lifeboat restore` prints it.
pub fn render(p: &ScenarioPlan, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "Recovery scenario {} ({} restore(s) in {} wave(s)):\n",
        p.scenario,
        p.restores().count(),
        p.waves.len()
    );
    for (i, wave) in p.waves.iter().enumerate() {
        for s in wave {
            out.push_str(&format!(
                "\n== wave {}, step {:?} ({}) ==\n",
                i + 1,
                s.step,
                s.kind
            ));
            for r in &s.restores {
                out.push_str(&crate::restore::render::human(r, now));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_identifier_carries_the_drill_and_fits_rds() {
        assert_eq!(
            drill_identifier("orders", "d-20261201t100000-ab12cd34"),
            "orders-drill-ab12cd34"
        );
        let long = "a".repeat(60);
        let id = drill_identifier(&long, "d-x-ab12cd34");
        assert!(id.len() <= 63 && !id.ends_with('-'), "{id}");
    }
}
