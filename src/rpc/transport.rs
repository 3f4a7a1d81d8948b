//! One QUIC endpoint per process and the connections it keeps: dialing with a bounded
//! handshake, an application hello on every new connection, a capped cache of live
//! connections reused for datagrams and requests, and one-request-per-stream calls.
//! What a request means is in [`crate::rpc::server`]; TLS details are in [`crate::rpc::tls`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mesh::id::NodeId;
use crate::rpc::frame::{self, MAX_FRAME_BYTES};
use crate::rpc::identity::Identity;
use crate::rpc::protocol::{PROTOCOL_VERSION, Request, Response};
use crate::rpc::tls;

/// Longest a dial (handshake + hello) may take before the peer counts as unreachable.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How many outgoing connections are cached; past this the least recently used goes.
pub const MAX_CACHED_CONNECTIONS: usize = 1024;
/// After a failed dial, datagrams to that address are dropped for this long instead of
/// dialing again (requests still dial: they report the error to a user).
const NEGATIVE_CACHE: Duration = Duration::from_millis(500);

/// Why talking to a peer failed. The text is meant for users and names the peer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Connect(String),
    #[error("request to {peer} failed: {reason}")]
    Request { peer: SocketAddr, reason: String },
    #[error("no answer from {peer} within {after:?}")]
    Timeout { peer: SocketAddr, after: Duration },
    #[error("could not open the QUIC endpoint on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

#[derive(Default)]
struct CacheEntry {
    conn: Option<quinn::Connection>,
    peer_id: Option<NodeId>,
    failed_at: Option<Instant>,
    last_used: Option<Instant>,
}

/// A QUIC endpoint plus the connections this process dialed.
#[derive(Clone)]
pub struct Transport {
    endpoint: quinn::Endpoint,
    identity: Arc<Identity>,
    cache: Arc<Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<CacheEntry>>>>>,
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
        let bind_err = |reason: String| TransportError::Bind { addr: bind, reason };
        let server = tls::server_config(&identity).map_err(|e| bind_err(e.to_string()))?;
        let client = tls::client_config(&identity).map_err(|e| bind_err(e.to_string()))?;
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
        let runtime =
            quinn::default_runtime().ok_or_else(|| bind_err("no async runtime".into()))?;
        let socket = std::net::UdpSocket::bind(bind).and_then(|socket| {
            quinn::Endpoint::new(endpoint_config, Some(server), socket, runtime)
        });
        let mut endpoint = socket.map_err(|e| {
            bind_err(match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    format!("{e} (is another werify node already running there?)")
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    format!("{e} (is {} an address of this host?)", bind.ip())
                }
                _ => e.to_string(),
            })
        })?;
        endpoint.set_default_client_config(client);
        Ok(Transport::with_endpoint(endpoint, identity))
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
        let bind_err = |reason: String| TransportError::Bind { addr: bind, reason };
        let client = tls::client_config(&identity).map_err(|e| bind_err(e.to_string()))?;
        let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| bind_err(e.to_string()))?;
        endpoint.set_default_client_config(client);
        Ok(Transport::with_endpoint(endpoint, identity))
    }

    fn with_endpoint(endpoint: quinn::Endpoint, identity: Arc<Identity>) -> Transport {
        Transport {
            endpoint,
            identity,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The underlying endpoint (the server accepts on it).
    pub fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// This process's TLS identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn entry(&self, addr: SocketAddr) -> Arc<tokio::sync::Mutex<CacheEntry>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache.get(&addr) {
            return e.clone();
        }
        if cache.len() >= MAX_CACHED_CONNECTIONS {
            evict_one(&mut cache);
        }
        cache.entry(addr).or_default().clone()
    }

    /// A live, hello-verified connection to `addr`, dialing if needed.
    pub async fn connection(
        &self,
        addr: SocketAddr,
    ) -> Result<(quinn::Connection, NodeId), TransportError> {
        let entry = self.entry(addr);
        let mut e = entry.lock().await;
        e.last_used = Some(Instant::now());
        if let (Some(conn), Some(id)) = (&e.conn, e.peer_id)
            && conn.close_reason().is_none()
        {
            return Ok((conn.clone(), id));
        }
        e.conn = None;
        match self.dial(addr).await {
            Ok((conn, id)) => {
                e.conn = Some(conn.clone());
                e.peer_id = Some(id);
                e.failed_at = None;
                Ok((conn, id))
            }
            Err(err) => {
                e.failed_at = Some(Instant::now());
                Err(err)
            }
        }
    }

    async fn dial(&self, addr: SocketAddr) -> Result<(quinn::Connection, NodeId), TransportError> {
        let attempt = async {
            let connecting = self
                .endpoint
                .connect(addr, tls::SERVER_NAME)
                .map_err(|e| TransportError::Connect(format!("cannot dial {addr}: {e}")))?;
            let conn = connecting
                .await
                .map_err(|e| TransportError::Connect(tls::describe_connection_error(addr, &e)))?;
            // The dialer's handshake can succeed before the acceptor has verified our
            // certificate: only a hello round trip proves the peer accepted us.
            match call_on(
                &conn,
                addr,
                &Request::Hello {
                    version: PROTOCOL_VERSION,
                },
            )
            .await?
            {
                Response::Hello {
                    node_id, version, ..
                } if version == PROTOCOL_VERSION => Ok((conn, node_id)),
                Response::Hello { version, .. } => Err(TransportError::Connect(format!(
                    "peer {addr} speaks werify protocol {version}, this node speaks {PROTOCOL_VERSION}: upgrade one of them"
                ))),
                Response::Error(msg) => Err(TransportError::Connect(format!(
                    "peer {addr} refused us: {msg}"
                ))),
                other => Err(TransportError::Connect(format!(
                    "peer {addr} answered hello with {}",
                    response_name(&other)
                ))),
            }
        };
        match tokio::time::timeout(DIAL_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Connect(format!(
                "nothing answered at {addr} within {}s (is a werify node of this env running there?)",
                DIAL_TIMEOUT.as_secs()
            ))),
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

    /// Sends a gossip datagram to `addr` without waiting. A datagram to a peer that is
    /// being dialed or that just failed is dropped: SWIM treats loss as loss.
    pub fn send_datagram(&self, addr: SocketAddr, payload: Bytes) {
        let entry = self.entry(addr);
        if let Ok(e) = entry.try_lock() {
            if let Some(conn) = &e.conn
                && conn.close_reason().is_none()
            {
                if let Err(err) = conn.send_datagram(payload) {
                    tracing::debug!(%addr, "datagram not sent: {err}");
                }
                return;
            }
            if e.failed_at.is_some_and(|t| t.elapsed() < NEGATIVE_CACHE) {
                return;
            }
        } else {
            return; // a dial is in progress
        }
        let this = self.clone();
        tokio::spawn(async move {
            match this.connection(addr).await {
                Ok((conn, _)) => {
                    if let Err(err) = conn.send_datagram(payload) {
                        tracing::debug!(%addr, "datagram not sent: {err}");
                    }
                }
                Err(err) => tracing::debug!(%addr, "datagram dropped: {err}"),
            }
        });
    }

    /// Tells the transport that the node at `addr` now holds `id` (learned from an
    /// incoming connection's certificate). A cached connection to `addr` that was made to
    /// another node id is dropped: that node was replaced (e.g. restarted with a wiped data
    /// dir), and its old connection would only hang until the idle timeout.
    pub fn note_peer(&self, addr: SocketAddr, id: NodeId) {
        let entry = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&addr).cloned()
        };
        let Some(entry) = entry else { return };
        if let Ok(mut e) = entry.try_lock()
            && e.peer_id.is_some_and(|old| old != id)
        {
            if let Some(c) = e.conn.take() {
                c.close(0u32.into(), b"peer replaced");
            }
            e.peer_id = None;
        }
    }

    /// Closes every connection and waits up to `grace` for the closes to drain. The close
    /// frames leave at once; draining only matters to answer late packets, so a
    /// short-lived client passes a few milliseconds.
    pub async fn shutdown(&self, grace: Duration) {
        self.endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
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

fn evict_one(cache: &mut HashMap<SocketAddr, Arc<tokio::sync::Mutex<CacheEntry>>>) {
    let mut victim: Option<(SocketAddr, Option<Instant>)> = None;
    for (addr, entry) in cache.iter() {
        let Ok(e) = entry.try_lock() else { continue };
        let dead = e.conn.as_ref().is_none_or(|c| c.close_reason().is_some());
        if dead {
            victim = Some((*addr, None));
            break;
        }
        if victim.as_ref().is_none_or(|(_, t)| e.last_used < *t) {
            victim = Some((*addr, e.last_used));
        }
    }
    if let Some((addr, _)) = victim
        && let Some(entry) = cache.remove(&addr)
        && let Ok(e) = entry.try_lock()
        && let Some(c) = &e.conn
    {
        c.close(0u32.into(), b"connection cache full");
    }
}

/// One request/response on a fresh bidirectional stream of `conn`.
pub async fn call_on(
    conn: &quinn::Connection,
    peer: SocketAddr,
    req: &Request,
) -> Result<Response, TransportError> {
    let fail = |reason: String| TransportError::Request { peer, reason };
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| TransportError::Connect(tls::describe_connection_error(peer, &e)))?;
    frame::write_frame(&mut send, req)
        .await
        .map_err(|e| fail(format!("{e:#}")))?;
    let _ = send.finish();
    frame::read_frame::<Response>(&mut recv, MAX_FRAME_BYTES)
        .await
        .map_err(|e| match conn.close_reason() {
            Some(ce) => TransportError::Connect(tls::describe_connection_error(peer, &ce)),
            None => fail(format!("{e:#}")),
        })
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
        Response::Error(_) => "error",
    }
}
