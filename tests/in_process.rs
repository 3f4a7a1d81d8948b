//! Multi-node tests in one process: nodes started with `werify::node::Node::start` on
//! 127.0.0.1 with port 0 (each on the free port it got, with its own temp data dir),
//! talked to by a client `Transport` the way `werify ctl` does. The fast cases of
//! tests/mesh.rs and tests/operations.rs without process start-up: join and converge,
//! an operation and its results by handle from another node, `del`, a graceful leave, and
//! a node of another env that cannot join.
//!
//! Every wait polls with a deadline (a hang guard, never a speed assertion).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use werify::base::{Env, NodeId};
use werify::checks::{Outcome, parse_operations};
use werify::mesh::Profile;
use werify::mesh::member::State;
use werify::node::driver::MeshClient;
use werify::node::{Node, NodeConfig};
use werify::rpc::identity::{CaSource, Identity, Role};
use werify::rpc::protocol::{ErrorCode, HostReport, Request, Response, TargetFilter};
use werify::rpc::transport::Transport;

/// Hang guard for one step: converging, an operation, a removal spreading.
const STEP: Duration = Duration::from_secs(30);
/// Timeout of one request.
const CALL: Duration = Duration::from_secs(10);

/// One node running in this process; dropping it stops its server (see [`InProc::stop`]
/// for a graceful leave that is waited for).
struct InProc {
    addr: SocketAddr,
    mesh: MeshClient,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl InProc {
    /// Starts a node on 127.0.0.1, port 0, data dir `dir/name`, the `local` profile,
    /// joining through `join`, in env `env` (`None`: the default env).
    async fn start(dir: &TempDir, name: &str, join: &[SocketAddr], env: Option<&str>) -> InProc {
        let config = NodeConfig {
            env: env.map(|e| e.parse::<Env>().expect("valid env")),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            join: join.iter().map(SocketAddr::to_string).collect(),
            data_dir: Some(dir.path().join(name)),
            profile: Profile::Local,
            ..NodeConfig::default()
        };
        let node = Node::start(config).await.expect("start an in-process node");
        let addr = node.addr();
        assert_ne!(addr.port(), 0, "port 0 must be replaced by the port bound");
        let mesh = node.mesh();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(node.serve(async {
            let _ = rx.await;
        }));
        InProc {
            addr,
            mesh,
            shutdown: Some(tx),
            served: Some(served),
        }
    }

    /// Members this node sees in `state`, by address.
    async fn in_state(&self, state: State) -> BTreeSet<SocketAddr> {
        match self.mesh.view().await {
            Ok(view) => view
                .members
                .iter()
                .filter(|m| m.member.state == state)
                .map(|m| m.member.peer.addr)
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Stops serving and leaves the mesh gracefully; returns once the node is down.
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(STEP, served)
                .await
                .expect("the node shut down in time")
                .expect("the serve task");
        }
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `check` every 100 ms until it holds; panics with `what` after [`STEP`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + STEP;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what}: not within {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether every node of `nodes` sees exactly `alive` as its alive members.
async fn all_see(nodes: &[&InProc], alive: &BTreeSet<SocketAddr>) -> bool {
    for n in nodes {
        if n.in_state(State::Alive).await != *alive {
            return false;
        }
    }
    true
}

/// A client endpoint (`werify ctl`'s role) toward `addr`, in env `env` (`None`: default).
fn client(addr: SocketAddr, env: Option<&str>) -> Transport {
    let env = env.map(|e| e.parse::<Env>().expect("valid env"));
    let identity = Identity::new(
        env.as_ref(),
        &CaSource::Derived { secret: None },
        Role::Client,
        NodeId::random(),
        &[],
    )
    .expect("client identity");
    Transport::client(Arc::new(identity), addr).expect("client endpoint")
}

async fn call(t: &Transport, addr: SocketAddr, req: &Request) -> Response {
    t.call(addr, req, CALL)
        .await
        .unwrap_or_else(|e| panic!("call to {addr}: {e}"))
}

/// Five nodes join through the first and agree; an operation submitted to node 1 runs on
/// all five and its results are read by handle through node 3; `del` of node 5 spreads;
/// a graceful leave of node 4 is seen as left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_run_an_operation_and_see_del_and_leave() {
    let dir = TempDir::new("in-process-five");
    let first = InProc::start(&dir, "n1", &[], None).await;
    let mut nodes = vec![first];
    for k in 2..=5 {
        let seed = nodes[0].addr;
        nodes.push(InProc::start(&dir, &format!("n{k}"), &[seed], None).await);
    }
    let all: BTreeSet<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    assert_eq!(all.len(), 5, "five distinct ports: {all:?}");
    {
        let refs: Vec<&InProc> = nodes.iter().collect();
        eventually("five nodes see five alive", || all_see(&refs, &all)).await;
    }

    // An operation through a client, as `werify ctl operation` sends it.
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "here\n").expect("write the marker file");
    let checks = parse_operations(
        &format!(
            r#"{{"marker": {{"type": "file_exists", "path": {:?}}},
                "absent": {{"type": "file_exists", "path": {:?}}}}}"#,
            marker.display().to_string(),
            dir.path().join("absent").display().to_string()
        ),
        "ops.json",
    )
    .expect("operations file");
    let coord = nodes[0].addr;
    let ctl = client(coord, None);
    let submitted = call(
        &ctl,
        coord,
        &Request::Submit {
            checks,
            filter: TargetFilter::default(),
            deadline_ms: 10_000,
        },
    )
    .await;
    let Response::Submitted {
        handle,
        coordinator,
        targeted,
    } = submitted
    else {
        panic!("expected Submitted, got {submitted:?}");
    };
    assert_eq!(coordinator, coord.to_string());
    assert_eq!(targeted, 5);

    // Results by handle through another node (which forwards to the coordinator).
    let via = nodes[2].addr;
    let ctl3 = client(via, None);
    let give_up = tokio::time::Instant::now() + STEP;
    let report = loop {
        let get = Request::Get {
            handle: handle.clone(),
            wait_ms: 2_000,
            known_answers: None,
        };
        match call(&ctl3, via, &get).await {
            Response::Operation(op) if op.ended_unix_ms.is_some() => break op,
            Response::Operation(op) => assert!(
                tokio::time::Instant::now() < give_up,
                "the operation did not end within {STEP:?}: {op:?}"
            ),
            other => panic!("expected Operation, got {other:?}"),
        }
    };
    let hosts: BTreeSet<SocketAddr> = report
        .hosts
        .keys()
        .map(|h| h.parse().expect("IP:PORT"))
        .collect();
    assert_eq!(hosts, all);
    for (host, r) in &report.hosts {
        let HostReport::Answered { results, .. } = r else {
            panic!("{host} did not answer: {r:?}");
        };
        assert_eq!(results["marker"], Outcome::Success(true), "{host}");
        assert_eq!(results["absent"], Outcome::Success(false), "{host}");
    }
    // A handle of the same coordinator that it never gave out is NotFound, also when
    // asked through another node.
    let (_, tag) = handle.split_once('-').expect("a handle has a node tag");
    let never = format!("{}999999-{tag}", &handle[..3]);
    let r = call(
        &ctl3,
        via,
        &Request::Get {
            handle: never,
            wait_ms: 0,
            known_answers: None,
        },
    )
    .await;
    match r {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("expected an error, got {other:?}"),
    }

    // `del` of node 5 through node 1: the rest stop listing it as alive.
    let gone = nodes[4].addr;
    let r = call(
        &ctl,
        coord,
        &Request::Del {
            host: gone.to_string(),
        },
    )
    .await;
    assert!(matches!(r, Response::Done), "{r:?}");
    let four: BTreeSet<SocketAddr> = all.iter().copied().filter(|a| *a != gone).collect();
    {
        let refs: Vec<&InProc> = nodes[..4].iter().collect();
        eventually("the removal of node 5 spread", || all_see(&refs, &four)).await;
        for n in &refs {
            assert!(
                !n.in_state(State::Dead).await.contains(&gone),
                "a removed node is left, not dead"
            );
        }
    }
    nodes.pop().expect("node 5").stop().await;

    // Node 4 leaves gracefully: the other three see it as left.
    let leaving = nodes.pop().expect("node 4");
    let left_addr = leaving.addr;
    leaving.stop().await;
    let three: BTreeSet<SocketAddr> = four.iter().copied().filter(|a| *a != left_addr).collect();
    {
        let refs: Vec<&InProc> = nodes.iter().collect();
        eventually("node 4's leave spread", || async {
            for n in &refs {
                if !n.in_state(State::Left).await.contains(&left_addr) {
                    return false;
                }
            }
            all_see(&refs, &three).await
        })
        .await;
    }
    for n in nodes {
        n.stop().await;
    }
}

/// A node of another env joins through a member and is never let in; a client of that
/// env cannot read the mesh either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_env_cannot_join() {
    let dir = TempDir::new("in-process-env");
    let a = InProc::start(&dir, "a", &[], Some("prod")).await;
    let b = InProc::start(&dir, "b", &[a.addr], Some("prod")).await;
    let pair: BTreeSet<SocketAddr> = [a.addr, b.addr].into();
    let prod_nodes = [&a, &b];
    eventually("the two prod nodes see each other", || {
        all_see(&prod_nodes, &pair)
    })
    .await;

    let outsider = InProc::start(&dir, "outsider", &[a.addr], Some("staging")).await;
    // Its join is retried every few seconds (local profile); watch a few rounds.
    let watch_until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < watch_until {
        for n in [&a, &b] {
            let view = n.mesh.view().await.expect("view");
            assert!(
                view.members
                    .iter()
                    .all(|m| m.member.peer.addr != outsider.addr),
                "the staging node appears in {}'s view",
                n.addr
            );
        }
        let own = outsider.in_state(State::Alive).await;
        assert_eq!(own, [outsider.addr].into(), "the outsider sees only itself");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A staging client is refused by a prod node; a prod client is answered.
    let staging = client(a.addr, Some("staging"));
    assert!(
        staging.call(a.addr, &Request::Status, CALL).await.is_err(),
        "a client of another env was answered"
    );
    let prod = client(a.addr, Some("prod"));
    let r = call(&prod, a.addr, &Request::Status).await;
    let Response::Status(status) = r else {
        panic!("expected Status, got {r:?}");
    };
    assert_eq!(status.env, "prod");
    assert_eq!(status.members.len(), 2);

    outsider.stop().await;
    b.stop().await;
    a.stop().await;
}
