//! The operations-file data model: [`CheckSet`], [`Check`], the limits, [`SpecError`],
//! and the rules every check must satisfy, enforced both when a file is parsed and when a
//! set arrives from a peer ([`CheckSet::validate`]).
//!
//! The format: a JSON object (or YAML mapping) whose keys are user-chosen check names and
//! whose values are `{"type": "...", <fields>}`, e.g.
//! `{"hosts_file": {"type": "file_exists", "path": "/etc/hosts"}}`. What a check tests is a
//! [`CheckKind`]; each type's fields and rules live in its own file under `types/`, listed
//! once in `types/mod.rs`. Parsing with positions lives in `parse.rs` (re-exported here as
//! [`parse_operations`], [`parse_operations_as`] and [`load_operations_file`]). This
//! module never touches the host.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::check_type::FieldProblem;
use super::duration::format_duration;

pub use super::check_type::{FieldSpec, FieldType};
pub use super::parse::{
    FileFormat, load_operations_file, parse_operations, parse_operations_as, read_operations,
    read_operations_file,
};
pub use super::registry::{CHECK_TYPES, COMMON_FIELDS, TypeInfo, check_type};
pub use super::types::CheckKind;

/// Largest operations file accepted, in bytes (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most checks one operation may carry.
pub const MAX_CHECKS: usize = 256;
/// Longest check name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest string field value (paths, patterns, URLs, …), in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most arguments a `command` check may pass.
pub const MAX_ARGS: usize = 64;
/// Longest per-check timeout accepted.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A validated set of named checks, ordered by name. This is what travels to peers
/// (as CBOR); a receiver must call [`CheckSet::validate`] before running it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckSet {
    pub(super) checks: BTreeMap<String, Check>,
}

/// One check: what to test, whether the answer is expected to be true, and its timeout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What to test and its parameters.
    pub kind: CheckKind,
    /// `false` inverts a `Success` result (`"expect": false`); errors are never inverted.
    pub expect: bool,
    /// Per-check timeout; `None` means the runner's default.
    pub timeout: Option<Duration>,
}

/// Why an operations file or a received [`CheckSet`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read; nothing was parsed.
    #[error("reading {path}: {error}")]
    Read {
        /// The path as given.
        path: String,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`]; nothing was parsed.
    #[error(
        "{file}: the file is larger than the limit of {limit} bytes for an operations file; split it into several operations"
    )]
    TooLarge {
        /// The file label.
        file: String,
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Malformed JSON or a problem with the file as a whole (not an object, no checks,
    /// too many checks).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file label.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// One check in the file is invalid.
    #[error("{file}:{line}:{column}: check \"{name}\": {message}")]
    InvalidCheck {
        /// The file label.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The check's name.
        name: String,
        /// What is wrong, with the valid types or fields where that helps.
        message: String,
    },
    /// A check in a set received from the network is invalid (no file position).
    #[error("check \"{name}\": {message}")]
    Invalid {
        /// The check's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A set received from the network is invalid as a whole (empty, too many checks).
    #[error("{message}")]
    InvalidSet {
        /// What is wrong.
        message: String,
    },
}

impl CheckSet {
    /// Number of checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// True when the set has no checks (never the case for a validated set).
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Check names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.checks.keys().map(String::as_str)
    }

    /// `(name, check)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Check)> {
        self.checks
            .iter()
            .map(|(name, check)| (name.as_str(), check))
    }

    /// The check called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.get(name)
    }

    /// True when some check is a `command` check (nodes refuse those unless started
    /// with `--allow-command`, so a coordinator may want to warn).
    pub fn uses_command(&self) -> bool {
        self.checks
            .values()
            .any(|c| matches!(c.kind, CheckKind::Command(_)))
    }

    /// Re-checks every rule the parser enforces; call it on a set received from the
    /// network before running it.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.checks.is_empty() {
            return Err(SpecError::InvalidSet {
                message: "the operation has no checks".into(),
            });
        }
        if self.checks.len() > MAX_CHECKS {
            return Err(SpecError::InvalidSet {
                message: format!(
                    "the operation has {} checks; the limit is {MAX_CHECKS}",
                    self.checks.len()
                ),
            });
        }
        for (name, check) in &self.checks {
            let invalid = |message: String| SpecError::Invalid {
                name: name.clone(),
                message,
            };
            name_problem(name).map_or(Ok(()), |m| Err(invalid(m)))?;
            check.problem().map_err(|p| invalid(p.message))?;
        }
        Ok(())
    }
}

impl Check {
    /// Semantic rules shared by the parser and [`CheckSet::validate`].
    pub(super) fn problem(&self) -> Result<(), FieldProblem> {
        if let Some(timeout) = self.timeout {
            if timeout.is_zero() {
                return Err(FieldProblem::on("timeout", "timeout must be above zero"));
            }
            if timeout > MAX_CHECK_TIMEOUT {
                return Err(FieldProblem::on(
                    "timeout",
                    format!(
                        "timeout {} is above the limit of {}",
                        format_duration(timeout),
                        format_duration(MAX_CHECK_TIMEOUT)
                    ),
                ));
            }
        }
        self.kind.validate()
    }
}

/// Why `name` cannot name a check (empty, too long, control characters), if it cannot.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("check names must not be empty".into())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "check name is longer than {MAX_NAME_BYTES} bytes; use a shorter name"
        ))
    } else if name.chars().any(char::is_control) {
        Some("check names must not contain control characters (newlines, tabs, …)".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CheckSet, SpecError> {
        parse_operations(text, "ops.json")
    }

    #[test]
    fn cbor_round_trip_and_validate_catch_tampering() {
        let set = parse(include_str!("../../examples/checks.json")).unwrap();
        let mut bytes = Vec::new();
        ciborium::into_writer(&set, &mut bytes).unwrap();
        let back: CheckSet = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, set);
        assert!(back.validate().is_ok());

        let mut tampered = set.clone();
        if let Some(check) = tampered.checks.values_mut().next() {
            check.timeout = Some(Duration::from_secs(3600));
        }
        let e = tampered.validate().unwrap_err().to_string();
        assert!(e.contains("above the limit"), "{e}");

        let mut tampered = set.clone();
        tampered.checks.insert(
            "bad".into(),
            Check {
                kind: CheckKind::FileMatches(crate::checks::types::FileMatches {
                    path: "/x".into(),
                    pattern: "(".into(),
                }),
                expect: true,
                timeout: None,
            },
        );
        let e = tampered.validate().unwrap_err().to_string();
        assert!(e.starts_with("check \"bad\":"), "{e}");

        let empty = CheckSet::default();
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("no checks")
        );
    }
}
