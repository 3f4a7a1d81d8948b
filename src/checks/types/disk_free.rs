//! The `disk_free` check: does the filesystem holding a path have at least a given
//! percentage of its space available?
//!
//! "Available" is what an unprivileged user may still write (`f_bavail`, like `df`'s
//! Avail column), over the filesystem's total size (`f_blocks`). A path that cannot be
//! stat-ed, or a filesystem that reports no size (e.g. `/proc`), is an `Error`.

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::run::{CheckContext, blocking};

/// `disk_free`: the filesystem holding `path` has at least `min_percent` % available.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskFree {
    /// Any path on the filesystem to measure.
    pub path: String,
    /// Minimum available space in percent, 0–100.
    pub min_percent: f64,
}

impl CheckType for DiskFree {
    const NAME: &'static str = "disk_free";
    const DOC: &'static str =
        "passes when the filesystem holding path has at least min_percent % available";
    const FIELDS: &'static [FieldSpec] = &[
        req("path", FieldType::String),
        req("min_percent", FieldType::Number),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(DiskFree {
            path: fields.required("path"),
            min_percent: fields.number("min_percent").unwrap_or(0.0),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("path", Typed::Str(self.path.clone())),
            ("min_percent", Typed::Num(self.min_percent)),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("path", &self.path)?;
        if !(0.0..=100.0).contains(&self.min_percent) {
            return Err(FieldProblem::on(
                "min_percent",
                "min_percent must be between 0 and 100",
            ));
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        Facts::new().with("min_percent", self.min_percent.to_string())
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        blocking(move || disk_free(&self.path, self.min_percent)).await
    }
}

/// Found: `free_percent` (two decimals) and `available_bytes`.
fn disk_free(path: &str, min_percent: f64) -> CheckResult {
    match available(path) {
        Ok(Available { percent, bytes }) => CheckResult::holds(
            percent >= min_percent,
            Facts::new()
                .with("free_percent", format!("{percent:.2}"))
                .with("available_bytes", bytes.to_string()),
        ),
        Err(e) => CheckResult::error(e),
    }
}

/// Space available to unprivileged users on a filesystem.
struct Available {
    /// Percentage of the filesystem's blocks.
    percent: f64,
    /// Bytes.
    bytes: u64,
}

fn available(path: &str) -> Result<Available, String> {
    let stats = rustix::fs::statvfs(path)
        .map_err(|e| format!("statvfs {path}: {}", std::io::Error::from(e)))?;
    if stats.f_blocks == 0 {
        return Err(format!(
            "the filesystem holding {path} reports no size, so free space cannot be measured"
        ));
    }
    Ok(Available {
        percent: stats.f_bavail as f64 * 100.0 / stats.f_blocks as f64,
        bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    #[test]
    fn measures_the_root_filesystem() {
        let percent = available("/").unwrap().percent;
        assert!((0.0..=100.0).contains(&percent), "{percent}");
        assert_eq!(disk_free("/", 0.0), Outcome::Success(true));
        // Free space moves a little while other programs write; 5 points is a wide margin.
        if percent < 95.0 {
            assert_eq!(disk_free("/", percent + 5.0), Outcome::Success(false));
        }
    }

    #[test]
    fn errors_name_the_path() {
        match disk_free("/no/such/werify/path", 1.0).outcome {
            Outcome::Error(e) => {
                assert!(e.contains("/no/such/werify/path"), "{e}");
                assert!(e.contains("No such file"), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        match disk_free("/proc", 1.0).outcome {
            Outcome::Error(e) => assert!(e.contains("reports no size"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
