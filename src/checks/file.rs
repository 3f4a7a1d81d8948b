//! Checks on a path's metadata: `file_exists` and `file_mode`.
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

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;

use super::Outcome;
use super::accounts::{GROUP_FILE, PASSWD_FILE, lookup_id};

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
}
