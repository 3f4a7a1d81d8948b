//! The command line as clap sees it: subcommands, flags, environment variables and their
//! defaults. `ctl`'s own commands are in [`crate::cli::command`]; turning all of these
//! into running things is done by the sibling modules.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::checks::duration::parse_duration;
use crate::cli::checks_add::ChecksAddArgs;
use crate::cli::checks_run::ChecksRunArgs;
use crate::cli::checks_validate::ChecksValidateArgs;
use crate::cli::command::CtlSubcommand;
use crate::cli::completions::CompletionShell;
use crate::cli::logging::{LogFormat, LogLevel};
use crate::cli::output::OutputFormat;
use crate::cli::version::VERSION;
use crate::mesh::config::Profile;
use crate::rpc::hostaddr::DEFAULT_PORT;

/// werify: a peer-to-peer host-check mesh over QUIC with mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "werify", version = VERSION.as_str(), about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a mesh node on this host.
    Node(NodeArgs),
    /// Talk to a node: add/del/list hosts, run operations, get results, refresh.
    ///
    /// The options (--connect, --timeout, --output and the identity options) may come
    /// before or after the command. `werify ctl COMMAND --help` explains each command.
    #[command(
        arg_required_else_help = true,
        after_long_help = EXIT_CODES_HELP
    )]
    Ctl(CtlArgs),
    /// Show the mesh as one node sees it.
    Mesh {
        #[command(subcommand)]
        command: MeshCommand,
    },
    /// Write, check and run operations files on this host, without a node.
    Checks {
        #[command(subcommand)]
        command: ChecksCommand,
    },
    /// Manage the env CA for PEM mode.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Print the shell completion script for bash, zsh or fish to stdout.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Write the manual pages: werify.1 and one page per subcommand.
    Man {
        /// Write every page into this directory (which must exist) and list them; without
        /// it, werify.1 goes to stdout.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Check the node's config file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file and print the configuration `werify node` would run with,
    /// each value with where it came from (flag, env, FILE:LINE or default).
    ///
    /// Takes the same options as `werify node`, so a flag or environment variable given
    /// here shows as it would override the file. Exits 0 when valid, 2 with the error
    /// (FILE:LINE, the key, what is valid) when not.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The config file to check (same as --config; default: /etc/werify/werify.toml when
    /// it exists).
    #[arg(value_name = "FILE", conflicts_with = "config")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The exit codes of `werify ctl`, for its long help (README's exit code paragraph says
/// the same).
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (with --wait: every check on every host succeeded)
  1  a check was false or errored, or a host did not answer (--wait commands); or the
     --node/--tag filters of an operation match no alive host
  2  usage, input, connection or authentication error; or the node refused the request
     as invalid, forbidden, or naming something unknown (e.g. an unknown handle)
  3  the node, or a node it needed, cannot serve the request now: try later or another node
  4  the node refused the request for now (rate limit, too many running operations): retry later";

#[derive(Debug, Subcommand)]
pub enum MeshCommand {
    /// Members, states, incarnations, RTTs, health and suspicions as one node sees them.
    Status(StatusArgs),
}

#[derive(Debug, Subcommand)]
pub enum ChecksCommand {
    /// Write a check that this host passes now, e.g. `checks add file_hash /etc/hosts`.
    ///
    /// Reads what the check tests from this host (a file's digest or mode, the status a
    /// URL answers, a kernel parameter's value, …), runs the check once, and prints it as
    /// an operations file, or adds it to --file (JSON or YAML by its name; created when
    /// missing; other checks, layout and comments kept; a name already there is refused).
    Add(ChecksAddArgs),
    /// Check operations files offline: the errors `ctl operation` would give, exit 0 or 2.
    Validate(ChecksValidateArgs),
    /// Runs an operations file's checks on this host, without a node, and prints the
    /// results in any --output format (like `ctl operation --wait` for one host).
    #[command(after_long_help = crate::cli::checks_run::EXIT_CODES_HELP)]
    Run(ChecksRunArgs),
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write a new env CA (ca.crt.pem, ca.key.pem) for PEM mode.
    Init {
        /// Env tag the CA is for.
        #[arg(long, env = "WERIFY_ENV")]
        env: String,
        /// Directory to write into.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// How this process proves it belongs to the env: derived (env + optional secret) or PEM CA.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Env tag: only nodes of the same env (and secret or CA) can talk to each other.
    #[arg(long, env = "WERIFY_ENV", global = true)]
    pub env: Option<String>,
    /// File holding the env secret mixed into the derived CA.
    #[arg(long, value_name = "FILE", conflicts_with = "ca_cert", global = true)]
    pub secret_file: Option<PathBuf>,
    /// The env secret itself (prefer --secret-file: the environment is visible to other
    /// processes of the same user).
    #[arg(
        long,
        env = "WERIFY_SECRET",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub secret: Option<String>,
    /// PEM CA certificate (from `werify certs init`); needs --ca-key.
    #[arg(long, value_name = "FILE", requires = "ca_key", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// PEM CA key; needs --ca-cert.
    #[arg(long, value_name = "FILE", requires = "ca_cert", global = true)]
    pub ca_key: Option<PathBuf>,
}

/// The options of `werify node`. Each one but `--config` may also be set in the config
/// file under its long name (`--data-dir` as `data_dir`, `--tag` as a `[tags]` table);
/// a flag wins over its environment variable, which wins over the file, which wins over
/// the default. Defaults are given here for the help text; merging is done by
/// [`crate::cli::settings`].
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The config file (TOML; keys are the long option names) [default:
    /// /etc/werify/werify.toml when it exists].
    #[arg(long, value_name = "FILE", env = "WERIFY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// IP address to listen on (UDP, QUIC).
    #[arg(long, env = "WERIFY_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "WERIFY_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address other nodes reach this one at, IP[:PORT] (default: the bind address).
    #[arg(long, env = "WERIFY_ADVERTISE", value_name = "IP[:PORT]")]
    pub advertise: Option<String>,
    /// Join the mesh through this node (repeatable; retried until it answers).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub join: Vec<String>,
    /// A KEY=VALUE tag that travels with this node's membership (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Hosts an operation coordinated here contacts at once, and checks run at once here.
    #[arg(short = 'w', long = "workers", env = "WERIFY_WORKERS", value_name = "N",
          default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub workers: u32,
    /// Where the node keeps its id, membership snapshot and operation results
    /// (default: $XDG_STATE_HOME/werify/IP-PORT or ~/.local/state/werify/IP-PORT).
    #[arg(long, env = "WERIFY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Protocol timing: lan (default), wan or local.
    #[arg(long, env = "WERIFY_PROFILE", default_value = "lan")]
    pub profile: Profile,
    /// Checks this node runs periodically (an operations file: JSON, or YAML when it ends
    /// in .yaml or .yml); their summary is gossiped to the whole mesh.
    #[arg(long, env = "WERIFY_CHECKS", value_name = "FILE")]
    pub checks: Option<PathBuf>,
    /// How often the periodic checks run.
    #[arg(long, env = "WERIFY_CHECK_INTERVAL", value_name = "DURATION", default_value = "30s",
          value_parser = parse_duration)]
    pub check_interval: Duration,
    /// Allow `command` checks (they run programs with this node's privileges).
    #[arg(long, env = "WERIFY_ALLOW_COMMAND")]
    pub allow_command: bool,
    /// Serve /healthz, /metrics and /v1/status over HTTP on IP:PORT, e.g. 127.0.0.1:30036
    /// (off by default; no authentication, so keep it on loopback or a trusted network).
    #[arg(long, env = "WERIFY_HTTP", value_name = "IP:PORT")]
    pub http: Option<SocketAddr>,
    /// How much to log (RUST_LOG, when set, wins).
    #[arg(long, env = "WERIFY_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, env = "WERIFY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ConnectArgs {
    /// The node to talk to; an empty flag or variable counts as unset.
    pub fn target(&self) -> &str {
        self.connect
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(DEFAULT_CONNECT)
    }
}

/// Where `ctl` connects when neither `--connect` nor `WERIFY_CONNECT` says.
pub const DEFAULT_CONNECT: &str = "127.0.0.1:30035";

/// How to reach a node.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Node to talk to, HOST[:PORT] [default: 127.0.0.1:30035].
    #[arg(
        long,
        env = "WERIFY_CONNECT",
        value_name = "HOST[:PORT]",
        global = true
    )]
    pub connect: Option<String>,
    /// Bound on the whole call, connecting included.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION",
          global = true)]
    pub timeout: Duration,
    /// Output format; junit, tap, nagios and prometheus show check results only
    /// (operation --wait, get, refresh --wait).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
    /// Text output shows, under each result line, what the check found and (unless it
    /// passed) what it expected. JSON always carries both.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    #[command(flatten, next_help_heading = "Connection")]
    pub connect: ConnectArgs,
    #[command(flatten, next_help_heading = "Identity")]
    pub identity: IdentityArgs,
    #[command(subcommand)]
    pub command: CtlSubcommand,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
