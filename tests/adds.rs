//! Adding hosts in bulk, as operators do: a batch file of `add` lines fed to `werify ctl -`
//! and a script that runs `werify ctl add` once per host, one after another. The node holds
//! such requests back to its rate (`ADDS_PER_SECOND` per client address, after a burst of
//! `ADD_BURST`) instead of refusing them; a flood of requests sent at once from one address
//! is still refused past the burst and the held-back queue. Real `werify node` processes on 127.0.2.1–5.
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
use werify::ops::coordinator::{ADD_BURST, ADDS_PER_SECOND, MAX_PACED_WAIT};
use werify::rpc::identity::{CaSource, Identity, Role, Secret};
use werify::rpc::protocol::{ErrorCode, Request, Response};
use werify::rpc::tls::MAX_CONCURRENT_BIDI_STREAMS;
use werify::rpc::transport::{DIAL_TIMEOUT, Transport};

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

/// Sends `count` `Add` requests at once from one address, spread over as many client
/// connections as it takes to have them all in flight together (a connection carries at
/// most `MAX_CONCURRENT_BIDI_STREAMS` requests at a time); returns the answers.
async fn flood(addr: SocketAddr, host: String, count: usize) -> Vec<Response> {
    let per_connection = MAX_CONCURRENT_BIDI_STREAMS as usize;
    let mut calls = Vec::new();
    for chunk in 0..count.div_ceil(per_connection) {
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
        let n = per_connection.min(count - chunk * per_connection);
        calls.extend((0..n).map(|_| {
            let t = t.clone();
            let req = Request::Add { host: host.clone() };
            tokio::spawn(async move { t.call(addr, &req, STEP).await })
        }));
    }
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

    // 3. A flood: twice what the burst and the held-back queue hold, sent at once from the
    // same address. Those admitted fail on their own merits (the node cannot add itself);
    // the rest are refused by the limit.
    let queue = ADD_BURST.get() as usize
        + ADDS_PER_SECOND.get() as usize * MAX_PACED_WAIT.as_secs() as usize;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let addr: SocketAddr = first.parse().expect("address");
    let answers = rt.block_on(flood(addr, first.clone(), 2 * queue));
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
            m.starts_with(&format!(
                "too many adds from 127.0.0.1: at most {ADDS_PER_SECOND} per second; retry in "
            )) && m.ends_with(" ms"),
            "{m}"
        );
    }
    // Everyone is still up and answering.
    assert!(refs.iter().all(|n| n.list().is_some()));
}

/// A host that does not answer an add in time (not started yet, or too busy) becomes a
/// join contact: the add reports that it failed for now, the node keeps trying, and the host
/// joins once it answers. `del` of such an address stops the attempts.
#[test]
fn an_add_that_finds_no_answer_keeps_trying_until_the_host_answers() {
    let dir = TempDir::new("adds-pending");
    let first = node_at(&dir, 11);
    assert!(
        wait_until(STEP, || first.list().is_some()).is_some(),
        "the node did not come up\n{}",
        first.log_tail(40)
    );
    let later = "127.0.2.12:30035";
    let dropped = "127.0.2.13:30035";

    // Both adds at once: each waits out the add's patience before it reports.
    let connect = first.addr();
    let adds: Vec<_> = [later, dropped]
        .into_iter()
        .map(|h| {
            let c = connect.clone();
            std::thread::spawn(move || ctl(&c, &["--timeout", "30s", "add", h]))
        })
        .collect();
    for (h, add) in [later, dropped].into_iter().zip(adds) {
        let o = add.join().expect("the add thread");
        assert!(
            !o.status.success(),
            "adding {h}, which is not up, succeeded"
        );
        let err = stderr(&o);
        assert!(
            err.contains(&format!("could not add {h} yet: "))
                && err.contains("keeps trying to join it in the background")
                && err.contains(&format!("`werify ctl del {h}` stops trying")),
            "{err}"
        );
    }

    // `del` of a pending address stops the attempts; a second `del` finds nothing to stop.
    let o = ctl(&connect, &["del", dropped]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("Removed host {dropped}"));
    let o = ctl(&connect, &["del", dropped]);
    assert!(!o.status.success(), "a second del of {dropped} succeeded");
    assert!(
        stderr(&o).contains(&format!("no mesh member has address {dropped}")),
        "{}",
        stderr(&o)
    );

    // Both hosts start, once a join attempt the node made just before the `del` would
    // have given up dialing (`DIAL_TIMEOUT`); only the one still pending is joined.
    std::thread::sleep(DIAL_TIMEOUT + Duration::from_secs(1));
    let second = node_at(&dir, 12);
    let third = node_at(&dir, 13);
    let joined = wait_until(STEP, || {
        first
            .list()
            .is_some_and(|(active, _)| active.iter().any(|a| a == later))
    });
    assert!(
        joined.is_some(),
        "{later} was not joined after it started\n{}\n{}",
        first.log_tail(40),
        second.log_tail(40)
    );
    // The local profile retries a contact every 2 s: three intervals with no attempt.
    std::thread::sleep(Duration::from_secs(6));
    let (active, inactive) = first.list().expect("the first node answers");
    assert!(
        !active.iter().chain(&inactive).any(|a| a == dropped),
        "{dropped} joined after its add was dropped: {active:?} {inactive:?}\n{}",
        third.log_tail(20)
    );
}
