//! The `werify://` URI SAN that says which env, role and holder a certificate belongs to,
//! and the names it may carry: `werify://ENV/ca`, `werify://ENV/node/ID`,
//! `werify://ENV/ctl/ID` and `werify://ENV/operator/NAME`.

use std::fmt;
use std::sync::Arc;

use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;

use crate::base::NodeId;
use crate::base::env::{Env, ParseEnvError};
use crate::base::node_id::ParseNodeIdError;

/// The URI scheme that carries env, role and holder inside certificates.
pub(crate) const URI_SCHEME: &str = "werify://";
/// Longest operator name.
pub const MAX_OPERATOR_NAME_CHARS: usize = 64;

/// What a certificate holder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A `werify node` process: URI `werify://ENV/node/ID`.
    Node,
    /// A `werify ctl` invocation that minted its own certificate from the CA key (derived
    /// mode, or `--ca-key`): URI `werify://ENV/ctl/ID`. It may do what an operator may.
    Client,
    /// A person or tool holding a certificate from `werify certs issue --operator NAME`:
    /// URI `werify://ENV/operator/NAME`.
    Operator,
}

impl Role {
    /// The path segment used in the certificate URI: `node`, `ctl` or `operator`.
    pub fn uri_segment(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Client => "ctl",
            Role::Operator => "operator",
        }
    }

    /// Whether this role may change the mesh: submit operations, add or remove hosts,
    /// start a refresh. Nodes may only read (list, status, get) besides their mesh
    /// requests.
    pub fn may_operate(self) -> bool {
        matches!(self, Role::Client | Role::Operator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri_segment())
    }
}

/// Who holds a leaf certificate, as its URI says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A mesh node and its node id.
    Node(NodeId),
    /// A `ctl` client with a certificate it minted itself, and its per-run id.
    Client(NodeId),
    /// An operator and their name.
    Operator(String),
}

impl Holder {
    /// The holder's role.
    pub fn role(&self) -> Role {
        match self {
            Holder::Node(_) => Role::Node,
            Holder::Client(_) => Role::Client,
            Holder::Operator(_) => Role::Operator,
        }
    }

    /// The node id, for a node's certificate.
    pub fn node_id(&self) -> Option<NodeId> {
        match self {
            Holder::Node(id) => Some(*id),
            Holder::Client(_) | Holder::Operator(_) => None,
        }
    }

    /// The operator name, for an operator's certificate.
    pub fn operator(&self) -> Option<&str> {
        match self {
            Holder::Operator(name) => Some(name),
            Holder::Node(_) | Holder::Client(_) => None,
        }
    }
}

impl fmt::Display for Holder {
    /// `node 1a2b3c4d`, `ctl client 1a2b3c4d`, `operator "alice"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Node(id) => write!(f, "node {}", id.short()),
            Holder::Client(id) => write!(f, "ctl client {}", id.short()),
            Holder::Operator(name) => write!(f, "operator {name:?}"),
        }
    }
}

/// Checks an operator name: 1 to 64 characters from `[A-Za-z0-9._@-]`, not 64 hex
/// digits (a deny file would read that as a certificate fingerprint).
pub fn validate_operator_name(name: &str) -> Result<(), InvalidOperatorName> {
    let err = |why: &'static str| InvalidOperatorName {
        name: name.to_string(),
        why,
    };
    if name.is_empty() || name.chars().count() > MAX_OPERATOR_NAME_CHARS {
        return Err(err("it must have 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err(err("use only letters, digits and . _ @ -"));
    }
    if name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(err(
            "64 hex digits would read as a certificate fingerprint in deny files",
        ));
    }
    Ok(())
}

/// An operator name that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid operator name {name:?}: {why}")]
pub struct InvalidOperatorName {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// What a `werify://` URI SAN says about its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WerifyUri {
    /// `werify://ENV/ca`: an env CA.
    Ca(Env),
    /// A leaf: `werify://ENV/node/ID`, `werify://ENV/ctl/ID` or
    /// `werify://ENV/operator/NAME`.
    Leaf {
        /// The env tag.
        env: Env,
        /// Who holds it.
        holder: Holder,
    },
}

/// Why a certificate or URI does not say which werify env, role and holder it belongs to.
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
    /// The operator part is not an operator name.
    #[error("URI {uri:?}: {source}")]
    BadOperator {
        /// The URI as found.
        uri: String,
        /// What is wrong with the name.
        source: InvalidOperatorName,
    },
    /// The path is none of the werify shapes.
    #[error(
        "URI {uri:?} is not werify://ENV/ca, werify://ENV/node/ID, werify://ENV/ctl/ID or \
         werify://ENV/operator/NAME"
    )]
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

/// Parses a `werify://` URI of one of the shapes in the module doc.
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
    let node_id = |id: &str| {
        id.parse::<NodeId>().map_err(|e| WerifyUriError::BadNodeId {
            uri: uri.to_string(),
            source: Arc::new(e),
        })
    };
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some("ca"), None, None) => WerifyUri::Ca(env),
        (Some("node"), Some(id), None) => WerifyUri::Leaf {
            env,
            holder: Holder::Node(node_id(id)?),
        },
        (Some("ctl"), Some(id), None) => WerifyUri::Leaf {
            env,
            holder: Holder::Client(node_id(id)?),
        },
        (Some("operator"), Some(name), None) => {
            validate_operator_name(name).map_err(|source| WerifyUriError::BadOperator {
                uri: uri.to_string(),
                source,
            })?;
            WerifyUri::Leaf {
                env,
                holder: Holder::Operator(name.to_string()),
            }
        }
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
pub(crate) fn leaf_uri(env: &Env, holder: &Holder) -> String {
    match holder {
        Holder::Node(id) | Holder::Client(id) => {
            format!("{URI_SCHEME}{env}/{}/{id}", holder.role().uri_segment())
        }
        Holder::Operator(name) => format!("{URI_SCHEME}{env}/operator/{name}"),
    }
}

/// The URI SAN of an env CA.
pub(crate) fn ca_uri(env: &Env) -> String {
    format!("{URI_SCHEME}{env}/ca")
}
