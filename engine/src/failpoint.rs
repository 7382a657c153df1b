//! Failpoints: named places where a test can make the process die at once,
//! as `kill -9` would at that instant, to prove that a restart recovers.
//!
//! `LIFEBOAT_FAILPOINT=NAME` aborts the process the first time execution
//! reaches `hit(NAME)`; `NAME:pause` stops it there instead (it says so on
//! stderr and sleeps), so that a test can kill it from outside with
//! SIGKILL at that instant, or watch what others do while it hangs.
//! `NAME:hold`, at a place reached through [`held`], holds the task there
//! (its process goes on) until the file `LIFEBOAT_FAILPOINT_RELEASE` names
//! exists: a wait for AWS as long as a test needs. Unset, `hit` is one
//! cached environment look-up.
//!
//! Only builds with the `failpoints` feature have them: the binary's
//! integration tests turn it on (the root crate's dev-dependency on the
//! engine), a release build does not, so that there `hit` and `held` are
//! empty and `LIFEBOAT_FAILPOINT` is never read: an environment variable
//! left on a production host cannot make a runner abort or hang.

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
/// A backup's create calls of one region were made and recorded; its
/// wait for AWS starts (the runner does not need the state lock then).
pub const BACKUP_WAITING: &str = "backup-waiting";
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

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn held(_name: &str) {}

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    static CHOSEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
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

/// At an `await` point: with `LIFEBOAT_FAILPOINT=NAME:hold`, waits there
/// until the file named by `LIFEBOAT_FAILPOINT_RELEASE` exists (once per
/// process: later passes go on at once); otherwise as [`hit`].
#[cfg(feature = "failpoints")]
pub async fn held(name: &str) {
    static RELEASED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let chosen = std::env::var("LIFEBOAT_FAILPOINT").ok();
    if chosen.as_deref().and_then(|c| c.strip_suffix(":hold")) != Some(name) {
        hit(name);
        return;
    }
    if RELEASED.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let release = std::env::var_os("LIFEBOAT_FAILPOINT_RELEASE");
    eprintln!("failpoint {name}: held");
    while !release
        .as_ref()
        .is_some_and(|f| std::path::Path::new(f).exists())
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    RELEASED.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!("failpoint {name}: released");
}
