//! The `werify` command line: parses arguments, sets up logging and the tokio runtime, and
//! hands over to `node`, `ctl`, `mesh status`, `certs`, `config check` or `checks
//! run|add|validate`; `completions` and `man` print what clap's definitions generate (and
//! `--version` says what [`version`] says). Every error comes back here as a [`CliError`]
//! and is printed by [`error::report`], which also picks the exit code.

pub mod args;
pub mod certs;
pub mod checks_add;
pub mod checks_run;
pub mod checks_validate;
pub mod command;
pub mod completions;
pub mod config_cmd;
pub mod config_file;
pub mod ctl;
pub mod error;
pub mod identity;
pub mod logging;
pub mod man;
pub mod node;
pub mod output;
pub mod settings;
pub mod version;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::args::{CertsCommand, ChecksCommand, Cli, Command, ConfigCommand, MeshCommand};
use crate::cli::error::{CliError, EXIT_OK, report};
use crate::cli::logging::{LogFormat, LogLevel};
use crate::cli::output::nagios;

/// Threads the async runtime may start for blocking work (checks, store commits).
const MAX_BLOCKING_THREADS: usize = 32;

/// Entry point of the `werify` binary.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let nagios = nagios_requested(&argv);
    let code = match parse_with_matches(argv).and_then(|(cli, m)| run(cli, &m)) {
        Ok(code) => code,
        // A Nagios plugin that cannot get results says UNKNOWN on stdout and exits 3.
        Err(e) if nagios && e.exit_code() != EXIT_OK => {
            ctl::print(&nagios::unknown(&e.to_string()));
            nagios::Status::Unknown.exit_code()
        }
        Err(e) => report(&e),
    };
    ExitCode::from(code)
}

/// The command line asks for `--output nagios` (read before parsing, so that even a
/// usage error is reported the plugin's way).
fn nagios_requested(argv: &[OsString]) -> bool {
    argv.iter()
        .zip(argv.iter().skip(1))
        .any(|(a, b)| a == "--output" && b == "nagios")
        || argv.iter().any(|a| a == "--output=nagios")
}

/// Parses a command line (`argv[0]` first). A mistake in the words after `werify ctl`
/// comes back with the original tool's text where it had one (see
/// [`command::ctl_error`]).
pub fn parse<I, T>(argv: I) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    parse_with_matches(argv).map(|(cli, _)| cli)
}

/// [`parse`], also returning clap's matches, which say where each value came from (a
/// flag, an environment variable, a default).
pub fn parse_with_matches<I, T>(argv: I) -> Result<(Cli, ArgMatches), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    Cli::command()
        .try_get_matches_from(&argv)
        .and_then(|m| {
            Cli::from_arg_matches(&m)
                .map(|cli| (cli, m))
                .map_err(|e| e.format(&mut Cli::command()))
        })
        .map_err(|e| {
            let cli = Cli::command();
            match (argv.get(1), cli.find_subcommand("ctl")) {
                (Some(sub), Some(ctl)) if sub == "ctl" => {
                    let words: Vec<String> = argv[2..]
                        .iter()
                        .map(|w| w.to_string_lossy().into_owned())
                        .collect();
                    command::ctl_error(e, ctl, &words)
                }
                _ => CliError::Clap(e),
            }
        })
}

/// Runs a parsed command line; the exit code, or the error that stopped it. `matches`
/// are clap's for the same command line.
fn run(cli: Cli, matches: &ArgMatches) -> Result<u8, CliError> {
    let sub = |name: &str| matches.subcommand_matches(name).unwrap_or(matches);
    match cli.command {
        // Generating text needs neither logging nor the runtime.
        Command::Completions { shell } => completions::print(shell),
        Command::Man { out } => man::write(out.as_deref()),
        Command::Checks {
            command: ChecksCommand::Run(args),
        } => on_runtime(checks_run::run(args)),
        Command::Checks {
            command: ChecksCommand::Add(args),
        } => on_runtime(checks_add::run(args)),
        Command::Checks {
            command: ChecksCommand::Validate(args),
        } => on_runtime(checks_validate::run(args)),
        // Logging waits for the node's settings (level, format).
        Command::Node(args) => node::run_node(args, sub("node")),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => {
            let check = sub("config").subcommand_matches("check").unwrap_or(matches);
            config_cmd::check(args, check)
        }
        Command::Ctl(args) => on_runtime(ctl::run_ctl(args)),
        Command::Mesh {
            command: MeshCommand::Status(args),
        } => on_runtime(ctl::run_status(args)),
        Command::Certs {
            command: CertsCommand::Init { env, out, force },
        } => {
            logging::init(LogLevel::Warn, LogFormat::Text);
            certs::init(&env, &out, force)
        }
    }
}

/// Runs a client command: warnings and errors logged, on the async runtime.
fn on_runtime(command: impl Future<Output = Result<u8, CliError>>) -> Result<u8, CliError> {
    logging::init(LogLevel::Warn, LogFormat::Text);
    runtime()?.block_on(command)
}

/// The async runtime every command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // One thread runs all async work, a node's included: its tasks never wait for another
    // thread to be woken, which on a busy host (the CPU shared with many others) is much
    // of a short command's time and of a node's CPU.
    tokio::runtime::Builder::new_current_thread()
        // What blocks (checks, store commits, snapshot writes) runs on the blocking pool.
        // Each extra thread costs a stack and, with glibc, often a malloc arena: bound the
        // pool so a busy node's memory stays flat (a check that hangs past its timeout
        // holds one thread).
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::command::{CtlCommand, CtlSubcommand, OperationArgs};
    use crate::cli::output::OutputFormat;

    fn ctl(words: &[&str]) -> Result<args::CtlArgs, CliError> {
        let argv = ["werify", "ctl"].iter().chain(words);
        match parse(argv.map(|w| w.to_string()))?.command {
            Command::Ctl(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    fn ctl_err(words: &[&str]) -> CliError {
        ctl(words).expect_err("must not parse")
    }

    #[test]
    fn ctl_options_go_before_or_after_the_command() {
        let before = ctl(&[
            "--connect",
            "127.0.0.2",
            "--timeout",
            "3s",
            "--output",
            "json",
            "--env",
            "prod",
            "get",
            "abc1-defg",
        ])
        .unwrap();
        let after = ctl(&[
            "get",
            "abc1-defg",
            "--connect",
            "127.0.0.2",
            "--timeout=3s",
            "--output",
            "json",
            "--env",
            "prod",
        ])
        .unwrap();
        for a in [&before, &after] {
            assert_eq!(a.connect.target(), "127.0.0.2");
            assert_eq!(a.connect.timeout, Duration::from_secs(3));
            assert_eq!(a.connect.output, OutputFormat::Json);
            assert_eq!(a.identity.env.as_deref(), Some("prod"));
            assert_eq!(
                a.command,
                CtlSubcommand::Run(CtlCommand::Get {
                    handle: "abc1-defg".into(),
                    wait: false
                })
            );
        }
        // Defaults when not given anywhere.
        let a = ctl(&["list"]).unwrap();
        assert_eq!(a.connect.timeout, Duration::from_secs(10));
        assert_eq!(a.connect.output, OutputFormat::Text);
        assert_eq!(a.command, CtlSubcommand::Run(CtlCommand::List));
        // A value given after the command beats one given before it.
        let a = ctl(&["--timeout", "3s", "list", "--timeout", "4s"]).unwrap();
        assert_eq!(a.connect.timeout, Duration::from_secs(4));
    }

    #[test]
    fn every_ctl_command_parses_on_the_command_line() {
        let cmd = |w: &[&str]| ctl(w).unwrap().command;
        assert_eq!(
            cmd(&["add", "127.0.0.2"]),
            CtlSubcommand::Run(CtlCommand::Add {
                host: "127.0.0.2".into()
            })
        );
        assert_eq!(
            cmd(&["del", "127.0.0.2"]),
            CtlSubcommand::Run(CtlCommand::Del {
                host: "127.0.0.2".into()
            })
        );
        assert_eq!(
            cmd(&["listactive"]),
            CtlSubcommand::Run(CtlCommand::Listactive)
        );
        assert_eq!(
            cmd(&["listinactive"]),
            CtlSubcommand::Run(CtlCommand::Listinactive)
        );
        assert_eq!(
            cmd(&["refresh", "--wait"]),
            CtlSubcommand::Run(CtlCommand::Refresh { wait: true })
        );
        assert_eq!(
            cmd(&[
                "operation",
                "ops.json",
                "--wait",
                "--node",
                "^127",
                "--tag",
                "role=web",
                "--deadline",
                "3s"
            ]),
            CtlSubcommand::Run(CtlCommand::Operation(OperationArgs {
                file: "ops.json".into(),
                wait: true,
                nodes: vec!["^127".into()],
                tags: vec![("role".into(), "web".into())],
                deadline: Duration::from_secs(3),
            }))
        );
        assert_eq!(cmd(&["-"]), CtlSubcommand::Batch);
        assert_eq!(
            cmd(&["--connect", "127.0.0.3:30036", "-"]),
            CtlSubcommand::Batch
        );
    }

    #[test]
    fn ctl_mistakes_get_the_original_tools_texts() {
        let text = |w: &[&str]| ctl_err(w).to_string();
        assert_eq!(text(&["frobnicate"]), "Unknown command frobnicate");
        assert_eq!(
            text(&[
                "--connect",
                "127.0.0.1:31199",
                "--timeout",
                "5s",
                "frobnicate"
            ]),
            "Unknown command frobnicate"
        );
        assert_eq!(
            text(&["add"]),
            "Invalid number of arguments for add: Expected 1 but got 0"
        );
        assert_eq!(
            text(&["--output", "json", "add"]),
            "Invalid number of arguments for add: Expected 1 but got 0"
        );
        assert_eq!(
            text(&["list", "extra"]),
            "Invalid number of arguments for list: Expected 0 but got 1"
        );
        // Options after the command, values included, are not positional arguments.
        assert_eq!(
            text(&["get", "--connect", "127.0.0.2", "--wait"]),
            "Invalid number of arguments for get: Expected 1 but got 0"
        );
        assert_eq!(ctl_err(&["add"]).exit_code(), 2);
        assert_eq!(ctl_err(&["frobnicate"]).exit_code(), 2);
    }

    #[test]
    fn other_ctl_mistakes_are_clap_errors_exiting_2() {
        for words in [
            &["list", "--wait"][..],
            &["--bogus", "list"],
            &["--output", "yaml", "list"],
            &["operation", "f", "--deadline", "soon"],
            &["--ca-cert", "c.pem", "list"],
            &["--connect", "127.0.0.2"],
        ] {
            let e = ctl_err(words);
            assert!(matches!(e, CliError::Clap(_)), "{words:?}: {e:?}");
            assert_eq!(e.exit_code(), 2, "{words:?}");
        }
    }

    #[test]
    fn help_of_a_ctl_command_is_help() {
        for words in [
            &["operation", "--help"][..],
            &["--connect", "127.0.0.2", "operation", "--help"],
            &["help", "operation"],
            &["operation", "-h"],
        ] {
            let err = ctl_err(words);
            assert_eq!(err.exit_code(), 0, "{words:?}");
            let CliError::Clap(e) = err else {
                panic!("{words:?}: not a clap error");
            };
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{words:?}");
            let text = e.to_string();
            assert!(text.contains("Usage: werify ctl operation"), "{text}");
            assert!(text.contains("--deadline <DURATION>"), "{text}");
            // The options of `ctl` itself are listed, since they may follow the command.
            assert!(text.contains("--connect <HOST[:PORT]>"), "{text}");
        }
        let CliError::Clap(e) = ctl_err(&["get", "--help"]) else {
            panic!("get --help");
        };
        assert!(e.to_string().contains("<HANDLE>"), "{e}");
        // `werify ctl --help` lists every command and the exit codes.
        let CliError::Clap(e) = ctl_err(&["--help"]) else {
            panic!("--help");
        };
        let text = e.to_string();
        for name in [
            "add",
            "del",
            "list",
            "listactive",
            "listinactive",
            "operation",
            "get",
            "refresh",
            "-  ",
            "Exit codes:",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
        // Nothing at all: help on stderr, exit 2.
        let e = ctl_err(&[]);
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn node_mesh_and_certs_parse_as_before() {
        let argv = |w: &[&str]| {
            std::iter::once("werify")
                .chain(w.iter().copied())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let node_of = |words: &[&str]| {
            let (cli, m) = parse_with_matches(argv(words)).unwrap();
            let Command::Node(n) = cli.command else {
                panic!("node");
            };
            let sub = m.subcommand_matches("node").expect("node matches").clone();
            (n, sub)
        };
        // No config file: the default path is only read when it exists.
        let (n, m) = node_of(&[
            "node",
            "--config",
            "/dev/null",
            "--env",
            "prod",
            "--bind",
            "127.0.0.2",
            "--port",
            "30036",
            "--join",
            "127.0.0.1",
            "--tag",
            "role=web",
            "-w",
            "8",
        ]);
        assert_eq!(n.port, 30036);
        assert_eq!(n.workers, 8);
        assert_eq!(n.identity.env.as_deref(), Some("prod"));
        let config = node::node_config(&n, &m).unwrap();
        assert_eq!(config.tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(config.workers, 8);
        let (n, m) = node_of(&["node", "--config", "/dev/null", "--tag", "novalue"]);
        assert_eq!(
            node::node_config(&n, &m)
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "invalid --tag \"novalue\": expected KEY=VALUE"
        );
        let Command::Mesh {
            command: MeshCommand::Status(s),
        } = parse(argv(&[
            "mesh",
            "status",
            "--connect",
            "127.0.0.2",
            "--output",
            "json",
        ]))
        .unwrap()
        .command
        else {
            panic!("mesh status");
        };
        assert_eq!(s.connect.target(), "127.0.0.2");
        assert_eq!(s.connect.output, OutputFormat::Json);
        assert!(matches!(
            parse(argv(&["certs", "init", "--env", "prod", "--force"]))
                .unwrap()
                .command,
            Command::Certs {
                command: CertsCommand::Init { force: true, .. }
            }
        ));
        // Not `ctl`: clap's own error, untouched.
        assert!(matches!(
            parse(argv(&["frobnicate"])),
            Err(CliError::Clap(_))
        ));
    }
}
