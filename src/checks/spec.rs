//! The operations-file data model: [`CheckSet`], [`Check`], [`CheckKind`], the limits,
//! [`SpecError`], and the semantic rules every check must satisfy, enforced both when a
//! file is parsed and when a set arrives from a peer ([`CheckSet::validate`]).
//!
//! The format is the seed's: a JSON object whose keys are user-chosen check names and
//! whose values are `{"type": "...", <fields>}`, e.g.
//! `{"hosts_file": {"type": "file_exists", "path": "/etc/hosts"}}`. The list of types and
//! fields lives in `registry.rs`, JSON parsing with positions in `parse.rs` (re-exported
//! here as [`parse_operations`] and [`load_operations_file`]). Running checks lives in
//! `run.rs` and the per-type modules; this module never touches the host.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::format_duration;

pub use super::parse::{load_operations_file, parse_operations};
pub use super::registry::{
    CHECK_TYPES, COMMON_FIELDS, CheckType, FieldSpec, FieldType, check_type,
};

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

/// Transport protocol for [`CheckKind::PortListening`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    /// A TCP socket in the LISTEN state.
    Tcp,
    /// An unconnected UDP socket bound to the port.
    Udp,
}

/// What a check tests. One variant per `type` in the operations file; see
/// [`CHECK_TYPES`] for the field list of each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CheckKind {
    /// `file_exists`: the path exists (symlinks followed).
    FileExists {
        /// Path to stat.
        path: String,
    },
    /// `file_contains`: some line of a regular file contains `check` (plain substring).
    FileContains {
        /// Regular file to read.
        path: String,
        /// Case-sensitive substring; never contains `'\n'`.
        check: String,
    },
    /// `file_matches`: some line of a regular file matches the regex `pattern`.
    FileMatches {
        /// Regular file to read.
        path: String,
        /// Regular expression (regex crate syntax), applied to each line.
        pattern: String,
    },
    /// `file_hash`: the SHA-256 of a regular file equals `sha256`.
    FileHash {
        /// Regular file to hash.
        path: String,
        /// Expected digest, 64 hex digits (compared case-insensitively).
        sha256: String,
    },
    /// `file_mode`: permission bits (and optionally owner and group) of a path.
    FileMode {
        /// Path to stat (symlinks followed).
        path: String,
        /// Expected permission bits, e.g. `0o644` (written `"0644"` in the file).
        mode: u32,
        /// Expected owner: a user name or a numeric uid.
        owner: Option<String>,
        /// Expected group: a group name or a numeric gid.
        group: Option<String>,
    },
    /// `process_running`: some process matches `path` and/or `check` (at least one given).
    ProcessRunning {
        /// Executable path: matches `/proc/PID/exe` or argv\[0\].
        path: Option<String>,
        /// Process name: matches `/proc/PID/comm` or the basename of argv\[0\].
        check: Option<String>,
    },
    /// `port_listening`: a local socket listens on `port`.
    PortListening {
        /// Port number, 1–65535.
        port: u16,
        /// TCP (default) or UDP.
        proto: Proto,
        /// Local address the socket must be bound to (a wildcard bind also counts).
        address: Option<IpAddr>,
    },
    /// `command`: runs a program; passes when its exit status (and stdout) are as expected.
    Command {
        /// Program to run (looked up in `PATH` when it has no `/`). No shell is involved.
        command: String,
        /// Arguments passed as-is.
        args: Vec<String>,
        /// Expected exit status (default 0).
        exit_status: i32,
        /// Substring that must appear in the program's standard output.
        stdout_contains: Option<String>,
    },
    /// `http_status`: a GET of `url` answers with `status` (redirects are not followed).
    HttpStatus {
        /// `http://` or `https://` URL.
        url: String,
        /// Expected HTTP status code, 100–599.
        status: u16,
    },
    /// `disk_free`: the filesystem holding `path` has at least `min_percent` % available.
    DiskFree {
        /// Any path on the filesystem to measure.
        path: String,
        /// Minimum available space in percent, 0–100.
        min_percent: f64,
    },
    /// `user_exists`: `/etc/passwd` has an entry named `name`.
    UserExists {
        /// User name.
        name: String,
    },
    /// `service_active`: `systemctl is-active NAME` says the unit is active.
    ServiceActive {
        /// systemd unit name, e.g. `sshd` or `nginx.service`.
        name: String,
    },
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

/// A problem with one field of a check: which field (for positioning) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldProblem {
    pub(super) field: Option<&'static str>,
    pub(super) message: String,
}

impl FieldProblem {
    pub(super) fn on(field: &'static str, message: impl Into<String>) -> Self {
        FieldProblem {
            field: Some(field),
            message: message.into(),
        }
    }

    pub(super) fn whole(message: impl Into<String>) -> Self {
        FieldProblem {
            field: None,
            message: message.into(),
        }
    }
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
            .any(|c| matches!(c.kind, CheckKind::Command { .. }))
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
        self.kind.problem()
    }
}

impl CheckKind {
    /// The `type` name of this check, e.g. `"file_exists"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::FileExists { .. } => "file_exists",
            CheckKind::FileContains { .. } => "file_contains",
            CheckKind::FileMatches { .. } => "file_matches",
            CheckKind::FileHash { .. } => "file_hash",
            CheckKind::FileMode { .. } => "file_mode",
            CheckKind::ProcessRunning { .. } => "process_running",
            CheckKind::PortListening { .. } => "port_listening",
            CheckKind::Command { .. } => "command",
            CheckKind::HttpStatus { .. } => "http_status",
            CheckKind::DiskFree { .. } => "disk_free",
            CheckKind::UserExists { .. } => "user_exists",
            CheckKind::ServiceActive { .. } => "service_active",
        }
    }

    fn problem(&self) -> Result<(), FieldProblem> {
        match self {
            CheckKind::FileExists { path } => non_empty_text("path", path),
            CheckKind::FileContains { path, check } => {
                non_empty_text("path", path)?;
                non_empty_text("check", check)?;
                if check.contains('\n') {
                    return Err(FieldProblem::on(
                        "check",
                        "check contains a newline, so it can never match a single line; \
                         use file_matches for multi-part patterns",
                    ));
                }
                Ok(())
            }
            CheckKind::FileMatches { path, pattern } => {
                non_empty_text("path", path)?;
                non_empty_text("pattern", pattern)?;
                super::content::compile_line_regex(pattern)
                    .map(drop)
                    .map_err(|e| FieldProblem::on("pattern", e))
            }
            CheckKind::FileHash { path, sha256 } => {
                non_empty_text("path", path)?;
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(FieldProblem::on(
                        "sha256",
                        "sha256 must be 64 hex digits (as printed by sha256sum)",
                    ));
                }
                Ok(())
            }
            CheckKind::FileMode {
                path,
                mode,
                owner,
                group,
            } => {
                non_empty_text("path", path)?;
                if *mode > 0o7777 {
                    return Err(FieldProblem::on(
                        "mode",
                        format!("mode {mode:o} has bits beyond 7777"),
                    ));
                }
                if let Some(owner) = owner {
                    account_name("owner", owner)?;
                }
                if let Some(group) = group {
                    account_name("group", group)?;
                }
                Ok(())
            }
            CheckKind::ProcessRunning { path, check } => {
                if path.is_none() && check.is_none() {
                    return Err(FieldProblem::whole(
                        "process_running needs path, check or both \
                         (path matches the executable or argv[0], check the process name)",
                    ));
                }
                if let Some(path) = path {
                    non_empty_text("path", path)?;
                }
                if let Some(check) = check {
                    non_empty_text("check", check)?;
                }
                Ok(())
            }
            CheckKind::PortListening { port, .. } => {
                if *port == 0 {
                    return Err(FieldProblem::on("port", "port must be between 1 and 65535"));
                }
                Ok(())
            }
            CheckKind::Command {
                command,
                args,
                stdout_contains,
                ..
            } => {
                non_empty_text("command", command)?;
                if args.len() > MAX_ARGS {
                    return Err(FieldProblem::on(
                        "args",
                        format!("args has {} entries; the limit is {MAX_ARGS}", args.len()),
                    ));
                }
                for arg in args {
                    text("args", arg)?;
                }
                if let Some(needle) = stdout_contains {
                    non_empty_text("stdout_contains", needle)?;
                }
                Ok(())
            }
            CheckKind::HttpStatus { url, status } => {
                non_empty_text("url", url)?;
                let lower = url.to_ascii_lowercase();
                if !lower.starts_with("http://") && !lower.starts_with("https://") {
                    return Err(FieldProblem::on(
                        "url",
                        "url must start with http:// or https://",
                    ));
                }
                if !(100..=599).contains(status) {
                    return Err(FieldProblem::on(
                        "status",
                        "status must be an HTTP status code between 100 and 599",
                    ));
                }
                Ok(())
            }
            CheckKind::DiskFree { path, min_percent } => {
                non_empty_text("path", path)?;
                if !(0.0..=100.0).contains(min_percent) {
                    return Err(FieldProblem::on(
                        "min_percent",
                        "min_percent must be between 0 and 100",
                    ));
                }
                Ok(())
            }
            CheckKind::UserExists { name } => account_name("name", name),
            CheckKind::ServiceActive { name } => {
                non_empty_text("name", name)?;
                let allowed = |c: char| c.is_ascii_alphanumeric() || ":-_.@\\".contains(c);
                if name.starts_with('-') || !name.chars().all(allowed) {
                    return Err(FieldProblem::on(
                        "name",
                        "name must be a systemd unit name (letters, digits and :-_.@\\, \
                         not starting with -)",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn text(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(FieldProblem::on(
            field,
            format!("{field} is longer than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    if value.contains('\0') {
        return Err(FieldProblem::on(
            field,
            format!("{field} contains a NUL character"),
        ));
    }
    Ok(())
}

fn non_empty_text(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    if value.is_empty() {
        return Err(FieldProblem::on(
            field,
            format!("{field} must not be empty"),
        ));
    }
    text(field, value)
}

fn account_name(field: &'static str, value: &str) -> Result<(), FieldProblem> {
    non_empty_text(field, value)?;
    if value.contains([':', '\n']) {
        return Err(FieldProblem::on(
            field,
            format!("{field} must not contain ':' or a newline"),
        ));
    }
    Ok(())
}

pub(super) fn name_problem(name: &str) -> Option<String> {
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
                kind: CheckKind::FileMatches {
                    path: "/x".into(),
                    pattern: "(".into(),
                },
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
