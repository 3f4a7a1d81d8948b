//! The composition root: a running node assembled from a [`NodeConfig`] — data dir and
//! node id, TLS identity, QUIC endpoint, the [`driver`] of the membership state machine,
//! the result store and coordinator, periodic [`health`], the request [`dispatch`], the
//! [`metrics`] and, with `--http`, the [`http`] endpoint — changed live through its
//! [`reload::Reloader`], and shut down gracefully when told to, telling a service manager
//! both ([`notify`]). Flags and files are read by the CLI, not here; protocol logic lives
//! in `crate::mesh`, operations in `crate::ops`, the wire in `crate::rpc`.

pub mod config;
pub mod data_dir;
pub mod dispatch;
pub mod driver;
pub mod health;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod snapshot;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

pub use config::NodeConfig;

use crate::base::NodeId;
use crate::checks::SpecError;
use crate::checks::run::RunOptions;
use crate::checks::spec::load_operations_file;
use crate::mesh::config::Config;
use crate::mesh::member::Peer;
use crate::mesh::membership::Membership;
use crate::node::dispatch::{NodeContext, serve};
use crate::node::driver::MeshClient;
use crate::node::health::PeriodicChecks;
use crate::node::http::HttpError;
use crate::node::metrics::{HandshakeFailure, Metrics, Side};
use crate::node::reload::{LiveConfig, Reloader};
use crate::ops::coordinator::Coordinator;
use crate::ops::store::{Store, StoreError, StoreLimits};
use crate::rpc::hostaddr::{HostError, parse_host};
use crate::rpc::identity::{Identity, IdentityError, Role};
use crate::rpc::transport::{DialFailure, Transport, TransportError};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    // The configuration.
    #[error("--advertise: {0}")]
    Advertise(HostError),
    #[error("cannot advertise {0}: other nodes need a concrete address; pass --advertise IP")]
    AdvertiseUnspecified(SocketAddr),
    #[error("--join: {0}")]
    Join(HostError),
    #[error(transparent)]
    Checks(#[from] SpecError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(
        "port 0 needs an explicit data dir: the default one is named after the port; pass --data-dir"
    )]
    PortZeroNeedsDataDir,

    // The host: files, ports.
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    DataFile {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{}: {reason}; delete the file to give this node a new identity", path.display())]
    BadNodeId { path: PathBuf, reason: String },
    #[error("{} is not 32 bytes; delete it and restart the node", path.display())]
    BadResetKey { path: PathBuf },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Runs a node until `shutdown` completes, then leaves the mesh gracefully. The binary
/// passes Ctrl-C/SIGTERM; tests and benchmarks run many nodes in one process.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    Node::start(config).await?.serve(shutdown).await;
    Ok(())
}

/// A node that has bound its port and started its tasks, not yet serving requests.
pub struct Node {
    ctx: Arc<NodeContext>,
    http: Option<tokio::net::TcpListener>,
    reloader: Reloader,
}

impl Node {
    /// Opens the data dir, builds the identity, binds the endpoint, starts the mesh driver,
    /// the coordinator and periodic health. Requests are answered once [`Node::serve`] runs.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let bind = SocketAddr::new(config.bind, config.port);
        let mut advertise = match &config.advertise {
            None => bind,
            Some(a) => {
                let mut addr = parse_host(a).map_err(NodeError::Advertise)?;
                if !a.contains(':') || a.ends_with(']') {
                    addr.set_port(config.port);
                }
                addr
            }
        };
        if advertise.ip().is_unspecified() {
            return Err(NodeError::AdvertiseUnspecified(advertise));
        }
        // Port 0 binds a free port, learned only once the endpoint is bound; the default
        // data dir is named after the port, so port 0 needs an explicit one.
        if config.port == 0 && config.data_dir.is_none() {
            return Err(NodeError::PortZeroNeedsDataDir);
        }
        let data_dir = config
            .data_dir
            .clone()
            .unwrap_or_else(|| data_dir::default_data_dir(advertise));
        std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let node_id = data_dir::load_or_create_node_id(&data_dir)?;

        let identity = Identity::new(
            config.env.as_ref(),
            &config.ca,
            Role::Node,
            node_id,
            &[advertise.ip()],
        )?;
        if identity.is_secret_less() {
            tracing::warn!(
                "no env secret given: anyone who knows the env name {:?} can join this mesh; use --secret-file or PEM mode (werify certs init)",
                identity.env().to_string()
            );
        }
        let env = identity.env().to_string();
        let fingerprint = identity.ca_fingerprint();
        let reset_key = data_dir::load_or_create_reset_key(&data_dir)?;
        let transport = Transport::server(Arc::new(identity), bind, &reset_key)?;
        let metrics = Arc::new(Metrics::new());
        {
            let metrics = metrics.clone();
            transport.on_dial_failed(move |why| {
                let reason = match why {
                    DialFailure::Connection(e) => HandshakeFailure::of(e),
                    DialFailure::TimedOut => HandshakeFailure::Timeout,
                };
                metrics.handshake_failed(Side::Dial, reason);
            });
        }
        let http = match config.http {
            Some(addr) => {
                let listener = http::bind(addr).await?;
                let local = listener.local_addr().unwrap_or(addr);
                if !local.ip().is_loopback() {
                    tracing::warn!(
                        "the HTTP endpoint on {local} is not on loopback: anyone who reaches it can read /metrics and /v1/status (no authentication)"
                    );
                }
                tracing::info!("HTTP endpoint on http://{local} (/healthz, /metrics, /v1/status)");
                Some(listener)
            }
            None => None,
        };
        if config.port == 0 {
            advertise.set_port(transport.local_addr()?.port());
        }

        let periodic = match &config.checks {
            Some(path) => Some(Arc::new(load_operations_file(path)?)),
            None => None,
        };
        // What a reload may change is handed to its users through these channels.
        let (options_tx, run_options) = watch::channel(RunOptions {
            allow_command: config.allow_command,
            concurrency: config.workers,
            ..RunOptions::default()
        });
        let (periodic_tx, periodic_rx) = watch::channel(PeriodicChecks {
            checks: periodic.clone(),
            interval: config.check_interval,
        });

        let me = Peer {
            id: node_id,
            addr: advertise,
        };
        let mut membership = Membership::new(
            me,
            config.tags.clone(),
            Config::for_profile(config.profile),
            rand::random(),
            Instant::now(),
        );
        let snapshot_path = data_dir.join("membership.cbor");
        match snapshot::load(&snapshot_path) {
            Ok(Some(snap)) => membership.restore(Instant::now(), &snap),
            Ok(None) => {}
            Err(e) => tracing::warn!("ignoring the membership snapshot: {e}"),
        }
        let mut contacts = Vec::new();
        for j in &config.join {
            let addr = parse_host(j).map_err(NodeError::Join)?;
            if addr != advertise {
                contacts.push(addr);
            }
        }
        if !contacts.is_empty() {
            membership.join(Instant::now(), &contacts);
        }
        let mesh = driver::spawn(
            membership,
            transport.clone(),
            Some(snapshot_path),
            metrics.clone(),
        );

        let store = Store::open(&data_dir.join("operations.redb"), StoreLimits::default())?;
        let (refresh_tx, refresh_rx) = tokio::sync::mpsc::channel(16);
        let coordinator = Coordinator::new(
            store,
            transport.clone(),
            mesh.clone(),
            node_id,
            advertise,
            config.workers,
            run_options.clone(),
            refresh_tx.clone(),
        );
        coordinator.observe(metrics.clone());
        let reloader = Reloader::new(
            mesh.clone(),
            periodic_tx,
            options_tx,
            LiveConfig {
                tags: config.tags.clone(),
                checks: config.checks.clone(),
                check_interval: config.check_interval,
                allow_command: config.allow_command,
            },
            periodic,
        );
        let periodic = health::spawn(
            mesh.clone(),
            periodic_rx,
            run_options.clone(),
            refresh_rx,
            metrics.clone(),
        );
        tracing::info!(
            "werify node {} listening on {} (advertised as {advertise}), env {env:?}, profile {}, CA {}, data dir {}",
            node_id.short(),
            transport.local_addr().map_or(bind, |a| a),
            config.profile,
            fingerprint,
            data_dir.display()
        );
        let ctx = Arc::new(NodeContext {
            transport,
            mesh,
            coordinator,
            node_id,
            addr: advertise,
            env,
            profile: config.profile.to_string(),
            run_options,
            check_slots: Arc::new(Semaphore::new(config.workers)),
            refresh_tx,
            metrics,
            periodic,
            join: contacts,
        });
        Ok(Node {
            ctx,
            http,
            reloader,
        })
    }

    /// The address this node advertises to the mesh (`IP:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.ctx.addr
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.ctx.node_id
    }

    /// Where the HTTP endpoint listens (with the port it got for port 0), if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Changes what can change while the node runs (tags, periodic checks, command
    /// checks), without leaving the mesh.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// A handle on the mesh driver, to watch or steer membership from the same process.
    pub fn mesh(&self) -> MeshClient {
        self.ctx.mesh.clone()
    }

    /// Answers requests until `shutdown` completes, then leaves the mesh gracefully.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Node { ctx, http, .. } = self;
        let (mesh, transport) = (ctx.mesh.clone(), ctx.transport.clone());
        // Aborting the HTTP task drops its connections with it.
        let http = http.map(|listener| tokio::spawn(http::serve(listener, ctx.clone())));
        // The driver answers only after its first pass, which hands the join requests to
        // the contacts (from --join and the snapshot) to the transport: the first join
        // attempt is made. Its answers are not awaited: the node retries until one comes.
        let _ = mesh.view().await;
        notify::ready(&format!("serving on {}", ctx.addr));
        serve(ctx, shutdown).await;
        notify::stopping();
        if let Some(task) = http {
            task.abort();
        }
        tracing::info!("shutting down: leaving the mesh");
        let _ = tokio::time::timeout(Duration::from_secs(2), mesh.leave()).await;
        // Give the leave datagrams a moment to go out before the endpoint closes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        transport.shutdown(Duration::from_millis(500)).await;
    }
}
