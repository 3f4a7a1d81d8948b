//! `werify checks run FILE`: runs an operations file's checks on this host, with no node
//! and no mesh, and prints the results in any `--output` format, as `ctl operation
//! --wait` prints a mesh's. The host is named by its host name. `command` checks run too
//! (as the user running `checks run`, who chose the file); on a node they need
//! `--allow-command`, because there an operation can come from anywhere in the mesh.
//!
//! Exit codes: 0 every check passed, 1 a check failed or could not decide, 2 the file or
//! the command line is wrong; with `--output nagios`, the plugin's 0/1/2/3.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::base::clock::{duration_ms, unix_ms};
use crate::checks::run::{RunOptions, run_checks};
use crate::checks::{Outcome, load_operations_file};
use crate::cli::error::CliError;
use crate::cli::output::{self, CommandOutput, LocalRun, OutputFormat, RenderOptions};

/// Where Linux keeps this host's name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The exit codes of `werify checks run`, for its long help.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  every check passed
  1  a check failed or could not decide
  2  the operations file or the command line is wrong
With --output nagios: 0 OK, 1 WARNING (a check could not decide), 2 CRITICAL (a check
failed), 3 UNKNOWN (the file or the command line is wrong).";

/// `checks run`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ChecksRunArgs {
    /// The operations file (JSON, as for `ctl operation`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Text output shows, under each result line, what the check found and (unless it
    /// passed) what it expected
    #[arg(short, long)]
    pub verbose: bool,
}

/// Runs `werify checks run`; the exit code, or the error that stopped it.
pub async fn run(args: ChecksRunArgs) -> Result<u8, CliError> {
    let checks = load_operations_file(&args.file)?;
    let opts = RunOptions {
        allow_command: true,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let results = run_checks(&checks, &opts).await;
    let run = LocalRun {
        file: args.file.display().to_string(),
        host: host_name(),
        results,
        at_unix_ms: unix_ms(),
        took_ms: duration_ms(started.elapsed()),
    };
    let out = CommandOutput::Local(&run);
    let text = output::render(
        args.output,
        &out,
        RenderOptions {
            verbose: args.verbose,
        },
    );
    crate::cli::ctl::print(&text);
    let passed = run
        .results
        .values()
        .all(|r| r.outcome == Outcome::Success(true));
    Ok(output::results_exit_code(args.output, &out, passed))
}

/// This host's name, as results name it: one word, `localhost` if it has none.
fn host_name() -> String {
    let name = std::fs::read_to_string(HOSTNAME_FILE).unwrap_or_default();
    match name.split_whitespace().next() {
        Some(word) => word.to_string(),
        None => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{ChecksCommand, Command};

    #[test]
    fn parses_with_every_format() {
        let parse = |words: &[&str]| {
            let argv = ["werify", "checks", "run"].iter().chain(words);
            match crate::cli::parse(argv.map(|w| w.to_string())).map(|c| c.command) {
                Ok(Command::Checks {
                    command: ChecksCommand::Run(args),
                }) => Ok(args),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        let args = parse(&["ops.json", "--output", "junit", "-v"]).expect("parses");
        assert_eq!(args.file, PathBuf::from("ops.json"));
        assert_eq!(args.output, OutputFormat::Junit);
        assert!(args.verbose);
        let args = parse(&["--output=nagios", "ops.json"]).expect("parses");
        assert_eq!(args.output, OutputFormat::Nagios);
        assert!(!args.verbose);
        assert_eq!(parse(&[]).map(drop).map_err(|e| e.exit_code()), Err(2));
        assert_eq!(
            parse(&["ops.json", "--output", "yaml"])
                .map(drop)
                .map_err(|e| e.exit_code()),
            Err(2)
        );
    }

    #[test]
    fn the_host_name_is_one_word() {
        let name = host_name();
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "{name:?}"
        );
    }
}
