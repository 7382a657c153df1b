//! Who holds a lock or lease, precisely enough to tell whether that holder
//! still runs: the host, the kernel's boot, the pid namespace, the pid and
//! the process's start time. A pid alone is reused by the kernel, so a dead
//! holder's pid may name a live stranger (which would wedge the workspace
//! until expiry) and a live holder must never look dead; the start time
//! tells them apart. Two containers may share a host name but not a pid
//! namespace: a holder in another namespace (or another boot, or another
//! host) cannot be looked at and is waited for until its hold expires.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The identity of a process holding a lock or lease. The fields other
/// than `host` and `pid` are `None` where the system does not offer them
/// (no `/proc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderId {
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id`: a reboot restarts pids and start
    /// times, so a hold from an earlier boot must not match a process now.
    pub boot_id: Option<String>,
    /// The target of `/proc/self/ns/pid`, as `pid:[INODE]`.
    pub pid_ns: Option<String>,
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks since boot.
    pub start: Option<u64>,
}

/// Whether a holder may still be running, as seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// In this host's boot and pid namespace, and its process runs.
    Alive,
    /// In this host's boot and pid namespace, and its process is gone (or
    /// its pid now belongs to a process started at another time).
    Gone,
    /// Elsewhere (another host, boot or pid namespace): it cannot be looked
    /// at, so only its hold's expiry frees it.
    Unknown,
}

impl HolderId {
    /// This process.
    pub fn current() -> HolderId {
        let pid = std::process::id();
        HolderId {
            host: host_name(),
            boot_id: read_trimmed(Path::new("/proc/sys/kernel/random/boot_id")),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
            pid,
            start: start_time(pid),
        }
    }

    /// Is the process this identity names still running? Judged only when
    /// it lives in the same host, boot and pid namespace as this process.
    pub fn liveness(&self) -> Liveness {
        let me = HolderId::current();
        if self.host != me.host || self.boot_id != me.boot_id || self.pid_ns != me.pid_ns {
            return Liveness::Unknown;
        }
        if !Path::new("/proc").is_dir() {
            // Nothing to look at: the safe side is to wait for the expiry.
            return Liveness::Unknown;
        }
        if !Path::new("/proc").join(self.pid.to_string()).exists() {
            return Liveness::Gone;
        }
        match (self.start, start_time(self.pid)) {
            (Some(recorded), Some(now)) if recorded != now => Liveness::Gone,
            // The process ended between the two looks.
            (Some(_), None) => Liveness::Gone,
            _ => Liveness::Alive,
        }
    }
}

/// How long past its start (or the end of a drill's `keep_for`) a drill or
/// restore may still be running in a process this one cannot see (another
/// host, a host rebooted since, another container): no drill's or
/// restore's waits take that long, so its process is gone.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::hours(12);

impl HolderId {
    /// Whether the process that started a drill or a restore at `since` is
    /// gone: seen to be, or unseen for longer than [`ABANDONED_AFTER`] (else
    /// one killed by a reboot or a container restart would stay forever).
    /// The one rule for drills and restores alike.
    pub fn gone_since(&self, since: chrono::DateTime<chrono::Utc>) -> bool {
        match self.liveness() {
            Liveness::Gone => true,
            Liveness::Unknown => chrono::Utc::now() - since > ABANDONED_AFTER,
            Liveness::Alive => false,
        }
    }
}

/// This machine's name, as holds record it.
pub fn host_name() -> String {
    read_trimmed(Path::new("/etc/hostname"))
        .or_else(|| read_trimmed(Path::new("/proc/sys/kernel/hostname")))
        .unwrap_or_else(|| "localhost".into())
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), `None` when there is no such process or no `/proc`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are
/// counted after its last `)`: the first one there is field 3.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_even_when_the_command_name_holds_spaces_and_parentheses() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_and_a_pid_with_another_start_time_is_gone() {
        let me = HolderId::current();
        assert!(me.start.is_some());
        assert_eq!(me.liveness(), Liveness::Alive);
        let reused = HolderId {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Gone);
        let elsewhere = HolderId {
            pid_ns: Some("pid:[1]".into()),
            ..me
        };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
    }
}
