//! What a node presents and trusts, read from the files it is given: its certificate
//! (minted from a CA key, or issued), the CAs it trusts and its deny list. [`load`] reads
//! them, at start and at every reload ([`crate::node::reload`] installs them on the
//! running transport). The cryptography is in [`crate::rpc::identity`] and
//! [`crate::rpc::tls`].

use std::net::IpAddr;
use std::path::PathBuf;

use crate::base::NodeId;
use crate::base::env::Env;
use crate::rpc::identity::{CaSource, DenyList, Identity, IdentityError, Presented, Role};

/// The files (and flags) a node's identity, trust and deny list come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityFiles {
    /// The env, if given.
    pub env: Option<Env>,
    /// Where the CAs and the certificate come from.
    pub ca: CaSource,
    /// The deny file, if any.
    pub deny: Option<PathBuf>,
}

/// The identity and deny list `files` describe for node `node_id` (a minted certificate
/// gets this id and names `ips`; an issued one carries its own id).
pub fn load(
    files: &SecurityFiles,
    node_id: NodeId,
    ips: &[IpAddr],
) -> Result<(Identity, DenyList), IdentityError> {
    let identity = Identity::new(files.env.as_ref(), &files.ca, Role::Node, node_id, ips)?;
    let deny = match &files.deny {
        Some(path) => DenyList::load(path)?,
        None => DenyList::default(),
    };
    Ok((identity, deny))
}

/// One line on what `identity` presents and trusts, for the log.
pub fn describe(identity: &Identity) -> String {
    let trusted = identity.trusted_fingerprints();
    let presented = match identity.presented() {
        Presented::Minted => "minted here",
        Presented::Issued => "issued",
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
