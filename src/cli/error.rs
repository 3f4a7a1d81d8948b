//! Every error the `werify` command line reports, grouped by whose fault it is, the exit
//! code each one means, and the one place that prints them ([`report`] and, for batch
//! mode, [`report_batch_line`]).
//!
//! Exit codes: [`EXIT_OK`] 0, [`EXIT_CHECKS_FAILED`] 1 (`--wait` commands, filters that
//! match no host, `checks add` on a host that does not pass the check),
//! [`EXIT_ERROR`] 2 (usage, input, connection, authentication, or a node saying the
//! request is wrong), [`EXIT_UNAVAILABLE`] 3 and [`EXIT_RATE_LIMITED`] 4 (a node saying
//! "not now": the same command may work later or through another node).

use std::time::Duration;

use crate::base::env::ParseEnvError;
use crate::checks::author::AddError;
use crate::checks::inspect::InspectError;
use crate::checks::spec::SpecError;
use crate::cli::config_file::ConfigError;
use crate::cli::output::go_duration;
use crate::cli::settings::SettingsError;
use crate::node::NodeError;
use crate::ops::handle::ParseHandleError;
use crate::rpc::hostaddr::HostError;
use crate::rpc::identity::IdentityError;
use crate::rpc::protocol::ErrorCode;
use crate::rpc::transport::TransportError;

/// Exit code: the command worked (for `--wait`: every check on every host succeeded).
pub const EXIT_OK: u8 = 0;
/// Exit code: a check was false or errored, or a host did not answer (`--wait` commands);
/// an operation's `--node`/`--tag` filters matched no alive host; `checks add` found that
/// this host does not pass the check.
pub const EXIT_CHECKS_FAILED: u8 = 1;
/// Exit code: usage, input, connection or authentication error, or a node refused the
/// request as invalid, forbidden or naming something that does not exist.
pub const EXIT_ERROR: u8 = 2;
/// Exit code: the node, or a node it needed, cannot serve the request now (shutting down,
/// unreachable, store failure, a peer answering wrongly): try later or another node.
pub const EXIT_UNAVAILABLE: u8 = 3;
/// Exit code: the node refused the request for now (a rate limit, too many running
/// operations): retry later.
pub const EXIT_RATE_LIMITED: u8 = 4;

/// Why a `werify` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    // --- The caller's: the command line, a batch line, or a file it names. Exit 2.
    /// Clap refused the command line (or printed help: exit 0). Shown as one line in
    /// batch mode, in clap's own layout (with usage) otherwise.
    #[error("{}", clap_one_line(.0))]
    Clap(clap::Error),
    /// A `ctl` command that does not exist (the original tool's text).
    #[error("Unknown command {0}")]
    UnknownCommand(String),
    /// A `ctl` command with too few or too many positional arguments (the original
    /// tool's text).
    #[error("Invalid number of arguments for {command}: Expected {expected} but got {got}")]
    ArgumentCount {
        command: String,
        expected: usize,
        got: usize,
    },
    /// A batch line whose quotes do not close, or that ends in a lone backslash.
    #[error("unbalanced quotes or a trailing backslash")]
    Quoting,
    /// The operations file cannot be read or is not valid.
    #[error(transparent)]
    OperationsFile(#[from] SpecError),
    /// `--connect` does not name a host.
    #[error("--connect: {0}")]
    Connect(HostError),
    /// `get` was given something that is not an operation handle.
    #[error(transparent)]
    Handle(#[from] ParseHandleError),
    /// `--env` (or `WERIFY_ENV`) is not a valid env tag.
    #[error(transparent)]
    Env(#[from] ParseEnvError),
    /// The secret file, the CA files or the identity they make are unusable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `operation -` in batch mode, whose standard input is the batch.
    #[error(
        "standard input holds this batch's commands, not an operations file; name the file (operation FILE)"
    )]
    StdinIsBatch,
    /// A check name given to `checks add --name` that no operations file may hold.
    #[error("invalid check name {name:?}: {problem}")]
    CheckName { name: String, problem: String },
    /// `checks add`: no check of that type and argument holds on this host (exit 1), or
    /// none can be written for them (exit 2).
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// `checks add --file`: the check cannot be added to the file (left unchanged).
    #[error(transparent)]
    AddCheck(#[from] AddError),
    /// `checks add --file`: the new file could not be written.
    #[error("writing {path}: {error}")]
    WriteFile { path: String, error: std::io::Error },
    /// A `werify node --tag` that is not KEY=VALUE.
    #[error("invalid --tag {0:?}: expected KEY=VALUE")]
    NodeTag(String),
    /// A results-only `--output` for a command that shows no check results.
    #[error(
        "--output {format} shows check results (ctl operation --wait, get, refresh --wait, \
         checks run); {command} prints text, json or jsonl"
    )]
    OutputFormat {
        format: &'static str,
        command: String,
    },
    /// The config file cannot be read or holds something invalid (FILE:LINE, the key,
    /// what is valid).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Flags, environment variables and the config file together say something that
    /// cannot work (half a PEM CA, a secret and a PEM CA).
    #[error(transparent)]
    Settings(#[from] SettingsError),

    // --- Reaching the node. Exit 2.
    /// Connecting, the TLS handshake (another env or secret) or a request failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The whole call took longer than `--timeout`.
    #[error("no answer within {} (--timeout)", go_duration(*.0))]
    Timeout(Duration),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,

    // --- What the node answered. Exit code from the answer's [`ErrorCode`].
    /// The node refused the request; `code` says why, `message` says what to do.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// The node answered with a response that does not fit the request.
    #[error("the node answered with an unexpected {0} response")]
    Unexpected(&'static str),

    // --- This process and this host. Exit 2.
    /// `werify node` could not start or stopped with an error.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Standard input could not be read (batch mode).
    #[error("reading stdin: {0}")]
    Stdin(std::io::Error),
    /// Standard output could not be written (other than a closed pipe).
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// `werify man --out DIR` could not write a page.
    #[error("cannot write the manual page {}: {source}; --out must name an existing, writable directory", path.display())]
    ManPage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A signal handler (SIGHUP for reloads) could not be installed.
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

impl CliError {
    /// The exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            // 0 for help and version, 2 for usage errors.
            CliError::Clap(e) => u8::try_from(e.exit_code()).unwrap_or(EXIT_ERROR),
            CliError::Refused { code, .. } => exit_code_of(*code),
            CliError::Inspect(InspectError::NotHeld { .. }) => EXIT_CHECKS_FAILED,
            CliError::UnknownCommand(_)
            | CliError::ArgumentCount { .. }
            | CliError::Quoting
            | CliError::OperationsFile(_)
            | CliError::Connect(_)
            | CliError::Handle(_)
            | CliError::Env(_)
            | CliError::Identity(_)
            | CliError::NodeTag(_)
            | CliError::OutputFormat { .. }
            | CliError::Config(_)
            | CliError::Settings(_)
            | CliError::StdinIsBatch
            | CliError::CheckName { .. }
            | CliError::Inspect(_)
            | CliError::AddCheck(_)
            | CliError::WriteFile { .. }
            | CliError::Transport(_)
            | CliError::Timeout(_)
            | CliError::Interrupted
            | CliError::Unexpected(_)
            | CliError::Node(_)
            | CliError::Stdin(_)
            | CliError::Stdout(_)
            | CliError::ManPage { .. }
            | CliError::Runtime(_)
            | CliError::Signal(_) => EXIT_ERROR,
        }
    }
}

/// The exit code for a node's error answer, from its code alone (never its text).
pub fn exit_code_of(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Invalid | ErrorCode::Forbidden | ErrorCode::NotFound => EXIT_ERROR,
        // Like a `--wait` run that reached no host: the command ran, nothing passed.
        ErrorCode::NoMatch => EXIT_CHECKS_FAILED,
        ErrorCode::RateLimited => EXIT_RATE_LIMITED,
        // A code this build does not know is treated as unavailable (see ErrorCode).
        ErrorCode::Unavailable | ErrorCode::Peer | ErrorCode::Unknown => EXIT_UNAVAILABLE,
    }
}

/// Clap's message without its `error: ` prefix, usage and tips: what batch mode shows
/// after `Error running LINE: `.
fn clap_one_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Prints `e` to stderr as `Error: <message>` (clap's own errors and help in clap's
/// layout) and returns the exit code it means. The only place that writes the prefix.
pub fn report(e: &CliError) -> u8 {
    match e {
        CliError::Clap(c) => {
            let _ = c.print();
        }
        other => eprintln!("Error: {other}"),
    }
    e.exit_code()
}

/// Batch mode's report of the line that stopped it, in the original tool's wording:
/// `Error running <line>: <message>`. Returns the exit code the error means.
pub fn report_batch_line(line: &str, e: &CliError) -> u8 {
    eprintln!("Error running {line}: {e}");
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_answers_map_by_code() {
        let refused = |code| CliError::Refused {
            code,
            message: "whatever the text says".into(),
        };
        assert_eq!(refused(ErrorCode::Invalid).exit_code(), 2);
        assert_eq!(refused(ErrorCode::Forbidden).exit_code(), 2);
        assert_eq!(refused(ErrorCode::NotFound).exit_code(), 2);
        assert_eq!(refused(ErrorCode::NoMatch).exit_code(), 1);
        assert_eq!(refused(ErrorCode::Unavailable).exit_code(), 3);
        assert_eq!(refused(ErrorCode::Peer).exit_code(), 3);
        assert_eq!(refused(ErrorCode::Unknown).exit_code(), 3);
        assert_eq!(refused(ErrorCode::RateLimited).exit_code(), 4);
        // The message is shown as the node wrote it.
        assert_eq!(
            refused(ErrorCode::NotFound).to_string(),
            "whatever the text says"
        );
    }

    #[test]
    fn caller_and_connection_errors_exit_2() {
        assert_eq!(CliError::UnknownCommand("x".into()).exit_code(), 2);
        assert_eq!(CliError::Quoting.exit_code(), 2);
        assert_eq!(CliError::Interrupted.exit_code(), 2);
        assert_eq!(CliError::Timeout(Duration::from_secs(10)).exit_code(), 2);
        assert_eq!(
            CliError::Transport(TransportError::DialTimeout {
                peer: ([127, 0, 0, 1], 30035).into(),
                after: Duration::from_secs(3),
            })
            .exit_code(),
            2
        );
        assert_eq!(
            CliError::Timeout(Duration::from_secs(10)).to_string(),
            "no answer within 10s (--timeout)"
        );
    }
}
