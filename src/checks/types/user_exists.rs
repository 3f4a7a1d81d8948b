//! The `user_exists` check: is there a local user of that name?
//!
//! It passes when `/etc/passwd` has an entry whose first field is exactly the name. Only
//! the file is read: users known only to NSS services (LDAP, SSSD, systemd's dynamic
//! users) are not seen. An unreadable file is an `Error`.

use serde::{Deserialize, Serialize};

use crate::checks::accounts::{PASSWD_FILE, entry};
use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, account_name, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::run::{CheckContext, blocking};

/// `user_exists`: `/etc/passwd` has an entry named `name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserExists {
    /// User name.
    pub name: String,
}

impl CheckType for UserExists {
    const NAME: &'static str = "user_exists";
    const DOC: &'static str = "passes when /etc/passwd has a user called name";
    const FIELDS: &'static [FieldSpec] = &[req("name", FieldType::String)];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(UserExists {
            name: fields.required("name"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![("name", Typed::Str(self.name.clone()))]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        account_name("name", &self.name)
    }

    fn expected(&self) -> Facts {
        Facts::new().with("exists", "true")
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        blocking(move || user_exists(&self.name)).await
    }
}

fn user_exists(name: &str) -> CheckResult {
    user_exists_in(PASSWD_FILE, name)
}

/// Found: `exists`, and for an existing user its `uid`, `gid`, `home` and `shell`.
fn user_exists_in(db: &str, name: &str) -> CheckResult {
    match entry(db, name) {
        Ok(Some(fields)) => {
            let mut found = Facts::new().with("exists", "true");
            for (index, fact) in [(2, "uid"), (3, "gid"), (5, "home"), (6, "shell")] {
                if let Some(value) = fields.get(index) {
                    found = found.with(fact, value.as_str());
                }
            }
            CheckResult::holds(true, found)
        }
        Ok(None) => CheckResult::holds(false, Facts::new().with("exists", "false")),
        Err(e) => CheckResult::error(format!("reading {db}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
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
        match user_exists_in(&dir.join("missing"), "root").outcome {
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
