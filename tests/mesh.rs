//! Multi-process mesh tests: real `werify node` processes on 127.0.0.1–5, each test on its
//! own port. Joining by `--join` and by `ctl add`, kill -9 and restart, env and secret
//! separation, `del`, batch mode.

mod common;

use std::time::Duration;

use common::*;

const CONVERGE: Duration = Duration::from_secs(30);

fn addrs(port: u16, n: u8) -> Vec<String> {
    (1..=n).map(|i| format!("127.0.0.{i}:{port}")).collect()
}

fn start_joined(dir: &TempDir, port: u16, n: u8, extra: &[&str]) -> Vec<Node> {
    let seed = format!("127.0.0.1:{port}");
    (1..=n)
        .map(|i| {
            let mut args: Vec<&str> = extra.to_vec();
            if i > 1 {
                args.extend(["--join", seed.as_str()]);
            }
            Node::start(dir.path(), i, port, &args)
        })
        .collect()
}

#[test]
fn five_nodes_joined_with_join_flag_all_list_five_active() {
    let dir = TempDir::new("join-flag");
    let port = 31101;
    let nodes = start_joined(&dir, port, 5, &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let all = addrs(port, 5);
    let took = wait_until(CONVERGE, || all_agree(&refs, &all, &[]));
    assert!(
        took.is_some(),
        "mesh did not converge\n{}",
        dump_logs(&refs)
    );
}

#[test]
fn five_nodes_added_with_ctl_add_all_list_five_active() {
    let dir = TempDir::new("ctl-add");
    let port = 31102;
    let nodes: Vec<Node> = (1..=5)
        .map(|i| Node::start(dir.path(), i, port, &[]))
        .collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let first = nodes[0].addr();
    // Wait until every node answers before adding.
    assert!(wait_until(CONVERGE, || refs.iter().all(|n| list(&n.addr()).is_some())).is_some());
    for n in &nodes[1..] {
        let o = ctl(&first, &["add", &n.addr()]);
        assert!(
            o.status.success(),
            "add {} failed: {}",
            n.addr(),
            stderr(&o)
        );
        assert_eq!(stdout(&o), format!("Added host {}\n", n.addr()));
    }
    let all = addrs(port, 5);
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "mesh did not converge\n{}",
        dump_logs(&refs)
    );
    // Adding a member that is already alive is refused, nothing changes.
    let o = ctl(&first, &["add", &nodes[1].addr()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already in the mesh"), "{}", stderr(&o));
}

#[test]
fn kill_9_is_listed_inactive_everywhere_and_a_restart_is_active_again() {
    let dir = TempDir::new("kill9");
    let port = 31103;
    let mut nodes = start_joined(&dir, port, 5, &[]);
    let all = addrs(port, 5);
    {
        let refs: Vec<&Node> = nodes.iter().collect();
        assert!(
            wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
            "{}",
            dump_logs(&refs)
        );
    }
    nodes[4].kill();
    let victim = all[4].clone();
    let survivors: Vec<String> = all[..4].to_vec();
    {
        let refs: Vec<&Node> = nodes[..4].iter().collect();
        assert!(
            wait_until(CONVERGE, || all_agree(
                &refs,
                &survivors,
                std::slice::from_ref(&victim)
            ))
            .is_some(),
            "kill -9 not detected\n{}",
            dump_logs(&refs)
        );
    }
    nodes[4].restart();
    let refs: Vec<&Node> = nodes.iter().collect();
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "restarted node not active again\n{}",
        dump_logs(&refs)
    );
}

#[test]
fn ctl_with_another_env_fails_with_the_env_message() {
    let dir = TempDir::new("ctl-env");
    let port = 31104;
    let node = Node::start(dir.path(), 1, port, &["--env", "prod"]);
    assert!(
        wait_until(CONVERGE, || ctl(&node.addr(), &["--env", "prod", "list"])
            .status
            .success())
        .is_some()
    );
    let o = ctl(&node.addr(), &["--env", "staging", "list"]);
    assert_eq!(o.status.code(), Some(2), "stdout: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("env") && err.contains("prod") && err.contains("staging"),
        "{err}"
    );
    // The variable works too, and the flag beats it.
    let o = ctl_env(&node.addr(), &["list"], &[("WERIFY_ENV", "staging")]);
    assert_eq!(o.status.code(), Some(2));
    let o = ctl_env(
        &node.addr(),
        &["--env", "prod", "list"],
        &[("WERIFY_ENV", "staging")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_node_with_another_secret_cannot_join() {
    let dir = TempDir::new("secret");
    let port = 31105;
    let s1 = dir.path().join("s1");
    let s2 = dir.path().join("s2");
    std::fs::write(&s1, "first secret\n").unwrap();
    std::fs::write(&s2, "second secret\n").unwrap();
    let s1 = s1.to_string_lossy().into_owned();
    let s2 = s2.to_string_lossy().into_owned();
    let a = Node::start(dir.path(), 1, port, &["--secret-file", &s1]);
    let b = Node::start(
        dir.path(),
        2,
        port,
        &["--secret-file", &s1, "--join", &a.addr()],
    );
    let outsider = Node::start(
        dir.path(),
        3,
        port,
        &["--secret-file", &s2, "--join", &a.addr()],
    );
    let pair = [a.addr(), b.addr()];
    let with = |args: &[&str], s: &str| {
        let mut v = vec!["--secret-file", s];
        v.extend_from_slice(args);
        v.iter().map(|x| x.to_string()).collect::<Vec<_>>()
    };
    let list_with = |addr: &str, secret: &str| {
        let args = with(&["list"], secret);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl(addr, &args)
    };
    assert!(
        wait_until(CONVERGE, || stdout(&list_with(&a.addr(), &s1))
            == format!(
                "Active hosts (2)\n{}\n{}\nInactive hosts (0)\nEnd of list\n",
                pair[0], pair[1]
            ))
        .is_some(),
        "{}",
        dump_logs(&[&a, &b, &outsider])
    );
    // Give the outsider time to try, then check it is still alone and unseen.
    std::thread::sleep(Duration::from_secs(3));
    let seen = stdout(&list_with(&a.addr(), &s1));
    assert!(!seen.contains(&outsider.addr()), "outsider joined: {seen}");
    let o = list_with(&outsider.addr(), &s2);
    assert!(stdout(&o).contains("Active hosts (1)"), "{}", stdout(&o));
    // A client with the wrong secret is refused by a node.
    let o = list_with(&a.addr(), &s2);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not signed"), "{}", stderr(&o));
    // ctl add of the outsider fails and adds nothing.
    let args = with(&["add", &outsider.addr()], &s1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ctl(&a.addr(), &args);
    // The node cannot reach the outsider (it refuses the handshake): unavailable, exit 3.
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).starts_with("Error: "), "{}", stderr(&o));
    assert!(!stdout(&list_with(&a.addr(), &s1)).contains(&outsider.addr()));
}

#[test]
fn del_removes_a_host_everywhere_and_add_brings_it_back() {
    let dir = TempDir::new("del");
    let port = 31106;
    let nodes = start_joined(&dir, port, 3, &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let all = addrs(port, 3);
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "{}",
        dump_logs(&refs)
    );
    let o = ctl(&nodes[0].addr(), &["del", &nodes[2].addr()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("Removed host {}\n", nodes[2].addr()));
    let two = all[..2].to_vec();
    assert!(
        wait_until(CONVERGE, || all_agree(&refs[..2], &two, &[])).is_some(),
        "removal did not spread\n{}",
        dump_logs(&refs)
    );
    // It stays out.
    std::thread::sleep(Duration::from_secs(2));
    assert!(all_agree(&refs[..2], &two, &[]));
    // Unknown host: clear error.
    let o = ctl(&nodes[0].addr(), &["del", "127.0.0.9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).is_empty());
    // Added again, it is back everywhere.
    let o = ctl(&nodes[1].addr(), &["add", &nodes[2].addr()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "{}",
        dump_logs(&refs)
    );
}

/// Runs `werify ctl --connect ADDR ARGS… -` with `input` on stdin.
fn batch(addr: &str, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .args(["ctl", "--connect", addr])
        .args(args)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn batch_mode_runs_lines_and_stops_at_the_first_error() {
    let dir = TempDir::new("batch");
    let port = 31107;
    let a = Node::start(dir.path(), 1, port, &[]);
    let b = Node::start(dir.path(), 2, port, &[]);
    assert!(
        wait_until(CONVERGE, || list(&a.addr()).is_some()
            && list(&b.addr()).is_some())
        .is_some()
    );
    let input = format!(
        "# comment\n\n  add \t {}\nlistactive\nfrobnicate\nlist\n",
        b.addr()
    );
    let o = batch(&a.addr(), &[], &input);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("Added host {}\nActive hosts (2)\n", b.addr())),
        "{out}"
    );
    assert_eq!(
        stderr(&o),
        "Error running frobnicate: Unknown command frobnicate\n"
    );
    assert!(!out.contains("Commands processed"));
    // Without errors it counts the commands it ran; words are split like a shell's, and
    // a comment may follow a command.
    let o = batch(
        &a.addr(),
        &[],
        "list\n# x\n'listinactive'   # the other half\r\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "Active hosts (2)\n{0}\n{1}\nInactive hosts (0)\nEnd of list\n\
             Inactive hosts (0)\nEnd of list\nCommands processed: 2\n",
            a.addr(),
            b.addr()
        )
    );
    // The options of `ctl` may follow `-` too, and apply to every line.
    let lines = dir.path().join("lines");
    std::fs::write(&lines, "listactive\n").unwrap();
    let o = std::process::Command::new(BIN)
        .args(["ctl", "-", "--connect", &a.addr(), "--output", "json"])
        .stdin(std::fs::File::open(&lines).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let json_part = stdout(&o)
        .strip_suffix("Commands processed: 1\n")
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{}", stdout(&o)));
    let v: serde_json::Value = serde_json::from_str(&json_part).expect("one JSON document");
    assert_eq!(v["active"].as_array().map(|a| a.len()), Some(2), "{v}");
}

#[test]
fn batch_mode_errors_have_the_original_tools_texts_and_the_nodes_exit_codes() {
    let dir = TempDir::new("batch-errors");
    let port = 31109;
    let a = Node::start(dir.path(), 1, port, &[]);
    assert!(wait_until(CONVERGE, || list(&a.addr()).is_some()).is_some());
    // Each line is read by the same definitions as the command line; the first error
    // stops the run with the line as typed (trimmed) and exit 2.
    for (line, message) in [
        (
            "add",
            "Invalid number of arguments for add: Expected 1 but got 0",
        ),
        (
            "list extra",
            "Invalid number of arguments for list: Expected 0 but got 1",
        ),
        (
            "get --wait",
            "Invalid number of arguments for get: Expected 1 but got 0",
        ),
        ("  lst  ", "Unknown command lst"),
        ("-", "Unknown command -"),
        ("list --wait", "unexpected argument '--wait' found"),
        ("add 'unclosed", "unbalanced quotes or a trailing backslash"),
    ] {
        let o = batch(&a.addr(), &[], &format!("listinactive\n{line}\nlist\n"));
        assert_eq!(o.status.code(), Some(2), "{line}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("Error running {}: {message}\n", line.trim()),
            "{line}"
        );
        assert_eq!(stdout(&o), "Inactive hosts (0)\nEnd of list\n", "{line}");
    }
    // A handle is checked before anything is sent.
    let o = batch(&a.addr(), &[], "get bogus\nlist\n");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error running get bogus: invalid operation handle \"bogus\""),
        "{}",
        stderr(&o)
    );
    // A node's refusal stops the run with the exit code of its error code: an unknown
    // host is not found (2), a host nothing answers at is unavailable (3).
    let o = batch(&a.addr(), &[], "del 127.0.0.9\nlist\n");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error running del 127.0.0.9: "),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o = batch(&a.addr(), &[], &format!("add 127.0.0.9:{port}\n"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("Error running add 127.0.0.9:{port}: ")),
        "{}",
        stderr(&o)
    );
    // Help for a command is printed, and counts as a line processed.
    let o = batch(&a.addr(), &[], "get --help\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Usage: werify ctl get [OPTIONS] <HANDLE>"),
        "{out}"
    );
    assert!(out.ends_with("Commands processed: 1\n"), "{out}");
}

#[test]
fn ctl_errors_are_clear_and_need_no_node() {
    let o = ctl("127.0.0.1:31199", &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "Error: Unknown command frobnicate\n");
    let o = ctl("127.0.0.1:31199", &["add"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "Error: Invalid number of arguments for add: Expected 1 but got 0\n"
    );
    let o = ctl("127.0.0.1:31199", &["list", "extra", "--output", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "Error: Invalid number of arguments for list: Expected 0 but got 1\n"
    );
    // Other mistakes: clap's error with the command's usage, exit 2.
    let o = ctl("127.0.0.1:31199", &["list", "--wait"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unexpected argument '--wait' found")
            && stderr(&o).contains("Usage: werify ctl list"),
        "{}",
        stderr(&o)
    );
    // A command's --help is its help, on stdout, exit 0.
    let o = ctl("127.0.0.1:31199", &["operation", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Usage: werify ctl operation [OPTIONS] <FILE>")
            && stdout(&o).contains("--deadline <DURATION>"),
        "{}",
        stdout(&o)
    );
    // A batch line's mistake needs no node either.
    let o = batch("127.0.0.1:31199", &[], "# nothing yet\nfrobnicate\n");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "Error running frobnicate: Unknown command frobnicate\n"
    );
    // Nothing listening: a clear error within the timeout.
    let o = ctl("127.0.0.1:31199", &["--timeout", "5s", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("127.0.0.1:31199"), "{}", stderr(&o));
}

#[test]
fn mesh_status_shows_members_in_text_and_json() {
    let dir = TempDir::new("status");
    let port = 31108;
    let nodes = start_joined(&dir, port, 3, &["--tag", "role=web"]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let all = addrs(port, 3);
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "{}",
        dump_logs(&refs)
    );
    let o = std::process::Command::new(BIN)
        .args(["mesh", "status", "--connect", &nodes[0].addr()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("env dev"), "{text}");
    assert!(
        text.contains("members: 3 alive, 0 suspect, 0 dead, 0 left"),
        "{text}"
    );
    assert!(text.contains("role=web"), "{text}");
    let v = status_json(&nodes[0].addr()).expect("mesh status --output json");
    assert_eq!(v["members"].as_array().map(|m| m.len()), Some(3));
    assert_eq!(v["env"], "dev");
}

/// The node's own count of open QUIC connections, from `mesh status --output json` (the
/// status call's own connection included).
fn connections_of(node: &Node) -> Option<u64> {
    status_json(&node.addr())?["connections"].as_u64()
}

#[test]
fn each_pair_of_nodes_shares_one_connection() {
    // Every node probes every other within a few seconds, so each pair has talked both
    // ways; with a connection per direction each node would hold 2 × 4 peer connections.
    let dir = TempDir::new("one-conn");
    let port = 31120;
    let nodes = start_joined(&dir, port, 5, &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let all = addrs(port, 5);
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "{}",
        dump_logs(&refs)
    );
    // Let every pair exchange probes, and any duplicate from a simultaneous dial close
    // (after its grace period).
    std::thread::sleep(Duration::from_secs(3));
    let settled = wait_until(Duration::from_secs(40), || {
        nodes.iter().all(|n| connections_of(n) == Some(4 + 1))
    });
    let counts: Vec<Option<u64>> = nodes.iter().map(connections_of).collect();
    assert!(
        settled.is_some(),
        "open connections per node (4 peers + this status call expected): {counts:?}"
    );
}
