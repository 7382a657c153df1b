//! The runner follows applies: at each wake-up, when the state's serial
//! moved, it looks at the digest of the configuration the last apply
//! recorded (`state::applied`), and when that is not the configuration it
//! works from, it reads it and works from it from then on: schedules,
//! captures, notifications, scenarios, resource-control groups. SIGHUP
//! (`Clock::request_reload`) ends its sleep and has it read at once.
//!
//! A reload changes what the agenda is computed from, not what it keeps:
//! the last slot of each policy, the last run of each capture, check, scan
//! and drill stay in the state, so a slot already run is not run again and
//! none is skipped. A policy or schedule new to the runner is due as in a
//! runner that starts with it: for its latest slot within one interval.
//! Work in flight keeps the configuration it started with.
//!
//! The runner starts with the configuration of its files; it follows what
//! is applied after it started. On shared state (DynamoDB) the apply may
//! come from another host: each step's read of the agenda brings the
//! runner's cache up to date, so it is taken up at the wake-up after that
//! read, and SIGHUP pulls first and takes it up at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use lifeboat_schema::Config;
use serde::Serialize;

use super::{Daemon, DaemonError, Exit, RunEvent, Running, Step};
use crate::plan::planner::config_digest;
use crate::state::{SharedStore, StateError};

/// The configuration a runner works from, and where in the state it read it.
pub(super) struct Follow {
    config: Arc<Config>,
    digest: String,
    /// The serial when `config` was taken up.
    loaded: u64,
    /// The serial at the last look.
    seen: u64,
    /// The applied configuration's digest when last looked at: only an
    /// apply made since (another digest) is taken up. Comparing with the
    /// files' digest instead would switch a runner back to an older
    /// applied configuration at its first commit when its files were
    /// edited and not applied.
    applied: Option<String>,
}

/// What a look at the state found.
enum Look {
    Same,
    /// Read again (asked for, or changed): report it; `changed` when the
    /// configuration is another one.
    Read {
        event: Box<RunEvent>,
        changed: bool,
    },
}

impl Follow {
    /// The runner's files' configuration, at the state's serial now.
    pub(super) fn new(store: &SharedStore, config: &Config) -> Result<Follow, StateError> {
        let (serial, applied) = {
            let s = store.lock().expect("store");
            (s.serial()?, s.applied_digest()?)
        };
        Ok(Follow {
            config: Arc::new(config.clone()),
            digest: config_digest(config),
            loaded: serial,
            seen: serial,
            applied,
        })
    }

    /// Reads the applied configuration when the serial moved and its
    /// digest is not this one's, or when `requested`.
    fn look(&mut self, store: &SharedStore, requested: bool) -> Result<Look, StateError> {
        let mut s = store.lock().expect("store");
        if requested {
            // A shared state's cache takes up what other hosts committed
            // (a no-op for a state file). Only when asked: every step's
            // agenda read syncs it already, so a wake-up sees what was
            // pulled at the one before, and a pull per look as well would
            // crowd out the heartbeat's renewals on a busy runner.
            s.sync()?;
        }
        let serial = s.serial()?;
        if serial == self.seen && !requested {
            return Ok(Look::Same);
        }
        self.seen = serial;
        // The runner's own commits move the serial too: the digest says
        // whether an apply recorded another configuration.
        let applied = s.applied_digest()?;
        let moved = applied != self.applied && applied.as_ref().is_some_and(|d| *d != self.digest);
        self.applied = applied;
        if !moved && !requested {
            return Ok(Look::Same);
        }
        let mut changes = Vec::new();
        let mut changed = false;
        let applied = match s.applied_config() {
            Ok(applied) => applied,
            // Written by a newer Lifeboat (a field or a kind this build
            // does not know): keep working from what the runner has, and
            // say so once; the digest looked at is kept, so the next look
            // tries again only after another apply.
            Err(StateError::Corrupt { message, .. }) => {
                let event = Box::new(RunEvent::ConfigUnreadable {
                    serial,
                    error: message,
                });
                return Ok(Look::Read {
                    event,
                    changed: false,
                });
            }
            Err(e) => return Err(e),
        };
        if let Some((config, digest)) = applied.filter(|(_, d)| *d != self.digest) {
            // The applied configuration keeps external ids sealed: so are
            // the runner's, for an unchanged id not to count as a change.
            let mine = crate::cloud::external_id::sealed_config(&self.config);
            changes = differences(&mine, &config);
            self.config = Arc::new(config);
            self.digest = digest;
            changed = true;
        }
        let event = Box::new(RunEvent::ConfigReloaded {
            from_serial: self.loaded,
            to_serial: serial,
            changes,
            requested,
        });
        self.loaded = serial;
        Ok(Look::Read { event, changed })
    }
}

/// Per kind of block, what changed from `old` to `new`: `"+1 -0 ~2"` with
/// the zero parts left out; kinds without a change are left out.
fn differences(old: &Config, new: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut kind = |name: &str, counts: (usize, usize, usize)| {
        let (added, removed, changed) = counts;
        let parts: Vec<String> = [("+", added), ("-", removed), ("~", changed)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(sign, n)| format!("{sign}{n}"))
            .collect();
        if !parts.is_empty() {
            out.push((name.to_string(), parts.join(" ")));
        }
    };
    kind("accounts", by_name(&old.accounts, &new.accounts));
    kind("policies", by_name(&old.policies, &new.policies));
    kind("schedules", by_name(&old.schedules, &new.schedules));
    kind(
        "vpc_captures",
        by_name(&old.vpc_captures, &new.vpc_captures),
    );
    kind("vpc_clones", by_name(&old.vpc_clones, &new.vpc_clones));
    let scenarios = |c: &Config| -> BTreeMap<String, _> {
        c.recovery_scenarios
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect()
    };
    kind(
        "recovery_scenarios",
        by_name(&scenarios(old), &scenarios(new)),
    );
    kind(
        "resource_control_groups",
        by_name(&old.resource_control_groups, &new.resource_control_groups),
    );
    let notifications = |c: &Config| -> BTreeMap<String, _> {
        c.notifications
            .iter()
            .map(|n| ("notifications".to_string(), n.clone()))
            .collect()
    };
    kind(
        "notifications",
        by_name(&notifications(old), &notifications(new)),
    );
    out
}

/// Added, removed and changed entries between two maps by name, compared
/// as they serialise (as the digest sees them).
fn by_name<T: Serialize>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
) -> (usize, usize, usize) {
    let json = |v: &T| serde_json::to_value(v).expect("configuration serialises");
    let added = new.keys().filter(|k| !old.contains_key(*k)).count();
    let removed = old.keys().filter(|k| !new.contains_key(*k)).count();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| json(o) != json(v)))
        .count();
    (added, removed, changed)
}

impl<'a> Daemon<'a> {
    /// The same runner working from `config`.
    fn working_from<'c>(&self, config: &'c Config) -> Daemon<'c> {
        Daemon {
            cloud: self.cloud.clone(),
            store: self.store.clone(),
            config,
            config_dir: self.config_dir.clone(),
            clock: self.clock.clone(),
            mode: self.mode,
            wait: self.wait,
            stop: self.stop.clone(),
            on_event: self.on_event.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Takes steps until the runner stops, looking before each (at each
    /// wake-up) for a configuration applied meanwhile; returns how it
    /// ended and the runner, bound to this daemon again.
    pub(super) async fn steps<'s>(
        &'s self,
        r: Running<'s, 'a>,
        mut follow: Follow,
    ) -> (Result<Exit, DaemonError>, Running<'s, 'a>) {
        let mut r = r;
        loop {
            let config = follow.config.clone();
            let view = self.working_from(&config);
            let mut current = r.rebind(&view);
            let ended = loop {
                let requested = view.clock.take_reload_request();
                match follow.look(&view.store, requested) {
                    Ok(Look::Same) => {}
                    Ok(Look::Read { event, changed }) => {
                        view.report(*event);
                        if changed {
                            break None;
                        }
                    }
                    Err(e) => break Some(Err(e.into())),
                }
                match current.step().await {
                    Ok(Step::Again) => {}
                    Ok(Step::Stop(exit)) => break Some(Ok(exit)),
                    Err(e) => break Some(Err(e)),
                }
            };
            r = current.rebind(self);
            match ended {
                Some(outcome) => return (outcome, r),
                None => {
                    r.runner.follow(&follow.config);
                    r.controls.forget_config();
                }
            }
        }
    }
}

impl Running<'_, '_> {
    /// The same runner state, reporting to and working from `d`.
    fn rebind<'e, 'b>(self, d: &'e Daemon<'b>) -> Running<'e, 'b> {
        Running {
            d,
            runner: self.runner,
            lock: self.lock,
            gate: self.gate,
            share: self.share,
            lease: self.lease,
            lost: self.lost,
            worst: self.worst,
            said_next: self.said_next,
            reconciled: self.reconciled,
            drill_task: self.drill_task,
            drills_looked: self.drills_looked,
            controls: self.controls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        lifeboat_schema::load_sources(&[("main.lb.hcl".into(), text.to_string())])
            .unwrap_or_else(|d| panic!("{d}"))
            .config
    }

    const ONE: &str = "account \"main\" {\n  regions = [\"us-east-1\"]\n}\nschedule \"hourly\" {\n  start = \"2026-11-22T00:17\"\n  every = \"1h\"\n}\npolicy \"web\" {\n  account = account.main\n  generations = 2\n  schedules = [schedule.hourly]\n}\n";

    #[test]
    fn differences_count_what_was_added_removed_and_changed_per_kind() {
        let one = config(ONE);
        let two = config(&format!(
            "{}schedule \"nightly\" {{\n  start = \"2026-11-22T01:00\"\n  every = \"1d\"\n}}\npolicy \"db\" {{\n  account = account.main\n  generations = 3\n  schedules = [schedule.nightly]\n}}\n",
            ONE.replace("generations = 2", "generations = 4")
        ));
        assert_eq!(
            differences(&one, &two),
            vec![
                ("policies".to_string(), "+1 ~1".to_string()),
                ("schedules".to_string(), "+1".to_string()),
            ]
        );
        assert_eq!(
            differences(&two, &one),
            vec![
                ("policies".to_string(), "-1 ~1".to_string()),
                ("schedules".to_string(), "-1".to_string()),
            ]
        );
        assert!(differences(&one, &one).is_empty());
    }

    #[test]
    fn a_look_reads_only_another_applied_configuration_or_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store: SharedStore = Arc::new(std::sync::Mutex::new(
            crate::state::Store::open(&dir.path().join("state.db")).unwrap(),
        ));
        let one = config(ONE);
        store.lock().unwrap().record_applied(&one).unwrap();
        let mut f = Follow::new(&store, &one).unwrap();
        assert!(matches!(f.look(&store, false).unwrap(), Look::Same));
        // The runner's own commit moves the serial, not the configuration.
        store
            .lock()
            .unwrap()
            .transaction(|tx| tx.set_last_slot("web", chrono::Utc::now(), None))
            .unwrap();
        assert!(matches!(f.look(&store, false).unwrap(), Look::Same));
        let two = config(&ONE.replace("every = \"1h\"", "every = \"30m\""));
        store.lock().unwrap().record_applied(&two).unwrap();
        let serial = store.lock().unwrap().serial().unwrap();
        let Look::Read { event, changed } = f.look(&store, false).unwrap() else {
            panic!("the new configuration is read")
        };
        let RunEvent::ConfigReloaded {
            from_serial,
            to_serial,
            changes,
            requested,
        } = *event
        else {
            panic!("a reload is reported")
        };
        assert!(changed && !requested);
        assert_eq!((from_serial, to_serial), (serial - 2, serial));
        assert_eq!(changes, vec![("schedules".into(), "~1".into())]);
        assert_eq!(f.digest, config_digest(&two));
        assert!(matches!(f.look(&store, false).unwrap(), Look::Same));
        // Asked (SIGHUP) with nothing new: said, and nothing to take up.
        let Look::Read { event, changed } = f.look(&store, true).unwrap() else {
            panic!("a requested look is reported")
        };
        assert!(!changed);
        assert!(
            matches!(*event, RunEvent::ConfigReloaded { ref changes, requested: true, .. } if changes.is_empty())
        );
    }

    #[test]
    fn a_configuration_this_build_cannot_read_is_reported_and_not_taken_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store: SharedStore = Arc::new(std::sync::Mutex::new(
            crate::state::Store::open(&path).unwrap(),
        ));
        let one = config(ONE);
        store.lock().unwrap().record_applied(&one).unwrap();
        let mut f = Follow::new(&store, &one).unwrap();
        // What a newer Lifeboat's apply would record: a kind of block this
        // build does not know, under another digest; the serial moves.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "UPDATE meta SET value = '{\"accounts\": 7}' WHERE key = 'applied_config';
             UPDATE meta SET value = 'newer' WHERE key = 'applied_config_digest';",
        )
        .unwrap();
        store
            .lock()
            .unwrap()
            .transaction(|tx| tx.set_last_slot("web", chrono::Utc::now(), None))
            .unwrap();
        let Look::Read { event, changed } = f.look(&store, false).unwrap() else {
            panic!("the unreadable configuration is reported")
        };
        assert!(!changed, "the runner keeps its configuration");
        assert!(
            matches!(*event, RunEvent::ConfigUnreadable { ref error, .. } if error.contains("cannot be read"))
        );
        assert_eq!(f.digest, config_digest(&one));
        // Said once: the next look waits for another apply.
        assert!(matches!(f.look(&store, false).unwrap(), Look::Same));
    }
}
