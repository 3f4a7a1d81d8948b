//! Checks on a path's metadata: `file_exists` and `file_mode`, plus
//! `open_regular`, the one safe way the content checks (`content.rs`) open a file.
//!
//! `file_exists`: `stat` following symlinks. Exists (any kind of file) ⇒ `Success(true)`;
//! not found (also a dangling symlink) ⇒ `Success(false)`; any other failure, such as a
//! path component that is not a directory or a permission problem ⇒ `Error` naming the
//! path and the OS reason.
//!
//! `file_mode`: `stat` following symlinks; passes when the permission bits (`mode &
//! 0o7777`) equal the expected ones and, when given, the owner and group match. Owner and
//! group are a numeric id or a name looked up in `/etc/passwd` / `/etc/group` (names only
//! known to NSS services such as LDAP are not found: use the numeric id).
//!
//! Reading file contents never blocks on FIFOs and never opens devices: see
//! `open_regular`.

use std::fs::{File, FileType, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use super::Outcome;
use super::user::{GROUP_FILE, PASSWD_FILE, lookup_id};

/// `O_NONBLOCK` on Linux (every architecture Rust supports there except alpha/parisc,
/// which Rust does not target). Spelled out because the crate forbids `unsafe` and does
/// not depend on `libc`.
const O_NONBLOCK: i32 = 0o4000;

/// Runs `file_exists`.
pub(crate) fn file_exists(path: &str) -> Outcome {
    match std::fs::metadata(path) {
        Ok(_) => Outcome::Success(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Outcome::Success(false),
        Err(e) => Outcome::Error(format!("stat {path}: {e}")),
    }
}

/// Runs `file_mode`.
pub(crate) fn file_mode(
    path: &str,
    mode: u32,
    owner: Option<&str>,
    group: Option<&str>,
) -> Outcome {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Outcome::Error(format!("stat {path}: {e}")),
    };
    if meta.mode() & 0o7777 != mode {
        return Outcome::Success(false);
    }
    for (wanted, actual, db, what) in [
        (owner, meta.uid(), PASSWD_FILE, "user"),
        (group, meta.gid(), GROUP_FILE, "group"),
    ] {
        let Some(wanted) = wanted else { continue };
        let wanted_id = match wanted.parse::<u32>() {
            Ok(id) => id,
            Err(_) => match lookup_id(db, wanted) {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return Outcome::Error(format!(
                        "no {what} named {wanted} in {db}; use the numeric id instead"
                    ));
                }
                Err(e) => return Outcome::Error(format!("reading {db}: {e}")),
            },
        };
        if wanted_id != actual {
            return Outcome::Success(false);
        }
    }
    Outcome::Success(true)
}

/// What kind of file a non-regular file is, for error messages.
pub(crate) fn file_kind(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading only if it is a regular file no larger than `max_bytes`.
///
/// The path is stat-ed first so devices are never opened (opening some, like a
/// watchdog, has side effects) and is then opened with `O_NONBLOCK` and checked again
/// on the open descriptor, so a file swapped for a FIFO in between cannot block us.
/// Errors are one-line messages naming the path.
pub(crate) fn open_regular(path: &str, max_bytes: u64) -> Result<File, String> {
    let check = |meta: std::fs::Metadata| -> Result<(), String> {
        if !meta.is_file() {
            return Err(format!(
                "{path} is {}; only regular files can be read",
                file_kind(meta.file_type())
            ));
        }
        if meta.len() > max_bytes {
            return Err(format!(
                "{path} is {} bytes, above the limit of {max_bytes} bytes for content checks",
                meta.len()
            ));
        }
        Ok(())
    };
    check(std::fs::metadata(path).map_err(|e| format!("stat {path}: {e}"))?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("open {path}: {e}"))?;
    check(file.metadata().map_err(|e| format!("stat {path}: {e}"))?)?;
    Ok(file)
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
/// Fewer than `buf.len()` means end of file.
pub(crate) fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::{TempDir, running_as_root};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_exists_true_false_and_error() {
        let dir = TempDir::new();
        let file = dir.write("exists.txt", b"x");
        assert_eq!(file_exists(&file), Outcome::Success(true));
        assert_eq!(file_exists(&dir.path_str()), Outcome::Success(true));
        assert_eq!(file_exists(&dir.join("missing")), Outcome::Success(false));
        assert_eq!(file_exists(""), Outcome::Success(false));
        std::os::unix::fs::symlink(dir.join("missing"), dir.join("dangling")).unwrap();
        assert_eq!(file_exists(&dir.join("dangling")), Outcome::Success(false));
        // ENOTDIR: a path through a regular file.
        let through_file = format!("{file}/x");
        match file_exists(&through_file) {
            Outcome::Error(e) => {
                assert!(e.contains(&through_file), "{e}");
                assert!(e.contains("Not a directory"), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn file_exists_reports_permission_denied() {
        if running_as_root() {
            eprintln!("skipping the EACCES assertion: root bypasses directory permissions");
            return;
        }
        let dir = TempDir::new();
        let locked = dir.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(format!("{locked}/f"), b"x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let outcome = file_exists(&format!("{locked}/f"));
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        match outcome {
            Outcome::Error(e) => assert!(e.contains("Permission denied"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn file_mode_compares_bits_owner_and_group() {
        let dir = TempDir::new();
        let file = dir.write("m", b"x");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let uid = meta.uid().to_string();
        let gid = meta.gid().to_string();
        assert_eq!(file_mode(&file, 0o640, None, None), Outcome::Success(true));
        assert_eq!(file_mode(&file, 0o644, None, None), Outcome::Success(false));
        assert_eq!(
            file_mode(&file, 0o640, Some(&uid), Some(&gid)),
            Outcome::Success(true)
        );
        let other_uid = (meta.uid() + 1).to_string();
        assert_eq!(
            file_mode(&file, 0o640, Some(&other_uid), None),
            Outcome::Success(false)
        );
        match file_mode(&file, 0o640, Some("werify-no-such-user"), None) {
            Outcome::Error(e) => assert!(e.contains("no user named werify-no-such-user"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        if meta.uid() == 0 {
            assert_eq!(
                file_mode(&file, 0o640, Some("root"), None),
                Outcome::Success(true)
            );
        }
        assert!(matches!(
            file_mode(&dir.join("missing"), 0o640, None, None),
            Outcome::Error(_)
        ));
    }

    #[test]
    fn open_regular_refuses_non_regular_files_without_blocking() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        let e = open_regular(&fifo, u64::MAX).unwrap_err();
        assert!(e.contains("is a FIFO"), "{e}");
        let e = open_regular("/dev/zero", u64::MAX).unwrap_err();
        assert!(e.contains("is a character device"), "{e}");
        let e = open_regular(&dir.path_str(), u64::MAX).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        let socket = dir.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = open_regular(&socket, u64::MAX).unwrap_err();
        assert!(e.contains("is a socket"), "{e}");
        let big = dir.write("big", &[b'a'; 100]);
        let e = open_regular(&big, 99).unwrap_err();
        assert!(e.contains("above the limit of 99 bytes"), "{e}");
        assert!(open_regular(&big, 100).is_ok());
    }
}
