//! The node's HTTP endpoint (`--http`), with real `werify node` processes on 127.0.0.x:
//! `/healthz` following a periodic check and the mesh, `/metrics` read by `promtool`
//! and checked for plausible values, `/v1/status` against `mesh status --output json`,
//! 404/405, and the bounds a hostile local client meets. Requests are written by hand on
//! a TCP socket, so that the tests can also send what no HTTP client would.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CONVERGE: Duration = Duration::from_secs(30);
/// The node's cap on HTTP connections (`werify::node::http::MAX_HTTP_CONNECTIONS`).
const MAX_HTTP_CONNECTIONS: usize = werify::node::http::MAX_HTTP_CONNECTIONS;

/// Status code and body of one raw HTTP exchange; `None` if the connection failed or
/// closed without a status line.
fn raw(addr: &str, request: &[u8]) -> Option<(u16, String)> {
    let addr: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// `promtool check metrics` on `text`. Without promtool the check is skipped (loudly),
/// except under CI=true, where .ci/run installs it and its absence is a failure.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is needed under CI=true (apt-get install prometheus): {e}"
            );
            eprintln!(
                "SKIPPED: promtool check metrics: cannot run promtool ({e}); apt-get install prometheus"
            );
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn healthz_follows_a_periodic_check_and_metrics_and_status_describe_the_mesh() {
    let dir = TempDir::new("http");
    let port = 31451;
    let flag = dir.path().join("flag");
    std::fs::write(&flag, b"").expect("flag file");
    let checks = dir.path().join("checks.json");
    std::fs::write(
        &checks,
        format!(
            r#"{{"flag_present": {{"type": "file_exists", "path": "{}"}}}}"#,
            flag.display()
        ),
    )
    .expect("checks file");
    let http = |i: u8| format!("127.0.0.{i}:{port}");
    let seed = format!("127.0.0.1:{port}");
    let (h1, h2, h3) = (http(1), http(2), http(3));
    let checks_arg = checks.display().to_string();
    let nodes = [
        Node::start(
            dir.path(),
            1,
            port,
            &[
                "--http",
                &h1,
                "--checks",
                &checks_arg,
                "--check-interval",
                "200ms",
            ],
        ),
        Node::start(dir.path(), 2, port, &["--http", &h2, "--join", &seed]),
        Node::start(dir.path(), 3, port, &["--http", &h3, "--join", &seed]),
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    let logs = || dump_logs(&refs);
    let alive = |addr: &str| {
        get(addr, "/metrics")
            .and_then(|(_, m)| sample(&m, r#"werify_members{state="alive"}"#))
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(CONVERGE, || [&h1, &h2, &h3].iter().all(|h| alive(h) == 3.0)).is_some(),
        "the mesh of 3 did not show in /metrics\n{}",
        logs()
    );
    for h in [&h1, &h2, &h3] {
        assert!(
            wait_until(CONVERGE, || get(h, "/healthz")
                == Some((200, "ok\n".into())))
            .is_some(),
            "{h}/healthz: {:?}\n{}",
            get(h, "/healthz"),
            logs()
        );
    }

    // /metrics: valid exposition, the expected series, plausible values (once a few
    // probes went out: the mesh can converge before the first probe is due).
    let acked = |m: &str| sample(m, "werify_probe_rtt_seconds_count").unwrap_or(0.0);
    assert!(
        wait_until(CONVERGE, || get(&h1, "/metrics")
            .is_some_and(|(_, m)| acked(&m) >= 3.0))
        .is_some(),
        "no probe was acked\n{}",
        logs()
    );
    let (code, metrics) = get(&h1, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200);
    promtool_check(&metrics);
    let at_least = |series: &str, min: f64| {
        let v = sample(&metrics, series);
        assert!(
            v.is_some_and(|v| v >= min),
            "{series} = {v:?}, want >= {min}\n{metrics}"
        );
    };
    let exactly = |series: &str, want: f64| {
        assert_eq!(sample(&metrics, series), Some(want), "{series}\n{metrics}");
    };
    exactly(r#"werify_members{state="alive"}"#, 3.0);
    exactly(r#"werify_members{state="dead"}"#, 0.0);
    exactly(
        &format!(
            r#"werify_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        1.0,
    );
    exactly(r#"werify_periodic_checks{state="passing"}"#, 1.0);
    exactly(r#"werify_periodic_checks{state="failing"}"#, 0.0);
    at_least("werify_local_health_score", 0.0);
    at_least("werify_quic_open_connections", 2.0);
    at_least("werify_probes_sent_total", 1.0);
    at_least("werify_probes_failed_total", 0.0);
    at_least("werify_probe_rtt_seconds_count", 1.0);
    at_least("werify_gossip_sent_bytes_total", 100.0);
    at_least("werify_gossip_received_bytes_total", 100.0);
    at_least("werify_push_pull_received_bytes_total", 10.0);
    at_least("werify_push_pull_sent_bytes_total", 10.0);
    at_least("werify_suspicions_raised_total", 0.0);
    at_least(
        r#"werify_quic_handshake_failures_total{side="accept",reason="tls"}"#,
        0.0,
    );
    at_least(
        r#"werify_operations_coordinated_total{outcome="passed"}"#,
        0.0,
    );
    at_least(
        r#"werify_check_executions_total{source="periodic",type="file_exists",outcome="pass"}"#,
        1.0,
    );
    at_least(
        r#"werify_check_run_duration_seconds_count{source="periodic"}"#,
        1.0,
    );
    let rtt_sum = sample(&metrics, "werify_probe_rtt_seconds_sum").unwrap_or(f64::NAN);
    let rtt_count = sample(&metrics, "werify_probe_rtt_seconds_count").unwrap_or(0.0);
    assert!(
        rtt_sum / rtt_count > 0.0 && rtt_sum / rtt_count < 1.0,
        "mean loopback RTT {rtt_sum}/{rtt_count}"
    );

    // /v1/status: the document `mesh status --output json` prints.
    let (code, body) = get(&h1, "/v1/status").expect("/v1/status answers");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("/v1/status is JSON");
    let mut addrs: Vec<&str> = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["addr"].as_str())
        .collect();
    addrs.sort();
    assert_eq!(addrs, [h1.as_str(), h2.as_str(), h3.as_str()], "{status:#}");
    assert_eq!(status["counts"]["alive"], 3);
    let cli = status_json(&nodes[0].addr()).expect("mesh status --output json");
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&status), keys(&cli));
    assert_eq!(keys(&status["members"][0]), keys(&cli["members"][0]));
    assert_eq!(status["node_id"], cli["node_id"]);

    // The periodic check fails: 503 with its name; back to 200 when it passes again.
    std::fs::remove_file(&flag).expect("remove the flag");
    let mut last = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = get(&h1, "/healthz");
            last.as_ref().is_some_and(|(c, b)| {
                *c == 503 && b.contains("flag_present") && b.lines().count() == 1
            })
        })
        .is_some(),
        "/healthz with a failing check: {last:?}"
    );
    let (_, metrics) = get(&h1, "/metrics").expect("/metrics answers");
    assert_eq!(
        sample(&metrics, r#"werify_periodic_checks{state="failing"}"#),
        Some(1.0)
    );
    assert_eq!(get(&h2, "/healthz"), Some((200, "ok\n".into())));
    std::fs::write(&flag, b"").expect("flag file again");
    assert!(
        wait_until(Duration::from_secs(10), || get(&h1, "/healthz")
            == Some((200, "ok\n".into())))
        .is_some(),
        "/healthz after the check passes again: {:?}",
        get(&h1, "/healthz")
    );

    // Unknown paths and other methods.
    assert_eq!(get(&h1, "/nope").map(|r| r.0), Some(404));
    assert_eq!(get(&h1, "/healthz/x").map(|r| r.0), Some(404));
    let post = raw(
        &h1,
        format!("POST /metrics HTTP/1.1\r\nHost: {h1}\r\nContent-Length: 2\r\n\r\nhi").as_bytes(),
    );
    assert_eq!(post.map(|r| r.0), Some(405));
}

#[test]
fn healthz_says_alone_when_told_to_join_and_http_is_off_by_default() {
    let dir = TempDir::new("http-alone");
    let port = 31452;
    let h1 = format!("127.0.0.1:{port}");
    // Nothing runs at the contact.
    let nodes = [
        Node::start(
            dir.path(),
            1,
            port,
            &["--http", &h1, "--join", &format!("127.0.0.9:{port}")],
        ),
        Node::start(dir.path(), 2, port, &[]),
    ];
    let mut last = None;
    assert!(
        wait_until(CONVERGE, || {
            last = get(&h1, "/healthz");
            last.as_ref()
                .is_some_and(|(c, b)| *c == 503 && b.starts_with("alone in the mesh"))
        })
        .is_some(),
        "/healthz of a node alone: {last:?}\n{}",
        dump_logs(&nodes.iter().collect::<Vec<_>>())
    );
    // Node 2 answers requests but serves no HTTP.
    assert!(wait_until(CONVERGE, || list(&nodes[1].addr()).is_some()).is_some());
    let addr: SocketAddr = format!("127.0.0.2:{port}").parse().expect("addr");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_hostile_local_client_is_bounded() {
    let dir = TempDir::new("http-hostile");
    let port = 31453;
    let h1 = format!("127.0.0.1:{port}");
    let node = Node::start(dir.path(), 1, port, &["--http", &h1]);
    assert!(
        wait_until(CONVERGE, || get(&h1, "/healthz").is_some()).is_some(),
        "{}",
        node.log_text()
    );
    // A request head larger than the limit is refused, not buffered.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = raw(&h1, huge.as_bytes());
    assert!(
        answer.as_ref().is_none_or(|(c, _)| *c == 431 || *c == 400),
        "{answer:?}"
    );

    // Connections that never send a request fill the cap; one more is closed at once.
    let addr: SocketAddr = h1.parse().expect("addr");
    let idle: Vec<TcpStream> = (0..MAX_HTTP_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(addr).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a connection past the cap was served");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The mesh side is not affected meanwhile.
    assert!(list(&node.addr()).is_some(), "ctl list while HTTP is full");
    // The idle ones are closed after the header read timeout; HTTP works again.
    let freed = wait_until(Duration::from_secs(15), || {
        get(&h1, "/healthz").is_some_and(|(c, _)| c == 200)
    });
    assert!(freed.is_some(), "HTTP did not recover\n{}", node.log_text());
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        assert_eq!(
            s.read(&mut buf).unwrap_or(0),
            0,
            "an idle connection is still open"
        );
    }
}

/// Status code, headers and body of a GET with extra header lines.
fn get_with(addr: &str, path: &str, headers: &str) -> Option<(u16, String)> {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

#[test]
fn off_loopback_every_path_but_healthz_needs_the_bearer_token() {
    let dir = TempDir::new("http-token");
    let port = 32620;
    let token = "dG9rZW4tZm9yLXRoZS1odHRwLXRlc3Q=";
    let token_file = dir.path().join("http-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    // Listening on every address; the requests below go to 127.0.0.1 only.
    let listen = format!("0.0.0.0:{}", port + 1);
    let h = format!("127.0.0.1:{}", port + 1);
    let token_arg = token_file.display().to_string();
    let node = Node::start(
        dir.path(),
        1,
        port,
        &["--http", &listen, "--http-token-file", &token_arg],
    );
    assert!(
        wait_until(CONVERGE, || get(&h, "/healthz")
            == Some((200, "ok\n".into())))
        .is_some(),
        "/healthz without a token: {:?}\n{}",
        get(&h, "/healthz"),
        node.log_text()
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    for path in [
        "/",
        "/page.js",
        "/metrics",
        "/v1/status",
        "/v1/operations",
        "/nope",
    ] {
        let (code, body) = get(&h, path).expect("an answer");
        assert_eq!(code, 401, "{path} without a token: {body}");
        assert!(body.contains("Authorization: Bearer"), "{body}");
        let wrong = get_with(&h, path, "Authorization: Bearer not-the-token-at-all\r\n");
        assert_eq!(wrong.map(|r| r.0), Some(401), "{path} with a wrong token");
        let (code, _) = get_with(&h, path, &bearer).expect("an answer");
        assert_eq!(
            code,
            if path == "/nope" { 404 } else { 200 },
            "{path} with the token"
        );
    }
    // The challenge says which scheme.
    let mut s = TcpStream::connect(&h).expect("connect");
    s.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes())
        .expect("write");
    let mut head = String::new();
    s.read_to_string(&mut head).expect("read");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"werify\""),
        "{head}"
    );
    // With the token, any Host name is fine.
    let named = raw(
        &h,
        format!("GET /v1/status HTTP/1.1\r\nHost: mesh.example\r\n{bearer}\r\n").as_bytes(),
    );
    assert_eq!(named.map(|r| r.0), Some(200));
}

#[test]
fn off_loopback_without_a_token_file_the_node_refuses_to_start() {
    let dir = TempDir::new("http-no-token");
    let o = werify_in(
        None,
        &[
            "node",
            "--bind",
            "127.0.0.1",
            "--port",
            "32622",
            "--data-dir",
            &dir.path().join("node").display().to_string(),
            "--http",
            "0.0.0.0:32623",
        ],
    )
    .output()
    .expect("run werify node");
    assert!(!o.status.success(), "it started: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("0.0.0.0:32623 is not a loopback address")
            && err.contains("--http-token-file FILE"),
        "{err}"
    );
    // It stopped before binding anything.
    assert!(TcpStream::connect("127.0.0.1:32623").is_err());

    // A token too short is refused with what to do.
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").expect("token file");
    let o = werify_in(
        None,
        &[
            "node",
            "--bind",
            "127.0.0.1",
            "--port",
            "32622",
            "--data-dir",
            &dir.path().join("node").display().to_string(),
            "--http",
            "0.0.0.0:32623",
            "--http-token-file",
            &short.display().to_string(),
        ],
    )
    .output()
    .expect("run werify node");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("use at least 16"), "{}", stderr(&o));
}

#[test]
fn the_operation_endpoints_answer_what_ctl_get_prints() {
    let dir = TempDir::new("http-operations");
    let port = 32630;
    let h1 = format!("127.0.0.1:{}", port + 1);
    let h2 = format!("127.0.0.2:{}", port + 1);
    let seed = format!("127.0.0.1:{port}");
    let nodes = [
        Node::start(dir.path(), 1, port, &["--http", &h1, "--allow-command"]),
        Node::start(dir.path(), 2, port, &["--http", &h2, "--join", &seed]),
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    assert!(
        wait_until(CONVERGE, || {
            get(&h1, "/v1/status").is_some_and(|(_, b)| b.contains("\"alive\": 2"))
        })
        .is_some(),
        "{}",
        dump_logs(&refs)
    );
    let (code, body) = get(&h1, "/v1/operations").expect("an answer");
    assert_eq!((code, body.as_str()), (200, "{\n  \"operations\": []\n}\n"));

    let file = dir.path().join("op.json");
    std::fs::write(
        &file,
        r#"{"root": {"type": "file_exists", "path": "/"},
            "slow": {"type": "command", "command": "sleep", "args": ["2"]}}"#,
    )
    .expect("operations file");
    let o = ctl(
        &nodes[0].addr(),
        &["--output", "json", "operation", &file.display().to_string()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let handle = serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("JSON")["handle"]
        .as_str()
        .expect("handle")
        .to_string();
    let path = format!("/v1/operations/{handle}");
    // While node 1 sleeps, the document is partial: node 2 answered (its command check
    // errors), node 1 is still pending.
    let (code, body) = get(&h1, &path).expect("an answer");
    assert_eq!(code, 200, "{body}");
    let partial: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(partial["running"], true, "{partial:#}");
    assert_eq!(partial["hosts"][0]["status"], "pending", "{partial:#}");

    let cli = || {
        let o = ctl(
            &nodes[0].addr(),
            &["--output", "json", "get", &handle, "--wait"],
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("ctl get JSON")
    };
    let ended = cli();
    assert_eq!(ended["running"], false, "{ended:#}");
    let from_http = |addr: &str| {
        let (code, body) = get(addr, &path).expect("an answer");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")
    };
    assert_eq!(from_http(&h1), ended);
    // Node 2 fetches it from its coordinator, and lists it from then on.
    assert_eq!(from_http(&h2), ended);
    let listed = |addr: &str| {
        let (code, body) = get(addr, "/v1/operations?limit=5").expect("an answer");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["operations"].clone()
    };
    for (addr, here) in [(&h1, true), (&h2, false)] {
        let ops = listed(addr);
        assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops:#}");
        assert_eq!(ops[0]["handle"], handle.as_str());
        assert_eq!(ops[0]["coordinated_here"], here);
        assert_eq!(ops[0]["summary"], ended["summary"]);
        assert!(ops[0].get("hosts").is_none(), "{ops:#}");
    }

    // Bad input is a JSON error of the right kind.
    for (path, code, kind) in [
        ("/v1/operations/not-a-handle", 400, "invalid"),
        ("/v1/operations/abc1-zzzz", 404, "not_found"),
        ("/v1/operations?limit=0", 400, "invalid"),
        ("/v1/nope", 404, "not_found"),
    ] {
        let (got, body) = get(&h1, path).expect("an answer");
        let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
        assert_eq!(
            (got, doc["code"].as_str()),
            (code, Some(kind)),
            "{path}: {body}"
        );
        assert!(doc["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Requests naming another host are refused without a token (DNS rebinding).
    let foreign = raw(
        &h1,
        b"GET /v1/status HTTP/1.1\r\nHost: rebound.example:32631\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(foreign.map(|r| r.0), Some(403));
}
