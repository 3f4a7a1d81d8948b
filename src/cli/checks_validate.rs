//! `werify checks validate FILE...`: checks operations files here, with no node, by the
//! same parser and rules `werify ctl operation` applies before anything is sent (and a
//! node applies again on receipt). Prints `FILE: valid, N checks` per good file and the
//! error of each bad one; exit 0 when all are valid, 2 otherwise. `-` reads standard
//! input (JSON when it starts with `{`, YAML otherwise).

use std::path::PathBuf;

use clap::Args;

use crate::checks::spec::{CheckSet, SpecError, load_operations_file};
use crate::cli::ctl::{print, read_stdin_operations};
use crate::cli::error::{CliError, EXIT_OK, report};

/// `werify checks validate`'s arguments.
#[derive(Debug, Args)]
pub struct ChecksValidateArgs {
    /// Operations files to check (YAML if the name ends in .yaml or .yml, else JSON; `-`
    /// for standard input)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `werify checks validate`; every file is checked, each error reported.
pub async fn run(args: ChecksValidateArgs) -> Result<u8, CliError> {
    let mut code = EXIT_OK;
    for path in &args.files {
        let label = path.display().to_string();
        let result: Result<CheckSet, SpecError> = if label == "-" {
            match read_stdin_operations().await {
                Ok(set) => Ok(set),
                Err(CliError::OperationsFile(e)) => Err(e),
                Err(other) => return Err(other),
            }
        } else {
            load_operations_file(path)
        };
        match result {
            Ok(set) => {
                let plural = if set.len() == 1 { "" } else { "s" };
                print(&format!("{label}: valid, {} check{plural}\n", set.len()));
                if set.uses_command() {
                    eprintln!(
                        "Note: {label} has command checks; only nodes started with \
                         --allow-command run them"
                    );
                }
            }
            Err(e) => code = code.max(report(&CliError::OperationsFile(e))),
        }
    }
    Ok(code)
}
