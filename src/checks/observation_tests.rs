//! What every check type reports as found and expected, through the runner (which adds
//! `expected`, inverts for `"expect": false` and drops `expected` from a pass), for a
//! check that holds, one that does not, and one that cannot decide. Errors that only a
//! broken host produces (an unreadable `/proc/net` table, `/etc/passwd` missing) are
//! exercised in the type's own tests with a path that does not exist.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use super::testutil::TempDir;
use super::{CheckResult, Observation, Outcome, RunOptions, parse_operations, run_checks};

async fn run(json: &str) -> BTreeMap<String, CheckResult> {
    let set = parse_operations(json, "ops.json").expect("the test set parses");
    let opts = RunOptions {
        allow_command: true,
        ..RunOptions::default()
    };
    run_checks(&set, &opts).await
}

fn found<'a>(r: &'a BTreeMap<String, CheckResult>, name: &str, fact: &str) -> Option<&'a str> {
    r.get(name)?.observation.found.get(fact)
}

fn expected<'a>(r: &'a BTreeMap<String, CheckResult>, name: &str, fact: &str) -> Option<&'a str> {
    r.get(name)?.observation.expected.get(fact)
}

fn observation<'a>(r: &'a BTreeMap<String, CheckResult>, name: &str) -> &'a Observation {
    &r.get(name)
        .unwrap_or_else(|| panic!("no result for {name}"))
        .observation
}

fn outcome<'a>(r: &'a BTreeMap<String, CheckResult>, name: &str) -> &'a Outcome {
    &r.get(name)
        .unwrap_or_else(|| panic!("no result for {name}"))
        .outcome
}

fn is_error(r: &BTreeMap<String, CheckResult>, name: &str) -> bool {
    matches!(outcome(r, name), Outcome::Error(_))
}

/// A pass keeps what was found and no expectation.
fn assert_pass(r: &BTreeMap<String, CheckResult>, name: &str) {
    assert_eq!(outcome(r, name), &Outcome::Success(true), "{name}");
    let o = observation(r, name);
    assert!(!o.found.is_empty(), "{name}: nothing found");
    assert!(o.expected.is_empty() && !o.negated, "{name}: {o:?}");
}

#[tokio::test]
async fn file_checks_say_what_they_found() {
    let dir = TempDir::new();
    let hosts = dir.write("hosts", b"127.0.0.1 localhost\n10.0.0.1 db:4488\n");
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let missing = dir.join("missing");
    let abc = dir.write("abc", b"abc");
    let abc_sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let d = dir.path_str();
    let r = run(&format!(
        r#"{{
        "exists_true":    {{"type": "file_exists", "path": "{hosts}"}},
        "exists_false":   {{"type": "file_exists", "path": "{missing}"}},
        "exists_not":     {{"type": "file_exists", "path": "{hosts}", "expect": false}},
        "exists_error":   {{"type": "file_exists", "path": "{hosts}/x"}},
        "contains_true":  {{"type": "file_contains", "path": "{hosts}", "check": "4488"}},
        "contains_false": {{"type": "file_contains", "path": "{hosts}", "check": "9999"}},
        "contains_error": {{"type": "file_contains", "path": "{missing}", "check": "x"}},
        "matches_true":   {{"type": "file_matches", "path": "{hosts}", "pattern": "^127\\."}},
        "matches_false":  {{"type": "file_matches", "path": "{hosts}", "pattern": "^192\\."}},
        "matches_error":  {{"type": "file_matches", "path": "{d}", "pattern": "x"}},
        "hash_true":      {{"type": "file_hash", "path": "{abc}", "sha256": "{abc_sha}"}},
        "hash_false":     {{"type": "file_hash", "path": "{abc}", "sha256": "{empty_sha}"}},
        "hash_error":     {{"type": "file_hash", "path": "{missing}", "sha256": "{empty_sha}"}},
        "mode_true":      {{"type": "file_mode", "path": "{hosts}", "mode": "0640"}},
        "mode_false":     {{"type": "file_mode", "path": "{hosts}", "mode": "0600", "owner": "0"}},
        "mode_error":     {{"type": "file_mode", "path": "{hosts}", "mode": "0640", "owner": "werify-no-such-user"}}
    }}"#
    ))
    .await;

    assert_pass(&r, "exists_true");
    assert_eq!(found(&r, "exists_true", "type"), Some("regular file"));
    assert_eq!(outcome(&r, "exists_false"), &Outcome::Success(false));
    assert_eq!(found(&r, "exists_false", "exists"), Some("false"));
    assert_eq!(expected(&r, "exists_false", "exists"), Some("true"));
    // "expect": false: it exists, so it fails, wanting it not to.
    assert_eq!(outcome(&r, "exists_not"), &Outcome::Success(false));
    assert_eq!(found(&r, "exists_not", "exists"), Some("true"));
    assert_eq!(expected(&r, "exists_not", "exists"), Some("true"));
    assert!(observation(&r, "exists_not").negated);
    assert!(is_error(&r, "exists_error"));
    assert!(observation(&r, "exists_error").found.is_empty());
    assert_eq!(expected(&r, "exists_error", "exists"), Some("true"));

    assert_pass(&r, "contains_true");
    assert_eq!(found(&r, "contains_true", "line"), Some("2"));
    assert_eq!(outcome(&r, "contains_false"), &Outcome::Success(false));
    assert_eq!(found(&r, "contains_false", "line"), Some("none"));
    assert_eq!(found(&r, "contains_false", "lines"), Some("2"));
    assert_eq!(expected(&r, "contains_false", "contains"), Some("9999"));
    assert!(is_error(&r, "contains_error"));
    assert_eq!(expected(&r, "contains_error", "contains"), Some("x"));

    assert_pass(&r, "matches_true");
    assert_eq!(found(&r, "matches_true", "line"), Some("1"));
    assert_eq!(found(&r, "matches_false", "line"), Some("none"));
    assert_eq!(expected(&r, "matches_false", "pattern"), Some("^192\\."));
    assert!(is_error(&r, "matches_error"));
    assert_eq!(expected(&r, "matches_error", "pattern"), Some("x"));

    assert_pass(&r, "hash_true");
    assert_eq!(found(&r, "hash_true", "sha256"), Some(abc_sha));
    assert_eq!(outcome(&r, "hash_false"), &Outcome::Success(false));
    assert_eq!(found(&r, "hash_false", "sha256"), Some(abc_sha));
    assert_eq!(expected(&r, "hash_false", "sha256"), Some(empty_sha));
    assert!(is_error(&r, "hash_error"));
    assert_eq!(expected(&r, "hash_error", "sha256"), Some(empty_sha));

    assert_pass(&r, "mode_true");
    assert_eq!(found(&r, "mode_true", "mode"), Some("0640"));
    assert!(found(&r, "mode_true", "owner").is_some());
    assert!(found(&r, "mode_true", "group").is_some());
    assert_eq!(outcome(&r, "mode_false"), &Outcome::Success(false));
    assert_eq!(found(&r, "mode_false", "mode"), Some("0640"));
    assert_eq!(expected(&r, "mode_false", "mode"), Some("0600"));
    assert_eq!(expected(&r, "mode_false", "owner"), Some("0"));
    // The owner cannot be looked up: an error, but the mode was seen.
    assert!(is_error(&r, "mode_error"));
    assert_eq!(found(&r, "mode_error", "mode"), Some("0640"));
    assert_eq!(
        expected(&r, "mode_error", "owner"),
        Some("werify-no-such-user")
    );
}

#[tokio::test]
async fn host_checks_say_what_they_found() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let r = run(&format!(
        r#"{{
        "cmd_true":      {{"type": "command", "command": "echo", "args": ["hello werify"]}},
        "cmd_false":     {{"type": "command", "command": "sh", "args": ["-c", "echo out; exit 3"], "stdout_contains": "nope"}},
        "cmd_error":     {{"type": "command", "command": "sh", "args": ["-c", "kill -9 $$"]}},
        "cmd_timeout":   {{"type": "command", "command": "sleep", "args": ["30"], "timeout": "300ms"}},
        "disk_true":     {{"type": "disk_free", "path": "/", "min_percent": 0}},
        "disk_false":    {{"type": "disk_free", "path": "/", "min_percent": 100}},
        "disk_error":    {{"type": "disk_free", "path": "/proc", "min_percent": 1}},
        "kernel_true":   {{"type": "kernel_param", "name": "kernel.ostype", "value": "Linux"}},
        "kernel_false":  {{"type": "kernel_param", "name": "kernel.ostype", "value": "FreeBSD"}},
        "kernel_error":  {{"type": "kernel_param", "name": "kernel.werify_no_such", "value": "1"}},
        "port_true":     {{"type": "port_listening", "port": {port}, "address": "127.0.0.1"}},
        "port_false":    {{"type": "port_listening", "port": {port}, "address": "127.0.0.2"}},
        "proc_true":     {{"type": "process_running", "path": "{exe}"}},
        "proc_false":    {{"type": "process_running", "check": "werify-no-such-process"}},
        "user_true":     {{"type": "user_exists", "name": "root"}},
        "user_false":    {{"type": "user_exists", "name": "werify-no-such-user"}}
    }}"#,
        exe = std::env::current_exe().expect("exe").display()
    ))
    .await;

    assert_pass(&r, "cmd_true");
    assert_eq!(found(&r, "cmd_true", "exit_status"), Some("0"));
    assert_eq!(found(&r, "cmd_true", "stdout"), Some("hello werify"));
    assert_eq!(outcome(&r, "cmd_false"), &Outcome::Success(false));
    assert_eq!(found(&r, "cmd_false", "exit_status"), Some("3"));
    assert_eq!(found(&r, "cmd_false", "stdout"), Some("out"));
    assert_eq!(expected(&r, "cmd_false", "exit_status"), Some("0"));
    assert_eq!(expected(&r, "cmd_false", "stdout_contains"), Some("nope"));
    assert!(is_error(&r, "cmd_error"));
    assert_eq!(found(&r, "cmd_error", "signal"), Some("9"));
    assert_eq!(expected(&r, "cmd_error", "exit_status"), Some("0"));
    // A timeout is an error that still says what was expected.
    assert_eq!(
        outcome(&r, "cmd_timeout"),
        &Outcome::Error("timed out after 300ms".into())
    );
    assert_eq!(expected(&r, "cmd_timeout", "exit_status"), Some("0"));

    assert_pass(&r, "disk_true");
    let free: f64 = found(&r, "disk_true", "free_percent")
        .and_then(|p| p.parse().ok())
        .expect("a percentage");
    assert!((0.0..=100.0).contains(&free), "{free}");
    assert!(found(&r, "disk_true", "available_bytes").is_some());
    assert_eq!(outcome(&r, "disk_false"), &Outcome::Success(false));
    assert_eq!(expected(&r, "disk_false", "min_percent"), Some("100"));
    assert!(is_error(&r, "disk_error"));
    assert_eq!(expected(&r, "disk_error", "min_percent"), Some("1"));

    assert_pass(&r, "kernel_true");
    assert_eq!(found(&r, "kernel_true", "value"), Some("Linux"));
    assert_eq!(found(&r, "kernel_false", "value"), Some("Linux"));
    assert_eq!(expected(&r, "kernel_false", "value"), Some("FreeBSD"));
    assert!(is_error(&r, "kernel_error"));
    assert_eq!(expected(&r, "kernel_error", "value"), Some("1"));

    assert_pass(&r, "port_true");
    let listeners = found(&r, "port_true", "listeners").unwrap_or_default();
    assert!(
        listeners
            .split(',')
            .any(|l| l == format!("127.0.0.1:{port}")),
        "{listeners}"
    );
    assert_eq!(outcome(&r, "port_false"), &Outcome::Success(false));
    assert_eq!(
        expected(&r, "port_false", "listener"),
        Some(format!("tcp 127.0.0.2:{port}").as_str())
    );
    drop(listener);

    assert_pass(&r, "proc_true");
    let pids = found(&r, "proc_true", "pids").unwrap_or_default();
    assert!(
        pids.split(',').any(|p| p == std::process::id().to_string()),
        "{pids}"
    );
    assert_eq!(found(&r, "proc_false", "pids"), Some("none"));
    assert_eq!(
        expected(&r, "proc_false", "name"),
        Some("werify-no-such-process")
    );

    assert_pass(&r, "user_true");
    assert_eq!(found(&r, "user_true", "uid"), Some("0"));
    assert_eq!(found(&r, "user_false", "exists"), Some("false"));
    assert_eq!(expected(&r, "user_false", "exists"), Some("true"));
}

#[tokio::test]
async fn http_status_says_which_status_came_back() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        for response in [
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ] {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                line.clear();
            }
            let _ = reader.get_mut().write_all(response.as_bytes());
        }
    });
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    // One check at a time, so the canned answers go out in order.
    let true_case = run(&format!(
        r#"{{"http_true": {{"type": "http_status", "url": "{base}/", "status": 200}}}}"#
    ))
    .await;
    let false_case = run(&format!(
        r#"{{"http_false": {{"type": "http_status", "url": "{base}/", "status": 200}}}}"#
    ))
    .await;
    let error_case = run(&format!(
        r#"{{"http_error": {{"type": "http_status", "url": "http://{closed}/", "status": 200}}}}"#
    ))
    .await;
    server.join().expect("server thread");
    assert_pass(&true_case, "http_true");
    assert_eq!(found(&true_case, "http_true", "status"), Some("200"));
    assert_eq!(outcome(&false_case, "http_false"), &Outcome::Success(false));
    assert_eq!(found(&false_case, "http_false", "status"), Some("301"));
    assert_eq!(
        found(&false_case, "http_false", "location"),
        Some("/elsewhere")
    );
    assert_eq!(expected(&false_case, "http_false", "status"), Some("200"));
    assert!(is_error(&error_case, "http_error"));
    assert_eq!(expected(&error_case, "http_error", "status"), Some("200"));
}

#[tokio::test]
async fn service_active_says_the_state_or_why_it_cannot() {
    let r =
        run(r#"{"svc": {"type": "service_active", "name": "werify-no-such-unit.service"}}"#).await;
    assert_eq!(expected(&r, "svc", "state"), Some("active"));
    match outcome(&r, "svc") {
        // With systemd: the unit is not active, and its state was read.
        Outcome::Success(false) => {
            assert!(found(&r, "svc", "state").is_some_and(|s| s != "active"));
        }
        Outcome::Error(e) => assert!(e.starts_with("systemd is not available"), "{e}"),
        other => panic!("{other:?}"),
    }
}
