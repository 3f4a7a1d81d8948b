//! The node's side of every connection: accepting QUIC connections (with a cap), feeding
//! verified gossip datagrams to the mesh task, and answering one request per stream.
//! What an operation does is in [`crate::ops::coordinator`]; gossip logic is in
//! [`crate::mesh`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::base::NodeId;
use crate::base::clock::duration_ms;
use crate::checks::run::{RunOptions, run_checks};
use crate::mesh::RemoveError;
use crate::mesh::member::{Peer, State};
use crate::mesh::message::{DecodeError, Message};
use crate::node::driver::MeshClient;
use crate::ops::coordinator::{Coordinator, ShuttingDown, validate_off_runtime};
use crate::ops::error::OpsError;
use crate::ops::handle::Handle;
use crate::rpc::frame::{self, MAX_FRAME_BYTES};
use crate::rpc::hostaddr::{HostError, parse_host};
use crate::rpc::identity::Role;
use crate::rpc::protocol::{
    ErrorCode, MemberReport, PROTOCOL_VERSION, Request, Response, StatusReport,
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
    pub mesh: MeshClient,
    pub coordinator: Coordinator<MeshClient>,
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

/// Why a request was refused, by whose fault; each maps to a wire [`ErrorCode`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("unreadable request: {0}")]
    Unreadable(String),
    #[error("{0} is only accepted from mesh nodes, not from clients")]
    NodeOnly(&'static str),
    #[error("push-pull sender does not match its certificate")]
    SenderMismatch,
    #[error("invalid checks: {0}")]
    InvalidChecks(String),
    #[error("this node is busy running other operations' checks")]
    ChecksBusy,
    #[error(transparent)]
    BadHost(#[from] HostError),
    #[error("resolving the host failed: {0}")]
    Resolver(String),
    #[error("{0} is this node itself; it is always part of its own mesh")]
    AddSelf(SocketAddr),
    #[error("host {0} is already in the mesh and alive")]
    AlreadyAlive(SocketAddr),
    #[error("{addr} refused to join: {message}")]
    JoinRefused { addr: SocketAddr, message: String },
    #[error("{addr} answered the join with {answer}")]
    JoinAnswer {
        addr: SocketAddr,
        answer: &'static str,
    },
    #[error("could not add {addr}: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Remove(#[from] RemoveError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<ShuttingDown> for RequestError {
    fn from(_: ShuttingDown) -> RequestError {
        RequestError::ShuttingDown
    }
}

impl RequestError {
    /// The wire code of this error.
    pub fn code(&self) -> ErrorCode {
        use RequestError as E;
        match self {
            E::Unreadable(_) | E::InvalidChecks(_) | E::BadHost(_) | E::AddSelf(_) => {
                ErrorCode::Invalid
            }
            E::AlreadyAlive(_) => ErrorCode::Invalid,
            E::NodeOnly(_) | E::SenderMismatch => ErrorCode::Forbidden,
            E::ChecksBusy => ErrorCode::RateLimited,
            E::Remove(RemoveError::UnknownAddress(_)) => ErrorCode::NotFound,
            E::Remove(RemoveError::IsSelf(_)) => ErrorCode::Invalid,
            E::Remove(RemoveError::SelfRemoved) => ErrorCode::Unavailable,
            E::Resolver(_) | E::ShuttingDown | E::Unreachable { .. } => ErrorCode::Unavailable,
            E::JoinRefused { .. } | E::JoinAnswer { .. } => ErrorCode::Peer,
            E::Ops(e) => e.code(),
        }
    }

    /// The error as an answer on the wire.
    pub fn into_response(self) -> Response {
        Response::error(self.code(), self.to_string())
    }
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
    let (connecting, verdict) = match ctx.transport.accept(incoming) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, "could not accept: {e}");
            return;
        }
    };
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::warn!("rejected {}", verdict.failure(remote, &e));
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
                &RequestError::Unreadable(e.to_string()).into_response(),
            )
            .await;
            let _ = send.finish();
            return;
        }
        Err(_) => return,
    };
    let resp = dispatch(&ctx, &peer, remote, req)
        .await
        .unwrap_or_else(RequestError::into_response);
    if let Err(e) = frame::write_frame(&mut send, &resp).await {
        tracing::debug!(%remote, "could not send {} response: {e}", response_name(&resp));
    }
    let _ = send.finish();
}

/// Answers one request: who may ask what is checked here, the work is done by the mesh
/// driver and the coordinator.
pub async fn dispatch(
    ctx: &NodeContext,
    peer: &PeerCert,
    remote: SocketAddr,
    req: Request,
) -> Result<Response, RequestError> {
    let node_only = |what: &'static str| {
        if matches!(peer.role, Role::Node) {
            Ok(())
        } else {
            Err(RequestError::NodeOnly(what))
        }
    };
    Ok(match req {
        Request::Hello { .. } => Response::Hello {
            version: PROTOCOL_VERSION,
            node_id: ctx.node_id,
            addr: ctx.addr.to_string(),
        },
        Request::PushPull(pp) => {
            node_only("push-pull")?;
            if pp.from.id != peer.node_id {
                return Err(RequestError::SenderMismatch);
            }
            Response::PushPull(ctx.mesh.push_pull(pp).await?)
        }
        Request::RunChecks { checks, timeout_ms } => {
            node_only("running checks")?;
            run_checks_here(ctx, checks, Duration::from_millis(timeout_ms)).await?
        }
        Request::RunRefresh { refresh_id } => {
            node_only("refresh")?;
            let _ = ctx.refresh_tx.try_send(refresh_id);
            Response::Done
        }
        Request::Add { host } => {
            ctx.coordinator.check_rate(remote.ip(), "adds")?;
            add_host(ctx, &host).await?;
            Response::Done
        }
        Request::Del { host } => {
            let addr = resolve_host(host).await?;
            ctx.mesh.remove(addr).await??;
            Response::Done
        }
        Request::Status => Response::Status(status(ctx).await?),
        Request::Submit {
            checks,
            filter,
            deadline_ms,
        } => {
            let s = ctx
                .coordinator
                .submit(
                    remote.ip(),
                    checks,
                    filter,
                    Duration::from_millis(deadline_ms),
                )
                .await?;
            Response::Submitted {
                handle: s.handle.into(),
                coordinator: s.coordinator,
                targeted: s.targeted,
            }
        }
        Request::Get { handle, wait_ms } => {
            let handle: Handle = handle.parse().map_err(OpsError::from)?;
            Response::Operation(
                ctx.coordinator
                    .get(&handle, Duration::from_millis(wait_ms))
                    .await?,
            )
        }
        Request::Refresh => {
            ctx.coordinator.check_rate(remote.ip(), "refreshes")?;
            let r = ctx.coordinator.refresh().await?;
            Response::RefreshStarted {
                refresh_id: r.refresh_id,
                targeted: r.targeted,
            }
        }
    })
}

/// Runs checks sent by a coordinator, bounded by `timeout` and by the node's check slots.
pub async fn run_checks_here(
    ctx: &NodeContext,
    checks: crate::checks::spec::CheckSet,
    timeout: Duration,
) -> Result<Response, RequestError> {
    validate_off_runtime(&checks)
        .await
        .map_err(|e| RequestError::InvalidChecks(e.to_string()))?;
    let started = Instant::now();
    let Ok(_slot) = tokio::time::timeout(timeout, ctx.check_slots.clone().acquire_owned()).await
    else {
        return Err(RequestError::ChecksBusy);
    };
    let results = run_checks(&checks, &ctx.run_options).await;
    Ok(Response::CheckResults {
        results,
        took_ms: duration_ms(started.elapsed()),
    })
}

/// Parses a host named by a client; a name lookup runs on the blocking pool.
async fn resolve_host(host: String) -> Result<SocketAddr, RequestError> {
    match tokio::task::spawn_blocking(move || parse_host(&host)).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(RequestError::Resolver(e.to_string())),
    }
}

/// `ctl add`: sends HOST a join request carrying this node's state and merges its answer.
async fn add_host(ctx: &NodeContext, host: &str) -> Result<(), RequestError> {
    let addr = resolve_host(host.to_string()).await?;
    if addr == ctx.addr {
        return Err(RequestError::AddSelf(addr));
    }
    let view = ctx.mesh.view().await?;
    if view
        .members
        .iter()
        .any(|m| m.member.peer.addr == addr && m.member.state == State::Alive)
    {
        return Err(RequestError::AlreadyAlive(addr));
    }
    let join = ctx.mesh.join_request().await?;
    match ctx
        .transport
        .call(addr, &Request::PushPull(join), Duration::from_secs(5))
        .await
    {
        Ok(Response::PushPull(reply)) => Ok(ctx.mesh.push_pull_reply(reply).await?),
        Ok(Response::Error { message, .. }) => Err(RequestError::JoinRefused { addr, message }),
        Ok(other) => Err(RequestError::JoinAnswer {
            addr,
            answer: response_name(&other),
        }),
        Err(e) => Err(RequestError::Unreachable {
            addr,
            reason: e.to_string(),
        }),
    }
}

/// The mesh as this node sees it, for `list` and `mesh status`.
pub async fn status(ctx: &NodeContext) -> Result<StatusReport, ShuttingDown> {
    let view = ctx.mesh.view().await?;
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
