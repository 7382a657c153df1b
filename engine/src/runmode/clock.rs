//! The runner's clock and its wake-ups.
//!
//! A runner reads the real clock, or starts at `--now` and moves forward in
//! real time from there. With `--fast-forward` idle time passes at once: the
//! clock jumps to the next wake-up instead of sleeping, while work in flight
//! still takes real time. A runner on the real clock also looks once a
//! minute, for policies an apply added meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// The runner's clock: the real one, or a start instant moving forward in
/// real time, plus the idle time a fast-forwarding runner skipped.
#[derive(Debug)]
pub struct Clock {
    base: DateTime<Utc>,
    started: Instant,
    skipped: Mutex<Duration>,
    /// Raised (SIGHUP) to have the runner read the applied configuration
    /// at once: it ends the sleep, and the runner lowers it as it reads.
    reload: AtomicBool,
}

impl Clock {
    /// The real clock, or one that starts at `at` (`--now`).
    pub fn starting_at(at: Option<DateTime<Utc>>) -> Clock {
        Clock {
            base: at.unwrap_or_else(Utc::now),
            started: Instant::now(),
            skipped: Mutex::new(Duration::zero()),
            reload: AtomicBool::new(false),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.base
            + Duration::from_std(self.started.elapsed()).unwrap_or_default()
            + *self.skipped.lock().expect("clock")
    }

    /// Moves the clock forward to `t` at once (fast-forward).
    pub fn jump_to(&self, t: DateTime<Utc>) {
        let now = self.now();
        if t > now {
            *self.skipped.lock().expect("clock") += t - now;
        }
    }

    /// Asks the runner to read the applied configuration now, ending its
    /// sleep (within a second).
    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::SeqCst);
    }

    /// Whether a reload was asked for since the last call.
    pub fn take_reload_request(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }

    /// Sleeps until `until` or until `stop` (or a reload request) is
    /// raised, checking every second.
    pub async fn sleep_until(&self, until: DateTime<Utc>, stop: &AtomicBool) {
        while self.now() < until
            && !stop.load(Ordering::SeqCst)
            && !self.reload.load(Ordering::SeqCst)
        {
            let left = (until - self.now()).to_std().unwrap_or_default();
            tokio::time::sleep(left.min(std::time::Duration::from_secs(1))).await;
        }
    }
}

/// How often a runner on the real clock looks at its agenda at least.
pub const LOOK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// When a runner looks again, given the next thing due (`next`, which
/// includes `--until`): a runner on the real clock at least once a minute,
/// a fast-forwarding one straight at `next`. Never before `now`.
pub fn wake_at(
    next: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    fast_forward: bool,
) -> DateTime<Utc> {
    let poll = now + Duration::from_std(LOOK_EVERY).unwrap_or(Duration::minutes(1));
    match (next, fast_forward) {
        (Some(n), true) => n,
        (Some(n), false) => n.min(poll),
        (None, _) => poll,
    }
    .max(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_real_runner_looks_at_least_once_a_minute_and_a_fast_one_jumps() {
        let now = t("2026-11-22T10:00:00Z");
        let next = Some(t("2026-11-22T11:00:00Z"));
        assert_eq!(wake_at(next, now, false), t("2026-11-22T10:01:00Z"));
        assert_eq!(wake_at(next, now, true), t("2026-11-22T11:00:00Z"));
        assert_eq!(wake_at(None, now, true), t("2026-11-22T10:01:00Z"));
        assert_eq!(
            wake_at(Some(t("2026-11-22T09:00:00Z")), now, true),
            now,
            "something overdue: look now"
        );
    }

    #[test]
    fn a_jump_moves_the_clock_forward_only() {
        let start = t("2026-11-22T10:00:00Z");
        let c = Clock::starting_at(Some(start));
        c.jump_to(t("2026-11-22T12:00:00Z"));
        assert!(c.now() >= t("2026-11-22T12:00:00Z"));
        c.jump_to(start);
        assert!(c.now() >= t("2026-11-22T12:00:00Z"));
    }
}
