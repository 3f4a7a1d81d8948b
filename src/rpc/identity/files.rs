//! Reading and writing the identity files: bounded reads, files created with a mode and
//! never overwritten by accident, the secret file (one or two secrets), and certificate
//! fingerprints.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::rpc::identity::IdentityError;

/// Largest CA certificate or key file we read; real ones are well under 1 KiB (a bundle
/// of a few CAs stays far below).
pub(crate) const MAX_PEM_FILE_BYTES: u64 = 64 * 1024;
/// Largest secret file we read.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The shared secrets of derived mode: the one this process presents, and the one it also
/// accepts while a mesh rotates from it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    /// The secret this process's certificate is derived from (the new one).
    pub current: Vec<u8>,
    /// A secret still accepted from peers (the old one), while they move to `current`.
    pub previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    /// Never prints the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &"[elided]")
            .field("previous", &self.previous.as_ref().map(|_| "[elided]"))
            .finish()
    }
}

/// Reads the secret file: its first line is the secret this process uses, an optional
/// second line a previous secret it still accepts. Line ends (`\n`, `\r\n`) are not part
/// of a secret; a line holding nothing is an error (it would silently mean "no secret"),
/// and so is a third line.
pub fn read_secret_file(path: &Path) -> Result<Secrets, IdentityError> {
    let bytes = read_bounded(path, MAX_SECRET_FILE_BYTES)?;
    let mut lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let bad = |reason: &str| IdentityError::BadSecretFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    match lines.as_slice() {
        [] => Err(IdentityError::EmptySecret {
            path: path.to_path_buf(),
        }),
        [current] => Ok(Secrets {
            current: current.to_vec(),
            previous: None,
        }),
        [current, previous] => {
            if current.is_empty() {
                return Err(bad(
                    "line 1 is empty; put the secret in use on line 1 and, while rotating, \
                     the previous one on line 2",
                ));
            }
            if current == previous {
                return Err(bad("lines 1 and 2 hold the same secret"));
            }
            Ok(Secrets {
                current: current.to_vec(),
                previous: Some(previous.to_vec()),
            })
        }
        _ => Err(bad(
            "it has more than two lines; line 1 is the secret in use and line 2, while \
             rotating, the previous one",
        )),
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits: how werify names certificates.
pub fn fingerprint(bytes: &[u8]) -> String {
    crate::base::hex::encode(&Sha256::digest(bytes))
}

/// Reads a whole file, refusing ones larger than `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, IdentityError> {
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

/// Refuses to go on if any of `paths` exists (unless `force`): nothing is written then.
pub(crate) fn refuse_existing(paths: &[&Path], force: bool) -> Result<(), IdentityError> {
    if force {
        return Ok(());
    }
    for path in paths {
        if fs::symlink_metadata(path).is_ok() {
            return Err(IdentityError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Creates `path` with `mode` (Unix) and writes `contents`. Without `overwrite` an existing
/// file is an error; with it the old file is replaced (and gets `mode`, not its old one).
pub(crate) fn write_new_file(
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

/// Logs a warning when a private key file is readable by group or others.
pub(crate) fn warn_if_key_file_is_open(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "private key file is readable by other users; run chmod 600 on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
