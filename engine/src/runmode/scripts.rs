//! Backup scripts: executables the runner starts before a policy's
//! snapshots, after them, and when the backup is complete (N2WS's before,
//! after and complete scripts).
//!
//! Each script runs in its own process group with standard input closed and
//! standard output discarded; standard error is captured (its last
//! [`OUTPUT_LIMIT`] bytes, after a line saying how many were cut) when the
//! policy collects output. A drill's check ([`run_isolated`]) has both its
//! streams captured so. A script that
//! outlives its timeout is killed with its whole process group and counts as
//! failed. Arguments and environment are documented in
//! docs/configuration.md.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most output kept per script run: its last bytes (where a failing
/// script says why); what came before is drained, counted and dropped.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The end of a script's output as it arrives: at most [`OUTPUT_LIMIT`]
/// bytes, and how many came before them.
#[derive(Default)]
struct Tail {
    kept: VecDeque<u8>,
    cut: usize,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend(bytes);
        let over = self.kept.len().saturating_sub(OUTPUT_LIMIT);
        self.kept.drain(..over);
        self.cut += over;
    }

    /// The kept text, after a line saying how much was cut before it.
    fn render(&self) -> String {
        let (a, b) = self.kept.as_slices();
        let bytes = [a, b].concat();
        // Never start inside a character.
        let skip = bytes
            .iter()
            .take_while(|&&c| self.cut > 0 && (c & 0xC0) == 0x80)
            .count();
        let text = String::from_utf8_lossy(&bytes[skip..]);
        match self.cut + skip {
            0 => text.into_owned(),
            n => format!("\u{2026} {n} bytes cut\n{text}"),
        }
    }
}

/// Reads `from` to its end into `tail`.
async fn keep_tail(mut from: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.lock().expect("output tail poisoned").push(&buf[..n]),
        }
    }
}

/// How one script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// `exit status 0`, `exit status 3`, `killed by signal 9`,
    /// `timed out after 30s`, `cannot start: ...`.
    pub detail: String,
    /// The end of the captured output (see [`OUTPUT_LIMIT`]).
    pub stderr: String,
}

/// A script path as written, resolved against the configuration directory:
/// the one rule for policy scripts and drill checks. Made absolute, so that
/// neither Lifeboat's working directory nor the script's (the
/// configuration directory) changes what a relative `--dir` and path name:
/// a program path relative to a working directory that differs from the
/// parent's is looked up from the child's.
pub fn resolve(config_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_dir.join(p)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

/// What a script keeps of Lifeboat's environment: enough to find programs
/// and format text, never AWS credentials or profiles. A backup script
/// runs on the runner's host with the rights of the runner's process, whose
/// credentials may reach every account; a drill's check runs beside
/// production with what it is given.
const KEPT_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// [`KEPT_ENV`] and `pass` (a scripts block's `pass_env`) of Lifeboat's
/// environment, then `env`.
fn isolated_env(pass: &[String], env: &[(String, String)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = KEPT_ENV
        .iter()
        .copied()
        .chain(pass.iter().map(String::as_str))
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    all.extend(env.iter().cloned());
    all
}

/// A drill's check: [`KEPT_ENV`] and `env` only; both streams kept.
pub async fn run_isolated(
    program: &Path,
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
) -> Outcome {
    let all = isolated_env(&[], env);
    spawn_and_wait(program, &[], &all, cwd, timeout, true, true).await
}

/// A backup's script: `program` with `args`, [`KEPT_ENV`], the variables
/// `pass` names and `env` (the documented `LIFEBOAT_` ones), killing its
/// process group after `timeout`. Standard output is discarded.
pub async fn run(
    program: &Path,
    args: &[String],
    pass: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    collect_output: bool,
) -> Outcome {
    let all = isolated_env(pass, env);
    spawn_and_wait(program, args, &all, cwd, timeout, collect_output, false).await
}

async fn spawn_and_wait(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    collect_output: bool,
    // A drill's check: what it prints on either stream is its report.
    with_stdout: bool,
) -> Outcome {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(if collect_output && with_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
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
    let tail = Arc::new(Mutex::new(Tail::default()));
    let mut readers = Vec::new();
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(keep_tail(err, tail.clone())));
    }
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(keep_tail(out, tail.clone())));
    }
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
    // A grandchild that left the group may hold a pipe open: do not wait
    // for it forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        for r in readers {
            let _ = r.await;
        }
    })
    .await;
    let stderr = tail.lock().expect("output tail poisoned").render();
    Outcome {
        ok,
        exit_code,
        detail,
        stderr,
    }
}

/// Kills the script's whole process group (its children included) with
/// the system call: a host or image without a `kill` program (or with an
/// empty `PATH`) still loses a runaway script. The group is the script's
/// own (`process_group(0)`), and the script is not reaped yet, so its id
/// cannot have been reused for another group.
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
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

    #[test]
    fn a_relative_script_is_resolved_from_the_configuration_directory_as_an_absolute_path() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(Path::new("conf"), "./check.sh"),
            cwd.join("conf").join("check.sh")
        );
        assert_eq!(
            resolve(Path::new("conf"), "/opt/c.sh"),
            Path::new("/opt/c.sh")
        );
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
            &[],
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
        let out = run(&p, &[], &[], &[], dir.path(), Duration::from_secs(5), true).await;
        assert!(!out.ok);
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stderr, "oops\n");
        let out = run(&p, &[], &[], &[], dir.path(), Duration::from_secs(5), false).await;
        assert!(!out.ok);
        assert_eq!(out.stderr, "");
        let missing = run(
            &dir.path().join("nope.sh"),
            &[],
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
        let out = run(
            &p,
            &[],
            &[],
            &[],
            dir.path(),
            Duration::from_millis(300),
            true,
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!out.ok);
        assert!(out.detail.contains("timed out"), "{}", out.detail);
        assert_eq!(out.stderr, "started\n");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the script's child outlived the kill");
    }

    #[tokio::test]
    async fn output_keeps_its_end_and_says_how_much_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        // 3000 lines of 41 bytes (123,000 bytes), then the line that says
        // what went wrong.
        let p = script(
            dir.path(),
            "loud.sh",
            "i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789 >&2; i=$((i+1)); done; echo 'error: the database refused the login' >&2; exit 2",
        );
        let out = run(&p, &[], &[], &[], dir.path(), Duration::from_secs(10), true).await;
        assert!(!out.ok);
        let total = 3000 * 41 + "error: the database refused the login\n".len();
        let first = out.stderr.lines().next().unwrap();
        assert_eq!(
            first,
            format!("\u{2026} {} bytes cut", total - OUTPUT_LIMIT)
        );
        assert!(
            out.stderr
                .ends_with("0123456789\nerror: the database refused the login\n"),
            "{}",
            &out.stderr[out.stderr.len() - 200..]
        );
        assert_eq!(out.stderr.len() - first.len() - 1, OUTPUT_LIMIT);
    }

    #[tokio::test]
    async fn an_isolated_script_keeps_the_end_of_both_its_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "check.sh",
            "head -c 100000 /dev/zero | tr '\\0' x; echo; echo 'connection refused' >&2; sleep 0.2; echo 'FAILED: port 5432'; exit 1",
        );
        let out = run_isolated(&p, &[], dir.path(), Duration::from_secs(10)).await;
        assert!(!out.ok);
        assert!(out.stderr.starts_with("\u{2026} "), "{}", &out.stderr[..40]);
        assert!(out.stderr.contains("connection refused\n"));
        assert!(out.stderr.ends_with("FAILED: port 5432\n"));
    }

    #[test]
    fn a_cut_never_starts_inside_a_character() {
        let mut t = Tail::default();
        t.push("é".repeat(OUTPUT_LIMIT).as_bytes());
        let s = t.render();
        let (first, rest) = s.split_once('\n').unwrap();
        assert!(rest.chars().all(|c| c == 'é'));
        assert_eq!(rest.len() % 2, 0);
        assert_eq!(
            first,
            format!("\u{2026} {} bytes cut", 2 * OUTPUT_LIMIT - rest.len())
        );
    }
}
