//! `werify node`: assembling a running node from its flags — data dir and node id,
//! TLS identity, QUIC endpoint, membership task, result store, coordinator, periodic
//! health — and shutting it down gracefully on Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::checks::run::RunOptions;
use crate::checks::spec::load_operations_file;
use crate::cli::args::NodeArgs;
use crate::cli::identity::identity_from_args;
use crate::mesh::config::Config;
use crate::mesh::id::NodeId;
use crate::mesh::member::Peer;
use crate::mesh::membership::Membership;
use crate::mesh::{health, runtime, snapshot};
use crate::rpc::coordinator::Coordinator;
use crate::rpc::hostaddr::parse_host;
use crate::rpc::identity::Role;
use crate::rpc::server::{NodeContext, serve};
use crate::rpc::store::{Store, StoreLimits};
use crate::rpc::transport::Transport;

/// Runs a node until it is told to stop.
pub async fn run_node(args: NodeArgs) -> ExitCode {
    match run_until(args, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
    }
}

fn default_data_dir(addr: SocketAddr) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".werify"));
    base.join("werify")
        .join(format!("{}-{}", addr.ip(), addr.port()))
}

/// The node id kept in the data dir, created on first start.
fn load_or_create_node_id(dir: &Path) -> Result<NodeId, String> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| {
            format!(
                "{}: {e}; delete the file to give this node a new identity",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::random();
            std::fs::write(&path, format!("{id}\n"))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The node's QUIC stateless-reset key, kept in the data dir (mode 0600) so that it
/// survives restarts: see [`Transport::server`].
fn load_or_create_reset_key(dir: &Path) -> Result<[u8; 32], String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("reset-key");
    match std::fs::read(&path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            format!(
                "{} is not 32 bytes; delete it and restart the node",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(&key)
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => return Err(format!("invalid --tag {t:?}: expected KEY=VALUE")),
        }
    }
    Ok(out)
}

/// Runs a node until `shutdown` completes, then leaves the mesh gracefully. The binary
/// passes Ctrl-C/SIGTERM; benchmarks and tests can run many nodes in one process.
pub async fn run_until(
    args: NodeArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let bind = SocketAddr::new(args.bind, args.port);
    let advertise = match &args.advertise {
        None => bind,
        Some(a) => {
            let mut addr = parse_host(a).map_err(|e| format!("--advertise: {e}"))?;
            if !a.contains(':') || a.ends_with(']') {
                addr.set_port(args.port);
            }
            addr
        }
    };
    if advertise.ip().is_unspecified() {
        return Err(format!(
            "cannot advertise {advertise}: other nodes need a concrete address; pass --advertise IP"
        ));
    }
    let tags = parse_tags(&args.tag)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| default_data_dir(advertise));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let node_id = load_or_create_node_id(&data_dir)?;

    let identity = identity_from_args(&args.identity, Role::Node, node_id, &[advertise.ip()])?;
    if identity.is_secret_less() {
        tracing::warn!(
            "no env secret given: anyone who knows the env name {:?} can join this mesh; use --secret-file or PEM mode (werify certs init)",
            identity.env().to_string()
        );
    }
    let env = identity.env().to_string();
    let fingerprint = identity.ca_fingerprint();
    let reset_key = load_or_create_reset_key(&data_dir)?;
    let transport =
        Transport::server(Arc::new(identity), bind, &reset_key).map_err(|e| e.to_string())?;

    let periodic = match &args.checks {
        Some(path) => Some(load_operations_file(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let run_options = RunOptions {
        allow_command: args.allow_command,
        concurrency: args.workers as usize,
        ..RunOptions::default()
    };

    let config = Config::for_profile(args.profile);
    let me = Peer {
        id: node_id,
        addr: advertise,
    };
    let mut membership = Membership::new(me, tags, config, rand::random(), Instant::now());
    let snapshot_path = data_dir.join("membership.cbor");
    match snapshot::load(&snapshot_path) {
        Ok(Some(snap)) => membership.restore(Instant::now(), &snap),
        Ok(None) => {}
        Err(e) => tracing::warn!("ignoring the membership snapshot: {e}"),
    }
    let mut seeds = Vec::new();
    for j in &args.join {
        let addr = parse_host(j).map_err(|e| format!("--join: {e}"))?;
        if addr != advertise {
            seeds.push(addr);
        }
    }
    if !seeds.is_empty() {
        membership.join(Instant::now(), &seeds);
    }
    let mesh = runtime::spawn(membership, transport.clone(), Some(snapshot_path));

    let store = Store::open(&data_dir.join("operations.redb"), StoreLimits::default())
        .map_err(|e| e.to_string())?;
    let (refresh_tx, refresh_rx) = tokio::sync::mpsc::channel(16);
    let coordinator = Coordinator::new(
        store,
        transport.clone(),
        mesh.clone(),
        node_id,
        advertise,
        args.workers as usize,
        run_options.clone(),
        refresh_tx.clone(),
    );
    health::spawn(
        mesh.clone(),
        periodic,
        args.check_interval,
        run_options.clone(),
        refresh_rx,
    );

    let ctx = Arc::new(NodeContext {
        transport: transport.clone(),
        mesh: mesh.clone(),
        coordinator,
        node_id,
        addr: advertise,
        env: env.clone(),
        profile: args.profile.to_string(),
        run_options,
        check_slots: Arc::new(Semaphore::new(args.workers as usize)),
        refresh_tx,
    });
    tracing::info!(
        "werify node {} listening on {bind} (advertised as {advertise}), env {env:?}, profile {}, CA {}, data dir {}",
        node_id.short(),
        args.profile,
        fingerprint,
        data_dir.display()
    );
    serve(ctx, shutdown).await;
    tracing::info!("shutting down: leaving the mesh");
    let _ = tokio::time::timeout(Duration::from_secs(2), mesh.leave()).await;
    // Give the leave datagrams a moment to go out before the endpoint closes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    transport.shutdown(Duration::from_millis(500)).await;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
