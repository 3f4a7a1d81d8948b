//! Who this process is on the wire: the environment tag, the env CA (derived from the tag
//! and an optional secret, or loaded from PEM files) and the per-process leaf certificate
//! it signs.
//!
//! What lives elsewhere: turning an [`Identity`] into QUIC/TLS configs and checking a
//! peer's certificate is [`crate::rpc::tls`]; where the secret comes from (flag, env var,
//! file path) is the CLI's business.
//!
//! # The two CA modes
//!
//! - **Derived** (default): HKDF-SHA256 over (env, secret) gives an Ed25519 seed; the CA
//!   certificate has fixed fields and fixed validity, and Ed25519 signatures are
//!   deterministic, so every node computes the byte-identical CA certificate without any
//!   file. Without a secret anyone who knows the env name can mint that CA: it keeps envs
//!   apart but authenticates nobody.
//! - **PEM**: [`init_ca`] writes a random CA once; it is copied to every host. The env is
//!   read back from the CA's URI SAN `werify://ENV/ca`.
//!
//! In both modes every node holds the CA key and issues its own leaf at start-up: a fresh
//! Ed25519 key that only ever lives in memory.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hkdf::Hkdf;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, SanType, date_time_ymd,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use sha2::{Digest, Sha256};
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

use crate::base::NodeId;
pub use crate::base::env::{Env, ParseEnvError};
use crate::base::node_id::ParseNodeIdError;

/// The URI scheme that carries env, role and node id inside certificates.
const URI_SCHEME: &str = "werify://";
/// HKDF salt for the derived CA; bump the version to change every derived CA at once.
const DERIVED_CA_SALT: &[u8] = b"werify-ca-v1";
/// HKDF info for the derived CA's Ed25519 seed.
const DERIVED_CA_INFO: &[u8] = b"ed25519-ca-seed";
/// PKCS#8 v1 wrapper for a raw 32-byte Ed25519 seed (RFC 8410): everything before the seed.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Largest CA certificate or key file we read; real ones are well under 1 KiB.
const MAX_PEM_FILE_BYTES: u64 = 64 * 1024;
/// Largest secret file we read.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;
/// File name of the CA certificate written by [`init_ca`].
pub const CA_CERT_FILE: &str = "ca.crt.pem";
/// File name of the CA private key written by [`init_ca`].
pub const CA_KEY_FILE: &str = "ca.key.pem";

/// What a certificate holder is: a mesh node, or the `werify ctl` command line client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A `werify node` process: URI `werify://ENV/node/ID`.
    Node,
    /// A `werify ctl` invocation: URI `werify://ENV/ctl/ID`.
    Client,
}

impl Role {
    /// The path segment used in the certificate URI: `node` or `ctl`.
    pub fn uri_segment(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Client => "ctl",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_segment())
    }
}

/// Where the env CA comes from.
#[derive(Clone)]
pub enum CaSource {
    /// Computed from the env tag and an optional shared secret (see the module doc).
    Derived {
        /// The shared secret; `None` (or empty) only separates envs, it authenticates nobody.
        secret: Option<Vec<u8>>,
    },
    /// Loaded from files written by [`init_ca`].
    Pem {
        /// The CA certificate, `ca.crt.pem`.
        cert: PathBuf,
        /// The CA private key, `ca.key.pem`.
        key: PathBuf,
    },
}

impl fmt::Debug for CaSource {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::Derived { secret } => f
                .debug_struct("Derived")
                .field("secret", &secret.as_ref().map(|_| "[elided]"))
                .finish(),
            CaSource::Pem { cert, key } => f
                .debug_struct("Pem")
                .field("cert", cert)
                .field("key", key)
                .finish(),
        }
    }
}

/// Why an identity, a CA or a secret could not be set up. Nothing is half-written: on
/// error no identity exists and [`init_ca`] leaves existing files alone.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// [`init_ca`] would overwrite an existing file.
    #[error(
        "{} already exists; pass --force to overwrite it (nodes still using the old CA will \
         then refuse this one)",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file is larger than anything werify writes.
    #[error("{} is larger than {max} bytes; is it the right file?", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        max: u64,
    },
    /// The secret file holds nothing (after trimming the trailing newline).
    #[error("secret file {} is empty; put the shared mesh secret in it", path.display())]
    EmptySecret {
        /// The file.
        path: PathBuf,
    },
    /// The CA certificate file is not a werify CA certificate.
    #[error("{} is not a werify CA certificate: {reason}", path.display())]
    BadCaCert {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The CA key file is not a usable private key.
    #[error("{} is not a usable private key: {reason}", path.display())]
    BadCaKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The CA key does not belong to the CA certificate.
    #[error(
        "the key in {} does not belong to the certificate in {}; use the pair written together \
         by `werify certs init`",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// An env was given but the PEM CA belongs to another one.
    #[error(
        "the CA in {} is for env \"{ca}\", but env \"{given}\" was requested; drop --env or \
         use that env's CA",
        path.display()
    )]
    EnvMismatch {
        /// The certificate file.
        path: PathBuf,
        /// The env that was asked for.
        given: Env,
        /// The env the CA certificate names.
        ca: Env,
    },
    /// Certificate generation failed (a bug or an unusable key type, not bad input).
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// This process's TLS identity: its env, the env CA certificate, and a leaf certificate
/// plus key signed by that CA. Cheap to clone; the CA key is not kept.
pub struct Identity {
    env: Env,
    role: Role,
    node_id: NodeId,
    secret_less: bool,
    ca_cert: CertificateDer<'static>,
    leaf_cert: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            env: self.env.clone(),
            role: self.role,
            node_id: self.node_id,
            secret_less: self.secret_less,
            ca_cert: self.ca_cert.clone(),
            leaf_cert: self.leaf_cert.clone(),
            leaf_key: self.leaf_key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("env", &self.env)
            .field("role", &self.role)
            .field("node_id", &self.node_id)
            .field("secret_less", &self.secret_less)
            .field("ca_fingerprint", &self.ca_fingerprint())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Sets up the env CA from `ca` and issues this process's leaf certificate.
    ///
    /// `env`: `None` means "dev" in derived mode and "whatever the CA says" in PEM mode;
    /// in PEM mode a given env that differs from the CA's is refused. `ips` go into the
    /// leaf as IP SANs (informational: peers do not check names, see [`crate::rpc::tls`]).
    pub fn new(
        env: Option<&Env>,
        ca: &CaSource,
        role: Role,
        node_id: NodeId,
        ips: &[IpAddr],
    ) -> Result<Identity, IdentityError> {
        let (env, issuer, ca_cert, secret_less) = match ca {
            CaSource::Derived { secret } => {
                let env = env.cloned().unwrap_or_default();
                let secret = secret.as_deref().unwrap_or_default();
                let (issuer, ca_cert) = derived_ca(&env, secret)?;
                (env, issuer, ca_cert, secret.is_empty())
            }
            CaSource::Pem { cert, key } => {
                let (ca_env, issuer, ca_cert) = load_pem_ca(cert, key)?;
                if let Some(given) = env
                    && *given != ca_env
                {
                    return Err(IdentityError::EnvMismatch {
                        path: cert.clone(),
                        given: given.clone(),
                        ca: ca_env,
                    });
                }
                (ca_env, issuer, ca_cert, false)
            }
        };
        let (leaf_cert, leaf_key) = issue_leaf(&env, &issuer, role, node_id, ips)?;
        Ok(Identity {
            env,
            role,
            node_id,
            secret_less,
            ca_cert,
            leaf_cert,
            leaf_key,
        })
    }

    /// The env this identity belongs to.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Whether this is a node or the ctl client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The node id carried in the leaf certificate.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// SHA-256 of the CA certificate (DER), 64 lowercase hex digits. Log it: nodes that
    /// print different fingerprints for the same env cannot talk to each other.
    pub fn ca_fingerprint(&self) -> String {
        sha256_hex(&self.ca_cert)
    }

    /// True in derived mode without a secret: the CA only separates envs, anyone who
    /// knows the env name can join. Callers should log a warning.
    pub fn is_secret_less(&self) -> bool {
        self.secret_less
    }

    /// The env CA certificate, the only trust anchor.
    pub(crate) fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca_cert
    }

    /// This process's leaf certificate.
    pub(crate) fn leaf_cert(&self) -> &CertificateDer<'static> {
        &self.leaf_cert
    }

    /// This process's leaf key (PKCS#8).
    pub(crate) fn leaf_key(&self) -> &PrivatePkcs8KeyDer<'static> {
        &self.leaf_key
    }
}

/// What [`init_ca`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFiles {
    /// Path of `ca.crt.pem`.
    pub cert: PathBuf,
    /// Path of `ca.key.pem` (mode 0600).
    pub key: PathBuf,
    /// SHA-256 of the CA certificate (DER), hex, as [`Identity::ca_fingerprint`] shows it.
    pub fingerprint: String,
}

/// Writes a fresh random CA for `env` into `out_dir` (created if missing) as `ca.crt.pem`
/// and `ca.key.pem` (mode 0600). Refuses to overwrite either file unless `force`.
pub fn init_ca(env: &Env, out_dir: &Path, force: bool) -> Result<CaFiles, IdentityError> {
    let cert_path = out_dir.join(CA_CERT_FILE);
    let key_path = out_dir.join(CA_KEY_FILE);
    if !force {
        for path in [&cert_path, &key_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(IdentityError::AlreadyExists { path: path.clone() });
            }
        }
    }
    fs::create_dir_all(out_dir).map_err(|source| IdentityError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;

    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let cert = ca_params(env).self_signed(&key)?;

    // The key first: if it cannot be written, no certificate without a key is left behind.
    write_new_file(&key_path, key.serialize_pem().as_bytes(), 0o600, force)?;
    write_new_file(&cert_path, cert.pem().as_bytes(), 0o644, force)?;
    Ok(CaFiles {
        cert: cert_path,
        key: key_path,
        fingerprint: sha256_hex(cert.der()),
    })
}

/// Reads a shared secret from a file, dropping trailing newline characters (`\n`, `\r\n`).
/// An empty secret is an error: it would silently mean "no secret".
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, IdentityError> {
    let mut secret = read_bounded(path, MAX_SECRET_FILE_BYTES)?;
    while matches!(secret.last(), Some(b'\n' | b'\r')) {
        secret.pop();
    }
    if secret.is_empty() {
        return Err(IdentityError::EmptySecret {
            path: path.to_path_buf(),
        });
    }
    Ok(secret)
}

/// What a `werify://` URI SAN says about its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WerifyUri {
    /// `werify://ENV/ca`: an env CA.
    Ca(Env),
    /// `werify://ENV/node/ID` or `werify://ENV/ctl/ID`: a leaf.
    Leaf {
        /// The env tag.
        env: Env,
        /// Node or ctl client.
        role: Role,
        /// The holder's node id.
        node_id: NodeId,
    },
}

/// Why a certificate or URI does not say which werify env, role and node it belongs to.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WerifyUriError {
    /// The URI has another scheme.
    #[error("URI {uri:?} does not start with {URI_SCHEME}")]
    NotWerify {
        /// The URI as found.
        uri: String,
    },
    /// The env part is not an env tag.
    #[error("URI {uri:?}: {source}")]
    BadEnv {
        /// The URI as found.
        uri: String,
        /// What is wrong with the env.
        source: ParseEnvError,
    },
    /// The node id part is not a node id.
    #[error("URI {uri:?}: {source}")]
    BadNodeId {
        /// The URI as found.
        uri: String,
        /// What is wrong with the id (shared: the parse error is not `Clone`).
        source: Arc<ParseNodeIdError>,
    },
    /// The path is none of the three werify shapes.
    #[error("URI {uri:?} is not werify://ENV/ca, werify://ENV/node/ID or werify://ENV/ctl/ID")]
    BadShape {
        /// The URI as found.
        uri: String,
    },
    /// The DER is not an X.509 certificate.
    #[error("cannot parse certificate: {0}")]
    Unparsable(X509Error),
    /// The subject alternative names extension is malformed.
    #[error("cannot parse subject alternative names: {0}")]
    BadSans(X509Error),
    /// The certificate has no subject alternative names at all.
    #[error("certificate has no subject alternative names")]
    NoSans,
    /// More than one `werify://` URI: ambiguous.
    #[error("certificate has more than one werify:// URI")]
    SeveralUris,
    /// Subject alternative names, but no `werify://` URI among them.
    #[error("certificate has no werify:// URI")]
    NoUri,
}

/// Parses `werify://ENV/ca`, `werify://ENV/node/ID` or `werify://ENV/ctl/ID`.
pub(crate) fn parse_werify_uri(uri: &str) -> Result<WerifyUri, WerifyUriError> {
    let rest = uri
        .strip_prefix(URI_SCHEME)
        .ok_or_else(|| WerifyUriError::NotWerify {
            uri: uri.to_string(),
        })?;
    let mut parts = rest.split('/');
    let env: Env =
        parts
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|source| WerifyUriError::BadEnv {
                uri: uri.to_string(),
                source,
            })?;
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some("ca"), None, None) => WerifyUri::Ca(env),
        (Some(kind @ ("node" | "ctl")), Some(id), None) => WerifyUri::Leaf {
            env,
            role: if kind == "node" {
                Role::Node
            } else {
                Role::Client
            },
            node_id: id.parse().map_err(|e| WerifyUriError::BadNodeId {
                uri: uri.to_string(),
                source: Arc::new(e),
            })?,
        },
        _ => {
            return Err(WerifyUriError::BadShape {
                uri: uri.to_string(),
            });
        }
    };
    Ok(parsed)
}

/// Finds and parses the single `werify://` URI SAN of a DER certificate.
pub(crate) fn werify_uri_of(der: &[u8]) -> Result<WerifyUri, WerifyUriError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| WerifyUriError::Unparsable(X509Error::from(e)))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(WerifyUriError::BadSans)?
        .ok_or(WerifyUriError::NoSans)?;
    let mut found = None;
    for name in &sans.value.general_names {
        if let GeneralName::URI(uri) = name
            && uri.starts_with(URI_SCHEME)
        {
            if found.is_some() {
                return Err(WerifyUriError::SeveralUris);
            }
            found = Some(parse_werify_uri(uri)?);
        }
    }
    found.ok_or(WerifyUriError::NoUri)
}

/// The URI SAN of a leaf.
fn leaf_uri(env: &Env, role: Role, node_id: NodeId) -> String {
    format!("{URI_SCHEME}{env}/{}/{node_id}", role.uri_segment())
}

/// The fixed CA parameters for `env`. Every field is a constant or derived from `env`, so
/// the same key gives the byte-identical certificate on every node.
fn ca_params(env: &Env) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "werify");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, env.as_str());
    params
        .distinguished_name
        .push(DnType::CommonName, format!("werify env CA {env}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Env tags are [a-z0-9-], so the URI is always valid IA5; the fallback is unreachable.
    if let Ok(uri) = format!("{URI_SCHEME}{env}/ca").try_into() {
        params.subject_alt_names = vec![SanType::URI(uri)];
    }
    params
}

/// The derived CA for (env, secret): its issuer (with key) and certificate.
fn derived_ca(
    env: &Env,
    secret: &[u8],
) -> Result<(Issuer<'static, KeyPair>, CertificateDer<'static>), IdentityError> {
    let seed = derive_ca_seed(env, secret);
    let mut pkcs8 = Vec::with_capacity(ED25519_PKCS8_V1_PREFIX.len() + seed.len());
    pkcs8.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
    pkcs8.extend_from_slice(&seed);
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), &PKCS_ED25519)?;
    let params = ca_params(env);
    let cert = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), cert.der().clone()))
}

/// HKDF-SHA256(salt `werify-ca-v1`, ikm = len(env) ‖ env ‖ len(secret) ‖ secret,
/// info `ed25519-ca-seed`), lengths as u32 big-endian so (env, secret) splits are unambiguous.
fn derive_ca_seed(env: &Env, secret: &[u8]) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(8 + env.as_str().len() + secret.len());
    for part in [env.as_str().as_bytes(), secret] {
        // Secrets are read through a 64 KiB cap; saturating keeps this total regardless.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        ikm.extend_from_slice(&len.to_be_bytes());
        ikm.extend_from_slice(part);
    }
    let hkdf = Hkdf::<Sha256>::new(Some(DERIVED_CA_SALT), &ikm);
    let mut seed = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so this cannot fail.
    if hkdf.expand(DERIVED_CA_INFO, &mut seed).is_err() {
        unreachable!("32-byte HKDF-SHA256 output is always valid");
    }
    seed
}

/// Loads a PEM CA: its env (from the URI SAN), issuer (with key) and certificate.
fn load_pem_ca(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Env, Issuer<'static, KeyPair>, CertificateDer<'static>), IdentityError> {
    let bad_cert = |reason: String| IdentityError::BadCaCert {
        path: cert_path.to_path_buf(),
        reason,
    };
    let cert_pem = read_bounded(cert_path, MAX_PEM_FILE_BYTES)?;
    let ca_cert = CertificateDer::from_pem_slice(&cert_pem)
        .map_err(|e| bad_cert(format!("no PEM CERTIFICATE block ({e})")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&ca_cert)
        .map_err(|e| bad_cert(format!("cannot parse certificate: {e}")))?;
    if !parsed.is_ca() {
        return Err(bad_cert("it is not a CA certificate".to_string()));
    }
    let env = match werify_uri_of(&ca_cert).map_err(|e| bad_cert(e.to_string()))? {
        WerifyUri::Ca(env) => env,
        WerifyUri::Leaf { .. } => {
            return Err(bad_cert(
                "it is a node certificate, not a CA (expected URI werify://ENV/ca)".to_string(),
            ));
        }
    };

    warn_if_key_file_is_open(key_path);
    let key_pem = read_bounded(key_path, MAX_PEM_FILE_BYTES)?;
    let key_text = String::from_utf8(key_pem).map_err(|_| IdentityError::BadCaKey {
        path: key_path.to_path_buf(),
        reason: "it is not PEM text".to_string(),
    })?;
    let key = KeyPair::from_pem(&key_text).map_err(|e| IdentityError::BadCaKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if key.public_key_raw() != parsed.public_key().subject_public_key.data.as_ref() {
        return Err(IdentityError::KeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    let issuer = Issuer::from_ca_cert_der(&ca_cert, key)
        .map_err(|e| bad_cert(format!("cannot use it as issuer: {e}")))?;
    Ok((env, issuer, ca_cert.into_owned()))
}

/// Issues this process's leaf: a fresh Ed25519 key, signed by the env CA.
///
/// Validity is the CA's fixed 2024..2100 window rather than "now ± a bit": the key never
/// leaves this process's memory and dies with it, while anyone holding the CA key (every
/// node) could mint leaves anyway, so a short expiry would only add an outage for nodes
/// that run longer than it, and rejections between hosts with skewed clocks.
fn issue_leaf(
    env: &Env,
    issuer: &Issuer<'static, KeyPair>,
    role: Role,
    node_id: NodeId,
    ips: &[IpAddr],
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), IdentityError> {
    let mut params = CertificateParams::default();
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "werify");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, env.as_str());
    params
        .distinguished_name
        .push(DnType::CommonName, node_id.to_string());
    let mut sans: Vec<SanType> = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    sans.push(SanType::URI(leaf_uri(env, role, node_id).try_into()?));
    sans.push(SanType::DnsName(
        format!("{node_id}.{env}.werify").try_into()?,
    ));
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;

    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let cert = params.signed_by(&key, issuer)?;
    let key_der = PrivatePkcs8KeyDer::from(key.serialize_der());
    Ok((cert.der().clone(), key_der))
}

/// SHA-256 of `bytes` as lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a whole file, refusing ones larger than `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, IdentityError> {
    let read_err = |source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > max {
        return Err(IdentityError::FileTooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(bytes)
}

/// Creates `path` with `mode` (Unix) and writes `contents`. Without `overwrite` an existing
/// file is an error; with it the old file is replaced (and gets `mode`, not its old one).
fn write_new_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: bool,
) -> Result<(), IdentityError> {
    use std::io::Write;
    let write_err = |source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    };
    if overwrite {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(e)),
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            IdentityError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(e)
        }
    })?;
    file.write_all(contents).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Logs a warning when the CA key file is readable by group or others.
fn warn_if_key_file_is_open(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "CA key file is readable by other users; run chmod 600 on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn env(s: &str) -> Env {
        s.parse().unwrap()
    }

    fn derived(secret: Option<&[u8]>) -> CaSource {
        CaSource::Derived {
            secret: secret.map(<[u8]>::to_vec),
        }
    }

    /// A fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "werify-identity-{tag}-{}-{}",
                std::process::id(),
                NodeId::random().short()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn env_accepts_only_the_documented_alphabet() {
        for ok in ["dev", "prod", "eu-west-1", "a", &"x".repeat(63)] {
            assert_eq!(ok.parse::<Env>().unwrap().as_str(), ok);
        }
        for bad in ["", "Prod", "a_b", "a.b", "é", "a b", &"x".repeat(64)] {
            let err = bad.parse::<Env>().unwrap_err();
            assert!(err.to_string().contains("a-z"), "{err}");
        }
        assert_eq!(Env::default().to_string(), "dev");
    }

    #[test]
    fn env_serde_validates() {
        let good: Env = serde_json::from_str("\"prod\"").unwrap();
        assert_eq!(good, env("prod"));
        assert!(serde_json::from_str::<Env>("\"PROD\"").is_err());
        assert_eq!(serde_json::to_string(&good).unwrap(), "\"prod\"");
    }

    #[test]
    fn derived_ca_is_byte_identical_across_computations() {
        let (_, a) = derived_ca(&env("prod"), b"s3cret").unwrap();
        let (_, b) = derived_ca(&env("prod"), b"s3cret").unwrap();
        assert_eq!(a, b);
        let id1 = Identity::new(
            Some(&env("prod")),
            &derived(Some(b"s3cret")),
            Role::Node,
            NodeId::random(),
            &[],
        )
        .unwrap();
        let id2 = Identity::new(
            Some(&env("prod")),
            &derived(Some(b"s3cret")),
            Role::Client,
            NodeId::random(),
            &[],
        )
        .unwrap();
        assert_eq!(id1.ca_cert(), id2.ca_cert());
        assert_eq!(id1.ca_fingerprint(), id2.ca_fingerprint());
        assert_eq!(id1.ca_fingerprint().len(), 64);
        // Fresh leaf keys per process.
        assert_ne!(id1.leaf_cert(), id2.leaf_cert());
    }

    #[test]
    fn derived_ca_depends_on_env_and_secret() {
        let (_, base) = derived_ca(&env("prod"), b"s").unwrap();
        let (_, other_secret) = derived_ca(&env("prod"), b"t").unwrap();
        let (_, other_env) = derived_ca(&env("staging"), b"s").unwrap();
        // Length prefixes keep ("prod", "s") apart from ("pro", "ds").
        let (_, shifted) = derived_ca(&env("pro"), b"ds").unwrap();
        assert_ne!(base, other_secret);
        assert_ne!(base, other_env);
        assert_ne!(base, shifted);
    }

    #[test]
    fn derived_ca_has_the_fixed_fields() {
        let (_, der) = derived_ca(&env("prod"), b"").unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.is_ca());
        assert_eq!(werify_uri_of(&der).unwrap(), WerifyUri::Ca(env("prod")));
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.path_len_constraint, Some(0));
        assert_eq!(cert.validity().not_before.to_datetime().year(), 2024);
        assert_eq!(cert.validity().not_after.to_datetime().year(), 2100);
        let subject = cert.subject().to_string();
        assert!(subject.contains("werify env CA prod"), "{subject}");
    }

    #[test]
    fn secret_less_is_reported() {
        let id = |ca: &CaSource| {
            Identity::new(None, ca, Role::Node, NodeId::random(), &[])
                .unwrap()
                .is_secret_less()
        };
        assert!(id(&derived(None)));
        assert!(id(&derived(Some(b""))));
        assert!(!id(&derived(Some(b"x"))));
        let dev = Identity::new(None, &derived(None), Role::Node, NodeId::random(), &[]).unwrap();
        assert_eq!(dev.env(), &Env::default());
    }

    #[test]
    fn leaf_carries_env_role_id_ips_and_dns_name() {
        let node_id = NodeId::random();
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
        let id = Identity::new(
            Some(&env("prod")),
            &derived(Some(b"k")),
            Role::Client,
            node_id,
            &[ip],
        )
        .unwrap();
        assert_eq!((id.role(), id.node_id()), (Role::Client, node_id));
        assert_eq!(
            werify_uri_of(id.leaf_cert()).unwrap(),
            WerifyUri::Leaf {
                env: env("prod"),
                role: Role::Client,
                node_id
            }
        );
        let (_, cert) = x509_parser::parse_x509_certificate(id.leaf_cert()).unwrap();
        assert!(!cert.is_ca());
        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        let dns = format!("{node_id}.prod.werify");
        assert!(names.contains(&GeneralName::DNSName(&dns)));
        assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 7])));
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
    }

    #[test]
    fn uri_parsing_rejects_malformed_uris() {
        let id = NodeId::random();
        assert_eq!(
            parse_werify_uri(&format!("werify://e/node/{id}")).unwrap(),
            WerifyUri::Leaf {
                env: env("e"),
                role: Role::Node,
                node_id: id
            }
        );
        for bad in [
            "https://e/ca".to_string(),
            "werify://E/ca".to_string(),
            "werify://e/ca/x".to_string(),
            "werify://e/node".to_string(),
            "werify://e/node/zz".to_string(),
            format!("werify://e/admin/{id}"),
            format!("werify://e/node/{id}/x"),
            "werify://".to_string(),
        ] {
            assert!(parse_werify_uri(&bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn pem_init_and_load_round_trip() {
        let dir = TempDir::new("roundtrip");
        let files = init_ca(&env("staging"), &dir.0.join("certs"), false).unwrap();
        assert_eq!(files.cert, dir.0.join("certs").join(CA_CERT_FILE));
        let pem = CaSource::Pem {
            cert: files.cert.clone(),
            key: files.key.clone(),
        };
        // No env given: the CA's env is used.
        let id = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
        assert_eq!(id.env(), &env("staging"));
        assert_eq!(id.ca_fingerprint(), files.fingerprint);
        assert!(!id.is_secret_less());
        // The matching env given explicitly is fine too, and loads the same CA.
        let again = Identity::new(
            Some(&env("staging")),
            &pem,
            Role::Client,
            NodeId::random(),
            &[],
        )
        .unwrap();
        assert_eq!(again.ca_cert(), id.ca_cert());
    }

    #[cfg(unix)]
    #[test]
    fn pem_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let files = init_ca(&env("prod"), &dir.0, false).unwrap();
        let mode = fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Forcing replaces the file with a private one even if the old one was open.
        fs::set_permissions(&files.key, fs::Permissions::from_mode(0o644)).unwrap();
        let files = init_ca(&env("prod"), &dir.0, true).unwrap();
        let mode = fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn pem_init_never_overwrites_without_force() {
        let dir = TempDir::new("force");
        let first = init_ca(&env("prod"), &dir.0, false).unwrap();
        let err = init_ca(&env("prod"), &dir.0, false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(CA_CERT_FILE) && msg.contains("--force"),
            "{msg}"
        );
        // Unchanged.
        let pem = CaSource::Pem {
            cert: first.cert.clone(),
            key: first.key.clone(),
        };
        let id = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
        assert_eq!(id.ca_fingerprint(), first.fingerprint);
        // Only the key left over also blocks.
        fs::remove_file(&first.cert).unwrap();
        let msg = init_ca(&env("prod"), &dir.0, false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(CA_KEY_FILE) && msg.contains("--force"),
            "{msg}"
        );
        let forced = init_ca(&env("prod"), &dir.0, true).unwrap();
        assert_ne!(forced.fingerprint, first.fingerprint);
    }

    #[test]
    fn pem_env_mismatch_is_refused() {
        let dir = TempDir::new("envmismatch");
        let files = init_ca(&env("prod"), &dir.0, false).unwrap();
        let pem = CaSource::Pem {
            cert: files.cert,
            key: files.key,
        };
        let err = Identity::new(
            Some(&env("staging")),
            &pem,
            Role::Node,
            NodeId::random(),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, IdentityError::EnvMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("\"prod\"") && msg.contains("\"staging\""),
            "{msg}"
        );
    }

    #[test]
    fn pem_key_must_match_cert() {
        let a = TempDir::new("keya");
        let b = TempDir::new("keyb");
        let fa = init_ca(&env("prod"), &a.0, false).unwrap();
        let fb = init_ca(&env("prod"), &b.0, false).unwrap();
        let crossed = CaSource::Pem {
            cert: fa.cert,
            key: fb.key,
        };
        let err = Identity::new(None, &crossed, Role::Node, NodeId::random(), &[]).unwrap_err();
        assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn pem_garbage_is_a_clear_error() {
        let dir = TempDir::new("garbage");
        let files = init_ca(&env("prod"), &dir.0, false).unwrap();
        fs::write(&files.cert, b"not a certificate").unwrap();
        let pem = CaSource::Pem {
            cert: files.cert.clone(),
            key: files.key.clone(),
        };
        let err = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap_err();
        assert!(matches!(err, IdentityError::BadCaCert { .. }), "{err}");
        assert!(err.to_string().contains(CA_CERT_FILE));

        let missing = CaSource::Pem {
            cert: dir.0.join("nope.pem"),
            key: files.key,
        };
        let err = Identity::new(None, &missing, Role::Node, NodeId::random(), &[]).unwrap_err();
        assert!(matches!(err, IdentityError::Read { .. }), "{err}");
        assert!(err.to_string().contains("nope.pem"));
    }

    #[test]
    fn secret_file_trims_newline_and_refuses_empty() {
        let dir = TempDir::new("secret");
        let path = dir.0.join("secret");
        fs::write(&path, b"hunter2\r\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"hunter2");
        fs::write(&path, b"two words \n\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"two words ");
        fs::write(&path, b"\n").unwrap();
        let err = read_secret_file(&path).unwrap_err();
        assert!(matches!(err, IdentityError::EmptySecret { .. }), "{err}");
        fs::write(&path, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let err = read_secret_file(&path).unwrap_err();
        assert!(matches!(err, IdentityError::FileTooLarge { .. }), "{err}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let ca = derived(Some(b"topsecret"));
        assert!(!format!("{ca:?}").contains("topsecret"));
        let id = Identity::new(None, &ca, Role::Node, NodeId::random(), &[]).unwrap();
        let shown = format!("{id:?}");
        assert!(shown.contains("ca_fingerprint") && !shown.contains("leaf_key"));
    }
}
