//! Why talking to a peer or opening the QUIC endpoint failed, and whose fault that is.
//! The endpoint and connections themselves are in the parent module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::rpc::fault::Fault;
use crate::rpc::frame::FrameError;
use crate::rpc::protocol::{ErrorCode, ProtocolRange};
use crate::rpc::tls::{self, ConnectionFailure, TlsError};

/// Why talking to a peer failed. The text is meant for users and names the peer;
/// [`TransportError::fault`] says whose fault it is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be set up (a refused certificate, nothing answering, …)
    /// or was lost.
    #[error(transparent)]
    Connection(Box<ConnectionFailure>),
    /// The dial could not even start.
    #[error("{}", tls::describe_connect_error(*peer, cause))]
    DialStart {
        /// The address dialed.
        peer: SocketAddr,
        /// What quinn refused.
        cause: quinn::ConnectError,
    },
    /// The handshake and hello did not finish within [`DIAL_TIMEOUT`].
    #[error(
        "nothing answered at {peer} within {}s (is a werify node of this env running there?)",
        after.as_secs()
    )]
    DialTimeout {
        /// The address dialed.
        peer: SocketAddr,
        /// How long we waited.
        after: Duration,
    },
    /// The peer chose a protocol version this side does not speak.
    #[error(
        "peer {peer} speaks werify protocol {theirs}, this node speaks {ours}: upgrade the \
         older one"
    )]
    VersionMismatch {
        /// The peer's address.
        peer: SocketAddr,
        /// The version the peer answered with.
        theirs: u32,
        /// The versions this side speaks.
        ours: ProtocolRange,
    },
    /// The peer answered our hello with an error.
    #[error("peer {peer} refused us: {message}")]
    Refused {
        /// The peer's address.
        peer: SocketAddr,
        /// Why, as a code.
        code: ErrorCode,
        /// Why, as the peer put it.
        message: String,
    },
    /// The peer answered our hello with something else than a hello.
    #[error("peer {peer} answered hello with {answer}")]
    UnexpectedAnswer {
        /// The peer's address.
        peer: SocketAddr,
        /// The kind of response it sent.
        answer: &'static str,
    },
    /// A request or its response could not be sent, read or decoded.
    #[error("request to {peer} failed: {source}")]
    Request {
        /// The peer's address.
        peer: SocketAddr,
        /// What went wrong with the frame.
        source: FrameError,
    },
    /// No response within the caller's timeout.
    #[error("no answer from {peer} within {after:?}")]
    Timeout {
        /// The peer's address.
        peer: SocketAddr,
        /// The timeout.
        after: Duration,
    },
    /// The TLS config of one connection could not be built (a bug: the same parts built
    /// the endpoint's).
    #[error("BUG! cannot set up TLS for a connection with {peer}: {source}")]
    Setup {
        /// The peer's address.
        peer: SocketAddr,
        /// What rustls or quinn refused.
        source: Arc<TlsError>,
    },
    /// The endpoint could not be opened.
    #[error("could not open the QUIC endpoint on {addr}: {cause}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        cause: BindError,
    },
}

impl From<ConnectionFailure> for TransportError {
    fn from(failure: ConnectionFailure) -> TransportError {
        TransportError::Connection(Box::new(failure))
    }
}

impl TransportError {
    /// Whether the peer, or this side, refused the other: a certificate refused in the
    /// handshake (another env, secret or CA, a denied certificate), no common protocol
    /// version, or a hello answered with a refusal. Not for a peer that is merely
    /// unreachable.
    pub fn is_refusal(&self) -> bool {
        match self {
            TransportError::Connection(failure) => failure.is_refusal(),
            TransportError::VersionMismatch { .. } => true,
            TransportError::Refused { code, .. } => {
                matches!(code, ErrorCode::Forbidden | ErrorCode::Incompatible)
            }
            _ => false,
        }
    }

    /// Whose fault it is, e.g. to choose an exit code.
    pub fn fault(&self) -> Fault {
        match self {
            TransportError::Connection(failure) => failure.fault(),
            TransportError::DialStart { cause, .. } => tls::connect_error_fault(cause),
            TransportError::DialTimeout { .. } | TransportError::Timeout { .. } => {
                Fault::Environment
            }
            TransportError::VersionMismatch { .. } | TransportError::UnexpectedAnswer { .. } => {
                Fault::Peer
            }
            TransportError::Refused { code, .. } => code.fault(),
            TransportError::Request { source, .. } => source.fault(),
            TransportError::Setup { .. } => Fault::Bug,
            TransportError::Bind { cause, .. } => cause.fault(),
        }
    }
}

/// Why the QUIC endpoint could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BindError {
    /// Something else has the port.
    #[error("{0} (is another werify node already running there?)")]
    InUse(Arc<std::io::Error>),
    /// The address is not one of this host's.
    #[error("{source} (is {ip} an address of this host?)")]
    NotLocal {
        /// The address's IP.
        ip: std::net::IpAddr,
        /// What the OS said.
        source: Arc<std::io::Error>,
    },
    /// Any other socket error.
    #[error("{0}")]
    Socket(Arc<std::io::Error>),
    /// Our TLS config could not be built (a bug or a broken identity).
    #[error("{0}")]
    Tls(Arc<TlsError>),
    /// Not called inside a tokio runtime (a bug).
    #[error("no async runtime")]
    NoRuntime,
}

impl BindError {
    pub(super) fn socket(bind: SocketAddr, e: std::io::Error) -> BindError {
        match e.kind() {
            std::io::ErrorKind::AddrInUse => BindError::InUse(Arc::new(e)),
            std::io::ErrorKind::AddrNotAvailable => BindError::NotLocal {
                ip: bind.ip(),
                source: Arc::new(e),
            },
            _ => BindError::Socket(Arc::new(e)),
        }
    }

    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            BindError::InUse(_) | BindError::Socket(_) => Fault::Environment,
            BindError::NotLocal { .. } => Fault::Caller,
            BindError::Tls(e) => e.fault(),
            BindError::NoRuntime => Fault::Bug,
        }
    }
}
