//! Failpoints: named places where a test can make the process die at once,
//! as `kill -9` would at that instant, to prove that a restart recovers.
//!
//! `LIFEBOAT_FAILPOINT=NAME` aborts the process the first time execution
//! reaches `hit(NAME)`; `NAME:pause` stops it there instead (it says so on
//! stderr and sleeps), so that a test can kill it from outside with
//! SIGKILL at that instant, or watch what others do while it hangs. Unset
//! (always, outside tests), `hit` is one cached environment look-up.

use std::sync::OnceLock;

/// A scheduled attempt has started (its slot spent), before its `before`
/// script and before any backup record exists.
pub const BACKUP_BEFORE_SCRIPT: &str = "backup-before-script";
/// After a backup is recorded as running, before any AWS call.
pub const BACKUP_STARTED: &str = "backup-started";
/// After a create call returned, before its snapshots are in the catalog.
pub const BACKUP_CREATED: &str = "backup-created";
/// In the catalog writer, after create calls returned and handed their
/// snapshots over, before one batch of them is committed.
pub const BACKUP_BATCHED: &str = "backup-batched";
/// After every snapshot is recorded, before the backup is closed.
pub const BACKUP_BEFORE_FINISH: &str = "backup-before-finish";
/// After a snapshot was deleted in AWS, before the catalog forgets it.
pub const APPLY_DELETED: &str = "apply-deleted";
/// After a DR copy call returned, before the copy is in the catalog.
pub const DR_COPIED: &str = "dr-copied";
/// After one restore of a drill finished and was recorded, before the
/// drill goes on (its teardown is then the next process's).
pub const DRILL_RESTORED: &str = "drill-restored";

/// After a restore's instance was launched and recorded, before the wait
/// and before its launch image is deregistered and its shares let go of
/// (the next restore command or runner reaps it).
pub const RESTORE_LAUNCHED: &str = "restore-launched";

pub fn hit(name: &str) {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN
        .get_or_init(|| std::env::var("LIFEBOAT_FAILPOINT").ok())
        .as_deref();
    let Some(chosen) = chosen else {
        return;
    };
    if chosen == name {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    if chosen.strip_suffix(":pause") == Some(name) {
        eprintln!("failpoint {name}: paused");
        // A hung process: its threads (lease renewal included) go on,
        // this one never returns.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
