//! Writing checks, end to end through the real binary: `werify checks add` for every type
//! it writes, against real things on this host (a file, a listening TCP and UDP socket, a
//! running process, a local HTTP server, a kernel parameter, a user, systemd when the
//! host has it); its output accepted by `werify checks validate` and by an operation on a
//! real two-node mesh, where every check passes; `ctl operation -`; YAML errors with
//! their positions; and filters that match no alive member.
//!
//! Nodes and servers use 127.0.0.1–2 on ports 32400–32499. The mesh's nodes also run
//! periodic checks from a YAML file, and a node refuses an invalid one.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

const CONVERGE: Duration = Duration::from_secs(30);
const MESH_PORT: u16 = 32401;
const HTTP_ADDR: &str = "127.0.0.1:32410";
const TCP_ADDR: &str = "127.0.0.1:32411";
const UDP_ADDR: &str = "127.0.0.1:32412";

/// `werify ARGS…` with `input` on stdin.
fn werify_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = werify_in(None, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn werify");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for werify")
}

fn werify(args: &[&str]) -> Output {
    werify_in(None, args).output().expect("run werify")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
        code(o),
        stdout(o),
        stderr(o)
    )
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A loopback HTTP server answering every request with `204 No Content`, until dropped.
struct HttpServer {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    fn start(addr: &str) -> HttpServer {
        let listener = TcpListener::bind(addr).expect("bind the test HTTP server");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            // Bounded: the test ends long before this.
            while !flag.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(600) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        HttpServer {
            stop,
            served,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A copy of `sleep` under a name of its own, running until dropped.
struct Sleeper {
    child: Child,
    exe: PathBuf,
}

impl Sleeper {
    fn start(dir: &Path, name: &str) -> Sleeper {
        let sleep = ["/usr/bin/sleep", "/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("a sleep binary");
        let exe = dir.join(name);
        std::fs::copy(sleep, &exe).expect("copy sleep");
        let child = Command::new(&exe)
            .arg("600")
            .spawn()
            .expect("start the copied sleep");
        // Until the exec has finished, /proc shows the parent's name.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let started = wait_until(Duration::from_secs(10), || {
            std::fs::read(&cmdline).is_ok_and(|c| c.ends_with(b"600\0"))
        });
        assert!(started.is_some(), "the copied sleep did not start");
        Sleeper { child, exe }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A systemd unit that is active now, when this host runs systemd.
fn active_unit() -> Option<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return None;
    }
    let o = Command::new("systemctl")
        .args([
            "list-units",
            "--type=service",
            "--state=active",
            "--no-legend",
            "--plain",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// `Host:H Operation:NAME OUTCOME` lines of `ctl` text output: host → name → outcome.
fn results(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
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

/// Periodic checks for the mesh's nodes, in YAML.
const PERIODIC_YAML: &str = "# periodic checks\nhosts_file: {type: file_exists, path: /etc/hosts}\n\
ostype:\n  type: kernel_param\n  name: kernel.ostype\n  value: Linux\n";

/// Two nodes on 127.0.0.1–2 (tags role=web, role=db), each running the checks of
/// [`PERIODIC_YAML`] periodically.
fn start_mesh(dir: &TempDir) -> Vec<Node> {
    let seed = format!("127.0.0.1:{MESH_PORT}");
    let periodic = dir.path().join("periodic.yaml");
    std::fs::write(&periodic, PERIODIC_YAML).unwrap();
    let periodic = path_str(&periodic);
    let nodes = vec![
        Node::start(
            dir.path(),
            1,
            MESH_PORT,
            &["--tag", "role=web", "--checks", &periodic],
        ),
        Node::start(
            dir.path(),
            2,
            MESH_PORT,
            &["--tag", "role=db", "--join", &seed, "--checks", &periodic],
        ),
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    let all: Vec<String> = nodes.iter().map(Node::addr).collect();
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "mesh did not converge\n{}",
        dump_logs(&refs)
    );
    nodes
}

/// Every host of `o` (an `operation --wait` run) answered every one of `names` with
/// `Success:true`, and it exited 0.
fn assert_all_pass(o: &Output, hosts: &[String], names: &[String]) {
    assert_eq!(code(o), 0, "{}", show(o));
    let got = results(&stdout(o));
    let host_names: Vec<&String> = got.keys().collect();
    assert_eq!(host_names, hosts.iter().collect::<Vec<_>>(), "{}", show(o));
    for (host, checks) in &got {
        let mut expected: Vec<&String> = names.iter().collect();
        expected.sort();
        assert_eq!(
            checks.keys().collect::<Vec<_>>(),
            expected,
            "{host}: {}",
            show(o)
        );
        for (name, outcome) in checks {
            assert_eq!(outcome, "Success:true", "{host} {name}: {}", show(o));
        }
    }
}

#[test]
fn checks_add_writes_checks_that_validate_and_pass_on_a_mesh_of_this_host() {
    let dir = TempDir::new("authoring-add");
    let nodes = start_mesh(&dir);
    let hosts: Vec<String> = nodes.iter().map(Node::addr).collect();

    // Real things for the checks to find.
    let file = dir.path().join("data.txt");
    std::fs::write(&file, "werify authoring\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let file = path_str(&file);
    let _tcp = TcpListener::bind(TCP_ADDR).expect("bind the TCP listener");
    let _udp = UdpSocket::bind(UDP_ADDR).expect("bind the UDP socket");
    let http = HttpServer::start(HTTP_ADDR);
    let sleeper = Sleeper::start(dir.path(), "werify-authoring-sleeper");
    let sleeper_exe = path_str(&sleeper.exe);
    let url = format!("http://{HTTP_ADDR}/health");

    // What checks add writes, and what it must have read into the check.
    let mut adds: Vec<(&str, String, Option<&str>)> = vec![
        ("file_exists", file.clone(), None),
        ("file_hash", file.clone(), Some("sha256")),
        ("file_mode", file.clone(), Some("\"0640\"")),
        ("process_running", "werify-authoring-sleeper".into(), None),
        ("process_running", sleeper_exe.clone(), None),
        ("port_listening", format!("tcp:{TCP_ADDR}"), None),
        ("port_listening", format!("udp:{UDP_ADDR}"), Some("udp")),
        ("user_exists", "root".into(), None),
        ("http_status", url.clone(), Some("204")),
        ("kernel_param", "net.ipv4.ip_local_port_range".into(), None),
    ];
    let unit = active_unit();
    match &unit {
        Some(unit) => adds.push(("service_active", unit.clone(), None)),
        None => {
            // No systemd here: a clear refusal, exit 1, nothing printed.
            let o = werify(&["checks", "add", "service_active", "cron.service"]);
            assert_eq!(code(&o), 1, "{}", show(&o));
            assert!(stdout(&o).is_empty(), "{}", show(&o));
            assert!(
                stderr(&o).starts_with(
                    "Error: service_active \"cron.service\" does not hold on this host now: \
                     systemd is not available on this host"
                ),
                "{}",
                show(&o)
            );
            eprintln!("no systemd on this host: service_active is checked for its refusal only");
        }
    }

    // The files start with a check of their own (and, in YAML, comments) that must stay.
    let yaml = dir.path().join("checks.yaml");
    let yaml_start = "# checks for this host\nhosts_file:  # written by hand\n  type: file_exists\n  path: /etc/hosts\n";
    std::fs::write(&yaml, yaml_start).unwrap();
    let json = dir.path().join("checks.json");
    let json_start =
        "{\n    \"hosts_file\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}\n}\n";
    std::fs::write(&json, json_start).unwrap();
    let (yaml_s, json_s) = (path_str(&yaml), path_str(&json));

    let mut names = vec!["hosts_file".to_string()];
    for (i, (ty, arg, expect_in_output)) in adds.iter().enumerate() {
        let name = format!("{ty}_{i}");
        // Printed: a whole one-check operations file, which validate takes from stdin.
        let printed = werify(&["checks", "add", ty, arg, "--name", &name]);
        assert_eq!(code(&printed), 0, "{ty} {arg}: {}", show(&printed));
        let text = stdout(&printed);
        if let Some(fragment) = expect_in_output {
            assert!(text.contains(fragment), "{ty} {arg}: {text}");
        }
        let v = werify_with_stdin(&["checks", "validate", "-"], &text);
        assert_eq!(code(&v), 0, "{ty}: {}", show(&v));
        assert_eq!(stdout(&v), "-: valid, 1 check\n");
        // Added to both files.
        for file in [&yaml_s, &json_s] {
            let o = werify(&["checks", "add", ty, arg, "--name", &name, "--file", file]);
            assert_eq!(code(&o), 0, "{ty} {arg} to {file}: {}", show(&o));
            assert_eq!(stdout(&o), format!("Added check {name} to {file}\n"));
        }
        names.push(name);
    }
    // A default name, in YAML on stdout.
    let o = werify(&[
        "checks",
        "add",
        "kernel_param",
        "kernel.ostype",
        "--format",
        "yaml",
    ]);
    assert_eq!(
        stdout(&o),
        "kernel_param_kernel_ostype:\n  type: kernel_param\n  name: kernel.ostype\n  value: Linux\n",
        "{}",
        show(&o)
    );

    let yaml_text = std::fs::read_to_string(&yaml).unwrap();
    assert!(yaml_text.starts_with(yaml_start), "{yaml_text}");
    let json_text = std::fs::read_to_string(&json).unwrap();
    assert!(
        json_text.starts_with(
            "{\n    \"hosts_file\": {\"type\": \"file_exists\", \"path\": \"/etc/hosts\"},\n    \""
        ),
        "{json_text}"
    );
    let v = werify(&["checks", "validate", &yaml_s, &json_s]);
    assert_eq!(code(&v), 0, "{}", show(&v));
    let n = names.len();
    assert_eq!(
        stdout(&v),
        format!("{yaml_s}: valid, {n} checks\n{json_s}: valid, {n} checks\n")
    );

    // A duplicate name, or a check this host does not pass: refused, the file unchanged.
    let o = werify(&[
        "checks",
        "add",
        "user_exists",
        "root",
        "--name",
        &names[1],
        "--file",
        &yaml_s,
    ]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        stderr(&o).contains(&format!("already has a check named \"{}\"", names[1])),
        "{}",
        show(&o)
    );
    let o = werify(&[
        "checks",
        "add",
        "port_listening",
        "tcp:127.0.0.1:32413",
        "--file",
        &yaml_s,
    ]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert_eq!(
        stderr(&o),
        "Error: port_listening \"tcp:127.0.0.1:32413\" does not hold on this host now: no tcp socket listens on 127.0.0.1 port 32413\n"
    );
    assert_eq!(std::fs::read_to_string(&yaml).unwrap(), yaml_text);

    // Each file as an operation on the mesh: every check passes on both hosts (the nodes
    // run on this host). The JSON file goes through stdin.
    let node = &nodes[0];
    // The nodes read their periodic checks from a YAML file.
    let o = node.ctl(&["refresh", "--wait"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    for host in &hosts {
        assert!(
            stdout(&o).contains(&format!(
                "Host:{host} Health: 2 passing, 0 failing, 0 erroring\n"
            )),
            "{}",
            show(&o)
        );
    }
    let o = node.ctl(&["operation", &yaml_s, "--wait", "--deadline", "20s"]);
    assert_all_pass(&o, &hosts, &names);
    let o = werify_with_stdin(
        &[
            "ctl",
            "--connect",
            &node.addr(),
            "operation",
            "-",
            "--wait",
            "--deadline",
            "20s",
        ],
        &json_text,
    );
    assert_all_pass(&o, &hosts, &names);
    // YAML through stdin too.
    let o = werify_with_stdin(
        &["ctl", "--connect", &node.addr(), "operation", "-", "--wait"],
        &yaml_text,
    );
    assert_all_pass(&o, &hosts, &names);
    // The checks read this host for real: the server saw the status reads and the runs.
    assert!(http.served.load(Ordering::Relaxed) >= 4);

    // Filters that match no alive member: an error naming them and the candidates.
    let o = node.ctl(&["operation", &yaml_s, "--node", "nomatch", "--wait"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("Error: no alive member matches --node nomatch, so nothing was run; alive members (2): 127.0.0.1:32401 (id "),
        "{err}"
    );
    assert!(
        err.contains(", tags role=web); 127.0.0.2:32401 (id "),
        "{err}"
    );
    assert!(err.ends_with(", tags role=db)\n"), "{err}");
    assert!(stdout(&o).is_empty(), "{}", show(&o));
    let o = node.ctl(&["operation", &yaml_s, "--tag", "role=^cache$"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        stderr(&o).starts_with(
            "Error: no alive member matches --tag 'role=^cache$', so nothing was run;"
        ),
        "{}",
        show(&o)
    );
    // A filter that matches: runs where it says.
    let o = node.ctl(&["operation", &yaml_s, "--tag", "role=db", "--wait"]);
    assert_all_pass(&o, &hosts[1..], &names);
    // An invalid regex stays a usage error.
    let o = node.ctl(&["operation", &yaml_s, "--node", "("]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        stderr(&o).contains("invalid --node regex \"(\""),
        "{}",
        show(&o)
    );
    drop(sleeper);
}

#[test]
fn yaml_errors_name_file_line_and_column_in_validate_and_operation_alike() {
    let dir = TempDir::new("authoring-yaml");
    let cases = [
        (
            "unknown.yaml",
            "hosts:\n  type: file_exists\n  paht: /etc/hosts\n",
            ":3:3: check \"hosts\": unknown field \"paht\" for type file_exists; did you mean \"path\"?",
        ),
        (
            "duplicate.yml",
            "a:\n  type: file_exists\n  path: /\nb: {type: user_exists, name: root}\na:\n  type: file_exists\n  path: /x\n",
            ":5:1: check \"a\": duplicate check name; each check needs its own name",
        ),
        (
            "dupfield.yaml",
            "a:\n  type: file_exists\n  path: /\n  path: /x\n",
            ":4:3: check \"a\": field \"path\" is given twice",
        ),
        (
            "wrongtype.yaml",
            "p:\n  type: port_listening\n  port: twenty-two\n",
            ":3:9: check \"p\": field \"port\" must be an integer, got a string",
        ),
        (
            "mode.yaml",
            "m:\n  type: file_mode\n  path: /etc/passwd\n  mode: 0644\n",
            ":4:9: check \"m\": field \"mode\" must be an octal mode string such as \"0644\", got a number (put the value in quotes to make it a string)",
        ),
        (
            "syntax.yaml",
            "a:\n  type: file_exists\n path: /\n",
            ":3:2: while parsing a block mapping, did not find expected key",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let p = path_str(&path);
        let v = werify(&["checks", "validate", &p]);
        assert_eq!(code(&v), 2, "{name}: {}", show(&v));
        let line = stderr(&v);
        assert!(
            line.starts_with(&format!("Error: {p}{expected}")),
            "{name}: {}",
            show(&v)
        );
        // Submitting gives the same error, before anything is sent (nothing listens).
        let o = ctl("127.0.0.1:32499", &["operation", &p]);
        assert_eq!(code(&o), 2, "{name}: {}", show(&o));
        assert_eq!(stderr(&o), line, "{name}");
        // From stdin: the same message, named <stdin>.
        let o = werify_with_stdin(
            &["ctl", "--connect", "127.0.0.1:32499", "operation", "-"],
            text,
        );
        assert_eq!(code(&o), 2, "{name}: {}", show(&o));
        assert!(
            stderr(&o).starts_with(&format!("Error: <stdin>{expected}")),
            "{name}: {}",
            show(&o)
        );
    }
    // A node refuses to start on a periodic checks file with an error, saying where.
    let data = dir.path().join("node-data");
    let bad = path_str(&dir.path().join("unknown.yaml"));
    let mut node = werify_in(
        None,
        &[
            "node",
            "--bind",
            "127.0.0.1",
            "--port",
            "32420",
            "--profile",
            "local",
            "--checks",
            &bad,
        ],
    )
    .arg("--data-dir")
    .arg(&data)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn werify node");
    let exited = wait_until(Duration::from_secs(20), || {
        matches!(node.try_wait(), Ok(Some(_)))
    });
    if exited.is_none() {
        let _ = node.kill();
    }
    let o = node.wait_with_output().expect("node output");
    assert!(exited.is_some(), "the node started anyway: {}", show(&o));
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{bad}:3:3: check \"hosts\": unknown field \"paht\""
        )),
        "{}",
        show(&o)
    );

    // Several files: each is reported, good ones too; exit 2.
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "a: {type: user_exists, name: root}\n").unwrap();
    let bad = path_str(&dir.path().join("unknown.yaml"));
    let v = werify(&["checks", "validate", &path_str(&good), &bad]);
    assert_eq!(code(&v), 2, "{}", show(&v));
    assert_eq!(stdout(&v), format!("{}: valid, 1 check\n", good.display()));
    assert!(
        stderr(&v).starts_with(&format!("Error: {bad}:3:3: ")),
        "{}",
        show(&v)
    );
}

#[test]
fn operation_dash_in_a_batch_is_refused_because_stdin_is_the_batch() {
    let o = werify_with_stdin(
        &["ctl", "--connect", "127.0.0.1:32499", "-"],
        "# stdin is these lines\noperation - --wait\nlist\n",
    );
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert_eq!(
        stderr(&o),
        "Error running operation - --wait: standard input holds this batch's commands, not an \
         operations file; name the file (operation FILE)\n"
    );
    assert!(stdout(&o).is_empty(), "{}", show(&o));
}
