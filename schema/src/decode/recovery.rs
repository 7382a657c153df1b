//! `recovery_scenario "NAME" { account  region  from  network  step ..  check  drill }`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hcl_edit::structure::{Block, Body};

use super::recovery_step::{decode_step, DecodedStep};
use super::vpc_clone::{reference, undeclared};
use super::{start, DeclaredAccount, Decoder, Scope};
use crate::config::{
    Check, Drill, RecoverFrom, RecoveryScenario, VpcClone, DEFAULT_CHECK_TIMEOUT_SECS,
    DEFAULT_DRILL_KEEP_FOR_SECS, MIN_DRILL_EVERY_SECS,
};
use crate::source::Source;
use crate::validate;

const SCENARIO_ATTRS: &[&str] = &["account", "region", "from", "network"];
const SCENARIO_BLOCKS: &[&str] = &["step", "check", "drill"];

/// What a scenario may refer to.
pub(super) struct Known<'a> {
    pub accounts: &'a BTreeMap<String, DeclaredAccount>,
    pub clones: &'a BTreeMap<String, VpcClone>,
    /// Every `vpc_clone` label, valid or not: a reference to a clone with
    /// errors of its own is not reported again.
    pub declared_clones: &'a BTreeSet<String>,
}

/// The scenarios in name order; a name declared twice keeps the first.
pub(super) fn decode_recovery_scenarios(
    d: &mut Decoder,
    files: &[(&Source, &Body)],
    blocks: &[(usize, &Block)],
    known: &Known<'_>,
) -> Vec<RecoveryScenario> {
    let mut out = BTreeMap::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for &(i, b) in blocks {
        let src = files[i].0;
        let Some((name, at)) = d.name_label(src, b, "prod-west") else {
            // Still look inside, so every problem shows at once.
            decode_one(d, src, b, "this recovery_scenario", known);
            continue;
        };
        let what = format!("recovery_scenario {name:?}");
        let scenario = decode_one(d, src, b, &what, known);
        if let Some(&(fi, first)) = seen.get(&name) {
            d.error(
                src,
                at,
                "Duplicate recovery_scenario",
                format!(
                    "recovery_scenario {name:?} is already declared at {}",
                    files[fi].0.short_location(first)
                ),
            );
            continue;
        }
        seen.insert(name.clone(), (i, start(&b.ident)));
        if let Some(mut s) = scenario {
            s.name = name.clone();
            out.insert(name, s);
        }
    }
    out.into_values().collect()
}

fn decode_one(
    d: &mut Decoder,
    src: &Source,
    block: &Block,
    what: &str,
    known: &Known<'_>,
) -> Option<RecoveryScenario> {
    let s = d.scope(
        src,
        &block.body,
        what.to_string(),
        start(&block.ident),
        SCENARIO_ATTRS,
        SCENARIO_BLOCKS,
    );
    let mut ok = true;
    let account = account(d, &s, known);
    ok &= account.is_ok();
    let account = account.unwrap_or(None);
    let region = region(d, &s);
    ok &= region.is_ok();
    let region = region.unwrap_or(None);
    let from = from(d, &s);
    ok &= from.is_some();
    let network = network(d, &s, known, account.as_deref(), region.as_deref());
    ok &= network.is_ok();
    let network = network.unwrap_or(None);
    let steps = steps(d, &s);
    let check = check(d, &s);
    let drill = drill(d, &s);
    match (steps, check, drill, from) {
        (Some(steps), Ok(check), Ok(drill), Some(from)) if ok => Some(RecoveryScenario {
            name: String::new(),
            account,
            region,
            from,
            network,
            steps,
            check,
            drill,
            location: src.location(start(&block.ident)),
        }),
        _ => None,
    }
}

/// `account = account.X`: `Ok(None)` when unset, `Err` after reporting.
fn account(d: &mut Decoder, s: &Scope<'_>, known: &Known<'_>) -> Result<Option<String>, ()> {
    let Some((name, at)) = reference(d, s, "account", "account", false)? else {
        return Ok(None);
    };
    if known.accounts.contains_key(&name) {
        return Ok(Some(name));
    }
    undeclared(
        d,
        s,
        at,
        "account",
        &name,
        known.accounts.keys().map(String::as_str),
    );
    Err(())
}

fn region(d: &mut Decoder, s: &Scope<'_>) -> Result<Option<String>, ()> {
    match d.string(s, "region", false) {
        // Unset, or not a string (reported).
        None if d.get(s, "region", false).is_some() => Err(()),
        None => Ok(None),
        Some((r, _)) if validate::is_region(&r) => Ok(Some(r)),
        Some((r, at)) => {
            d.error(
                s.src,
                at,
                "Invalid region",
                format!(
                    "{r:?} in {} is not an AWS region name; expected a name like \"us-west-2\"",
                    s.what
                ),
            );
            Err(())
        }
    }
}

/// `from = "local" | "dr"`; `dr` needs somewhere to find the copies.
fn from(d: &mut Decoder, s: &Scope<'_>) -> Option<RecoverFrom> {
    let Some(attr) = d.get(s, "from", false) else {
        return Some(RecoverFrom::Local);
    };
    let from = match d.choice(s, "from", &["local", "dr"])? {
        0 => RecoverFrom::Local,
        _ => RecoverFrom::Dr,
    };
    // An account or region with errors of its own is set all the same.
    let unset = d.get(s, "account", false).is_none() && d.get(s, "region", false).is_none();
    if from == RecoverFrom::Dr && unset {
        d.error(
            s.src,
            start(&attr.value),
            "Missing destination",
            format!(
                "from = \"dr\" in {} recovers from DR copies, which are found by where they were copied to: set \"region\", \"account\" or both",
                s.what
            ),
        );
        return None;
    }
    Some(from)
}

/// `network = vpc_clone.X`, which must sit where the scenario recovers to.
fn network(
    d: &mut Decoder,
    s: &Scope<'_>,
    known: &Known<'_>,
    account: Option<&str>,
    region: Option<&str>,
) -> Result<Option<String>, ()> {
    let Some((name, at)) = reference(d, s, "network", "vpc_clone", false)? else {
        return Ok(None);
    };
    let Some(clone) = known.clones.get(&name) else {
        if !known.declared_clones.contains(&name) {
            undeclared(
                d,
                s,
                at,
                "vpc_clone",
                &name,
                known.declared_clones.iter().map(String::as_str),
            );
        }
        return Err(());
    };
    let mut mismatch = Vec::new();
    if region.is_some_and(|r| r != clone.to_region) {
        mismatch.push(format!("region {:?}", clone.to_region));
    }
    if account.is_some_and(|a| a != clone.to_account) {
        mismatch.push(format!("account {:?}", clone.to_account));
    }
    if !mismatch.is_empty() {
        d.error(
            s.src,
            at,
            "Network elsewhere",
            format!(
                "{} recovers into a network, vpc_clone {name:?}, that is built in {}, not where the scenario recovers to",
                s.what,
                mismatch.join(" and ")
            ),
        );
        return Err(());
    }
    Ok(Some(name))
}

fn blocks_named<'a>(s: &Scope<'a>, name: &str) -> Vec<&'a Block> {
    s.blocks
        .iter()
        .copied()
        .filter(|b| b.ident.value().as_str() == name)
        .collect()
}

/// At most one `check` or `drill` block; the first, after reporting the others.
fn at_most_one<'a>(d: &mut Decoder, s: &Scope<'a>, name: &str) -> Option<&'a Block> {
    let first = super::only_block(d, s, name)?;
    d.no_labels(s.src, first);
    Some(first)
}

/// The steps, in declaration order, with names unique, `after` naming
/// steps of the scenario, and no cycle; `None` after a diagnostic.
fn steps(d: &mut Decoder, s: &Scope<'_>) -> Option<Vec<crate::config::Step>> {
    let blocks = blocks_named(s, "step");
    if blocks.is_empty() {
        d.error(
            s.src,
            s.at,
            "Missing step",
            format!(
                "{} has no step blocks, so it would recover nothing; add step \"NAME\" {{ instances = [..] }} (or volumes, rds, aurora)",
                s.what
            ),
        );
        return None;
    }
    let mut decoded: Vec<DecodedStep> = Vec::new();
    let mut ok = true;
    for b in blocks {
        let Some(step) = decode_step(d, s.src, b, &s.what) else {
            ok = false;
            continue;
        };
        if let Some(first) = decoded.iter().find(|x| x.name == step.name) {
            d.error(
                s.src,
                step.name_at,
                "Duplicate step",
                format!(
                    "step {:?} of {} is already declared at {}",
                    step.name,
                    s.what,
                    s.src.short_location(first.name_at)
                ),
            );
            ok = false;
            continue;
        }
        ok &= step.step.is_some();
        decoded.push(step);
    }
    ok &= known_steps(d, s, &decoded);
    ok &= targets_once(d, s, &decoded);
    ok &= super::recovery_order::no_cycle(d, s, &decoded);
    ok.then(|| decoded.into_iter().filter_map(|x| x.step).collect())
}

/// No target is restored by two steps: the second restore would meet the
/// first's (an identifier taken, an instance launched twice), and which
/// step's settings win could not be told. Reported at the second, naming
/// the first.
fn targets_once(d: &mut Decoder, s: &Scope<'_>, steps: &[DecodedStep]) -> bool {
    let mut first: HashMap<(&str, &str), (&str, usize)> = HashMap::new();
    let mut ok = true;
    for step in steps {
        for (kind, id, at) in &step.targets {
            let Some(&(by, first_at)) = first.get(&(*kind, id.as_str())) else {
                first.insert((*kind, id.as_str()), (&step.name, *at));
                continue;
            };
            // A list naming one id twice is reported by the list itself.
            if by == step.name {
                continue;
            }
            d.error(
                s.src,
                *at,
                "Target in two steps",
                format!(
                    "{id:?} in {kind:?} of step {:?} of {} is already restored by step {by:?} (at {}); a scenario restores each target once",
                    step.name,
                    s.what,
                    s.src.location(first_at)
                ),
            );
            ok = false;
        }
    }
    ok
}

/// Every `after` entry names a step of the scenario.
fn known_steps(d: &mut Decoder, s: &Scope<'_>, steps: &[DecodedStep]) -> bool {
    let names: Vec<&str> = steps.iter().map(|x| x.name.as_str()).collect();
    let mut ok = true;
    for step in steps {
        for (a, at) in &step.after {
            if names.contains(&a.as_str()) {
                continue;
            }
            let hint = match validate::suggest(a, names.iter().copied()) {
                Some(n) => format!("; did you mean {n:?}?"),
                None => format!("; its steps are {}", super::quoted_list(&names)),
            };
            d.error(
                s.src,
                *at,
                "Unknown step",
                format!(
                    "step {:?} of {} is after {a:?}, which is not a step of it{hint}",
                    step.name, s.what
                ),
            );
            ok = false;
        }
    }
    ok
}

/// `check { script  timeout }`: `Ok(None)` when absent, `Err` after reporting.
fn check(d: &mut Decoder, s: &Scope<'_>) -> Result<Option<Check>, ()> {
    let Some(b) = at_most_one(d, s, "check") else {
        return Ok(None);
    };
    let c = d.scope(
        s.src,
        &b.body,
        format!("the check block of {}", s.what),
        start(&b.ident),
        &["script", "timeout"],
        &[],
    );
    let script = d.text(&c, "script", true);
    let timeout = d.duration(&c, "timeout", false);
    let timeout_ok = timeout.is_some() || d.get(&c, "timeout", false).is_none();
    match script {
        Some(script) if timeout_ok => Ok(Some(Check {
            script,
            timeout_secs: timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT_SECS),
        })),
        _ => Err(()),
    }
}

/// `drill { every  keep_for }`: `Ok(None)` when absent, `Err` after reporting.
fn drill(d: &mut Decoder, s: &Scope<'_>) -> Result<Option<Drill>, ()> {
    let Some(b) = at_most_one(d, s, "drill") else {
        return Ok(None);
    };
    let r = d.scope(
        s.src,
        &b.body,
        format!("the drill block of {}", s.what),
        start(&b.ident),
        &["every", "keep_for"],
        &[],
    );
    if d.get(&r, "every", true).is_none() {
        return Err(());
    }
    let every = d.duration(&r, "every", false);
    let every_at = start(&r.attrs["every"].value);
    let keep_for = d.duration(&r, "keep_for", false);
    let keep_set = d.get(&r, "keep_for", false).is_some();
    let Some(every) = every else { return Err(()) };
    if every < MIN_DRILL_EVERY_SECS {
        d.error(
            r.src,
            every_at,
            "Value out of range",
            format!(
                "\"every\" in {} must be at least \"1h\": each drill restores real resources",
                r.what
            ),
        );
        return Err(());
    }
    let keep_for = match keep_for {
        Some(k) => k,
        None if keep_set => return Err(()),
        None => DEFAULT_DRILL_KEEP_FOR_SECS,
    };
    if keep_for > every {
        d.error(
            r.src,
            start(&r.attrs["keep_for"].value),
            "Value out of range",
            format!(
                "\"keep_for\" in {} is longer than \"every\": a drill would still be kept when the next one starts",
                r.what
            ),
        );
        return Err(());
    }
    Ok(Some(Drill {
        every_secs: every,
        keep_for_secs: keep_for,
    }))
}

#[cfg(test)]
mod tests;
