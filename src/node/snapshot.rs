//! The membership snapshot in the data dir: written atomically (temp file + rename) so a
//! restarted node can rejoin on its own. What goes into a snapshot is decided by
//! [`Membership::snapshot`](crate::mesh::membership::Membership::snapshot); this module only
//! stores and loads it.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::mesh::membership::Snapshot;

/// A snapshot file larger than this is refused rather than read.
const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

/// Why a snapshot could not be stored or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a werify membership snapshot ({reason}); move it away to start fresh")]
    Corrupt { path: String, reason: String },
}

/// Writes `snap` to `path` atomically.
pub fn save(path: &Path, snap: &Snapshot) -> Result<(), SnapshotError> {
    let err = |source| SnapshotError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(snap, &mut bytes)
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(err)?;
    f.write_all(&bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Loads the snapshot at `path`; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    let shown = || path.display().to_string();
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotError::Read {
                path: shown(),
                source,
            });
        }
    };
    if meta.len() > MAX_SNAPSHOT_BYTES {
        return Err(SnapshotError::Corrupt {
            path: shown(),
            reason: format!(
                "{} bytes, more than the {} allowed",
                meta.len(),
                MAX_SNAPSHOT_BYTES
            ),
        });
    }
    let bytes = fs::read(path).map_err(|source| SnapshotError::Read {
        path: shown(),
        source,
    })?;
    ciborium::from_reader(bytes.as_slice())
        .map(Some)
        .map_err(|e| SnapshotError::Corrupt {
            path: shown(),
            reason: e.to_string(),
        })
}
