//! The `ctl` commands as clap subcommands (`add HOST`, `operation FILE --wait`, …), and
//! batch mode's lines, read by the same definitions. Where the original tool (werifyctl)
//! had an error text for a mistake (`Unknown command frobnicate`, `Invalid number of
//! arguments for add: Expected 1 but got 0`), clap's error is replaced by that text, on
//! the command line and in batch mode alike. Running a command is in [`crate::cli::ctl`].

use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::checks::duration::parse_duration;
use crate::cli::error::CliError;

/// Default operation deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// What follows `werify ctl` and its options: one command, or `-` for commands on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CtlSubcommand {
    #[command(flatten)]
    Run(CtlCommand),
    /// Runs commands from stdin, one per line
    ///
    /// Each line is one command as it would follow `werify ctl` (add, del, list, listactive,
    /// listinactive, operation, get, refresh, health), split into words as a POSIX shell would
    /// (quotes and backslashes work; no variables or globs). Blank lines and `#` comments
    /// are skipped. All lines use one connection. The first line that fails stops the run
    /// with `Error running <line>: <message>` on stderr; otherwise `Commands processed: N`
    /// ends the output.
    ///
    /// Example: printf 'add 10.0.0.2\nadd 10.0.0.3\nlist\n' | werify ctl -
    #[command(name = "-")]
    Batch,
}

/// One `ctl` command, given after `werify ctl` or as one line of batch mode.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CtlCommand {
    /// Adds a host to the mesh
    ///
    /// The node you talk to joins HOST into its mesh; gossip then tells every other node.
    /// Prints `Added host HOST`. A host that is already alive in the mesh is refused. A
    /// host that does not answer within 8 s is an error, and the node keeps trying it in
    /// the background until it answers or `del HOST` stops it.
    Add {
        /// The host to add: IP, IP:PORT or [IPv6]:PORT (port 30035 if not given)
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// Removes a host from the mesh
    ///
    /// HOST is told to leave, and every node forgets it; it stays out until added again.
    /// For a host still being tried after a failed add, stops the attempts. Prints
    /// `Removed host HOST`.
    Del {
        /// The host to remove: IP, IP:PORT or [IPv6]:PORT (port 30035 if not given)
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// Lists hosts in the mesh
    ///
    /// Prints `Active hosts (N)` and one IP:PORT per line, then `Inactive hosts (M)` and
    /// theirs, then `End of list`. Active means alive; inactive means suspected or dead
    /// (still remembered). Hosts are sorted by address.
    List,
    /// Lists active hosts in the mesh
    ///
    /// The `Active hosts (N)` half of `list`, then `End of list`.
    Listactive,
    /// Lists inactive hosts in the mesh
    ///
    /// The `Inactive hosts (M)` half of `list` (suspected or dead hosts), then `End of
    /// list`.
    Listinactive,
    /// Runs operations from file on every host
    ///
    /// Reads FILE (named checks as a JSON object, or a YAML mapping when FILE ends in .yaml
    /// or .yml; see examples/checks.json) or, for `-`, standard input (JSON when it starts
    /// with `{`, YAML otherwise), checks it here (errors name FILE:LINE:COLUMN and the
    /// check; nothing is sent), and has the node you talk to coordinate it on every
    /// targeted host. Prints the handle and the command that shows the results; with
    /// --wait, waits for them instead, prints them like `get`, and exits 1 if a check was
    /// false or errored or a host did not answer. Filters that match no alive host are
    /// refused with the hosts they could have matched (exit 1). In batch mode (`ctl -`)
    /// standard input is the batch, so `operation -` is refused there.
    Operation(OperationArgs),
    /// Get status of operation with handle
    ///
    /// Prints one `Host:IP:PORT Operation:NAME Success:true|false` (or `Error:…`) line per
    /// host and check, then `Operation ended, took …` or `Operation still running...`, and a
    /// summary line. Any node of the mesh can answer for any handle.
    Get {
        /// The handle `operation` printed, e.g. gxm12-hkpw
        #[arg(value_name = "HANDLE")]
        handle: String,
        /// Wait until the operation ended, then exit 1 if a check was false or errored or
        /// a host did not answer
        #[arg(long)]
        wait: bool,
    },
    /// Start health check on all hosts
    ///
    /// Probes every member now and has every alive node re-run its periodic checks
    /// (`werify node --checks`). Prints `Initiated refresh`.
    Refresh {
        /// Wait for every alive host's new health summary, print them, and exit 1 if a
        /// check fails somewhere or a summary did not arrive
        #[arg(long)]
        wait: bool,
    },
    /// Shows every host's periodic checks, without running any
    ///
    /// The node you talk to asks each alive member for the results of its latest periodic
    /// run (`werify node --checks`) and prints one `Host:IP:PORT Check:NAME Success:true|false`
    /// (or `Error:…`) line per host and check; a host with no periodic checks, or none run
    /// yet, gets one `Host:IP:PORT Health:…` line, and one that cannot be asked (not alive,
    /// unreachable) a `Host:IP:PORT Error:…` line with its last gossiped summary. A summary
    /// line ends the output. Exits 1 if a check fails or errors somewhere or a host could
    /// not be asked.
    Health {
        /// Only failing and erroring checks; only hosts whose gossiped summary shows one
        /// are asked
        #[arg(long)]
        failing: bool,
    },
}

/// `ctl operation`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OperationArgs {
    /// The operations file (JSON, or YAML if it ends in .yaml or .yml); `-` for
    /// standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Wait for the results, print them, and exit 1 if a check was false or errored or a
    /// host did not answer
    #[arg(long)]
    pub wait: bool,
    /// Only hosts whose IP:PORT or node id matches this regex (repeatable: any of them)
    #[arg(long = "node", value_name = "REGEX")]
    pub nodes: Vec<String>,
    /// Only hosts with tag KEY whose value matches REGEX (repeatable: all of them)
    #[arg(long = "tag", value_name = "KEY=REGEX", value_parser = parse_tag_filter)]
    pub tags: Vec<(String, String)>,
    /// How long the coordinator waits for the hosts' answers
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub deadline: Duration,
}

impl OperationArgs {
    /// The operations file is standard input (`operation -`).
    pub fn reads_stdin(&self) -> bool {
        self.file.as_os_str() == "-"
    }
}

impl CtlCommand {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            CtlCommand::Add { .. } => "add",
            CtlCommand::Del { .. } => "del",
            CtlCommand::List => "list",
            CtlCommand::Listactive => "listactive",
            CtlCommand::Listinactive => "listinactive",
            CtlCommand::Operation(_) => "operation",
            CtlCommand::Get { .. } => "get",
            CtlCommand::Refresh { .. } => "refresh",
            CtlCommand::Health { .. } => "health",
        }
    }

    /// The command prints check results (`operation --wait`, `get`, `refresh --wait`),
    /// which every `--output` format can show.
    pub fn shows_results(&self) -> bool {
        match self {
            CtlCommand::Operation(op) => op.wait,
            CtlCommand::Get { .. } => true,
            CtlCommand::Refresh { wait } => *wait,
            CtlCommand::Add { .. }
            | CtlCommand::Del { .. }
            | CtlCommand::List
            | CtlCommand::Listactive
            | CtlCommand::Listinactive
            | CtlCommand::Health { .. } => false,
        }
    }

    /// The command waits for results (`--wait`), for longer than `--timeout`.
    pub fn waits(&self) -> bool {
        match self {
            CtlCommand::Operation(op) => op.wait,
            CtlCommand::Get { wait, .. } | CtlCommand::Refresh { wait } => *wait,
            CtlCommand::Add { .. }
            | CtlCommand::Del { .. }
            | CtlCommand::Health { .. }
            | CtlCommand::List
            | CtlCommand::Listactive
            | CtlCommand::Listinactive => false,
        }
    }
}

fn parse_tag_filter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=REGEX".into()),
    }
}

/// One batch line as clap reads it: a [`CtlCommand`] without `ctl`'s own options.
#[derive(Debug, Parser)]
#[command(
    name = "werify ctl",
    bin_name = "werify ctl",
    disable_version_flag = true,
    about = "One command per line, as after `werify ctl`"
)]
struct BatchLine {
    #[command(subcommand)]
    command: CtlCommand,
}

/// What one line of batch mode asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A blank line or a comment.
    Skip,
    /// A command to run.
    Run(CtlCommand),
    /// `--help` (or `help`) was asked for: clap's help text, to print.
    Help(String),
}

/// Parses one line of batch mode: shell-style words (quotes, backslashes, `#` comments),
/// then the same clap definitions as `werify ctl`.
pub fn parse_batch_line(line: &str) -> Result<Line, CliError> {
    let words = shlex::split(line.trim()).ok_or(CliError::Quoting)?;
    if words.is_empty() {
        return Ok(Line::Skip);
    }
    let argv = std::iter::once("werify ctl".to_string()).chain(words.iter().cloned());
    match BatchLine::try_parse_from(argv) {
        Ok(b) => Ok(Line::Run(b.command)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(Line::Help(e.to_string()))
        }
        Err(e) => Err(ctl_error(e, &BatchLine::command(), &words)),
    }
}

/// Turns a clap error about `ctl` words into the original tool's error where it had one:
/// an unknown command, or the wrong number of positional arguments. `ctl` is the clap
/// command whose subcommands the words name (`werify ctl` or a batch line); `words` are
/// the words after it.
pub fn ctl_error(e: clap::Error, ctl: &clap::Command, words: &[String]) -> CliError {
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let word = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => match locate(ctl, words) {
                    Some((name, _)) => name,
                    None => return CliError::Clap(e),
                },
            };
            CliError::UnknownCommand(word)
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::UnknownArgument
        | ErrorKind::TooManyValues
        | ErrorKind::WrongNumberOfValues => {
            if let Some((name, got)) = locate(ctl, words)
                && let Some(sub) = ctl.find_subcommand(&name)
            {
                let expected = sub.get_positionals().count();
                if got != expected {
                    return CliError::ArgumentCount {
                        command: name,
                        expected,
                        got,
                    };
                }
            }
            CliError::Clap(e)
        }
        _ => CliError::Clap(e),
    }
}

/// The subcommand word among `words` and how many positional words follow it, reading
/// options the way `ctl`'s and the subcommand's definitions say (an option that takes a
/// value takes the next word, unless written `--opt=value`). `None` if the words hold an
/// option neither defines: whether it takes a value, and so the count, is unknown.
fn locate(ctl: &clap::Command, words: &[String]) -> Option<(String, usize)> {
    let mut it = words.iter();
    let name = loop {
        let w = it.next()?;
        if w == "--" {
            return None;
        }
        if is_option(w) {
            if option(&[ctl], w)?.get_action().takes_values() && !w.contains('=') {
                it.next();
            }
            continue;
        }
        break w.clone();
    };
    let sub = ctl.find_subcommand(&name)?;
    let mut got = 0;
    let mut only_positionals = false;
    while let Some(w) = it.next() {
        if only_positionals || !is_option(w) {
            got += 1;
        } else if w == "--" {
            only_positionals = true;
        } else if option(&[sub, ctl], w)?.get_action().takes_values() && !w.contains('=') {
            it.next();
        }
    }
    Some((name, got))
}

/// `word` is an option (`-x`, `--long`, `--long=value`, `--`), not a value; `-` alone is
/// a value.
fn is_option(word: &str) -> bool {
    word.starts_with('-') && word != "-"
}

/// The argument of one of `cmds` that the option `word` names.
fn option<'c>(cmds: &[&'c clap::Command], word: &str) -> Option<&'c clap::Arg> {
    let matches = |a: &clap::Arg| match word.strip_prefix("--") {
        Some(long) => a.get_long() == Some(long.split_once('=').map_or(long, |(l, _)| l)),
        None => {
            let mut chars = word.chars().skip(1);
            let short = chars.next();
            chars.next().is_none() && short.is_some() && a.get_short() == short
        }
    };
    cmds.iter()
        .find_map(|c| c.get_arguments().find(|a| matches(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> CtlCommand {
        match parse_batch_line(line) {
            Ok(Line::Run(c)) => c,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_batch_line(line) {
            Err(e) => e.to_string(),
            other => panic!("{line:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(
            run("add 127.0.0.2"),
            CtlCommand::Add {
                host: "127.0.0.2".into()
            }
        );
        assert_eq!(
            run("del 127.0.0.3:30036"),
            CtlCommand::Del {
                host: "127.0.0.3:30036".into()
            }
        );
        assert_eq!(run("list"), CtlCommand::List);
        assert_eq!(run("listactive"), CtlCommand::Listactive);
        assert_eq!(run("listinactive"), CtlCommand::Listinactive);
        assert_eq!(
            run("get gxm1-abcd --wait"),
            CtlCommand::Get {
                handle: "gxm1-abcd".into(),
                wait: true
            }
        );
        assert_eq!(
            run("get gxm1-abcd"),
            CtlCommand::Get {
                handle: "gxm1-abcd".into(),
                wait: false
            }
        );
        assert_eq!(run("refresh"), CtlCommand::Refresh { wait: false });
        assert_eq!(run("refresh --wait"), CtlCommand::Refresh { wait: true });
        assert_eq!(run("health"), CtlCommand::Health { failing: false });
        assert_eq!(
            run("health --failing"),
            CtlCommand::Health { failing: true }
        );
        assert_eq!(
            run("operation ops.json"),
            CtlCommand::Operation(OperationArgs {
                file: "ops.json".into(),
                wait: false,
                nodes: vec![],
                tags: vec![],
                deadline: DEFAULT_DEADLINE,
            })
        );
    }

    #[test]
    fn operation_options_parse() {
        let cmd = run(
            "operation ops.json --node ^127 --tag role=web --node=b --tag=dc=eu-.* --deadline 3s --wait",
        );
        assert_eq!(
            cmd,
            CtlCommand::Operation(OperationArgs {
                file: "ops.json".into(),
                wait: true,
                nodes: vec!["^127".into(), "b".into()],
                tags: vec![("role".into(), "web".into()), ("dc".into(), "eu-.*".into())],
                deadline: Duration::from_secs(3),
            })
        );
        // Options may come before the file, too.
        assert_eq!(run("operation --wait ops.json"), {
            let CtlCommand::Operation(mut op) = run("operation ops.json") else {
                unreachable!()
            };
            op.wait = true;
            CtlCommand::Operation(op)
        });
        assert!(cmd.waits());
        assert!(!run("get h").waits());
        assert!(run("refresh --wait").waits());
    }

    #[test]
    fn words_are_split_like_a_shell() {
        assert_eq!(
            run(r#"operation "my checks.json" --node '^10\.0\.'"#),
            CtlCommand::Operation(OperationArgs {
                file: "my checks.json".into(),
                wait: false,
                nodes: vec![r"^10\.0\.".into()],
                tags: vec![],
                deadline: DEFAULT_DEADLINE,
            })
        );
        assert_eq!(
            run(r"operation my\ checks.json"),
            run("operation 'my checks.json'")
        );
        // Any whitespace separates words; a CR of a CRLF file is not part of the last one.
        assert_eq!(
            run(" del \t 127.0.0.3 \r"),
            CtlCommand::Del {
                host: "127.0.0.3".into()
            }
        );
        assert_eq!(
            err("add 'unclosed"),
            "unbalanced quotes or a trailing backslash"
        );
        assert_eq!(
            err(r"add host\"),
            "unbalanced quotes or a trailing backslash"
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        assert_eq!(parse_batch_line("# comment").ok(), Some(Line::Skip));
        assert_eq!(
            parse_batch_line("   # indented comment").ok(),
            Some(Line::Skip)
        );
        assert_eq!(parse_batch_line("").ok(), Some(Line::Skip));
        assert_eq!(parse_batch_line(" \t \r").ok(), Some(Line::Skip));
        // A comment after a command ends the line; a # inside a word is part of it.
        assert_eq!(run("listactive # the alive ones"), CtlCommand::Listactive);
        assert_eq!(run("add a#b"), CtlCommand::Add { host: "a#b".into() });
    }

    #[test]
    fn the_original_tools_error_texts() {
        assert_eq!(err("frobnicate"), "Unknown command frobnicate");
        assert_eq!(err("frobnicate a b"), "Unknown command frobnicate");
        // Close to a real command: still the original text, no suggestion.
        assert_eq!(err("lst"), "Unknown command lst");
        // Batch mode cannot nest.
        assert_eq!(err("-"), "Unknown command -");
        assert_eq!(
            err("add"),
            "Invalid number of arguments for add: Expected 1 but got 0"
        );
        assert_eq!(
            err("add a b"),
            "Invalid number of arguments for add: Expected 1 but got 2"
        );
        assert_eq!(
            err("del"),
            "Invalid number of arguments for del: Expected 1 but got 0"
        );
        assert_eq!(
            err("list extra"),
            "Invalid number of arguments for list: Expected 0 but got 1"
        );
        assert_eq!(
            err("listinactive a b"),
            "Invalid number of arguments for listinactive: Expected 0 but got 2"
        );
        assert_eq!(
            err("get"),
            "Invalid number of arguments for get: Expected 1 but got 0"
        );
        assert_eq!(
            err("get --wait"),
            "Invalid number of arguments for get: Expected 1 but got 0"
        );
        assert_eq!(
            err("refresh now"),
            "Invalid number of arguments for refresh: Expected 0 but got 1"
        );
        // An option's value is not a positional argument.
        assert_eq!(
            err("operation --deadline 5s"),
            "Invalid number of arguments for operation: Expected 1 but got 0"
        );
        assert_eq!(
            err("operation a.json b.json --tag k=v"),
            "Invalid number of arguments for operation: Expected 1 but got 2"
        );
    }

    #[test]
    fn other_mistakes_get_clap_messages_on_one_line() {
        assert_eq!(err("list --wait"), "unexpected argument '--wait' found");
        // An unknown option may or may not take a value: no count is claimed.
        assert_eq!(
            err("list --output json"),
            "unexpected argument '--output' found"
        );
        assert_eq!(err("add --bogus"), "unexpected argument '--bogus' found");
        assert_eq!(
            err("operation f --deadline"),
            "a value is required for '--deadline <DURATION>' but none was supplied"
        );
        let e = err("operation f --tag novalue");
        assert!(e.contains("novalue") && e.contains("KEY=REGEX"), "{e}");
        let e = err("operation f --deadline soon");
        assert!(e.contains("invalid duration \"soon\""), "{e}");
        // Options of `werify ctl` itself are not for batch lines.
        assert_eq!(
            err("list --connect 127.0.0.2"),
            "unexpected argument '--connect' found"
        );
        for e in [err("list --wait"), err("operation f --deadline")] {
            assert!(!e.contains('\n') && !e.starts_with("error"), "{e:?}");
        }
    }

    #[test]
    fn help_of_a_command_is_help() {
        for line in ["operation --help", "help operation", "operation -h"] {
            let Ok(Line::Help(text)) = parse_batch_line(line) else {
                panic!("{line}: not help");
            };
            assert!(
                text.contains("Usage: werify ctl operation"),
                "{line}: {text}"
            );
            assert!(text.contains("--deadline <DURATION>"), "{line}: {text}");
        }
        let Ok(Line::Help(text)) = parse_batch_line("get --help") else {
            panic!("get --help");
        };
        assert!(
            text.contains("<HANDLE>") && text.contains("--wait"),
            "{text}"
        );
    }
}
