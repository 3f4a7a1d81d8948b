//! `werify node`: merges the node's flags, environment variables and config file into a
//! [`NodeConfig`] (see [`crate::cli::settings`]), sets up logging, and runs the node until
//! Ctrl-C or SIGTERM. On SIGHUP it reads the config file and the checks file again and
//! applies what can change live (tags, checks, check interval, `allow_command`, log
//! level) through the node's [`Reloader`]; what cannot is logged as needing a restart and
//! kept. Assembling the node is [`crate::node`]'s job.

use clap::ArgMatches;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::args::NodeArgs;
use crate::cli::error::{CliError, EXIT_OK};
use crate::cli::logging::{self, LogHandle};
use crate::cli::runtime;
use crate::cli::settings::{self, LIVE_KEYS, Settings};
use crate::node::reload::Reloader;
use crate::node::{Node, NodeConfig};

/// Runs a node until it is told to stop. `matches` are the `node` subcommand's, for
/// where each value came from.
pub fn run_node(args: NodeArgs, matches: &ArgMatches) -> Result<u8, CliError> {
    let started = settings::resolve(&args, matches)?;
    let config = started.node_config()?;
    let log = logging::init(started.log_level, started.log_format);
    runtime()?.block_on(async move {
        // Installed first: SIGHUP's default action would end the process.
        let hangups = signal(SignalKind::hangup()).map_err(CliError::Signal)?;
        let node = Node::start(config).await?;
        let mut reload = Reload {
            args,
            matches: matches.clone(),
            started,
            log,
            node: node.reloader(),
        };
        tokio::select! {
            () = node.serve(shutdown_signal()) => {}
            () = reload.on_every(hangups) => {}
        }
        Ok(EXIT_OK)
    })
}

/// The node configuration the flags describe, for tests and embedders: no config file
/// unless `--config` names one.
pub fn node_config(args: &NodeArgs, matches: &ArgMatches) -> Result<NodeConfig, CliError> {
    settings::resolve(args, matches)?.node_config()
}

/// What a reload needs: the command line it started with, what it started with, and
/// the parts it changes.
struct Reload {
    args: NodeArgs,
    matches: ArgMatches,
    /// The settings the node started with: keys that need a restart are compared
    /// against these.
    started: Settings,
    log: LogHandle,
    node: Reloader,
}

impl Reload {
    /// Reloads on every signal from `hangups`; never returns while they can arrive.
    async fn on_every(&mut self, mut hangups: Signal) {
        while hangups.recv().await.is_some() {
            self.reload().await;
        }
        std::future::pending::<()>().await
    }

    /// Reads the config file and the checks file again and applies what can change live;
    /// on any error keeps everything as it is and logs the error.
    async fn reload(&mut self) {
        let from = match &self.started.file {
            Some(p) => p.display().to_string(),
            None => "no config file".to_string(),
        };
        let new = match settings::resolve(&self.args, &self.matches) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed, the running configuration is kept: {e}");
                return;
            }
        };
        let file = new
            .file
            .as_ref()
            .map_or_else(|| from.clone(), |p| p.display().to_string());
        let mut changes: Vec<String> = match self.node.reload(new.live()).await {
            Ok(changes) => changes.iter().map(ToString::to_string).collect(),
            Err(e) => {
                tracing::error!("reload failed, the running configuration is kept: {e}");
                return;
            }
        };
        for entry in &new.entries {
            if LIVE_KEYS.contains(&entry.key) {
                continue;
            }
            let was = self.started.entry(entry.key).and_then(|e| e.value.clone());
            if was != entry.value {
                tracing::warn!(
                    "{} changed in {file}: needs a restart (running with {}, now {})",
                    entry.key,
                    was.as_deref().unwrap_or("nothing"),
                    entry.value.as_deref().unwrap_or("nothing")
                );
            }
        }
        if new.log_level != self.log.level() {
            let was = self.log.level();
            match self.log.set_level(new.log_level) {
                Ok(()) => changes.push(format!("log_level {} (was {was})", new.log_level)),
                Err(e) => tracing::warn!("log_level {} not applied: {e}", new.log_level),
            }
        }
        if changes.is_empty() {
            tracing::info!("reloaded {file}: nothing to change");
        } else {
            tracing::info!("reloaded {file}: {}", changes.join("; "));
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
