//! The `file_exists` check: does a path exist?
//!
//! `stat` following symlinks. Exists (any kind of file) ⇒ `Success(true)`; not found
//! (also a dangling symlink) ⇒ `Success(false)`; any other failure, such as a path
//! component that is not a directory or a permission problem ⇒ `Error` naming the path
//! and the OS reason.

use std::io::ErrorKind;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::read::file_kind;
use crate::checks::run::{CheckContext, blocking};

/// `file_exists`: the path exists (symlinks followed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileExists {
    /// Path to stat.
    pub path: String,
}

impl CheckType for FileExists {
    const NAME: &'static str = "file_exists";
    const DOC: &'static str = "passes when path exists (symlinks followed)";
    const FIELDS: &'static [FieldSpec] = &[req("path", FieldType::String)];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(FileExists {
            path: fields.required("path"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![("path", Typed::Str(self.path.clone()))]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)
    }

    fn expected(&self) -> Facts {
        Facts::new().with("exists", "true")
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        blocking(move || file_exists(&self.path)).await
    }
}

/// Found: `exists`, and for an existing path what it is (`type=regular file`).
fn file_exists(path: &str) -> CheckResult {
    match std::fs::metadata(path) {
        Ok(meta) => CheckResult::holds(
            true,
            Facts::new()
                .with("exists", "true")
                .with("type", describe(meta.file_type())),
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            CheckResult::holds(false, Facts::new().with("exists", "false"))
        }
        Err(e) => CheckResult::error(format!("stat {path}: {e}")),
    }
}

/// What kind of file this is, in words.
fn describe(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_file() {
        "regular file"
    } else {
        file_kind(file_type).trim_start_matches("a ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
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
        match file_exists(&through_file).outcome {
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
        let outcome = file_exists(&format!("{locked}/f")).outcome;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        match outcome {
            Outcome::Error(e) => assert!(e.contains("Permission denied"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
