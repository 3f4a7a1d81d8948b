//! The mesh's own view, from real `werify node` processes on 127.0.0.1–5 (ports
//! 32501–32503, HTTP on 32590–32592): `ctl health` (and `GET /v1/health`) on five nodes
//! while one host's periodic check starts failing, with what it found, `mesh status`
//! naming the failing check, and
//! `mesh watch`, `--on-event` scripts and `GET /v1/events` seeing a kill -9 and the
//! restarted node's rejoin.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

/// Hang guard for every wait below, not a speed assertion.
const DEADLINE: Duration = Duration::from_secs(60);

fn start_joined(dir: &TempDir, port: u16, n: u8, extra: impl Fn(u8) -> Vec<String>) -> Vec<Node> {
    let seed = format!("127.0.0.1:{port}");
    (1..=n)
        .map(|i| {
            let mut args = extra(i);
            if i > 1 {
                args.extend(["--join".to_string(), seed.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Node::start(dir.path(), i, port, &args)
        })
        .collect()
}

fn converge(nodes: &[&Node], port: u16) {
    let all: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.{}:{port}", n.index))
        .collect();
    assert!(
        wait_until(DEADLINE, || all_agree(nodes, &all, &[])).is_some(),
        "the mesh did not converge\n{}",
        dump_logs(nodes)
    );
}

/// `Host:… Check:… Success:…|Error:…` lines, the seed's result line with `Check:`.
fn check_lines(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"^Host:(\S+) Check:(\S+) (Success:(true|false)|Error:.*)$")
        .expect("regex");
    text.lines()
        .filter(|l| re.is_match(l))
        .map(str::to_string)
        .collect()
}

#[test]
fn ctl_health_from_any_node_shows_the_host_whose_periodic_check_starts_failing() {
    let dir = TempDir::new("observe-health");
    let port = 32501;
    let marker = |i: u8| dir.path().join(format!("marker{i}"));
    for i in 1..=5u8 {
        std::fs::write(marker(i), "present").expect("marker");
        std::fs::write(
            dir.path().join(format!("checks{i}.json")),
            format!(
                r#"{{"marker": {{"type": "file_exists", "path": "{}"}}, "root": {{"type": "file_exists", "path": "/"}}}}"#,
                marker(i).display()
            ),
        )
        .expect("checks file");
    }
    // Node 2 also serves HTTP, for GET /v1/health.
    let http = "127.0.0.2:32592";
    let checks = |i: u8| {
        let mut args = vec![
            "--checks".to_string(),
            dir.path()
                .join(format!("checks{i}.json"))
                .display()
                .to_string(),
            "--check-interval".into(),
            "200ms".into(),
        ];
        if i == 2 {
            args.extend(["--http".to_string(), http.to_string()]);
        }
        args
    };
    let mut nodes = start_joined(&dir, port, 5, checks);
    let refs: Vec<&Node> = nodes.iter().collect();
    converge(&refs, port);
    let host = |i: u8| format!("127.0.0.{i}:{port}");

    // Everything passes: ten result lines, exit 0.
    let mut last = String::new();
    let all_pass = wait_until(DEADLINE, || {
        let o = nodes[0].ctl(&["health"]);
        last = format!("{}{}", stdout(&o), stderr(&o));
        o.status.code() == Some(0) && check_lines(&stdout(&o)).len() == 10
    });
    assert!(all_pass.is_some(), "health never all passing:\n{last}");
    let lines = check_lines(&last);
    for i in 1..=5 {
        assert!(
            lines.contains(&format!("Host:{} Check:marker Success:true", host(i))),
            "{last}"
        );
    }
    assert!(
        last.ends_with(
            "Hosts: 5 known, 5 answered, 0 unavailable; checks: 10 passing, 0 failing, 0 erroring\n"
        ),
        "{last}"
    );

    // Host 3's check starts failing; any node, here 5, tells which host fails what.
    std::fs::remove_file(marker(3)).expect("remove marker");
    let failing = format!("Host:{} Check:marker Success:false", host(3));
    let seen = wait_until(DEADLINE, || {
        let o = nodes[4].ctl(&["health", "--failing"]);
        last = stdout(&o);
        o.status.code() == Some(1) && check_lines(&last) == [failing.clone()]
    });
    assert!(
        seen.is_some(),
        "--failing never showed only host 3:\n{last}"
    );
    // Under the failing line, what host 3 found and what the check expected.
    assert!(
        last.contains(&format!(
            "{failing}\n    found: exists=false\n    expected: exists=true\n"
        )),
        "{last}"
    );
    // Node 5 answers for itself; the three others that gossip no failure are not asked.
    assert!(
        last.ends_with(
            "Hosts: 5 known, 2 answered, 0 unavailable, 3 not asked (passing); checks: 9 passing, 1 failing, 0 erroring\n"
        ),
        "{last}"
    );
    // The whole view: the failing line among the passing ones, exit 1.
    let o = nodes[1].ctl(&["health"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = check_lines(&stdout(&o));
    assert_eq!(lines.len(), 10, "{}", stdout(&o));
    assert!(lines.contains(&failing), "{}", stdout(&o));
    assert!(lines.contains(&format!("Host:{} Check:root Success:true", host(3))));
    // Passing checks get no detail lines; with -v they show what they found too.
    assert_eq!(
        stdout(&o).matches("    found: ").count(),
        1,
        "{}",
        stdout(&o)
    );
    let o = nodes[1].ctl(&["health", "-v"]);
    assert_eq!(
        stdout(&o).matches("    found: exists=true type=").count(),
        9,
        "{}",
        stdout(&o)
    );
    // JSON carries the same.
    let o = nodes[2].ctl(&["--output", "json", "health"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("health JSON");
    let h3 = doc["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["host"] == host(3))
        .expect("host 3");
    assert_eq!(h3["status"], "answered");
    assert_eq!(h3["checks"]["marker"]["success"], false);
    assert_eq!(h3["checks"]["marker"]["found"]["exists"], "false");
    assert_eq!(h3["checks"]["marker"]["expected"]["exists"], "true");
    assert_eq!(h3["checks"]["root"]["success"], true);
    assert_eq!(h3["gossiped"]["failing_names"][0], "marker");
    assert_eq!(doc["summary"]["checks_failing"], 1);
    // GET /v1/health?failing answers the same document, failing checks only.
    let mut resp = ureq::get(&format!("http://{http}/v1/health?failing"))
        .call()
        .expect("GET /v1/health");
    let body = resp.body_mut().read_to_string().expect("body");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(doc["failing_only"], true, "{doc:#}");
    let h3 = doc["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["host"] == host(3))
        .expect("host 3");
    assert_eq!(
        h3["checks"]["marker"]["found"]["exists"], "false",
        "{doc:#}"
    );
    assert!(h3["checks"].get("root").is_none(), "{doc:#}");
    assert_eq!(doc["summary"]["not_asked"], 3, "{doc:#}");

    // `mesh status` names the failing check in its health column, and in JSON.
    let o = werify_in(None, &["mesh", "status", "--connect", &host(4)])
        .output()
        .expect("mesh status");
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains(&host(3)))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        row.contains("1 failing, 0 erroring of 2 (marker)"),
        "{}",
        stdout(&o)
    );
    let status = status_json(&host(4)).expect("status JSON");
    let m3 = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["addr"] == host(3))
        .expect("member 3");
    assert_eq!(m3["health"]["failing_names"][0], "marker");

    // A host that cannot be asked is reported with its last gossiped summary.
    nodes[2].kill();
    let o = nodes[0].ctl(&["--timeout", "20s", "health"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("Host:{} Error:", host(3))))
        .unwrap_or_else(|| panic!("no error line for host 3:\n{text}"));
    assert!(
        line.contains("last gossiped: 1 passing, 1 failing, 0 erroring (marker)"),
        "{line}"
    );
    assert!(text.contains("1 unavailable"), "{text}");
}

/// A running `werify mesh watch`, its stdout lines arriving on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    /// `werify mesh watch --connect ADDR --output OUTPUT EXTRA…`.
    fn start(addr: &str, output: &str, extra: &[&str]) -> Watch {
        let mut child = werify_in(
            None,
            &["mesh", "watch", "--connect", addr, "--output", output],
        )
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mesh watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line `pred` accepts; every line read is kept in `seen`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let give_up = std::time::Instant::now() + DEADLINE;
        loop {
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "watch: no {what} within {DEADLINE:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits for the process to exit; its exit code and stderr.
    fn exit(mut self) -> (Option<i32>, String) {
        let mut stderr = String::new();
        let status = wait_until(DEADLINE, || matches!(self.child.try_wait(), Ok(Some(_))));
        if status.is_none() {
            let _ = self.child.kill();
        }
        let code = self.child.wait().expect("wait").code();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        (code, stderr)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event_of(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn watch_on_event_and_the_event_log_see_a_kill_9_and_the_rejoin() {
    let dir = TempDir::new("observe-watch");
    let port = 32502;
    let http = "127.0.0.1:32590";
    let seen_by_script = dir.path().join("events.txt");
    let script = dir.path().join("on-event.sh");
    write_script(
        &script,
        &format!(
            "echo \"$WERIFY_EVENT $WERIFY_MEMBER_ADDR state=$WERIFY_MEMBER_STATE was=$WERIFY_MEMBER_PREVIOUS_STATE accuser=$WERIFY_ACCUSER tags=$WERIFY_MEMBER_TAGS\" >> {}",
            seen_by_script.display()
        ),
    );
    let script_arg = script.display().to_string();
    let mut nodes = start_joined(&dir, port, 4, |i| {
        let mut a = vec!["--tag".to_string(), format!("n={i}")];
        if i == 1 {
            a.extend([
                "--on-event".to_string(),
                script_arg.clone(),
                "--http".into(),
                http.into(),
            ]);
        }
        a
    });
    let refs: Vec<&Node> = nodes.iter().collect();
    let node1 = nodes[0].addr();
    let mut jsonl = Watch::start(&node1, "jsonl", &[]);
    let mut text = Watch::start(&node1, "text", &[]);
    converge(&refs, port);
    let victim = nodes[2].addr();

    // kill -9: the watchers see the member die, with who declared it.
    nodes[2].kill();
    let dead = event_of(&jsonl.wait_for("member-dead of the killed node", |l| {
        l.contains("\"member-dead\"") && l.contains(&victim)
    }));
    assert_eq!(dead["member_state"], "dead");
    assert_eq!(dead["member_tags"]["n"], "3");
    let accuser = dead["accuser"].as_str().expect("an accuser").to_string();
    assert_eq!(accuser.len(), 32, "{dead}");
    let dead_seq = dead["seq"].as_u64().expect("seq");
    let line = text.wait_for("the text line of the death", |l| {
        l.contains(" member-dead ") && l.contains(&victim)
    });
    assert!(line.contains("state=dead"), "{line}");
    assert!(
        line.contains(&format!("accuser={}", &accuser[..8])),
        "{line}"
    );

    // The restart rejoins: seen as joined again, after having been dead.
    nodes[2].spawn();
    let back = event_of(&jsonl.wait_for("the rejoin", |l| {
        l.contains("\"member-joined\"") && l.contains(&victim)
    }));
    assert_eq!(back["previous_state"], "dead");
    assert_eq!(back["member_state"], "alive");
    assert!(back["seq"].as_u64().expect("seq") > dead_seq);

    // The --on-event script ran for both, with the member in its environment.
    let script_saw = |want: &str| {
        std::fs::read_to_string(&seen_by_script)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(want))
    };
    let dead_line = format!("member-dead {victim} state=dead was=");
    let joined_line = format!("member-joined {victim} state=alive was=dead accuser= tags=n=3");
    assert!(
        wait_until(DEADLINE, || script_saw(&dead_line)
            && script_saw(&joined_line))
        .is_some(),
        "the script did not see the death and the rejoin:\n{}\n{}",
        std::fs::read_to_string(&seen_by_script).unwrap_or_default(),
        nodes[0].log_tail(30)
    );
    let log = std::fs::read_to_string(&seen_by_script).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.starts_with(&dead_line) && l.contains(&format!("accuser={accuser}"))),
        "{log}"
    );

    // GET /v1/events: the same events, oldest first; since=SEQ lists only later ones.
    let get = |path: &str| -> serde_json::Value {
        let mut resp = ureq::get(&format!("http://{http}{path}"))
            .call()
            .expect("GET /v1/events");
        let body = resp.body_mut().read_to_string().expect("body");
        serde_json::from_str(&body).expect("JSON")
    };
    let all = get("/v1/events");
    let events = all["events"].as_array().expect("events");
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    assert_eq!(all["missed"], 0);
    assert!(
        events
            .iter()
            .any(|e| e["seq"] == dead_seq && e["event"] == "member-dead")
    );
    let later = get(&format!("/v1/events?since={dead_seq}"));
    let later = later["events"].as_array().expect("events");
    assert!(later.iter().all(|e| e["seq"].as_u64() > Some(dead_seq)));
    assert!(
        later
            .iter()
            .any(|e| e["event"] == "member-joined" && e["member_addr"] == victim.as_str())
    );

    // Ctrl-C ends a watch cleanly.
    jsonl.signal("-INT");
    let (code, err) = jsonl.exit();
    assert_eq!(code, Some(0), "{err}");

    // A watch whose node is killed ends with exit 3, saying the node went away.
    // With --since 0 it first prints what the node holds: once a line is out, it watches.
    let mut watched = Watch::start(&nodes[1].addr(), "text", &["--since", "0"]);
    watched.wait_for("the backlog", |l| l.contains(" member-joined "));
    nodes[1].kill();
    let (code, err) = watched.exit();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("went away"), "{err}");
    drop(text);
}
