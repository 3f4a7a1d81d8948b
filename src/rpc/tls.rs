//! QUIC + mutual-TLS configuration for werify endpoints, the certificate checks both sides
//! run, reading who the peer is, and turning a failed connection into one readable line.
//!
//! What lives elsewhere: the certificates themselves come from [`crate::rpc::identity`];
//! the endpoint, dialing and the application hello live in the runtime.
//!
//! # What a handshake checks
//!
//! TLS 1.3 only, ALPN `werify/1`, client certificates required, no 0-RTT, no session
//! resumption (so every connection re-runs the checks below), and the ring provider passed
//! explicitly (never the process default). Both sides then check the peer's leaf:
//!
//! 1. it carries exactly one `werify://ENV/node/ID` or `werify://ENV/ctl/ID` URI SAN;
//! 2. ENV is this mesh's env, otherwise `peer is in env "staging", this mesh is "prod"`;
//! 3. it chains to this env's CA (the only trust anchor), otherwise `peer's certificate is
//!    not signed by this mesh's CA for env "prod" (different secret or CA)`;
//! 4. the dialer also requires the acceptor to be a node, not a ctl client.
//!
//! DNS names and IPs are *not* checked: the CA is the mesh, so any leaf it signed is a
//! member; dialers use the constant [`SERVER_NAME`]. Callers that dial a known node id
//! compare it with [`peer_cert`] afterwards.
//!
//! # Pitfall: the dialer may think it is connected when it is not
//!
//! With TLS 1.3 client auth the dialer finishes its handshake before the acceptor has
//! checked the dialer's certificate. If the acceptor then refuses it, the dialer's
//! `connect().await` has already succeeded and only its first stream operation (or
//! `closed()`) fails, with the acceptor's reason. Treat a peer as up only after an
//! application-level hello round trip.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::base::NodeId;
use crate::rpc::identity::{Env, Identity, Role, WerifyUri, werify_uri_of};

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
/// `werify ctl` connections: keep-alive every 5 s while a command waits, and an idle
/// timeout of 20 s, so a node forgets a killed client's connection after 20 s instead of
/// [`IDLE_TIMEOUT`] (the shorter of both ends' timeouts applies).
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
    BadPeerCertificate(String),
}

/// Why one side refused the other's certificate during the handshake.
///
/// This travels inside rustls' error, which rustls prints with `{:?}`, and from there into
/// the QUIC close reason the peer sees; so `Debug` prints the same one line as `Display`,
/// and [`describe_connection_error`] recognises the text on the other side.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRejection {
    /// The peer's certificate names another env.
    #[error("peer is in env \"{peer}\", this mesh is \"{ours}\"")]
    EnvMismatch {
        /// The env in the peer's certificate.
        peer: Env,
        /// The env of the side that refused.
        ours: Env,
    },
    /// The peer claims our env but was not signed by our CA: another secret or PEM CA.
    #[error(
        "peer's certificate is not signed by this mesh's CA for env \"{env}\" (different \
         secret or CA)"
    )]
    NotSigned {
        /// The (shared) env.
        env: Env,
    },
    /// The peer is of the wrong kind, e.g. a ctl client where a node was dialed.
    #[error("peer presented a {found} certificate where a {expected} was expected")]
    WrongRole {
        /// The role the refusing side required.
        expected: Role,
        /// The role in the peer's certificate.
        found: Role,
    },
    /// The certificate is not a werify leaf at all.
    #[error("peer's certificate is not a werify certificate: {0}")]
    NotWerify(String),
    /// Signed by our CA and in our env, but invalid otherwise (expired, wrong usage, …).
    #[error("peer's certificate is invalid: {0}")]
    Invalid(String),
}

impl fmt::Debug for PeerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PeerRejection {
    /// Recognises a rejection produced by a werify process inside a close reason or error
    /// text. Only the structured variants are recognised; others return `None`.
    fn find_in(text: &str) -> Option<PeerRejection> {
        if let Some((peer, rest)) = quoted_after(text, "peer is in env \"")
            && let Some((ours, _)) = quoted_after(rest, "\", this mesh is \"")
        {
            return Some(PeerRejection::EnvMismatch {
                peer: peer.parse().ok()?,
                ours: ours.parse().ok()?,
            });
        }
        if let Some((env, _)) = quoted_after(text, "not signed by this mesh's CA for env \"") {
            return Some(PeerRejection::NotSigned {
                env: env.parse().ok()?,
            });
        }
        for found in [Role::Node, Role::Client] {
            for expected in [Role::Node, Role::Client] {
                let wrong = PeerRejection::WrongRole { expected, found };
                if text.contains(&wrong.to_string()) {
                    return Some(wrong);
                }
            }
        }
        None
    }

    /// Wraps the rejection the way rustls carries application certificate errors.
    fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            self,
        ))))
    }
}

/// The text between `marker` and the next `"`, and what follows it (starting at the `"`).
fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let start = text.find(marker)? + marker.len();
    let tail = text.get(start..)?;
    let end = tail.find('"')?;
    Some((tail.get(..end)?, tail.get(end..)?))
}

/// What the peer's certificate says about it, read after the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    /// The peer's env (always ours: the handshake checked it).
    pub env: Env,
    /// Node or ctl client.
    pub role: Role,
    /// The node id in the peer's certificate.
    pub node_id: NodeId,
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

/// The acceptor side: presents `id`'s leaf, requires a client certificate from this env's
/// CA (node or ctl role).
pub fn server_config(id: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    server_config_checking(id, id.env())
}

/// The dialer side: presents `id`'s leaf, accepts only a node certificate from this env's
/// CA, whatever server name was dialed.
pub fn client_config(id: &Identity) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(NodeServerVerifier {
        env: id.env().clone(),
        roots: Arc::new(roots(id)?),
        provider: provider.clone(),
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![id.leaf_cert().clone()], leaf_key(id))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    // Resumed handshakes skip the verifiers; a full handshake costs well under a millisecond.
    tls.resumption = rustls::client::Resumption::disabled();
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let end = match id.role() {
        Role::Client => LinkEnd::Ctl,
        Role::Node => LinkEnd::NodeDialer,
    };
    config.transport_config(Arc::new(transport_config(end)));
    Ok(config)
}

/// Like [`server_config`], but checks client certificates against `accept_env`. Split out
/// so tests can build an acceptor that refuses a dialer which accepts it.
fn server_config_checking(
    id: &Identity,
    accept_env: &Env,
) -> Result<quinn::ServerConfig, TlsError> {
    let provider = provider();
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(id)?),
        provider.clone(),
    )
    .build()?;
    let verifier = Arc::new(MeshClientVerifier {
        env: accept_env.clone(),
        inner,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![id.leaf_cert().clone()], leaf_key(id))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    tls.send_tls13_tickets = 0;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(Arc::new(transport_config(LinkEnd::Acceptor)));
    Ok(config)
}

/// Reads env, role and node id from the peer's certificate of an established connection.
pub fn peer_cert(conn: &quinn::Connection) -> Result<PeerCert, TlsError> {
    let identity = conn.peer_identity().ok_or(TlsError::NoPeerCertificate)?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| TlsError::NoPeerCertificate)?;
    let leaf = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    match werify_uri_of(leaf).map_err(|e| TlsError::BadPeerCertificate(e.to_string()))? {
        WerifyUri::Leaf { env, role, node_id } => Ok(PeerCert { env, role, node_id }),
        WerifyUri::Ca(_) => Err(TlsError::BadPeerCertificate(
            "it is a CA certificate".to_string(),
        )),
    }
}

/// One readable line for a failed connect/accept or a lost connection, naming the peer,
/// e.g. `peer 127.0.0.3:30035 is in env "staging", this mesh is "prod"` or
/// `nothing answered at 127.0.0.9:30035 within 30s (is a werify node running there, and is
/// UDP to it allowed?)`.
///
/// Rejections are phrased from this side's point of view whichever side refused: when the
/// peer refused us, its reason is read back from the close frame and turned around.
pub fn describe_connection_error(peer: SocketAddr, err: &quinn::ConnectionError) -> String {
    use quinn::ConnectionError as E;
    match err {
        E::TransportError(local) => {
            if let Some(rejection) = PeerRejection::find_in(&local.reason) {
                return describe_rejection(peer, &rejection, Refused::ByUs);
            }
            if local.code == quinn::TransportErrorCode::crypto(TLS_ALERT_NO_APPLICATION_PROTOCOL) {
                return no_common_protocol(peer);
            }
            format!(
                "connection with peer {peer} failed: {}",
                sanitize(&local.to_string())
            )
        }
        E::ConnectionClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason);
            if let Some(rejection) = PeerRejection::find_in(&reason) {
                return describe_rejection(peer, &rejection, Refused::ByPeer);
            }
            if close.error_code
                == quinn::TransportErrorCode::crypto(TLS_ALERT_NO_APPLICATION_PROTOCOL)
            {
                return no_common_protocol(peer);
            }
            format!(
                "peer {peer} aborted the connection: {}",
                sanitize(&close.to_string())
            )
        }
        E::ApplicationClosed(close) => {
            let reason = sanitize(&String::from_utf8_lossy(&close.reason));
            if reason.is_empty() {
                format!(
                    "peer {peer} closed the connection (code {})",
                    close.error_code
                )
            } else {
                format!(
                    "peer {peer} closed the connection (code {}): {reason}",
                    close.error_code
                )
            }
        }
        E::TimedOut => format!(
            "nothing answered at {peer} within {}s (is a werify node running there, and is \
             UDP to it allowed?)",
            IDLE_TIMEOUT.as_secs()
        ),
        E::Reset => format!("peer {peer} reset the connection (it probably restarted)"),
        E::LocallyClosed => format!("connection to peer {peer} was closed by this process"),
        E::VersionMismatch => {
            format!("peer {peer} speaks no QUIC version this werify supports")
        }
        E::CidsExhausted => {
            format!("cannot open another connection to {peer}: connection ids exhausted")
        }
    }
}

/// One readable line for a dial that could not even start.
pub fn describe_connect_error(peer: SocketAddr, err: &quinn::ConnectError) -> String {
    use quinn::ConnectError as E;
    match err {
        E::EndpointStopping => format!("cannot dial {peer}: this endpoint is shutting down"),
        E::InvalidRemoteAddress(_) => format!(
            "cannot dial {peer}: not a usable address (port 0, or an address family this \
             endpoint does not have)"
        ),
        E::CidsExhausted => format!("cannot dial {peer}: connection ids exhausted"),
        E::InvalidServerName(name) => {
            format!("BUG! cannot dial {peer}: invalid TLS server name {name:?}")
        }
        E::NoDefaultClientConfig => {
            format!("BUG! cannot dial {peer}: the endpoint has no client config")
        }
        E::UnsupportedVersion => format!("cannot dial {peer}: unsupported QUIC version"),
    }
}

/// Which side refused a certificate, relative to the process describing the failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Our verifier refused the peer's certificate.
    ByUs,
    /// The peer's verifier refused ours; its message speaks from its point of view.
    ByPeer,
}

fn describe_rejection(peer: SocketAddr, rejection: &PeerRejection, by: Refused) -> String {
    use PeerRejection as R;
    match (rejection, by) {
        (R::EnvMismatch { peer: theirs, ours }, Refused::ByUs) => {
            format!("peer {peer} is in env \"{theirs}\", this mesh is \"{ours}\"")
        }
        // The peer's "peer" is us and its "ours" is the peer.
        (
            R::EnvMismatch {
                peer: us,
                ours: theirs,
            },
            Refused::ByPeer,
        ) => format!(
            "peer {peer} is in env \"{theirs}\", this mesh is \"{us}\" (it refused our \
             certificate)"
        ),
        (R::NotSigned { env }, Refused::ByUs) => format!(
            "peer {peer}'s certificate is not signed by this mesh's CA for env \"{env}\" \
             (different secret or CA)"
        ),
        (R::NotSigned { env }, Refused::ByPeer) => format!(
            "peer {peer} refused our certificate: it is not signed by that node's CA for env \
             \"{env}\" (different secret or CA)"
        ),
        (R::WrongRole { expected, found }, Refused::ByUs) => {
            format!("peer {peer} presented a {found} certificate where a {expected} was expected")
        }
        (R::WrongRole { expected, found }, Refused::ByPeer) => format!(
            "peer {peer} refused our certificate: it wanted a {expected} certificate, we are a \
             {found}"
        ),
        (other, Refused::ByUs) => format!("refused peer {peer}: {other}"),
        (other, Refused::ByPeer) => format!("peer {peer} refused our certificate: {other}"),
    }
}

fn no_common_protocol(peer: SocketAddr) -> String {
    format!(
        "peer {peer} does not speak {} (TLS alert {TLS_ALERT_NO_APPLICATION_PROTOCOL}: no \
         common application protocol; is it a werify node of a compatible version?)",
        String::from_utf8_lossy(ALPN)
    )
}

/// Peer-supplied text, made safe for one log line: control characters dropped, length
/// capped.
fn sanitize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REMOTE_REASON_CHARS)
        .collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX_REMOTE_REASON_CHARS {
        out.push('…');
    }
    out
}

/// The one crypto provider werify uses, passed explicitly so the process default (and
/// any second provider pulled in by feature unification) never matters.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding only the env CA.
fn roots(id: &Identity) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(id.ca_cert().clone())?;
    Ok(roots)
}

fn leaf_key(id: &Identity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(id.leaf_key().clone_key())
}

/// The checks both verifiers run after (or instead of) the chain check; see the module doc.
/// `chain` is the result of verifying the chain against the env CA.
fn check_peer(
    env: &Env,
    end_entity: &CertificateDer<'_>,
    chain: Result<(), rustls::Error>,
    required_role: Option<Role>,
) -> Result<(), rustls::Error> {
    let (peer_env, role) = match werify_uri_of(end_entity) {
        Ok(WerifyUri::Leaf { env, role, .. }) => (env, role),
        Ok(WerifyUri::Ca(_)) => {
            return Err(
                PeerRejection::NotWerify("it is a CA certificate, not a leaf".to_string())
                    .into_rustls(),
            );
        }
        Err(reason) => return Err(PeerRejection::NotWerify(reason.to_string()).into_rustls()),
    };
    // The env claim is unauthenticated at this point, but it only picks the message: a
    // peer of another env fails the chain check against our CA anyway.
    if peer_env != *env {
        return Err(PeerRejection::EnvMismatch {
            peer: peer_env,
            ours: env.clone(),
        }
        .into_rustls());
    }
    match chain {
        Ok(()) => {}
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => return Err(PeerRejection::NotSigned { env: env.clone() }.into_rustls()),
        Err(rustls::Error::InvalidCertificate(other)) => {
            return Err(PeerRejection::Invalid(other.to_string()).into_rustls());
        }
        Err(other) => return Err(other),
    }
    if let Some(expected) = required_role
        && role != expected
    {
        return Err(PeerRejection::WrongRole {
            expected,
            found: role,
        }
        .into_rustls());
    }
    Ok(())
}

/// The dialer's check of the acceptor's certificate.
#[derive(Debug)]
struct NodeServerVerifier {
    env: Env,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = ParsedCertificate::try_from(end_entity).and_then(|parsed| {
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &self.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )
        });
        check_peer(&self.env, end_entity, chain, Some(Role::Node))?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The acceptor's check of the dialer's certificate: rustls' webpki client verifier
/// (chain + clientAuth usage) plus the werify checks.
#[derive(Debug)]
struct MeshClientVerifier {
    env: Env,
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for MeshClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .map(|_| ());
        check_peer(&self.env, end_entity, chain, None)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A connected pair of loopback endpoints of one env, for tests of code that runs on
/// streams: (dialer endpoint, acceptor endpoint, dialer's connection, acceptor's).
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
            &crate::rpc::identity::CaSource::Derived {
                secret: Some(b"test".to_vec()),
            },
            Role::Node,
            NodeId::random(),
            &[],
        )
        .unwrap();
        let mut endpoint = quinn::Endpoint::server(
            server_config(&id).unwrap(),
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::frame::{read_frame, write_frame};
    use crate::rpc::identity::CaSource;
    use serde::{Deserialize, Serialize};
    use std::net::{IpAddr, Ipv4Addr};

    /// Bound on any one test's network exchange: a hang guard, not a speed assertion.
    const TEST_DEADLINE: Duration = Duration::from_secs(20);

    fn env(s: &str) -> Env {
        s.parse().unwrap()
    }

    fn identity(env_name: &str, secret: &[u8], role: Role) -> Identity {
        Identity::new(
            Some(&env(env_name)),
            &CaSource::Derived {
                secret: Some(secret.to_vec()),
            },
            role,
            NodeId::random(),
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )
        .unwrap()
    }

    fn endpoint_with(server: quinn::ServerConfig, client: quinn::ClientConfig) -> quinn::Endpoint {
        let mut endpoint =
            quinn::Endpoint::server(server, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        endpoint.set_default_client_config(client);
        endpoint
    }

    fn endpoint(id: &Identity) -> quinn::Endpoint {
        endpoint_with(server_config(id).unwrap(), client_config(id).unwrap())
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Request {
        check: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Response {
        passed: bool,
        #[serde(with = "serde_bytes")]
        detail: Vec<u8>,
    }

    /// Dials `acceptor` from `dialer`, exchanges one framed request/response and returns
    /// what each side read from the other's certificate: (dialer's view, acceptor's view).
    async fn exchange(dialer: &Identity, acceptor: &Identity) -> (PeerCert, PeerCert) {
        let server = endpoint(acceptor);
        let client = endpoint(dialer);
        let addr = server.local_addr().unwrap();
        let serve = async {
            let conn = server.accept().await.unwrap().await.unwrap();
            let seen = peer_cert(&conn).unwrap();
            let (mut send, mut recv) = conn.accept_bi().await.unwrap();
            let req: Request = read_frame(&mut recv, 1024).await.unwrap();
            let resp = Response {
                passed: req.check == "file_exists",
                detail: vec![0, 1, 2],
            };
            write_frame(&mut send, &resp).await.unwrap();
            send.finish().unwrap();
            // Keep the connection until the dialer has read the answer and closed.
            conn.closed().await;
            seen
        };
        let dial = async {
            let conn = client.connect(addr, SERVER_NAME).unwrap().await.unwrap();
            let seen = peer_cert(&conn).unwrap();
            let (mut send, mut recv) = conn.open_bi().await.unwrap();
            let req = Request {
                check: "file_exists".to_string(),
            };
            write_frame(&mut send, &req).await.unwrap();
            send.finish().unwrap();
            let resp: Response = read_frame(&mut recv, 1024).await.unwrap();
            assert_eq!(
                resp,
                Response {
                    passed: true,
                    detail: vec![0, 1, 2]
                }
            );
            conn.close(0u32.into(), b"done");
            seen
        };
        tokio::time::timeout(TEST_DEADLINE, async { tokio::join!(dial, serve) })
            .await
            .expect("exchange did not finish")
    }

    /// Runs a handshake that must fail and returns each side's description of the failure:
    /// (dialer's line, acceptor's line).
    async fn refused(server: &quinn::Endpoint, client: &quinn::Endpoint) -> (String, String) {
        let addr = server.local_addr().unwrap();
        let accept = async {
            let incoming = server.accept().await.unwrap();
            let from = incoming.remote_address();
            match incoming.await {
                Err(e) => describe_connection_error(from, &e),
                Ok(conn) => describe_connection_error(from, &conn.closed().await),
            }
        };
        let dial = async {
            match client.connect(addr, SERVER_NAME).unwrap().await {
                Err(e) => describe_connection_error(addr, &e),
                // Pitfall 3: the dialer may finish before the acceptor refuses it.
                Ok(conn) => describe_connection_error(addr, &conn.closed().await),
            }
        };
        tokio::time::timeout(TEST_DEADLINE, async { tokio::join!(dial, accept) })
            .await
            .expect("handshake neither failed nor finished")
    }

    #[tokio::test]
    async fn same_env_and_secret_handshake_and_exchange_frames() {
        let a = identity("prod", b"secret", Role::Node);
        let b = identity("prod", b"secret", Role::Node);
        let (dialer_saw, acceptor_saw) = exchange(&b, &a).await;
        assert_eq!(
            dialer_saw,
            PeerCert {
                env: env("prod"),
                role: Role::Node,
                node_id: a.node_id()
            }
        );
        assert_eq!(
            acceptor_saw,
            PeerCert {
                env: env("prod"),
                role: Role::Node,
                node_id: b.node_id()
            }
        );
    }

    #[tokio::test]
    async fn ctl_client_role_is_accepted_by_a_node() {
        let node = identity("prod", b"secret", Role::Node);
        let ctl = identity("prod", b"secret", Role::Client);
        let (dialer_saw, acceptor_saw) = exchange(&ctl, &node).await;
        assert_eq!(dialer_saw.role, Role::Node);
        assert_eq!(acceptor_saw.role, Role::Client);
        assert_eq!(acceptor_saw.node_id, ctl.node_id());
    }

    #[tokio::test]
    async fn pem_ca_identities_handshake() {
        let dir = std::env::temp_dir().join(format!(
            "werify-tls-pem-{}-{}",
            std::process::id(),
            NodeId::random().short()
        ));
        let files = crate::rpc::identity::init_ca(&env("lab"), &dir, false).unwrap();
        let pem = CaSource::Pem {
            cert: files.cert,
            key: files.key,
        };
        let a = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
        let b = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
        let (dialer_saw, _) = exchange(&b, &a).await;
        assert_eq!(dialer_saw.env, env("lab"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn other_env_fails_on_both_sides_with_the_env_message() {
        let prod = endpoint(&identity("prod", b"secret", Role::Node));
        let staging = endpoint(&identity("staging", b"secret", Role::Node));
        let (dialer, acceptor) = refused(&prod, &staging).await;
        let prod_addr = prod.local_addr().unwrap();
        assert_eq!(
            dialer,
            format!("peer {prod_addr} is in env \"prod\", this mesh is \"staging\"")
        );
        assert!(
            acceptor.contains("is in env \"staging\", this mesh is \"prod\""),
            "{acceptor}"
        );
        assert!(acceptor.starts_with("peer 127.0.0.1:"), "{acceptor}");
    }

    #[tokio::test]
    async fn same_env_other_secret_fails_with_the_not_signed_message() {
        let a = endpoint(&identity("prod", b"secret-a", Role::Node));
        let b = endpoint(&identity("prod", b"secret-b", Role::Node));
        let (dialer, acceptor) = refused(&a, &b).await;
        let a_addr = a.local_addr().unwrap();
        assert_eq!(
            dialer,
            format!(
                "peer {a_addr}'s certificate is not signed by this mesh's CA for env \"prod\" \
                 (different secret or CA)"
            )
        );
        assert!(acceptor.contains("not signed"), "{acceptor}");
        assert!(acceptor.contains("\"prod\""), "{acceptor}");
    }

    #[tokio::test]
    async fn secret_less_and_secret_meshes_do_not_mix() {
        let open = Identity::new(
            Some(&env("prod")),
            &CaSource::Derived { secret: None },
            Role::Node,
            NodeId::random(),
            &[],
        )
        .unwrap();
        let (dialer, acceptor) = refused(
            &endpoint(&open),
            &endpoint(&identity("prod", b"secret", Role::Node)),
        )
        .await;
        assert!(dialer.contains("not signed"), "{dialer}");
        assert!(acceptor.contains("not signed"), "{acceptor}");
    }

    #[tokio::test]
    async fn dialer_refuses_a_ctl_certificate_posing_as_a_node() {
        let ctl = identity("prod", b"secret", Role::Client);
        let node = identity("prod", b"secret", Role::Node);
        let (dialer, acceptor) = refused(&endpoint(&ctl), &endpoint(&node)).await;
        assert!(
            dialer.ends_with("presented a ctl certificate where a node was expected"),
            "{dialer}"
        );
        assert!(acceptor.contains("refused our certificate"), "{acceptor}");
    }

    #[tokio::test]
    async fn acceptor_refusal_reaches_a_dialer_whose_connect_succeeded() {
        // An acceptor whose verifier wants env "other" while presenting a "prod" leaf: the
        // dialer accepts it and finishes first (pitfall 3), then learns the reason.
        let acceptor_id = identity("prod", b"secret", Role::Node);
        let dialer_id = identity("prod", b"secret", Role::Node);
        let server = endpoint_with(
            server_config_checking(&acceptor_id, &env("other")).unwrap(),
            client_config(&acceptor_id).unwrap(),
        );
        let client = endpoint(&dialer_id);
        let (dialer, acceptor) = refused(&server, &client).await;
        let addr = server.local_addr().unwrap();
        assert_eq!(
            dialer,
            format!(
                "peer {addr} is in env \"other\", this mesh is \"prod\" (it refused our \
                 certificate)"
            )
        );
        assert!(
            acceptor.ends_with("is in env \"prod\", this mesh is \"other\""),
            "{acceptor}"
        );
    }

    #[test]
    fn rejections_are_recognised_in_rustls_error_text() {
        let rejections = [
            PeerRejection::EnvMismatch {
                peer: env("staging"),
                ours: env("prod"),
            },
            PeerRejection::NotSigned { env: env("prod") },
            PeerRejection::WrongRole {
                expected: Role::Node,
                found: Role::Client,
            },
        ];
        for rejection in rejections {
            // Exactly the text quinn puts into the close reason.
            let text = rejection.clone().into_rustls().to_string();
            assert!(text.contains(&rejection.to_string()), "{text}");
            assert_eq!(PeerRejection::find_in(&text), Some(rejection));
        }
        assert_eq!(
            PeerRejection::find_in("invalid peer certificate: Expired"),
            None
        );
        assert_eq!(
            PeerRejection::find_in("peer is in env \"BAD ENV\", this mesh is \"prod\""),
            None
        );
        assert_eq!(
            format!("{:?}", PeerRejection::NotWerify("x".into())),
            PeerRejection::NotWerify("x".into()).to_string()
        );
    }

    #[test]
    fn connection_errors_read_as_one_line_naming_the_peer() {
        let peer: SocketAddr = "127.0.0.9:30035".parse().unwrap();
        let timed_out = describe_connection_error(peer, &quinn::ConnectionError::TimedOut);
        assert!(
            timed_out.starts_with("nothing answered at 127.0.0.9:30035"),
            "{timed_out}"
        );
        assert!(timed_out.contains("werify node running there"));
        let reset = describe_connection_error(peer, &quinn::ConnectionError::Reset);
        assert!(reset.contains("127.0.0.9:30035") && reset.contains("reset"));

        let alpn = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(TLS_ALERT_NO_APPLICATION_PROTOCOL),
            frame_type: None,
            reason: bytes::Bytes::from_static(b"peer doesn't support any known protocol"),
        });
        let line = describe_connection_error(peer, &alpn);
        assert!(line.contains("does not speak werify/1"), "{line}");

        let hostile = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(42),
            frame_type: None,
            reason: bytes::Bytes::from(format!("evil\nline{}", "x".repeat(5000))),
        });
        let line = describe_connection_error(peer, &hostile);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.chars().count() < 500, "{line}");

        let app = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: 0u32.into(),
            reason: bytes::Bytes::from_static(b"shutting down"),
        });
        assert_eq!(
            describe_connection_error(peer, &app),
            "peer 127.0.0.9:30035 closed the connection (code 0): shutting down"
        );
    }

    #[test]
    fn transport_config_keeps_links_alive_inside_the_idle_timeout() {
        assert!(KEEP_ALIVE_INTERVAL * 3 <= IDLE_TIMEOUT);
        assert!(CTL_KEEP_ALIVE_INTERVAL * 3 <= CTL_IDLE_TIMEOUT);
        // Building them must not panic; the settings themselves are exercised by the
        // handshake tests.
        for end in [LinkEnd::NodeDialer, LinkEnd::Acceptor, LinkEnd::Ctl] {
            let _ = transport_config(end);
        }
    }
}
