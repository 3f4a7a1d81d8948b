//! One test per row of the limits table in SECURITY.md: every bound werify puts on what
//! a peer, a client or a file can make it do, hit on purpose, with the exact error a user
//! sees. Library-level where the limit lives in a function; multi-process (real
//! `werify node` on 127.0.0.x, raw QUIC clients built from the library) where it lives in
//! the node. Each multi-process test has its own port (317xx).

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use werify::base::NodeId;
use werify::checks::run::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_RESULT_BYTES, RunOptions};
use werify::checks::spec::{
    MAX_ARGS, MAX_CHECK_TIMEOUT, MAX_FILE_BYTES, MAX_NAME_BYTES, MAX_VALUE_BYTES,
};
use werify::checks::{
    CheckSet, MAX_CHECKS, Outcome, load_operations_file, parse_operations, run_checks,
};
use werify::mesh::member::{
    HealthSummary, MAX_FAILING_NAME_BYTES, MAX_FAILING_NAMES, MAX_TAGS_BYTES, Peer, Tags, cap_tags,
};
use werify::mesh::message::{MAX_MESSAGE_BYTES, Message};
use werify::node::dispatch::{MAX_DATAGRAM_BYTES, MAX_INCOMING_CONNECTIONS};
use werify::ops::coordinator::{
    MAX_DEADLINE, MAX_PACED_WAIT, MAX_RUNNING_OPERATIONS, SUBMIT_BURST,
};
use werify::ops::handle::Handle;
use werify::ops::store::{OperationRecord, Store, StoreLimits};
use werify::rpc::frame::{self, FrameError, MAX_FRAME_BYTES};
use werify::rpc::identity::{CaSource, Env, Identity, Role, read_secret_file};
use werify::rpc::limits::{DEFAULT_MAX_KEYS, RateLimiter};
use werify::rpc::protocol::{ErrorCode, HostReport};
use werify::rpc::protocol::{PROTOCOL_VERSION, Request, Response, TargetFilter};
use werify::rpc::tls::SERVER_NAME;
use werify::rpc::transport::Transport;

/// Hang guard for one multi-process step (not a speed assertion).
const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("limits-{name}"))
}

fn write_file(dir: &TempDir, name: &str, body: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).expect("write scratch file");
    p.to_string_lossy().into_owned()
}

/// A derived, secret-less identity of env `dev` (what the test nodes run with).
fn identity(role: Role) -> Arc<Identity> {
    Arc::new(
        Identity::new(None, &CaSource::derived(None), role, NodeId::random(), &[])
            .expect("derived identity"),
    )
}

/// A hello-verified connection to a node, as a `ctl` client or as a mesh node.
async fn connect(addr: SocketAddr, role: Role) -> (Transport, quinn::Connection) {
    let t = Transport::client(identity(role), addr).expect("client endpoint");
    let (conn, _) = tokio::time::timeout(STEP, t.connection(addr))
        .await
        .expect("connect in time")
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    (t, conn)
}

/// Starts one node and waits until it answers `list`.
fn one_node(dir: &TempDir, port: u16, extra: &[&str]) -> Node {
    let node = Node::start(dir.path(), 1, port, extra);
    assert!(
        wait_until(STEP, || list(&node.addr()).is_some()).is_some(),
        "node did not come up\n{}",
        node.log_text()
    );
    node
}

fn addr_of(node: &Node) -> SocketAddr {
    node.addr().parse().expect("node address")
}

fn ops(text: &str) -> CheckSet {
    parse_operations(text, "ops.json").unwrap_or_else(|e| panic!("{e}"))
}

fn submit(checks: &CheckSet, deadline: Duration) -> Request {
    Request::Submit {
        checks: checks.clone(),
        filter: TargetFilter::default(),
        deadline_ms: deadline.as_millis() as u64,
    }
}

fn error_text(r: Response) -> String {
    match r {
        Response::Error { message, .. } => message,
        other => panic!("expected an error response, got {other:?}"),
    }
}

fn parse_err(text: &str) -> String {
    parse_operations(text, "ops.json")
        .expect_err("the file breaks a limit")
        .to_string()
}

/// `n` file_exists checks named c0, c1, … as an operations file.
fn many_checks(n: usize) -> String {
    let body: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| {
            (
                format!("c{i}"),
                json!({"type": "file_exists", "path": "/etc/hostname"}),
            )
        })
        .collect();
    serde_json::Value::Object(body).to_string()
}

// ---------------------------------------------------------------------------------------
// Wire limits.
// ---------------------------------------------------------------------------------------

/// Row "frame size": a client cannot send a frame over 16 MiB; a node refuses an announced
/// length over the cap before reading (or allocating for) the body, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_size_is_capped_at_16_mib_on_both_ends() {
    assert_eq!(MAX_FRAME_BYTES, 16 << 20);
    let big = Response::error(ErrorCode::Invalid, "x".repeat(MAX_FRAME_BYTES));
    let e = frame::encode(&big).expect_err("over the cap");
    assert!(matches!(
        e,
        FrameError::TooLarge {
            max: MAX_FRAME_BYTES,
            ..
        }
    ));
    let text = e.to_string();
    assert!(text.starts_with("frame of 167772"), "{text}");
    assert!(
        text.ends_with(" bytes exceeds the 16777216-byte limit"),
        "{text}"
    );

    let dir = scratch("frame");
    let node = one_node(&dir, 31701, &[]);
    let (_t, conn) = connect(addr_of(&node), Role::Client).await;
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    // Announce 4 GiB - 1 and send nothing more: the answer must come at once.
    send.write_all(&[0xff, 0xff, 0xff, 0xff])
        .await
        .expect("prefix");
    let reply = tokio::time::timeout(STEP, frame::read_frame::<Response>(&mut recv, 1 << 20))
        .await
        .expect("answered without waiting for the body")
        .expect("a response frame");
    assert_eq!(
        error_text(reply),
        "unreadable request: frame of 4294967295 bytes exceeds the 16777216-byte limit"
    );
}

/// Row "frame size", consequence: the record of one operation is one frame, so a big
/// operation's results cannot be fetched beyond the cap. With every check erroring at the
/// full 1 KiB, 256 checks per host, the cap is reached beyond 62 hosts.
#[test]
fn one_operation_record_must_fit_one_frame() {
    let record = |hosts: usize| {
        let results: BTreeMap<String, Outcome> = (0..MAX_CHECKS)
            .map(|i| {
                (
                    format!("check_{i:03}"),
                    Outcome::Error("e".repeat(DEFAULT_MAX_RESULT_BYTES)),
                )
            })
            .collect();
        OperationRecord {
            handle: "gxm1-hkpw".parse().expect("handle"),
            coordinator: "127.0.0.1:30035".into(),
            submitted_unix_ms: 1,
            deadline_unix_ms: 2,
            ended_unix_ms: Some(2),
            check_names: results.keys().cloned().collect(),
            hosts: (0..hosts)
                .map(|i| {
                    (
                        format!("10.0.{}.{}:30035", i / 250, i % 250),
                        HostReport::Answered {
                            results: results.clone(),
                            took_ms: 1,
                            observations: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            submitted_by: None,
        }
    };
    let fits = (1..200)
        .take_while(|&n| frame::encode(&Response::Operation(record(n).into())).is_ok())
        .last()
        .expect("one host fits");
    eprintln!("worst-case operation record fits one frame up to {fits} hosts");
    assert!((60..=64).contains(&fits), "{fits}");
    let e = frame::encode(&Response::Operation(record(fits + 1).into())).expect_err("too big");
    assert!(
        e.to_string().ends_with("exceeds the 16777216-byte limit"),
        "{e}"
    );
}

/// Row "membership message size": `Message::decode_from` refuses more than 16 MiB
/// outright.
#[test]
fn membership_messages_over_16_mib_are_refused() {
    let sender = Peer {
        id: NodeId([7; 16]),
        addr: "127.0.0.7:30035".parse().expect("address"),
    };
    let e = Message::decode_from(&vec![0u8; MAX_MESSAGE_BYTES + 1], sender, NodeId([8; 16]))
        .expect_err("too large");
    assert_eq!(
        e.to_string(),
        "membership message too large: 16777217 bytes, at most 16777216 accepted"
    );
}

/// Rows "datagram size" and "gossip sender": a datagram above the limit cannot even be
/// sent on a node connection (QUIC's own datagram limit sits below MAX_DATAGRAM_BYTES), and
/// gossip claiming another sender than the certificate is dropped with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_are_bounded_and_bound_to_the_certificate() {
    let dir = scratch("datagram");
    let node = one_node(&dir, 31704, &[]);
    let (_t, conn) = connect(addr_of(&node), Role::Node).await;
    let max = conn.max_datagram_size().expect("datagrams enabled");
    assert!(
        max <= MAX_DATAGRAM_BYTES,
        "QUIC allows {max} > {MAX_DATAGRAM_BYTES}"
    );
    let too_big = bytes::Bytes::from(vec![0u8; MAX_DATAGRAM_BYTES + 1]);
    assert!(matches!(
        conn.send_datagram(too_big),
        Err(quinn::SendDatagramError::TooLarge)
    ));
    // A Nack claiming to come from someone else.
    let spoof = Message::Nack {
        from: NodeId([7; 16]),
        seq: 1,
    };
    conn.send_datagram(spoof.encode().into()).expect("send");
    assert!(
        wait_until(STEP, || node.log_text().contains("claiming to be 07070707")).is_some(),
        "no spoofing warning\n{}",
        node.log_text()
    );
}

/// Rows "streams per connection" and "request read time": a peer gets 64 concurrent
/// request streams (one of them may still be settling from the hello); the next waits.
/// Completed requests free their stream, so hundreds of calls on one connection work. A
/// request that never completes is stopped by the node after 10 s; its slot comes back
/// once the peer lets go of the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_connection_are_capped_and_stalled_requests_dropped() {
    let dir = scratch("streams");
    let node = one_node(&dir, 31702, &[]);
    let addr = addr_of(&node);
    let (_t, conn) = connect(addr, Role::Client).await;
    for i in 0..300 {
        let r = tokio::time::timeout(
            STEP,
            werify::rpc::transport::call_on(
                &conn,
                addr,
                &Request::Hello {
                    version: PROTOCOL_VERSION,
                    min_version: None,
                },
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("call {i} got no stream"))
        .expect("hello");
        assert!(matches!(r, Response::Hello { .. }));
    }
    let mut held = Vec::new();
    loop {
        let Ok(opened) = tokio::time::timeout(Duration::from_secs(2), conn.open_bi()).await else {
            break;
        };
        let (mut send, recv) = opened.expect("stream");
        send.write_all(&[0])
            .await
            .expect("one byte of a length prefix");
        held.push((send, recv));
        assert!(held.len() <= 64, "more than 64 concurrent streams");
    }
    eprintln!("opened {} stalled streams", held.len());
    assert!(held.len() >= 60, "only {} concurrent streams", held.len());
    let since_last = Instant::now();
    for (i, (send, _)) in held.iter_mut().enumerate() {
        tokio::time::timeout(STEP, send.stopped())
            .await
            .unwrap_or_else(|_| panic!("stalled stream {i} was never stopped"))
            .expect("stopped");
    }
    let waited = since_last.elapsed() + Duration::from_secs(2);
    eprintln!("stalled requests stopped {waited:?} after the last was opened");
    assert!(waited >= Duration::from_secs(5), "stopped after {waited:?}");
    drop(held);
    let r = tokio::time::timeout(
        STEP,
        werify::rpc::transport::call_on(
            &conn,
            addr,
            &Request::Hello {
                version: PROTOCOL_VERSION,
                min_version: None,
            },
        ),
    )
    .await
    .expect("a stream is free again")
    .expect("hello");
    assert!(matches!(r, Response::Hello { .. }));
}

/// Row "connections per node": 2048 open connections; the next is refused at once, `ctl`
/// says so, and the node logs it. Closing them makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_node_are_capped_at_2048() {
    assert_eq!(MAX_INCOMING_CONNECTIONS, 2048);
    let dir = scratch("conns");
    let node = one_node(&dir, 31703, &[]);
    let addr = addr_of(&node);
    let t = Transport::client(identity(Role::Client), addr).expect("endpoint");
    let endpoint = t.endpoint().clone();
    let started = Instant::now();
    let mut open = Vec::new();
    while open.len() < MAX_INCOMING_CONNECTIONS {
        let batch: Vec<_> = (0..64.min(MAX_INCOMING_CONNECTIONS - open.len()))
            .map(|_| {
                let connecting = endpoint.connect(addr, SERVER_NAME).expect("connect");
                tokio::spawn(async move { tokio::time::timeout(STEP, connecting).await })
            })
            .collect();
        for task in batch {
            let conn = task
                .await
                .expect("task")
                .expect("in time")
                .expect("handshake");
            open.push(conn);
        }
    }
    // The acceptor takes its slot before our side sees the handshake finish; make sure the
    // node has seen all of them by completing a stream on the last one.
    let last = open.last().expect("connections").clone();
    let (mut s, mut r) = last.open_bi().await.expect("stream");
    frame::write_frame(
        &mut s,
        &Request::Hello {
            version: PROTOCOL_VERSION,
            min_version: None,
        },
    )
    .await
    .expect("send");
    let _ = s.finish();
    frame::read_frame::<Response>(&mut r, 1 << 20)
        .await
        .expect("hello");
    eprintln!(
        "opened {} connections in {:?}",
        open.len(),
        started.elapsed()
    );

    let refused = tokio::time::timeout(STEP, endpoint.connect(addr, SERVER_NAME).expect("connect"))
        .await
        .expect("answered in time");
    let e = refused.expect_err("connection 2049 is refused");
    assert!(
        matches!(e, quinn::ConnectionError::ConnectionClosed(_)),
        "{e:?}"
    );
    let o = ctl(&node.addr(), &["--timeout", "10s", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let msg = stderr(&o);
    eprintln!("ctl with every slot taken: {msg}");
    assert!(msg.starts_with("Error: "), "{msg}");
    assert!(
        node.log_text().contains("2048 connections already open"),
        "{}",
        node.log_text()
    );
    for c in &open {
        c.close(0u32.into(), b"done");
    }
    assert!(
        wait_until(STEP, || list(&node.addr()).is_some()).is_some(),
        "slots were not released"
    );
}

/// Row "dial timeout": a `ctl` to an address where nothing answers gives up after 3 s.
#[test]
fn dial_timeout_names_the_address() {
    let o = ctl("127.0.0.1:31799", &["--timeout", "20s", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "Error: nothing answered at 127.0.0.1:31799 within 3s (is a werify node of this env running there?)"
    );
}

// ---------------------------------------------------------------------------------------
// Coordinator limits (multi-process).
// ---------------------------------------------------------------------------------------

/// Row "submits per second per client": 40 at once, then 20 per second, per address.
/// Submissions sent one after another are held back to that rate, never refused; many
/// sent at once are refused past the burst and the 2 s the node holds back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_rate_limited_per_client() {
    assert_eq!(MAX_PACED_WAIT, Duration::from_secs(2));
    let dir = scratch("rate");
    let node = one_node(&dir, 31705, &[]);
    let addr = addr_of(&node);
    let (t, _conn) = connect(addr, Role::Client).await;
    let checks = ops(r#"{"h": {"type": "file_exists", "path": "/etc/hostname"}}"#);
    let answer = |r: Response| -> Result<(), String> {
        match r {
            Response::Submitted { .. } => Ok(()),
            Response::Error { code, message } => {
                assert_eq!(code, ErrorCode::RateLimited, "{message}");
                Err(message)
            }
            other => panic!("{other:?}"),
        }
    };

    // One after another, well past the burst: each is admitted, paced to the rate.
    let sequential = SUBMIT_BURST.get() + 20;
    let started = Instant::now();
    for i in 0..sequential {
        let r = t
            .call(addr, &submit(&checks, Duration::from_secs(5)), STEP)
            .await
            .expect("answer");
        if let Err(message) = answer(r) {
            panic!("submission {i} of a sequence refused: {message}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("{sequential} sequential submissions admitted in {elapsed:.2}s");
    assert!(
        f64::from(sequential) <= f64::from(SUBMIT_BURST.get()) + 20.0 * elapsed + 1.0,
        "{sequential} in {elapsed}s: not paced"
    );

    // Many at once from the same address: past the burst and the paced queue, refused.
    let started = Instant::now();
    let flood: Vec<_> = (0..300)
        .map(|_| {
            let t = t.clone();
            let req = submit(&checks, Duration::from_secs(5));
            tokio::spawn(async move { t.call(addr, &req, STEP).await })
        })
        .collect();
    let mut accepted = 0u32;
    let mut refusals = Vec::new();
    for h in flood {
        match answer(h.await.expect("task").expect("answer")) {
            Ok(()) => accepted += 1,
            Err(message) => refusals.push(message),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "flood: {accepted} accepted, {} refused in {elapsed:.2}s",
        refusals.len()
    );
    let rate_refusal = refusals
        .iter()
        .find(|m| m.starts_with("too many operations from 127.0.0.1: "))
        .expect("the limiter refused part of the flood");
    assert!(
        rate_refusal
            .starts_with("too many operations from 127.0.0.1: at most 20 per second; retry in "),
        "{rate_refusal}"
    );
    assert!(rate_refusal.ends_with(" ms"), "{rate_refusal}");
    // The only other refusal a flood may meet is the cap on running operations.
    for m in &refusals {
        assert!(
            m.starts_with("too many operations from 127.0.0.1: ")
                || m.starts_with("this node already coordinates 64 running operations"),
            "{m}"
        );
    }
    // The sequence left the bucket empty: the flood gets at most the rate over its span
    // plus the held-back queue.
    assert!(
        f64::from(accepted) <= 20.0 * (elapsed + MAX_PACED_WAIT.as_secs_f64()) + 1.0,
        "{accepted} in {elapsed}s"
    );
}

/// Row "running operations per coordinator": the 65th concurrent operation is refused;
/// once they end there is room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_operations_per_coordinator_are_capped_at_64() {
    assert_eq!(MAX_RUNNING_OPERATIONS, 64);
    let dir = scratch("running");
    let node = one_node(&dir, 31706, &["--allow-command"]);
    let addr = addr_of(&node);
    let (t, _conn) = connect(addr, Role::Client).await;
    let slow = ops(
        r#"{"nap": {"type": "command", "command": "sleep", "args": ["12"], "timeout": "60s"}}"#,
    );
    for i in 0..MAX_RUNNING_OPERATIONS {
        let r = t
            .call(addr, &submit(&slow, Duration::from_secs(60)), STEP)
            .await
            .expect("answer");
        assert!(matches!(r, Response::Submitted { .. }), "submit {i}: {r:?}");
        // Stay under the per-client rate (20/s) so only the running cap can refuse.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let r = t
        .call(addr, &submit(&slow, Duration::from_secs(60)), STEP)
        .await
        .expect("answer");
    assert_eq!(
        error_text(r),
        "this node already coordinates 64 running operations; wait for some to finish or submit to another node"
    );
    let quick = ops(r#"{"h": {"type": "file_exists", "path": "/etc/hostname"}}"#);
    let mut last = String::new();
    let freed = wait_until(Duration::from_secs(60), || {
        let r = futures_lite_block(t.call(addr, &submit(&quick, Duration::from_secs(5)), STEP));
        match r {
            Ok(Response::Submitted { .. }) => true,
            other => {
                last = format!("{other:?}");
                false
            }
        }
    });
    assert!(
        freed.is_some(),
        "no room after the operations ended: {last}"
    );
}

/// Blocks on a future from inside a multi-thread runtime (for `wait_until` closures).
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// Rows "deadline range" and "get wait": deadlines must be in (0, 600 s]; a huge
/// `wait_ms` is clamped (to 60 s), not an overflow. Row "checks per operation" over the
/// wire: a set of 257 checks sent by a client that skipped the parser is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_waits_and_oversized_sets_over_the_wire() {
    assert_eq!(MAX_DEADLINE, Duration::from_secs(600));
    let dir = scratch("deadline");
    let node = one_node(&dir, 31707, &[]);
    let file = write_file(
        &dir,
        "ops.json",
        br#"{"h": {"type": "file_exists", "path": "/etc/hostname"}}"#,
    );
    let o = ctl(&node.addr(), &["operation", &file, "--deadline", "601s"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "Error: deadline 601s is out of range: use more than 0s and at most 600s"
    );
    let o = ctl(&node.addr(), &["operation", &file, "--deadline", "0s"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "Error: deadline 0ms is out of range: use more than 0s and at most 600s"
    );
    let o = ctl(&node.addr(), &["operation", &file, "--deadline", "600s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let addr = addr_of(&node);
    let (t, _conn) = connect(addr, Role::Client).await;
    let handle = match t
        .call(
            addr,
            &submit(&ops(&many_checks(1)), Duration::from_secs(5)),
            STEP,
        )
        .await
        .expect("answer")
    {
        Response::Submitted { handle, .. } => handle,
        other => panic!("{other:?}"),
    };
    let r = t
        .call(
            addr,
            &Request::Get {
                handle,
                wait_ms: u64::MAX,
                known_answers: None,
            },
            STEP,
        )
        .await
        .expect("a huge wait is clamped, and the operation ends quickly");
    assert!(
        matches!(r, Response::Operation(ref rec) if rec.ended_unix_ms.is_some()),
        "{r:?}"
    );

    // 257 checks, built without the parser.
    let checks: serde_json::Map<String, serde_json::Value> = (0..=MAX_CHECKS)
        .map(|i| {
            (
                format!("c{i}"),
                json!({"kind": {"FileExists": {"path": "/"}}, "expect": true, "timeout": null}),
            )
        })
        .collect();
    let set: CheckSet = serde_json::from_value(json!({ "checks": checks })).expect("set");
    let r = t
        .call(addr, &submit(&set, Duration::from_secs(5)), STEP)
        .await
        .expect("answer");
    assert_eq!(
        error_text(r),
        "invalid operation: the operation has 257 checks; the limit is 256"
    );
}

// ---------------------------------------------------------------------------------------
// Operations-file and check-set limits (library).
// ---------------------------------------------------------------------------------------

/// Row "checks per operation": 256 parse, 257 do not (file and validate).
#[test]
fn checks_per_operation_are_capped_at_256() {
    assert_eq!(MAX_CHECKS, 256);
    assert_eq!(ops(&many_checks(256)).len(), 256);
    assert_eq!(
        parse_err(&many_checks(257)),
        "ops.json:1:1: the operations file has 257 checks; the limit is 256 per operation"
    );
}

/// Rows "check name", "field value", "command args", "check timeout", "JSON nesting",
/// "regex size".
#[test]
fn per_check_limits() {
    assert_eq!(MAX_NAME_BYTES, 128);
    let name = "n".repeat(129);
    let e = parse_err(&format!(
        r#"{{"{name}": {{"type": "file_exists", "path": "/"}}}}"#
    ));
    assert!(
        e.ends_with("check name is longer than 128 bytes; use a shorter name"),
        "{e}"
    );
    ops(&format!(
        r#"{{"{}": {{"type": "file_exists", "path": "/"}}}}"#,
        "n".repeat(128)
    ));

    assert_eq!(MAX_VALUE_BYTES, 4096);
    let long = "p".repeat(4097);
    let e = parse_err(&format!(
        r#"{{"a": {{"type": "file_exists", "path": "{long}"}}}}"#
    ));
    assert!(
        e.ends_with("check \"a\": path is longer than 4096 bytes"),
        "{e}"
    );

    assert_eq!(MAX_ARGS, 64);
    let args = serde_json::to_string(&vec!["x"; 65]).expect("json");
    let e = parse_err(&format!(
        r#"{{"a": {{"type": "command", "command": "true", "args": {args}}}}}"#
    ));
    assert!(
        e.ends_with("field \"args\" has 65 entries; the limit is 64"),
        "{e}"
    );

    assert_eq!(MAX_CHECK_TIMEOUT, Duration::from_secs(600));
    let e = parse_err(r#"{"a": {"type": "file_exists", "path": "/", "timeout": "10m1s"}}"#);
    assert!(
        e.ends_with("timeout 10m1s is above the limit of 10m"),
        "{e}"
    );
    let e = parse_err(r#"{"a": {"type": "file_exists", "path": "/", "timeout": "0s"}}"#);
    assert!(e.ends_with("timeout must be above zero"), "{e}");

    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let e = parse_err(&format!(r#"{{"a": {deep}}}"#));
    assert!(e.contains("nesting deeper than 32 levels"), "{e}");

    let e =
        parse_err(r#"{"a": {"type": "file_matches", "path": "/", "pattern": "\\w{1000}{1000}"}}"#);
    assert!(e.contains("invalid regex: "), "{e}");
    assert!(e.contains("size limit"), "{e}");
}

/// Row "operations-file size": 1 MiB, refused before parsing, from disk or from text.
#[test]
fn operations_files_are_capped_at_1_mib() {
    assert_eq!(MAX_FILE_BYTES, 1 << 20);
    let dir = scratch("opsfile");
    let mut body = many_checks(1).into_bytes();
    body.pop(); // the closing brace, moved after the padding
    body.extend(std::iter::repeat_n(b' ', (1 << 20) - body.len()));
    body.push(b'}');
    let path = write_file(&dir, "big.json", &body);
    let e = load_operations_file(Path::new(&path)).expect_err("1 MiB + 1");
    assert_eq!(
        e.to_string(),
        format!(
            "{path}: the file is larger than the limit of 1048576 bytes for an operations file; split it into several operations"
        )
    );
    body.pop();
    body.pop();
    body.push(b'}');
    let path = write_file(&dir, "fits.json", &body);
    assert_eq!(
        load_operations_file(Path::new(&path)).expect("1 MiB").len(),
        1
    );
    // ctl stops at the same place, before connecting anywhere.
    let big = write_file(&dir, "big2.json", &[b' '; (1 << 20) + 1]);
    let o = ctl("127.0.0.1:31798", &["operation", &big]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("larger than the limit of 1048576 bytes"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------------------------------
// What a check may read or return (library, real checks on this host).
// ---------------------------------------------------------------------------------------

fn run(set: &CheckSet, opts: &RunOptions) -> BTreeMap<String, Outcome> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run_checks(set, opts))
        .into_iter()
        .map(|(name, r)| (name, r.outcome))
        .collect()
}

fn only(results: BTreeMap<String, Outcome>) -> Outcome {
    assert_eq!(results.len(), 1, "{results:?}");
    results.into_values().next().expect("one result")
}

/// Row "result text": an error text is one line of at most 1024 bytes ("…" included).
#[test]
fn result_texts_are_capped_at_1_kib() {
    let path = format!("/nonexistent/{}", "d".repeat(3000));
    let set = ops(&format!(
        r#"{{"a": {{"type": "file_contains", "path": "{path}", "check": "x"}}}}"#
    ));
    match only(run(&set, &RunOptions::default())) {
        Outcome::Error(e) => {
            assert!(e.ends_with('…'), "{e}");
            assert_eq!(e.len(), DEFAULT_MAX_RESULT_BYTES, "{e}");
            assert!(!e.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
}

/// Row "file size for content checks": 4 GiB by default; a bigger file is refused before
/// reading (a sparse file, so the test writes nothing).
#[test]
fn content_checks_refuse_files_over_4_gib() {
    assert_eq!(DEFAULT_MAX_FILE_BYTES, 4 << 30);
    let dir = scratch("sparse");
    let path = dir.path().join("huge.bin");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(DEFAULT_MAX_FILE_BYTES + 1).expect("sparse file");
    let p = path.to_string_lossy();
    let set = ops(&format!(
        r#"{{"h": {{"type": "file_hash", "path": "{p}", "sha256": "{}"}}}}"#,
        "0".repeat(64)
    ));
    assert_eq!(
        only(run(&set, &RunOptions::default())),
        Outcome::Error(format!(
            "{p} is 4294967297 bytes, above the limit of 4294967296 bytes for content checks"
        ))
    );
}

/// Row "line length for file_matches": 16 MiB per line.
#[test]
fn file_matches_refuses_lines_over_16_mib() {
    let dir = scratch("longline");
    let path = dir.path().join("line.txt");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(&vec![b'a'; (16 << 20) + 1]).expect("write");
    f.write_all(b"\n").expect("write");
    drop(f);
    let p = path.to_string_lossy();
    let set = ops(&format!(
        r#"{{"m": {{"type": "file_matches", "path": "{p}", "pattern": "b", "timeout": "60s"}}}}"#
    ));
    match only(run(&set, &RunOptions::default())) {
        Outcome::Error(e) => assert!(
            e.starts_with(&format!("line 1 of {p} is longer than 16777216 bytes")),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

/// Row "command output": only the first 1 MiB of stdout is searched (the rest is read and
/// dropped, so the program never blocks).
#[test]
fn command_stdout_is_searched_in_its_first_mib_only() {
    let script = |pad: usize| {
        ops(&format!(
            r#"{{"c": {{"type": "command", "command": "sh", "args": ["-c", "head -c {pad} /dev/zero | tr '\\000' a; echo NEEDLE"], "stdout_contains": "NEEDLE", "timeout": "60s"}}}}"#
        ))
    };
    let opts = RunOptions {
        allow_command: true,
        ..RunOptions::default()
    };
    assert_eq!(only(run(&script(1000), &opts)), Outcome::Success(true));
    assert_eq!(only(run(&script(1 << 20), &opts)), Outcome::Success(false));
    // And without --allow-command nothing runs at all.
    assert_eq!(
        only(run(&script(1), &RunOptions::default())),
        Outcome::Error(werify::checks::COMMAND_DISABLED.into())
    );
}

// ---------------------------------------------------------------------------------------
// State kept by a node (library).
// ---------------------------------------------------------------------------------------

fn record(handle: &Handle, submitted: u64) -> OperationRecord {
    OperationRecord {
        handle: handle.clone(),
        coordinator: "127.0.0.1:30035".into(),
        submitted_unix_ms: submitted,
        deadline_unix_ms: submitted + 1,
        ended_unix_ms: Some(submitted + 1),
        check_names: vec!["a".into()],
        hosts: BTreeMap::new(),
        submitted_by: None,
    }
}

/// Row "handles kept": at most `max_records` (10 000) operations, the oldest dropped
/// first, and none older than the TTL (24 h) once `expire` runs.
#[test]
fn stored_operations_are_bounded_in_number_and_age() {
    let defaults = StoreLimits::default();
    assert_eq!(defaults.max_records, 10_000);
    assert_eq!(defaults.ttl, Duration::from_secs(24 * 3600));
    let dir = scratch("store");
    let store = Store::open(
        &dir.path().join("ops.redb"),
        StoreLimits {
            ttl: Duration::from_secs(10),
            max_records: 3,
        },
    )
    .expect("store");
    let id = NodeId([1; 16]);
    let handles: Vec<Handle> = (1..=5).map(|c| Handle::new(0, c, id)).collect();
    for (i, h) in handles.iter().enumerate() {
        store
            .insert(&record(h, 1_000 * (i as u64 + 1)))
            .expect("insert");
    }
    assert!(store.get(&handles[0]).expect("get").is_none());
    assert!(store.get(&handles[1]).expect("get").is_none());
    assert!(store.get(&handles[4]).expect("get").is_some());
    // 10 s TTL: at t=14.5 s only the record submitted at 5 s is young enough.
    assert_eq!(store.expire(14_500).expect("expire"), 2);
    assert!(store.get(&handles[3]).expect("get").is_none());
    assert!(store.get(&handles[4]).expect("get").is_some());
}

/// Row "handle length": 28 characters at most; longer input is refused without echoing
/// all of it.
#[test]
fn handles_are_short_and_bounded() {
    let longest = Handle::new(0, u64::MAX, NodeId([0; 16]));
    assert_eq!(longest.as_str().len(), 28);
    let e = "a".repeat(10_000).parse::<Handle>().expect_err("too long");
    assert_eq!(e.reason, "too long");
    assert!(e.to_string().len() < 300, "{e}");
}

/// Row "env tag": 1–63 characters of [a-z0-9-].
#[test]
fn env_tags_are_bounded() {
    assert!("a".repeat(63).parse::<Env>().is_ok());
    let e = "a".repeat(64).parse::<Env>().expect_err("64");
    assert!(
        e.to_string()
            .ends_with("use 1 to 63 characters from lowercase letters a-z, digits 0-9 and '-'"),
        "{e}"
    );
    let o = std::process::Command::new(BIN)
        .args(["node", "--env", "Prod", "--port", "31797"])
        .output()
        .expect("run werify node");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid env \"Prod\""),
        "{}",
        stderr(&o)
    );
}

/// Rows "secret file" and "CA files": 64 KiB each.
#[test]
fn secret_and_ca_files_are_capped_at_64_kib() {
    let dir = scratch("secret");
    let secret = write_file(&dir, "secret", &[b's'; 64 * 1024 + 1]);
    let e = read_secret_file(Path::new(&secret)).expect_err("too large");
    assert_eq!(
        e.to_string(),
        format!("{secret} is larger than 65536 bytes; is it the right file?")
    );
    let ok = write_file(&dir, "ok", &[b's'; 64 * 1024]);
    assert_eq!(
        read_secret_file(Path::new(&ok))
            .expect("64 KiB")
            .current
            .len(),
        64 * 1024
    );

    let cert = write_file(&dir, "ca.crt.pem", &[b'-'; 64 * 1024 + 1]);
    let e = Identity::new(
        None,
        &CaSource::Pem {
            certs: vec![cert.clone().into()],
            key: ok.into(),
        },
        Role::Node,
        NodeId::random(),
        &[],
    )
    .expect_err("too large");
    assert_eq!(
        e.to_string(),
        format!("{cert} is larger than 65536 bytes; is it the right file?")
    );
}

/// Row "membership snapshot": a snapshot file over 64 MiB is not read (sparse file).
#[test]
fn membership_snapshots_over_64_mib_are_not_read() {
    let dir = scratch("snapshot");
    let path = dir.path().join("members.cbor");
    std::fs::File::create(&path)
        .expect("create")
        .set_len((64 << 20) + 1)
        .expect("sparse");
    let e = werify::node::snapshot::load(&path).expect_err("too large");
    assert!(
        e.to_string()
            .ends_with("is not a werify membership snapshot (67108865 bytes, more than the 67108864 allowed); move it away to start fresh"),
        "{e}"
    );
}

/// Row "rate-limiter table": at most 4096 client addresses tracked, whatever the number of
/// clients.
#[test]
fn rate_limiter_tracks_a_bounded_number_of_clients() {
    assert_eq!(DEFAULT_MAX_KEYS, 4096);
    let mut limiter = RateLimiter::new(
        NonZeroU32::new(20).expect("20"),
        NonZeroU32::new(40).expect("40"),
    );
    let now = Instant::now();
    for i in 0..20_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + i));
        assert!(limiter.check(ip, now).is_ok());
        assert!(limiter.tracked_keys() <= DEFAULT_MAX_KEYS);
    }
    assert_eq!(limiter.tracked_keys(), DEFAULT_MAX_KEYS);
}

/// Rows "tags" and "health summary": a node's own tags are cut to 512 encoded bytes (the
/// rest is dropped silently), failing check names to 8 of 48 bytes.
#[test]
fn gossiped_tags_and_health_are_capped() {
    let tags: Tags = (0..20)
        .map(|i| (format!("key{i:02}"), "v".repeat(40)))
        .collect();
    let capped = cap_tags(tags);
    let mut buf = Vec::new();
    ciborium::into_writer(&capped, &mut buf).expect("cbor");
    assert!(buf.len() <= MAX_TAGS_BYTES, "{}", buf.len());
    assert!(capped.len() < 20 && !capped.is_empty(), "{capped:?}");

    let summary = HealthSummary {
        version: 1,
        passing: 0,
        failing: 20,
        erroring: 0,
        failing_names: (0..20).map(|i| format!("{i}{}", "é".repeat(40))).collect(),
        erroring_names: Vec::new(),
        names_omitted: 0,
        at_unix_ms: 0,
        refresh_id: 0,
    }
    .capped();
    assert_eq!(summary.failing_names.len(), MAX_FAILING_NAMES);
    assert!(
        summary
            .failing_names
            .iter()
            .all(|n| n.len() <= MAX_FAILING_NAME_BYTES)
    );
}

/// Row "tags" seen from the command line: `--tag` beyond 512 bytes is dropped without a
/// word (see SECURITY.md: reported, not fixed here).
#[test]
fn oversized_node_tags_are_dropped_silently() {
    let dir = scratch("tags");
    let big = format!("big={}", "v".repeat(600));
    let node = one_node(&dir, 31708, &["--tag", "small=1", "--tag", &big]);
    let text = status_json(&node.addr())
        .expect("mesh status --output json")
        .to_string();
    assert!(text.contains("\"small\""), "{text}");
    assert!(!text.contains("\"big\""), "{text}");
    assert!(!node.log_text().contains("big"), "{}", node.log_text());
}

/// Row "handshakes in progress": a flood of QUIC Initial packets whose handshakes are never
/// finished holds at most 256 handshake slots, for at most 5 s each. Connections that were
/// established before the flood keep working, and new ones are accepted again once the
/// stalled handshakes time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_holds_at_most_256_slots_and_spares_established_connections() {
    use werify::node::dispatch::MAX_PENDING_HANDSHAKES;
    assert_eq!(MAX_PENDING_HANDSHAKES, 256);
    let dir = scratch("handshakes");
    let node = one_node(&dir, 31709, &[]);
    let addr = addr_of(&node);
    // An authenticated client connected before the flood.
    let (_t, established) = connect(addr, Role::Client).await;

    // The flood: first Initial packets of 400 distinct connection attempts, sent from a
    // plain UDP socket by a sans-IO client endpoint that never reads the answers.
    let client_config =
        werify::rpc::tls::client_config(&identity(Role::Client)).expect("client config");
    let mut endpoint = quinn_proto::Endpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let mut connections = Vec::new();
    let now = Instant::now();
    let mut buf = Vec::new();
    for i in 0..400 {
        if i % 20 == 0 {
            // Pace the flood so the node's socket buffer does not drop it.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (_, mut conn) = endpoint
            .connect(now, client_config.clone(), addr, SERVER_NAME)
            .expect("connect");
        buf.clear();
        let t = conn
            .poll_transmit(now, 1, &mut buf)
            .expect("an Initial packet");
        socket.send_to(&buf[..t.size], t.destination).expect("send");
        connections.push(conn);
    }
    assert!(
        wait_until(STEP, || node
            .log_text()
            .contains("256 handshakes already in progress"))
        .is_some(),
        "the handshake cap was not hit\n{}",
        node.log_text()
    );
    // The established connection still answers.
    let (mut s, mut r) = established.open_bi().await.expect("stream");
    frame::write_frame(&mut s, &Request::Status)
        .await
        .expect("send");
    let _ = s.finish();
    let resp = tokio::time::timeout(STEP, frame::read_frame::<Response>(&mut r, MAX_FRAME_BYTES))
        .await
        .expect("in time")
        .expect("status");
    assert!(matches!(resp, Response::Status(_)), "{resp:?}");
    // Once the stalled handshakes time out (5 s), new clients get in again.
    assert!(
        wait_until(STEP, || list(&node.addr()).is_some()).is_some(),
        "new connections were not accepted after the flood\n{}",
        node.log_text()
    );
    drop(connections);
}
