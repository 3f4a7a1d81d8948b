//! What a node presents and trusts, read from the files it was started with: its
//! certificate (minted from a CA key, or issued), the CAs it trusts and its deny list;
//! [`load`] reads them, [`reload`] reads them again and switches a running node's
//! transport to them, cutting off connections they no longer allow. The cryptography is
//! in [`crate::rpc::identity`] and [`crate::rpc::tls`].

use std::net::IpAddr;
use std::path::PathBuf;

use crate::base::NodeId;
use crate::base::env::Env;
use crate::rpc::identity::{CaSource, DenyList, Identity, IdentityError, Role};
use crate::rpc::tls::TlsError;
use crate::rpc::transport::{Installed, Transport};

/// The files (and flags) a node's identity, trust and deny list come from.
#[derive(Clone, Debug)]
pub struct SecurityFiles {
    /// The env, if given.
    pub env: Option<Env>,
    /// Where the CAs and the certificate come from.
    pub ca: CaSource,
    /// The deny file, if any.
    pub deny: Option<PathBuf>,
    /// IP addresses a minted certificate names.
    pub ips: Vec<IpAddr>,
}

/// Why the files could not be loaded again; the node keeps what it had.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A file is missing or wrong.
    #[error("{0}; keeping the certificates, CAs and deny list in use")]
    Files(#[from] IdentityError),
    /// The new identity does not fit this node (another env, role or node id).
    #[error("{0}; keeping the certificates, CAs and deny list in use")]
    Tls(#[from] TlsError),
}

/// The identity and deny list `files` describe for node `node_id` (a minted certificate
/// gets this id; an issued one carries its own).
pub fn load(files: &SecurityFiles, node_id: NodeId) -> Result<(Identity, DenyList), IdentityError> {
    let identity = Identity::new(
        files.env.as_ref(),
        &files.ca,
        Role::Node,
        node_id,
        &files.ips,
    )?;
    let deny = match &files.deny {
        Some(path) => DenyList::load(path)?,
        None => DenyList::default(),
    };
    Ok((identity, deny))
}

/// Reads `files` again and installs them on `transport`: later handshakes use them, and
/// connections whose peer they no longer accept are closed. Logs what it did.
pub fn reload(files: &SecurityFiles, transport: &Transport) -> Result<Installed, ReloadError> {
    let node_id = transport.identity().node_id();
    let (identity, deny) = load(files, node_id)?;
    let entries = deny.len();
    let installed = transport.install(&identity, deny)?;
    tracing::info!(
        "certificates reloaded: {}; deny list of {entries} entries",
        describe(&identity)
    );
    for (peer, why) in &installed.closed {
        tracing::warn!("closed the connection with {peer}: {why}");
    }
    Ok(installed)
}

/// Reloads a running node's certificates, CAs and deny list from its files.
#[derive(Clone)]
pub struct Reloader {
    /// The files the node was started with.
    pub files: SecurityFiles,
    /// The node's transport.
    pub transport: Transport,
}

impl Reloader {
    /// [`reload`] for this node.
    pub fn reload(&self) -> Result<Installed, ReloadError> {
        reload(&self.files, &self.transport)
    }
}

/// One line on what `identity` presents and trusts, for the log.
pub fn describe(identity: &Identity) -> String {
    let trusted = identity.trusted_fingerprints();
    let presented = match identity.presented() {
        crate::rpc::identity::Presented::Minted => "minted here",
        crate::rpc::identity::Presented::Issued => "issued",
    };
    format!(
        "presenting the {presented} certificate sha256 {} of {} (CA {}), trusting {} CA{} ({})",
        identity.leaf_fingerprint(),
        identity.holder(),
        identity.ca_fingerprint(),
        trusted.len(),
        if trusted.len() == 1 { "" } else { "s" },
        trusted.join(", ")
    )
}
