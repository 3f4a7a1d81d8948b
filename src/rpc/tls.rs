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

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore,
};

use crate::base::NodeId;
use crate::rpc::fault::Fault;
use crate::rpc::identity::{Env, Identity, Role, WerifyUri, WerifyUriError, werify_uri_of};

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
}

impl TlsError {
    /// Whose fault it is: ours, except for a peer certificate our verifiers let through.
    pub fn fault(&self) -> Fault {
        match self {
            TlsError::BadPeerCertificate(_) | TlsError::PeerIsCa => Fault::Peer,
            TlsError::Rustls(_)
            | TlsError::Verifier(_)
            | TlsError::Quic(_)
            | TlsError::NoPeerCertificate => Fault::Bug,
        }
    }
}

/// Why this side's verifier refused the peer's certificate during the handshake, with the
/// details only the refusing side knows. The peer learns only the [`RejectionKind`].
///
/// When it travels inside rustls' error (only [`PeerRejection::Invalid`] does), rustls
/// prints it with `{:?}`; so `Debug` prints the same one line as `Display`.
#[derive(Clone, PartialEq, thiserror::Error)]
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
    NotWerify(WerifyUriError),
    /// The certificate is a werify CA certificate, not a leaf.
    #[error("peer presented a CA certificate, not a node's or a client's")]
    NotALeaf,
    /// Signed by our CA and in our env, but invalid otherwise (expired, wrong usage, …).
    #[error("peer's certificate is invalid: {0}")]
    Invalid(CertificateError),
}

impl fmt::Debug for PeerRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PeerRejection {
    /// What the peer will learn of this rejection.
    pub fn kind(&self) -> RejectionKind {
        match self {
            PeerRejection::EnvMismatch { .. } => RejectionKind::EnvMismatch,
            PeerRejection::NotSigned { .. } => RejectionKind::NotSigned,
            PeerRejection::WrongRole { .. } => RejectionKind::WrongRole,
            PeerRejection::NotWerify(_) | PeerRejection::NotALeaf => RejectionKind::NotWerify,
            PeerRejection::Invalid(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => RejectionKind::Expired,
            PeerRejection::Invalid(_) => RejectionKind::Invalid,
        }
    }

    /// Whose fault it is (see [`RejectionKind::fault`]).
    pub fn fault(&self) -> Fault {
        self.kind().fault()
    }

    /// The error our verifier returns to rustls. rustls picks the TLS alert it sends from
    /// the [`CertificateError`] variant, so each kind gets the variant whose alert is
    /// [`RejectionKind::alert`].
    fn into_rustls(self) -> rustls::Error {
        let error = match self.kind() {
            RejectionKind::EnvMismatch => CertificateError::ApplicationVerificationFailure,
            RejectionKind::NotSigned => CertificateError::UnknownIssuer,
            RejectionKind::WrongRole => CertificateError::InvalidPurpose,
            RejectionKind::NotWerify => CertificateError::BadEncoding,
            RejectionKind::Expired => match self {
                PeerRejection::Invalid(expired) => expired,
                _ => CertificateError::Expired,
            },
            // Any other webpki complaint may share an alert with one of the kinds above
            // (e.g. a missing clientAuth usage is `unsupported_certificate`, like a wrong
            // role): send them all as `certificate_unknown`, with the text for humans.
            RejectionKind::Invalid => CertificateError::Other(rustls::OtherError(Arc::new(self))),
        };
        rustls::Error::InvalidCertificate(error)
    }
}

/// The kinds of certificate refusal, each sent as its own TLS alert (see the module doc):
/// what the refused side learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// The certificate names another env. Alert 49 `access_denied`.
    EnvMismatch,
    /// Not signed by the env's CA: another secret or PEM CA. Alert 48 `unknown_ca`.
    NotSigned,
    /// A ctl client's certificate where a node's is needed. Alert 43
    /// `unsupported_certificate`.
    WrongRole,
    /// Not a werify leaf certificate. Alert 42 `bad_certificate`.
    NotWerify,
    /// Expired or not yet valid. Alert 45 `certificate_expired`.
    Expired,
    /// Invalid otherwise. Alert 46 `certificate_unknown` (and, from other TLS stacks, 44
    /// `certificate_revoked`, 51 `decrypt_error`, 113 `bad_certificate_status_response`).
    Invalid,
}

impl RejectionKind {
    /// The TLS alert a werify verifier sends for this kind.
    pub fn alert(self) -> u8 {
        let alert = match self {
            RejectionKind::EnvMismatch => AlertDescription::AccessDenied,
            RejectionKind::NotSigned => AlertDescription::UnknownCA,
            RejectionKind::WrongRole => AlertDescription::UnsupportedCertificate,
            RejectionKind::NotWerify => AlertDescription::BadCertificate,
            RejectionKind::Expired => AlertDescription::CertificateExpired,
            RejectionKind::Invalid => AlertDescription::CertificateUnknown,
        };
        u8::from(alert)
    }

    /// The refusal a TLS alert stands for; `None` for alerts that are not about the
    /// certificate (a handshake failure, no common protocol, …).
    pub fn from_alert(alert: u8) -> Option<RejectionKind> {
        match AlertDescription::from(alert) {
            AlertDescription::AccessDenied => Some(RejectionKind::EnvMismatch),
            AlertDescription::UnknownCA => Some(RejectionKind::NotSigned),
            AlertDescription::UnsupportedCertificate => Some(RejectionKind::WrongRole),
            AlertDescription::BadCertificate => Some(RejectionKind::NotWerify),
            AlertDescription::CertificateExpired => Some(RejectionKind::Expired),
            AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::DecryptError
            | AlertDescription::BadCertificateStatusResponse => Some(RejectionKind::Invalid),
            _ => None,
        }
    }

    /// Whose fault it is, whichever side refused: an env or CA mismatch means the address,
    /// env, secret or CA given to one side is wrong (the caller's); an expired certificate
    /// points at a clock (every werify leaf is valid from 2024 to 2100); anything else is
    /// the certificate's holder (the peer).
    pub fn fault(self) -> Fault {
        match self {
            RejectionKind::EnvMismatch | RejectionKind::NotSigned => Fault::Caller,
            RejectionKind::Expired => Fault::Environment,
            RejectionKind::WrongRole | RejectionKind::NotWerify | RejectionKind::Invalid => {
                Fault::Peer
            }
        }
    }
}

/// Who this side is, for phrasing the peer's refusal from our point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ours {
    /// This side's env.
    pub env: Env,
    /// This side's role.
    pub role: Role,
}

/// One connection's certificate check as this side's verifier decided it, and who this
/// side is: lets the code that started the connection describe a failed handshake in
/// detail (see the module doc).
#[derive(Clone, Debug)]
pub struct Verdict {
    ours: Ours,
    rejection: Arc<Mutex<Option<PeerRejection>>>,
}

impl Verdict {
    fn new(ours: Ours) -> Verdict {
        Verdict {
            ours,
            rejection: Arc::default(),
        }
    }

    /// Why this side's verifier refused the peer, if it did.
    pub fn rejection(&self) -> Option<PeerRejection> {
        self.rejection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, rejection: &PeerRejection) {
        *self.rejection.lock().unwrap_or_else(|p| p.into_inner()) = Some(rejection.clone());
    }

    /// The typed failure of the connection this verdict belongs to.
    pub fn failure(&self, peer: SocketAddr, err: &quinn::ConnectionError) -> ConnectionFailure {
        ConnectionFailure::new(peer, err, Some(self))
    }
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

/// The TLS side of one identity: what every connection shares is built once (keys,
/// trust anchor, transport settings), and each connection can get its own verifier that
/// records a [`Verdict`].
#[derive(Clone)]
pub struct Handshakes {
    ours: Ours,
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    /// The dialer's config; its verifier records nowhere, per-dial copies get their own.
    client_tls: rustls::ClientConfig,
    client_transport: Arc<quinn::TransportConfig>,
    acceptor: AcceptorTls,
    /// The acceptor's config; its verifier records nowhere, per-connection copies get
    /// their own.
    server: quinn::ServerConfig,
}

/// What the acceptor's TLS config of every connection shares.
#[derive(Clone)]
struct AcceptorTls {
    /// The env required of dialers: ours, except in a test.
    env: Env,
    provider: Arc<CryptoProvider>,
    /// rustls' chain check of dialers' certificates, wrapped by each connection's verifier.
    chain: Arc<dyn ClientCertVerifier>,
    cert: Arc<dyn ResolvesServerCert>,
}

impl AcceptorTls {
    /// The acceptor's TLS config around a verifier that records in `verdict`. Built per
    /// connection from the shared parts; the builder's only sizeable allocation, a session
    /// cache, is dropped at once (no tickets are issued, so nothing would be stored).
    fn config(&self, verdict: Option<Verdict>) -> Result<QuicServerConfig, TlsError> {
        let verifier = Arc::new(MeshClientVerifier {
            env: self.env.clone(),
            inner: self.chain.clone(),
            verdict,
        });
        let mut tls = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.cert.clone());
        tls.alpn_protocols = vec![ALPN.to_vec()];
        tls.max_early_data_size = 0;
        tls.send_tls13_tickets = 0;
        tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(QuicServerConfig::try_from(tls)?)
    }
}

impl Handshakes {
    /// Everything needed to dial and accept as `id`.
    pub fn new(id: &Identity) -> Result<Handshakes, TlsError> {
        Handshakes::checking(id, id.env())
    }

    /// Like [`Handshakes::new`], but the acceptor checks dialers against `accept_env`.
    /// Split out so tests can build an acceptor that refuses a dialer which accepts it.
    fn checking(id: &Identity, accept_env: &Env) -> Result<Handshakes, TlsError> {
        let provider = provider();
        let roots = Arc::new(roots(id)?);
        let ours = Ours {
            env: id.env().clone(),
            role: id.role(),
        };
        let acceptor = AcceptorTls {
            env: accept_env.clone(),
            provider: provider.clone(),
            chain: rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.clone(),
                provider.clone(),
            )
            .build()?,
            cert: Arc::new(OneCert(Arc::new(CertifiedKey::from_der(
                vec![id.leaf_cert().clone()],
                leaf_key(id),
                &provider,
            )?))),
        };
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(acceptor.config(None)?));
        server.transport_config(Arc::new(transport_config(LinkEnd::Acceptor)));
        let server_verifier = NodeServerVerifier {
            env: ours.env.clone(),
            roots: roots.clone(),
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
        let client_end = match id.role() {
            Role::Client => LinkEnd::Ctl,
            Role::Node => LinkEnd::NodeDialer,
        };
        Ok(Handshakes {
            ours,
            provider,
            roots,
            client_tls,
            client_transport: Arc::new(transport_config(client_end)),
            acceptor,
            server,
        })
    }

    /// A fresh verdict for one connection.
    pub fn verdict(&self) -> Verdict {
        Verdict::new(self.ours.clone())
    }

    /// The acceptor side: presents our leaf, requires a client certificate from this env's
    /// CA (node or ctl role). Its verifier records nowhere: the endpoint's default.
    pub fn server_config(&self) -> quinn::ServerConfig {
        self.server.clone()
    }

    /// [`Handshakes::server_config`] for accepting one connection, whose verifier records
    /// its decision in `verdict`.
    pub fn server_config_for(&self, verdict: &Verdict) -> Result<quinn::ServerConfig, TlsError> {
        let mut config = self.server.clone();
        config.crypto = Arc::new(self.acceptor.config(Some(verdict.clone()))?);
        Ok(config)
    }

    /// The dialer side: presents our leaf, accepts only a node certificate from this env's
    /// CA, whatever server name was dialed. Its verifier records nowhere: the endpoint's
    /// default.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        self.quic_client(self.client_tls.clone())
    }

    /// [`Handshakes::client_config`] for one dial, whose verifier records its decision in
    /// `verdict`.
    pub fn client_config_for(&self, verdict: &Verdict) -> Result<quinn::ClientConfig, TlsError> {
        let mut tls = self.client_tls.clone();
        tls.dangerous()
            .set_certificate_verifier(Arc::new(NodeServerVerifier {
                env: self.ours.env.clone(),
                roots: self.roots.clone(),
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
}

/// The acceptor side for `id` (see [`Handshakes::server_config`]).
pub fn server_config(id: &Identity) -> Result<quinn::ServerConfig, TlsError> {
    Ok(Handshakes::new(id)?.server_config())
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
        WerifyUri::Leaf { env, role, node_id } => Ok(PeerCert { env, role, node_id }),
        WerifyUri::Ca(_) => Err(TlsError::PeerIsCa),
    }
}

/// Why a connection with a peer could not be set up, or was lost. Each reads as one line
/// naming the peer, e.g. `peer 127.0.0.3:30035 is in env "staging", this mesh is "prod"`.
/// Certificate refusals are phrased from this side's point of view whichever side refused.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ConnectionFailure {
    /// Our verifier refused the peer's certificate. `rejection` holds the details when the
    /// connection had a [`Verdict`]; otherwise only the alert we sent is known.
    #[error("{}", we_refused(*peer, *kind, rejection.as_ref()))]
    WeRefused {
        /// The peer's address.
        peer: SocketAddr,
        /// The kind of refusal (the alert we sent).
        kind: RejectionKind,
        /// What exactly was wrong.
        rejection: Option<PeerRejection>,
    },
    /// The peer refused our certificate; its TLS alert says which kind of refusal.
    #[error("{}", peer_refused(*peer, *kind, close, ours.as_ref()))]
    PeerRefused {
        /// The peer's address.
        peer: SocketAddr,
        /// The kind of refusal, from the alert.
        kind: RejectionKind,
        /// The peer's close frame: the alert, and its text (shown, never interpreted).
        close: quinn::ConnectionClose,
        /// Who we are, when known, to say what the peer did not accept.
        ours: Option<Ours>,
    },
    /// The peer does not offer [`ALPN`] (TLS alert 120, from either side).
    #[error(
        "peer {peer} does not speak {} (TLS alert {TLS_ALERT_NO_APPLICATION_PROTOCOL}: no \
         common application protocol; is it a werify node of a compatible version?)",
        String::from_utf8_lossy(ALPN)
    )]
    NoCommonProtocol {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// Nothing answered for the idle timeout.
    #[error(
        "nothing answered at {peer} within {}s (is a werify node running there, and is UDP \
         to it allowed?)",
        IDLE_TIMEOUT.as_secs()
    )]
    TimedOut {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// The peer answered with a stateless reset: it no longer knows the connection.
    #[error("peer {peer} reset the connection (it probably restarted)")]
    Reset {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// The peer's application closed the connection (shutting down, cache full, …).
    #[error("{}", app_closed(*peer, close))]
    Closed {
        /// The peer's address.
        peer: SocketAddr,
        /// Its close code and reason.
        close: quinn::ApplicationClose,
    },
    /// This process closed the connection (shutdown, a duplicate connection dropped).
    #[error("connection to peer {peer} was closed by this process")]
    LocallyClosed {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// This side found another transport or TLS error (the peer broke the protocol).
    #[error("connection with peer {peer} failed: {}", sanitize(&error.to_string()))]
    Failed {
        /// The peer's address.
        peer: SocketAddr,
        /// What quinn detected.
        error: quinn_proto::TransportError,
    },
    /// The peer closed with another transport or TLS error.
    #[error("peer {peer} aborted the connection: {}", sanitize(&close.to_string()))]
    Aborted {
        /// The peer's address.
        peer: SocketAddr,
        /// Its close frame.
        close: quinn::ConnectionClose,
    },
    /// No QUIC version in common.
    #[error("peer {peer} speaks no QUIC version this werify supports")]
    QuicVersion {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// quinn ran out of connection ids for this connection.
    #[error("cannot open another connection to {peer}: connection ids exhausted")]
    CidsExhausted {
        /// The peer's address.
        peer: SocketAddr,
    },
}

impl ConnectionFailure {
    /// Types quinn's error. `verdict`, when the connection had one, supplies the details of
    /// our own refusal and who we are. Only codes are interpreted: the text of a close
    /// reason is kept for display.
    pub fn new(
        peer: SocketAddr,
        err: &quinn::ConnectionError,
        verdict: Option<&Verdict>,
    ) -> ConnectionFailure {
        use quinn::ConnectionError as E;
        match err {
            E::TransportError(local) => match tls_alert(local.code) {
                Some(TLS_ALERT_NO_APPLICATION_PROTOCOL) => {
                    ConnectionFailure::NoCommonProtocol { peer }
                }
                Some(alert) => match (
                    verdict.and_then(Verdict::rejection),
                    RejectionKind::from_alert(alert),
                ) {
                    (Some(rejection), _) => ConnectionFailure::WeRefused {
                        peer,
                        kind: rejection.kind(),
                        rejection: Some(rejection),
                    },
                    (None, Some(kind)) => ConnectionFailure::WeRefused {
                        peer,
                        kind,
                        rejection: None,
                    },
                    (None, None) => ConnectionFailure::Failed {
                        peer,
                        error: local.clone(),
                    },
                },
                None => ConnectionFailure::Failed {
                    peer,
                    error: local.clone(),
                },
            },
            E::ConnectionClosed(close) => {
                let alert = tls_alert(close.error_code);
                match (alert, alert.and_then(RejectionKind::from_alert)) {
                    (Some(TLS_ALERT_NO_APPLICATION_PROTOCOL), _) => {
                        ConnectionFailure::NoCommonProtocol { peer }
                    }
                    (_, Some(kind)) => ConnectionFailure::PeerRefused {
                        peer,
                        kind,
                        close: close.clone(),
                        ours: verdict.map(|v| v.ours.clone()),
                    },
                    _ => ConnectionFailure::Aborted {
                        peer,
                        close: close.clone(),
                    },
                }
            }
            E::ApplicationClosed(close) => ConnectionFailure::Closed {
                peer,
                close: close.clone(),
            },
            E::TimedOut => ConnectionFailure::TimedOut { peer },
            E::Reset => ConnectionFailure::Reset { peer },
            E::LocallyClosed => ConnectionFailure::LocallyClosed { peer },
            E::VersionMismatch => ConnectionFailure::QuicVersion { peer },
            E::CidsExhausted => ConnectionFailure::CidsExhausted { peer },
        }
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        use ConnectionFailure as F;
        match self {
            F::WeRefused { peer, .. }
            | F::PeerRefused { peer, .. }
            | F::NoCommonProtocol { peer }
            | F::TimedOut { peer }
            | F::Reset { peer }
            | F::Closed { peer, .. }
            | F::LocallyClosed { peer }
            | F::Failed { peer, .. }
            | F::Aborted { peer, .. }
            | F::QuicVersion { peer }
            | F::CidsExhausted { peer } => *peer,
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        use ConnectionFailure as F;
        match self {
            F::WeRefused { kind, .. } | F::PeerRefused { kind, .. } => kind.fault(),
            F::NoCommonProtocol { .. }
            | F::Failed { .. }
            | F::Aborted { .. }
            | F::QuicVersion { .. } => Fault::Peer,
            F::TimedOut { .. }
            | F::Reset { .. }
            | F::Closed { .. }
            | F::LocallyClosed { .. }
            | F::CidsExhausted { .. } => Fault::Environment,
        }
    }
}

/// One readable line for a failed connect/accept or a lost connection, naming the peer
/// (see [`ConnectionFailure`]). Without the connection's [`Verdict`], our own refusals are
/// described by their kind only.
pub fn describe_connection_error(peer: SocketAddr, err: &quinn::ConnectionError) -> String {
    ConnectionFailure::new(peer, err, None).to_string()
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

/// Whose fault a dial that could not start is.
pub fn connect_error_fault(err: &quinn::ConnectError) -> Fault {
    use quinn::ConnectError as E;
    match err {
        E::EndpointStopping | E::CidsExhausted => Fault::Environment,
        E::InvalidRemoteAddress(_) => Fault::Caller,
        E::InvalidServerName(_) | E::NoDefaultClientConfig | E::UnsupportedVersion => Fault::Bug,
    }
}

/// The TLS alert a QUIC transport error code carries, if it is a crypto error.
fn tls_alert(code: quinn::TransportErrorCode) -> Option<u8> {
    u64::from(code)
        .checked_sub(QUIC_CRYPTO_ERROR_BASE)
        .and_then(|alert| u8::try_from(alert).ok())
}

/// Our refusal of the peer's certificate, with the details if they were recorded.
fn we_refused(peer: SocketAddr, kind: RejectionKind, rejection: Option<&PeerRejection>) -> String {
    use PeerRejection as R;
    match rejection {
        Some(R::EnvMismatch { peer: theirs, ours }) => {
            format!("peer {peer} is in env \"{theirs}\", this mesh is \"{ours}\"")
        }
        Some(R::NotSigned { env }) => format!(
            "peer {peer}'s certificate is not signed by this mesh's CA for env \"{env}\" \
             (different secret or CA)"
        ),
        Some(R::WrongRole { expected, found }) => {
            format!("peer {peer} presented a {found} certificate where a {expected} was expected")
        }
        Some(other) => format!("refused peer {peer}: {other}"),
        None => format!("refused peer {peer}: its certificate {}", kind_phrase(kind)),
    }
}

/// What the peer's certificate was, for a refusal known only by its kind.
fn kind_phrase(kind: RejectionKind) -> &'static str {
    match kind {
        RejectionKind::EnvMismatch => "names another env",
        RejectionKind::NotSigned => "is not signed by this mesh's CA (different secret or CA)",
        RejectionKind::WrongRole => "is not a node's",
        RejectionKind::NotWerify => "is not a werify certificate",
        RejectionKind::Expired => "has expired or is not valid yet (check the clocks)",
        RejectionKind::Invalid => "is invalid",
    }
}

/// The peer's refusal of our certificate, from our point of view: what it did not accept,
/// and what to check.
fn peer_refused(
    peer: SocketAddr,
    kind: RejectionKind,
    close: &quinn::ConnectionClose,
    ours: Option<&Ours>,
) -> String {
    match (kind, ours) {
        (RejectionKind::EnvMismatch, Some(ours)) => format!(
            "peer {peer} is not in env \"{}\" and refused our certificate (check the address \
             and the --env of both sides)",
            ours.env
        ),
        (RejectionKind::EnvMismatch, None) => format!(
            "peer {peer} is in another env and refused our certificate (check the address and \
             the --env of both sides)"
        ),
        (RejectionKind::NotSigned, Some(ours)) => format!(
            "peer {peer} refused our certificate: it is not signed by that node's CA for env \
             \"{}\" (different secret or CA)",
            ours.env
        ),
        (RejectionKind::NotSigned, None) => format!(
            "peer {peer} refused our certificate: it is not signed by that node's CA \
             (different secret or CA)"
        ),
        // Only dialers check roles, and they want nodes.
        (RejectionKind::WrongRole, Some(ours)) => format!(
            "peer {peer} refused our certificate: it wanted a node certificate, we are a {}",
            ours.role
        ),
        (RejectionKind::WrongRole, None) => {
            format!("peer {peer} refused our certificate: it wanted a node certificate")
        }
        (RejectionKind::NotWerify, _) => {
            format!("peer {peer} refused our certificate as not a werify certificate")
        }
        (RejectionKind::Expired, _) => format!(
            "peer {peer} refused our certificate as expired or not yet valid (check both \
             hosts' clocks)"
        ),
        (RejectionKind::Invalid, _) => {
            let alert = tls_alert(close.error_code).unwrap_or_default();
            let reason = sanitize(&String::from_utf8_lossy(&close.reason));
            format!(
                "peer {peer} refused our certificate (TLS alert {alert} {:?}): {reason}",
                AlertDescription::from(alert)
            )
        }
    }
}

fn app_closed(peer: SocketAddr, close: &quinn::ApplicationClose) -> String {
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
/// `chain` is the result of verifying the chain against the env CA. A refusal is recorded
/// in `verdict` and returned as the rustls error that sends its alert.
fn check_peer(
    env: &Env,
    end_entity: &CertificateDer<'_>,
    chain: Result<(), rustls::Error>,
    required_role: Option<Role>,
    verdict: Option<&Verdict>,
) -> Result<(), rustls::Error> {
    match judge(env, end_entity, chain, required_role)? {
        None => Ok(()),
        Some(rejection) => {
            if let Some(verdict) = verdict {
                verdict.record(&rejection);
            }
            Err(rejection.into_rustls())
        }
    }
}

/// [`check_peer`]'s decision: `Ok(None)` accepts, `Ok(Some(_))` refuses the certificate,
/// `Err` is a failure that is not about the certificate.
fn judge(
    env: &Env,
    end_entity: &CertificateDer<'_>,
    chain: Result<(), rustls::Error>,
    required_role: Option<Role>,
) -> Result<Option<PeerRejection>, rustls::Error> {
    let (peer_env, role) = match werify_uri_of(end_entity) {
        Ok(WerifyUri::Leaf { env, role, .. }) => (env, role),
        Ok(WerifyUri::Ca(_)) => return Ok(Some(PeerRejection::NotALeaf)),
        Err(reason) => return Ok(Some(PeerRejection::NotWerify(reason))),
    };
    // The env claim is unauthenticated at this point, but it only picks the message: a
    // peer of another env fails the chain check against our CA anyway.
    if peer_env != *env {
        return Ok(Some(PeerRejection::EnvMismatch {
            peer: peer_env,
            ours: env.clone(),
        }));
    }
    match chain {
        Ok(()) => {}
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => return Ok(Some(PeerRejection::NotSigned { env: env.clone() })),
        Err(rustls::Error::InvalidCertificate(other)) => {
            return Ok(Some(PeerRejection::Invalid(other)));
        }
        Err(other) => return Err(other),
    }
    if let Some(expected) = required_role
        && role != expected
    {
        return Ok(Some(PeerRejection::WrongRole {
            expected,
            found: role,
        }));
    }
    Ok(None)
}

/// The dialer's check of the acceptor's certificate.
#[derive(Debug)]
struct NodeServerVerifier {
    env: Env,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    /// Where this dial's decision goes, if anyone asked.
    verdict: Option<Verdict>,
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
        check_peer(
            &self.env,
            end_entity,
            chain,
            Some(Role::Node),
            self.verdict.as_ref(),
        )?;
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
    /// Where this connection's decision goes, if anyone asked.
    verdict: Option<Verdict>,
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
        check_peer(&self.env, end_entity, chain, None, self.verdict.as_ref())?;
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

    fn endpoint_with(tls: &Handshakes) -> quinn::Endpoint {
        let mut endpoint = quinn::Endpoint::server(
            tls.server_config(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .unwrap();
        endpoint.set_default_client_config(tls.client_config().unwrap());
        endpoint
    }

    fn endpoint(id: &Identity) -> quinn::Endpoint {
        endpoint_with(&Handshakes::new(id).unwrap())
    }

    /// An endpoint and the TLS settings it dials and accepts with.
    struct Side {
        endpoint: quinn::Endpoint,
        tls: Handshakes,
    }

    fn side(id: &Identity) -> Side {
        side_with(Handshakes::new(id).unwrap())
    }

    fn side_with(tls: Handshakes) -> Side {
        Side {
            endpoint: endpoint_with(&tls),
            tls,
        }
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

    /// Runs a handshake that must fail, each side with its own verdict as the transport
    /// does, and returns each side's typed failure: (dialer's, acceptor's).
    async fn refused_typed(server: &Side, client: &Side) -> (ConnectionFailure, ConnectionFailure) {
        let addr = server.endpoint.local_addr().unwrap();
        let accept = async {
            let incoming = server.endpoint.accept().await.unwrap();
            let from = incoming.remote_address();
            let verdict = server.tls.verdict();
            let config = server.tls.server_config_for(&verdict).unwrap();
            match incoming.accept_with(Arc::new(config)).unwrap().await {
                Err(e) => verdict.failure(from, &e),
                Ok(conn) => verdict.failure(from, &conn.closed().await),
            }
        };
        let dial = async {
            let verdict = client.tls.verdict();
            let config = client.tls.client_config_for(&verdict).unwrap();
            match client
                .endpoint
                .connect_with(config, addr, SERVER_NAME)
                .unwrap()
                .await
            {
                Err(e) => verdict.failure(addr, &e),
                // Pitfall 3: the dialer may finish before the acceptor refuses it.
                Ok(conn) => verdict.failure(addr, &conn.closed().await),
            }
        };
        tokio::time::timeout(TEST_DEADLINE, async { tokio::join!(dial, accept) })
            .await
            .expect("handshake neither failed nor finished")
    }

    /// [`refused_typed`], as the lines users read.
    async fn refused(server: &Side, client: &Side) -> (String, String) {
        let (dialer, acceptor) = refused_typed(server, client).await;
        (dialer.to_string(), acceptor.to_string())
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
        let prod = side(&identity("prod", b"secret", Role::Node));
        let staging = side(&identity("staging", b"secret", Role::Node));
        let (dialer, acceptor) = refused(&prod, &staging).await;
        let prod_addr = prod.endpoint.local_addr().unwrap();
        assert_eq!(
            dialer,
            format!("peer {prod_addr} is in env \"prod\", this mesh is \"staging\"")
        );
        // The dialer refused before sending its certificate: all the acceptor learns is
        // the alert, so it names its own env only.
        assert!(
            acceptor.contains("is not in env \"prod\" and refused our certificate"),
            "{acceptor}"
        );
        assert!(acceptor.starts_with("peer 127.0.0.1:"), "{acceptor}");
    }

    #[tokio::test]
    async fn same_env_other_secret_fails_with_the_not_signed_message() {
        let a = side(&identity("prod", b"secret-a", Role::Node));
        let b = side(&identity("prod", b"secret-b", Role::Node));
        let (dialer, acceptor) = refused(&a, &b).await;
        let a_addr = a.endpoint.local_addr().unwrap();
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
            &side(&open),
            &side(&identity("prod", b"secret", Role::Node)),
        )
        .await;
        assert!(dialer.contains("not signed"), "{dialer}");
        assert!(acceptor.contains("not signed"), "{acceptor}");
    }

    #[tokio::test]
    async fn dialer_refuses_a_ctl_certificate_posing_as_a_node() {
        let ctl = identity("prod", b"secret", Role::Client);
        let node = identity("prod", b"secret", Role::Node);
        let (dialer, acceptor) = refused(&side(&ctl), &side(&node)).await;
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
        let server = side_with(Handshakes::checking(&acceptor_id, &env("other")).unwrap());
        let client = side(&dialer_id);
        let (dialer, acceptor) = refused(&server, &client).await;
        let addr = server.endpoint.local_addr().unwrap();
        // From the alert alone: the dialer knows its own env, not the one the acceptor
        // wanted.
        assert_eq!(
            dialer,
            format!(
                "peer {addr} is not in env \"prod\" and refused our certificate (check the \
                 address and the --env of both sides)"
            )
        );
        assert!(
            acceptor.ends_with("is in env \"prod\", this mesh is \"other\""),
            "{acceptor}"
        );
    }

    #[tokio::test]
    async fn both_sides_of_a_refusal_get_its_kind_and_fault() {
        let a = side(&identity("prod", b"secret-a", Role::Node));
        let b = side(&identity("prod", b"secret-b", Role::Node));
        let (dialer, acceptor) = refused_typed(&a, &b).await;
        assert!(
            matches!(
                &dialer,
                ConnectionFailure::WeRefused {
                    kind: RejectionKind::NotSigned,
                    rejection: Some(PeerRejection::NotSigned { .. }),
                    ..
                }
            ),
            "{dialer:?}"
        );
        assert!(
            matches!(
                &acceptor,
                ConnectionFailure::PeerRefused {
                    kind: RejectionKind::NotSigned,
                    ..
                }
            ),
            "{acceptor:?}"
        );
        assert_eq!(dialer.fault(), Fault::Caller);
        assert_eq!(acceptor.fault(), Fault::Caller);
        assert_eq!(dialer.peer(), a.endpoint.local_addr().unwrap());
    }

    /// The alert rustls sends when a certificate verifier returns `err` (what its
    /// `send_cert_verify_error_alert` does).
    fn alert_sent_for(err: &rustls::Error) -> u8 {
        u8::from(match err {
            rustls::Error::InvalidCertificate(e) => AlertDescription::from(e.clone()),
            rustls::Error::PeerMisbehaved(_) => AlertDescription::IllegalParameter,
            _ => AlertDescription::HandshakeFailure,
        })
    }

    #[test]
    fn each_rejection_is_sent_as_its_own_alert_and_mapped_back_by_code() {
        let peer: SocketAddr = "127.0.0.9:30035".parse().unwrap();
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
            PeerRejection::NotWerify(WerifyUriError::NoUri),
            PeerRejection::NotALeaf,
            PeerRejection::Invalid(CertificateError::Expired),
            PeerRejection::Invalid(CertificateError::NotValidYet),
            // webpki's wrong-usage alert is the one a wrong role gets: sent as another.
            PeerRejection::Invalid(CertificateError::InvalidPurpose),
            PeerRejection::Invalid(CertificateError::Revoked),
        ];
        let mut alerts = std::collections::HashMap::new();
        for rejection in rejections {
            let kind = rejection.kind();
            let alert = alert_sent_for(&rejection.clone().into_rustls());
            assert_eq!(alert, kind.alert(), "{rejection}");
            assert_eq!(RejectionKind::from_alert(alert), Some(kind));
            assert_eq!(*alerts.entry(kind).or_insert(alert), alert);

            // The refused side has the close code, and a reason it must not read.
            let remote = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
                error_code: quinn::TransportErrorCode::crypto(alert),
                frame_type: None,
                reason: bytes::Bytes::from_static(b"peer is in env \"x\", this mesh is \"y\""),
            });
            match ConnectionFailure::new(peer, &remote, None) {
                ConnectionFailure::PeerRefused { kind: got, .. } => assert_eq!(got, kind),
                other => panic!("{rejection}: {other:?}"),
            }

            // The refusing side has the same code locally, and its verdict.
            let local = quinn::ConnectionError::TransportError(quinn_proto::TransportError {
                code: quinn::TransportErrorCode::crypto(alert),
                frame: None,
                reason: String::new(),
            });
            let verdict = Handshakes::new(&identity("prod", b"s", Role::Node))
                .unwrap()
                .verdict();
            match ConnectionFailure::new(peer, &local, None) {
                ConnectionFailure::WeRefused {
                    kind: got,
                    rejection: None,
                    ..
                } => assert_eq!(got, kind),
                other => panic!("{rejection}: {other:?}"),
            }
            verdict.record(&rejection);
            match verdict.failure(peer, &local) {
                ConnectionFailure::WeRefused {
                    kind: got,
                    rejection: Some(recorded),
                    ..
                } => {
                    assert_eq!(got, kind);
                    assert_eq!(recorded.to_string(), rejection.to_string());
                }
                other => panic!("{rejection}: {other:?}"),
            }
        }
        assert_eq!(alerts.len(), 6, "every kind has its own alert: {alerts:?}");
        let mut distinct: Vec<u8> = alerts.values().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 6, "{alerts:?}");

        // An alert that is not about the certificate is not a refusal, whatever it says.
        let handshake_failure = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(40),
            frame_type: None,
            reason: bytes::Bytes::from_static(b"peer is in env \"x\", this mesh is \"y\""),
        });
        assert!(matches!(
            ConnectionFailure::new(peer, &handshake_failure, None),
            ConnectionFailure::Aborted { .. }
        ));
        assert_eq!(
            format!("{:?}", PeerRejection::NotALeaf),
            PeerRejection::NotALeaf.to_string()
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
        for code in [40, 46] {
            // A close whose reason is shown: a non-certificate alert, or an unspecific one.
            let hostile = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
                error_code: quinn::TransportErrorCode::crypto(code),
                frame_type: None,
                reason: bytes::Bytes::from(format!("evil\nline{}", "x".repeat(5000))),
            });
            let line = describe_connection_error(peer, &hostile);
            assert!(line.contains("evilline"), "{line}");
            assert!(!line.contains('\n'), "{line}");
            assert!(line.chars().count() < 500, "{line}");
        }

        let app = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: 0u32.into(),
            reason: bytes::Bytes::from_static(b"shutting down"),
        });
        assert_eq!(
            describe_connection_error(peer, &app),
            "peer 127.0.0.9:30035 closed the connection (code 0): shutting down"
        );
        assert_eq!(
            ConnectionFailure::new(peer, &quinn::ConnectionError::TimedOut, None).fault(),
            Fault::Environment
        );
        assert_eq!(
            ConnectionFailure::new(peer, &alpn, None).fault(),
            Fault::Peer
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
