//! Adding hosts in bulk, as operators do: a batch file of `add` lines fed to `werify ctl -`
//! and a script that runs `werify ctl add` once per host, one after another. The node holds
//! such requests back to its rate (20 a second per client address) instead of refusing
//! them; a flood of requests sent at once from one address is still refused past the
//! burst and the held-back queue. Real `werify node` processes on 127.0.2.1–5.
//!
//! `add` dials the host it is given, so each add needs a running node there: the batch
//! adds the same four hosts over and over, removing them (`del`) between rounds.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use werify::base::NodeId;
use werify::rpc::identity::{CaSource, Identity, Role, Secret};
use werify::rpc::protocol::{ErrorCode, Request, Response};
use werify::rpc::transport::Transport;

const PORT: u16 = 30035;
/// Hang guard for one step (not a speed assertion).
const STEP: Duration = Duration::from_secs(60);
/// Adds in the batch.
const BATCH_ADDS: usize = 1000;

fn node_at(dir: &TempDir, index: u8) -> Node {
    let mut n = Node::new(Launch {
        ns: None,
        index,
        ip: format!("127.0.2.{index}"),
        port: PORT,
        data_dir: dir.path().join(format!("node{index}")),
        log: dir.path().join(format!("node{index}.log")),
        profile: "local",
        ident: Vec::new(),
        extra: Vec::new(),
    });
    n.spawn();
    n
}

/// Sends `count` `Add` requests at once over one client connection; returns the answers.
async fn flood(addr: SocketAddr, host: String, count: usize) -> Vec<Response> {
    let id = Identity::new(
        None,
        &CaSource::Derived {
            secret: Secret::None,
        },
        Role::Client,
        NodeId::random(),
        &[],
    )
    .expect("derived identity");
    let t = Transport::client(Arc::new(id), addr).expect("client endpoint");
    let calls: Vec<_> = (0..count)
        .map(|_| {
            let t = t.clone();
            let req = Request::Add { host: host.clone() };
            tokio::spawn(async move { t.call(addr, &req, STEP).await })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.expect("task").expect("an answer"));
    }
    out
}

#[test]
fn a_batch_of_1000_adds_is_paced_not_refused() {
    let dir = TempDir::new("adds-batch");
    let nodes: Vec<Node> = (1..=5).map(|i| node_at(&dir, i)).collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    assert!(
        wait_until(STEP, || refs.iter().all(|n| n.list().is_some())).is_some(),
        "the nodes did not come up\n{}",
        dump_logs(&refs)
    );
    let first = nodes[0].addr();
    let hosts: Vec<String> = nodes[1..].iter().map(Node::addr).collect();

    // 1. The batch: every host added, then every host removed, round after round.
    let mut batch = String::new();
    let rounds = BATCH_ADDS / hosts.len();
    for _ in 0..rounds {
        for h in &hosts {
            batch.push_str(&format!("add {h}\n"));
        }
        for h in &hosts {
            batch.push_str(&format!("del {h}\n"));
        }
    }
    let mut child = werify_in(None, &["ctl", "--connect", &first, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run werify ctl -");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(batch.as_bytes())
        .expect("write the batch");
    let out = child.wait_with_output().expect("werify ctl - ends");
    let text = stdout(&out);
    let added = text
        .lines()
        .filter(|l| l.starts_with("Added host "))
        .count();
    assert!(
        out.status.success(),
        "the batch failed after {added} adds: {}\n{}",
        stderr(&out).trim(),
        dump_logs(&refs)
    );
    assert_eq!(added, BATCH_ADDS, "{}", stderr(&out));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("Removed host "))
            .count(),
        BATCH_ADDS
    );

    // 2. A script: one `werify ctl add` (and `del`) process after another, right after
    // the batch left this address's bucket empty.
    for i in 0..100 {
        let h = &hosts[i % hosts.len()];
        let o = ctl(&first, &["add", h]);
        assert!(
            o.status.success(),
            "add number {} of the script failed: {}",
            i + 1,
            stderr(&o).trim()
        );
        assert_eq!(stdout(&o).trim(), format!("Added host {h}"));
        let o = ctl(&first, &["del", h]);
        assert!(o.status.success(), "del: {}", stderr(&o).trim());
    }

    // 3. A flood: 300 adds sent at once from the same address. Those admitted fail on
    // their own merits (the node cannot add itself); the rest are refused by the limit.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let addr: SocketAddr = first.parse().expect("address");
    let answers = rt.block_on(flood(addr, first.clone(), 300));
    let mut admitted = 0;
    let mut refused = Vec::new();
    for a in answers {
        match a {
            Response::Error {
                code: ErrorCode::Invalid,
                message,
            } => {
                assert!(message.contains("is this node itself"), "{message}");
                admitted += 1;
            }
            Response::Error {
                code: ErrorCode::RateLimited,
                message,
            } => refused.push(message),
            other => panic!("unexpected answer to a flooded add: {other:?}"),
        }
    }
    eprintln!("flood: {admitted} admitted, {} refused", refused.len());
    assert!(!refused.is_empty(), "nothing of the flood was refused");
    for m in &refused {
        assert!(
            m.starts_with("too many adds from 127.0.0.1: at most 20 per second; retry in ")
                && m.ends_with(" ms"),
            "{m}"
        );
    }
    // Everyone is still up and answering.
    assert!(refs.iter().all(|n| n.list().is_some()));
}
