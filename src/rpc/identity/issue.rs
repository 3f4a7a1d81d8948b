//! Issued certificates: [`issue`] writes a certificate and key for one operator or one
//! node, signed by a PEM CA, and [`load_issued`] reads such a pair back for the process
//! that presents it, checking it against the CAs it trusts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ED25519,
    SanType,
};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::base::NodeId;
use crate::rpc::identity::ca::{self, CaCert};
use crate::rpc::identity::files::{
    MAX_PEM_FILE_BYTES, fingerprint, read_bounded, refuse_existing, warn_if_key_file_is_open,
    write_new_file,
};
use crate::rpc::identity::uri::{Holder, WerifyUri, leaf_uri, werify_uri_of};
use crate::rpc::identity::{Env, IdentityError, validate_operator_name};

/// Longest validity `issue` accepts, in days (100 years).
pub const MAX_DAYS: u32 = 36_500;
/// How far before "now" an issued certificate becomes valid, so that a host whose clock
/// is a little behind the issuer's accepts it at once.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// Whom [`issue`] writes a certificate for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssueFor {
    /// An operator: `werify://ENV/operator/NAME`.
    Operator(String),
    /// A node: `werify://ENV/node/ID`, with HOST as its common name and a DNS or IP
    /// name. `node_id` `None` derives the id from (env, HOST) ([`derived_node_id`]), so
    /// that re-issuing for the same host keeps the node's identity in the mesh.
    Node {
        /// The node's host name or IP address.
        host: String,
        /// Its node id, when it must keep one it already has.
        node_id: Option<NodeId>,
    },
}

/// What [`issue`] needs.
#[derive(Clone, Debug)]
pub struct IssueRequest<'a> {
    /// The CA certificate (`ca.crt.pem`).
    pub ca_cert: &'a Path,
    /// Its key (`ca.key.pem`).
    pub ca_key: &'a Path,
    /// The env, if given: it must be the CA's.
    pub env: Option<&'a Env>,
    /// Whom the certificate is for.
    pub subject: IssueFor,
    /// Days the certificate stays valid, 1 to [`MAX_DAYS`].
    pub days: u32,
    /// Directory to write into (created if missing).
    pub out_dir: &'a Path,
    /// Overwrite existing files.
    pub force: bool,
}

/// What [`issue`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedFiles {
    /// The certificate (mode 0644).
    pub cert: PathBuf,
    /// Its private key (mode 0600).
    pub key: PathBuf,
    /// SHA-256 of the certificate (DER): what a deny file names to shut it out.
    pub fingerprint: String,
    /// Whom it is for.
    pub holder: Holder,
    /// The env it belongs to.
    pub env: Env,
    /// The last moment it is valid.
    pub not_after: time::OffsetDateTime,
}

/// The node id a node certificate for `host` gets unless one is given: the first 16 bytes
/// of SHA-256(`werify-node-id-v1` ‖ len(env) ‖ env ‖ len(host) ‖ lowercase host), lengths
/// as u32 big-endian.
pub fn derived_node_id(env: &Env, host: &str) -> NodeId {
    let mut hash = Sha256::new();
    hash.update(b"werify-node-id-v1");
    for part in [env.as_str().to_string(), host.to_ascii_lowercase()] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        hash.update(len.to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    NodeId(id)
}

/// Writes a certificate and key for `req.subject`, signed by the CA, into `req.out_dir`
/// as `operator-NAME.crt.pem` and `operator-NAME.key.pem` (or `node-HOST.…`). Refuses to
/// overwrite either file unless `req.force`; the key is written first, mode 0600.
pub fn issue(req: &IssueRequest<'_>) -> Result<IssuedFiles, IdentityError> {
    if !(1..=MAX_DAYS).contains(&req.days) {
        return Err(IdentityError::Days(req.days));
    }
    let ca_paths = [req.ca_cert.to_path_buf()];
    let cas = ca::load_ca_certs(&ca_paths)?;
    let env = ca::common_env(&cas, req.env)?;
    let (issuer, _) = ca::load_ca_key(req.ca_key, &cas, &ca_paths)?;

    let (holder, common_name, extra_san, file_stem) = match &req.subject {
        IssueFor::Operator(name) => {
            validate_operator_name(name)?;
            (
                Holder::Operator(name.clone()),
                name.clone(),
                None,
                format!("operator-{name}"),
            )
        }
        IssueFor::Node { host, node_id } => {
            let san = host_san(host)?;
            let id = node_id.unwrap_or_else(|| derived_node_id(&env, host));
            (
                Holder::Node(id),
                host.clone(),
                Some(san),
                format!("node-{}", host.replace(':', "_")),
            )
        }
    };
    let cert_path = req.out_dir.join(format!("{file_stem}.crt.pem"));
    let key_path = req.out_dir.join(format!("{file_stem}.key.pem"));
    refuse_existing(&[&cert_path, &key_path], req.force)?;
    std::fs::create_dir_all(req.out_dir).map_err(|source| IdentityError::Write {
        path: req.out_dir.to_path_buf(),
        source,
    })?;

    let now = time::OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(i64::from(req.days));
    params.distinguished_name = ca::leaf_name(&env, &common_name);
    let mut sans = vec![SanType::URI(leaf_uri(&env, &holder).try_into()?)];
    sans.extend(extra_san);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Operators only ever dial; nodes dial and accept.
    params.extended_key_usages = match holder {
        Holder::Operator(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
        _ => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let cert = params.signed_by(&key, &issuer)?;

    write_new_file(&key_path, key.serialize_pem().as_bytes(), 0o600, req.force)?;
    write_new_file(&cert_path, cert.pem().as_bytes(), 0o644, req.force)?;
    Ok(IssuedFiles {
        cert: cert_path,
        key: key_path,
        fingerprint: fingerprint(cert.der()),
        holder,
        env,
        not_after: params.not_after,
    })
}

/// The DNS or IP name of a node certificate for `host`.
fn host_san(host: &str) -> Result<SanType, IdentityError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = |reason| IdentityError::InvalidHost {
        host: host.to_string(),
        reason,
    };
    if host.is_empty() || host.len() > 253 {
        return Err(invalid("a host name has 1 to 253 characters"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !host.split('.').all(label_ok) {
        return Err(invalid(
            "use an IP address or a DNS name (letters, digits and -, in dot-separated labels)",
        ));
    }
    Ok(SanType::DnsName(host.try_into()?))
}

/// An issued certificate read back, checked against the trusted CAs.
pub(crate) struct LoadedLeaf {
    pub(crate) env: Env,
    pub(crate) holder: Holder,
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
    /// The CA among the trusted ones that signed it.
    pub(crate) issuer: CertificateDer<'static>,
}

/// Reads an issued certificate and its key: the key must belong to the certificate, the
/// certificate must be a werify leaf, valid now, and signed by one of `cas`.
pub(crate) fn load_issued(
    cert_path: &Path,
    key_path: &Path,
    cas: &[CaCert],
    ca_paths: &[PathBuf],
) -> Result<LoadedLeaf, IdentityError> {
    let bad_cert = |reason: String| IdentityError::BadCert {
        path: cert_path.to_path_buf(),
        reason,
    };
    let pem = read_bounded(cert_path, MAX_PEM_FILE_BYTES)?;
    let cert = CertificateDer::from_pem_slice(&pem)
        .map_err(|e| bad_cert(format!("no PEM CERTIFICATE block ({e})")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
        .map_err(|e| bad_cert(format!("cannot parse certificate: {e}")))?;
    let (env, holder) = match werify_uri_of(&cert).map_err(|e| bad_cert(e.to_string()))? {
        WerifyUri::Leaf { env, holder } => (env, holder),
        WerifyUri::Ca(_) => {
            return Err(bad_cert(
                "it is a CA certificate; CA certificates go with --ca-cert".to_string(),
            ));
        }
    };

    warn_if_key_file_is_open(key_path);
    let bad_key = |reason: String| IdentityError::BadKey {
        path: key_path.to_path_buf(),
        reason,
    };
    let key_pem = read_bounded(key_path, MAX_PEM_FILE_BYTES)?;
    let key_text = String::from_utf8(key_pem).map_err(|_| bad_key("it is not PEM text".into()))?;
    let key = KeyPair::from_pem(&key_text).map_err(|e| bad_key(e.to_string()))?;
    if key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
        return Err(IdentityError::LeafKeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let now = UnixTime::now();
    let mut unusable = None;
    for ca in cas {
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.der.clone())
            .map_err(|e| IdentityError::BadCaCert {
                path: ca.path.clone(),
                reason: e.to_string(),
            })?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| IdentityError::BadCaCert {
            path: ca.path.clone(),
            reason: e.to_string(),
        })?;
        match verifier.verify_client_cert(&cert, &[], now) {
            Ok(_) => {
                return Ok(LoadedLeaf {
                    env,
                    holder,
                    key: PrivatePkcs8KeyDer::from(key.serialize_der()),
                    cert: cert.into_owned(),
                    issuer: ca.der.clone(),
                });
            }
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature,
            )) => {}
            Err(other) => unusable = Some(other.to_string()),
        }
    }
    match unusable {
        Some(reason) => Err(IdentityError::CertNotUsable {
            path: cert_path.to_path_buf(),
            reason,
        }),
        None => Err(IdentityError::NotIssuedByTrustedCa {
            cert: cert_path.to_path_buf(),
            cas: ca_paths.to_vec(),
        }),
    }
}
