//! The operations file: what checks exist, which fields each takes, and strict parsing
//! and validation of a user's JSON into a [`CheckSet`].
//!
//! The format is the seed's: a JSON object whose keys are user-chosen check names and
//! whose values are `{"type": "...", <fields>}`, e.g.
//! `{"hosts_file": {"type": "file_exists", "path": "/etc/hosts"}}`. Unlike the seed, a
//! file is rejected at submit time for anything that could not mean what its author
//! intended: unknown type or field, missing or mistyped field, duplicate name, too many
//! checks. Every error names the file, line, column and check, and lists the valid
//! types or fields. Running checks lives in `run.rs` and the per-type modules; this
//! module never touches the host.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{format_duration, parse_duration};
use super::json::{self, Member, Spanned, Value};

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
    checks: BTreeMap<String, Check>,
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

/// The JSON type a field must have in the operations file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A JSON string.
    String,
    /// A JSON array of strings.
    StringList,
    /// A JSON integer.
    Integer,
    /// A JSON number (integer or fraction).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A string such as `"500ms"`, `"5s"`, `"1m"`.
    Duration,
    /// A string of octal digits such as `"0644"`.
    OctalMode,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::StringList => "an array of strings",
            FieldType::Integer => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "true or false",
            FieldType::Duration => "a duration string such as \"5s\"",
            FieldType::OctalMode => "an octal mode string such as \"0644\"",
        }
    }
}

/// One field a check type accepts.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// Key in the check's JSON object.
    pub name: &'static str,
    /// Expected JSON type.
    pub ty: FieldType,
    /// Whether the field must be present.
    pub required: bool,
}

/// A check type as written in the `type` field, with its fields and a one-line doc.
#[derive(Clone, Copy, Debug)]
pub struct CheckType {
    /// The `type` value, e.g. `"file_exists"`.
    pub name: &'static str,
    /// What passing means, one line.
    pub doc: &'static str,
    /// Type-specific fields (the [`COMMON_FIELDS`] are accepted too).
    pub fields: &'static [FieldSpec],
}

const fn req(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
    }
}

/// Fields every check accepts: `type` (required), `expect` and `timeout`.
pub const COMMON_FIELDS: &[FieldSpec] = &[
    req("type", FieldType::String),
    opt("expect", FieldType::Boolean),
    opt("timeout", FieldType::Duration),
];

/// Every check type, sorted by name.
pub const CHECK_TYPES: &[CheckType] = &[
    CheckType {
        name: "command",
        doc: "runs a program (no shell); passes when it exits with exit_status and its stdout contains stdout_contains",
        fields: &[
            req("command", FieldType::String),
            opt("args", FieldType::StringList),
            opt("exit_status", FieldType::Integer),
            opt("stdout_contains", FieldType::String),
        ],
    },
    CheckType {
        name: "disk_free",
        doc: "passes when the filesystem holding path has at least min_percent % available",
        fields: &[
            req("path", FieldType::String),
            req("min_percent", FieldType::Number),
        ],
    },
    CheckType {
        name: "file_contains",
        doc: "passes when a line of the regular file at path contains check (case-sensitive)",
        fields: &[
            req("path", FieldType::String),
            req("check", FieldType::String),
        ],
    },
    CheckType {
        name: "file_exists",
        doc: "passes when path exists (symlinks followed)",
        fields: &[req("path", FieldType::String)],
    },
    CheckType {
        name: "file_hash",
        doc: "passes when the SHA-256 of the regular file at path equals sha256",
        fields: &[
            req("path", FieldType::String),
            req("sha256", FieldType::String),
        ],
    },
    CheckType {
        name: "file_matches",
        doc: "passes when a line of the regular file at path matches the regex pattern",
        fields: &[
            req("path", FieldType::String),
            req("pattern", FieldType::String),
        ],
    },
    CheckType {
        name: "file_mode",
        doc: "passes when path has permission bits mode (and owner and group, when given)",
        fields: &[
            req("path", FieldType::String),
            req("mode", FieldType::OctalMode),
            opt("owner", FieldType::String),
            opt("group", FieldType::String),
        ],
    },
    CheckType {
        name: "http_status",
        doc: "passes when a GET of url answers with status (redirects not followed)",
        fields: &[
            req("url", FieldType::String),
            req("status", FieldType::Integer),
        ],
    },
    CheckType {
        name: "port_listening",
        doc: "passes when a local tcp (default) or udp socket listens on port (and address)",
        fields: &[
            req("port", FieldType::Integer),
            opt("proto", FieldType::String),
            opt("address", FieldType::String),
        ],
    },
    CheckType {
        name: "process_running",
        doc: "passes when a process matches path (executable or argv[0]) and/or check (its name)",
        fields: &[
            opt("path", FieldType::String),
            opt("check", FieldType::String),
        ],
    },
    CheckType {
        name: "service_active",
        doc: "passes when `systemctl is-active name` reports the unit active",
        fields: &[req("name", FieldType::String)],
    },
    CheckType {
        name: "user_exists",
        doc: "passes when /etc/passwd has a user called name",
        fields: &[req("name", FieldType::String)],
    },
];

/// Looks up a check type by its exact (case-sensitive) name.
pub fn check_type(name: &str) -> Option<&'static CheckType> {
    CHECK_TYPES.iter().find(|t| t.name == name)
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
struct FieldProblem {
    field: Option<&'static str>,
    message: String,
}

impl FieldProblem {
    fn on(field: &'static str, message: impl Into<String>) -> Self {
        FieldProblem {
            field: Some(field),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
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
    fn problem(&self) -> Result<(), FieldProblem> {
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

fn name_problem(name: &str) -> Option<String> {
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

/// Reads and parses an operations file. Errors are prefixed with the path.
pub fn load_operations_file(path: &Path) -> Result<CheckSet, SpecError> {
    let label = path.display().to_string();
    let read_error = |error| SpecError::Read {
        path: label.clone(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            file: label,
            limit: MAX_FILE_BYTES,
        });
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(e.as_bytes().get(..valid).unwrap_or_default());
            let (line, column) = json::line_column(&prefix, prefix.len());
            return Err(SpecError::Syntax {
                file: label,
                line,
                column,
                message: "the file is not valid UTF-8".into(),
            });
        }
    };
    parse_operations(&text, &label)
}

/// Parses the text of an operations file. `file_label` names it in error messages.
pub fn parse_operations(text: &str, file_label: &str) -> Result<CheckSet, SpecError> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(SpecError::TooLarge {
            file: file_label.into(),
            limit: MAX_FILE_BYTES,
        });
    }
    let at = |offset: usize, message: String| {
        let (line, column) = json::line_column(text, offset);
        SpecError::Syntax {
            file: file_label.into(),
            line,
            column,
            message,
        }
    };
    let doc = json::parse(text).map_err(|e| at(e.offset, e.message))?;
    let Value::Object(members) = &doc.value else {
        return Err(at(
            doc.offset,
            format!(
                "the operations file must be a JSON object mapping check names to checks, \
                 e.g. {{\"hosts\": {{\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}}}; got {}",
                doc.value.type_name()
            ),
        ));
    };
    if members.is_empty() {
        return Err(at(doc.offset, "the operations file has no checks".into()));
    }
    if members.len() > MAX_CHECKS {
        return Err(at(
            doc.offset,
            format!(
                "the operations file has {} checks; the limit is {MAX_CHECKS} per operation",
                members.len()
            ),
        ));
    }
    let mut checks = BTreeMap::new();
    for member in members {
        let fail = |offset: usize, message: String| {
            let (line, column) = json::line_column(text, offset);
            SpecError::InvalidCheck {
                file: file_label.into(),
                line,
                column,
                name: member.key.clone(),
                message,
            }
        };
        if let Some(message) = name_problem(&member.key) {
            return Err(fail(member.key_offset, message));
        }
        if checks.contains_key(&member.key) {
            return Err(fail(
                member.key_offset,
                "duplicate check name; each check needs its own name".into(),
            ));
        }
        let check = parse_check(member).map_err(|(offset, message)| fail(offset, message))?;
        checks.insert(member.key.clone(), check);
    }
    Ok(CheckSet { checks })
}

/// A field value after its JSON type was checked.
enum Typed {
    Str(String),
    List(Vec<String>),
    Int(i64),
    Num(f64),
    Bool(bool),
    Dur(Duration),
    Mode(u32),
}

/// The fields of one check, typed, with where each value starts.
struct Fields<'a> {
    values: Vec<(&'a str, Typed, usize)>,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Typed> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, t, _)| t)
    }

    fn offset(&self, name: &str) -> Option<usize> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, o)| *o)
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Typed::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A required string; presence was checked before construction.
    fn required(&self, name: &str) -> String {
        self.string(name).unwrap_or_default()
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Typed::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// Parses one check object; errors carry the byte offset to report.
fn parse_check(member: &Member) -> Result<Check, (usize, String)> {
    let Value::Object(items) = &member.value.value else {
        return Err((
            member.value.offset,
            format!(
                "a check must be an object such as {{\"type\": \"file_exists\", \"path\": \"/etc/hosts\"}}; got {}",
                member.value.value.type_name()
            ),
        ));
    };
    for (i, item) in items.iter().enumerate() {
        if items.iter().take(i).any(|earlier| earlier.key == item.key) {
            return Err((
                item.key_offset,
                format!("field \"{}\" is given twice", item.key),
            ));
        }
    }
    let type_item = items.iter().find(|m| m.key == "type").ok_or_else(|| {
        (
            member.key_offset,
            format!("missing field \"type\"; valid types: {}", type_list()),
        )
    })?;
    let Value::String(type_name) = &type_item.value.value else {
        return Err((
            type_item.value.offset,
            format!(
                "field \"type\" must be a string, got {}; valid types: {}",
                type_item.value.value.type_name(),
                type_list()
            ),
        ));
    };
    let Some(ty) = check_type(type_name) else {
        let hint = suggest(type_name, CHECK_TYPES.iter().map(|t| t.name))
            .map(|s| format!("did you mean \"{s}\"? "))
            .unwrap_or_default();
        return Err((
            type_item.value.offset,
            format!(
                "unknown type \"{type_name}\"; {hint}valid types: {}",
                type_list()
            ),
        ));
    };
    let specs = || ty.fields.iter().chain(COMMON_FIELDS);
    let mut fields = Fields { values: Vec::new() };
    for item in items {
        let Some(spec) = specs().find(|f| f.name == item.key) else {
            let hint = suggest(&item.key, specs().map(|f| f.name))
                .map(|s| format!("did you mean \"{s}\"? "))
                .unwrap_or_default();
            return Err((
                item.key_offset,
                format!(
                    "unknown field \"{}\" for type {}; {hint}{}",
                    item.key,
                    ty.name,
                    field_list(ty)
                ),
            ));
        };
        let typed = typed_value(spec, &item.value).map_err(|m| (item.value.offset, m))?;
        fields.values.push((spec.name, typed, item.value.offset));
    }
    if let Some(missing) = specs().find(|f| f.required && fields.get(f.name).is_none()) {
        return Err((
            member.key_offset,
            format!(
                "missing field \"{}\" for type {}; {}",
                missing.name,
                ty.name,
                field_list(ty)
            ),
        ));
    }
    let at_field = |p: FieldProblem| {
        let offset = p
            .field
            .and_then(|f| fields.offset(f))
            .unwrap_or(member.key_offset);
        (offset, p.message)
    };
    let kind = build_kind(ty.name, &fields).map_err(at_field)?;
    let check = Check {
        kind,
        expect: !matches!(fields.get("expect"), Some(Typed::Bool(false))),
        timeout: match fields.get("timeout") {
            Some(Typed::Dur(d)) => Some(*d),
            _ => None,
        },
    };
    check.problem().map_err(at_field)?;
    Ok(check)
}

fn typed_value(spec: &FieldSpec, value: &Spanned) -> Result<Typed, String> {
    let wrong = || {
        format!(
            "field \"{}\" must be {}, got {}",
            spec.name,
            spec.ty.describe(),
            value.value.type_name()
        )
    };
    match (spec.ty, &value.value) {
        (FieldType::String, Value::String(s)) => Ok(Typed::Str(s.clone())),
        (FieldType::StringList, Value::Array(items)) => {
            if items.len() > MAX_ARGS {
                return Err(format!(
                    "field \"{}\" has {} entries; the limit is {MAX_ARGS}",
                    spec.name,
                    items.len()
                ));
            }
            items
                .iter()
                .map(|item| match &item.value {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "field \"{}\" must contain only strings, found {}",
                        spec.name,
                        other.type_name()
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Typed::List)
        }
        (FieldType::Integer, Value::Number(raw)) => {
            raw.parse::<i64>().map(Typed::Int).map_err(|_| {
                format!(
                    "field \"{}\" must be a whole number within range, got {raw}",
                    spec.name
                )
            })
        }
        (FieldType::Number, Value::Number(raw)) => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Typed::Num)
            .ok_or_else(|| format!("field \"{}\" is not a usable number: {raw}", spec.name)),
        (FieldType::Boolean, Value::Bool(b)) => Ok(Typed::Bool(*b)),
        (FieldType::Duration, Value::String(s)) => parse_duration(s)
            .map(Typed::Dur)
            .map_err(|e| format!("field \"{}\": {e}", spec.name)),
        (FieldType::OctalMode, Value::String(s)) => {
            let valid = (1..=5).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
            let mode = u32::from_str_radix(s, 8).ok().filter(|_| valid);
            mode.map(Typed::Mode).ok_or_else(|| {
                format!(
                    "field \"{}\" must be octal permission bits such as \"0644\" or \"4755\", got {s:?}",
                    spec.name
                )
            })
        }
        _ => Err(wrong()),
    }
}

fn build_kind(type_name: &str, fields: &Fields) -> Result<CheckKind, FieldProblem> {
    let path = || fields.required("path");
    Ok(match type_name {
        "file_exists" => CheckKind::FileExists { path: path() },
        "file_contains" => CheckKind::FileContains {
            path: path(),
            check: fields.required("check"),
        },
        "file_matches" => CheckKind::FileMatches {
            path: path(),
            pattern: fields.required("pattern"),
        },
        "file_hash" => CheckKind::FileHash {
            path: path(),
            sha256: fields.required("sha256").to_ascii_lowercase(),
        },
        "file_mode" => CheckKind::FileMode {
            path: path(),
            mode: match fields.get("mode") {
                Some(Typed::Mode(m)) => *m,
                _ => 0,
            },
            owner: fields.string("owner"),
            group: fields.string("group"),
        },
        "process_running" => CheckKind::ProcessRunning {
            path: fields.string("path"),
            check: fields.string("check"),
        },
        "port_listening" => {
            let port = fields.int("port").unwrap_or_default();
            let port = u16::try_from(port)
                .map_err(|_| FieldProblem::on("port", "port must be between 1 and 65535"))?;
            let proto = match fields.string("proto").as_deref() {
                None | Some("tcp") => Proto::Tcp,
                Some("udp") => Proto::Udp,
                Some(other) => {
                    return Err(FieldProblem::on(
                        "proto",
                        format!("proto must be \"tcp\" or \"udp\", got {other:?}"),
                    ));
                }
            };
            let address = match fields.string("address") {
                None => None,
                Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                    FieldProblem::on(
                        "address",
                        format!(
                            "address must be an IP address such as 127.0.0.1 or ::1, got {text:?}"
                        ),
                    )
                })?),
            };
            CheckKind::PortListening {
                port,
                proto,
                address,
            }
        }
        "command" => CheckKind::Command {
            command: fields.required("command"),
            args: match fields.get("args") {
                Some(Typed::List(args)) => args.clone(),
                _ => Vec::new(),
            },
            exit_status: match fields.int("exit_status") {
                None => 0,
                Some(code) => i32::try_from(code)
                    .map_err(|_| FieldProblem::on("exit_status", "exit_status is out of range"))?,
            },
            stdout_contains: fields.string("stdout_contains"),
        },
        "http_status" => CheckKind::HttpStatus {
            url: fields.required("url"),
            status: u16::try_from(fields.int("status").unwrap_or_default())
                .ok()
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| {
                    FieldProblem::on(
                        "status",
                        "status must be an HTTP status code between 100 and 599",
                    )
                })?,
        },
        "disk_free" => CheckKind::DiskFree {
            path: path(),
            min_percent: match fields.get("min_percent") {
                Some(Typed::Num(n)) => *n,
                _ => 0.0,
            },
        },
        "user_exists" => CheckKind::UserExists {
            name: fields.required("name"),
        },
        "service_active" => CheckKind::ServiceActive {
            name: fields.required("name"),
        },
        other => {
            // Every registered type has an arm above; the meta-test
            // `every_registered_type_parses` keeps it that way.
            return Err(FieldProblem::whole(format!(
                "BUG! type {other} is registered but has no parser"
            )));
        }
    })
}

fn type_list() -> String {
    CHECK_TYPES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_list(ty: &CheckType) -> String {
    let names = |required: bool| {
        ty.fields
            .iter()
            .chain(COMMON_FIELDS)
            .filter(|f| f.required == required)
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} takes fields: {} (required); {} (optional)",
        ty.name,
        names(true),
        names(false)
    )
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
fn suggest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&given, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute =
                previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CheckSet, SpecError> {
        parse_operations(text, "ops.json")
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(set) => panic!("expected an error for {text}, got {set:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn seed_files_keep_working() {
        let set = parse(
            r#"{"check_virus_file_exists": {"type": "file_exists", "path": "/tmp/virus"},
                "check_etc_hosts_has_4488": {"type": "file_contains", "path": "/etc/hosts", "check": "4488"}}"#,
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        let names: Vec<_> = set.names().collect();
        assert_eq!(
            names,
            ["check_etc_hosts_has_4488", "check_virus_file_exists"]
        );
        let check = set.get("check_etc_hosts_has_4488").unwrap();
        assert_eq!(
            check.kind,
            CheckKind::FileContains {
                path: "/etc/hosts".into(),
                check: "4488".into()
            }
        );
        assert!(check.expect);
        assert_eq!(check.timeout, None);
        assert!(set.validate().is_ok());
        assert!(!set.uses_command());
    }

    #[test]
    fn unknown_type_lists_valid_types_and_a_suggestion() {
        let text = "{\n  \"x\": {\"type\": \"file_exist\", \"path\": \"/\"}\n}";
        let e = error(text);
        assert!(
            e.starts_with("ops.json:2:17: check \"x\": unknown type \"file_exist\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"file_exists\""), "{e}");
        for ty in CHECK_TYPES {
            assert!(e.contains(ty.name), "{e} lacks {}", ty.name);
        }
    }

    #[test]
    fn missing_and_non_string_type_are_reported() {
        let e = error("{\"x\": {\"path\": \"/\"}}");
        assert!(
            e.starts_with("ops.json:1:2: check \"x\": missing field \"type\""),
            "{e}"
        );
        assert!(e.contains("file_exists"), "{e}");
        let e = error("{\"x\": {\"type\": 3}}");
        assert!(
            e.contains("field \"type\" must be a string, got a number"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_lists_valid_fields() {
        let text = "{\"x\": {\"type\": \"file_exists\",\n \"paht\": \"/\"}}";
        let e = error(text);
        assert!(
            e.starts_with("ops.json:2:2: check \"x\": unknown field \"paht\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"path\""), "{e}");
        assert!(e.contains("path, type (required)"), "{e}");
        assert!(e.contains("expect, timeout (optional)"), "{e}");
        // The seed ignored extra fields and matched keys case-insensitively; we do not.
        let e = error(r#"{"x": {"type": "file_exists", "path": "/", "check": "y"}}"#);
        assert!(
            e.contains("unknown field \"check\" for type file_exists"),
            "{e}"
        );
        let e = error(r#"{"x": {"TYPE": "file_exists", "path": "/"}}"#);
        assert!(e.contains("missing field \"type\""), "{e}");
    }

    #[test]
    fn missing_field_points_at_the_check_name() {
        let e = error("{\n\"hosts\": {\"type\": \"file_contains\", \"path\": \"/etc/hosts\"}}");
        assert!(
            e.starts_with("ops.json:2:1: check \"hosts\": missing field \"check\""),
            "{e}"
        );
        assert!(e.contains("path, check, type (required)"), "{e}");
    }

    #[test]
    fn wrong_value_types_are_reported_at_the_value() {
        let e = error(r#"{"x": {"type": "file_exists", "path": 5}}"#);
        assert!(e.starts_with("ops.json:1:39: check \"x\""), "{e}");
        assert!(
            e.contains("field \"path\" must be a string, got a number"),
            "{e}"
        );
        let e = error(r#"{"x": {"type": "port_listening", "port": "22"}}"#);
        assert!(
            e.contains("field \"port\" must be an integer, got a string"),
            "{e}"
        );
        let e = error(r#"{"x": {"type": "port_listening", "port": 70000}}"#);
        assert!(e.contains("port must be between 1 and 65535"), "{e}");
        let e = error(r#"{"x": {"type": "port_listening", "port": 1.5}}"#);
        assert!(e.contains("whole number"), "{e}");
        let e = error(r#"{"x": {"type": "file_exists", "path": "/", "expect": "no"}}"#);
        assert!(e.contains("field \"expect\" must be true or false"), "{e}");
        let e = error(r#"{"x": {"type": "command", "command": "true", "args": ["a", 1]}}"#);
        assert!(e.contains("only strings"), "{e}");
        let e = error(r#"{"x": "file_exists"}"#);
        assert!(e.contains("a check must be an object"), "{e}");
    }

    #[test]
    fn duplicate_names_and_fields_are_refused() {
        let e = error(
            "{\"a\": {\"type\": \"file_exists\", \"path\": \"/\"},\n \"a\": {\"type\": \"file_exists\", \"path\": \"/x\"}}",
        );
        assert!(
            e.starts_with("ops.json:2:2: check \"a\": duplicate check name"),
            "{e}"
        );
        let e = error(r#"{"a": {"type": "file_exists", "path": "/", "path": "/x"}}"#);
        assert!(e.contains("field \"path\" is given twice"), "{e}");
    }

    #[test]
    fn whole_file_problems_are_refused() {
        assert!(error("{}").contains("ops.json:1:1: the operations file has no checks"));
        assert!(error("null").contains("must be a JSON object"));
        assert!(error("[]").contains("must be a JSON object"));
        let e = error("{\"a\": {\"type\": \"file_exists\",\n \"path\": \"/\"");
        assert!(
            e.starts_with("ops.json:2:13: unexpected end of file"),
            "{e}"
        );
        let many: Vec<String> = (0..=MAX_CHECKS)
            .map(|i| format!("\"c{i}\": {{\"type\": \"file_exists\", \"path\": \"/\"}}"))
            .collect();
        let e = error(&format!("{{{}}}", many.join(",")));
        assert!(e.contains(&format!("the limit is {MAX_CHECKS}")), "{e}");
        let big = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_FILE_BYTES as usize));
        assert!(error(&big).contains("larger than the limit"));
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let e = error(&format!(
            "{{\"{long_name}\": {{\"type\": \"file_exists\", \"path\": \"/\"}}}}"
        ));
        assert!(e.contains("longer than"), "{e}");
        let e = error(r#"{"a\nb": {"type": "file_exists", "path": "/"}}"#);
        assert!(e.contains("control characters"), "{e}");
    }

    #[test]
    fn semantic_rules_are_enforced_at_submit() {
        let cases = [
            (
                r#"{"type": "file_contains", "path": "/x", "check": "a\nb"}"#,
                "newline",
            ),
            (
                r#"{"type": "file_contains", "path": "/x", "check": ""}"#,
                "check must not be empty",
            ),
            (
                r#"{"type": "file_exists", "path": ""}"#,
                "path must not be empty",
            ),
            (
                r#"{"type": "file_matches", "path": "/x", "pattern": "a("}"#,
                "regex",
            ),
            (
                r#"{"type": "file_hash", "path": "/x", "sha256": "abc"}"#,
                "64 hex digits",
            ),
            (
                r#"{"type": "file_mode", "path": "/x", "mode": "0999"}"#,
                "octal",
            ),
            (
                r#"{"type": "file_mode", "path": "/x", "mode": "17777"}"#,
                "beyond 7777",
            ),
            (
                r#"{"type": "process_running"}"#,
                "needs path, check or both",
            ),
            (
                r#"{"type": "port_listening", "port": 0}"#,
                "between 1 and 65535",
            ),
            (
                r#"{"type": "port_listening", "port": 22, "proto": "sctp"}"#,
                "\"tcp\" or \"udp\"",
            ),
            (
                r#"{"type": "port_listening", "port": 22, "address": "localhost"}"#,
                "IP address",
            ),
            (
                r#"{"type": "http_status", "url": "ftp://x", "status": 200}"#,
                "http://",
            ),
            (
                r#"{"type": "http_status", "url": "http://x", "status": 99}"#,
                "between 100 and 599",
            ),
            (
                r#"{"type": "disk_free", "path": "/", "min_percent": 101}"#,
                "between 0 and 100",
            ),
            (
                r#"{"type": "service_active", "name": "--all"}"#,
                "unit name",
            ),
            (r#"{"type": "user_exists", "name": "a:b"}"#, "':'"),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "0s"}"#,
                "above zero",
            ),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "11m"}"#,
                "above the limit of 10m",
            ),
            (
                r#"{"type": "file_exists", "path": "/", "timeout": "5"}"#,
                "invalid duration",
            ),
        ];
        for (check, expected) in cases {
            let e = error(&format!("{{\"c\": {check}}}"));
            assert!(e.contains(expected), "{check}: {e}");
            assert!(e.starts_with("ops.json:1:"), "{check}: {e}");
        }
    }

    #[test]
    fn bad_regex_error_includes_the_regex_message_at_the_pattern() {
        let e = error(r#"{"c": {"type": "file_matches", "path": "/x", "pattern": "a(b"}}"#);
        assert!(e.starts_with("ops.json:1:57: check \"c\""), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
    }

    #[test]
    fn expect_timeout_and_defaults_are_parsed() {
        let set = parse(
            r#"{"a": {"type": "file_exists", "path": "/", "expect": false, "timeout": "500ms"},
                "b": {"type": "port_listening", "port": 53, "proto": "udp", "address": "::1"},
                "c": {"type": "command", "command": "true"},
                "d": {"type": "file_mode", "path": "/", "mode": "755"},
                "e": {"type": "file_hash", "path": "/x", "sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}"#,
        )
        .unwrap();
        let a = set.get("a").unwrap();
        assert!(!a.expect);
        assert_eq!(a.timeout, Some(Duration::from_millis(500)));
        assert_eq!(
            set.get("b").unwrap().kind,
            CheckKind::PortListening {
                port: 53,
                proto: Proto::Udp,
                address: Some("::1".parse().unwrap())
            }
        );
        assert_eq!(
            set.get("c").unwrap().kind,
            CheckKind::Command {
                command: "true".into(),
                args: vec![],
                exit_status: 0,
                stdout_contains: None
            }
        );
        assert!(matches!(
            set.get("d").unwrap().kind,
            CheckKind::FileMode { mode: 0o755, .. }
        ));
        assert!(matches!(&set.get("e").unwrap().kind,
            CheckKind::FileHash { sha256, .. } if sha256.starts_with("e3b0c442")));
        assert!(set.uses_command());
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

    #[test]
    fn every_registered_type_is_documented_unique_and_in_the_example() {
        let mut names: Vec<_> = CHECK_TYPES.iter().map(|t| t.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "CHECK_TYPES must stay sorted");
        names.dedup();
        assert_eq!(names.len(), CHECK_TYPES.len(), "duplicate type name");
        for ty in CHECK_TYPES {
            assert!(!ty.doc.is_empty(), "{} has no doc", ty.name);
            for field in ty.fields {
                assert!(
                    COMMON_FIELDS.iter().all(|c| c.name != field.name),
                    "{} redefines common field {}",
                    ty.name,
                    field.name
                );
            }
        }
        let example = parse(include_str!("../../examples/checks.json")).unwrap();
        let mut used: Vec<_> = example.iter().map(|(_, c)| c.kind.type_name()).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, sorted, "examples/checks.json must show every type");
    }

    #[test]
    fn example_ops_file_is_the_seeds() {
        let set = parse(include_str!("../../examples/ops.json")).unwrap();
        let names: Vec<_> = set.names().collect();
        assert_eq!(
            names,
            ["check_etc_hosts_has_4488", "check_virus_file_exists"]
        );
    }

    #[test]
    fn load_reports_the_path_when_reading_fails() {
        let e = load_operations_file(Path::new("/nonexistent/werify-ops.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("reading /nonexistent/werify-ops.json: "),
            "{e}"
        );
        let set = load_operations_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/ops.json"
        )))
        .unwrap();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert_eq!(
            suggest("file_exist", CHECK_TYPES.iter().map(|t| t.name)),
            Some("file_exists")
        );
        assert_eq!(
            suggest("Path", ["path", "expect"].into_iter()),
            Some("path")
        );
        assert_eq!(
            suggest("zzzzzzzz", CHECK_TYPES.iter().map(|t| t.name)),
            None
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
