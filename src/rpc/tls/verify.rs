//! The certificate checks both ends of a handshake run ([`judge`]), the verifiers rustls
//! calls with them, and [`Trust`]: the CAs and deny list they check against.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::rpc::identity::{DenyList, Env, Identity, Role, WerifyUri, fingerprint, werify_uri_of};
use crate::rpc::tls::{PeerRejection, TlsError, Verdict};

/// What peers are checked against: the env, the trusted CAs (the only trust anchors) and
/// the deny list. Built once per change and shared by every handshake until the next.
#[derive(Debug)]
pub struct Trust {
    env: Env,
    roots: Arc<RootCertStore>,
    /// rustls' chain check of certificates presented by dialers (chain + clientAuth).
    client_chain: Arc<dyn ClientCertVerifier>,
    deny: DenyList,
    fingerprints: Vec<String>,
}

impl Trust {
    /// Trusts the CAs of `id`, minus what `deny` names.
    pub fn new(
        id: &Identity,
        deny: DenyList,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Trust, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in id.trusted_cas() {
            roots.add(ca.clone())?;
        }
        let roots = Arc::new(roots);
        let client_chain = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()?;
        Ok(Trust {
            env: id.env().clone(),
            roots,
            client_chain,
            deny,
            fingerprints: id.trusted_fingerprints(),
        })
    }

    /// The env peers must be in.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// SHA-256 fingerprints of the trusted CAs.
    pub fn ca_fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// The deny list.
    pub fn deny(&self) -> &DenyList {
        &self.deny
    }

    pub(crate) fn client_chain(&self) -> &Arc<dyn ClientCertVerifier> {
        &self.client_chain
    }
}

/// The checks both verifiers run after (or instead of) the chain check; see the module doc
/// of [`crate::rpc::tls`]. `chain` is the result of verifying the chain against the
/// trusted CAs. A refusal is recorded in `verdict` and returned as the rustls error that
/// sends its alert.
fn check_peer(
    env: &Env,
    trust: &Trust,
    end_entity: &CertificateDer<'_>,
    chain: Result<(), rustls::Error>,
    required_role: Option<Role>,
    verdict: Option<&Verdict>,
) -> Result<(), rustls::Error> {
    match judge(env, trust, end_entity, chain, required_role)? {
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
pub(crate) fn judge(
    env: &Env,
    trust: &Trust,
    end_entity: &CertificateDer<'_>,
    chain: Result<(), rustls::Error>,
    required_role: Option<Role>,
) -> Result<Option<PeerRejection>, rustls::Error> {
    let (peer_env, holder) = match werify_uri_of(end_entity) {
        Ok(WerifyUri::Leaf { env, holder }) => (env, holder),
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
        && holder.role() != expected
    {
        return Ok(Some(PeerRejection::WrongRole {
            expected,
            found: holder.role(),
        }));
    }
    if let Some(entry) = trust.deny.denies(&fingerprint(end_entity), &holder) {
        return Ok(Some(PeerRejection::Denied(entry)));
    }
    Ok(None)
}

/// The dialer's check of the acceptor's certificate.
#[derive(Debug)]
pub(crate) struct NodeServerVerifier {
    pub(crate) env: Env,
    pub(crate) trust: Arc<Trust>,
    pub(crate) provider: Arc<CryptoProvider>,
    /// Where this dial's decision goes, if anyone asked.
    pub(crate) verdict: Option<Verdict>,
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
                &self.trust.roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )
        });
        check_peer(
            &self.env,
            &self.trust,
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
pub(crate) struct MeshClientVerifier {
    /// The env required of dialers.
    pub(crate) env: Env,
    pub(crate) trust: Arc<Trust>,
    /// Where this connection's decision goes, if anyone asked.
    pub(crate) verdict: Option<Verdict>,
}

impl ClientCertVerifier for MeshClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.trust.client_chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain = self
            .trust
            .client_chain
            .verify_client_cert(end_entity, intermediates, now)
            .map(|_| ());
        check_peer(
            &self.env,
            &self.trust,
            end_entity,
            chain,
            None,
            self.verdict.as_ref(),
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .client_chain
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .client_chain
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.trust.client_chain.supported_verify_schemes()
    }
}
