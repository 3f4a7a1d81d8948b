//! Who this process is on the wire and whom it trusts: the environment tag, the env CAs it
//! trusts (derived from the tag and a secret, or loaded from PEM files), the one leaf
//! certificate it presents, and the deny list of certificates it refuses although a
//! trusted CA signed them.
//!
//! What lives elsewhere: turning an [`Identity`] into QUIC/TLS configs and checking a
//! peer's certificate is [`crate::rpc::tls`]; which flags and files name the sources is
//! the CLI's business.
//!
//! # Where the CAs come from
//!
//! - **Derived** (default): HKDF-SHA256 over (env, secret) gives an Ed25519 seed; the CA
//!   certificate has fixed fields and fixed validity, and Ed25519 signatures are
//!   deterministic, so every node computes the byte-identical CA certificate without any
//!   file. Without a secret anyone who knows the env name can mint that CA: it keeps envs
//!   apart but authenticates nobody. A secret file may hold two secrets (the new one
//!   first): the process presents a certificate of the first and trusts both CAs.
//! - **PEM**: [`init_ca`] writes a random CA once. A process trusts every CA certificate
//!   it is given (several files, or bundles of several certificates); all of them must be
//!   for the same env, read from their URI SAN `werify://ENV/ca`.
//!
//! # What a process presents
//!
//! - **Minted**: holding a CA key (a derived secret, or a PEM CA key), the process
//!   creates a fresh Ed25519 key at start-up that only ever lives in memory, and signs its
//!   own leaf: `werify://ENV/node/ID` for a node, `werify://ENV/ctl/ID` for `ctl`.
//! - **Issued**: [`issue`] writes a certificate and key for one operator
//!   (`werify://ENV/operator/NAME`) or one node (`werify://ENV/node/ID`); the process
//!   loads them and never sees the CA key.

mod ca;
mod deny;
mod files;
mod issue;
mod uri;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::base::NodeId;
pub use crate::base::env::{Env, ParseEnvError};

pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CaFiles, init_ca};
pub use deny::{DenyEntry, DenyList, MAX_DENY_FILE_BYTES};
pub use files::{Secrets, fingerprint, read_secret_file};
pub use issue::{IssueFor, IssueRequest, IssuedFiles, MAX_DAYS, derived_node_id, issue};
pub use uri::{
    Holder, InvalidOperatorName, MAX_OPERATOR_NAME_CHARS, Role, WerifyUriError,
    validate_operator_name,
};
pub(crate) use uri::{WerifyUri, werify_uri_of};

/// The shared secret of derived mode, or where to read it.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// No secret: the CA only separates envs, it authenticates nobody.
    None,
    /// The secret itself (`WERIFY_SECRET`).
    Given(Vec<u8>),
    /// A file holding the secret in use and, while rotating, the previous one
    /// ([`read_secret_file`]); read again whenever the identity is built.
    File(PathBuf),
}

impl Secret {
    /// The secrets this source names; `None` for no secret (or an empty given one).
    pub fn read(&self) -> Result<Option<Secrets>, IdentityError> {
        match self {
            Secret::None => Ok(None),
            Secret::Given(s) if s.is_empty() => Ok(None),
            Secret::Given(s) => Ok(Some(Secrets {
                current: s.clone(),
                previous: None,
            })),
            Secret::File(path) => read_secret_file(path).map(Some),
        }
    }
}

impl fmt::Debug for Secret {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::None => f.write_str("None"),
            Secret::Given(_) => f.write_str("Given([elided])"),
            Secret::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Where the env CAs and this process's certificate come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// Computed from the env tag and an optional shared secret (see the module doc); the
    /// certificate is minted from the first secret.
    Derived {
        /// The shared secret.
        secret: Secret,
    },
    /// PEM CA certificates (each file may hold several) and the key of one of them: the
    /// certificate is minted from that CA; all of them are trusted.
    Pem {
        /// CA certificate files (`ca.crt.pem`, bundles).
        certs: Vec<PathBuf>,
        /// The private key of one of those CAs (`ca.key.pem`).
        key: PathBuf,
    },
    /// PEM CA certificates to trust and a certificate issued by one of them
    /// ([`issue`]) with its key: no CA key is needed.
    Issued {
        /// CA certificate files (`ca.crt.pem`, bundles).
        ca_certs: Vec<PathBuf>,
        /// The issued certificate.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
}

impl CaSource {
    /// Derived mode with this secret (`None`: without a secret).
    pub fn derived(secret: Option<&[u8]>) -> CaSource {
        CaSource::Derived {
            secret: secret.map_or(Secret::None, |s| Secret::Given(s.to_vec())),
        }
    }
}

/// Why an identity, a CA, a certificate, a secret or a deny list could not be set up.
/// Nothing is half-written: on error no identity exists and [`init_ca`] and [`issue`]
/// leave existing files alone.
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
    /// [`init_ca`] or [`issue`] would overwrite an existing file.
    #[error(
        "{} already exists; pass --force to overwrite it (whoever uses the old file then \
         needs the new one)",
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
    /// The secret file has an unusable shape.
    #[error("secret file {}: {reason}", path.display())]
    BadSecretFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A CA certificate file is not a werify CA certificate.
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
    /// The CA key belongs to none of the CA certificates given.
    #[error(
        "the key in {} does not belong to the CA certificate in {}; use the pair written \
         together by `werify certs init`",
        key.display(),
        show_paths(certs)
    )]
    KeyMismatch {
        /// The CA certificate files.
        certs: Vec<PathBuf>,
        /// The key file.
        key: PathBuf,
    },
    /// Two CA certificates name different envs.
    #[error(
        "the CA in {} is for env \"{first_env}\" but the CA in {} is for env \
         \"{other_env}\"; a node trusts CAs of one env only",
        first.display(),
        other.display()
    )]
    CaEnvsDiffer {
        /// One CA file.
        first: PathBuf,
        /// Its env.
        first_env: Env,
        /// A CA file of another env.
        other: PathBuf,
        /// That env.
        other_env: Env,
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
    /// An issued certificate file is not a werify leaf certificate.
    #[error("{} is not a werify certificate: {reason}", path.display())]
    BadCert {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The key file of an issued certificate is not a usable private key.
    #[error("{} is not a usable private key: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The key does not belong to the issued certificate.
    #[error(
        "the key in {} does not belong to the certificate in {}; use the pair written \
         together by `werify certs issue`",
        key.display(),
        cert.display()
    )]
    LeafKeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The issued certificate is for another env than the CAs.
    #[error(
        "{} is a certificate for env \"{leaf}\", but the CAs given are for env \"{ca}\"",
        path.display()
    )]
    LeafEnvMismatch {
        /// The certificate file.
        path: PathBuf,
        /// The env in the certificate.
        leaf: Env,
        /// The env of the CAs.
        ca: Env,
    },
    /// The issued certificate is not signed by any CA given.
    #[error(
        "{} is not signed by any CA given with --ca-cert ({}); add the CA that issued it",
        cert.display(),
        show_paths(cas)
    )]
    NotIssuedByTrustedCa {
        /// The certificate file.
        cert: PathBuf,
        /// The CA files.
        cas: Vec<PathBuf>,
    },
    /// The issued certificate is expired, not valid yet, or otherwise refused.
    #[error("{} cannot be used: {reason}", path.display())]
    CertNotUsable {
        /// The certificate file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The issued certificate is of a role this process cannot use.
    #[error("{} is the certificate of {holder}; {wanted}", path.display())]
    WrongCertRole {
        /// The certificate file.
        path: PathBuf,
        /// Who the certificate is for.
        holder: Holder,
        /// What this process needs instead.
        wanted: &'static str,
    },
    /// A line of the deny file is neither a fingerprint nor an operator name.
    #[error("{}:{line}: {reason}", path.display())]
    BadDenyFile {
        /// The deny file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operator name that cannot go into a certificate.
    #[error(transparent)]
    InvalidOperator(#[from] InvalidOperatorName),
    /// A node host name that cannot go into a certificate.
    #[error("invalid --node {host:?}: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--days` out of range.
    #[error("--days {0} is out of range: use 1 to 36500")]
    Days(u32),
    /// Certificate generation failed (a bug or an unusable key type, not bad input).
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Paths for a message: `a, b, c`.
fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How this process got the certificate it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    /// Minted at start-up from a CA key this process holds.
    Minted,
    /// Issued beforehand and loaded from a file.
    Issued,
}

/// This process's TLS identity: its env, the CAs it trusts, and the leaf certificate plus
/// key it presents. Cheap to clone; no CA key is kept.
pub struct Identity {
    env: Env,
    holder: Holder,
    node_id: NodeId,
    secret_less: bool,
    presented: Presented,
    /// The CA that signed our leaf.
    issuer: CertificateDer<'static>,
    /// Every trusted CA, `issuer` first.
    trusted: Vec<CertificateDer<'static>>,
    leaf_cert: CertificateDer<'static>,
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            env: self.env.clone(),
            holder: self.holder.clone(),
            node_id: self.node_id,
            secret_less: self.secret_less,
            presented: self.presented,
            issuer: self.issuer.clone(),
            trusted: self.trusted.clone(),
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
            .field("holder", &self.holder)
            .field("secret_less", &self.secret_less)
            .field("presented", &self.presented)
            .field("ca_fingerprint", &self.ca_fingerprint())
            .field("trusted", &self.trusted.len())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Sets up the trusted CAs from `ca` and this process's certificate.
    ///
    /// `env`: `None` means "dev" in derived mode and "whatever the CAs say" in PEM mode; in
    /// PEM mode a given env that differs from the CAs' is refused. When the certificate is
    /// minted, it is for `role` (a node, or a `ctl` client) with `node_id`, and carries
    /// `ips` as IP SANs (informational: peers do not check names, see
    /// [`crate::rpc::tls`]). An issued certificate says its holder itself: a node needs a
    /// node's, a `ctl` client takes an operator's or a node's (which may only read).
    pub fn new(
        env: Option<&Env>,
        ca: &CaSource,
        role: Role,
        node_id: NodeId,
        ips: &[IpAddr],
    ) -> Result<Identity, IdentityError> {
        let minted_holder = match role {
            Role::Node => Holder::Node(node_id),
            Role::Client | Role::Operator => Holder::Client(node_id),
        };
        match ca {
            CaSource::Derived { secret } => {
                let env = env.cloned().unwrap_or_default();
                let secrets = secret.read()?;
                let current = secrets.as_ref().map_or(&[][..], |s| &s.current[..]);
                let (issuer, issuer_cert) = ca::derived_ca(&env, current)?;
                let mut trusted = vec![issuer_cert.clone()];
                if let Some(previous) = secrets.as_ref().and_then(|s| s.previous.as_deref()) {
                    trusted.push(ca::derived_ca(&env, previous)?.1);
                }
                let (leaf_cert, leaf_key) = ca::mint_leaf(&env, &issuer, &minted_holder, ips)?;
                Ok(Identity {
                    env,
                    holder: minted_holder,
                    node_id,
                    secret_less: current.is_empty(),
                    presented: Presented::Minted,
                    issuer: issuer_cert,
                    trusted,
                    leaf_cert,
                    leaf_key,
                })
            }
            CaSource::Pem { certs, key } => {
                let cas = ca::load_ca_certs(certs)?;
                let env = ca::common_env(&cas, env)?;
                let (issuer, issuer_cert) = ca::load_ca_key(key, &cas, certs)?;
                let (leaf_cert, leaf_key) = ca::mint_leaf(&env, &issuer, &minted_holder, ips)?;
                Ok(Identity {
                    env,
                    holder: minted_holder,
                    node_id,
                    secret_less: false,
                    presented: Presented::Minted,
                    trusted: ca::trusted_with_issuer_first(&cas, &issuer_cert),
                    issuer: issuer_cert,
                    leaf_cert,
                    leaf_key,
                })
            }
            CaSource::Issued {
                ca_certs,
                cert,
                key,
            } => {
                let cas = ca::load_ca_certs(ca_certs)?;
                let env = ca::common_env(&cas, env)?;
                let leaf = issue::load_issued(cert, key, &cas, ca_certs)?;
                if leaf.env != env {
                    return Err(IdentityError::LeafEnvMismatch {
                        path: cert.clone(),
                        leaf: leaf.env,
                        ca: env,
                    });
                }
                let wanted = match (role, &leaf.holder) {
                    (Role::Node, Holder::Node(_)) => None,
                    (Role::Node, _) => {
                        Some("a node needs a node certificate (werify certs issue --node HOST)")
                    }
                    (_, Holder::Operator(_) | Holder::Node(_)) => None,
                    (_, Holder::Client(_)) => Some(
                        "werify ctl needs an operator certificate (werify certs issue \
                         --operator NAME)",
                    ),
                };
                if let Some(wanted) = wanted {
                    return Err(IdentityError::WrongCertRole {
                        path: cert.clone(),
                        holder: leaf.holder,
                        wanted,
                    });
                }
                Ok(Identity {
                    node_id: leaf.holder.node_id().unwrap_or(node_id),
                    holder: leaf.holder,
                    env,
                    secret_less: false,
                    presented: Presented::Issued,
                    trusted: ca::trusted_with_issuer_first(&cas, &leaf.issuer),
                    issuer: leaf.issuer,
                    leaf_cert: leaf.cert,
                    leaf_key: leaf.key,
                })
            }
        }
    }

    /// This identity, presenting `current`'s certificate instead of its own when both
    /// were minted here by the same CA for the same holder: reading the files again then
    /// changes what is trusted, not the certificate. Otherwise this identity as it is.
    pub fn keeping_minted_leaf_of(self, current: &Identity) -> Identity {
        let same_minted = self.presented == Presented::Minted
            && current.presented == Presented::Minted
            && self.issuer == current.issuer
            && self.node_id == current.node_id
            && self.holder.role() == current.holder.role();
        if !same_minted {
            return self;
        }
        Identity {
            holder: current.holder.clone(),
            leaf_cert: current.leaf_cert.clone(),
            leaf_key: current.leaf_key.clone_key(),
            ..self
        }
    }

    /// The env this identity belongs to.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Whether this is a node, a `ctl` client or an operator.
    pub fn role(&self) -> Role {
        self.holder.role()
    }

    /// Who the presented certificate says this process is.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The node id: a node's (from its certificate); for a `ctl` client or an operator,
    /// the per-run id given to [`Identity::new`], which never leaves this process.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether the certificate was minted here or issued beforehand.
    pub fn presented(&self) -> Presented {
        self.presented
    }

    /// SHA-256 of the CA certificate (DER) that signed our leaf, 64 lowercase hex digits.
    /// Log it: nodes that print different fingerprints and do not trust each other's CA
    /// cannot talk to each other.
    pub fn ca_fingerprint(&self) -> String {
        fingerprint(&self.issuer)
    }

    /// SHA-256 fingerprints of every trusted CA, the one that signed our leaf first.
    pub fn trusted_fingerprints(&self) -> Vec<String> {
        self.trusted.iter().map(|c| fingerprint(c)).collect()
    }

    /// SHA-256 of our leaf certificate: what a deny file names to shut it out.
    pub fn leaf_fingerprint(&self) -> String {
        fingerprint(&self.leaf_cert)
    }

    /// True in derived mode without a secret: the CA only separates envs, anyone who
    /// knows the env name can join. Callers should log a warning.
    pub fn is_secret_less(&self) -> bool {
        self.secret_less
    }

    /// Every trusted CA certificate: the trust anchors.
    pub(crate) fn trusted_cas(&self) -> &[CertificateDer<'static>] {
        &self.trusted
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
