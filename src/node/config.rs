//! [`NodeConfig`]: everything a node is started with, already parsed and typed. The command
//! line (and, later, a config file) builds one; [`crate::node::run`] takes it. Nothing here
//! reads flags, files or the environment.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::base::Env;
use crate::mesh::config::Profile;
use crate::rpc::hostaddr::DEFAULT_PORT;
use crate::rpc::identity::CaSource;
use crate::rpc::protocol::ProtocolRange;

/// How a node is started.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The env tag; `None` means the default env in derived mode, or the CA's env in PEM mode.
    pub env: Option<Env>,
    /// Where the trusted CAs and this node's certificate come from: derived from the env
    /// (and a secret), PEM CA files with a CA key, or an issued certificate.
    pub ca: CaSource,
    /// A file of certificate fingerprints and operator names this node refuses.
    pub deny: Option<PathBuf>,
    /// IP address to listen on (UDP, QUIC).
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one (the node then advertises the port it got).
    pub port: u16,
    /// Address other nodes reach this one at, `IP[:PORT]`; `None` means the bind address.
    pub advertise: Option<String>,
    /// Nodes to join the mesh through, `HOST[:PORT]`; retried until one answers.
    pub join: Vec<String>,
    /// Tags that travel with this node's membership.
    pub tags: BTreeMap<String, String>,
    /// Hosts an operation coordinated here contacts at once, and checks run at once here.
    pub workers: usize,
    /// Where the node keeps its id, membership snapshot and operation results; `None`
    /// means `$XDG_STATE_HOME/werify/IP-PORT` (or `~/.local/state/werify/IP-PORT`).
    pub data_dir: Option<PathBuf>,
    /// Protocol timing.
    pub profile: Profile,
    /// Checks this node runs periodically; their summary is gossiped to the whole mesh.
    pub checks: Option<PathBuf>,
    /// How often the periodic checks run.
    pub check_interval: Duration,
    /// Whether `command` checks may run here.
    pub allow_command: bool,
    /// Where to serve the page, `/healthz`, `/metrics` and the JSON endpoints over HTTP;
    /// `None` (the default) serves no HTTP at all.
    pub http: Option<SocketAddr>,
    /// The protocol versions this node speaks: [`ProtocolRange::SUPPORTED`], except for
    /// a node held at older versions in a test of a mixed mesh.
    pub protocols: ProtocolRange,
    /// The file holding the bearer token the HTTP endpoint asks for (every path but
    /// `/healthz`); needed when `http` is not a loopback address.
    pub http_token_file: Option<PathBuf>,
    /// Programs run for every membership event this node sees (`--on-event`).
    pub on_event: Vec<PathBuf>,
}

impl Default for NodeConfig {
    /// The embedded defaults: env `dev` derived without a secret, 127.0.0.1 on port 30035,
    /// 64 workers, the `lan` profile, periodic checks every 30 s when a file is given, no
    /// HTTP endpoint, no event scripts.
    fn default() -> NodeConfig {
        NodeConfig {
            env: None,
            ca: CaSource::derived(None),
            deny: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            advertise: None,
            join: Vec::new(),
            tags: BTreeMap::new(),
            workers: 64,
            data_dir: None,
            profile: Profile::Lan,
            checks: None,
            check_interval: Duration::from_secs(30),
            allow_command: false,
            http: None,
            protocols: ProtocolRange::SUPPORTED,
            http_token_file: None,
            on_event: Vec::new(),
        }
    }
}
