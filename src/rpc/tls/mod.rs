//! QUIC + mutual-TLS configuration for werify endpoints, the certificate checks both sides
//! run, reading who the peer is, and turning a failed connection into a typed error that
//! reads as one line.
//!
//! What lives elsewhere: the certificates themselves come from [`crate::rpc::identity`];
//! the endpoint, dialing and the application hello live in [`crate::rpc::transport`].
//!
//! # What a handshake checks
//!
//! TLS 1.3 only, ALPN `werify/1`, client certificates required, no 0-RTT, no session
//! resumption (so every connection re-runs the checks below), and the ring provider passed
//! explicitly (never the process default). Both sides then check the peer's leaf:
//!
//! 1. it carries exactly one `werify://ENV/node/ID`, `werify://ENV/ctl/ID` or
//!    `werify://ENV/operator/NAME` URI SAN;
//! 2. ENV is this mesh's env, otherwise `peer is in env "staging", this mesh is "prod"`;
//! 3. it chains to one of the CAs this side trusts (the only trust anchors), otherwise
//!    `peer's certificate is not signed by this mesh's CA for env "prod" (different secret
//!    or CA)`;
//! 4. the dialer also requires the acceptor to be a node, not a client or an operator;
//! 5. it is not on this side's deny list (its fingerprint, or its operator name).
//!
//! The trusted CAs, the deny list and the certificate this side presents can be replaced
//! while the endpoint runs ([`Handshakes::install`]): every handshake from then on uses
//! the new ones, and [`Handshakes::recheck`] judges an established connection again.
//!
//! DNS names and IPs are *not* checked: the CA is the mesh, so any leaf it signed is a
//! member; dialers use the constant [`SERVER_NAME`]. Callers that dial a known node id
//! compare it with [`peer_cert`] afterwards.
//!
//! # How a refusal reaches both sides
//!
//! Each kind of refusal ([`RejectionKind`]) is sent as its own TLS alert, which QUIC
//! carries as the close code `0x100 + alert`:
//!
//! | refusal | TLS alert |
//! | --- | --- |
//! | another env | 49 `access_denied` |
//! | not signed by this env's CA | 48 `unknown_ca` |
//! | a ctl certificate where a node is needed | 43 `unsupported_certificate` |
//! | not a werify leaf | 42 `bad_certificate` |
//! | on the deny list | 44 `certificate_revoked` |
//! | expired or not yet valid | 45 `certificate_expired` |
//! | invalid otherwise | 46 `certificate_unknown` |
//!
//! - The refused side maps the alert code to a [`RejectionKind`] and phrases it from its
//!   own point of view ([`ConnectionFailure::PeerRefused`]). The close reason text is
//!   never interpreted; an alert carries no details, so the refused side knows its own
//!   env but not the other side's.
//! - The refusing side knows the details, but quinn reports its own failed handshake only
//!   as the alert code and rustls' text. So each connection gets its own verifier, which
//!   records its typed [`PeerRejection`] in that connection's [`Verdict`]
//!   ([`Handshakes::client_config_for`], [`Handshakes::server_config_for`]); the code
//!   that started the connection reads it back ([`ConnectionFailure::WeRefused`]).
//!
//! # Pitfall: the dialer may think it is connected when it is not
//!
//! With TLS 1.3 client auth the dialer finishes its handshake before the acceptor has
//! checked the dialer's certificate. If the acceptor then refuses it, the dialer's
//! `connect().await` has already succeeded and only its first stream operation (or
//! `closed()`) fails, with the acceptor's alert. Treat a peer as up only after an
//! application-level hello round trip.

mod failure;
mod verify;

#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::base::NodeId;
use crate::rpc::fault::Fault;
use crate::rpc::identity::{
    DenyList, Env, Holder, Identity, Role, WerifyUri, WerifyUriError, fingerprint, werify_uri_of,
};

pub use failure::{
    ConnectionFailure, Ours, PeerRejection, RejectionKind, Verdict, connect_error_fault,
    describe_connect_error, describe_connection_error,
};
pub use verify::Trust;
use verify::{MeshClientVerifier, NodeServerVerifier, judge};

/// The ALPN protocol id; both sides must offer it.
pub const ALPN: &[u8] = b"werify/1";

/// The TLS server name every dialer uses. Names are not checked (see the module doc), but
/// quinn needs a syntactically valid one.
pub const SERVER_NAME: &str = "werify";

/// The dialer of a node-to-node link sends a keep-alive after this much silence either
/// way, well inside [`IDLE_TIMEOUT`]. Probes and gossip cross every link of a small mesh
/// more often than this, so it costs nothing there; in a large mesh, where a given link is
/// quiet for long stretches, keep-alives are a real share of the idle traffic, hence not
/// more often. 60 s stays under the 120 s a Linux conntrack entry keeps a UDP flow that
/// has seen both directions; a link through a NAT that forgets sooner survives the
/// rebinding anyway (QUIC follows the peer to its new address).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// A node-to-node link with no traffic for this long is dead. Liveness of peers is the
/// mesh's job (SWIM probes), so this only reclaims connections to peers that are gone; it
/// is long because reopening a link costs a full mutual-TLS handshake and a hello, many
/// times the bytes of a keep-alive.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// `werify ctl` connections: a keep-alive this often while a command waits, and an idle
/// timeout of [`CTL_IDLE_TIMEOUT`], so a node forgets a killed client's connection after
/// that rather than after [`IDLE_TIMEOUT`] (the shorter of both ends' timeouts applies).
pub const CTL_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`CTL_KEEP_ALIVE_INTERVAL`].
pub const CTL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent bidirectional streams a peer may open: one per request, so this bounds the
/// requests in flight from one peer; further requests wait for a free stream. A
/// coordinator runs at most 64 operations at once, one request per host each. quinn
/// keeps the receive state of each finished stream for reuse, one per allowed stream, so
/// a connection's memory grows with its requests until this many are parked: a larger
/// allowance means more memory per connection, reached only after that many requests,
/// i.e. a heap that keeps growing under load for a long time. `tests/stream_memory.rs`
/// fails if this goes above 64.
pub const MAX_CONCURRENT_BIDI_STREAMS: u32 = 64;
/// Concurrent unidirectional streams a peer may open: none, nothing uses them.
const MAX_CONCURRENT_UNI_STREAMS: u32 = 0;
/// Datagram buffers, each way: about 950 gossip messages of at most ~1100 bytes. When full,
/// quinn drops the oldest datagram (gossip tolerates loss; it is resent).
const DATAGRAM_BUFFER_BYTES: usize = 1 << 20;
/// Longest reason text taken from a peer's close frame into our messages.
const MAX_REMOTE_REASON_CHARS: usize = 300;
/// TLS alert `no_application_protocol`: the peer does not offer [`ALPN`].
const TLS_ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;
/// QUIC carries TLS alert `n` as the transport error code `0x100 + n` (RFC 9001, 4.8).
const QUIC_CRYPTO_ERROR_BASE: u64 = 0x100;

/// Why a QUIC/TLS config could not be built or the peer's certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused our own certificate, key or settings (a bug or a broken identity).
    #[error("cannot build TLS config: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (a bug: the CA is always set).
    #[error("cannot build client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The crypto provider lacks the cipher suite QUIC needs for its initial packets.
    #[error("TLS provider cannot be used for QUIC: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The connection exposes no peer certificate (handshake not finished).
    #[error("the connection has no peer certificate (has the handshake finished?)")]
    NoPeerCertificate,
    /// The peer's certificate passed the handshake but is not a werify leaf (cannot happen
    /// with this module's verifiers; kept so nothing panics).
    #[error("peer's certificate is not a werify leaf certificate: {0}")]
    BadPeerCertificate(WerifyUriError),
    /// The peer's certificate passed the handshake but is a CA certificate (as above).
    #[error("peer's certificate is a CA certificate, not a node's or a client's")]
    PeerIsCa,
    /// [`Handshakes::install`] was given an identity of another env or role.
    #[error(
        "cannot switch to a {role} identity of env \"{env}\": this endpoint runs as a {} of \
         env \"{}\"",
        ours.role,
        ours.env
    )]
    OtherIdentity {
        /// The env of the identity offered.
        env: Env,
        /// Its role.
        role: Role,
        /// What this endpoint is.
        ours: Ours,
    },
    /// A node was offered a certificate of another node id: the mesh knows a node by its
    /// id, so a node keeps its id for as long as it runs.
    #[error(
        "the new certificate is for node {offered}, this node is {ours}; issue it with \
         --node-id {ours} (or restart the node to change its identity)"
    )]
    OtherNodeId {
        /// This node's id.
        ours: NodeId,
        /// The id in the certificate offered.
        offered: NodeId,
    },
}

impl TlsError {
    /// Whose fault it is: ours, except for a peer certificate our verifiers let through.
    pub fn fault(&self) -> Fault {
        match self {
            TlsError::BadPeerCertificate(_) | TlsError::PeerIsCa => Fault::Peer,
            TlsError::OtherIdentity { .. } | TlsError::OtherNodeId { .. } => Fault::Caller,
            TlsError::Rustls(_)
            | TlsError::Verifier(_)
            | TlsError::Quic(_)
            | TlsError::NoPeerCertificate => Fault::Bug,
        }
    }
}

/// What the peer's certificate says about it, read after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    /// The peer's env (always ours: the handshake checked it).
    pub env: Env,
    /// Who the certificate is for: a node, a `ctl` client or an operator.
    pub holder: Holder,
    /// SHA-256 of the peer's certificate (DER), lowercase hex.
    pub fingerprint: String,
}

impl PeerCert {
    /// The peer's role.
    pub fn role(&self) -> Role {
        self.holder.role()
    }

    /// The peer's node id, if it presented a node's certificate.
    pub fn node_id(&self) -> Option<NodeId> {
        self.holder.node_id()
    }
}

/// Which end of which kind of connection a transport config is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// A node dialing another node: sends the link's keep-alives.
    NodeDialer,
    /// A node accepting a connection (from a node or a ctl client).
    Acceptor,
    /// A `werify ctl` client.
    Ctl,
}

/// Transport settings:
///
/// - node links: idle timeout 180 s ([`IDLE_TIMEOUT`]); only the dialer sends keep-alives,
///   after 60 s without any packet either way ([`KEEP_ALIVE_INTERVAL`]): one side suffices
///   to keep a connection open (a pair of nodes shares one, see
///   [`crate::rpc::transport`]), and keep-alives on both ends would double them for
///   nothing;
/// - ctl clients: keep-alive 5 s, idle timeout 20 s ([`CTL_IDLE_TIMEOUT`]);
/// - up to 64 concurrent bidirectional streams (one per request), no unidirectional ones;
/// - 1 MiB datagram send and receive buffers (gossip; oldest dropped when full);
/// - no path-MTU discovery: gossip datagrams are at most ~1100 bytes, which fit QUIC's
///   1200-byte minimum, and the discovery probes (several ~1.4 KB packets per new
///   connection) would be a large share of what a mesh sends while its pairs connect;
/// - everything else quinn's defaults (1.25 MB stream window).
pub fn transport_config(end: LinkEnd) -> quinn::TransportConfig {
    let (keep_alive, idle) = match end {
        LinkEnd::NodeDialer => (Some(KEEP_ALIVE_INTERVAL), IDLE_TIMEOUT),
        LinkEnd::Acceptor => (None, IDLE_TIMEOUT),
        LinkEnd::Ctl => (Some(CTL_KEEP_ALIVE_INTERVAL), CTL_IDLE_TIMEOUT),
    };
    let mut config = quinn::TransportConfig::default();
    config
        .keep_alive_interval(keep_alive)
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
            // Any of the timeouts fits a u32 of milliseconds; saturating keeps this total.
            u32::try_from(idle.as_millis()).unwrap_or(u32::MAX),
        ))))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_BIDI_STREAMS))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_UNI_STREAMS))
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER_BYTES))
        .datagram_send_buffer_size(DATAGRAM_BUFFER_BYTES)
        .mtu_discovery_config(None);
    config
}

/// The TLS side of one endpoint: what every connection shares (keys, trust anchors, deny
/// list, transport settings), replaceable as a whole while the endpoint runs, from which
/// each connection gets a verifier of its own that records a [`Verdict`].
#[derive(Clone)]
pub struct Handshakes {
    ours: Ours,
    provider: Arc<CryptoProvider>,
    /// The env required of dialers: ours, except in a test.
    accept_env: Env,
    client_transport: Arc<quinn::TransportConfig>,
    server_transport: Arc<quinn::TransportConfig>,
    current: Arc<RwLock<Arc<Current>>>,
}

/// What this endpoint presents and trusts now.
struct Current {
    identity: Arc<Identity>,
    trust: Arc<Trust>,
    /// The dialer's config; its verifier records nowhere, per-dial copies get their own.
    client_tls: rustls::ClientConfig,
    cert: Arc<dyn ResolvesServerCert>,
}

impl Handshakes {
    /// Everything needed to dial and accept as `id`, with an empty deny list: a node's
    /// dialer settings for a node identity, a `ctl` client's otherwise.
    pub fn new(id: &Identity) -> Result<Handshakes, TlsError> {
        let end = match id.role() {
            Role::Node => LinkEnd::NodeDialer,
            Role::Client | Role::Operator => LinkEnd::Ctl,
        };
        Handshakes::for_end(id, DenyList::default(), end)
    }

    /// Everything needed to dial and accept as `id`, refusing what `deny` names; `dialer`
    /// says whose transport settings dials use ([`LinkEnd::NodeDialer`] or
    /// [`LinkEnd::Ctl`]).
    pub fn for_end(id: &Identity, deny: DenyList, dialer: LinkEnd) -> Result<Handshakes, TlsError> {
        Handshakes::checking(id, id.env(), deny, dialer)
    }

    /// Like [`Handshakes::for_end`], but the acceptor checks dialers against `accept_env`.
    /// Split out so tests can build an acceptor that refuses a dialer which accepts it.
    fn checking(
        id: &Identity,
        accept_env: &Env,
        deny: DenyList,
        dialer: LinkEnd,
    ) -> Result<Handshakes, TlsError> {
        let provider = provider();
        let current = Current::new(id, deny, &provider)?;
        Ok(Handshakes {
            ours: Ours {
                env: id.env().clone(),
                role: id.role(),
            },
            provider,
            accept_env: accept_env.clone(),
            client_transport: Arc::new(transport_config(dialer)),
            server_transport: Arc::new(transport_config(LinkEnd::Acceptor)),
            current: Arc::new(RwLock::new(Arc::new(current))),
        })
    }

    /// Presents `id` and trusts its CAs minus what `deny` names from now on. `id` must be
    /// of the same env and role as the identity this endpoint started with. Connections
    /// already established are not touched: see [`Handshakes::recheck`].
    pub fn install(&self, id: &Identity, deny: DenyList) -> Result<(), TlsError> {
        self.check_installable(id)?;
        let next = Arc::new(Current::new(id, deny, &self.provider)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// Whether `id` is of the env and role this endpoint runs as (what
    /// [`Handshakes::install`] requires).
    pub fn check_installable(&self, id: &Identity) -> Result<(), TlsError> {
        if *id.env() != self.ours.env || id.role() != self.ours.role {
            return Err(TlsError::OtherIdentity {
                env: id.env().clone(),
                role: id.role(),
                ours: self.ours.clone(),
            });
        }
        Ok(())
    }

    fn now(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The identity this endpoint presents now.
    pub fn identity(&self) -> Arc<Identity> {
        self.now().identity.clone()
    }

    /// The CAs and deny list peers are checked against now.
    pub fn trust(&self) -> Arc<Trust> {
        self.now().trust.clone()
    }

    /// A fresh verdict for one connection.
    pub fn verdict(&self) -> Verdict {
        Verdict::new(self.ours.clone())
    }

    /// The acceptor side: presents our leaf, requires a client certificate from a trusted
    /// CA (any role). Its verifier records nowhere: the endpoint's default.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        self.server(None)
    }

    /// [`Handshakes::server_config`] for accepting one connection, whose verifier records
    /// its decision in `verdict`.
    pub fn server_config_for(&self, verdict: &Verdict) -> Result<quinn::ServerConfig, TlsError> {
        self.server(Some(verdict.clone()))
    }

    /// The acceptor's config around a verifier that records in `verdict`, built from the
    /// shared parts; the builder's only sizeable allocation, a session cache, is dropped
    /// at once (no tickets are issued, so nothing would be stored).
    fn server(&self, verdict: Option<Verdict>) -> Result<quinn::ServerConfig, TlsError> {
        let now = self.now();
        let verifier = Arc::new(MeshClientVerifier {
            env: self.accept_env.clone(),
            trust: now.trust.clone(),
            verdict,
        });
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(now.cert.clone());
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.max_early_data_size = 0;
        tls.send_tls13_tickets = 0;
        tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let mut config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
        config.transport_config(self.server_transport.clone());
        Ok(config)
    }

    /// The dialer side: presents our leaf, accepts only a node certificate from a trusted
    /// CA, whatever server name was dialed. Its verifier records nowhere: the endpoint's
    /// default.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        self.quic_client(self.now().client_tls.clone())
    }

    /// [`Handshakes::client_config`] for one dial, whose verifier records its decision in
    /// `verdict`.
    pub fn client_config_for(&self, verdict: &Verdict) -> Result<quinn::ClientConfig, TlsError> {
        let now = self.now();
        let mut tls = now.client_tls.clone();
        tls.dangerous()
            .set_certificate_verifier(Arc::new(NodeServerVerifier {
                env: self.ours.env.clone(),
                trust: now.trust.clone(),
                provider: self.provider.clone(),
                verdict: Some(verdict.clone()),
            }));
        self.quic_client(tls)
    }

    fn quic_client(&self, tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TlsError> {
        let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
        config.transport_config(self.client_transport.clone());
        Ok(config)
    }

    /// Judges the certificate of an established connection again, against what this
    /// endpoint trusts now: why it would be refused today, or `None`. `node_only`: the
    /// peer must be a node (a connection this side dialed).
    pub fn recheck(&self, conn: &quinn::Connection, node_only: bool) -> Option<PeerRejection> {
        let identity = conn.peer_identity()?;
        let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
        let (leaf, intermediates) = chain.split_first()?;
        let trust = self.trust();
        let verified = trust
            .client_chain()
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ());
        let required = node_only.then_some(Role::Node);
        judge(&self.ours.env, &trust, leaf, verified, required)
            .ok()
            .flatten()
    }
}

impl Current {
    fn new(
        id: &Identity,
        deny: DenyList,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Current, TlsError> {
        let trust = Arc::new(Trust::new(id, deny, provider)?);
        let server_verifier = NodeServerVerifier {
            env: id.env().clone(),
            trust: trust.clone(),
            provider: provider.clone(),
            verdict: None,
        };
        let mut client_tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(server_verifier))
            .with_client_auth_cert(vec![id.leaf_cert().clone()], leaf_key(id))?;
        client_tls.alpn_protocols = vec![ALPN.to_vec()];
        client_tls.enable_early_data = false;
        // Resumed handshakes skip the verifiers; a full handshake costs well under a
        // millisecond.
        client_tls.resumption = rustls::client::Resumption::disabled();
        let cert = Arc::new(OneCert(Arc::new(CertifiedKey::from_der(
            vec![id.leaf_cert().clone()],
            leaf_key(id),
            provider,
        )?)));
        Ok(Current {
            identity: Arc::new(id.clone()),
            trust,
            client_tls,
            cert,
        })
    }
}

/// The acceptor side for `id` (see [`Handshakes::server_config`]).
pub fn server_config(id: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    Handshakes::new(id)?.server_config()
}

/// The dialer side for `id` (see [`Handshakes::client_config`]).
pub fn client_config(id: &Identity) -> Result<quinn::ClientConfig, TlsError> {
    Handshakes::new(id)?.client_config()
}

/// Presents the same certificate to every dialer.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Reads env, role and node id from the peer's certificate of an established connection.
pub fn peer_cert(conn: &quinn::Connection) -> Result<PeerCert, TlsError> {
    let identity = conn.peer_identity().ok_or(TlsError::NoPeerCertificate)?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| TlsError::NoPeerCertificate)?;
    let leaf = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    match werify_uri_of(leaf).map_err(TlsError::BadPeerCertificate)? {
        WerifyUri::Leaf { env, holder } => Ok(PeerCert {
            env,
            holder,
            fingerprint: fingerprint(leaf),
        }),
        WerifyUri::Ca(_) => Err(TlsError::PeerIsCa),
    }
}

/// The one crypto provider werify uses, passed explicitly so the process default (and
/// any second provider pulled in by feature unification) never matters.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn leaf_key(id: &Identity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(id.leaf_key().clone_key())
}

/// A connected pair of node endpoints on loopback (env `dev`, a test secret), for tests
/// elsewhere in the crate: (dialer, acceptor, dialed connection, accepted connection).
#[cfg(test)]
pub(crate) async fn loopback_pair() -> (
    quinn::Endpoint,
    quinn::Endpoint,
    quinn::Connection,
    quinn::Connection,
) {
    let make = || {
        let id = Identity::new(
            None,
            &crate::rpc::identity::CaSource::derived(Some(b"test")),
            Role::Node,
            NodeId::random(),
            &[],
        )
        .unwrap();
        let mut endpoint = quinn::Endpoint::server(
            server_config(&id).unwrap(),
            std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
        )
        .unwrap();
        endpoint.set_default_client_config(client_config(&id).unwrap());
        endpoint
    };
    let (dialer, acceptor) = (make(), make());
    let addr = acceptor.local_addr().unwrap();
    let (dialed, accepted) = tokio::join!(
        async { dialer.connect(addr, SERVER_NAME).unwrap().await.unwrap() },
        async { acceptor.accept().await.unwrap().await.unwrap() },
    );
    (dialer, acceptor, dialed, accepted)
}
