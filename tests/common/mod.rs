//! Test harness for multi-process tests: starts real `werify node` processes on
//! 127.0.0.x, runs `werify ctl`, polls until a condition holds, and kills every process it
//! started (by PID, on drop). Each test uses its own port so tests can run in parallel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_werify");

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("werify-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `werify node` process.
pub struct Node {
    pub ip: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Starts `werify node --bind IP --port PORT --data-dir DIR --profile local EXTRA…`.
    pub fn start(dir: &Path, index: u8, port: u16, extra: &[&str]) -> Node {
        let ip = format!("127.0.0.{index}");
        let data_dir = dir.join(format!("node{index}"));
        std::fs::create_dir_all(&data_dir).expect("node dir");
        let mut n = Node {
            log: dir.join(format!("node{index}.log")),
            ip,
            port,
            data_dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = cli(&["node", "--bind", &self.ip, "--port", &self.port.to_string()])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--profile", "local"])
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn werify node");
        self.child = Some(child);
    }

    /// SIGKILL, like `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same node again (same address, data dir and flags).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `werify ctl --connect ADDR ARGS…` (with `env` applied) and returns its output.
pub fn ctl(addr: &str, args: &[&str]) -> Output {
    ctl_env(addr, args, &[])
}

pub fn ctl_env(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = cli(&["ctl", "--connect", addr]);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run werify ctl")
}

/// `werify ARGS…` without the caller's `WERIFY_*` settings and with no stdin.
fn cli(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("WERIFY_ENV")
        .env_remove("WERIFY_SECRET")
        .env_remove("WERIFY_CONNECT")
        .stdin(Stdio::null());
    cmd
}

/// `werify mesh status --connect ADDR --output json` (env variables cleared), parsed;
/// None if it failed or printed no JSON.
pub fn status_json(addr: &str) -> Option<serde_json::Value> {
    let o = cli(&["mesh", "status", "--connect", addr, "--output", "json"])
        .output()
        .ok()?;
    serde_json::from_slice(&o.stdout).ok()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Hosts listed under "Active hosts" and "Inactive hosts" by `ctl list` on `addr`.
pub fn list(addr: &str) -> Option<(Vec<String>, Vec<String>)> {
    let o = ctl(addr, &["--timeout", "3s", "list"]);
    if !o.status.success() {
        return None;
    }
    Some(parse_list(&stdout(&o)))
}

/// Hosts under "Active hosts" and "Inactive hosts" of `ctl list` text.
pub fn parse_list(text: &str) -> (Vec<String>, Vec<String>) {
    let mut active = Vec::new();
    let mut inactive = Vec::new();
    let mut section = 0;
    for line in text.lines() {
        if line.starts_with("Active hosts") {
            section = 1;
        } else if line.starts_with("Inactive hosts") {
            section = 2;
        } else if line == "End of list" {
            break;
        } else if section == 1 {
            active.push(line.to_string());
        } else if section == 2 {
            inactive.push(line.to_string());
        }
    }
    (active, inactive)
}

/// Polls `f` every 100 ms until it returns true or `limit` passes; returns how long it took.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Every node lists exactly `expected_active` as active and `expected_inactive` as inactive.
pub fn all_agree(
    nodes: &[&Node],
    expected_active: &[String],
    expected_inactive: &[String],
) -> bool {
    nodes.iter().all(|n| match list(&n.addr()) {
        Some((a, i)) => a == expected_active && i == expected_inactive,
        None => false,
    })
}

/// Dumps node logs, for failing tests.
pub fn dump_logs(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {} ---\n{}", n.addr(), n.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}
