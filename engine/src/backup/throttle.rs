//! Create calls AWS throttled are tried again, not failed.
//!
//! The SDK retries a throttled call a few times within a second or two; a
//! backup of hundreds of targets can outlast that (per-account request
//! rates, one snapshot per volume every ~15 s, pending snapshot limits).
//! Nothing is wrong with such a target: waiting fixes it. So a create call
//! that still ends `Throttled` is made again after a jittered, exponentially
//! growing pause, for as long as the backup's timeout leaves time; only a
//! call still throttled when that time is up fails its target.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{CloudResult, ErrorKind};

/// The first pause after a throttled call; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between two tries.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// When a backup's create calls stop being retried: `timeout` from now, or
/// practically never when `timeout` is past what an instant holds.
pub(super) fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Half of `pause` plus a random part of the other half ("equal jitter"):
/// the targets throttled together do not all come back together.
fn jittered(pause: Duration, attempt: u32) -> Duration {
    let half = pause / 2;
    let random = RandomState::new().hash_one(attempt);
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random % millis)
}

/// Makes `call` until it is not throttled, or until the next try would
/// start after `deadline`; then the last error stands.
pub(super) async fn retry_throttled<T, F, Fut>(deadline: Instant, mut call: F) -> CloudResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = CloudResult<T>>,
{
    let mut pause = FIRST_PAUSE;
    let mut attempt = 0u32;
    loop {
        match call().await {
            Err(e) if e.kind == ErrorKind::Throttled => {
                let wait = jittered(pause, attempt);
                if Instant::now() + wait >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                attempt = attempt.saturating_add(1);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudError;

    fn throttled() -> CloudError {
        CloudError {
            kind: ErrorKind::Throttled,
            account: "main".into(),
            region: "us-east-1".into(),
            action: "ec2:CreateSnapshots".into(),
            resource: Some("i-1".into()),
            code: Some("RequestLimitExceeded".into()),
            message: "Request limit exceeded.".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_are_made_again_with_growing_pauses() {
        let started = Instant::now();
        let mut calls = 0;
        let r = retry_throttled(deadline(Duration::from_secs(600)), || {
            calls += 1;
            std::future::ready(if calls <= 4 {
                Err(throttled())
            } else {
                Ok(calls)
            })
        })
        .await;
        assert_eq!(r.unwrap(), 5);
        // Pauses of at least 0.5, 1, 2 and 4 s, at most 1, 2, 4 and 8 s.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(7_500), "{waited:?}");
        assert!(waited <= Duration::from_secs(15), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_still_throttled_at_the_deadline_fails_and_others_fail_at_once() {
        let started = Instant::now();
        let mut calls = 0;
        let r: CloudResult<()> = retry_throttled(deadline(Duration::from_secs(120)), || {
            calls += 1;
            std::future::ready(Err(throttled()))
        })
        .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Throttled);
        assert!(started.elapsed() <= Duration::from_secs(120));
        assert!(calls > 3, "{calls}");

        let mut calls = 0;
        let r: CloudResult<()> = retry_throttled(deadline(Duration::from_secs(120)), || {
            calls += 1;
            std::future::ready(Err(CloudError {
                kind: ErrorKind::AccessDenied,
                ..throttled()
            }))
        })
        .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::AccessDenied);
        assert_eq!(calls, 1);
        // A timeout no instant can hold does not overflow.
        deadline(Duration::MAX);
    }
}
