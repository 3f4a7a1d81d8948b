//! `werify node`: turns the node's flags into a [`NodeConfig`] and runs it until Ctrl-C or
//! SIGTERM. Assembling the node is [`crate::node`]'s job.

use std::collections::BTreeMap;

use crate::cli::args::NodeArgs;
use crate::cli::error::{CliError, EXIT_OK};
use crate::cli::identity::{ca_source, env_of};
use crate::node::{self, NodeConfig};

/// Runs a node until it is told to stop.
pub async fn run_node(args: NodeArgs) -> Result<u8, CliError> {
    let config = node_config(&args)?;
    node::run(config, shutdown_signal()).await?;
    Ok(EXIT_OK)
}

/// The node configuration the flags describe; reads the secret file if one is named.
pub fn node_config(args: &NodeArgs) -> Result<NodeConfig, CliError> {
    Ok(NodeConfig {
        env: env_of(&args.identity)?,
        ca: ca_source(&args.identity)?,
        bind: args.bind,
        port: args.port,
        advertise: args.advertise.clone(),
        join: args.join.clone(),
        tags: parse_tags(&args.tag)?,
        workers: args.workers as usize,
        data_dir: args.data_dir.clone(),
        profile: args.profile,
        checks: args.checks.clone(),
        check_interval: args.check_interval,
        allow_command: args.allow_command,
        http: args.http,
        http_token_file: args.http_token_file.clone(),
        on_event: args.on_event.clone(),
    })
}

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => return Err(CliError::NodeTag(t.clone())),
        }
    }
    Ok(out)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
