//! Backup scripts: executables the runner starts before a policy's
//! snapshots, after them, and when the backup is complete (N2WS's before,
//! after and complete scripts).
//!
//! Each script runs in its own process group with standard input closed and
//! standard output discarded; standard error is captured (at most
//! [`STDERR_LIMIT`] bytes) when the policy collects output. A script that
//! outlives its timeout is killed with its whole process group and counts as
//! failed. Arguments and environment are documented in
//! docs/configuration.md.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// The most stderr kept per script run; the rest is drained and dropped.
pub const STDERR_LIMIT: usize = 64 * 1024;

/// How one script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// `exit status 0`, `exit status 3`, `killed by signal 9`,
    /// `timed out after 30s`, `cannot start: ...`.
    pub detail: String,
    pub stderr: String,
}

/// A script path as written, resolved against the configuration directory.
pub fn resolve(config_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_dir.join(p)
    }
}

/// What a script that must not inherit Lifeboat's environment keeps of it:
/// enough to find programs and format text, never AWS credentials or
/// profiles (a drill's check runs beside production with what it is given).
const KEPT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// [`run`] with only [`KEPT_ENV`] of Lifeboat's environment, and `env`.
pub async fn run_isolated(
    program: &Path,
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
) -> Outcome {
    let mut all: Vec<(String, String)> = KEPT_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    all.extend(env.iter().cloned());
    spawn_and_wait(program, &[], &all, cwd, timeout, true, true).await
}

/// Runs `program` with `args` and extra `env`, killing its process group
/// after `timeout`.
pub async fn run(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    collect_output: bool,
) -> Outcome {
    spawn_and_wait(program, args, env, cwd, timeout, collect_output, false).await
}

async fn spawn_and_wait(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    collect_output: bool,
    clear_env: bool,
) -> Outcome {
    let mut cmd = tokio::process::Command::new(program);
    if clear_env {
        cmd.env_clear();
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if collect_output {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ok: false,
                exit_code: None,
                detail: format!("cannot start {}: {e}", program.display()),
                stderr: String::new(),
            }
        }
    };
    let reader = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            let mut dropped = false;
            loop {
                match err.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = STDERR_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                        dropped |= n > room;
                    }
                }
            }
            let mut s = String::from_utf8_lossy(&kept).into_owned();
            if dropped {
                s.push_str("\n[stderr truncated]\n");
            }
            s
        })
    });
    let pid = child.id();
    let (ok, exit_code, detail) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (
            status.success(),
            status.code(),
            match status.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            },
        ),
        Ok(Err(e)) => (false, None, format!("cannot wait for the script: {e}")),
        Err(_) => {
            kill_group(pid);
            let _ = child.kill().await;
            (
                false,
                None,
                format!("timed out after {}s and was killed", timeout.as_secs_f64()),
            )
        }
    };
    let stderr = match reader {
        // A grandchild that left the group may hold the pipe open: do not
        // wait for it forever.
        Some(r) => tokio::time::timeout(Duration::from_secs(2), r)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => String::new(),
    };
    Outcome {
        ok,
        exit_code,
        detail,
        stderr,
    }
}

/// Kills the script's whole process group (its children included).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn a_script_gets_its_arguments_and_environment_and_its_stderr_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "ok.sh",
            "echo \"args=$1,$2 policy=$LIFEBOAT_POLICY\" >&2; echo to-stdout",
        );
        let out = run(
            &p,
            &["web".into(), "b1".into()],
            &[("LIFEBOAT_POLICY".into(), "web".into())],
            dir.path(),
            Duration::from_secs(5),
            true,
        )
        .await;
        assert!(out.ok, "{out:?}");
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.stderr, "args=web,b1 policy=web\n");
    }

    #[tokio::test]
    async fn a_failing_script_fails_and_output_is_not_kept_unless_collected() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "bad.sh", "echo oops >&2; exit 3");
        let out = run(&p, &[], &[], dir.path(), Duration::from_secs(5), true).await;
        assert!(!out.ok);
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stderr, "oops\n");
        let out = run(&p, &[], &[], dir.path(), Duration::from_secs(5), false).await;
        assert!(!out.ok);
        assert_eq!(out.stderr, "");
        let missing = run(
            &dir.path().join("nope.sh"),
            &[],
            &[],
            dir.path(),
            Duration::from_secs(5),
            true,
        )
        .await;
        assert!(!missing.ok && missing.detail.starts_with("cannot start"));
    }

    #[tokio::test]
    async fn a_script_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let p = script(
            dir.path(),
            "slow.sh",
            &format!(
                "echo started >&2; (sleep 2; touch {}) & sleep 30",
                marker.display()
            ),
        );
        let started = std::time::Instant::now();
        let out = run(&p, &[], &[], dir.path(), Duration::from_millis(300), true).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!out.ok);
        assert!(out.detail.contains("timed out"), "{}", out.detail);
        assert_eq!(out.stderr, "started\n");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the script's child outlived the kill");
    }

    #[tokio::test]
    async fn stderr_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "loud.sh",
            "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789 >&2; i=$((i+1)); done",
        );
        let out = run(&p, &[], &[], dir.path(), Duration::from_secs(10), true).await;
        assert!(out.ok);
        assert!(out.stderr.len() <= STDERR_LIMIT + 40);
        assert!(out.stderr.ends_with("[stderr truncated]\n"));
    }
}
