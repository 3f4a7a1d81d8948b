//! The network-namespace side of the harness (tests/netns.rs): five "hosts" as network
//! namespaces joined by veth pairs to a bridge that lives in a namespace of its own, a
//! [`Node`] in each (launched with its namespace, so `ctl` and `mesh status` run there
//! too), partitions made with nftables rules inside the host namespaces. Everything is
//! torn down on drop (processes first, then namespaces, then the temp dir), also when a
//! test panics.
//!
//! Addresses are 198.18.0.1–5/24 and exist only inside the namespaces made here; nothing
//! else is ever a target. Names are unique per test run: `wrf<pid><tag>-<k>` and
//! `wrf<pid><tag>-br`.
//!
//! When the machine cannot make namespaces (not root, `ip`/`nft`/`kill` missing, no
//! capability), [`Cluster::start`] fails the test with the reason under `CI=true`, and
//! elsewhere prints `SKIPPED: …` with the reason and returns `None`.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{Launch, Node, TempDir, stderr, stdout, wait_until};

/// Mesh timing profile the namespace nodes run with: `lan`, the default, because the
/// namespaces stand in for separate hosts on one LAN (the bounds in tests/netns.rs are
/// stated for it).
pub const PROFILE: &str = "lan";
/// The werify port, the same on every host (each namespace has its own port space).
pub const PORT: u16 = 30035;

/// The tests of this file share two cores with the rest of the machine: one cluster at a
/// time keeps scheduling noise (and so false suspicions) down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `198.18.0.K`.
pub fn ip_of(k: u8) -> String {
    format!("198.18.0.{k}")
}

/// `198.18.0.K:30035`, the way werify names a host.
pub fn addr_of(k: u8) -> String {
    format!("{}:{PORT}", ip_of(k))
}

/// Host names for a list of host numbers, in address order.
pub fn addrs(ks: &[u8]) -> Vec<String> {
    let mut v: Vec<u8> = ks.to_vec();
    v.sort_unstable();
    v.into_iter().map(addr_of).collect()
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            stderr(&out).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// Why these tests cannot run here, or `None` if they can. Checked once per test binary.
fn unmet_prerequisite() -> Option<String> {
    static CHECK: OnceLock<Option<String>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let uid = Command::new("id").arg("-u").output();
            match uid {
                Ok(o) if stdout(&o).trim() == "0" => {}
                Ok(o) => {
                    return Some(format!(
                        "not root (id -u = {}); run as root to create network namespaces",
                        stdout(&o).trim()
                    ));
                }
                Err(e) => return Some(format!("cannot run `id -u`: {e}")),
            }
            for (tool, arg, package) in [
                ("ip", "-V", "iproute2"),
                ("nft", "--version", "nftables"),
                ("kill", "-l", "procps"),
            ] {
                if Command::new(tool).arg(arg).output().is_err() {
                    return Some(format!(
                        "`{tool}` is missing; install {package} (apt-get install -y iproute2 nftables procps)"
                    ));
                }
            }
            // Root in a container without CAP_SYS_ADMIN cannot make namespaces: that is an
            // environment without the capability, not a werify failure. The probe also
            // runs a command and an nftables table inside the namespace, as the tests do.
            let probe = format!("wrf{}-probe", std::process::id());
            if let Err(e) = run(Command::new("ip").args(["netns", "add", &probe])) {
                return Some(if e.contains("Operation not permitted") {
                    format!(
                        "root, but network namespaces are not permitted here ({e}); run with CAP_SYS_ADMIN and CAP_NET_ADMIN"
                    )
                } else {
                    format!("cannot create a probe network namespace: {e}")
                });
            }
            let inside = run(Command::new("ip").args([
                "netns", "exec", &probe, "nft", "add", "table", "inet", "wrfprobe",
            ]));
            let _ = ip(&["netns", "del", &probe]);
            inside.err().map(|e| {
                format!("a network namespace was made, but nftables does not work inside it: {e}")
            })
        })
        .clone()
}

/// Whether this runs under CI (`CI` set to anything but empty, `0` or `false`), where a
/// test that cannot make its namespaces fails instead of skipping.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// How host `k`'s node of `net` is launched: in its namespace, on 198.18.0.K:30035, with
/// the `lan` profile, `data_dir` and a log file beside it, and identity flags `ident`.
pub fn host_launch(net: &Net, k: u8, data_dir: std::path::PathBuf, ident: Vec<String>) -> Launch {
    let mut log = data_dir.clone().into_os_string();
    log.push(".log");
    Launch {
        ns: Some(net.ns(k)),
        index: k,
        ip: ip_of(k),
        port: PORT,
        data_dir,
        log: log.into(),
        profile: PROFILE,
        ident,
        extra: Vec::new(),
    }
}

/// The namespaces of one test: `hosts` host namespaces and one bridge namespace.
/// Dropping it deletes them all.
pub struct Net {
    prefix: String,
    hosts: u8,
    created: Vec<String>,
}

/// The nftables table the partition and inbound rules live in (one per host namespace).
const NFT_TABLE: &str = "wrftest";

impl Net {
    /// Namespace name of host `k`.
    pub fn ns(&self, k: u8) -> String {
        format!("{}-{k}", self.prefix)
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// Creates the namespaces, the bridge and the links. On error, whatever was created is
    /// deleted again (by drop).
    fn create(prefix: String, hosts: u8) -> Result<Net, String> {
        let mut net = Net {
            prefix,
            hosts,
            created: Vec::new(),
        };
        let br = net.bridge_ns();
        ip(&["netns", "add", &br])?;
        net.created.push(br.clone());
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for k in 1..=hosts {
            let ns = net.ns(k);
            ip(&["netns", "add", &ns])?;
            net.created.push(ns.clone());
            // Both ends are made inside namespaces: no interface ever exists in the
            // machine's own namespace.
            let port = format!("h{k}");
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", ip_of(k)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    fn nft(&self, k: u8, script: &str) -> Result<(), String> {
        use std::io::Write;
        let ns = self.ns(k);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run nft in {ns}: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| format!("cannot write the nft script for {ns}: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("nft in {ns}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft in {ns} failed: {}\nscript:\n{script}",
                stderr(&out).trim()
            ))
        }
    }

    /// Replaces host `k`'s test rules with `chains` (nft chain definitions).
    fn set_rules(&self, k: u8, chains: &str) {
        let script = format!(
            "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\ntable inet {NFT_TABLE} {{\n{chains}\n}}\n"
        );
        self.nft(k, &script).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Drops every packet between the hosts of `a` and the hosts of `b`, in both
    /// directions, with rules inside each host's namespace.
    pub fn partition(&self, a: &[u8], b: &[u8]) {
        let set = |ks: &[u8]| ks.iter().map(|&k| ip_of(k)).collect::<Vec<_>>().join(", ");
        for (mine, theirs) in [(a, b), (b, a)] {
            let others = set(theirs);
            let chains = format!(
                "  chain input {{ type filter hook input priority 0; policy accept; ip saddr {{ {others} }} drop; }}\n  chain output {{ type filter hook output priority 0; policy accept; ip daddr {{ {others} }} drop; }}"
            );
            for &k in mine {
                self.set_rules(k, &chains);
            }
        }
    }

    /// Host `k` accepts only packets of flows it started itself: a peer's first packet to
    /// it is dropped (conntrack state `new`), its own first packet to a peer opens the
    /// flow both ways.
    pub fn only_own_flows(&self, k: u8) {
        self.set_rules(
            k,
            "  chain input { type filter hook input priority 0; policy accept; iifname \"lo\" accept; ct state new drop; }",
        );
    }

    /// Removes every test rule from every host: the network is whole again.
    pub fn heal(&self) {
        for k in 1..=self.hosts {
            self.nft(
                k,
                &format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("netns cleanup: {e}");
            }
        }
    }
}

/// A member's state in `mesh status --output json`. The JSON carries the wire names
/// (`"a"`, `"s"`, `"d"`, `"l"`) today; the long names are accepted too so the tests keep
/// working if the output is made friendlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Alive,
    Suspect,
    Dead,
    Left,
}

/// `(address, state)` of every member in a `mesh status --output json` document.
pub fn member_states(status: &serde_json::Value) -> Vec<(String, MemberState)> {
    let Some(members) = status["members"].as_array() else {
        return Vec::new();
    };
    members
        .iter()
        .filter_map(|m| {
            let addr = m["addr"].as_str()?.to_string();
            let state = match m["state"].as_str()? {
                "a" | "alive" => MemberState::Alive,
                "s" | "suspect" => MemberState::Suspect,
                "d" | "dead" => MemberState::Dead,
                "l" | "left" => MemberState::Left,
                other => panic!("unknown member state {other:?} in mesh status JSON"),
            };
            Some((addr, state))
        })
        .collect()
}

/// Five (or `hosts`) namespaces with a node each. Field order is drop order: processes
/// die first, then the namespaces go, then the temp dir, then the next test may start.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub net: Net,
    pub dir: TempDir,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Builds the network for test `tag` (one letter, unique within this file) and starts
    /// a node on every host; hosts 2.. join through host 1. `flags(k)` gives host `k`'s
    /// identity flags and further node flags. When the machine cannot run these tests it
    /// panics with the reason under `CI=true`, and otherwise returns `None` after printing
    /// the reason.
    pub fn start(
        tag: char,
        hosts: u8,
        flags: impl Fn(u8) -> (Vec<String>, Vec<String>),
    ) -> Option<Cluster> {
        let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = unmet_prerequisite() {
            assert!(
                !under_ci(),
                "CI=true, and this network-namespace test cannot run: {why}"
            );
            eprintln!("SKIPPED: network-namespace test needs root with ip and nft: {why}");
            return None;
        }
        let prefix = format!("wrf{}{tag}", std::process::id());
        let dir = TempDir::new(&format!("netns-{tag}"));
        let net = Net::create(prefix, hosts).unwrap_or_else(|e| panic!("network setup: {e}"));
        let nodes = (1..=hosts)
            .map(|k| {
                let (ident, mut extra) = flags(k);
                if k > 1 {
                    extra.extend(["--join".to_string(), ip_of(1)]);
                }
                let mut n = Node::new(Launch {
                    extra,
                    ..host_launch(&net, k, dir.path().join(format!("host{k}")), ident)
                });
                n.spawn();
                n
            })
            .collect();
        Some(Cluster {
            nodes,
            net,
            dir,
            _one_at_a_time: guard,
        })
    }

    /// Node `k` (1-based, like the addresses).
    pub fn node(&self, k: u8) -> &Node {
        &self.nodes[usize::from(k - 1)]
    }

    pub fn node_mut(&mut self, k: u8) -> &mut Node {
        &mut self.nodes[usize::from(k - 1)]
    }

    /// Every node of `ks` lists exactly `active` as active and `inactive` as inactive.
    pub fn agree(&self, ks: &[u8], active: &[String], inactive: &[String]) -> bool {
        ks.iter().all(|&k| match self.node(k).list() {
            Some((a, i)) => a == active && i == inactive,
            None => false,
        })
    }

    /// Waits until every node lists every host as active; panics with logs after `limit`.
    pub fn converge(&self, limit: Duration) -> Duration {
        let ks: Vec<u8> = self.nodes.iter().map(|n| n.index).collect();
        let all = addrs(&ks);
        let took = wait_until(limit, || self.agree(&ks, &all, &[]));
        took.unwrap_or_else(|| {
            panic!(
                "the mesh did not converge within {limit:?}\n{}",
                self.logs(40)
            )
        })
    }

    /// The last `n` log lines of every node.
    pub fn logs(&self, n: usize) -> String {
        self.nodes
            .iter()
            .map(|node| node.log_tail(n))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes a file into the test's temp dir and returns its path.
    pub fn write(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).expect("write a test file");
        p.to_string_lossy().into_owned()
    }
}
