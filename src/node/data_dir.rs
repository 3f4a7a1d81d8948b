//! The files a node keeps in its data dir besides its stores: its stable node id and its
//! QUIC stateless-reset key. The membership snapshot is in [`crate::node::snapshot`], the
//! operation store in [`crate::ops::store`].

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::base::NodeId;
use crate::node::NodeError;

/// `$XDG_STATE_HOME/werify/IP-PORT`, else `~/.local/state/werify/IP-PORT`, else
/// `.werify/werify/IP-PORT`.
pub fn default_data_dir(addr: SocketAddr) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".werify"));
    base.join("werify")
        .join(format!("{}-{}", addr.ip(), addr.port()))
}

fn file_error(path: &Path, what: &'static str, source: std::io::Error) -> NodeError {
    NodeError::DataFile {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// The node id kept in the data dir, created on first start.
pub fn load_or_create_node_id(dir: &Path) -> Result<NodeId, NodeError> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|e| NodeError::BadNodeId {
            path: path.clone(),
            reason: format!("{e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::random();
            std::fs::write(&path, format!("{id}\n")).map_err(|e| file_error(&path, "write", e))?;
            Ok(id)
        }
        Err(e) => Err(file_error(&path, "read", e)),
    }
}

/// Makes the data dir's node id `id` (a node whose certificate carries its id); says so
/// when that changes the id.
pub fn store_node_id(dir: &Path, id: NodeId) -> Result<(), NodeError> {
    let path = dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim() == id.to_string() => return Ok(()),
        Ok(text) => tracing::info!(
            "this node's certificate is for node {id}; the data dir said {}: using the certificate's",
            text.trim()
        ),
        Err(_) => {}
    }
    std::fs::write(&path, format!("{id}\n")).map_err(|e| file_error(&path, "write", e))
}

/// The node's QUIC stateless-reset key, kept in the data dir (mode 0600) so that it
/// survives restarts: see [`crate::rpc::transport::Transport::server`].
pub fn load_or_create_reset_key(dir: &Path) -> Result<[u8; 32], NodeError> {
    let path = dir.join("reset-key");
    match std::fs::read(&path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| NodeError::BadResetKey { path: path.clone() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| file_error(&path, "create", e))?;
            f.write_all(&key)
                .and_then(|_| f.sync_all())
                .map_err(|e| file_error(&path, "write", e))?;
            Ok(key)
        }
        Err(e) => Err(file_error(&path, "read", e)),
    }
}
