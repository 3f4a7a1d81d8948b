//! `werify config check [FILE]`: validates the configuration `werify node` would run
//! with — the config file, the merged settings, the identity they make and the checks
//! file they name — and prints it as TOML, each key with where its value came from.
//! The merging is [`crate::cli::settings`]'s, the same code `werify node` runs.

use std::io::Write;

use clap::ArgMatches;

use crate::base::NodeId;
use crate::checks::spec::load_operations_file;
use crate::cli::args::ConfigCheckArgs;
use crate::cli::config_file::DEFAULT_CONFIG_PATH;
use crate::cli::error::{CliError, EXIT_OK};
use crate::cli::settings::{self, Settings};
use crate::rpc::identity::{Identity, Role};

/// Widest `key = value` part before the sources are lined up after it.
const ALIGN_AT: usize = 40;

/// Checks the configuration and prints it; exit 0 when valid, the error (exit 2) when not.
pub fn check(args: ConfigCheckArgs, matches: &ArgMatches) -> Result<u8, CliError> {
    let mut node = args.node;
    if let Some(file) = args.file {
        node.config = Some(file);
    }
    let settings = settings::resolve(&node, matches)?;
    let config = settings.node_config()?;
    // The identity the node would build: reads and checks the CA files in PEM mode.
    Identity::new(
        config.env.as_ref(),
        &config.ca,
        Role::Node,
        NodeId::random(),
        &[config.bind],
    )?;
    if let Some(path) = &settings.checks {
        load_operations_file(path)?;
    }
    let mut out = std::io::stdout().lock();
    match write!(out, "{}", render(&settings)) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(EXIT_OK),
    }
}

/// The effective configuration as TOML: a header saying which file was read, then one
/// line per key with its source in a comment; unset keys are commented out.
pub fn render(settings: &Settings) -> String {
    let mut text = match &settings.file {
        Some(path) => format!(
            "# {} is valid; werify node would run with:\n",
            path.display()
        ),
        None => format!(
            "# no config file ({DEFAULT_CONFIG_PATH} does not exist); werify node would run with:\n"
        ),
    };
    for entry in &settings.entries {
        let line = match &entry.value {
            Some(v) => format!("{} = {v}", entry.key),
            None => format!("# {} is not set", entry.key),
        };
        let pad = ALIGN_AT.saturating_sub(line.chars().count()).max(1);
        text.push_str(&format!("{line}{:pad$}# {}\n", "", entry.source));
    }
    if settings.identity.secret_file.is_none()
        && settings.identity.ca_cert.is_none()
        && settings
            .identity
            .secret
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    {
        text.push_str("# the env secret comes from WERIFY_SECRET (not shown)\n");
    }
    text
}
