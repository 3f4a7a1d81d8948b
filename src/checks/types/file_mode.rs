//! The `file_mode` check: does a path have the expected permissions (and owner and
//! group)?
//!
//! `stat` following symlinks; passes when the permission bits (`mode & 0o7777`) equal
//! the expected ones and, when given, the owner and group match. Owner and group are a
//! numeric id or a name looked up in `/etc/passwd` / `/etc/group` (names only known to
//! NSS services such as LDAP are not found: use the numeric id).

use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use crate::checks::Outcome;

use crate::checks::accounts::{GROUP_FILE, PASSWD_FILE, lookup_id, name_of};
use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, account_name, non_empty_text,
    opt, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::run::{CheckContext, blocking};

/// `file_mode`: permission bits (and optionally owner and group) of a path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileMode {
    /// Path to stat (symlinks followed).
    pub path: String,
    /// Expected permission bits, e.g. `0o644` (written `"0644"` in the file).
    pub mode: u32,
    /// Expected owner: a user name or a numeric uid.
    pub owner: Option<String>,
    /// Expected group: a group name or a numeric gid.
    pub group: Option<String>,
}

impl CheckType for FileMode {
    const NAME: &'static str = "file_mode";
    const DOC: &'static str =
        "passes when path has permission bits mode (and owner and group, when given)";
    const FIELDS: &'static [FieldSpec] = &[
        req("path", FieldType::String),
        req("mode", FieldType::OctalMode),
        opt("owner", FieldType::String),
        opt("group", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(FileMode {
            path: fields.required("path"),
            mode: fields.mode("mode").unwrap_or(0),
            owner: fields.string("owner"),
            group: fields.string("group"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        let mut fields = vec![
            ("path", Typed::Str(self.path.clone())),
            ("mode", Typed::Mode(self.mode)),
        ];
        fields.extend(self.owner.clone().map(|o| ("owner", Typed::Str(o))));
        fields.extend(self.group.clone().map(|g| ("group", Typed::Str(g))));
        fields
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)?;
        if self.mode > 0o7777 {
            return Err(FieldProblem::on(
                "mode",
                format!("mode {:o} has bits beyond 7777", self.mode),
            ));
        }
        if let Some(owner) = &self.owner {
            account_name("owner", owner)?;
        }
        if let Some(group) = &self.group {
            account_name("group", group)?;
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        let mut expected = Facts::new().with("mode", format!("{:04o}", self.mode));
        if let Some(owner) = &self.owner {
            expected = expected.with("owner", owner.as_str());
        }
        if let Some(group) = &self.group {
            expected = expected.with("group", group.as_str());
        }
        expected
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        blocking(move || {
            file_mode(
                &self.path,
                self.mode,
                self.owner.as_deref(),
                self.group.as_deref(),
            )
        })
        .await
    }
}

/// Found: the path's `mode` (four octal digits), `owner` and `group` (names from
/// `/etc/passwd` and `/etc/group`, or the numeric ids when they have no entry there).
fn file_mode(path: &str, mode: u32, owner: Option<&str>, group: Option<&str>) -> CheckResult {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return CheckResult::error(format!("stat {path}: {e}")),
    };
    let found = Facts::new()
        .with("mode", format!("{:04o}", meta.mode() & 0o7777))
        .with("owner", account(PASSWD_FILE, meta.uid()))
        .with("group", account(GROUP_FILE, meta.gid()));
    CheckResult::from(compare(&meta, mode, owner, group)).found(found)
}

/// The account name of `id` in `db`, or the id itself.
fn account(db: &str, id: u32) -> String {
    match name_of(db, id) {
        Ok(Some(name)) => name,
        _ => id.to_string(),
    }
}

fn compare(
    meta: &std::fs::Metadata,
    mode: u32,
    owner: Option<&str>,
    group: Option<&str>,
) -> Outcome {
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
    use crate::checks::testutil::TempDir;
    use std::os::unix::fs::PermissionsExt;

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
        match file_mode(&file, 0o640, Some("werify-no-such-user"), None).outcome {
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
            file_mode(&dir.join("missing"), 0o640, None, None).outcome,
            Outcome::Error(_)
        ));
    }
}
