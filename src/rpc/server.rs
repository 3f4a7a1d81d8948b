//! The node's side of every connection: accepting QUIC connections (with a cap), feeding
//! verified gossip datagrams to the mesh task, and answering one request per stream.
//! What an operation does is in [`crate::rpc::coordinator`]; gossip logic is in
//! [`crate::mesh`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::checks::run::{RunOptions, run_checks};
use crate::mesh::id::NodeId;
use crate::mesh::member::{Peer, State};
use crate::mesh::message::{DecodeError, Message};
use crate::mesh::runtime::MeshHandle;
use crate::rpc::coordinator::{Coordinator, validate_off_runtime};
use crate::rpc::frame::{self, MAX_FRAME_BYTES};
use crate::rpc::hostaddr::parse_host;
use crate::rpc::identity::Role;
use crate::rpc::protocol::{
    MemberReport, PROTOCOL_VERSION, Request, Response, StatusReport, duration_ms,
};
use crate::rpc::tls::{self, PeerCert};
use crate::rpc::transport::{Transport, response_name};

/// Most connections a node accepts at once; past this new ones are refused.
pub const MAX_INCOMING_CONNECTIONS: usize = 2048;
/// Handshakes in progress at once; past this new connection attempts are refused.
pub const MAX_PENDING_HANDSHAKES: usize = 256;
/// Longest a TLS handshake may take before the attempt is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a peer may take to send its request frame.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest gossip datagram accepted (the mesh keeps its own under ~1100 bytes).
pub const MAX_DATAGRAM_BYTES: usize = 1452;

/// What a node's request handlers share.
pub struct NodeContext {
    pub transport: Transport,
    pub mesh: MeshHandle,
    pub coordinator: Coordinator,
    pub node_id: NodeId,
    pub addr: SocketAddr,
    pub env: String,
    pub profile: String,
    pub run_options: RunOptions,
    /// Bounds how many `RunChecks` requests from coordinators run here at once.
    pub check_slots: Arc<Semaphore>,
    /// Asks the node's health task to re-run its periodic checks for a refresh id.
    pub refresh_tx: tokio::sync::mpsc::Sender<u64>,
}

/// Accepts connections until `shutdown` completes.
pub async fn serve(ctx: Arc<NodeContext>, shutdown: impl Future<Output = ()>) {
    // Connections this node dials are served like accepted ones: a peer sends its gossip
    // and requests over whichever connection the pair already has. A weak reference, as
    // the context owns the transport that holds this hook.
    let weak = Arc::downgrade(&ctx);
    ctx.transport.on_dialed(move |conn| {
        let Some(ctx) = weak.upgrade() else { return };
        match tls::peer_cert(&conn) {
            Ok(peer) => {
                tokio::spawn(serve_connection(ctx, conn, peer));
            }
            Err(e) => tracing::warn!("not serving {}: {e}", conn.remote_address()),
        }
    });
    let slots = Arc::new(Semaphore::new(MAX_INCOMING_CONNECTIONS));
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            incoming = ctx.transport.endpoint().accept() => {
                let Some(incoming) = incoming else { break };
                // Unauthenticated peers can hold at most MAX_PENDING_HANDSHAKES connection
                // slots, each for at most HANDSHAKE_TIMEOUT: the rest stay for peers that
                // proved who they are.
                let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                    tracing::warn!(
                        "refusing a connection from {}: {MAX_PENDING_HANDSHAKES} handshakes already in progress",
                        incoming.remote_address()
                    );
                    incoming.refuse();
                    continue;
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        "refusing a connection from {}: {MAX_INCOMING_CONNECTIONS} connections already open",
                        incoming.remote_address()
                    );
                    incoming.refuse();
                    continue;
                };
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    handle_connection(ctx, incoming, handshake).await;
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
}

async fn handle_connection(
    ctx: Arc<NodeContext>,
    incoming: quinn::Incoming,
    handshake: tokio::sync::OwnedSemaphorePermit,
) {
    let remote = incoming.remote_address();
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, "could not accept: {e}");
            return;
        }
    };
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::warn!("rejected {}", tls::describe_connection_error(remote, &e));
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "handshake timed out");
            return;
        }
    };
    drop(handshake);
    let peer = match tls::peer_cert(&conn) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(%remote, "closing connection: {e}");
            conn.close(1u32.into(), b"unreadable certificate");
            return;
        }
    };
    if matches!(peer.role, Role::Node) {
        ctx.transport.adopt_incoming(remote, peer.node_id, &conn);
    }
    serve_connection(ctx, conn, peer).await;
}

/// Serves an established connection, whichever side dialed it: gossip datagrams from a
/// node go to the mesh, and each bidirectional stream carries one request.
async fn serve_connection(ctx: Arc<NodeContext>, conn: quinn::Connection, peer: PeerCert) {
    let remote = conn.remote_address();
    if matches!(peer.role, Role::Node) {
        let ctx2 = ctx.clone();
        let conn2 = conn.clone();
        tokio::spawn(async move { read_datagrams(ctx2, conn2, peer.node_id).await });
    }
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let ctx = ctx.clone();
        let peer = peer.clone();
        tokio::spawn(async move { handle_stream(ctx, peer, remote, send, recv).await });
    }
}

async fn read_datagrams(ctx: Arc<NodeContext>, conn: quinn::Connection, sender: NodeId) {
    let mut spoof_warned = false;
    while let Ok(bytes) = conn.read_datagram().await {
        if bytes.len() > MAX_DATAGRAM_BYTES {
            continue;
        }
        let remote = conn.remote_address();
        let from = Peer {
            id: sender,
            addr: remote,
        };
        match Message::decode_from(&bytes, from, ctx.node_id) {
            Ok(msg) => ctx.mesh.datagram(msg, remote),
            Err(DecodeError::NotFromSender { claimed, sender }) => {
                if !spoof_warned {
                    tracing::warn!(
                        "dropping gossip from {remote} claiming to be {}: its certificate says {}",
                        claimed.short(),
                        sender.short()
                    );
                    spoof_warned = true;
                }
            }
            Err(e) => tracing::debug!("undecodable datagram from {remote}: {e}"),
        }
    }
}

async fn handle_stream(
    ctx: Arc<NodeContext>,
    peer: PeerCert,
    remote: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let req = match tokio::time::timeout(
        REQUEST_READ_TIMEOUT,
        frame::read_frame::<Request>(&mut recv, MAX_FRAME_BYTES),
    )
    .await
    {
        Ok(Ok(req)) => req,
        Ok(Err(e)) => {
            let _ = frame::write_frame(
                &mut send,
                &Response::Error(format!("unreadable request: {e}")),
            )
            .await;
            let _ = send.finish();
            return;
        }
        Err(_) => return,
    };
    let resp = dispatch(&ctx, &peer, remote, req).await;
    if let Err(e) = frame::write_frame(&mut send, &resp).await {
        tracing::debug!(%remote, "could not send {} response: {e}", response_name(&resp));
    }
    let _ = send.finish();
}

async fn dispatch(
    ctx: &NodeContext,
    peer: &PeerCert,
    remote: SocketAddr,
    req: Request,
) -> Response {
    let node_only = |what: &str| {
        Response::Error(format!(
            "{what} is only accepted from mesh nodes, not from clients"
        ))
    };
    match req {
        Request::Hello { .. } => Response::Hello {
            version: PROTOCOL_VERSION,
            node_id: ctx.node_id,
            addr: ctx.addr.to_string(),
        },
        Request::PushPull(pp) => {
            if !matches!(peer.role, Role::Node) {
                return node_only("push-pull");
            }
            if pp.from.id != peer.node_id {
                return Response::Error("push-pull sender does not match its certificate".into());
            }
            match ctx.mesh.push_pull(pp).await {
                Ok(reply) => Response::PushPull(reply),
                Err(e) => Response::Error(e.to_string()),
            }
        }
        Request::RunChecks { checks, timeout_ms } => {
            if !matches!(peer.role, Role::Node) {
                return node_only("running checks");
            }
            run_checks_here(ctx, checks, Duration::from_millis(timeout_ms)).await
        }
        Request::RunRefresh { refresh_id } => {
            if !matches!(peer.role, Role::Node) {
                return node_only("refresh");
            }
            let _ = ctx.refresh_tx.try_send(refresh_id);
            Response::Done
        }
        Request::Add { host } => match ctx.coordinator.check_rate(remote.ip(), "adds") {
            Ok(()) => add_host(ctx, &host).await,
            Err(e) => Response::Error(e),
        },
        Request::Del { host } => match resolve_host(host).await {
            Err(e) => Response::Error(e.to_string()),
            Ok(addr) => match ctx.mesh.remove(addr).await {
                Ok(Ok(_)) => Response::Done,
                Ok(Err(e)) => Response::Error(e.to_string()),
                Err(e) => Response::Error(e.to_string()),
            },
        },
        Request::Status => match status(ctx).await {
            Ok(s) => Response::Status(s),
            Err(e) => Response::Error(e),
        },
        Request::Submit {
            checks,
            filter,
            deadline_ms,
        } => {
            ctx.coordinator
                .submit(
                    remote.ip(),
                    checks,
                    filter,
                    Duration::from_millis(deadline_ms),
                )
                .await
        }
        Request::Get { handle, wait_ms } => {
            ctx.coordinator
                .get(&handle, Duration::from_millis(wait_ms))
                .await
        }
        Request::Refresh => match ctx.coordinator.check_rate(remote.ip(), "refreshes") {
            Ok(()) => ctx.coordinator.refresh().await,
            Err(e) => Response::Error(e),
        },
    }
}

/// Runs checks sent by a coordinator, bounded by `timeout` and by the node's check slots.
pub async fn run_checks_here(
    ctx: &NodeContext,
    checks: crate::checks::spec::CheckSet,
    timeout: Duration,
) -> Response {
    if let Err(e) = validate_off_runtime(&checks).await {
        return Response::Error(format!("invalid checks: {e}"));
    }
    let started = Instant::now();
    let Ok(_slot) = tokio::time::timeout(timeout, ctx.check_slots.clone().acquire_owned()).await
    else {
        return Response::Error("this node is busy running other operations' checks".into());
    };
    let results = run_checks(&checks, &ctx.run_options).await;
    Response::CheckResults {
        results,
        took_ms: duration_ms(started.elapsed()),
    }
}

/// Parses a host named by a client; a name lookup runs on the blocking pool.
async fn resolve_host(host: String) -> Result<SocketAddr, String> {
    match tokio::task::spawn_blocking(move || parse_host(&host)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("resolving the host failed: {e}")),
    }
}

async fn add_host(ctx: &NodeContext, host: &str) -> Response {
    let addr = match resolve_host(host.to_string()).await {
        Ok(a) => a,
        Err(e) => return Response::Error(e.to_string()),
    };
    if addr == ctx.addr {
        return Response::Error(format!(
            "{addr} is this node itself; it is always part of its own mesh"
        ));
    }
    match ctx.mesh.view().await {
        Ok(view) => {
            if view
                .members
                .iter()
                .any(|m| m.member.peer.addr == addr && m.member.state == State::Alive)
            {
                return Response::Error(format!("host {addr} is already in the mesh and alive"));
            }
        }
        Err(e) => return Response::Error(e.to_string()),
    }
    let join = match ctx.mesh.join_request().await {
        Ok(j) => j,
        Err(e) => return Response::Error(e.to_string()),
    };
    match ctx
        .transport
        .call(addr, &Request::PushPull(join), Duration::from_secs(5))
        .await
    {
        Ok(Response::PushPull(reply)) => match ctx.mesh.push_pull_reply(reply).await {
            Ok(()) => Response::Done,
            Err(e) => Response::Error(e.to_string()),
        },
        Ok(Response::Error(e)) => Response::Error(format!("{addr} refused to join: {e}")),
        Ok(other) => Response::Error(format!(
            "{addr} answered the join with {}",
            response_name(&other)
        )),
        Err(e) => Response::Error(format!("could not add {addr}: {e}")),
    }
}

/// The mesh as this node sees it, for `list` and `mesh status`.
pub async fn status(ctx: &NodeContext) -> Result<StatusReport, String> {
    let view = ctx.mesh.view().await.map_err(|e| e.to_string())?;
    let mut members: Vec<MemberReport> = view
        .members
        .iter()
        .map(|v| MemberReport {
            addr: v.member.peer.addr.to_string(),
            node_id: v.member.peer.id,
            state: v.member.state,
            incarnation: v.member.incarnation,
            is_self: v.is_self,
            last_heard_ago: v.last_heard_ago,
            rtt: v.member.rtt,
            state_for: Some(v.state_for),
            tags: v.member.tags.clone(),
            health: v.member.health.clone(),
            suspected_by: v.member.suspected_by,
            confirmations: v.member.confirmations,
        })
        .collect();
    members.sort_by_key(|m| m.addr.parse::<SocketAddr>().ok());
    Ok(StatusReport {
        env: ctx.env.clone(),
        node_id: ctx.node_id,
        addr: ctx.addr.to_string(),
        profile: ctx.profile.clone(),
        local_health: view.local_health,
        local_health_max: view.local_health_max,
        connections: ctx.transport.open_connections(),
        members,
    })
}
