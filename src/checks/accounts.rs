//! The local account databases, `/etc/passwd` and `/etc/group`: whether a name has an
//! entry, and name→id lookups (for `user_exists`, and for `file_mode`'s owner and
//! group).
//!
//! Only the files are read: accounts known only to NSS services (LDAP, SSSD, systemd's
//! dynamic users) are not seen.

use std::io::Read;

/// The local user database.
pub(crate) const PASSWD_FILE: &str = "/etc/passwd";
/// The local group database.
pub(crate) const GROUP_FILE: &str = "/etc/group";

/// Largest account database read (guards against a hostile or runaway file).
const MAX_DB_BYTES: u64 = 64 << 20;

/// The numeric id (third field) of `name` in a passwd- or group-format file.
pub(crate) fn lookup_id(db: &str, name: &str) -> std::io::Result<Option<u32>> {
    let text = read_db(db)?;
    Ok(entries(&text)
        .find(|(entry, _)| *entry == name)
        .and_then(|(_, id)| id))
}

/// The fields of `name`'s entry in a passwd- or group-format file (its first field
/// included), if it has one.
pub(crate) fn entry(db: &str, name: &str) -> std::io::Result<Option<Vec<String>>> {
    let text = read_db(db)?;
    Ok(text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .map(|fields| fields.into_iter().map(str::to_owned).collect()))
}

/// The name of the first entry with numeric id `id` in a passwd- or group-format file.
pub(crate) fn name_of(db: &str, id: u32) -> std::io::Result<Option<String>> {
    let text = read_db(db)?;
    Ok(entries(&text)
        .find(|(_, entry_id)| *entry_id == Some(id))
        .map(|(name, _)| name.to_owned()))
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
    use crate::checks::testutil::{SAMPLE_PASSWD, TempDir};

    #[test]
    fn looks_up_ids() {
        let dir = TempDir::new();
        let db = dir.write("passwd", SAMPLE_PASSWD);
        assert_eq!(lookup_id(&db, "alice").unwrap(), Some(1000));
        assert_eq!(lookup_id(&db, "root").unwrap(), Some(0));
        assert_eq!(lookup_id(&db, "bob").unwrap(), None);
        assert_eq!(lookup_id(&db, "nobody-here").unwrap(), None);
        assert_eq!(name_of(&db, 1000).unwrap().as_deref(), Some("alice"));
        assert_eq!(name_of(&db, 0).unwrap().as_deref(), Some("root"));
        assert_eq!(name_of(&db, 4242).unwrap(), None);
        let alice = entry(&db, "alice").unwrap().unwrap();
        assert_eq!(alice.first().map(String::as_str), Some("alice"));
        assert_eq!(alice.get(2).map(String::as_str), Some("1000"));
        assert_eq!(entry(&db, "ali").unwrap(), None);
    }
}
