//! One QUIC endpoint per process and the connections it keeps: dialing with a bounded
//! handshake, an application hello on every new connection that settles the protocol
//! version, a capped cache of live connections reused for datagrams and requests — one
//! connection per pair of nodes, whichever side dialed it — datagrams held while a dial is
//! in flight, one-request-per-stream calls, requests answered by a stream of frames, and
//! switching to new certificates, trusted CAs or deny list while running (cutting off
//! connections they no longer allow).
//! What a request means is in [`crate::node::dispatch`]; TLS details are in [`crate::rpc::tls`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

mod error;
pub use error::{BindError, TransportError};

use crate::base::NodeId;
use crate::rpc::frame::{self, FrameError, MAX_FRAME_BYTES};
use crate::rpc::identity::{DenyList, Identity, Role};
use crate::rpc::protocol::{ProtocolRange, Request, Response};
use crate::rpc::tls::{
    self, ConnectionFailure, Handshakes, LinkEnd, PeerRejection, TlsError, Verdict,
};

/// Longest a dial (handshake + hello) may take before the peer counts as unreachable.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How many outgoing connections are cached; past this the least recently used goes.
pub const MAX_CACHED_CONNECTIONS: usize = 1024;
/// After a failed dial, datagrams to that address are dropped for this long instead of
/// dialing again (requests still dial: they report the error to a user).
const NEGATIVE_CACHE: Duration = Duration::from_millis(500);
/// Application close code of a connection whose peer's certificate this side no longer
/// accepts (a new deny list or trust set); the reason says why.
pub const CLOSE_NO_LONGER_ACCEPTED: u32 = 2;
/// Longest close reason sent (QUIC keeps close frames within one packet).
const MAX_CLOSE_REASON_BYTES: usize = 300;
/// How long a retired connection stays open for the requests already on it.
pub const RETIRE_GRACE: Duration = DUPLICATE_GRACE;
/// The first protocol version that understands [`Request::Retire`].
pub const RETIRE_SINCE_VERSION: u32 = 5;

/// Datagrams held for a peer while its connection is being dialed; past this the oldest
/// go. A join or a probe to a new member is exactly when a handshake is in flight, and
/// dropping those messages would leave a late joiner unknown until gossip reaches it
/// again.
pub const MAX_PENDING_DATAGRAMS: usize = 64;

/// When both nodes of a pair dialed each other, the connection that is not kept is closed
/// this long after the choice, so that requests already on it finish.
pub const DUPLICATE_GRACE: Duration = Duration::from_secs(15);

/// A datagram waiting for a dial.
struct Outgoing {
    payload: Bytes,
    /// Send it only on a connection to this node.
    meant_for: Option<NodeId>,
}

/// What the cache knows of one peer address.
#[derive(Default)]
struct SlotState {
    conn: Option<quinn::Connection>,
    peer_id: Option<NodeId>,
    failed_at: Option<Instant>,
    last_used: Option<Instant>,
    /// A dial is scheduled or in flight: datagrams wait in `pending`.
    dialing: bool,
    pending: VecDeque<Outgoing>,
    /// A connection the peer dialed to us while our own dial was in flight; settled by
    /// [`Transport::settle`] when the dial ends.
    offered: Option<(quinn::Connection, NodeId)>,
    /// The protocol version the hello settled with the peer, on whichever connection.
    version: Option<u32>,
}

impl SlotState {
    fn live(&self) -> Option<(quinn::Connection, NodeId)> {
        match (&self.conn, self.peer_id) {
            (Some(c), Some(id)) if c.close_reason().is_none() => Some((c.clone(), id)),
            _ => None,
        }
    }
}

/// One peer address: its state, and a lock that lets one dial run at a time.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    dial: tokio::sync::Mutex<()>,
}

impl Slot {
    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type ConnectionHook = Arc<dyn Fn(quinn::Connection) + Send + Sync>;

/// Why a dial failed, as told to the hook of [`Transport::on_dial_failed`].
#[derive(Clone, Copy, Debug)]
pub enum DialFailure<'a> {
    /// The handshake failed, or the connection closed before the hello was answered
    /// (the acceptor refuses a certificate after the dialer's handshake completed).
    Connection(&'a quinn::ConnectionError),
    /// Handshake and hello did not finish within [`DIAL_TIMEOUT`].
    TimedOut,
}

type DialFailureHook = Arc<dyn Fn(DialFailure<'_>) + Send + Sync>;
type DialOutcomeHook = Arc<dyn Fn(SocketAddr, Result<(), &TransportError>) + Send + Sync>;

/// Who serves the requests and datagrams a peer sends back on a connection this transport
/// dialed.
enum DialedServing {
    /// Nobody: a client (`werify ctl`), to which peers send nothing unasked.
    Nobody,
    /// A node whose server has not started yet (its join dials first): the connections
    /// wait for the hook.
    Waiting(Vec<quinn::Connection>),
    /// The node's server.
    Hook(ConnectionHook),
}

/// A QUIC endpoint plus the connections this process holds, one per peer address
/// whichever side dialed it.
#[derive(Clone)]
pub struct Transport {
    endpoint: quinn::Endpoint,
    /// Our node id (a client's per-run id): it never changes, whatever certificate is
    /// installed.
    node_id: NodeId,
    /// The protocol versions this side speaks.
    protocols: ProtocolRange,
    /// Each dial and accept gets its own TLS config from these (see [`tls::Verdict`]).
    handshakes: Arc<Handshakes>,
    /// Every established connection served here: judged again when the trusted CAs or
    /// the deny list change.
    tracked: Arc<Mutex<HashMap<usize, TrackedConnection>>>,
    cache: Arc<Mutex<HashMap<SocketAddr, Arc<Slot>>>>,
    /// Where each connection this transport dials goes, so that a node also serves the
    /// requests and datagrams its peer sends back on it (see [`Transport::on_dialed`]).
    dialed: Arc<Mutex<DialedServing>>,
    /// Told of every failed dial (the node's metrics); see [`Transport::on_dial_failed`].
    dial_failed: Arc<OnceLock<DialFailureHook>>,
    /// Told how every dial ended; see [`Transport::on_dial_outcome`].
    dial_outcome: Arc<OnceLock<DialOutcomeHook>>,
}

/// What [`Transport::install`] did to established connections whose peer's certificate
/// is no longer accepted: each peer's address and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    /// Closed at once: the certificate is on the deny list.
    pub cut: Vec<(SocketAddr, String)>,
    /// No longer used for anything new and closed after [`RETIRE_GRACE`]: signed by a CA
    /// no longer trusted (or refused otherwise), as when a rotation drops the old CA.
    pub retired: Vec<(SocketAddr, String)>,
}

/// One established connection, as [`Transport::track`] registered it.
#[derive(Clone)]
struct TrackedConnection {
    conn: quinn::Connection,
    /// This side dialed it: the peer must be a node.
    dialed: bool,
    /// The peer presented a node's certificate: it is told when the connection retires.
    peer_is_node: bool,
}

/// Removes a connection from [`Transport::track`]'s registry when dropped.
pub struct Tracked {
    tracked: Arc<Mutex<HashMap<usize, TrackedConnection>>>,
    id: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl Transport {
    /// A node's endpoint: accepts connections on `bind` and dials from the same socket.
    ///
    /// `reset_key` must stay the same across restarts of the node (it lives in the data
    /// dir): QUIC stateless resets are keyed by it, so when a node restarts, packets its
    /// peers still send on their old connections are answered with a reset those peers
    /// accept at once, instead of the old connections hanging until their idle timeout.
    pub fn server(
        identity: Arc<Identity>,
        bind: SocketAddr,
        reset_key: &[u8; 32],
    ) -> Result<Transport, TransportError> {
        Transport::node(
            identity,
            DenyList::default(),
            ProtocolRange::SUPPORTED,
            bind,
            reset_key,
        )
    }

    /// [`Transport::server`] that refuses the certificates `deny` names and speaks
    /// `protocols` (a node held at older versions, in tests).
    pub fn node(
        identity: Arc<Identity>,
        deny: DenyList,
        protocols: ProtocolRange,
        bind: SocketAddr,
        reset_key: &[u8; 32],
    ) -> Result<Transport, TransportError> {
        let bind_err = |cause: BindError| TransportError::Bind { addr: bind, cause };
        let tls_err = |e: TlsError| bind_err(BindError::Tls(Arc::new(e)));
        let handshakes =
            Handshakes::for_end(&identity, deny, LinkEnd::NodeDialer).map_err(tls_err)?;
        let server = handshakes.server_config().map_err(tls_err)?;
        let client = handshakes.client_config().map_err(tls_err)?;
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            reset_key,
        )));
        // Connection ids are validated with a keyed hash: the key must survive restarts too,
        // or the restarted node drops its peers' old packets instead of resetting them.
        let cid_key = cid_key(reset_key);
        endpoint_config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        let runtime = quinn::default_runtime().ok_or_else(|| bind_err(BindError::NoRuntime))?;
        let socket = std::net::UdpSocket::bind(bind).and_then(|socket| {
            quinn::Endpoint::new(endpoint_config, Some(server), socket, runtime)
        });
        let mut endpoint = socket.map_err(|e| bind_err(BindError::socket(bind, e)))?;
        endpoint.set_default_client_config(client);
        Ok(Transport::with_endpoint(
            endpoint,
            &identity,
            handshakes,
            protocols,
            DialedServing::Waiting(Vec::new()),
        ))
    }

    /// A client-only endpoint (for `werify ctl`), on an ephemeral port.
    pub fn client(
        identity: Arc<Identity>,
        toward: SocketAddr,
    ) -> Result<Transport, TransportError> {
        let bind: SocketAddr = if toward.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let bind_err = |cause: BindError| TransportError::Bind { addr: bind, cause };
        let tls_err = |e: TlsError| bind_err(BindError::Tls(Arc::new(e)));
        let handshakes =
            Handshakes::for_end(&identity, DenyList::default(), LinkEnd::Ctl).map_err(tls_err)?;
        let client = handshakes.client_config().map_err(tls_err)?;
        let mut endpoint =
            quinn::Endpoint::client(bind).map_err(|e| bind_err(BindError::socket(bind, e)))?;
        endpoint.set_default_client_config(client);
        Ok(Transport::with_endpoint(
            endpoint,
            &identity,
            handshakes,
            ProtocolRange::SUPPORTED,
            DialedServing::Nobody,
        ))
    }

    fn with_endpoint(
        endpoint: quinn::Endpoint,
        identity: &Identity,
        handshakes: Handshakes,
        protocols: ProtocolRange,
        dialed: DialedServing,
    ) -> Transport {
        Transport {
            endpoint,
            node_id: identity.node_id(),
            protocols,
            handshakes: Arc::new(handshakes),
            tracked: Arc::new(Mutex::new(HashMap::new())),
            cache: Arc::new(Mutex::new(HashMap::new())),
            dialed: Arc::new(Mutex::new(dialed)),
            dial_failed: Arc::new(OnceLock::new()),
            dial_outcome: Arc::new(OnceLock::new()),
        }
    }

    /// The underlying endpoint (the server accepts on it).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// The TLS identity this process presents now.
    pub fn identity(&self) -> Arc<Identity> {
        self.handshakes.identity()
    }

    /// The CAs and deny list peers are checked against now.
    pub fn trust(&self) -> Arc<tls::Trust> {
        self.handshakes.trust()
    }

    /// The protocol versions this side speaks.
    pub fn protocols(&self) -> ProtocolRange {
        self.protocols
    }

    /// The protocol version settled with the peer at `addr`, if a connection with it said.
    pub fn peer_version(&self, addr: SocketAddr) -> Option<u32> {
        let slot = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&addr)
            .cloned()?;
        slot.state().version
    }

    /// Records the protocol version a peer's hello settled, for a peer this side already
    /// holds a connection with (nothing is recorded for `ctl` clients).
    pub fn note_peer_version(&self, addr: SocketAddr, version: u32) {
        let slot = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&addr)
            .cloned();
        if let Some(slot) = slot {
            slot.state().version = Some(version);
        }
    }

    /// Registers an established connection, so that [`Transport::install`] judges its
    /// peer again: `dialed` when this side dialed it (the peer must be a node),
    /// `peer_is_node` when the peer presented a node's certificate. Registered until the
    /// returned guard is dropped.
    pub fn track(&self, conn: &quinn::Connection, dialed: bool, peer_is_node: bool) -> Tracked {
        let id = conn.stable_id();
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                TrackedConnection {
                    conn: conn.clone(),
                    dialed,
                    peer_is_node,
                },
            );
        Tracked {
            tracked: self.tracked.clone(),
            id,
        }
    }

    /// Whether `identity` can replace the one this transport presents: same env and role,
    /// and for a node the same node id (the mesh knows a node by it).
    pub fn check_installable(&self, identity: &Identity) -> Result<(), TlsError> {
        if identity.role() == Role::Node && identity.node_id() != self.node_id {
            return Err(TlsError::OtherNodeId {
                ours: self.node_id,
                offered: identity.node_id(),
            });
        }
        self.handshakes.check_installable(identity)
    }

    /// Stops using `conn` for anything new: the peer at `addr` retired it (its side no
    /// longer accepts our certificate on it). The next request or datagram dials anew.
    pub fn forget(&self, addr: SocketAddr, conn: &quinn::Connection) {
        let slot = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&addr)
            .cloned();
        if let Some(slot) = slot {
            let mut s = slot.state();
            let id = conn.stable_id();
            if s.conn.as_ref().is_some_and(|c| c.stable_id() == id) {
                s.conn = None;
            }
            if s.offered.as_ref().is_some_and(|(c, _)| c.stable_id() == id) {
                s.offered = None;
            }
        }
    }

    /// Retires `tracked`: nothing new goes over it from this side, a node peer that speaks
    /// [`RETIRE_SINCE_VERSION`] is told to stop using it too, and it is closed after
    /// [`RETIRE_GRACE`] so that requests already on it finish.
    fn retire(&self, tracked: TrackedConnection, reason: Vec<u8>) {
        let addr = tracked.conn.remote_address();
        self.forget(addr, &tracked.conn);
        let tell = tracked.peer_is_node
            && self
                .peer_version(addr)
                .is_some_and(|v| v >= RETIRE_SINCE_VERSION);
        let conn = tracked.conn;
        tokio::spawn(async move {
            if tell {
                let notice = call_on(&conn, addr, &Request::Retire);
                if let Err(e) = tokio::time::timeout(DIAL_TIMEOUT, notice).await {
                    tracing::debug!(%addr, "retire notice not answered: {e}");
                }
            }
            tokio::time::sleep(RETIRE_GRACE).await;
            conn.close(CLOSE_NO_LONGER_ACCEPTED.into(), &reason);
        });
    }

    /// Presents `identity` and checks peers against its CAs minus `deny` from now on, and
    /// ends every tracked connection whose peer that no longer accepts, close code
    /// [`CLOSE_NO_LONGER_ACCEPTED`] with the reason in the close frame: one whose
    /// certificate is denied is cut at once; any other is retired (see [`Installed`]), so
    /// that dropping a CA no peer presents any more interrupts nothing. `identity` must be
    /// installable ([`Transport::check_installable`]).
    pub fn install(&self, identity: &Identity, deny: DenyList) -> Result<Installed, TlsError> {
        self.check_installable(identity)?;
        self.handshakes.install(identity, deny)?;
        // Dials always pass their own config (see `dial`); accepts too, but the endpoint's
        // default is kept current for anything that would use it.
        self.endpoint
            .set_server_config(Some(self.handshakes.server_config()?));
        let tracked: Vec<TrackedConnection> = self
            .tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut installed = Installed::default();
        for t in tracked {
            if t.conn.close_reason().is_some() {
                continue;
            }
            let Some(rejection) = self.handshakes.recheck(&t.conn, t.dialed) else {
                continue;
            };
            let why = no_longer_accepted(&rejection);
            let mut reason = why.clone().into_bytes();
            reason.truncate(MAX_CLOSE_REASON_BYTES);
            let addr = t.conn.remote_address();
            if matches!(rejection, PeerRejection::Denied(_)) {
                self.forget(addr, &t.conn);
                t.conn.close(CLOSE_NO_LONGER_ACCEPTED.into(), &reason);
                installed.cut.push((addr, why));
            } else {
                self.retire(t, reason);
                installed.retired.push((addr, why));
            }
        }
        Ok(installed)
    }

    /// Starts the handshake of a connection a peer is dialing to us, with a verifier of
    /// its own: when the handshake fails, [`Verdict::failure`] says why in detail.
    pub fn accept(
        &self,
        incoming: quinn::Incoming,
    ) -> Result<(quinn::Connecting, Verdict), TransportError> {
        let peer = incoming.remote_address();
        let verdict = self.handshakes.verdict();
        let config = match self.handshakes.server_config_for(&verdict) {
            Ok(config) => config,
            Err(e) => {
                incoming.refuse();
                return Err(TransportError::Setup {
                    peer,
                    source: Arc::new(e),
                });
            }
        };
        let connecting = incoming
            .accept_with(Arc::new(config))
            .map_err(|e| verdict.failure(peer, &e))?;
        Ok((connecting, verdict))
    }

    /// Has `hook` called with every connection this transport dials, those dialed
    /// before this call included. The first hook set stays; a second call returns false.
    pub fn on_dialed(&self, hook: impl Fn(quinn::Connection) + Send + Sync + 'static) -> bool {
        let hook: ConnectionHook = Arc::new(hook);
        let mut dialed = self.dialed.lock().unwrap_or_else(|p| p.into_inner());
        let earlier = match std::mem::replace(&mut *dialed, DialedServing::Hook(hook.clone())) {
            DialedServing::Hook(first) => {
                *dialed = DialedServing::Hook(first);
                return false;
            }
            DialedServing::Waiting(earlier) => earlier,
            DialedServing::Nobody => Vec::new(),
        };
        drop(dialed);
        for conn in earlier.into_iter().filter(|c| c.close_reason().is_none()) {
            hook(conn);
        }
        true
    }

    /// Has `hook` called once for every dial that fails in its handshake or hello (not
    /// for a hello answered with a refusal). The first hook set stays.
    pub fn on_dial_failed(&self, hook: impl Fn(DialFailure<'_>) + Send + Sync + 'static) {
        let _ = self.dial_failed.set(Arc::new(hook));
    }

    /// Has `hook` called when any dial ends, with the address dialed and how it ended
    /// (refusals are told apart by [`TransportError::is_refusal`]). The first hook set
    /// stays.
    pub fn on_dial_outcome(
        &self,
        hook: impl Fn(SocketAddr, Result<(), &TransportError>) + Send + Sync + 'static,
    ) {
        let _ = self.dial_outcome.set(Arc::new(hook));
    }

    fn dial_failed(&self, why: DialFailure<'_>) {
        if let Some(hook) = self.dial_failed.get() {
            hook(why);
        }
    }

    fn hand_to_hook(&self, conn: &quinn::Connection) {
        let mut dialed = self.dialed.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *dialed {
            DialedServing::Nobody => {}
            DialedServing::Waiting(waiting) => {
                waiting.retain(|c| c.close_reason().is_none());
                waiting.push(conn.clone());
            }
            DialedServing::Hook(hook) => {
                let hook = hook.clone();
                drop(dialed);
                hook(conn.clone());
            }
        }
    }

    fn slot(&self, addr: SocketAddr) -> Arc<Slot> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache.get(&addr) {
            return e.clone();
        }
        if cache.len() >= MAX_CACHED_CONNECTIONS {
            evict_one(&mut cache);
        }
        cache.entry(addr).or_default().clone()
    }

    /// A live, verified connection to `addr` (dialed by either side), dialing if needed.
    pub async fn connection(
        &self,
        addr: SocketAddr,
    ) -> Result<(quinn::Connection, NodeId), TransportError> {
        let slot = self.slot(addr);
        {
            let mut s = slot.state();
            s.last_used = Some(Instant::now());
            if let Some(live) = s.live() {
                return Ok(live);
            }
        }
        let _dialing = slot.dial.lock().await;
        {
            // Another caller may have dialed, or the peer dialed us, while we waited.
            let mut s = slot.state();
            if let Some(live) = s.live() {
                s.dialing = false;
                let pending = std::mem::take(&mut s.pending);
                drop(s);
                send_all(&live.0, live.1, addr, pending);
                return Ok(live);
            }
            s.conn = None;
            s.dialing = true;
        }
        let result = self.dial(addr).await;
        if let Some(hook) = self.dial_outcome.get() {
            hook(addr, result.as_ref().map(|_| ()));
        }
        let mut s = slot.state();
        s.dialing = false;
        let pending = std::mem::take(&mut s.pending);
        match result {
            Ok((conn, id, version)) => {
                s.conn = Some(conn.clone());
                s.peer_id = Some(id);
                s.failed_at = None;
                s.version = Some(version);
                let offered = s.offered.take();
                if let Some((incoming, incoming_id)) = offered {
                    self.settle(&mut s, incoming, incoming_id);
                }
                let kept = s.live().unwrap_or((conn.clone(), id));
                drop(s);
                // The dialed connection is served even when the pair keeps the other one:
                // requests the peer already sent on it finish.
                self.hand_to_hook(&conn);
                send_all(&kept.0, kept.1, addr, pending);
                Ok(kept)
            }
            Err(err) => {
                s.failed_at = Some(Instant::now());
                if let Some((incoming, incoming_id)) = s.offered.take()
                    && incoming.close_reason().is_none()
                {
                    // The peer reached us although we could not reach it (yet): use its.
                    s.conn = Some(incoming.clone());
                    s.peer_id = Some(incoming_id);
                    s.failed_at = None;
                    drop(s);
                    send_all(&incoming, incoming_id, addr, pending);
                    return Ok((incoming, incoming_id));
                }
                if !pending.is_empty() {
                    tracing::debug!(%addr, "{} datagrams dropped: {err}", pending.len());
                }
                Err(err)
            }
        }
    }

    /// Dials `addr` and says hello: the connection, the peer's node id and the protocol
    /// version settled.
    async fn dial(
        &self,
        addr: SocketAddr,
    ) -> Result<(quinn::Connection, NodeId, u32), TransportError> {
        let attempt = async {
            let verdict = self.handshakes.verdict();
            let config =
                self.handshakes
                    .client_config_for(&verdict)
                    .map_err(|e| TransportError::Setup {
                        peer: addr,
                        source: Arc::new(e),
                    })?;
            let connecting = self
                .endpoint
                .connect_with(config, addr, tls::SERVER_NAME)
                .map_err(|cause| TransportError::DialStart { peer: addr, cause })?;
            let conn = connecting.await.map_err(|e| {
                self.dial_failed(DialFailure::Connection(&e));
                verdict.failure(addr, &e)
            })?;
            // The dialer's handshake can succeed before the acceptor has verified our
            // certificate: only a hello round trip proves the peer accepted us.
            let hello = Request::Hello {
                version: self.protocols.max,
                min_version: Some(self.protocols.min),
            };
            let answer = exchange(&conn, addr, &hello, Some(&verdict)).await;
            if answer.is_err()
                && let Some(closed) = conn.close_reason()
            {
                self.dial_failed(DialFailure::Connection(&closed));
            }
            match answer? {
                Response::Hello {
                    node_id, version, ..
                } if self.protocols.contains(version) => Ok((conn, node_id, version)),
                Response::Hello { version, .. } => {
                    conn.close(0u32.into(), b"no common protocol version");
                    Err(TransportError::VersionMismatch {
                        peer: addr,
                        theirs: version,
                        ours: self.protocols,
                    })
                }
                Response::Error { code, message } => Err(TransportError::Refused {
                    peer: addr,
                    code,
                    message,
                }),
                other => Err(TransportError::UnexpectedAnswer {
                    peer: addr,
                    answer: response_name(&other),
                }),
            }
        };
        match tokio::time::timeout(DIAL_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => {
                self.dial_failed(DialFailure::TimedOut);
                Err(TransportError::DialTimeout {
                    peer: addr,
                    after: DIAL_TIMEOUT,
                })
            }
        }
    }

    /// Sends one request to `addr` and waits for its response, within `timeout`.
    pub async fn call(
        &self,
        addr: SocketAddr,
        req: &Request,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let work = async {
            let (conn, _) = self.connection(addr).await?;
            call_on(&conn, addr, req).await
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                peer: addr,
                after: timeout,
            }),
        }
    }

    /// Sends a request whose answer is a stream of frames ([`Request::Watch`]) and returns
    /// the stream once the request is sent; `timeout` bounds connecting and sending.
    pub async fn open_stream(
        &self,
        addr: SocketAddr,
        req: &Request,
        timeout: Duration,
    ) -> Result<ResponseStream, TransportError> {
        let work = async {
            let (conn, _) = self.connection(addr).await?;
            let lost = |e: &quinn::ConnectionError| {
                TransportError::from(ConnectionFailure::new(addr, e, None))
            };
            let (mut send, recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
            frame::write_frame(&mut send, req).await.map_err(|source| {
                match conn.close_reason() {
                    Some(e) => lost(&e),
                    None => TransportError::Request { peer: addr, source },
                }
            })?;
            let _ = send.finish();
            Ok(ResponseStream {
                conn,
                peer: addr,
                recv,
                _send: send,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                peer: addr,
                after: timeout,
            }),
        }
    }

    /// Sends a gossip datagram to `addr` without waiting. While a connection to `addr` is
    /// being dialed the datagram waits (up to [`MAX_PENDING_DATAGRAMS`]) and leaves as
    /// soon as the handshake completes; for a short while after a failed dial it is
    /// dropped: SWIM treats loss as loss.
    ///
    /// With `meant_for`, the datagram leaves only on a connection to that node (the peer id
    /// this cache holds: the certificate's for an accepted connection, the hello's for a
    /// dialed one), and is dropped otherwise: a ping does not name its target on the wire,
    /// so this is what keeps a node that took over the address (a restart with a new
    /// identity) from answering a probe of the old one.
    pub fn send_datagram(&self, addr: SocketAddr, meant_for: Option<NodeId>, payload: Bytes) {
        let slot = self.slot(addr);
        let mut s = slot.state();
        if let Some((conn, id)) = s.live() {
            drop(s);
            send_checked(&conn, id, addr, Outgoing { payload, meant_for });
            return;
        }
        if !s.dialing && s.failed_at.is_some_and(|t| t.elapsed() < NEGATIVE_CACHE) {
            return;
        }
        if s.pending.len() >= MAX_PENDING_DATAGRAMS {
            s.pending.pop_front();
        }
        s.pending.push_back(Outgoing { payload, meant_for });
        if s.dialing {
            return;
        }
        s.dialing = true;
        drop(s);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.connection(addr).await {
                tracing::debug!(%addr, "datagrams dropped: {err}");
            }
        });
    }

    /// Offers a connection that the node at `addr` dialed to us (its certificate says it
    /// is node `id`), so that this side sends over it too instead of dialing a second
    /// one. See [`Transport::settle`] for which connection a pair keeps.
    pub fn adopt_incoming(&self, addr: SocketAddr, id: NodeId, conn: &quinn::Connection) {
        let slot = self.slot(addr);
        let mut s = slot.state();
        if s.dialing {
            // Our own dial is in flight: decide when it ends. Both connections serve
            // requests meanwhile.
            s.offered = Some((conn.clone(), id));
            return;
        }
        self.settle(&mut s, conn.clone(), id);
    }

    /// Decides between the connection held in `s` and one the peer dialed (`incoming`).
    ///
    /// - Nothing live held: the incoming one is used.
    /// - A live connection to another node id: that node was replaced (e.g. restarted with
    ///   a wiped data dir); its old connection would only hang until the idle timeout, so
    ///   it is closed and the incoming one used.
    /// - A live connection to the same node (both dialed at once): both ends keep the one
    ///   dialed by the lower node id, so each pair settles on one connection; the other is
    ///   closed after [`DUPLICATE_GRACE`], letting requests already on it finish.
    fn settle(&self, s: &mut SlotState, incoming: quinn::Connection, id: NodeId) {
        if incoming.close_reason().is_some() {
            return;
        }
        if let Some((held, held_id)) = s.live() {
            if held.stable_id() == incoming.stable_id() {
                return;
            }
            if held_id == id {
                // `held` was dialed by us (incoming ones are only held when nothing live
                // was): keep ours if our id is the lower.
                if self.node_id < id {
                    close_later(incoming);
                    return;
                }
                close_later(held);
            } else {
                held.close(0u32.into(), b"peer replaced");
            }
        }
        s.conn = Some(incoming);
        s.peer_id = Some(id);
        s.failed_at = None;
        s.last_used = Some(Instant::now());
    }

    /// The address the endpoint is bound to (with the port it got when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint
            .local_addr()
            .map_err(|e| TransportError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                cause: BindError::Socket(Arc::new(e)),
            })
    }

    /// How many QUIC connections the endpoint has open (both directions).
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    /// Closes every connection and waits up to `grace` for the closes to drain. The close
    /// frames leave at once; draining only matters to answer late packets, so a
    /// short-lived client passes a few milliseconds.
    pub async fn shutdown(&self, grace: Duration) {
        self.endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }
}

/// The close reason for a connection whose peer's certificate is no longer accepted.
fn no_longer_accepted(rejection: &PeerRejection) -> String {
    match rejection {
        PeerRejection::Denied(entry) => {
            format!("certificate no longer accepted: it is on this node's deny list ({entry})")
        }
        PeerRejection::NotSigned { .. } => "certificate no longer accepted: its CA is no \
                                            longer trusted by this node"
            .to_string(),
        other => format!("certificate no longer accepted: {other}"),
    }
}

/// The connection-id hashing key, derived from the reset key (domain-separated).
fn cid_key(reset_key: &[u8; 32]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"werify connection id key v1")
        .chain_update(reset_key)
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn evict_one(cache: &mut HashMap<SocketAddr, Arc<Slot>>) {
    let mut victim: Option<(SocketAddr, Option<Instant>)> = None;
    for (addr, slot) in cache.iter() {
        let s = slot.state();
        if s.dialing {
            continue;
        }
        if s.live().is_none() {
            victim = Some((*addr, None));
            break;
        }
        if victim.as_ref().is_none_or(|(_, t)| s.last_used < *t) {
            victim = Some((*addr, s.last_used));
        }
    }
    if let Some((addr, _)) = victim
        && let Some(slot) = cache.remove(&addr)
        && let Some(c) = &slot.state().conn
    {
        c.close(0u32.into(), b"connection cache full");
    }
}

/// Closes a duplicate connection of a pair after [`DUPLICATE_GRACE`].
fn close_later(conn: quinn::Connection) {
    tokio::spawn(async move {
        tokio::time::sleep(DUPLICATE_GRACE).await;
        conn.close(0u32.into(), b"duplicate connection");
    });
}

/// Sends datagrams that waited for a dial, on a connection to node `peer_id`.
fn send_all(
    conn: &quinn::Connection,
    peer_id: NodeId,
    addr: SocketAddr,
    pending: VecDeque<Outgoing>,
) {
    for out in pending {
        send_checked(conn, peer_id, addr, out);
    }
}

/// Sends one datagram on a connection to node `peer_id`, unless it is meant for another.
fn send_checked(conn: &quinn::Connection, peer_id: NodeId, addr: SocketAddr, out: Outgoing) {
    if let Some(meant) = out.meant_for
        && meant != peer_id
    {
        tracing::debug!(
            %addr,
            "datagram for {} not sent: the node there is now {}",
            meant.short(),
            peer_id.short()
        );
        return;
    }
    if let Err(err) = conn.send_datagram(out.payload) {
        tracing::debug!(%addr, "datagram not sent: {err}");
    }
}

/// The answer to a streaming request ([`Transport::open_stream`]): response frames until
/// the peer finishes the stream. Dropping it tells the peer to stop.
pub struct ResponseStream {
    conn: quinn::Connection,
    peer: SocketAddr,
    recv: quinn::RecvStream,
    _send: quinn::SendStream,
}

impl ResponseStream {
    /// The next frame, or `None` once the peer finished the stream cleanly. A lost
    /// connection (the peer went away) is an error saying why.
    pub async fn next(&mut self) -> Result<Option<Response>, TransportError> {
        match frame::read_frame::<Response>(&mut self.recv, MAX_FRAME_BYTES).await {
            Ok(r) => Ok(Some(r)),
            Err(FrameError::Closed) => Ok(None),
            Err(source) => Err(match self.conn.close_reason() {
                Some(e) => TransportError::from(ConnectionFailure::new(self.peer, &e, None)),
                None => TransportError::Request {
                    peer: self.peer,
                    source,
                },
            }),
        }
    }
}

/// One request/response on a fresh bidirectional stream of `conn`.
pub async fn call_on(
    conn: &quinn::Connection,
    peer: SocketAddr,
    req: &Request,
) -> Result<Response, TransportError> {
    exchange(conn, peer, req, None).await
}

/// [`call_on`]; `verdict`, on the dial that set `conn` up, phrases a refusal by the peer
/// that arrives only now (the dialer's handshake ends before the acceptor's checks).
async fn exchange(
    conn: &quinn::Connection,
    peer: SocketAddr,
    req: &Request,
    verdict: Option<&Verdict>,
) -> Result<Response, TransportError> {
    let lost =
        |e: &quinn::ConnectionError| TransportError::from(ConnectionFailure::new(peer, e, verdict));
    // A frame error on a closed connection is reported as why the connection closed.
    let failed = |source: FrameError| match conn.close_reason() {
        Some(e) => lost(&e),
        None => TransportError::Request { peer, source },
    };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    frame::write_frame(&mut send, req).await.map_err(failed)?;
    let _ = send.finish();
    frame::read_frame::<Response>(&mut recv, MAX_FRAME_BYTES)
        .await
        .map_err(failed)
}

/// The name of a response variant, for error messages.
pub fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Hello { .. } => "hello",
        Response::PushPull(_) => "push-pull",
        Response::CheckResults { .. } => "check results",
        Response::Done => "done",
        Response::Status(_) => "status",
        Response::Submitted { .. } => "submitted",
        Response::Operation(_) => "operation",
        Response::RefreshStarted { .. } => "refresh started",
        Response::Health(_) => "health",
        Response::PeriodicResults(_) => "periodic results",
        Response::Watching { .. } => "watching",
        Response::Event(_) => "event",
        Response::EventsMissed { .. } => "events missed",
        Response::Error { .. } => "error",
    }
}

/// A node endpoint for tests elsewhere in the crate: 127.0.0.1 on a free port, env `dev`
/// derived with `secret`, node id `id`.
#[cfg(test)]
pub(crate) fn node_transport_with(id: NodeId, secret: &[u8]) -> Transport {
    let identity = Identity::new(
        None,
        &crate::rpc::identity::CaSource::derived(Some(secret)),
        crate::rpc::identity::Role::Node,
        id,
        &[],
    )
    .expect("identity");
    Transport::server(
        Arc::new(identity),
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        &[7; 32],
    )
    .expect("transport")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::fault::Fault;
    use crate::rpc::protocol::{ErrorCode, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

    /// Hang guard for the exchanges below, not a speed assertion.
    const DEADLINE: Duration = Duration::from_secs(20);

    fn node_transport(id: NodeId) -> Transport {
        node_transport_with(id, b"transport test")
    }

    #[tokio::test]
    async fn a_datagram_meant_for_another_node_is_not_sent() {
        let (a_id, b_id) = (NodeId::random(), NodeId::random());
        let (a, b) = (node_transport(a_id), node_transport(b_id));
        let b_addr = b.endpoint().local_addr().expect("bound");
        // b accepts one connection and answers its hello, as a node's server does.
        let accepted = spawn_hello_answer(
            &b,
            Response::Hello {
                version: PROTOCOL_VERSION,
                node_id: b_id,
                addr: String::new(),
            },
        );
        // Meant for a node that is not (or no longer) at b's address: dropped, whether
        // it waits for the dial or the connection is already up.
        let someone_else = NodeId::random();
        a.send_datagram(b_addr, Some(someone_else), Bytes::from_static(b"old"));
        let (_, conn) = tokio::time::timeout(DEADLINE, accepted)
            .await
            .expect("dialed in time")
            .expect("accept task")
            .expect("handshake");
        let (_, id) = tokio::time::timeout(DEADLINE, a.connection(b_addr))
            .await
            .expect("connected in time")
            .expect("connection");
        assert_eq!(id, b_id);
        a.send_datagram(b_addr, Some(someone_else), Bytes::from_static(b"old"));
        // Meant for b, or for nobody in particular: delivered, and nothing before them.
        a.send_datagram(b_addr, Some(b_id), Bytes::from_static(b"for b"));
        a.send_datagram(b_addr, None, Bytes::from_static(b"gossip"));
        for expected in [&b"for b"[..], b"gossip"] {
            let got = tokio::time::timeout(DEADLINE, conn.read_datagram())
                .await
                .expect("datagram in time")
                .expect("datagram");
            assert_eq!(&got[..], expected);
        }
    }

    #[tokio::test]
    async fn a_refused_dial_is_typed_on_both_sides() {
        let a = node_transport_with(NodeId::random(), b"secret a");
        let b = node_transport_with(NodeId::random(), b"secret b");
        let b_addr = b.endpoint().local_addr().expect("bound");
        let accepted = tokio::spawn({
            let b = b.clone();
            async move {
                let incoming = b.endpoint().accept().await.expect("incoming");
                let from = incoming.remote_address();
                let (connecting, verdict) = b.accept(incoming).expect("accepting");
                match connecting.await {
                    Err(e) => verdict.failure(from, &e),
                    Ok(conn) => verdict.failure(from, &conn.closed().await),
                }
            }
        });
        let err = tokio::time::timeout(DEADLINE, a.connection(b_addr))
            .await
            .expect("refused in time")
            .expect_err("another secret is refused");
        match &err {
            TransportError::Connection(failure) => assert!(
                matches!(
                    **failure,
                    ConnectionFailure::WeRefused {
                        kind: tls::RejectionKind::NotSigned,
                        rejection: Some(tls::PeerRejection::NotSigned { .. }),
                        ..
                    }
                ),
                "{failure:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.fault(), Fault::Caller);
        assert_eq!(
            err.to_string(),
            format!(
                "peer {b_addr}'s certificate is not signed by this mesh's CA for env \"dev\" \
                 (different secret or CA)"
            )
        );
        let seen_by_b = tokio::time::timeout(DEADLINE, accepted)
            .await
            .expect("acceptor done in time")
            .expect("accept task");
        assert!(
            matches!(
                seen_by_b,
                ConnectionFailure::PeerRefused {
                    kind: tls::RejectionKind::NotSigned,
                    ..
                }
            ),
            "{seen_by_b:?}"
        );
        assert_eq!(seen_by_b.fault(), Fault::Caller);
    }

    /// Accepts one connection on `b` and answers its hello with `answer`, as a node's
    /// server does; the task ends with the hello heard and the connection.
    fn spawn_hello_answer(
        b: &Transport,
        answer: Response,
    ) -> tokio::task::JoinHandle<Option<(Request, quinn::Connection)>> {
        let endpoint = b.endpoint().clone();
        tokio::spawn(async move {
            let conn = endpoint.accept().await?.await.ok()?;
            let (mut send, mut recv) = conn.accept_bi().await.ok()?;
            let hello: Request = frame::read_frame(&mut recv, MAX_FRAME_BYTES).await.ok()?;
            frame::write_frame(&mut send, &answer).await.ok()?;
            send.finish().ok()?;
            Some((hello, conn))
        })
    }

    /// Answers the first hello on `b` with `answer`, keeping the connection open until the
    /// dialer closes it.
    fn answer_hello(b: &Transport, answer: Response) {
        let answered = spawn_hello_answer(b, answer);
        tokio::spawn(async move {
            if let Ok(Some((_, conn))) = answered.await {
                conn.closed().await;
            }
        });
    }

    #[tokio::test]
    async fn a_hello_of_another_version_or_an_error_is_typed() {
        let a = node_transport(NodeId::random());
        let b = node_transport(NodeId::random());
        let b_addr = b.endpoint().local_addr().expect("bound");
        answer_hello(
            &b,
            Response::Hello {
                version: PROTOCOL_VERSION + 1,
                node_id: NodeId::random(),
                addr: String::new(),
            },
        );
        let err = tokio::time::timeout(DEADLINE, a.connection(b_addr))
            .await
            .expect("answered in time")
            .expect_err("another version is refused");
        assert!(
            matches!(
                err,
                TransportError::VersionMismatch { peer, theirs, ours }
                    if peer == b_addr
                        && theirs == PROTOCOL_VERSION + 1
                        && ours == ProtocolRange::SUPPORTED
            ),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Peer);
        assert!(err.is_refusal());
        assert_eq!(
            err.to_string(),
            format!(
                "peer {b_addr} speaks werify protocol {}, this node speaks {}: upgrade the \
                 older one",
                PROTOCOL_VERSION + 1,
                ProtocolRange::SUPPORTED
            )
        );

        let c = node_transport(NodeId::random());
        let c_addr = c.endpoint().local_addr().expect("bound");
        answer_hello(
            &c,
            Response::error(ErrorCode::RateLimited, "too many hellos; retry in 1 s"),
        );
        let err = tokio::time::timeout(DEADLINE, a.connection(c_addr))
            .await
            .expect("answered in time")
            .expect_err("an error answer is a refusal");
        assert!(
            matches!(
                err,
                TransportError::Refused {
                    code: ErrorCode::RateLimited,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Environment);
        assert_eq!(
            err.to_string(),
            format!("peer {c_addr} refused us: too many hellos; retry in 1 s")
        );
    }

    #[tokio::test]
    async fn the_hello_announces_a_range_and_an_older_peer_is_spoken_to_at_its_version() {
        let a = node_transport(NodeId::random());
        let b = node_transport(NodeId::random());
        let b_addr = b.endpoint().local_addr().expect("bound");
        let b_id = NodeId::random();
        let heard = spawn_hello_answer(
            &b,
            Response::Hello {
                version: MIN_PROTOCOL_VERSION,
                node_id: b_id,
                addr: String::new(),
            },
        );
        let (_, id) = tokio::time::timeout(DEADLINE, a.connection(b_addr))
            .await
            .expect("answered in time")
            .expect("an older version in our range is fine");
        assert_eq!(id, b_id);
        assert_eq!(a.peer_version(b_addr), Some(MIN_PROTOCOL_VERSION));
        let (hello, _conn) = heard.await.expect("task").expect("hello");
        assert!(
            matches!(
                hello,
                Request::Hello { version, min_version: Some(min) }
                    if version == PROTOCOL_VERSION && min == MIN_PROTOCOL_VERSION
            ),
            "{hello:?}"
        );
    }

    #[test]
    fn protocol_ranges_parse_print_and_meet() {
        let r = |min, max| ProtocolRange { min, max };
        assert_eq!("4..5".parse::<ProtocolRange>(), Ok(r(4, 5)));
        assert_eq!("4".parse::<ProtocolRange>(), Ok(r(4, 4)));
        assert!("5..4".parse::<ProtocolRange>().is_err());
        assert!("x".parse::<ProtocolRange>().is_err());
        assert_eq!(r(4, 5).to_string(), "4 to 5");
        assert_eq!(r(4, 4).to_string(), "4");
        assert_eq!(r(4, 5).highest_common(r(4, 4)), Some(4));
        assert_eq!(r(4, 5).highest_common(r(5, 7)), Some(5));
        assert_eq!(r(4, 5).highest_common(r(6, 7)), None);
        assert_eq!(r(6, 7).highest_common(r(4, 5)), None);
        assert_eq!(ProtocolRange::of_hello(4, None), r(4, 4));
        assert_eq!(ProtocolRange::of_hello(5, Some(4)), r(4, 5));
        // A nonsense minimum above the version is read as the version alone.
        assert_eq!(ProtocolRange::of_hello(5, Some(9)), r(5, 5));
    }

    #[tokio::test]
    async fn installing_a_deny_list_closes_the_connections_it_names() {
        let a_id = NodeId::random();
        let a = node_transport(a_id);
        let b = node_transport(NodeId::random());
        let b_addr = b.endpoint().local_addr().expect("bound");
        let accepted = tokio::spawn({
            let b = b.clone();
            async move {
                let incoming = b.endpoint().accept().await?;
                let (connecting, _) = b.accept(incoming).ok()?;
                let conn = connecting.await.ok()?;
                let guard = b.track(&conn, false, true);
                let (mut send, mut recv) = conn.accept_bi().await.ok()?;
                let _: Request = frame::read_frame(&mut recv, MAX_FRAME_BYTES).await.ok()?;
                let hello = Response::Hello {
                    version: PROTOCOL_VERSION,
                    node_id: NodeId::random(),
                    addr: String::new(),
                };
                frame::write_frame(&mut send, &hello).await.ok()?;
                send.finish().ok()?;
                Some((conn, guard))
            }
        });
        let (dialed, _) = tokio::time::timeout(DEADLINE, a.connection(b_addr))
            .await
            .expect("connected in time")
            .expect("connection");
        let (conn, _guard) = accepted.await.expect("task").expect("accepted");
        let deny = DenyList::parse(
            &a.identity().leaf_fingerprint(),
            std::path::Path::new("deny"),
        )
        .expect("deny list");
        let installed = b.install(&b.identity(), deny).expect("installed");
        assert_eq!(installed.cut.len(), 1, "{installed:?}");
        assert!(installed.cut[0].1.contains("deny list"), "{installed:?}");
        assert!(installed.retired.is_empty(), "{installed:?}");
        assert!(conn.close_reason().is_some());
        let seen_by_a = tokio::time::timeout(DEADLINE, dialed.closed())
            .await
            .expect("closed in time");
        let failure = ConnectionFailure::new(b_addr, &seen_by_a, None);
        assert!(
            failure.to_string().contains(&format!(
                "(code {CLOSE_NO_LONGER_ACCEPTED}): certificate no longer accepted"
            )),
            "{failure}"
        );
        // Another node's certificate cannot be installed on b.
        let err = b
            .install(&a.identity(), DenyList::default())
            .expect_err("another node id");
        assert!(matches!(err, TlsError::OtherNodeId { .. }), "{err}");
    }
}
