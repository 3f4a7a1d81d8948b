//! Why a connection could not be set up or was lost, as a typed error that reads as one
//! line from this side's point of view: the refusals of certificates ([`PeerRejection`],
//! [`RejectionKind`]) with the TLS alert each travels as, the [`Verdict`] that keeps this
//! side's own reasons, and [`ConnectionFailure`] for everything else quinn reports.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::{AlertDescription, CertificateError};

use crate::rpc::fault::Fault;
use crate::rpc::identity::{DenyEntry, Env, Role, WerifyUriError};
use crate::rpc::tls::{
    ALPN, IDLE_TIMEOUT, MAX_REMOTE_REASON_CHARS, QUIC_CRYPTO_ERROR_BASE,
    TLS_ALERT_NO_APPLICATION_PROTOCOL,
};

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
    /// Signed by a trusted CA and in our env, but on this side's deny list.
    #[error("peer's certificate is denied by this node's deny list ({0})")]
    Denied(DenyEntry),
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
            PeerRejection::Denied(_) => RejectionKind::Denied,
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
    pub(crate) fn into_rustls(self) -> rustls::Error {
        let error = match self.kind() {
            RejectionKind::EnvMismatch => CertificateError::ApplicationVerificationFailure,
            RejectionKind::NotSigned => CertificateError::UnknownIssuer,
            RejectionKind::WrongRole => CertificateError::InvalidPurpose,
            RejectionKind::NotWerify => CertificateError::BadEncoding,
            RejectionKind::Denied => CertificateError::Revoked,
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
    /// On the refusing side's deny list. Alert 44 `certificate_revoked`.
    Denied,
    /// Expired or not yet valid. Alert 45 `certificate_expired`.
    Expired,
    /// Invalid otherwise. Alert 46 `certificate_unknown` (and, from other TLS stacks, 51
    /// `decrypt_error`, 113 `bad_certificate_status_response`).
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
            RejectionKind::Denied => AlertDescription::CertificateRevoked,
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
            AlertDescription::CertificateRevoked => Some(RejectionKind::Denied),
            AlertDescription::CertificateUnknown
            | AlertDescription::DecryptError
            | AlertDescription::BadCertificateStatusResponse => Some(RejectionKind::Invalid),
            _ => None,
        }
    }

    /// Whose fault it is, whichever side refused: an env or CA mismatch means the address,
    /// env, secret or CA given to one side is wrong (the caller's), and so does a
    /// certificate the refusing side denies; an expired certificate
    /// points at a clock (every werify leaf is valid from 2024 to 2100); anything else is
    /// the certificate's holder (the peer).
    pub fn fault(self) -> Fault {
        match self {
            RejectionKind::EnvMismatch | RejectionKind::NotSigned | RejectionKind::Denied => {
                Fault::Caller
            }
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
    pub(crate) fn new(ours: Ours) -> Verdict {
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

    pub(crate) fn record(&self, rejection: &PeerRejection) {
        *self.rejection.lock().unwrap_or_else(|p| p.into_inner()) = Some(rejection.clone());
    }

    /// The typed failure of the connection this verdict belongs to.
    pub fn failure(&self, peer: SocketAddr, err: &quinn::ConnectionError) -> ConnectionFailure {
        ConnectionFailure::new(peer, err, Some(self))
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

    /// Whether a certificate was refused, by either side, or no common application
    /// protocol was found: the two sides do not accept each other, as opposed to a peer
    /// that is unreachable or went away.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ConnectionFailure::WeRefused { .. }
                | ConnectionFailure::PeerRefused { .. }
                | ConnectionFailure::NoCommonProtocol { .. }
        )
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
        Some(R::Denied(entry)) => {
            format!("peer {peer}'s certificate is denied by this node's deny list ({entry})")
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
        RejectionKind::Denied => "is on this node's deny list",
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
        (RejectionKind::Denied, _) => format!(
            "peer {peer} refused our certificate: it is on that node's deny list (use another \
             certificate, or ask its operators)"
        ),
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
