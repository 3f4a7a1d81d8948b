//! Multi-process operation tests: checks of every type run on 5 real nodes, results per
//! host, a host killed mid-operation, `get` through another node, a coordinator restart,
//! hostile files, and input errors that must stop a file before anything is sent.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CONVERGE: Duration = Duration::from_secs(30);

fn start_mesh(dir: &TempDir, port: u16, n: u8, extra_for: impl Fn(u8) -> Vec<String>) -> Vec<Node> {
    let seed = format!("127.0.0.1:{port}");
    let nodes: Vec<Node> = (1..=n)
        .map(|i| {
            let mut args = extra_for(i);
            if i > 1 {
                args.extend(["--join".to_string(), seed.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Node::start(dir.path(), i, port, &args)
        })
        .collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    let all: Vec<String> = (1..=n).map(|i| format!("127.0.0.{i}:{port}")).collect();
    assert!(
        wait_until(CONVERGE, || all_agree(&refs, &all, &[])).is_some(),
        "mesh did not converge\n{}",
        dump_logs(&refs)
    );
    nodes
}

fn write(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn every_check_type_on_five_hosts_with_each_outcome_per_host() {
    let dir = TempDir::new("op-all");
    let port = 31201;
    // Only hosts 1 and 2 allow command checks: the others must report an error for them.
    let nodes = start_mesh(&dir, port, 5, |i| {
        if i <= 2 {
            vec!["--allow-command".into()]
        } else {
            vec![]
        }
    });
    let contains = write(
        &dir,
        "contains.txt",
        "alpha\nbeta gamma\nlast line without newline",
    );
    let hash_file = write(&dir, "hash.txt", "abc");
    let missing = dir
        .path()
        .join("missing.txt")
        .to_string_lossy()
        .into_owned();
    let ops = format!(
        r#"{{
  "fe_present":   {{"type": "file_exists", "path": "{contains}"}},
  "fe_missing":   {{"type": "file_exists", "path": "{missing}"}},
  "fe_notdir":    {{"type": "file_exists", "path": "{contains}/x"}},
  "fc_hit":       {{"type": "file_contains", "path": "{contains}", "check": "ta ga"}},
  "fc_lastline":  {{"type": "file_contains", "path": "{contains}", "check": "without newline"}},
  "fc_miss":      {{"type": "file_contains", "path": "{contains}", "check": "Alpha"}},
  "fc_nofile":    {{"type": "file_contains", "path": "{missing}", "check": "x"}},
  "fm_hit":       {{"type": "file_matches", "path": "{contains}", "pattern": "^beta g.m+a$"}},
  "fh_ok":        {{"type": "file_hash", "path": "{hash_file}", "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}},
  "fh_bad":       {{"type": "file_hash", "path": "{hash_file}", "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}},
  "pr_self":      {{"type": "process_running", "check": "werify"}},
  "pr_none":      {{"type": "process_running", "check": "no-such-process-xyz"}},
  "pr_inverted":  {{"type": "process_running", "check": "no-such-process-xyz", "expect": false}},
  "user_root":    {{"type": "user_exists", "name": "root"}},
  "disk_tmp":     {{"type": "disk_free", "path": "/", "min_percent": 0}},
  "cmd_true":     {{"type": "command", "command": "true"}},
  "port_none":    {{"type": "port_listening", "port": 1, "proto": "tcp"}}
}}"#
    );
    let file = write(&dir, "ops.json", &ops);
    let coord = nodes[0].addr();
    let o = ctl(&coord, &["--timeout", "30s", "operation", &file, "--wait"]);
    let text = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "some checks fail, so exit 1\n{text}\n{}",
        stderr(&o)
    );
    let r = result_lines(&text);
    assert_eq!(r.len(), 5, "{text}");
    for (i, n) in nodes.iter().enumerate() {
        let host = r
            .get(&n.addr())
            .unwrap_or_else(|| panic!("no results for {}\n{text}", n.addr()));
        assert_eq!(host.len(), 17, "{text}");
        let is = |name: &str, want: &str| {
            assert_eq!(
                host.get(name).map(String::as_str),
                Some(want),
                "{} {name}\n{text}",
                n.addr()
            );
        };
        let is_error = |name: &str| {
            let v = host.get(name).map(String::as_str).unwrap_or("");
            assert!(v.starts_with("Error:"), "{} {name}: {v}\n{text}", n.addr());
        };
        is("fe_present", "Success:true");
        is("fe_missing", "Success:false");
        is_error("fe_notdir");
        is("fc_hit", "Success:true");
        is("fc_lastline", "Success:true");
        is("fc_miss", "Success:false");
        is_error("fc_nofile");
        is("fm_hit", "Success:true");
        is("fh_ok", "Success:true");
        is("fh_bad", "Success:false");
        is("pr_self", "Success:true");
        is("pr_none", "Success:false");
        is("pr_inverted", "Success:true");
        is("user_root", "Success:true");
        is("disk_tmp", "Success:true");
        is("port_none", "Success:false");
        if i < 2 {
            is("cmd_true", "Success:true");
        } else {
            is_error("cmd_true");
            assert!(
                host["cmd_true"].contains("--allow-command"),
                "{}",
                host["cmd_true"]
            );
        }
    }
    assert!(text.contains("Operation ended, took "), "{text}");
    assert!(
        text.contains("Hosts: 5 targeted, 5 answered, 0 unreachable"),
        "{text}"
    );
    // Lines are sorted by host, then check name.
    let hosts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Host:"))
        .collect();
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(hosts, sorted);
}

#[test]
fn a_host_killed_mid_operation_is_reported_and_the_rest_complete() {
    let dir = TempDir::new("op-kill");
    let port = 31202;
    let mut nodes = start_mesh(&dir, port, 4, |_| vec!["--allow-command".into()]);
    let file = write(
        &dir,
        "slow.json",
        r#"{"slow": {"type": "command", "command": "sleep", "args": ["2"], "timeout": "5s"}}"#,
    );
    let coord = nodes[0].addr();
    let o = ctl(&coord, &["operation", &file, "--deadline", "6s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let handle = stdout(&o).trim().rsplit(' ').next().unwrap().to_string();
    nodes[3].kill();
    let o = ctl(&coord, &["--timeout", "30s", "get", &handle, "--wait"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let r = result_lines(&text);
    for n in &nodes[..3] {
        assert_eq!(r[&n.addr()]["slow"], "Success:true", "{text}");
    }
    let dead = &r[&nodes[3].addr()]["slow"];
    assert!(dead.starts_with("Error:"), "{text}");
    assert!(
        text.contains("Hosts: 4 targeted, 3 answered, 1 unreachable"),
        "{text}"
    );
}

#[test]
fn get_works_from_another_node_and_after_a_coordinator_restart() {
    let dir = TempDir::new("op-get");
    let port = 31203;
    let mut nodes = start_mesh(&dir, port, 3, |_| vec![]);
    let file = write(
        &dir,
        "ops.json",
        r#"{"hosts": {"type": "file_exists", "path": "/etc/hosts"}}"#,
    );
    let o = ctl(&nodes[0].addr(), &["operation", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!(
            "Operation submitted. To check progress, run: werify ctl --connect {} get ",
            nodes[0].addr()
        )),
        "{out}"
    );
    let handle = out.trim().rsplit(' ').next().unwrap().to_string();
    let o = ctl(&nodes[2].addr(), &["get", &handle, "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let before = stdout(&o);
    assert_eq!(result_lines(&before).len(), 3, "{before}");
    // The coordinator restarts: the handle's results are still there, from any node.
    nodes[0].restart();
    let after = wait_until(CONVERGE, || {
        let o = ctl(&nodes[1].addr(), &["get", &handle]);
        o.status.success() && result_lines(&stdout(&o)) == result_lines(&before)
    });
    assert!(
        after.is_some(),
        "results lost after restart\n{}",
        dump_logs(&[&nodes[0]])
    );
    // An unknown handle is a clear error.
    let o = ctl(&nodes[1].addr(), &["get", "abc1-zzzz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("abc1-zzzz"), "{}", stderr(&o));
}

#[test]
fn hostile_files_give_the_right_error_within_the_check_timeout() {
    let dir = TempDir::new("op-hostile");
    let port = 31204;
    let nodes = start_mesh(&dir, port, 1, |_| vec![]);
    let fifo = dir.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let long = write(&dir, "long.txt", &format!("{}needle\n", "x".repeat(70_000)));
    let subdir = dir.path().join("adir");
    std::fs::create_dir(&subdir).unwrap();
    let ops = format!(
        r#"{{
  "fifo":  {{"type": "file_contains", "path": "{}", "check": "x", "timeout": "2s"}},
  "zero":  {{"type": "file_contains", "path": "/dev/zero", "check": "x", "timeout": "2s"}},
  "long":  {{"type": "file_contains", "path": "{long}", "check": "needle"}},
  "dir":   {{"type": "file_contains", "path": "{}", "check": "x"}}
}}"#,
        fifo.display(),
        subdir.display()
    );
    let file = write(&dir, "hostile.json", &ops);
    let started = Instant::now();
    let o = ctl(&nodes[0].addr(), &["operation", &file, "--wait"]);
    let took = started.elapsed();
    let text = stdout(&o);
    let r = result_lines(&text);
    let host = &r[&nodes[0].addr()];
    assert!(host["fifo"].starts_with("Error:"), "{text}");
    assert!(host["zero"].starts_with("Error:"), "{text}");
    assert_eq!(host["long"], "Success:true", "{text}");
    assert!(
        host["dir"].starts_with("Error:") && host["dir"].contains("director"),
        "{text}"
    );
    // Nothing waited for the FIFO's writer: well within the 10 s default deadline.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_bad_operations_file_is_rejected_before_anything_is_sent() {
    let dir = TempDir::new("op-bad");
    let port = 31205;
    let nodes = start_mesh(&dir, port, 1, |_| vec![]);
    let bad_type = write(
        &dir,
        "bad.json",
        "{\n  \"x\": {\"type\": \"regex_match\", \"path\": \"/\"}\n}\n",
    );
    let o = ctl(&nodes[0].addr(), &["operation", &bad_type]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.json:2:"), "{err}");
    assert!(
        err.contains("\"x\"") && err.contains("file_exists"),
        "{err}"
    );
    let o = ctl(
        &nodes[0].addr(),
        &["operation", &dir.path().join("nope.json").to_string_lossy()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.json"), "{}", stderr(&o));
}

#[test]
fn refresh_reruns_periodic_checks_and_every_node_sees_every_summary() {
    let dir = TempDir::new("op-refresh");
    let port = 31206;
    let marker = dir.path().join("marker");
    let checks = write(
        &dir,
        "periodic.json",
        &format!(
            r#"{{"marker": {{"type": "file_exists", "path": "{}"}}, "hosts": {{"type": "file_exists", "path": "/etc/hosts"}}}}"#,
            marker.display()
        ),
    );
    // A long interval: only a refresh can make the summaries change during the test.
    let nodes = start_mesh(&dir, port, 3, |_| {
        vec![
            "--checks".into(),
            checks.clone(),
            "--check-interval".into(),
            "60m".into(),
        ]
    });
    let o = ctl(&nodes[0].addr(), &["refresh", "--wait"]);
    let text = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "marker is missing, so a check fails\n{text}{}",
        stderr(&o)
    );
    for n in &nodes {
        assert!(
            text.contains(&format!(
                "Host:{} Health: 1 passing, 1 failing, 0 erroring (marker)",
                n.addr()
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("Refresh complete: 3 of 3 alive hosts reported"),
        "{text}"
    );
    std::fs::write(&marker, "x").unwrap();
    let o = ctl(&nodes[1].addr(), &["refresh", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Gossip carries each node's new summary to every other node.
    let all_ok = wait_until(CONVERGE, || {
        nodes.iter().all(|n| {
            let o = std::process::Command::new(BIN)
                .args(["mesh", "status", "--connect", &n.addr(), "--output", "json"])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            v["members"].as_array().is_some_and(|ms| {
                ms.len() == 3
                    && ms
                        .iter()
                        .all(|m| m["health"]["passing"] == 2 && m["health"]["failing"] == 0)
            })
        })
    });
    assert!(all_ok.is_some(), "summaries did not spread");
    let o = ctl(&nodes[2].addr(), &["refresh"]);
    assert_eq!(stdout(&o), "Initiated refresh\n");
}
