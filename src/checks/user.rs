//! The `user_exists` check and name→id lookups in `/etc/passwd` and `/etc/group`
//! (also used by `file_mode` for owner and group names).
//!
//! `user_exists` passes when `/etc/passwd` has an entry whose first field is exactly the
//! name. Only the files are read: users known only to NSS services (LDAP, SSSD, systemd's
//! dynamic users) are not seen. An unreadable file is an `Error`.

use std::io::Read;

use super::Outcome;

/// The local user database.
pub(crate) const PASSWD_FILE: &str = "/etc/passwd";
/// The local group database.
pub(crate) const GROUP_FILE: &str = "/etc/group";

/// Largest account database read (guards against a hostile or runaway file).
const MAX_DB_BYTES: u64 = 64 << 20;

/// Runs `user_exists` against `/etc/passwd`.
pub(crate) fn user_exists(name: &str) -> Outcome {
    user_exists_in(PASSWD_FILE, name)
}

fn user_exists_in(db: &str, name: &str) -> Outcome {
    match read_db(db) {
        Ok(text) => Outcome::Success(entries(&text).any(|(entry, _)| entry == name)),
        Err(e) => Outcome::Error(format!("reading {db}: {e}")),
    }
}

/// The numeric id (third field) of `name` in a passwd- or group-format file.
pub(crate) fn lookup_id(db: &str, name: &str) -> std::io::Result<Option<u32>> {
    let text = read_db(db)?;
    Ok(entries(&text)
        .find(|(entry, _)| *entry == name)
        .and_then(|(_, id)| id))
}

fn read_db(db: &str) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(db)?
        .take(MAX_DB_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `(name, id)` per non-comment line of a `name:x:id:...` file; the id is `None` when
/// the field is missing or not a number.
fn entries(text: &str) -> impl Iterator<Item = (&str, Option<u32>)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next().filter(|n| !n.is_empty())?;
            let id = fields.nth(1).and_then(|id| id.trim().parse().ok());
            Some((name, id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::TempDir;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment:x:5\n\
        alice:x:1000:1000::/home/alice:/bin/sh\n\
        broken\n\
        bob:x:notanumber:1:::\n";

    #[test]
    fn finds_users_by_exact_name() {
        let dir = TempDir::new();
        let db = dir.write("passwd", PASSWD);
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
    fn looks_up_ids() {
        let dir = TempDir::new();
        let db = dir.write("passwd", PASSWD);
        assert_eq!(lookup_id(&db, "alice").unwrap(), Some(1000));
        assert_eq!(lookup_id(&db, "root").unwrap(), Some(0));
        assert_eq!(lookup_id(&db, "bob").unwrap(), None);
        assert_eq!(lookup_id(&db, "nobody-here").unwrap(), None);
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
