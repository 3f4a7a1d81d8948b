//! The node's side of every connection: accepting QUIC connections (with a cap), feeding
//! verified gossip datagrams to the mesh task, and answering one request per stream (a
//! `mesh watch` stream is handed to [`crate::node::watch`]) — after settling the protocol
//! version in the hello and checking that the peer's role may make the request. What an
//! operation does is in [`crate::ops::coordinator`]; gathering `ctl health` in
//! [`crate::node::health_report`]; gossip logic is in [`crate::mesh`].

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
use crate::node::health::Periodic;
use crate::node::health_report;
use crate::node::metrics::{CheckSource, HandshakeFailure, Metrics, Side, frame_len};
use crate::node::refusals::{Refusals, not_joined};
use crate::ops::coordinator::{Coordinator, Paced, ShuttingDown, validate_off_runtime};
use crate::ops::error::OpsError;
use crate::ops::handle::Handle;
use crate::rpc::frame::{self, MAX_FRAME_BYTES};
use crate::rpc::hostaddr::{HostError, parse_host};
use crate::rpc::identity::{Holder, Role};
use crate::rpc::protocol::{
    ErrorCode, MemberReport, ProtocolRange, Request, Response, StatusReport, Submitter,
    split_results,
};
use crate::rpc::tls::{self, PeerCert};
use crate::rpc::transport::{Transport, TransportError, response_name};

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
    /// How checks run here; a reload may change it.
    pub run_options: tokio::sync::watch::Receiver<RunOptions>,
    /// Bounds how many `RunChecks` requests from coordinators run here at once.
    pub check_slots: Arc<Semaphore>,
    /// Asks the node's health task to re-run its periodic checks for a refresh id.
    pub refresh_tx: tokio::sync::mpsc::Sender<u64>,
    /// The node's metrics.
    pub metrics: Arc<Metrics>,
    /// The latest run of the periodic checks.
    pub periodic: tokio::sync::watch::Receiver<Periodic>,
    /// The `--join` contacts this node was started with (empty: it may stand alone).
    pub join: Vec<SocketAddr>,
    /// Peers that refused this node, or that it refused when dialing them.
    pub refusals: Arc<Refusals>,
    /// Peers whose connections to this node were refused.
    pub rejected: Arc<Refusals>,
    /// Bounds how many `mesh watch` streams this node serves at once.
    pub watch_slots: Semaphore,
}

/// Why a request was refused, by whose fault; each maps to a wire [`ErrorCode`].
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("unreadable request: {0}")]
    Unreadable(String),
    #[error("{0} is only accepted from mesh nodes, not from clients")]
    NodeOnly(&'static str),
    #[error(
        "{what} needs an operator certificate; this connection presented the certificate of \
         {holder}, which may only read (list, status, get): run werify ctl with --cert and \
         --key of an operator certificate (werify certs issue --operator NAME)"
    )]
    NeedsOperator { what: &'static str, holder: Holder },
    #[error(transparent)]
    Incompatible(#[from] NoCommonVersion),
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
    #[error(
        "could not add {addr} yet: {reason}; this node keeps trying to join it in the \
         background (`werify ctl list` shows it once it answers; `werify ctl del {addr}` \
         stops trying)"
    )]
    AddPending { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Remove(#[from] RemoveError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("a watch is answered on a stream of its own, not as one response")]
    StreamOnly,
}

/// A hello from a peer whose protocol versions miss this node's.
#[derive(Debug, thiserror::Error)]
#[error(
    "no common werify protocol version: this node speaks {ours}, you speak {theirs}; \
     upgrade the older one"
)]
pub struct NoCommonVersion {
    pub ours: ProtocolRange,
    pub theirs: ProtocolRange,
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
            E::Unreadable(_)
            | E::InvalidChecks(_)
            | E::BadHost(_)
            | E::AddSelf(_)
            | E::StreamOnly => ErrorCode::Invalid,
            E::AlreadyAlive(_) => ErrorCode::Invalid,
            E::NodeOnly(_) | E::SenderMismatch | E::NeedsOperator { .. } => ErrorCode::Forbidden,
            E::Incompatible(_) => ErrorCode::Incompatible,
            E::ChecksBusy => ErrorCode::RateLimited,
            E::Remove(RemoveError::UnknownAddress(_)) => ErrorCode::NotFound,
            E::Remove(RemoveError::IsSelf(_)) => ErrorCode::Invalid,
            E::Remove(RemoveError::SelfRemoved) => ErrorCode::Unavailable,
            E::Resolver(_) | E::ShuttingDown | E::Unreachable { .. } | E::AddPending { .. } => {
                ErrorCode::Unavailable
            }
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
                tokio::spawn(serve_connection(ctx, conn, peer, true));
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
                    ctx.metrics.handshake_failed(Side::Accept, HandshakeFailure::Busy);
                    tracing::warn!(
                        "refusing a connection from {}: {MAX_PENDING_HANDSHAKES} handshakes already in progress",
                        incoming.remote_address()
                    );
                    incoming.refuse();
                    continue;
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    ctx.metrics.handshake_failed(Side::Accept, HandshakeFailure::Busy);
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
            ctx.metrics
                .handshake_failed(Side::Accept, HandshakeFailure::Local);
            tracing::debug!(%remote, "could not accept: {e}");
            return;
        }
    };
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            ctx.metrics
                .handshake_failed(Side::Accept, HandshakeFailure::of(&e));
            let failure = verdict.failure(remote, &e);
            if failure.is_refusal() {
                ctx.rejected
                    .record(remote, &failure.to_string(), Instant::now());
            } else {
                tracing::debug!("handshake failed: {failure}");
            }
            return;
        }
        Err(_) => {
            ctx.metrics
                .handshake_failed(Side::Accept, HandshakeFailure::Timeout);
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
    if let Some(id) = peer.node_id() {
        ctx.transport.adopt_incoming(remote, id, &conn);
    }
    serve_connection(ctx, conn, peer, false).await;
}

/// Serves an established connection, whichever side dialed it (`dialed`: this node):
/// gossip datagrams from a node go to the mesh, and each bidirectional stream carries one
/// request. The connection is tracked meanwhile, so that a new deny list or trust set
/// cuts it off.
async fn serve_connection(
    ctx: Arc<NodeContext>,
    conn: quinn::Connection,
    peer: PeerCert,
    dialed: bool,
) {
    let _tracked = ctx
        .transport
        .track(&conn, dialed, peer.role() == Role::Node);
    if let Some(id) = peer.node_id() {
        let ctx2 = ctx.clone();
        let conn2 = conn.clone();
        tokio::spawn(async move { read_datagrams(ctx2, conn2, id).await });
    }
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let ctx = ctx.clone();
        let peer = peer.clone();
        let conn = conn.clone();
        tokio::spawn(async move { handle_stream(ctx, peer, conn, send, recv).await });
    }
}

async fn read_datagrams(ctx: Arc<NodeContext>, conn: quinn::Connection, sender: NodeId) {
    let mut spoof_warned = false;
    while let Ok(bytes) = conn.read_datagram().await {
        // Stamped first: an ack's round-trip time ends here.
        let received = Instant::now();
        ctx.metrics.gossip_received(bytes.len());
        if bytes.len() > MAX_DATAGRAM_BYTES {
            continue;
        }
        let remote = conn.remote_address();
        let from = Peer {
            id: sender,
            addr: remote,
        };
        match Message::decode_from(&bytes, from, ctx.node_id) {
            Ok(msg) => ctx.mesh.datagram(msg, remote, received),
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
    conn: quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let remote = conn.remote_address();
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
    if let Request::Watch { since } = req {
        if let Err(e) = crate::node::watch::serve_watch(&ctx, &mut send, since).await {
            tracing::debug!(%remote, "watch ended: {e}");
        }
        let _ = send.finish();
        return;
    }
    let push_pull = matches!(req, Request::PushPull(_));
    if push_pull {
        ctx.metrics.push_pull_received(frame_len(&req));
    }
    let retire = matches!(req, Request::Retire);
    let resp = dispatch(&ctx, &peer, remote, req)
        .await
        .unwrap_or_else(RequestError::into_response);
    if retire && matches!(resp, Response::Done) {
        // The peer no longer accepts what we presented on this connection.
        ctx.transport.forget(remote, &conn);
    }
    if push_pull {
        ctx.metrics.push_pull_sent(frame_len(&resp));
    }
    if let Err(e) = frame::write_frame(&mut send, &resp).await {
        tracing::debug!(%remote, "could not send {} response: {e}", response_name(&resp));
    }
    let _ = send.finish();
}

/// Answers one request: who may ask what is checked here, the work is done by the mesh
/// driver and the coordinator.
///
/// | request | who may send it |
/// | --- | --- |
/// | `Hello`, `Status`, `Get` | anyone the handshake let in |
/// | `Submit`, `Add`, `Del`, `Refresh` | operators and `ctl` clients ([`Role::may_operate`]) |
/// | `PushPull`, `RunChecks`, `RunRefresh`, `Retire` | nodes |
pub async fn dispatch(
    ctx: &NodeContext,
    peer: &PeerCert,
    remote: SocketAddr,
    req: Request,
) -> Result<Response, RequestError> {
    let node_only = |what: &'static str| {
        if peer.role() == Role::Node {
            Ok(())
        } else {
            Err(RequestError::NodeOnly(what))
        }
    };
    let may_operate = peer.role().may_operate();
    let needs_operator = |what: &'static str| RequestError::NeedsOperator {
        what,
        holder: peer.holder.clone(),
    };
    Ok(match req {
        Request::Hello {
            version,
            min_version,
        } => hello(
            ctx,
            peer,
            remote,
            ProtocolRange::of_hello(version, min_version),
        )?,
        Request::PushPull(pp) => {
            node_only("push-pull")?;
            if Some(pp.from.id) != peer.node_id() {
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
            if !may_operate {
                return Err(needs_operator("adding a host"));
            }
            ctx.coordinator.admit(remote.ip(), Paced::Add).await?;
            add_host(ctx, &host).await?;
            Response::Done
        }
        Request::Del { host } => {
            if !may_operate {
                return Err(needs_operator("removing a host"));
            }
            let addr = resolve_host(host).await?;
            match ctx.mesh.remove(addr).await? {
                Ok(_) => {}
                // Not a member, but an address an earlier add keeps trying: stop that.
                Err(RemoveError::UnknownAddress(_)) if ctx.mesh.forget_contact(addr).await? => {}
                Err(e) => return Err(e.into()),
            }
            Response::Done
        }
        Request::Status => Response::Status(status(ctx).await?),
        Request::Submit {
            checks,
            filter,
            deadline_ms,
        } => {
            if !may_operate {
                return Err(needs_operator("submitting an operation"));
            }
            let submitter = Submitter {
                operator: peer.holder.operator().map(str::to_string),
                from: remote.to_string(),
                certificate: peer.fingerprint.clone(),
            };
            let s = ctx
                .coordinator
                .submit(
                    remote.ip(),
                    submitter,
                    checks,
                    filter,
                    Duration::from_millis(deadline_ms),
                )
                .await
                .inspect_err(|_| ctx.metrics.operation_rejected())?;
            Response::Submitted {
                handle: s.handle.into(),
                coordinator: s.coordinator,
                targeted: s.targeted,
            }
        }
        Request::Get {
            handle,
            wait_ms,
            known_answers,
        } => {
            let handle: Handle = handle.parse().map_err(OpsError::from)?;
            Response::Operation(
                ctx.coordinator
                    .get(&handle, Duration::from_millis(wait_ms), known_answers)
                    .await?,
            )
        }
        // What to forget is this stream's connection: `handle_stream` does it.
        Request::Retire => {
            node_only("retiring a connection")?;
            Response::Done
        }
        Request::Health { failing_only } => {
            ctx.coordinator
                .admit(remote.ip(), Paced::HealthReport)
                .await?;
            Response::Health(health_report::gather(ctx, failing_only).await?)
        }
        Request::PeriodicResults { failing_only } => Response::PeriodicResults(
            health_report::local_checks(&ctx.periodic.borrow(), failing_only),
        ),
        Request::Watch { .. } => return Err(RequestError::StreamOnly),
        Request::Refresh => {
            if !may_operate {
                return Err(needs_operator("starting a refresh"));
            }
            ctx.coordinator.admit(remote.ip(), Paced::Refresh).await?;
            let r = ctx.coordinator.refresh().await?;
            Response::RefreshStarted {
                refresh_id: r.refresh_id,
                targeted: r.targeted,
            }
        }
    })
}

/// Answers a hello: the highest protocol version both sides speak, or a refusal naming
/// both ranges (logged here too, at most once a minute per peer).
fn hello(
    ctx: &NodeContext,
    peer: &PeerCert,
    remote: SocketAddr,
    theirs: ProtocolRange,
) -> Result<Response, NoCommonVersion> {
    let ours = ctx.transport.protocols();
    let Some(version) = ours.highest_common(theirs) else {
        ctx.rejected.record(
            remote,
            &format!(
                "peer {remote} ({}): it speaks werify protocol {theirs}, this node speaks \
                 {ours}; upgrade the older one",
                peer.holder
            ),
            Instant::now(),
        );
        return Err(NoCommonVersion { ours, theirs });
    };
    if peer.role() == Role::Node {
        ctx.transport.note_peer_version(remote, version);
    }
    Ok(Response::Hello {
        version,
        node_id: ctx.node_id,
        addr: ctx.addr.to_string(),
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
    let running = Instant::now();
    let options = ctx.run_options.borrow().clone();
    let results = run_checks(&checks, &options).await;
    ctx.metrics
        .checks_ran(CheckSource::Operation, &checks, &results, running.elapsed());
    let (results, observations) = split_results(results);
    Ok(Response::CheckResults {
        results,
        took_ms: duration_ms(started.elapsed()),
        observations,
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
    let started = Instant::now();
    let mut attempts = 0u32;
    let answer = loop {
        attempts += 1;
        let join = Request::PushPull(ctx.mesh.join_request().await?);
        ctx.metrics.push_pull_sent(frame_len(&join));
        let left = ADD_PATIENCE.saturating_sub(started.elapsed());
        let answer = ctx
            .transport
            .call(addr, &join, ADD_CALL_TIMEOUT.min(left))
            .await;
        match &answer {
            Ok(resp) => ctx.metrics.push_pull_received(frame_len(resp)),
            Err(e) if add_may_retry(e) => {
                let pause = add_retry_pause(attempts);
                if started.elapsed() + pause + ADD_MIN_ATTEMPT < ADD_PATIENCE {
                    tracing::debug!(%addr, attempts, "add: {e}; trying again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            }
            Err(_) => {}
        }
        break answer;
    };
    match answer {
        Ok(Response::PushPull(reply)) => Ok(ctx.mesh.push_pull_reply(reply).await?),
        Ok(Response::Error { message, .. }) => Err(RequestError::JoinRefused { addr, message }),
        Ok(other) => Err(RequestError::JoinAnswer {
            addr,
            answer: response_name(&other),
        }),
        // The host may only be slow (a mesh's seed in a join burst, a host still
        // starting): it becomes a join contact, which the membership tries every rejoin
        // interval until it is a member or `del` drops it.
        Err(e) if add_may_retry(&e) && ctx.mesh.add_contact(addr).await? => {
            Err(RequestError::AddPending {
                addr,
                reason: format!(
                    "{e}; tried {attempts} times in {:.1}s",
                    started.elapsed().as_secs_f64()
                ),
            })
        }
        Err(e) => Err(RequestError::Unreachable {
            addr,
            reason: e.to_string(),
        }),
    }
}

/// How long `ctl add` keeps trying a host whose handshake does not finish: a host, or this
/// node, too busy to read its socket loses handshake packets, and one lost twice outlasts
/// a dial. Below `ctl`'s default `--timeout` (10 s), so the operator reads why the add
/// failed rather than that the node did not answer.
pub const ADD_PATIENCE: Duration = Duration::from_secs(8);
/// Longest one join exchange (dial, push-pull request and answer) of an add may take.
const ADD_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A new attempt starts only if at least this much of [`ADD_PATIENCE`] is left for it.
const ADD_MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// Whether an add's join may be sent again after `e`: the host did not answer in time or
/// the connection was lost, not refused (another env, a denied certificate, no common
/// version: asking again would only be refused again).
fn add_may_retry(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::DialTimeout { .. }
            | TransportError::Timeout { .. }
            | TransportError::Connection(_)
    ) && !e.is_refusal()
}

/// The pause before an add's attempt number `attempts + 1`: 100 ms doubling to at most
/// 800 ms, each with up to as much again at random, so that the many adds of a burst that
/// failed together do not come back together.
fn add_retry_pause(attempts: u32) -> Duration {
    let base = 100u64 << attempts.saturating_sub(1).min(3);
    Duration::from_millis(base + rand::random_range(0..=base))
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
            rtt_us: v.member.rtt,
            state_for: Some(v.state_for),
            tags: v.member.tags.clone(),
            health: v.member.health.clone(),
            suspected_by: v.member.suspected_by,
            confirmations: v.member.confirmations,
            protocol: if v.is_self {
                None
            } else {
                ctx.transport.peer_version(v.member.peer.addr)
            },
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
        not_joined: not_joined(
            &view,
            &ctx.join,
            ctx.refusals.latest(Instant::now()).as_deref(),
        ),
        members,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::base::Env;
    use crate::checks::parse_operations;
    use crate::mesh::config::{Config, Profile};
    use crate::mesh::member::Tags;
    use crate::mesh::membership::Membership;
    use crate::node::driver;
    use crate::ops::store::{Store, StoreLimits};
    use std::path::PathBuf;

    /// A scratch directory removed on drop.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub(crate) fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "werify-unit-{}-{name}-{}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A node's request context on 127.0.0.1 (a free port), env `dev` derived with a test
    /// secret, the `local` profile, its mesh driver running, no snapshot; its result store
    /// lives in the returned scratch dir. Nothing serves connections until
    /// [`serve`] runs with it.
    pub(crate) fn test_node(name: &str) -> (Arc<NodeContext>, Scratch) {
        let dir = Scratch::new(name);
        let node_id = NodeId::random();
        let transport = crate::rpc::transport::node_transport_with(node_id, b"node unit tests");
        let addr = transport.local_addr().expect("bound");
        let me = Peer { id: node_id, addr };
        let membership = Membership::new(
            me,
            Tags::new(),
            Config::for_profile(Profile::Local),
            rand::random(),
            Instant::now(),
        );
        let metrics = Arc::new(crate::node::metrics::Metrics::new());
        let mesh = driver::spawn(membership, transport.clone(), None, metrics.clone());
        let store =
            Store::open(&dir.0.join("operations.redb"), StoreLimits::default()).expect("store");
        let (refresh_tx, _refresh_rx) = tokio::sync::mpsc::channel(16);
        let (_, run_options) = tokio::sync::watch::channel(RunOptions::default());
        let coordinator = Coordinator::new(
            store,
            transport.clone(),
            mesh.clone(),
            node_id,
            addr,
            4,
            run_options.clone(),
            refresh_tx.clone(),
        );
        let ctx = Arc::new(NodeContext {
            transport,
            mesh,
            coordinator,
            node_id,
            addr,
            env: "dev".into(),
            profile: "local".into(),
            run_options,
            check_slots: Arc::new(Semaphore::new(4)),
            refresh_tx,
            metrics,
            periodic: tokio::sync::watch::channel(crate::node::health::Periodic::NotRunYet).1,
            join: Vec::new(),
            refusals: Arc::new(Refusals::new(crate::node::refusals::Side::Dialed)),
            rejected: Arc::new(Refusals::new(crate::node::refusals::Side::Accepted)),
            watch_slots: Semaphore::new(crate::node::watch::MAX_WATCHERS),
        });
        (ctx, dir)
    }

    fn cert(role: Role) -> PeerCert {
        PeerCert {
            env: "dev".parse::<Env>().expect("env"),
            holder: match role {
                Role::Node => Holder::Node(NodeId::random()),
                Role::Client => Holder::Client(NodeId::random()),
                Role::Operator => Holder::Operator("alice".into()),
            },
            fingerprint: "cd".repeat(32),
        }
    }

    fn remote() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn checks() -> crate::checks::spec::CheckSet {
        parse_operations(
            r#"{"root": {"type": "file_exists", "path": "/"}}"#,
            "ops.json",
        )
        .expect("operations")
    }

    async fn code_of(ctx: &NodeContext, peer: &PeerCert, req: Request) -> ErrorCode {
        match dispatch(ctx, peer, remote(), req).await {
            Err(e) => e.code(),
            Ok(r) => panic!("expected an error, got {}", response_name(&r)),
        }
    }

    #[tokio::test]
    async fn a_client_may_not_send_mesh_requests() {
        let (ctx, _dir) = test_node("forbidden");
        let client = cert(Role::Client);
        let pp = ctx.mesh.join_request().await.expect("a push-pull");
        for (what, req) in [
            ("push-pull", Request::PushPull(pp)),
            (
                "run checks",
                Request::RunChecks {
                    checks: checks(),
                    timeout_ms: 1_000,
                },
            ),
            ("refresh", Request::RunRefresh { refresh_id: 1 }),
        ] {
            let err = dispatch(&ctx, &client, remote(), req)
                .await
                .expect_err(what);
            assert!(matches!(err, RequestError::NodeOnly(_)), "{what}: {err}");
            assert_eq!(err.code(), ErrorCode::Forbidden, "{what}");
        }
    }

    #[tokio::test]
    async fn a_node_may_send_mesh_requests_but_only_as_itself() {
        let (ctx, _dir) = test_node("node-role");
        let node = cert(Role::Node);
        let r = dispatch(
            &ctx,
            &node,
            remote(),
            Request::RunChecks {
                checks: checks(),
                timeout_ms: 5_000,
            },
        )
        .await
        .expect("a node may run checks here");
        let Response::CheckResults { results, .. } = r else {
            panic!("expected CheckResults, got {}", response_name(&r));
        };
        assert_eq!(results["root"], crate::checks::Outcome::Success(true));
        let r = dispatch(&ctx, &node, remote(), Request::RunRefresh { refresh_id: 7 })
            .await
            .expect("a node may ask for a refresh");
        assert!(matches!(r, Response::Done));
        // A push-pull whose sender is not the certificate's node is refused.
        let pp = ctx.mesh.join_request().await.expect("a push-pull");
        assert_eq!(
            code_of(&ctx, &node, Request::PushPull(pp)).await,
            ErrorCode::Forbidden
        );
    }

    #[tokio::test]
    async fn bad_handles_and_adding_oneself_are_invalid() {
        let (ctx, _dir) = test_node("invalid");
        let client = cert(Role::Client);
        for bad in ["", "not a handle", "abc1-zzzz-extra", "ABC1-ZZZZ"] {
            assert_eq!(
                code_of(
                    &ctx,
                    &client,
                    Request::Get {
                        handle: bad.into(),
                        wait_ms: 0,
                        known_answers: None,
                    },
                )
                .await,
                ErrorCode::Invalid,
                "{bad:?}"
            );
        }
        let err = dispatch(
            &ctx,
            &client,
            remote(),
            Request::Add {
                host: ctx.addr.to_string(),
            },
        )
        .await
        .expect_err("adding oneself");
        assert!(matches!(err, RequestError::AddSelf(_)), "{err}");
        assert_eq!(err.code(), ErrorCode::Invalid);
        // Removing oneself is invalid too; removing a stranger names nothing.
        assert_eq!(
            code_of(
                &ctx,
                &client,
                Request::Del {
                    host: ctx.addr.to_string()
                }
            )
            .await,
            ErrorCode::Invalid
        );
        assert_eq!(
            code_of(
                &ctx,
                &client,
                Request::Del {
                    host: "127.0.0.1:9".into()
                }
            )
            .await,
            ErrorCode::NotFound
        );
    }

    #[tokio::test]
    async fn hello_and_status_answer_any_role() {
        let (ctx, _dir) = test_node("hello");
        for role in [Role::Client, Role::Node, Role::Operator] {
            let r = dispatch(
                &ctx,
                &cert(role),
                remote(),
                Request::Hello {
                    version: crate::rpc::protocol::PROTOCOL_VERSION,
                    min_version: None,
                },
            )
            .await
            .expect("hello");
            let Response::Hello { node_id, addr, .. } = r else {
                panic!("expected Hello, got {}", response_name(&r));
            };
            assert_eq!((node_id, addr), (ctx.node_id, ctx.addr.to_string()));
            let r = dispatch(&ctx, &cert(role), remote(), Request::Status)
                .await
                .expect("status");
            let Response::Status(s) = r else {
                panic!("expected Status, got {}", response_name(&r));
            };
            assert_eq!(s.members.len(), 1);
            assert!(s.members[0].is_self);
        }
    }

    #[tokio::test]
    async fn only_operators_and_ctl_clients_may_change_the_mesh() {
        let (ctx, _dir) = test_node("roles");
        let node = cert(Role::Node);
        let changes = [
            (
                "submitting an operation",
                Request::Submit {
                    checks: checks(),
                    filter: Default::default(),
                    deadline_ms: 1_000,
                },
            ),
            (
                "adding a host",
                Request::Add {
                    host: "127.0.0.1:9".into(),
                },
            ),
            (
                "removing a host",
                Request::Del {
                    host: "127.0.0.1:9".into(),
                },
            ),
            ("starting a refresh", Request::Refresh),
        ];
        for (what, req) in changes {
            let err = dispatch(&ctx, &node, remote(), req).await.expect_err(what);
            assert_eq!(err.code(), ErrorCode::Forbidden, "{what}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{what} needs an operator certificate")),
                "{message}"
            );
            assert!(message.contains(&node.holder.to_string()), "{message}");
            assert!(
                message.contains("werify certs issue --operator"),
                "{message}"
            );
        }
        // Reads are fine for a node certificate.
        let r = dispatch(&ctx, &node, remote(), Request::Status)
            .await
            .expect("a node may read the status");
        assert!(matches!(r, Response::Status(_)));
        // An operator submits, and the record says who and from where.
        let operator = cert(Role::Operator);
        let r = dispatch(
            &ctx,
            &operator,
            remote(),
            Request::Submit {
                checks: checks(),
                filter: Default::default(),
                deadline_ms: 5_000,
            },
        )
        .await
        .expect("an operator may submit");
        let Response::Submitted { handle, .. } = r else {
            panic!("expected Submitted, got {}", response_name(&r));
        };
        let r = dispatch(
            &ctx,
            &node,
            remote(),
            Request::Get {
                handle,
                wait_ms: 0,
                known_answers: None,
            },
        )
        .await
        .expect("a node may read an operation");
        let Response::Operation(report) = r else {
            panic!("expected Operation, got {}", response_name(&r));
        };
        assert_eq!(
            report.submitted_by,
            Some(Submitter {
                operator: Some("alice".into()),
                from: remote().to_string(),
                certificate: operator.fingerprint.clone(),
            })
        );
        // Operators are not nodes.
        let err = dispatch(
            &ctx,
            &operator,
            remote(),
            Request::RunRefresh { refresh_id: 1 },
        )
        .await
        .expect_err("an operator may not send mesh requests");
        assert!(matches!(err, RequestError::NodeOnly(_)), "{err}");
    }

    #[tokio::test]
    async fn hellos_settle_the_highest_common_version_or_refuse_with_both_ranges() {
        let (ctx, _dir) = test_node("versions");
        let hello = |version, min_version| Request::Hello {
            version,
            min_version,
        };
        let ours = ProtocolRange::SUPPORTED;
        let version_of = |r: Response| match r {
            Response::Hello { version, .. } => version,
            other => panic!("expected Hello, got {}", response_name(&other)),
        };
        let peer = cert(Role::Node);
        // A dialer that speaks only the oldest version (and says nothing of a range).
        let r = dispatch(&ctx, &peer, remote(), hello(ours.min, None)).await;
        assert_eq!(version_of(r.expect("hello")), ours.min);
        // A newer dialer whose range reaches ours.
        let r = dispatch(&ctx, &peer, remote(), hello(ours.max + 3, Some(ours.max))).await;
        assert_eq!(version_of(r.expect("hello")), ours.max);
        // No overlap: refused with a typed code and both ranges.
        let err = dispatch(
            &ctx,
            &peer,
            remote(),
            hello(ours.max + 2, Some(ours.max + 1)),
        )
        .await
        .expect_err("no common version");
        assert_eq!(err.code(), ErrorCode::Incompatible);
        assert_eq!(
            err.to_string(),
            format!(
                "no common werify protocol version: this node speaks {ours}, you speak {} to \
                 {}; upgrade the older one",
                ours.max + 1,
                ours.max + 2
            )
        );
    }
}
