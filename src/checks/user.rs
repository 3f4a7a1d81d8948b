//! The `user_exists` check.
//!
//! `user_exists` passes when `/etc/passwd` has an entry whose first field is exactly the
//! name. Only the files are read: users known only to NSS services (LDAP, SSSD, systemd's
//! dynamic users) are not seen. An unreadable file is an `Error`.

use super::Outcome;
use super::accounts::{PASSWD_FILE, has_entry};

/// Runs `user_exists` against `/etc/passwd`.
pub(crate) fn user_exists(name: &str) -> Outcome {
    user_exists_in(PASSWD_FILE, name)
}

fn user_exists_in(db: &str, name: &str) -> Outcome {
    match has_entry(db, name) {
        Ok(found) => Outcome::Success(found),
        Err(e) => Outcome::Error(format!("reading {db}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::{SAMPLE_PASSWD, TempDir};

    #[test]
    fn finds_users_by_exact_name() {
        let dir = TempDir::new();
        let db = dir.write("passwd", SAMPLE_PASSWD);
        assert_eq!(user_exists_in(&db, "alice"), Outcome::Success(true));
        assert_eq!(user_exists_in(&db, "root"), Outcome::Success(true));
        assert_eq!(user_exists_in(&db, "ali"), Outcome::Success(false));
        assert_eq!(user_exists_in(&db, "# a comment"), Outcome::Success(false));
        assert_eq!(user_exists_in(&db, "broken"), Outcome::Success(true));
        match user_exists_in(&dir.join("missing"), "root") {
            Outcome::Error(e) => assert!(e.starts_with("reading "), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn the_real_passwd_has_root() {
        assert_eq!(user_exists("root"), Outcome::Success(true));
        assert_eq!(
            user_exists("werify-no-such-user-xyz"),
            Outcome::Success(false)
        );
    }
}
