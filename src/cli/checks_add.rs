//! `werify checks add TYPE ARG [--name NAME] [--file FILE]`: writes a check that this
//! host passes now. What is read from the host and the check itself come from
//! [`crate::checks::inspect`]; the file text from [`crate::checks::author`]. This module
//! reads the arguments, prints the check or adds it to FILE (replacing the file in one
//! rename, its permissions kept), and picks the exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::checks::author::{add_to_text, render_file};
use crate::checks::inspect::{ADDABLE, default_name, inspect};
use crate::checks::spec::{FileFormat, name_problem, read_operations_file};
use crate::cli::ctl::print;
use crate::cli::error::{CliError, EXIT_OK};

/// `werify checks add`'s arguments.
#[derive(Debug, Args)]
#[command(after_long_help = addable_help())]
pub struct ChecksAddArgs {
    /// The check type (see the list below)
    #[arg(value_name = "TYPE")]
    pub type_name: String,
    /// What to check: a path, URL, port, process, unit, user or parameter name (see below)
    #[arg(value_name = "ARG")]
    pub argument: String,
    /// The check's name [default: made from TYPE and ARG, e.g. file_exists_etc_hosts]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Add the check to this operations file (YAML if it ends in .yaml or .yml, else
    /// JSON), created when missing; without it the check is printed
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Layout of the printed check (with --file, the file's name decides)
    #[arg(long, value_enum, default_value_t = PrintFormat::Json, conflicts_with = "file")]
    pub format: PrintFormat,
}

/// The layout `checks add` prints in without `--file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrintFormat {
    /// A JSON operations file holding the check
    Json,
    /// A YAML operations file holding the check
    Yaml,
}

/// The list of types and their argument, for `checks add --help`.
fn addable_help() -> String {
    let mut text = String::from("Types and their ARG:\n");
    for a in ADDABLE {
        text.push_str(&format!(
            "  {:<16} {:<28} {}\n",
            a.name, a.argument, a.reads
        ));
    }
    text.push_str(
        "\nThe check is read from this host, then run once here: it is written only if it \
         passes.\nExit codes: 0 written, 1 this host does not pass such a check now (nothing \
         written),\n2 usage error, FILE unreadable or invalid, or the name already in FILE.",
    );
    text
}

/// Runs `werify checks add`.
pub async fn run(args: ChecksAddArgs) -> Result<u8, CliError> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| default_name(&args.type_name, &args.argument));
    if let Some(problem) = name_problem(&name) {
        return Err(CliError::CheckName { name, problem });
    }
    let check = inspect(&args.type_name, &args.argument).await?;
    let Some(path) = args.file else {
        let format = match args.format {
            PrintFormat::Json => FileFormat::Json,
            PrintFormat::Yaml => FileFormat::Yaml,
        };
        print(&render_file(&name, &check, format));
        return Ok(EXIT_OK);
    };
    let format = FileFormat::of_path(&path);
    let label = path.display().to_string();
    let current = if path.exists() {
        read_operations_file(&path)?
    } else {
        String::new()
    };
    let text = add_to_text(&current, &label, format, &name, &check)?;
    replace_file(&path, &text).map_err(|error| CliError::WriteFile {
        path: label.clone(),
        error,
    })?;
    print(&format!("Added check {name} to {label}\n"));
    Ok(EXIT_OK)
}

/// Replaces the file at `path` (through a symlink, its target) with `text` in one rename,
/// so a reader sees the old or the new content, never part of it; an existing file's
/// permissions are kept.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let permissions = std::fs::metadata(&target).ok().map(|m| m.permissions());
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = target.with_file_name(format!(".{file_name}.werify-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
