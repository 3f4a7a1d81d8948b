//! The security lifecycle with real `werify node` processes on 127.0.0.x (ports
//! 32700–32799): certificates issued by `werify certs issue` used without the CA key,
//! beside a node and a client that mint theirs from it; what each role may do; who
//! submitted an operation (kept across a restart); refusals reported on the side that was
//! refused (deny list, another secret, another env); the deny list refusing newcomers and
//! cutting off a connected node at SIGHUP; rotating the CA and the derived secret one node
//! at a time while operations run; a running node switching its trust and deny list (in
//! this process); and a mesh of mixed protocol versions.
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Hang guard for the mesh to form or settle (not a speed assertion).
const CONVERGE: Duration = Duration::from_secs(30);
/// The rotation tests' profile: `lan` timing, so that "nobody is declared dead" is about
/// the rotation and not about the local profile's 100 ms probe timeout on a busy machine.
const ROTATION_PROFILE: &str = "lan";
/// How often the client of the rotation tests submits an operation.
const OPERATION_EVERY: Duration = Duration::from_secs(1);

/// `werify ARGS…` on the machine; panics if it cannot run.
fn werify(args: &[&str]) -> Output {
    werify_in(None, args).output().expect("run werify")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A PEM CA for env `prod` in `dir`: (certificate, key).
fn certs_init(dir: &Path) -> (String, String) {
    let o = werify(&["certs", "init", "--env", "prod", "--out", &s(dir)]);
    assert!(o.status.success(), "certs init: {}", stderr(&o));
    (s(&dir.join("ca.crt.pem")), s(&dir.join("ca.key.pem")))
}

/// A certificate and key issued by `werify certs issue`.
#[derive(Clone, Debug)]
struct Issued {
    cert: String,
    key: String,
}

impl Issued {
    /// `--cert C --key K --ca-cert T…`.
    fn flags(&self, trust: &[&str]) -> Vec<String> {
        let mut f = vec![
            "--cert".to_string(),
            self.cert.clone(),
            "--key".to_string(),
            self.key.clone(),
        ];
        for t in trust {
            f.push("--ca-cert".into());
            f.push(t.to_string());
        }
        f
    }
}

/// `werify certs issue --ca-cert CA --ca-key KEY --out OUT SUBJECT…`.
fn issue(ca: &(String, String), out: &Path, subject: &[&str]) -> Issued {
    let mut args = vec![
        "certs",
        "issue",
        "--ca-cert",
        &ca.0,
        "--ca-key",
        &ca.1,
        "--out",
    ];
    let out_s = s(out);
    args.push(&out_s);
    args.extend_from_slice(subject);
    let o = werify(&args);
    assert!(
        o.status.success(),
        "certs issue {subject:?}: {}",
        stderr(&o)
    );
    let stem = match subject {
        ["--operator", name, ..] => format!("operator-{name}"),
        ["--node", host, ..] => format!("node-{host}"),
        other => panic!("subject {other:?}"),
    };
    Issued {
        cert: s(&out.join(format!("{stem}.crt.pem"))),
        key: s(&out.join(format!("{stem}.key.pem"))),
    }
}

/// `werify certs fingerprint FILE`: the first fingerprint it prints.
fn fingerprint(cert: &str) -> String {
    let o = werify(&["certs", "fingerprint", cert]);
    assert!(o.status.success(), "certs fingerprint: {}", stderr(&o));
    stdout(&o).lines().next().unwrap_or_default().to_string()
}

/// `werify ctl --connect ADDR IDENT… ARGS…`.
fn ctl_as(addr: &str, ident: &[String], args: &[&str]) -> Output {
    let ident: Vec<&str> = ident.iter().map(String::as_str).collect();
    ctl_in(None, addr, &ident, args)
}

/// Active hosts `ctl list` shows on `addr` with `ident`, if it answers.
fn active(addr: &str, ident: &[String]) -> Option<Vec<String>> {
    let o = ctl_as(addr, ident, &["--timeout", "3s", "list"]);
    o.status.success().then(|| parse_list(&stdout(&o)).0)
}

/// Waits until every address of `addrs` lists exactly `addrs` as active.
fn wait_for_mesh(addrs: &[String], ident: &[String], nodes: &[&Node]) {
    let mut want = addrs.to_vec();
    want.sort();
    let ok = wait_until(CONVERGE, || {
        addrs.iter().all(|a| {
            active(a, ident).is_some_and(|mut got| {
                got.sort();
                got == want
            })
        })
    });
    assert!(ok.is_some(), "the mesh did not form\n{}", dump_logs(nodes));
}

/// Stops a node with SIGTERM (it leaves the mesh gracefully) and reaps it.
fn stop_gracefully(n: &mut Node) {
    let pid = n.pid().expect("the node is running");
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -TERM {pid}");
    let gone = wait_until(Duration::from_secs(15), || n.exited());
    assert!(
        gone.is_some(),
        "{} did not stop\n{}",
        n.addr(),
        n.log_tail(20)
    );
    n.kill();
}

/// Lines of `log` that contain every one of `parts`.
fn lines_with(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

/// An operations file of one check that holds on every host.
fn ops_file(dir: &Path) -> String {
    let path = dir.join("ops.json");
    std::fs::write(&path, r#"{"root": {"type": "file_exists", "path": "/"}}"#)
        .expect("write ops.json");
    s(&path)
}

/// A node on 127.0.0.INDEX:PORT with `flags` and the `local` profile, not started.
fn node(dir: &Path, index: u8, port: u16, flags: Vec<String>) -> Node {
    node_with(dir, index, port, "local", flags)
}

/// A node on 127.0.0.INDEX:PORT with `flags` and `profile`, not started.
fn node_with(dir: &Path, index: u8, port: u16, profile: &'static str, flags: Vec<String>) -> Node {
    Node::new(Launch {
        ns: None,
        index,
        ip: format!("127.0.0.{index}"),
        port,
        data_dir: dir.join(format!("node{index}")),
        log: dir.join(format!("node{index}.log")),
        profile,
        ident: Vec::new(),
        extra: flags,
    })
}

#[test]
fn issued_certificates_work_without_the_ca_key_by_role_and_leave_an_audit_trail() {
    let dir = TempDir::new("sec-issued");
    let ca = certs_init(&dir.path().join("ca"));
    let out = dir.path().join("issued");
    let alice = issue(&ca, &out, &["--operator", "alice"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&alice.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    // Never overwritten without --force.
    let before = (
        std::fs::read(&alice.cert).unwrap(),
        std::fs::read(&alice.key).unwrap(),
    );
    let o = werify(&[
        "certs",
        "issue",
        "--ca-cert",
        &ca.0,
        "--ca-key",
        &ca.1,
        "--out",
        &s(&out),
        "--operator",
        "alice",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already exists; pass --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        (
            std::fs::read(&alice.cert).unwrap(),
            std::fs::read(&alice.key).unwrap()
        ),
        before
    );

    let hosts: Vec<Issued> = (1..=3)
        .map(|i| issue(&ca, &out, &["--node", &format!("n{i}.prod.test")]))
        .collect();
    let ports = [32700u16, 32701, 32702];
    let mut nodes: Vec<Node> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let mut flags = host.flags(&[&ca.0]);
        if i > 0 {
            flags.extend(["--join".to_string(), "127.0.0.61:32700".to_string()]);
        }
        let mut n = node(dir.path(), 61 + i as u8, ports[i], flags);
        n.spawn();
        nodes.push(n);
    }
    // A node that keeps minting its own certificate from the CA key joins them.
    let with_ca_key = vec![
        "--ca-cert".to_string(),
        ca.0.clone(),
        "--ca-key".into(),
        ca.1.clone(),
    ];
    let mut minting = with_ca_key.clone();
    minting.extend(["--join".to_string(), "127.0.0.61:32700".to_string()]);
    let mut n = node(dir.path(), 64, 32703, minting);
    n.spawn();
    nodes.push(n);
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    let as_alice = alice.flags(&[&ca.0]);
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_for_mesh(&addrs, &as_alice, &refs);
    // Only the last node was given the CA key.
    for n in &nodes[..3] {
        assert!(!n.extra.iter().any(|f| f == "--ca-key"));
        assert!(
            n.log_text().contains("presenting the issued certificate"),
            "{}",
            n.log_tail(5)
        );
    }

    // The operator submits; the record names her and where she was.
    let ops = ops_file(dir.path());
    let o = ctl_as(
        &addrs[0],
        &as_alice,
        &["--output", "json", "operation", &ops, "--wait"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("json");
    let handle = report["handle"].as_str().expect("handle").to_string();
    assert_eq!(report["summary"]["hosts_answered"], 4, "{report}");
    assert_eq!(report["submitted_by"]["operator"], "alice", "{report}");
    assert_eq!(
        report["submitted_by"]["certificate_sha256"].as_str(),
        Some(fingerprint(&alice.cert).as_str())
    );
    let from = report["submitted_by"]["from"].as_str().expect("from");
    assert!(from.starts_with("127.0.0."), "{from}");
    let coordinator_log = nodes[0].log_text();
    assert_eq!(
        lines_with(
            &coordinator_log,
            &[&format!(
                "operation {handle} submitted by operator \"alice\" from {from}"
            )]
        ),
        1,
        "{coordinator_log}"
    );

    // A node certificate from the CLI reads (forwarded `get` included) but changes
    // nothing.
    let as_node3 = hosts[2].flags(&[&ca.0]);
    let o = ctl_as(&addrs[1], &as_node3, &["get", &handle]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Submitted by operator \"alice\" from {from}")),
        "{}",
        stdout(&o)
    );
    assert!(active(&addrs[1], &as_node3).is_some());
    for (what, args) in [
        ("submitting an operation", vec!["operation", ops.as_str()]),
        ("adding a host", vec!["add", "127.0.0.69:32709"]),
        ("removing a host", vec!["del", addrs[2].as_str()]),
        ("starting a refresh", vec!["refresh"]),
    ] {
        let o = ctl_as(&addrs[1], &as_node3, &args);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("{what} needs an operator certificate")),
            "{what}: {}",
            stderr(&o)
        );
    }

    // A ctl client minting its own certificate from the CA key may submit too; the
    // record has no operator name, only where it came from.
    let o = ctl_as(
        &addrs[3],
        &with_ca_key,
        &["--output", "json", "operation", &ops, "--wait"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["summary"]["hosts_answered"], 4, "{report}");
    assert_eq!(report["submitted_by"]["operator"], Value::Null, "{report}");
    let ctl_from = report["submitted_by"]["from"].as_str().expect("from");
    let ctl_handle = report["handle"].as_str().expect("handle");
    let o = ctl_as(&addrs[0], &as_alice, &["get", ctl_handle]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Submitted by a ctl client at {ctl_from}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        lines_with(
            &nodes[3].log_text(),
            &[&format!(
                "operation {ctl_handle} submitted by a ctl client at {ctl_from}"
            )]
        ),
        1,
        "{}",
        nodes[3].log_text()
    );

    // The record survives a restart of its coordinator.
    nodes[0].restart();
    wait_for_mesh(&addrs, &as_alice, &refs_of(&nodes));
    let o = ctl_as(&addrs[0], &as_alice, &["get", &handle]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Submitted by operator \"alice\" from {from}")),
        "{}",
        stdout(&o)
    );

    // --ca-cert alone cannot make an identity.
    let o = ctl_in(None, &addrs[0], &["--ca-cert", &ca.0], &["list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--ca-cert needs --ca-key"),
        "{}",
        stderr(&o)
    );
}

fn refs_of(nodes: &[Node]) -> Vec<&Node> {
    nodes.iter().collect()
}

/// `GET path` on `addr` over plain HTTP: (status, body).
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut conn = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_string()))
}

/// What the denied side says when `addr`'s node refuses its certificate.
fn refused_as_denied(addr: &str) -> String {
    format!("peer {addr} refused our certificate: it is on that node's deny list")
}

#[test]
fn denied_certificates_are_refused_and_the_refused_side_says_why() {
    let dir = TempDir::new("sec-deny");
    let ca = certs_init(&dir.path().join("ca"));
    let out = dir.path().join("issued");
    let alice = issue(&ca, &out, &["--operator", "alice"]);
    let mallory = issue(&ca, &out, &["--operator", "mallory"]);
    let n1 = issue(&ca, &out, &["--node", "n1.prod.test"]);
    let n2 = issue(&ca, &out, &["--node", "n2.prod.test"]);
    let deny = dir.path().join("deny.txt");
    std::fs::write(
        &deny,
        format!(
            "# shut out\noperator:mallory\n{}  # n2's lost laptop\n",
            fingerprint(&n2.cert)
        ),
    )
    .unwrap();

    let mut flags1 = n1.flags(&[&ca.0]);
    flags1.extend(["--deny".to_string(), s(&deny)]);
    let mut first = node(dir.path(), 65, 32710, flags1);
    first.spawn();
    let mut flags2 = n2.flags(&[&ca.0]);
    flags2.extend([
        "--join".to_string(),
        first.addr(),
        "--http".to_string(),
        "127.0.0.66:32712".to_string(),
    ]);
    let mut second = node(dir.path(), 66, 32711, flags2);
    second.spawn();
    let as_alice = alice.flags(&[&ca.0]);
    assert!(
        wait_until(CONVERGE, || active(&first.addr(), &as_alice).is_some()).is_some(),
        "{}",
        first.log_tail(20)
    );

    // An operator on the list is refused in the handshake; the refusal says so.
    let o = ctl_as(&first.addr(), &mallory.flags(&[&ca.0]), &["list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&refused_as_denied(&first.addr())),
        "{}",
        stderr(&o)
    );

    // The denied node: an ERROR on its own side naming the peer and the reason, once
    // however often it retries; `mesh status` and /healthz give the reason.
    let reason = refused_as_denied(&first.addr());
    let logged = wait_until(CONVERGE, || {
        lines_with(&second.log_text(), &["ERROR", &reason]) > 0
    });
    assert!(logged.is_some(), "{}", second.log_tail(20));
    let as_second = n2.flags(&[&ca.0]);
    let o = werify_in(None, &["mesh", "status", "--connect", &second.addr()])
        .args(&as_second)
        .output()
        .expect("mesh status");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("not joined: {reason}")),
        "{}",
        stdout(&o)
    );
    let health = http_get("127.0.0.66:32712", "/healthz").expect("healthz answers");
    assert_eq!(health.0, 503, "{health:?}");
    assert!(
        health.1.starts_with(&format!("not joined: {reason}")),
        "{health:?}"
    );
    // Joins are retried every 2 s; the line is not repeated within the minute.
    std::thread::sleep(Duration::from_secs(7));
    let log = second.log_text();
    assert_eq!(lines_with(&log, &["ERROR", &reason]), 1, "{log}");
    let first_log = first.log_text();
    assert_eq!(
        lines_with(
            &first_log,
            &[
                "WARN",
                &format!("rejected peer {}'s certificate is denied", second.addr()),
                &fingerprint(&n2.cert),
            ]
        ),
        1,
        "{first_log}"
    );
    // Whoever is not on the list is let in.
    assert_eq!(active(&first.addr(), &as_alice), Some(vec![first.addr()]));

    // A node already in the mesh is cut off once the list names it: the node with the
    // file drops it at SIGHUP, and it is refused from then on.
    let n3 = issue(&ca, &out, &["--node", "n3.prod.test"]);
    let mut flags3 = n3.flags(&[&ca.0]);
    flags3.extend(["--join".to_string(), first.addr()]);
    let mut third = node(dir.path(), 67, 32713, flags3);
    third.spawn();
    let mut both = vec![first.addr(), third.addr()];
    both.sort();
    let joined = wait_until(CONVERGE, || {
        active(&first.addr(), &as_alice).is_some_and(|mut a| {
            a.sort();
            a == both
        })
    });
    assert!(joined.is_some(), "{}", dump_logs(&[&first, &third]));
    let mut list = std::fs::read_to_string(&deny).unwrap();
    list.push_str(&format!("{}\n", fingerprint(&n3.cert)));
    std::fs::write(&deny, list).unwrap();
    let pid = first.pid().expect("running");
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP {pid}");
    let reloaded = wait_until(CONVERGE, || {
        lines_with(&first.log_text(), &["reloaded ", "deny 3 entries (was 2)"]) == 1
    });
    assert!(reloaded.is_some(), "{}", first.log_tail(20));
    let first_log = first.log_text();
    assert!(
        lines_with(
            &first_log,
            &[
                "WARN",
                &format!("connection with {} ends", third.addr()),
                "deny list"
            ]
        ) >= 1,
        "{first_log}"
    );
    let cut_off = wait_until(CONVERGE, || {
        active(&first.addr(), &as_alice) == Some(vec![first.addr()])
    });
    assert!(cut_off.is_some(), "{}", dump_logs(&[&first, &third]));
    let refused = refused_as_denied(&first.addr());
    let told = wait_until(CONVERGE, || {
        lines_with(&third.log_text(), &["ERROR", &refused]) > 0
    });
    assert!(told.is_some(), "{}", third.log_tail(20));
}

/// A node whose join is refused for another secret, then for another env: each time an
/// ERROR on its own side naming the peer and the reason, `mesh status` says "not joined:"
/// with it, and `/healthz` answers 503.
#[test]
fn a_joiner_with_another_secret_or_env_says_why_on_its_own_side() {
    let dir = TempDir::new("sec-refused-joiner");
    let mesh_secret = dir.path().join("secret");
    std::fs::write(&mesh_secret, "the mesh's secret\n").unwrap();
    let other_secret = dir.path().join("other-secret");
    std::fs::write(&other_secret, "another secret\n").unwrap();
    let ident = |env: &str, secret: &Path| {
        vec![
            "--env".to_string(),
            env.to_string(),
            "--secret-file".into(),
            s(secret),
        ]
    };
    let mut member = node(dir.path(), 91, 32760, ident("prod", &mesh_secret));
    member.spawn();
    let health_addr = "127.0.0.92:32762";
    let joiner_flags = |env: &str, secret: &Path| {
        let mut f = ident(env, secret);
        f.extend([
            "--join".to_string(),
            member.addr(),
            "--http".into(),
            health_addr.into(),
        ]);
        f
    };
    let mut joiner = node(dir.path(), 92, 32761, joiner_flags("prod", &other_secret));
    joiner.spawn();
    for (env, secret, says) in [
        (
            "prod",
            &other_secret,
            format!(
                "peer {}'s certificate is not signed by this mesh's CA for env \"prod\" \
                 (different secret or CA)",
                member.addr()
            ),
        ),
        (
            "staging",
            &mesh_secret,
            format!(
                "peer {} is in env \"prod\", this mesh is \"staging\"",
                member.addr()
            ),
        ),
    ] {
        if env != "prod" {
            joiner.kill();
            joiner.extra = joiner_flags(env, secret);
            joiner.spawn();
        }
        let logged = wait_until(CONVERGE, || {
            lines_with(&joiner.log_text(), &["ERROR", &says]) > 0
        });
        assert!(logged.is_some(), "{env}: {}", joiner.log_tail(20));
        let o = werify_in(None, &["mesh", "status", "--connect", &joiner.addr()])
            .args(ident(env, secret))
            .output()
            .expect("mesh status");
        assert!(o.status.success(), "{env}: {}", stderr(&o));
        assert!(
            stdout(&o).contains(&format!("not joined: {says}")),
            "{env}: {}",
            stdout(&o)
        );
        let mut answer = None;
        wait_until(CONVERGE, || {
            answer = http_get(health_addr, "/healthz");
            answer.is_some()
        });
        let health = answer.expect("healthz answers");
        assert_eq!(health.0, 503, "{env}: {health:?}");
        assert!(
            health.1.starts_with(&format!("not joined: {says}")),
            "{env}: {health:?}"
        );
    }
    // The member never let it in.
    assert_eq!(
        active(&member.addr(), &ident("prod", &mesh_secret)),
        Some(vec![member.addr()])
    );
}

/// What the client of a rotation test presents and trusts, and which node is being
/// restarted (operations neither go to it nor count its answer).
struct Client {
    ident: Vec<String>,
    busy: Option<usize>,
}

/// One operation the client ran: the node restarting meanwhile, and what `operation
/// --wait --output json` said (or why it failed).
struct Ran {
    busy: Option<usize>,
    coordinator: String,
    result: Result<Value, String>,
}

/// Runs an operation every second from a client until `stop`, each through a node that
/// is not being restarted; returns what each one gave.
fn run_client(
    addrs: Vec<String>,
    ops: String,
    client: Arc<Mutex<Client>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Ran>> {
    std::thread::spawn(move || {
        let mut ran = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            {
                // Held for the whole operation: the test changes files and restarts nodes
                // only between operations.
                let c = client.lock().unwrap_or_else(|p| p.into_inner());
                let Some(i) = (0..addrs.len()).find(|i| Some(*i) != c.busy) else {
                    break;
                };
                let o = ctl_as(
                    &addrs[i],
                    &c.ident,
                    &[
                        "--output",
                        "json",
                        "--timeout",
                        "20s",
                        "operation",
                        &ops,
                        "--wait",
                        "--deadline",
                        "5s",
                    ],
                );
                let result = serde_json::from_slice::<Value>(&o.stdout).map_err(|_| {
                    format!("exit {:?}: {}{}", o.status.code(), stdout(&o), stderr(&o))
                });
                ran.push(Ran {
                    busy: c.busy,
                    coordinator: addrs[i].clone(),
                    result,
                });
            }
            std::thread::sleep(OPERATION_EVERY.saturating_sub(started.elapsed()));
        }
        ran
    })
}

/// Every operation answered for every host that stayed up, and all its checks held; each
/// record names `operator` (`None`: a client of the derived secret) and where it came from.
fn check_operations(ran: &[Ran], addrs: &[String], nodes: &[Node], operator: Option<&str>) {
    assert!(ran.len() >= 10, "only {} operations ran", ran.len());
    for (n, r) in ran.iter().enumerate() {
        let report = match &r.result {
            Ok(v) => v,
            Err(e) => panic!(
                "operation {n} through {} failed: {e}\n{}",
                r.coordinator,
                dump_logs(&refs_of(nodes))
            ),
        };
        assert_eq!(
            report["submitted_by"]["operator"].as_str(),
            operator,
            "operation {n}: {report}"
        );
        assert!(
            report["submitted_by"]["from"]
                .as_str()
                .is_some_and(|from| from.starts_with("127.0.0.")),
            "operation {n}: {report}"
        );
        let hosts = report["hosts"].as_array().expect("hosts");
        for (i, addr) in addrs.iter().enumerate() {
            if Some(i) == r.busy {
                continue;
            }
            let host = hosts
                .iter()
                .find(|h| h["host"] == addr.as_str())
                .unwrap_or_else(|| panic!("operation {n}: {addr} (up) not targeted: {report}"));
            assert_eq!(host["status"], "answered", "operation {n}: {report}");
            assert_eq!(
                host["checks"]["root"]["success"], true,
                "operation {n}: {report}"
            );
        }
    }
}

/// Nobody was ever declared dead, and no node was refused by another.
fn assert_no_one_died_or_was_refused(nodes: &[Node]) {
    for n in nodes {
        let log = n.log_text();
        assert_eq!(
            lines_with(&log, &["is dead (declared by"]),
            0,
            "{} saw a member die:\n{log}",
            n.addr()
        );
        assert_eq!(
            lines_with(&log, &["ERROR", "refused:"]),
            0,
            "{} was refused by a peer:\n{log}",
            n.addr()
        );
    }
}

/// Copies `from` over `to`.
fn put(from: &str, to: &Path) {
    std::fs::copy(from, to).expect("copy");
}

/// Writes the CA bundle `to` from `cas`.
fn bundle(cas: &[&str], to: &Path) {
    let text: String = cas
        .iter()
        .map(|c| std::fs::read_to_string(c).expect("read CA"))
        .collect();
    std::fs::write(to, text).expect("write bundle");
}

/// Restarts node `i` (gracefully) with whatever its files say now, while the client
/// leaves it alone, and waits until the whole mesh sees it again.
/// How a node picks up its changed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pickup {
    /// SIGHUP: the node reloads them while it runs.
    Reload,
    /// A graceful restart.
    Restart,
}

/// Has node `i` pick up its changed files (`how`) and waits until the whole mesh sees it;
/// while it restarts, the client leaves it alone.
fn roll(
    nodes: &mut [Node],
    i: usize,
    how: Pickup,
    client: &Mutex<Client>,
    addrs: &[String],
    admin: &[String],
) {
    match how {
        Pickup::Restart => {
            client.lock().unwrap_or_else(|p| p.into_inner()).busy = Some(i);
            stop_gracefully(&mut nodes[i]);
            nodes[i].spawn();
        }
        Pickup::Reload => {
            let before = reloads(&nodes[i]);
            let pid = nodes[i].pid().expect("running");
            let st = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .expect("run kill");
            assert!(st.success(), "kill -HUP {pid}");
            let done = wait_until(CONVERGE, || reloads(&nodes[i]) > before);
            assert!(
                done.is_some(),
                "{} did not reload\n{}",
                nodes[i].addr(),
                nodes[i].log_tail(10)
            );
            let log = nodes[i].log_text();
            assert_eq!(lines_with(&log, &["reload failed"]), 0, "{log}");
            // Let an operation or so run between two steps.
            std::thread::sleep(OPERATION_EVERY);
        }
    }
    wait_for_mesh(addrs, admin, &refs_of(nodes));
    client.lock().unwrap_or_else(|p| p.into_inner()).busy = None;
}

/// How many reloads `node` logged (done or failed).
fn reloads(node: &Node) -> usize {
    let log = node.log_text();
    lines_with(&log, &["reloaded "]) + lines_with(&log, &["reload failed"])
}

#[test]
fn the_ca_rotates_one_node_at_a_time_while_operations_run() {
    rotate_the_ca(Pickup::Reload, 71, 32720);
}

#[test]
fn the_ca_rotates_by_restarting_one_node_at_a_time_while_operations_run() {
    rotate_the_ca(Pickup::Restart, 86, 32750);
}

/// Rotates the CA of five nodes on 127.0.0.FIRST… and ports PORT…, each step picked up
/// `how`, while a client runs an operation every second.
fn rotate_the_ca(how: Pickup, first: u8, port: u16) {
    let dir = TempDir::new(&format!("sec-ca-rotation-{port}"));
    let old = certs_init(&dir.path().join("ca-old"));
    let new = certs_init(&dir.path().join("ca-new"));
    let issued_old = dir.path().join("issued-old");
    let issued_new = dir.path().join("issued-new");
    let mut nodes = Vec::new();
    let mut files = Vec::new();
    for (i, node_port) in (port..port + 5).enumerate() {
        let host = format!("r{i}.prod.test");
        let from_old = issue(&old, &issued_old, &["--node", &host]);
        let from_new = issue(&new, &issued_new, &["--node", &host]);
        // What each node is started with: its own certificate, key and trust bundle.
        let mine = dir.path().join(format!("files{i}"));
        std::fs::create_dir_all(&mine).unwrap();
        let (cert, key, trust) = (
            mine.join("node.crt.pem"),
            mine.join("node.key.pem"),
            mine.join("trust.pem"),
        );
        put(&from_old.cert, &cert);
        put(&from_old.key, &key);
        bundle(&[&old.0], &trust);
        let mut flags = vec![
            "--cert".to_string(),
            s(&cert),
            "--key".into(),
            s(&key),
            "--ca-cert".into(),
            s(&trust),
        ];
        if i > 0 {
            flags.extend(["--join".to_string(), format!("127.0.0.{first}:{port}")]);
        }
        let mut n = node_with(
            dir.path(),
            first + i as u8,
            node_port,
            ROTATION_PROFILE,
            flags,
        );
        n.spawn();
        nodes.push(n);
        files.push((from_old, from_new, cert, key, trust));
    }
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    let client_dir = dir.path().join("client");
    std::fs::create_dir_all(&client_dir).unwrap();
    let alice_old = issue(&old, &issued_old, &["--operator", "alice"]);
    let alice_new = issue(&new, &issued_new, &["--operator", "alice"]);
    let (c_cert, c_key, c_trust) = (
        client_dir.join("alice.crt.pem"),
        client_dir.join("alice.key.pem"),
        client_dir.join("trust.pem"),
    );
    put(&alice_old.cert, &c_cert);
    put(&alice_old.key, &c_key);
    bundle(&[&old.0], &c_trust);
    let ident = vec![
        "--cert".to_string(),
        s(&c_cert),
        "--key".into(),
        s(&c_key),
        "--ca-cert".into(),
        s(&c_trust),
    ];
    // The test's own view of the mesh, with a certificate from each CA and trusting both.
    let admin_old = alice_old.flags(&[&old.0, &new.0]);
    let admin_new = alice_new.flags(&[&old.0, &new.0]);
    wait_for_mesh(&addrs, &alice_old.flags(&[&old.0]), &refs_of(&nodes));

    let ops = ops_file(dir.path());
    let client = Arc::new(Mutex::new(Client { ident, busy: None }));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = run_client(addrs.clone(), ops, client.clone(), stop.clone());
    let started = Instant::now();

    // 1. Every node trusts the new CA too.
    for (i, (_, _, _, _, trust)) in files.iter().enumerate() {
        {
            let _between = client.lock().unwrap_or_else(|p| p.into_inner());
            bundle(&[&old.0, &new.0], trust);
        }
        roll(&mut nodes, i, how, &client, &addrs, &admin_old);
    }
    {
        let _between = client.lock().unwrap_or_else(|p| p.into_inner());
        bundle(&[&old.0, &new.0], &c_trust);
    }
    // 2. Every node presents a certificate of the new CA (same host, same node id).
    for (i, (_, from_new, cert, key, _)) in files.iter().enumerate() {
        {
            let _between = client.lock().unwrap_or_else(|p| p.into_inner());
            put(&from_new.cert, cert);
            put(&from_new.key, key);
        }
        roll(&mut nodes, i, how, &client, &addrs, &admin_new);
    }
    {
        let _between = client.lock().unwrap_or_else(|p| p.into_inner());
        put(&alice_new.cert, &c_cert);
        put(&alice_new.key, &c_key);
        bundle(&[&new.0], &c_trust);
    }
    // 3. Every node drops the old CA.
    for (i, (_, _, _, _, trust)) in files.iter().enumerate() {
        {
            let _between = client.lock().unwrap_or_else(|p| p.into_inner());
            bundle(&[&new.0], trust);
        }
        roll(&mut nodes, i, how, &client, &addrs, &admin_new);
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let ran = worker.join().expect("client thread");
    eprintln!(
        "CA rotation by {how:?}: {} operations in {} ({} while a node restarted)",
        ran.len(),
        since(started),
        ran.iter().filter(|r| r.busy.is_some()).count()
    );
    check_operations(&ran, &addrs, &nodes, Some("alice"));
    assert_no_one_died_or_was_refused(&nodes);

    // The old CA is refused everywhere now, with the reason on the refused side.
    for addr in &addrs {
        let o = ctl_as(addr, &admin_old, &["list"]);
        assert_eq!(o.status.code(), Some(2), "{addr}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("refused our certificate: it is not signed by that node's CA"),
            "{addr}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn the_derived_secret_rotates_one_node_at_a_time_while_operations_run() {
    let dir = TempDir::new("sec-secret-rotation");
    let count = 5;
    let ports: Vec<u16> = (32730..32730 + count as u16).collect();
    let mut nodes = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..count {
        let secret = dir.path().join(format!("secret{i}"));
        std::fs::write(&secret, "old-secret\n").unwrap();
        let mut flags = vec![
            "--env".to_string(),
            "prod".into(),
            "--secret-file".into(),
            s(&secret),
        ];
        if i > 0 {
            flags.extend(["--join".to_string(), format!("127.0.0.76:{}", ports[0])]);
        }
        let mut n = node_with(dir.path(), 76 + i as u8, ports[i], ROTATION_PROFILE, flags);
        n.spawn();
        nodes.push(n);
        secrets.push(secret);
    }
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    let client_secret = dir.path().join("client-secret");
    std::fs::write(&client_secret, "old-secret\n").unwrap();
    let ident = vec![
        "--env".to_string(),
        "prod".into(),
        "--secret-file".into(),
        s(&client_secret),
    ];
    let admin_file = dir.path().join("admin-secret");
    std::fs::write(&admin_file, "old-secret\nnew-secret\n").unwrap();
    let admin = vec![
        "--env".to_string(),
        "prod".into(),
        "--secret-file".into(),
        s(&admin_file),
    ];
    wait_for_mesh(&addrs, &ident, &refs_of(&nodes));

    let ops = ops_file(dir.path());
    let client = Arc::new(Mutex::new(Client { ident, busy: None }));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = run_client(addrs.clone(), ops, client.clone(), stop.clone());
    let started = Instant::now();
    // Each stage writes the same secret file on every node, one node at a time: 1. accept
    // the new secret too; 2. present the new one, accept the old; 3. the new one only.
    let stages = [
        "old-secret\nnew-secret\n",
        "new-secret\nold-secret\n",
        "new-secret\n",
    ];
    for (stage, content) in stages.iter().enumerate() {
        for (i, secret) in secrets.iter().enumerate() {
            {
                let _between = client.lock().unwrap_or_else(|p| p.into_inner());
                std::fs::write(secret, content).unwrap();
            }
            roll(&mut nodes, i, Pickup::Reload, &client, &addrs, &admin);
        }
        let _between = client.lock().unwrap_or_else(|p| p.into_inner());
        if stage == 0 {
            std::fs::write(&client_secret, "new-secret\nold-secret\n").unwrap();
        }
        if stage == 1 {
            std::fs::write(&client_secret, "new-secret\n").unwrap();
            std::fs::write(&admin_file, "new-secret\n").unwrap();
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let ran = worker.join().expect("client thread");
    eprintln!(
        "secret rotation by SIGHUP: {} operations in {}",
        ran.len(),
        since(started)
    );
    check_operations(&ran, &addrs, &nodes, None);
    assert_no_one_died_or_was_refused(&nodes);

    // The old secret is refused everywhere now.
    let old_only = dir.path().join("old-only");
    std::fs::write(&old_only, "old-secret\n").unwrap();
    let old_ident = vec![
        "--env".to_string(),
        "prod".into(),
        "--secret-file".into(),
        s(&old_only),
    ];
    for addr in &addrs {
        let o = ctl_as(addr, &old_ident, &["list"]);
        assert_eq!(o.status.code(), Some(2), "{addr}: {}", stdout(&o));
        assert!(stderr(&o).contains("not signed"), "{addr}: {}", stderr(&o));
    }
}

#[test]
fn a_mesh_of_mixed_protocol_versions_works_and_a_peer_outside_the_range_gets_one_line() {
    let dir = TempDir::new("sec-versions");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "versions\n").unwrap();
    let ident = vec!["--secret-file".to_string(), s(&secret)];
    let previous = werify::rpc::protocol::MIN_PROTOCOL_VERSION.to_string();
    // Nodes 2 and 4 are held at the previous version.
    let mut nodes = Vec::new();
    for i in 0..4u16 {
        let mut flags = ident.clone();
        if i % 2 == 1 {
            flags.extend(["--protocol-versions".to_string(), previous.clone()]);
        }
        if i > 0 {
            flags.extend(["--join".to_string(), "127.0.0.81:32740".to_string()]);
        }
        let mut n = node(dir.path(), 81 + i as u8, 32740 + i, flags);
        n.spawn();
        nodes.push(n);
    }
    let addrs: Vec<String> = nodes.iter().map(Node::addr).collect();
    wait_for_mesh(&addrs, &ident, &refs_of(&nodes));

    // Each member speaks the highest version both ends have.
    let current = werify::rpc::protocol::PROTOCOL_VERSION;
    let held = werify::rpc::protocol::MIN_PROTOCOL_VERSION;
    let settled = wait_until(CONVERGE, || {
        let Some(status) = status_json_as(&addrs[0], &ident) else {
            return false;
        };
        status["members"].as_array().is_some_and(|members| {
            members.iter().filter(|m| m["is_self"] == false).all(|m| {
                let i = addrs
                    .iter()
                    .position(|a| m["addr"] == a.as_str())
                    .unwrap_or(0);
                m["protocol"] == if i % 2 == 1 { held } else { current }
            })
        })
    });
    assert!(
        settled.is_some(),
        "{:?}\n{}",
        status_json_as(&addrs[0], &ident),
        dump_logs(&refs_of(&nodes))
    );

    // Operations coordinated by a held node and by a current one reach everybody, and
    // `get` is forwarded across versions both ways.
    let ops = ops_file(dir.path());
    for (coordinator, reader) in [(1usize, 2usize), (2, 3)] {
        let o = ctl_as(
            &addrs[coordinator],
            &ident,
            &["--output", "json", "operation", &ops],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let submitted: Value = serde_json::from_slice(&o.stdout).expect("json");
        let handle = submitted["handle"].as_str().expect("handle").to_string();
        let o = ctl_as(
            &addrs[reader],
            &ident,
            &["--output", "json", "get", &handle, "--wait"],
        );
        assert!(o.status.success(), "{handle}: {}{}", stdout(&o), stderr(&o));
        let report: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(report["summary"]["hosts_answered"], 4, "{report}");
        assert_eq!(report["coordinator"], addrs[coordinator].as_str());
    }

    // A node whose range misses ours: one clear line on each side.
    let mut flags = ident.clone();
    flags.extend([
        "--protocol-versions".to_string(),
        format!("{}..{}", current + 1, current + 2),
        "--join".to_string(),
        addrs[0].clone(),
    ]);
    let mut stranger = node(dir.path(), 85, 32745, flags);
    stranger.spawn();
    let theirs = format!("{} to {}", current + 1, current + 2);
    let ours = format!("{held} to {current}");
    let line = format!("this node speaks {ours}, you speak {theirs}");
    let logged = wait_until(CONVERGE, || {
        lines_with(&stranger.log_text(), &["ERROR", &addrs[0], &line]) > 0
    });
    assert!(logged.is_some(), "{}", stranger.log_tail(20));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        lines_with(&stranger.log_text(), &["ERROR", &addrs[0], &line]),
        1,
        "{}",
        stranger.log_text()
    );
    assert_eq!(
        lines_with(
            &nodes[0].log_text(),
            &[
                "WARN",
                &stranger.addr(),
                &format!("it speaks werify protocol {theirs}, this node speaks {ours}")
            ]
        ),
        1,
        "{}",
        nodes[0].log_text()
    );
}

/// `werify mesh status --output json` on `addr` with `ident`.
fn status_json_as(addr: &str, ident: &[String]) -> Option<Value> {
    let o = werify_in(
        None,
        &["mesh", "status", "--connect", addr, "--output", "json"],
    )
    .args(ident)
    .output()
    .ok()?;
    serde_json::from_slice(&o.stdout).ok()
}

/// An in-process node's reloader with what it was started with: reloading reads the
/// certificate, CA and deny files again, as SIGHUP does.
struct Reload {
    reloader: werify::node::reload::Reloader,
    live: werify::node::reload::LiveConfig,
}

impl Reload {
    /// Reloads; the keys of what changed.
    async fn reload(&self) -> Result<Vec<&'static str>, werify::node::reload::ReloadError> {
        let changes = self.reloader.reload(self.live.clone()).await?;
        Ok(changes.iter().map(|c| c.key).collect())
    }
}

/// Starts an in-process node on 127.0.0.1 (a free port) with `ca`, `deny` and `join`,
/// serving until the returned sender is dropped: its address, mesh handle and reloader.
async fn in_process_node(
    dir: &Path,
    name: &str,
    ca: werify::rpc::identity::CaSource,
    deny: &Path,
    join: Option<std::net::SocketAddr>,
) -> (
    std::net::SocketAddr,
    werify::node::driver::MeshClient,
    Reload,
    tokio::sync::oneshot::Sender<()>,
) {
    let security = werify::node::security::SecurityFiles {
        env: None,
        ca: ca.clone(),
        deny: Some(deny.to_path_buf()),
    };
    let config = werify::node::NodeConfig {
        ca,
        deny: Some(deny.to_path_buf()),
        bind: std::net::IpAddr::from([127, 0, 0, 1]),
        port: 0,
        join: join.iter().map(ToString::to_string).collect(),
        data_dir: Some(dir.join(name)),
        profile: werify::mesh::Profile::Local,
        ..werify::node::NodeConfig::default()
    };
    let node = werify::node::Node::start(config)
        .await
        .expect("node starts");
    let reloader = Reload {
        live: werify::node::reload::LiveConfig {
            tags: Default::default(),
            checks: None,
            check_interval: Duration::from_secs(30),
            allow_command: false,
            security: Some(security),
        },
        reloader: node.reloader(),
    };
    let (addr, mesh) = (node.addr(), node.mesh());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.serve(async {
        let _ = rx.await;
    }));
    (addr, mesh, reloader, tx)
}

/// Whether `mesh` sees `others` alive.
async fn sees_alive(
    mesh: &werify::node::driver::MeshClient,
    others: &[std::net::SocketAddr],
) -> bool {
    mesh.view().await.is_ok_and(|v| {
        others.iter().all(|a| {
            v.members.iter().any(|m| {
                m.member.peer.addr == *a && m.member.state == werify::mesh::member::State::Alive
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_switches_trust_and_deny_list_and_cuts_off_what_they_no_longer_allow() {
    use werify::rpc::identity::{CaSource, Identity, IssueFor, IssueRequest, Role, init_ca};
    use werify::rpc::protocol::{Request, Response};
    let dir = TempDir::new("sec-live");
    let env: werify::base::Env = "prod".parse().expect("env");
    let old = init_ca(&env, &dir.path().join("ca-old"), false).expect("old CA");
    let new = init_ca(&env, &dir.path().join("ca-new"), false).expect("new CA");
    let issue = |ca: &werify::rpc::identity::CaFiles, out: &str, subject: IssueFor| {
        werify::rpc::identity::issue(&IssueRequest {
            ca_cert: &ca.cert,
            ca_key: &ca.key,
            env: None,
            subject,
            days: 1,
            out_dir: &dir.path().join(out),
            force: false,
        })
        .expect("issued")
    };
    let node = |host: &str| IssueFor::Node {
        host: host.into(),
        node_id: None,
    };
    // Each node is started on files it keeps: its certificate, key and trust bundle.
    let mut files = Vec::new();
    for name in ["a", "b"] {
        let from_old = issue(
            &old,
            &format!("old-{name}"),
            node(&format!("{name}.prod.test")),
        );
        let from_new = issue(
            &new,
            &format!("new-{name}"),
            node(&format!("{name}.prod.test")),
        );
        let mine = dir.path().join(format!("files-{name}"));
        std::fs::create_dir_all(&mine).unwrap();
        let (cert, key, trust) = (
            mine.join("node.crt.pem"),
            mine.join("node.key.pem"),
            mine.join("trust.pem"),
        );
        put(&s(&from_old.cert), &cert);
        put(&s(&from_old.key), &key);
        bundle(&[&s(&old.cert)], &trust);
        files.push((from_new, cert, key, trust));
    }
    let deny = dir.path().join("deny.txt");
    std::fs::write(&deny, "# nobody yet\n").unwrap();
    let source = |i: usize| CaSource::Issued {
        ca_certs: vec![files[i].3.clone()],
        cert: files[i].1.clone(),
        key: files[i].2.clone(),
    };
    let (a, a_mesh, a_reload, _a_serving) =
        in_process_node(dir.path(), "a", source(0), &deny, None).await;
    let (b, b_mesh, b_reload, _b_serving) =
        in_process_node(dir.path(), "b", source(1), &deny, Some(a)).await;
    let together = || async { sees_alive(&a_mesh, &[b]).await && sees_alive(&b_mesh, &[a]).await };
    let wait = |what: &'static str| async move {
        let give_up = Instant::now() + CONVERGE;
        while !together().await {
            assert!(Instant::now() < give_up, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait("a and b see each other").await;

    // An operator connected to a: cut off once a denies her, and refused from then on.
    let alice = issue(&old, "alice", IssueFor::Operator("alice".into()));
    let identity = Identity::new(
        None,
        &CaSource::Issued {
            ca_certs: vec![old.cert.clone(), new.cert.clone()],
            cert: alice.cert.clone(),
            key: alice.key.clone(),
        },
        Role::Client,
        werify::base::NodeId::random(),
        &[],
    )
    .expect("alice");
    let client = werify::rpc::transport::Transport::client(Arc::new(identity), a).expect("client");
    let call = Duration::from_secs(10);
    let status = client
        .call(a, &Request::Status, call)
        .await
        .expect("status");
    assert!(matches!(status, Response::Status(_)));
    let (conn, _) = client.connection(a).await.expect("connected");
    std::fs::write(&deny, "operator:alice\n").unwrap();
    assert_eq!(
        a_reload.reload().await.expect("reloaded"),
        ["deny", "connections"]
    );
    let closed = tokio::time::timeout(CONVERGE, conn.closed())
        .await
        .expect("closed");
    assert!(closed.to_string().contains("deny list"), "{closed}");
    let refused = client
        .call(a, &Request::Status, call)
        .await
        .expect_err("denied");
    assert!(refused.to_string().contains("deny list"), "{refused}");
    std::fs::write(&deny, "").unwrap();
    a_reload.reload().await.expect("reloaded");

    // The CA rotates without a restart: trust both, present the new, drop the old.
    for (i, reload) in [&a_reload, &b_reload].into_iter().enumerate() {
        bundle(&[&s(&old.cert), &s(&new.cert)], &files[i].3);
        assert_eq!(reload.reload().await.expect("trust both"), ["trusted CAs"]);
    }
    for (i, reload) in [&a_reload, &b_reload].into_iter().enumerate() {
        put(&s(&files[i].0.cert), &files[i].1);
        put(&s(&files[i].0.key), &files[i].2);
        assert_eq!(
            reload.reload().await.expect("present the new"),
            ["certificate"]
        );
    }
    wait("a and b still see each other after presenting the new CA").await;
    for (i, reload) in [&a_reload, &b_reload].into_iter().enumerate() {
        bundle(&[&s(&new.cert)], &files[i].3);
        // Connections set up with old-CA certificates retire; the next ones use the new.
        let changes = reload.reload().await.expect("drop the old");
        assert_eq!(changes[0], "trusted CAs", "{changes:?}");
    }
    wait("a and b see each other on the new CA alone").await;
    // Alice's certificate is of the old CA: refused now, for that reason.
    let refused = client
        .call(a, &Request::Status, call)
        .await
        .expect_err("old CA");
    assert!(refused.to_string().contains("not signed"), "{refused}");

    // A reload that would change the node's identity is refused; nothing changes.
    put(&s(&files[1].0.cert), &files[0].1);
    put(&s(&files[1].0.key), &files[0].2);
    let err = a_reload
        .reload()
        .await
        .expect_err("another node's certificate");
    assert!(err.to_string().contains("--node-id"), "{err}");
    assert!(sees_alive(&b_mesh, &[a]).await);
}
