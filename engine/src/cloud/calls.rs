//! How many requests Lifeboat sent to AWS, per service and action, and how
//! many of them AWS answered with a throttle. The providers count every
//! attempt the SDK makes (its own retries included, as AWS's rate limits
//! count them); run mode reports the totals as metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The counts of one action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Requests sent (every attempt).
    pub calls: u64,
    /// Answers that said "slow down" (throttling, request limits).
    pub throttled: u64,
}

/// Requests per (service, action), shared by every client of a process.
#[derive(Debug, Default)]
pub struct CallCounts {
    by_action: Mutex<BTreeMap<(String, String), CallCount>>,
}

impl CallCounts {
    /// Counts one request of `service` (lower case, as in IAM actions:
    /// `ec2`) and `action` (`CreateSnapshots`), throttled or not.
    pub fn record(&self, service: &str, action: &str, throttled: bool) {
        let mut m = self.by_action.lock().expect("call counts");
        let key = (service.to_ascii_lowercase(), action.to_owned());
        let c = m.entry(key).or_default();
        c.calls += 1;
        c.throttled += u64::from(throttled);
    }

    /// The counts so far, ordered by service then action.
    pub fn snapshot(&self) -> BTreeMap<(String, String), CallCount> {
        self.by_action.lock().expect("call counts").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_throttles_are_counted_per_service_and_action() {
        let c = CallCounts::default();
        c.record("EC2", "CreateSnapshots", false);
        c.record("ec2", "CreateSnapshots", true);
        c.record("RDS", "CreateDBSnapshot", false);
        let s = c.snapshot();
        assert_eq!(
            s[&("ec2".into(), "CreateSnapshots".into())],
            CallCount {
                calls: 2,
                throttled: 1
            }
        );
        assert_eq!(s[&("rds".into(), "CreateDBSnapshot".into())].calls, 1);
    }
}
