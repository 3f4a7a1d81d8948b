//! The process harness of the multi-process tests: starts real `werify node` processes,
//! either on the machine's loopback (127.0.0.x, each test on its own port) or inside a
//! network namespace (`ip netns exec NS werify node …`, see [`netns`]), runs `werify ctl`
//! and `werify mesh status` from the same place, polls until a condition holds, and kills
//! every process it started (by PID, on drop). One [`Node`] type serves both places.
#![allow(dead_code)]

pub mod netns;

use std::collections::BTreeMap;
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

/// `werify ARGS…`, run in network namespace `ns` (through `ip netns exec`, which execs)
/// or on the machine itself, without the caller's `WERIFY_*` settings and with no stdin.
pub fn werify_in(ns: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    cmd.args(args)
        .env_remove("WERIFY_ENV")
        .env_remove("WERIFY_SECRET")
        .env_remove("WERIFY_CONNECT")
        .stdin(Stdio::null());
    cmd
}

/// How a [`Node`] is launched: where, at which address, with which flags.
pub struct Launch {
    /// Network namespace to run in; `None` runs on the machine itself.
    pub ns: Option<String>,
    /// Test host number (the last byte of the address in both places).
    pub index: u8,
    pub ip: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// `--profile` (mesh timing).
    pub profile: &'static str,
    /// Identity flags (`--env`, `--secret-file`), given to the node and to every `ctl`
    /// and `mesh status` run through [`Node::ctl`] and [`Node::status`].
    pub ident: Vec<String>,
    /// Further node flags (`--join`, `--allow-command`, …).
    pub extra: Vec<String>,
}

/// One `werify node` process; killed (SIGKILL by PID) and reaped on drop.
pub struct Node {
    /// Network namespace it runs in, `None` on the machine itself.
    pub ns: Option<String>,
    pub index: u8,
    pub ip: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub profile: &'static str,
    pub ident: Vec<String>,
    pub extra: Vec<String>,
    child: Option<Child>,
}

impl Node {
    /// A node as described by `launch`, not started yet (see [`Node::spawn`]).
    pub fn new(launch: Launch) -> Node {
        let Launch {
            ns,
            index,
            ip,
            port,
            data_dir,
            log,
            profile,
            ident,
            extra,
        } = launch;
        Node {
            ns,
            index,
            ip,
            port,
            data_dir,
            log,
            profile,
            ident,
            extra,
            child: None,
        }
    }

    /// Starts `werify node --bind 127.0.0.INDEX --port PORT --data-dir DIR/nodeINDEX
    /// --profile local EXTRA…` on the machine itself; its log is `DIR/nodeINDEX.log`.
    pub fn start(dir: &Path, index: u8, port: u16, extra: &[&str]) -> Node {
        let mut n = Node::new(Launch {
            ns: None,
            index,
            ip: format!("127.0.0.{index}"),
            port,
            data_dir: dir.join(format!("node{index}")),
            log: dir.join(format!("node{index}.log")),
            profile: "local",
            ident: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        });
        n.spawn();
        n
    }

    pub fn ip(&self) -> String {
        self.ip.clone()
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Starts the process: `[ip netns exec NS] werify node --bind IP --port PORT
    /// --data-dir DIR --profile P IDENT… EXTRA…`. In a namespace it then checks that the
    /// child PID is the werify process itself (`ip netns exec` execs), so that signals by
    /// PID reach the node.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.addr());
        std::fs::create_dir_all(&self.data_dir).expect("create the node's data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node's log file");
        let port = self.port.to_string();
        let child = werify_in(
            self.ns.as_deref(),
            &["node", "--bind", &self.ip, "--port", &port],
        )
        .arg("--data-dir")
        .arg(&self.data_dir)
        .args(["--profile", self.profile])
        .args(&self.ident)
        .args(&self.extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn werify node");
        let pid = child.id();
        self.child = Some(child);
        if let Some(ns) = &self.ns {
            // If `ip netns exec` forked instead of exec'ing, killing the PID would leave
            // the node running.
            let want = std::fs::canonicalize(BIN).expect("canonical path of the werify binary");
            let exe = Path::new("/proc").join(pid.to_string()).join("exe");
            let execed = wait_until(Duration::from_secs(5), || {
                std::fs::read_link(&exe).is_ok_and(|p| p == want)
            });
            assert!(
                execed.is_some(),
                "pid {pid} (ip netns exec {ns} werify node) did not become the werify process: /proc/{pid}/exe is {:?}\n{}",
                std::fs::read_link(&exe),
                self.log_tail(20)
            );
        }
    }

    /// SIGKILL by PID, like `kill -9`, and reap it.
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

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("the node is running");
        let st = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {sig} {pid} failed");
    }

    /// SIGSTOP by PID: the process freezes, its sockets stay open.
    pub fn stop(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT by PID.
    pub fn cont(&self) {
        self.signal("-CONT");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Runs `werify ctl --connect ADDR IDENT… ARGS…` from where this node runs.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let ident: Vec<&str> = self.ident.iter().map(String::as_str).collect();
        ctl_in(self.ns.as_deref(), &self.addr(), &ident, args)
    }

    /// Active and inactive hosts by `ctl list`, or `None` if the node did not answer.
    pub fn list(&self) -> Option<(Vec<String>, Vec<String>)> {
        // The namespaced nodes run the slower `lan` profile on a busier path.
        let timeout = if self.ns.is_some() { "5s" } else { "3s" };
        let o = self.ctl(&["--timeout", timeout, "list"]);
        o.status.success().then(|| parse_list(&stdout(&o)))
    }

    /// `mesh status --output json` from where this node runs, or `None` if the node did
    /// not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let addr = self.addr();
        let o = werify_in(
            self.ns.as_deref(),
            &[
                "mesh",
                "status",
                "--connect",
                &addr,
                "--output",
                "json",
                "--timeout",
                "5s",
            ],
        )
        .args(&self.ident)
        .output()
        .expect("run werify mesh status");
        if !o.status.success() {
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the node's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- {} log (last {n} lines) ---\n{}",
            self.addr(),
            lines[from..].join("\n")
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `werify ctl --connect CONNECT IDENT… ARGS…` in namespace `ns` (or on the machine).
pub fn ctl_in(ns: Option<&str>, connect: &str, ident: &[&str], args: &[&str]) -> Output {
    werify_in(ns, &["ctl", "--connect", connect])
        .args(ident)
        .args(args)
        .output()
        .expect("run werify ctl")
}

/// Runs `werify ctl --connect ADDR ARGS…` on the machine and returns its output.
pub fn ctl(addr: &str, args: &[&str]) -> Output {
    ctl_env(addr, args, &[])
}

/// [`ctl`] with `env` set for the process (after the `WERIFY_*` settings are cleared).
pub fn ctl_env(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = werify_in(None, &["ctl", "--connect", addr]);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run werify ctl")
}

/// `werify mesh status --connect ADDR --output json` on the machine, parsed; None if it
/// failed or printed no JSON.
pub fn status_json(addr: &str) -> Option<serde_json::Value> {
    let o = werify_in(
        None,
        &["mesh", "status", "--connect", addr, "--output", "json"],
    )
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

/// Hosts listed under "Active hosts" and "Inactive hosts" by `ctl list` on `addr` (on the
/// machine, no identity flags).
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

/// `Host:H Operation:NAME OUTCOME` lines of `ctl` text output: host → check name →
/// `Success:true` / `Success:false` / `Error:…`.
pub fn result_lines(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("Host:")) {
        let rest = &line["Host:".len()..];
        let (host, rest) = rest.split_once(" Operation:").expect("operation field");
        let (name, outcome) = rest.split_once(' ').expect("outcome field");
        out.entry(host.to_string())
            .or_default()
            .insert(name.to_string(), outcome.to_string());
    }
    out
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
    nodes.iter().all(|n| match n.list() {
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

/// How long something took, for the timings printed by the tests.
pub fn since(t: Instant) -> String {
    format!("{:.1}s", t.elapsed().as_secs_f64())
}
