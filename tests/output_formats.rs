//! Every `--output` format read back by the program that consumes it: JUnit XML by
//! Python's junitparser, TAP by `prove`, Prometheus text by `promtool check metrics`,
//! JSON Lines line by line, Nagios by its exit codes; the text result lines by the
//! original tool's pattern. First through `werify checks run` (no node), then through
//! operations on a real two-node mesh (`ctl operation --wait`, `ctl get`), where JSON
//! Lines must stream each host's answer as it comes.
//!
//! The consumers are installed by `.ci/run`; under `CI=true` a missing one fails the
//! test, elsewhere the test says so and skips that consumer.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use regex::Regex;
use serde_json::Value;

/// The original tool's result line.
const SEED_LINE: &str = r"^Host:(\S+) Operation:(\S+) (Success:(true|false)|Error:.*)$";

/// The loopback ports of the mesh tests (each test's nodes are 127.0.0.1 and 127.0.0.2
/// on its own port, so the tests can run at once).
const FORMATS_PORT: u16 = 32301;
const STREAM_PORT: u16 = 32302;

const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Whether `program` can be run; under CI it must be.
fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing; .ci/run installs it"
        );
        eprintln!("skipping the {program} part: {program} is not installed");
    }
    found
}

/// An operations file with a passing, a failing and an erroring check (and a second
/// passing one), over files in `dir`.
fn mixed_checks(dir: &TempDir) -> String {
    let hosts = write(dir, "hosts", "127.0.0.1 localhost\n10.0.0.1 db:4488\n");
    set_mode(&hosts, 0o644);
    let missing = dir.path().join("missing").display().to_string();
    write(
        dir,
        "mixed.json",
        &format!(
            r#"{{
  "exists":  {{"type": "file_exists", "path": "{hosts}"}},
  "db_port": {{"type": "file_contains", "path": "{hosts}", "check": "4488"}},
  "mode":    {{"type": "file_mode", "path": "{hosts}", "mode": "0600"}},
  "digest":  {{"type": "file_hash", "path": "{missing}", "sha256": "{EMPTY_SHA}"}}
}}"#
        ),
    )
}

fn write(dir: &TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).expect("write a test file");
    p.display().to_string()
}

fn set_mode(path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn checks_run(file: &str, args: &[&str]) -> Output {
    werify_in(None, &["checks", "run", file])
        .args(args)
        .output()
        .expect("run werify checks run")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// JUnit XML as junitparser reads it: per suite its name and counts, per case its name,
/// classname, result kind and the failure's or error's message and text.
fn junitparser(xml: &str, dir: &TempDir) -> Option<Value> {
    if !have("python3") {
        return None;
    }
    let probe = Command::new("python3")
        .args(["-c", "import junitparser"])
        .output()
        .expect("run python3");
    if !probe.status.success() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 cannot import junitparser; .ci/run installs it"
        );
        eprintln!("skipping the junitparser part: it is not installed");
        return None;
    }
    let file = write(dir, "results.xml", xml);
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        kind, message, text = "passed", None, None
        for r in case.result:
            kind = {Failure: "failure", Error: "error", Skipped: "skipped"}.get(type(r), type(r).__name__)
            message, text = r.message, r.text
        cases.append({"name": case.name, "classname": case.classname, "result": kind,
                      "message": message, "text": text, "system_out": case.system_out})
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                   "errors": suite.errors, "cases": cases})
print(json.dumps(suites))
"#;
    let o = Command::new("python3")
        .args(["-c", script, &file])
        .output()
        .expect("run junitparser");
    assert!(
        o.status.success(),
        "junitparser failed: {}\n{xml}",
        stderr(&o)
    );
    Some(serde_json::from_slice(&o.stdout).expect("junitparser printed JSON"))
}

/// `prove --exec cat FILE` on a TAP stream: its exit status and output.
fn prove(tap: &str, dir: &TempDir, name: &str) -> Option<Output> {
    if !have("prove") {
        return None;
    }
    let file = write(dir, name, tap);
    Some(
        Command::new("prove")
            .args(["--exec", "cat", &file])
            .output()
            .expect("run prove"),
    )
}

/// `promtool check metrics` on Prometheus text: its exit status and output.
fn promtool(text: &str) -> Option<Output> {
    if !have("promtool") {
        return None;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("feed promtool");
    }
    Some(child.wait_with_output().expect("promtool output"))
}

/// The JUnit case `name` of suite `suite`.
fn case<'a>(suites: &'a Value, suite: usize, name: &str) -> &'a Value {
    suites[suite]["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no case {name} in {suites}"))
}

/// Checks the JUnit document of the mixed checks on `hosts` (one suite each).
fn check_junit(xml: &str, hosts: &[&str], dir: &TempDir) {
    let Some(suites) = junitparser(xml, dir) else {
        return;
    };
    let names: Vec<&str> = suites
        .as_array()
        .expect("suites")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, hosts, "{xml}");
    for (i, host) in hosts.iter().enumerate() {
        let s = &suites[i];
        assert_eq!(s["tests"], 4, "{s}");
        assert_eq!(s["failures"], 1, "{s}");
        assert_eq!(s["errors"], 1, "{s}");
        assert_eq!(case(&suites, i, "exists")["result"], "passed");
        assert_eq!(case(&suites, i, "exists")["classname"], *host);
        assert_eq!(case(&suites, i, "db_port")["result"], "passed");
        let mode = case(&suites, i, "mode");
        assert_eq!(mode["result"], "failure", "{mode}");
        let message = mode["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("found mode=0644") && message.contains("expected mode=0600"),
            "{message}"
        );
        assert!(
            mode["text"]
                .as_str()
                .unwrap_or_default()
                .contains("expected: mode=0600")
        );
        let digest = case(&suites, i, "digest");
        assert_eq!(digest["result"], "error", "{digest}");
        let message = digest["message"].as_str().unwrap_or_default();
        assert!(message.contains("No such file"), "{message}");
        assert!(
            message.contains(&format!("expected sha256={EMPTY_SHA}")),
            "{message}"
        );
    }
}

/// Checks the TAP stream of the mixed checks: 4 points per host, the mode and digest
/// points not ok.
fn check_tap(tap: &str, hosts: usize, dir: &TempDir) {
    assert!(tap.starts_with("TAP version 13\n"), "{tap}");
    assert!(tap.contains("  found:\n    \"mode\": \"0644\"\n"), "{tap}");
    assert!(
        tap.contains("  expected:\n    \"mode\": \"0600\"\n"),
        "{tap}"
    );
    let Some(o) = prove(tap, dir, "mixed.tap") else {
        return;
    };
    let text = stdout(&o);
    // prove fails the stream for its not-ok points (mode and digest on every host).
    assert!(!o.status.success(), "{text}");
    let wanted = format!("Failed {}/{} subtests", hosts * 2, hosts * 4);
    assert!(text.contains(&wanted), "{wanted} not in\n{text}");
    assert!(!text.contains("Parse errors"), "{text}");
}

fn check_prometheus(text: &str, hosts: &[&str]) {
    for host in hosts {
        for (check, value) in [
            ("exists", "1"),
            ("db_port", "1"),
            ("mode", "0"),
            ("digest", "-1"),
        ] {
            let line =
                format!("werify_check_result{{host=\"{host}\",check=\"{check}\"}} {value}\n");
            assert!(text.contains(&line), "{line} not in\n{text}");
        }
    }
    if let Some(o) = promtool(text) {
        assert!(
            o.status.success(),
            "promtool: {}{}\n{text}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn checks_run_in_every_format() {
    let dir = TempDir::new("formats-local");
    let file = mixed_checks(&dir);
    let seed = Regex::new(SEED_LINE).expect("regex");

    // Text: every result line is the original tool's; -v adds indented detail lines
    // that the pattern does not take for results.
    let plain = checks_run(&file, &[]);
    assert_eq!(code(&plain), 1, "{}", stderr(&plain));
    let text = stdout(&plain);
    let results: Vec<&str> = text.lines().filter(|l| l.starts_with("Host:")).collect();
    assert_eq!(results.len(), 4, "{text}");
    assert!(results.iter().all(|l| seed.is_match(l)), "{text}");
    let host = seed
        .captures(results[0])
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .expect("a host");
    assert!(
        text.contains(&format!("Host:{host} Operation:mode Success:false")),
        "{text}"
    );
    let verbose = stdout(&checks_run(&file, &["-v"]));
    let detail: Vec<&str> = verbose.lines().filter(|l| l.starts_with("    ")).collect();
    assert!(
        detail.contains(&"    found: mode=0644 owner=root group=root")
            || detail
                .iter()
                .any(|l| l.starts_with("    found: mode=0644 ")),
        "{verbose}"
    );
    assert!(detail.contains(&"    expected: mode=0600"), "{verbose}");
    assert!(detail.iter().all(|l| !seed.is_match(l)), "{verbose}");
    let verbose_results: Vec<&str> = verbose.lines().filter(|l| seed.is_match(l)).collect();
    assert_eq!(verbose_results, results);

    // JSON always carries found and expected.
    let json: Value =
        serde_json::from_slice(&checks_run(&file, &["--output", "json"]).stdout).expect("JSON");
    let mode = &json["hosts"][0]["checks"]["mode"];
    assert_eq!(mode["success"], false);
    assert_eq!(mode["found"]["mode"], "0644");
    assert_eq!(mode["expected"]["mode"], "0600");
    assert_eq!(json["hosts"][0]["checks"]["db_port"]["found"]["line"], "2");
    assert!(
        json["hosts"][0]["checks"]["db_port"]
            .get("expected")
            .is_none()
    );
    assert_eq!(json["summary"]["checks_errored"], 1);

    // JSON Lines: one object for this host.
    let jsonl = stdout(&checks_run(&file, &["--output", "jsonl"]));
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{jsonl}");
    assert_eq!(lines[0]["host"], host.as_str());
    assert_eq!(lines[0]["checks"]["mode"]["expected"]["mode"], "0600");

    let junit = checks_run(&file, &["--output", "junit"]);
    assert_eq!(code(&junit), 1);
    check_junit(&stdout(&junit), &[&host], &dir);

    let tap = checks_run(&file, &["--output", "tap"]);
    assert_eq!(code(&tap), 1);
    check_tap(&stdout(&tap), 1, &dir);

    let prom = checks_run(&file, &["--output", "prometheus"]);
    assert_eq!(code(&prom), 1);
    check_prometheus(&stdout(&prom), &[&host]);
}

#[test]
fn checks_run_passing_streams_satisfy_their_consumers() {
    let dir = TempDir::new("formats-pass");
    let hosts = write(&dir, "hosts", "10.0.0.1 db:4488\n");
    let file = write(
        &dir,
        "pass.json",
        &format!(
            r#"{{"a": {{"type": "file_exists", "path": "{hosts}"}},
                "b": {{"type": "command", "command": "echo", "args": ["hi"]}}}}"#
        ),
    );
    let tap = checks_run(&file, &["--output", "tap"]);
    assert_eq!(code(&tap), 0, "{}", stderr(&tap));
    if let Some(o) = prove(&stdout(&tap), &dir, "pass.tap") {
        assert!(o.status.success(), "{}", stdout(&o));
        assert!(
            stdout(&o).contains("All tests successful"),
            "{}",
            stdout(&o)
        );
    }
    let junit = stdout(&checks_run(&file, &["--output", "junit"]));
    if let Some(suites) = junitparser(&junit, &dir) {
        assert_eq!(suites[0]["tests"], 2);
        assert_eq!(case(&suites, 0, "b")["result"], "passed");
        // A passing check's found values are its output.
        let out = case(&suites, 0, "b")["system_out"]
            .as_str()
            .unwrap_or_default();
        assert!(
            out.contains("exit_status=0") && out.contains("stdout=hi"),
            "{out}"
        );
    }
}

#[test]
fn nagios_exit_codes() {
    let dir = TempDir::new("formats-nagios");
    let hosts = write(&dir, "hosts", "x\n");
    let missing = dir.path().join("missing").display().to_string();
    let file = |name: &str, checks: &str| write(&dir, name, checks);
    let ok = file(
        "ok.json",
        &format!(r#"{{"a": {{"type": "file_exists", "path": "{hosts}"}}}}"#),
    );
    let critical = mixed_checks(&dir);
    let warning = file(
        "warning.json",
        &format!(
            r#"{{"a": {{"type": "file_exists", "path": "{hosts}"}},
                "b": {{"type": "file_contains", "path": "{missing}", "check": "x"}}}}"#
        ),
    );
    let bad = file("bad.json", r#"{"a": {"type": "file_exist", "path": "/"}}"#);
    for (path, status, word) in [
        (&ok, 0, "WERIFY OK - "),
        (&warning, 1, "WERIFY WARNING - "),
        (&critical, 2, "WERIFY CRITICAL - "),
        (&bad, 3, "WERIFY UNKNOWN - "),
    ] {
        let o = checks_run(path, &["--output", "nagios"]);
        let text = stdout(&o);
        assert_eq!(code(&o), status, "{path}: {text}{}", stderr(&o));
        assert!(text.starts_with(word), "{path}: {text}");
        let first = text.lines().next().unwrap_or_default();
        if status < 3 {
            // One status line, then performance data after a single `|`.
            let (_, perf) = first.split_once(" | ").expect("performance data");
            assert!(perf.starts_with("passed="), "{first}");
            assert_eq!(first.matches('|').count(), 1, "{first}");
        }
    }
    // A usage error is UNKNOWN too, on stdout.
    let o = werify_in(None, &["checks", "run", "--output", "nagios"])
        .output()
        .expect("run werify");
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).starts_with("WERIFY UNKNOWN - "),
        "{}",
        stdout(&o)
    );
    // Critical names what failed, with what was found and expected.
    let text = stdout(&checks_run(&critical, &["--output", "nagios"]));
    assert!(text.contains(" mode failed: found mode=0644 "), "{text}");
}

/// Two nodes on loopback at `port`; node 2 allows command checks.
fn mesh(dir: &TempDir, port: u16) -> (Node, Node) {
    let a = Node::start(dir.path(), 1, port, &[]);
    let seed = a.addr();
    let b = Node::start(dir.path(), 2, port, &["--join", &seed, "--allow-command"]);
    let all = [a.addr(), b.addr()];
    assert!(
        wait_until(Duration::from_secs(30), || all_agree(&[&a, &b], &all, &[])).is_some(),
        "mesh did not converge\n{}",
        dump_logs(&[&a, &b])
    );
    (a, b)
}

#[test]
fn operations_on_a_mesh_in_every_format() {
    let dir = TempDir::new("formats-mesh");
    let (a, b) = mesh(&dir, FORMATS_PORT);
    let file = mixed_checks(&dir);
    let hosts = [a.addr(), b.addr()];
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();

    let junit = a.ctl(&["operation", &file, "--wait", "--output", "junit"]);
    assert_eq!(code(&junit), 1, "{}", stderr(&junit));
    check_junit(&stdout(&junit), &hosts, &dir);

    let tap = a.ctl(&["operation", &file, "--wait", "--output", "tap"]);
    assert_eq!(code(&tap), 1, "{}", stderr(&tap));
    check_tap(&stdout(&tap), 2, &dir);

    let prom = a.ctl(&["operation", &file, "--wait", "--output", "prometheus"]);
    check_prometheus(&stdout(&prom), &hosts);

    let nagios = a.ctl(&["operation", &file, "--wait", "--output", "nagios"]);
    assert_eq!(code(&nagios), 2, "{}", stdout(&nagios));
    assert!(
        stdout(&nagios).starts_with("WERIFY CRITICAL - 2 of 8 checks failed on 2 of 2 hosts"),
        "{}",
        stdout(&nagios)
    );

    // Text with -v from a submitted operation's `get`; the same results in the other
    // formats from `get` through the other node.
    let submitted = a.ctl(&["operation", &file, "--output", "json"]);
    let handle = serde_json::from_slice::<Value>(&submitted.stdout).expect("JSON")["handle"]
        .as_str()
        .expect("a handle")
        .to_string();
    let get = a.ctl(&["get", &handle, "--wait", "-v"]);
    let text = stdout(&get);
    assert!(
        text.contains(&format!(
            "Host:{} Operation:mode Success:false\n    found: mode=0644 ",
            hosts[0]
        )),
        "{text}"
    );
    assert!(text.contains("    expected: mode=0600\n"), "{text}");
    let seed = Regex::new(SEED_LINE).expect("regex");
    assert_eq!(
        text.lines().filter(|l| seed.is_match(l)).count(),
        8,
        "{text}"
    );
    let junit = b.ctl(&["get", &handle, "--output", "junit"]);
    check_junit(&stdout(&junit), &hosts, &dir);
    let prom = b.ctl(&["get", &handle, "--output", "prometheus"]);
    check_prometheus(&stdout(&prom), &hosts);
    assert!(stdout(&prom).contains("werify_check_results_timestamp_seconds "));

    // Formats for results only are refused, before anything runs, for other commands.
    let list = a.ctl(&["list", "--output", "junit"]);
    assert_eq!(code(&list), 2);
    assert!(
        stderr(&list).contains("--output junit shows check results"),
        "{}",
        stderr(&list)
    );
    let list = a.ctl(&["list", "--output", "nagios"]);
    assert_eq!(code(&list), 3);
    assert!(
        stdout(&list).starts_with("WERIFY UNKNOWN - "),
        "{}",
        stdout(&list)
    );
}

#[test]
fn jsonl_streams_each_host_as_it_answers() {
    let dir = TempDir::new("formats-stream");
    let (a, b) = mesh(&dir, STREAM_PORT);
    // Node 1 refuses command checks (an immediate error); node 2 runs this one, which
    // holds until the test creates the flag, which it does only once node 1's line has
    // been read: node 2's check passes only if node 1's answer was printed before the
    // operation ended.
    let flag = dir.path().join("flag").display().to_string();
    let file = write(
        &dir,
        "slow.json",
        &format!(
            r#"{{"wait": {{"type": "command", "command": "sh", "args": ["-c", "while [ ! -e {flag} ]; do sleep 0.05; done"], "timeout": "60s"}}}}"#
        ),
    );
    let mut child = werify_in(None, &["ctl", "--connect", &a.addr(), "operation", &file])
        .args(["--wait", "--deadline", "60s", "--output", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run werify ctl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a first line while node 2 still waits");
    let first: Value = serde_json::from_str(&first).expect("JSON line");
    assert_eq!(first["host"], a.addr().as_str(), "{first}");
    assert!(
        first["checks"]["wait"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("--allow-command")),
        "{first}"
    );
    assert!(first["handle"].is_string(), "{first}");
    std::fs::write(&flag, b"").expect("create the flag");
    let second = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("node 2's line once the flag exists");
    let second: Value = serde_json::from_str(&second).expect("JSON line");
    assert_eq!(second["host"], b.addr().as_str(), "{second}");
    assert_eq!(second["checks"]["wait"]["success"], true, "{second}");
    assert_eq!(
        second["checks"]["wait"]["found"]["exit_status"], "0",
        "{second}"
    );
    let status = child.wait().expect("ctl exits");
    reader.join().expect("reader");
    assert!(rx.try_recv().is_err(), "one line per host");
    // Node 1's check errored, so not everything passed.
    assert_eq!(status.code(), Some(1));
}
