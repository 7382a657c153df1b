//! The harness every integration test shares (`mod support;`).
//!
//! An integration test runs the real `lifeboat` binary against a real AWS
//! API: moto's server, installed into `<repo>/.venv` by
//! `scripts/emulator-env.sh`. Three pieces:
//!
//! - [`Emulator`]: one moto server per test, on its own loopback port, killed
//!   when dropped. Tests run in parallel threads; a private server means no
//!   test sees another's instances or snapshots.
//! - [`Workspace`]: a temporary configuration directory and a way to run
//!   `lifeboat` in it with the emulator's endpoint and fake credentials, stdin
//!   closed, returning a [`Run`] (exit code, stdout, stderr) with assertions.
//! - [`Aws`]: the test's own EC2 client for fixtures (instances with EBS
//!   volumes, tags, termination) and for reading back what lifeboat did
//!   (snapshots and their tags).
//!
//! Keep fixtures small: the emulator is single-threaded (~150 requests/s).

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod network;
pub mod placed;
pub mod power;
pub mod restored;
pub mod targets;
pub mod topic;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, InstanceType, ResourceType, Tag, TagSpecification,
};

/// The fake access key given to lifeboat and to the fixtures.
pub const ACCESS_KEY_ID: &str = "AKIALIFEBOATTEST0001";
/// The fake secret key. Distinctive on purpose: a test asserts that it never
/// reaches the state file, a plan file or any output.
pub const SECRET_ACCESS_KEY: &str = "lifeboat-test-secret-7Qx2Vb9Kp4Zr";
/// The external id tests give an assumed role. Distinctive on purpose,
/// like the secret key: Lifeboat may print and write neither.
pub const EXTERNAL_ID: &str = "lifeboat-test-external-id-4Wm9";
/// What every run's output and every file Lifeboat leaves in a workspace
/// are checked for, in every test of the suite ([`execute`] and
/// [`Workspace`]'s drop).
const NEVER_WRITTEN: &[&str] = &[SECRET_ACCESS_KEY, EXTERNAL_ID];
/// The account every plain access key maps to in the emulator.
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// How long one `lifeboat` invocation may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the emulator may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// Emulator

/// A moto server on a free loopback port, stopped when dropped.
pub struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Starts a fresh emulator and waits until it answers HTTP.
    ///
    /// The server binary is `<repo>/.venv/bin/moto_server`, or the path in
    /// `LIFEBOAT_MOTO_SERVER` when set.
    pub fn start() -> Emulator {
        let server = std::env::var_os("LIFEBOAT_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/moto_server"));
        assert!(
            server.exists(),
            "the AWS emulator is not installed: {} is missing.\n\
             Run scripts/emulator-env.sh (or scripts/test.sh, which runs it) first.",
            server.display()
        );
        // Another process can take the port between our probe and moto's
        // bind; moto then exits at once and we try a new port.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            let mut emulator = Emulator { child, port };
            match emulator.wait_until_ready() {
                Ok(()) => return emulator,
                Err(e) => last_error = e, // dropping `emulator` kills it
            }
        }
        panic!("the AWS emulator did not start: {last_error}");
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "moto_server exited with {status} (port {})",
                    self.port
                ));
            }
            if http_answers(self.port) {
                // Answering is not enough: the answer must come from our own
                // server, still running once it has had time to bind.
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "moto_server exited with {status} after port {} answered",
                        self.port
                    ));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer on port {} within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, the value of `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the emulator: from now on every AWS call fails.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on and that this test process has not
/// handed out before.
///
/// Tests run in parallel threads, and the kernel may give a port just probed
/// by one thread to another before the first thread's emulator binds it. The
/// second emulator then fails to bind, while the first one answers on its
/// port: the second test would talk to the first test's emulator, and lose it
/// when that test ends. Never handing a port out twice closes that.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        if !given.contains(&port) && !http_answers(port) {
            given.push(port);
            return port;
        }
    }
}

/// True when something on `port` answers a plain HTTP request.
fn http_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

// ---------------------------------------------------------------------------
// Workspace and runs

/// A temporary configuration directory in which `lifeboat` runs.
pub struct Workspace {
    dir: tempfile::TempDir,
    endpoint: String,
    /// The files a test wrote ([`Workspace::write`]): its inputs, which
    /// may hold an external id. Every other file is Lifeboat's.
    inputs: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl Drop for Workspace {
    /// Checks every file Lifeboat left in the workspace (state, WAL, plans,
    /// reports, templates, logs, spawned runs' output) for a credential or
    /// an external id. Not while a test is already failing.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let inputs = self.inputs.lock().map(|i| i.clone()).unwrap_or_default();
        let mut found = Vec::new();
        scan_for_secrets(self.dir.path(), &inputs, &mut found);
        assert!(
            found.is_empty(),
            "Lifeboat wrote what it must never write: {found:?}"
        );
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn scan_for_secrets(
    path: &Path,
    inputs: &std::collections::BTreeSet<PathBuf>,
    found: &mut Vec<String>,
) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            scan_for_secrets(&entry.path(), inputs, found);
        }
    } else if meta.is_file() && !inputs.contains(path) {
        let bytes = std::fs::read(path).unwrap_or_default();
        for secret in NEVER_WRITTEN {
            if contains(&bytes, secret) {
                found.push(format!("{secret:?} in {}", path.display()));
            }
        }
    }
}

impl Workspace {
    /// A workspace whose `lifeboat` talks to `emulator`.
    pub fn new(emulator: &Emulator) -> Workspace {
        Workspace::with_endpoint(emulator.endpoint())
    }

    /// A workspace for commands that must not need AWS (`validate`, `fmt`):
    /// the endpoint is a loopback port where nothing listens, so any AWS
    /// call fails fast instead of reaching the internet.
    pub fn offline() -> Workspace {
        Workspace::with_endpoint(format!("http://127.0.0.1:{}", free_port()))
    }

    fn with_endpoint(endpoint: String) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-test-")
            .tempdir()
            .expect("create a temporary directory");
        Workspace {
            dir,
            endpoint,
            inputs: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` (relative to the workspace), creating directories.
    pub fn write(&self, name: &str, contents: &str) -> &Self {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        if let Ok(mut inputs) = self.inputs.lock() {
            inputs.insert(path);
        }
        self
    }

    pub fn read(&self, name: &str) -> String {
        let path = self.path().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Replaces the one occurrence of `from` in file `name` with `to`.
    pub fn edit(&self, name: &str, from: &str, to: &str) {
        let text = self.read(name);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{from:?} should occur once in {name}:\n{text}"
        );
        self.write(name, &text.replacen(from, to, 1));
    }

    /// Runs `lifeboat ARGS` in the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.path(), args)
    }

    /// Runs `lifeboat ARGS` with `cwd` as the working directory (for `--dir`).
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Run {
        self.run_with(cwd, args, &[])
    }

    /// Runs `lifeboat ARGS` with extra environment variables (failpoints).
    pub fn run_env(&self, envs: &[(&str, &str)], args: &[&str]) -> Run {
        self.run_with(self.path(), args, envs)
    }

    /// Runs `lifeboat ARGS` in `cwd` with extra environment variables.
    pub fn run_with(&self, cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
        execute(self.command(cwd, args, envs), args)
    }

    /// Runs `lifeboat ARGS` in the workspace under the umask `mask` (octal,
    /// as `umask` takes it). A shell sets it and then becomes the binary
    /// (`exec`): a test cannot set a child's umask itself without unsafe
    /// code, which the workspace forbids.
    pub fn run_umask(&self, mask: &str, args: &[&str]) -> Run {
        let plain = self.command(self.path(), args, &[]);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
            .arg(plain.get_program())
            .args(plain.get_args())
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in plain.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        execute(cmd, args)
    }

    /// Starts `lifeboat ARGS` in the workspace and returns at once, its
    /// output going to the files `stdout` and `stderr` there (read them
    /// while it runs). Killed when the returned value drops.
    pub fn spawn(&self, args: &[&str], stdout: &str, stderr: &str) -> Spawned {
        self.spawn_env(&[], args, stdout, stderr)
    }

    /// [`Workspace::spawn`] with extra environment variables (failpoints).
    pub fn spawn_env(
        &self,
        envs: &[(&str, &str)],
        args: &[&str],
        stdout: &str,
        stderr: &str,
    ) -> Spawned {
        let file = |name: &str| {
            std::fs::File::create(self.path().join(name)).expect("create an output file")
        };
        let mut cmd = self.command(self.path(), args, envs);
        cmd.stdout(file(stdout)).stderr(file(stderr));
        Spawned(cmd.spawn().expect("start the lifeboat binary"))
    }

    /// `lifeboat ARGS` as a command not yet started (for a test that runs
    /// several at once, or kills one), with the environment of [`run`].
    pub fn command(&self, cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.envs(envs.iter().copied());
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Nothing from the developer's own AWS setup may leak in.
        for var in [
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
        ] {
            cmd.env_remove(var);
        }
        // The SDK's tracing only where a test asks for it.
        if !envs.iter().any(|(k, _)| *k == "LIFEBOAT_LOG") {
            cmd.env_remove("LIFEBOAT_LOG");
        }
        let nowhere = self.path().join(".no-aws-config");
        cmd.env("AWS_CONFIG_FILE", &nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LIFEBOAT_AWS_MAX_ATTEMPTS", "1")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Every byte under `.lifeboat/` (state database, WAL, lock files).
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        collect_bytes(&self.path().join(".lifeboat"), &mut out);
        out
    }
}

fn collect_bytes(path: &Path, out: &mut Vec<u8>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            collect_bytes(&entry, out);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        out.extend(bytes);
    }
}

fn execute(mut cmd: Command, args: &[&str]) -> Run {
    let mut child = cmd.spawn().expect("start the lifeboat binary");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for lifeboat") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`lifeboat {}` did not finish within {RUN_TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    };
    // Every line any test makes Lifeboat print, checked.
    for secret in NEVER_WRITTEN {
        assert!(
            !run.all().contains(secret),
            "Lifeboat printed {secret:?}\n{run}"
        );
    }
    run
}

/// A `lifeboat` started with [`Workspace::spawn`], killed when dropped
/// (a failed test leaves no process behind).
pub struct Spawned(pub Child);

impl Spawned {
    /// Sends `signal` (a name such as `HUP`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {}", self.0.id());
    }

    /// Waits for the process to end by itself, up to `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for lifeboat") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The outcome of one `lifeboat` invocation. Assertions print the whole run
/// (arguments, exit code, stdout, stderr) when they fail.
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ lifeboat {}", self.args.join(" "))?;
        writeln!(f, "exit code: {}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl Run {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, expected: i32) -> Run {
        assert_eq!(self.code, expected, "unexpected exit code\n{self}");
        self
    }

    /// stdout followed by stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stdout.contains(needle),
            "stdout should not contain {needle:?}\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}\n{self}"
        );
        self
    }

    /// Asserts that stdout or stderr contains `needle`, ignoring case.
    #[track_caller]
    pub fn mentions(&self, needle: &str) -> &Run {
        assert!(
            self.all().to_lowercase().contains(&needle.to_lowercase()),
            "output should mention {needle:?}\n{self}"
        );
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{self}"))
    }

    /// The change lines of a human plan with action `sign` (`+`, `-`, `~`),
    /// trimmed: `- snapshot["snap-1"]  (reason)`, whatever their nesting.
    /// Attribute diff lines (`-   "generations": 2,`) are not changes.
    pub fn changes(&self, sign: &str) -> Vec<String> {
        const ADDRESSES: [&str; 4] = ["account.", "policy.", "backup.", "snapshot["];
        self.stdout
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.strip_prefix(sign)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .is_some_and(|rest| ADDRESSES.iter().any(|a| rest.starts_with(a)))
            })
            .map(str::to_string)
            .collect()
    }

    /// The plan line (trimmed) for `address` with action `sign` (`+`, `-`,
    /// `~`), or a panic listing the plan.
    #[track_caller]
    pub fn plan_line(&self, sign: &str, address: &str) -> String {
        let prefix = format!("{sign} {address}");
        self.stdout
            .lines()
            .map(str::trim)
            .find(|l| *l == prefix || l.starts_with(&format!("{prefix} ")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("plan should contain `{prefix}`\n{self}"))
    }

    /// The numbers of `Plan: N to add, N to change, N to destroy.`
    #[track_caller]
    pub fn plan_summary(&self) -> (u64, u64, u64) {
        let line = self
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("Plan: "))
            .unwrap_or_else(|| panic!("no `Plan: ...` summary line\n{self}"));
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 3, "malformed summary line {line:?}\n{self}");
        let expected = format!(
            "Plan: {} to add, {} to change, {} to destroy.",
            numbers[0], numbers[1], numbers[2]
        );
        assert_eq!(line, expected, "summary line wording\n{self}");
        (numbers[0], numbers[1], numbers[2])
    }

    /// Asserts the run printed `No changes.` at the start of a line.
    #[track_caller]
    pub fn no_changes(&self) -> &Run {
        assert!(
            self.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("No changes.")),
            "expected `No changes.`\n{self}"
        );
        self
    }
}

// ---------------------------------------------------------------------------
// Configuration fixtures

/// The quickstart configuration: account `main` in us-east-1 and policy
/// `web` with the given generations, explicit instances, the `team=web` tag
/// selector when `select` is true, and `auto_remove_targets`.
pub fn config(generations: u32, instances: &[&str], select: bool, auto_remove: &str) -> String {
    let mut out =
        String::from("account \"main\" {\n  regions = [\"us-east-1\"]\n}\n\npolicy \"web\" {\n");
    out.push_str("  account     = account.main\n");
    out.push_str(&format!("  generations = {generations}\n"));
    for id in instances {
        out.push_str(&format!(
            "  instance \"{id}\" {{ region = \"us-east-1\" }}\n"
        ));
    }
    if select {
        out.push_str("  select {\n    tag   = \"team\"\n    value = \"web\"\n  }\n");
    }
    out.push_str(&format!("  auto_remove_targets = \"{auto_remove}\"\n}}\n"));
    out
}

/// Address helpers, in the one printed form.
pub fn target(id: &str) -> String {
    format!("policy.web.target[\"{id}\"]")
}
pub fn snapshot(id: &str) -> String {
    format!("snapshot[\"{id}\"]")
}
pub fn backup(id: &str) -> String {
    format!("backup.web[\"{id}\"]")
}

// ---------------------------------------------------------------------------
// AWS fixtures

/// An instance created for a test, with its EBS volumes in device order.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub volumes: Vec<String>,
}

/// A snapshot as the emulator reports it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub tags: BTreeMap<String, String>,
}

/// The test's own EC2 client (us-east-1), blocking on a private runtime.
pub struct Aws {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
}

impl Aws {
    pub fn new(emulator: &Emulator) -> Aws {
        Aws::in_region(emulator, REGION)
    }

    /// A client of `region`.
    pub fn in_region(emulator: &Emulator, region: &str) -> Aws {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(emulator.endpoint())
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "lifeboat-tests",
            ))
            .retry_config(aws_sdk_ec2::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        Aws {
            rt,
            ec2: aws_sdk_ec2::Client::from_conf(conf),
        }
    }

    /// Snapshots one volume with the given description and tags, as an
    /// interrupted lifeboat would have left it; returns the snapshot id.
    pub fn snapshot_volume(
        &self,
        volume_id: &str,
        description: &str,
        tags: &[(&str, &str)],
    ) -> String {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let spec = tags.iter().fold(
            TagSpecification::builder().resource_type(ResourceType::Snapshot),
            |b, (k, v)| b.tags(Tag::builder().key(*k).value(*v).build()),
        );
        let out = self
            .rt
            .block_on(
                self.ec2
                    .create_snapshot()
                    .volume_id(volume_id)
                    .description(description)
                    .tag_specifications(spec.build())
                    .send(),
            )
            .expect("CreateSnapshot in the emulator");
        out.snapshot_id().expect("a snapshot id").to_string()
    }

    /// Runs one instance with `volumes` EBS volumes (the first is the root
    /// device) and the given tags.
    pub fn run_instance(&self, volumes: usize, tags: &[(&str, &str)]) -> Instance {
        assert!(volumes >= 1, "an instance has at least its root volume");
        let mut req = self
            .ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1);
        for i in 0..volumes {
            let device = if i == 0 {
                "/dev/sda1".to_string()
            } else {
                format!("/dev/sd{}", (b'e' + i as u8) as char)
            };
            req = req.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(EbsBlockDevice::builder().volume_size(1).build())
                    .build(),
            );
        }
        if !tags.is_empty() {
            let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
            for (k, v) in tags {
                spec = spec.tags(Tag::builder().key(*k).value(*v).build());
            }
            req = req.tag_specifications(spec.build());
        }
        let out = self.rt.block_on(req.send()).expect("RunInstances");
        let instance = &out.instances()[0];
        let attached = instance
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
            .collect::<Vec<_>>();
        assert_eq!(
            attached.len(),
            volumes,
            "the emulator attaches every mapped volume"
        );
        Instance {
            id: instance.instance_id().unwrap().to_string(),
            volumes: attached,
        }
    }

    pub fn terminate(&self, instance_id: &str) {
        self.rt
            .block_on(
                self.ec2
                    .terminate_instances()
                    .instance_ids(instance_id)
                    .send(),
            )
            .expect("TerminateInstances");
    }

    /// Snapshots of this account carrying tag `key` = `value`.
    pub fn snapshots_tagged(&self, key: &str, value: &str) -> Vec<Snapshot> {
        self.describe_snapshots(vec![Filter::builder()
            .name(format!("tag:{key}"))
            .values(value)
            .build()])
    }

    /// Every snapshot lifeboat created (tag key `lifeboat:policy`).
    pub fn lifeboat_snapshots(&self) -> Vec<Snapshot> {
        self.describe_snapshots(vec![Filter::builder()
            .name("tag-key")
            .values("lifeboat:policy")
            .build()])
    }

    /// Sorted ids of the snapshots of backup `backup_id`.
    pub fn backup_snapshot_ids(&self, backup_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .snapshots_tagged("lifeboat:backup-id", backup_id)
            .into_iter()
            .map(|s| s.id)
            .collect();
        ids.sort();
        ids
    }

    pub fn count_snapshots(&self) -> usize {
        self.lifeboat_snapshots().len()
    }

    fn describe_snapshots(&self, mut filters: Vec<Filter>) -> Vec<Snapshot> {
        filters.push(
            Filter::builder()
                .name("owner-id")
                .values(ACCOUNT_ID)
                .build(),
        );
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_snapshots()
                    .set_filters(Some(filters))
                    .send(),
            )
            .expect("DescribeSnapshots");
        out.snapshots()
            .iter()
            .map(|s| Snapshot {
                id: s.snapshot_id().unwrap_or_default().to_string(),
                volume_id: s.volume_id().unwrap_or_default().to_string(),
                tags: s
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_string(),
                            t.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Everything at once

/// An emulator, a workspace talking to it and a fixture client: what most
/// tests start with. Fields drop in order, so the emulator stops last.
pub struct Env {
    pub ws: Workspace,
    pub aws: Aws,
    pub emulator: Emulator,
}

impl Env {
    pub fn start() -> Env {
        let emulator = Emulator::start();
        Env {
            ws: Workspace::new(&emulator),
            aws: Aws::new(&emulator),
            emulator,
        }
    }

    /// Writes `main.lb.hcl`.
    pub fn config(&self, text: &str) -> &Self {
        self.ws.write("main.lb.hcl", text);
        self
    }

    /// `lifeboat ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.ws.run(args)
    }

    /// `lifeboat apply --auto-approve`, asserted to succeed.
    #[track_caller]
    pub fn apply(&self) -> Run {
        self.ws.run(&["apply", "--auto-approve"]).ok()
    }

    /// `lifeboat --now AT backup POLICY`, asserted to succeed.
    #[track_caller]
    pub fn backup(&self, policy: &str, at: &str) -> Run {
        self.ws.run(&["--now", at, "backup", policy]).ok()
    }

    /// `lifeboat plan --detailed-exitcode`, asserted to report no changes.
    #[track_caller]
    pub fn assert_converged(&self) {
        let run = self.ws.run(&["plan", "--detailed-exitcode"]);
        let run = run.code(0);
        run.no_changes();
    }

    /// `lifeboat backups --json`, parsed.
    #[track_caller]
    pub fn backups(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["backups", "--json"];
        args.extend_from_slice(extra);
        let run = self.ws.run(&args).ok();
        match run.json() {
            serde_json::Value::Array(items) => items,
            other => panic!("`backups --json` prints an array, got {other}\n{run}"),
        }
    }

    /// `lifeboat state list`, one address per line.
    #[track_caller]
    pub fn state_list(&self) -> Vec<String> {
        let run = self.ws.run(&["state", "list"]).ok();
        run.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The backup id (and `--now` value) for 2026-11-22 at `hour`:00 UTC.
pub fn at(hour: u32) -> String {
    format!("2026-11-22T{hour:02}:00:00Z")
}
